// End to end on fixtures/hello: the compiled CLI, a temporary store, a temporary copy of the
// recipe set. Caching is proved by counting builder invocations (`started` build events and rows
// of the store's builds table), not by timing. The recipes build on the fixtures' C seed
// (fixtures/lib/seed.ts: BusyBox, tcc, musl), which a fresh store fetches, unpacks and merges
// first; the assertions about the recipe set's own derivations leave those out.
// Every test runs alone and in any order: the read-only ones share one realized copy, made by
// whichever of them runs first; a test that changes the fixture or the store makes its own.
import assert from "node:assert/strict";
import { chmodSync, lstatSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { buildRows, buildStarts, ownBuildRows, cleanup, copyFixture, eventsOf, hostStorePath, isSeedNode, kiln, kilnJson, query, seedBuildCount, seedNodeCount, tempDir, withoutSeed, type BuildRowLite, type Ev, type RunOptions, type RunResult } from "./test-helpers/kiln.js";

after(cleanup);

/** name -> store path (base name) from the cached/built events of one run */
function outPaths(events: Ev[]): Record<string, string> {
  const m: Record<string, string> = {};
  for (const e of events) if ((e.type === "built" || e.type === "cached") && e.node && e.paths) m[e.node.name] = e.paths.out!;
  return m;
}

/** A realized copy of fixtures/hello: its own recipe set and store, greeting realized once in them. */
interface Realized {
  o: RunOptions;
  cwd: string;
  store: string;
  /** the realize run that filled the store */
  run: RunResult;
  /** the fixture's own build rows right after that run */
  rows: BuildRowLite[];
  /** derivation name -> output store path (base name) */
  first: Record<string, string>;
  /** derivation name -> derivation hash */
  drvOf: Record<string, string>;
  greetingPath: string;
}

/**
 * A private copy of the fixture and a private store with greeting realized: what the read-only
 * tests share, and what a test that edits the fixture or the store makes for itself, so that it
 * neither disturbs the others nor needs them to have run.
 */
async function realizedCopy(): Promise<Realized> {
  const o = { cwd: copyFixture("hello"), store: tempDir("store") };
  const run = await kilnJson(["realize", "greeting"], o);
  const first = outPaths(run.events);
  return {
    o,
    ...o,
    run,
    rows: ownBuildRows(o.store),
    first,
    drvOf: Object.fromEntries(eventsOf(run.events, "built").map((e) => [e.node!.name, e.node!.drv])),
    greetingPath: hostStorePath(o.store, first.greeting!),
  };
}

let sharedCopy: Promise<Realized> | undefined;
/** The copy the read-only tests share, realized by the first of them that runs (none: not made). */
const shared = () => (sharedCopy ??= realizedCopy());

describe("kiln on fixtures/hello", { timeout: 120_000 }, () => {
  test("kiln check rebuilds what is realised and compares: identical, or the differing files named and exit 1", async () => {
    const c = await realizedCopy();
    // a build that is not deterministic: a fresh random id in its output
    const file = join(c.cwd, "recipes", "index.ts");
    const text = readFileSync(file, "utf8");
    assert.ok(text.includes("export default { libgreet, hello, greeting };"));
    writeFileSync(file, text.replace("export default { libgreet, hello, greeting };",
      'const noisy = derivation({ name: "noisy", usr: tcc, script: sh`mkdir -p $out; cat /proc/sys/kernel/random/uuid > $out/id; echo same > $out/same` });\n' +
      "export default { libgreet, hello, greeting, noisy };"));
    await kilnJson(["realize", "--no-link", "noisy"], c.o);
    const same = await kilnJson(["check", "greeting", "hello"], c.o);
    const order = same.events.filter((e) => e.type === "checking" || e.type === "checked").map((e) => `${e.type} ${e.node!.name}`);
    assert.deepEqual(order, ["checking greeting", "checked greeting", "checking hello", "checked hello"], "each rebuild is announced before its verdict");
    assert.match(same.stdout, /^identical .*-greeting\nidentical .*-hello\n2 output\(s\) checked, 0 differ\n$/);
    const differs = await kilnJson(["check", "noisy"], c.o, 1);
    assert.match(differs.stdout, /^DIFFERS +.*-noisy\n  differs: id\n  rebuilt copy kept at .*\n1 output\(s\) checked, 1 differ\n$/);
  });

  test("realize greeting builds three derivations, prints the store path and links ./result", async () => {
    // the realize that made the shared copy: its events and the build rows it left
    const { run: r, rows, cwd, first, greetingPath } = await shared();
    assert.deepEqual(buildStarts(withoutSeed(r.events)).map((e) => e.node!.name), ["libgreet", "hello", "greeting"]);
    const seedBuilds = buildStarts(r.events).filter((e) => isSeedNode(e.node!.name));
    assert.equal(seedBuilds.length, seedBuildCount("seed-tcc"), "the seed: one unpack per package, one merge");
    assert.ok(buildStarts(r.events).indexOf(seedBuilds.at(-1)!) < buildStarts(r.events).findIndex((e) => e.node!.name === "libgreet"), "the seed first");
    assert.equal(r.stdout, `${greetingPath}\n`);
    assert.match(first.greeting!, /^[0-9a-df-np-sv-z]{32}-greeting$/);
    assert.equal(readlinkSync(join(cwd, "result")), greetingPath);
    assert.equal(readFileSync(join(cwd, "result", "greeting.txt"), "utf8"), "hello, world\n");
    assert.deepEqual(rows.map((b) => [b.name, b.status]), [["libgreet", "built"], ["hello", "built"], ["greeting", "built"]]);
    const fin = eventsOf(r.events, "finished")[0]!;
    // one fetch per .deb of the seed, nothing else fetched
    const fetched = eventsOf(r.events, "started").filter((e) => e.kind === "fetch").map((e) => e.node!.name);
    assert.equal(fetched.length, seedNodeCount("seed-tcc") - seedBuildCount("seed-tcc"));
    assert.ok(fetched.every(isSeedNode), fetched.join(" "));
    assert.equal(fin.built, 3 + seedNodeCount("seed-tcc"));
    assert.equal(fin.failed, 0);
  });

  test("a second realize builds nothing and prints the same path", async () => {
    const { o, store, greetingPath } = await shared();
    // the plain reporter's summary too (independent runs: started together)
    const rowsBefore = buildRows(store).length;
    const [r, plain] = await Promise.all([kilnJson(["realize", "greeting"], o), kiln(["realize", "--no-link", "greeting"], o)]);
    assert.equal(buildStarts(r.events).length, 0);
    assert.equal(eventsOf(r.events, "started").length, 0, "nothing fetched either");
    assert.deepEqual(eventsOf(withoutSeed(r.events), "cached").map((e) => [e.node!.name, e.cutoff]), [["libgreet", false], ["hello", false], ["greeting", false]]);
    assert.equal(r.stdout, `${greetingPath}\n`);
    assert.equal(buildRows(store).length, rowsBefore, "no new builder invocation recorded");
    assert.equal(plain.code, 0);
    // the fixture's three and the seed's derivations
    assert.equal(eventsOf(r.events, "cached").length, 3 + seedNodeCount("seed-tcc"));
    assert.match(plain.stderr, new RegExp(`done: 0 built, ${3 + seedNodeCount("seed-tcc")} from the store, 0 failed`));
  });

  test("hello's self-reference holds its final store path; references are recorded", async () => {
    const { store, first, greetingPath } = await shared();
    const hello = first.hello!;
    assert.equal(readFileSync(join(hostStorePath(store, hello), "self"), "utf8"), `/kiln/store/${hello}\n`);
    assert.equal(readFileSync(join(greetingPath, "built-with"), "utf8"), `/kiln/store/${hello}\n`);
    const refs = (p: string) =>
      query<{ path: string }>(store, "SELECT t.path FROM refs r JOIN valid_paths f ON f.id = r.referrer JOIN valid_paths t ON t.id = r.reference WHERE f.path = ? ORDER BY t.path", p).map((x) => x.path);
    assert.ok(refs(hello).includes(hello), "hello references itself");
    assert.deepEqual(refs(first.greeting!), [hello], "greeting references hello only");
  });

  test("outputs in the store are read-only, with mtime 1 s", async () => {
    const { store, first, greetingPath } = await shared();
    const dir = lstatSync(greetingPath);
    const file = lstatSync(join(greetingPath, "greeting.txt"));
    const exe = lstatSync(join(hostStorePath(store, first.hello!), "bin", "hello"));
    assert.equal(dir.mode & 0o7777, 0o555);
    assert.equal(file.mode & 0o7777, 0o444);
    assert.equal(exe.mode & 0o7777, 0o555);
    for (const st of [dir, file, exe]) assert.equal(st.mtimeMs, 1000);
  });

  test("kiln verify finds the store consistent", async () => {
    const { o, store } = await shared();
    const [r, j] = await Promise.all([kiln(["verify"], o), kiln(["verify", "--json"], o)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /store is consistent/);
    const v = JSON.parse(j.stdout) as { ok: boolean; checked: number; corrupt: unknown[]; missing: unknown[] };
    assert.equal(v.ok, true);
    assert.equal(v.checked, query<{ n: number }>(store, "SELECT count(*) AS n FROM valid_paths")[0]!.n);
  });

  test("path-info -S shows sizes; the closure size adds up the closure's paths", async () => {
    const { o, store, first, greetingPath } = await shared();
    const [r, j, rec] = await Promise.all([
      kiln(["path-info", "-S", "greeting"], o),
      kiln(["path-info", "-S", "--json", "result"], o),
      kiln(["path-info", "-r", "--json", first.greeting!], o),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [path, size, closure] = r.stdout.trim().split("\t").map((s) => s.trim());
    assert.equal(path, greetingPath);
    assert.match(size!, /^\d+(\.\d)? (B|KiB|MiB)$/);
    assert.match(closure!, /^\d+(\.\d)? (B|KiB|MiB)$/);

    const [info] = JSON.parse(j.stdout) as Array<{ path: string; narSize: number; closureSize: number; references: string[] }>;
    assert.equal(info!.path, greetingPath);
    assert.deepEqual(info!.references, [first.hello]);
    const all = JSON.parse(rec.stdout) as Array<{ path: string; narSize: number }>;
    assert.ok(all.some((x) => x.path === hostStorePath(store, first.hello!)), "hello is in greeting's closure");
    assert.ok(!all.some((x) => x.path === hostStorePath(store, first.libgreet!)), "libgreet is linked statically: not in the closure");
    assert.equal(info!.closureSize, all.reduce((s, x) => s + x.narSize, 0));
    assert.ok(info!.closureSize > info!.narSize);
  });

  test("eval --json and show-derivation describe the same derivations", async () => {
    const { o, drvOf } = await shared();
    const [ev, plain, sd, byHash] = await Promise.all([
      kiln(["eval", "--json", "greeting"], o),
      kiln(["eval", "greeting"], o),
      kiln(["show-derivation", "hello"], o),
      kiln(["show-derivation", drvOf.libgreet!], o),
    ]);
    assert.equal(ev.code, 0, ev.stderr);
    const g = JSON.parse(ev.stdout) as { roots: Array<{ target: string; drv: string; output: string }>; derivations: Record<string, { name: string; inputDrvs: Record<string, string[]> }> };
    assert.deepEqual(g.roots, [{ target: "greeting", drv: drvOf.greeting, output: "out" }]);
    assert.deepEqual(Object.values(g.derivations).map((d) => d.name).filter((n) => !isSeedNode(n)).sort(), ["greeting", "hello", "libgreet"]);
    const seed = drvOf["seed-tcc"]!;
    assert.deepEqual(g.derivations[drvOf.hello!]!.inputDrvs, { [drvOf.libgreet!]: ["out"], [seed]: ["out"] });
    assert.deepEqual(g.derivations[drvOf.greeting!]!.inputDrvs, { [drvOf.hello!]: ["out"], [seed]: ["out"] });

    assert.match(plain.stdout, new RegExp(`^${drvOf.hello}  hello  <- seed-tcc, libgreet$`, "m"));

    assert.equal(sd.code, 0, sd.stderr);
    const shown = JSON.parse(sd.stdout) as Record<string, { name: string; env: Record<string, string> }>;
    assert.deepEqual(Object.keys(shown), [drvOf.hello]);
    assert.equal(shown[drvOf.hello!]!.env.TARGET, '"world"');
    assert.equal((shown[drvOf.hello!] as { impure?: unknown }).impure, undefined, "a build on the seed uses nothing of the host");
    assert.equal(sd.stderr, "");

    assert.equal(byHash.code, 0, byHash.stderr);
    const stored = JSON.parse(byHash.stdout) as Record<string, { drv: { name: string; env: Record<string, string> } }>;
    assert.equal(stored[drvOf.libgreet!]!.drv.name, "libgreet");
    assert.equal(stored[drvOf.libgreet!]!.drv.env.CFLAGS, "-O2");
  });

  test("targets lists the recipe set; log prints a build's log", async () => {
    const { o } = await shared();
    const [t, l, missing] = await Promise.all([kiln(["targets"], o), kiln(["log", "libgreet"], o), kiln(["log", "no-such-thing"], o)]);
    assert.equal(t.stdout, "greeting\nhello\nlibgreet\n");
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.stdout, "compiling greet.c with CFLAGS=-O2\n");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no target 'no-such-thing'|no build of no-such-thing/);
  });
});

// Each of these changes its fixture or its store, so each makes its own realized copy first; being
// independent, they run together.
describe("kiln on fixtures/hello, changed", { timeout: 120_000, concurrency: true }, () => {
  test("early cutoff: a comment-only change in greet.c rebuilds libgreet only", async () => {
    const own = await realizedCopy();
    const src = join(own.cwd, "src", "greet.c");
    writeFileSync(src, readFileSync(src, "utf8").replace("a comment that can change", "an EDITED comment that can change"));
    const r = await kilnJson(["realize", "greeting"], own.o);
    assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name), ["libgreet"]);
    const built = eventsOf(r.events, "built", "libgreet")[0]!;
    assert.equal(built.identical, true, "the rebuilt library is bit-identical");
    assert.equal(built.paths!.out, own.first.libgreet);
    const cached = Object.fromEntries(eventsOf(r.events, "cached").map((e) => [e.node!.name, e.cutoff]));
    assert.deepEqual(Object.fromEntries(Object.entries(cached).filter(([n]) => !isSeedNode(n))), { hello: true, greeting: true });
    // hello's derivation did change (its input's derivation changed), yet it was not rebuilt
    assert.notEqual(eventsOf(r.events, "cached", "hello")[0]!.node!.drv, own.drvOf.hello);
    assert.equal(r.stdout, `${own.greetingPath}\n`);
    // the one builder invocation this edit caused
    assert.deepEqual(ownBuildRows(own.store).slice(own.rows.length).map((b) => b.name), ["libgreet"]);
  });

  test("changing CFLAGS in the recipe rebuilds libgreet and its dependents", async () => {
    const own = await realizedCopy();
    const recipe = join(own.cwd, "recipes", "index.ts");
    const text = readFileSync(recipe, "utf8");
    assert.ok(text.includes('CFLAGS: "-O2"'));
    // greet.c's assert compiled out: other object code (tcc makes the same code at -O0 and -O2)
    writeFileSync(recipe, text.replace('CFLAGS: "-O2"', 'CFLAGS: "-DNDEBUG"'));
    const r = await kilnJson(["realize", "greeting"], own.o);
    assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name), ["libgreet", "hello", "greeting"]);
    assert.deepEqual(ownBuildRows(own.store).slice(own.rows.length).map((b) => b.name), ["libgreet", "hello", "greeting"]);
    const now = outPaths(r.events);
    assert.notEqual(now.libgreet, own.first.libgreet);
    assert.notEqual(now.hello, own.first.hello);
    assert.notEqual(now.greeting, own.first.greeting);
    assert.equal(readFileSync(join(own.cwd, "result", "greeting.txt"), "utf8"), "hello, world\n");
    assert.equal(realpathSync(join(own.cwd, "result")), hostStorePath(own.store, now.greeting!));
    const log = await kiln(["log", "libgreet"], own.o);
    assert.equal(log.stdout, "compiling greet.c with CFLAGS=-DNDEBUG\n");
  });

  test("kiln verify detects a corrupted output", async () => {
    const own = await realizedCopy();
    const file = join(own.greetingPath, "greeting.txt");
    chmodSync(own.greetingPath, 0o755);
    chmodSync(file, 0o644);
    writeFileSync(file, "hello, tampered\n");
    const r = await kiln(["verify"], own.o);
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`CORRUPT  ${own.greetingPath}`));
  });
});
