// Fixed outputs end to end (fixtures/fetch): pinned sha256, where the bytes may come from, what
// the user is told when none of those places has them, and `kiln store add-fixed`.
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, get as httpGet, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { after, before, describe, test } from "node:test";
import { sha256File } from "../store/digest.js";
import { buildStarts, cleanup, copyFixture, eventsOf, hostStorePath, isSeedNode, kiln, kilnJson, query, tempDir, validPaths, withoutSeed, type RunResult } from "./test-helpers/kiln.js";

const DATA_SHA = "fa58e9396e91a3d21c024e11f70af1531aeed6ae2e4043ddc75bc4dc444e0fd4";
const WRONG_PIN = "3be72a12321fc10d3e018ebf130582e91c1b1abf5eefee73b9b009fff8556cc1";
const MISSING_SHA = "97d836cd89b34304bf26aa31d24bdbb7c9da8bb943ecdb1e8a8cf2d50ce0671e";

/** Listen on a free port of 127.0.0.1; the base URL. */
async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Stop a test server, cutting the connections it still holds. */
async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

describe("fixed outputs", { timeout: 120_000 }, () => {
  let cwd: string;
  let store: string;
  let server: Server;
  const requests: string[] = [];
  const held: ServerResponse[] = [];
  const o = () => ({ cwd, store });

  before(async () => {
    cwd = copyFixture("fetch");
    store = tempDir("store");
    // the fixture's pins must match its files, or every test below would be meaningless
    assert.equal(sha256File(join(cwd, "files", "data.txt")), DATA_SHA);
    assert.equal(sha256File(join(cwd, "manual", "missing.bin")), MISSING_SHA);
    const served = readFileSync(join(cwd, "files", "served.txt"));
    server = createServer((req, res) => {
      requests.push(req.url ?? "");
      if (req.url === "/served.txt") res.end(served);
      else if (req.url === "/hang") held.push(res); // never answered
      else res.writeHead(404).end("not here");
    });
    const port = new URL(await listen(server)).port;
    const recipe = join(cwd, "recipes", "index.ts");
    const text = readFileSync(recipe, "utf8");
    assert.ok(text.includes("const PORT = 9;"));
    writeFileSync(recipe, text.replace("const PORT = 9;", `const PORT = ${port};`));
  });
  after(async () => {
    await stop(server);
    cleanup();
  });

  test("a {file} source with the pinned bytes is fetched once and used by a build", async () => {
    const r = await kilnJson(["realize", "useGood"], o());
    assert.deepEqual(eventsOf(withoutSeed(r.events), "started").map((e) => [e.node!.name, e.kind]), [["data.txt", "fetch"], ["use-data", "build"]]);
    // and the seed use-data runs on: its .deb fetched (from the tests' mirror), unpacked, merged
    assert.deepEqual(eventsOf(r.events, "started").filter((e) => isSeedNode(e.node!.name)).map((e) => e.kind), ["fetch", "build", "build"]);
    assert.equal(readFileSync(join(cwd, "result", "copy.txt"), "utf8"), readFileSync(join(cwd, "files", "data.txt"), "utf8"));
    const [p] = validPaths(store, "data.txt");
    assert.ok(p);
    assert.deepEqual(query(store, "SELECT ca FROM valid_paths WHERE path = ?", p), [{ ca: `sha256:${DATA_SHA}` }]);
    assert.equal(sha256File(hostStorePath(store, p)), DATA_SHA);
    const again = await kilnJson(["realize", "useGood"], o());
    assert.equal(eventsOf(again.events, "started").length, 0);
  });

  test("a wrong pinned sha256 fails with exit 1, showing the expected and the actual hash", async () => {
    const r = await kiln(["realize", "wrong"], o());
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`expected sha256 ${WRONG_PIN}`));
    assert.match(r.stderr, new RegExp(`actual +sha256 ${DATA_SHA}`));
    assert.match(r.stderr, /update sha256 in the recipe/);
    assert.deepEqual(validPaths(store, "wrong.txt"), []);
  });

  test("when no source has the file, the error lists every place tried and points at `kiln store add-fixed`", async () => {
    const r = await kiln(["realize", "unreachable"], o());
    assert.equal(r.code, 1, r.stderr);
    for (const place of ["file:/nonexistent", `mirror:${join(cwd, "mirror")}`, "http://127.0.0.1:9/x"]) {
      assert.ok(r.stderr.includes(place), `the error should list ${place}:\n${r.stderr}`);
    }
    assert.match(r.stderr, /kiln store add-fixed <file>/);
    assert.match(r.stderr, new RegExp(MISSING_SHA));
    assert.deepEqual(validPaths(store, "missing.bin"), []);
  });

  test("after `kiln store add-fixed` with the right bytes, realize succeeds without fetching", async () => {
    // a store of its own: in the shared one, the file would satisfy the test above
    const own = { cwd, store: tempDir("store") };
    const add = await kiln(["store", "add-fixed", join(cwd, "manual", "missing.bin")], own);
    assert.equal(add.code, 0, add.stderr);
    const [path, shaLine] = add.stdout.trim().split("\n");
    assert.equal(shaLine, `sha256 ${MISSING_SHA}`);
    assert.match(path!, /-missing\.bin$/);
    const r = await kilnJson(["realize", "unreachable"], own);
    assert.equal(eventsOf(r.events, "started").length, 0, "nothing fetched");
    assert.equal(r.stdout, `${path}\n`);
    assert.equal(readFileSync(join(cwd, "result")).toString(), readFileSync(join(cwd, "manual", "missing.bin")).toString());
  });

  test("add-fixed of bytes with another hash does not satisfy a pin", async () => {
    const store2 = tempDir("store");
    const other = join(tempDir("other"), "missing.bin");
    writeFileSync(other, "other bytes\n");
    const add = await kiln(["store", "add-fixed", other], { cwd, store: store2 });
    assert.equal(add.code, 0, add.stderr);
    const r = await kiln(["realize", "unreachable"], { cwd, store: store2 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unreachable/);
  });

  test("a {url} source is downloaded from a local HTTP server, once", async () => {
    const before = requests.length;
    const r = await kilnJson(["realize", "served"], o());
    assert.deepEqual(requests.slice(before), ["/served.txt"]);
    assert.equal(buildStarts(r.events).length, 0);
    assert.deepEqual(eventsOf(r.events, "started").map((e) => e.kind), ["fetch"]);
    assert.equal(readFileSync(join(cwd, "result"), "utf8"), readFileSync(join(cwd, "files", "served.txt"), "utf8"));
    const again = await kilnJson(["realize", "served"], o());
    assert.equal(eventsOf(again.events, "started").length, 0);
    assert.equal(requests.length, before + 1, "not downloaded again");
  });

  test("a download cut short because another fetch failed is cancelled, not reported as a failure of its source", async () => {
    const r = await kiln(["realize", "--json", "-j", "2", "wrong", "hanging"], o());
    assert.equal(r.code, 1, r.stderr);
    const summary = JSON.parse(r.stdout) as { failed: Array<{ name: string; code: string }> };
    assert.deepEqual(summary.failed.map((f) => [f.name, f.code]), [["wrong.txt", "FIXED_OUTPUT_MISMATCH"]]);
    assert.doesNotMatch(r.stderr, /FAILED +hanging\.txt/);
    assert.doesNotMatch(r.stderr, /aborted/);
  });

  test("a {mirror} folder with the file under its sha256 supplies it", async () => {
    // a copy of its own: in the shared one, the mirror would supply the file to the tests above
    const own = { cwd: copyFixture("fetch"), store: tempDir("store") };
    copyFileSync(join(own.cwd, "manual", "missing.bin"), join(own.cwd, "mirror", MISSING_SHA));
    const r = await kilnJson(["realize", "unreachable"], own);
    assert.deepEqual(eventsOf(r.events, "started").map((e) => e.kind), ["fetch"]);
    assert.equal(sha256File(join(own.cwd, "result")), MISSING_SHA);
  });
});

