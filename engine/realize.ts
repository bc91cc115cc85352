// Realisation: plan, then run the derivation graph in parallel with a job limit.
//
// For each node: wait for its inputs → resolve (inputs replaced by their content-addressed
// paths) → cached if that resolved hash has a realisation (early cutoff when an input was just
// rebuilt and came out identical) → else substituted if a substituter has it (a node the plan
// found substitutable is fetched with its closure, without its inputs) → else take a job
// slot and a per-derivation lock (shared by every kiln process on this store), look again, and
// fetch or build (engine/fetch-step.ts, engine/build-step.ts).
import { setMaxListeners } from "node:events";
import { isKilnError, KilnError } from "../store/errors.js";
import { buildDurations } from "../store/history.js";
import { scratchRemoved } from "../store/scratch.js";
import type { StorePathName } from "../store/paths.js";
import { buildStep } from "./build-step.js";
import type { Context } from "./context.js";
import { resolveDerivation, type DrvHash, type InputRealisation, type ResolvedHash } from "./derivation.js";
import type { NodeRef } from "./events.js";
import type { Graph, Node } from "./evaluate.js";
import { cancelled, fetchStep, mayFetchFirst } from "./fetch-step.js";
import { criticalPathPriorities, nodeRef, reachable } from "./graph.js";
import { assertSealsHold, downloadSizes, fixedInStore, neededNodes, plan, visitsInputs, type Outputs, type PlanEntry } from "./plan.js";
import { JobPool } from "./scheduler.js";
import type { StepEnv, StepOutcome } from "./steps.js";
import { findSubstitute, substituteStep } from "./substitute-step.js";

export type { Outputs };

export interface RealizeResult {
  outputs: Map<DrvHash, Outputs>;
  built: number;
  cached: number;
  substituted: number;
  failed: Array<{ node: NodeRef; error: KilnError }>;
}

/** A node's outcome in this run; cutoff: reused although an input further up was rebuilt in this run. */
type Outcome = StepOutcome & { cutoff?: boolean };

export class Realizer {
  private readonly results = new Map<Node, Promise<Outcome>>();
  private readonly pool: JobPool;
  private readonly stop = new AbortController();
  private readonly signal: AbortSignal;
  private readonly counts = { built: 0, cached: 0, substituted: 0 };
  /** nodes stopped before they finished, and nodes skipped for an input's failure */
  private readonly stopped = { cancelled: 0, skipped: 0 };
  private readonly failed: Array<{ node: NodeRef; error: KilnError }> = [];
  private readonly reported = new WeakSet<KilnError>();
  private readonly hits: Array<{ drv: DrvHash; resolved: ResolvedHash; paths: StorePathName[] }> = [];
  /** paths temp-rooted by this run and valid when rooted: a concurrent gc keeps them (store/gc.ts) */
  private readonly rooted = new Set<StorePathName>();
  /** critical-path length of each node: the order in which waiting jobs get a slot */
  private priority = new Map<Node, number>();
  private planned = new Map<Node, PlanEntry>();

  constructor(private readonly ctx: Context) {
    this.pool = new JobPool(ctx.config.jobs);
    this.signal = AbortSignal.any([ctx.signal, this.stop.signal]);
    // every build, download and cache request in flight listens to it: many at once is normal
    setMaxListeners(0, this.signal);
  }

  async realize(graph: Graph, roots: Node[]): Promise<RealizeResult> {
    const started = this.ctx.clock();
    await this.begin(graph, roots);
    const settled = await Promise.allSettled(roots.map((r) => this.ensure(r)));
    const outputs = new Map<DrvHash, Outputs>();
    for (const [n, pr] of this.results) {
      const r = await pr.catch(() => undefined);
      if (r) outputs.set(n.hash, r.outputs);
    }
    this.ctx.store.recordHits(this.hits.splice(0), this.ctx.clock());
    await scratchRemoved();
    this.ctx.events({ type: "finished", ...this.counts, failed: this.failed.length, ...this.stopped, ms: this.ctx.clock() - started });
    if (this.ctx.signal.aborted) throw new KilnError("CANCELLED", "cancelled; nothing half-built was registered");
    for (const s of settled) if (s.status === "rejected" && !isKilnError(s.reason)) throw s.reason;
    return { outputs, ...this.counts, failed: this.failed };
  }

