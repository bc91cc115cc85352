// Hashing many files at once, on every core. A large source tree (a kernel: 78k files, 1.3 GB)
// costs one open/read/close and one BLAKE3 per file; one thread spends most of that waiting in
// syscalls.
//
// A FileHasher is fed the files as a tree walk finds them. Once there are enough to be worth a
// worker (a worker costs tens of ms to start), it starts worker threads and posts them the files
// in batches while the walk goes on, so hashing overlaps the walk. When the walk ends, the calling
// thread takes the batches no worker has begun, newest first, and hashes them itself; every batch
// is claimed once through a shared flag (compare-and-swap), so the work balances itself whichever
// thread is faster. The calls stay synchronous, like the rest of hashing: results come back over
// a MessagePort read with receiveMessageOnPort, and the calling thread sleeps in Atomics.wait
// while it has nothing left to do.
//
// A file a worker could not hash (it vanished, changed size, cannot be read) is hashed again on
// the calling thread, so the error a caller sees is the same as without workers.
import { closeSync, openSync, readSync } from "node:fs";
import { availableParallelism } from "node:os";
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";
import { BLAKE_MODULE_PATH, Blake3Hasher, blake3Buffer } from "./digest.js";

/** One file to hash: its path, the size seen when the tree was walked, and its exec bit. */
export interface FileJob {
  path: string;
  size: number;
  exec: boolean;
}

const CHUNK = 1 << 20;

/** Workers start once this many files, or this many bytes, are waiting to be hashed. */
const MIN_FILES = 2000;
const MIN_BYTES = 64 << 20;
/** Files per batch: small enough to balance, large enough that messages are few. */
const BATCH = 64;
/** Batches that can be handed to workers (more are hashed on the calling thread): 16M files. */
const MAX_BATCHES = 1 << 18;
/** no worker progress for this long: the calling thread hashes what is missing itself */
const QUIET_MS = 30_000;

// shared words: [0] batches finished by workers, then one claim flag per batch
const DONE = 0;
const FLAGS = 1;

/** What hashFileJob takes from outside, passed in: the workers run the very same function. */
export interface HashIo {
  openSync: typeof openSync;
  readSync: typeof readSync;
  closeSync: typeof closeSync;
  blake3: (data: Buffer) => Buffer;
  Blake3Hasher: typeof Blake3Hasher;
}
const IO: HashIo = { openSync, readSync, closeSync, blake3: blake3Buffer, Blake3Hasher };

/**
 * The digest of a file node ("F-" or "Fx", the size as a big-endian u64, then the bytes), read
 * with `buf` (at least 1 MiB). Throws if the file's size is not the size it had when the tree was
 * walked. Self-contained (everything it uses is a parameter or a global): its source text is the
 * workers' hash function too.
 */
export function hashFileJob(job: FileJob, buf: Buffer, io: HashIo = IO): Buffer {
  const HEADER = 10;
  buf.write(job.exec ? "Fx" : "F-", 0, "latin1");
  buf.writeBigUInt64BE(BigInt(job.size), 2);
  const fd = io.openSync(job.path, "r");
  try {
    if (job.size <= buf.length - HEADER) {
      // header and bytes in one buffer, one one-shot BLAKE3 call (most source files are small)
      let len = HEADER;
      for (;;) {
        const n = io.readSync(fd, buf, len, buf.length - len, null);
        if (n === 0) break;
        len += n;
        if (len === buf.length) break;
      }
      if (len - HEADER !== job.size) throw new Error(`file changed while hashing: ${job.path}`);
      return io.blake3(buf.subarray(0, len));
    }
    const h = new io.Blake3Hasher();
    h.update(buf.subarray(0, HEADER));
    let total = 0;
    for (;;) {
      const n = io.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      total += n;
    }
    if (total !== job.size) throw new Error(`file changed while hashing: ${job.path}`);
    return h.digestBuffer();
  } finally {
    io.closeSync(fd);
  }
}

