// The plain reporter (one line per state change, timestamps, the failing node's log tail, a
// summary) and the JSON lines reporter (every event, with its time), on a scripted event stream.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { KilnEvent } from "../../engine/events.js";
import { jsonReporter } from "./json.js";
import { plainReporter } from "./plain.js";

const ref = (name: string) => ({ drv: `h-${name}`, name });
const events: KilnEvent[] = [
  { type: "evaluated", targets: ["app"], derivations: 3, ms: 7 },
  { type: "planned", nodes: [{ ...ref("lib"), state: "build", deps: [] }, { ...ref("mid"), state: "unknown", deps: ["h-lib"] }, { ...ref("app"), state: "unknown", deps: ["h-mid"] }] },
  { type: "started", node: ref("lib"), resolved: "r", kind: "build" },
  { type: "log", node: ref("lib"), line: "cc lib.c" },
  { type: "built", node: ref("lib"), paths: {}, ms: 1500, identical: true },
  { type: "cached", node: ref("mid"), paths: {}, cutoff: true },
  { type: "started", node: ref("app"), resolved: "r2", kind: "build" },
  { type: "failed", node: ref("app"), message: "builder for app exited with code 2", logTail: ["make: *** [all] Error 2"] },
  { type: "finished", built: 1, cached: 1, failed: 1, ms: 2500 },
];

const watch: KilnEvent[] = [
  { type: "round", round: 1, changed: [] },
  { type: "watching", round: 1, files: 4, outputs: ["/s/abc-app"] },
  { type: "round", round: 2, changed: ["recipes/index.ts", "src/app.c"] },
  { type: "watching", round: 2, files: 4, outputs: [], error: { code: "RECIPE_ERROR", message: "cannot compile the recipes: index.ts:3: Expected \")\"" } },
];

function runPlain(logs: boolean): string {
  let out = "";
  let t = 0;
  const r = plainReporter({ write: (s) => (out += s), logs, now: () => t });
  for (const e of events) {
    t += 500;
    r(e);
  }
  return out;
}

describe("plain reporter", () => {
  test("one timestamped line per state change, the failure's log tail, the summary", () => {
    assert.equal(
      runPlain(false),
      [
        "[   0.5s] evaluated app: 3 derivations in 7 ms",
        "[   1.0s] planned 3 derivations: 0 in the store, 0 to fetch, 1 to build, 2 to build unless cut off early",
        "[   1.5s] building lib",
        "[   2.5s] built    lib in 1.5s (identical to an earlier build)",
        "[   3.0s] cut off  mid: inputs rebuilt identically, output reused",
        "[   3.5s] building app",
        "[   4.0s] FAILED   app: builder for app exited with code 2",
        "  last 1 log lines of app:",
        "  | make: *** [all] Error 2",
        "[   4.5s] done: 1 built, 1 from the store, 1 failed in 2.5s",
        "",
      ].join("\n"),
    );
  });

  test("-L prints build log lines", () => {
    assert.match(runPlain(true), /^lib> cc lib\.c$/m);
    assert.doesNotMatch(runPlain(false), /cc lib\.c/);
  });

  test("watch rounds: a line when each starts (and what changed), one when it ends (and its error)", () => {
    let out = "";
    let t = 0;
    const r = plainReporter({ write: (s) => (out += s), logs: false, now: () => t });
    for (const e of watch) {
      t += 1000;
      r(e);
    }
    assert.equal(
      out,
      [
        "[   1.0s] round 1",
        "[   2.0s] round 1 done; watching 4 files and folders for changes (Ctrl-C to stop)",
        "[   3.0s] round 2: changed recipes/index.ts, src/app.c",
        'error: cannot compile the recipes: index.ts:3: Expected ")"',
        "[   4.0s] round 2 failed; watching 4 files and folders for changes (Ctrl-C to stop)",
        "",
      ].join("\n"),
    );
  });
});

describe("JSON lines reporter", () => {
  test("every event, one JSON object per line, with its time (watch rounds too)", () => {
    let out = "";
    const r = jsonReporter((s) => (out += s), () => 42);
    const all = [...watch.slice(0, 1), ...events, ...watch.slice(1)];
    for (const e of all) r(e);
    const lines = out.trimEnd().split("\n").map((l) => JSON.parse(l) as KilnEvent & { time: number });
    assert.equal(lines.length, all.length);
    assert.deepEqual(lines.map(({ time, ...e }) => (assert.equal(time, 42), e)), all);
  });
});
