// Realisation: plan, then run the derivation graph in parallel with a job limit.
//
// For each node: wait for its inputs → resolve (inputs replaced by their content-addressed
// paths) → cached if that resolved hash has a realisation (early cutoff when an input was just
// rebuilt and came out identical) → otherwise take a job slot and a per-derivation lock (shared
// by every kiln process on this store), check again, build in the sandbox, register.
import { copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, renameSync } from "node:fs";
import { join, relative } from "node:path";
import { hashTree, walkTree } from "../store/archive.js";
import { sha256File } from "../store/digest.js";
import { KilnError, isKilnError } from "../store/errors.js";
import { buildDurations } from "../store/history.js";
import { removeTree, Store, type StorePathName } from "../store/store.js";
import type { Context } from "./context.js";
import { outputPathName, replaceAll, resolveDerivation, scratchHash, outputPlaceholder, type DrvHash, type InputRealisation, type ResolvedHash } from "./derivation.js";
import type { NodeRef } from "./events.js";
import type { Graph, Node } from "./evaluate.js";
import { fetchFixed } from "./fetch.js";
import { certainBuilds } from "./plan-states.js";
import { checkSandbox, runSandboxed } from "./sandbox.js";
import { LOGICAL_STORE } from "../store/store.js";

export type Outputs = Record<string, StorePathName>;

export interface CheckResult {
  node: NodeRef;
  output: string;
  path: StorePathName;
  identical: boolean;
  /** relative paths that differ (or exist on one side only) */
  differences: string[];
  /** where the differing rebuild was kept */
  rebuilt?: string;
}

/** Files that differ between two trees, each hashed with its own self-reference normalised. */
export function diffTrees(a: string, aSelf: string, b: string, bSelf: string): string[] {
  const list = (root: string, self: string) => {
    const m = new Map<string, string>();
    walkTree(root, (p, st) => {
      const rel = relative(root, p) || ".";
      m.set(rel, st.isDirectory() ? "dir" : hashTree(p, { selfHash: self }).digest);
    });
    return m;
  };
  const ma = list(a, aSelf);
  const mb = list(b, bSelf);
  const out = new Set<string>();
  for (const [k, v] of ma) if (mb.get(k) !== v) out.add(k);
  for (const k of mb.keys()) if (!ma.has(k)) out.add(k);
  return [...out].sort();
}

export interface RealizeResult {
  outputs: Map<DrvHash, Outputs>;
  built: number;
  cached: number;
  failed: Array<{ node: NodeRef; error: KilnError }>;
}

/** fresh: built in this run; cutoff: reused although an input further up was rebuilt in this run */
type Outcome = { outputs: Outputs; fresh: boolean; cutoff?: boolean };

/**
 * Job slots handed out by priority (highest first, then first come): the realizer asks with each
 * node's critical-path length, so the longest chain starts first and the short, independent work
 * fills the other slots (HLFET list scheduling, as Bazel and BuildXL order their ready queues).
 */