// The worker: claims each batch it is sent (unless the calling thread took it first), hashes it
// with hashFileJob (its source text, given the worker's own fs and BLAKE3), and sends back the
// digests. Plain CommonJS given as source text, so it runs the same from the TypeScript sources
// and from the compiled bundle; it loads the BLAKE3 addon from the path the calling thread resolved.
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { openSync, readSync, closeSync } = require("node:fs");
const { blake3, Blake3Hasher } = require(workerData.blake);
const { port, shared } = workerData;
const words = new Int32Array(shared);
const buf = Buffer.allocUnsafe(${CHUNK});
const io = { openSync, readSync, closeSync, blake3, Blake3Hasher };
const hashFileJob = ${hashFileJob.toString()};
port.on("message", ({ batch, paths, sizes, execs }) => {
  if (Atomics.compareExchange(words, ${FLAGS} + batch, 0, 1) !== 0) return;
  const list = paths.split("\\0");
  const digests = Buffer.alloc(list.length * 32);
  const failed = [];
  for (let i = 0; i < list.length; i++) {
    try {
      hashFileJob({ path: list[i], size: sizes[i], exec: execs[i] === 1 }, buf, io).copy(digests, i * 32);
    } catch {
      failed.push(i);
    }
  }
  port.postMessage({ batch, digests, failed });
  Atomics.add(words, ${DONE}, 1);
  Atomics.notify(words, ${DONE});
});
`;


/** Worker threads a hasher uses besides the calling one unless told otherwise: cores - 1, at most 3. */
export function defaultHashWorkers(): number {
  return Math.max(0, Math.min(3, availableParallelism() - 1));
}

export interface HashFilesOptions {
  /** worker threads to use besides the calling one; default: defaultHashWorkers() */
  workers?: number;
  /** false: the calling thread takes no batch while a worker can (tests) */
  callerHashes?: boolean;
  /** filled in with how many files the workers hashed (not counting those they failed on) */
  stats?: { workerFiles: number };
}

interface Pool {
  workers: Worker[];
  ports: MessagePort[];
  words: Int32Array;
  /** batches posted to workers, by number: [first job, job count] */
  posted: Array<[number, number]>;
  next: number;
}

/** Hashes files fed to it one by one, on worker threads too once there are many. */
export class FileHasher {
  readonly jobs: FileJob[] = [];
  private bytes = 0;
  /** jobs below this index are in a posted batch (or the calling thread hashed them) */
  private queued = 0;
  private pool: Pool | undefined;
  /** set when workers could not be started: this hasher hashes on the calling thread */
  private noPool = false;
  private readonly workerCount: number;

  constructor(private readonly buf: Buffer, private readonly opts: HashFilesOptions = {}) {
    this.workerCount = Math.max(0, opts.workers ?? defaultHashWorkers());
  }

  /** Queue a file; returns its index in the digests that finish() returns. */
  add(job: FileJob): number {
    this.jobs.push(job);
    this.bytes += job.size;
    if (this.workerCount > 0) {
      // (bytes alone do not count: a few large files gain nothing from workers that each read one)
      if (!this.pool && !this.noPool && (this.jobs.length >= MIN_FILES || (this.bytes >= MIN_BYTES && this.jobs.length >= 2 * BATCH))) this.pool = this.startPool();
      if (this.pool && this.jobs.length - this.queued >= BATCH) this.post(this.pool);
    }
    return this.jobs.length - 1;
  }

  private startPool(): Pool | undefined {
    const shared = new SharedArrayBuffer((FLAGS + MAX_BATCHES) * 4);
    const pool: Pool = { workers: [], ports: [], words: new Int32Array(shared), posted: [], next: 0 };
    try {
      for (let w = 0; w < this.workerCount; w++) {
        const { port1, port2 } = new MessageChannel();
        // execArgv []: none of the process's own flags (an --input-type=module would make the
        // source an ES module, a loader hook would slow the start)
        const worker = new Worker(WORKER_SOURCE, {
          eval: true, execArgv: [], stdout: true, stderr: true,
          workerData: { blake: BLAKE_MODULE_PATH, port: port2, shared }, transferList: [port2],
        });
        worker.unref();
        port1.unref();
        // a worker that fails to start claims nothing; the calling thread hashes its batches
        worker.on("error", () => {});
        pool.workers.push(worker);
        pool.ports.push(port1);
      }
    } catch {
      // no thread to be had (a process or thread limit): hash on this thread, as without workers
      this.release(pool);
      this.noPool = true;
      return undefined;
    }
    return pool;
  }

  private release(pool: Pool): void {
    for (const w of pool.workers) void w.terminate();
    for (const p of pool.ports) p.close();
  }

  /**
   * Stop the workers without waiting for their results: for a caller that will not call finish()
   * (the tree walk feeding this hasher failed). Safe to call more than once, or after finish().
   */
  dispose(): void {
    if (this.pool) this.release(this.pool);
    this.pool = undefined;
  }

  /** Post the queued jobs to the workers in batches of BATCH (`all`: the last, smaller one too). */
  private post(pool: Pool, all = false): void {
    while (this.jobs.length - this.queued >= (all ? 1 : BATCH)) {
      if (pool.posted.length >= MAX_BATCHES) return; // the calling thread hashes the rest
      const start = this.queued;
      const end = Math.min(start + BATCH, this.jobs.length);
      const list = this.jobs.slice(start, end);
      const sizes = new Float64Array(list.length);
      const execs = new Uint8Array(list.length);
      list.forEach((j, i) => {
        sizes[i] = j.size;
        execs[i] = j.exec ? 1 : 0;
      });
      const batch = pool.posted.length;
      pool.posted.push([start, end - start]);
      pool.ports[pool.next]!.postMessage({ batch, paths: list.map((j) => j.path).join("\0"), sizes, execs }, [sizes.buffer, execs.buffer]);
      pool.next = (pool.next + 1) % pool.ports.length;
      this.queued = end;
    }
  }

  /**
   * The digests of every file added, in order. If files cannot be hashed, throws the error of
   * the first of them in the order they were added, as hashing them one by one would.
   */
  finish(): Buffer[] {
    const out: Buffer[] = new Array(this.jobs.length);
    const pool = this.pool;
    if (!pool) {
      for (let i = 0; i < this.jobs.length; i++) out[i] = hashFileJob(this.jobs[i]!, this.buf);
      return out;
    }
    // the calling thread's failures, by job index: the first one in job order is thrown at the end
    const failed = new Map<number, unknown>();
    const mine = (i: number) => {
      try {
        out[i] = hashFileJob(this.jobs[i]!, this.buf);
      } catch (e) {
        failed.set(i, e);
      }
    };
    try {
      this.post(pool, true);
      // files never posted (beyond MAX_BATCHES) are the calling thread's
      for (let i = this.queued; i < this.jobs.length; i++) mine(i);
      // take the batches no worker has begun, newest first (the workers work from the oldest)
      let taken = 0;
      if (this.opts.callerHashes !== false) {
        for (let b = pool.posted.length - 1; b >= 0; b--) {
          if (Atomics.compareExchange(pool.words, FLAGS + b, 0, 1) !== 0) continue;
          const [start, count] = pool.posted[b]!;
          for (let i = start; i < start + count; i++) mine(i);
          taken++;
        }
      }
      this.collect(pool, pool.posted.length - taken, out);
    } finally {
      this.dispose();
    }
    // what no thread could hash: hashed again here, in job order, so the first error is the one
    // a one-by-one hash would have met first
    for (let i = 0; i < out.length; i++) {
      if (out[i]) continue;
      if (failed.has(i)) throw failed.get(i);
      out[i] = hashFileJob(this.jobs[i]!, this.buf);
    }
    return out;
  }

  /** Wait for the workers' batches and place their digests; hash what they could not. */
  private collect(pool: Pool, theirs: number, out: Buffer[]): void {
    let received = 0;
    let workerFiles = 0;
    let quietSince = Date.now();
    while (received < theirs) {
      let got = false;
      for (const port of pool.ports) {
        for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
          const { batch, digests, failed } = m.message as { batch: number; digests: Uint8Array; failed: number[] };
          const [start, count] = pool.posted[batch]!;
          const bad = new Set(failed);
          // a file the worker could not hash stays empty: finish() hashes it again for its error
          for (let i = 0; i < count; i++) if (!bad.has(i)) out[start + i] = Buffer.from(digests.buffer, digests.byteOffset + i * 32, 32);
          workerFiles += count - bad.size;
          received++;
          got = true;
        }
      }
      if (got) {
        quietSince = Date.now();
        continue;
      }
      if (Date.now() - quietSince > QUIET_MS) break;
      const done = Atomics.load(pool.words, DONE);
      // a batch finishes (DONE grows) only after its message is sent: wait for the next one
      if (done <= received) Atomics.wait(pool.words, DONE, done, 200);
    }
    if (this.opts.stats) this.opts.stats.workerFiles = workerFiles;
    // a worker gone quiet (it cannot, short of the process ending) leaves its files empty:
    // finish() hashes them
  }
}

/** The file-node digests of `jobs`, in order (large batches shared with worker threads). */
export function hashFiles(jobs: readonly FileJob[], buf: Buffer, opts: HashFilesOptions = {}): Buffer[] {
  const h = new FileHasher(buf, opts);
  for (const j of jobs) h.add(j);
  return h.finish();
}
