// Opening the store database: WAL, busy timeout, foreign keys, numbered migrations. The handle
// never leaves store/: each table has one owner module that holds its statements.
import Database from "better-sqlite3";
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { KilnError } from "./errors.js";
import { storeFailure } from "./failures.js";
import { MIGRATIONS } from "./migrations.js";

export type Db = Database.Database;

/**
 * better-sqlite3, loaded the quick way: the addon by its path (no search by the 'bindings'
 * package). Its JavaScript is a static import: the launcher bundles it (a dozen files to find and
 * read were ~6 ms of a no-op realize), the full CLI requires it.
 */
export function sqlite(file: string, options: { readonly?: boolean; fileMustExist?: boolean } = {}): Db {
  const require = createRequire(import.meta.url);
  let nativeBinding: string | undefined;
  try {
    nativeBinding = require.resolve("better-sqlite3/build/Release/better_sqlite3.node");
  } catch {
    /* built elsewhere: let it search */
  }
  return new Database(file, { ...options, ...(nativeBinding ? { nativeBinding } : {}) });
}

/**
 * The better-sqlite3 module itself, for the launcher (cli/kiln.ts) to hand its own bundled copy to
 * the bundle it runs, which would otherwise find and compile the package's files again (~4-5 ms).
 */
export const sqliteModule: unknown = Database;

export interface OpenOptions {
  /**
   * Called when the database has no schema yet (a new store, or a file that was deleted or
   * emptied), before anything is written: it may refuse by throwing.
   */
  onEmpty?: () => void;
}

/**
 * Open (creating and migrating if needed) the database file of a store. SQLite's failures (a
 * damaged file, a read-only or full disk) become typed errors that name the file.
 */
export function openDatabase(file: string, root: string, o: OpenOptions = {}): Db {
  if (!existsSync(file)) o.onEmpty?.();
  let db: Db | undefined;
  try {
    db = sqlite(file);
    db.pragma("busy_timeout = 10000");
    if (o.onEmpty && db.pragma("user_version", { simple: true }) === 0 && !hasTables(db)) o.onEmpty();
    // WAL is a property of the file: set once, by whichever process creates the store. Switching
    // a fresh file into WAL needs an exclusive lock, and SQLite answers "database is locked" at
    // once (no busy handler: it would deadlock) while another process is opening the same fresh
    // store, so that step alone is retried.
    const d = db;
    retryBusy(() => {
      if (d.pragma("journal_mode", { simple: true }) !== "wal") d.pragma("journal_mode = WAL");
    });
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    migrate(db);
    return db;
  } catch (e) {
    db?.close();
    throw storeFailure(e, root) ?? e;
  }
}

function hasTables(db: Db): boolean {
  return db.prepare("SELECT 1 FROM sqlite_schema LIMIT 1").get() !== undefined;
}

export interface DatabaseCheck {
  /** what PRAGMA integrity_check found wrong (empty: nothing) */
  integrity: string[];
  /** rows whose foreign key points at nothing (PRAGMA foreign_key_check) */
  foreignKeys: Array<{ table: string; rowid: number | null; parent: string }>;
}

/** What SQLite's quick check (every page and b-tree, not index contents) finds wrong; empty: nothing. */
export function quickCheck(db: Db): string[] {
  try {
    return (db.pragma("quick_check") as Array<{ quick_check: string }>).map((r) => r.quick_check).filter((m) => m !== "ok");
  } catch (e) {
    return [(e as Error).message];
  }
}

/**
 * SQLite's own checks of the database file: every page, index and constraint (integrity_check)
 * and every reference between tables (foreign_key_check). A check that cannot even run on a
 * damaged file reports why instead.
 */
export function checkDatabase(db: Db): DatabaseCheck {
  const out: DatabaseCheck = { integrity: [], foreignKeys: [] };
  try {
    for (const r of db.pragma("integrity_check") as Array<{ integrity_check: string }>) if (r.integrity_check !== "ok") out.integrity.push(r.integrity_check);
  } catch (e) {
    out.integrity.push((e as Error).message);
  }
  try {
    for (const r of db.pragma("foreign_key_check") as Array<{ table: string; rowid: number | null; parent: string }>) out.foreignKeys.push({ table: r.table, rowid: r.rowid, parent: r.parent });
  } catch (e) {
    out.integrity.push((e as Error).message);
  }
  return out;
}

/**
 * Open an existing, current store database for the no-op launcher: no migration, no journal
 * switch. Undefined when the file is not a store the full CLI has opened (not in WAL, another
 * schema version): the full CLI then deals with it.
 */
export function openCurrentDatabase(file: string): Db | undefined {
  const db = sqlite(file);
  db.pragma("busy_timeout = 10000");
  db.pragma("synchronous = NORMAL");
  if (db.pragma("journal_mode", { simple: true }) !== "wal" || db.pragma("user_version", { simple: true }) !== MIGRATIONS.length) {
    db.close();
    return undefined;
  }
  return db;
}

/** A WAL of this many bytes (64 pages of 4 KiB, SQLite's default that kiln's databases keep, and their frame headers) or more is folded in by keepWalShort. */
export const SHORT_WAL_BYTES = 32 + 64 * (24 + 4096);

/**
 * Fold `file`'s WAL into the database and truncate it, if it holds 64 pages or more. For a
 * process that ends without closing its connection (cli/fast.ts): closing would have done this
 * (and deleted the WAL), and a first opener reads the whole WAL (the wal-index is rebuilt when no
 * connection is open), while SQLite's own auto-checkpoint, at 1000 pages, cannot restart a WAL
 * whose index was rebuilt (it copies every frame again at each commit). Gives up at once, without
 * error, while another connection reads or writes: a later answer folds it.
 */
export function keepWalShort(db: Db, file: string): void {
  let size: number;
  try {
    size = statSync(`${file}-wal`).size;
  } catch {
    return;
  }
  if (size < SHORT_WAL_BYTES) return;
  db.pragma("busy_timeout = 0");
  try {
    db.pragma("wal_checkpoint(TRUNCATE)");
  } catch {
    /* busy: left for a later answer */
  }
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Block this thread for `ms` (synchronous code waiting on another process). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Run `fn`, again after a short sleep while SQLite reports the database busy (about 10 s at most). */
function retryBusy(fn: () => void): void {
  for (let delay = 2, waited = 0; ; waited += delay, delay = Math.min(delay * 2, 100)) {
    try {
      return fn();
    } catch (e) {
      const code = (e as { code?: string }).code ?? "";
      if (!code.startsWith("SQLITE_BUSY") || waited > 10_000) throw e;
    }
    sleepSync(delay);
  }
}

function migrate(db: Db): void {
  if ((db.pragma("user_version", { simple: true }) as number) === MIGRATIONS.length) return; // up to date: no write lock
  // read the version inside the write transaction: another kiln process opening a fresh store at
  // the same moment may have applied a migration since we looked
  const step = db.transaction((): boolean => {
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new KilnError("STORE_CORRUPT", `the store database has schema version ${version}, newer than this kiln knows (${MIGRATIONS.length})`,
        "upgrade kiln, or use another store with --store");
    }
    if (version === MIGRATIONS.length) return false;
    db.exec(MIGRATIONS[version]!);
    db.pragma(`user_version = ${version + 1}`);
    return true;
  });
  while (step.immediate()) {
    /* one migration per transaction */
  }
}
