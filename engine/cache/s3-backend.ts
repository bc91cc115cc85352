// A binary cache in an S3 bucket: s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION]. Without
// an endpoint it is AWS S3; with one, any S3-compatible server (MinIO, Ceph RGW, Garage, s3rver),
// addressed path-style as those expect. Credentials come from the AWS SDK's usual chain
// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, instance roles): kiln reads
// none itself.
import type { S3Client } from "@aws-sdk/client-s3";
import { createReadStream, createWriteStream, rmSync } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { CacheBackend, S3Location } from "./backend.js";
import { unreachable } from "./cache-errors.js";
import { importModule } from "../dynamic-import.js";
import { tlsOptions } from "../extra-ca.js";

/** The AWS SDK's S3 client module, imported when an s3:// cache is first used (it is large). */
type Sdk = typeof import("@aws-sdk/client-s3");

export class S3Backend implements CacheBackend {
  readonly url: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  static async create(at: S3Location, timeoutMs: number): Promise<S3Backend> {
    return new S3Backend(await importModule<Sdk>("@aws-sdk/client-s3"), at, timeoutMs);
  }

  private constructor(private readonly sdk: Sdk, at: S3Location, timeoutMs: number) {
    this.url = at.url;
    this.bucket = at.bucket;
    this.prefix = at.prefix;
    // NODE_EXTRA_CA_CERTS, when kiln rather than Node reads it (engine/extra-ca.ts)
    const tls = tlsOptions();
    this.client = new sdk.S3Client({
      region: at.region,
      ...(at.endpoint ? { endpoint: at.endpoint } : {}),
      forcePathStyle: at.pathStyle,
      // checksums only where S3 requires them: servers other than AWS do not all take the
      // chunked trailers the SDK would otherwise send (the archives carry their own sha256)
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: { connectionTimeout: timeoutMs, requestTimeout: timeoutMs, ...(tls.secureContext ? { httpsAgent: tls } : {}) },
      maxAttempts: 2,
    });
  }

  private fail(op: string, key: string, e: unknown, signal: AbortSignal): unknown {
    if (signal.aborted) return signal.reason;
    const what = e instanceof this.sdk.S3ServiceException ? `${e.name} (${e.$metadata.httpStatusCode ?? "?"})${e.message && e.message !== e.name ? `: ${e.message}` : ""}` : (e as Error).message;
    return unreachable(this.url, `${op} ${key}: ${what}`);
  }

  private missing(e: unknown): boolean {
    return e instanceof this.sdk.S3ServiceException && (e.name === "NoSuchKey" || e.name === "NotFound" || e.$metadata.httpStatusCode === 404);
  }

  private async object(key: string, signal: AbortSignal): Promise<Readable | undefined> {
    try {
      const r = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }), { abortSignal: signal });
      return r.Body as Readable;
    } catch (e) {
      if (this.missing(e)) return undefined;
      throw this.fail("GET", key, e, signal);
    }
  }

  async get(key: string, signal: AbortSignal): Promise<Buffer | undefined> {
    const body = await this.object(key, signal);
    if (!body) return undefined;
    const chunks: Buffer[] = [];
    try {
      for await (const c of body) chunks.push(c as Buffer);
    } catch (e) {
      throw this.fail("GET", key, e, signal);
    }
    return Buffer.concat(chunks);
  }

  async has(key: string, signal: AbortSignal): Promise<boolean> {
    try {
      await this.client.send(new this.sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }), { abortSignal: signal });
      return true;
    } catch (e) {
      if (this.missing(e)) return false;
      throw this.fail("HEAD", key, e, signal);
    }
  }

  async download(key: string, dest: string, signal: AbortSignal, onProgress?: (bytes: number) => void): Promise<boolean> {
    const body = await this.object(key, signal);
    if (!body) return false;
    let bytes = 0;
    body.on("data", (c: Buffer) => onProgress?.((bytes += c.length)));
    try {
      await pipeline(body, createWriteStream(dest), { signal });
    } catch (e) {
      rmSync(dest, { force: true });
      throw this.fail("GET", key, e, signal);
    }
    return true;
  }

  async put(key: string, body: Buffer | { file: string; size: number }, signal: AbortSignal): Promise<void> {
    try {
      await this.client.send(new this.sdk.PutObjectCommand({
        Bucket: this.bucket, Key: this.prefix + key,
        Body: Buffer.isBuffer(body) ? body : createReadStream(body.file),
        ContentLength: Buffer.isBuffer(body) ? body.length : body.size,
      }), { abortSignal: signal });
    } catch (e) {
      throw this.fail("PUT", key, e, signal);
    }
  }
}
