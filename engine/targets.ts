// From target names to evaluated graph roots: load the recipe set, select, evaluate.
import type { Context } from "./context.js";
import { Evaluator, type Root } from "./evaluate.js";
import { loadRecipeSet, selectTarget, type RecipeSet } from "./loader.js";

export interface Evaluated {
  set: RecipeSet;
  evaluator: Evaluator;
  roots: Array<Root & { target: string }>;
}

export async function evaluateTargets(ctx: Context, entry: string, cacheDir: string, targets: string[]): Promise<Evaluated> {
  const t0 = ctx.clock();
  const set = await loadRecipeSet(entry, cacheDir);
  const evaluator = new Evaluator(ctx);
  const roots: Evaluated["roots"] = [];
  for (const t of targets) {
    for (const { name, value } of selectTarget(set, t)) roots.push({ target: name, ...evaluator.evaluate(value) });
  }
  ctx.fileCache.flush?.();
  ctx.events({ type: "evaluated", targets, derivations: evaluator.graph.nodes.length, ms: ctx.clock() - t0 });
  return { set, evaluator, roots };
}
