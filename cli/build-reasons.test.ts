// Why a node is being built, as the TUI asks for it: on a temporary store with recorded
// derivations and builds, each node of a plan compared with the derivation of its name built
// before it (or new, or built before but gone, or failed last time).
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { hashDerivation, inputPlaceholder, outputPlaceholder, SYSTEM, type Derivation, type DrvHash } from "../engine/derivation.js";
import type { KilnEvent } from "../engine/events.js";
import { LocalStore } from "../store/local-store.js";
import { BuildReasons } from "./build-reasons.js";
import type { NodeView, PlanState } from "./reporters/view-state.js";
import { cleanup, tempDir } from "./test-helpers/kiln.js";

after(cleanup);

const MAIN_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-main.c";
const MAIN_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-main.c";

function drv(store: LocalStore, name: string, o: { env?: Record<string, string>; inputs?: Array<{ hash: string; name: string }>; srcs?: string[] } = {}): string {
  const refs = (o.inputs ?? []).map((i) => inputPlaceholder(i.hash as DrvHash, i.name, "out")).join(" ");
  const d: Derivation = {
    name, system: SYSTEM, builder: "/kiln/host/bin/sh", args: ["-e", "-u", "-c", `make\ncp -r ${refs} $out`],
    env: { ...(o.env ?? {}), out: outputPlaceholder(name, "out") },
    inputDrvs: Object.fromEntries((o.inputs ?? []).map((i) => [i.hash, ["out"]])), inputSrcs: o.srcs ?? [], hostTools: {}, outputs: ["out"],
  };
  const hash = hashDerivation(d);
  store.recordDerivation(hash, name, JSON.stringify({ drv: d, meta: { position: `/r/recipes/${name}.ts:3:14` } }));
  return hash;
}

function build(store: LocalStore, hash: string, name: string, status: "built" | "failed", at: number): void {
  const id = store.startBuild({ drvHash: hash, resolvedHash: `r-${hash}`, name, inputs: {}, logFile: "/dev/null", startedAt: at });
  if (status === "built") store.completeBuild(id, { out: `p-${name}` }, at + 100);
  else store.finishBuild(id, "failed", 1, at + 100);
}

const node = (drvHash: string, name: string, plan: PlanState, status: NodeView["status"] = "waiting"): NodeView => ({
  drv: drvHash, name, index: 0, plan, deps: [], dependents: [], status, logTail: [], logLines: 0,
});

const planned = (nodes: Array<{ drv: string; name: string; state: PlanState }>): Extract<KilnEvent, { type: "planned" }> => ({ type: "planned", nodes });

