// Owner of the tables valid_paths and refs: which store paths are valid, their digests, sizes
// and references. Every statement on these tables is here.
import type { Db } from "./database.js";
import type { StorePathName } from "./paths.js";

export interface PathInfo {
  path: StorePathName;
  narDigest: string;
  narSize: number;
  deriver: string | null;
  ca: string | null;
  registeredAt: number;
  lastUsed: number;
  references: StorePathName[];
}

export interface NewPath {
  path: StorePathName;
  narDigest: string;
  narSize: number;
  deriver: string | null;
  ca: string | null;
  now: number;
}

export class PathTable {
  private readonly q;
  constructor(private readonly db: Db) {
    this.q = {
      id: db.prepare<[string], { id: number }>("SELECT id FROM valid_paths WHERE path = ?"),
      name: db.prepare<[number], { path: string }>("SELECT path FROM valid_paths WHERE id = ?"),
      info: db.prepare<[string], { id: number; path: string; nar_digest: string; nar_size: number; deriver: string | null; ca: string | null; registered_at: number; last_used: number }>(
        "SELECT * FROM valid_paths WHERE path = ?",
      ),
      refsOf: db.prepare<[number], { path: string }>("SELECT v.path FROM refs r JOIN valid_paths v ON v.id = r.reference WHERE r.referrer = ? ORDER BY v.path"),
      refsOfPath: db.prepare<[string], { path: string }>(
        "SELECT v.path FROM refs r JOIN valid_paths v ON v.id = r.reference WHERE r.referrer = (SELECT id FROM valid_paths WHERE path = ?)",
      ),
      closure: db.prepare<[string], { path: string }>(
        `WITH RECURSIVE c(id) AS (
           SELECT id FROM valid_paths WHERE path IN (SELECT value FROM json_each(?))
           UNION SELECT r.reference FROM refs r JOIN c ON r.referrer = c.id)
         SELECT v.path FROM c JOIN valid_paths v ON v.id = c.id`,
      ),
      validOf: db.prepare<[string], { path: string }>("SELECT v.path FROM json_each(?) j JOIN valid_paths v ON v.path = j.value"),
      insert: db.prepare("INSERT INTO valid_paths (path, nar_digest, nar_size, deriver, ca, registered_at, last_used) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      insertRef: db.prepare("INSERT OR IGNORE INTO refs (referrer, reference) VALUES (?, ?)"),
      touch: db.prepare("UPDATE valid_paths SET last_used = ? WHERE path = ?"),
      touchMany: db.prepare<[number, string]>("UPDATE valid_paths SET last_used = ? WHERE path IN (SELECT value FROM json_each(?))"),
      all: db.prepare<[], { path: StorePathName; nar_digest: string; nar_size: number }>("SELECT path, nar_digest, nar_size FROM valid_paths ORDER BY path"),
      referrers: db.prepare<[number], { referrer: number }>("SELECT referrer FROM refs WHERE reference = ?"),
      delete: db.prepare("DELETE FROM valid_paths WHERE id = ?"),
      deleteRefs: db.prepare("DELETE FROM refs WHERE referrer = ?"),
      deleteMany: db.prepare("DELETE FROM valid_paths WHERE id IN (SELECT value FROM json_each(?))"),
      deleteRefsMany: db.prepare("DELETE FROM refs WHERE referrer IN (SELECT value FROM json_each(?))"),
      columns: db.prepare<[], { i: string; p: string; s: string; l: string }>(
        "SELECT json_group_array(id) AS i, json_group_array(path) AS p, json_group_array(nar_size) AS s, json_group_array(last_used) AS l FROM valid_paths",
      ),
      edges: db.prepare<[], { a: string; b: string }>("SELECT json_group_array(referrer) AS a, json_group_array(reference) AS b FROM refs"),
      count: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM valid_paths"),
      names: db.prepare("SELECT path FROM valid_paths").raw(true),
    };
  }

  id(p: StorePathName): number | undefined {
    return this.q.id.get(p)?.id;
  }

  info(p: StorePathName): PathInfo | undefined {
    const row = this.q.info.get(p);
    if (!row) return undefined;
    return {
      path: row.path as StorePathName, narDigest: row.nar_digest, narSize: row.nar_size, deriver: row.deriver, ca: row.ca,
      registeredAt: row.registered_at, lastUsed: row.last_used, references: this.q.refsOf.all(row.id).map((r) => r.path as StorePathName),
    };
  }

  /** The closure of `paths`: one recursive query over a JSON array, whatever their number. */
  closure(paths: StorePathName[]): Set<StorePathName> {
    if (paths.length === 0) return new Set();
    return new Set(this.q.closure.all(JSON.stringify(paths)).map((r) => r.path as StorePathName));
  }

  /** Which of `paths` are valid, in one statement. */
  validOf(paths: string[]): Set<StorePathName> {
    return new Set(this.q.validOf.all(JSON.stringify(paths)).map((r) => r.path as StorePathName));
  }

  /** References of a path by name (paths registered after a gc's snapshot). */
  referencesOf(p: string): string[] {
    return this.q.refsOfPath.all(p).map((r) => r.path);
  }

  /** Insert a path and its references (all valid already, or the path itself): its id. */
  insert(n: NewPath, refs: StorePathName[]): number | { missing: StorePathName } {
    const id = Number(this.q.insert.run(n.path, n.narDigest, n.narSize, n.deriver, n.ca, n.now, n.now).lastInsertRowid);
    for (const r of refs) {
      const rid = r === n.path ? id : this.id(r);
      if (rid === undefined) return { missing: r };
      this.q.insertRef.run(id, rid);
    }
    return id;
  }

  touch(p: StorePathName, now: number): void {
    this.q.touch.run(now, p);
  }

  touchMany(paths: string[], now: number): void {
    if (paths.length) this.q.touchMany.run(now, JSON.stringify(paths));
  }

  all(): Array<{ path: StorePathName; nar_digest: string; nar_size: number }> {
    return this.q.all.all();
  }

  /** Every valid path's name. */
  names(): Set<string> {
    return new Set((this.q.names.all() as Array<[string]>).map((r) => r[0]));
  }

  count(): number {
    return this.q.count.get()!.n;
  }

  /** Remove paths and every path that references them (transitively); what was removed. Caller holds a transaction. */
  invalidateWithReferrers(paths: StorePathName[]): StorePathName[] {
    const closure = new Set<number>();
    const stack = paths.map((p) => this.id(p)).filter((x): x is number => x !== undefined);
    while (stack.length) {
      const id = stack.pop()!;
      if (closure.has(id)) continue;
      closure.add(id);
      for (const r of this.q.referrers.all(id)) stack.push(r.referrer);
    }
    const names = [...closure].map((id) => this.q.name.get(id)!.path as StorePathName);
    for (const id of closure) this.q.deleteRefs.run(id);
    for (const id of closure) this.q.delete.run(id);
    return names.sort();
  }

  /** Delete paths (and their own reference rows) by id; the caller checked nothing live refers to them. */
  deleteIds(ids: number[]): void {
    const json = JSON.stringify(ids);
    this.q.deleteRefsMany.run(json);
    this.q.deleteMany.run(json);
  }

  /**
   * Every valid path and every reference edge, each column as one JSON array aggregated in
   * SQLite (several times faster than 100k row objects crossing into JS one by one).
   */
  loadAll(): { ids: number[]; paths: string[]; sizes: number[]; lastUsed: number[]; referrers: number[]; references: number[] } {
    const v = this.q.columns.get()!;
    const e = this.q.edges.get()!;
    return {
      ids: JSON.parse(v.i) as number[], paths: JSON.parse(v.p) as string[], sizes: JSON.parse(v.s) as number[], lastUsed: JSON.parse(v.l) as number[],
      referrers: JSON.parse(e.a) as number[], references: JSON.parse(e.b) as number[],
    };
  }
}