class Semaphore {
  private free: number;
  private seq = 0;
  /** binary max-heap on (priority, -seq) */
  private readonly heap: Array<{ prio: number; seq: number; wake: () => void }> = [];
  constructor(n: number) {
    this.free = Math.max(1, n);
  }
  private draining = false;
  async acquire(prio = 0): Promise<void> {
    await new Promise<void>((wake) => {
      this.push({ prio, seq: this.seq++, wake });
      // free slots are handed out once the current burst of requests is in (after the pending
      // microtasks), so the first slots go to the longest chains, not to whoever asked first
      if (this.free > 0 && !this.draining) {
        this.draining = true;
        setImmediate(() => {
          this.draining = false;
          for (; this.free > 0 && this.heap.length > 0; this.free--) this.pop()!.wake();
        });
      }
    });
  }
  release(): void {
    const next = this.pop();
    if (next) next.wake();
    else this.free++;
  }
  private before(a: { prio: number; seq: number }, b: { prio: number; seq: number }): boolean {
    return a.prio > b.prio || (a.prio === b.prio && a.seq < b.seq);
  }
  private push(w: { prio: number; seq: number; wake: () => void }): void {
    const h = this.heap;
    h.push(w);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  private pop(): { prio: number; seq: number; wake: () => void } | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Each node's critical-path length: its own expected duration plus the longest chain of
 * dependents above it up to a root. Expected durations come from recorded builds (that
 * derivation's, else the last build of the same name); unknown ones count 1 s; what the plan
 * found in the store counts 0. `nodes` comes dependencies first.
 */
export function criticalPathPriorities(nodes: Node[], expectedMs: (n: Node) => number): Map<Node, number> {
  const dependents = new Map<Node, Node[]>();
  for (const n of nodes) for (const d of n.deps) (dependents.get(d) ?? dependents.set(d, []).get(d)!).push(n);
  const prio = new Map<Node, number>();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    let above = 0;
    for (const up of dependents.get(n) ?? []) above = Math.max(above, prio.get(up) ?? 0);
    prio.set(n, expectedMs(n) + above);
  }
  return prio;
}

export function nodeRef(n: Node): NodeRef {
  return { drv: n.hash, name: n.name };
}

/** Nodes reachable from the roots, dependencies first. */
export function reachable(graph: Graph, roots: Node[]): Node[] {
  const want = new Set<Node>();
  const stack = [...roots];
  while (stack.length) {
    const n = stack.pop()!;
    if (want.has(n)) continue;
    want.add(n);
    stack.push(...n.deps);
  }
  return graph.nodes.filter((n) => want.has(n));
}

/** What a fixed output's content would already be in the store under, if anything. */
function fixedInStore(store: Store, n: Node): StorePathName | undefined {
  const byKey = store.realisation(n.hash, "out");
  if (byKey) return byKey;
  const want = outputPathName(n.name, "out");
  return store.fixedContent(n.drv.fixed!.sha256).find((p) => p.slice(33) === want);
}

export type PlanState = "cached" | "build" | "fetch" | "unknown";

/** Which nodes are known to be in the store already; the rest will be built or may be cut off. */
export function plan(store: Store, nodes: Node[]): Map<Node, { state: PlanState; outputs?: Outputs; resolved?: ResolvedHash }> {
  const out = new Map<Node, { state: PlanState; outputs?: Outputs; resolved?: ResolvedHash }>();
  // Waves: a node's wave is one more than its deepest input's, so a wave's nodes depend only on
  // earlier waves. Each wave's realisations are looked up in one query (a wide graph is a few
  // waves of thousands; a chain is one node per wave).
  const waveOf = new Map<Node, number>();
  const waves: Node[][] = [];
  for (const n of nodes) {
    let w = 0;
    for (const d of n.deps) w = Math.max(w, (waveOf.get(d) ?? -1) + 1);
    waveOf.set(n, w);
    (waves[w] ??= []).push(n);
  }
  for (const wave of waves) {
    const asked: Array<{ n: Node; hash: ResolvedHash }> = [];
    for (const n of wave) {
      if (n.drv.fixed) {
        const p = fixedInStore(store, n);
        out.set(n, p ? { state: "cached", outputs: { out: p } } : { state: n.kind === "fetch" ? "fetch" : "build" });
        continue;
      }
      const inputs: InputRealisation[] = [];
      let known = true;
      for (const d of n.deps) {
        const o = out.get(d)?.outputs;
        if (!o) {
          known = false;
          break;
        }
        for (const name of n.drv.inputDrvs[d.hash] ?? []) inputs.push({ drvHash: d.hash, drvName: d.name, output: name, path: o[name]! });
      }
      if (!known) {
        out.set(n, { state: "unknown" });
        continue;
      }
      asked.push({ n, hash: resolveDerivation(n.drv, inputs).hash });
    }
    const found = store.realisations(asked.flatMap(({ n, hash }) => n.drv.outputs.map((o) => [hash, o] as [string, string])));
    for (const { n, hash } of asked) {
      const outputs: Outputs = {};
      let known = true;
      for (const o of n.drv.outputs) {
        const p = found.get(`${hash}\0${o}`);
        if (!p) {
          known = false;
          break;
        }
        outputs[o] = p;
      }
      out.set(n, known ? { state: "cached", outputs, resolved: hash } : { state: "build", resolved: hash });
    }
  }
  // "unknown" is for what early cutoff may spare; a node changed in its own right will build
  for (const n of certainBuilds(store, nodes.filter((n) => out.get(n)!.state === "unknown"))) out.set(n, { state: "build" });
  return out;
}

/**
 * The nodes a realize will visit: the roots and the inputs of every visited node, except the
 * inputs of a fixed output already in the store (its pinned hash names it; nothing needs to be
 * resolved): a source tarball in the store does not need the .deb it was unpacked from. Other
 * nodes are named by their resolved inputs, so their inputs are visited (and found) even when
 * they are cached. `nodes` dependencies first.
 */
export function neededNodes(nodes: Node[], roots: Node[], p: Map<Node, { state: PlanState }>): Node[] {
  const need = new Set<Node>(roots);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!need.has(n) || (n.drv.fixed && p.get(n)!.state === "cached")) continue;
    for (const d of n.deps) need.add(d);
  }
  return nodes.filter((n) => need.has(n));
}

