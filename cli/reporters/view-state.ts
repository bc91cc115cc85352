// The view state of a build: what the TUI (and anything else that wants a picture rather than a
// log) shows, folded from the engine's event stream. No I/O, no clock reads: time comes in with
// each event, so the same events always give the same state.
//
// In watch mode (realize --watch) a `round` event starts the picture afresh for the next round;
// the round's number, what triggered it and how it ended stay in `watch`.
//
// `applyEvent` updates the state in place instead of returning a copy: a build of 100k
// derivations sends several events per node, and copying the node table per event would make the
// fold quadratic. It is still a reducer in every other sense (`reduce` folds a list from a fresh
// state); the TUI keeps one state and re-renders from it.
import type { KilnEvent } from "../../engine/events.js";

export type { PlanState } from "../../engine/events.js";
import type { PlanState } from "../../engine/events.js";

/** waiting: not started (reason set when another kiln process holds its lock) */
export type NodeStatus = "waiting" | "running" | "cached" | "cutoff" | "substituted" | "built" | "failed" | "cancelled" | "skipped";

export const DONE_STATUSES: ReadonlySet<NodeStatus> = new Set(["cached", "cutoff", "substituted", "built", "failed", "cancelled", "skipped"]);

/** Lines of each node's log kept in memory (the full log is in the store's log file). */
export const LOG_TAIL_LINES = 200;

export interface NodeView {
  drv: string;
  name: string;
  /** position in the planned order (dependencies first) */
  index: number;
  plan: PlanState;
  /** drv hashes of its inputs */
  deps: string[];
  /** drv hashes of the nodes that use it */
  dependents: string[];
  status: NodeStatus;
  kind?: "build" | "fetch" | "substitute";
  /** where it is built, when there are remote builders ('local' or a builder's URL) */
  machine?: string;
  /** bytes substituting it downloads (planned substitutable) */
  downloadBytes?: number;
  /** resolved derivation hash, once started (names the log file) */
  resolved?: string;
  startedAt?: number;
  /** wall time of its build or fetch, once finished */
  ms?: number;
  /** recorded duration of an earlier build */
  estimateMs?: number;
  /** why it waits (another process builds it), why it failed, or which input failed */
  reason?: string;
  logTail: string[];
  /** log lines seen in total */
  logLines: number;
  logFile?: string;
  /** built, but its output was already in the store bit for bit */
  identical?: boolean;
  checked?: { identical: boolean; differences: string[] };
}

export interface Counts {
  total: number;
  waiting: number;
  running: number;
  cached: number;
  cutoff: number;
  substituted: number;
  built: number;
  failed: number;
  cancelled: number;
  skipped: number;
}

/** A node that reached a final state, in the order they did (the TUI prints each once). */
export interface Completion {
  drv: string;
  name: string;
  status: NodeStatus;
  ms?: number;
  at: number;
}

/** A watch session's current round. */
export interface WatchView {
  round: number;
  /** the files whose change started this round (none for the first) */
  changed: string[];
  /** running: evaluating or building; idle: over, waiting for changes */
  status: "running" | "idle";
  /** files and folders watched, once the round is over */
  files?: number;
  /** the targets' store paths, when the round realized them */
  outputs: string[];
  /** why the round did not complete (a broken recipe, a failed build) */
  error?: { code: string; message: string };
}

export interface ViewState {
  phase: "evaluating" | "building" | "finished";
  targets: string[];
  evaluated?: { derivations: number; ms: number };
  /** time of the first event and of the planned event */
  firstEventAt?: number;
  plannedAt?: number;
  nodes: Map<string, NodeView>;
  /** drv hashes in planned order (dependencies first) */
  order: string[];
  /** nodes nothing in the plan depends on: the targets */
  roots: string[];
  counts: Counts;
  completions: Completion[];
  /** drv hashes of failed nodes, in order */
  failures: string[];
  finished?: { built: number; cached: number; substituted: number; failed: number; cancelled: number; skipped: number; ms: number; at: number };
  /** parallel builds, for the ETA */
  jobs: number;
  /** the longest node name, for aligned columns */
  nameWidth: number;
  /** total events applied: a cheap change counter for views */
  version: number;
  /** set in watch mode */
  watch?: WatchView;
  /** what went wrong without stopping the run (a binary cache down or untrusted), in order */
  warnings: string[];
  /** bytes the planned substitutions download */
  downloadBytes: number;
  /** paths pushed to a binary cache (realize --push-to) */
  pushed: number;
}

