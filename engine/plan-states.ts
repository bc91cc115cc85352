// Which of the nodes the plan could not resolve will certainly be built. The plan resolves what
// it can from the store; a node above something still to build is "unknown" until its inputs
// exist. But early cutoff can only spare a node whose own description is one already built with
// other inputs: if no earlier build of its name has the same env, script, tools, sources and
// input names (or it was never built at all), no output of its inputs can make it a cache hit.
import { builtVersions } from "../store/history.js";
import type { LocalStore } from "../store/local-store.js";
import type { Node } from "./evaluate.js";
import { differsOnItsOwn, type StoredDerivation } from "./why.js";

/** Earlier versions compared per name: enough to find a reverted edit, bounded for long histories. */
const VERSIONS = 20;

export function certainBuilds(store: LocalStore, unknown: Node[]): Set<Node> {
  const sure = new Set<Node>();
  if (unknown.length === 0) return sure;
  const versions = builtVersions(store, unknown.map((n) => n.name), VERSIONS);
  const loaded = new Map<string, StoredDerivation | undefined>();
  const load = (h: string) => {
    if (!loaded.has(h)) {
      const row = store.derivation(h);
      loaded.set(h, row ? (JSON.parse(row.json) as StoredDerivation) : undefined);
    }
    return loaded.get(h);
  };
  for (const n of unknown) {
    const mine = { drv: n.drv, meta: n.meta };
    const names = new Map(n.deps.map((d) => [d.hash as string, d.name]));
    // an old version's inputs by their names only: a wide node has hundreds
    const nameOf = (h: string) => names.get(h) ?? loaded.get(h)?.drv.name ?? store.derivationName(h) ?? `?${h}`;
    const same = (versions.get(n.name) ?? []).some((h) => {
      const old = load(h);
      return old !== undefined && !differsOnItsOwn(old, mine, nameOf);
    });
    if (!same) sure.add(n);
  }
  return sure;
}
