// Direct writes to a store's tables, for benchmarks: synthetic stores for gc at scale (building
// 100k derivations would take hours) and a cold file-digest cache. Inside store/ because they
// write tables directly.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../database.js";
import { TREE_DIGESTS } from "../digest-cache.js";
import { tablesOf, type LocalStore } from "../local-store.js";

export interface SyntheticPath {
  id: number;
  path: string;
  lastUsed: number;
  /** the file's content, or none for a database-only store */
  content?: string;
}

/** Insert paths (with files), reference edges (referrer id -> reference id) and pins, in one transaction. */
export function fillSynthetic(store: LocalStore, paths: SyntheticPath[], edges: Array<[number, number]>, pins: Array<[string, string]>): void {
  const db = tablesOf(store).db;
  const ins = db.prepare("INSERT INTO valid_paths (id, path, nar_digest, nar_size, registered_at, last_used) VALUES (?, ?, 'x', 100, 0, ?)");
  const ref = db.prepare("INSERT INTO refs (referrer, reference) VALUES (?, ?)");
  const pin = db.prepare("INSERT INTO roots (name, kind, path, created_at) VALUES (?, 'pin', ?, 0)");
  db.transaction(() => {
    for (const p of paths) {
      ins.run(p.id, p.path, p.lastUsed);
      if (p.content !== undefined) writeFileSync(join(store.storeDir, p.path), p.content);
    }
    for (const [a, b] of edges) ref.run(a, b);
    for (const [name, path] of pins) pin.run(`pin:${name}`, path);
  })();
}

/** Forget every cached file digest of the store at `root` (the next evaluation hashes cold): kiln-hash's too. */
export function forgetFileDigests(root: string): void {
  const db = openDatabase(join(root, "db.sqlite"), root);
  try {
    db.prepare("DELETE FROM file_digests").run();
  } finally {
    db.close();
  }
  rmSync(join(root, TREE_DIGESTS), { recursive: true, force: true });
}
