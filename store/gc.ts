// Garbage collection: mark the closure of every root, delete the rest.
//
// Fast: the whole reference graph is loaded with two queries into flat arrays (CSR) and marked in
// memory; nothing is queried per path. Deletion runs in batches (one transaction per batch, not
// per path).
//
// Safe with concurrent kiln processes. The protocol, and why it holds:
//   1. A realize (or `kiln pin add`) temp-roots a path BEFORE relying on it and checks validity
//      AFTER, in one write transaction (Store.addTempRoots); Store.addOutput roots what it
//      registers inside the registration transaction. Rows carry pid + start time and last until
//      the process ends.
//   2. gc takes the 'gc' lock (one gc at a time), then reads roots, live temp roots and the
//      graph in ONE read transaction (a consistent snapshot) and marks.
//   3. Each deletion batch is one write transaction that first re-reads the temp roots added
//      since it last looked (ids only grow) and root rows that changed since the mark, and keeps
//      their closures. SQLite serialises write transactions, so a realize's root-then-check either
//      commits before a batch (the batch sees the root and keeps the closure) or after it (the
//      path is already invalid, the check says so, and the realize builds or fetches it again).
//   4. Batches delete referrers before references and refs has ON DELETE RESTRICT, so a path
//      that is still valid always has its whole closure valid: rooting a valid path protects its
//      closure too.
//   5. Directories are removed only after their rows are gone, under the per-path lock that
//      Store.addOutput holds while it moves a new output into place; so a concurrent build that
//      produces the same content again is never half-deleted, and a stray is removed only if it
//      is still unregistered under that lock.
// Crash-safe: SIGKILL at any point leaves either valid rows with their directories, or
// directories without rows (strays: `kiln verify` reports them as harmless, the next gc removes
// them). Ctrl-C (the signal) stops after the current batch.
// Only a sound database decides. The mark reads every row of the tables it relies on (a damaged
// page there fails the gc before anything is deleted); strays are removed only after SQLite's
// quick check of the whole database passes (run only when there are strays: it reads every
// page); and a store whose database is lost is not opened at all (store/recovery.ts), so its
// paths are never taken for strays.
import { existsSync, lstatSync, readdirSync, unlinkSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { KilnError } from "./errors.js";
import { HASH_PART_LEN } from "./digest.js";
import { dropStaleLinkRoots, dropStaleTempRoots, listRoots, rootRows, type StaleRoot } from "./roots.js";
import { tablesOf, type LocalStore, type Tables } from "./local-store.js";
import { parseStorePathName, removeTree, type StorePathName } from "./paths.js";

/** The reference graph, indexed densely 0..n-1; references of i are refs[refStart[i] .. refStart[i+1]). */
export interface RefGraph {
  paths: StorePathName[];
  ids: Float64Array;
  size: Float64Array;
  lastUsed: Float64Array;
  refStart: Uint32Array;
  refs: Uint32Array;
  index: Map<string, number>;
}

export interface GraphNode {
  path: string;
  size: number;
  lastUsed: number;
  id?: number;
}

/** Build a graph from nodes and (referrer, reference) index pairs. Pure: for tests and benches too. */
export function graphFromEdges(nodes: GraphNode[], edges: ArrayLike<number>[] | { from: Uint32Array; to: Uint32Array }): RefGraph {
  const n = nodes.length;
  const g: RefGraph = {
    paths: new Array(n),
    ids: new Float64Array(n),
    size: new Float64Array(n),
    lastUsed: new Float64Array(n),
    refStart: new Uint32Array(n + 1),
    refs: new Uint32Array(0),
    index: new Map(),
  };
  for (let i = 0; i < n; i++) {
    const node = nodes[i]!;
    g.paths[i] = node.path as StorePathName;
    g.ids[i] = node.id ?? i;
    g.size[i] = node.size;
    g.lastUsed[i] = node.lastUsed;
    g.index.set(node.path, i);
  }
  const from = "from" in edges ? edges.from : Uint32Array.from(edges as ArrayLike<number>[], (e) => e[0]!);
  const to = "to" in edges ? edges.to : Uint32Array.from(edges as ArrayLike<number>[], (e) => e[1]!);
  fillCsr(g, from, to);
  return g;
}

function fillCsr(g: RefGraph, from: Uint32Array, to: Uint32Array): void {
  const n = g.paths.length;
  const count = new Uint32Array(n + 1);
  for (let e = 0; e < from.length; e++) count[from[e]! + 1]!++;
  for (let i = 0; i < n; i++) count[i + 1]! += count[i]!;
  g.refStart = count.slice();
  const fill = count.slice(0, n);
  g.refs = new Uint32Array(from.length);
  for (let e = 0; e < from.length; e++) g.refs[fill[from[e]!]!++] = to[e]!;
}

/**
 * The whole graph in two queries. Each column comes back as one JSON array (aggregated in SQLite,
 * parsed by V8): several times faster than 100k row objects crossing into JS one by one.
 */
export function loadGraph(store: LocalStore): RefGraph {
  const { ids, paths, sizes, lastUsed: used, referrers, references } = tablesOf(store).paths.loadAll();
  let maxId = 0;
  for (const id of ids) if (id > maxId) maxId = id;
  const byId = new Int32Array(maxId + 1).fill(-1);
  const nodes: GraphNode[] = ids.map((id, i) => {
    byId[id] = i;
    return { id, path: paths[i]!, size: sizes[i]!, lastUsed: used[i]! };
  });
  const from = new Uint32Array(referrers.length);
  const to = new Uint32Array(referrers.length);
  let m = 0;
  for (let k = 0; k < referrers.length; k++) {
    const ia = byId[referrers[k]!] ?? -1;
    const ib = byId[references[k]!] ?? -1;
    if (ia < 0 || ib < 0) continue; // cannot happen with foreign keys on; never trust it blindly
    from[m] = ia;
    to[m++] = ib;
  }
  return graphFromEdges(nodes, { from: from.subarray(0, m), to: to.subarray(0, m) });
}

/**
 * Mark everything reachable from `roots` along references (and along `extra` edges, e.g. the
 * build-time inputs of a path with --keep-build-deps). Returns 1 for live, 0 for dead.
 */
export function mark(g: RefGraph, roots: Iterable<number>, extra?: (i: number) => readonly number[] | undefined): Uint8Array {
  const live = new Uint8Array(g.paths.length);
  const stack: number[] = [];
  for (const r of roots) stack.push(r);
  while (stack.length) {
    const i = stack.pop()!;
    if (live[i]) continue;
    live[i] = 1;
    for (let e = g.refStart[i]!, end = g.refStart[i + 1]!; e < end; e++) {
      const q = g.refs[e]!;
      if (!live[q]) stack.push(q);
    }
    const more = extra?.(i);
    if (more) for (const q of more) if (!live[q]) stack.push(q);
  }
  return live;
}

export interface OrderOptions {
  /** only paths whose (effective) last use is before this time, ms since the epoch */
  unusedSince?: number;
  /** stop once this many bytes would be freed */
  limitBytes?: number;
}

/**
 * The dead paths to delete, in deletion order: least recently used first, and always every
 * referrer before what it references (so a prefix of the order, where a limit cuts it, can be
 * deleted without breaking a reference).
 *
 * A path's effective last use is the latest last use among itself and the dead paths that
 * reference it: using a path uses its closure, and a path cannot go before its referrers anyway.
 */
export function deletionOrder(g: RefGraph, live: Uint8Array, opts: OrderOptions = {}): number[] {
  const n = g.paths.length;
  const indeg = new Uint32Array(n);
  for (let r = 0; r < n; r++) {
    if (live[r]) continue;
    for (let e = g.refStart[r]!, end = g.refStart[r + 1]!; e < end; e++) {
      const q = g.refs[e]!;
      if (q !== r && !live[q]) indeg[q]!++;
    }
  }
  // Kahn's algorithm over the dead subgraph, referrers first, propagating effective last use
  const eff = Float64Array.from(g.lastUsed);
  const order: number[] = [];
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (!live[i] && indeg[i] === 0) queue.push(i);
  while (queue.length) {
    const r = queue.pop()!;
    order.push(r);
    for (let e = g.refStart[r]!, end = g.refStart[r + 1]!; e < end; e++) {
      const q = g.refs[e]!;
      if (q === r || live[q]) continue;
      if (eff[r]! > eff[q]!) eff[q] = eff[r]!;
      if (--indeg[q]! === 0) queue.push(q);
    }
  }
  // paths on a reference cycle (other than a self-reference) never reach the order: content
  // addressing cannot build one, and if a damaged database has one, keeping them beats guessing
  let cand = opts.unusedSince === undefined ? order : order.filter((i) => eff[i]! < opts.unusedSince!);
  // stable sort: ties keep the topological order, so referrers still come first
  cand = cand.slice().sort((a, b) => eff[a]! - eff[b]!);
  if (opts.limitBytes !== undefined) {
    let freed = 0;
    let k = 0;
    while (k < cand.length && freed < opts.limitBytes) freed += g.size[cand[k++]!]!;
    cand = cand.slice(0, k);
  }
  return cand;
}

export interface GcOptions {
  dryRun?: boolean;
  keepBuildDeps?: boolean;
  /** stop after freeing this many bytes */
  maxFreed?: number;
  /** delete (least recently used first) until the valid paths take at most this many bytes */
  maxSize?: number;
  /** only delete paths unused for at least this many ms */
  olderThan?: number;
  /** roots (by roots-table name) to mark as if they were gone: a dry run of deleting generations */
  ignoreRoots?: ReadonlySet<string>;
  /** the caller holds the gc lock already (takeGcLock), for work it does before the collection */
  lockHeld?: boolean;
  /** ms since the epoch */
  now: () => number;
  batchSize?: number;
  signal?: AbortSignal;
  /** progress; awaited, so a caller may pause the sweep at a phase (fault-injection tests do) */
  onEvent?: (e: GcEvent) => void | Promise<void>;
}

export type GcEvent =
  | { type: "marked"; roots: number; live: number; dead: number; toDelete: number; loadMs: number; markMs: number }
  | { type: "invalidated"; paths: StorePathName[] }
  | { type: "deleted"; paths: Array<{ path: StorePathName; size: number }>; done: number; total: number };

export interface GcResult {
  roots: number;
  staleRoots: StaleRoot[];
  live: number;
  liveBytes: number;
  dead: number;
  deadBytes: number;
  /** deleted (or, in a dry run, to be deleted), in order */
  deleted: Array<{ path: StorePathName; size: number }>;
  freed: number;
  /** paths that became roots while gc ran (or were being registered) and were kept */
  keptDuringSweep: number;
  /** unreachable paths left in place by --max-size, --max-freed or --older-than */
  keptByLimits: { count: number; bytes: number };
  strays: string[];
  /** kiln-hash's caches of trees not hashed for a month, removed (in a dry run, to be removed) */
  treeCaches: number;
  interrupted: boolean;
  /** load: roots + graph; mark: the mark itself; order: choosing and ordering what to delete */
  ms: { load: number; mark: number; order: number; sweep: number };
}

export const GC_LOCK = "gc";

/** Take the store's gc lock, or fail with STORE_LOCKED naming the gc that holds it. */
export function takeGcLock(store: LocalStore): void {
  if (store.tryLock(GC_LOCK)) return;
  const holder = tablesOf(store).locks.holder(GC_LOCK);
  throw new KilnError("STORE_LOCKED", `another kiln gc is running on this store (pid ${holder?.pid ?? "?"})`,
    "wait for it to finish; if that process is gone, run gc again (a dead holder's lock is ignored)");
}

export async function collectGarbage(store: LocalStore, opts: GcOptions): Promise<GcResult> {
  // a real sweep must never take paths that a root row still names
  if (opts.ignoreRoots?.size && !opts.dryRun) throw new Error("collectGarbage: ignoreRoots is for dry runs only");
  const lock = !opts.dryRun && !opts.lockHeld;
  if (lock) takeGcLock(store);
  try {
    return await run(store, opts);
  } finally {
    if (lock) store.unlock(GC_LOCK);
  }
}

async function run(store: LocalStore, opts: GcOptions): Promise<GcResult> {
  const t0 = opts.now();
  // ---- snapshot: roots, temp roots and the graph in one read transaction -------------------
  const snap = tablesOf(store).snapshot(() => {
    const { roots: all, stale } = listRoots(store);
    const roots = opts.ignoreRoots ? all.filter((r) => !opts.ignoreRoots!.has(r.name)) : all;
    const maxTemp = tablesOf(store).tempRoots.maxId();
    const rows = new Map(rootRows(store).map((r) => [r.name, r.path]));
    return { roots, stale, maxTemp, rows, graph: loadGraph(store) };
  });
  const g = snap.graph;
  const t1 = opts.now();

  // ---- mark ----------------------------------------------------------------------------------
  const rootIdx: number[] = [];
  for (const r of snap.roots) {
    const i = g.index.get(r.path);
    if (i !== undefined) rootIdx.push(i);
  }
  const extra = opts.keepBuildDeps ? buildDeps(store, g) : undefined;
  const live = mark(g, rootIdx, extra ? (i) => extra.get(i) : undefined);
  const tMark = opts.now();
  let liveBytes = 0;
  let liveCount = 0;
  let deadBytes = 0;
  for (let i = 0; i < live.length; i++) {
    if (live[i]) {
      liveCount++;
      liveBytes += g.size[i]!;
    } else deadBytes += g.size[i]!;
  }
  const limits: number[] = [];
  if (opts.maxFreed !== undefined) limits.push(opts.maxFreed);
  if (opts.maxSize !== undefined) limits.push(Math.max(0, liveBytes + deadBytes - opts.maxSize));
  const order = deletionOrder(g, live, {
    ...(opts.olderThan !== undefined ? { unusedSince: opts.now() - opts.olderThan } : {}),
    ...(limits.length ? { limitBytes: Math.min(...limits) } : {}),
  });
  const t2 = opts.now();
  await opts.onEvent?.({ type: "marked", roots: snap.roots.length, live: liveCount, dead: g.paths.length - liveCount, toDelete: order.length, loadMs: t1 - t0, markMs: tMark - t1 });

  const result: GcResult = {
    roots: snap.roots.length, staleRoots: snap.stale, live: liveCount, liveBytes, dead: g.paths.length - liveCount, deadBytes,
    deleted: [], freed: 0, keptDuringSweep: 0, keptByLimits: { count: g.paths.length - liveCount - order.length, bytes: deadBytes - order.reduce((s, i) => s + g.size[i]!, 0) },
    strays: [], treeCaches: 0, interrupted: false, ms: { load: t1 - t0, mark: tMark - t1, order: t2 - tMark, sweep: 0 },
  };
  if (opts.dryRun) {
    result.deleted = order.map((i) => ({ path: g.paths[i]!, size: g.size[i]! }));
    result.freed = result.deleted.reduce((s, d) => s + d.size, 0);
    result.strays = findStrays(store, g.index);
    result.treeCaches = store.cleanTreeCaches(opts.now(), true);
    return result;
  }

  // ---- sweep -----------------------------------------------------------------------------------
  dropStaleLinkRoots(store, snap.stale);
  dropStaleTempRoots(store);
  const sweeper = new Sweeper(store, g, live, snap.maxTemp, snap.rows, opts.now);
  const batchSize = Math.max(1, opts.batchSize ?? 500);
  for (let k = 0; k < order.length; k += batchSize) {
    if (opts.signal?.aborted) {
      result.interrupted = true;
      break;
    }
    const { deleted, locks } = sweeper.invalidate(order.slice(k, k + batchSize));
    try {
      await opts.onEvent?.({ type: "invalidated", paths: deleted.map((d) => d.path) });
      removeTrees(deleted.map((d) => store.hostPath(d.path)));
    } finally {
      sweeper.release(locks);
    }
    result.deleted.push(...deleted);
    for (const d of deleted) result.freed += d.size;
    await opts.onEvent?.({ type: "deleted", paths: deleted, done: Math.min(k + batchSize, order.length), total: order.length });
  }
  result.keptDuringSweep = sweeper.keptLate;
  if (!result.interrupted) {
    result.strays = removeStrays(store);
    store.cleanStaleScratch();
    result.treeCaches = store.cleanTreeCaches(opts.now());
  }
  result.ms.sweep = opts.now() - t2;
  return result;
}

/** Batched, protocol-keeping deletion of rows (see the header). */
class Sweeper {
  private readonly keep: Uint8Array;
  private readonly t: Tables;
  keptLate = 0;

  constructor(
    private readonly store: LocalStore,
    private readonly g: RefGraph,
    live: Uint8Array,
    private lastTemp: number,
    private readonly rootsAtMark: Map<string, string>,
    private readonly now: () => number,
  ) {
    this.keep = live.slice();
    this.t = tablesOf(store);
  }

  /** Keep the closure of these paths; paths registered after the snapshot are followed in the DB. */
  private keepClosure(start: Array<string | number>): void {
    const stack = [...start];
    const seen = new Set<string>();
    while (stack.length) {
      const x = stack.pop()!;
      const i = typeof x === "number" ? x : this.g.index.get(x);
      if (i !== undefined) {
        if (this.keep[i]) continue; // kept already implies its closure is kept
        this.keep[i] = 1;
        this.keptLate++;
        for (let e = this.g.refStart[i]!, end = this.g.refStart[i + 1]!; e < end; e++) stack.push(this.g.refs[e]!);
      } else if (typeof x === "string" && !seen.has(x)) {
        seen.add(x);
        for (const r of this.t.paths.referencesOf(x)) stack.push(r);
      }
    }
  }

  /** Roots that appeared since the mark (any temp root, even of a process gone since: conservative). */
  private protectNewRoots(): void {
    const late: string[] = [];
    for (const t of this.t.tempRoots.since(this.lastTemp)) {
      late.push(t.path);
      this.lastTemp = t.id;
    }
    for (const r of rootRows(this.store)) if (this.rootsAtMark.get(r.name) !== r.path) late.push(r.path);
    if (late.length) this.keepClosure(late);
  }

  /** One write transaction: re-check roots, take path locks, delete the rows of what is still dead. */
  invalidate(batch: number[]): { deleted: Array<{ path: StorePathName; size: number }>; locks: string[] } {
    return this.t.transaction(() => {
      this.protectNewRoots();
      const key = (i: number) => `path:${this.g.paths[i]!.slice(0, HASH_PART_LEN)}`;
      // held by a live process: registration is adding this very content right now
      const busy = this.t.locks.busyOf(batch.filter((i) => !this.keep[i]).map(key));
      for (const i of batch) if (!this.keep[i] && busy.has(key(i))) this.keepClosure([i]);
      const doomed = batch.filter((i) => !this.keep[i]);
      const locks = doomed.map(key);
      this.t.locks.takeMany(locks, this.now());
      this.t.paths.deleteIds(doomed.map((i) => this.g.ids[i]!)); // cascades to realisations and fixed_content
      return { deleted: doomed.map((i) => ({ path: this.g.paths[i]!, size: this.g.size[i]! })), locks };
    });
  }

  release(locks: string[]): void {
    this.t.locks.dropMany(locks);
  }
}

/** Build-time inputs of each path: the inputs and sources of the builds that produced it. */
function buildDeps(store: LocalStore, g: RefGraph): Map<number, number[]> {
  const rows = tablesOf(store).builds.builtWithDerivations();
  const out = new Map<number, number[]>();
  for (const r of rows) {
    const deps: number[] = [];
    const add = (p: unknown) => {
      const i = typeof p === "string" ? g.index.get(p) : undefined;
      if (i !== undefined) deps.push(i);
    };
    for (const p of Object.values(JSON.parse(r.inputs) as Record<string, string>)) add(p);
    if (r.json) for (const p of (JSON.parse(r.json) as { drv?: { inputSrcs?: string[] } }).drv?.inputSrcs ?? []) add(p);
    for (const p of Object.values(JSON.parse(r.outputs ?? "{}") as Record<string, string>)) {
      const i = g.index.get(p);
      if (i === undefined) continue;
      const list = out.get(i);
      if (list) list.push(...deps);
      else out.set(i, deps.slice());
    }
  }
  return out;
}

/** Entries of the store directory that are store-path shaped but not registered. */
function findStrays(store: LocalStore, known?: ReadonlyMap<string, number>): string[] {
  // with the graph a gc loaded (known), only the few entries it does not name are looked up:
  // a second copy of 100k path names cost a dry run ~0.2 s
  const valid = known ?? tablesOf(store).paths.names();
  return readdirSync(store.storeDir).filter((e) => !valid.has(e) && parseStorePathName(e) !== undefined && (!known || !store.isValid(e as StorePathName)));
}

/**
 * Remove strays (left by a crash between a gc's invalidation and its removal, or by an
 * interrupted registration). Under the path lock and re-checked: Store.addOutput moves a new
 * output into place before its registration commits, holding that lock.
 */
function removeStrays(store: LocalStore): string[] {
  const removed: string[] = [];
  const strays = findStrays(store);
  if (strays.length) store.assertSound();
  for (const e of strays) {
    const key = `path:${e.slice(0, HASH_PART_LEN)}`;
    if (!store.tryLock(key)) continue;
    try {
      if (store.isValid(e as StorePathName)) continue;
      removeTree(store.hostPath(e as StorePathName));
      removed.push(e);
    } finally {
      store.unlock(key);
    }
  }
  return removed;
}

/**
 * Remove many read-only store paths. Files and symlinks are unlinked in-process (their parent, the
 * store directory, is writable); directories go to one native chmod + rm per 1000 of them: a
 * process start costs far more than removing a small path.
 */
function removeTrees(paths: string[]): void {
  const dirs: string[] = [];
  for (const p of paths) {
    try {
      if (lstatSync(p).isDirectory()) dirs.push(p);
      else unlinkSync(p);
    } catch {
      /* already gone (a stray removed earlier) */
    }
  }
  for (let k = 0; k < dirs.length; k += 1000) {
    const chunk = dirs.slice(k, k + 1000);
    spawnSync("/bin/sh", ["-c", 'chmod -R u+w -- "$@"; rm -rf -- "$@"', "sh", ...chunk], { stdio: "ignore" });
    for (const p of chunk) if (existsSync(p)) removeTree(p); // no coreutils, or a partial failure
  }
}

/** Number of paths and bytes in the closure of `roots` (in the loaded graph). */
export function closureSize(g: RefGraph, roots: Iterable<number>): { paths: number; bytes: number; members: Uint8Array } {
  const members = mark(g, roots);
  let paths = 0;
  let bytes = 0;
  for (let i = 0; i < members.length; i++) {
    if (!members[i]) continue;
    paths++;
    bytes += g.size[i]!;
  }
  return { paths, bytes, members };
}