describe("npm registry sources", { timeout: 120_000 }, () => {
  const IS_NUMBER_SHA = "7b75c1057198cf97696909a9bee176c9c5e9bcb5b03bf3ecef2f484defadd51e";
  let cwd: string;
  let store: string;
  let registry: Server;
  let registryUrl: string;
  const requests: string[] = [];
  let online: Promise<RunResult> | undefined;
  /** npmReal from the real registry into the shared store, once, by whichever test needs it first */
  const realizeOnline = () => (online ??= kilnJson(["realize", "npmReal"], { cwd, store }));

  before(async () => {
    cwd = copyFixture("fetch");
    store = tempDir("store");
    const served = readFileSync(join(cwd, "files", "served.txt"));
    // a registry of one package version: metadata naming a tarball URL on another path, as npm's does
    registry = createServer((req, res) => {
      requests.push(req.url ?? "");
      if (req.url === "/@kiln-test%2ftiny/1.0.0") {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ name: "@kiln-test/tiny", version: "1.0.0", dist: { tarball: `${registryUrl}/files/tiny-1.0.0.tgz` } }));
      } else if (req.url === "/files/tiny-1.0.0.tgz") res.end(served);
      else res.writeHead(404).end('{"error":"Not found"}');
    });
    registryUrl = await listen(registry);
  });
  after(async () => {
    await stop(registry);
    cleanup();
  });

  test("a real package comes from the npm registry with its pinned sha256, once", async () => {
    const r = await realizeOnline();
    assert.deepEqual(eventsOf(r.events, "started").map((e) => [e.node!.name, e.kind]), [["is-number-7.0.0.tgz", "fetch"]]);
    assert.ok(eventsOf(r.events, "log").some((e) => e.line === "trying npm:is-number@7.0.0"));
    const tgz = readFileSync(join(cwd, "result"));
    assert.equal(sha256File(join(cwd, "result")), IS_NUMBER_SHA);
    // the registry's tarball itself: gzip, with the package under package/
    assert.ok(gunzipSync(tgz).includes("package/package.json"));
    const again = await kilnJson(["realize", "npmReal"], { cwd, store });
    assert.equal(eventsOf(again.events, "started").length, 0);
  });

  test("a wrong pin on an npm package fails with the expected and the actual hash", async () => {
    const r = await kiln(["realize", "npmWrong"], { cwd, store });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /npm:is-number@7\.0\.0: hash mismatch/);
    assert.match(r.stderr, /expected sha256 3be72a12321fc10d3e018ebf130582e91c1b1abf5eefee73b9b009fff8556cc1/);
    assert.match(r.stderr, new RegExp(`actual +sha256 ${IS_NUMBER_SHA}`));
    assert.deepEqual(validPaths(store, "is-number-7.0.0-wrong.tgz"), []);
  });

  test("offline, the error names the registry source and the way to add the tarball by hand, which then suffices", async () => {
    const offline = tempDir("store");
    const r = await kiln(["realize", "npmReal"], { cwd, store: offline, offline: true });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /fixed output is-number-7\.0\.0\.tgz: unreachable/);
    assert.match(r.stderr, /npm:is-number@7\.0\.0: fetch failed: getaddrinfo \S+ registry\.npmjs\.org/);
    assert.match(r.stderr, /npm pack is-number@7\.0\.0/);
    assert.match(r.stderr, /kiln store add-fixed <file>/);
    // the same bytes from anywhere satisfy the pin: where they came from is not part of the hash
    const copy = join(tempDir("tgz"), "is-number-7.0.0.tgz");
    copyFileSync((await realizeOnline()).stdout.trim(), copy);
    const add = await kiln(["store", "add-fixed", copy], { cwd, store: offline });
    assert.equal(add.code, 0, add.stderr);
    const ok = await kilnJson(["realize", "--no-link", "npmReal"], { cwd, store: offline, offline: true });
    assert.equal(eventsOf(ok.events, "started").length, 0, "nothing fetched");
    assert.equal(ok.stdout, `${add.stdout.split("\n")[0]}\n`);
  });

  test("npm_config_registry names the registry: a scoped package's metadata, then the tarball it names", async () => {
    const own = tempDir("store");
    const before = requests.length;
    const r = await kilnJson(["realize", "--no-link", "npmScoped"], { cwd, store: own, env: { npm_config_registry: `${registryUrl}/` } });
    assert.deepEqual(requests.slice(before), ["/@kiln-test%2ftiny/1.0.0", "/files/tiny-1.0.0.tgz"]);
    assert.equal(sha256File(hostStorePath(own, r.stdout.trim().split("/").pop()!)), "5a89b253837d1e7f717a6e0a5a903dee93e74eb0f1cc351ad0d04a0b64a74991");
  });

  test("a version the registry does not have is reported as not found there", async () => {
    const own = tempDir("store");
    const r = await kiln(["realize", "npmReal"], { cwd, store: own, env: { npm_config_registry: registryUrl } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /npm:is-number@7\.0\.0: not found there/);
    assert.ok(requests.includes("/is-number/7.0.0"));
  });
});

