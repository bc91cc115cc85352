// Where a recipe set's kiln.lock lives, and computing the lock of the whole recipe set.
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import type { Context } from "../engine/context.js";
import { Evaluator } from "../engine/evaluate.js";
import { allTargetValues, loadRecipeSet } from "../engine/loader.js";
import { computeLock, parseLock, type Lock } from "../engine/lockfile.js";

/** recipes/index.ts -> the folder above recipes/; any other entry file -> its own folder. */
export function lockPath(entry: string): string {
  const dir = dirname(entry);
  return join(basename(dir) === "recipes" ? dirname(dir) : dir, "kiln.lock");
}

export async function lockOfRecipeSet(ctx: Context & { root: string }, entry: string): Promise<Lock> {
  const set = await loadRecipeSet(entry, join(ctx.root, "eval-cache"));
  const ev = new Evaluator(ctx);
  for (const v of allTargetValues(set)) ev.evaluate(v);
  ctx.fileCache.flush?.();
  return computeLock(relative(dirname(lockPath(entry)), entry), ev.graph.nodes);
}

export function readLock(file: string): Lock | undefined {
  return existsSync(file) ? parseLock(readFileSync(file, "utf8"), file) : undefined;
}
