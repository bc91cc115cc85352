// The file digest cache: an in-memory LRU in front of the store database. Keys are
// path+size+mtime+inode+exec bit (see archive.ts), so an edited file misses and an untouched one
// is never read again, in this process or the next. Large trees have kiln-hash's caches instead,
// one file per tree in <root>/tree-digests (store/tree-hash.c), removed by gc once unused.
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Db } from "./database.js";
import { LRUCache } from "lru-cache";
import type { FileDigestCache } from "./archive.js";
import { blake3Hex } from "./digest.js";

export class PersistentDigestCache implements FileDigestCache {
  // bounded by maxSize (each entry counts 1), not `max`: with `max` lru-cache allocates its arrays
  // for every entry up front (25 ms on an idle machine, 300 ms on a loaded one), a cost each
  // evaluation paid for its first local source
  private lruCache: LRUCache<string, string> | undefined;
  private get lru(): LRUCache<string, string> {
    return (this.lruCache ??= new LRUCache<string, string>({ maxSize: 200_000, sizeCalculation: () => 1 }));
  }
  private readonly pending = new Map<string, string>();
  private readonly getStmt;
  private readonly putStmt;

  /**
   * `treeDir`: where kiln-hash keeps its caches of large trees (store/tree-hash.c), one file per
   * tree, named by the digest of the tree's path.
   */
  constructor(private readonly db: Db, private readonly treeDir?: string) {
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

  treeFile(root: string): string | undefined {
    if (!this.treeDir) return undefined;
    try {
      mkdirSync(this.treeDir, { recursive: true });
    } catch {
      return undefined; // a store kiln cannot write to: kiln-hash reads every file
    }
    return join(this.treeDir, `${blake3Hex(root).slice(0, 32)}.bin`);
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

/** The folder, in a store's root, of kiln-hash's tree caches. */
export const TREE_DIGESTS = "tree-digests";

/** A tree's digest cache (kiln-hash's, see store/tree-hash.c) unused this long is removed by gc. */
export const TREE_CACHE_MAX_AGE_MS = 30 * 24 * 3600_000;

/**
 * Remove the tree caches in `dir` not used (written, or renewed by kiln-hash) for
 * TREE_CACHE_MAX_AGE_MS, and temporary files of writes that never finished (a day old): the next
 * hash of such a tree reads its files again, nothing else. Returns how many files went (with
 * `dryRun`, would go).
 */
export function cleanTreeCaches(dir: string, now: number, dryRun = false): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const n of names) {
    const f = join(dir, n);
    try {
      const age = now - statSync(f).mtimeMs;
      if (age > (n.endsWith(".tmp") ? 24 * 3600_000 : TREE_CACHE_MAX_AGE_MS)) {
        if (!dryRun) rmSync(f, { force: true });
        removed++;
      }
    } catch {
      /* gone meanwhile */
    }
  }
  return removed;
}
