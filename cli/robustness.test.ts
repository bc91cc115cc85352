// Interrupted and concurrent runs (fixtures/slow): a kiln killed with SIGKILL in the middle of a
// build leaves nothing half-registered; Ctrl-C cancels cleanly; two kilns share the work.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildRows, buildStarts, cleanup, copyFixture, eventsOf, kiln, kilnJson, query, isSeedNode, realizeSeed, seedBuildCount, startKiln, tempDir, validPaths, type Ev } from "./test-helpers/kiln.js";

const building = (name: string) => (e: Ev) => e.type === "log" && e.node?.name === name && e.line === `${name} build starting`;

describe("interrupted and concurrent runs", { timeout: 120_000 }, () => {
  let cwd: string;
  let store: string;

  before(async () => {
    cwd = copyFixture("slow");
    store = tempDir("store");
    // the seed the slow builds run on, in the store before the runs that get interrupted
    await realizeSeed("busybox", { cwd, store });
  });
  after(cleanup);

  test("SIGKILL in the middle of a build: the store stays consistent, and a re-run builds it and cleans up", async () => {
    const realisations = query(store, "SELECT resolved_hash FROM realisations ORDER BY resolved_hash");
    const run = startKiln(["--reporter", "json", "realize", "--no-link", "slow"], { cwd, store });
    const seen = await run.waitFor(building("slow"));
    assert.notEqual(seen.type, "__exited__", "kiln exited before the build started");
    run.child.kill("SIGKILL");
    const killed = await run.done;
    assert.equal(killed.signal, "SIGKILL");

    const leftovers = readdirSync(join(store, "tmp"));
    assert.ok(leftovers.some((d) => d.startsWith(`${run.child.pid}-`)), `the killed run's scratch dir is left behind: ${leftovers.join(", ")}`);
    assert.deepEqual(validPaths(store, "slow"), [], "no valid path for the killed derivation");
    assert.deepEqual(query(store, "SELECT resolved_hash FROM realisations ORDER BY resolved_hash"), realisations, "the seed's, nothing new");
    const verify = await kiln(["verify"], { cwd, store });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /store is consistent/);

    const again = await kilnJson(["realize", "--no-link", "slow"], { cwd, store });
    assert.deepEqual(buildStarts(again.events).map((e) => e.node!.name), ["slow"]);
    const [path] = validPaths(store, "slow");
    assert.ok(path);
    assert.equal(again.stdout, `${join(store, "store", path)}\n`);
    assert.deepEqual(readdirSync(join(store, "tmp")), [], "stale scratch dirs are removed by the re-run");
    // the killed attempt is no longer shown as running: the re-run found its process gone
    assert.deepEqual(buildRows(store, "slow").map((b) => b.status), ["cancelled", "built"]);
    const verify2 = await kiln(["verify"], { cwd, store });
    assert.equal(verify2.code, 0, verify2.stdout);
  });

  test("SIGINT during a build: exit 130, no scratch dirs left, the build recorded as cancelled", async () => {
    const run = startKiln(["--reporter", "json", "realize", "--no-link", "slowToo"], { cwd, store });
    const seen = await run.waitFor(building("slow-too"));
    assert.notEqual(seen.type, "__exited__", "kiln exited before the build started");
    run.child.kill("SIGINT");
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /cancelling/);
    assert.deepEqual(readdirSync(join(store, "tmp")), []);
    assert.deepEqual(buildRows(store, "slow-too").map((b) => b.status), ["cancelled"]);
    assert.deepEqual(validPaths(store, "slow-too"), []);
    assert.ok(!existsSync(join(cwd, "result")));
  });

  test("a cancel with two builds running and four waiting: every node is counted once, and the counts add up", async () => {
    const fresh = tempDir("store");
    // the seed first: then the six nodes of the graph are all there is to build
    await realizeSeed("busybox", { cwd, store: fresh });
    const run = startKiln(["--reporter", "json", "realize", "--no-link", "-j", "2", "top"], { cwd, store: fresh });
    for (const name of ["slow", "slow-too"]) assert.notEqual((await run.waitFor(building(name))).type, "__exited__");
    run.child.kill("SIGINT");
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    const nodes = (eventsOf(r.events, "planned")[0] as Ev & { nodes: Array<{ name: string; state: string }> }).nodes;
    const cached = nodes.filter((n) => n.state === "cached");
    assert.equal(nodes.length - cached.length, 6);
    assert.ok(cached.length > 0 && cached.every((n) => isSeedNode(n.name)), "only the seed is in the store");
    const f = eventsOf(r.events, "finished")[0]!;
    assert.equal(f.cached, cached.length);
    assert.deepEqual({ built: f.built, failed: f.failed, cancelled: f.cancelled, skipped: f.skipped }, { built: 0, failed: 0, cancelled: 6, skipped: 0 });
    assert.deepEqual(eventsOf(r.events, "cancelled").map((e) => e.node!.name).sort(), ["joined", "left", "right", "slow", "slow-too", "top"]);
    assert.deepEqual(eventsOf(r.events, "skipped"), [], "nothing failed: nothing was skipped for a failure");
  });

  test("two concurrent realizes of the same slow derivation on a fresh store build it once", async () => {
    const fresh = tempDir("store");
    const a = startKiln(["--reporter", "json", "realize", "--no-link", "slow"], { cwd, store: fresh });
    const b = startKiln(["--reporter", "json", "realize", "--no-link", "slow"], { cwd, store: fresh });
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(ra.stdout, rb.stdout);
    assert.match(ra.stdout, /-slow\n$/);
    // slow, and the seed it runs on (an unpack, a merge): each built by one of the two
    const starts = [...buildStarts(ra.events), ...buildStarts(rb.events)].map((e) => e.node!.name);
    assert.equal(starts.length, 1 + seedBuildCount("seed-busybox"), starts.join(" "));
    assert.equal(new Set(starts).size, starts.length, `each derivation once: ${starts.join(" ")}`);
    assert.ok(starts.includes("slow"));
    assert.deepEqual(query(fresh, "SELECT status, count(*) AS n FROM builds GROUP BY status"), [{ status: "built", n: starts.length }]);
  });

  test("a derivation another kiln is building is waited for without a job slot: -j1 builds what it can meanwhile", async () => {
    const fresh = tempDir("store");
    await realizeSeed("busybox", { cwd, store: fresh });
    const a = startKiln(["--reporter", "json", "realize", "--no-link", "slower"], { cwd, store: fresh });
    assert.notEqual((await a.waitFor(building("slower"))).type, "__exited__", "the first kiln exited before building slower");
    // slower is asked for first, so with one slot it is the first to be tried
    const b = await kilnJson(["realize", "--no-link", "-j1", "slower", "slowToo"], { cwd, store: fresh });
    const ra = await a.done;
    assert.equal(ra.code, 0, ra.stderr);
    const at = (pred: (e: Ev) => boolean, what: string) => {
      const i = b.events.findIndex(pred);
      assert.ok(i >= 0, `the second kiln reports ${what}`);
      return i;
    };
    const waiting = at((e) => e.type === "waiting" && e.node?.name === "slower", "waiting for slower");
    const startedToo = at((e) => e.type === "started" && e.kind === "build" && e.node?.name === "slow-too", "building slow-too");
    const got = at((e) => e.type === "cached" && e.node?.name === "slower", "slower from the store");
    assert.ok(waiting < startedToo && startedToo < got, "slow-too was built while slower was waited for, not after");
    assert.deepEqual(buildStarts(b.events, "slower"), [], "slower is built once, by the first kiln");
  });

  test("when the kiln that was building it dies, the one waiting builds it itself", async () => {
    const fresh = tempDir("store");
    await realizeSeed("busybox", { cwd, store: fresh });
    const a = startKiln(["--reporter", "json", "realize", "--no-link", "slower"], { cwd, store: fresh });
    assert.notEqual((await a.waitFor(building("slower"))).type, "__exited__", "the first kiln exited before building slower");
    const b = startKiln(["--reporter", "json", "realize", "--no-link", "-j1", "slower"], { cwd, store: fresh });
    assert.notEqual((await b.waitFor((e) => e.type === "waiting" && e.node?.name === "slower")).type, "__exited__", "the second kiln never waited");
    a.child.kill("SIGKILL");
    const rb = await b.done;
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(buildStarts(rb.events, "slower").length, 1, "the second kiln built slower after the first one died");
    assert.match(rb.stdout, /-slower\n$/);
  });
});
