// The Ink TUI, rendered with ink-testing-library: frames show the nodes' states, the progress and
// the ETA, the critical path, the selected node's log; keys move, collapse, open the full log, quit.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, test } from "node:test";
import { render } from "ink-testing-library";
import { createElement } from "react";
import type { KilnEvent } from "../../engine/events.js";
import { App, tuiReporter, type AppProps } from "./tui.js";
import { applyEvent, createViewState, type ViewState } from "./view-state.js";

const ref = (name: string) => ({ drv: `h-${name}`, name });
const planned: KilnEvent = {
  type: "planned",
  nodes: [
    { ...ref("libgreet"), state: "build", deps: [], estimateMs: 4000 },
    { ...ref("hello"), state: "unknown", deps: ["h-libgreet"], estimateMs: 6000 },
    { ...ref("greeting"), state: "unknown", deps: ["h-hello"], estimateMs: 1000 },
  ],
};

function stateOf(events: KilnEvent[], at = 0): ViewState {
  const s = createViewState({ jobs: 2 });
  for (const e of events) applyEvent(s, e, at);
  return s;
}

/** The frame of the app rendered last, for tick(). */
let currentFrame: (() => string | undefined) | undefined;

/**
 * Let a key press take effect: React renders in time slices and yields to the event loop when a
 * render runs long (a loaded machine), so one turn of the loop is not always enough. Waits until
 * the frame changes (at most 0.4 s: some keys change nothing on screen), then one more turn.
 */
