// Evaluation that keeps what an edit did not touch (engine/module-records.ts), end to end: after
// an edit of one recipe file, a module whose files, sources and host tools are unchanged does not
// run again (its top-level code prints a line each time it runs, which is what these tests count),
// its derivations are trusted as in the store, and the results are those of a whole evaluation.
// Whatever breaks a seal (a changed file or source, outputs collected or gone from disk, recipe
// code reading more of a sealed value than its record keeps) makes kiln evaluate the whole set.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { Node } from "../engine/evaluate.js";
import type { Evaluated } from "../engine/targets.js";
import { cleanup, kiln, tempDir, type RunResult } from "./test-helpers/kiln.js";
import { filesOf } from "./watch.js";

const LIB = (mark: string) => [
  'import { derivation, sh, source } from "kiln";',
  `console.error("ran lib${mark}");`,
  'export const base = derivation({ name: "base", hostTools: ["cat"], script: sh`cat ${source(import.meta.url, "data.txt")} > $out` });',
  'export const spare = derivation({ name: "spare", script: sh`echo spare > $out` });',
  'export const more = { tools: derivation({ name: "tools", outputs: ["out", "doc"], script: sh`echo tools > $out; echo doc > $doc` }), list: [1, "two", null] };',
  "",
].join("\n");

const HELPERS = [
  'import { derivation, sh } from "kiln";',
  'console.error("ran helpers");',
  "export const wrap = (text: string) => derivation({ name: \"wrapped\", script: sh`echo ${text} > $out` });",
  "",
].join("\n");

const INDEX = (n: number, extra = "") => [
  'import { derivation, sh } from "kiln";',
  'import { base, more, spare } from "./lib.ts";',
  'import { wrap } from "./helpers.ts";',
  extra,
  // an importer changing what lib.ts exported: a whole evaluation sees lib.ts's list and this push
  'more.list.push("pushed");',
  `export default { top: derivation({ name: "top", hostTools: ["cat"], script: sh\`: \${more.list.length}; cat \${base} \${more.tools.output("doc")} \${wrap("w")} > $out; echo ${n} >> $out\` }), other: derivation({ name: "other", hostTools: ["cat"], script: sh\`cat \${spare} > $out\` }) };`,
  "",
].join("\n");

/** A project, and the options to run kiln on it with: module records on (tests run without them, KILN_EVAL_CACHE=0). */
function project(): { cwd: string; store: string; env: Record<string, string> } {
  const cwd = tempDir("sealed");
  writeFileSync(join(cwd, "lib.ts"), LIB(""));
  writeFileSync(join(cwd, "helpers.ts"), HELPERS);
  writeFileSync(join(cwd, "data.txt"), "data 1\n");
  writeFileSync(join(cwd, "index.ts"), INDEX(1));
  return { cwd, store: tempDir("sealed-store"), env: { KILN_EVAL_CACHE: "1" } };
}

const runs = (r: RunResult, what: string) => r.stderr.split("\n").filter((l) => l === `ran ${what}`).length;
const built = (r: RunResult) => r.events.filter((e) => e.type === "built").map((e) => e.node!.name).sort();

async function realize(o: { cwd: string; store: string; env: Record<string, string> }): Promise<RunResult & { out: string }> {
  const r = await kiln(["-f", "index.ts", "--reporter", "json", "realize", "top", "--no-link"], o);
  assert.equal(r.code, 0, r.stderr);
  return { ...r, out: readFileSync(r.stdout.trim(), "utf8") };
}

/** The derivation hash of top by a whole evaluation (kiln eval never seals). */
async function wholeHash(o: { cwd: string; store: string; env: Record<string, string> }): Promise<string> {
  const r = await kiln(["-f", "index.ts", "eval", "--json", "top"], o);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { roots: Array<{ drv: string }> }).roots[0]!.drv;
}

