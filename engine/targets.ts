// From target names to evaluated graph roots: load the recipe set, select, evaluate.
import { join } from "node:path";
import { isSealBroken, sealBreakCount, sealBroken } from "./api.js";
import type { Context } from "./context.js";
import { Evaluator, type Root } from "./evaluate.js";
import { loadRecipeSet, selectTarget, type RecipeSet } from "./loader.js";
import { ModuleRecords } from "./module-records.js";
import { recipeSetRoot, recipeSnapshot } from "./recipe-snapshot.js";

export interface Evaluated {
  set: RecipeSet;
  evaluator: Evaluator;
  roots: Array<Root & { target: string }>;
  /** the recorded snapshot of the recipe files (for why), unless a file changed while loading */
  snapshot?: string;
}

/**
 * Evaluate targets. With `seal`, modules with usable records stand in for their code and the
 * graph's nodes of their derivations are sealed (engine/module-records.ts): only a command that
 * plans and realizes may ask for it, through withSeals, which evaluates again without when a seal
 * does not hold. Either way, the modules that ran are recorded for the next evaluation.
 */
export async function evaluateTargets(ctx: Context, entry: string, cacheDir: string, targets: string[], o: { seal?: boolean } = {}): Promise<Evaluated> {
  const seal = o.seal === true;
  const t0 = ctx.clock();
  const breaks = sealBreakCount();
  const records = new ModuleRecords(join(cacheDir, "modules"), ctx);
  const set = await loadRecipeSet(entry, cacheDir, { records, seal });
  const snap = recipeSnapshot(ctx.store, set, recipeSetRoot(entry), ctx.clock());
  const snapshot = snap?.id;
  const evaluator = new Evaluator(ctx, { recipes: snapshot, ...(seal ? { sealed: (d, s) => records.sealedNode(ctx.store, d, s) } : {}) });
  const roots: Evaluated["roots"] = [];
  for (const t of targets) {
    for (const { name, value } of selectTarget(set, t)) roots.push({ target: name, ...evaluator.evaluate(value) });
  }
  // a seal broken where recipe code caught it, or values a stub gives that a whole evaluation would not
  if (seal && sealBreakCount() !== breaks) throw sealBroken("recipe code caught a broken seal");
  const impure = set.modules.impure();
  if (seal && impure) throw sealBroken(impure);
  snap?.record();
  if (!impure) records.keep(set.modules, set.closureOf, evaluator, set.stubs);
  ctx.fileCache.flush?.();
  ctx.events({ type: "evaluated", targets, derivations: evaluator.graph.nodes.length, ms: ctx.clock() - t0 });
  return { set, evaluator, roots, ...(snapshot ? { snapshot } : {}) };
}

/**
 * Run `work` on a sealed evaluation, and again on a whole one if a seal did not hold: at the
 * evaluation (a record's outputs no longer in the store, recipe code reading more of a sealed
 * value than its record keeps) or by the time it planned (outputs gone from disk meanwhile).
 * `on` false: on a whole one only.
 */
export async function withSeals<T>(on: boolean, work: (seal: boolean) => Promise<T>): Promise<T> {
  if (!on) return work(false);
  try {
    return await work(true);
  } catch (e) {
    if (!isSealBroken(e)) throw e;
  }
  return work(false);
}
