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
import { tablesOf, type LocalStore } from "./local-store.js";
import { parseStorePathName, type StorePathName } from "./paths.js";
import type { RootRow } from "./root-table.js";

export type { RootRow };

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

export function rootRows(store: LocalStore): RootRow[] {
  return tablesOf(store).roots.all();
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
export function resolveRootRow(store: LocalStore, r: RootRow): { path: StorePathName } | { stale: string } {
  if (r.kind !== "link") return { path: r.path as StorePathName };
  const link = r.name.slice("link:".length);
  const p = linkTarget(store.storeDir, link);
  if (!p) return { stale: `the link ${link} was removed or points out of the store` };
  return { path: p };
}

/** Temporary roots of live kiln processes (one liveness check per process, not per row). */
export function liveTempRoots(store: LocalStore): Root[] {
  const rows = tablesOf(store).tempRoots.all();
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
export function listRoots(store: LocalStore, opts: { temp?: boolean } = {}): { roots: Root[]; stale: StaleRoot[] } {
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
export function dropStaleLinkRoots(store: LocalStore, stale: StaleRoot[]): number {
  const t = tablesOf(store);
  return t.transaction(() => {
    let n = 0;
    for (const s of stale) {
      if (!s.name.startsWith("link:") || linkTarget(store.storeDir, s.name.slice(5))) continue;
      n += t.roots.deleteExact({ name: s.name, kind: "link", path: s.path, created_at: s.createdAt });
    }
    return n;
  });
}

/** Stale temp-root rows (their process is gone): just clutter, removed by gc. */
export function dropStaleTempRoots(store: LocalStore): number {
  const t = tablesOf(store).tempRoots;
  let n = 0;
  for (const p of t.processes()) if (!isProcessAlive(p.pid, p.pid_start)) n += t.dropProcess(p.pid, p.pid_start);
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
export function addPin(store: LocalStore, name: string, path: StorePathName, now: number): { previous?: string } {
  validatePinName(name);
  if (!store.addTempRoots([path]).has(path)) {
    throw new KilnError("STORE_PATH_INVALID", `${path} is not a valid store path (was it collected?)`, "realize it again, then pin it");
  }
  const roots = tablesOf(store).roots;
  const previous = roots.get(`pin:${name}`)?.path;
  roots.put(`pin:${name}`, "pin", path, now);
  return previous && previous !== path ? { previous } : {};
}

export function removePin(store: LocalStore, name: string): string {
  const roots = tablesOf(store).roots;
  const row = roots.get(`pin:${name}`);
  if (!row || row.kind !== "pin") throw new KilnError("USAGE", `there is no pin named ${JSON.stringify(name)}`, "see the pins with `kiln pin list`");
  roots.delete(`pin:${name}`, "pin");
  return row.path;
}

export function listPins(store: LocalStore): Array<{ name: string; path: StorePathName; createdAt: number }> {
  return tablesOf(store)
    .roots.ofKind("pin")
    .map((r) => ({ name: r.name.slice(4), path: r.path as StorePathName, createdAt: r.created_at }));
}

/** The root of a `result` link that realize made (an indirect root: whatever the link points to). */
export function addLinkRoot(store: LocalStore, link: string, path: StorePathName, now: number): void {
  tablesOf(store).roots.put(`link:${link}`, "link", path, now);
}