describe("why a node is being built", () => {
  const NOW = 1_000_000_000;

  test("new, changed itself, changed through an input, and early cutoff still possible", async () => {
    const store = LocalStore.open(tempDir("reasons"));
    let open = true;
    try {
      const lib1 = drv(store, "libgreet", { env: { CFLAGS: "-O2" } });
      const hello1 = drv(store, "hello", { inputs: [{ hash: lib1, name: "libgreet" }], srcs: [MAIN_A] });
      build(store, lib1, "libgreet", "built", NOW - 120_000);
      build(store, hello1, "hello", "built", NOW - 120_000);
      const lib2 = drv(store, "libgreet", { env: { CFLAGS: "-O1" } });
      const hello2 = drv(store, "hello", { inputs: [{ hash: lib2, name: "libgreet" }], srcs: [MAIN_A] });
      const greeting = drv(store, "greeting", { inputs: [{ hash: hello2, name: "hello" }] });

      const r = new BuildReasons({ relativeTo: "/r", now: () => NOW });
      r.planned(store, planned([{ drv: lib2, name: "libgreet", state: "build" }, { drv: hello2, name: "hello", state: "unknown" }, { drv: greeting, name: "greeting", state: "unknown" }]));
      // a build of this run does not become the baseline of what is still being explained
      build(store, lib2, "libgreet", "built", NOW);

      // the view asks while rendering; the answer is worked out off the render path
      assert.deepEqual(r.lines(node(lib2, "libgreet", "build", "running")), ["working out why libgreet is being built…"]);
      for (const [d, name] of [[hello2, "hello"], [greeting, "greeting"]] as const) r.lines(node(d, name, "unknown"));
      await r.settled();
      // from here on the view reads only what was worked out: no database, no git
      store.close();
      open = false;

      assert.equal(r.short(node(lib2, "libgreet", "build", "running")), "env CFLAGS changed");
      assert.deepEqual(r.lines(node(lib2, "libgreet", "build", "running")), [
        `libgreet differs from its last build (${lib1.slice(0, 12)}…, built 2 min ago):`,
        '  [1] env CFLAGS of libgreet: "-O2" → "-O1"',
        "      at recipes/libgreet.ts:3:14",
      ]);

      assert.equal(r.short(node(hello2, "hello", "unknown")), "env CFLAGS changed (in libgreet)");
      const lines = r.lines(node(hello2, "hello", "unknown"))!;
      assert.equal(lines[0], `hello differs from its last build (${hello1.slice(0, 12)}…, built 2 min ago):`);
      assert.deepEqual(lines.slice(1), [
        '  [1] env CFLAGS of libgreet: "-O2" → "-O1"',
        "      at recipes/libgreet.ts:3:14",
        "      in libgreet",
        "it waits for inputs being rebuilt: if they come out identical, early cutoff reuses it",
      ]);
      // reused in the end
      const cut = r.lines(node(hello2, "hello", "unknown", "cutoff"))!;
      assert.match(cut[0]!, /^hello was reused: .* \(early cutoff\)$/);
      assert.doesNotMatch(cut.join("\n"), /it waits for inputs/);

      assert.equal(r.short(node(greeting, "greeting", "unknown")), "new: never built before");
      assert.deepEqual(r.lines(node(greeting, "greeting", "unknown")), ["greeting is new: no derivation of that name was ever built in this store"]);
    } finally {
      if (open) store.close();
    }
  });

  test("a source file changed; built before but no longer in the store; failed last time; in the store", async () => {
    const store = LocalStore.open(tempDir("reasons"));
    let open = true;
    try {
      const a = drv(store, "hello", { srcs: [MAIN_A] });
      build(store, a, "hello", "built", NOW - 3_600_000);
      const b = drv(store, "hello", { srcs: [MAIN_B] });
      const gone = drv(store, "gone");
      build(store, gone, "gone", "built", NOW - 86_400_000 * 3);
      const broken = drv(store, "broken");
      build(store, broken, "broken", "failed", NOW - 30_000);
      const kept = drv(store, "kept");

      const r = new BuildReasons({ relativeTo: "/r", now: () => NOW });
      r.planned(store, planned([
        { drv: b, name: "hello", state: "build" }, { drv: gone, name: "gone", state: "build" },
        { drv: broken, name: "broken", state: "build" }, { drv: kept, name: "kept", state: "cached" },
      ]));
      // the rows' few words: asked for while rendering, worked out in the next turns
      assert.equal(r.short(node(b, "hello", "build")), undefined);
      for (const [d, name] of [[gone, "gone"], [broken, "broken"]] as const) r.short(node(d, name, "build"));
      await r.settled();
      assert.equal(r.short(node(b, "hello", "build")), "source main.c changed");
      // the panels when asked for
      for (const [d, name] of [[b, "hello"], [gone, "gone"], [broken, "broken"]] as const) r.lines(node(d, name, "build"));
      r.lines(node(kept, "kept", "cached", "cached"));
      await r.settled();
      store.close();
      open = false;
      assert.match(r.lines(node(b, "hello", "build"))![1]!, /^ {2}\[1\] source file main\.c changed \(content aaaaaaaa… → bbbbbbbb…\)$/);
      assert.equal(r.short(node(gone, "gone", "build")), "output no longer in the store");
      assert.deepEqual(r.lines(node(gone, "gone", "build")), ["gone is unchanged since its build 3 days ago, but its output is no longer in the store (collected by kiln gc?)"]);
      assert.equal(r.short(node(broken, "broken", "build")), "last build failed");
      assert.deepEqual(r.lines(node(broken, "broken", "build")), ["broken: its last build, of this same derivation, failed 30 s ago (kiln log broken)"]);
      assert.deepEqual(r.lines(node(kept, "kept", "cached", "cached")), ["kept is not built: its output is in the store"]);
      // nothing known about a node the plan did not name
      assert.equal(r.short(node("f".repeat(64), "other", "build")), undefined);
      assert.equal(r.lines(node("f".repeat(64), "other", "build")), undefined);
    } finally {
      if (open) store.close();
    }
  });
});
