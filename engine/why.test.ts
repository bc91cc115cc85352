// `why` on plain derivation JSON: root causes found once, blast radius, early cutoff.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { hashDerivation, inputPlaceholder, outputPlaceholder, SYSTEM, type Derivation, type DerivationMeta, type DrvHash, type HostToolFingerprint } from "./derivation.js";
import { describeCause, explain, locateKey, renderWhy, summarizeCause, type Realised, type StoredDerivation, type WhyLookup } from "./why.js";

const gcc = (version: string, digest: string): HostToolFingerprint => ({
  path: "/usr/bin/gcc", package: "gcc-12", version, digest, commands: { gcc: "/usr/bin/gcc" },
});

interface Spec {
  name: string;
  env?: Record<string, string>;
  script?: string;
  inputs?: Array<{ hash: string; name: string }>;
  srcs?: string[];
  tools?: Record<string, HostToolFingerprint>;
  fixed?: string;
  meta?: DerivationMeta;
}

/** A small in-memory history: derivations by hash, and what each one realised to. */
class History implements WhyLookup {
  readonly drvs = new Map<string, StoredDerivation>();
  readonly real = new Map<string, Realised>();
  add(s: Spec, realised?: Realised): string {
    const refs = (s.inputs ?? []).map((i) => inputPlaceholder(i.hash as DrvHash, i.name, "out")).join(" ");
    const drv: Derivation = {
      name: s.name, system: SYSTEM, builder: "/kiln/host/bin/sh",
      args: ["-e", "-u", "-c", `${s.script ?? "make"}\ncp -r ${refs} $out`],
      env: { ...(s.env ?? {}), out: outputPlaceholder(s.name, "out") },
      inputDrvs: Object.fromEntries((s.inputs ?? []).map((i) => [i.hash, ["out"]])),
      inputSrcs: [...(s.srcs ?? [])].sort(),
      hostTools: s.tools ?? {}, outputs: ["out"], ...(s.fixed ? { fixed: { sha256: s.fixed } } : {}),
    };
    const hash = hashDerivation(drv);
    this.drvs.set(hash, { drv, meta: s.meta ?? { position: `/r/recipes/${s.name}.ts:3:14` } });
    if (realised) this.real.set(hash, realised);
    return hash;
  }
  load = (h: string) => this.drvs.get(h);
  realised = (h: string) => this.real.get(h);
}

const SRC_A = "0123456789abcdfghijklmnpqrsvwxyz-greet.c";
const SRC_B = "zyxwvsrqpnmlkjihgfdcba9876543210-greet.c";
const MAIN = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-main.c";

