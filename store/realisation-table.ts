// Owner of the tables realisations (resolved derivation + output -> path: the cache) and
// fixed_content (a fixed output's sha256 -> the paths with those bytes).
import type { Db } from "./database.js";
import type { StorePathName } from "./paths.js";

/** Up to this many pairs are looked up one by one; more go to SQLite in one JSON array. */
const FEW = 4;

export class RealisationTable {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      get: db.prepare<[string, string], { path: string }>(
        "SELECT v.path FROM realisations r JOIN valid_paths v ON v.id = r.path_id WHERE r.resolved_hash = ? AND r.output = ?",
      ),
      // the hashes of one output name: a flat JSON array of strings, no json_extract per pair
      // (10k realisations of a wide graph: 17 ms against 30)
      many: db.prepare<[string, string], { h: string; path: string }>(
        `SELECT r.resolved_hash AS h, v.path FROM json_each(?) j
         JOIN realisations r ON r.resolved_hash = j.value AND r.output = ?
         JOIN valid_paths v ON v.id = r.path_id`,
      ),
      insert: db.prepare("INSERT OR REPLACE INTO realisations (resolved_hash, output, path_id) VALUES (?, ?, ?)"),
      insertFixed: db.prepare("INSERT OR IGNORE INTO fixed_content (sha256, path_id) VALUES (?, ?)"),
      fixed: db.prepare<[string], { path: string }>("SELECT v.path FROM fixed_content f JOIN valid_paths v ON v.id = f.path_id WHERE f.sha256 = ? ORDER BY v.id"),
    };
  }

  get(resolvedHash: string, output: string): StorePathName | undefined {
    return this.q.get.get(resolvedHash, output)?.path as StorePathName | undefined;
  }

  /** Realisations of many (resolved hash, output) pairs in one query: "hash\0output" -> path. */
  many(pairs: Array<[string, string]>): Map<string, StorePathName> {
    const m = new Map<string, StorePathName>();
    if (pairs.length === 0) return m;
    if (pairs.length <= FEW) {
      // a chain's waves are one derivation each: a plain lookup costs a third of the JSON query
      for (const [h, o] of pairs) {
        const path = this.q.get.get(h, o)?.path;
        if (path !== undefined) m.set(`${h}\0${o}`, path as StorePathName);
      }
      return m;
    }
    const byOutput = new Map<string, string[]>();
    for (const [h, o] of pairs) {
      const hashes = byOutput.get(o);
      if (hashes) hashes.push(h);
      else byOutput.set(o, [h]);
    }
    for (const [o, hashes] of byOutput) {
      for (const r of this.q.many.all(JSON.stringify(hashes), o)) m.set(`${r.h}\0${o}`, r.path as StorePathName);
    }
    return m;
  }

  insert(resolvedHash: string, output: string, pathId: number): void {
    this.q.insert.run(resolvedHash, output, pathId);
  }

  insertFixed(sha256: string, pathId: number): void {
    this.q.insertFixed.run(sha256, pathId);
  }

  fixed(sha256: string): StorePathName[] {
    return this.q.fixed.all(sha256).map((r) => r.path as StorePathName);
  }
}
