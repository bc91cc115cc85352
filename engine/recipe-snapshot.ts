// The recipe files an evaluation read, recorded with the history (store/recipe-snapshots.ts), so
// that `why` can later diff the recipe texts behind two derivations and name the edited line
// (engine/recipe-diff.ts) without git, dirty work trees included. Recording costs one indexed
// lookup when the files did not change: the digests come from the bundle cache's index.
import { readFileSync } from "node:fs";
import { basename, dirname, isAbsolute, relative } from "node:path";
import { blake3Hex } from "../store/digest.js";
import { hasRecipeSnapshot, loadRecipeSnapshot, saveRecipeSnapshot, storedTexts, type RecipeSnapshotRow } from "../store/recipe-snapshots.js";
import type { LocalStore } from "../store/local-store.js";
import { canonicalJson } from "./canonical.js";
import type { RecipeSet } from "./loader.js";

/** The recipe set's folder: the one above recipes/ for recipes/index.ts, else the entry file's own. */
export function recipeSetRoot(entry: string): string {
  const dir = dirname(entry);
  return basename(dir) === "recipes" ? dirname(dir) : dir;
}

/** Recipe texts of one side of a comparison: path relative to `root` -> text. */
export interface RecipeTexts {
  root: string;
  files: Map<string, string>;
}

/** `p` relative to `root` when it lies inside it, else as it is. */
export function underRoot(root: string, p: string): string {
  const r = relative(root, p);
  return r && !r.startsWith("..") && !isAbsolute(r) ? r : p;
}

/**
 * The snapshot of a loaded recipe set: its id, and `record()` to store it once the evaluation
 * succeeded (an evaluation refused leaves the store as it was); undefined when a file changed
 * after it was bundled (the texts would not be what was evaluated).
 */
export function recipeSnapshot(store: LocalStore, set: RecipeSet, root: string, now: number): { id: string; record: () => void } | undefined {
  const files: Record<string, string> = {};
  for (const f of [...set.files].sort()) {
    if (f.includes("/node_modules/")) continue;
    const digest = set.digests[f];
    if (digest) files[underRoot(root, f)] = digest;
  }
  const snap: RecipeSnapshotRow = { root, files };
  const id = blake3Hex(canonicalJson(snap));
  if (hasRecipeSnapshot(store, id)) return { id, record: () => {} };
  const have = storedTexts(store, Object.values(files));
  const texts = new Map<string, string>();
  for (const f of set.files) {
    const digest = set.digests[f];
    if (!digest || have.has(digest) || f.includes("/node_modules/")) continue;
    let bytes: Buffer;
    try {
      bytes = readFileSync(f);
    } catch {
      return undefined;
    }
    if (blake3Hex(bytes) !== digest) return undefined;
    texts.set(digest, bytes.toString("utf8"));
  }
  return { id, record: () => saveRecipeSnapshot(store, id, snap, texts, now) };
}

export function recipeTexts(store: LocalStore, id: string | null | undefined): RecipeTexts | undefined {
  return id ? loadRecipeSnapshot(store, id) : undefined;
}
