// The builder port. The realizer hands a BuildRequest (engine/build-request.ts) to the builder,
// which runs it and returns the outputs to register; everything clever happens before it. The
// local bubblewrap sandbox (engine/builders/sandbox.ts) is the first implementation; a builder
// on another machine implements the same interface.
import type { BuildRequest } from "./build-request.js";

export interface BuildIO {
  signal: AbortSignal;
  /** what the build prints, stdout and stderr interleaved, as it comes */
  onOutput(chunk: Buffer): void;
  /** told where the build runs, by a builder that chooses among machines ('local' or a URL) */
  where?(machine: string): void;
}

export interface BuildResult {
  exitCode: number | null;
  /** the signal that killed the builder, if one did */
  signal: string | null;
  /** output name -> host path of what the build produced there (absent: it produced nothing) */
  outputs: Record<string, string | undefined>;
  /**
   * remove what the builder left on this host; after registration moved the outputs away. `later`:
   * the caller does not need the space back now (the removal may finish after release returns;
   * the realize waits for it before it ends)
   */
  release(later?: boolean): void;
}

export interface Builder {
  /** the systems it builds for ('x86_64-linux', ...) */
  readonly systems: readonly string[];
  /** Throw (a KilnError saying what to install or allow) if this builder cannot build at all here. */
  checkAvailable(): void;
  build(req: BuildRequest, io: BuildIO): Promise<BuildResult>;
}
