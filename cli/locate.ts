// Where the store and the recipe set are, as every command (and the no-op launcher, cli/fast.ts)
// finds them: node built-ins only, so the launcher can load it.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";

export function storeRoot(args: { store?: string }): string {
  if (args.store) return resolve(args.store);
  if (process.env.KILN_STORE) return resolve(process.env.KILN_STORE);
  const data = process.env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(data, "kiln");
}

/** `start` or the nearest directory above it for which `has` is true; undefined when none is. */
export function nearestAbove(start: string, has: (dir: string) => boolean): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    if (has(dir)) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Whether evaluation may use what earlier ones kept: the no-op record (cli/fast.ts) and module
 * records (engine/module-records.ts). `--no-eval-cache` or KILN_EVAL_CACHE=0: evaluate everything.
 */
export function evalCacheOn(args: { "eval-cache"?: boolean }): boolean {
  return args["eval-cache"] !== false && process.env.KILN_EVAL_CACHE !== "0";
}

/** recipes/index.ts in the current directory or the nearest parent that has one. */
export function recipesEntry(args: { recipes?: string }): string {
  if (args.recipes) return resolve(args.recipes);
  if (process.env.KILN_RECIPES) return resolve(process.env.KILN_RECIPES);
  const entry = (dir: string) => join(dir, "recipes", "index.ts");
  return entry(nearestAbove(process.cwd(), (d) => existsSync(entry(d))) ?? process.cwd());
}

