// Fixed outputs end to end (fixtures/fetch): pinned sha256, where the bytes may come from, what
// the user is told when none of those places has them, and `kiln store add-fixed`.
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sha256File } from "../store/digest.js";
import { buildStarts, cleanup, copyFixture, eventsOf, hostStorePath, kiln, kilnJson, query, tempDir, validPaths } from "./test-helpers/kiln.js";

const DATA_SHA = "fa58e9396e91a3d21c024e11f70af1531aeed6ae2e4043ddc75bc4dc444e0fd4";
const WRONG_PIN = "3be72a12321fc10d3e018ebf130582e91c1b1abf5eefee73b9b009fff8556cc1";
const MISSING_SHA = "97d836cd89b34304bf26aa31d24bdbb7c9da8bb943ecdb1e8a8cf2d50ce0671e";

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
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const recipe = join(cwd, "recipes", "index.ts");
    const text = readFileSync(recipe, "utf8");
    assert.ok(text.includes("const PORT = 9;"));
    writeFileSync(recipe, text.replace("const PORT = 9;", `const PORT = ${port};`));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    cleanup();
  });

  test("a {file} source with the pinned bytes is fetched once and used by a build", async () => {
    const r = await kilnJson(["realize", "useGood"], o());
    assert.deepEqual(eventsOf(r.events, "started").map((e) => [e.node!.name, e.kind]), [["data.txt", "fetch"], ["use-data", "build"]]);
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
    const add = await kiln(["store", "add-fixed", join(cwd, "manual", "missing.bin")], o());
    assert.equal(add.code, 0, add.stderr);
    const [path, shaLine] = add.stdout.trim().split("\n");
    assert.equal(shaLine, `sha256 ${MISSING_SHA}`);
    assert.match(path!, /-missing\.bin$/);
    const r = await kilnJson(["realize", "unreachable"], o());
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
    const store3 = tempDir("store");
    copyFileSync(join(cwd, "manual", "missing.bin"), join(cwd, "mirror", MISSING_SHA));
    const r = await kilnJson(["realize", "unreachable"], { cwd, store: store3 });
    assert.deepEqual(eventsOf(r.events, "started").map((e) => e.kind), ["fetch"]);
    assert.equal(sha256File(join(cwd, "result")), MISSING_SHA);
  });
});
