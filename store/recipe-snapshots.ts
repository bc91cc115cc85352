// The recipe files an evaluation read (migration 7): what `why` diffs to find the edited line.
// A snapshot names each file by digest; a text is stored once however many snapshots share it.
import type { Store } from "./store.js";

export interface RecipeSnapshotRow {
  /** the folder the paths are relative to (the recipe set's, see engine/recipe-snapshot.ts) */
  root: string;
  /** relative path -> blake3 of the file */
  files: Record<string, string>;
}

export function hasRecipeSnapshot(store: Store, id: string): boolean {
  return store.db.prepare<[string], { one: number }>("SELECT 1 AS one FROM recipe_snapshots WHERE id = ?").get(id) !== undefined;
}

/** Record a snapshot and the texts of its files that are not stored yet, in one transaction. */
export function saveRecipeSnapshot(store: Store, id: string, snap: RecipeSnapshotRow, texts: Map<string, string>, at: number): void {
  const putText = store.db.prepare("INSERT OR IGNORE INTO recipe_texts (digest, text) VALUES (?, ?)");
  store.db.transaction(() => {
    for (const [digest, text] of texts) putText.run(digest, text);
    store.db.prepare("INSERT OR IGNORE INTO recipe_snapshots (id, json, at) VALUES (?, ?, ?)").run(id, JSON.stringify(snap), at);
  }).immediate();
}

/** The digests among these that have a stored text. */
export function storedTexts(store: Store, digests: string[]): Set<string> {
  return new Set(store.db.prepare<[string], { digest: string }>(
    "SELECT digest FROM recipe_texts WHERE digest IN (SELECT value FROM json_each(?))",
  ).all(JSON.stringify(digests)).map((r) => r.digest));
}

/** A snapshot with the texts of its files (relative path -> text); undefined if not recorded. */
export function loadRecipeSnapshot(store: Store, id: string): { root: string; files: Map<string, string> } | undefined {
  const row = store.db.prepare<[string], { json: string }>("SELECT json FROM recipe_snapshots WHERE id = ?").get(id);
  if (!row) return undefined;
  const snap = JSON.parse(row.json) as RecipeSnapshotRow;
  const text = store.db.prepare<[string], { text: string }>("SELECT text FROM recipe_texts WHERE digest = ?");
  const files = new Map<string, string>();
  for (const [rel, digest] of Object.entries(snap.files)) {
    const t = text.get(digest);
    if (t) files.set(rel, t.text);
  }
  return { root: snap.root, files };
}

/**
 * History gc: snapshots recorded before `before` that no target realisation refers to any more,
 * then the texts no snapshot lists. Runs inside collectHistory's transaction.
 */
export function collectRecipeSnapshots(store: Store, before: number): void {
  store.db.prepare(
    `DELETE FROM recipe_snapshots WHERE at < ?
       AND id NOT IN (SELECT recipes_snapshot FROM target_realisations WHERE recipes_snapshot IS NOT NULL)`,
  ).run(before);
  store.db.prepare(
    `DELETE FROM recipe_texts WHERE digest NOT IN
       (SELECT f.value FROM recipe_snapshots s, json_each(s.json, '$.files') f)`,
  ).run();
}
