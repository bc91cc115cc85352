// The file digest cache: an in-memory LRU in front of the store database. Keys are
// path+size+mtime+inode+exec bit (see archive.ts), so an edited file misses and an untouched one
// is never read again, in this process or the next.
import type { Db } from "./database.js";
import { LRUCache } from "lru-cache";
import type { FileDigestCache } from "./archive.js";

export class PersistentDigestCache implements FileDigestCache {
  // made on first use: lru-cache allocates its arrays for `max` entries up front (~25 ms here),
  // a cost an evaluation without local sources need not pay
  private lruCache: LRUCache<string, string> | undefined;
  private get lru(): LRUCache<string, string> {
    return (this.lruCache ??= new LRUCache<string, string>({ max: 200_000 }));
  }
  private readonly pending = new Map<string, string>();
  private readonly getStmt;
  private readonly putStmt;

  constructor(private readonly db: Db) {
    this.getStmt = db.prepare<[string], { digest: string }>("SELECT digest FROM file_digests WHERE key = ?");
    this.putStmt = db.prepare("INSERT OR REPLACE INTO file_digests (key, digest) VALUES (?, ?)");
  }

  /** folders whose digests are all in memory already: a miss under them needs no query */
  private readonly loaded: string[] = [];

  /**
   * Load the digests of every file under `dir` with one range query (keys begin with the path;
   * '0' is the character after '/'), instead of one query per file.
   */
  prefetch(dir: string): void {
    const prefix = dir.endsWith("/") ? dir : `${dir}/`;
    if (this.loaded.some((p) => prefix.startsWith(p))) return;
    const upper = `${prefix.slice(0, -1)}0`;
    const rows = this.db.prepare<[string, string], { key: string; digest: string }>("SELECT key, digest FROM file_digests WHERE key >= ? AND key < ?").all(prefix, upper);
    // more than the LRU holds: keep asking the database for the ones it drops
    if (rows.length >= 200_000) return;
    for (const r of rows) this.lru.set(r.key, r.digest);
    this.loaded.push(prefix);
  }

  get(key: string): string | undefined {
    const hit = this.lru.get(key);
    if (hit !== undefined) return hit;
    if (this.loaded.length && this.loaded.some((p) => key.startsWith(p))) return undefined;
    const row = this.getStmt.get(key);
    if (row) this.lru.set(key, row.digest);
    return row?.digest;
  }

  set(key: string, value: string): void {
    this.lru.set(key, value);
    this.pending.set(key, value);
  }

  /** Write new digests in one transaction (a kernel tree is 80k of them). */
  flush(): void {
    if (this.pending.size === 0) return;
    const rows = [...this.pending];
    this.pending.clear();
    this.db.transaction(() => {
      for (const [k, v] of rows) this.putStmt.run(k, v);
    }).immediate();
  }
}
