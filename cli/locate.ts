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

/** recipes/index.ts in the current directory or the nearest parent that has one. */
export function recipesEntry(args: { recipes?: string }): string {
  if (args.recipes) return resolve(args.recipes);
  if (process.env.KILN_RECIPES) return resolve(process.env.KILN_RECIPES);
  let dir = process.cwd();
  for (;;) {
    const cand = join(dir, "recipes", "index.ts");
    if (existsSync(cand)) return cand;
    const up = dirname(dir);
    if (up === dir) return join(process.cwd(), "recipes", "index.ts");
    dir = up;
  }
}

