// The ways into the store: registering a build's output (addOutput), importing a path whose
// tree, references and digest come from elsewhere (importPath: a substituter, a cache), and
// adopting a path that is in the store directory but that the database lost (adoptPath: kiln
// verify --repair). Every way the content is hashed here and the path named by that digest;
// nothing enters on someone's word.
//
// Phases of addOutput: scan references -> hash (self-references normalised) -> name by content
// -> rewrite self-references -> make read-only -> rename into place -> one transaction.
import { closeSync, lstatSync, openSync, readlinkSync, renameSync, symlinkSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { hashTree, type FileDigestCache } from "./archive.js";
import { contentHashPart, HASH_PART_LEN, sha256File } from "./digest.js";
import { KilnError } from "./errors.js";
import type { LockTable } from "./lock-table.js";
import type { PathInfo, PathTable } from "./path-table.js";
import { canonicalise, existsOrLink, makeStorePathName, parseStorePathName, removeTree, type StorePathName } from "./paths.js";
import { scanReferences } from "./refscan.js";
import type { TempRootTable } from "./temp-root-table.js";

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

export interface ImportOptions {
  /** host path of the tree to import (moved into the store, or removed) */
  tree: string;
  /** the store path it claims to be */
  path: StorePathName;
  /** its references: valid store paths already (import a closure dependencies first), or itself */
  references: StorePathName[];
  /** its claimed tree digest (self-references normalised) */
  narDigest: string;
  /** 'sha256:<hex>' of a fixed output: the file's sha256 is checked too */
  ca?: string;
  deriver?: string;
}

/** What registration needs of the store, so that this module does not import the façade. */
export interface RegistrationDeps {
  storeDir: string;
  paths: PathTable;
  locks: LockTable;
  tempRoots: TempRootTable;
  transaction<T>(fn: () => T): T;
}

export type Registered = { path: StorePathName; fresh: boolean; info: PathInfo };

export function addOutput(s: RegistrationDeps, o: AddOutputOptions, register: (pathId: number, path: StorePathName) => void): Registered {
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
  const finalHash = contentHashPart(tree.digest, o.name);
  const path = makeStorePathName(finalHash, o.name);
  const refs = [...found].filter((h) => h !== o.selfHash).map((h) => byHash.get(h)!).sort();
  if (selfHash) {
    rewriteSelfRefs(selfRefs, selfHash, finalHash);
    refs.push(path);
    refs.sort();
  }
  return place(s, { tree: o.scratch, path, refs, narDigest: tree.digest, narSize: tree.size, deriver: o.deriver ?? null, ca: o.ca ?? null }, register);
}

/**
 * Import a path made elsewhere. Verified by re-hashing: the tree's digest (its own hash part
 * normalised, as at registration) must be the claimed one and must name the claimed path; a
 * fixed output's file must have its sha256; every claimed reference must occur in the tree and
 * be valid here. A tree that fails is removed and nothing is registered.
 */
export function importPath(s: RegistrationDeps, o: ImportOptions, register: (pathId: number, path: StorePathName) => void = () => {}): Registered {
  const parsed = parseStorePathName(o.path);
  const refuse = (what: string): never => {
    removeTree(o.tree);
    throw new KilnError("STORE_CORRUPT", `refused to import ${o.path}: ${what}`, "the source of this path is damaged or not trustworthy: remove it from your substituters, then run the command again", { path: o.path });
  };
  if (!parsed) refuse("not a store path name");
  const own = parsed!.hash;
  const tree = hashTree(o.tree, { selfHash: own });
  if (tree.digest !== o.narDigest) refuse(`its content hashes to ${tree.digest}, not the claimed ${o.narDigest}`);
  if (contentHashPart(tree.digest, parsed!.name) !== own) refuse("its content does not give its name");
  if (o.ca) {
    const want = o.ca.replace(/^sha256:/, "");
    const st = lstatSync(o.tree);
    const actual = st.isFile() ? sha256File(o.tree) : "(not a regular file)";
    if (actual !== want) refuse(`its sha256 is ${actual}, not ${want}`);
  }
  const others = o.references.filter((r) => r !== o.path);
  const present = scanReferences(o.tree, others.map((r) => r.slice(0, HASH_PART_LEN)));
  const absent = others.find((r) => !present.has(r.slice(0, HASH_PART_LEN)));
  if (absent) refuse(`it claims a reference to ${absent}, which it does not contain`);
  return place(s, { tree: o.tree, path: o.path, refs: [...o.references].sort(), narDigest: tree.digest, narSize: tree.size, deriver: o.deriver ?? null, ca: o.ca ?? null }, register);
}

/** Move a hashed tree into place (unless the path is valid already) and register it in one transaction. */
function place(
  s: RegistrationDeps,
  p: { tree: string; path: StorePathName; refs: StorePathName[]; narDigest: string; narSize: number; deriver: string | null; ca: string | null },
  register: (pathId: number, path: StorePathName) => void,
): Registered {
  const dest = join(s.storeDir, p.path);
  const now = Date.now();
  const key = `path:${p.path.slice(0, HASH_PART_LEN)}`;
  let fresh = false;
  // another process may be adding the same content right now
  s.locks.lockSync(key);
  try {
    if (s.paths.id(p.path) === undefined) {
      // a path on disk but not in the database is a remnant of a crash: replace it
      if (existsOrLink(dest)) removeTree(dest);
      // moved first, made read-only after: a directory without write permission cannot be
      // moved to another parent by anyone but root (its '..' entry changes)
      renameSync(p.tree, dest);
      canonicalise(dest);
      fresh = true;
    } else {
      removeTree(p.tree);
    }
    try {
      s.transaction(() => recordPlaced(s, p, now, register));
    } catch (e) {
      // not registered (a full disk, a damaged database): what was moved into place goes, rather
      // than stay as a stray that keeps the disk full
      if (fresh) {
        try {
          removeTree(dest);
        } catch {
          /* gc removes it as a stray */
        }
      }
      throw e;
    }
  } finally {
    s.locks.unlock(key);
  }
  return { path: p.path, fresh, info: s.paths.info(p.path)! };
}

/** Inside place's transaction: the rows of a path placed on disk. */
function recordPlaced(
  s: RegistrationDeps,
  p: { path: StorePathName; refs: StorePathName[]; narDigest: string; narSize: number; deriver: string | null; ca: string | null },
  now: number,
  register: (pathId: number, path: StorePathName) => void,
): void {
  let id = s.paths.id(p.path);
  if (id === undefined) {
    const r = s.paths.insert({ path: p.path, narDigest: p.narDigest, narSize: p.narSize, deriver: p.deriver, ca: p.ca, now }, p.refs);
    if (typeof r !== "number") throw new KilnError("STORE_CORRUPT", `reference ${r.missing} of ${p.path} is not a valid path`, "run `kiln verify`");
    id = r;
  } else {
    s.paths.touch(p.path, now);
  }
  // what this process has just produced (or found already there) stays alive until it exits
  s.tempRoots.add(p.path);
  register(id, p.path);
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

export interface AdoptOptions {
  path: StorePathName;
  /** its tree digest, as the caller has just computed it (its content gives its name) */
  narDigest: string;
  narSize: number;
  /** the store paths it mentions, all valid already (or itself) */
  references: StorePathName[];
  /** 'sha256:<hex>' of a single file: its bytes can satisfy a fixed output */
  ca?: string;
}

/**
 * Register a path that is already in place in the store directory (see the header); the caller
 * has re-hashed it. Under its path lock, and only if it is still unregistered: true if it was
 * registered here.
 */
export function adoptPath(s: RegistrationDeps, o: AdoptOptions, register: (pathId: number) => void = () => {}): boolean {
  const key = `path:${o.path.slice(0, HASH_PART_LEN)}`;
  s.locks.lockSync(key);
  try {
    if (s.paths.id(o.path) !== undefined) return false;
    canonicalise(join(s.storeDir, o.path));
    return s.transaction(() => {
      if (s.paths.id(o.path) !== undefined) return false;
      const now = Date.now();
      const r = s.paths.insert({ path: o.path, narDigest: o.narDigest, narSize: o.narSize, deriver: null, ca: o.ca ?? null, now }, [...o.references].sort());
      if (typeof r !== "number") throw new KilnError("STORE_CORRUPT", `reference ${r.missing} of ${o.path} is not a valid path`, "run `kiln verify --repair` again");
      register(r);
      return true;
    });
  } finally {
    s.locks.unlock(key);
  }
}
