// Where a binary cache's files live: a directory (file://), an HTTP server that serves GET and
// takes WebDAV PUT (http://, https://), or an S3 bucket (s3://). A backend moves bytes by key;
// what the bytes mean is format.ts's business, whether to trust them binary-cache.ts's.
import { badUrl } from "./cache-errors.js";
import { FileBackend } from "./file-backend.js";
import { HttpBackend } from "./http-backend.js";

export interface CacheBackend {
  /** the cache's URL, without credentials: how messages name it */
  readonly url: string;
  /** the whole file, or undefined if there is none */
  get(key: string, signal: AbortSignal): Promise<Buffer | undefined>;
  has(key: string, signal: AbortSignal): Promise<boolean>;
  /** copy the file to `dest`; false if there is none; onProgress: bytes so far */
  download(key: string, dest: string, signal: AbortSignal, onProgress?: (bytes: number) => void): Promise<boolean>;
  /** write the file (a later reader sees all of it or nothing, where the server allows) */
  put(key: string, body: Buffer | { file: string; size: number }, signal: AbortSignal): Promise<void>;
}

export interface BackendOptions {
  /** a request with no answer (or a download with no bytes) for this long fails */
  timeoutMs: number;
}

/** Where an s3:// URL points (parsed without loading the AWS SDK). */
export interface S3Location {
  url: string;
  bucket: string;
  /** '' or 'some/prefix/' */
  prefix: string;
  endpoint?: string;
  region: string;
  pathStyle: boolean;
}

/** The backend for a cache URL; a URL of no known kind is a usage error. */
export function openBackend(url: string, o: BackendOptions): CacheBackend {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badUrl(url, "it is not a URL");
  }
  switch (u.protocol) {
    case "file:":
      if (u.host !== "") throw badUrl(url, "a file:// URL names a local directory: file:///path/to/cache");
      return new FileBackend(decodeURIComponent(u.pathname));
    case "http:":
    case "https:":
      return new HttpBackend(u, o.timeoutMs);
    case "s3:":
      return new LazyS3(parseS3Url(u), o.timeoutMs);
    default:
      throw badUrl(url, `${u.protocol}// is not a kind of cache kiln knows`);
  }
}

function parseS3Url(u: URL): S3Location {
  const bucket = u.host;
  if (!bucket) throw badUrl(u.href, "no bucket: s3://BUCKET[/PREFIX]");
  const known = new Set(["endpoint", "region", "force-path-style"]);
  for (const k of u.searchParams.keys()) if (!known.has(k)) throw badUrl(u.href, `unknown parameter ${k} (known: ${[...known].join(", ")})`);
  const endpoint = u.searchParams.get("endpoint") ?? undefined;
  if (endpoint !== undefined && !/^https?:\/\//.test(endpoint)) throw badUrl(u.href, `endpoint ${endpoint} is not an http(s) URL`);
  const pathStyle = u.searchParams.get("force-path-style");
  const prefix = u.pathname.replace(/^\/+/, "").replace(/\/*$/, "");
  return {
    url: `s3://${bucket}${prefix ? `/${prefix}` : ""}`, bucket, prefix: prefix ? `${prefix}/` : "",
    ...(endpoint ? { endpoint } : {}),
    region: u.searchParams.get("region") ?? "us-east-1",
    // S3-compatible servers (MinIO, Ceph RGW, s3rver) expect path-style addressing
    pathStyle: pathStyle === null ? endpoint !== undefined : pathStyle === "true",
  };
}

/** The S3 backend, loading the AWS SDK on first use: commands that use no s3:// cache never load it. */
class LazyS3 implements CacheBackend {
  readonly url: string;
  private backend: Promise<CacheBackend> | undefined;
  constructor(private readonly at: S3Location, private readonly timeoutMs: number) {
    this.url = at.url;
  }
  private load(): Promise<CacheBackend> {
    return (this.backend ??= import("./s3-backend.js").then(({ S3Backend }) => S3Backend.create(this.at, this.timeoutMs)));
  }
  async get(key: string, signal: AbortSignal) {
    return (await this.load()).get(key, signal);
  }
  async has(key: string, signal: AbortSignal) {
    return (await this.load()).has(key, signal);
  }
  async download(key: string, dest: string, signal: AbortSignal, onProgress?: (bytes: number) => void) {
    return (await this.load()).download(key, dest, signal, onProgress);
  }
  async put(key: string, body: Buffer | { file: string; size: number }, signal: AbortSignal) {
    return (await this.load()).put(key, body, signal);
  }
}
