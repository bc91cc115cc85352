// The launcher (cli/kiln.ts) compiles the CLI bundle with V8's code cache: the cache is made by
// the first run, used by the next, and never trusted when it belongs to another build of the
// bundle or V8 rejects it. A private copy of the shipped files, so the checkout's own cache is
// left alone.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, REPO, tempDir } from "./test-helpers/kiln.js";

describe("launcher: the CLI bundle through V8's code cache", () => {
  after(cleanup);
  let dist = "";
  let recipes = "";
  let store = "";

  before(() => {
    const root = tempDir("launcher");
    dist = join(root, "dist");
    mkdirSync(dist);
    // copies (Node runs a symlinked main script from its real path); the rest as links
    for (const f of ["kiln.cjs", "kiln-main.cjs"]) copyFileSync(join(REPO, "dist", f), join(dist, f));
    for (const d of ["engine", "store", "cli"]) symlinkSync(join(REPO, "dist", d), join(dist, d));
    symlinkSync(join(REPO, "node_modules"), join(root, "node_modules"));
    recipes = join(root, "recipes");
    mkdirSync(recipes);
    writeFileSync(join(recipes, "index.ts"), [
      'import { derivation, sh } from "kiln";',
      'export const greeting = derivation({ name: "greeting", script: sh`echo hi > $out` });',
      'export const other = derivation({ name: "other", script: sh`echo ho > $out` });',
    ].join("\n"));
    store = join(root, "store-dir");
  });

  const run = () => {
    const r = spawnSync(process.execPath, [join(dist, "kiln.cjs"), "--store", store, "-f", join(recipes, "index.ts"), "targets"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").sort().join(" "), "greeting other", "the recipes were imported and listed");
    return r;
  };
  const cacheFile = () => join(dist, "kiln-main.cjs.cache");
  const bundle = () => join(dist, "kiln-main.cjs");
  /** the header the launcher wrote: Node version, bundle digest, BLAKE3 of the code */
  const header = () => {
    const data = readFileSync(cacheFile());
    return data.subarray(4, 4 + data.readUInt32LE(0)).toString().split(" ");
  };
  const bundleId = () => /kiln-main-id ([0-9a-f]{64})\s*$/.exec(readFileSync(bundle(), "utf8"))![1]!;

  test("the first run makes the cache, for this Node and this bundle", () => {
    run();
    const [version, id] = header();
    assert.equal(version, process.version);
    assert.equal(id, bundleId(), "the digest cli/build.mjs appended to the bundle");
    assert.ok(statSync(cacheFile()).size > 100_000, "the cache holds compiled code");
  });

  test("the next run uses it (and imports the recipe bundle from cached code)", () => {
    const before = statSync(cacheFile());
    run();
    const now = statSync(cacheFile());
    assert.equal(now.ino, before.ino, "an accepted cache is not written again");
    assert.equal(now.mtimeMs, before.mtimeMs);
  });

  test("V8's header damaged: rejected by V8, made anew", () => {
    const data = readFileSync(cacheFile());
    const n = 4 + data.readUInt32LE(0);
    const damaged = Buffer.concat([data.subarray(0, n), Buffer.alloc(data.length - n, 0x5a)]);
    writeFileSync(cacheFile(), damaged);
    run();
    assert.notDeepEqual(readFileSync(cacheFile()), damaged, "rewritten");
    assert.equal(header()[1], bundleId());
  });

  // V8 here does not check its code's integrity: code damaged past its header crashed every
  // command (a segfault) until the file was removed
  test("the code damaged behind intact headers: the digest refuses it, no crash, made anew", () => {
    const data = readFileSync(cacheFile());
    const mid = 4 + data.readUInt32LE(0) + Math.floor((data.length - 4 - data.readUInt32LE(0)) / 2);
    const damaged = Buffer.from(data);
    for (let i = mid; i < mid + 64; i++) damaged[i] = damaged[i]! ^ 0xff;
    writeFileSync(cacheFile(), damaged);
    run();
    const now = readFileSync(cacheFile());
    assert.notDeepEqual(now, damaged, "rewritten");
  });

  test("a cache made for another bundle is not used, whatever the file's size and times", () => {
    const text = readFileSync(bundle(), "utf8");
    const other = "0".repeat(64);
    const st = statSync(bundle());
    // same length, same times: only the content says it is another build
    writeFileSync(bundle(), text.replace(bundleId(), other));
    utimesSync(bundle(), st.atime, st.mtime);
    assert.notEqual(header()[1], other);
    run();
    assert.equal(header()[1], other, "made anew for the bundle as it is now");
  });
});