async function planned(o: { cwd: string; store: string; env: Record<string, string> }): Promise<{ r: RunResult; drv: string; counts: Record<string, number> }> {
  const r = await kiln(["-f", "index.ts", "plan", "--json", "top"], o);
  assert.equal(r.code, 0, r.stderr);
  const f = JSON.parse(r.stdout) as { nodes: Array<{ name: string; drv: string }>; counts: Record<string, number> };
  return { r, drv: f.nodes.find((n) => n.name === "top")!.drv, counts: f.counts };
}

describe("sealed modules: an edit re-evaluates what it touched", () => {
  after(cleanup);

  test("an unchanged module does not run again; the results are a whole evaluation's", async () => {
    const o = project();
    const first = await realize(o);
    assert.equal(runs(first, "lib"), 1);
    assert.deepEqual(built(first), ["base", "tools", "top", "wrapped"]);
    assert.equal(first.out, "data 1\ndoc\nw\n1\n");

    writeFileSync(join(o.cwd, "index.ts"), INDEX(2));
    const p = await planned(o);
    assert.equal(runs(p.r, "lib"), 0, "plan after an edit of index.ts ran lib.ts again");
    // a module exporting a function cannot be kept: it runs every time
    assert.equal(runs(p.r, "helpers"), 1);
    assert.equal(p.drv, await wholeHash(o), "the sealed evaluation gave top another hash than a whole one");
    assert.deepEqual(p.counts.build, 1);

    // --no-eval-cache and KILN_EVAL_CACHE=0 evaluate everything
    const whole = await kiln(["-f", "index.ts", "--no-eval-cache", "plan", "top"], o);
    assert.equal(whole.code, 0, whole.stderr);
    assert.equal(runs(whole, "lib"), 1);
    const byEnv = await kiln(["-f", "index.ts", "realize", "--dry-run", "top"], { ...o, env: { KILN_EVAL_CACHE: "0" } });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    assert.equal(runs(byEnv, "lib"), 1);

    const second = await realize(o);
    assert.equal(runs(second, "lib"), 0, "realize after an edit of index.ts ran lib.ts again");
    assert.deepEqual(built(second), ["top"]);
    // the live view learns which nodes stand for a sealed module's derivations (their inputs are not in the graph)
    const nodes = second.events.find((e) => e.type === "planned")!.nodes as Array<{ name: string; sealed?: true; deps: string[] }>;
    assert.deepEqual(nodes.filter((n) => n.sealed).map((n) => n.name).sort(), ["base", "tools"]);
    assert.equal(second.out, "data 1\ndoc\nw\n2\n");
  });

  test("a changed source, a changed module file: the module runs again", async () => {
    const o = project();
    await realize(o);
    writeFileSync(join(o.cwd, "data.txt"), "data 2\n");
    writeFileSync(join(o.cwd, "index.ts"), INDEX(2));
    const bySource = await realize(o);
    assert.equal(runs(bySource, "lib"), 1, "a source of lib.ts changed, yet its record stood in for it");
    assert.deepEqual(built(bySource), ["base", "top"]);
    assert.equal(bySource.out, "data 2\ndoc\nw\n2\n");

    writeFileSync(join(o.cwd, "lib.ts"), LIB(" (edited)"));
    writeFileSync(join(o.cwd, "index.ts"), INDEX(3));
    const byFile = await realize(o);
    assert.equal(runs(byFile, "lib (edited)"), 1);
    // the edit changed no derivation of lib.ts: nothing of it is built again
    assert.deepEqual(built(byFile), ["top"]);

    // and with nothing changed but index.ts, the edited lib.ts is sealed in its turn
    writeFileSync(join(o.cwd, "index.ts"), INDEX(4));
    const after = await realize(o);
    assert.equal(runs(after, "lib (edited)"), 0);
    assert.equal(after.out, "data 2\ndoc\nw\n4\n");
  });

  test("a module under a module: a stub under a stub, and an edit two imports down", async () => {
    const o = project();
    writeFileSync(join(o.cwd, "deep.ts"), 'console.error("ran deep");\nexport const words = { greeting: "hello" };\n');
    writeFileSync(join(o.cwd, "mid.ts"), 'import { derivation, sh } from "kiln";\nimport { words } from "./deep.ts";\nconsole.error("ran mid");\nexport const said = derivation({ name: "said", script: sh`echo ${words.greeting} > $out` });\n');
    const index = (n: number) => `import { derivation, sh } from "kiln";\nimport { said } from "./mid.ts";\nexport default { top: derivation({ name: "top", hostTools: ["cat"], script: sh\`cat \${said} > $out; echo ${n} >> $out\` }) };\n`;
    writeFileSync(join(o.cwd, "index.ts"), index(1));
    assert.equal((await realize(o)).out, "hello\n1\n");
    writeFileSync(join(o.cwd, "index.ts"), index(2));
    const both = await realize(o);
    assert.deepEqual([runs(both, "mid"), runs(both, "deep")], [0, 0], "both modules sealed");
    assert.equal(both.out, "hello\n2\n");
    // an edit of the file mid.ts imports: mid.ts's record is no longer usable either
    writeFileSync(join(o.cwd, "deep.ts"), 'console.error("ran deep");\nexport const words = { greeting: "hi" };\n');
    writeFileSync(join(o.cwd, "index.ts"), index(3));
    const below = await realize(o);
    assert.deepEqual([runs(below, "mid"), runs(below, "deep")], [1, 1]);
    assert.deepEqual(built(below), ["said", "top"]);
    assert.equal(below.out, "hi\n3\n");
  });

  test("outputs collected since: the seal breaks and everything is evaluated and built", async () => {
    const o = project();
    await realize(o);
    const gc = await kiln(["gc"], o);
    assert.equal(gc.code, 0, gc.stderr);
    writeFileSync(join(o.cwd, "index.ts"), INDEX(2));
    const r = await realize(o);
    assert.equal(runs(r, "lib"), 1);
    // found at evaluation: the evaluation with records stopped there, unannounced
    assert.equal(r.events.filter((e) => e.type === "evaluated").length, 1);
    assert.deepEqual(built(r), ["base", "tools", "top", "wrapped"]);
    assert.equal(r.out, "data 1\ndoc\nw\n2\n");
  });

  test("a host tool under a sealed module changed: the module runs again", async () => {
    // a declared tool must lie where builds see the host: under /usr
    const bin = mkdtempSync("/usr/local/lib/kiln-test-tool-");
    try {
      const tool = join(bin, "kiln-test-tool");
      writeFileSync(tool, "#!/bin/sh\necho 1\n", { mode: 0o755 });
      const o = project();
      writeFileSync(join(o.cwd, "lib.ts"), LIB("").replace('hostTools: ["cat"]', 'hostTools: ["cat", "kiln-test-tool"]'));
      const env = { ...o.env, PATH: `${bin}:${process.env.PATH}` };
      const first = await kiln(["-f", "index.ts", "plan", "top"], { ...o, env });
      assert.equal(first.code, 0, first.stderr);
      writeFileSync(join(o.cwd, "index.ts"), INDEX(2));
      const same = await kiln(["-f", "index.ts", "plan", "top"], { ...o, env });
      assert.equal(runs(same, "lib"), 1, "nothing was built: the record has no outputs to trust, and lib.ts runs");
      await kiln(["-f", "index.ts", "realize", "--no-link", "top"], { ...o, env });
      writeFileSync(join(o.cwd, "index.ts"), INDEX(3));
      const sealed = await kiln(["-f", "index.ts", "plan", "top"], { ...o, env });
      assert.equal(runs(sealed, "lib"), 0);
      writeFileSync(tool, "#!/bin/sh\necho 2\n", { mode: 0o755 });
      writeFileSync(join(o.cwd, "index.ts"), INDEX(4));
      const upgraded = await kiln(["-f", "index.ts", "plan", "--json", "top"], { ...o, env });
      assert.equal(upgraded.code, 0, upgraded.stderr);
      assert.equal(runs(upgraded, "lib"), 1, "the tool changed, yet lib.ts's record stood in for it");
      const nodes = (JSON.parse(upgraded.stdout) as { nodes: Array<{ name: string; state: string }> }).nodes;
      assert.equal(nodes.find((n) => n.name === "base")?.state, "build");
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  test("an output gone from disk, found when the build is planned: evaluated again, rebuilt", async () => {
    const o = project();
    const first = await realize(o);
    const base = first.events.find((e) => e.type === "built" && e.node!.name === "base")!.paths!.out!;
    rmSync(join(o.store, "store", base), { recursive: true, force: true });
    writeFileSync(join(o.cwd, "index.ts"), INDEX(2));
    const r = await realize(o);
    // lib.ts runs once: in the whole evaluation made when the seal broke at the plan
    assert.equal(runs(r, "lib"), 1);
    assert.ok(built(r).includes("base") && built(r).includes("top"), built(r).join(" "));
    assert.equal(r.out, "data 1\ndoc\nw\n2\n");
  });

  test("a target needing a derivation the recorded evaluation did not reach: the module runs", async () => {
    const o = project();
    await realize(o);
    writeFileSync(join(o.cwd, "index.ts"), INDEX(2));
    const r = await kiln(["-f", "index.ts", "plan", "--json", "other"], o);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(runs(r, "lib"), 1);
    const nodes = (JSON.parse(r.stdout) as { nodes: Array<{ name: string; state: string }> }).nodes;
    assert.deepEqual(nodes.map((n) => `${n.name} ${n.state}`), ["spare build", "other build"]);
  });

  test("recipe code that reads a sealed derivation's arguments: evaluated without records", async () => {
    const o = project();
    await realize(o);
    writeFileSync(join(o.cwd, "index.ts"), INDEX(2, "export const baseName = base.args.name;"));
    const p = await planned(o);
    // the stub stood in first; lib.ts ran in the whole evaluation
    assert.equal(runs(p.r, "lib"), 1);
    assert.equal(p.drv, await wholeHash(o));
  });
});

describe("sealed modules: what a stub would get wrong is evaluated whole", () => {
  after(cleanup);

  /** A project of `files`; realize `target`, rewrite index.ts with `next`, and plan it. */
  async function editedPlan(files: Record<string, string>, next: string, target = "top"): Promise<{ p: RunResult; drv: string; whole: string; nodes: Array<{ name: string; state: string }> }> {
    const cwd = tempDir("sealed-whole");
    const o = { cwd, store: tempDir("sealed-whole-store"), env: { KILN_EVAL_CACHE: "1" } };
    for (const [f, text] of Object.entries(files)) writeFileSync(join(cwd, f), text);
    const first = await kiln(["-f", "index.ts", "realize", "--no-link", target], o);
    assert.equal(first.code, 0, first.stderr);
    writeFileSync(join(cwd, "index.ts"), next);
    const p = await kiln(["-f", "index.ts", "plan", "--json", target], o);
    assert.equal(p.code, 0, p.stderr);
    const nodes = (JSON.parse(p.stdout) as { nodes: Array<{ name: string; drv: string; state: string }> }).nodes;
    const w = await kiln(["-f", "index.ts", "eval", "--json", target], o);
    assert.equal(w.code, 0, w.stderr);
    return { p, drv: nodes.find((n) => n.name === target)!.drv, whole: (JSON.parse(w.stdout) as { roots: Array<{ drv: string }> }).roots[0]!.drv, nodes };
  }

  test("modules that fill another module's object (a registry)", async () => {
    const r = await editedPlan({
      "registry.ts": 'console.error("ran registry");\nexport const registry: Record<string, unknown> = {};\n',
      "foo.ts": 'import { derivation, sh } from "kiln";\nimport { registry } from "./registry.ts";\nconsole.error("ran foo");\nregistry.foo = derivation({ name: "foo", script: sh`echo foo > $out` });\nexport const marker = 1;\n',
      "index.ts": 'import { derivation, sh, type Drv } from "kiln";\nimport { registry } from "./registry.ts";\nimport "./foo.ts";\nexport default { top: derivation({ name: "top", script: sh`: ${registry.foo as Drv}; echo 1 > $out` }) };\n',
    }, 'import { derivation, sh, type Drv } from "kiln";\nimport { registry } from "./registry.ts";\nimport "./foo.ts";\nexport default { top: derivation({ name: "top", script: sh`: ${registry.foo as Drv}; echo 2 > $out` }) };\n');
    assert.equal(runs(r.p, "registry"), 1);
    assert.equal(runs(r.p, "foo"), 1);
    assert.equal(r.drv, r.whole);
  });

  test("the entry changes the arguments of a module's derivation", async () => {
    const lib = 'import { derivation, sh } from "kiln";\nconsole.error("ran lib");\nexport const env = { OPT: "-O2" };\nexport const app = derivation({ name: "app", env, script: sh`echo $OPT > $out` });\n';
    const index = (opt: string) => `import { derivation, sh } from "kiln";\nimport { app, env } from "./lib.ts";\nenv.OPT = "${opt}";\nexport default { top: derivation({ name: "top", script: sh\`: \${app}; echo > $out\` }) };\n`;
    const r = await editedPlan({ "lib.ts": lib, "index.ts": index("-O3") }, index("-O1"));
    assert.equal(runs(r.p, "lib"), 1);
    assert.equal(r.drv, r.whole);
    assert.equal(r.nodes.find((n) => n.name === "app")?.state, "build", "app's arguments changed: it is not the one in the store");
  });

  test("recipe code that catches the error of reading a sealed derivation's arguments", async () => {
    const lib = 'import { derivation, sh } from "kiln";\nconsole.error("ran lib");\nexport const base = derivation({ name: "base", script: sh`echo base > $out` });\n';
    const index = (n: number) => `import { derivation, sh } from "kiln";\nimport { base } from "./lib.ts";\nlet name = "none";\ntry { name = base.args.name; } catch { /* sealed */ }\nexport default { top: derivation({ name: "top", script: sh\`: \${base} \${name}; echo ${n} > $out\` }) };\n`;
    const r = await editedPlan({ "lib.ts": lib, "index.ts": index(1) }, index(2));
    assert.equal(runs(r.p, "lib"), 1);
    assert.equal(r.drv, r.whole);
  });

  test("watch mode watches the sources under a sealed node", () => {
    const sealed = { hash: "h", name: "base", deps: [], sources: new Map(), sealed: { sources: new Map([["x-sealed", "/src/under/sealed"]]), tools: {} } } as unknown as Node;
    const ev = { set: { files: ["/recipes/index.ts"] }, evaluator: { graph: { nodes: [sealed], byHash: new Map([["h", sealed]]) } }, roots: [{ node: sealed }] } as unknown as Evaluated;
    assert.deepEqual([...filesOf(ev)].sort(), ["/recipes/index.ts", "/src/under/sealed"]);
  });

  test("a CommonJS module in a .ts file", async () => {
    const r = await editedPlan({
      "lib.ts": 'const { derivation, sh } = require("kiln");\nconsole.error("ran lib");\nmodule.exports = { base: derivation({ name: "base", script: sh`echo base > $out` }) };\n',
      "index.ts": 'import { derivation, sh } from "kiln";\nimport lib from "./lib.ts";\nexport default { top: derivation({ name: "top", script: sh`: ${lib.base}; echo 1 > $out` }) };\n',
    }, 'import { derivation, sh } from "kiln";\nimport lib from "./lib.ts";\nexport default { top: derivation({ name: "top", script: sh`: ${lib.base}; echo 2 > $out` }) };\n');
    assert.equal(runs(r.p, "lib"), 1);
    assert.equal(r.drv, r.whole);
  });
});
