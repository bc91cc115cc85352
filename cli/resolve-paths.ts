// Turning what a user typed (a store path, a result link, a target) into store path names.
import { existsSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { KilnError } from "../store/errors.js";
import { parseStorePathName, type StorePathName } from "../store/paths.js";
import type { Context } from "../engine/context.js";
import { plan } from "../engine/plan.js";
import { reachable } from "../engine/graph.js";
import { Realizer } from "../engine/realize.js";
import { evaluateTargets } from "../engine/targets.js";
import { recordTargets } from "../engine/history.js";
import { recipesRevision } from "./git.js";

/**
 * `realize`: a target not realized yet is realized first (as nix-build -o does); without it, that
 * is an error whose hint says how. `hint` names the command to suggest.
 */
export async function toStorePaths(
  ctx: Context & { root: string }, entry: string, items: string[], o: { realize?: boolean; hint?: (target: string) => string } = {},
): Promise<StorePathName[]> {
  const out: StorePathName[] = [];
  for (const item of items) {
    const s = storePathOf(ctx.store.storeDir, item);
    if (s) {
      if (!ctx.store.isValid(s)) throw new KilnError("STORE_PATH_INVALID", `${item} is not a valid path in the store ${ctx.root}`, "realize it first");
      out.push(s);
      continue;
    }
    const ev = await evaluateTargets(ctx, entry, join(ctx.root, "eval-cache"), [item]);
    const roots = ev.roots.map((r) => r.node);
    // with the substituters' realisation records, as a realize plans: a store that substituted a
    // target may not hold its build inputs, whose outputs name it
    const p = await plan(ctx.store, reachable(ev.evaluator.graph, roots), ctx.substituters, ctx.signal);
    const missing = ev.roots.filter((r) => p.get(r.node)?.state !== "cached");
    let built: Map<string, Record<string, StorePathName>> | undefined;
    if (missing.length && o.realize) {
      const result = await new Realizer(ctx).realize(ev.evaluator.graph, roots);
      if (result.failed.length) {
        throw new KilnError("BUILD_FAILED", `${item}: ${result.failed.map((f) => f.node.name).join(", ")} failed to build`, "see the log with: kiln log <name>");
      }
      built = result.outputs;
      // a realisation of a target like any other: kiln why explains it later
      recordTargets(ctx.store, ev.roots, result.outputs, recipesRevision(entry), ctx.clock(), ev.snapshot);
    } else if (missing.length) {
      throw new KilnError("STORE_PATH_INVALID", `target ${missing[0]!.target} is not realized in this store`, o.hint?.(item) ?? `run: kiln realize ${item}`, { notRealized: true });
    }
    for (const r of ev.roots) out.push((built?.get(r.node.hash)?.[r.output] ?? p.get(r.node)!.outputs![r.output])!);
  }
  return out;
}

/** The store path an argument names (a path in the store, a link to one, a store path name), if it names one. */
export function storePathOf(storeDir: string, item: string): StorePathName | undefined {
  let s = item;
  if (existsSync(s)) s = realpathSync(s);
  if (s.startsWith(storeDir + "/")) s = s.slice(storeDir.length + 1).split("/")[0]!;
  return parseStorePathName(s) && !s.includes("/") ? (s as StorePathName) : undefined;
}
