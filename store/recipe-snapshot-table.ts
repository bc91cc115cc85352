// Owner of the tables recipe_snapshots (the recipe files one evaluation read, by digest) and
// recipe_texts (each file text once, however many snapshots share it): what `why` diffs to find
// the edited line (migration 7).
import type { Db } from "./database.js";

export class RecipeSnapshotTable {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      has: db.prepare<[string], { one: number }>("SELECT 1 AS one FROM recipe_snapshots WHERE id = ?"),
      put: db.prepare("INSERT OR IGNORE INTO recipe_snapshots (id, json, at) VALUES (?, ?, ?)"),
      get: db.prepare<[string], { json: string }>("SELECT json FROM recipe_snapshots WHERE id = ?"),
      putText: db.prepare("INSERT OR IGNORE INTO recipe_texts (digest, text) VALUES (?, ?)"),
      text: db.prepare<[string], { text: string }>("SELECT text FROM recipe_texts WHERE digest = ?"),
      storedTexts: db.prepare<[string], { digest: string }>("SELECT digest FROM recipe_texts WHERE digest IN (SELECT value FROM json_each(?))"),
      collectSnapshots: db.prepare<[number]>(
        `DELETE FROM recipe_snapshots WHERE at < ?
           AND id NOT IN (SELECT recipes_snapshot FROM target_realisations WHERE recipes_snapshot IS NOT NULL)`,
      ),
      collectTexts: db.prepare<[]>(
        `DELETE FROM recipe_texts WHERE digest NOT IN
           (SELECT f.value FROM recipe_snapshots s, json_each(s.json, '$.files') f)`,
      ),
    };
  }

  has(id: string): boolean {
    return this.q.has.get(id) !== undefined;
  }

  /** Insert a snapshot and its texts (the caller's transaction). */
  put(id: string, json: string, texts: Map<string, string>, at: number): void {
    for (const [digest, text] of texts) this.q.putText.run(digest, text);
    this.q.put.run(id, json, at);
  }

  json(id: string): string | undefined {
    return this.q.get.get(id)?.json;
  }

  text(digest: string): string | undefined {
    return this.q.text.get(digest)?.text;
  }

  /** The digests among these that have a stored text. */
  storedTexts(digests: string[]): Set<string> {
    return new Set(this.q.storedTexts.all(JSON.stringify(digests)).map((r) => r.digest));
  }

  /** Snapshots recorded before `before` that no target realisation refers to, then the texts no snapshot lists. */
  collect(before: number): void {
    this.q.collectSnapshots.run(before);
    this.q.collectTexts.run();
  }
}
