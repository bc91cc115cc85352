// A binary cache on an HTTP server: GET and HEAD to read, WebDAV PUT to write (nginx's dav
// module with create_full_put_path, Apache mod_dav, most artifact servers). Credentials in the
// URL (http://user:password@host/cache) go as Basic authentication. A request that gets no
// answer, or a download that gets no bytes, for the timeout fails: a slow cache is skipped like
// a dead one.
import { createReadStream, createWriteStream, rmSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { CacheBackend } from "./backend.js";
import { unreachable } from "./cache-errors.js";
import { tlsOptions } from "../extra-ca.js";

export class HttpBackend implements CacheBackend {
  readonly url: string;
  private readonly base: URL;
  private readonly auth: string | undefined;
  private readonly agent: http.Agent;

  constructor(u: URL, private readonly timeoutMs: number) {
    this.auth = u.username ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}` : undefined;
    this.base = new URL(u.href);
    this.base.username = "";
    this.base.password = "";
    if (!this.base.pathname.endsWith("/")) this.base.pathname += "/";
    this.url = this.base.href.replace(/\/$/, "");
    // keep-alive: a plan asks for hundreds of small files
    this.agent = u.protocol === "https:" ? new https.Agent({ keepAlive: true, maxSockets: 16, ...tlsOptions() }) : new http.Agent({ keepAlive: true, maxSockets: 16 });
  }

  /** One request; resolves with the response once its headers are in. */
  private request(method: string, key: string, signal: AbortSignal, body?: Buffer | { file: string; size: number }): Promise<http.IncomingMessage> {
    const target = new URL(key, this.base);
    const lib = target.protocol === "https:" ? https : http;
    const headers: http.OutgoingHttpHeaders = {};
    if (this.auth) headers.authorization = this.auth;
    if (body) headers["content-length"] = Buffer.isBuffer(body) ? body.length : body.size;
    return new Promise((resolve, reject) => {
      const req = lib.request(target, { method, headers, agent: this.agent, signal });
      // no answer (or no bytes) for this long: the socket is given up
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on("error", (e) => reject(signal.aborted ? signal.reason : unreachable(this.url, `${method} ${key}: ${e.message}`)));
      req.on("response", (res) => {
        res.setTimeout(this.timeoutMs, () => res.destroy(new Error(`no data within ${this.timeoutMs} ms`)));
        resolve(res);
      });
      if (!body) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        const src = createReadStream(body.file);
        src.on("error", (e) => req.destroy(e));
        src.pipe(req);
      }
    });
  }

  private failed(method: string, key: string, res: http.IncomingMessage): Error {
    res.resume();
    return unreachable(this.url, `${method} ${key}: the server answered ${res.statusCode} ${res.statusMessage ?? ""}`.trim());
  }

  async get(key: string, signal: AbortSignal): Promise<Buffer | undefined> {
    const res = await this.request("GET", key, signal);
    if (res.statusCode === 404) return void res.resume();
    if (res.statusCode !== 200) throw this.failed("GET", key, res);
    return this.body(res, key);
  }

  private async body(res: Readable, key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    try {
      for await (const c of res) chunks.push(c as Buffer);
    } catch (e) {
      throw unreachable(this.url, `GET ${key}: ${(e as Error).message}`);
    }
    return Buffer.concat(chunks);
  }

  async has(key: string, signal: AbortSignal): Promise<boolean> {
    const res = await this.request("HEAD", key, signal);
    res.resume();
    if (res.statusCode === 404) return false;
    if (res.statusCode !== 200) throw this.failed("HEAD", key, res);
    return true;
  }

  async download(key: string, dest: string, signal: AbortSignal, onProgress?: (bytes: number) => void): Promise<boolean> {
    const res = await this.request("GET", key, signal);
    if (res.statusCode === 404) return (res.resume(), false);
    if (res.statusCode !== 200) throw this.failed("GET", key, res);
    let bytes = 0;
    res.on("data", (c: Buffer) => onProgress?.((bytes += c.length)));
    try {
      await pipeline(res, createWriteStream(dest), { signal });
    } catch (e) {
      rmSync(dest, { force: true });
      throw signal.aborted ? e : unreachable(this.url, `GET ${key}: ${(e as Error).message}`);
    }
    return true;
  }

  async put(key: string, body: Buffer | { file: string; size: number }, signal: AbortSignal): Promise<void> {
    const res = await this.request("PUT", key, signal, body);
    res.resume();
    // 201 created, 204 replaced (nginx), 200 (others)
    if (res.statusCode !== 200 && res.statusCode !== 201 && res.statusCode !== 204) throw this.failed("PUT", key, res);
  }
}