export function createViewState(o: { jobs?: number } = {}): ViewState {
  return {
    phase: "evaluating",
    targets: [],
    nodes: new Map(),
    order: [],
    roots: [],
    counts: { total: 0, waiting: 0, running: 0, cached: 0, cutoff: 0, substituted: 0, built: 0, failed: 0, cancelled: 0, skipped: 0 },
    completions: [],
    failures: [],
    warnings: [],
    downloadBytes: 0,
    pushed: 0,
    jobs: Math.max(1, o.jobs ?? 1),
    nameWidth: 0,
    version: 0,
  };
}

function setStatus(s: ViewState, n: NodeView, status: NodeStatus, at: number): void {
  if (n.status === status) return;
  // a node reaches one final state; a late event (cancelled build reporting in) does not move it back
  if (DONE_STATUSES.has(n.status)) return;
  s.counts[n.status]--;
  s.counts[status]++;
  n.status = status;
  if (DONE_STATUSES.has(status)) {
    s.completions.push({ drv: n.drv, name: n.name, status, ...(n.ms !== undefined ? { ms: n.ms } : {}), at });
    if (status === "failed") s.failures.push(n.drv);
  }
}

/** A node known only from a later event (no planned event seen): add it so nothing is lost. */
function nodeOf(s: ViewState, ref: { drv: string; name: string }): NodeView {
  let n = s.nodes.get(ref.drv);
  if (!n) {
    n = { drv: ref.drv, name: ref.name, index: s.order.length, plan: "unknown", deps: [], dependents: [], status: "waiting", logTail: [], logLines: 0 };
    s.nodes.set(ref.drv, n);
    s.order.push(ref.drv);
    s.roots.push(ref.drv);
    s.counts.total++;
    s.counts.waiting++;
    s.nameWidth = Math.max(s.nameWidth, ref.name.length);
  }
  return n;
}

/** Why a node was skipped: the input that did not come and, when that was skipped too, the failure behind it. */
export function skipReason(e: Extract<KilnEvent, { type: "skipped" }>): string {
  return e.failed.drv === e.because.drv ? `input ${e.because.name} failed` : `input ${e.because.name} was skipped (${e.failed.name} failed)`;
}