async function tick(): Promise<void> {
  const turn = () => new Promise((r) => setImmediate(r));
  const before = currentFrame?.();
  for (let waited = 0; waited < 400 && currentFrame?.() === before; waited += 5) {
    await turn();
    if (currentFrame?.() !== before) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  await turn();
}

function app(state: ViewState, extra: Partial<AppProps> = {}) {
  const props: AppProps = { state, now: 1000, cancelling: false, onQuit: () => {}, rows: 30, columns: 100, ...extra };
  const r = render(createElement(App, props));
  currentFrame = r.lastFrame;
  return r;
}

describe("TUI", () => {
  test("a running build: every node with its state, progress, ETA, the critical path and the log tail", () => {
    const s = stateOf([
      { type: "evaluated", targets: ["greeting"], derivations: 3, ms: 5 },
      planned,
      { type: "started", node: ref("libgreet"), resolved: "r1", kind: "build" },
      { type: "log", node: ref("libgreet"), line: "compiling greet.c with CFLAGS=-O2" },
    ]);
    const { lastFrame, unmount } = app(s);
    const f = lastFrame()!;
    unmount();
    assert.match(f, /kiln greeting/);
    assert.match(f, /0\/3 done · 1 running · 2 waiting/);
    // libgreet 4s (1s gone) -> hello 6s -> greeting 1s
    assert.match(f, /ETA ~10s/);
    assert.match(f, /greeting\s+· waiting\s+~1\.0s ◆/);
    assert.match(f, /hello\s+· waiting\s+~6\.0s ◆/);
    assert.match(f, /libgreet\s+» running\s+1\.0s ◆/);
    // the cursor follows the running build, whose log tail is shown
    assert.match(f, /› .*libgreet/);
    assert.match(f, /── libgreet: running, 1 log lines ──/);
    assert.match(f, /compiling greet\.c with CFLAGS=-O2/);
  });

  test("finished: built, cut off and failed nodes printed once with durations, and the summary", () => {
    const s = stateOf([
      planned,
      { type: "built", node: ref("libgreet"), paths: {}, ms: 2300, identical: true },
      { type: "cached", node: ref("hello"), paths: {}, cutoff: true },
      { type: "started", node: ref("greeting"), resolved: "r3", kind: "build" },
      { type: "failed", node: ref("greeting"), message: "builder for greeting exited with code 1", logTail: ["sh: oops: not found"] },
      { type: "finished", built: 1, cached: 1, failed: 1, ms: 4200 },
    ]);
    const { lastFrame, frames, unmount } = app(s);
    // read the frames before unmounting: unmount may write one more (empty) frame
    const all = frames.join("\n");
    const last = lastFrame()!;
    unmount();
    assert.match(all, /✓ built\s+libgreet {2}2\.3s/);
    assert.match(all, /≈ cut off\s+hello/);
    assert.match(all, /✗ FAILED\s+greeting/);
    assert.match(last, /FAILED greeting: builder for greeting exited with code 1/);
    assert.match(last, /\| sh: oops: not found/);
    assert.match(last, /done: 1 built, 1 from the store \(1 cut off early\), 1 failed in 4\.2s/);
  });

  test("the summary counts what substituters provided, so that it adds up to the graph", () => {
    const s = stateOf([
      planned,
      { type: "substituted", node: ref("libgreet"), paths: {}, from: "cache" },
      { type: "built", node: ref("hello"), paths: {}, ms: 1000, identical: false },
      { type: "started", node: ref("greeting"), resolved: "r3", kind: "build" },
      { type: "cancelled", node: ref("greeting") },
      { type: "finished", built: 1, cached: 0, substituted: 1, failed: 0, cancelled: 1, skipped: 0, ms: 2000 },
    ]);
    const { lastFrame, unmount } = app(s);
    const last = lastFrame()!;
    unmount();
    assert.match(last, /done: 1 built, 0 from the store, 1 substituted, 0 failed, 1 cancelled in 2\.0s/);
  });

  test("keys: move, collapse and expand, open the full log and go back, q quits", async () => {
    const s = stateOf([planned, { type: "log", node: ref("hello"), line: "old line" }]);
    let quits = 0;
    const logs: string[] = [];
    const { lastFrame, stdin, unmount } = app(s, {
      onQuit: () => quits++,
      readLog: (n) => {
        logs.push(n.name);
        return ["line 1 of the file", "line 2 of the file"];
      },
    });
    try {
      assert.match(lastFrame()!, /› ▾ greeting/);
      stdin.write("j");
      await tick();
      assert.match(lastFrame()!, /› {3}▾ hello/);
      assert.match(lastFrame()!, /── hello: waiting, 1 log lines ──/);
      // collapse hello: libgreet disappears from the tree; expand brings it back
      stdin.write(" ");
      await tick();
      assert.match(lastFrame()!, /▸ hello/);
      assert.doesNotMatch(lastFrame()!, /libgreet/);
      stdin.write(" ");
      await tick();
      assert.match(lastFrame()!, /libgreet/);
      // l: the full log from the file
      stdin.write("l");
      await tick();
      assert.match(lastFrame()!, /log of hello \(waiting, 2 lines\)/);
      assert.match(lastFrame()!, /line 2 of the file/);
      assert.deepEqual([...new Set(logs)], ["hello"]);
      stdin.write("l");
      await tick();
      assert.match(lastFrame()!, /0\/3 done/);
      stdin.write("q");
      await tick();
      assert.equal(quits, 1);
    } finally {
      unmount();
    }
  });

  test("the why panel: w shows why the selected node is being built, follows the cursor, w closes it; rows say it in a few words", async () => {
    const s = stateOf([planned, { type: "started", node: ref("libgreet"), resolved: "r1", kind: "build" }]);
    const asked: string[] = [];
    const { lastFrame, stdin, unmount } = app(s, {
      reasonOf: (n) => ({ libgreet: "env CFLAGS changed", hello: "source main.c changed", greeting: "source main.c changed (in hello)" })[n.name],
      whyOf: (n) => {
        asked.push(n.name);
        return [`why ${n.name}: it differs from its last build (3f2a9c…)`, `  [1] source file main.c changed (content 1a2b3c4d… → 5e6f7a8b…)`];
      },
    });
    try {
      // the rows of what is still to build say why in a few words
      assert.match(lastFrame()!, /libgreet\s+» running\s+1\.0s ◆ {2}env CFLAGS changed/);
      assert.match(lastFrame()!, /hello\s+· waiting\s+~6\.0s ◆ {2}source main\.c changed/);
      assert.match(lastFrame()!, /greeting\s+· waiting\s+~1\.0s ◆ {2}source main\.c changed \(in hello\)/);
      assert.deepEqual(asked, [], "the full story is asked for only when shown");
      stdin.write("k");
      await tick();
      stdin.write("w");
      await tick();
      let f = lastFrame()!;
      assert.match(f, /── why hello \(waiting\) ── w close/);
      assert.match(f, /why hello: it differs from its last build/);
      assert.match(f, /\[1\] source file main\.c changed/);
      assert.doesNotMatch(f, /── hello: waiting/, "the panel takes the log's place");
      // the panel follows the cursor
      stdin.write("k");
      await tick();
      assert.match(lastFrame()!, /── why greeting \(waiting\) ──/);
      assert.deepEqual([...new Set(asked)], ["hello", "greeting"]);
      stdin.write("w");
      await tick();
      f = lastFrame()!;
      assert.doesNotMatch(f, /── why/);
      assert.match(f, /── greeting: waiting ──/);
      assert.match(f, /w why/);
    } finally {
      unmount();
    }
  });

  test("the why panel without an explainer says so", async () => {
    const { lastFrame, stdin, unmount } = app(stateOf([planned]));
    try {
      stdin.write("w");
      await tick();
      assert.match(lastFrame()!, /── why greeting \(waiting\) ──/);
      assert.match(lastFrame()!, /no explanation available/);
    } finally {
      unmount();
    }
  });

  test("watch: each round's header, finished nodes and outcome printed once; the last round stays live while waiting", async () => {
    const round1: KilnEvent[] = [
      { type: "round", round: 1, changed: [] },
      { type: "evaluated", targets: ["greeting"], derivations: 3, ms: 5 },
      planned,
      { type: "built", node: ref("libgreet"), paths: {}, ms: 1500, identical: false },
      { type: "built", node: ref("hello"), paths: {}, ms: 2500, identical: false },
      { type: "built", node: ref("greeting"), paths: {}, ms: 500, identical: false },
      { type: "finished", built: 3, cached: 0, failed: 0, ms: 4600 },
      { type: "watching", round: 1, files: 7, outputs: ["/s/abc-greeting"] },
    ];
    const s = stateOf(round1);
    let quits = 0;
    const props: AppProps = { state: s, now: 5000, cancelling: false, onQuit: () => quits++, rows: 30, columns: 100 };
    const { lastFrame, stdin, rerender, unmount } = render(createElement(App, props));
    try {
      let f = lastFrame()!;
      assert.match(f, /── round 1 ──/);
      assert.match(f, /✓ built\s+libgreet {2}1\.5s/);
      assert.match(f, /done: 3 built, 0 from the store, 0 failed in 4\.6s/);
      assert.match(f, /\/s\/abc-greeting/);
      assert.match(f, /watch · round 1 done · watching 7 files and folders · waiting for changes · q to stop/);
      // the finished round's graph is still there to look at
      assert.match(f, /hello\s+✓ built\s+2\.5s/);
      assert.match(f, /q stop/);
      // the full log of a node of round 1 is open when round 2 begins
      stdin.write("l");
      await tick();
      assert.match(lastFrame()!, /log of greeting \(built/);

      // round 2: what changed, a fresh graph (hello and greeting are new derivations); round 1's
      // lines are not printed again
      const ref2 = (name: string) => ({ drv: `h2-${name}`, name });
      for (const e of [
        { type: "round", round: 2, changed: ["src/main.c"] },
        { type: "evaluated", targets: ["greeting"], derivations: 3, ms: 5 },
        {
          type: "planned",
          nodes: [
            { ...ref("libgreet"), state: "cached", deps: [] },
            { ...ref2("hello"), state: "build", deps: ["h-libgreet"] },
            { ...ref2("greeting"), state: "unknown", deps: ["h2-hello"] },
          ],
        },
        { type: "cached", node: ref("libgreet"), paths: {}, cutoff: false },
        { type: "started", node: ref2("hello"), resolved: "r2", kind: "build" },
      ] as KilnEvent[]) applyEvent(s, e, 6000);
      rerender(createElement(App, { ...props, now: 6500 }));
      await tick();
      f = lastFrame()!;
      assert.match(f, /── round 2: changed src\/main\.c ──/);
      assert.match(f, /watch · round 2 · changed: src\/main\.c/);
      assert.match(f, /1\/3 done · 1 running · 1 waiting/);
      assert.match(f, /hello\s+» running/);
      // the view starts afresh: the log of round 1's node is closed, the cursor follows the running build
      assert.doesNotMatch(f, /log of greeting/);
      assert.match(f, /› .*hello/);
      assert.equal(f.split("── round 1 ──").length - 1, 1);
      assert.equal(f.split("done: 3 built").length - 1, 1);
      assert.equal([...f.matchAll(/✓ built\s+libgreet/g)].length, 1);

      // keys work while waiting for changes, too: q stops the watch
      applyEvent(s, { type: "built", node: ref2("hello"), paths: {}, ms: 900, identical: false }, 7000);
      applyEvent(s, { type: "built", node: ref2("greeting"), paths: {}, ms: 100, identical: false }, 7000);
      applyEvent(s, { type: "finished", built: 2, cached: 1, failed: 0, ms: 1000 }, 7000);
      applyEvent(s, { type: "watching", round: 2, files: 7, outputs: ["/s/def-greeting"] }, 7000);
      rerender(createElement(App, { ...props, now: 7000 }));
      await tick();
      f = lastFrame()!;
      assert.match(f, /done: 2 built, 1 from the store, 0 failed in 1\.0s\n\/s\/def-greeting/);
      stdin.write("q");
      await tick();
      assert.equal(quits, 1);
    } finally {
      unmount();
    }
  });

  test("watch: a broken recipe's error is printed under its round, and the watch waits for the fix", async () => {
    const s = stateOf([
      { type: "round", round: 3, changed: ["recipes/index.ts"] },
      { type: "watching", round: 3, files: 5, outputs: [], error: { code: "RECIPE_ERROR", message: "cannot compile the recipes: recipes/index.ts:60:21: ERROR: Unexpected \";\"" } },
    ]);
    let quits = 0;
    const { lastFrame, stdin, unmount } = app(s, { onQuit: () => quits++ });
    try {
      const f = lastFrame()!;
      assert.match(f, /── round 3: changed recipes\/index\.ts ──\nround 3 failed: cannot compile the recipes: recipes\/index\.ts:60:21: ERROR: Unexpected ";"/);
      assert.match(f, /watch · round 3 failed \(the error is above\) · watching 5 files and folders · waiting for changes/);
      assert.doesNotMatch(f, /0\/0 done/);
      stdin.write("q");
      await tick();
      assert.equal(quits, 1);
    } finally {
      unmount();
    }
  });

  test("watch: a failed build is told by the summary, not again by the round's error", () => {
    const s = stateOf([
      { type: "round", round: 2, changed: ["src/main.c"] },
      planned,
      { type: "cached", node: ref("libgreet"), paths: {}, cutoff: false },
      { type: "failed", node: ref("hello"), message: "builder for hello exited with code 1", logTail: ["main.c:4: error: expected ';'"] },
      { type: "skipped", node: ref("greeting"), because: ref("hello"), failed: ref("hello") },
      { type: "finished", built: 0, cached: 1, failed: 1, ms: 800 },
      { type: "watching", round: 2, files: 7, outputs: [], error: { code: "BUILD_FAILED", message: "1 derivation(s) failed: hello" } },
    ]);
    const { lastFrame, unmount } = app(s);
    const f = lastFrame()!;
    unmount();
    assert.match(f, /FAILED hello: builder for hello exited with code 1\n {2}\| main\.c:4: error: expected ';'/);
    assert.doesNotMatch(f, /round 2 failed: /);
    assert.match(f, /watch · round 2 failed · watching 7 files/);
  });

  test("cancelling is shown", () => {
    const { lastFrame, unmount } = app(stateOf([planned]), { cancelling: true });
    const f = lastFrame()!;
    unmount();
    assert.match(f, /cancelling: stopping builds/);
  });

  test("no recorded durations: the ETA says it does not know", () => {
    const { lastFrame, unmount } = app(stateOf([{ type: "planned", nodes: [{ ...ref("x"), state: "build", deps: [] }] }]));
    const f = lastFrame()!;
    unmount();
    assert.match(f, /ETA unknown/);
  });

  test("the reporter: events in, a final frame on finished, later events to the fallback sink", async () => {
    const out: string[] = [];
    const stdout = Object.assign(new EventEmitter(), { columns: 100, rows: 30, isTTY: false, write: (s: string) => (out.push(s), true) }) as unknown as NodeJS.WriteStream;
    const stdin = Object.assign(new EventEmitter(), { isTTY: false, setRawMode() {}, setEncoding() {}, resume() {}, pause() {}, ref() {}, unref() {}, read: () => null }) as unknown as NodeJS.ReadStream;
    const later: KilnEvent[] = [];
    let cancels = 0;
    const r = tuiReporter({ stdout, stdin, now: () => 0, jobs: 1, cancel: () => cancels++, forceQuit: () => assert.fail("no force quit"), after: (e) => later.push(e) });
    r.events(planned);
    r.events({ type: "built", node: ref("libgreet"), paths: {}, ms: 1500, identical: false });
    r.events({ type: "built", node: ref("hello"), paths: {}, ms: 2500, identical: false });
    r.events({ type: "built", node: ref("greeting"), paths: {}, ms: 500, identical: false });
    r.events({ type: "finished", built: 3, cached: 0, failed: 0, ms: 4600 });
    await r.close();
    const text = out.join("");
    assert.match(text, /✓ built\s+libgreet {2}1\.5s/);
    assert.match(text, /✓ built\s+greeting {2}500ms/);
    assert.match(text, /done: 3 built, 0 from the store, 0 failed in 4\.6s/);
    // printed once: a finished node is not redrawn in later frames
    assert.equal(text.split("built    hello").length - 1, 1);
    const checked: KilnEvent = { type: "checked", node: ref("hello"), output: "out", identical: true, differences: [] };
    r.events(checked);
    assert.deepEqual(later, [checked]);
    assert.equal(cancels, 0);
  });

  test("the reporter in watch mode: one session across rounds, each round's end printed before the next replaces it", async () => {
    const out: string[] = [];
    const stdout = Object.assign(new EventEmitter(), { columns: 100, rows: 30, isTTY: false, write: (s: string) => (out.push(s), true) }) as unknown as NodeJS.WriteStream;
    const stdin = Object.assign(new EventEmitter(), { isTTY: false, setRawMode() {}, setEncoding() {}, resume() {}, pause() {}, ref() {}, unref() {}, read: () => null }) as unknown as NodeJS.ReadStream;
    const later: KilnEvent[] = [];
    const r = tuiReporter({ stdout, stdin, now: () => 0, jobs: 1, cancel: () => {}, forceQuit: () => assert.fail("no force quit"), after: (e) => later.push(e) });
    r.events({ type: "round", round: 1, changed: [] });
    r.events(planned);
    for (const n of ["libgreet", "hello", "greeting"]) r.events({ type: "built", node: ref(n), paths: {}, ms: 1000, identical: false });
    r.events({ type: "finished", built: 3, cached: 0, failed: 0, ms: 3000 });
    r.events({ type: "watching", round: 1, files: 7, outputs: ["/s/abc-greeting"] });
    // the next round at once (a change came during the first): no frame was drawn in between
    r.events({ type: "round", round: 2, changed: ["src/main.c"] });
    r.events(planned);
    r.events({ type: "cached", node: ref("libgreet"), paths: {}, cutoff: false });
    r.events({ type: "built", node: ref("hello"), paths: {}, ms: 700, identical: false });
    r.events({ type: "built", node: ref("greeting"), paths: {}, ms: 300, identical: false });
    r.events({ type: "finished", built: 2, cached: 1, failed: 0, ms: 1000 });
    r.events({ type: "watching", round: 2, files: 7, outputs: ["/s/def-greeting"] });
    await r.close();
    const text = out.join("");
    assert.deepEqual(later, [], "the session did not end at the first round's end");
    assert.match(text, /── round 1 ──/);
    assert.match(text, /done: 3 built, 0 from the store, 0 failed in 3\.0s/);
    assert.match(text, /\/s\/abc-greeting/);
    assert.match(text, /── round 2: changed src\/main\.c ──/);
    assert.match(text, /done: 2 built, 1 from the store, 0 failed in 1\.0s/);
    assert.equal(text.split("built    libgreet").length - 1, 1);
    assert.equal(text.split("built    hello").length - 1, 2);
    assert.match(text, /watch stopped after 2 rounds/);
  });
});