describe("explain", () => {
  test("an env change in a leaf is the one root cause; its dependents make up the blast radius", () => {
    const h = new History();
    const lib1 = h.add({ name: "lib", env: { CFLAGS: "-O2" } }, { resolved: "r1", outputs: { out: "p1-lib" } });
    const app1 = h.add({ name: "app", inputs: [{ hash: lib1, name: "lib" }], srcs: [MAIN] }, { resolved: "r2", outputs: { out: "p2-app" } });
    const lib2 = h.add({ name: "lib", env: { CFLAGS: "-O0" } }, { resolved: "r3", outputs: { out: "p3-lib" } });
    const app2 = h.add({ name: "app", inputs: [{ hash: lib2, name: "lib" }], srcs: [MAIN] }, { resolved: "r4", outputs: { out: "p4-app" } });

    const r = explain(app1, app2, h);
    assert.equal(r.changed, 2);
    assert.equal(r.causes.length, 1, "the input placeholder in app's script is not a cause of its own");
    const c = r.causes[0]!;
    assert.deepEqual(c.cause, { kind: "env", drv: "lib", key: "CFLAGS", old: "-O2", new: "-O0", position: "/r/recipes/lib.ts:3:14" });
    assert.deepEqual(c.blast.changed.sort(), ["app", "lib"]);
    assert.deepEqual(c.blast.rebuilt.sort(), ["app", "lib"]);
    assert.deepEqual(c.blast.identical, []);
    assert.equal(r.root!.status, "rebuilt");
    assert.equal(r.root!.inputs[0]!.name, "lib");
    assert.deepEqual(describeCause(c.cause, { relativeTo: "/r" }), ['env CFLAGS of lib: "-O2" → "-O0"', "at recipes/lib.ts:3:14"]);
  });

  test("a source edit that builds bit-identical output is cut off early: dependents are cache hits", () => {
    const h = new History();
    const lib1 = h.add({ name: "lib", srcs: [SRC_A] }, { resolved: "r1", outputs: { out: "same-lib" } });
    const app1 = h.add({ name: "app", inputs: [{ hash: lib1, name: "lib" }] }, { resolved: "r2", outputs: { out: "p-app" } });
    const top1 = h.add({ name: "top", inputs: [{ hash: app1, name: "app" }] }, { resolved: "r5", outputs: { out: "p-top" } });
    const lib2 = h.add({ name: "lib", srcs: [SRC_B] }, { resolved: "r3", outputs: { out: "same-lib" } });
    // same resolved hash as before: the input resolved to the same store path
    const app2 = h.add({ name: "app", inputs: [{ hash: lib2, name: "lib" }] }, { resolved: "r2", outputs: { out: "p-app" } });
    const top2 = h.add({ name: "top", inputs: [{ hash: app2, name: "app" }] }, { resolved: "r5", outputs: { out: "p-top" } });

    const r = explain(top1, top2, h);
    assert.equal(r.causes.length, 1);
    const c = r.causes[0]!;
    assert.deepEqual(c.cause, { kind: "source", file: "greet.c", old: SRC_A, new: SRC_B });
    assert.deepEqual(c.at, ["lib"]);
    assert.deepEqual(c.blast.rebuilt, ["lib"]);
    assert.deepEqual(c.blast.identical, ["lib"]);
    assert.deepEqual(c.blast.cached.sort(), ["app", "top"]);
    const text = renderWhy(r).join("\n");
    assert.match(text, /source file greet\.c changed/);
    assert.match(text, /early cutoff at lib/);
    assert.match(text, /not rebuilt thanks to early cutoff: (app, top|top, app)/);
  });

  test("a host tool upgrade shared by several derivations is one root cause, with the package versions, named a host change (impure)", () => {
    const h = new History();
    const old = { gcc: gcc("12.2.0-14", "a".repeat(64)) };
    const now = { gcc: gcc("12.2.0-15", "b".repeat(64)) };
    const lib1 = h.add({ name: "lib", tools: old });
    const app1 = h.add({ name: "app", tools: old, inputs: [{ hash: lib1, name: "lib" }] });
    const lib2 = h.add({ name: "lib", tools: now });
    const app2 = h.add({ name: "app", tools: now, inputs: [{ hash: lib2, name: "lib" }] });

    const r = explain(app1, app2, h);
    assert.equal(r.causes.length, 1, "printed once, not once per derivation");
    const c = r.causes[0]!;
    assert.equal(c.cause.kind, "hostTool");
    assert.equal(c.cause.kind === "hostTool" && c.cause.impure, true, "the JSON form says so too");
    assert.deepEqual(c.at.sort(), ["app", "lib"]);
    assert.equal(describeCause(c.cause)[0], `host change (impure): host tool gcc version: gcc-12 12.2.0-14 [aaaaaaaaaaaa] → gcc-12 12.2.0-15 [bbbbbbbbbbbb]`);
    const text = renderWhy(r).join("\n");
    assert.match(text, /\[1\] host change \(impure\): host tool gcc version/);
    assert.match(text, /runs this tool from the host, outside its inputs/);
    assert.equal(r.root!.status, "unknown", "no realisations recorded in this history");
  });

  test("a rebuilt binary with the same package version is reported by digest", () => {
    const h = new History();
    const a = h.add({ name: "lib", tools: { gcc: gcc("12.2.0-14", "a".repeat(64)) } });
    const b = h.add({ name: "lib", tools: { gcc: gcc("12.2.0-14", "c".repeat(64)) } });
    const [c] = explain(a, b, h).causes;
    assert.match(describeCause(c!.cause)[0]!, /^host change \(impure\): host tool gcc fingerprint: .*\[aaaaaaaaaaaa\] → .*\[cccccccccccc\]$/);
  });

  test("a fixed-output hash bump is reported with its source change, not as a script change", () => {
    const h = new History();
    const meta = (v: string): DerivationMeta => ({ position: "/r/recipes/src.ts:5:1", sources: [{ deb: { package: "linux-source-6.1", version: v } }] });
    const f1 = h.add({ name: "linux-src", fixed: "1".repeat(64), meta: meta("6.1.1-1") });
    const k1 = h.add({ name: "kernel", inputs: [{ hash: f1, name: "linux-src" }] });
    const f2 = h.add({ name: "linux-src", fixed: "2".repeat(64), meta: meta("6.1.2-1") });
    const k2 = h.add({ name: "kernel", inputs: [{ hash: f2, name: "linux-src" }] });
    const r = explain(k1, k2, h);
    assert.equal(r.causes.length, 1);
    const c = r.causes[0]!.cause;
    assert.equal(c.kind, "fixed");
    assert.deepEqual(describeCause(c), [
      "fixed output linux-src: sha256 111111111111… → 222222222222…",
      "at /r/recipes/src.ts:5:1",
      "- deb linux-source-6.1 6.1.1-1",
      "+ deb linux-source-6.1 6.1.2-1",
    ]);
  });

  test("script edits, added inputs and unrecorded derivations are named", () => {
    const h = new History();
    const dep = h.add({ name: "dep" });
    const a = h.add({ name: "app", script: "make\nmake install" });
    const b = h.add({ name: "app", script: "make -j4\nmake install", inputs: [{ hash: dep, name: "dep" }] });
    const kinds = explain(a, b, h).causes.map((c) => c.cause);
    assert.deepEqual(kinds.map((c) => c.kind).sort(), ["input", "script"]);
    const script = kinds.find((c) => c.kind === "script")!;
    const lines = describeCause(script);
    assert.ok(lines.includes("- make") && lines.includes("+ make -j4"), lines.join("\n"));
    assert.ok(!lines.includes("- make install"), "unchanged lines are not listed");

    const missing = explain("f".repeat(64), b, h);
    assert.equal(missing.causes[0]!.cause.kind, "unrecorded");
    assert.deepEqual(missing.causes[0]!.blast.changed, ["app"]);
  });

  test("one constant shared by several derivations is one root cause: the recipe edit, with each derivation's change", () => {
    const h = new History();
    const flags = (opt: string) => `// flags every app shares\nexport const OPT = "${opt}";\n`;
    const index = 'import { OPT } from "./flags.js";\nconst app = (name: string) => derivation({ name, env: { CFLAGS: OPT } });\n';
    const side = (opt: string) => ({ root: "/p", files: new Map([["recipes/flags.ts", flags(opt)], ["recipes/index.ts", index]]) });
    const tree = (opt: string, outs: [string, string, string]) => {
      const a1 = h.add({ name: "app1", env: { CFLAGS: opt } }, { resolved: `r1${opt}`, outputs: { out: outs[0] } });
      const a2 = h.add({ name: "app2", env: { CFLAGS: opt } }, { resolved: `r2${opt}`, outputs: { out: outs[1] } });
      return h.add({ name: "all", inputs: [{ hash: a1, name: "app1" }, { hash: a2, name: "app2" }] }, { resolved: `r3${opt}`, outputs: { out: outs[2] } });
    };
    const before = tree("-O1", ["p1", "p2", "p3"]);
    // app1 comes out identical, app2 does not: all is rebuilt anyway, so app1 cut nothing off
    const after = tree("-O2", ["p1", "p2b", "p3b"]);

    const r = explain(before, after, h, { recipes: { old: side("-O1"), new: side("-O2") } });
    assert.equal(r.causes.length, 1, "one edit, one root cause");
    const c = r.causes[0]!;
    assert.deepEqual({ file: c.edit?.file, line: c.edit?.line }, { file: "/p/recipes/flags.ts", line: 2 });
    assert.deepEqual(c.edit?.removed, ['export const OPT = "-O1";']);
    assert.deepEqual(c.effects.map((e) => e.kind === "env" && `${e.drv} ${e.key} ${e.old} ${e.new}`), ["app1 CFLAGS -O1 -O2", "app2 CFLAGS -O1 -O2"]);
    assert.deepEqual(c.at, ["app1", "app2"]);
    assert.deepEqual(c.blast.rebuilt, ["app1", "app2", "all"]);
    assert.deepEqual(c.blast.identical, [], "app1 came out identical, but nothing was spared by it");
    const text = renderWhy(r, { relativeTo: "/p" }).join("\n");
    assert.match(text, /\[1\] recipes\/flags\.ts:2\n {4}- export const OPT = "-O1";\n {4}\+ export const OPT = "-O2";\n {4}→ env CFLAGS of app1, app2: "-O1" → "-O2"/);
    assert.match(text, /app1 {2}rebuilt, output identical\n/, "no early cutoff where none happened");
    assert.doesNotMatch(text, /early cutoff/);
    // without the recipe texts: one cause per derivation, as recorded
    assert.equal(explain(before, after, h).causes.length, 2);
  });

  test("an identical rebuild is called early cutoff where a derivation using it was spared", () => {
    const h = new History();
    const lib1 = h.add({ name: "lib", env: { CFLAGS: "-O1" } }, { resolved: "r1", outputs: { out: "same" } });
    const app1 = h.add({ name: "app", inputs: [{ hash: lib1, name: "lib" }] }, { resolved: "r2", outputs: { out: "p-app" } });
    const lib2 = h.add({ name: "lib", env: { CFLAGS: "-O2" } }, { resolved: "r3", outputs: { out: "same" } });
    const app2 = h.add({ name: "app", inputs: [{ hash: lib2, name: "lib" }] }, { resolved: "r2", outputs: { out: "p-app" } });
    const r = explain(app1, app2, h);
    assert.deepEqual(r.causes[0]!.blast.identical, ["lib"]);
    assert.match(renderWhy(r).join("\n"), /lib {2}rebuilt, output identical: early cutoff/);
  });

  test("two sources of one name in two folders are told apart by path, named relative to the recipe set", () => {
    const h = new History();
    const m = (c: string) => `${c.repeat(32)}-main.c`;
    const app = (src: string, file: string) => h.add({ name: file.split("/")[1]!, srcs: [src], meta: { position: "/p/recipes/index.ts:3:1", srcs: { [src]: `/p/${file}` } } });
    const all = (a: string, b: string) => h.add({ name: "all", inputs: [{ hash: a, name: "app1" }, { hash: b, name: "app2" }] });
    const before = all(app(m("a"), "src/app1/main.c"), app(m("b"), "src/app2/main.c"));
    const after = all(app(m("a"), "src/app1/main.c"), app(m("c"), "src/app2/main.c"));
    const r = explain(before, after, h, { root: "/p" });
    assert.deepEqual(r.causes.map((c) => c.cause), [{ kind: "source", file: "src/app2/main.c", path: "/p/src/app2/main.c", old: m("b"), new: m("c") }]);
    assert.match(renderWhy(r).join("\n"), /source file src\/app2\/main\.c changed/);
  });

  test("a source from another clone of the same recipes is no change; one edited there is one changed file", () => {
    const h = new History();
    const m = (c: string) => `${c.repeat(32)}-main.c`;
    const app = (src: string, clone: string, opt: string) =>
      h.add({ name: "app", env: { CFLAGS: opt }, srcs: [src], meta: { position: `${clone}/recipes/index.ts:3:1`, srcs: { [src]: `${clone}/src/main.c` } } });
    const here = app(m("a"), "/home/me/app", "-O1");
    const same = explain(here, app(m("a"), "/tmp/clone", "-O2"), h, { root: "/tmp/clone" });
    assert.deepEqual(same.causes.map((c) => c.cause.kind), ["env"], "the unchanged main.c copied from elsewhere is not a cause");
    const edited = explain(here, app(m("b"), "/tmp/clone", "-O1"), h, { root: "/tmp/clone" });
    assert.deepEqual(edited.causes.map((c) => c.cause), [{ kind: "source", file: "src/main.c", path: "/tmp/clone/src/main.c", old: m("a"), new: m("b") }]);
  });

  test("the same derivation has nothing to explain", () => {
    const h = new History();
    const a = h.add({ name: "app" });
    assert.deepEqual(explain(a, a, h), { root: null, causes: [], changed: 0 });
  });
});

