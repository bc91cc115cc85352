// Child process for the lock tests: open the store, take a lock, say so, then stay alive until
// killed. Usage: node --import tsx hold-lock.ts <store root> <lock key>
import { LocalStore } from "../local-store.js";

const [root, key] = process.argv.slice(2);
if (!root || !key) throw new Error("usage: hold-lock.ts <store root> <lock key>");
const store = LocalStore.open(root);
if (!store.tryLock(key)) {
  process.stdout.write("busy\n");
  process.exit(3);
}
process.stdout.write("locked\n");
setInterval(() => {}, 1 << 30);