  /** The steps' view of this run. */
  stepEnv(): StepEnv {
    return {
      ctx: this.ctx,
      protect: (paths) => this.protect(paths),
      log: (n, line) => this.ctx.events({ type: "log", node: nodeRef(n), line }),
      signal: this.signal,
    };
  }

  /** Clean up after dead processes, record the derivations, plan, root what the plan found, announce. */
  private async begin(graph: Graph, roots: Node[]): Promise<void> {
    const store = this.ctx.store;
    store.cleanStaleScratch();
    store.reapInterruptedBuilds(this.ctx.clock());
    const all = reachable(graph, roots);
    store.recordDerivations(all, (n) => JSON.stringify({ drv: n.drv, meta: n.meta }));
    this.planned = await plan(store, all, this.ctx.substituters, this.signal);
    if (this.forgetMissing(all, roots)) this.planned = await plan(store, all, this.ctx.substituters, this.signal);
    assertSealsHold(this.planned);
    const p = this.planned;
    const nodes = neededNodes(all, roots, p);
    refuseForeignSystems(this.ctx, nodes, p);
    const visited = new Set(nodes);
    // root every planned cache hit in one transaction, not one per node; a path collected before
    // this is simply found missing by lookup() and built again
    this.protect(nodes.flatMap((n) => (p.get(n)!.state === "cached" ? Object.values(p.get(n)!.outputs!) : [])));
    // with the edges, so that reporters can draw the graph and its critical path
    const downloads = await downloadSizes(store, nodes, p, this.signal);
    this.ctx.events({
      type: "planned",
      nodes: nodes.map((n) => {
        const download = downloads.get(n);
        return {
          ...nodeRef(n), state: p.get(n)!.state, deps: n.deps.filter((d) => visited.has(d)).map((d) => d.hash),
          ...(download !== undefined ? { downloadBytes: download } : {}), ...(n.sealed ? { sealed: true } : {}),
        };
      }),
    });
    const recorded = buildDurations(store, nodes.filter((n) => p.get(n)!.state !== "cached"));
    this.priority = criticalPathPriorities(nodes, (n) => (p.get(n)!.state === "cached" ? 0 : (recorded.get(n.hash)?.ms ?? 1000)));
  }

  /**
   * The database may say a path is valid that is gone from disk (deleted by hand, a restored
   * backup): a realize must not print it, nor hand it to a build. The paths this run will use as
   * they are (the targets' outputs found in the store, and the closures of what the builds to come
   * take from the store) are looked at on disk; those missing are forgotten, with what refers to
   * them, and the plan is made again. True if any were. One lstat per path of those closures: a
   * no-op realize looks only at its targets' outputs and what they refer to.
   */
  private forgetMissing(all: Node[], roots: Node[]): boolean {
    const p = this.planned;
    const used = new Set<StorePathName>();
    const cached = (n: Node) => (p.get(n)?.state === "cached" ? p.get(n)!.outputs! : undefined);
    for (const r of roots) for (const path of Object.values(cached(r) ?? {})) used.add(path);
    for (const n of neededNodes(all, roots, p)) {
      if (p.get(n)!.state === "cached") continue;
      for (const d of n.deps) for (const o of n.drv.inputDrvs[d.hash] ?? []) if (cached(d)?.[o]) used.add(cached(d)![o]!);
      for (const src of n.sources.keys()) used.add(src);
    }
    const store = this.ctx.store;
    const missing = store.missingOnDisk(store.closure(used));
    if (missing.length === 0) return false;
    const forgotten = store.invalidate(missing);
    this.ctx.events({ type: "forgotten", missing, paths: forgotten });
    return true;
  }

