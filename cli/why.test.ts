// `kiln why` end to end: fixtures/hello copied into a temporary git repository, realised, edited,
// committed and realised again; why must name the root cause each time from recorded history.
// Each step of that history is made once, by whichever test needs it first, and never changed after
// (test-helpers/history.ts): a test that edits or realizes works on a copy of its own, one that
// only asks why runs in the step itself. So any test runs alone and in any order.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { commitAndRealize, copyState, edit, fixtureInGit, lazy, stateAfter, type State } from "./test-helpers/history.js";
import { buildStarts, cleanup, isSeedNode, kiln, kilnJson, query, seedBuildCount, seedNodeCount, tempDir } from "./test-helpers/kiln.js";

after(cleanup);


interface WhyJson {
  target: string;
  old: { drv: string; recipes?: { rev: string; dirty: boolean } };
  new: { drv: string; recipes?: { rev: string; dirty: boolean } };
  changed: number;
  causes: Array<{
    id: number;
    cause: { kind: string; drv?: string; key?: string; old?: string | null; new?: string | null; file?: string; path?: string; position?: string; commit?: string };
    effects: Array<{ kind: string; drv?: string; key?: string }>;
    edit?: { file: string; line: number; context?: string; removed: string[]; added: string[]; commit?: string };
    at: string[];
    blast: { changed: string[]; rebuilt: string[]; identical: string[]; cached: string[] };
  }>;
}

/** A test's own copy of a state of the history, to change at will. */
const copyOf = async <S extends State>(state: () => Promise<S>): Promise<S> => copyState(await state());

