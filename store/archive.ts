// The content digest of a file tree: a Merkle hash over a canonical description of it.
//
// Only what survives into the store counts: entry type, the executable bit, file bytes, symlink
// targets and names (sorted bytewise). Owners, times and other mode bits do not. Being Merkle
// (a directory hashes its children's digests) lets a per-file cache skip unchanged files, so
// re-hashing a large unchanged source tree costs one lstat per file.
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from "node:fs";
import { join } from "node:path";
import { Blake3Hasher, blake3Buffer, feedFile } from "./digest.js";

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
}

export interface HashOptions {
  cache?: FileDigestCache;
  /** A 32-char hash part to normalise away (self-references): hashed as zeros. */
  selfHash?: string;
  /** Called for each occurrence of selfHash: file path and byte offset. */
  onSelfRef?: (file: string, offset: number) => void;
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
 * Hash a regular file's node. With selfHash, every occurrence of it is hashed as '0'*32 and
 * reported, so outputs that mention their own path hash the same wherever they were built.
 */
function hashFileNode(path: string, st: Stats, opts: HashOptions): Buffer {
  if (!opts.selfHash && st.size <= CHUNK - HEADER) return hashSmallFile(path, st);
  const h = new Blake3Hasher();
  h.update(fileHeader(isExecutable(st), st.size));
  if (!opts.selfHash) {
    if (feedFile(h, path) !== st.size) throw new Error(`file changed while hashing: ${path}`);
    return h.digestBuffer();
  }
  const fd = openSync(path, "r");
  let read = 0;
  try {
    const pattern = Buffer.from(opts.selfHash);
    const keep = pattern.length - 1;
    let pending: Buffer = Buffer.alloc(0);
    let base = 0; // file offset of pending[0]
    for (;;) {
      const n = readSync(fd, readBuf, 0, CHUNK, null);
      read += n;
      const data = Buffer.concat([pending, readBuf.subarray(0, n)]);
      for (let at = data.indexOf(pattern); at !== -1; at = data.indexOf(pattern, at + pattern.length)) {
        ZEROS.copy(data, at, 0, pattern.length);
        opts.onSelfRef?.(path, base + at);
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
  if (read !== st.size) throw new Error(`file changed while hashing: ${path}`);
  return h.digestBuffer();
}

const HEADER = 10; // "F-" or "Fx", then the size as u64

/**
 * A file that fits the read buffer after its header: header and bytes in one buffer, one
 * one-shot BLAKE3 call (the same digest as feeding them to a hasher, without a hasher object and
 * its three calls across the native boundary per file: most of a source tree's files are small).
 */
function hashSmallFile(path: string, st: Stats): Buffer {
  readBuf.write(isExecutable(st) ? "Fx" : "F-", 0, "latin1");
  readBuf.writeBigUInt64BE(BigInt(st.size), 2);
  const fd = openSync(path, "r");
  let len = HEADER;
  try {
    for (;;) {
      const n = readSync(fd, readBuf, len, CHUNK - len, null);
      if (n === 0) break;
      len += n;
      if (len === CHUNK) break;
    }
  } finally {
    closeSync(fd);
  }
  if (len - HEADER !== st.size) throw new Error(`file changed while hashing: ${path}`);
  return blake3Buffer(readBuf.subarray(0, len));
}

function cacheKey(path: string, st: Stats): string {
  return `${path}\0${st.size}\0${st.mtimeMs}\0${st.ino}\0${st.mode & 0o100}`;
}

function hashNode(path: string, st: Stats, opts: HashOptions, acc: { size: number; files: number }): Buffer {
  if (st.isSymbolicLink()) {
    const target = readlinkSync(path, { encoding: "buffer" });
    acc.size += target.length;
    let t = target;
    if (opts.selfHash && t.includes(opts.selfHash)) {
      t = Buffer.from(t.toString("latin1").split(opts.selfHash).join("0".repeat(32)), "latin1");
      opts.onSelfRef?.(path, -1);
    }
    return blake3Buffer(Buffer.concat([Buffer.from("L"), t]));
  }
  if (st.isFile()) {
    acc.size += st.size;
    acc.files++;
    if (opts.cache && !opts.selfHash) {
      const key = cacheKey(path, st);
      const hit = opts.cache.get(key);
      if (hit) return Buffer.from(hit, "hex");
      const d = hashFileNode(path, st, opts);
      opts.cache.set(key, d.toString("hex"));
      return d;
    }
    return hashFileNode(path, st, opts);
  }
  if (st.isDirectory()) {
    const names = readdirSync(path, { encoding: "buffer" }).sort(Buffer.compare);
    // the directory's description in one buffer, hashed in one call
    const parts: Buffer[] = [Buffer.from("D")];
    for (const name of names) {
      const child = join(path, name.toString());
      const d = hashNode(child, lstatSync(child), opts, acc);
      parts.push(u32(name.length), name, d);
    }
    return blake3Buffer(Buffer.concat(parts));
  }
  throw new UnsupportedEntryError(path);
}

export class UnsupportedEntryError extends Error {
  constructor(readonly path: string) {
    super(`unsupported file type (only files, directories and symlinks can be stored): ${path}`);
  }
}

/** Content digest of a file or directory tree. */
export function hashTree(path: string, opts: HashOptions = {}): TreeDigest {
  const acc = { size: 0, files: 0 };
  const st = lstatSync(path);
  if (opts.cache && !opts.selfHash && st.isDirectory()) opts.cache.prefetch?.(path);
  const d = hashNode(path, st, opts, acc);
  return { digest: d.toString("hex"), size: acc.size, files: acc.files };
}

/** Walk a tree depth-first (sorted), calling fn for every entry including the root. */
export function walkTree(path: string, fn: (p: string, st: Stats) => void): void {
  const st = lstatSync(path);
  fn(path, st);
  if (st.isDirectory()) {
    for (const name of readdirSync(path).sort()) walkTree(join(path, name), fn);
  }
}
