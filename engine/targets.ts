// From target names to evaluated graph roots: load the recipe set, select, evaluate.
import type { Context } from "./context.js";
import { Evaluator, type Root } from "./evaluate.js";
import { loadRecipeSet, selectTarget, type RecipeSet } from "./loader.js";
import { recipeSetRoot, recipeSnapshot } from "./recipe-snapshot.js";

export interface Evaluated {
  set: RecipeSet;
  evaluator: Evaluator;
  roots: Array<Root & { target: string }>;
  /** the recorded snapshot of the recipe files (for why), unless a file changed while loading */
  snapshot?: string;
}

export async function evaluateTargets(ctx: Context, entry: string, cacheDir: string, targets: string[]): Promise<Evaluated> {
  const t0 = ctx.clock();
  const set = await loadRecipeSet(entry, cacheDir);
  const snap = recipeSnapshot(ctx.store, set, recipeSetRoot(entry), ctx.clock());
  const snapshot = snap?.id;
  const evaluator = new Evaluator(ctx, { recipes: snapshot });
  const roots: Evaluated["roots"] = [];
  for (const t of targets) {
    for (const { name, value } of selectTarget(set, t)) roots.push({ target: name, ...evaluator.evaluate(value) });
  }
  snap?.record();
  ctx.fileCache.flush?.();
  ctx.events({ type: "evaluated", targets, derivations: evaluator.graph.nodes.length, ms: ctx.clock() - t0 });
  return { set, evaluator, roots, ...(snapshot ? { snapshot } : {}) };
}
