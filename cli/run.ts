// Running a command: context creation, Ctrl-C handling, error printing and exit codes.
import { isKilnError } from "../store/errors.js";
import type { Context } from "../engine/context.js";
import { makeContext, openReporter, type GlobalArgs, type Reporter } from "./context.js";

/** lockDrift: `realize --locked` refused, or `lock --check` found drift; nothing was built */
export const EXIT = { ok: 0, failed: 1, usage: 2, lockDrift: 3, cancelled: 130 } as const;

export async function withContext(args: GlobalArgs, fn: (ctx: Context & { root: string }) => Promise<number | void>): Promise<void> {
  const ac = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write("\ncancelling: stopping builds and cleaning up (Ctrl-C again to quit at once)\n");
      ac.abort();
    } else process.exit(EXIT.cancelled);
  };
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigint);
  let ctx: (Context & { root: string }) | undefined;
  let reporter: Reporter | undefined;
  try {
    reporter = await openReporter(args, {
      // the TUI's q: it shows the cancelling itself
      cancel: () => {
        interrupts++;
        ac.abort();
      },
      forceQuit: () => process.exit(EXIT.cancelled),
      store: () => ctx?.store,
    });
    ctx = makeContext(args, ac.signal, reporter.events);
    const code = await fn(ctx);
    await reporter.close();
    process.exitCode = code ?? EXIT.ok;
  } catch (e) {
    // the TUI lets go of the terminal before the error is printed under it
    await reporter?.close().catch(() => {});
    process.exitCode = reportError(e);
  } finally {
    ctx?.store.close();
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigint);
  }
}

export function reportError(e: unknown): number {
  if (isKilnError(e)) {
    process.stderr.write(`error: ${e.describe()}\n`);
    switch (e.code) {
      case "CANCELLED":
        return EXIT.cancelled;
      case "BUILD_FAILED":
      case "DEPENDENCY_FAILED":
      case "OUTPUT_MISSING":
      case "FIXED_OUTPUT_MISMATCH":
      case "FETCH_FAILED":
      case "STORE_CORRUPT":
        return EXIT.failed;
      case "LOCK_DRIFT":
        return EXIT.lockDrift;
      default:
        return EXIT.usage;
    }
  }
  process.stderr.write(`internal error (a bug in kiln, please report it):\n${(e as Error)?.stack ?? String(e)}\n`);
  return 70;
}
