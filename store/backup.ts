// The store database's backup, <store root>/db.backup.sqlite: what `kiln verify --repair`
// restores when db.sqlite is lost or damaged, so that roots, pins, profiles, realisations and
// history come back, not only the paths (those are re-registered from the disk by re-hashing).
//
// Written with VACUUM INTO: one statement in one read transaction, so the copy is a consistent
// snapshot even while other kiln processes write (WAL readers do not block writers), and
// synchronous (better-sqlite3's backup API is asynchronous and restarts its page copy each time
// another connection writes). It reads every row of every table through SQLite's b-tree code,
// which fails on a damaged page, and writes them into fresh pages and indexes; so a damaged
// database never overwrites a good backup, without a second pass to check the copy (an integrity
// check of 100k paths takes seconds). The copy is synced before it replaces the previous backup
// by a rename: a crash leaves the old backup or the new one. A backup is checked in full
// (integrity and foreign keys) before it is restored.
import { closeSync, copyFileSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { checkDatabase, sqlite, type Db } from "./database.js";
import { KilnError } from "./errors.js";
import { BACKUP_FILE, DB_FILE } from "./failures.js";
import { MIGRATIONS } from "./migrations.js";
import { SELF_PID } from "./process.js";

/** A command that wrote to the database refreshes a backup older than this. */
export const BACKUP_EVERY_MS = 10 * 60_000;

export function backupFile(root: string): string {
  return join(root, BACKUP_FILE);
}

/** When the backup was written (ms since the epoch), if there is one. */
export function backupTime(root: string): number | undefined {
  try {
    return statSync(backupFile(root)).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Why `file` is no usable backup of a store database (SQLite's checks in full), or undefined when it is one. */
export function backupProblem(file: string): string | undefined {
  if (!existsSync(file)) return "there is none";
  return withCopy(file, (db) => {
    const check = checkDatabase(db);
    if (check.integrity.length) return `SQLite's integrity check fails: ${check.integrity.slice(0, 3).join("; ")}`;
    if (check.foreignKeys.length) return `${check.foreignKeys.length} rows refer to rows that do not exist`;
    return undefined;
  });
}

/** Why a fresh copy is not a store database of a schema this kiln knows, or undefined. */
function schemaProblem(file: string): string | undefined {
  return withCopy(file, () => undefined);
}

function withCopy(file: string, check: (db: Db) => string | undefined): string | undefined {
  let db: Db | undefined;
  try {
    db = sqlite(file, { readonly: true, fileMustExist: true });
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version < 1 || version > MIGRATIONS.length) return `it has schema version ${version}, not 1..${MIGRATIONS.length}`;
    return check(db);
  } catch (e) {
    return (e as Error).message;
  } finally {
    db?.close();
  }
}

/** Write a fresh backup of `db` (see the header). Throws a typed error if the copy is not sound. */
export function writeBackup(db: Db, root: string): void {
  const dest = backupFile(root);
  const tmp = `${dest}.${SELF_PID}.tmp`;
  rmSync(tmp, { force: true });
  try {
    db.prepare("VACUUM INTO ?").run(tmp);
    const problem = schemaProblem(tmp);
    if (problem) {
      throw new KilnError("STORE_CORRUPT", `the store database ${join(root, DB_FILE)} was not backed up: its copy is not sound (${problem})`,
        "run `kiln verify` to check the database; the previous backup was kept", { file: join(root, DB_FILE) });
    }
    syncFile(tmp);
    renameSync(tmp, dest);
    syncFile(dirname(dest));
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Put the backup in place as the store database (whose files the caller has moved aside). */
export function restoreBackup(root: string): void {
  const dest = join(root, DB_FILE);
  const tmp = `${dest}.${SELF_PID}.restore`;
  try {
    copyFileSync(backupFile(root), tmp);
    syncFile(tmp);
    renameSync(tmp, dest);
  } finally {
    rmSync(tmp, { force: true });
  }
}

function syncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
