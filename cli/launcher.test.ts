// The launcher (cli/kiln.ts) compiles the CLI bundle with V8's code cache: the cache is made by
// the first run, used by the next, and never trusted when it belongs to another build of the
// bundle or V8 rejects it. A plain `kiln gc` runs gc's own bundle instead, with the same outcome
// as the full CLI's gc; a plain `kiln plan` or `kiln eval` theirs, likewise. A private copy of the shipped files, so the checkout's own caches are
// left alone.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, REPO, tempDir } from "./test-helpers/kiln.js";

/** A private copy of the shipped launcher and bundles, with a recipe set of two derivations. */
function privateDist(name: string): { root: string; dist: string; recipes: string; store: string } {
  const root = tempDir(name);
  const dist = join(root, "dist");
  mkdirSync(dist);
  // copies (Node runs a symlinked main script from its real path); the rest as links
  for (const f of ["kiln.cjs", "kiln-main.cjs", "kiln-gc.cjs", "kiln-eval.cjs"]) copyFileSync(join(REPO, "dist", f), join(dist, f));
  for (const d of ["engine", "store", "cli"]) symlinkSync(join(REPO, "dist", d), join(dist, d));
  for (const f of ["kiln-sandbox", "kiln-hash"]) if (existsSync(join(REPO, "dist", f))) symlinkSync(join(REPO, "dist", f), join(dist, f));
  symlinkSync(join(REPO, "node_modules"), join(root, "node_modules"));
  const recipes = join(root, "recipes");
  mkdirSync(recipes);
  writeFileSync(join(recipes, "index.ts"), [
    'import { derivation, sh } from "kiln";',
    'export const greeting = derivation({ name: "greeting", script: sh`echo hi > $out` });',
    'export const other = derivation({ name: "other", script: sh`echo ho > $out` });',
  ].join("\n"));
  return { root, dist, recipes, store: join(root, "store-dir") };
}

