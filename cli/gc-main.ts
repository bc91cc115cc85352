// `kiln gc` in a bundle of its own (dist/kiln-gc.cjs): the launcher (cli/kiln.ts) runs it when
// cli/gc-args.ts reads the command line as a plain gc. It opens the store as every command does
// and ends as every command does (cli/exit.ts: Ctrl-C, errors, exit codes, the backup); the work is
// the gc command's own (cli/gc-run.ts). What it leaves out of the full CLI is what a gc never
// uses: the argument parser, the reporters, builders, substituters and the recipe machinery.
import { LocalStore } from "../store/local-store.js";
import { asCommand } from "./exit.js";
import { parseGcArgs } from "./gc-args.js";
import { runGc } from "./gc-run.js";
import { storeRoot } from "./locate.js";
import { installProcessHooks } from "./process-hooks.js";

async function main(): Promise<void> {
  installProcessHooks();
  const args = parseGcArgs(process.argv.slice(2));
  if (!args) throw new Error(`kiln-gc.cjs run for a command line it does not take: ${JSON.stringify(process.argv.slice(2))}`);
  const root = storeRoot(args);
  await asCommand(root, async (run, opened) => {
    const store = LocalStore.open(root);
    opened(store);
    await runGc(args, { store, clock: Date.now, signal: run.signal });
  });
}

/** The run, as cli/main.ts's: the launcher reports what escapes it as an internal error. */
export const done: Promise<unknown> = main();