export class Realizer {
  private readonly results = new Map<Node, Promise<Outcome>>();
  private readonly pool: Semaphore;
  private readonly stop = new AbortController();
  private readonly signal: AbortSignal;
  private built = 0;
  private cached = 0;
  private cancelled = 0;
  private skipped = 0;
  private readonly failed: Array<{ node: NodeRef; error: KilnError }> = [];
  private sandboxChecked = false;
  private readonly hits: Array<{ drv: DrvHash; resolved: ResolvedHash; paths: StorePathName[] }> = [];
  /** paths temp-rooted by this run and valid when rooted: a concurrent gc keeps them (store/gc.ts) */
  private readonly rooted = new Set<StorePathName>();
  /** critical-path length of each node: the order in which waiting jobs get a slot */
  private priority = new Map<Node, number>();
  /** the outputs (rooted above) and resolved hash (unless fixed) the plan found for each node it found cached */
  private readonly plannedOf = new Map<Node, { resolved?: ResolvedHash; outputs: Outputs }>();

  constructor(private readonly ctx: Context) {
    this.pool = new Semaphore(ctx.config.jobs);
    this.signal = AbortSignal.any([ctx.signal, this.stop.signal]);
  }

  async realize(graph: Graph, roots: Node[]): Promise<RealizeResult> {
    const started = this.ctx.clock();
    const store = this.ctx.store;
    store.cleanStaleScratch();
    store.reapInterruptedBuilds(started);
    const all = reachable(graph, roots);
    store.recordDerivations(all, (n) => JSON.stringify({ drv: n.drv, meta: n.meta }));
    const p = plan(store, all);
    const nodes = neededNodes(all, roots, p);
    const visited = new Set(nodes);
    // root every planned cache hit in one transaction, not one per node; a path collected before
    // this is simply found missing by lookup() and built again
    this.protect(nodes.flatMap((n) => Object.values(p.get(n)!.outputs ?? {})));
    // with the edges, so that reporters can draw the graph and its critical path
    this.ctx.events({ type: "planned", nodes: nodes.map((n) => ({ ...nodeRef(n), state: p.get(n)!.state, deps: n.deps.filter((d) => visited.has(d)).map((d) => d.hash) })) });
    const toRun = nodes.filter((n) => p.get(n)!.state !== "cached");
    const recorded = buildDurations(store, toRun);
    this.priority = criticalPathPriorities(nodes, (n) => (p.get(n)!.state === "cached" ? 0 : (recorded.get(n.hash)?.ms ?? 1000)));
    // what the plan found in the store (and rooted above): run() need not ask again
    for (const n of nodes) {
      const s = p.get(n)!;
      if (s.state === "cached" && s.outputs) this.plannedOf.set(n, { resolved: s.resolved, outputs: s.outputs });
    }

    const settled = await Promise.allSettled(roots.map((r) => this.ensure(r)));
    const outputs = new Map<DrvHash, Outputs>();
    for (const [n, pr] of this.results) {
      const r = await pr.catch(() => undefined);
      if (r) outputs.set(n.hash, r.outputs);
    }
    this.ctx.store.recordHits(this.hits.splice(0), this.ctx.clock());
    this.ctx.events({ type: "finished", built: this.built, cached: this.cached, failed: this.failed.length, cancelled: this.cancelled, skipped: this.skipped, ms: this.ctx.clock() - started });
    if (this.ctx.signal.aborted) throw new KilnError("CANCELLED", "cancelled; nothing half-built was registered");
    for (const s of settled) if (s.status === "rejected" && !isKilnError(s.reason)) throw s.reason;
    return { outputs, built: this.built, cached: this.cached, failed: this.failed };
  }

