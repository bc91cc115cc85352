// Running a command of the full CLI: its reporter and context around the work, and its end
// (cli/exit.ts: Ctrl-C, error printing, exit codes, the store's backup).
import type { OpenStoreOptions } from "../store/local-store.js";
import type { Context } from "../engine/context.js";
import { makeContext, openReporter, storeRoot, type ContextOptions, type GlobalArgs, type Reporter } from "./context.js";
import { asCommand, EXIT } from "./exit.js";

export { EXIT, EXIT_CODE, reportError } from "./exit.js";

export async function withContext(args: GlobalArgs, fn: (ctx: Context & { root: string }) => Promise<number | void>, open: OpenStoreOptions = {}, o: ContextOptions = {}): Promise<void> {
  let reporter: Reporter | undefined;
  await asCommand(storeRoot(args), async (run, opened) => {
    let ctx: (Context & { root: string }) | undefined;
    reporter = await openReporter(args, {
      // the TUI's q: it shows the cancelling itself
      cancel: run.cancel,
      forceQuit: () => process.exit(EXIT.cancelled),
      store: () => ctx?.store,
    });
    ctx = makeContext(args, run.signal, reporter.events, open, o);
    opened(ctx.store);
    const code = await fn(ctx);
    await reporter.close();
    return code;
  }, async () => {
    // the TUI lets go of the terminal before the error is printed under it
    await reporter?.close();
  });
}
