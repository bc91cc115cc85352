// kiln gc, pin, roots and du end to end: the compiled CLI on temporary stores and fixture copies.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { human } from "./units.js";
import { after, describe, test } from "node:test";
import { buildRows, buildStarts, cleanup, copyFixture, isSeedNode, isSeedPath, kiln, kilnJson, query, startKiln, tempDir, validPaths, type Ev, closureSql, allValid, onDisk } from "./test-helpers/kiln.js";

const linkPath = (link: string) => basename(readlinkSync(link));
/** store paths of the fixtures' seed (its .debs, unpacked packages, merged tree) among `paths` */
const seedPaths = (paths: string[]) => paths.filter(isSeedPath);

/** The processes below `pid` (children, their children, ...), from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) if (pp === p) (out.push(c), walk(c));
  };
  walk(pid);
  return out;
}

async function ok(args: string[], o: { cwd: string; store: string; env?: Record<string, string> }) {
  const r = await kiln(args, o);
  assert.equal(r.code, 0, `kiln ${args.join(" ")}: ${r.stdout}\n${r.stderr}`);
  return r;
}

async function verifyClean(o: { cwd: string; store: string }) {
  const v = await kiln(["verify", "--json"], o);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  return JSON.parse(v.stdout) as { ok: boolean; unregistered: string[]; missing: string[]; corrupt: unknown[] };
}

describe("kiln gc", { timeout: 240_000 }, () => {
  after(cleanup);

  test("deletes exactly the unreachable paths; result links and pins keep their closures; a removed link is no root", async () => {
    const cwd = copyFixture("hello");
    const store = tempDir("store");
    const o = { cwd, store };
    await kilnJson(["realize", "greeting"], o); // ./result -> greeting (references hello)
    await kilnJson(["realize", "--no-link", "libgreet"], o);
    const pin = await ok(["pin", "add", "keep-lib", "libgreet"], o);
    assert.match(pin.stdout, /pinned keep-lib -> .*-libgreet\n/);
    const greeting = linkPath(join(cwd, "result"));
    const [lib] = validPaths(store, "libgreet");
    const live = closureSql(store, [greeting, lib!]);
    const dead = allValid(store).filter((p) => !live.includes(p));
    assert.ok(dead.length >= 2, `sources are unreachable: ${dead.join(", ")}`);
    assert.ok(live.some((p) => p.endsWith("-hello")), "greeting's closure has hello");

    const roots = await ok(["roots"], o);
    assert.match(roots.stdout, new RegExp(`link\\s+${join(cwd, "result")}\\s`));
    assert.match(roots.stdout, /pin\s+keep-lib\s/);
    const du = JSON.parse((await ok(["du", "--json"], o)).stdout) as { reclaimablePaths: number; livePaths: number };
    assert.deepEqual([du.livePaths, du.reclaimablePaths], [live.length, dead.length]);

    const printDead = await ok(["gc", "--print-dead"], o);
    assert.deepEqual(printDead.stdout.trim().split("\n").map((l) => basename(l)).sort(), dead);
    assert.deepEqual(allValid(store), [...live, ...dead].sort(), "--print-dead deletes nothing");

    const gc = await ok(["gc"], o);
    assert.match(gc.stdout, new RegExp(`${dead.length} store paths deleted`));
    assert.deepEqual(allValid(store), live);
    assert.deepEqual(onDisk(store), live);
    assert.equal(readFileSync(join(cwd, "result", "greeting.txt"), "utf8"), "hello, world\n");
    assert.deepEqual((await verifyClean(o)).unregistered, []);

    // the result link goes: greeting and hello go with it, the pinned library stays
    rmSync(join(cwd, "result"));
    await ok(["gc"], o);
    assert.deepEqual(allValid(store), [lib]);
    assert.deepEqual(onDisk(store), [lib]);
    assert.deepEqual(query(store, "SELECT name FROM roots WHERE kind = 'link'"), [], "the stale link root was dropped");

    assert.match((await ok(["pin", "list"], o)).stdout, /^keep-lib\t.*-libgreet\t/);
    await ok(["pin", "rm", "keep-lib"], o);
    assert.equal((await ok(["pin", "list"], o)).stdout, "");
    await ok(["gc"], o);
    assert.deepEqual(allValid(store), []);
    assert.deepEqual(onDisk(store), []);
    const rm = await kiln(["pin", "rm", "keep-lib"], o);
    assert.equal(rm.code, 2);
    assert.match(rm.stderr, /no pin named "keep-lib"[\s\S]*hint: see the pins with `kiln pin list`/);
  });

  test("--max-size and --max-freed delete least recently used first; --older-than spares recent paths", async () => {
    const cwd = copyFixture("gc");
    const store = tempDir("store");
    const o = { cwd, store };
    // separate runs, so last use is a < b < c; then a is used again (a cache hit touches it)
    for (const t of ["a", "b", "c", "a"]) await kilnJson(["realize", "--no-link", t], o);
    // the seed the blobs were built on (its .deb, unpacked package, merged tree) is pinned: out of the LRU play
    const seed = seedPaths(allValid(store));
    assert.equal(seed.length, 3);
    for (const [i, p] of seed.entries()) await ok(["pin", "add", `seed-${i}`, join(store, "store", p)], o);
    const [a] = validPaths(store, "blob-a");
    const [b] = validPaths(store, "blob-b");
    const [c] = validPaths(store, "blob-c");
    const size = (p: string) => query<{ nar_size: number }>(store, "SELECT nar_size FROM valid_paths WHERE path = ?", p)[0]!.nar_size;
    // --max-size counts every valid path, the pinned seed's too
    const total = allValid(store).reduce((n, p) => n + size(p), 0);
    const [bBytes, acBytes, seedBytes] = [human(size(b!)), human(size(a!) + size(c!)), human(seed.reduce((n, p) => n + size(p), 0))];

    const young = await ok(["gc", "--older-than", "1d"], o);
    assert.match(young.stdout, /^0 store paths deleted, 0 B freed; 3 live paths kept \([^)]+\); 3 unreachable paths kept \([^)]+\): used within --older-than 1d\n/m);
    assert.equal(allValid(store).length, 3 + seed.length);

    // one byte over: the least recently used path (b) goes, nothing else; the summary says what it kept and why
    const sized = await ok(["gc", "--max-size", String(total - 1)], o);
    assert.deepEqual(allValid(store), [a, c, ...seed].sort());
    assert.ok(sized.stdout.includes(`1 store paths deleted, ${bBytes} freed; 3 live paths kept (${seedBytes}); 2 unreachable paths kept (${acBytes}): the store is within --max-size ${total - 1} (least recently used went first)\n`), sized.stdout);
    const dry = await ok(["gc", "--dry-run", "--max-freed", "1"], o);
    assert.match(dry.stdout, /1 store paths would be deleted, .*; 1 unreachable paths would be kept \([^)]+\): --max-freed 1 was reached \(least recently used went first\)\n/);
    await ok(["gc", "--max-freed", "1"], o);
    assert.deepEqual(allValid(store), [a, ...seed].sort());
    assert.deepEqual(onDisk(store), [a, ...seed].sort());
    const bad = await kiln(["gc", "--max-size", "lots"], o);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--max-size: cannot read "lots" as a size/);
  });

  test("pin add on a target not realized yet: refused with the way to do it; --realize builds it, pins it, and gc keeps it", async () => {
    const cwd = copyFixture("gc");
    const store = tempDir("store");
    const o = { cwd, store };
    const refused = await kiln(["pin", "add", "keep-b", "b"], o);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /target b is not realized in this store\n {2}hint: pin it once it is built: kiln pin add --realize keep-b b/);
    const r = await kiln(["--reporter", "json", "pin", "add", "--realize", "keep-b", "b"], o);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name).filter((n) => !isSeedNode(n)), ["blob-b"]);
    const [b] = validPaths(store, "blob-b");
    assert.equal(r.stdout, `pinned keep-b -> ${join(store, "store", b!)}\n`);
    await ok(["gc"], o);
    assert.deepEqual(allValid(store), [b]);
    // already realized: --realize builds nothing of the fixture's (the seed the gc took is made
    // again to resolve b's inputs, and b is then found in the store)
    const again = await kiln(["--reporter", "json", "pin", "add", "--realize", "keep-b-too", "b"], o);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(buildStarts(again.events).filter((e) => !isSeedNode(e.node!.name)), []);
    assert.deepEqual(allValid(store).filter((p) => !isSeedPath(p)), [b]);
  });

  test("a gc while a realize is building keeps the build's inputs and lets it finish", async () => {
    const cwd = copyFixture("gc");
    const store = tempDir("store");
    const o = { cwd, store };
    await kilnJson(["realize", "--no-link", "base", "a"], o); // both unreachable once that run ends
    const [base] = validPaths(store, "base");
    const [a] = validPaths(store, "blob-a");

    const run = startKiln(["--reporter", "json", "realize", "--no-link", "slowUser"], o);
    const seen = await run.waitFor((e: Ev) => e.type === "log" && e.line === "slow-user build starting");
    assert.notEqual(seen.type, "__exited__", "the realize ended before its build started");
    // the build's processes are stopped while the gc runs: it cannot reach the line that reads
    // base before the gc is done, however slow the machine (no race with its sleep)
    const build = descendants(run.child.pid!);
    assert.ok(build.length > 0, "the build's processes");
    for (const pid of build) process.kill(pid, "SIGSTOP");
    let gc: Awaited<ReturnType<typeof ok>>;
    try {
      gc = await ok(["gc"], o);
    } finally {
      for (const pid of build) process.kill(pid, "SIGCONT");
    }
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);

    const deleted = gc.stdout.split("\n").filter((l) => l.startsWith("deleted")).map((l) => basename(l.trim().split(/\s+/).pop()!));
    assert.deepEqual(deleted, [a], "the unrelated unreachable path goes, the running build's input does not");
    const [user] = validPaths(store, "slow-user");
    assert.ok(user, "the build registered its output");
    assert.deepEqual(closureSql(store, [user!]), [base, user].sort(), "its output references the input");
    assert.equal(readFileSync(join(store, "store", user!, "copy")).length, 5 * 1024);
    assert.ok((await verifyClean(o)).ok);
  });

  test("a gc killed with SIGKILL mid-sweep leaves a consistent store; the next gc finishes the job", async () => {
    const cwd = copyFixture("gc");
    const store = tempDir("store");
    const o = { cwd, store };
    await kilnJson(["realize", "--no-link", "a", "b", "c"], o);
    await kilnJson(["realize", "base"], o); // ./result keeps base
    const [base] = validPaths(store, "base");
    // a, b, c and the seed (its .deb, unpacked package, merged tree) are unreachable
    const seed = seedPaths(allValid(store));
    assert.equal(allValid(store).length, 4 + seed.length);

    // stop after the first batch (one path) lost its row but not yet its directory, then kill
    const run = startKiln(["gc", "--batch-size", "1"], { ...o, env: { KILN_TEST_GC_PAUSE: "invalidated" } });
    await new Promise<void>((res) => {
      const onData = (d: Buffer) => (d.toString().includes("paused after invalidated") ? res() : undefined);
      run.child.stderr!.on("data", onData);
      run.child.on("exit", () => res());
    });
    run.child.kill("SIGKILL");
    const killed = await run.done;
    assert.equal(killed.signal, "SIGKILL", killed.stderr);
    assert.equal(allValid(store).length, 3 + seed.length, "one row went before the kill; the other unreachable paths are still valid");
    const v = await verifyClean(o);
    assert.equal(v.unregistered.length, 1, "its directory is left as a stray");
    assert.deepEqual([v.missing, v.corrupt], [[], []]);

    const again = await ok(["gc"], o);
    assert.match(again.stdout, new RegExp(`${2 + seed.length} store paths deleted.*1 strays removed`));
    assert.deepEqual(allValid(store), [base]);
    assert.deepEqual(onDisk(store), [base]);
    assert.deepEqual((await verifyClean(o)).unregistered, []);
    assert.ok(existsSync(join(cwd, "result", "data")));
  });
});

describe("kiln gc and the history kept for kiln why", { timeout: 240_000 }, () => {
  after(cleanup);

  test("why still explains once gc collected the outputs; --history-older-than keeps what why compares", async () => {
    const cwd = copyFixture("hello");
    const store = tempDir("store");
    const o = { cwd, store };
    const why = async (target = "greeting") => (await ok(["why", target], o)).stdout;
    await kilnJson(["realize", "greeting"], o);
    // a comment-only edit: libgreet is rebuilt and comes out identical; hello and greeting are cut off
    const src = join(cwd, "src", "greet.c");
    writeFileSync(src, readFileSync(src, "utf8").replace("a comment that can change", "a comment that DID change"));
    const second = await kilnJson(["realize", "greeting"], o);
    assert.deepEqual(buildStarts(second.events).map((e) => e.node!.name), ["libgreet"]);
    const explained = await why();
    assert.match(explained, /source file src\/greet\.c changed/);
    assert.match(explained, /libgreet  rebuilt, output identical: early cutoff/);
    assert.match(explained, /early cutoff at libgreet/);

    // every output goes; the realisations go with them, the build records stay
    rmSync(join(cwd, "result"));
    await ok(["gc"], o);
    assert.deepEqual(allValid(store), []);
    assert.equal(await why(), explained, "the same explanation, from history alone");

    // a third realisation with another CFLAGS: why now compares the second and the third
    const recipe = join(cwd, "recipes", "index.ts");
    writeFileSync(recipe, readFileSync(recipe, "utf8").replace('CFLAGS: "-O2"', 'CFLAGS: "-DNDEBUG"'));
    await kilnJson(["realize", "greeting"], o);
    const latest = await why();
    assert.match(latest, /\[1\] recipes\/index\.ts:\d+, in libgreet\n[\s\S]*→ env CFLAGS of libgreet: "-O2" → "-DNDEBUG"/);
    // an evaluation that no realisation records (a recipe edited and put back) leaves a snapshot only history gc takes
    const edited = readFileSync(recipe, "utf8");
    writeFileSync(recipe, `// a passing comment\n${edited}`);
    await ok(["eval", "greeting"], o);
    writeFileSync(recipe, edited);
    const snapshots = () => query<{ n: number }>(store, "SELECT count(*) AS n FROM recipe_snapshots")[0]!.n;
    assert.equal(snapshots(), 3);
    const latestLibgreet = await why("libgreet");
    const targetRows = () => query<{ id: number }>(store, "SELECT id FROM target_realisations ORDER BY id").map((r) => r.id);
    const logsBefore = buildRows(store).map((b) => b.log_file!);
    assert.equal(targetRows().length, 3);

    const young = await ok(["gc", "--history-older-than", "1h"], o);
    assert.match(young.stdout, /history: 0 build records and 0 target realisations deleted, 0 log files \(0 B\) removed/);
    const dry = await ok(["gc", "--dry-run", "--history-older-than", "0s"], o);
    assert.match(dry.stdout, /history: 1 build records and 1 target realisations would be deleted, 1 log files \([\d.]+ \w+\) would be removed/);
    assert.equal(targetRows().length, 3, "a dry run deletes no history");

    // 0s: everything is old, but the latest realisation and the one why compares it with stay, with
    // the build records of their trees; only the first realisation and its own libgreet build go
    const gc = await ok(["gc", "--history-older-than", "0s"], o);
    assert.match(gc.stdout, /history: 1 build records and 1 target realisations deleted, 1 log files \([\d.]+ \w+\) removed; 1 targets keep/);
    assert.equal(targetRows().length, 2);
    const logsAfter = buildRows(store).map((b) => b.log_file!);
    const removed = logsBefore.filter((l) => !logsAfter.includes(l));
    assert.equal(removed.length, 1);
    assert.ok(!existsSync(removed[0]!), "its log file went with it");
    for (const l of logsAfter) assert.ok(existsSync(l), `${l} kept`);
    assert.equal(snapshots(), 2, "the recipe files of the kept realisations stay; the unrecorded evaluation's go");
    assert.equal(await why(), latest, "why explains the latest realisation as before");
    assert.equal(await why("libgreet"), latestLibgreet);
    assert.match((await ok(["log", "libgreet"], o)).stdout, /compiling greet\.c with CFLAGS=-DNDEBUG/);
    const bad = await kiln(["gc", "--history-older-than", "soon"], o);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--history-older-than: cannot read "soon" as a duration/);
  });
});
