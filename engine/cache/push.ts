// Pushing to a binary cache: store paths (each after the paths it references, so that a reader
// finding a manifest finds its references too), then the realisation records that name them.
// What the cache has already is skipped: a path by its manifest, a record by its key (the first
// record of a realisation stays: with content addressing a second build of it should give the
// same path, and a reader re-hashes anyway).
import { join } from "node:path";
import { KilnError } from "../../store/errors.js";
import type { LocalStore } from "../../store/local-store.js";
import { packPath } from "../../store/path-archive.js";
import { LOGICAL_STORE, removeTree, type StorePathName } from "../../store/paths.js";
import { JobPool } from "../scheduler.js";
import type { CacheBackend } from "./backend.js";
import {
  archiveKey, CACHE_INFO, defaultCacheInfo, encode, manifestKey, parseCacheInfo, realisationKey, signManifest, signRealisation,
} from "./format.js";
import type { SecretKey } from "./signing.js";

export interface PushRealisation {
  resolved: string;
  output: string;
  path: StorePathName;
}

export interface PushResult {
  /** paths uploaded, and the bytes of their archives */
  pushed: StorePathName[];
  bytes: number;
  /** paths the cache had already */
  present: number;
  /** realisation records written */
  realisations: number;
}

export interface PushOptions {
  signal: AbortSignal;
  /** a fresh scratch directory for the archives being made */
  scratchDir: () => string;
  /** told when a path is uploaded */
  onPushed?: (path: StorePathName, archiveBytes: number) => void;
}

/** Uploads at once (each packs an archive first: CPU and disk bound). */
const PARALLEL_UPLOADS = 4;

/** Pushes to one cache. One pusher remembers what it pushed, so pushing after every build stays cheap. */
export class Pusher {
  private ready: Promise<void> | undefined;
  private readonly paths = new Map<StorePathName, Promise<void>>();
  private readonly records = new Set<string>();
  private readonly pool = new JobPool(PARALLEL_UPLOADS);
  private readonly small = new JobPool(16);
  private result: PushResult = { pushed: [], bytes: 0, present: 0, realisations: 0 };

  constructor(private readonly store: LocalStore, readonly backend: CacheBackend, private readonly key: SecretKey, private readonly o: PushOptions) {}

  get totals(): PushResult {
    return this.result;
  }

  /** Push the closure of `paths` and then the realisation records. */
  async push(paths: Iterable<StorePathName>, realisations: PushRealisation[] = []): Promise<void> {
    await (this.ready ??= this.ensureCacheInfo());
    const closure = this.store.closure(paths);
    await Promise.all([...closure].map((p) => this.pushPath(p)));
    await Promise.all(realisations.map((r) => this.small.run(0, async () => {
      const key = realisationKey(r.resolved, r.output);
      // each record once per pusher: --push-to pushes a build's records, then the whole graph's
      if (this.records.has(key)) return;
      this.records.add(key);
      if (await this.backend.has(key, this.o.signal)) return;
      await this.backend.put(key, encode(signRealisation(r, this.key)), this.o.signal);
      this.result.realisations++;
    })));
  }

  /** A cache is made by its first push; one for another store directory is refused. */
  private async ensureCacheInfo(): Promise<void> {
    const bytes = await this.backend.get(CACHE_INFO, this.o.signal);
    if (!bytes) return this.backend.put(CACHE_INFO, encode(defaultCacheInfo()), this.o.signal);
    let storeDir: string;
    try {
      storeDir = parseCacheInfo(bytes).storeDir;
    } catch (e) {
      throw new KilnError("CACHE_FAILED", `binary cache ${this.backend.url}: ${(e as Error).message}`, "point --to at an empty place or at a kiln binary cache", { url: this.backend.url });
    }
    if (storeDir !== LOGICAL_STORE) {
      throw new KilnError("CACHE_FAILED", `binary cache ${this.backend.url} holds paths for the store directory ${storeDir}, not ${LOGICAL_STORE}`, "push to another cache", { url: this.backend.url });
    }
  }

  /** One path, after its references; each path once per pusher. */
  private pushPath(p: StorePathName): Promise<void> {
    let done = this.paths.get(p);
    if (!done) {
      const info = this.store.pathInfo(p);
      if (!info) throw new KilnError("STORE_PATH_INVALID", `${p} is not a valid path in this store`, "realize it first", { path: p });
      done = Promise.all(info.references.filter((r) => r !== p).map((r) => this.pushPath(r))).then(() => this.pool.run(0, () => this.upload(p)));
      this.paths.set(p, done);
    }
    return done;
  }

  private async upload(p: StorePathName): Promise<void> {
    const signal = this.o.signal;
    if (await this.backend.has(manifestKey(p), signal)) {
      this.result.present++;
      return;
    }
    const info = this.store.pathInfo(p)!;
    const scratch = this.o.scratchDir();
    try {
      const file = join(scratch, "archive.tar.zst");
      const packed = await packPath(this.store.hostPath(p), p, file, { signal });
      const archive = archiveKey(packed.sha256);
      if (!(await this.backend.has(archive, signal))) await this.backend.put(archive, { file, size: packed.size }, signal);
      const manifest = signManifest({
        path: p, narDigest: info.narDigest, narSize: info.narSize, references: info.references,
        ...(info.ca ? { ca: info.ca } : {}), archive, archiveSha256: packed.sha256, archiveSize: packed.size,
      }, this.key);
      // the manifest last: a reader that finds it finds the archive
      await this.backend.put(manifestKey(p), encode(manifest), signal);
      this.result.pushed.push(p);
      this.result.bytes += packed.size;
      this.o.onPushed?.(p, packed.size);
    } finally {
      removeTree(scratch);
    }
  }
}
