// GET and HEAD over Node's own HTTP clients, for the fetcher (engine/fetch.ts): redirects followed
// (at most 20), a compressed body decoded, the limits fetch() had (10 s to connect, 300 s without
// a byte of the headers or the body) and an overall one, and the network's reason in an error's
// message. Node's http/https rather than fetch(): an HTTPS request can then be given the extra
// certificate authorities of NODE_EXTRA_CA_CERTS when kiln, not Node, reads them
// (engine/extra-ca.ts); fetch() takes no TLS options of its own.
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, RequestOptions } from "node:http";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { tlsOptions } from "./extra-ca.js";

export interface HttpResponse {
  /** the URL that answered, after redirects */
  url: string;
  status: number;
  statusText: string;
  /** a 2xx status */
  ok: boolean;
  headers: IncomingHttpHeaders;
  /** the body, decoded when the server compressed it; an error (a cut connection, a limit) comes through it */
  body: Readable;
  /** the body read whole and parsed as JSON */
  json(): Promise<unknown>;
  /** the body not wanted (an error status): read to its end and dropped, whatever happens to it */
  discard(): void;
}

export interface HttpLimits {
  /** to make the connection (fetch()'s own: 10 s) */
  connectMs?: number;
  /** without a byte, for the headers or within the body (fetch()'s: 300 s) */
  idleMs?: number;
  /** for the whole answer, body included, redirects included */
  totalMs?: number;
}

const MAX_REDIRECTS = 20;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * `method` of `url`, following redirects. Rejects with "fetch failed: <reason>" when no answer
 * comes, and as aborted (an AbortError) when `signal` cancels it.
 */
export async function httpGet(url: string, signal: AbortSignal, headers: Record<string, string> = {}, method: "GET" | "HEAD" = "GET", limits: HttpLimits = {}): Promise<HttpResponse> {
  const deadline = limits.totalMs === undefined ? undefined : Date.now() + limits.totalMs;
  let target = new URL(url);
  for (let hops = 0; ; hops++) {
    const res = await requestOnce(target, method, headers, signal, limits, deadline);
    const location = res.headers.location;
    if (REDIRECTS.has(res.statusCode ?? 0) && location) {
      drain(res);
      if (hops === MAX_REDIRECTS) throw new Error(`fetch failed: more than ${MAX_REDIRECTS} redirects from ${url}`);
      target = new URL(location, target);
      continue;
    }
    return response(res, target.href, method);
  }
}

const load = createRequire(import.meta.url);

function requestOnce(target: URL, method: string, headers: Record<string, string>, signal: AbortSignal, limits: HttpLimits, deadline: number | undefined): Promise<IncomingMessage> {
  if (target.protocol !== "http:" && target.protocol !== "https:") return Promise.reject(new Error(`fetch failed: ${target.protocol} URLs are not fetched (${target.href})`));
  const secure = target.protocol === "https:";
  // loaded here, not with the module: most commands never download anything
  const lib = (secure ? load("node:https") : load("node:http")) as { request(u: URL, o: RequestOptions): ClientRequest };
  const options: RequestOptions = {
    method,
    signal,
    headers: { "user-agent": "kiln", accept: "*/*", "accept-encoding": "gzip, deflate, br", ...headers },
    ...(secure ? tlsOptions() : {}),
  };
  return new Promise((resolve, reject) => {
    const req = lib.request(target, options);
    let answer: IncomingMessage | undefined;
    const fail = (why: string) => {
      const e = new Error(`fetch failed: ${why} (${target.href})`);
      // once the headers are in, the body is what fails: its reader hears of it
      answer?.destroy(e);
      req.destroy(e);
    };
    const connectMs = limits.connectMs ?? 10_000;
    const idleMs = limits.idleMs ?? 300_000;
    let total: NodeJS.Timeout | undefined;
    if (deadline !== undefined) {
      const left = Math.max(0, deadline - Date.now());
      total = setTimeout(() => fail(`no complete answer in ${duration(limits.totalMs!)}`), left).unref();
    }
    const stopTotal = () => clearTimeout(total);
    req.setTimeout(idleMs, () => fail(`no data for ${duration(idleMs)}`));
    req.once("socket", (socket: Socket) => {
      if (!socket.connecting) return;
      const connect = setTimeout(() => fail(`no connection in ${duration(connectMs)}`), connectMs).unref();
      socket.once(secure ? "secureConnect" : "connect", () => clearTimeout(connect));
      socket.once("close", () => clearTimeout(connect));
    });
    req.once("response", (res) => {
      answer = res;
      res.once("close", stopTotal);
      resolve(res);
    });
    // (on, not once: the request may fail again after its answer came, as the body is cut; the
    // body's reader hears of that, and the promise is settled already)
    req.on("error", (e: NodeJS.ErrnoException) => {
      stopTotal();
      if (e.name === "AbortError" || e.message.startsWith("fetch failed:")) reject(e);
      else reject(new Error(`fetch failed: ${e.message || e.code}`, { cause: e }));
    });
    req.end();
  });
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}

/** Read a response to its end and drop it; an error on the way is of no interest. */
function drain(res: IncomingMessage): void {
  res.on("error", () => {});
  res.resume();
}

function response(res: IncomingMessage, url: string, method: string): HttpResponse {
  const status = res.statusCode ?? 0;
  const body = method === "HEAD" ? res : decoded(res);
  return {
    url,
    status,
    statusText: res.statusMessage ?? "",
    ok: status >= 200 && status < 300,
    headers: res.headers,
    body,
    async json() {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString("utf8"));
    },
    discard() {
      // the raw response, not a decoder, which would fail on an empty or cut compressed body
      if (body !== res) body.on("error", () => {}).destroy();
      drain(res);
    },
  };
}

/** The body as the server meant it: gzip, deflate and brotli undone, as fetch() does. */
function decoded(res: IncomingMessage): Readable {
  const encoding = String(res.headers["content-encoding"] ?? "").trim().toLowerCase();
  if (!encoding || encoding === "identity") return res;
  const zlib = load("node:zlib") as typeof import("node:zlib");
  const decoder = encoding === "gzip" || encoding === "x-gzip" ? zlib.createGunzip() : encoding === "deflate" ? zlib.createInflate() : encoding === "br" ? zlib.createBrotliDecompress() : undefined;
  if (!decoder) return res;
  // an error of either side ends both, and reaches whoever reads the decoder (it has a listener
  // here, so an unread one fails nothing)
  const { pipeline } = load("node:stream") as typeof import("node:stream");
  return pipeline(res, decoder, () => {});
}
