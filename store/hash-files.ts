// Hashing many files at once, on every core. A large source tree (a kernel: 78k files, 1.3 GB)
// costs one open/read/close and one BLAKE3 per file; one thread spends most of that waiting in
// syscalls. The files are split into small chunks that the calling thread and a few worker
// threads claim from a shared counter, so the work balances itself and a worker that starts late
// (a worker costs tens of ms to start) just takes fewer chunks.
//
// The call stays synchronous, like the rest of hashing: the calling thread hashes chunks itself
// and then waits on the shared counters with Atomics.wait. A file a worker could not hash (it
// vanished, changed size, cannot be read) is hashed again on the calling thread, so the error a
// caller sees is the same as without workers.
import { closeSync, openSync, readSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { Blake3Hasher, blake3Buffer } from "./digest.js";

/** One file to hash: its path, the size seen when the tree was walked, and its exec bit. */
export interface FileJob {
  path: string;
  size: number;
  exec: boolean;
}

const CHUNK = 1 << 20;
/** "F-" or "Fx", then the size as a big-endian u64: the start of a file node's description */
export const FILE_HEADER_LEN = 10;

/** Below this many files, or this many bytes, starting a worker costs more than it saves. */
const MIN_FILES = 2000;
const MIN_BYTES = 64 << 20;
/** Files a thread claims at a time: small enough to balance, large enough that claims are rare. */
const CLAIM = 16;

// control words in the shared buffer
const NEXT = 0; // index of the next unclaimed file
const DONE = 1; // files finished (hashed or failed) by workers
const CTRL_WORDS = 2;
/** no worker progress for this long: the calling thread finishes the rest itself */
const QUIET_MS = 30_000;
// per-file status bytes
const OK = 1;
const FAILED = 2;

/**
 * The digest of a file node (header + bytes), read with `buf` (at least 1 MiB). Throws if the
 * file's size is not the size it had when the tree was walked. Used by every thread.
 */
export function hashFileJob(job: FileJob, buf: Buffer): Buffer {
  buf.write(job.exec ? "Fx" : "F-", 0, "latin1");
  buf.writeBigUInt64BE(BigInt(job.size), 2);
  const fd = openSync(job.path, "r");
  try {
    if (job.size <= buf.length - FILE_HEADER_LEN) {
      // header and bytes in one buffer, one one-shot BLAKE3 call (most source files are small)
      let len = FILE_HEADER_LEN;
      for (;;) {
        const n = readSync(fd, buf, len, buf.length - len, null);
        if (n === 0) break;
        len += n;
        if (len === buf.length) break;
      }
      if (len - FILE_HEADER_LEN !== job.size) throw new Error(`file changed while hashing: ${job.path}`);
      return blake3Buffer(buf.subarray(0, len));
    }
    const h = new Blake3Hasher();
    h.update(buf.subarray(0, FILE_HEADER_LEN));
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      total += n;
    }
    if (total !== job.size) throw new Error(`file changed while hashing: ${job.path}`);
    return h.digestBuffer();
  } finally {
    closeSync(fd);
  }
}

