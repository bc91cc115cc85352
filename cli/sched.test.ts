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
    // the slot c1 gives back goes to c2, which c1's end made ready, and not to an independent
    // job that was waiting (engine/scheduler.ts, release). (c3 ranks with the independent jobs:
    // with no recorded times, each counts one second, and each has only `all` above it.)
    const seq = r.events.filter((e) => e.type === "started" || e.type === "built").map((e) => `${e.type} ${e.node!.name}`);
    const between = seq.slice(seq.indexOf("built c1"), seq.indexOf("started c2"));
    assert.ok(!between.some((x) => x.startsWith("started i")), `nothing else started between c1's end and c2's start: ${seq.join(", ")}`);
  });
});
