// The content digest of a file tree: a Merkle hash over a canonical description of it.
//
// Only what survives into the store counts: entry type, the executable bit, file bytes, symlink
// targets and names (sorted bytewise). Owners, times and other mode bits do not. Being Merkle
// (a directory hashes its children's digests) lets a per-file cache skip unchanged files, so
// re-hashing a large unchanged source tree costs one lstat per file.
import { isUtf8 } from "node:buffer";
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Dirent, type Stats } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Blake3Hasher, blake3Buffer } from "./digest.js";
import { defaultHashWorkers, FileHasher, type FileJob } from "./hash-files.js";

export type EntryKind = "file" | "dir" | "symlink";

export interface TreeDigest {
  /** hex BLAKE3 of the canonical tree description */
  digest: string;
  /** sum of file sizes and symlink target lengths */
  size: number;
  files: number;
}

/** Cache of file digests keyed by path+size+mtime+inode; supplied by the caller (no globals). */
export interface FileDigestCache {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  /** load every digest of files under `dir` at once (a tree is about to be hashed) */
  prefetch?(dir: string): void;
  /** persist what was set (caches that outlive the process) */
  flush?(): void;
  /**
   * A file for kiln-hash's own cache of the tree at `root` (native trees, see hashTree); none:
   * kiln-hash reads every file.
   */
  treeFile?(root: string): string | undefined;
}

export interface HashOptions {
  cache?: FileDigestCache;
  /** A 32-char hash part to normalise away (self-references): hashed as zeros. */
  selfHash?: string;
  /** Called for each occurrence of selfHash: file path and byte offset. */
  onSelfRef?: (file: string, offset: number) => void;
  /** worker threads for hashing many files (see hash-files.ts); 0 hashes on this thread only */
  workers?: number;
  /** false: never kiln-hash, always this module's own walk (tests compare the two) */
  native?: boolean;
}

const CHUNK = 1 << 20;
const readBuf = Buffer.allocUnsafe(CHUNK);
const ZEROS = Buffer.alloc(32, "0".charCodeAt(0));

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}
function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

export function isExecutable(st: Stats): boolean {
  return (st.mode & 0o100) !== 0;
}

function fileHeader(exec: boolean, size: number): Buffer {
  return Buffer.concat([Buffer.from(exec ? "Fx" : "F-"), u64(size)]);
}

/**
 * Hash a regular file's node with selfHash: every occurrence of it is hashed as '0'*32 and
 * reported, so outputs that mention their own path hash the same wherever they were built.
 */
function hashSelfRefFile({ path, size, exec }: FileJob, selfHash: string, onSelfRef: HashOptions["onSelfRef"]): Buffer {
  const h = new Blake3Hasher();
  h.update(fileHeader(exec, size));
  const fd = openSync(path, "r");
  let read = 0;
  try {
    const pattern = Buffer.from(selfHash);
    const keep = pattern.length - 1;
    let pending: Buffer = Buffer.alloc(0);
    let base = 0; // file offset of pending[0]
    for (;;) {
      const n = readSync(fd, readBuf, 0, CHUNK, null);
      read += n;
      const data = Buffer.concat([pending, readBuf.subarray(0, n)]);
      for (let at = data.indexOf(pattern); at !== -1; at = data.indexOf(pattern, at + pattern.length)) {
        ZEROS.copy(data, at, 0, pattern.length);
        onSelfRef?.(path, base + at);
      }
      if (n === 0) {
        h.update(data);
        break;
      }
      // keep a tail that may hold the start of an occurrence spanning into the next chunk
      const cut = Math.max(0, data.length - keep);
      h.update(data.subarray(0, cut));
      pending = Buffer.from(data.subarray(cut));
      base += cut;
    }
  } finally {
    closeSync(fd);
  }
  if (read !== size) throw new Error(`file changed while hashing: ${path}`);
  return h.digestBuffer();
}

/**
 * Files modified less than this long before a hash began are hashed but their digests not cached
 * (here and in kiln-hash): file times are coarser than writes (a clock tick, 2 s on FAT), so a
 * file rewritten at the same size right after its lstat could keep its key with other bytes.
 */
const RACY_MS = 2000;

function cacheKey(path: string, st: Stats): string {
  return `${path}\0${st.size}\0${st.mtimeMs}\0${st.ino}\0${st.mode & 0o100}`;
}

// The tree as walked: files point at the job that hashes them (or carry a cached digest),
// directories hold their sorted entry names and children.
type WalkNode =
  | { kind: "file"; digest: Buffer | undefined; job: number }
  | { kind: "symlink"; digest: Buffer }
  | { kind: "dir"; names: Buffer[]; children: WalkNode[] };

