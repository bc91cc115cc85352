// Running a command of the full CLI: its reporter and context around the work, and its end
// (cli/exit.ts: Ctrl-C, error printing, exit codes, the store's backup).
import type { OpenStoreOptions } from "../store/local-store.js";
import type { Context } from "../engine/context.js";
import { makeContext, openReporter, storeRoot, type ContextOptions, type GlobalArgs, type Reporter } from "./context.js";
import { EXIT, failed, interruptible, release } from "./exit.js";

export { EXIT, EXIT_CODE, reportError } from "./exit.js";

export async function withContext(args: GlobalArgs, fn: (ctx: Context & { root: string }) => Promise<number | void>, open: OpenStoreOptions = {}, o: ContextOptions = {}): Promise<void> {
  const run = interruptible();
  let ctx: (Context & { root: string }) | undefined;
  let reporter: Reporter | undefined;
  let storeFailed = false;
  try {
    reporter = await openReporter(args, {
      // the TUI's q: it shows the cancelling itself
      cancel: run.cancel,
      forceQuit: () => process.exit(EXIT.cancelled),
      store: () => ctx?.store,
    });
    ctx = makeContext(args, run.signal, reporter.events, open, o);
    const code = await fn(ctx);
    await reporter.close();
    process.exitCode = code ?? EXIT.ok;
  } catch (e) {
    // the TUI lets go of the terminal before the error is printed under it
    await reporter?.close().catch(() => {});
    const end = failed(e, storeRoot(args));
    storeFailed = end.storeFailed;
    process.exitCode = end.code;
  } finally {
    release(ctx?.store, storeFailed);
    run.dispose();
  }
}
