// The plan: before anything runs, which nodes are known to be in the store already, which a
// substituter can provide, which will be fetched or built, and which may still be cut off early
// (their inputs are not realised yet, so their resolved hash is not known).
import type { LocalStore } from "../store/local-store.js";
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
  /** known outputs: in the store (cached) or offered by a substituter (substitutable) */
  outputs?: Outputs;
  /** the resolved derivation hash, when its inputs are known (not for fixed outputs) */
  resolved?: ResolvedHash;
  /** substitutable: who offers it, and what */
  substitute?: { from: Substituter; infos: Record<string, SubstitutableInfo> };
}

/** What a fixed output's content would already be in the store under, if anything. */
export function fixedInStore(store: LocalStore, n: Node): StorePathName | undefined {
  const byKey = store.realisation(n.hash, "out");
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
 * store lacks is asked of the substituters, in order, one query per substituter per wave.
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
  for (const wave of waves) {
    const asked: Array<{ n: Node; hash: ResolvedHash }> = [];
    for (const n of wave) {
      if (n.drv.fixed) {
        const p = fixedInStore(store, n);
        out.set(n, p ? { state: "cached", outputs: { out: p } } : { state: n.kind === "fetch" ? "fetch" : "build" });
        continue;
      }
      const inputs = inputsOf(n, (d) => out.get(d)?.outputs);
      if (!inputs) out.set(n, { state: "unknown" });
      else asked.push({ n, hash: resolveDerivation(n.drv, inputs).hash });
    }
    const found = store.realisations(asked.flatMap(({ n, hash }) => n.drv.outputs.map((o) => [hash, o] as [string, string])));
    let missing: Array<{ n: Node; hash: ResolvedHash }> = [];
    for (const { n, hash } of asked) {
      const outputs = allOutputs(n, (o) => found.get(substitutionKey(hash, o)));
      if (outputs) out.set(n, { state: "cached", outputs, resolved: hash });
      else {
        out.set(n, { state: "build", resolved: hash });
        missing.push({ n, hash });
      }
    }
    for (const sub of substituters) {
      if (missing.length === 0) break;
      const offered = await sub.query(missing.flatMap(({ n, hash }) => n.drv.outputs.map((output) => ({ resolved: hash, output }))), ac);
      const still: typeof missing = [];
      for (const m of missing) {
        const infos: Record<string, SubstitutableInfo> = {};
        const outputs = allOutputs(m.n, (o) => {
          const info = offered.get(substitutionKey(m.hash, o));
          if (info) infos[o] = info;
          return info?.path;
        });
        if (outputs) out.set(m.n, { state: "substitutable", outputs, resolved: m.hash, substitute: { from: sub, infos } });
        else still.push(m);
      }
      missing = still;
    }
  }
  // "unknown" is for what early cutoff may spare; a node changed in its own right will build
  for (const n of certainBuilds(store, nodes.filter((n) => out.get(n)!.state === "unknown"))) out.set(n, { state: "build" });
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