test("locateKey finds an env key's line inside the derivation call, not in the next one", () => {
  const text = [
    "export const a = derivation({", //  1
    "  name: 'a',",
    "  env: { CFLAGS: '-O2' },", //       3
    "});",
    "export const b = derivation({", //  5
    "  env: {",
    "    \"LDFLAGS\": '-s',", //           7
    "  },",
    "});",
  ].join("\n");
  assert.equal(locateKey(text, 1, "CFLAGS"), 3);
  assert.equal(locateKey(text, 5, "LDFLAGS"), 7);
  assert.equal(locateKey(text, 1, "LDFLAGS"), undefined, "stops at the next derivation");
});

test("summarizeCause: a cause in a few words, for a live view's row", () => {
  const tool = (version: string) => ({ path: "/usr/bin/gcc", package: "gcc-12", version, digest: "d" });
  assert.deepEqual(
    [
      summarizeCause({ kind: "env", drv: "lib", key: "CFLAGS", old: "-O2", new: "-O1" }),
      summarizeCause({ kind: "env", drv: "lib", key: "LDFLAGS", old: null, new: "-s" }),
      summarizeCause({ kind: "script", drv: "lib", removed: ["make"], added: ["make -j"] }),
      summarizeCause({ kind: "source", file: "main.c", old: "a-main.c", new: "b-main.c" }),
      summarizeCause({ kind: "source", file: "extra.c", old: null, new: "c-extra.c" }),
      summarizeCause({ kind: "fixed", drv: "src", old: "aa", new: "bb", oldSources: [], newSources: [] }),
      summarizeCause({ kind: "hostTool", impure: true, tool: "gcc", old: tool("12.2.0-14"), new: tool("12.2.0-15") }),
      summarizeCause({ kind: "input", drv: "app", input: "zlib", change: "added" }),
    ],
    ["env CFLAGS changed", "env LDFLAGS added", "build script changed", "source main.c changed", "source extra.c added", "pinned sha256 changed", "host tool gcc upgraded (impure)", "input zlib added"],
  );
});