describe("launcher: the CLI bundle through V8's code cache", () => {
  after(cleanup);
  let dist = "";
  let recipes = "";
  let store = "";

  before(() => {
    ({ dist, recipes, store } = privateDist("launcher"));
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
  const bundleId = () => /kiln-bundle-id ([0-9a-f]{64})\s*$/.exec(readFileSync(bundle(), "utf8"))![1]!;

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

describe("launcher: a plain kiln gc runs gc's own bundle, with the full CLI's outcome", { timeout: 120_000 }, () => {
  after(cleanup);
  let p: ReturnType<typeof privateDist>;
  const kiln = (args: string[], cwd?: string) =>
    spawnSync(process.execPath, [join(p.dist, "kiln.cjs"), "--store", p.store, ...args], { encoding: "utf8", cwd: cwd ?? p.root });
  const caches = () => ["kiln-main.cjs.cache", "kiln-gc.cjs.cache"].filter((f) => existsSync(join(p.dist, f)));

  before(() => {
    p = privateDist("launcher-gc");
    // one output kept by a result link, one unreachable
    for (const [target, link] of [["other", "--link"], ["greeting", "--no-link"]] as const) {
      const r = kiln(["-f", join(p.recipes, "index.ts"), "realize", target, link, "--reporter", "quiet"]);
      assert.equal(r.status, 0, r.stderr);
    }
    rmSync(join(p.dist, "kiln-main.cjs.cache"), { force: true });
  });

  test("gc --dry-run: gc's bundle alone runs (its code cache is the one made) and says what the full CLI says", () => {
    const light = kiln(["gc", "--dry-run"]);
    assert.equal(light.status, 0, light.stderr);
    assert.deepEqual(caches(), ["kiln-gc.cjs.cache"], "only gc's bundle was compiled");
    assert.match(light.stdout, /would delete .*-greeting\n1 store paths would be deleted, .*; 1 live paths kept/);
    assert.doesNotMatch(light.stdout, /-other\b/, "the linked output is a root");
    // `--dry-run=true` is the same option, in a form only the full CLI reads
    const full = kiln(["gc", "--dry-run=true"]);
    assert.equal(full.status, 0, full.stderr);
    assert.deepEqual(caches(), ["kiln-main.cjs.cache", "kiln-gc.cjs.cache"], "the full CLI ran this time");
    assert.equal(light.stdout, full.stdout);
    const phrase = (s: string) => s.replace(/\(loaded in \d+ ms, marked in \d+ ms\)/, "");
    assert.equal(phrase(light.stderr), phrase(full.stderr));
    assert.match(light.stderr, /^gc: 1 roots, 1 live and 1 unreachable paths/);
  });

  test("--json and --print-dead: the same results both ways", () => {
    const strip = (s: string) => JSON.stringify({ ...JSON.parse(s), ms: undefined });
    const light = kiln(["gc", "--json", "-n"]);
    const full = kiln(["gc", "--json=true", "-n"]);
    assert.equal(light.status, 0, light.stderr);
    assert.equal(full.status, 0, full.stderr);
    assert.equal(strip(light.stdout), strip(full.stdout));
    assert.equal(JSON.parse(light.stdout).deleted.length, 1);
    const dead = kiln(["gc", "--print-dead"]);
    assert.equal(dead.stdout, kiln(["gc", "--print-dead=true"]).stdout);
    assert.match(dead.stdout, /^\/.*-greeting\n$/);
  });

  test("bad input: the same message and exit code (2) both ways", () => {
    const light = kiln(["gc", "--max-size", "lots"]);
    const full = kiln(["gc", "--max-size", "lots", "--json=false"]);
    assert.equal(light.status, 2);
    assert.equal(full.status, 2);
    assert.equal(light.stderr, full.stderr);
    assert.match(light.stderr, /--max-size: cannot read "lots" as a size/);
  });

  test("settings gc does not use are not read, either way: a broken kiln.conf or cache timeout fails neither", () => {
    const conf = join(p.root, "broken.conf");
    writeFileSync(conf, "this is not a setting\n");
    const env = { ...process.env, KILN_CONFIG: conf, KILN_CACHE_TIMEOUT: "soon" };
    const run = (args: string[]) => spawnSync(process.execPath, [join(p.dist, "kiln.cjs"), "--store", p.store, ...args], { encoding: "utf8", cwd: p.root, env });
    const light = run(["gc", "--dry-run", "--cache-timeout", "abc"]);
    const full = run(["gc", "--dry-run=true", "--cache-timeout", "abc"]);
    assert.equal(light.status, 0, light.stderr);
    assert.equal(full.status, 0, full.stderr);
    assert.equal(light.stdout, full.stdout);
    // a command that does use them still says what is wrong
    const plan = run(["-f", join(p.recipes, "index.ts"), "plan", "greeting"]);
    assert.equal(plan.status, 2, plan.stderr);
    assert.match(plan.stderr, /broken\.conf:1: not a `key = value` line/);
  });

  test("Ctrl-C in gc's bundle: the first says it is cancelling, the second quits (130); the next gc finishes the job", async () => {
    // paused (KILN_TEST_GC_PAUSE) once the unreachable path's row is gone and its directory not yet
    const child = spawn(process.execPath, [join(p.dist, "kiln.cjs"), "--store", p.store, "gc", "--batch-size", "1"],
      { cwd: p.root, env: { ...process.env, KILN_TEST_GC_PAUSE: "invalidated" } });
    let stderr = "";
    const waitFor = (text: string) => new Promise<void>((res, rej) => {
      const check = () => (stderr.includes(text) ? res() : undefined);
      child.stderr.on("data", (d: Buffer) => ((stderr += d.toString()), check()));
      child.on("exit", () => (stderr.includes(text) ? res() : rej(new Error(`exited before "${text}": ${stderr}`))));
      check();
    });
    const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
    await waitFor("paused after invalidated");
    assert.deepEqual(caches().includes("kiln-gc.cjs.cache"), true);
    child.kill("SIGINT");
    await waitFor("cancelling");
    child.kill("SIGINT");
    assert.equal(await exited, 130, stderr);
    const again = kiln(["gc"]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /removed stray .*-greeting\n0 store paths deleted, 0 B freed, 1 strays removed; 1 live paths kept/);
    // as it was: greeting unreachable again
    const r = kiln(["-f", join(p.recipes, "index.ts"), "realize", "greeting", "--no-link", "--reporter", "quiet"]);
    assert.equal(r.status, 0, r.stderr);
  });

  test("the real gc deletes the unreachable output and keeps the rooted one; without gc's bundle the full CLI does it", () => {
    const r = kiln(["gc"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /deleted .*-greeting\n1 store paths deleted/);
    assert.match(kiln(["gc", "--dry-run"]).stdout, /^0 store paths would be deleted/);
    rmSync(join(p.dist, "kiln-gc.cjs"));
    const again = kiln(["gc", "--dry-run"]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /^0 store paths would be deleted, .*; 1 live paths kept/);
  });
});

describe("launcher: a plain kiln plan or eval runs their own bundle, with the full CLI's outcome", { timeout: 120_000 }, () => {
  after(cleanup);
  let p: ReturnType<typeof privateDist>;
  const kiln = (args: string[]) => spawnSync(process.execPath, [join(p.dist, "kiln.cjs"), "--store", p.store, "-f", join(p.recipes, "index.ts"), ...args], { encoding: "utf8", cwd: p.root });
  const caches = () => ["kiln-main.cjs.cache", "kiln-eval.cjs.cache"].filter((f) => existsSync(join(p.dist, f)));

  before(() => {
    p = privateDist("launcher-eval");
    const r = kiln(["realize", "other", "--no-link", "--reporter", "quiet"]);
    assert.equal(r.status, 0, r.stderr);
    rmSync(join(p.dist, "kiln-main.cjs.cache"), { force: true });
  });

  test("eval: its bundle alone runs (its code cache is the one made) and prints what the full CLI prints", () => {
    const light = kiln(["eval", "greeting", "other"]);
    assert.equal(light.status, 0, light.stderr);
    assert.deepEqual(caches(), ["kiln-eval.cjs.cache"], "only the light bundle was compiled");
    assert.match(light.stdout, /^[0-9a-f]{64} {2}greeting\n[0-9a-f]{64} {2}other\n$/);
    // `--json=false` is the same option, in a form only the full CLI reads
    const full = kiln(["eval", "greeting", "other", "--json=false"]);
    assert.equal(full.status, 0, full.stderr);
    assert.deepEqual(caches(), ["kiln-main.cjs.cache", "kiln-eval.cjs.cache"], "the full CLI ran this time");
    assert.equal(light.stdout, full.stdout);
    assert.equal(light.stderr, full.stderr);
    assert.equal(kiln(["eval", "greeting", "--json"]).stdout, kiln(["eval", "greeting", "--json=true"]).stdout);
  });

  test("plan: the same forecast both ways, as text and as JSON, with the records and without", () => {
    for (const extra of [[], ["--json"], ["--no-eval-cache"]]) {
      const light = kiln(["plan", "greeting", "other", ...extra]);
      const full = kiln(["plan", "greeting", "other", ...extra, "--keep-going=false"]);
      assert.equal(light.status, 0, light.stderr);
      assert.equal(full.status, 0, full.stderr);
      assert.equal(light.stdout, full.stdout, extra.join(" "));
    }
    assert.match(kiln(["plan", "greeting", "other"]).stdout, /^would build 1, fetch 0, take 1 from the store/);
  });

  test("bad input: the same message and exit code both ways (an unknown target: 2)", () => {
    for (const verb of ["plan", "eval"]) {
      const light = kiln([verb, "nosuch"]);
      const full = kiln([verb, "nosuch", "--json=false"]);
      assert.equal(light.status, 2, light.stderr);
      assert.equal(full.status, 2, full.stderr);
      assert.equal(light.stderr, full.stderr);
      assert.match(light.stderr, /nosuch/);
    }
  });

  test("esbuild's API is compiled through a code cache of its own: made by the first bundling, used by the next, made anew when damaged", () => {
    const cache = join(p.dist, "esbuild.cache");
    const recipe = join(p.root, "esb.ts");
    let edits = 0;
    // each run bundles the recipe anew: its text changes
    const evalEdited = () => {
      writeFileSync(recipe, `import { derivation, sh } from "kiln";\n// edit ${++edits}\nexport const x = derivation({ name: "x", script: sh\`echo ${edits} > $out\` });\n`);
      const r = spawnSync(process.execPath, [join(p.dist, "kiln.cjs"), "--store", p.store, "-f", recipe, "eval", "x"], { encoding: "utf8", cwd: p.root });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^[0-9a-f]{64} {2}x\n$/);
    };
    rmSync(cache, { force: true });
    evalEdited();
    assert.ok(existsSync(cache), "made by the first run that bundled");
    const old = new Date(2000, 0, 1);
    utimesSync(cache, old, old);
    const made = readFileSync(cache);
    evalEdited();
    assert.equal(statSync(cache).mtimeMs, old.getTime(), "used, not written again");
    // the code damaged behind its header: refused by its digest, no crash, made anew
    const damaged = Buffer.from(made);
    for (let i = damaged.length - 64; i < damaged.length; i++) damaged[i] = damaged[i]! ^ 0xff;
    writeFileSync(cache, damaged);
    utimesSync(cache, old, old);
    evalEdited();
    assert.notEqual(statSync(cache).mtimeMs, old.getTime(), "written again");
    assert.ok(!readFileSync(cache).equals(damaged));
  });

  test("without the light bundle, the full CLI answers the same line", () => {
    const before = kiln(["eval", "greeting"]).stdout;
    rmSync(join(p.dist, "kiln-eval.cjs"));
    rmSync(join(p.dist, "kiln-main.cjs.cache"), { force: true });
    const r = kiln(["eval", "greeting"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, before);
    assert.ok(existsSync(join(p.dist, "kiln-main.cjs.cache")), "the full CLI ran");
  });
});
