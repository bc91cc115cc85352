// Opening the store database: WAL, busy timeout, foreign keys, numbered migrations. The handle
// never leaves store/: each table has one owner module that holds its statements.
import type Database from "better-sqlite3";
import { createRequire } from "node:module";
import { KilnError } from "./errors.js";
import { MIGRATIONS } from "./migrations.js";

export type Db = Database.Database;

/**
 * better-sqlite3, loaded the quick way: require (no ESM-from-CommonJS export scan) and the addon
 * by its path (no search by the 'bindings' package); ~25 ms less start-up for the no-op launcher.
 */
function sqlite(file: string): Db {
  const require = createRequire(import.meta.url);
  const Ctor = require("better-sqlite3") as typeof Database;
  let nativeBinding: string | undefined;
  try {
    nativeBinding = require.resolve("better-sqlite3/build/Release/better_sqlite3.node");
  } catch {
    /* built elsewhere: let it search */
  }
  return new Ctor(file, nativeBinding ? { nativeBinding } : {});
}

/** Open (creating and migrating if needed) the database file of a store. */
export function openDatabase(file: string, root: string): Db {
  let db: Db;
  try {
    db = sqlite(file);
  } catch (e) {
    throw new KilnError("STORE_CORRUPT", `cannot open the store database in ${root}: ${(e as Error).message}`,
      "check the permissions of the store directory, or point --store / KILN_STORE elsewhere");
  }
  db.pragma("busy_timeout = 10000");
  // WAL is a property of the file: set once, by whichever process creates the store. Switching
  // a fresh file into WAL needs an exclusive lock, and SQLite answers "database is locked" at
  // once (no busy handler: it would deadlock) while another process is opening the same fresh
  // store, so that step alone is retried.
  retryBusy(() => {
    if (db.pragma("journal_mode", { simple: true }) !== "wal") db.pragma("journal_mode = WAL");
  });
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  migrate(db);
  return db;
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