describe("Debian source package files (debSource)", { timeout: 300_000 }, () => {
  let cwd: string;
  let archive: Server;
  let base: string;
  const requests: string[] = [];
  const SERVED_SHA = "5a89b253837d1e7f717a6e0a5a903dee93e74eb0f1cc351ad0d04a0b64a74991";

  before(async () => {
    cwd = copyFixture("fetch");
    const served = readFileSync(join(cwd, "files", "served.txt"));
    // /own: an archive holding one file in its pool. /proxy: Debian's archive, except that its pool
    // answers no HEAD request, so that a fetch must go through apt-get source (whose GETs pass)
    archive = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const url = req.url ?? "";
      if (url === "/own/debian/pool/contrib/libk/libkiln-test/libkiln-test_1.0.orig.tar.gz") res.end(req.method === "HEAD" ? undefined : served);
      else if (url.startsWith("/proxy/")) {
        if (req.method === "HEAD" && url.includes("/pool/")) return void res.writeHead(404).end();
        const up = httpGet(`http://deb.debian.org${url.slice("/proxy".length)}`, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.on("error", () => res.writeHead(502).end());
      } else res.writeHead(404).end();
    });
    base = await listen(archive);
  });
  after(async () => {
    await stop(archive);
    cleanup();
  });

  test("a file is fetched from the pool folder its package's name gives, in whichever component has it", async () => {
    const store = tempDir("store");
    const before = requests.length;
    const env = { KILN_DEBIAN_ARCHIVE: `${base}/own/debian`, KILN_DEBIAN_SECURITY: `${base}/own/debian-security` };
    const r = await kilnJson(["realize", "--no-link", "debSourcePool"], { cwd, store, env });
    assert.deepEqual(requests.slice(before), [
      "HEAD /own/debian/pool/main/libk/libkiln-test/libkiln-test_1.0.orig.tar.gz",
      "HEAD /own/debian/pool/contrib/libk/libkiln-test/libkiln-test_1.0.orig.tar.gz",
      "GET /own/debian/pool/contrib/libk/libkiln-test/libkiln-test_1.0.orig.tar.gz",
    ]);
    assert.equal(sha256File(hostStorePath(store, r.stdout.trim().split("/").pop()!)), SERVED_SHA);
  });

  test("where the pool does not answer, apt-get source finds the file through deb-src lines of kiln's own", async () => {
    const store = tempDir("store");
    const env = { KILN_DEBIAN_ARCHIVE: `${base}/proxy/debian`, KILN_DEBIAN_SECURITY: `${base}/proxy/debian-security` };
    const r = await kilnJson(["realize", "--no-link", "debSourceReal"], { cwd, store, env });
    const log = eventsOf(r.events, "log").map((e) => e.line);
    assert.ok(log.includes(`not in the pool at ${base}/proxy/debian: asking apt-get source`), log.join("\n"));
    // apt read the suite's source index and took the file from the pool with GET
    assert.ok(requests.some((q) => /^GET \/proxy\/debian\/dists\/bookworm\/(InRelease|Release)$/.test(q)));
    assert.ok(requests.includes("GET /proxy/debian/pool/main/m/m4/m4_1.4.19-3.dsc"));
    assert.equal(sha256File(hostStorePath(store, r.stdout.trim().split("/").pop()!)), "ef1d34ebe63e0bd58bb8ce503330224ed71f6c8919d7af38c451a9a2a10ce1c3");
  });

  test("a package no archive has is reported as not found, with the way to add the file by hand", async () => {
    const store = tempDir("store");
    const env = { KILN_DEBIAN_ARCHIVE: `${base}/proxy/debian`, KILN_DEBIAN_SECURITY: `${base}/proxy/debian-security` };
    const r = await kiln(["realize", "debSourceMissing"], { cwd, store, env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /debian-source:kiln-no-such-package=1\.0-1\/kiln-no-such-package_1\.0\.orig\.tar\.gz: not found there/);
    assert.match(r.stderr, /kiln store add-fixed <file>/);
  });
});
