// The one context object: built by the CLI (the composition root) and passed down. Nothing in
// engine/ or store/ reads process.env, process.cwd() or the console.
import type { FileDigestCache } from "../store/archive.js";
import type { LocalStore } from "../store/local-store.js";
import type { Builder } from "./builder.js";
import type { EventSink } from "./events.js";
import type { HostTools } from "./hosttools.js";
import type { Substituter } from "./substituter.js";

export interface Context {
  store: LocalStore;
  /** runs builds (engine/builder.ts): the local sandbox, or a builder elsewhere */
  builder: Builder;
  /** asked, in order, for what the store lacks before it is built (engine/substituter.ts) */
  substituters: readonly Substituter[];
  hostTools: HostTools;
  events: EventSink;
  /** ms since the epoch */
  clock: () => number;
  signal: AbortSignal;
  /** digests of local source files, keyed by path+size+mtime+inode */
  fileCache: FileDigestCache;
  config: Config;
}

export interface Config {
  /** parallel builds */
  jobs: number;
  /** cores each build may use (KILN_BUILD_CORES inside the sandbox; not hashed) */
  buildCores: number;
  keepGoing: boolean;
  /** local folders searched for fixed-output files by name or sha256 */
  mirrors: string[];
  /** host environment a fetch may need (proxy settings) */
  fetchEnv: Record<string, string>;
}