  private ensure(n: Node): Promise<Outcome> {
    let p = this.results.get(n);
    if (!p) {
      // start it in a later microtask: run() asks for its inputs synchronously, and a chain of
      // thousands of derivations would otherwise recurse that deep and overflow the stack
      p = Promise.resolve().then(() => this.run(n)).catch((e: unknown) => {
        // each node settles here once: a cancellation is counted here, failures and skips where they happen
        if (isKilnError(e) && e.code === "CANCELLED") {
          this.stopped.cancelled++;
          this.ctx.events({ type: "cancelled", node: nodeRef(n) });
        }
        return this.fail(n, e);
      });
      this.results.set(n, p);
      p.catch(() => {}); // observed by dependents and realize()
    }
    return p;
  }

  /** One node, start to end: the orchestration. */
  private async run(n: Node): Promise<Outcome> {
    const env = this.stepEnv();
    const planned = this.planned.get(n);
    if (n.drv.fixed) {
      // the plan looked it up already: asked again only if it was missing then
      const planned = this.planned.get(n);
      const have = planned?.state === "cached" ? planned.outputs!.out : fixedInStore(this.ctx.store, n);
      if (have && this.protect([have])) return this.hit(n, n.hash as string as ResolvedHash, { out: have }, false, false);
    }
    if (planned && !visitsInputs(n, this.planned)) {
      // what the plan found in a substituter is fetched with its closure, and what it found in
      // the store is used: their inputs are not needed (see visitsInputs)
      const hash = planned.resolved ?? (n.hash as string as ResolvedHash);
      if (planned.state === "substitutable") return this.substituted(n, hash, planned.substitute!, env);
      if (planned.state === "cached" && !n.drv.fixed && this.protect(Object.values(planned.outputs!))) return this.hit(n, hash, planned.outputs!, false);
    }
    if (n.drv.fixed) {
      // a fixed output with a builder may be found before building its inputs at all
      if (mayFetchFirst(env, n)) {
        const got = await this.slot(n, () => this.timed(n, "fetch", () => fetchStep(env, n, true)));
        if (got) return got;
      }
    }
    const { inputs, anyFresh, asPlanned } = await this.inputs(n);
    const { hash, resolve, fromPlan } = this.resolve(n, inputs, asPlanned);
    const found = (fromPlan?.state === "cached" && this.protect(Object.values(fromPlan.outputs!)) ? fromPlan.outputs : undefined) ?? this.lookup(n, hash);
    if (found) return this.hit(n, hash, found, anyFresh);
    if (!n.drv.fixed) {
      // the plan asked every cache for this very hash already: only a hash it did not know is asked now
      const offer = fromPlan ? fromPlan.substitute : await findSubstitute(this.ctx.substituters, n, hash, this.signal);
      if (offer) return this.substituted(n, hash, offer, env);
    }
    if (this.signal.aborted) throw cancelled(n);
    const key = `build:${hash}`;
    const ref = nodeRef(n);
    for (;;) {
      const done = await this.slot(n, async (): Promise<Outcome | undefined> => {
        if (this.signal.aborted) throw cancelled(n);
        // another kiln process is building it: wait below, with the slot given back to work that can run now
        if (!this.ctx.store.tryLock(key)) return undefined;
        try {
          const again = this.lookup(n, hash);
          if (again) return this.hit(n, hash, again, anyFresh);
          if (n.kind === "fetch") return await this.timed(n, "fetch", async () => (await fetchStep(env, n, false))!);
          return await this.timed(n, "build", (started) => buildStep(env, n, resolve().resolved, hash, inputs, started), hash);
        } finally {
          this.ctx.store.unlock(key);
        }
      });
      if (done) return done;
      // neither a slot nor the lock is held while waiting: a third process is not kept waiting on this one
      await this.ctx.store.lock(key, this.signal, () => this.ctx.events({ type: "waiting", node: ref, reason: "another kiln process is building it" }));
      this.ctx.store.unlock(key);
      // built there, as a rule; if that build failed or was stopped, it is tried here again
      const again = this.lookup(n, hash);
      if (again) return this.hit(n, hash, again, anyFresh);
    }
  }

