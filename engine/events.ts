// Structured events: the engine emits these and never prints; reporters (plain, JSON lines,
// the TUI) turn them into output. `round` and `watching` come from the CLI's watch loop
// (realize --watch), around the engine's events of each round.

/** What the plan says of a node before anything runs (engine/plan.ts). */
export type PlanState = "cached" | "substitutable" | "build" | "fetch" | "unknown";

export interface NodeRef {
  /** derivation hash */
  drv: string;
  name: string;
}

export type KilnEvent =
  /** unchanged: nothing the last identical realize depended on changed; the graph was not re-evaluated */
  | { type: "evaluated"; targets: string[]; derivations: number; ms: number; unchanged?: boolean }
  /**
   * nodes come dependencies first; deps: the drv hashes of each node's inputs (the graph's edges);
   * estimateMs: a recorded duration of an earlier build, for an ETA (the CLI adds it for the TUI);
 * downloadBytes: what substituting it downloads (the archives of its closure that the store lacks);
   * sealed: a derivation of a module not evaluated again (engine/module-records.ts), in the store:
   * its inputs are not in the graph
   */
  | { type: "planned"; nodes: Array<NodeRef & { state: PlanState; estimateMs?: number; deps?: string[]; downloadBytes?: number; sealed?: true }> }
  /** something went wrong that does not stop the run (a binary cache down or untrusted) */
  | { type: "warning"; message: string }
  /** a store path was uploaded to a binary cache (realize --push-to, kiln copy); bytes: its archive */
  | { type: "pushed"; path: string; bytes: number; to: string }
  /**
   * store paths the database had as valid but that are gone from disk: the store forgot them,
   * with every path that refers to them (`paths`), and the realize builds what it needs of them again
   */
  | { type: "forgotten"; missing: string[]; paths: string[] }
  | { type: "waiting"; node: NodeRef; reason: string }
  | { type: "started"; node: NodeRef; resolved: string; kind: "build" | "fetch" | "substitute" }
  | { type: "log"; node: NodeRef; line: string }
  /** where a build runs, when there are remote builders: 'local' or a builder's URL */
  | { type: "dispatched"; node: NodeRef; machine: string }
  /** cutoff: an input (directly or further up) was rebuilt in this run, yet this node was reused */
  | { type: "cached"; node: NodeRef; paths: Record<string, string>; cutoff: boolean }
  | { type: "substituted"; node: NodeRef; paths: Record<string, string>; from: string }
  | { type: "built"; node: NodeRef; paths: Record<string, string>; ms: number; identical: boolean }
  | { type: "failed"; node: NodeRef; message: string; logTail: string[]; logFile?: string }
  /** because: the input that did not come; failed: the failure behind it (because itself, or what skipped it) */
  | { type: "skipped"; node: NodeRef; because: NodeRef; failed: NodeRef }
  /** stopped before it finished: Ctrl-C, or the run stopped at another node's failure */
  | { type: "cancelled"; node: NodeRef }
  /** kiln check: a realised derivation is being built again, to compare (hours for a toolchain: say so when it starts) */
  | { type: "checking"; node: NodeRef }
  | { type: "checked"; node: NodeRef; output: string; identical: boolean; differences: string[] }
  /**
   * unchanged: answered from the no-op record (cli/noop.ts); cached counts the targets' outputs.
   * Every planned node is counted once: built + cached + substituted + failed + cancelled + skipped.
   */
  | { type: "finished"; built: number; cached: number; substituted?: number; failed: number; cancelled?: number; skipped?: number; ms: number; unchanged?: boolean }
  /** a watch round begins: evaluate and realize again; changed: the files that started it (none for the first) */
  | { type: "round"; round: number; changed: string[] }
  /**
   * a watch round is over and the watch waits for changes to `files` files and folders; outputs:
   * the targets' store paths (host paths); error: why the round did not complete (a broken recipe,
   * a failed build), as the message the CLI would print
   */
  | { type: "watching"; round: number; files: number; outputs: string[]; error?: { code: string; message: string } };

export type EventSink = (e: KilnEvent) => void;
