// Turning what a user typed (a store path, a result link, a target) into store path names.
import { existsSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { KilnError } from "../store/errors.js";
import { parseStorePathName, type StorePathName } from "../store/paths.js";
import type { Context } from "../engine/context.js";
import { plan } from "../engine/plan.js";
import { reachable } from "../engine/graph.js";
import { evaluateTargets } from "../engine/targets.js";

export async function toStorePaths(ctx: Context & { root: string }, entry: string, items: string[]): Promise<StorePathName[]> {
  const out: StorePathName[] = [];
  for (const item of items) {
    let s = item;
    if (existsSync(s)) s = realpathSync(s);
    if (s.startsWith(ctx.store.storeDir + "/")) s = s.slice(ctx.store.storeDir.length + 1).split("/")[0]!;
    const parsed = parseStorePathName(s);
    if (parsed && !s.includes("/")) {
      if (!ctx.store.isValid(s as StorePathName)) throw new KilnError("STORE_PATH_INVALID", `${item} is not a valid path in the store ${ctx.root}`, "realize it first");
      out.push(s as StorePathName);
      continue;
    }
    const ev = await evaluateTargets(ctx, entry, join(ctx.root, "eval-cache"), [item]);
    // with the substituters' realisation records, as a realize plans: a store that substituted a
    // target may not hold its build inputs, whose outputs name it
    const p = await plan(ctx.store, reachable(ev.evaluator.graph, ev.roots.map((r) => r.node)), ctx.substituters, ctx.signal);
    for (const r of ev.roots) {
      const e = p.get(r.node);
      const o = e?.state === "cached" ? e.outputs?.[r.output] : undefined;
      if (!o) throw new KilnError("STORE_PATH_INVALID", `target ${r.target} is not realized in this store`, `run: kiln realize ${item}`);
      out.push(o);
    }
  }
  return out;
}
