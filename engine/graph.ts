// Graph utilities over evaluated nodes: reachability, node references for events, and the
// critical-path priorities the scheduler orders ready jobs by.
import type { NodeRef } from "./events.js";
import type { StorePathName } from "../store/paths.js";
import type { HostToolFingerprint } from "./derivation.js";
import type { Graph, Node } from "./evaluate.js";

export function nodeRef(n: Node): NodeRef {
  return { drv: n.hash, name: n.name };
}

/** Nodes reachable from the roots, dependencies first. */
export function reachable(graph: Graph, roots: Node[]): Node[] {
  const want = closure(roots);
  return graph.nodes.filter((n) => want.has(n));
}

/** The local sources a node was evaluated from (a sealed node's: everything under it), store path name -> host path. */
export function* sourcesOf(n: Node): Iterable<[StorePathName, string]> {
  yield* n.sources;
  if (n.sealed) yield* n.sealed.sources;
}

/** The host tools a node declares (a sealed node's: everything under it), by the entry declared. */
export function toolsOf(n: Node): Record<string, HostToolFingerprint> {
  return n.sealed ? { ...n.drv.hostTools, ...n.sealed.tools } : n.drv.hostTools;
}

/** The roots and every node under them, in no particular order. */
export function closure(roots: Node[]): Set<Node> {
  const want = new Set<Node>();
  const stack = [...roots];
  while (stack.length) {
    const n = stack.pop()!;
    if (want.has(n)) continue;
    want.add(n);
    stack.push(...n.deps);
  }
  return want;
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
