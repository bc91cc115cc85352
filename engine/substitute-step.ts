// Substituting a node: each output fetched from the substituter that offered it and imported by
// the store, which re-hashes it (store/registration.ts importPath); its realisation recorded in
// the same transaction.
import { join } from "node:path";
import { removeTree } from "../store/paths.js";
import type { ResolvedHash } from "./derivation.js";
import type { Node } from "./evaluate.js";
import type { Outputs, PlanEntry } from "./plan.js";
import type { StepEnv, StepOutcome } from "./steps.js";
import { substitutionKey, type Substituter } from "./substituter.js";

type Offer = NonNullable<PlanEntry["substitute"]>;

/** Ask the substituters, in order, for every output of `n` under `hash`; the first that has them all. */
export async function findSubstitute(substituters: readonly Substituter[], n: Node, hash: ResolvedHash, signal: AbortSignal): Promise<Offer | undefined> {
  for (const from of substituters) {
    const offered = await from.query(n.drv.outputs.map((output) => ({ resolved: hash, output })), signal);
    const infos: Offer["infos"] = {};
    for (const o of n.drv.outputs) {
      const info = offered.get(substitutionKey(hash, o));
      if (!info) break;
      infos[o] = info;
    }
    if (Object.keys(infos).length === n.drv.outputs.length) return { from, infos };
  }
  return undefined;
}

export async function substituteStep(s: StepEnv, n: Node, hash: ResolvedHash, offer: Offer): Promise<StepOutcome> {
  const store = s.ctx.store;
  const outputs: Outputs = {};
  for (const o of n.drv.outputs) {
    const info = offer.infos[o]!;
    // already here (another output, another process): only the realisation is missing
    if (s.protect([info.path])) {
      store.insertRealisation(hash, o, store.pathId(info.path)!);
      outputs[o] = info.path;
      continue;
    }
    const scratch = store.scratchDir(`substitute-${n.name}`);
    try {
      const tree = join(scratch, info.path);
      s.log(n, `fetching ${info.path} from ${offer.from.name}`);
      await offer.from.fetch(info, tree, s.signal);
      const r = store.importPath(
        { tree, path: info.path, references: info.references, narDigest: info.narDigest, ...(info.ca ? { ca: info.ca } : {}), deriver: n.hash },
        (id) => store.insertRealisation(hash, o, id),
      );
      outputs[o] = r.path;
    } finally {
      removeTree(scratch);
    }
  }
  store.recordResolution(n.hash, hash, s.ctx.clock());
  return { outputs, fresh: false };
}
