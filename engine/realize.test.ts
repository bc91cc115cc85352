// The realizer in-process, with a recording fake builder (engine/test-helpers/fake-builder.ts)
// and a real store: caching, early cutoff, keep-going and cancellation are proved by counting
// builder invocations, substitution by counting what was built (none) and what was imported.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { KilnError } from "../store/errors.js";
import { LocalStore } from "../store/local-store.js";
import type { StorePathName } from "../store/paths.js";
import { derivation, sh, type Drv } from "./api.js";
import type { Context } from "./context.js";
import type { ResolvedHash } from "./derivation.js";
import { Evaluator } from "./evaluate.js";
import { HostTools } from "./hosttools.js";
import type { KilnEvent } from "./events.js";
import { Realizer } from "./realize.js";
import { substitutionKey, type Realisation, type SubstitutableInfo, type Substituter } from "./substituter.js";
import { FakeBuilder } from "./test-helpers/fake-builder.js";
import { stubHostTools } from "./test-helpers/golden.js";

const tmp = mkdtempSync(join(tmpdir(), "kiln-realize-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let stores = 0;

interface Harness {
  store: LocalStore;
  builder: FakeBuilder;
  events: KilnEvent[];
  realize(targets: Drv[], o?: { keepGoing?: boolean; jobs?: number; signal?: AbortSignal; substituters?: Substituter[]; hostTools?: HostTools }): ReturnType<Realizer["realize"]>;
}

function harness(systems?: string[]): Harness {
  const store = LocalStore.open(join(tmp, `store-${stores++}`));
  after(() => store.close());
  const builder = new FakeBuilder(store, systems);
  const events: KilnEvent[] = [];
  return {
    store, builder, events,
    realize(targets, o = {}) {
      const ctx: Context = {
        store, builder, substituters: o.substituters ?? [], hostTools: o.hostTools ?? stubHostTools().hostTools, events: (e) => events.push(e),
        clock: Date.now, signal: o.signal ?? new AbortController().signal, fileCache: new Map(),
        config: { jobs: o.jobs ?? 4, buildCores: 1, keepGoing: o.keepGoing ?? false, mirrors: [], fetchEnv: {} },
      };
      const ev = new Evaluator(ctx);
      const roots = targets.map((t) => ev.evaluate(t).node);
      return new Realizer(ctx).realize(ev.graph, roots);
    },
  };
}

/** A fake build step: CONTENT is its output, READ the inputs whose content it appends. */
function step(name: string, content: string, inputs: Drv[] = [], env: Record<string, string> = {}): Drv {
  return derivation({ name, builder: "/fake/builder", env: { CONTENT: content, READ: sh`${inputs}`, ...env } });
}

const names = (events: KilnEvent[], type: KilnEvent["type"]) =>
  events.filter((e) => e.type === type).map((e) => (e as { node: { name: string } }).node.name).sort();

/** The finished event's counts: every planned node once. */
const summary = (events: KilnEvent[]) => {
  const f = events.find((e) => e.type === "finished") as Extract<KilnEvent, { type: "finished" }>;
  return { built: f.built, cached: f.cached, substituted: f.substituted ?? 0, failed: f.failed, cancelled: f.cancelled ?? 0, skipped: f.skipped ?? 0 };
};

describe("Realizer with a fake builder", () => {
  test("a second realize of the same graph invokes the builder zero times", async () => {
    const h = harness();
    const lib = step("lib", "lib");
    const app = step("app", "app", [lib]);
    const first = await h.realize([app]);
    assert.equal(h.builder.requests.length, 2);
    assert.equal(first.built, 2);
    const second = await h.realize([app]);
    assert.equal(h.builder.requests.length, 2, "nothing built again");
    assert.equal(second.cached, 2);
    assert.deepEqual(second.outputs.get(second.outputs.keys().next().value!), first.outputs.get(first.outputs.keys().next().value!));
  });

  test("an input rebuilt bit-identically cuts the rebuild off: its dependents are not built", async () => {
    const h = harness();
    const mk = (flag: string) => {
      // UNUSED changes the derivation (and its hash) but not what the fake build writes
      const lib = step("lib", "same bytes", [], { UNUSED: flag });
      const mid = step("mid", "mid", [lib]);
      return step("top", "top", [mid]);
    };
    await h.realize([mk("a")]);
    assert.equal(h.builder.requests.length, 3);
    h.events.length = 0;
    await h.realize([mk("b")]);
    assert.deepEqual(h.builder.requests.slice(3).map((r) => r.name), ["lib"], "only lib is rebuilt");
    const cut = h.events.filter((e) => e.type === "cached" && e.cutoff).map((e) => (e as { node: { name: string } }).node.name).sort();
    assert.deepEqual(cut, ["mid", "top"]);
    const built = h.events.find((e) => e.type === "built") as Extract<KilnEvent, { type: "built" }>;
    assert.equal(built.identical, true, "lib's rebuild is reported identical");
  });

  test("an input whose output changes rebuilds everything above it", async () => {
    const h = harness();
    const mk = (c: string) => step("top", "top", [step("mid", "mid", [step("lib", c)])]);
    await h.realize([mk("v1")]);
    await h.realize([mk("v2")]);
    assert.deepEqual(h.builder.requests.slice(3).map((r) => r.name), ["lib", "mid", "top"]);
  });

  test("a failure stops the run; with keep-going, independent work still finishes and dependents are skipped", async () => {
    const graph = () => {
      const bad = step("bad", "x", [], { EXIT: "3" });
      const slow = step("slow", "slow", [], { DELAY_MS: "200" });
      return [step("after-bad", "y", [bad]), step("after-slow", "z", [slow])];
    };
    const h = harness();
    const r = await h.realize(graph(), { jobs: 4 });
    assert.deepEqual(r.failed.map((f) => f.node.name), ["bad"]);
    assert.equal(h.builder.count("after-bad"), 0);
    assert.equal(h.builder.count("after-slow"), 0, "without --keep-going nothing new starts after a failure");
    assert.deepEqual(names(h.events, "cancelled"), ["after-slow", "slow"], "the run stopped them");
    assert.deepEqual(summary(h.events), { built: 0, cached: 0, substituted: 0, failed: 1, cancelled: 2, skipped: 1 }, "4 nodes, each counted once");

    const k = harness();
    const rk = await k.realize(graph(), { jobs: 4, keepGoing: true });
    assert.deepEqual(rk.failed.map((f) => f.node.name), ["bad"]);
    assert.equal(k.builder.count("after-slow"), 1, "independent work finishes");
    assert.equal(k.builder.count("after-bad"), 0);
    assert.deepEqual(names(k.events, "skipped"), ["after-bad"]);
    const failed = k.events.find((e) => e.type === "failed") as Extract<KilnEvent, { type: "failed" }>;
    assert.ok(failed.logTail.includes("failing with 3"), "the failure carries its log tail");
    assert.deepEqual(summary(k.events), { built: 2, cached: 0, substituted: 0, failed: 1, cancelled: 0, skipped: 1 });
  });

  test("a node skipped because its input was skipped names the failure behind it", async () => {
    const h = harness();
    const bad = step("bad", "x", [], { EXIT: "3" });
    const mid = step("mid", "y", [bad]);
    await h.realize([step("top", "z", [mid])], { keepGoing: true });
    const skips = h.events.filter((e) => e.type === "skipped") as Array<Extract<KilnEvent, { type: "skipped" }>>;
    assert.deepEqual(skips.map((e) => [e.node.name, e.because.name, e.failed.name]), [["mid", "bad", "bad"], ["top", "mid", "bad"]]);
    assert.deepEqual(summary(h.events), { built: 0, cached: 0, substituted: 0, failed: 1, cancelled: 0, skipped: 2 });
  });

  test("cancelling during a build registers nothing and says so", async () => {
    const h = harness();
    const ac = new AbortController();
    const lib = step("lib", "lib");
    const slow = step("slow", "slow", [lib], { DELAY_MS: "10000" });
    const p = h.realize([step("top", "top", [slow])], { signal: ac.signal });
    while (h.builder.count("slow") === 0) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    await assert.rejects(p, (e: unknown) => e instanceof KilnError && e.code === "CANCELLED");
    assert.equal(h.builder.count("top"), 0);
    const paths = h.store.allPaths().map((p) => p.path.slice(33));
    assert.deepEqual(paths, ["lib"], "only the finished build was registered");
    assert.deepEqual(names(h.events, "cancelled"), ["slow", "top"]);
    assert.deepEqual(summary(h.events), { built: 1, cached: 0, substituted: 0, failed: 0, cancelled: 2, skipped: 0 }, "3 nodes, each counted once");
  });

  test("a host tool that changes while a build runs it fails the build: its output is not registered; the next evaluation builds", async () => {
    const dir = join(tmp, "host-bin");
    mkdirSync(dir);
    const tool = join(dir, "mytool");
    writeFileSync(tool, "#!/bin/sh\necho one\n");
    chmodSync(tool, 0o755);
    // each evaluation looks at the host afresh, as each kiln run does
    const host = () => new HostTools([dir], undefined, [tmp]);
    const uses = () => derivation({ name: "uses-tool", builder: "/fake/builder", hostTools: ["mytool"], env: { CONTENT: "made with mytool" } });
    const h = harness();
    h.builder.onBuild = () => writeFileSync(tool, "#!/bin/sh\necho two, upgraded meanwhile\n");
    const r = await h.realize([uses()], { hostTools: host() });
    assert.equal(h.builder.count("uses-tool"), 1, "the build ran");
    assert.equal(r.failed[0]?.error.code, "BUILD_FAILED");
    assert.match(r.failed[0]!.error.message, new RegExp(`host tool mytool \\(${tool}\\) changed while uses-tool was building; its output is not registered`));
    assert.deepEqual(h.store.allPaths(), [], "nothing registered");
    assert.equal(h.store.lastBuildByName("uses-tool")!.status, "failed");

    h.builder.onBuild = undefined;
    const again = await h.realize([uses()], { hostTools: host() });
    assert.deepEqual(again.failed, []);
    assert.equal(h.builder.count("uses-tool"), 2, "built again, against the tool as it is now");
    assert.deepEqual(h.store.allPaths().map((p) => p.path.slice(33)), ["uses-tool"]);
  });

  test("a build that produces no output fails with OUTPUT_MISSING, and its build record says failed", async () => {
    const h = harness();
    const r = await h.realize([step("forgetful", "x", [], { NO_OUTPUT: "1" })], { keepGoing: true });
    assert.equal(r.failed[0]!.error.code, "OUTPUT_MISSING");
    assert.equal(h.store.lastBuildByName("forgetful")!.status, "failed");
  });

  test("a derivation for another system is refused before anything builds (SYSTEM_UNSUPPORTED), naming both systems", async () => {
    const h = harness(["x86_64-linux"]);
    const lib = step("native-lib", "lib");
    const arm = derivation({ name: "arm-thing", system: "aarch64-linux", builder: "/fake/builder", env: { READ: sh`${lib}` } });
    await assert.rejects(h.realize([arm], { keepGoing: true }), (e: unknown) => {
      assert.ok(e instanceof KilnError);
      assert.equal(e.code, "SYSTEM_UNSUPPORTED");
      assert.match(e.message, /arm-thing \(aarch64-linux\)/);
      assert.match(e.message, /x86_64-linux/);
      return true;
    });
    assert.equal(h.builder.requests.length, 0, "refused before anything was built, its native input included");
    // the same request goes through where the builder can build it
    const a = harness(["x86_64-linux", "aarch64-linux"]);
    await a.realize([arm]);
    assert.deepEqual(a.builder.requests.map((r) => [r.name, r.system]), [["native-lib", "x86_64-linux"], ["arm-thing", "aarch64-linux"]]);
  });

  test("with one job slot, the longest chain starts first (critical-path priority)", async () => {
    const h = harness();
    // no recorded durations: every node counts 1 s, so chain-a1 (two nodes above it before the
    // root) outranks short (one); short asks for the slot first (it has no input to wait for),
    // so first-come order would start it first
    const a1 = step("chain-a1", "a1");
    const chain = step("chain-a2", "a2", [a1]);
    const short = step("short", "s");
    await h.realize([step("root", "r", [short, chain])], { jobs: 1 });
    assert.deepEqual(h.builder.started, ["chain-a1", "short", "chain-a2", "root"]);
    assert.equal(h.builder.maxRunning, 1);
  });
});

/** A substituter serving from another real store: what a binary cache does, minus the network. */
class StoreSubstituter implements Substituter {
  readonly name = "test://other-store";
  queries = 0;
  /** how often its priority was asked (ranking the caches) */
  ranked = 0;
  fetched: string[] = [];
  tamper = false;
  /** answer realisations but offer no path: a cache that holds only records */
  recordsOnly = false;
  /** answer only for outputs of these names */
  only: Set<string> | undefined;
  constructor(private readonly from: LocalStore) {}
  async priority(): Promise<number> {
    this.ranked++;
    return 40;
  }
  private info(p: StorePathName): SubstitutableInfo {
    const info = this.from.pathInfo(p)!;
    return { path: p, narDigest: info.narDigest, narSize: info.narSize, references: info.references, ...(info.ca ? { ca: info.ca } : {}) };
  }
  async query(keys: Array<{ resolved: ResolvedHash; output: string }>): Promise<Map<string, Realisation>> {
    this.queries++;
    const m = new Map<string, Realisation>();
    for (const k of keys) {
      const p = this.from.realisation(k.resolved, k.output);
      if (p && (!this.only || this.only.has(p.slice(33)))) m.set(substitutionKey(k.resolved, k.output), this.recordsOnly ? { path: p } : { path: p, info: this.info(p) });
    }
    return m;
  }
  async pathInfos(paths: StorePathName[]): Promise<Map<StorePathName, SubstitutableInfo>> {
    return new Map(paths.filter((p) => this.from.isValid(p)).map((p) => [p, this.info(p)]));
  }
  async fetch(info: SubstitutableInfo, dest: string): Promise<void> {
    this.fetched.push(info.path);
    const text = readFileSync(this.from.hostPath(info.path), "utf8");
    writeFileSync(dest, this.tamper ? text + "tampered" : text);
  }
}

describe("Realizer with a substituter", () => {
  const graph = () => step("app", "app", [step("lib", "lib")]);
  /** app refers to lib at run time (its path is in app's output) and was built with tool, which it does not refer to */
  const withClosure = () => {
    const lib = step("lib", "lib");
    return derivation({ name: "app", builder: "/fake/builder", env: { CONTENT: sh`app uses ${lib}`, READ: sh`${step("tool", "tool")}` } });
  };

  test("a substitutable target is fetched with its closure, not its build inputs; the plan says substitutable", async () => {
    const a = harness();
    await a.realize([withClosure()]);
    const b = harness();
    const sub = new StoreSubstituter(a.store);
    const r = await b.realize([withClosure()], { substituters: [sub] });
    assert.equal(b.builder.requests.length, 0, "nothing is built");
    assert.equal(r.substituted, 1);
    assert.deepEqual(names(b.events, "substituted"), ["app"]);
    const planned = b.events.find((e) => e.type === "planned") as Extract<KilnEvent, { type: "planned" }>;
    assert.deepEqual(planned.nodes.map((n) => `${n.name}:${n.state}`), ["app:substitutable"], "tool and lib are not visited");
    assert.deepEqual(sub.fetched.map((p) => p.slice(33)).sort(), ["app", "lib"], "lib came as app's reference; tool did not come");
    for (const p of sub.fetched) assert.equal(b.store.pathInfo(p as StorePathName)!.narDigest, a.store.pathInfo(p as StorePathName)!.narDigest);
    // now local: the next realize fetches nothing (its build inputs are still looked up in the
    // cache's records: they are what app's key is made of)
    const again = await b.realize([withClosure()], { substituters: [sub] });
    assert.equal(again.cached, 1);
    assert.equal(sub.fetched.length, 2);
  });

  test("a store that has the whole graph asks no cache, not even for the caches' priorities", async () => {
    const a = harness();
    await a.realize([graph()]);
    const [one, two] = [new StoreSubstituter(a.store), new StoreSubstituter(a.store)];
    const r = await a.realize([graph()], { substituters: [one, two] });
    assert.equal(r.cached, 2);
    assert.deepEqual([one.queries, one.ranked, two.queries, two.ranked], [0, 0, 0, 0]);
  });

  test("a miss the plan asked about is not asked again when the node is built", async () => {
    const a = harness();
    await a.realize([step("elsewhere", "not this graph")]);
    const b = harness();
    const sub = new StoreSubstituter(a.store);
    await b.realize([graph()], { substituters: [sub] });
    assert.equal(b.builder.requests.length, 2, "lib and app are built");
    // the plan: one query for the wave it could resolve (lib); app's hash is known only once lib
    // is built, so it is asked then, once
    assert.equal(sub.queries, 2);
  });

  test("a realisation the substituter knows but cannot provide still resolves what depends on it", async () => {
    const a = harness();
    await a.realize([graph()]);
    const b = harness();
    const records = new StoreSubstituter(a.store);
    records.recordsOnly = true;
    const full = new StoreSubstituter(a.store);
    full.only = new Set(["app"]);
    // lib is known only by its record: its dependent app is resolved from it and substituted
    const r = await b.realize([graph()], { substituters: [records, full] });
    assert.equal(b.builder.requests.length, 0, "lib was not built: app does not refer to it");
    assert.equal(r.substituted, 1);
    assert.deepEqual(full.fetched.map((p) => p.slice(33)), ["app"]);
  });

  test("a substituted output is a cache hit for early cutoff: a rebuilt input that comes out the same lets its dependent be substituted", async () => {
    const a = harness();
    const lib = (flag: string) => step("lib", "lib", [], { FLAG: flag });
    await a.realize([step("app", "app", [lib("1")])]);
    const b = harness();
    const r = await b.realize([step("app", "app", [lib("2")])], { substituters: [new StoreSubstituter(a.store)] });
    assert.deepEqual(b.builder.requests.map((q) => q.name), ["lib"], "lib (another derivation) is built, app is not");
    assert.deepEqual(names(b.events, "substituted"), ["app"]);
    assert.equal(r.built, 1);
  });

  test("a fixed output is substituted by its derivation hash, so that what depends on it can be planned", async () => {
    const content = "pinned bytes";
    const src = () => derivation({ name: "src.tar", builder: "/fake/builder", env: { CONTENT: content }, sha256: createHash("sha256").update(content).digest("hex") });
    const a = harness();
    await a.realize([step("app", "app", [src()])]);
    const b = harness();
    const r = await b.realize([step("app", "app", [src()])], { substituters: [new StoreSubstituter(a.store)] });
    assert.equal(b.builder.requests.length, 0, "neither fetched nor built");
    const planned = b.events.find((e) => e.type === "planned") as Extract<KilnEvent, { type: "planned" }>;
    assert.deepEqual(planned.nodes.map((n) => `${n.name}:${n.state}`), ["app:substitutable"]);
    assert.equal(r.substituted, 1);
  });

  test("a tampered substitute fails its hash on import and is not registered", async () => {
    const a = harness();
    await a.realize([graph()]);
    const b = harness();
    const sub = new StoreSubstituter(a.store);
    sub.tamper = true;
    const r = await b.realize([graph()], { substituters: [sub], keepGoing: true });
    assert.equal(r.failed[0]!.error.code, "STORE_CORRUPT");
    assert.match(r.failed[0]!.error.message, /refused to import/);
    assert.equal(b.store.allPaths().length, 0, "nothing entered the store");
  });

  test("a substituter that has nothing leaves the build to the builder", async () => {
    const empty = harness();
    const b = harness();
    const r = await b.realize([graph()], { substituters: [new StoreSubstituter(empty.store)] });
    assert.equal(r.built, 2);
    assert.equal(r.substituted, 0);
  });
});