/** Fold one event into the state. `now`: when it was seen. */
export function applyEvent(s: ViewState, e: KilnEvent, now: number): ViewState {
  s.version++;
  s.firstEventAt ??= now;
  switch (e.type) {
    case "evaluated":
      s.targets = e.targets;
      s.evaluated = { derivations: e.derivations, ms: e.ms };
      break;
    case "planned": {
      s.phase = "building";
      s.plannedAt = now;
      for (const p of e.nodes) {
        const n = nodeOf(s, p);
        n.plan = p.state;
        n.deps = p.deps ?? [];
        if (p.estimateMs !== undefined) n.estimateMs = p.estimateMs;
        if (p.downloadBytes !== undefined) {
          n.downloadBytes = p.downloadBytes;
          s.downloadBytes += p.downloadBytes;
        }
      }
      for (const p of e.nodes) for (const d of p.deps ?? []) s.nodes.get(d)?.dependents.push(p.drv);
      s.roots = s.order.filter((h) => s.nodes.get(h)!.dependents.length === 0);
      break;
    }
    case "waiting": {
      const n = nodeOf(s, e.node);
      n.reason = e.reason;
      break;
    }
    case "started": {
      const n = nodeOf(s, e.node);
      n.kind = e.kind;
      n.resolved = e.resolved;
      n.startedAt = now;
      n.reason = undefined;
      setStatus(s, n, "running", now);
      break;
    }
    case "log": {
      const n = nodeOf(s, e.node);
      n.logLines++;
      n.logTail.push(e.line);
      if (n.logTail.length > LOG_TAIL_LINES) n.logTail.splice(0, n.logTail.length - LOG_TAIL_LINES);
      break;
    }
    case "cached": {
      const n = nodeOf(s, e.node);
      setStatus(s, n, e.cutoff ? "cutoff" : "cached", now);
      break;
    }
    case "substituted": {
      const n = nodeOf(s, e.node);
      n.reason = `from ${e.from}`;
      setStatus(s, n, "substituted", now);
      break;
    }
    case "built": {
      const n = nodeOf(s, e.node);
      n.ms = e.ms;
      n.identical = e.identical;
      setStatus(s, n, "built", now);
      break;
    }
    case "failed": {
      const n = nodeOf(s, e.node);
      n.reason = e.message;
      if (n.startedAt !== undefined) n.ms = now - n.startedAt;
      if (e.logFile) n.logFile = e.logFile;
      // the failure's own tail is authoritative (the build may not have streamed every line)
      if (e.logTail.length) n.logTail = e.logTail.slice(-LOG_TAIL_LINES);
      setStatus(s, n, "failed", now);
      break;
    }
    case "skipped": {
      const n = nodeOf(s, e.node);
      n.reason = skipReason(e);
      setStatus(s, n, "skipped", now);
      break;
    }
    case "cancelled": {
      const n = nodeOf(s, e.node);
      if (n.startedAt !== undefined) n.ms = now - n.startedAt;
      setStatus(s, n, "cancelled", now);
      break;
    }
    case "checking": {
      const n = nodeOf(s, e.node);
      n.checked = undefined;
      break;
    }
    case "checked": {
      const n = nodeOf(s, e.node);
      n.checked = { identical: e.identical, differences: e.differences };
      break;
    }
    case "finished":
      s.phase = "finished";
      s.finished = { built: e.built, cached: e.cached, substituted: e.substituted ?? 0, failed: e.failed, cancelled: e.cancelled ?? s.counts.cancelled, skipped: e.skipped ?? s.counts.skipped, ms: e.ms, at: now };
      break;
    case "forgotten":
      // each node built again says why on its row ("output no longer in the store")
      break;
    case "round": {
      // a new round: a fresh graph (the targets stay: a watch keeps its targets)
      const { targets, jobs, version } = s;
      for (const k of Object.keys(s) as Array<keyof ViewState>) delete (s as Partial<ViewState>)[k];
      Object.assign(s, createViewState({ jobs }), { targets, version, firstEventAt: now });
      s.watch = { round: e.round, changed: e.changed, status: "running", outputs: [] };
      break;
    }
    case "watching":
      s.watch = {
        round: e.round, changed: s.watch?.changed ?? [], status: "idle", files: e.files, outputs: e.outputs,
        ...(e.error ? { error: e.error } : {}),
      };
      break;
    case "warning":
      s.warnings.push(e.message);
      break;
    case "pushed":
      s.pushed++;
      break;
    case "dispatched":
      nodeOf(s, e.node).machine = e.machine;
      break;
    default: {
      const never: never = e;
      void never;
    }
  }
  return s;
}

/** Fold a whole event list (with the time each was seen) from a fresh state. */
export function reduce(events: Array<{ event: KilnEvent; at: number }>, o: { jobs?: number } = {}): ViewState {
  const s = createViewState(o);
  for (const { event, at } of events) applyEvent(s, event, at);
  return s;
}

export const isDone = (n: NodeView): boolean => DONE_STATUSES.has(n.status);

/** How long a node has taken so far, or took. */
export function elapsedOf(n: NodeView, now: number): number | undefined {
  if (n.ms !== undefined) return n.ms;
  if (n.status === "running" && n.startedAt !== undefined) return Math.max(0, now - n.startedAt);
  return undefined;
}

/** Work still ahead for one node by its estimate; 0 when done or expected from the store. */
function remainingWork(n: NodeView, now: number): number {
  if (isDone(n) || n.plan === "cached") return 0;
  const est = n.estimateMs ?? 0;
  if (n.status === "running" && n.startedAt !== undefined) return Math.max(0, est - (now - n.startedAt));
  return est;
}

export interface CriticalPath {
  /** drv hashes, in build order (first to build first) */
  drvs: string[];
  /** estimated time along it */
  ms: number;
}

/**
 * The longest chain of estimated remaining work through the unfinished part of the graph: what
 * bounds the wall-clock time however many cores there are. Relies on the planned order being
 * dependencies first (as the engine sends it).
 */