describe("kiln why on fixtures/hello in git", { timeout: 180_000 }, () => {
  const committed = lazy(async () => fixtureInGit("hello", "hello as it was"));
  const realised = stateAfter(committed, (s) => kilnJson(["realize", "greeting"], s));
  const reworded = stateAfter(realised, (s) => {
    edit(join(s.cwd, "src", "greet.c"), "a comment that can change", "a comment that DID change");
    return commitAndRealize(s, "reword a comment", "greeting");
  });
  const debugged = stateAfter(reworded, async (s) => {
    const recipe = join(s.cwd, "recipes", "index.ts");
    const line = readFileSync(recipe, "utf8").split("\n").findIndex((l) => l.includes('CFLAGS: "-O2"')) + 1;
    edit(recipe, 'CFLAGS: "-O2"', 'CFLAGS: "-DNDEBUG"');
    return { line, realize: await commitAndRealize(s, "debug build of libgreet", "greeting") };
  });
  const firstRevision = async () => (await committed()).rev;
  const whyJson = async (o: State, ...args: string[]) => {
    const r = await kiln(["why", "--json", ...args], o);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as WhyJson;
  };

  test("every realize records the target's derivation and the recipes' git revision", async () => {
    const o = await realised();
    const rows = query<{ target: string; drv_hash: string; recipes_rev: string; recipes_dirty: number }>(o.store, "SELECT * FROM target_realisations");
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.target, "greeting");
    assert.equal(rows[0]!.recipes_rev, await firstRevision());
    assert.equal(rows[0]!.recipes_dirty, 0);
    const none = await kiln(["why", "greeting"], o);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /nothing to explain/);
  });

  test("a comment-only edit of greet.c: the source file is the cause, and early cutoff spares hello and greeting", async () => {
    const o = await reworded();
    assert.deepEqual(buildStarts(o.made.events).map((e) => e.node!.name), ["libgreet"]);

    const w = await whyJson(o, "greeting");
    assert.equal(w.changed, 3);
    assert.equal(w.causes.length, 1);
    const [c] = w.causes;
    assert.equal(c!.cause.kind, "source");
    assert.equal(c!.cause.file, "src/greet.c", "named by its path in the recipe set");
    assert.deepEqual(c!.at, ["libgreet"]);
    assert.deepEqual(c!.blast.identical, ["libgreet"], "libgreet was rebuilt and came out identical");
    assert.deepEqual([...c!.blast.cached].sort(), ["greeting", "hello"], "hello and greeting were not rebuilt");
    assert.equal(w.old.recipes?.rev, await firstRevision());

    const plain = await kiln(["why", "greeting"], o);
    assert.match(plain.stdout, /source file src\/greet\.c changed \(content \w+… → \w+…\)\n {4}last changed in [0-9a-f]{10} "reword a comment"/);
    assert.match(plain.stdout, /early cutoff at libgreet/);
    assert.match(plain.stdout, /not rebuilt thanks to early cutoff: (hello, greeting|greeting, hello)/);
  });

  test("a CFLAGS change: why names the recipe file, line, old and new value and the commit", async () => {
    const o = await debugged();
    const { line, realize: r } = o.made;
    assert.ok(line > 0);
    assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name), ["libgreet", "hello", "greeting"]);

    for (const target of ["greeting", "libgreet"]) {
      const plain = await kiln(["why", target], o);
      assert.equal(plain.code, 0, plain.stderr);
      assert.match(plain.stdout, new RegExp(`\\[1\\] recipes/index\\.ts:${line}, in libgreet \\(last changed in [0-9a-f]{10} "debug build of libgreet"\\)\n {4}- env: \\{ CFLAGS: "-O2" \\},\n {4}\\+ env: \\{ CFLAGS: "-DNDEBUG" \\},\n {4}→ env CFLAGS of libgreet: "-O2" → "-DNDEBUG"`));
    }
    const w = await whyJson(o, "greeting");
    assert.equal(w.causes.length, 1);
    assert.deepEqual(w.causes[0]!.cause.key, "CFLAGS");
    assert.deepEqual([...w.causes[0]!.blast.rebuilt].sort(), ["greeting", "hello", "libgreet"]);
    assert.deepEqual(w.causes[0]!.blast.identical, []);
  });

  test("--since <rev> compares against the realisation recorded at that revision: both changes", async () => {
    const o = await debugged();
    const firstRev = await firstRevision();
    const w = await whyJson(o, "greeting", "--since", firstRev.slice(0, 8));
    assert.equal(w.old.recipes?.rev, firstRev);
    assert.deepEqual(w.causes.map((c) => c.cause.kind).sort(), ["env", "source"]);
    const again = await whyJson(o, "greeting", "--against", w.old.drv);
    assert.deepEqual(again.causes.map((c) => c.cause.kind).sort(), ["env", "source"]);
  });

  test("realize --dry-run and plan forecast without building: what would run, estimates, and why", async () => {
    const o = await copyOf(debugged);
    edit(join(o.cwd, "recipes", "index.ts"), 'CFLAGS: "-DNDEBUG"', 'CFLAGS: "-O1"');
    const builds = query<{ n: number }>(o.store, "SELECT count(*) AS n FROM builds")[0]!.n;
    const [dry, plain] = await Promise.all([kilnJson(["realize", "--dry-run", "--json", "greeting"], o), kiln(["plan", "greeting"], o)]);
    assert.equal(buildStarts(dry.events).length, 0);
    assert.equal(query<{ n: number }>(o.store, "SELECT count(*) AS n FROM builds")[0]!.n, builds, "nothing was built");
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
    assert.match(plain.stdout, /recipes\/index\.ts:\d+, in libgreet \(not committed yet\)\n.*\n.*\n {6}→ env CFLAGS of libgreet: "-DNDEBUG" → "-O1"/);
  });

  test("plan: a node changed in its own right will build; only what waits on rebuilt inputs is a maybe", async () => {
    const o = await copyOf(debugged);
    type Plan = { nodes: Array<{ name: string; state: string }>; counts: Record<string, number> };
    const states = (stdout: string) => (JSON.parse(stdout) as Plan).nodes.map((n) => [n.name, n.state]);
    // an empty store: nothing can be cut off, everything builds
    const empty = tempDir("plan-empty");
    const fresh = await kiln(["plan", "--json", "greeting"], { cwd: o.cwd, store: empty });
    assert.equal(fresh.code, 0, fresh.stderr);
    const own = (st: string[][]) => st.filter(([name]) => !isSeedNode(name!));
    assert.deepEqual(own(states(fresh.stdout)), [["libgreet", "build"], ["hello", "build"], ["greeting", "build"]]);
    // the seed too: its .debs are fetched, its packages unpacked and merged
    const [seedBuilds, seedFetches] = [seedBuildCount("seed-tcc"), seedNodeCount("seed-tcc") - seedBuildCount("seed-tcc")];
    const text = await kiln(["plan", "greeting"], { cwd: o.cwd, store: empty });
    assert.match(text.stdout, new RegExp(`^would build ${3 + seedBuilds}, fetch ${seedFetches}, take 0 from the store\\n`));
    const graph = await kiln(["graph", "--states", "greeting"], { cwd: o.cwd, store: empty });
    assert.equal((graph.stdout.match(/\\nto build\\n|\\nto build"/g) ?? []).length, 3 + seedBuilds, graph.stdout);
    assert.doesNotMatch(graph.stdout, /unless cut off/);

    // libgreet's CFLAGS and hello's own TARGET changed: hello builds whatever libgreet comes out as
    const recipe = join(o.cwd, "recipes", "index.ts");
    edit(recipe, 'CFLAGS: "-DNDEBUG"', 'CFLAGS: "-O1"');
    edit(recipe, `TARGET: '"world"'`, `TARGET: '"planet"'`);
    const p = await kiln(["plan", "--json", "greeting"], o);
    assert.deepEqual(own(states(p.stdout)), [["libgreet", "build"], ["hello", "build"], ["greeting", "unknown"]]);
  });

  test("a target never realised is a usage error with a hint", async () => {
    const r = await kiln(["why", "nothing-like-it"], await realised());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no realisation of nothing-like-it is recorded[\s\S]*hint: realize it first/);
  });

  test("realize --rev evaluates the recipes of an old commit without touching the work tree", async () => {
    const o = await copyOf(debugged);
    const firstRev = await firstRevision();
    const firstPath = query<{ path: string }>(o.store, "SELECT path FROM target_realisations WHERE recipes_rev = ? ORDER BY id LIMIT 1", firstRev)[0]!.path;
    const r = await kilnJson(["realize", "--no-link", "--rev", firstRev.slice(0, 8), "greeting"], o);
    // that commit's graph was built before: all of it comes from the store
    assert.equal(buildStarts(r.events).length, 0);
    assert.equal(r.stdout.trim(), join(o.store, "store", firstPath));
    const last = query<{ recipes_rev: string; recipes_dirty: number }>(o.store, "SELECT recipes_rev, recipes_dirty FROM target_realisations ORDER BY id DESC LIMIT 1")[0]!;
    assert.equal(last.recipes_rev, firstRev);
    assert.equal(last.recipes_dirty, 0);
    assert.match(readFileSync(join(o.cwd, "recipes", "index.ts"), "utf8"), /CFLAGS: "-DNDEBUG"/, "the work tree keeps HEAD's recipes");
    const bad = await kiln(["realize", "--no-link", "--rev", "no-such-rev", "greeting"], o);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /does not know the revision 'no-such-rev'/);
  });
});