  private ensure(n: Node): Promise<Outcome> {
    let p = this.results.get(n);
    if (!p) {
      // start it in a later microtask: run() asks for its inputs synchronously, and a chain of
      // thousands of derivations would otherwise recurse that deep and overflow the stack
      p = Promise.resolve().then(() => this.run(n)).catch((e: unknown) => {
        // each node settles once: a cancellation is counted here, failures and skips where they happen
        if (isKilnError(e) && e.code === "CANCELLED") {
          this.cancelled++;
          this.ctx.events({ type: "cancelled", node: nodeRef(n) });
        }
        throw e;
      });
      this.results.set(n, p);
      p.catch(() => {}); // observed by dependents and realize()
    }
    return p;
  }

  private fail(n: Node, error: KilnError, logTail: string[] = [], logFile?: string): never {
    this.failed.push({ node: nodeRef(n), error });
    this.ctx.events({ type: "failed", node: nodeRef(n), message: error.describe(), logTail, logFile });
    if (!this.ctx.config.keepGoing) this.stop.abort();
    throw error;
  }

  private async run(n: Node): Promise<Outcome> {
    const store = this.ctx.store;
    const ref = nodeRef(n);
    if (n.drv.fixed) {
      const have = fixedInStore(store, n);
      if (have && this.protect([have])) {
        this.cached++;
        this.ctx.events({ type: "cached", node: ref, paths: { out: have }, cutoff: false });
        return { outputs: { out: have }, fresh: false };
      }
    }

    // a fixed output with a builder may also name places that have its bytes (or a mirror has
    // them): try those before building its inputs at all
    if (n.drv.fixed && n.kind === "build" && ((n.meta.sources?.length ?? 0) > 0 || this.ctx.config.mirrors.length > 0 || store.fixedContent(n.drv.fixed.sha256).length > 0)) {
      await this.pool.acquire(this.priority.get(n));
      try {
        const got = await this.fetchNode(n, true);
        if (got) return got;
      } finally {
        this.pool.release();
      }
    }

    // inputs first; a failed input skips this node
    const deps = await Promise.allSettled(n.deps.map((d) => this.ensure(d)));
    const inputs: InputRealisation[] = [];
    let anyFresh = false;
    const planned = n.drv.fixed ? undefined : this.plannedOf.get(n);
    let asPlanned = planned?.resolved !== undefined;
    for (const [i, d] of n.deps.entries()) {
      const r = deps[i]!;
      if (r.status === "rejected") {
        // an input stopped by the cancellation: so is this node; else name the failure behind the skip
        if (isKilnError(r.reason) && r.reason.code === "CANCELLED") throw new KilnError("CANCELLED", `${n.name}: cancelled`);
        const failed = (isKilnError(r.reason) && (r.reason.context.failed as NodeRef | undefined)) || nodeRef(d);
        this.skipped++;
        this.ctx.events({ type: "skipped", node: ref, because: nodeRef(d), failed });
        throw new KilnError("DEPENDENCY_FAILED", `${n.name}: input ${d.name} ${failed.drv === d.hash ? "failed" : `was skipped: ${failed.name} failed`}`, undefined, { because: d.hash, failed });
      }
      // a cut-off input counts too: the rebuild wave stopped above this node, not at it
      anyFresh ||= r.value.fresh || r.value.cutoff === true;
      const planOfInput = this.plannedOf.get(d);
      for (const o of n.drv.inputDrvs[d.hash] ?? []) {
        const path = r.value.outputs[o]!;
        inputs.push({ drvHash: d.hash, drvName: d.name, output: o, path });
        asPlanned &&= planOfInput?.outputs[o] === path;
      }
    }

    // a fixed output is keyed by its pinned hash alone, but its builder still needs resolved inputs.
    // When every input came out where the plan found it, so do the resolved hash and the outputs:
    // the plan's are used, and the derivation is resolved again only if it must be built after all
    let r: ReturnType<typeof resolveDerivation> | undefined;
    const resolve = () => (r ??= resolveDerivation(n.drv, inputs));
    const hash = n.drv.fixed ? (n.hash as string as ResolvedHash) : asPlanned ? planned!.resolved! : resolve().hash;
    const fromPlan = asPlanned ? planned!.outputs : undefined;
    const cachedOutputs = fromPlan && this.protect(Object.values(fromPlan)) ? fromPlan : this.lookup(n, hash);
    if (cachedOutputs) return this.hit(n, hash, cachedOutputs, anyFresh);

    if (this.signal.aborted) throw new KilnError("CANCELLED", `${n.name}: cancelled`);
    await this.pool.acquire(this.priority.get(n));
    try {
      if (this.signal.aborted) throw new KilnError("CANCELLED", `${n.name}: cancelled`);
      await store.lock(`build:${hash}`, this.signal, () =>
        this.ctx.events({ type: "waiting", node: ref, reason: "another kiln process is building it" }),
      );
      try {
        const again = this.lookup(n, hash);
        if (again) return this.hit(n, hash, again, anyFresh);
        return n.kind === "fetch" ? await this.fetchNode(n) : await this.buildNode(n, resolve().resolved, hash, inputs);
      } finally {
        store.unlock(`build:${hash}`);
      }
    } finally {
      this.pool.release();
    }
  }

