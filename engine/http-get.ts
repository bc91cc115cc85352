// GET and HEAD over Node's own HTTP clients, for the fetcher (engine/fetch.ts): redirects followed
// (at most 20, as fetch() does), a compressed body decoded, the network's reason in an error's
// message. Node's http/https rather than fetch(): an HTTPS request can then be given the extra
// certificate authorities of NODE_EXTRA_CA_CERTS when kiln, not Node, reads them
// (engine/extra-ca.ts); fetch() takes no TLS options of its own.
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, RequestOptions } from "node:http";
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import { tlsCa } from "./extra-ca.js";

export interface HttpResponse {
  /** the URL that answered, after redirects */
  url: string;
  status: number;
  statusText: string;
  /** a 2xx status */
  ok: boolean;
  headers: IncomingHttpHeaders;
  /** the body, decoded when the server compressed it */
  body: Readable;
  /** the body read whole and parsed as JSON */
  json(): Promise<unknown>;
}

const MAX_REDIRECTS = 20;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** `method` of `url`, following redirects; rejects with "fetch failed: <reason>" when no answer comes. */
export async function httpGet(url: string, signal: AbortSignal, headers: Record<string, string> = {}, method: "GET" | "HEAD" = "GET"): Promise<HttpResponse> {
  let target = new URL(url);
  for (let hops = 0; ; hops++) {
    const res = await requestOnce(target, method, headers, signal);
    const location = res.headers.location;
    if (REDIRECTS.has(res.statusCode ?? 0) && location) {
      res.resume();
      if (hops === MAX_REDIRECTS) throw new Error(`fetch failed: more than ${MAX_REDIRECTS} redirects from ${url}`);
      target = new URL(location, target);
      continue;
    }
    return response(res, target.href, method);
  }
}

const require = createRequire(import.meta.url);

function requestOnce(target: URL, method: string, headers: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> {
  if (target.protocol !== "http:" && target.protocol !== "https:") return Promise.reject(new Error(`fetch failed: ${target.protocol} URLs are not fetched (${target.href})`));
  const secure = target.protocol === "https:";
  // loaded here, not with the module: most commands never download anything
  const lib = (secure ? require("node:https") : require("node:http")) as { request(u: URL, o: RequestOptions): ClientRequest };
  const options: RequestOptions = { method, signal, headers: { "accept-encoding": "gzip, deflate, br", ...headers }, ...(secure ? tlsCa() : {}) };
  return new Promise((resolve, reject) => {
    const req = lib.request(target, options);
    req.once("response", resolve);
    req.once("error", (e: NodeJS.ErrnoException) => {
      if (e.name === "AbortError") reject(e);
      else reject(new Error(`fetch failed: ${e.message || e.code}`, { cause: e }));
    });
    req.end();
  });
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
  };
}

/** The body as the server meant it: gzip, deflate and brotli undone, as fetch() does. */
function decoded(res: IncomingMessage): Readable {
  const encoding = String(res.headers["content-encoding"] ?? "").trim().toLowerCase();
  if (!encoding || encoding === "identity") return res;
  const zlib = require("node:zlib") as typeof import("node:zlib");
  const decoder = encoding === "gzip" || encoding === "x-gzip" ? zlib.createGunzip() : encoding === "deflate" ? zlib.createInflate() : encoding === "br" ? zlib.createBrotliDecompress() : undefined;
  if (!decoder) return res;
  res.on("error", (e) => decoder.destroy(e));
  return res.pipe(decoder);
}
