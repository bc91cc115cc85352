// kiln verify: the store checked against itself. SQLite's checks of the database, every valid
// path re-hashed and compared with its recorded digest, and the store directory's entries that
// the database does not know (strays).
//
// Repair (kiln verify --repair), after LocalStore.open has recovered a lost or damaged database
// (store/recovery.ts): the database is made to agree with the disk.
//   - a valid path missing from disk, or whose content no longer matches its digest, is
//     invalidated with everything that references it (their realisations go with them, so the
//     next realize builds them again); a corrupt tree is deleted
//   - a stray whose content still gives its name (it is re-hashed) is registered again, with the
//     references found in it, references first; one that does not (a partial deletion) is left
//     for gc, now that the database is known good
//   - a profile generation whose link is on disk but not in the database (a backup older than it,
//     or none) is pinned, so that a gc cannot take it
import { existsSync, lstatSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { hashTree } from "./archive.js";
import type { DatabaseCheck } from "./database.js";
import { contentHashPart, HASH_PART_LEN, sha256File } from "./digest.js";
import { tablesOf, type LocalStore } from "./local-store.js";
import { existsOrLink, parseStorePathName, removeTree, type StorePathName } from "./paths.js";
import { profilesDir } from "./profiles.js";
import { adoptPath } from "./registration.js";
import { scanHashParts } from "./refscan.js";

export interface VerifyReport {
  database: DatabaseCheck;
  /** valid paths re-hashed */
  checked: number;
  corrupt: Array<{ path: StorePathName; expected: string; actual: string }>;
  missing: StorePathName[];
  /** entries of the store directory that are not registered (after a repair: those it could not register), and why */
  strays: Array<{ path: string; why?: string }>;
  repair?: RepairReport;
}

export interface RepairReport {
  /** forgotten: missing or corrupt, or referring to one of those */
  invalidated: StorePathName[];
  /** corrupt trees deleted */
  removed: StorePathName[];
  /** strays registered again */
  registered: StorePathName[];
  /** profile generations on disk that the database did not know, pinned: pin name -> path */
  pinned: Array<{ pin: string; path: StorePathName }>;
}

export function verifyStore(store: LocalStore, o: { repair: boolean; now: number }): VerifyReport {
  const database = store.checkDatabase();
  const corrupt: VerifyReport["corrupt"] = [];
  const missing: StorePathName[] = [];
  const rows = store.allPaths();
  for (const r of rows) {
    const host = store.hostPath(r.path);
    if (!existsOrLink(host)) {
      missing.push(r.path);
      continue;
    }
    const d = hashTree(host, { selfHash: r.path.slice(0, HASH_PART_LEN) }).digest;
    if (d !== r.nar_digest) corrupt.push({ path: r.path, expected: r.nar_digest, actual: d });
  }
  const report: VerifyReport = { database, checked: rows.length, corrupt, missing, strays: [] };
  if (!o.repair) {
    const valid = new Set<string>(rows.map((r) => r.path));
    report.strays = readdirSync(store.storeDir).filter((e) => !valid.has(e)).sort().map((path) => ({ path }));
    return report;
  }
  const invalidated = store.invalidate([...missing, ...corrupt.map((c) => c.path)]);
  const removed: StorePathName[] = [];
  for (const c of corrupt) {
    removeTree(store.hostPath(c.path));
    removed.push(c.path);
  }
  const { registered, strays } = registerStrays(store, [...missing, ...removed]);
  report.strays = strays;
  report.repair = { invalidated, removed, registered, pinned: pinUnknownGenerations(store, o.now) };
  return report;
}

/**
 * Register again every stray whose content gives its name (see the header). `gone`: the paths the
 * repair found missing or removed as corrupt, which a stray may still refer to: it then stays a
 * stray, for a registered path's closure must be whole.
 */
function registerStrays(store: LocalStore, gone: StorePathName[]): { registered: StorePathName[]; strays: VerifyReport["strays"] } {
  const valid = tablesOf(store).paths.names();
  const strays: VerifyReport["strays"] = [];
  const intact = new Map<string, { path: StorePathName; narDigest: string; narSize: number }>();
  for (const e of readdirSync(store.storeDir).sort()) {
    if (valid.has(e)) continue;
    const parsed = parseStorePathName(e);
    if (!parsed) {
      strays.push({ path: e, why: "not a store path name" });
      continue;
    }
    let tree: ReturnType<typeof hashTree>;
    try {
      tree = hashTree(store.hostPath(e as StorePathName), { selfHash: parsed.hash });
    } catch (err) {
      strays.push({ path: e, why: `it cannot be read (${(err as Error).message})` });
      continue;
    }
    if (contentHashPart(tree.digest, parsed.name) !== parsed.hash) {
      strays.push({ path: e, why: "its content does not give its name (damaged, or partly deleted)" });
      continue;
    }
    intact.set(parsed.hash, { path: e as StorePathName, narDigest: tree.digest, narSize: tree.size });
  }
  // the hash parts any of them may mention: every valid path, every intact stray, and what is gone
  const byHash = new Map<string, StorePathName>();
  for (const p of [...gone, ...(valid as Set<StorePathName>)]) byHash.set(p.slice(0, HASH_PART_LEN), p);
  for (const [h, s] of intact) byHash.set(h, s.path);
  const known = new Set(byHash.keys());
  const pending = [...intact.entries()].map(([h, s]) => ({ ...s, hash: h, refs: [...scanHashParts(store.hostPath(s.path), known)].map((r) => byHash.get(r)!) }));
  const registered: StorePathName[] = [];
  const t = tablesOf(store);
  // references first: each round registers those whose references are all valid by now
  for (let progress = true; progress && pending.length; ) {
    progress = false;
    for (let i = 0; i < pending.length; ) {
      const s = pending[i]!;
      if (!s.refs.every((r) => r === s.path || t.paths.id(r) !== undefined)) {
        i++;
        continue;
      }
      pending.splice(i, 1);
      progress = true;
      const host = store.hostPath(s.path);
      const sha256 = lstatSync(host).isFile() ? sha256File(host) : undefined;
      const adopted = adoptPath({ storeDir: store.storeDir, paths: t.paths, locks: t.locks, tempRoots: t.tempRoots, transaction: (fn) => t.transaction(fn) },
        { path: s.path, narDigest: s.narDigest, narSize: s.narSize, references: s.refs, ...(sha256 ? { ca: `sha256:${sha256}` } : {}) },
        // a single file's bytes may satisfy a fixed output again without a download
        (id) => sha256 && t.realisations.insertFixed(sha256, id));
      if (adopted) registered.push(s.path);
    }
  }
  for (const s of pending) {
    const gone = s.refs.filter((r) => r !== s.path && t.paths.id(r) === undefined);
    strays.push({ path: s.path, why: `it refers to ${gone.join(", ")}, which ${gone.length > 1 ? "are" : "is"} not in the store` });
  }
  strays.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { registered: registered.sort(), strays };
}

/** Pin each generation link under <root>/profiles that the database does not know (see the header). */
function pinUnknownGenerations(store: LocalStore, now: number): RepairReport["pinned"] {
  const dir = profilesDir(store);
  if (!existsSync(dir)) return [];
  const t = tablesOf(store);
  const pinned: RepairReport["pinned"] = [];
  for (const e of readdirSync(dir).sort()) {
    const m = /^(.+)-(\d+)-link$/.exec(e);
    if (!m) continue;
    if (t.profiles.generation(m[1]!, Number(m[2])) !== undefined) continue;
    let target: string;
    try {
      target = readlinkSync(join(dir, e));
    } catch {
      continue;
    }
    const path = target.split("/").pop() as StorePathName;
    if (!parseStorePathName(path) || t.paths.id(path) === undefined) continue;
    const pin = `recovered-profile-${m[1]}-${m[2]}`;
    t.roots.put(`pin:${pin}`, "pin", path, now);
    pinned.push({ pin, path });
  }
  return pinned;
}
