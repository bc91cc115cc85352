// Substituting a node: the closure of its outputs that the store lacks is fetched from the
// substituter that offered them (references first, downloads in parallel) and imported by the
// store, which re-hashes every path (store/registration.ts importPath); the node's realisations
// are recorded in the transaction of its outputs' import.
import { join } from "node:path";
import { KilnError } from "../store/errors.js";
import { removeTree, type StorePathName } from "../store/paths.js";
import type { ResolvedHash } from "./derivation.js";
import type { Node } from "./evaluate.js";
import { byPriority, type Outputs, type PlanEntry } from "./plan.js";
import { JobPool } from "./scheduler.js";
import type { StepEnv, StepOutcome } from "./steps.js";
import { substitutionKey, type SubstitutableInfo, type Substituter } from "./substituter.js";

type Offer = NonNullable<PlanEntry["substitute"]>;

/** A download this large says how far it is. */
const PROGRESS_FROM = 8 << 20;

/** Downloads at once within one node's closure (nodes themselves run in parallel job slots). */
const PARALLEL_DOWNLOADS = 4;

/** Ask the substituters, in order, for every output of `n` under `hash`; the first that has them all. */
export async function findSubstitute(substituters: readonly Substituter[], n: Node, hash: ResolvedHash, signal: AbortSignal): Promise<Offer | undefined> {
  for (const from of await byPriority(substituters, signal)) {
    const offered = await from.query(n.drv.outputs.map((output) => ({ resolved: hash, output })), signal);
    const infos: Offer["infos"] = {};
    for (const o of n.drv.outputs) {
      const info = offered.get(substitutionKey(hash, o))?.info;
      if (!info) break;
      infos[o] = info;
    }
    if (Object.keys(infos).length === n.drv.outputs.length) return { from, infos };
  }
  return undefined;
}

export async function substituteStep(s: StepEnv, n: Node, hash: ResolvedHash, offer: Offer): Promise<StepOutcome> {
  const store = s.ctx.store;
  const own = Object.values(offer.infos).filter((i) => !s.protect([i.path]));
  const refs = await missingReferences(s, n, offer.from, own);
  // references first: a path is imported only once everything it references is valid
  const order = [...dependencyOrder(refs), ...own];
  const scratch = store.scratchDir(`substitute-${n.name}`);
  const downloads = new Downloads(s, n, offer.from, scratch);
  const trees = order.map((info) => downloads.start(info));
  try {
    for (const [i, info] of order.entries()) {
      const tree = await trees[i]!;
      if (!own.includes(info)) store.importPath({ tree, path: info.path, references: info.references, narDigest: info.narDigest, ...(info.ca ? { ca: info.ca } : {}) });
    }
    const outputs: Outputs = {};
    for (const o of n.drv.outputs) {
      const info = offer.infos[o]!;
      if (!own.includes(info)) {
        // already here (another output, another process): only the realisation is missing
        store.insertRealisation(hash, o, store.pathId(info.path)!);
      } else {
        const tree = await trees[order.indexOf(info)]!;
        store.importPath(
          { tree, path: info.path, references: info.references, narDigest: info.narDigest, ...(info.ca ? { ca: info.ca } : {}), deriver: n.hash },
          (id) => {
            store.insertRealisation(hash, o, id);
            if (n.drv.fixed) store.insertFixed(n.drv.fixed.sha256, id);
          },
        );
      }
      outputs[o] = info.path;
    }
    store.recordResolution(n.hash, hash, s.ctx.clock());
    return { outputs, fresh: false };
  } finally {
    // a failed import leaves other downloads running: they finish (or fail) before the cleanup
    await Promise.allSettled(trees);
    removeTree(scratch);
  }
}

/** The references of `infos`, and theirs, that the store lacks: asked of the same substituter. */
async function missingReferences(s: StepEnv, n: Node, from: Substituter, infos: SubstitutableInfo[]): Promise<SubstitutableInfo[]> {
  const found = new Map<StorePathName, SubstitutableInfo>();
  const offered = new Set(infos.map((i) => i.path));
  const refsOf = (list: SubstitutableInfo[]) => list.flatMap((i) => i.references.filter((r) => r !== i.path));
  let frontier = refsOf(infos);
  while (frontier.length > 0) {
    const ask = [...new Set(frontier)].filter((p) => !found.has(p) && !offered.has(p) && !s.protect([p]));
    if (ask.length === 0) break;
    const got = await from.pathInfos(ask, s.signal);
    for (const p of ask) {
      const info = got.get(p);
      if (!info) {
        throw new KilnError("CACHE_FAILED", `${from.name} offers ${n.name} but not ${p}, which it references`,
          "push the whole closure to that cache (kiln copy --to pushes closures), or realize without it", { url: from.name });
      }
      found.set(p, info);
    }
    frontier = refsOf(ask.map((p) => found.get(p)!));
  }
  return [...found.values()];
}

/** Paths sorted so that each comes after the paths it references (among those given). */
function dependencyOrder(infos: SubstitutableInfo[]): SubstitutableInfo[] {
  const byPath = new Map(infos.map((i) => [i.path, i]));
  const done = new Set<StorePathName>();
  const out: SubstitutableInfo[] = [];
  const visit = (i: SubstitutableInfo) => {
    if (done.has(i.path)) return;
    done.add(i.path);
    for (const r of i.references) {
      const dep = byPath.get(r);
      if (dep && r !== i.path) visit(dep);
    }
    out.push(i);
  };
  for (const i of [...infos].sort((a, b) => (a.path < b.path ? -1 : 1))) visit(i);
  return out;
}

/** Fetches into the scratch directory, a few at a time; each logged with its size. */
class Downloads {
  private readonly pool = new JobPool(PARALLEL_DOWNLOADS);
  constructor(private readonly s: StepEnv, private readonly n: Node, private readonly from: Substituter, private readonly scratch: string) {}

  start(info: SubstitutableInfo): Promise<string> {
    return this.pool.run(0, async () => {
      const tree = join(this.scratch, info.path);
      const t0 = this.s.ctx.clock();
      const size = info.downloadSize !== undefined ? ` (${mib(info.downloadSize)} to download)` : "";
      this.s.log(this.n, `fetching ${info.path} from ${this.from.name}${size}`);
      // progress in the node's log (the live view shows its tail): at each quarter of a large download
      const total = info.downloadSize ?? 0;
      let shown = 0;
      const progress = total >= PROGRESS_FROM
        ? (bytes: number) => {
          const quarter = Math.floor((bytes / total) * 4);
          if (quarter > shown && quarter < 4) this.s.log(this.n, `fetching ${info.path}: ${mib((shown = quarter) * (total / 4))} of ${mib(total)}`);
        }
        : undefined;
      await this.from.fetch(info, tree, this.s.signal, progress);
      this.s.log(this.n, `fetched ${info.path}: ${mib(info.narSize)} in ${((this.s.ctx.clock() - t0) / 1000).toFixed(1)}s`);
      return tree;
    });
  }
}

const mib = (bytes: number) => `${(bytes / (1 << 20)).toFixed(1)} MiB`;
