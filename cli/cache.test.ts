// Binary caches end to end, through the CLI and real servers the test starts on 127.0.0.1:
// nginx with WebDAV (http://), an S3 server (s3://), a dead port and a server that never answers.
// Store A builds fixtures/hello and pushes; empty stores substitute from the cache alone.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildStarts, cleanup, copyFixture, eventsOf, isSeedNode, kiln, kilnJson, seedNodeCount, tempDir, storeDigests, withoutSeed, type RunResult } from "./test-helpers/kiln.js";
import { freePort, startNginx, startS3, startSilent, type Running } from "./test-helpers/servers.js";

after(cleanup);


describe("binary caches on real servers", () => {
  let project: string;
  let keys: string;
  let pub: string;
  let storeA: string;
  let nginx: Running;
  let webRoot: string;
  const servers: Running[] = [];
  let pushed: Promise<RunResult> | undefined;
  /**
   * Store A builds greeting and pushes it to the nginx cache: once, by whichever test needs store A
   * or that cache first.
   */
  const pushA = () => (pushed ??= kilnJson(["realize", "greeting", "--no-link", "--push-to", `${nginx.url}/cache`, "--secret-key", join(keys, "test-cache-1.sec")], { cwd: project, store: storeA }));
  after(async () => {
    for (const s of servers) await s.stop();
  });

  before(async () => {
    project = copyFixture("hello");
    keys = tempDir("keys");
    const r = await kiln(["cache", "keygen", "test-cache-1", "--dir", keys], { cwd: project, store: tempDir("unused") });
    assert.equal(r.code, 0, r.stderr);
    pub = r.stdout.trim();
    const dir = tempDir("nginx");
    webRoot = join(dir, "www");
    nginx = await startNginx(dir, webRoot);
    servers.push(nginx);
    storeA = tempDir("store-a");
  });

  test("kiln cache keygen writes a private secret key and prints the public one", () => {
    assert.match(pub, /^test-cache-1:[A-Za-z0-9+/]{43}=$/);
    assert.equal(readFileSync(join(keys, "test-cache-1.pub"), "utf8").trim(), pub);
    assert.equal(statSync(join(keys, "test-cache-1.sec")).mode & 0o777, 0o600);
  });

  test("realize --push-to an nginx WebDAV cache, then an empty store builds nothing: every path comes from the cache and verifies", async () => {
    const url = `${nginx.url}/cache`;
    const a = await pushA();
    assert.equal(buildStarts(withoutSeed(a.events)).length, 3);
    const pushed = eventsOf(a.events, "pushed").map((e) => (e.path as string).slice(33)).sort();
    // the builds' closures: the fixture's three, and the seed's (its .debs, unpacked packages, tree)
    assert.deepEqual(pushed.filter((p) => !isSeedNode(p)), ["greeting", "hello", "libgreet"]);
    assert.equal(pushed.filter((p) => isSeedNode(p)).length, seedNodeCount("seed-tcc"));
    // a record per node of greeting's graph, the seed's too
    assert.equal(readdirSync(join(webRoot, "cache", "realisations")).length, 3 + seedNodeCount("seed-tcc"), "realisation records on the server");

    const storeB = tempDir("store-b");
    const plan = await kiln(["plan", "greeting", "--substituters", url, "--trusted-public-keys", pub], { cwd: project, store: storeB });
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /would build 0, fetch 0, take 0 from the store, 1 from substituters \([\d.]+ KiB to download\)/);
    assert.match(plan.stdout, /subst\s+greeting\s+↓ [\d.]+ KiB/);

    const b = await kilnJson(["realize", "greeting", "--no-link", "--substituters", url, "--trusted-public-keys", pub], { cwd: project, store: storeB });
    assert.equal(buildStarts(b.events).length, 0, "nothing built");
    assert.deepEqual(eventsOf(b.events, "substituted").map((e) => e.node!.name), ["greeting"]);
    assert.equal(b.stdout.trim().split("/").pop(), a.stdout.trim().split("/").pop(), "the same store path");
    const da = storeDigests(storeA);
    for (const [p, d] of storeDigests(storeB)) assert.equal(d, da.get(p), p);
    const verify = await kiln(["verify"], { cwd: project, store: storeB });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    // the target is known through the cache's records (its build inputs are not in store B)
    const info = await kiln(["path-info", "-r", "greeting", "--substituters", url, "--trusted-public-keys", pub], { cwd: project, store: storeB });
    assert.equal(info.code, 0, info.stderr);
    assert.equal(info.stdout.trim().split("\n").length, storeDigests(storeB).size, "the closure is complete");
    const again = await kilnJson(["realize", "greeting", "--no-link", "--substituters", url, "--trusted-public-keys", pub], { cwd: project, store: storeB });
    assert.equal(eventsOf(again.events, "substituted").length + buildStarts(again.events).length, 0, "the second time, nothing is fetched or built");
  });

  test("a key that is not trusted: refused with a warning, and the build goes on", async () => {
    await pushA();
    const other = tempDir("other-key");
    const k = await kiln(["cache", "keygen", "test-cache-1", "--dir", other], { cwd: project, store: tempDir("unused") });
    const r = await kilnJson(["realize", "greeting", "--no-link", "--substituters", `${nginx.url}/cache`, "--trusted-public-keys", k.stdout.trim()], { cwd: project, store: tempDir("store-c") });
    assert.equal(buildStarts(withoutSeed(r.events)).length, 3);
    assert.match(eventsOf(r.events, "warning").map((e) => e.message).join("\n"), /not signed by the trusted keys \(test-cache-1\), refused/);
  });

  test("a tampered archive on the server fails its hash: exit 1, nothing imported", async () => {
    const copy = tempDir("www-tampered");
    const dir = tempDir("nginx-tampered");
    const bad = await startNginx(dir, copy);
    servers.push(bad);
    const url = `${bad.url}/c`;
    await pushA();
    await kilnJson(["copy", "greeting", "--to", url, "--secret-key", join(keys, "test-cache-1.sec")], { cwd: project, store: storeA });
    for (const f of readdirSync(join(copy, "c", "archive"))) {
      const p = join(copy, "c", "archive", f);
      const bytes = readFileSync(p);
      bytes[bytes.length - 5]! ^= 0x42;
      writeFileSync(p, bytes);
    }
    const storeD = tempDir("store-d");
    const r = await kiln(["realize", "greeting", "--no-link", "--substituters", url, "--trusted-public-keys", pub], { cwd: project, store: storeD });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /has sha256 [0-9a-f]{64}, not the signed/);
    assert.equal(storeDigests(storeD).size, 0);
  });

  test("a dead cache and one that never answers are skipped after the timeout, and the build goes on", async () => {
    const silent = await startSilent();
    servers.push(silent);
    const dead = `http://127.0.0.1:${await freePort()}/cache`;
    const t0 = Date.now();
    const r = await kilnJson(["realize", "greeting", "--no-link", "--cache-timeout", "1", "--substituters", dead, `${silent.url}/cache`, "--trusted-public-keys", pub], { cwd: project, store: tempDir("store-e") });
    assert.equal(buildStarts(withoutSeed(r.events)).length, 3);
    const warnings = eventsOf(r.events, "warning").map((e) => e.message!);
    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.match(warnings[0]!, /ECONNREFUSED.*going on without it/);
    assert.match(warnings[1]!, /no answer within 1000 ms.*going on without it/);
    assert.ok(silent.connections() > 0, "the silent server was asked");
    assert.ok(Date.now() - t0 < 60_000);
  });

  test("kiln copy to an S3 server, then an empty store substitutes from s3:// (settings from kiln.conf and the environment)", async () => {
    const s3 = await startS3(tempDir("s3"), "kiln-cache");
    servers.push(s3);
    const url = `s3://kiln-cache/team?endpoint=${encodeURIComponent(s3.url)}&region=us-east-1`;
    const env = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };
    await pushA();
    const c = await kiln(["copy", "greeting", "--to", url], { cwd: project, store: storeA, env: { ...env, KILN_SECRET_KEY_FILE: join(keys, "test-cache-1.sec") } });
    assert.equal(c.code, 0, c.stderr);
    // greeting's closure (greeting, hello), and a record for every node of its graph, the seed's too
    assert.match(c.stderr, new RegExp(`copied 2 path\\(s\\) .* to s3://kiln-cache/team; 0 were there already; ${3 + seedNodeCount("seed-tcc")} realisation record\\(s\\) written`));

    const conf = join(tempDir("conf"), "kiln.conf");
    writeFileSync(conf, `# a team's cache\nsubstituters = ${url}\ntrusted-public-keys = ${pub}\n`);
    const storeF = tempDir("store-f");
    const r = await kilnJson(["realize", "greeting", "--no-link"], { cwd: project, store: storeF, env: { ...env, KILN_CONFIG: conf } });
    assert.equal(buildStarts(r.events).length, 0);
    assert.deepEqual(eventsOf(r.events, "substituted").map((e) => e.node!.name), ["greeting"]);
    const da = storeDigests(storeA);
    for (const [p, d] of storeDigests(storeF)) assert.equal(d, da.get(p), p);
  });

  test("kiln copy takes a store path too: its closure goes to a file:// cache, with no realisation records", async () => {
    await pushA();
    const r = await kiln(["path-info", "greeting"], { cwd: project, store: storeA });
    const path = r.stdout.split("\t")[0]!.trim();
    const dir = tempDir("file-cache");
    const c = await kiln(["copy", path, "--to", `file://${dir}`, "--secret-key", join(keys, "test-cache-1.sec")], { cwd: project, store: storeA });
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /copied 2 path\(s\) .*; 0 realisation record\(s\) written/);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".manifest")).length, 2);
    assert.ok(readFileSync(join(dir, "kiln-cache-info"), "utf8").includes('"storeDir": "/kiln/store"'));
  });

  test("bad settings are usage errors (exit 2) that say what to fix", async () => {
    const store = tempDir("store-g");
    const url = await kiln(["realize", "greeting", "--substituters", "ftp://example/cache"], { cwd: project, store });
    assert.equal(url.code, 2);
    assert.match(url.stderr, /ftp:\/\/ is not a kind of cache kiln knows/);
    const key = await kiln(["realize", "greeting", "--substituters", `${nginx.url}/cache`, "--trusted-public-keys", "garbage"], { cwd: project, store });
    assert.equal(key.code, 2);
    assert.match(key.stderr, /trusted public key 1: not a public key/);
    await pushA();
    const nokey = await kiln(["copy", "greeting", "--to", `${nginx.url}/cache`], { cwd: project, store: storeA });
    assert.equal(nokey.code, 2);
    assert.match(nokey.stderr, /kiln copy signs what it pushes, and no secret key is given/);
  });
});