interface Walk {
  /** the files to hash, fed as the walk finds them (workers hash them while the walk goes on) */
  hasher: FileHasher;
  /** cache keys of the jobs (when a cache is used), by job, to store their digests under: none for a racy file */
  keys: string[];
  /** when the walk began (ms since the epoch) */
  started: number;
  /** listings hasEntries read already, by directory path: the walk takes them rather than reading again */
  listed: Map<string, Dirent<Buffer>[]>;
  size: number;
  files: number;
}

function walkNode(path: string, st: Stats, opts: HashOptions, w: Walk): WalkNode {
  if (st.isDirectory()) return walkDir(path, opts, w);
  if (st.isSymbolicLink()) {
    const target = readlinkSync(path, { encoding: "buffer" });
    w.size += target.length;
    let t = target;
    if (opts.selfHash && t.includes(opts.selfHash)) {
      t = Buffer.from(t.toString("latin1").split(opts.selfHash).join("0".repeat(32)), "latin1");
      opts.onSelfRef?.(path, -1);
    }
    return { kind: "symlink", digest: blake3Buffer(Buffer.concat([Buffer.from("L"), t])) };
  }
  if (st.isFile()) {
    w.size += st.size;
    w.files++;
    let key: string | undefined;
    if (opts.cache && !opts.selfHash) {
      key = cacheKey(path, st);
      const hit = opts.cache.get(key);
      if (hit) return { kind: "file", digest: Buffer.from(hit, "hex"), job: -1 };
    }
    const job = w.hasher.add({ path, size: st.size, exec: isExecutable(st) });
    // a file written just now may be written again within the same tick of its clock, keeping
    // the key this digest would be stored under: its digest is not kept (git's "racy" files)
    if (key !== undefined && st.mtimeMs < w.started - RACY_MS) w.keys[job] = key;
    return { kind: "file", digest: undefined, job };
  }
  throw new UnsupportedEntryError(path);
}

/** How a directory's entries are named, by the walk and by hasEntries (whose listings it keys by those names). */
function dirPrefix(path: string): string {
  return path.endsWith("/") ? path : `${path}/`;
}

/**
 * A directory's entries, sorted bytewise. The entry types from readdir spare an lstat per
 * subdirectory; files need theirs (size, exec bit, cache key), and an entry of unknown type
 * (some filesystems) gets one too. A name that is not UTF-8 is refused: kiln's paths are text,
 * and decoding it would name another file, or none.
 */
function walkDir(path: string, opts: HashOptions, w: Walk): WalkNode {
  const entries = (w.listed.get(path) ?? readdirSync(path, { encoding: "buffer", withFileTypes: true })).sort((a, b) => Buffer.compare(a.name, b.name));
  w.listed.delete(path);
  const prefix = dirPrefix(path);
  const children = entries.map((e) => {
    if (!isUtf8(e.name)) throw new UnsupportedEntryError(prefix + e.name.toString(), "name");
    const child = prefix + e.name.toString();
    return e.isDirectory() ? walkDir(child, opts, w) : walkNode(child, lstatSync(child), opts, w);
  });
  return { kind: "dir", names: entries.map((e) => e.name), children };
}

function nodeDigest(node: WalkNode, digests: Buffer[]): Buffer {
  if (node.kind !== "dir") return node.digest ?? digests[(node as { job: number }).job]!;
  // the directory's description in one buffer, hashed in one call
  const parts: Buffer[] = [Buffer.from("D")];
  node.names.forEach((name, i) => parts.push(u32(name.length), name, nodeDigest(node.children[i]!, digests)));
  return blake3Buffer(Buffer.concat(parts));
}

/** An entry the store cannot keep: a FIFO, socket or device ("type"), or a name that is not UTF-8 ("name"). */
export class UnsupportedEntryError extends Error {
  constructor(readonly path: string, readonly reason: "type" | "name" = "type") {
    super(reason === "type"
      ? `unsupported file type (only files, directories and symlinks can be stored): ${path}`
      : `a name that is not UTF-8 (shown with \ufffd for its bytes): ${path}`);
  }
}

/**
 * kiln-hash (store/tree-hash.c), compiled by `npm run build` where there is a C compiler: beside
 * the bundle (dist/kiln-main.cjs), one up from tsc's dist/store, or in dist/ of the checkout for
 * the sources. KILN_NATIVE_HASH=0 (read once per process) leaves it unused.
 */
let nativeHelper: string | null | undefined;
function nativeHasher(): string | undefined {
  if (nativeHelper === undefined) {
    const here = import.meta.url;
    const url = new URL(here.endsWith(".ts") ? "../dist/kiln-hash" : here.endsWith("/store/archive.js") ? "../kiln-hash" : "./kiln-hash", here);
    nativeHelper = process.env.KILN_NATIVE_HASH !== "0" && url.protocol === "file:" && existsSync(url) ? fileURLToPath(url) : null;
  }
  return nativeHelper ?? undefined;
}

