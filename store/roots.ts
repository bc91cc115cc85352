// GC roots: the reasons to keep a closure. Kept beside Store rather than in it; gc, `kiln roots`,
// `kiln pin` and `kiln du` read them.
//
//   link        an indirect root: a `result` link made by realize ('link:<abs path>'). The root is
//               whatever store path the link points to now; a removed link (or one pointing out of
//               the store) is no root, and gc drops its row.
//   pin         a named pin ('pin:<name>'), made and removed by `kiln pin`.
//   generation  a profile generation ('gen:<profile>:<n>').
//   temp        a temporary root of a running kiln process (table temp_roots, pid + start time);
//               rows of dead processes are stale and ignored.
import { readlinkSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { KilnError } from "./errors.js";
import { isProcessAlive } from "./process.js";
import { parseStorePathName, type Store, type StorePathName } from "./store.js";

export type RootKind = "link" | "pin" | "generation" | "temp";

export interface Root {
  kind: RootKind;
  /** the roots-table name ('link:/abs/result', 'pin:name', ...), or 'temp:<pid>' */
  name: string;
  path: StorePathName;
}

export interface StaleRoot {
  name: string;
  path: string;
  createdAt: number;
  reason: string;
}

export interface RootRow {
  name: string;
  kind: "link" | "pin" | "generation";
  path: string;
  created_at: number;
}

export function rootRows(store: Store): RootRow[] {
  return store.db.prepare<[], RootRow>("SELECT name, kind, path, created_at FROM roots ORDER BY name").all();
}

/** The store path a `result` link points to now, if it points into this store. */
export function linkTarget(storeDir: string, link: string): StorePathName | undefined {
  let target: string;
  try {
    target = resolve(dirname(link), readlinkSync(link));
  } catch {
    return undefined; // removed, or no longer a symlink
  }
  if (!target.startsWith(storeDir + "/")) return undefined;
  const base = target.slice(storeDir.length + 1).split("/")[0]!;
  return parseStorePathName(base) ? (base as StorePathName) : undefined;
}

/** A row's current root, or why it is none. */
export function resolveRootRow(store: Store, r: RootRow): { path: StorePathName } | { stale: string } {
  if (r.kind !== "link") return { path: r.path as StorePathName };
  const link = r.name.slice("link:".length);
  const p = linkTarget(store.storeDir, link);
  if (!p) return { stale: `the link ${link} was removed or points out of the store` };
  return { path: p };
}

/** Temporary roots of live kiln processes (one liveness check per process, not per row). */
export function liveTempRoots(store: Store): Root[] {
  const rows = store.db.prepare<[], { pid: number; pid_start: string; path: string }>("SELECT pid, pid_start, path FROM temp_roots ORDER BY id").all();
  const alive = new Map<string, boolean>();
  const out: Root[] = [];
  for (const r of rows) {
    const key = `${r.pid}:${r.pid_start}`;
    let a = alive.get(key);
    if (a === undefined) alive.set(key, (a = isProcessAlive(r.pid, r.pid_start)));
    if (a) out.push({ kind: "temp", name: `temp:${r.pid}`, path: r.path as StorePathName });
  }
  return out;
}

/** Every current root, and the rows that no longer root anything. */
export function listRoots(store: Store, opts: { temp?: boolean } = {}): { roots: Root[]; stale: StaleRoot[] } {
  const roots: Root[] = [];
  const stale: StaleRoot[] = [];
  for (const r of rootRows(store)) {
    const res = resolveRootRow(store, r);
    if ("path" in res) roots.push({ kind: r.kind, name: r.name, path: res.path });
    else stale.push({ name: r.name, path: r.path, createdAt: r.created_at, reason: res.stale });
  }
  if (opts.temp !== false) roots.push(...liveTempRoots(store));
  return { roots, stale };
}

/**
 * Drop rows of removed result links. The link is looked at again inside the transaction and the
 * row is matched by its creation time: a realize that re-made the same link meanwhile (it makes the
 * link before the row) keeps its root.
 */
export function dropStaleLinkRoots(store: Store, stale: StaleRoot[]): number {
  const del = store.db.prepare("DELETE FROM roots WHERE name = ? AND kind = 'link' AND path = ? AND created_at = ?");
  return store.db.transaction(() => {
    let n = 0;
    for (const s of stale) {
      if (!s.name.startsWith("link:") || linkTarget(store.storeDir, s.name.slice(5))) continue;
      n += del.run(s.name, s.path, s.createdAt).changes;
    }
    return n;
  }).immediate();
}

/** Stale temp-root rows (their process is gone): just clutter, removed by gc. */
export function dropStaleTempRoots(store: Store): number {
  const procs = store.db.prepare<[], { pid: number; pid_start: string }>("SELECT DISTINCT pid, pid_start FROM temp_roots").all();
  const del = store.db.prepare("DELETE FROM temp_roots WHERE pid = ? AND pid_start = ?");
  let n = 0;
  for (const p of procs) if (!isProcessAlive(p.pid, p.pid_start)) n += del.run(p.pid, p.pid_start).changes;
  return n;
}

const PIN_RE = /^[A-Za-z0-9+._@=-]+$/;

export function validatePinName(name: string): void {
  if (!PIN_RE.test(name)) {
    throw new KilnError("USAGE", `invalid pin name ${JSON.stringify(name)}`, "use letters, digits and + . _ @ = - only");
  }
}

/**
 * Pin a path under a name (replacing an earlier pin of that name). The path is temp-rooted and
 * checked valid first, so a gc running meanwhile cannot collect it between the check and the pin.
 */
export function addPin(store: Store, name: string, path: StorePathName, now: number): { previous?: string } {
  validatePinName(name);
  if (!store.addTempRoots([path]).has(path)) {
    throw new KilnError("STORE_PATH_INVALID", `${path} is not a valid store path (was it collected?)`, "realize it again, then pin it");
  }
  const previous = store.db.prepare<[string], { path: string }>("SELECT path FROM roots WHERE name = ?").get(`pin:${name}`)?.path;
  store.db.prepare("INSERT OR REPLACE INTO roots (name, kind, path, created_at) VALUES (?, 'pin', ?, ?)").run(`pin:${name}`, path, now);
  return previous && previous !== path ? { previous } : {};
}

export function removePin(store: Store, name: string): string {
  const row = store.db.prepare<[string], { path: string }>("SELECT path FROM roots WHERE name = ? AND kind = 'pin'").get(`pin:${name}`);
  if (!row) throw new KilnError("USAGE", `there is no pin named ${JSON.stringify(name)}`, "see the pins with `kiln pin list`");
  store.db.prepare("DELETE FROM roots WHERE name = ? AND kind = 'pin'").run(`pin:${name}`);
  return row.path;
}

export function listPins(store: Store): Array<{ name: string; path: StorePathName; createdAt: number }> {
  return store.db
    .prepare<[], { name: string; path: string; created_at: number }>("SELECT name, path, created_at FROM roots WHERE kind = 'pin' ORDER BY name")
    .all()
    .map((r) => ({ name: r.name.slice(4), path: r.path as StorePathName, createdAt: r.created_at }));
}
