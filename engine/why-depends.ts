// why-depends: the shortest chain by which `from` depends on `to`, like `nix why-depends`.
// Runtime edges are store references (the refs table, loaded once); build edges are a
// derivation's inputs in the evaluated graph.
import type { StorePathName } from "../store/paths.js";
import type { LocalStore } from "../store/local-store.js";
import type { Node } from "./evaluate.js";

/** Breadth-first search; returns the chain from `from` to the first node `isTarget` accepts. */
export function shortestChain<T>(from: T, next: (n: T) => Iterable<T>, isTarget: (n: T) => boolean): T[] | undefined {
  const prev = new Map<T, T | null>([[from, null]]);
  const queue: T[] = [from];
  for (let i = 0; i < queue.length; i++) {
    const cur = queue[i]!;
    if (isTarget(cur)) {
      const chain: T[] = [];
      for (let c: T | null = cur; c !== null; c = prev.get(c)!) chain.push(c);
      return chain.reverse();
    }
    for (const n of next(cur)) {
      if (prev.has(n)) continue;
      prev.set(n, cur);
      queue.push(n);
    }
  }
  return undefined;
}

/** Runtime: the chain of store references from one path to another. */
export function runtimeChain(store: LocalStore, from: StorePathName, to: StorePathName): StorePathName[] | undefined {
  const closure = [...store.closure([from])];
  const edges = new Map<StorePathName, StorePathName[]>();
  for (const p of closure) edges.set(p, store.pathInfo(p)!.references.filter((r) => r !== p));
  return shortestChain(from, (p) => edges.get(p) ?? [], (p) => p === to);
}

/** Build time: the chain of derivation inputs from one node to a node matching `to`. */
export function buildChain(from: Node, to: (n: Node) => boolean): Node[] | undefined {
  return shortestChain(from, (n) => n.deps, to);
}