  /**
   * Run a step in a job slot. Its failure is reported while the slot is still held: without
   * --keep-going, nothing that was waiting for the slot may start once it is given back.
   */
  private slot<T>(n: Node, fn: () => Promise<T>): Promise<T> {
    return this.pool.run(this.priority.get(n), async () => {
      try {
        return await fn();
      } catch (e) {
        this.fail(n, e);
      }
    });
  }

  /**
   * The realised inputs of `n` (a failed input skips it); asPlanned: every input came out where
   * the plan found it.
   */
  private async inputs(n: Node): Promise<{ inputs: InputRealisation[]; anyFresh: boolean; asPlanned: boolean }> {
    const deps = await Promise.allSettled(n.deps.map((d) => this.ensure(d)));
    const inputs: InputRealisation[] = [];
    let anyFresh = false;
    let asPlanned = true;
    for (const [i, d] of n.deps.entries()) {
      const r = deps[i]!;
      if (r.status === "rejected") {
        // an input stopped by the cancellation: so is this node; else name the failure behind the skip
        if (isKilnError(r.reason) && r.reason.code === "CANCELLED") throw cancelled(n);
        const failed: NodeRef = (isKilnError(r.reason) && r.reason.code === "DEPENDENCY_FAILED" && r.reason.context.failed) || nodeRef(d);
        this.stopped.skipped++;
        this.ctx.events({ type: "skipped", node: nodeRef(n), because: nodeRef(d), failed });
        throw new KilnError("DEPENDENCY_FAILED", `${n.name}: input ${d.name} ${failed.drv === d.hash ? "failed" : `was skipped: ${failed.name} failed`}`, undefined,
          { because: d.hash, failed, skipped: true });
      }
      // a cut-off input counts too: the rebuild wave stopped above this node, not at it
      anyFresh ||= r.value.fresh || r.value.cutoff === true;
      const planOfInput = this.planned.get(d)?.outputs;
      for (const o of n.drv.inputDrvs[d.hash] ?? []) {
        const path = r.value.outputs[o]!;
        inputs.push({ drvHash: d.hash, drvName: d.name, output: o, path });
        asPlanned &&= planOfInput?.[o] === path;
      }
    }
    return { inputs, anyFresh, asPlanned };
  }

