// Owner of the table roots: result links ('link:<abs path>'), pins ('pin:<name>') and profile
// generations ('gen:<profile>:<n>'). What they mean for gc is in store/roots.ts.
import type { Db } from "./database.js";

export interface RootRow {
  name: string;
  kind: "link" | "pin" | "generation";
  path: string;
  created_at: number;
}

export class RootTable {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      all: db.prepare<[], RootRow>("SELECT name, kind, path, created_at FROM roots ORDER BY name"),
      put: db.prepare("INSERT OR REPLACE INTO roots (name, kind, path, created_at) VALUES (?, ?, ?, ?)"),
      get: db.prepare<[string], RootRow>("SELECT name, kind, path, created_at FROM roots WHERE name = ?"),
      delete: db.prepare("DELETE FROM roots WHERE name = ? AND kind = ?"),
      deleteExact: db.prepare("DELETE FROM roots WHERE name = ? AND kind = ? AND path = ? AND created_at = ?"),
      ofKind: db.prepare<[string], RootRow>("SELECT name, kind, path, created_at FROM roots WHERE kind = ? ORDER BY name"),
      fingerprint: db.prepare<[], { f: string }>("SELECT json_group_array(json_array(name, kind, path)) AS f FROM (SELECT * FROM roots ORDER BY name)"),
    };
  }

  /** Every root's name, kind and path, as one string (changes when a root does). */
  fingerprint(): string {
    return this.q.fingerprint.get()!.f;
  }

  all(): RootRow[] {
    return this.q.all.all();
  }

  ofKind(kind: RootRow["kind"]): RootRow[] {
    return this.q.ofKind.all(kind);
  }

  get(name: string): RootRow | undefined {
    return this.q.get.get(name);
  }

  put(name: string, kind: RootRow["kind"], path: string, now: number): void {
    this.q.put.run(name, kind, path, now);
  }

  delete(name: string, kind: RootRow["kind"]): number {
    return this.q.delete.run(name, kind).changes;
  }

  /** Delete a row only if it is still exactly this one (path and creation time). */
  deleteExact(r: RootRow): number {
    return this.q.deleteExact.run(r.name, r.kind, r.path, r.created_at).changes;
  }
}