  private lookup(n: Node, hash: ResolvedHash): Outputs | undefined {
    if (n.drv.fixed) {
      const p = fixedInStore(this.ctx.store, n);
      return p && this.protect([p]) ? { out: p } : undefined;
    }
    const outputs: Outputs = {};
    for (const o of n.drv.outputs) {
      const p = this.ctx.store.realisation(hash, o);
      if (!p) return undefined;
      outputs[o] = p;
    }
    return this.protect(Object.values(outputs)) ? outputs : undefined;
  }

  /**
   * Temp-root paths before relying on them; false if one was collected before it was rooted.
   * Root-then-check is what makes a concurrent gc safe (the protocol is in store/gc.ts).
   */
  private protect(paths: StorePathName[]): boolean {
    const fresh = paths.filter((p) => !this.rooted.has(p));
    if (fresh.length === 0) return true;
    const valid = this.ctx.store.addTempRoots(fresh);
    for (const p of valid) this.rooted.add(p);
    return fresh.every((p) => valid.has(p));
  }

  private hit(n: Node, hash: ResolvedHash, outputs: Outputs, cutoff: boolean): Outcome {
    // written in one transaction at the end: one commit per cached node would dominate a no-op
    this.hits.push({ drv: n.hash, resolved: hash, paths: Object.values(outputs) });
    this.cached++;
    this.ctx.events({ type: "cached", node: nodeRef(n), paths: outputs, cutoff });
    return { outputs, fresh: false, cutoff };
  }

