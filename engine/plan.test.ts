// What a realize visits: the roots and the inputs of what is not in the store yet.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { LocalStore } from "../store/local-store.js";
import type { StorePathName } from "../store/paths.js";
import { derivation, sh, type Drv } from "./api.js";
import type { Context } from "./context.js";
import { Evaluator, type Node } from "./evaluate.js";
import { neededNodes, plan, type PlanState } from "./plan.js";
import { Realizer } from "./realize.js";
import { substitutionKey, type Realisation, type Substituter } from "./substituter.js";
import { FakeBuilder } from "./test-helpers/fake-builder.js";
import { stubHostTools } from "./test-helpers/golden.js";

const node = (name: string, deps: Node[] = [], fixed = false) => ({ name, hash: name, deps, drv: { fixed: fixed ? { sha256: "0" } : undefined } }) as unknown as Node;

describe("neededNodes", () => {
  test("the inputs of a fixed output in the store are not needed; any other node's are", () => {
    const deb = node("deb", [], true);
    const tarball = node("tarball", [deb], true); // in the store
    const cc = node("cc");
    const kernel = node("kernel", [tarball, cc]); // to build
    const image = node("image", [kernel]);
    const states: Record<string, PlanState> = { deb: "fetch", tarball: "cached", cc: "cached", kernel: "build", image: "unknown" };
    const p = new Map([deb, tarball, cc, kernel, image].map((n) => [n, { state: states[n.name]! }]));
    assert.deepEqual(neededNodes([deb, tarball, cc, kernel, image], [image], p).map((n) => n.name), ["tarball", "cc", "kernel", "image"]);
    // everything in the store: cached nodes are still visited (their inputs resolve them), the
    // fixed tarball stops the walk
    const allCached = new Map([deb, tarball, cc, kernel, image].map((n) => [n, { state: "cached" as PlanState }]));
    assert.deepEqual(neededNodes([deb, tarball, cc, kernel, image], [image], allCached).map((n) => n.name), ["tarball", "cc", "kernel", "image"]);
  });
});

describe("plan: the store's answers and the substituters', wave by wave", () => {
  const tmp = mkdtempSync(join(tmpdir(), "kiln-plan-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test("a chain: the store answers the first node, a substituter the second, and the third is asked for once its input is known", async () => {
    const store = LocalStore.open(join(tmp, "store"));
    after(() => store.close());
    const ctx: Context = {
      store, builder: new FakeBuilder(store), substituters: [], hostTools: stubHostTools().hostTools, events: () => {},
      clock: Date.now, signal: new AbortController().signal, fileCache: new Map(),
      config: { jobs: 2, buildCores: 1, keepGoing: false, mirrors: [], fetchEnv: {} },
    };
    const step = (name: string, inputs: Drv[] = []) => derivation({ name, builder: "/fake/builder", env: { CONTENT: name, READ: sh`${inputs}` } });
    const a = step("a");
    const b = step("b", [a]);
    const c = step("c", [b]);
    // a is built for real, into the store
    const first = new Evaluator(ctx);
    await new Realizer(ctx).realize(first.graph, [first.evaluate(a).node]);
    const ev = new Evaluator(ctx);
    const root = ev.evaluate(c).node;
    const [na, nb, nc] = ev.graph.nodes;
    assert.deepEqual([na!.name, nb!.name, nc!.name], ["a", "b", "c"]);
    const bPath = "0123456789abcdfghijklmnpqrsvwxyz-b" as StorePathName;
    const asked: string[][] = [];
    const sub: Substituter = {
      name: "fake",
      async query(keys) {
        asked.push(keys.map((k) => k.resolved));
        const m = new Map<string, Realisation>();
        // the first question is b's (the second wave): the only node this cache has
        if (asked.length === 1) for (const k of keys) m.set(substitutionKey(k.resolved, k.output), { path: bPath, info: { path: bPath, narDigest: "0".repeat(64), narSize: 1, references: [] } });
        return m;
      },
      async pathInfos() { return new Map(); },
      async fetch() { throw new Error("not fetched in a plan"); },
    };
    // the store's answers come in read transactions, one per run of waves between two questions
    const reading = store.reading.bind(store);
    let readings = 0;
    store.reading = <T>(fn: () => T): T => {
      readings++;
      return reading(fn);
    };
    const p = await plan(store, ev.graph.nodes, [sub]);
    assert.deepEqual([na, nb, nc].map((n) => p.get(n!)!.state), ["cached", "substitutable", "build"]);
    assert.equal(p.get(nb!)!.outputs!.out, bPath);
    // one question per wave the store could not answer: b's, then c's (made of b's offered path); a's never
    assert.deepEqual(asked, [[p.get(nb!)!.resolved], [p.get(nc!)!.resolved]]);
    assert.equal(readings, 2, "a and b, then c");
    assert.equal(root, nc);
    // without substituters the store answers a; b is to be built, and c after it
    readings = 0;
    const alone = await plan(store, ev.graph.nodes);
    assert.equal(readings, 1, "the three waves in one");
    assert.deepEqual([na, nb].map((n) => alone.get(n!)!.state), ["cached", "build"]);
    assert.ok(["unknown", "build"].includes(alone.get(nc!)!.state), alone.get(nc!)!.state);
  });
});
