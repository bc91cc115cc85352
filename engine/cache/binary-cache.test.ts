// The binary cache on a local directory, end to end in-process: a real store pushes, another real
// store substitutes through the realizer (a recording fake builder counts what is built), and the
// failures a cache can have (wrong key, tampered archive or manifest, no cache at all) behave as
// documented. The servers (nginx, S3, a silent one) are in cli/cache.test.ts.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { LocalStore } from "../../store/local-store.js";
import type { StorePathName } from "../../store/paths.js";
import { derivation, sh, type Drv } from "../api.js";
import type { Context } from "../context.js";
import { Evaluator } from "../evaluate.js";
import type { KilnEvent } from "../events.js";
import { Realizer } from "../realize.js";
import type { Substituter } from "../substituter.js";
import { FakeBuilder } from "../test-helpers/fake-builder.js";
import { stubHostTools } from "../test-helpers/golden.js";
import { openBackend } from "./backend.js";
import { BinaryCache } from "./binary-cache.js";
import { manifestFingerprint, parseManifest, signManifest } from "./format.js";
import { Pusher } from "./push.js";
import { generateKeyPair, parsePublicKey, parseSecretKey, verifySignatures } from "./signing.js";

const tmp = mkdtempSync(join(tmpdir(), "kiln-cache-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let count = 0;
const fresh = (label: string) => join(tmp, `${label}-${count++}`);

function harness() {
  const store = LocalStore.open(fresh("store"));
  after(() => store.close());
  const builder = new FakeBuilder(store);
  const events: KilnEvent[] = [];
  const ctxOf = (substituters: Substituter[]): Context => ({
    store, builder, substituters, hostTools: stubHostTools().hostTools, events: (e) => events.push(e),
    clock: Date.now, signal: new AbortController().signal, fileCache: new Map(),
    config: { jobs: 4, buildCores: 1, keepGoing: true, mirrors: [], fetchEnv: {} },
  });
  return {
    store, builder, events,
    async realize(targets: Drv[], substituters: Substituter[] = []) {
      const ctx = ctxOf(substituters);
      const ev = new Evaluator(ctx);
      const roots = targets.map((t) => ev.evaluate(t).node);
      const r = await new Realizer(ctx).realize(ev.graph, roots);
      return { ...r, graph: ev.graph, roots };
    },
  };
}

/** lib is referenced by app at run time; tool only builds app. */
function graph(): Drv {
  const lib = derivation({ name: "lib", builder: "/fake/builder", env: { CONTENT: "lib" } });
  const tool = derivation({ name: "tool", builder: "/fake/builder", env: { CONTENT: "tool" } });
  return derivation({ name: "app", builder: "/fake/builder", env: { CONTENT: sh`app uses ${lib}`, READ: sh`${tool}` } });
}

const keys = (name: string) => {
  const pair = generateKeyPair(name);
  return { secret: parseSecretKey(pair.secret, "test"), public: parsePublicKey(pair.public, "test") };
};

/** A store that realized graph() and pushed it all (archives and records) to a new file:// cache. */
async function pushedCache(key = keys("test-1")) {
  const a = harness();
  const r = await a.realize([graph()]);
  const dir = fresh("cache");
  const pusher = new Pusher(a.store, openBackend(`file://${dir}`, { timeoutMs: 1000 }), key.secret, { signal: new AbortController().signal, scratchDir: () => a.store.scratchDir("push") });
  const records = [...r.outputs].flatMap(([drv, outs]) => Object.entries(outs).map(([output, path]) => ({ resolved: a.store.resolution(drv)!, output, path })));
  await pusher.push(Object.values(r.outputs.get(r.roots[0]!.hash)!), records);
  return { a, dir, key, pusher, records };
}

function cacheOf(dir: string, trusted: ReturnType<typeof keys>["public"][], warnings: string[] = []) {
  return new BinaryCache(openBackend(`file://${dir}`, { timeoutMs: 1000 }), { trusted, warn: (m) => warnings.push(m) });
}

describe("signing", () => {
  test("a signature verifies with its public key only, and only for what was signed", () => {
    const k = keys("cache.example.org-1");
    const other = keys("cache.example.org-1");
    const m = { path: "00000000000000000000000000000000-x" as StorePathName, narDigest: "d", narSize: 1, references: [], archive: `archive/${"a".repeat(64)}.tar.zst`, archiveSha256: "a".repeat(64), archiveSize: 2 };
    const signed = signManifest(m, k.secret);
    assert.ok(verifySignatures([k.public], manifestFingerprint(signed), signed.signatures));
    assert.equal(verifySignatures([other.public], manifestFingerprint(signed), signed.signatures), false, "same name, another key");
    assert.equal(verifySignatures([k.public], manifestFingerprint({ ...signed, narSize: 2 }), signed.signatures), false, "another size");
    assert.throws(() => parsePublicKey("nocolon", "here"), /not a public key/);
    assert.throws(() => parseSecretKey(generateKeyPair("x").public, "here"), /not a secret key/);
  });
});

describe("binary cache on a directory", () => {
  test("a pushed closure is substituted in an empty store: nothing built, every path verified, only the closure downloaded", async () => {
    const { a, dir, pusher, key } = await pushedCache();
    assert.deepEqual(pusher.totals.pushed.map((p) => p.slice(33)).sort(), ["app", "lib"], "the closure of app, not tool");
    assert.equal(pusher.totals.realisations, 3, "a record for each realisation, tool's too");
    const b = harness();
    const warnings: string[] = [];
    const r = await b.realize([graph()], [cacheOf(dir, [key.public], warnings)]);
    assert.deepEqual(warnings, []);
    assert.equal(b.builder.requests.length, 0, "nothing built");
    assert.equal(r.substituted, 1);
    assert.deepEqual(b.store.allPaths().map((p) => p.path.slice(33)).sort(), ["app", "lib"]);
    for (const p of b.store.allPaths()) assert.equal(p.nar_digest, a.store.pathInfo(p.path)!.narDigest);
    const planned = b.events.find((e) => e.type === "planned") as Extract<KilnEvent, { type: "planned" }>;
    assert.ok(planned.nodes[0]!.downloadBytes! > 0, "the plan says how much will be downloaded");
  });

  test("pushing again uploads nothing", async () => {
    const { pusher, records, a } = await pushedCache();
    const before = pusher.totals.pushed.length;
    const again = new Pusher(a.store, pusher.backend, keys("test-1").secret, { signal: new AbortController().signal, scratchDir: () => a.store.scratchDir("push") });
    await again.push(pusher.totals.pushed, records);
    assert.equal(again.totals.pushed.length, 0);
    assert.equal(again.totals.present, before);
    assert.equal(again.totals.realisations, 0);
  });

  test("signed by a key that is not trusted: refused with a warning, and everything is built", async () => {
    const { dir } = await pushedCache();
    const b = harness();
    const warnings: string[] = [];
    const r = await b.realize([graph()], [cacheOf(dir, [keys("test-1").public], warnings)]);
    assert.equal(r.substituted, 0);
    assert.equal(b.builder.requests.length, 3);
    assert.match(warnings.join("\n"), /not signed by the trusted keys \(test-1\), refused/);
  });

  test("no trusted key at all: nothing is believed", async () => {
    const { dir } = await pushedCache();
    const warnings: string[] = [];
    const b = harness();
    const r = await b.realize([graph()], [cacheOf(dir, [], warnings)]);
    assert.equal(r.substituted, 0);
    assert.match(warnings.join("\n"), /none is given: --trusted-public-keys/);
  });

  test("a manifest changed after signing is refused", async () => {
    const { dir, key } = await pushedCache();
    for (const f of readdirSync(dir).filter((f) => f.endsWith(".manifest"))) {
      const m = parseManifest(readFileSync(join(dir, f)), f);
      writeFileSync(join(dir, f), JSON.stringify({ ...m, narSize: m.narSize + 1 }));
    }
    const warnings: string[] = [];
    const b = harness();
    const r = await b.realize([graph()], [cacheOf(dir, [key.public], warnings)]);
    assert.equal(r.substituted, 0);
    assert.match(warnings.join("\n"), /\.manifest/);
  });

  test("a tampered archive fails its hash and nothing is imported", async () => {
    const { dir, key } = await pushedCache();
    for (const f of readdirSync(join(dir, "archive"))) {
      const bytes = readFileSync(join(dir, "archive", f));
      bytes[bytes.length - 10]! ^= 0x55;
      writeFileSync(join(dir, "archive", f), bytes);
    }
    const b = harness();
    const r = await b.realize([graph()], [cacheOf(dir, [key.public])]);
    assert.equal(r.failed[0]?.error.code, "STORE_CORRUPT");
    assert.match(r.failed[0]!.error.message, /has sha256 [0-9a-f]{64}, not the signed/);
    assert.equal(b.store.allPaths().length, 0);
  });

  test("caches are asked by the priority in their kiln-cache-info, lower first, whatever the order given", async () => {
    const key = keys("test-1");
    const first = await pushedCache(key);
    const second = await pushedCache(key);
    const info = JSON.parse(readFileSync(join(second.dir, "kiln-cache-info"), "utf8")) as { priority: number };
    assert.equal(info.priority, 40, "the default");
    writeFileSync(join(second.dir, "kiln-cache-info"), JSON.stringify({ ...info, priority: 10 }));
    const b = harness();
    await b.realize([graph()], [cacheOf(first.dir, [key.public]), cacheOf(second.dir, [key.public])]);
    const from = b.events.flatMap((e) => (e.type === "substituted" ? [e.from] : []));
    assert.deepEqual(from, [`file://${second.dir}`]);
  });

  test("a directory that is no cache is skipped with one warning and the build goes on", async () => {
    const b = harness();
    const warnings: string[] = [];
    const r = await b.realize([graph()], [cacheOf(fresh("nothing"), [], warnings)]);
    assert.equal(r.built, 3);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /has no kiln-cache-info file.*going on without it/);
  });
});
