// The substitution port: after a local miss and before building, the realizer asks substituters
// (a binary cache on a directory, HTTP or S3; another machine's store) whether they have the
// outputs of a resolved derivation. What one answers is fetched into a scratch directory and
// imported by the store, which re-hashes it: a substituted path is trusted for its content, not
// for the word of whoever served it (Nix's substitution goal beside its derivation goal).
import type { StorePathName } from "../store/paths.js";
import type { ResolvedHash } from "./derivation.js";

/** What a substituter says about one output it has. */
export interface SubstitutableInfo {
  path: StorePathName;
  /** the tree digest the store will check on import */
  narDigest: string;
  narSize: number;
  references: StorePathName[];
  /** bytes to download, when the substituter knows (compressed archives are smaller) */
  downloadSize?: number;
  /** 'sha256:<hex>' for a fixed output */
  ca?: string;
}

export interface Substituter {
  /** how events and messages name it (a URL) */
  readonly name: string;
  /**
   * Which of these (resolved derivation, output) pairs it can provide, in one round trip where
   * it can. Keys of the result: `${resolved}\0${output}`. A substituter that cannot be reached
   * answers with an empty map (and the build goes on), not an error.
   */
  query(keys: Array<{ resolved: ResolvedHash; output: string }>, signal: AbortSignal): Promise<Map<string, SubstitutableInfo>>;
  /** Fetch one path's tree to `dest` (which must not exist yet). */
  fetch(info: SubstitutableInfo, dest: string, signal: AbortSignal, onProgress?: (bytes: number) => void): Promise<void>;
}

export const substitutionKey = (resolved: string, output: string) => `${resolved}\0${output}`;
