// Damage done to a store's database on purpose, for the tests of what kiln does with it: real
// damage to the real file, no mocks. Only while no kiln process has the store open (the WAL is
// then merged into the file).
import Database from "better-sqlite3";
import { randomFillSync } from "node:crypto";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Overwrite the first page of `table`'s b-tree with random bytes (as a bad disk block would). */
export function overwriteTablePage(store: string, table: string): void {
  const file = join(store, "db.sqlite");
  const db = new Database(file, { fileMustExist: true });
  let page: number;
  let size: number;
  try {
    page = (db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = ?").get(table) as { rootpage: number }).rootpage;
    size = db.pragma("page_size", { simple: true }) as number;
    db.pragma("wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, randomFillSync(Buffer.alloc(size)), 0, size, (page - 1) * size);
  } finally {
    closeSync(fd);
  }
}

/** A reference row pointing at a path id that does not exist (foreign keys off, as a buggy writer would). */
export function addDanglingReference(store: string): void {
  const db = new Database(join(store, "db.sqlite"), { fileMustExist: true });
  try {
    db.pragma("foreign_keys = OFF");
    const id = (db.prepare("SELECT min(id) AS id FROM valid_paths").get() as { id: number }).id;
    db.prepare("INSERT INTO refs (referrer, reference) VALUES (?, ?)").run(id, 999_999);
  } finally {
    db.close();
  }
}