  /** Copy local sources into the store if they are not there yet; they must still match evaluation. */
  private addSources(n: Node): void {
    const store = this.ctx.store;
    for (const [want, host] of n.sources) {
      if (this.protect([want])) continue;
      const scratch = store.scratchDir("source");
      try {
        const name = want.slice(33);
        const dst = join(scratch, name);
        if (lstatSync(host).isDirectory()) cpSync(host, dst, { recursive: true, verbatimSymlinks: true });
        else copyFileSync(host, dst);
        const { path } = store.addOutput({ scratch: dst, name, candidates: [] }, () => {});
        if (path !== want) {
          throw new KilnError("SOURCE_MISSING", `source ${host} changed while kiln was running (${n.name})`, "run the command again");
        }
      } finally {
        removeTree(scratch);
      }
    }
  }

  /** Fetch a fixed output from its sources; `optional`: a builder can still make it, so a miss is no failure. */
  private async fetchNode(n: Node, optional: true): Promise<Outcome | undefined>;
  private async fetchNode(n: Node, optional?: false): Promise<Outcome>;
  private async fetchNode(n: Node, optional = false): Promise<Outcome | undefined> {
    const store = this.ctx.store;
    const ref = nodeRef(n);
    const scratch = store.scratchDir(`fetch-${n.name}`);
    const started = this.ctx.clock();
    this.ctx.events({ type: "started", node: ref, resolved: n.hash, kind: "fetch" });
    try {
      const existing = store.fixedContent(n.drv.fixed!.sha256).find((p) => this.protect([p]));
      const dir = join(scratch, "fetch");
      mkdirSync(dir, { recursive: true });
      if (existing) {
        // the same bytes are in the store under another name (e.g. added by hand)
        copyFileSync(store.hostPath(existing), join(dir, "out"));
      } else {
        try {
          await fetchFixed({
            name: n.name, sha256: n.drv.fixed!.sha256, sources: n.meta.sources ?? [], mirrors: this.ctx.config.mirrors, dir,
            env: this.ctx.config.fetchEnv, signal: this.signal, onLine: (line) => this.ctx.events({ type: "log", node: ref, line }),
          });
        } catch (e) {
          if (optional && isKilnError(e) && e.code !== "CANCELLED") {
            this.ctx.events({ type: "log", node: ref, line: `not found in its listed sources; building it: ${e.message.split("\n").slice(1).join("; ")}` });
            return undefined;
          }
          // cancelled (Ctrl-C, or another node failed without --keep-going) is not this node failing
          if (isKilnError(e) && e.code !== "CANCELLED") this.fail(n, e);
          throw e;
        }
      }
      const { path, fresh } = store.addOutput(
        { scratch: join(dir, "out"), name: outputPathName(n.name, "out"), candidates: [], ca: `sha256:${n.drv.fixed!.sha256}`, deriver: n.hash },
        (id) => {
          store.insertFixed(n.drv.fixed!.sha256, id);
          store.insertRealisation(n.hash, "out", id);
        },
      );
      this.built++;
      this.ctx.events({ type: "built", node: ref, paths: { out: path }, ms: this.ctx.clock() - started, identical: !fresh });
      return { outputs: { out: path }, fresh: true };
    } finally {
      removeTree(scratch);
    }
  }

  /** Run a node's builder in the sandbox with its outputs at this build's scratch paths. */
  private async runBuilder(n: Node, resolved: typeof n.drv, hash: ResolvedHash, scratch: string, logFile: string) {
    const store = this.ctx.store;
    const ref = nodeRef(n);
    // own outputs: generic placeholders -> this build's scratch paths
    const scratchNames: Record<string, string> = {};
    const map = new Map<string, string>();
    for (const o of n.drv.outputs) {
      scratchNames[o] = `${scratchHash(hash, o)}-${outputPathName(n.name, o)}`;
      map.set(outputPlaceholder(n.name, o), `${LOGICAL_STORE}/${scratchNames[o]}`);
    }
    const env = Object.fromEntries(Object.entries(resolved.env).map(([k, v]) => [k, replaceAll(v, map)]));
    const args = resolved.args.map((a) => replaceAll(a, map));
    const closure = [...store.closure(resolved.inputSrcs as StorePathName[])];
    const tools: Record<string, string> = {};
    for (const fp of Object.values(resolved.hostTools)) Object.assign(tools, fp.commands);

    this.ctx.events({ type: "started", node: ref, resolved: hash, kind: "build" });
    const res = await runSandboxed(this.ctx.config.bwrap, {
      builder: replaceAll(resolved.builder, map), args, env, inputs: closure, tools, network: Boolean(n.drv.fixed),
      scratch, shared: store.processDir(), storeDir: store.storeDir, logFile, buildCores: this.ctx.config.buildCores,
    }, (line) => this.ctx.events({ type: "log", node: ref, line }), this.signal);
    const produced = n.drv.outputs.map((o) => ({ o, host: join(scratch, "store", scratchNames[o]!), selfHash: scratchHash(hash, o) }));
    return { res, produced, closure };
  }

