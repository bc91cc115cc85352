// How every command ends: the exit code of each kind of failure, the error's words, Ctrl-C, and
// the store's backup once the command is done. The full CLI (cli/run.ts) and `kiln gc`'s own
// bundle (cli/gc-main.ts) both end this way, so it imports little: node built-ins, the store's
// modules, and the source-map reader for stack traces.
import { setMaxListeners } from "node:events";
import { isKilnError, type ErrorCode } from "../store/errors.js";
import { storeFailure } from "../store/failures.js";
import { mapStack } from "../engine/source-map.js";
import type { LocalStore } from "../store/local-store.js";

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

/**
 * Ctrl-C (and SIGTERM) for the length of a command: the first aborts `signal` (builds stop, gc
 * stops after its batch) and says so, the second quits at once. `cancel` is the TUI's q.
 */
export interface Interruptible {
  signal: AbortSignal;
  cancel: () => void;
  dispose: () => void;
}

export function interruptible(): Interruptible {
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
  return {
    signal: ac.signal,
    cancel: () => {
      interrupts++;
      ac.abort();
    },
    dispose: () => {
      process.off("SIGINT", onSigint);
      process.off("SIGTERM", onSigint);
    },
  };
}

/**
 * Run a command's work as every command runs and ends: Ctrl-C for its length, its exit code (what
 * `work` returns, or its failure's), and the store it opened (`opened`) backed up when due and
 * closed. `failing`: what to do before a failure is reported (the TUI lets go of the terminal).
 */
export async function asCommand(
  storeRoot: string,
  work: (run: Interruptible, opened: (store: LocalStore) => void) => Promise<number | void>,
  failing?: () => Promise<void>,
): Promise<void> {
  const run = interruptible();
  let store: LocalStore | undefined;
  let storeFailed = false;
  try {
    const code = await work(run, (s) => (store = s));
    process.exitCode = code ?? EXIT.ok;
  } catch (e) {
    await failing?.().catch(() => {});
    const end = failed(e, storeRoot);
    storeFailed = end.storeFailed;
    process.exitCode = end.code;
  } finally {
    release(store, storeFailed);
    run.dispose();
  }
}

/**
 * A command's failure reported (a store's own failure as what it is: a full disk, a damaged
 * database) and its exit code; `storeFailed`: the store just failed, so it is not backed up.
 */
function failed(e: unknown, storeRoot: string): { code: number; storeFailed: boolean } {
  const failure = storeFailure(e, storeRoot) ?? e;
  const storeFailed = isKilnError(failure) && (failure.code === "STORE_CORRUPT" || failure.code === "IO_ERROR");
  return { code: reportError(failure), storeFailed };
}

/** The end of a command that opened `store`: backed up when due (unless it failed), then closed. */
function release(store: LocalStore | undefined, storeFailed: boolean): void {
  if (store && !storeFailed) backUp(store);
  store?.close();
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
