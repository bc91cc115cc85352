// Running a command: context creation, Ctrl-C handling, error printing and exit codes.
import { setMaxListeners } from "node:events";
import { isKilnError, type ErrorCode } from "../store/errors.js";
import { storeFailure } from "../store/failures.js";
import { mapStack } from "../engine/source-map.js";
import type { LocalStore, OpenStoreOptions } from "../store/local-store.js";
import type { Context } from "../engine/context.js";
import { makeContext, openReporter, storeRoot, type GlobalArgs, type Reporter } from "./context.js";

/** lockDrift: `realize --locked` refused, or `lock --check` found drift; nothing was built */
export const EXIT = { ok: 0, failed: 1, usage: 2, lockDrift: 3, cancelled: 130, internal: 70 } as const;

/**
 * The exit code of each kind of failure (README, "Exit codes"): 1 a build, fetch or the store
 * failed; 2 the input was wrong (recipe, target, option, missing tool, no sandbox); 3 the lock
 * refused a run (nothing was built); 130 cancelled.
 * A Record over every kind: a new kind that is not mapped here does not compile.
 */
export const EXIT_CODE: Record<ErrorCode, number> = {
  BUILD_FAILED: EXIT.failed,
  DEPENDENCY_FAILED: EXIT.failed,
  OUTPUT_MISSING: EXIT.failed,
  FIXED_OUTPUT_MISMATCH: EXIT.failed,
  FETCH_FAILED: EXIT.failed,
  CACHE_FAILED: EXIT.failed,
  STORE_CORRUPT: EXIT.failed,
  LOCK_DRIFT: EXIT.lockDrift,
  DEB_INVALID: EXIT.failed,
  SEED_RESOLVE_FAILED: EXIT.failed,
  SEED_INVALID: EXIT.usage,
  SEED_CONFLICT: EXIT.usage,
  IO_ERROR: EXIT.failed,
  STORE_UNUSABLE: EXIT.usage,
  LOCK_INVALID: EXIT.usage,
  STORE_LOCKED: EXIT.usage,
  STORE_PATH_INVALID: EXIT.usage,
  RECIPE_NOT_FOUND: EXIT.usage,
  RECIPE_LOAD: EXIT.usage,
  RECIPE_INVALID: EXIT.usage,
  TARGET_NOT_FOUND: EXIT.usage,
  CYCLE: EXIT.usage,
  SOURCE_MISSING: EXIT.usage,
  HOST_TOOL_MISSING: EXIT.usage,
  SANDBOX_UNAVAILABLE: EXIT.usage,
  SYSTEM_UNSUPPORTED: EXIT.usage,
  USAGE: EXIT.usage,
  CANCELLED: EXIT.cancelled,
};

export async function withContext(args: GlobalArgs, fn: (ctx: Context & { root: string }) => Promise<number | void>, open: OpenStoreOptions = {}): Promise<void> {
  const ac = new AbortController();
  // cache requests and builds in flight each listen to it (kiln copy uploads many at once)
  setMaxListeners(0, ac.signal);
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
  let storeFailed = false;
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
    ctx = makeContext(args, ac.signal, reporter.events, open);
    const code = await fn(ctx);
    await reporter.close();
    process.exitCode = code ?? EXIT.ok;
  } catch (e) {
    // the TUI lets go of the terminal before the error is printed under it
    await reporter?.close().catch(() => {});
    const failure = storeFailure(e, storeRoot(args)) ?? e;
    // a store that just failed is no store to back up
    if (isKilnError(failure) && (failure.code === "STORE_CORRUPT" || failure.code === "IO_ERROR")) storeFailed = true;
    process.exitCode = reportError(failure);
  } finally {
    if (ctx && !storeFailed) backUp(ctx.store);
    ctx?.store.close();
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigint);
  }
}

/**
 * Keep the database's backup fresh (store/backup.ts) after a command that wrote to it. A backup
 * that cannot be written is worth a warning, never a failed command.
 */
function backUp(store: LocalStore): void {
  try {
    store.backupIfDue(Date.now());
  } catch (e) {
    const f = isKilnError(e) ? e : storeFailure(e, store.root);
    process.stderr.write(`warning: the store database was not backed up: ${f ? f.describe() : (e as Error).message}\n`);
  }
}

export function reportError(e: unknown): number {
  if (isKilnError(e)) {
    process.stderr.write(`error: ${e.describe()}\n`);
    return EXIT_CODE[e.code];
  }
  // positions in recipe bundles and in kiln's own bundle as their source files
  process.stderr.write(`internal error (a bug in kiln, please report it):\n${mapStack(String((e as Error)?.stack ?? e))}\n`);
  return EXIT.internal;
}
