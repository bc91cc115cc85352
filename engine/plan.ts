// The plan: before anything runs, which nodes are known to be in the store already, which a
// substituter can provide, which will be fetched or built, and which may still be cut off early
// (their inputs are not realised yet, so their resolved hash is not known).
import type { LocalStore } from "../store/local-store.js";
import { sealBroken } from "./api.js";
import type { StorePathName } from "../store/paths.js";
import { outputPathName, resolveDerivation, type InputRealisation, type ResolvedHash } from "./derivation.js";
import type { Node } from "./evaluate.js";
import type { PlanState } from "./events.js";
import { certainBuilds } from "./plan-states.js";
import { substitutionKey, type SubstitutableInfo, type Substituter } from "./substituter.js";

export type Outputs = Record<string, StorePathName>;

export type { PlanState };

export interface PlanEntry {
  state: PlanState;
  /**
   * known outputs: in the store (cached), offered by a substituter (substitutable), or named by a
   * substituter's realisation although it cannot provide them (build or fetch: then the nodes
   * that depend on this one can still be resolved, and perhaps substituted)
   */
  outputs?: Outputs;
  /** the resolved derivation hash, when its inputs are known (not for fixed outputs) */
  resolved?: ResolvedHash;
  /** substitutable: who offers it, and what */
  substitute?: { from: Substituter; infos: Record<string, SubstitutableInfo> };
}

/** The substituters by their priority, lower first; equal ones (and those without) in the order given. */
export async function byPriority(substituters: readonly Substituter[], signal: AbortSignal): Promise<readonly Substituter[]> {
  if (substituters.length < 2) return substituters;
  const prio = await Promise.all(substituters.map((s) => s.priority?.(signal) ?? Promise.resolve(Number.MAX_SAFE_INTEGER)));
  return substituters.map((s, i) => ({ s, p: prio[i]!, i })).sort((a, b) => a.p - b.p || a.i - b.i).map((x) => x.s);
}

/**
 * What a fixed output's content would already be in the store under, if anything. `byKey`: its
 * realisation, when already looked up with others.
 */
export function fixedInStore(store: LocalStore, n: Node, byKey: StorePathName | undefined = store.realisation(n.hash, "out")): StorePathName | undefined {
  if (byKey) return byKey;
  const want = outputPathName(n.name, "out");
  return store.fixedContent(n.drv.fixed!.sha256).find((p) => p.slice(33) === want);
}

/** The input realisations of `n`, given its inputs' outputs; undefined if one is not known. */
export function inputsOf(n: Node, outputsOf: (d: Node) => Outputs | undefined): InputRealisation[] | undefined {
  const inputs: InputRealisation[] = [];
  for (const d of n.deps) {
    const o = outputsOf(d);
    if (!o) return undefined;
    for (const name of n.drv.inputDrvs[d.hash] ?? []) inputs.push({ drvHash: d.hash, drvName: d.name, output: name, path: o[name]! });
  }
  return inputs;
}

/**
 * Plan `nodes` (dependencies first). Waves: a node's wave is one more than its deepest input's, so
 * a wave's nodes depend only on earlier waves; each wave's realisations are looked up in one
 * query (a wide graph is a few waves of thousands; a chain is one node per wave), then what the
 * store lacks is asked of the substituters, in order, one query per substituter per wave. The
 * store's answers come in one read transaction for each run of waves between two such questions.
 */
