// What every suite gets: options, where things live, the CLI under test, the anchors found on
// this machine, and the report.
import type { NixEnv } from "./nix.js";
import type { Cmd } from "./proc.js";
import type { Report } from "./report.js";

export interface BenchOptions {
  quick: boolean;
  /** synthetic graphs (shape and N) for the no-op, evaluation and gc rows */
  graphs: Array<{ shape: "deep" | "wide"; n: number }>;
  runs: number;
  /** -j for first builds (populating the stores) in Kiln and Nix alike */
  populateJobs: number;
  /** Nix's store is filled by building only for graphs of at most this many derivations */
  nixBuildMax: number;
  /** first builds of the 1k graphs repeated into fresh stores, Kiln's and Nix's in turn (0: none) */
  firstBuildRuns: number;
  /** which sections to run */
  only: Set<string> | undefined;
  /** the tree hashed by the content-hashing rows (default: the kernel source tree) */
  hashTree: string | undefined;
  /** a store where pi4-llm-os is realized (its no-op row), if there is one */
  pi4Store: string;
}

export interface Bench {
  opts: BenchOptions;
  /** the repository root */
  repo: string;
  /** argv prefix that runs the shipped CLI: dist/kiln.cjs as a program, as a shell runs `kiln` */
  kiln: string[];
  /** persistent cache: generated graphs, their populated stores, the unpacked kernel tree */
  cache: string;
  /** scratch for this run, removed at the end */
  tmp: string;
  nix: NixEnv | undefined;
  /** why Nix is not available, if it is not */
  nixMissing: string | undefined;
  report: Report;
  /** progress lines (stderr) */
  log(msg: string): void;
}

/**
 * The anchor for Node's start: `node -e 0` started as kiln's launcher starts Node, without
 * NODE_EXTRA_CA_CERTS. dist/kiln.cjs reads that file only for an HTTPS request
 * (engine/extra-ca.ts); Node reads it at every start, ~38 ms on a host whose variable names the
 * system bundle, which kiln does not pay and the anchor would.
 */
export const NODE_START: Cmd = { argv: ["node", "-e", "0"], env: { NODE_EXTRA_CA_CERTS: "" } };