  /**
   * The resolved hash (a fixed output is keyed by its pinned hash alone, but its builder still
   * needs resolved inputs). When every input came out where the plan found it, so does the
   * node: the plan's entry is used, and the derivation is resolved again only to be built.
   */
  private resolve(n: Node, inputs: InputRealisation[], inputsAsPlanned: boolean) {
    let r: ReturnType<typeof resolveDerivation> | undefined;
    const resolve = () => (r ??= resolveDerivation(n.drv, inputs, n.hash));
    const entry = n.drv.fixed ? undefined : this.planned.get(n);
    const fromPlan = inputsAsPlanned && entry?.resolved !== undefined ? entry : undefined;
    const hash = n.drv.fixed ? (n.hash as string as ResolvedHash) : fromPlan ? fromPlan.resolved! : resolve().hash;
    return { hash, resolve, fromPlan };
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

  /** See StepEnv.protect. */
  private protect(paths: StorePathName[]): boolean {
    const fresh = paths.filter((p) => !this.rooted.has(p));
    if (fresh.length === 0) return true;
    const valid = this.ctx.store.addTempRoots(fresh);
    for (const p of valid) this.rooted.add(p);
    return fresh.every((p) => valid.has(p));
  }

  private hit(n: Node, hash: ResolvedHash, outputs: Outputs, cutoff: boolean, record = true): Outcome {
    // written in one transaction at the end: one commit per cached node would dominate a no-op
    if (record) this.hits.push({ drv: n.hash, resolved: hash, paths: Object.values(outputs) });
    this.counts.cached++;
    this.ctx.events({ type: "cached", node: nodeRef(n), paths: outputs, cutoff });
    return { outputs, fresh: false, cutoff };
  }

  private async substituted(n: Node, hash: ResolvedHash, offer: NonNullable<PlanEntry["substitute"]>, env: StepEnv): Promise<Outcome> {
    const r = await this.slot(n, () => {
      this.ctx.events({ type: "started", node: nodeRef(n), resolved: hash, kind: "substitute" });
      return substituteStep(env, n, hash, offer);
    });
    this.counts.substituted++;
    this.ctx.events({ type: "substituted", node: nodeRef(n), paths: r.outputs, from: offer.from.name });
    return r;
  }

  /** A fetch or a build, between its started and built events. */
  private async timed<T extends StepOutcome | undefined>(n: Node, kind: "build" | "fetch", step: (started: () => void) => Promise<T>, resolved?: ResolvedHash): Promise<T> {
    const t0 = this.ctx.clock();
    const started = () => this.ctx.events({ type: "started", node: nodeRef(n), resolved: resolved ?? n.hash, kind });
    if (kind === "fetch") started();
    const r = await step(started);
    if (!r) return r;
    this.counts.built++;
    this.ctx.events({ type: "built", node: nodeRef(n), paths: r.outputs, ms: this.ctx.clock() - t0, identical: r.identical === true });
    return r;
  }

  /** A node failed (its own failure, not a skip or a cancellation): say so, stop unless --keep-going. */
  private fail(n: Node, thrown: unknown): never {
    // a full disk or a damaged database while working on this node is its failure, named (and
    // thrown on typed: it passes here again from the node's own promise)
    const e = isKilnError(thrown) ? thrown : (this.ctx.store.failure(thrown) ?? thrown);
    if (isKilnError(e) && e.code !== "CANCELLED" && !e.context.skipped && !this.reported.has(e)) {
      this.reported.add(e);
      this.failed.push({ node: nodeRef(n), error: e });
      const logTail = (e.context.logTail as string[] | undefined) ?? [];
      const logFile = e.context.logFile as string | undefined;
      this.ctx.events({ type: "failed", node: nodeRef(n), message: e.describe(), logTail, ...(logFile ? { logFile } : {}) });
      if (!this.ctx.config.keepGoing) this.stop.abort();
    }
    throw e;
  }
}

/**
 * Before anything runs: a derivation that must be built for a system no builder here builds is
 * refused at once (exit 2), naming it, rather than after its inputs were built.
 */
function refuseForeignSystems(ctx: Context, nodes: Node[], p: Map<Node, PlanEntry>): void {
  const systems = ctx.builder.systems;
  const foreign = nodes.filter((n) => n.kind === "build" && !systems.includes(n.drv.system) && (p.get(n)!.state === "build" || p.get(n)!.state === "unknown"));
  if (foreign.length === 0) return;
  const list = foreign.slice(0, 5).map((n) => `${n.name} (${n.drv.system})`).join(", ") + (foreign.length > 5 ? `, and ${foreign.length - 5} more` : "");
  throw new KilnError("SYSTEM_UNSUPPORTED", `this machine builds for ${systems.join(", ")}, and these derivations must be built for another system: ${list}`,
    `build them where a builder for that system is available (a remote builder), or make the recipe cross-compile: keep system ${systems[0]} and name the target platform in the build`,
    { drv: foreign[0]!.hash, system: foreign[0]!.drv.system });
}
