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

const tick = () => new Promise((r) => setImmediate(r));

function app(state: ViewState, extra: Partial<AppProps> = {}) {
  const props: AppProps = { state, now: 1000, cancelling: false, onQuit: () => {}, rows: 30, columns: 100, ...extra };
  return render(createElement(App, props));
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
});
