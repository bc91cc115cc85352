// A store whose database is lost or damaged. Never treated as a new, empty store: its paths would
// all look like strays, the next gc would delete them, and the roots, pins, profiles and history
// would be gone. Opening it is refused (exit 1, with what to do), and `kiln verify --repair`
// recovers it: the damaged files are kept aside, the backup (store/backup.ts) is restored, and the
// paths on disk are reconciled with it (store/verify.ts).
import { readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { backupFile, backupProblem, backupTime, restoreBackup } from "./backup.js";
import { checkDatabase, openDatabase, type DatabaseCheck, type Db } from "./database.js";
import { isKilnError, KilnError } from "./errors.js";
import { BACKUP_FILE, DB_FILE, repairHint } from "./failures.js";
import { parseStorePathName } from "./paths.js";

/** Store-path-shaped entries of a store directory. */
export function storePathsOnDisk(storeDir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(storeDir);
  } catch {
    return [];
  }
  return entries.filter((e) => parseStorePathName(e) !== undefined);
}

/**
 * Refuse a database that has no schema (deleted, or emptied) next to a store directory that holds
 * paths; a new store (no paths yet) is fine.
 */
export function refuseLostDatabase(root: string): void {
  const n = storePathsOnDisk(join(root, "store")).length;
  if (n === 0) return;
  const file = join(root, DB_FILE);
  throw new KilnError("STORE_CORRUPT",
    `the store database ${file} is missing or empty, but ${join(root, "store")} holds ${n} store path(s); kiln will not treat them as garbage`,
    repairHint(root), { file });
}

export interface Recovery {
  /** why the database was not usable */
  problem: string;
  /** where its files were moved */
  keptAside: string[];
  /** the backup restored, and when it was written (ms since the epoch); none: a new database */
  restored?: { file: string; writtenAt: number };
  /** why no backup was restored */
  backupProblem?: string;
}

/** What SQLite's checks found, in a line. */
export function describeCheck(c: DatabaseCheck): string {
  const parts: string[] = [];
  if (c.integrity.length) parts.push(`integrity check: ${c.integrity.slice(0, 3).join("; ").replace(/\s*\n\s*/g, " ")}${c.integrity.length > 3 ? ` (and ${c.integrity.length - 3} more)` : ""}`);
  if (c.foreignKeys.length) parts.push(`${c.foreignKeys.length} row(s) of ${[...new Set(c.foreignKeys.map((f) => f.table))].join(", ")} refer to rows that do not exist`);
  return parts.join("; ");
}

/**
 * Open the database of a store for `kiln verify --repair`: as usual when it is sound; when it is
 * missing, empty or fails SQLite's checks, recover it first (recoverDatabase).
 */
export function openForRepair(root: string, now: number): { db: Db; recovery?: Recovery } {
  const file = join(root, DB_FILE);
  let problem: string;
  try {
    const db = openDatabase(file, root, { onEmpty: () => refuseLostDatabase(root) });
    const check = checkDatabase(db);
    if (!check.integrity.length && !check.foreignKeys.length) return { db };
    db.close();
    problem = `SQLite's checks fail: ${describeCheck(check)}`;
  } catch (e) {
    // a damaged or lost database names its file; anything else (a newer schema, a full disk) is
    // not something a restore would fix
    if (!isKilnError(e) || e.code !== "STORE_CORRUPT" || e.context.file !== file) throw e;
    problem = e.message;
  }
  const recovery = recoverDatabase(root, now, problem);
  return { db: openDatabase(file, root), recovery };
}

/**
 * Move the database's files aside (db.sqlite.damaged-<time>, with its -wal and -shm: SQLite opens
 * the pair as it was) and put the backup in their place if it passes SQLite's checks; else the
 * caller opens a new, empty database. Nothing is deleted.
 */
export function recoverDatabase(root: string, now: number, problem: string): Recovery {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const keptAside: string[] = [];
  for (const suffix of ["", "-wal", "-shm"]) {
    const from = join(root, DB_FILE + suffix);
    const to = join(root, `${DB_FILE}.damaged-${stamp}${suffix}`);
    try {
      renameSync(from, to);
      keptAside.push(to);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
  const why = backupProblem(backupFile(root));
  if (why) return { problem, keptAside, backupProblem: why };
  const writtenAt = backupTime(root)!;
  restoreBackup(root);
  return { problem, keptAside, restored: { file: join(root, BACKUP_FILE), writtenAt } };
}
