// A binary cache as a substituter (engine/substituter.ts): realisation records and manifests are
// read in parallel, and only what is signed by a trusted key is believed; archives are checked
// against their manifest's sha256 and size before they are unpacked, and the store re-hashes
// what comes out. A cache that cannot be reached, or does not answer within the timeout, is
// given up for the rest of the run with one warning, and the build goes on without it.
import { rmSync } from "node:fs";
import { sha256File } from "../../store/digest.js";
import { isKilnError, KilnError } from "../../store/errors.js";
import { unpackPath } from "../../store/path-archive.js";
import { LOGICAL_STORE, type StorePathName } from "../../store/paths.js";
import type { ResolvedHash } from "../derivation.js";
import { JobPool } from "../scheduler.js";
import { substitutionKey, type Realisation, type SubstitutableInfo, type Substituter } from "../substituter.js";
import type { CacheBackend } from "./backend.js";
import {
  CACHE_INFO, manifestKey, MalformedCacheFile, parseCacheInfo, parseManifest, parseRealisation, realisationKey, verifyManifest, verifyRealisation,
  type CacheInfo, type Manifest,
} from "./format.js";
import type { PublicKey } from "./signing.js";

/** Small files asked for at once from one cache. */
const PARALLEL_REQUESTS = 16;

export interface BinaryCacheOptions {
  /** keys whose signatures are believed */
  trusted: readonly PublicKey[];
  /** something went wrong that does not stop the run */
  warn: (message: string) => void;
}

export class BinaryCache implements Substituter {
  readonly name: string;
  private info: Promise<CacheInfo | undefined> | undefined;
  private down = false;
  private readonly manifests = new Map<StorePathName, Manifest>();
  private readonly pool = new JobPool(PARALLEL_REQUESTS);

  constructor(private readonly backend: CacheBackend, private readonly o: BinaryCacheOptions) {
    this.name = backend.url;
  }

  /** Its cache-info (priority, store directory); undefined, after a warning, if it cannot be used. */
  cacheInfo(signal: AbortSignal): Promise<CacheInfo | undefined> {
    return (this.info ??= this.readInfo(signal));
  }

  /** Its cache-info's priority; a cache that cannot be used comes last. */
  async priority(signal: AbortSignal): Promise<number> {
    return (await this.cacheInfo(signal))?.priority ?? Number.MAX_SAFE_INTEGER;
  }

  private async readInfo(signal: AbortSignal): Promise<CacheInfo | undefined> {
    try {
      const bytes = await this.backend.get(CACHE_INFO, signal);
      if (!bytes) return this.giveUp(`it has no ${CACHE_INFO} file (is the URL right? \`kiln copy --to\` makes one)`);
      const info = parseCacheInfo(bytes);
      if (info.storeDir !== LOGICAL_STORE) return this.giveUp(`its paths are for the store directory ${info.storeDir}, not ${LOGICAL_STORE}`);
      return info;
    } catch (e) {
      if (e instanceof MalformedCacheFile) return this.giveUp(e.message);
      if (isKilnError(e) && e.code === "CACHE_FAILED") return this.giveUp(e.message.replace(`binary cache ${this.name}: `, ""));
      throw e;
    }
  }

  private giveUp(why: string): undefined {
    if (!this.down) this.o.warn(`binary cache ${this.name} is not used: ${why}; going on without it`);
    this.down = true;
    return undefined;
  }