// The worker: the same loop as the calling thread's, over the same shared buffer. Plain
// CommonJS given as source text, so it runs the same from the TypeScript sources and from the
// compiled bundle; it loads the BLAKE3 addon from the path the calling thread resolved.
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { openSync, readSync, closeSync } = require("node:fs");
const { blake3, Blake3Hasher } = require(workerData.blake);
const { paths: joined, sizes, execs, shared, claim } = workerData;
const paths = joined.split("\\0");
const ctrl = new Int32Array(shared, 0, ${CTRL_WORDS});
const status = new Uint8Array(shared, ${CTRL_WORDS * 4}, paths.length);
const digests = new Uint8Array(shared, ${CTRL_WORDS * 4} + paths.length, paths.length * 32);
const buf = Buffer.allocUnsafe(${CHUNK});
function hash(i) {
  const size = sizes[i];
  buf.write(execs[i] ? "Fx" : "F-", 0, "latin1");
  buf.writeBigUInt64BE(BigInt(size), 2);
  const fd = openSync(paths[i], "r");
  try {
    if (size <= buf.length - ${FILE_HEADER_LEN}) {
      let len = ${FILE_HEADER_LEN};
      for (;;) {
        const n = readSync(fd, buf, len, buf.length - len, null);
        if (n === 0) break;
        len += n;
        if (len === buf.length) break;
      }
      if (len - ${FILE_HEADER_LEN} !== size) return null;
      return blake3(buf.subarray(0, len));
    }
    const h = new Blake3Hasher();
    h.update(buf.subarray(0, ${FILE_HEADER_LEN}));
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      total += n;
    }
    return total === size ? h.digestBuffer() : null;
  } finally {
    closeSync(fd);
  }
}
for (;;) {
  const start = Atomics.add(ctrl, ${NEXT}, claim);
  if (start >= paths.length) break;
  const end = Math.min(start + claim, paths.length);
  for (let i = start; i < end; i++) {
    let d = null;
    try { d = hash(i); } catch {}
    if (d) { digests.set(d, i * 32); status[i] = ${OK}; } else status[i] = ${FAILED};
  }
  Atomics.add(ctrl, ${DONE}, end - start);
  Atomics.notify(ctrl, ${DONE});
}
`;

let blakePath: string | undefined;
function blakeModulePath(): string {
  return (blakePath ??= createRequire(import.meta.url).resolve("@napi-rs/blake-hash"));
}

export interface HashFilesOptions {
  /** worker threads to use besides the calling one; default: cores - 1, at most 3 */
  workers?: number;
  /** false: the calling thread only waits while the workers hash everything (tests) */
  callerHashes?: boolean;
  /** filled in with how many files the workers hashed */
  stats?: { workerFiles: number };
}

/**
 * The file-node digests of `jobs`, in order. Large batches are shared with worker threads;
 * small ones are hashed on the calling thread. Throws the first file's error (missing, changed
 * size, unreadable) exactly as hashing it alone would.
 */
export function hashFiles(jobs: readonly FileJob[], buf: Buffer, opts: HashFilesOptions = {}): Buffer[] {
  const wanted = opts.workers ?? Math.min(3, availableParallelism() - 1);
  let bytes = 0;
  for (const j of jobs) bytes += j.size;
  const workers = jobs.length < CLAIM * 4 || (jobs.length < MIN_FILES && bytes < MIN_BYTES) ? 0 : Math.max(0, wanted);
  if (workers === 0) return jobs.map((j) => hashFileJob(j, buf));
  return hashShared(jobs, buf, workers, opts);
}

function hashShared(jobs: readonly FileJob[], buf: Buffer, workerCount: number, opts: HashFilesOptions): Buffer[] {
  const n = jobs.length;
  const shared = new SharedArrayBuffer(CTRL_WORDS * 4 + n + n * 32);
  const ctrl = new Int32Array(shared, 0, CTRL_WORDS);
  const status = new Uint8Array(shared, CTRL_WORDS * 4, n);
  const digests = new Uint8Array(shared, CTRL_WORDS * 4 + n, n * 32);
  const sizes = new Float64Array(n);
  const execs = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    sizes[i] = jobs[i]!.size;
    execs[i] = jobs[i]!.exec ? 1 : 0;
  }
  const workerData = { blake: blakeModulePath(), paths: jobs.map((j) => j.path).join("\0"), sizes, execs, shared, claim: CLAIM };
  const started: Worker[] = [];
  for (let w = 0; w < workerCount; w++) {
    // execArgv []: none of the process's own flags (an --input-type=module would make the source
    // an ES module, a loader hook would slow the start)
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData, execArgv: [], stdout: true, stderr: true });
    worker.unref();
    // a worker that fails to start claims nothing; its error is not ours to report
    worker.on("error", () => {});
    started.push(worker);
  }
  const out: Buffer[] = new Array(n);
  let mine = 0;
  try {
    while (opts.callerHashes !== false) {
      const start = Atomics.add(ctrl, NEXT, CLAIM);
      if (start >= n) break;
      const end = Math.min(start + CLAIM, n);
      for (let i = start; i < end; i++) out[i] = hashFileJob(jobs[i]!, buf);
      mine += end - start;
    }
    // every file is claimed: wait for the workers to finish theirs. A worker that dies in the
    // middle of a chunk (it cannot, short of the process ending) would stall progress: after
    // a long quiet spell the calling thread hashes whatever is still missing itself.
    const theirs = n - mine;
    let quietSince = Date.now();
    for (let last = Atomics.load(ctrl, DONE); last < theirs; ) {
      Atomics.wait(ctrl, DONE, last, 200);
      const now = Atomics.load(ctrl, DONE);
      if (now !== last) {
        last = now;
        quietSince = Date.now();
      } else if (Date.now() - quietSince > QUIET_MS) break;
    }
  } finally {
    for (const w of started) void w.terminate();
  }
  if (opts.stats) opts.stats.workerFiles = Atomics.load(ctrl, DONE);
  for (let i = 0; i < n; i++) {
    if (out[i]) continue;
    // a worker's file: its digest, or, when the worker failed or never got to it, the calling
    // thread's own attempt, which throws the real error
    out[i] = Atomics.load(status, i) === OK ? Buffer.from(digests.subarray(i * 32, i * 32 + 32)) : hashFileJob(jobs[i]!, buf);
  }
  return out;
}
