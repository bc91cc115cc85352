// History as data: record which derivation (and output path) each realised target was, and read
// recorded derivations back for 'why' without re-evaluating old recipes.
import { KilnError } from "../store/errors.js";
import {
  collectHistory, recentTargetRealisations, recordedOutputs, recordTargetRealisations, targetRealisations,
  type HistoryGcResult, type RecipesRev, type TargetRealisation,
} from "../store/history.js";
import type { ProfileEntry } from "../store/profiles.js";
import type { LocalStore } from "../store/local-store.js";
import type { Derivation, DerivationMeta } from "./derivation.js";
import type { Node } from "./evaluate.js";
import type { Outputs } from "./realize.js";
import { explain, type Cause, type Realised, type StoredDerivation, type WhyLookup } from "./why.js";

/** Record a realisation row for every root that was realised (failed roots have none). */
export function recordTargets(
  store: LocalStore,
  roots: Array<{ target: string; node: Node; output: string }>,
  outputs: Map<string, Outputs>,
  recipes: RecipesRev | null,
  at: number,
  snapshot?: string,
): void {
  const rows: Array<Omit<TargetRealisation, "id">> = [];
  for (const r of roots) {
    const path = outputs.get(r.node.hash)?.[r.output];
    if (!path) continue;
    rows.push({
      target: r.target, output: r.output, drvHash: r.node.hash,
      resolvedHash: r.node.drv.fixed ? null : (store.resolution(r.node.hash) ?? null), path, recipes, snapshot: snapshot ?? null, at,
    });
  }
  recordTargetRealisations(store, rows);
}

/** Derivations from the store's derivations table (and, first, from a just-evaluated graph). */
export function storeLookup(store: LocalStore, extra?: Map<string, Node>): WhyLookup {
  const memo = new Map<string, StoredDerivation | undefined>();
  const load = (hash: string): StoredDerivation | undefined => {
    if (memo.has(hash)) return memo.get(hash);
    let d: StoredDerivation | undefined;
    const n = extra?.get(hash);
    if (n) d = { drv: n.drv, meta: n.meta };
    else {
      const row = store.derivation(hash);
      if (row) d = JSON.parse(row.json) as { drv: Derivation; meta: DerivationMeta };
    }
    memo.set(hash, d);
    return d;
  };
  const realised = (hash: string): Realised | undefined => {
    const d = load(hash);
    if (!d) return undefined;
    // a fixed output is keyed by its derivation hash; anything else by its latest resolution
    const resolved = d.drv.fixed ? hash : store.resolution(hash);
    if (!resolved) return undefined;
    const outputs: Record<string, string> = {};
    for (const o of d.drv.outputs) {
      const p = store.realisation(resolved, o);
      if (!p) return recorded(d, resolved);
      outputs[o] = p;
    }
    return { resolved, outputs };
  };
  // gc deleted the realisation with its output: what was built is still in the build record, so
  // a collected output never turns "rebuilt, identical" into "unknown"
  const recorded = (d: StoredDerivation, resolved: string): Realised => {
    const outs = recordedOutputs(store, resolved);
    if (!outs || !d.drv.outputs.every((o) => outs[o] !== undefined)) return { resolved };
    return { resolved, outputs: Object.fromEntries(d.drv.outputs.map((o) => [o, outs[o]!])) };
  };
  const known = new Map<string, string>();
  const name = (hash: string): string | undefined => memo.get(hash)?.drv.name ?? extra?.get(hash)?.name ?? known.get(hash) ?? store.derivationName(hash);
  const names = (hashes: readonly string[]): void => {
    const ask = hashes.filter((h) => !memo.has(h) && !extra?.has(h) && !known.has(h));
    if (ask.length > 1) for (const [h, n] of store.derivationNames(ask)) known.set(h, n);
  };
  return { load, realised, name, names };
}

/**
 * The resolved derivation hashes `why` looks up for these realisations: the latest resolution of
 * every derivation in their recorded trees (a fixed output is keyed by its derivation hash).
 */
export function resolvedInTrees(store: LocalStore, rows: TargetRealisation[]): Set<string> {
  const lookup = storeLookup(store);
  const seen = new Set<string>();
  const out = new Set<string>();
  const stack = rows.map((r) => r.drvHash);
  while (stack.length) {
    const h = stack.pop()!;
    if (seen.has(h)) continue;
    seen.add(h);
    const d = lookup.load(h);
    if (!d) continue;
    const resolved = d.drv.fixed ? h : store.resolution(h);
    if (resolved) out.add(resolved);
    stack.push(...Object.keys(d.drv.inputDrvs));
  }
  return out;
}