describe("kiln why on fixtures/apps: the edit behind a value, through a constant, a helper and another module", { timeout: 180_000 }, () => {
  const realised = stateAfter(lazy(async () => fixtureInGit("apps", "two apps")), (s) => kilnJson(["realize", "all"], s));
  const flags = (s: State) => join(s.cwd, "recipes", "flags.ts");
  const optimised = stateAfter(realised, (s) => {
    edit(flags(s), 'OPT = "-DLEVEL=1"', 'OPT = "-DLEVEL=2"');
    return commitAndRealize(s, "optimise every app harder", "all");
  });
  const why = async (o: State, ...args: string[]) => {
    const r = await kiln(["why", ...args], o);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  test("a shared constant in another module: one root cause at its line, with the commit that made the edit", async () => {
    const o = await optimised();
    assert.deepEqual(buildStarts(o.made.events).map((e) => e.node!.name).sort(), ["all", "app1", "app2"]);

    const text = await why(o, "all");
    assert.match(text, /^why all changed: 3 derivations differ, 1 root cause\n/);
    assert.match(text, /\n\[1\] recipes\/flags\.ts:2 \(last changed in [0-9a-f]{10} "optimise every app harder"\)\n {4}- export const OPT = "-DLEVEL=1";\n {4}\+ export const OPT = "-DLEVEL=2";\n {4}→ env CFLAGS of app1, app2: "-DLEVEL=1" → "-DLEVEL=2"\n {4}blast radius: 3 derivations changed, 3 rebuilt \(app1, app2, all\)\n/);
    assert.doesNotMatch(text, /index\.ts/, "the helper's derivation() call is not the cause");
    assert.doesNotMatch(text, /early cutoff/, "nothing was cut off: every app was rebuilt for its own CFLAGS");

    const j = JSON.parse(await why(o, "--json", "all")) as WhyJson;
    assert.equal(j.causes.length, 1);
    assert.deepEqual({ file: j.causes[0]!.edit?.file, line: j.causes[0]!.edit?.line }, { file: flags(o), line: 2 });
    assert.deepEqual(j.causes[0]!.effects.map((e) => [e.drv, e.key]), [["app1", "CFLAGS"], ["app2", "CFLAGS"]]);
    assert.deepEqual(j.causes[0]!.at, ["app1", "app2"]);
  });

  test("one of two main.c changed: named by its path, with its last commit", async () => {
    const o = await copyOf(realised);
    const main = join(o.cwd, "src", "app2", "main.c");
    edit(main, 'puts("app2");', 'puts("app2, now louder");');
    await commitAndRealize(o, "app2 says more", "all");
    const text = await why(o, "all");
    assert.match(text, /\[1\] source file src\/app2\/main\.c changed \(content \w+… → \w+…\)\n {4}last changed in [0-9a-f]{10} "app2 says more"\n {4}used by app2\n/);
    const j = JSON.parse(await why(o, "--json", "all")) as WhyJson;
    assert.deepEqual(j.causes.map((c) => [c.cause.kind, c.cause.file, c.cause.path]), [["source", "src/app2/main.c", main]]);
  });

  test("an edit not committed yet is named as such, at its line", async () => {
    const o = await copyOf(optimised);
    edit(flags(o), 'OPT = "-DLEVEL=2"', 'OPT = "-DLEVEL=3"');
    await kilnJson(["realize", "all"], o);
    assert.match(await why(o, "all"), /\[1\] recipes\/flags\.ts:2 \(not committed yet\)\n {4}- export const OPT = "-DLEVEL=2";\n {4}\+ export const OPT = "-DLEVEL=3";\n/);
  });
});