  private ensureSandbox(n: Node): void {
    if (this.sandboxChecked) return;
    try {
      checkSandbox(this.ctx.config.bwrap);
    } catch (e) {
      if (isKilnError(e)) this.fail(n, e);
      throw e;
    }
    this.sandboxChecked = true;
  }

  /**
   * Rebuild already-realised nodes from scratch and compare bit for bit with what the store has.
   * Nothing is registered; a differing rebuild is kept for inspection.
   */
  async check(graph: Graph, roots: Node[], recursive: boolean, keepDir: string): Promise<CheckResult[]> {
    const first = await this.realize(graph, roots);
    if (first.failed.length) {
      throw new KilnError("BUILD_FAILED", `cannot check: ${first.failed.map((f) => f.node.name).join(", ")} failed to build`, "fix the build first");
    }
    const nodes = recursive ? reachable(graph, roots) : roots;
    const results: CheckResult[] = [];
    for (const n of nodes) {
      if (n.kind === "fetch" || n.drv.fixed) continue; // pinned by sha256 already
      const done = await this.ensure(n);
      const inputs: InputRealisation[] = [];
      for (const d of n.deps) {
        const o = (await this.ensure(d)).outputs;
        for (const name of n.drv.inputDrvs[d.hash] ?? []) inputs.push({ drvHash: d.hash, drvName: d.name, output: name, path: o[name]! });
      }
      const { resolved, hash } = resolveDerivation(n.drv, inputs);
      this.ensureSandbox(n);
      const scratch = this.ctx.store.scratchDir(`check-${n.name}`);
      try {
        const logFile = join(scratch, "check.log");
        const { res, produced } = await this.runBuilder(n, resolved, hash, scratch, logFile);
        if (this.signal.aborted) throw new KilnError("CANCELLED", `${n.name}: cancelled`);
        if (res.exitCode !== 0) {
          this.fail(n, new KilnError("BUILD_FAILED", `the check rebuild of ${n.name} failed (exit ${res.exitCode}); the first build succeeded, so the build is not deterministic`, undefined), res.logTail);
        }
        for (const { o, host, selfHash } of produced) {
          const have = done.outputs[o]!;
          const info = this.ctx.store.pathInfo(have)!;
          const again = existsOrLink(host) ? hashTree(host, { selfHash }).digest : "(missing)";
          const r: CheckResult = { node: nodeRef(n), output: o, path: have, identical: again === info.narDigest, differences: [] };
          if (!r.identical) {
            r.differences = diffTrees(this.ctx.store.hostPath(have), have.slice(0, 32), host, selfHash);
            mkdirSync(keepDir, { recursive: true });
            r.rebuilt = join(keepDir, `${have}.check`);
            removeTree(r.rebuilt);
            renameSync(host, r.rebuilt);
          }
          this.ctx.events({ type: "checked", node: nodeRef(n), output: o, identical: r.identical, differences: r.differences });
          results.push(r);
        }
      } finally {
        removeTree(scratch);
      }
    }
    return results;
  }

