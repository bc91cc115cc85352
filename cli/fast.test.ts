// The no-op fast path (cli/fast.ts, cli/noop.ts): a repeated realize with nothing changed is
// answered from the record without evaluating; any change to what the record names (a source, a
// recipe file's stat, the git HEAD, the output's validity) sends it back to the full realize.
// Which path answered is visible in the reporter's events (`unchanged: true`), and builds are
// counted in the store's builds table.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, readlinkSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SHORT_WAL_BYTES } from "../store/database.js";
import { parseFast } from "./fast.js";
import { isRacy, noopIdent, noopKey, readValidRecord, statTree, statTuple, writeRecord, type StatTuple } from "./noop.js";
import { buildRows, childEnv, CLI, cleanup, copyFixture, eventsOf, kiln, kilnJson, ownBuildRows, parseEvents, query, tempDir, withoutSeed } from "./test-helpers/kiln.js";

after(cleanup);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** the record is written only for files older than the evaluation's start (racy stats are not trusted) */
const settle = () => sleep(250);

describe("parseFast: only a plain realize is answered early", () => {
  test("globals, realize options and targets in any order", () => {
    assert.deepEqual(parseFast(["--store", "/s", "realize", "-f", "r/index.ts", "a", "b.lib", "--no-link", "-j", "4"]), {
      link: false, targets: ["a", "b.lib"], store: "/s", recipes: "r/index.ts",
    });
    assert.deepEqual(parseFast(["realize", "--out-link=out", "--reporter=json", "x"]), { link: true, targets: ["x"], outLink: "out", reporter: "json" });
  });
  test("anything else goes to the full CLI", () => {
    for (const argv of [
      ["realize"], ["eval", "x"], ["realize", "x", "--dry-run"], ["realize", "x", "--json"], ["realize", "x", "--rev", "HEAD~1"],
      ["realize", "x", "--locked"], ["realize", "x", "-L"], ["realize", "x", "--help"], ["--no-eval-cache", "realize", "x"],
      ["realize", "x", "--reporter", "fancy"], ["realize", "x", "--store"], ["realize", "x", "--watch"], ["realize", "x", "--profile", "p"],
      // an array option takes every word after it (yargs): `kiln --mirror /m realize x` has no command
      ["--mirror", "/m", "realize", "x"], ["realize", "x", "--mirror", "/m"],
      // a repeated option is an array to yargs
      ["realize", "x", "--store", "a", "--store", "b"], ["realize", "x", "--link", "--no-link"], ["realize", "x", "-o", "a", "--out-link", "b"],
    ]) assert.equal(parseFast(argv), undefined, argv.join(" "));
  });
});

describe("the record's file stats", () => {
  test("a file changed after the evaluation began (or within 100 ms before) is racy: no record", () => {
    const f = join(tempDir("racy"), "recipe.ts");
    writeFileSync(f, "x");
    const st = statTuple(f);
    assert.equal(isRacy([st], Date.now()), true, "changed just now");
    assert.equal(isRacy([st], Math.max(st[2], st[3]) + 150), false, "changed well before t0");
  });
  test("every field that a change moves is compared: size, mtime, ctime, inode, mode", () => {
    const dir = tempDir("stats");
    const f = join(dir, "a.ts");
    writeFileSync(f, "one");
    const t = statTuple(f);
    writeFileSync(join(dir, "b.ts"), "two");
    renameSync(join(dir, "b.ts"), f); // same size, new inode
    const u = statTuple(f);
    assert.notEqual(u[4], t[4]);
    assert.deepEqual(statTuple(join(dir, "missing")).slice(1), [-1, -1, -1, -1, -1]);
    const tree: StatTuple[] = [];
    statTree(dir, tree);
    assert.deepEqual(tree.map((s) => s[0]), [dir, f], "a folder and everything under it");
  });
});

describe("the record's identity", () => {
  test("a record is used only for exactly its identity (the file name is a short, non-cryptographic hash)", () => {
    const root = tempDir("rec");
    const ident = noopIdent("/r/recipes/index.ts", ["a"], "build-1");
    assert.notEqual(noopKey(ident), noopKey(noopIdent("/r/recipes/index.ts", ["b"], "build-1")));
    assert.match(noopKey(ident), /^[0-9a-f]{16}$/);
    const rec = { v: 1 as const, key: noopKey(ident), ident, stats: [], roots: [], derivations: 0, recipes: null };
    writeRecord(root, rec);
    assert.equal(readValidRecord(root, ident)?.ident, ident);
    // the same file name claimed by another identity (a collision) is not taken
    writeRecord(root, { ...rec, ident: "something else" });
    assert.equal(readValidRecord(root, ident), undefined);
  });
});