/** `kiln gc --history-older-than`: history's own policy (see store/history.ts collectHistory). */
export function collectTargetHistory(store: LocalStore, before: number, dryRun = false): HistoryGcResult {
  return collectHistory(store, { before, dryRun, keepResolved: (kept) => resolvedInTrees(store, kept) });
}

/** The derivation hashes a name had in recorded target trees, newest first (distinct). */
export function hashesOfName(store: LocalStore, lookup: WhyLookup, name: string, scan: number): Array<{ drvHash: string; row: TargetRealisation }> {
  const out: Array<{ drvHash: string; row: TargetRealisation }> = [];
  const seen = new Set<string>();
  for (const row of recentTargetRealisations(store, scan)) {
    // breadth-first through the recorded tree of this realisation
    const visited = new Set<string>();
    const queue = [row.drvHash];
    while (queue.length) {
      const h = queue.shift()!;
      if (visited.has(h)) continue;
      visited.add(h);
      const d = lookup.load(h);
      if (!d) continue;
      if (d.drv.name === name) {
        if (!seen.has(h)) {
          seen.add(h);
          out.push({ drvHash: h, row });
        }
        break;
      }
      queue.push(...Object.keys(d.drv.inputDrvs));
    }
  }
  return out;
}

export interface Comparison {
  target: string;
  old: { drvHash: string; row?: TargetRealisation };
  new: { drvHash: string; row?: TargetRealisation };
}

export type AgainstSpec = { kind: "previous" } | { kind: "drv"; hash: string } | { kind: "rev"; revs: string[] };

/**
 * Pick the two derivations to compare for `target`: its latest realisation, and the one before
 * it whose derivation differs (a no-op realize in between explains nothing), or a given one.
 * A name that was never realised as a target is looked up inside recorded target trees.
 */
export function pickComparison(store: LocalStore, lookup: WhyLookup, target: string, against: AgainstSpec): Comparison {
  let history: Array<{ drvHash: string; row: TargetRealisation }> = targetRealisations(store, target).map((row) => ({ drvHash: row.drvHash, row }));
  if (history.length === 0) history = hashesOfName(store, lookup, target, 200);
  if (history.length === 0) {
    throw new KilnError("TARGET_NOT_FOUND", `no realisation of ${target} is recorded in this store`, `realize it first (kiln realize ${target}); why compares realisations`);
  }
  const latest = history[0]!;
  switch (against.kind) {
    case "drv": {
      const full = /^[0-9a-f]{64}$/.test(against.hash) ? against.hash : history.find((h) => h.drvHash.startsWith(against.hash))?.drvHash;
      if (!full || !lookup.load(full)) {
        throw new KilnError("USAGE", `no derivation ${against.hash} is recorded in this store`, "give a full derivation hash from `kiln show-derivation` or history");
      }
      return { target, old: { drvHash: full }, new: latest };
    }
    case "rev": {
      const old = history.find((h) => h.row.recipes && against.revs.some((r) => h.row.recipes!.rev.startsWith(r)));
      if (!old) {
        throw new KilnError("USAGE", `no realisation of ${target} was recorded at recipe revision ${against.revs[0]}`,
          "realize the target while that revision is checked out, or compare with --against <drv-hash>");
      }
      return { target, old, new: latest };
    }
    case "previous": {
      const old = history.find((h) => h.drvHash !== latest.drvHash);
      return { target, old: old ?? latest, new: latest };
    }
  }
}

/** How one target's link differs between two generations of a profile. */
export interface EntryChange {
  name: string;
  change: "added" | "removed" | "changed";
  old?: { drv: string; path: string };
  new?: { drv: string; path: string };
  /** for a changed link: how many derivations differ in the recorded trees, and the root causes */
  derivations?: number;
  causes?: Cause[];
}

/** What changed from one generation's links to the next's (unchanged links are left out). */
export function diffGenerations(prev: ProfileEntry[], cur: ProfileEntry[], lookup: WhyLookup): EntryChange[] {
  const before = new Map(prev.map((e) => [e.name, e]));
  const after = new Map(cur.map((e) => [e.name, e]));
  const out: EntryChange[] = [];
  for (const name of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const o = before.get(name);
    const n = after.get(name);
    if (!o) out.push({ name, change: "added", new: { drv: n!.drv, path: n!.path } });
    else if (!n) out.push({ name, change: "removed", old: { drv: o.drv, path: o.path } });
    else if (o.path !== n.path || o.drv !== n.drv) {
      const r = explain(o.drv, n.drv, lookup);
      out.push({ name, change: "changed", old: { drv: o.drv, path: o.path }, new: { drv: n.drv, path: n.path }, derivations: r.changed, causes: r.causes.map((c) => c.cause) });
    }
  }
  return out;
}
