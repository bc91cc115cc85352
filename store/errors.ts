// Typed, expected failures. Each kind has a stable code, its own fields (the context it happened
// in), and a hint that tells the user what to do. A plain Error thrown anywhere means a bug in
// Kiln. The CLI maps every kind to an exit code (cli/run.ts, a Record over this union: a kind it
// does not map does not compile).

/** Fields any failure may carry, whatever its kind. */
export interface CommonFields {
  /** recipe file:line:column it concerns */
  position?: string;
  /** derivation hash it concerns */
  drv?: string;
  /** the last lines of the build's log, and the log file (a build or fetch failure) */
  logTail?: string[];
  logFile?: string;
  /** the build record was already finished by whoever threw this */
  recorded?: boolean;
  /** a node skipped because an input failed (not a failure of its own) */
  skipped?: boolean;
}

/** A kind with no fields of its own. */
type NoFields = Record<never, never>;

/** Each kind of failure and its own fields. */
export interface FailureFields {
  STORE_CORRUPT: { path?: string; file?: string };
  STORE_UNUSABLE: { path?: string };
  IO_ERROR: { file?: string; errno?: string };
  /** notRealized: a target that is not in the store yet (kiln run and shell then realize it) */
  STORE_PATH_INVALID: { path?: string; notRealized?: boolean };
  STORE_LOCKED: { holder?: number };
  RECIPE_NOT_FOUND: { file?: string };
  RECIPE_LOAD: { file?: string };
  RECIPE_INVALID: NoFields;
  TARGET_NOT_FOUND: { target?: string };
  CYCLE: { cycle?: string[] };
  SOURCE_MISSING: { path?: string };
  HOST_TOOL_MISSING: { tool?: string; package?: string; where?: string; path?: string };
  SANDBOX_UNAVAILABLE: NoFields;
  SYSTEM_UNSUPPORTED: { system?: string };
  BUILD_FAILED: { exitCode?: number | null };
  /** because: the input that did not come; failed: the failure behind the skip (because, or what skipped it) */
  DEPENDENCY_FAILED: { because?: string; failed?: { drv: string; name: string } };
  OUTPUT_MISSING: { output?: string };
  FIXED_OUTPUT_MISMATCH: { expected?: string; attempts?: unknown[] };
  FETCH_FAILED: { expected?: string; attempts?: unknown[] };
  CACHE_FAILED: { url?: string };
  CANCELLED: NoFields;
  LOCK_DRIFT: { file?: string };
  DEB_INVALID: { deb?: string };
  SEED_INVALID: { file?: string };
  SEED_CONFLICT: { conflicts?: Record<string, string[]> };
  SEED_RESOLVE_FAILED: NoFields;
  LOCK_INVALID: { file?: string };
  USAGE: NoFields;
}

export type ErrorCode = keyof FailureFields;

export type FailureContext<C extends ErrorCode> = FailureFields[C] & CommonFields;

/** Marks kiln errors across module copies (a recipe bundle imports its own copy of the API). */
const BRAND = Symbol.for("kiln.error");

export class KilnError<C extends ErrorCode = ErrorCode> extends Error {
  readonly [BRAND] = true;
  constructor(
    readonly code: C,
    message: string,
    readonly hint?: string,
    readonly context: FailureContext<C> = {} as FailureContext<C>,
  ) {
    super(message);
    this.name = "KilnError";
  }

  /** Human-readable text: what happened, then how to fix it. */
  describe(): string {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }
}

/** Any kiln error, as a union discriminated by its code (so `e.code === "CYCLE"` types `e.context`). */
export type AnyKilnError = { [C in ErrorCode]: KilnError<C> }[ErrorCode];

export function isKilnError(e: unknown): e is AnyKilnError {
  return typeof e === "object" && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}
