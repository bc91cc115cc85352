// The store: a directory of immutable, content-addressed paths plus a SQLite database that
// says which of them are valid, what they reference, and how they came to be.
//
// Host layout under the store root (default ~/.local/share/kiln):
//   store/<hash>-<name>   outputs, read-only, seen by builds as /kiln/store/<hash>-<name>
//   db.sqlite             metadata (WAL)
//   tmp/                  scratch directories of running builds, named by owner pid
//   logs/                 build logs
//   profiles/             <name> -> <name>-<n>-link -> store/<hash>-profile-<name> (store/profiles.ts)
import Database from "better-sqlite3";
import { chmodSync, existsSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, openSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { hashTree, walkTree, type FileDigestCache } from "./archive.js";
import { HASH_PART_LEN, hashPart, BASE32_CHARS } from "./digest.js";
import { KilnError } from "./errors.js";
import { MIGRATIONS } from "./migrations.js";
import { isProcessAlive, SELF_PID, SELF_START } from "./process.js";
import { scanReferences } from "./refscan.js";

/** Where every build sees the store, wherever it lives on the host. */
export const LOGICAL_STORE = "/kiln/store";

/** The base name of a store path: `<32-char hash>-<name>`. */
export type StorePathName = string & { readonly __brand: "StorePathName" };

export interface PathInfo {
  path: StorePathName;
  narDigest: string;
  narSize: number;
  deriver: string | null;
  ca: string | null;
  registeredAt: number;
  lastUsed: number;
  references: StorePathName[];
}

export interface BuildRecordStart {
  drvHash: string;
  resolvedHash: string;
  name: string;
  inputs: Record<string, string>;
  logFile: string;
  startedAt: number;
}

export interface BuildRow {
  id: number;
  drv_hash: string;
  resolved_hash: string;
  name: string;
  started_at: number;
  ended_at: number | null;
  status: "running" | "built" | "failed" | "cancelled";
  exit_code: number | null;
  log_file: string | null;
  inputs: string;
  outputs: string | null;
}

const NAME_RE = /^[a-zA-Z0-9+._?=-][a-zA-Z0-9+._?=-]*$/;

export function validateName(name: string): string | undefined {
  if (!name) return "a store path name cannot be empty";
  if (name.length > 180) return "a store path name must be at most 180 characters";
  if (!NAME_RE.test(name) || name.startsWith(".")) {
    return `store path names may only contain letters, digits and + - . _ ? = and must not start with '.': ${JSON.stringify(name)}`;
  }
  return undefined;
}

export function parseStorePathName(s: string): { hash: string; name: string } | undefined {
  const base = s.startsWith(LOGICAL_STORE + "/") ? s.slice(LOGICAL_STORE.length + 1).split("/")[0]! : s;
  if (base.length < HASH_PART_LEN + 2 || base[HASH_PART_LEN] !== "-") return undefined;
  const hash = base.slice(0, HASH_PART_LEN);
  for (const c of hash) if (!BASE32_CHARS.has(c)) return undefined;
  return { hash, name: base.slice(HASH_PART_LEN + 1) };
}

export function makeStorePathName(hash: string, name: string): StorePathName {
  return `${hash}-${name}` as StorePathName;
}

/** Remove a tree even when it was made read-only. Native chmod/rm: a kernel build tree has ~80k files. */
export function removeTree(path: string): void {
  // in-process: a build's scratch dir is removed after every build, and spawning chmod + rm
  // synchronously cost ~45 ms each time (as much as the sandboxed build of a small derivation)
  try {
    rmSync(path, { recursive: true, force: true });
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM" && code !== "ENOTEMPTY") throw e;
  }
  // read-only directories (finished outputs are 0555) block unlinking their entries unless root
  try {
    walkTree(path, (p, st) => {
      if (st.isDirectory()) chmodSync(p, 0o755);
    });
  } catch {
    /* best effort; rmSync reports what really fails */
  }
  rmSync(path, { recursive: true, force: true });
}

function isDanglingLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Make a finished output immutable and time-normalised: files 0444 (0555 if executable),
 * directories 0555, every mtime/atime = 1 s after the epoch (as Nix does).
 */
function canonicalise(root: string): void {
  const dirs: string[] = [];
  walkTree(root, (p, st) => {
    if (st.isSymbolicLink()) {
      lutimesSync(p, 1, 1);
    } else if (st.isDirectory()) {
      dirs.push(p);
    } else {
      chmodSync(p, st.mode & 0o100 ? 0o555 : 0o444);
      lutimesSync(p, 1, 1);
    }
  });
  // directories last, deepest first, so that making them read-only does not block the walk
  for (const d of dirs.reverse()) {
    chmodSync(d, 0o555);
    lutimesSync(d, 1, 1);
  }
}

export interface AddOutputOptions {
  /** host path of the finished scratch output */
  scratch: string;
  /** store path name (without hash) */
  name: string;
  /** the hash part the build used for its own output path, normalised away */
  selfHash?: string;
  /** store paths the output may reference (the closure of the build's inputs) */
  candidates: Iterable<StorePathName>;
  deriver?: string;
  ca?: string;
  cache?: FileDigestCache;
}

export class Store {
  readonly storeDir: string;
  readonly tmpDir: string;
  readonly logDir: string;
  readonly db: Database.Database;
  private readonly stmts;
  /** this Store's process-lifetime scratch dir, once made (processDir) */
  private shared: string | undefined;

  private constructor(readonly root: string, db: Database.Database) {
    this.storeDir = join(root, "store");
    this.tmpDir = join(root, "tmp");
    this.logDir = join(root, "logs");
    this.db = db;
    this.stmts = {
      pathId: db.prepare<[string], { id: number }>("SELECT id FROM valid_paths WHERE path = ?"),
      closure: db.prepare<[string], { path: string }>(
        `WITH RECURSIVE c(id) AS (
           SELECT id FROM valid_paths WHERE path IN (SELECT value FROM json_each(?))
           UNION SELECT r.reference FROM refs r JOIN c ON r.referrer = c.id)
         SELECT v.path FROM c JOIN valid_paths v ON v.id = c.id`,
      ),
      pathInfo: db.prepare<[string], { id: number; path: string; nar_digest: string; nar_size: number; deriver: string | null; ca: string | null; registered_at: number; last_used: number }>(
        "SELECT * FROM valid_paths WHERE path = ?",
      ),
      refsOf: db.prepare<[number], { path: string }>(
        "SELECT v.path FROM refs r JOIN valid_paths v ON v.id = r.reference WHERE r.referrer = ? ORDER BY v.path",
      ),
      realisation: db.prepare<[string, string], { path: string }>(
        "SELECT v.path FROM realisations r JOIN valid_paths v ON v.id = r.path_id WHERE r.resolved_hash = ? AND r.output = ?",
      ),
      realisationsOf: db.prepare<[string], { h: string; o: string; path: string }>(
        `SELECT r.resolved_hash AS h, r.output AS o, v.path FROM json_each(?) j
         JOIN realisations r ON r.resolved_hash = json_extract(j.value, '$[0]') AND r.output = json_extract(j.value, '$[1]')
         JOIN valid_paths v ON v.id = r.path_id`,
      ),
      insertPath: db.prepare(
        "INSERT INTO valid_paths (path, nar_digest, nar_size, deriver, ca, registered_at, last_used) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ),
      insertRef: db.prepare("INSERT OR IGNORE INTO refs (referrer, reference) VALUES (?, ?)"),
      insertRealisation: db.prepare(
        "INSERT OR REPLACE INTO realisations (resolved_hash, output, path_id) VALUES (?, ?, ?)",
      ),
      insertFixed: db.prepare("INSERT OR IGNORE INTO fixed_content (sha256, path_id) VALUES (?, ?)"),
      fixed: db.prepare<[string], { path: string }>(
        "SELECT v.path FROM fixed_content f JOIN valid_paths v ON v.id = f.path_id WHERE f.sha256 = ? ORDER BY v.id",
      ),
      touch: db.prepare("UPDATE valid_paths SET last_used = ? WHERE path = ?"),
      getLock: db.prepare<[string], { pid: number; pid_start: string }>("SELECT pid, pid_start FROM locks WHERE key = ?"),
      putLock: db.prepare("INSERT OR REPLACE INTO locks (key, pid, pid_start, taken_at) VALUES (?, ?, ?, ?)"),
      delLock: db.prepare("DELETE FROM locks WHERE key = ? AND pid = ? AND pid_start = ?"),
      putDrv: db.prepare("INSERT OR IGNORE INTO derivations (hash, name, json) VALUES (?, ?, ?)"),
      getDrv: db.prepare<[string], { hash: string; name: string; json: string }>("SELECT * FROM derivations WHERE hash = ?"),
      putResolution: db.prepare("INSERT OR REPLACE INTO resolutions (drv_hash, resolved_hash, updated_at) VALUES (?, ?, ?)"),
      getResolution: db.prepare<[string], { resolved_hash: string }>("SELECT resolved_hash FROM resolutions WHERE drv_hash = ?"),
      startBuild: db.prepare(
        "INSERT INTO builds (drv_hash, resolved_hash, name, started_at, status, log_file, inputs) VALUES (?, ?, ?, ?, 'running', ?, ?)",
      ),
      finishBuild: db.prepare("UPDATE builds SET ended_at = ?, status = ?, exit_code = ?, outputs = ? WHERE id = ?"),
      lastBuild: db.prepare<[string], BuildRow>("SELECT * FROM builds WHERE drv_hash = ? ORDER BY id DESC LIMIT 1"),
      lastBuildByName: db.prepare<[string], BuildRow>("SELECT * FROM builds WHERE name = ? ORDER BY id DESC LIMIT 1"),
      putTempRoot: db.prepare("INSERT OR IGNORE INTO temp_roots (pid, pid_start, path) VALUES (?, ?, ?)"),
      putTempRoots: db.prepare<[number, string, string]>("INSERT OR IGNORE INTO temp_roots (pid, pid_start, path) SELECT ?, ?, value FROM json_each(?)"),
      validOf: db.prepare<[string], { path: string }>("SELECT v.path FROM json_each(?) j JOIN valid_paths v ON v.path = j.value"),
      missingDrvs: db.prepare<[string], { value: string }>("SELECT value FROM json_each(?) j WHERE NOT EXISTS (SELECT 1 FROM derivations d WHERE d.hash = j.value)"),
      putResolutions: db.prepare<[number, string]>(
        "INSERT OR REPLACE INTO resolutions (drv_hash, resolved_hash, updated_at) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ? FROM json_each(?)",
      ),
      touchMany: db.prepare<[number, string]>("UPDATE valid_paths SET last_used = ? WHERE path IN (SELECT value FROM json_each(?))"),
      delTempRoots: db.prepare("DELETE FROM temp_roots WHERE pid = ? AND pid_start = ?"),
    };
  }

  /** Open (creating and migrating if needed) the store at `root`. */
  static open(root: string): Store {
    for (const d of ["store", "tmp", "logs"]) mkdirSync(join(root, d), { recursive: true });
    let db: Database.Database;
    try {
      db = new Database(join(root, "db.sqlite"));
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
    return new Store(root, db);
  }

  close(): void {
    // this process's temporary roots end with it (rows of a killed process are ignored as stale)
    if (this.db.open) this.stmts.delTempRoots.run(SELF_PID, SELF_START);
    this.db.close();
    if (this.shared) removeTree(this.shared);
    this.shared = undefined;
  }

  hostPath(p: StorePathName): string {
    return join(this.storeDir, p);
  }

  static logicalPath(p: StorePathName): string {
    return `${LOGICAL_STORE}/${p}`;
  }

  pathId(p: StorePathName): number | undefined {
    return this.stmts.pathId.get(p)?.id;
  }

  isValid(p: StorePathName): boolean {
    return this.stmts.pathId.get(p) !== undefined;
  }

  pathInfo(p: StorePathName): PathInfo | undefined {
    const row = this.stmts.pathInfo.get(p);
    if (!row) return undefined;
    return {
      path: row.path as StorePathName,
      narDigest: row.nar_digest,
      narSize: row.nar_size,
      deriver: row.deriver,
      ca: row.ca,
      registeredAt: row.registered_at,
      lastUsed: row.last_used,
      references: this.stmts.refsOf.all(row.id).map((r) => r.path as StorePathName),
    };
  }

  /** The closure of `paths`: one recursive query, not one query per path. */
  closure(paths: Iterable<StorePathName>): Set<StorePathName> {
    const list = [...paths];
    if (list.length === 0) return new Set();
    // one statement for any number of paths (a statement per list length cost a prepare per build)
    const rows = this.stmts.closure.all(JSON.stringify(list));
    return new Set(rows.map((r) => r.path as StorePathName));
  }

  /** Realisations of many (resolved hash, output) pairs in one query: "hash\0output" -> path. */
  realisations(pairs: Array<[string, string]>): Map<string, StorePathName> {
    const m = new Map<string, StorePathName>();
    if (pairs.length === 0) return m;
    for (const r of this.stmts.realisationsOf.all(JSON.stringify(pairs))) m.set(`${r.h}\0${r.o}`, r.path as StorePathName);
    return m;
  }

  realisation(resolvedHash: string, output: string): StorePathName | undefined {
    return this.stmts.realisation.get(resolvedHash, output)?.path as StorePathName | undefined;
  }

  fixedContent(sha256: string): StorePathName[] {
    return this.stmts.fixed.all(sha256).map((r) => r.path as StorePathName);
  }

  touch(paths: Iterable<StorePathName>, now: number): void {
    this.stmts.touchMany.run(now, JSON.stringify([...paths]));
  }

  /**
   * Cache hits of one run: last use of their outputs, and which resolution each derivation had.
   * Two statements over JSON arrays, whatever the count (a no-op of 100k derivations made 200k
   * statement calls, most of a second).
   */
  recordHits(hits: Array<{ drv: string; resolved: string; paths: StorePathName[] }>, now: number): void {
    if (hits.length === 0) return;
    const pairs = JSON.stringify(hits.map((h) => [h.drv, h.resolved]));
    const paths = JSON.stringify(hits.flatMap((h) => h.paths));
    this.db.transaction(() => {
      this.stmts.putResolutions.run(now, pairs);
      this.stmts.touchMany.run(now, paths);
    }).immediate();
  }

  recordDerivation(hash: string, name: string, json: string): void {
    this.stmts.putDrv.run(hash, name, json);
  }

  /**
   * Record derivations not recorded yet; `json` is asked for only for those (encoding every
   * derivation of a large graph that the store already holds was most of the cost).
   */
  recordDerivations<T extends { hash: string; name: string }>(rows: T[], json: (row: T) => string): void {
    if (rows.length === 0) return;
    const missing = new Set(this.stmts.missingDrvs.all(JSON.stringify(rows.map((r) => r.hash))).map((r) => r.value));
    if (missing.size === 0) return;
    const tx = this.db.transaction((rs: T[]) => {
      for (const r of rs) this.stmts.putDrv.run(r.hash, r.name, json(r));
    });
    tx(rows.filter((r) => missing.has(r.hash)));
  }

  derivation(hash: string): { hash: string; name: string; json: string } | undefined {
    return this.stmts.getDrv.get(hash);
  }

  resolution(drvHash: string): string | undefined {
    return this.stmts.getResolution.get(drvHash)?.resolved_hash;
  }

  recordResolution(drvHash: string, resolvedHash: string, now: number): void {
    this.stmts.putResolution.run(drvHash, resolvedHash, now);
  }

  startBuild(b: BuildRecordStart): number {
    return Number(
      this.stmts.startBuild.run(b.drvHash, b.resolvedHash, b.name, b.startedAt, b.logFile, JSON.stringify(b.inputs)).lastInsertRowid,
    );
  }

  finishBuild(id: number, status: "failed" | "cancelled", exitCode: number | null, now: number): void {
    this.stmts.finishBuild.run(now, status, exitCode, null, id);
  }

  lastBuild(drvHash: string): BuildRow | undefined {
    return this.stmts.lastBuild.get(drvHash);
  }

  lastBuildByName(name: string): BuildRow | undefined {
    return this.stmts.lastBuildByName.get(name);
  }

  /**
   * A scratch directory for the life of this Store (files every build of this process shares,
   * e.g. the sandbox's /etc); removed by close(), or by cleanStaleScratch once the process is gone.
   */
  processDir(): string {
    if (!this.shared) this.shared = this.scratchDir("process");
    return this.shared;
  }

  /** A fresh scratch directory owned by this process. */
  scratchDir(label: string): string {
    const dir = join(this.tmpDir, `${SELF_PID}-${SELF_START}-${label}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /**
   * Builds recorded as running whose process is gone (SIGKILL, power loss) were interrupted:
   * mark them cancelled so history does not show them running forever.
   */
  reapInterruptedBuilds(now: number): number {
    const running = this.db.prepare<[], { id: number; resolved_hash: string }>("SELECT id, resolved_hash FROM builds WHERE status = 'running'").all();
    let n = 0;
    for (const b of running) {
      const holder = this.stmts.getLock.get(`build:${b.resolved_hash}`);
      if (holder && isProcessAlive(holder.pid, holder.pid_start)) continue;
      this.stmts.finishBuild.run(now, "cancelled", null, null, b.id);
      n++;
    }
    return n;
  }

  /** Remove scratch directories left by kiln processes that died (SIGKILL, power loss). */
  cleanStaleScratch(): number {
    let n = 0;
    for (const e of readdirSync(this.tmpDir)) {
      const [pid, start] = e.split("-");
      if (pid && start && !isProcessAlive(Number(pid), start)) {
        removeTree(join(this.tmpDir, e));
        n++;
      }
    }
    return n;
  }

  // ---- locks ---------------------------------------------------------------------------------

  /** Take a named lock if it is free or held by a dead process. Atomic through SQLite. */
  tryLock(key: string): boolean {
    const tx = this.db.transaction(() => {
      const cur = this.stmts.getLock.get(key);
      if (cur && !(cur.pid === SELF_PID && cur.pid_start === SELF_START) && isProcessAlive(cur.pid, cur.pid_start)) return false;
      this.stmts.putLock.run(key, SELF_PID, SELF_START, Date.now());
      return true;
    });
    return tx.immediate();
  }

  /** Blocking variant for short critical sections inside synchronous code. */
  lockSync(key: string): void {
    for (let delay = 5; !this.tryLock(key); delay = Math.min(delay * 2, 200)) sleepSync(delay);
  }

  unlock(key: string): void {
    this.stmts.delLock.run(key, SELF_PID, SELF_START);
  }

  /** Wait for a lock, polling; aborts with the signal. */
  async lock(key: string, signal?: AbortSignal, onWait?: () => void): Promise<void> {
    let waited = false;
    for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
      if (signal?.aborted) throw new KilnError("CANCELLED", "cancelled while waiting for a lock");
      if (this.tryLock(key)) return;
      if (!waited) {
        waited = true;
        onWait?.();
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  // ---- temporary roots (see store/gc.ts for the protocol with a concurrent gc) -----------------

  /**
   * Root `paths` for the life of this process, then say which of them are still valid, in one
   * write transaction. Root first, check second: a gc's deletion transactions re-read temp roots,
   * so a path found valid here can no longer be collected, and one found invalid was collected
   * before it was rooted (the caller must then rebuild or refetch it, not use it).
   */
  addTempRoots(paths: Iterable<StorePathName>): Set<StorePathName> {
    const list = [...paths];
    if (list.length === 0) return new Set();
    // one statement each for the rows and the check, over a JSON array (a plan of 100k cached
    // paths roots them all at once)
    const json = JSON.stringify(list);
    return this.db.transaction(() => {
      this.stmts.putTempRoots.run(SELF_PID, SELF_START, json);
      return new Set(this.stmts.validOf.all(json).map((r) => r.path as StorePathName));
    }).immediate();
  }

  // ---- registration --------------------------------------------------------------------------

  /**
   * Move a finished scratch output into the store and register it atomically.
   * Phases: scan references → hash (self-references normalised) → name by content →
   * rewrite self-references → make read-only → rename into place → one transaction.
   * If the same content is already valid, the scratch copy is dropped (early cutoff's source).
   */
  addOutput(o: AddOutputOptions, register: (pathId: number, path: StorePathName) => void): { path: StorePathName; fresh: boolean; info: PathInfo } {
    const byHash = new Map<string, StorePathName>();
    for (const c of o.candidates) byHash.set(c.slice(0, HASH_PART_LEN), c);
    const scanFor = new Set(byHash.keys());
    if (o.selfHash) scanFor.add(o.selfHash);
    const found = scanReferences(o.scratch, scanFor);

    const selfRefs: Array<{ file: string; offset: number }> = [];
    const selfHash = o.selfHash && found.has(o.selfHash) ? o.selfHash : undefined;
    const tree = hashTree(o.scratch, {
      cache: selfHash ? undefined : o.cache,
      selfHash,
      onSelfRef: (file, offset) => selfRefs.push({ file, offset }),
    });
    const finalHash = hashPart(`kiln-ca:${tree.digest}:${o.name}`);
    const path = makeStorePathName(finalHash, o.name);
    const refs = [...found].filter((h) => h !== o.selfHash).map((h) => byHash.get(h)!).sort();
    if (selfHash) {
      rewriteSelfRefs(selfRefs, selfHash, finalHash);
      refs.push(path);
      refs.sort();
    }

    const dest = this.hostPath(path);
    const now = Date.now();
    let fresh = false;
    // another process may be adding the same content right now
    this.lockSync(`path:${finalHash}`);
    try {
    if (!this.isValid(path)) {
      // a path on disk but not in the database is a remnant of a crash: replace it
      if (existsSync(dest) || isDanglingLink(dest)) removeTree(dest);
      canonicalise(o.scratch);
      renameSync(o.scratch, dest);
      fresh = true;
    } else {
      removeTree(o.scratch);
    }

    const tx = this.db.transaction(() => {
      let id = this.stmts.pathId.get(path)?.id;
      if (id === undefined) {
        id = Number(this.stmts.insertPath.run(path, tree.digest, tree.size, o.deriver ?? null, o.ca ?? null, now, now).lastInsertRowid);
        for (const r of refs) {
          const rid = r === path ? id : this.stmts.pathId.get(r)?.id;
          if (rid === undefined) throw new KilnError("STORE_CORRUPT", `reference ${r} of ${path} is not a valid path`, "run `kiln verify`");
          this.stmts.insertRef.run(id, rid);
        }
      } else {
        this.stmts.touch.run(now, path);
      }
      // what this process has just produced (or found already there) stays alive until it exits
      this.stmts.putTempRoot.run(SELF_PID, SELF_START, path);
      register(id, path);
    });
    tx.immediate();
    } finally {
      this.unlock(`path:${finalHash}`);
    }
    return { path, fresh, info: this.pathInfo(path)! };
  }

  insertRealisation(resolvedHash: string, output: string, pathId: number): void {
    this.stmts.insertRealisation.run(resolvedHash, output, pathId);
  }

  insertFixed(sha256: string, pathId: number): void {
    this.stmts.insertFixed.run(sha256, pathId);
  }

  completeBuild(id: number, outputs: Record<string, string>, now: number): void {
    this.stmts.finishBuild.run(now, "built", 0, JSON.stringify(outputs), id);
  }

  /** All valid paths with their recorded digests (for verify). */
  allPaths(): Array<{ path: StorePathName; nar_digest: string; nar_size: number }> {
    return this.db.prepare<[], { path: StorePathName; nar_digest: string; nar_size: number }>("SELECT path, nar_digest, nar_size FROM valid_paths ORDER BY path").all();
  }

  /** Invalidate a path (and everything that references it, and realisations pointing at it). */
  invalidate(paths: StorePathName[]): void {
    const tx = this.db.transaction(() => {
      const closure = new Set<number>();
      const ids = paths.map((p) => this.stmts.pathId.get(p)?.id).filter((x): x is number => x !== undefined);
      const q = this.db.prepare<[number], { referrer: number }>("SELECT referrer FROM refs WHERE reference = ?");
      const stack = [...ids];
      while (stack.length) {
        const id = stack.pop()!;
        if (closure.has(id)) continue;
        closure.add(id);
        for (const r of q.all(id)) stack.push(r.referrer);
      }
      const del = this.db.prepare("DELETE FROM valid_paths WHERE id = ?");
      const delRefs = this.db.prepare("DELETE FROM refs WHERE referrer = ?");
      for (const id of closure) delRefs.run(id);
      for (const id of closure) del.run(id);
    });
    tx.immediate();
  }
}

function rewriteSelfRefs(refs: Array<{ file: string; offset: number }>, from: string, to: string): void {
  const bytes = Buffer.from(to);
  for (const r of refs) {
    if (r.offset < 0) {
      const target = readlinkSync(r.file);
      unlinkSync(r.file);
      symlinkSync(target.split(from).join(to), r.file);
      continue;
    }
    const fd = openSync(r.file, "r+");
    try {
      writeSync(fd, bytes, 0, bytes.length, r.offset);
    } finally {
      closeSync(fd);
    }
  }
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Block this thread for `ms` (synchronous code waiting on another process). */
function sleepSync(ms: number): void {
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

function migrate(db: Database.Database): void {
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