  private async buildNode(n: Node, resolved: typeof n.drv, hash: ResolvedHash, inputs: InputRealisation[]): Promise<Outcome> {
    const store = this.ctx.store;
    const ref = nodeRef(n);
    this.ensureSandbox(n);
    try {
      this.addSources(n);
    } catch (e) {
      // a source changed or vanished since evaluation: this node failed, say so
      if (isKilnError(e)) this.fail(n, e);
      throw e;
    }

    const scratch = store.scratchDir(n.name);
    const logDir = join(store.logDir, hash.slice(0, 2));
    mkdirSync(logDir, { recursive: true });
    const logFile = join(logDir, `${hash}.log`);
    const started = this.ctx.clock();
    const buildId = store.startBuild({
      drvHash: n.hash, resolvedHash: hash, name: n.name, logFile, startedAt: started,
      inputs: Object.fromEntries(inputs.map((i) => [`${i.drvHash}!${i.output}`, i.path])),
    });
    try {
      const { res, produced, closure } = await this.runBuilder(n, resolved, hash, scratch, logFile);

      if (this.signal.aborted) {
        store.finishBuild(buildId, "cancelled", res.exitCode, this.ctx.clock());
        throw new KilnError("CANCELLED", `${n.name}: cancelled`);
      }
      if (res.exitCode !== 0) {
        store.finishBuild(buildId, "failed", res.exitCode, this.ctx.clock());
        const how = res.signal ? `was killed by ${res.signal}` : `exited with code ${res.exitCode}`;
        this.fail(n, new KilnError("BUILD_FAILED", `builder for ${n.name} ${how}`, `full log: kiln log ${n.name}  (${logFile})`, { drv: n.hash, exitCode: res.exitCode }), res.logTail, logFile);
      }

      const outputs: Outputs = {};
      let fresh = false;
      for (const { o, host } of produced) {
        if (!existsOrLink(host)) {
          store.finishBuild(buildId, "failed", 0, this.ctx.clock());
          this.fail(n, new KilnError("OUTPUT_MISSING", `builder for ${n.name} succeeded but did not create output '${o}' ($${o})`,
            `the build must write its result to the path in $${o}`), res.logTail, logFile);
        }
      }
      if (n.drv.fixed) {
        const { host } = produced[0]!;
        const actual = lstatSync(host).isFile() ? sha256File(host) : "(not a regular file)";
        if (actual !== n.drv.fixed.sha256) {
          store.finishBuild(buildId, "failed", 0, this.ctx.clock());
          this.fail(n, new KilnError("FIXED_OUTPUT_MISMATCH", `fixed output ${n.name}: hash mismatch\n  expected sha256 ${n.drv.fixed.sha256}\n  actual   sha256 ${actual}`,
            "if the new bytes are right, update sha256 in the recipe to the actual hash"), res.logTail, logFile);
        }
      }
      const candidates = closure as StorePathName[];
      for (const [i, { o, host, selfHash }] of produced.entries()) {
        const last = i === produced.length - 1;
        const r = store.addOutput(
          { scratch: host, name: outputPathName(n.name, o), selfHash, candidates, deriver: n.hash,
            ...(n.drv.fixed ? { ca: `sha256:${n.drv.fixed.sha256}` } : {}) },
          (id, path) => {
            if (n.drv.fixed) store.insertFixed(n.drv.fixed.sha256, id);
            if (!last) return;
            // the last output registers the realisations and completes the build record, in its transaction
            const all: Outputs = { ...outputs, [o]: path };
            for (const [name, p] of Object.entries(all)) store.insertRealisation(hash, name, p === path ? id : store.pathId(p)!);
            const now = this.ctx.clock();
            store.completeBuild(buildId, all, now);
            store.recordResolution(n.hash, hash, now);
          },
        );
        outputs[o] = r.path;
        fresh ||= r.fresh;
      }
      this.built++;
      this.ctx.events({ type: "built", node: ref, paths: outputs, ms: this.ctx.clock() - started, identical: !fresh });
      return { outputs, fresh: true };
    } catch (e) {
      if (!isKilnError(e)) store.finishBuild(buildId, "failed", null, this.ctx.clock());
      throw e;
    } finally {
      removeTree(scratch);
    }
  }
}

function existsOrLink(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return existsSync(p);
  }
}
