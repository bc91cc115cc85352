// The fetcher's HTTP client (engine/http-get.ts) against a local server: redirects, compressed
// bodies, HEAD, statuses, and the reason of a failure.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { httpGet } from "./http-get.js";

const TEXT = "the body, ".repeat(200);

describe("httpGet", () => {
  let server: Server;
  let base: string;
  const seen: string[] = [];
  /** the type and agent each request asked with */
  const asked: string[] = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers["accept-encoding"] ?? ""}`);
      asked.push(`${req.headers.accept ?? ""} ${req.headers["user-agent"] ?? ""}`);
      const url = req.url ?? "";
      if (url === "/plain") res.end(TEXT);
      else if (url === "/gzip") res.writeHead(200, { "content-encoding": "gzip" }).end(gzipSync(TEXT));
      else if (url === "/deflate") res.writeHead(200, { "content-encoding": "deflate" }).end(deflateSync(TEXT));
      else if (url === "/br") res.writeHead(200, { "content-encoding": "br" }).end(brotliCompressSync(TEXT));
      else if (url === "/json") res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" }).end(gzipSync(JSON.stringify({ dist: { tarball: "t" } })));
      else if (url.startsWith("/hop/")) {
        const n = Number(url.slice(5));
        // relative and absolute Locations, several redirect statuses
        res.writeHead([301, 302, 303, 307, 308][n % 5]!, { location: n === 0 ? "/plain" : n % 2 ? `/hop/${n - 1}` : `${base}/hop/${n - 1}` }).end();
      } else if (url === "/loop") res.writeHead(302, { location: "/loop" }).end();
      else if (url === "/empty-gzip-404") res.writeHead(404, { "content-encoding": "gzip", "content-length": "0" }).end();
      else if (url === "/stall-headers") void 0; // never answered
      else if (url === "/stall-body") res.writeHead(200, { "content-length": "100" }).write("a few bytes, then nothing");
      else if (url === "/slow") {
        res.writeHead(200);
        const tick = setInterval(() => res.write("."), 50);
        res.on("close", () => clearInterval(tick));
      }
      else res.writeHead(404, "Nothing Here").end("no");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  const text = async (url: string): Promise<string> => {
    const res = await httpGet(url, new AbortController().signal);
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString();
  };

  test("a body comes as sent, or decoded from gzip, deflate and brotli, which it asks for", async () => {
    for (const p of ["/plain", "/gzip", "/deflate", "/br"]) assert.equal(await text(base + p), TEXT, p);
    assert.match(seen.at(-1)!, /gzip, deflate, br$/);
    assert.deepEqual(await (await httpGet(`${base}/json`, new AbortController().signal)).json(), { dist: { tarball: "t" } });
  });

  test("redirects are followed, relative or not, to the URL that answers", async () => {
    const res = await httpGet(`${base}/hop/6`, new AbortController().signal);
    assert.equal(res.status, 200);
    assert.equal(res.url, `${base}/plain`);
    res.body.resume();
    const head = await httpGet(`${base}/hop/3`, new AbortController().signal, {}, "HEAD");
    assert.equal(head.status, 200);
    assert.ok(seen.includes(`HEAD /plain gzip, deflate, br`), "HEAD stays HEAD through redirects");
    await assert.rejects(httpGet(`${base}/loop`, new AbortController().signal), /more than 20 redirects/);
  });

  test("a status is given with its text; no answer is an error that names the reason", async () => {
    const res = await httpGet(`${base}/nothing`, new AbortController().signal);
    assert.deepEqual([res.status, res.statusText, res.ok], [404, "Nothing Here", false]);
    res.body.resume();
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await assert.rejects(httpGet(`http://127.0.0.1:${port}/`, new AbortController().signal), /^Error: fetch failed: connect ECONNREFUSED/);
    await assert.rejects(httpGet("ftp://127.0.0.1/x", new AbortController().signal), /ftp: URLs are not fetched/);
  });

  test("it asks as fetch() did: any type, compressed or not, under a name of its own", async () => {
    (await httpGet(`${base}/plain`, new AbortController().signal)).discard();
    assert.match(seen.at(-1)!, /^GET \/plain gzip, deflate, br$/);
    assert.equal(asked.at(-1), "*/* kiln");
    // the caller's own headers go over the defaults
    const res = await httpGet(`${base}/plain`, new AbortController().signal, { accept: "application/json" });
    res.discard();
    assert.equal(res.status, 200);
    assert.equal(asked.at(-1), "application/json kiln");
  });

  test("an error status's body is dropped safely, even an empty compressed one", async () => {
    const res = await httpGet(`${base}/empty-gzip-404`, new AbortController().signal);
    assert.equal(res.status, 404);
    res.discard();
    // a decoder of no bytes fails; nothing may throw outside, the process goes on
    await new Promise((r) => setTimeout(r, 50));
    const read = await httpGet(`${base}/empty-gzip-404`, new AbortController().signal);
    await assert.rejects(read.json(), /unexpected end of file/);
  });

  test("limits: no headers, a body that stops, an answer too long in all: each an error that says which", async () => {
    const signal = new AbortController().signal;
    await assert.rejects(httpGet(`${base}/stall-headers`, signal, {}, "GET", { idleMs: 200 }), /^Error: fetch failed: no data for 200 ms \(http:.*\/stall-headers\)/);
    const cut = await httpGet(`${base}/stall-body`, signal, {}, "GET", { idleMs: 200 });
    await assert.rejects(cut.json(), /fetch failed: no data for 200 ms/);
    const slow = await httpGet(`${base}/slow`, signal, {}, "GET", { totalMs: 400, idleMs: 10_000 });
    await assert.rejects(slow.json(), /fetch failed: no complete answer in 400 ms/);
  });

  test("a cancelled request rejects as aborted", async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(httpGet(`${base}/plain`, ac.signal), { name: "AbortError" });
  });
});
