// kiln graph on fixtures/hello (libgreet -> hello -> greeting, each on the fixtures' C seed): DOT,
// JSON, states and durations from the store's history, and SVG through Graphviz's dot (a stand-in
// dot when it is missing).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, copyFixture, isSeedNode, kiln, kilnJson, realizeSeed, tempDir } from "./test-helpers/kiln.js";

interface GraphJson {
  roots: Array<{ target: string; drv: string; output: string }>;
  nodes: Array<{ drv: string; name: string; kind: string; deps: string[]; state?: string; lastBuild?: { status: string; ms?: number } }>;
}

const haveDot = spawnSync("dot", ["-V"]).status === 0;

describe("kiln graph", { timeout: 180_000 }, () => {
  let cwd: string;
  let store: string;
  let byName: Map<string, GraphJson["nodes"][number]>;

  const graphJson = async (...extra: string[]) => {
    const r = await kiln(["graph", "--json", ...extra, "greeting"], { cwd, store });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as GraphJson;
  };

  before(async () => {
    cwd = copyFixture("hello");
    store = tempDir("store");
    // the seed in the store already, as on a machine that built anything before
    await realizeSeed("tcc", { cwd, store });
    byName = new Map((await graphJson()).nodes.map((n) => [n.name, n]));
  });
  const own = (nodes: GraphJson["nodes"]) => nodes.filter((n) => !isSeedNode(n.name));
  after(cleanup);

  test("--json: every derivation once, dependencies first, with its edges and the root", async () => {
    const g = await graphJson();
    const seedNames = g.nodes.map((n) => n.name).filter(isSeedNode);
    assert.deepEqual(g.nodes.map((n) => n.name), [...seedNames, "libgreet", "hello", "greeting"], "the seed first: everything depends on it");
    assert.equal(seedNames.at(-1), "seed-tcc");
    const h = (name: string) => byName.get(name)!.drv;
    assert.deepEqual(own(g.nodes).map((n) => [...n.deps].sort()), [[h("seed-tcc")], [h("seed-tcc"), h("libgreet")].sort(), [h("seed-tcc"), h("hello")].sort()]);
    const pos = new Map(g.nodes.map((n, i) => [n.drv, i]));
    assert.ok(g.nodes.every((n, i) => n.deps.every((d) => pos.get(d)! < i)), "every dependency comes before its user");
    assert.deepEqual(g.roots, [{ target: "greeting", drv: h("greeting"), output: "out" }]);
    assert.ok(g.nodes.every((n) => n.state === undefined && n.lastBuild === undefined), "no states unless asked");
    // the hashes are the derivations' own (as kiln eval prints them)
    const ev = await kiln(["eval", "greeting"], { cwd, store });
    for (const n of g.nodes) assert.ok(ev.stdout.split("\n").some((l) => l.startsWith(`${n.drv}  ${n.name}`)), n.name);
  });

  test("DOT: one node per derivation, an edge from each input to its user", async () => {
    const r = await kiln(["graph", "greeting"], { cwd, store });
    assert.equal(r.code, 0, r.stderr);
    const h = (name: string) => byName.get(name)!.drv;
    assert.match(r.stdout, /^digraph kiln \{\n/);
    for (const name of byName.keys()) assert.match(r.stdout, new RegExp(`"${h(name)}" \\[label="${name.replace(/[.+]/g, "\\$&")}"`));
    const edges = [...r.stdout.matchAll(/^ {2}"(\w+)" -> "(\w+)";$/gm)].map((m) => `${m[1]}>${m[2]}`);
    assert.deepEqual(edges.sort(), [...byName.values()].flatMap((n) => n.deps.map((d) => `${d}>${n.drv}`)).sort(), "the JSON's edges");
    for (const e of [`${h("hello")}>${h("greeting")}`, `${h("libgreet")}>${h("hello")}`, `${h("seed-tcc")}>${h("libgreet")}`]) assert.ok(edges.includes(e), e);
    assert.match(r.stdout, /\}\n$/);
  });

  test("--states: to build before a realize; in the store with the recorded build durations after", async () => {
    const before = await graphJson("--states");
    // a store that never built any of them: nothing can be cut off, all three will build; the seed is in the store
    assert.deepEqual(own(before.nodes).map((n) => [n.name, n.state, n.lastBuild]), [["libgreet", "build", undefined], ["hello", "build", undefined], ["greeting", "build", undefined]]);
    assert.ok(before.nodes.filter((n) => isSeedNode(n.name)).every((n) => n.state === "cached"), "the seed is in the store");

    const built = await kilnJson(["realize", "--no-link", "greeting"], { cwd, store });
    const ms = new Map(built.events.filter((e) => e.type === "built").map((e) => [e.node!.name, e.ms as number]));
    // realize's planned event carries the same edges (the TUI draws its tree and critical path from them)
    const planned = built.events.find((e) => e.type === "planned")!.nodes as Array<{ name: string; deps: string[] }>;
    assert.deepEqual(planned.map((n) => [n.name, n.deps]), before.nodes.map((n) => [n.name, n.deps]));
    const afterRealize = await graphJson("--states");
    for (const n of own(afterRealize.nodes)) {
      assert.equal(n.state, "cached", n.name);
      assert.equal(n.lastBuild?.status, "built", n.name);
      assert.equal(typeof n.lastBuild?.ms, "number", n.name);
      assert.ok(ms.has(n.name), `${n.name} was built by that realize`);
    }

    const dot = await kiln(["graph", "--states", "greeting"], { cwd, store });
    assert.equal(dot.code, 0, dot.stderr);
    assert.match(dot.stdout, /label="hello\\nin the store\\nlast build: built \d+\.\ds"/);
    assert.match(dot.stdout, /fillcolor="#c8e6c9"/);
  });

  test("--svg: DOT piped into Graphviz's dot -Tsvg (a stand-in dot records what it got)", async () => {
    const bin = tempDir("fake-dot");
    const argsFile = join(bin, "args");
    writeFileSync(join(bin, "dot"), `#!/bin/sh\necho "$@" > ${argsFile}\nout=""\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && out="$2"; shift; done\ncat > "$out"\n`);
    chmodSync(join(bin, "dot"), 0o755);
    const file = join(tempDir("svg"), "g.svg");
    const r = await kiln(["graph", "--svg", file, "greeting"], { cwd, store, env: { PATH: `${bin}:${process.env.PATH}` } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${file}\n`);
    assert.equal(readFileSync(argsFile, "utf8"), `-Tsvg -o ${file}\n`);
    const got = readFileSync(file, "utf8");
    assert.match(got, /^digraph kiln \{/);
    assert.match(got, /label="libgreet"/);
  });

  test("--svg with the real Graphviz", { skip: haveDot ? false : "Graphviz's dot is not installed here" }, async () => {
    const file = join(tempDir("svg"), "g.svg");
    const r = await kiln(["graph", "--svg", file, "greeting"], { cwd, store });
    assert.equal(r.code, 0, r.stderr);
    const svg = readFileSync(file, "utf8");
    assert.match(svg, /<svg/);
    assert.match(svg, /libgreet/);
  });

  test("--svg without Graphviz: exit 2 and says how to get it", { skip: haveDot ? "Graphviz's dot is installed here" : false }, async () => {
    const file = join(tempDir("svg"), "g.svg");
    const r = await kiln(["graph", "--svg", file, "greeting"], { cwd, store });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--svg needs Graphviz's `dot`, which is not installed/);
    assert.match(r.stderr, /apt-get install graphviz/);
    assert.equal(existsSync(file), false);
  });
});
