// The TUI's view state, folded from engine events: per-node states, totals, ETA from estimates,
// the critical path of what remains, and the tree of the graph.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { KilnEvent } from "../../engine/events.js";
import { applyEvent, createViewState, criticalPath, formatMs, progress, reduce, treeRows, type ViewState } from "./view-state.js";

// a diamond plus a tail:  src -> (libA, libB) -> app -> image ; tool is cached
const ref = (name: string) => ({ drv: `h-${name}`, name });
const planned: KilnEvent = {
  type: "planned",
  nodes: [
    { ...ref("tool"), state: "cached", deps: [] },
    { ...ref("src"), state: "fetch", deps: [], estimateMs: 1000 },
    { ...ref("libA"), state: "unknown", deps: ["h-src", "h-tool"], estimateMs: 10_000 },
    { ...ref("libB"), state: "unknown", deps: ["h-src"], estimateMs: 2000 },
    { ...ref("app"), state: "unknown", deps: ["h-libA", "h-libB"], estimateMs: 5000 },
    { ...ref("image"), state: "unknown", deps: ["h-app"], estimateMs: 3000 },
  ],
};

function fold(events: Array<[number, KilnEvent]>, jobs = 2): ViewState {
  return reduce(events.map(([at, event]) => ({ at, event })), { jobs });
}

