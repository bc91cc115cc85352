// The recipe files an evaluation read (migration 7): what `why` diffs to find the edited line.
// A snapshot names each file by digest; a text is stored once however many snapshots share it.
import { tablesOf, type LocalStore } from "./local-store.js";

export interface RecipeSnapshotRow {
  /** the folder the paths are relative to (the recipe set's, see engine/recipe-snapshot.ts) */
  root: string;
  /** relative path -> blake3 of the file */
  files: Record<string, string>;
}

export function hasRecipeSnapshot(store: LocalStore, id: string): boolean {
  return tablesOf(store).recipeSnapshots.has(id);
}

/** Record a snapshot and the texts of its files that are not stored yet, in one transaction. */
export function saveRecipeSnapshot(store: LocalStore, id: string, snap: RecipeSnapshotRow, texts: Map<string, string>, at: number): void {
  const t = tablesOf(store);
  t.transaction(() => t.recipeSnapshots.put(id, JSON.stringify(snap), texts, at));
}

/** The digests among these that have a stored text. */
export function storedTexts(store: LocalStore, digests: string[]): Set<string> {
  return tablesOf(store).recipeSnapshots.storedTexts(digests);
}

/** A snapshot with the texts of its files (relative path -> text); undefined if not recorded. */
export function loadRecipeSnapshot(store: LocalStore, id: string): { root: string; files: Map<string, string> } | undefined {
  const t = tablesOf(store).recipeSnapshots;
  const json = t.json(id);
  if (json === undefined) return undefined;
  const snap = JSON.parse(json) as RecipeSnapshotRow;
  const files = new Map<string, string>();
  for (const [rel, digest] of Object.entries(snap.files)) {
    const text = t.text(digest);
    if (text !== undefined) files.set(rel, text);
  }
  return { root: snap.root, files };
}
