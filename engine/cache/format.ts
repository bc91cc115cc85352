// What a binary cache holds, as files under its root (a directory, an HTTP server, an S3 prefix):
//
//   kiln-cache-info                      {"format":"kiln-binary-cache","version":1,"storeDir":"/kiln/store","priority":40}
//   <hash>.manifest                      one store path: its content digest, size, references, its
//                                        archive's name, sha256 and size; signed
//   archive/<sha256>.tar.zst             its archive (store/path-archive.ts), named by its sha256
//   realisations/<resolved>!<output>     one realisation: resolved derivation + output -> store
//                                        path; signed
//
// Realisations are records of their own (as in Nix's content-addressed derivations), not a list
// inside the manifest: one path answers many realisations (early cutoff makes different resolved
// derivations produce the same output, and a path can be pushed long after another realize found
// it again), and a record must be able to exist without its path's archive, so that a cache
// holding a target's closure can still tell a planner what the target's build inputs resolve to.
//
// A signature covers a fingerprint: a line of the fields that matter, so that JSON formatting
// does not. Everything here is pure.
import { LOGICAL_STORE, parseStorePathName, type StorePathName } from "../../store/paths.js";
import { sign, verifySignatures, type PublicKey, type SecretKey } from "./signing.js";

export const CACHE_INFO = "kiln-cache-info";
export const FORMAT = "kiln-binary-cache";
export const VERSION = 1;

export interface CacheInfo {
  format: typeof FORMAT;
  version: number;
  /** the logical store directory paths in this cache were built for */
  storeDir: string;
  /** lower is asked first (a local mirror before a remote one), as in Nix */
  priority: number;
}

export interface Manifest {
  path: StorePathName;
  narDigest: string;
  narSize: number;
  references: StorePathName[];
  /** 'sha256:<hex>' of a fixed output */
  ca?: string;
  /** the archive's key in the cache, its sha256 and its size in bytes */
  archive: string;
  archiveSha256: string;
  archiveSize: number;
  signatures: string[];
}

export interface RealisationRecord {
  resolved: string;
  output: string;
  path: StorePathName;
  signatures: string[];
}

export const manifestKey = (path: StorePathName) => `${path.slice(0, 32)}.manifest`;
export const archiveKey = (sha256: string) => `archive/${sha256}.tar.zst`;
export const realisationKey = (resolved: string, output: string) => `realisations/${resolved}!${output}`;

export function defaultCacheInfo(priority = 40): CacheInfo {
  return { format: FORMAT, version: VERSION, storeDir: LOGICAL_STORE, priority };
}

export function manifestFingerprint(m: Omit<Manifest, "signatures">): string {
  return ["kiln-manifest-1", m.path, m.narDigest, m.narSize, [...m.references].sort().join(","), m.ca ?? "", m.archive, m.archiveSha256, m.archiveSize].join(";");
}

export function realisationFingerprint(r: Omit<RealisationRecord, "signatures">): string {
  return ["kiln-realisation-1", r.resolved, r.output, r.path].join(";");
}

export function signManifest(m: Omit<Manifest, "signatures">, key: SecretKey): Manifest {
  return { ...m, references: [...m.references].sort(), signatures: [sign(key, manifestFingerprint(m))] };
}

export function signRealisation(r: Omit<RealisationRecord, "signatures">, key: SecretKey): RealisationRecord {
  return { ...r, signatures: [sign(key, realisationFingerprint(r))] };
}

export const verifyManifest = (m: Manifest, trusted: readonly PublicKey[]) => verifySignatures(trusted, manifestFingerprint(m), m.signatures);
export const verifyRealisation = (r: RealisationRecord, trusted: readonly PublicKey[]) => verifySignatures(trusted, realisationFingerprint(r), r.signatures);

export function encode(value: CacheInfo | Manifest | RealisationRecord): Buffer {
  return Buffer.from(JSON.stringify(value, null, 1) + "\n");
}

/** Thrown by the parsers: the file is not what it claims (the caller names the cache). */
export class MalformedCacheFile extends Error {}

function object(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new MalformedCacheFile(`${what} is not JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new MalformedCacheFile(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

const str = (o: Record<string, unknown>, k: string, what: string): string => {
  const v = o[k];
  if (typeof v !== "string" || v === "") throw new MalformedCacheFile(`${what}: ${k} is not a string`);
  return v;
};
const num = (o: Record<string, unknown>, k: string, what: string): number => {
  const v = o[k];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new MalformedCacheFile(`${what}: ${k} is not a size`);
  return v;
};
const strings = (o: Record<string, unknown>, k: string, what: string): string[] => {
  const v = o[k];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new MalformedCacheFile(`${what}: ${k} is not a list of strings`);
  return v as string[];
};
const storePath = (s: string, what: string): StorePathName => {
  if (!parseStorePathName(s) || s.includes("/")) throw new MalformedCacheFile(`${what}: ${JSON.stringify(s)} is not a store path name`);
  return s as StorePathName;
};

export function parseCacheInfo(bytes: Buffer): CacheInfo {
  const o = object(bytes, CACHE_INFO);
  if (o.format !== FORMAT) throw new MalformedCacheFile(`${CACHE_INFO} is not a kiln binary cache's (format ${JSON.stringify(o.format)})`);
  const version = num(o, "version", CACHE_INFO);
  return { format: FORMAT, version, storeDir: str(o, "storeDir", CACHE_INFO), priority: o.priority === undefined ? 40 : num(o, "priority", CACHE_INFO) };
}

export function parseManifest(bytes: Buffer, key: string): Manifest {
  const o = object(bytes, key);
  const path = storePath(str(o, "path", key), key);
  if (manifestKey(path) !== key) throw new MalformedCacheFile(`${key} describes ${path}, another path`);
  const archiveSha256 = str(o, "archiveSha256", key);
  if (!/^[0-9a-f]{64}$/.test(archiveSha256)) throw new MalformedCacheFile(`${key}: archiveSha256 is not a sha256`);
  const archive = str(o, "archive", key);
  if (archive !== archiveKey(archiveSha256)) throw new MalformedCacheFile(`${key}: archive ${archive} is not named by its sha256`);
  const ca = o.ca === undefined ? undefined : str(o, "ca", key);
  return {
    path, narDigest: str(o, "narDigest", key), narSize: num(o, "narSize", key),
    references: strings(o, "references", key).map((r) => storePath(r, key)),
    ...(ca ? { ca } : {}),
    archive, archiveSha256, archiveSize: num(o, "archiveSize", key), signatures: strings(o, "signatures", key),
  };
}

export function parseRealisation(bytes: Buffer, key: string): RealisationRecord {
  const o = object(bytes, key);
  const r = { resolved: str(o, "resolved", key), output: str(o, "output", key), path: storePath(str(o, "path", key), key), signatures: strings(o, "signatures", key) };
  if (realisationKey(r.resolved, r.output) !== key) throw new MalformedCacheFile(`${key} is the record of ${r.resolved}!${r.output}, another realisation`);
  return r;
}
