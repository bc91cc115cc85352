// `kiln why` end to end: fixtures/hello copied into a temporary git repository, realised, edited,
// committed and realised again; why must name the root cause each time from recorded history.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildStarts, cleanup, copyFixture, isSeedNode, kiln, kilnJson, query, tempDir } from "./test-helpers/kiln.js";

after(cleanup);

function git(cwd: string, ...args: string[]): string {
  const r = spawnSync("git", ["-c", "user.name=kiln test", "-c", "user.email=test@kiln", ...args], { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

interface WhyJson {
  target: string;
  old: { drv: string; recipes?: { rev: string; dirty: boolean } };
  new: { drv: string; recipes?: { rev: string; dirty: boolean } };
  changed: number;
  causes: Array<{
    id: number;
    cause: { kind: string; drv?: string; key?: string; old?: string | null; new?: string | null; file?: string; position?: string; commit?: string };
    at: string[];
    blast: { changed: string[]; rebuilt: string[]; identical: string[]; cached: string[] };
  }>;
}

describe("kiln why on fixtures/hello in git", { timeout: 180_000 }, () => {
  let cwd: string;
  let store: string;
  let firstRev: string;
  const o = () => ({ cwd, store });
  const whyJson = async (...args: string[]) => {
    const r = await kiln(["why", "--json", ...args], o());
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as WhyJson;
  };

  before(() => {
    cwd = copyFixture("hello");
    store = tempDir("why-store");
    // the repository holds the fixture and the seed it imports (../lib), as kiln's own does
    git(dirname(cwd), "init", "-q");
    git(dirname(cwd), "add", "hello/recipes", "hello/src", "lib");
    git(cwd, "commit", "-q", "-m", "hello as it was");
    firstRev = git(cwd, "rev-parse", "HEAD");
  });

  test("every realize records the target's derivation and the recipes' git revision", async () => {
    await kilnJson(["realize", "greeting"], o());
    const rows = query<{ target: string; drv_hash: string; recipes_rev: string; recipes_dirty: number }>(store, "SELECT * FROM target_realisations");
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.target, "greeting");
    assert.equal(rows[0]!.recipes_rev, firstRev);
    assert.equal(rows[0]!.recipes_dirty, 0);
    const none = await kiln(["why", "greeting"], o());
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /nothing to explain/);
  });

  test("a comment-only edit of greet.c: the source file is the cause, and early cutoff spares hello and greeting", async () => {
    const src = join(cwd, "src", "greet.c");
    writeFileSync(src, readFileSync(src, "utf8").replace("a comment that can change", "a comment that DID change"));
    git(cwd, "commit", "-q", "-am", "reword a comment");
    const r = await kilnJson(["realize", "greeting"], o());
    assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name), ["libgreet"]);

    const w = await whyJson("greeting");
    assert.equal(w.changed, 3);
    assert.equal(w.causes.length, 1);
    const [c] = w.causes;
    assert.equal(c!.cause.kind, "source");
    assert.equal(c!.cause.file, "greet.c");
    assert.deepEqual(c!.at, ["libgreet"]);
    assert.deepEqual(c!.blast.identical, ["libgreet"], "libgreet was rebuilt and came out identical");
    assert.deepEqual([...c!.blast.cached].sort(), ["greeting", "hello"], "hello and greeting were not rebuilt");
    assert.equal(w.old.recipes?.rev, firstRev);

    const plain = await kiln(["why", "greeting"], o());
    assert.match(plain.stdout, /source file greet\.c changed/);
    assert.match(plain.stdout, /early cutoff at libgreet/);
    assert.match(plain.stdout, /not rebuilt thanks to early cutoff: (hello, greeting|greeting, hello)/);
  });

  test("a CFLAGS change: why names the recipe file, line, old and new value and the commit", async () => {
    const recipe = join(cwd, "recipes", "index.ts");
    const text = readFileSync(recipe, "utf8");
    const line = text.split("\n").findIndex((l) => l.includes('CFLAGS: "-O2"')) + 1;
    assert.ok(line > 0);
    writeFileSync(recipe, text.replace('CFLAGS: "-O2"', 'CFLAGS: "-DNDEBUG"'));
    git(cwd, "commit", "-q", "-am", "debug build of libgreet");
    const r = await kilnJson(["realize", "greeting"], o());
    assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name), ["libgreet", "hello", "greeting"]);

    for (const target of ["greeting", "libgreet"]) {
      const plain = await kiln(["why", target], o());
      assert.equal(plain.code, 0, plain.stderr);
      assert.match(plain.stdout, /env CFLAGS of libgreet: "-O2" → "-DNDEBUG"/);
      assert.match(plain.stdout, new RegExp(`at recipes/index\\.ts:${line} \\(last changed in [0-9a-f]{10} "debug build of libgreet"\\)`));
    }
    const w = await whyJson("greeting");
    assert.equal(w.causes.length, 1);
    assert.deepEqual(w.causes[0]!.cause.key, "CFLAGS");
    assert.deepEqual([...w.causes[0]!.blast.rebuilt].sort(), ["greeting", "hello", "libgreet"]);
    assert.deepEqual(w.causes[0]!.blast.identical, []);
  });

  test("--since <rev> compares against the realisation recorded at that revision: both changes", async () => {
    const w = await whyJson("greeting", "--since", firstRev.slice(0, 8));
    assert.equal(w.old.recipes?.rev, firstRev);
    assert.deepEqual(w.causes.map((c) => c.cause.kind).sort(), ["env", "source"]);
    const again = await whyJson("greeting", "--against", w.old.drv);
    assert.deepEqual(again.causes.map((c) => c.cause.kind).sort(), ["env", "source"]);
  });

  test("realize --dry-run and plan forecast without building: what would run, estimates, and why", async () => {
    const recipe = join(cwd, "recipes", "index.ts");
    writeFileSync(recipe, readFileSync(recipe, "utf8").replace('CFLAGS: "-DNDEBUG"', 'CFLAGS: "-O1"'));
    const builds = query<{ n: number }>(store, "SELECT count(*) AS n FROM builds")[0]!.n;
    const [dry, plain] = await Promise.all([kilnJson(["realize", "--dry-run", "--json", "greeting"], o()), kiln(["plan", "greeting"], o())]);
    assert.equal(buildStarts(dry.events).length, 0);
    assert.equal(query<{ n: number }>(store, "SELECT count(*) AS n FROM builds")[0]!.n, builds, "nothing was built");
    const f = JSON.parse(dry.stdout) as {
      nodes: Array<{ name: string; state: string; estimateMs?: number }>;
      counts: Record<string, number>;
      causes: Record<string, WhyJson["causes"]>;
    };
    const seedNodes = f.nodes.filter((n) => isSeedNode(n.name));
    assert.deepEqual(f.nodes.filter((n) => !isSeedNode(n.name)).map((n) => [n.name, n.state]), [["libgreet", "build"], ["hello", "unknown"], ["greeting", "unknown"]]);
    assert.ok(seedNodes.length > 0 && seedNodes.every((n) => n.state === "cached"), "the seed is in the store");
    assert.deepEqual(f.counts, { cached: seedNodes.length, substitutable: 0, build: 1, fetch: 0, unknown: 2 });
    for (const n of f.nodes.filter((n) => n.state !== "cached")) assert.equal(typeof n.estimateMs, "number", `${n.name} has an estimate from its recorded builds`);
    assert.deepEqual(f.causes.greeting!.map((c) => [c.cause.key, c.cause.old, c.cause.new]), [["CFLAGS", "-DNDEBUG", "-O1"]]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, new RegExp(`would build 1, fetch 0, take ${seedNodes.length} from the store; 2 more only if`));
    assert.match(plain.stdout, /env CFLAGS of libgreet: "-DNDEBUG" → "-O1"[\s\S]*not committed yet/);
    writeFileSync(recipe, readFileSync(recipe, "utf8").replace('CFLAGS: "-O1"', 'CFLAGS: "-DNDEBUG"'));
  });

  test("a target never realised is a usage error with a hint", async () => {
    const r = await kiln(["why", "nothing-like-it"], o());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no realisation of nothing-like-it is recorded[\s\S]*hint: realize it first/);
  });

  test("realize --rev evaluates the recipes of an old commit without touching the work tree", async () => {
    const firstPath = query<{ path: string }>(store, "SELECT path FROM target_realisations WHERE recipes_rev = ? ORDER BY id LIMIT 1", firstRev)[0]!.path;
    const r = await kilnJson(["realize", "--no-link", "--rev", firstRev.slice(0, 8), "greeting"], o());
    // that commit's graph was built before: all of it comes from the store
    assert.equal(buildStarts(r.events).length, 0);
    assert.equal(r.stdout.trim(), join(store, "store", firstPath));
    const last = query<{ recipes_rev: string; recipes_dirty: number }>(store, "SELECT recipes_rev, recipes_dirty FROM target_realisations ORDER BY id DESC LIMIT 1")[0]!;
    assert.equal(last.recipes_rev, firstRev);
    assert.equal(last.recipes_dirty, 0);
    assert.match(readFileSync(join(cwd, "recipes", "index.ts"), "utf8"), /CFLAGS: "-DNDEBUG"/, "the work tree keeps HEAD's recipes");
    const bad = await kiln(["realize", "--no-link", "--rev", "no-such-rev", "greeting"], o());
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /does not know the revision 'no-such-rev'/);
  });
});