export function criticalPath(s: ViewState, now: number): CriticalPath {
  const finish = new Map<string, number>();
  const via = new Map<string, string>();
  let best: string | undefined;
  let bestMs = -1;
  for (const h of s.order) {
    const n = s.nodes.get(h)!;
    if (isDone(n)) continue;
    let start = 0;
    let from: string | undefined;
    for (const d of n.deps) {
      const f = finish.get(d);
      // an input with nothing left to do (e.g. expected from the store) is not on the path
      if (f !== undefined && f > start) {
        start = f;
        from = d;
      }
    }
    const end = start + remainingWork(n, now);
    finish.set(h, end);
    if (from !== undefined) via.set(h, from);
    if (end > bestMs) {
      bestMs = end;
      best = h;
    }
  }
  const drvs: string[] = [];
  // with no estimates at all every chain is as long as any other: there is no critical path
  if (bestMs <= 0) return { drvs, ms: 0 };
  for (let h = best; h !== undefined; h = via.get(h)) drvs.push(h);
  return { drvs: drvs.reverse(), ms: Math.max(0, bestMs) };
}

export interface Progress {
  total: number;
  done: number;
  running: number;
  /** not started yet */
  remaining: number;
  elapsedMs: number;
  /** estimated time to go: the critical path or the work spread over the jobs, whichever is longer */
  etaMs?: number;
  /** nodes still to run that have no recorded duration (the ETA leaves them out) */
  unestimated: number;
}

export function progress(s: ViewState, now: number): Progress {
  const c = s.counts;
  const done = c.cached + c.cutoff + c.substituted + c.built + c.failed + c.cancelled + c.skipped;
  let work = 0;
  let unestimated = 0;
  let toRun = 0;
  for (const n of s.nodes.values()) {
    if (isDone(n) || n.plan === "cached") continue;
    toRun++;
    if (n.estimateMs === undefined) unestimated++;
    work += remainingWork(n, now);
  }
  const elapsedMs = Math.max(0, (s.finished?.at ?? now) - (s.firstEventAt ?? now));
  const p: Progress = { total: c.total, done, running: c.running, remaining: c.waiting, elapsedMs, unestimated };
  if (s.phase === "finished") p.etaMs = 0;
  else if (s.phase === "building" && (toRun === 0 || unestimated < toRun)) {
    p.etaMs = Math.max(criticalPath(s, now).ms, Math.ceil(work / s.jobs));
  }
  return p;
}

export interface TreeRow {
  drv: string;
  depth: number;
  /** has inputs to show */
  hasChildren: boolean;
  expanded: boolean;
  /** shown already higher up: its inputs are not repeated */
  repeat: boolean;
}

/**
 * The graph as a tree from the targets down to their inputs. A node used by several others is
 * expanded at its first place only (later places say so), so the rows stay within the number of
 * edges. `collapsed`: nodes whose inputs are hidden.
 */
export function treeRows(s: ViewState, collapsed: ReadonlySet<string>): TreeRow[] {
  const rows: TreeRow[] = [];
  const shown = new Set<string>();
  // iterative DFS (deep chains must not overflow the stack); children pushed in reverse
  const stack: Array<{ drv: string; depth: number }> = [];
  for (let i = s.roots.length - 1; i >= 0; i--) stack.push({ drv: s.roots[i]!, depth: 0 });
  while (stack.length) {
    const { drv, depth } = stack.pop()!;
    const n = s.nodes.get(drv);
    if (!n) continue;
    const repeat = shown.has(drv);
    const hasChildren = n.deps.length > 0;
    const expanded = hasChildren && !repeat && !collapsed.has(drv);
    rows.push({ drv, depth, hasChildren, expanded, repeat });
    shown.add(drv);
    if (expanded) for (let i = n.deps.length - 1; i >= 0; i--) stack.push({ drv: n.deps[i]!, depth: depth + 1 });
  }
  return rows;
}

/** A short duration: 850ms, 4.2s, 73s, 12.5min. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 600_000) return `${Math.round(ms / 1000)}s`;
  return `${(ms / 60_000).toFixed(1)}min`;
}

export const STATUS_LABEL: Record<NodeStatus, string> = {
  waiting: "waiting",
  running: "running",
  cached: "cached",
  cutoff: "cut off",
  substituted: "fetched",
  built: "built",
  failed: "FAILED",
  cancelled: "cancelled",
  skipped: "skipped",
};