  async query(keys: Array<{ resolved: ResolvedHash; output: string }>, signal: AbortSignal): Promise<Map<string, Realisation>> {
    const out = new Map<string, Realisation>();
    if (this.down || keys.length === 0 || !(await this.cacheInfo(signal))) return out;
    const untrusted: string[] = [];
    try {
      const records = await Promise.all(keys.map((k) => this.pool.run(0, async () => {
        const key = realisationKey(k.resolved, k.output);
        const bytes = await this.backend.get(key, signal);
        if (!bytes) return undefined;
        const r = parseRealisation(bytes, key);
        if (verifyRealisation(r, this.o.trusted)) return r;
        untrusted.push(key);
        return undefined;
      })));
      const paths = [...new Set(records.flatMap((r) => (r ? [r.path] : [])))];
      const infos = await this.infos(paths, signal, untrusted);
      for (const r of records) if (r) out.set(substitutionKey(r.resolved, r.output), { path: r.path, ...(infos.has(r.path) ? { info: infos.get(r.path)! } : {}) });
    } catch (e) {
      if (e instanceof MalformedCacheFile) {
        this.o.warn(`binary cache ${this.name}: ${e.message}; its answers are not used`);
        return new Map();
      }
      if (isKilnError(e) && e.code === "CACHE_FAILED" && !signal.aborted) {
        this.giveUp(e.message.replace(`binary cache ${this.name}: `, ""));
        return new Map();
      }
      throw e;
    }
    this.warnUntrusted(untrusted);
    return out;
  }

  private warnUntrusted(files: string[]): void {
    if (files.length === 0) return;
    const keys = this.o.trusted.length ? `the trusted keys (${this.o.trusted.map((k) => k.name).join(", ")})` : "a trusted key (none is given: --trusted-public-keys)";
    this.o.warn(`binary cache ${this.name}: ${files.length} file(s) not signed by ${keys}, refused: ${files.slice(0, 3).join(", ")}${files.length > 3 ? ", ..." : ""}`);
  }

  /** The signed manifests of `paths` that the cache has, as infos. */
  private async infos(paths: StorePathName[], signal: AbortSignal, untrusted: string[]): Promise<Map<StorePathName, SubstitutableInfo>> {
    const out = new Map<StorePathName, SubstitutableInfo>();
    await Promise.all(paths.map((p) => this.pool.run(0, async () => {
      let m = this.manifests.get(p);
      if (!m) {
        const key = manifestKey(p);
        const bytes = await this.backend.get(key, signal);
        if (!bytes) return;
        const parsed = parseManifest(bytes, key);
        if (!verifyManifest(parsed, this.o.trusted)) return void untrusted.push(key);
        m = parsed;
        this.manifests.set(p, m);
      }
      out.set(p, { path: m.path, narDigest: m.narDigest, narSize: m.narSize, references: m.references, downloadSize: m.archiveSize, ...(m.ca ? { ca: m.ca } : {}) });
    })));
    return out;
  }

  async pathInfos(paths: StorePathName[], signal: AbortSignal): Promise<Map<StorePathName, SubstitutableInfo>> {
    const untrusted: string[] = [];
    try {
      return await this.infos(paths, signal, untrusted);
    } catch (e) {
      if (e instanceof MalformedCacheFile) throw this.damaged(e.message);
      throw e;
    } finally {
      this.warnUntrusted(untrusted);
    }
  }

  async fetch(info: SubstitutableInfo, dest: string, signal: AbortSignal, onProgress?: (bytes: number) => void): Promise<void> {
    const m = this.manifests.get(info.path) ?? (await this.pathInfos([info.path], signal), this.manifests.get(info.path));
    if (!m) throw new KilnError("CACHE_FAILED", `binary cache ${this.name} no longer has a signed manifest of ${info.path}`, "push the path again, or realize without this cache", { url: this.name });
    const file = `${dest}.tar.zst`;
    try {
      if (!(await this.backend.download(m.archive, file, signal, onProgress))) {
        throw new KilnError("CACHE_FAILED", `binary cache ${this.name} has the manifest of ${info.path} but not its archive ${m.archive}`, "push the path again (kiln copy --to)", { url: this.name });
      }
      const sha = sha256File(file);
      if (sha !== m.archiveSha256) throw this.damaged(`the archive of ${info.path} has sha256 ${sha}, not the signed ${m.archiveSha256}`, info.path);
      await unpackPath(file, info.path, dest, signal);
    } finally {
      rmSync(file, { force: true });
    }
  }

  private damaged(what: string, path?: string): KilnError {
    return new KilnError("STORE_CORRUPT", `binary cache ${this.name}: ${what}`, "the cache holds a bad file: remove it there (or push the path again), then run the command again", path ? { path } : {});
  }
}
