// Where a recipe set's kiln.lock lives, and computing the lock of the whole recipe set.
import { existsSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { Context } from "../engine/context.js";
import { Evaluator } from "../engine/evaluate.js";
import { allTargetValues, loadRecipeSet } from "../engine/loader.js";
import { computeLock, parseLock, type Lock } from "../engine/lockfile.js";
import { recipeSetRoot } from "../engine/recipe-snapshot.js";

/** In the recipe set's folder: the one above recipes/ for recipes/index.ts, else the entry file's own. */
export function lockPath(entry: string): string {
  return join(recipeSetRoot(entry), "kiln.lock");
}

export async function lockOfRecipeSet(ctx: Context & { root: string }, entry: string): Promise<Lock> {
  const set = await loadRecipeSet(entry, join(ctx.root, "eval-cache"));
  const ev = new Evaluator(ctx);
  for (const v of allTargetValues(set)) ev.evaluate(v);
  ctx.fileCache.flush?.();
  const root = recipeSetRoot(entry);
  return computeLock(relative(root, entry), ev.graph.nodes, root);
}

export function readLock(file: string): Lock | undefined {
  return existsSync(file) ? parseLock(readFileSync(file, "utf8"), file) : undefined;
}