describe("view state", () => {
  test("planned: every node waiting, edges both ways, the target as the root", () => {
    const s = fold([[0, { type: "evaluated", targets: ["image"], derivations: 6, ms: 12 }], [5, planned]]);
    assert.equal(s.phase, "building");
    assert.deepEqual(s.targets, ["image"]);
    assert.equal(s.counts.total, 6);
    assert.equal(s.counts.waiting, 6);
    assert.deepEqual(s.roots, ["h-image"]);
    assert.deepEqual(s.nodes.get("h-src")!.dependents.sort(), ["h-libA", "h-libB"]);
    assert.equal(s.nodes.get("h-tool")!.plan, "cached");
  });

  test("each event moves its node: running, cached, cut off, built (duration), failed (tail), skipped", () => {
    const s = fold([
      [0, planned],
      [1, { type: "cached", node: ref("tool"), paths: {}, cutoff: false }],
      [2, { type: "started", node: ref("src"), resolved: "r-src", kind: "fetch" }],
      [3, { type: "log", node: ref("src"), line: "downloading" }],
    ]);
    const src = s.nodes.get("h-src")!;
    assert.equal(src.status, "running");
    assert.equal(src.kind, "fetch");
    assert.equal(src.resolved, "r-src");
    assert.deepEqual(src.logTail, ["downloading"]);
    assert.equal(s.nodes.get("h-tool")!.status, "cached");
    assert.equal(s.counts.running, 1);
    assert.equal(s.counts.cached, 1);

    applyEvent(s, { type: "built", node: ref("src"), paths: {}, ms: 900, identical: false }, 10);
    applyEvent(s, { type: "cached", node: ref("libB"), paths: {}, cutoff: true }, 11);
    applyEvent(s, { type: "started", node: ref("libA"), resolved: "r-a", kind: "build" }, 12);
    applyEvent(s, { type: "failed", node: ref("libA"), message: "builder exited with code 1", logTail: ["cc: error"], logFile: "/l/a.log" }, 20);
    applyEvent(s, { type: "skipped", node: ref("app"), because: ref("libA"), failed: ref("libA") }, 21);
    applyEvent(s, { type: "skipped", node: ref("image"), because: ref("app"), failed: ref("libA") }, 21);
    applyEvent(s, { type: "finished", built: 1, cached: 2, failed: 1, ms: 21 }, 22);

    const st = (n: string) => s.nodes.get(`h-${n}`)!.status;
    assert.deepEqual(["tool", "src", "libA", "libB", "app", "image"].map(st), ["cached", "built", "failed", "cutoff", "skipped", "skipped"]);
    assert.equal(s.nodes.get("h-src")!.ms, 900);
    assert.equal(s.nodes.get("h-libA")!.ms, 8);
    assert.deepEqual(s.nodes.get("h-libA")!.logTail, ["cc: error"]);
    assert.equal(s.nodes.get("h-libA")!.logFile, "/l/a.log");
    assert.equal(s.nodes.get("h-app")!.reason, "input libA failed");
    assert.equal(s.nodes.get("h-image")!.reason, "input app was skipped (libA failed)", "the failure behind a skip is named");
    assert.deepEqual(s.failures, ["h-libA"]);
    assert.deepEqual(s.completions.map((c) => `${c.name}:${c.status}`), ["tool:cached", "src:built", "libB:cutoff", "libA:failed", "app:skipped", "image:skipped"]);
    assert.equal(s.phase, "finished");
    const p = progress(s, 30);
    assert.deepEqual({ done: p.done, running: p.running, remaining: p.remaining, total: p.total }, { done: 6, running: 0, remaining: 0, total: 6 });
    assert.equal(p.etaMs, 0);
    assert.equal(p.elapsedMs, 22);
  });

  test("a final state is not undone by a late event", () => {
    const s = fold([[0, planned], [1, { type: "built", node: ref("src"), paths: {}, ms: 5, identical: false }], [2, { type: "started", node: ref("src"), resolved: "x", kind: "build" }]]);
    assert.equal(s.nodes.get("h-src")!.status, "built");
    assert.equal(s.counts.running, 0);
    assert.equal(s.counts.built, 1);
  });

  test("the log tail keeps the last lines only", () => {
    const s = fold([[0, planned]]);
    for (let i = 0; i < 500; i++) applyEvent(s, { type: "log", node: ref("src"), line: `line ${i}` }, i);
    const n = s.nodes.get("h-src")!;
    assert.equal(n.logLines, 500);
    assert.equal(n.logTail.length, 200);
    assert.equal(n.logTail.at(-1), "line 499");
  });

  test("events for a node that was never planned still show up", () => {
    const s = fold([[0, { type: "started", node: ref("lone"), resolved: "r", kind: "build" }]]);
    assert.equal(s.nodes.get("h-lone")!.status, "running");
    assert.equal(s.counts.total, 1);
  });

  test("critical path: the longest chain of estimates through what remains", () => {
    const s = fold([[0, planned]]);
    const cp = criticalPath(s, 0);
    // src 1s -> libA 10s -> app 5s -> image 3s; libB (2s) is off it; tool is cached (0)
    assert.deepEqual(cp.drvs, ["h-src", "h-libA", "h-app", "h-image"]);
    assert.equal(cp.ms, 19_000);

    // libA running for 4s of its 10s: 6s left on it
    applyEvent(s, { type: "built", node: ref("src"), paths: {}, ms: 1000, identical: false }, 1000);
    applyEvent(s, { type: "started", node: ref("libA"), resolved: "r", kind: "build" }, 1000);
    applyEvent(s, { type: "started", node: ref("libB"), resolved: "r", kind: "build" }, 1000);
    const later = criticalPath(s, 5000);
    assert.deepEqual(later.drvs, ["h-libA", "h-app", "h-image"]);
    assert.equal(later.ms, 6000 + 5000 + 3000);
  });

  test("ETA: the critical path or the work over the jobs, whichever is longer; none without estimates", () => {
    const s = fold([[0, planned]], 1);
    // one job: all the work in a row, 1+10+2+5+3
    assert.equal(progress(s, 0).etaMs, 21_000);
    const wide = fold([[0, planned]], 8);
    assert.equal(progress(wide, 0).etaMs, 19_000);
    assert.equal(progress(wide, 0).unestimated, 0);

    const bare = fold([[0, { type: "planned", nodes: [{ ...ref("x"), state: "build", deps: [] }] }]]);
    assert.equal(progress(bare, 0).etaMs, undefined);
    assert.equal(progress(bare, 0).unestimated, 1);
    assert.deepEqual(criticalPath(bare, 0).drvs, [], "no estimates, no critical path");
  });

  test("progress counts done, running and remaining", () => {
    const s = fold([
      [0, planned],
      [1, { type: "cached", node: ref("tool"), paths: {}, cutoff: false }],
      [2, { type: "built", node: ref("src"), paths: {}, ms: 1, identical: false }],
      [3, { type: "started", node: ref("libA"), resolved: "r", kind: "build" }],
    ]);
    const p = progress(s, 10);
    assert.deepEqual({ done: p.done, running: p.running, remaining: p.remaining }, { done: 2, running: 1, remaining: 3 });
    assert.equal(p.elapsedMs, 10);
  });

  test("tree: targets down to inputs, shared inputs expanded once, collapse hides inputs", () => {
    const s = fold([[0, planned]]);
    const show = (rows: ReturnType<typeof treeRows>) => rows.map((r) => `${"  ".repeat(r.depth)}${s.nodes.get(r.drv)!.name}${r.repeat ? " (again)" : ""}`);
    assert.deepEqual(show(treeRows(s, new Set())), ["image", "  app", "    libA", "      src", "      tool", "    libB", "      src (again)"]);
    const rows = treeRows(s, new Set(["h-libA"]));
    assert.deepEqual(show(rows), ["image", "  app", "    libA", "    libB", "      src"]);
    assert.equal(rows[2]!.expanded, false);
    assert.equal(rows[2]!.hasChildren, true);
  });

  test("formatMs", () => {
    assert.deepEqual([850, 4200, 73_000, 750_000].map(formatMs), ["850ms", "4.2s", "73s", "12.5min"]);
  });

  test("watch rounds: a round starts the picture afresh, keeps the targets, and says what started it", () => {
    const s = fold([
      [0, { type: "round", round: 1, changed: [] }],
      [1, { type: "evaluated", targets: ["image"], derivations: 6, ms: 12 }],
      [2, planned],
      [3, { type: "started", node: ref("src"), resolved: "r-src", kind: "fetch" }],
      [4, { type: "built", node: ref("src"), paths: {}, ms: 1, identical: false }],
      [5, { type: "finished", built: 1, cached: 0, failed: 0, ms: 5 }],
    ]);
    assert.deepEqual(s.watch, { round: 1, changed: [], status: "running", outputs: [] });
    applyEvent(s, { type: "watching", round: 1, files: 7, outputs: ["/s/abc-image"] }, 6);
    assert.deepEqual(s.watch, { round: 1, changed: [], status: "idle", files: 7, outputs: ["/s/abc-image"] });
    // the last round's picture stays while the watch waits
    assert.equal(s.phase, "finished");
    assert.equal(s.nodes.get("h-src")!.status, "built");

    applyEvent(s, { type: "round", round: 2, changed: ["src/main.c"] }, 100);
    assert.deepEqual(s.watch, { round: 2, changed: ["src/main.c"], status: "running", outputs: [] });
    assert.equal(s.phase, "evaluating");
    assert.deepEqual(s.targets, ["image"]);
    assert.equal(s.nodes.size, 0);
    assert.deepEqual(s.order, []);
    assert.deepEqual(s.completions, []);
    assert.equal(s.counts.total, 0);
    assert.equal(s.finished, undefined);
    assert.equal(s.evaluated, undefined);
    assert.equal(s.plannedAt, undefined);
    // elapsed time counts from the round's start
    applyEvent(s, planned, 110);
    assert.equal(progress(s, 130).elapsedMs, 30);
    assert.equal(s.nodes.get("h-src")!.status, "waiting");
    assert.equal(s.counts.waiting, 6);
  });

  test("watch: a round that could not evaluate ends with its error and no graph", () => {
    const s = fold([
      [0, { type: "round", round: 3, changed: ["recipes/index.ts"] }],
      [1, { type: "watching", round: 3, files: 5, outputs: [], error: { code: "RECIPE_ERROR", message: "cannot compile the recipes" } }],
    ]);
    assert.deepEqual(s.watch, { round: 3, changed: ["recipes/index.ts"], status: "idle", files: 5, outputs: [], error: { code: "RECIPE_ERROR", message: "cannot compile the recipes" } });
    assert.equal(s.phase, "evaluating");
    assert.equal(s.nodes.size, 0);
  });

  test("no watch events, no watch state", () => {
    assert.equal(fold([[0, planned]]).watch, undefined);
  });

  test("a fresh state is evaluating with nothing in it", () => {
    const s = createViewState();
    assert.equal(s.phase, "evaluating");
    assert.equal(progress(s, 0).total, 0);
    assert.equal(progress(s, 0).etaMs, undefined);
  });
});