export async function plan(store: LocalStore, nodes: Node[], substituters: readonly Substituter[] = [], signal?: AbortSignal): Promise<Map<Node, PlanEntry>> {
  const out = new Map<Node, PlanEntry>();
  const waveOf = new Map<Node, number>();
  const waves: Node[][] = [];
  for (const n of nodes) {
    let w = 0;
    for (const d of n.deps) w = Math.max(w, (waveOf.get(d) ?? -1) + 1);
    waveOf.set(n, w);
    (waves[w] ??= []).push(n);
  }
  const ac = signal ?? new AbortController().signal;
  // ranked the first time the store lacks something: a plan the store answers asks no cache
  let ranked: readonly Substituter[] | undefined;
  /** What the store says of a wave's nodes; the nodes it lacks, with their keys. */
  const fromStore = (wave: Node[]): Array<{ n: Node; hash: ResolvedHash }> => {
    const asked: Array<{ n: Node; hash: ResolvedHash }> = [];
    const missing: Array<{ n: Node; hash: ResolvedHash }> = [];
    // fixed outputs by their own hash, the wave's in one query (a seed has hundreds of .debs)
    const fixedFound = store.realisations(wave.filter((n) => n.drv.fixed).map((n) => [n.hash, "out"] as [string, string]));
    for (const n of wave) {
      if (n.drv.fixed) {
        const p = fixedInStore(store, n, fixedFound.get(substitutionKey(n.hash, "out")));
        if (p) out.set(n, { state: "cached", outputs: { out: p } });
        else {
          out.set(n, { state: n.kind === "fetch" ? "fetch" : "build" });
          // a fixed output is keyed by its derivation hash, and a cache may have it
          missing.push({ n, hash: n.hash as string as ResolvedHash });
        }
        continue;
      }
      // a sealed node is looked up under its last resolution: its inputs are not in the graph
      if (n.sealed) {
        asked.push({ n, hash: n.sealed.resolved! });
        continue;
      }
      const inputs = inputsOf(n, (d) => out.get(d)?.outputs);
      if (!inputs) out.set(n, { state: "unknown" });
      else asked.push({ n, hash: resolveDerivation(n.drv, inputs, n.hash).hash });
    }
    const found = store.realisations(asked.flatMap(({ n, hash }) => n.drv.outputs.map((o) => [hash, o] as [string, string])));
    for (const { n, hash } of asked) {
      const outputs = allOutputs(n, (o) => found.get(substitutionKey(hash, o)));
      if (outputs) out.set(n, { state: "cached", outputs, resolved: hash });
      else {
        out.set(n, { state: "build", resolved: hash });
        missing.push({ n, hash });
      }
    }
    return missing;
  };

  /** Ask the substituters, in order, for what the store lacks. */
  const fromSubstituters = async (lacking: Array<{ n: Node; hash: ResolvedHash }>): Promise<void> => {
    ranked ??= await byPriority(substituters, ac);
    let missing = lacking;
    for (const sub of ranked) {
      if (missing.length === 0) break;
      const offered = await sub.query(missing.flatMap(({ n, hash }) => n.drv.outputs.map((output) => ({ resolved: hash, output }))), ac);
      const still: typeof missing = [];
      for (const m of missing) {
        const infos: Record<string, SubstitutableInfo> = {};
        const outputs = allOutputs(m.n, (o) => {
          const r = offered.get(substitutionKey(m.hash, o));
          if (r?.info) infos[o] = r.info;
          return r?.path;
        });
        const entry = out.get(m.n)!;
        const resolved = m.n.drv.fixed ? {} : { resolved: m.hash };
        if (outputs && Object.keys(infos).length === m.n.drv.outputs.length) {
          out.set(m.n, { state: "substitutable", outputs, ...resolved, substitute: { from: sub, infos } });
          continue;
        }
        // known but not offered here: what depends on it can be resolved; another may offer it
        if (outputs && !entry.outputs) out.set(m.n, { ...entry, outputs });
        still.push(m);
      }
      missing = still;
    }
  };

  // the store's answers for as many waves as need no substituter, in one read transaction each
  // run of them; a wave the store lacks something of goes to the substituters before the next
  let next = 0;
  while (next < waves.length) {
    const lacking = store.reading(() => {
      while (next < waves.length) {
        const missing = fromStore(waves[next++]!);
        if (missing.length && substituters.length) return missing;
      }
      return undefined;
    });
    if (lacking) await fromSubstituters(lacking);
  }
  // "unknown" is for what early cutoff may spare; a node changed in its own right will build
  for (const n of certainBuilds(store, nodes.filter((n) => out.get(n)!.state === "unknown"))) out.set(n, { state: "build" });
  return out;
}

/**
 * A sealed node (engine/module-records.ts) cannot be built: its inputs are not in the graph. One
 * the plan did not find in the store (collected, or forgotten as gone from disk, since it was
 * evaluated) breaks the seal: the caller evaluates again without records.
 */
export function assertSealsHold(p: Map<Node, PlanEntry>): void {
  for (const [n, e] of p) if (n.sealed && e.state !== "cached") throw sealBroken(`${n.name} (${n.hash}) is no longer in the store`);
}

/**
 * What substituting each planned node downloads: its outputs' archives and those of their
 * references that the store lacks (asked of the same substituter, which keeps what it learns
 * for the fetch), each path counted once, with the first node that needs it. A substituter
 * that fails to answer leaves the sum at what was known.
 */
export async function downloadSizes(store: LocalStore, nodes: Node[], p: Map<Node, PlanEntry>, signal: AbortSignal): Promise<Map<Node, number>> {
  const counted = new Set<StorePathName>();
  const out = new Map<Node, number>();
  const skip = (path: StorePathName) => counted.has(path) || store.isValid(path);
  for (const n of nodes) {
    const offer = p.get(n)?.substitute;
    if (!offer) continue;
    let bytes = 0;
    let frontier = Object.values(offer.infos);
    while (frontier.length > 0) {
      const next = new Set<StorePathName>();
      for (const i of frontier) {
        if (skip(i.path)) continue;
        counted.add(i.path);
        bytes += i.downloadSize ?? 0;
        for (const r of i.references) if (r !== i.path && !skip(r)) next.add(r);
      }
      try {
        frontier = next.size ? [...(await offer.from.pathInfos([...next], signal)).values()] : [];
      } catch {
        frontier = [];
      }
    }
    out.set(n, bytes);
  }
  return out;
}

function allOutputs(n: Node, find: (output: string) => StorePathName | undefined): Outputs | undefined {
  const outputs: Outputs = {};
  for (const o of n.drv.outputs) {
    const p = find(o);
    if (!p) return undefined;
    outputs[o] = p;
  }
  return outputs;
}

/**
 * Whether realizing `n` visits its inputs. Not for a fixed output in the store (its pinned hash
 * names it: a source tarball in the store does not need the .deb it was unpacked from), nor for
 * what a substituter offers (its closure is fetched, not its build inputs), nor for a node in
 * the store some of whose inputs are not (they would be fetched or built only to find again what
 * the plan found). Other nodes are named by their resolved inputs, so their inputs are visited
 * (and found) even when they are cached.
 */
export function visitsInputs(n: Node, p: Map<Node, { state: PlanState }>): boolean {
  const state = p.get(n)!.state;
  if (state === "substitutable") return false;
  if (state === "cached") return !n.drv.fixed && n.deps.every((d) => p.get(d)?.state === "cached");
  return true;
}

/** The nodes a realize will visit: the roots and the inputs of every visited node that visits them. `nodes` dependencies first. */
export function neededNodes(nodes: Node[], roots: Node[], p: Map<Node, { state: PlanState }>): Node[] {
  const need = new Set<Node>(roots);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!need.has(n) || !visitsInputs(n, p)) continue;
    for (const d of n.deps) need.add(d);
  }
  return nodes.filter((n) => need.has(n));
}
