// Scratch directories under the store's tmp/: named by the owning process (pid + start time), so
// that those of a process that died (SIGKILL, power loss) are found and removed by the next run.
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { removeTree } from "./paths.js";
import { isProcessAlive, SELF_PID, SELF_START } from "./process.js";

/** A fresh scratch directory owned by this process. */
export function makeScratchDir(tmpDir: string, label: string): string {
  const dir = join(tmpDir, `${SELF_PID}-${SELF_START}-${label}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Remove scratch directories left by kiln processes that died. */
export function cleanStaleScratch(tmpDir: string): number {
  let n = 0;
  for (const e of readdirSync(tmpDir)) {
    const [pid, start] = e.split("-");
    if (pid && start && !isProcessAlive(Number(pid), start)) {
      removeTree(join(tmpDir, e));
      n++;
    }
  }
  return n;
}
