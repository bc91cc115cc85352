// Read-only inspection of a store's database for end-to-end tests: what a kiln process left
// behind, read straight from SQLite (independent of the store's own queries).
import Database from "better-sqlite3";
import { join } from "node:path";

export function query<T>(store: string, sql: string, ...params: unknown[]): T[] {
  return queryFile<T>(join(store, "db.sqlite"), sql, ...params);
}

/** A query on any database file of a store (its backup, a file kept aside). */
export function queryFile<T>(file: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

export interface BuildRowLite {
  id: number;
  name: string;
  status: string;
  exit_code: number | null;
  log_file: string | null;
}

/** Rows of the store's builds table (every builder invocation is recorded there). */
export function buildRows(store: string, name?: string): BuildRowLite[] {
  return name === undefined
    ? query<BuildRowLite>(store, "SELECT id, name, status, exit_code, log_file FROM builds ORDER BY id")
    : query<BuildRowLite>(store, "SELECT id, name, status, exit_code, log_file FROM builds WHERE name = ? ORDER BY id", name);
}

/** Valid store paths whose name part is `name`. */
export function validPaths(store: string, name: string): string[] {
  return query<{ path: string }>(store, "SELECT path FROM valid_paths WHERE substr(path, 34) = ? ORDER BY path", name).map((r) => r.path);
}

/** The closure of `paths` computed straight from the database (independent of gc's own mark). */
export function closureSql(store: string, paths: string[]): string[] {
  if (paths.length === 0) return [];
  return query<{ path: string }>(
    store,
    `WITH RECURSIVE c(id) AS (SELECT id FROM valid_paths WHERE path IN (${paths.map(() => "?").join(",")})
       UNION SELECT r.reference FROM refs r JOIN c ON r.referrer = c.id)
     SELECT v.path FROM c JOIN valid_paths v ON v.id = c.id ORDER BY v.path`,
    ...paths,
  ).map((r) => r.path);
}

/** Every valid path of the store, sorted. */
export const allValid = (store: string): string[] => query<{ path: string }>(store, "SELECT path FROM valid_paths ORDER BY path").map((r) => r.path);


/** Every valid path of a store with its content digest. */
export function storeContents(store: string): Map<string, { path: string; digest: string }> {
  const rows = query<{ path: string; nar_digest: string }>(store, "SELECT path, nar_digest FROM valid_paths");
  return new Map(rows.map((r) => [r.path, { path: r.path, digest: r.nar_digest }]));
}
