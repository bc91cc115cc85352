// Scheduling order: waiting jobs get a slot by critical-path length, so the longest chain starts
// first and independent work fills the other slots (engine/realize.ts, criticalPathPriorities).
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { criticalPathPriorities } from "../engine/graph.js";
import type { Node } from "../engine/evaluate.js";
import { cleanup, copyFixture, eventsOf, kilnJson, realizeSeed, tempDir } from "./test-helpers/kiln.js";

after(cleanup);

describe("scheduler", { timeout: 120_000 }, () => {
  test("priorities: own expected time plus the longest chain of dependents", () => {
    const node = (name: string, deps: Node[] = []) => ({ name, hash: name, deps }) as unknown as Node;
    const a = node("a");
    const b = node("b", [a]);
    const x = node("x");
    const root = node("root", [x, b]);
    const ms: Record<string, number> = { a: 5, b: 7, x: 100, root: 1 };
    const p = criticalPathPriorities([a, b, x, root], (n) => ms[n.name]!);
    assert.deepEqual([a, b, x, root].map((n) => p.get(n)), [13, 8, 101, 1]);
  });

  /** The order the fixture's jobs start in, built from scratch with `jobs` slots. */
  async function startOrder(jobs: number): Promise<string[]> {
    const cwd = copyFixture("sched");
    const store = tempDir("store");
    // the seed first: then all the jobs that need nothing else are ready at once
    await realizeSeed("busybox", { cwd, store });
    const r = await kilnJson(["-j", String(jobs), "realize", "--no-link", "all"], { cwd, store });
    return eventsOf(r.events, "started").map((e) => e.node!.name);
  }

  test("-j2: the chain starts in the first two slots although the independent jobs asked first", async () => {
    const order = await startOrder(2);
    assert.equal(order.length, 8);
    assert.ok(order.slice(0, 2).includes("c1"), `c1 among the first two started: ${order.join(" ")}`);
    // what starts later depends on how long each sandbox takes to start here (a job is "started"
    // once its sandbox is up, and another may end meanwhile): one slot at a time, below, shows
    // the order slots are given in
  });

  test("-j1: the slot c1 gives back goes to c2, which c1's end made ready, not to the independent jobs waiting longer", async () => {
    // (c3 then ranks with the independent jobs, which asked first: with no recorded times each
    // job counts one second, and each of them has only `all` above it)
    assert.deepEqual(await startOrder(1), ["c1", "c2", "i1", "i2", "i3", "i4", "c3", "all"]);
  });
});