describe("a repeated realize with nothing changed is answered from the record", { timeout: 180_000 }, () => {
  let cwd: string;
  let store: string;
  const on = { KILN_EVAL_CACHE: "1" };
  const o = () => ({ cwd, store, env: on });
  const unchanged = (r: { events: Array<{ type: string; unchanged?: unknown }> }) => eventsOf(r.events as never, "finished")[0]?.unchanged === true;

  /** A copy of the fixture in a git repository, and a store: the tests below share one, the first makes its own. */
  const gitCopy = async () => {
    const copy = { cwd: copyFixture("hello"), store: tempDir("store"), env: on };
    execFileSync("git", ["init", "-q"], { cwd: copy.cwd });
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty"], { cwd: copy.cwd });
    await settle();
    return copy;
  };

  before(async () => {
    ({ cwd, store } = await gitCopy());
  });

  test("first realize builds and records; the second answers from the record: same path, link renewed, history row", async () => {
    // a copy of its own: it counts every build and history row, and another test's record would answer its first realize
    const own = await gitCopy();
    const first = await kilnJson(["realize", "greeting"], own);
    assert.equal(unchanged(first), false);
    assert.equal(ownBuildRows(own.store).length, 3);
    const rows = buildRows(own.store).length;
    const nodes = (eventsOf(first.events, "planned")[0]!.nodes as unknown[]).length;
    const path = first.stdout;
    unlinkSync(join(own.cwd, "result"));
    const second = await kilnJson(["realize", "greeting"], own);
    assert.equal(unchanged(second), true, second.stderr);
    assert.equal(eventsOf(second.events, "started").length, 0);
    assert.equal(eventsOf(second.events, "planned").length, 0, "no graph walk");
    assert.equal(second.stdout, path);
    assert.equal(readlinkSync(join(own.cwd, "result")) + "\n", path);
    assert.equal(buildRows(own.store).length, rows, "no builder ran");
    const roots = query<{ name: string }>(own.store, "SELECT name FROM roots WHERE kind = 'link'");
    assert.deepEqual(roots.map((r) => r.name), [`link:${join(own.cwd, "result")}`]);
    const hist = query<{ drv_hash: string; recipes_rev: string }>(own.store, "SELECT drv_hash, recipes_rev FROM target_realisations WHERE target = 'greeting' ORDER BY id");
    assert.equal(hist.length, 2);
    assert.equal(hist[1]!.drv_hash, hist[0]!.drv_hash);
    assert.equal(hist[1]!.recipes_rev, hist[0]!.recipes_rev);
    // the plain reporter says so in words
    const plain = await kiln(["realize", "--no-link", "greeting"], own);
    assert.equal(plain.code, 0);
    assert.match(plain.stderr, new RegExp(`greeting: nothing changed since the last realize .* ${nodes} derivations not re-evaluated`));
    assert.match(plain.stderr, /done: up to date/);
    // and --no-eval-cache (or KILN_EVAL_CACHE=0) walks the graph
    const full = await kilnJson(["realize", "--no-eval-cache", "greeting"], own);
    assert.equal(unchanged(full), false);
    assert.equal(eventsOf(full.events, "cached").length, nodes);
    assert.equal(eventsOf(withoutSeed(full.events), "cached").length, 3);
  });

  test("an edited source: evaluated again, exactly the dependents rebuild", async () => {
    await kilnJson(["realize", "greeting"], o());
    appendFileSync(join(cwd, "src", "main.c"), "\n/* changed */ int unused_symbol_for_test = 1;\n");
    const r = await kilnJson(["realize", "greeting"], o());
    assert.equal(unchanged(r), false);
    assert.deepEqual(eventsOf(r.events, "started").map((e) => e.node!.name), ["hello", "greeting"]);
    await settle();
    await kilnJson(["realize", "greeting"], o()); // records the new state
    assert.equal(unchanged(await kilnJson(["realize", "greeting"], o())), true);
  });

  test("stdout's reader already gone: answered from the record all the same, exit 0, realized once", async () => {
    await kilnJson(["realize", "greeting"], o());
    await settle();
    await kilnJson(["realize", "greeting"], o()); // records the state
    const history = () => query<{ n: number }>(store, "SELECT count(*) AS n FROM target_realisations")[0]!.n;
    const before = history();
    // `true` has exited when kiln writes its path: the write fails with EPIPE
    const r = spawnSync("/bin/sh", ["-c", '(sleep 0.5; "$0" "$@"; echo "exit $?" >&2) | true', process.execPath, CLI, "--store", store, "--reporter", "json", "realize", "greeting"],
      { cwd, env: childEnv(on), encoding: "utf8" });
    assert.match(r.stderr, /exit 0\n$/, r.stderr);
    assert.doesNotMatch(r.stderr, /EPIPE|internal error/);
    const events = parseEvents(r.stderr);
    assert.equal(unchanged({ events }), true, r.stderr);
    assert.equal(eventsOf(events, "planned").length, 0, "the full CLI did not run after it");
    assert.equal(history(), before + 1, "one realisation recorded, not two");
  });

  test("a recipe file touched (same content): evaluated again, nothing built", async () => {
    // built and recorded first: then the touch is the only thing that can send it back to a full realize
    await settle();
    await kilnJson(["realize", "greeting"], o());
    assert.equal(unchanged(await kilnJson(["realize", "greeting"], o())), true);
    const before = buildRows(store).length;
    const now = Date.now() / 1000;
    utimesSync(join(cwd, "recipes", "index.ts"), now, now);
    await settle();
    const r = await kilnJson(["realize", "greeting"], o());
    assert.equal(unchanged(r), false);
    assert.equal(buildRows(store).length, before);
    assert.equal(unchanged(await kilnJson(["realize", "greeting"], o())), true);
  });

  test("a new git commit moves HEAD: evaluated again, and history names the new revision", async () => {
    await settle();
    await kilnJson(["realize", "greeting"], o());
    assert.equal(unchanged(await kilnJson(["realize", "greeting"], o())), true);
    execFileSync("git", ["add", "-A"], { cwd });
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "recipes"], { cwd });
    const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd, encoding: "utf8" }).trim();
    await settle();
    const r = await kilnJson(["realize", "greeting"], o());
    assert.equal(unchanged(r), false);
    const last = query<{ recipes_rev: string }>(store, "SELECT recipes_rev FROM target_realisations ORDER BY id DESC LIMIT 1")[0]!;
    assert.equal(last.recipes_rev, head);
  });

  test("an answer leaves its transaction in the WAL, nothing of it lost, and folds the WAL in at 64 pages", async () => {
    const own = await gitCopy();
    await kilnJson(["realize", "--no-link", "greeting"], own);
    const wal = join(own.store, "db.sqlite-wal");
    const walSize = () => (existsSync(wal) ? statSync(wal).size : 0);
    assert.equal(walSize(), 0, "the full CLI closes the database: checkpointed, no WAL");
    const sizes: number[] = [];
    let answers = 0;
    // each answer adds a few pages: run until the WAL has been folded in once, and a little after
    while (answers < 60 && (sizes.length < 3 || !(sizes.includes(0) && sizes.at(-1)! > 0))) {
      const r = await kilnJson(["realize", "--no-link", "greeting"], own);
      assert.equal(unchanged(r), true, r.stderr);
      answers++;
      sizes.push(walSize());
    }
    assert.ok(sizes[0]! > 0, "the first answer's transaction is in the WAL, not checkpointed at exit");
    const folded = sizes.indexOf(0);
    assert.ok(folded > 0, `the WAL was folded into the database: ${sizes.join(" ")}`);
    // an answer folds the WAL in once its own pages bring it to 64: never before, and it is never left longer
    const step = Math.max(...sizes.slice(1, folded).map((n, i) => n - sizes[i]!));
    assert.ok(sizes[folded - 1]! + step >= SHORT_WAL_BYTES, `folded early: ${sizes.join(" ")}`);
    assert.ok(Math.max(...sizes) < SHORT_WAL_BYTES, `left past 64 pages: ${sizes.join(" ")}`);
    // every answer's history row is there, read by a connection of its own
    const rows = query<{ n: number }>(own.store, "SELECT count(*) AS n FROM target_realisations WHERE target = 'greeting'");
    assert.equal(rows[0]!.n, answers + 1);
    assert.equal(ownBuildRows(own.store).length, 3, "built once");
  });

  test("an output that is no longer valid (collected) is built again, not reported", async () => {
    await settle();
    await kilnJson(["realize", "greeting"], o());
    assert.equal(unchanged(await kilnJson(["realize", "--no-link", "greeting"], o())), true);
    rmSync(join(cwd, "result"));
    const gc = await kiln(["gc"], o());
    assert.equal(gc.code, 0, gc.stderr);
    const before = buildRows(store).length;
    const r = await kilnJson(["realize", "greeting"], o());
    assert.equal(unchanged(r), false);
    assert.ok(buildRows(store).length > before, "rebuilt after gc");
  });
});