/** Trees with fewer entries are hashed here: starting kiln-hash costs a few milliseconds. */
const NATIVE_MIN_ENTRIES = 1000;

/**
 * Whether the tree at `dir` has at least `n` entries (directory reads alone, stopping there). The
 * listings it read go into `listed`, by path as walkDir names them, for the walk to take.
 */
function hasEntries(dir: string, n: number, listed: Map<string, Dirent<Buffer>[]>): boolean {
  const dirs = [dir];
  let count = 0;
  while (dirs.length > 0) {
    const d = dirs.pop()!;
    let entries;
    try {
      entries = readdirSync(d, { encoding: "buffer", withFileTypes: true });
    } catch {
      return false; // the walk here says what is wrong
    }
    listed.set(d, entries);
    count += entries.length;
    if (count >= n) return true;
    const prefix = dirPrefix(d);
    for (const e of entries) if (e.isDirectory() && isUtf8(e.name)) dirs.push(prefix + e.name.toString());
  }
  return false;
}

/**
 * A large directory's digest from kiln-hash: the same digest as the walk below, from a walk and
 * reads on as many threads as the walk below would hash on, in one native process (~4 us of JavaScript per file here, before any byte
 * is read, is what it spares), with its own cache of file digests for the tree where `opts.cache`
 * gives one. Undefined where there is no kiln-hash, the tree is small, or kiln-hash failed for any
 * reason (an unsupported entry, an unreadable file, a file changed while read): the walk below
 * then hashes the tree, and says what is wrong as it always has.
 */
function nativeTree(path: string, opts: HashOptions, listed: Map<string, Dirent<Buffer>[]>): TreeDigest | undefined {
  const helper = nativeHasher();
  if (!helper || opts.native === false || !hasEntries(path, NATIVE_MIN_ENTRIES, listed)) return undefined;
  const threads = 1 + (opts.workers ?? defaultHashWorkers());
  const cache = opts.cache?.treeFile?.(path);
  const r = spawnSync(helper, ["--threads", String(threads), ...(cache ? ["--cache", cache] : []), path], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const m = r.status === 0 ? /^([0-9a-f]{64}) (\d+) (\d+) \d+\n$/.exec(r.stdout) : null;
  return m ? { digest: m[1]!, size: Number(m[2]), files: Number(m[3]) } : undefined;
}

/**
 * Content digest of a file or directory tree. A large directory goes to kiln-hash (nativeTree).
 * Here, the tree is walked first (names and lstat), then the files not in the cache are hashed,
 * on several threads when there are many (see hash-files.ts), then the directories: walking and
 * reading in two passes is also faster on one thread than reading each file as the walk meets it
 * (the walk's metadata stays in cache).
 */
export function hashTree(path: string, opts: HashOptions = {}): TreeDigest {
  const st = lstatSync(path);
  const listed = new Map<string, Dirent<Buffer>[]>();
  if (st.isDirectory() && !opts.selfHash) {
    const native = nativeTree(path, opts, listed);
    if (native) return native;
  }
  if (opts.cache && !opts.selfHash && st.isDirectory()) opts.cache.prefetch?.(path);
  // selfHash: the files are hashed after the walk, on this thread (see hashSelfRefFile)
  const workers = opts.selfHash ? 0 : opts.workers;
  const w: Walk = { hasher: new FileHasher(readBuf, workers === undefined ? {} : { workers }), keys: [], started: Date.now(), listed, size: 0, files: 0 };
  let root: WalkNode;
  try {
    root = walkNode(path, st, opts, w);
  } catch (e) {
    w.hasher.dispose(); // workers already hashing what the walk found so far
    throw e;
  }
  let digests: Buffer[];
  if (opts.selfHash) {
    const { selfHash, onSelfRef } = opts;
    digests = w.hasher.jobs.map((j) => hashSelfRefFile(j, selfHash, onSelfRef));
  } else {
    digests = w.hasher.finish();
    if (opts.cache) w.keys.forEach((k, i) => opts.cache!.set(k, digests[i]!.toString("hex")));
  }
  return { digest: nodeDigest(root, digests).toString("hex"), size: w.size, files: w.files };
}

/** Walk a tree depth-first (sorted), calling fn for every entry including the root. */
export function walkTree(path: string, fn: (p: string, st: Stats) => void): void {
  const st = lstatSync(path);
  fn(path, st);
  if (st.isDirectory()) {
    for (const name of readdirSync(path).sort()) walkTree(join(path, name), fn);
  }
}
