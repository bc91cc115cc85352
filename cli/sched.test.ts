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

  test("-j2: the chain starts in the first two slots although the independent jobs asked first", async () => {
    const cwd = copyFixture("sched");
    const store = tempDir("store");
    // the seed first: then all the jobs that need nothing else are ready at once
    await realizeSeed("busybox", { cwd, store });
    const r = await kilnJson(["-j", "2", "realize", "--no-link", "all"], { cwd, store });
    const order = eventsOf(r.events, "started").map((e) => e.node!.name);
    assert.equal(order.length, 8);
    assert.ok(order.slice(0, 2).includes("c1"), `c1 among the first two started: ${order.join(" ")}`);
    // what starts later depends on how long each sandbox takes to start and register here (a
    // slot is freed when a build's process ends, before its output is registered and the next
    // chain job is ready): the exact order, slot by slot, is engine/realize.test.ts's, in-process
  });
});
