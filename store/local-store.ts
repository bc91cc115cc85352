// The local store: a directory of immutable, content-addressed paths plus a SQLite database that
// says which of them are valid, what they reference, and how they came to be.
//
// Host layout under the store root (default ~/.local/share/kiln):
//   store/<hash>-<name>   outputs, read-only, seen by builds as /kiln/store/<hash>-<name>
//   db.sqlite             metadata (WAL)
//   db.backup.sqlite      its latest sound copy (store/backup.ts), for `kiln verify --repair`
//   tmp/                  scratch directories of running builds, named by owner pid
//   logs/                 build logs
//   profiles/             <name> -> <name>-<n>-link -> store/<hash>-profile-<name> (store/profiles.ts)
//
// LocalStore is a façade: each table has one owner module (store/*-table.ts) holding its
// statements, and the database handle never leaves store/. Modules of store/ reach the tables
// through `tablesOf`; nothing outside store/ may (a test checks).
import { accessSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { BACKUP_EVERY_MS, backupTime, writeBackup } from "./backup.js";
import type { BuildRecordStart, BuildRow } from "./build-table.js";
import { checkDatabase, openDatabase, quickCheck, type DatabaseCheck, type Db } from "./database.js";
import { cleanTreeCaches, PersistentDigestCache, TREE_DIGESTS } from "./digest-cache.js";
import { KilnError, type AnyKilnError } from "./errors.js";
import { DB_FILE, repairHint, storeFailure } from "./failures.js";
import type { PathInfo } from "./path-table.js";
import { existsOrLink, removeTree, type StorePathName } from "./paths.js";
import { addOutput, importPath, type AddOutputOptions, type ImportOptions, type Registered } from "./registration.js";
import { openForRepair, refuseLostDatabase, type Recovery } from "./recovery.js";
import { cleanStaleScratch, makeScratchDir, scratchName } from "./scratch.js";
import { Tables } from "./tables.js";

export { Tables };
export type { AddOutputOptions, BuildRecordStart, BuildRow, DatabaseCheck, ImportOptions, PathInfo, Recovery };

export interface OpenStoreOptions {
  /**
   * `kiln verify --repair`: a lost or damaged database is recovered (store/recovery.ts) instead of
   * refused; `recovery` then says how
   */
  repair?: boolean;
  /** ms since the epoch (the name of the files kept aside) */
  now?: number;
}

const tablesByStore = new WeakMap<LocalStore, Tables>();

/** The tables of a store: for modules of store/ only. */
export function tablesOf(store: LocalStore): Tables {
  return tablesByStore.get(store)!;
}

export class LocalStore {
  readonly storeDir: string;
  readonly tmpDir: string;
  readonly logDir: string;
  readonly #t: Tables;
  /** this store's process-lifetime scratch dir, once made (processDir) */
  #shared: string | undefined;
  #digests: PersistentDigestCache | undefined;
  /** the roots, pins and profiles as opened (backupIfDue: did they change?) */
  readonly #rootsAtOpen: string;

  private constructor(readonly root: string, db: Db, readonly recovery?: Recovery) {
    this.storeDir = join(root, "store");
    this.tmpDir = join(root, "tmp");
    this.logDir = join(root, "logs");
    this.#t = new Tables(db);
    tablesByStore.set(this, this.#t);
    this.#rootsAtOpen = this.#rootsFingerprint();
  }

  /**
   * Open (creating and migrating if needed) the store at `root`. A root that cannot be a store is
   * refused (STORE_UNUSABLE), and so is a database that is lost or damaged while the store holds
   * paths (STORE_CORRUPT: `kiln verify --repair` recovers it).
   */
  static open(root: string, o: OpenStoreOptions = {}): LocalStore {
    prepareRoot(root);
    const { db, recovery } = o.repair
      ? openForRepair(root, o.now ?? Date.now())
      : { db: openDatabase(join(root, DB_FILE), root, { onEmpty: () => refuseLostDatabase(root) }), recovery: undefined };
    try {
      return new LocalStore(root, db, recovery);
    } catch (e) {
      // the first read of the roots fails on a damaged page
      db.close();
      throw storeFailure(e, root) ?? e;
    }
  }

  /** A failure of the machine under this store (damaged database, full or read-only disk) as a typed error. */
  failure(e: unknown): AnyKilnError | undefined {
    return storeFailure(e, this.root);
  }

  /** SQLite's integrity and foreign-key checks of the database. */
  checkDatabase(): DatabaseCheck {
    return checkDatabase(this.#t.db);
  }

  /**
   * Refuse to go on with a database that fails SQLite's quick check (gc, before it removes
   * strays: only a sound database may call a path unregistered).
   */
  assertSound(): void {
    const problems = quickCheck(this.#t.db);
    if (problems.length === 0) return;
    const file = join(this.root, DB_FILE);
    throw new KilnError("STORE_CORRUPT", `the store database ${file} is damaged (${problems.slice(0, 3).join("; ").replace(/\s*\n\s*/g, " ")})`, repairHint(this.root), { file });
  }

  /** Write the database's backup now (store/backup.ts). */
  backup(): void {
    writeBackup(this.#t.db, this.root);
  }

  /**
   * At the end of a command: refresh the backup if this process wrote to the database and the
   * roots, pins or profiles changed, or the backup is missing or older than BACKUP_EVERY_MS.
   * True if it wrote one.
   */
  backupIfDue(now: number): boolean {
    if (!this.#t.db.open || this.#t.db.inTransaction) return false;
    const wrote = (this.#t.db.prepare("SELECT total_changes() AS n").get() as { n: number }).n > 0;
    if (!wrote) return false;
    const at = backupTime(this.root);
    if (at !== undefined && now - at < BACKUP_EVERY_MS && this.#rootsFingerprint() === this.#rootsAtOpen) return false;
    this.backup();
    return true;
  }

  #rootsFingerprint(): string {
    return this.#t.roots.fingerprint() + "\0" + this.#t.profiles.fingerprint();
  }

  close(): void {
    // this process's temporary roots end with it (rows of a killed process are ignored as stale)
    if (this.#t.db.open) {
      try {
        this.#t.tempRoots.dropOwn();
      } catch (e) {
        // a database that cannot be written now (read-only, full, damaged): the command has said
        // so already, and rows of a process that is gone are ignored as stale anyway
        if (!this.failure(e)) throw e;
      } finally {
        this.#t.db.close();
      }
    }
    if (this.#shared) removeTree(this.#shared);
    this.#shared = undefined;
  }

  get isOpen(): boolean {
    return this.#t.db.open;
  }

  /** A store path's place on the host. A name is one path component (store/paths.ts), and storeDir is normalised: no join needed (gc prints thousands). */
  hostPath(p: StorePathName): string {
    return `${this.storeDir}/${p}`;
  }

  /**
   * Digests of local source files that survive the process (keyed by path+size+mtime+inode): in
   * the database, and for large trees kiln-hash's own files in <root>/tree-digests.
   */
  fileDigests(): PersistentDigestCache {
    return (this.#digests ??= new PersistentDigestCache(this.#t.db, join(this.root, TREE_DIGESTS)));
  }

  /** The host tool fingerprint cache (engine/hosttools.ts). */
  hostToolCache(): { get(key: string): string | undefined; put(key: string, json: string): void } {
    return this.#t.hostTools;
  }

  // ---- paths ---------------------------------------------------------------------------------

  pathId(p: StorePathName): number | undefined {
    return this.#t.paths.id(p);
  }

  isValid(p: StorePathName): boolean {
    return this.#t.paths.id(p) !== undefined;
  }

  pathInfo(p: StorePathName): PathInfo | undefined {
    return this.#t.paths.info(p);
  }

  /** Which of these valid paths are gone from the store directory (sorted). */
  missingOnDisk(paths: Iterable<StorePathName>): StorePathName[] {
    return [...paths].filter((p) => !existsOrLink(this.hostPath(p))).sort();
  }

  /** The closure of `paths`: one recursive query, not one query per path. */
  closure(paths: Iterable<StorePathName>): Set<StorePathName> {
    return this.#t.paths.closure([...paths]);
  }

  touch(paths: Iterable<StorePathName>, now: number): void {
    this.#t.paths.touchMany([...paths], now);
  }

  /** All valid paths with their recorded digests (for verify). */
  allPaths(): Array<{ path: StorePathName; nar_digest: string; nar_size: number }> {
    return this.#t.paths.all();
  }

  /** Invalidate paths, everything that references them, and realisations pointing at them; the paths invalidated. */
  invalidate(paths: StorePathName[]): StorePathName[] {
    return this.#t.transaction(() => this.#t.paths.invalidateWithReferrers(paths));
  }

  /**
   * Run `fn`, which only reads, in one read transaction: one consistent view of the store, and
   * lookups made one at a time cost a third of what each costs in a transaction of its own (a
   * chain's plan asks for one realisation per derivation).
   */
  reading<T>(fn: () => T): T {
    return this.#t.snapshot(fn);
  }

  // ---- realisations --------------------------------------------------------------------------

  /** Realisations of many (resolved hash, output) pairs in one query: "hash\0output" -> path. */
  realisations(pairs: Array<[string, string]>): Map<string, StorePathName> {
    return this.#t.realisations.many(pairs);
  }

  realisation(resolvedHash: string, output: string): StorePathName | undefined {
    return this.#t.realisations.get(resolvedHash, output);
  }

  fixedContent(sha256: string): StorePathName[] {
    return this.#t.realisations.fixed(sha256);
  }

  insertRealisation(resolvedHash: string, output: string, pathId: number): void {
    this.#t.realisations.insert(resolvedHash, output, pathId);
  }

  insertFixed(sha256: string, pathId: number): void {
    this.#t.realisations.insertFixed(sha256, pathId);
  }

  /**
   * Cache hits of one run: last use of their outputs, and which resolution each derivation had.
   * Two statements over JSON arrays, whatever the count (a no-op of 100k derivations made 200k
   * statement calls, most of a second).
   */
  recordHits(hits: Array<{ drv: string; resolved: string; paths: StorePathName[] }>, now: number): void {
    if (hits.length === 0) return;
    this.#t.transaction(() => {
      this.#t.builds.recordResolutions(hits.map((h) => [h.drv, h.resolved]), now);
      this.#t.paths.touchMany(hits.flatMap((h) => h.paths), now);
    });
  }

  // ---- derivations and build records ---------------------------------------------------------

  recordDerivation(hash: string, name: string, json: string): void {
    this.#t.builds.recordDerivation(hash, name, json);
  }

  /**
   * Record derivations not recorded yet; `json` is asked for only for those (encoding every
   * derivation of a large graph that the store already holds was most of the cost).
   */
  recordDerivations<T extends { hash: string; name: string }>(rows: T[], json: (row: T) => string): void {
    if (rows.length === 0) return;
    const missing = this.#t.builds.missingDerivations(rows.map((r) => r.hash));
    if (missing.size === 0) return;
    this.#t.transaction(() => {
      for (const r of rows) if (missing.has(r.hash)) this.#t.builds.recordDerivation(r.hash, r.name, json(r));
    });
  }

  derivation(hash: string): { hash: string; name: string; json: string } | undefined {
    return this.#t.builds.derivation(hash);
  }

  /** A recorded derivation's name, without reading the derivation. */
  derivationName(hash: string): string | undefined {
    return this.#t.builds.derivationName(hash);
  }

  /** The recorded names of many derivations at once (a wide derivation's inputs). */
  derivationNames(hashes: readonly string[]): Map<string, string> {
    return this.#t.builds.derivationNames(hashes);
  }

  resolution(drvHash: string): string | undefined {
    return this.#t.builds.resolution(drvHash);
  }

  recordResolution(drvHash: string, resolvedHash: string, now: number): void {
    this.#t.builds.recordResolution(drvHash, resolvedHash, now);
  }

  startBuild(b: BuildRecordStart): number {
    return this.#t.builds.start(b);
  }

  finishBuild(id: number, status: "failed" | "cancelled", exitCode: number | null, now: number): void {
    this.#t.builds.finish(id, status, exitCode, now);
  }

  completeBuild(id: number, outputs: Record<string, string>, now: number): void {
    this.#t.builds.complete(id, outputs, now);
  }

  lastBuild(drvHash: string): BuildRow | undefined {
    return this.#t.builds.last(drvHash);
  }

  lastBuildByName(name: string): BuildRow | undefined {
    return this.#t.builds.lastByName(name);
  }

  /**
   * Builds recorded as running whose process is gone (SIGKILL, power loss) were interrupted:
   * mark them cancelled so history does not show them running forever.
   */
  reapInterruptedBuilds(now: number): number {
    let n = 0;
    for (const b of this.#t.builds.running()) {
      if (this.#t.locks.heldByLive(`build:${b.resolved_hash}`)) continue;
      this.#t.builds.finish(b.id, "cancelled", null, now);
      n++;
    }
    return n;
  }

  // ---- scratch -------------------------------------------------------------------------------

  /**
   * A scratch directory for the life of this store object (files every build of this process
   * shares, e.g. the sandbox's /etc); removed by close(), or by cleanStaleScratch once the process
   * is gone.
   */
  processDir(): string {
    return (this.#shared ??= this.scratchDir("process"));
  }

  /** A fresh scratch directory owned by this process. */
  scratchDir(label: string): string {
    return makeScratchDir(this.tmpDir, label);
  }

  /** A fresh scratch directory's name, for a process (kiln's sandbox server) that makes it for this one. */
  scratchName(label: string): string {
    return scratchName(this.tmpDir, label);
  }

  /** Remove scratch directories left by kiln processes that died (SIGKILL, power loss). */
  cleanStaleScratch(): number {
    return cleanStaleScratch(this.tmpDir);
  }

  /** Remove kiln-hash's caches of trees not hashed for a month (store/digest-cache.ts); `dryRun`: count them. */
  cleanTreeCaches(now: number, dryRun = false): number {
    return cleanTreeCaches(join(this.root, TREE_DIGESTS), now, dryRun);
  }

  // ---- locks ---------------------------------------------------------------------------------

  /** Take a named lock if it is free or held by a dead process. Atomic through SQLite. */
  tryLock(key: string): boolean {
    return this.#t.locks.tryLock(key);
  }

  /** Blocking variant for short critical sections inside synchronous code. */
  lockSync(key: string): void {
    this.#t.locks.lockSync(key);
  }

  unlock(key: string): void {
    this.#t.locks.unlock(key);
  }

  /** Wait for a lock, polling; aborts with the signal. */
  lock(key: string, signal?: AbortSignal, onWait?: () => void): Promise<void> {
    return this.#t.locks.lock(key, signal, onWait);
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
    return this.#t.transaction(() => {
      this.#t.tempRoots.addMany(list);
      return this.#t.paths.validOf(list);
    });
  }

  // ---- the ways in ---------------------------------------------------------------------------

  /** Register a build's output (store/registration.ts); `register` runs inside its transaction. */
  addOutput(o: AddOutputOptions, register: (pathId: number, path: StorePathName) => void): Registered {
    return addOutput(this.#deps(), o, register);
  }

  /** Import a path made elsewhere, verified by re-hashing (store/registration.ts). */
  importPath(o: ImportOptions, register?: (pathId: number, path: StorePathName) => void): Registered {
    return importPath(this.#deps(), o, register);
  }

  #deps() {
    const t = this.#t;
    return { storeDir: this.storeDir, paths: t.paths, locks: t.locks, tempRoots: t.tempRoots, transaction: <T>(fn: () => T) => t.transaction(fn) };
  }
}

/** Make the store's directories, or refuse a root that cannot be a store (a file, read-only, not ours). */
function prepareRoot(root: string): void {
  const refuse = (why: string) =>
    new KilnError("STORE_UNUSABLE", `the store ${root} cannot be used: ${why}`,
      "point --store (or KILN_STORE) at a directory that the user running kiln may write (it is created if missing)", { path: root });
  const reason = (e: unknown) => {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "EROFS" ? "it is on a read-only file system"
      : code === "EACCES" || code === "EPERM" ? `permission denied (${(e as Error).message})`
      : code === "ENOTDIR" ? "a part of its path is a file, not a directory"
      : (e as Error).message;
  };
  try {
    if (!statSync(root).isDirectory()) throw refuse("it is a file, not a directory");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e instanceof KilnError ? e : refuse(reason(e));
  }
  try {
    for (const d of ["", "store", "tmp", "logs"]) {
      const dir = join(root, d);
      mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.W_OK | constants.X_OK);
    }
  } catch (e) {
    // a recursive mkdir under a read-only or foreign directory reports ENOENT: ask the directory that is there
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      let dir = root;
      while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
      try {
        accessSync(dir, constants.W_OK | constants.X_OK);
      } catch (e2) {
        throw refuse(reason(e2));
      }
    }
    throw refuse(reason(e));
  }
}
