// Typed, expected failures. Each has a stable code, the context it happened in, and a hint that
// tells the user what to do. A plain Error thrown anywhere means a bug in Kiln.

export type ErrorCode =
  | "STORE_CORRUPT"
  | "STORE_PATH_INVALID"
  | "STORE_LOCKED"
  | "RECIPE_NOT_FOUND"
  | "RECIPE_LOAD"
  | "RECIPE_INVALID"
  | "TARGET_NOT_FOUND"
  | "CYCLE"
  | "SOURCE_MISSING"
  | "HOST_TOOL_MISSING"
  | "SANDBOX_UNAVAILABLE"
  | "BUILD_FAILED"
  | "DEPENDENCY_FAILED"
  | "OUTPUT_MISSING"
  | "FIXED_OUTPUT_MISMATCH"
  | "FETCH_FAILED"
  | "CANCELLED"
  | "LOCK_DRIFT"
  | "DEB_INVALID"
  | "SEED_INVALID"
  | "SEED_CONFLICT"
  | "SEED_RESOLVE_FAILED"
  | "USAGE";

export class KilnError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
    readonly context: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "KilnError";
  }

  /** Human-readable text: what happened, then how to fix it. */
  describe(): string {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }
}

export function isKilnError(e: unknown): e is KilnError {
  return e instanceof KilnError;
}
