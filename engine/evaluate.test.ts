import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { KilnError } from "../store/errors.js";
import type { StorePathName } from "../store/paths.js";
import { derivation, fetch, lazy, sh, source, type Drv } from "./api.js";
import { canonicalJson } from "./canonical.js";
import { encodeDerivation, hashDerivation, inputPlaceholder, outputPlaceholder, resolveDerivation } from "./derivation.js";
import { Evaluator, HOST_BIN, type Node } from "./evaluate.js";
import { fixedFingerprint, GOLDEN_SRC, goldenRecipes, loadGolden, stubHostTools } from "./test-helpers/golden.js";

const tmp = mkdtempSync(join(tmpdir(), "kiln-eval-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function evaluator(): { ev: Evaluator; asked: string[] } {
  const { hostTools, asked } = stubHostTools();
  return { ev: new Evaluator({ hostTools, fileCache: new Map() }), asked };
}

function byName(ev: Evaluator, name: string): Node {
  const n = ev.graph.nodes.find((x) => x.name === name);
  assert.ok(n, `node ${name}`);
  return n;
}

function kilnError(code: string, ...mustMention: Array<string | RegExp>) {
  return (e: unknown) => {
    assert.ok(e instanceof KilnError, `expected a KilnError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const m of mustMention) {
      if (typeof m === "string") assert.ok(e.message.includes(m), `message should mention ${m}: ${e.message}`);
      else assert.match(e.message, m);
    }
    return true;
  };
}

describe("Evaluator: golden graph", () => {
  const golden = loadGolden();

  test("evaluating the golden recipes gives the pinned derivation hashes", () => {
    const { ev } = evaluator();
    const root = ev.evaluate(goldenRecipes().user);
    const got = Object.fromEntries(ev.graph.nodes.map((n) => [n.name, n.hash]));
    assert.deepEqual(got, golden.evaluated);
    assert.equal(root.node.name, "golden-user");
    assert.equal(root.output, "out");
  });

  test("sources get the pinned content-addressed store names", () => {
    const { ev } = evaluator();
    ev.evaluate(goldenRecipes().user);
    const dep = byName(ev, "golden-dep");
    assert.deepEqual(Object.fromEntries([...dep.sources.keys()].map((s) => [s.slice(33), s])), golden.sources);
    assert.deepEqual(dep.drv.inputSrcs, Object.values(golden.sources).sort());
    assert.equal(dep.sources.get(golden.sources["input.txt"] as StorePathName), join(GOLDEN_SRC, "input.txt"));
  });

  test("the same sources in another directory give the same hashes (content, not location)", () => {
    const copy = join(tmp, "golden-copy");
    cpSync(GOLDEN_SRC, copy, { recursive: true });
    const { ev } = evaluator();
    const a = derivation({ name: "s", script: sh`cat ${source(GOLDEN_SRC, "input.txt")}` });
    const b = derivation({ name: "s", script: sh`cat ${source(copy, "input.txt")}` });
    assert.equal(ev.evaluate(a).node.hash, ev.evaluate(b).node.hash);
    writeFileSync(join(copy, "input.txt"), "changed\n");
    const { ev: ev2 } = evaluator();
    const c = derivation({ name: "s", script: sh`cat ${source(copy, "input.txt")}` });
    assert.notEqual(ev2.evaluate(c).node.hash, ev.evaluate(a).node.hash);
  });

  test("host tool fingerprints are part of the hash", () => {
    const recipe = () => derivation({ name: "t", hostTools: ["gcc"], script: "gcc --version > $out" });
    const { ev } = evaluator();
    const h1 = ev.evaluate(recipe()).node.hash;
    const { hostTools } = stubHostTools((t) => (t === "gcc" ? { ...fixedFingerprint(t), version: "13.2.0-1" } : fixedFingerprint(t)));
    const h2 = new Evaluator({ hostTools, fileCache: new Map() }).evaluate(recipe()).node.hash;
    assert.notEqual(h1, h2);
  });
});

describe("Evaluator: graph structure", () => {
  test("dependencies come first, each once, and inputs are referenced through placeholders", () => {
    const { ev, asked } = evaluator();
    const lib = derivation({ name: "lib", outputs: ["out", "dev"], script: "mkdir $out $dev" });
    const app = derivation({
      name: "app",
      hostTools: ["gcc"],
      env: { LIB: lib, INC: sh`${lib.output("dev")}/include` },
      script: sh`gcc -L${lib}/lib -I${lib.output("dev")}/include -o $out`,
    });
    const root = ev.evaluate(app);
    assert.deepEqual(ev.graph.nodes.map((n) => n.name), ["lib", "app"]);
    const l = byName(ev, "lib");
    const a = root.node;
    assert.deepEqual(a.deps, [l]);
    assert.deepEqual({ ...a.drv.inputDrvs }, { [l.hash]: ["dev", "out"] });
    const phOut = inputPlaceholder(l.hash, "lib", "out");
    const phDev = inputPlaceholder(l.hash, "lib", "dev");
    assert.equal(a.drv.env.LIB, phOut);
    assert.equal(a.drv.env.INC, `${phDev}/include`);
    assert.equal(a.drv.args[3], `gcc -L${phOut}/lib -I${phDev}/include -o $out`);
    assert.equal(a.drv.builder, `${HOST_BIN}/sh`);
    assert.deepEqual(a.drv.args.slice(0, 3), ["-e", "-u", "-c"]);
    assert.equal(a.drv.env.out, outputPlaceholder("app", "out"));
    assert.deepEqual(Object.keys(a.drv.hostTools), ["gcc", "sh"], "a script adds sh; tools are sorted");
    assert.ok(asked.includes("gcc") && asked.includes("sh"));
    assert.equal(a.hash, hashDerivation(a.drv));
  });

  test("several inputs, some named twice and by two outputs: inputDrvs by hash in code-unit order, deps in the order named, each once", () => {
    const { ev } = evaluator();
    const parts = Array.from({ length: 6 }, (_, i) => derivation({ name: `p${i}`, outputs: ["out", "doc"], script: `echo ${i} > $out; echo > $doc` }));
    const [p0, p1, p2, p3, p4, p5] = parts as [Drv, Drv, Drv, Drv, Drv, Drv];
    const top = derivation({ name: "top", env: { A: p3 }, script: sh`${p5} ${p1.output("doc")} ${p3} ${p1} ${p0} ${p5.output("doc")} ${p2} ${p4} ${p0}` });
    const node = ev.evaluate(top).node;
    const hash = (d: Drv) => ev.nodeOf(d)!.hash;
    assert.deepEqual(node.deps.map((n) => n.name), ["p5", "p1", "p3", "p0", "p2", "p4"], "script first, then env; each once");
    assert.deepEqual(Object.keys(node.drv.inputDrvs), parts.map(hash).sort(), "code-unit order of the hashes");
    assert.deepEqual(node.drv.inputDrvs[hash(p1)], ["doc", "out"]);
    assert.deepEqual(node.drv.inputDrvs[hash(p5)], ["doc", "out"]);
    assert.deepEqual(node.drv.inputDrvs[hash(p3)], ["out"]);
    assert.equal(node.hash, hashDerivation(node.drv));
  });

  test("inputDrvs (made as a dictionary): the same keys, order, encoding and hash as a plain object's, for one input or many", () => {
    const { ev } = evaluator();
    const parts = Array.from({ length: 40 }, (_, i) => derivation({ name: `q${i}`, script: `echo ${i} > $out` }));
    const node = ev.evaluate(derivation({ name: "many", script: sh`: ${parts.slice(20)} ${parts.slice(0, 20)}` })).node;
    const plain = JSON.parse(JSON.stringify(node.drv)) as typeof node.drv;
    assert.deepEqual(Object.keys(node.drv.inputDrvs), parts.map((d) => ev.nodeOf(d)!.hash).sort());
    assert.deepEqual(Object.keys(node.drv.inputDrvs), Object.keys(plain.inputDrvs));
    assert.equal(encodeDerivation(node.drv), canonicalJson(plain));
    assert.equal(node.hash, hashDerivation(plain));
    assert.deepEqual(node.deps.map((n) => n.name), [...parts.slice(20), ...parts.slice(0, 20)].map((d) => d.name));
    const one = ev.evaluate(derivation({ name: "one", script: sh`: ${parts[3]!}` })).node;
    const onePlain = JSON.parse(JSON.stringify(one.drv)) as typeof one.drv;
    assert.equal(Object.getPrototypeOf(one.drv.inputDrvs), null);
    assert.deepEqual(Object.keys(one.drv.inputDrvs), [ev.nodeOf(parts[3]!)!.hash]);
    assert.equal(encodeDerivation(one.drv), canonicalJson(onePlain));
    assert.equal(one.hash, hashDerivation(onePlain));
  });

  test("dependency placeholders resolve to the realised paths", () => {
    const { ev } = evaluator();
    const lib = derivation({ name: "lib", script: "mkdir $out" });
    const app = derivation({ name: "app", script: sh`cp -r ${lib} $out` });
    const a = ev.evaluate(app).node;
    const l = byName(ev, "lib");
    const real = "0000000000000000000000000000000a-lib" as StorePathName;
    const { resolved, hash } = resolveDerivation(a.drv, [{ drvHash: l.hash, drvName: "lib", output: "out", path: real }]);
    assert.equal(resolved.args[3], `cp -r /kiln/store/${real} $out`);
    assert.deepEqual(resolved.inputDrvs, {});
    assert.ok(resolved.inputSrcs.includes(real));
    assert.notEqual(hash, a.hash);
  });

  test("two recipe values describing the same derivation are one node", () => {
    const { ev } = evaluator();
    const mk = () => derivation({ name: "same", script: "echo > $out" });
    const a = mk();
    const b = mk();
    const user = derivation({ name: "user", script: sh`cat ${a} ${b} > $out` });
    const root = ev.evaluate(user);
    assert.equal(ev.graph.nodes.length, 2);
    assert.equal(root.node.deps.length, 1);
    assert.equal(Object.keys(root.node.drv.inputDrvs).length, 1);
  });

  test("a fetch's sources do not change its hash; its sha256 and name do", () => {
    const sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    const hash = (d: Drv) => evaluator().ev.evaluate(d).node.hash;
    const a = hash(fetch({ name: "f.txt", sha256: sha, sources: [{ url: "http://127.0.0.1:9/f.txt" }] }));
    const b = hash(fetch({ name: "f.txt", sha256: sha, sources: [{ file: "/somewhere/f.txt" }, { mirror: "/srv/mirror" }] }));
    const c = hash(fetch({ name: "f.txt", sha256: "0".repeat(64), sources: [{ file: "/somewhere/f.txt" }] }));
    const d = hash(fetch({ name: "g.txt", sha256: sha, sources: [{ file: "/somewhere/f.txt" }] }));
    const e = hash(fetch({ name: "f.txt", sha256: sha, sources: [{ npm: { name: "@scope/f", version: "1.0.0" } }] }));
    assert.equal(a, b);
    assert.equal(a, e);
    assert.notEqual(a, c);
    assert.notEqual(a, d);
  });
});

describe("Evaluator: errors", () => {
  test("a cycle (formed with lazy) is a CYCLE error naming every derivation in it, and only those", () => {
    const { ev } = evaluator();
    let gamma: Drv;
    const alpha = derivation({ name: "cyc-alpha", script: sh`cat ${lazy(() => gamma)}` });
    const beta = derivation({ name: "cyc-beta", script: sh`cat ${alpha}` });
    gamma = derivation({ name: "cyc-gamma", script: sh`cat ${beta}` });
    const entry = derivation({ name: "entry-root", script: sh`cat ${gamma}` });
    assert.throws(() => ev.evaluate(entry), (e: unknown) => {
      kilnError("CYCLE", "cyc-alpha", "cyc-beta", "cyc-gamma")(e);
      const err = e as KilnError<"CYCLE">;
      assert.ok(!err.message.includes("entry-root"), "the entry point is not part of the cycle");
      const cycle = err.context.cycle!;
      assert.equal(cycle.length, 4);
      assert.equal(cycle[0], cycle[3], "the cycle closes");
      assert.deepEqual(new Set(cycle), new Set(["cyc-alpha", "cyc-beta", "cyc-gamma"]));
      assert.match(err.message, /evaluate\.test\.ts:\d+:\d+/, "positions of the recipes are named");
      return true;
    });
  });

  test("a self-loop through lazy is a cycle too", () => {
    const { ev } = evaluator();
    let self: Drv;
    self = derivation({ name: "selfish", script: sh`cat ${lazy(() => self)}` });
    assert.throws(() => ev.evaluate(self), kilnError("CYCLE", "selfish -> selfish"));
  });

  test("an invalid derivation name is RECIPE_INVALID", () => {
    for (const name of ["has space", ".hidden", "", "a/b"]) {
      assert.throws(() => evaluator().ev.evaluate(derivation({ name, script: "true" })), kilnError("RECIPE_INVALID", "invalid derivation name"), name);
    }
  });

  test("a NUL byte in an argument, a script or an env value is RECIPE_INVALID, named (no program can be given one)", () => {
    const ev = () => evaluator().ev;
    assert.throws(() => ev().evaluate(derivation({ name: "a", builder: "/bin/sh", args: ["-c", "x\0--bind\0/\0/host"] })), kilnError("RECIPE_INVALID", "derivation a", "argument 2 of the builder contains a NUL byte"));
    assert.throws(() => ev().evaluate(derivation({ name: "s", script: "echo a\0b" })), kilnError("RECIPE_INVALID", "its script contains a NUL byte"));
    assert.throws(() => ev().evaluate(derivation({ name: "e", script: "true", env: { V: "a\0b" } })), kilnError("RECIPE_INVALID", "env V contains a NUL byte"));
    assert.doesNotThrow(() => ev().evaluate(derivation({ name: "ok", script: "printf 'a\\0b'" })), "a NUL written as an escape is text");
  });

  test("a bad sha256 is RECIPE_INVALID (fetch and fixed-output derivation)", () => {
    for (const sha of ["", "abc", "5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03", "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoaiLkb2vgM="]) {
      assert.throws(() => evaluator().ev.evaluate(fetch({ name: "f", sha256: sha, sources: [] })), kilnError("RECIPE_INVALID", "64 lowercase hex digits"), sha);
      assert.throws(() => evaluator().ev.evaluate(derivation({ name: "d", sha256: sha, script: "true" })), kilnError("RECIPE_INVALID", "64 lowercase hex digits"), sha);
    }
  });

  test("a malformed fetch source is RECIPE_INVALID saying what is wrong with it", () => {
    const sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    const cases: Array<[unknown, string]> = [
      [{ npm: { name: "left-pad", version: "latest" } }, "not an exact version"],
      [{ npm: { name: "left-pad", version: "^1.3.0" } }, "not an exact version"],
      [{ npm: { name: "Left Pad", version: "1.3.0" } }, "not an npm package name"],
      [{ npm: { version: "1.3.0" } }, "not an npm package name"],
      [{ deb: { package: "hello" } }, "deb needs package and version"],
      [{ url: "" }, "url must be a non-empty string"],
      [{ url: "http://x", file: "/y" }, "exactly one of"],
      [{ git: "https://x" }, "unknown kind 'git'"],
    ];
    for (const [src, why] of cases) {
      const sources = [{ file: "/fine" }, src] as never;
      assert.throws(() => evaluator().ev.evaluate(fetch({ name: "f", sha256: sha, sources })), kilnError("RECIPE_INVALID", "source 2", why), JSON.stringify(src));
      assert.throws(() => evaluator().ev.evaluate(derivation({ name: "d", sha256: sha, sources, script: "true" })), kilnError("RECIPE_INVALID", why), JSON.stringify(src));
    }
    // a scoped name and a prerelease version are fine
    evaluator().ev.evaluate(fetch({ name: "f", sha256: sha, sources: [{ npm: { name: "@types/node", version: "20.0.0-rc.1" } }] }));
  });

  test("a missing source file is SOURCE_MISSING naming the path and the user", () => {
    const missing = join(tmp, "no-such-file.c");
    const d = derivation({ name: "needs-src", script: sh`cc ${source(missing)}` });
    assert.throws(() => evaluator().ev.evaluate(d), kilnError("SOURCE_MISSING", missing, "needs-src"));
  });

  test("an env variable named like an output, or duplicate outputs, are RECIPE_INVALID", () => {
    assert.throws(() => evaluator().ev.evaluate(derivation({ name: "x", env: { out: "/tmp" }, script: "true" })), kilnError("RECIPE_INVALID", "'out'"));
    assert.throws(() => evaluator().ev.evaluate(derivation({ name: "x", outputs: ["out", "out"], script: "true" })), kilnError("RECIPE_INVALID", "distinct"));
  });

  test("a derivation with neither script nor builder is RECIPE_INVALID", () => {
    assert.throws(() => evaluator().ev.evaluate(derivation({ name: "empty" })), kilnError("RECIPE_INVALID", "neither script nor builder"));
  });

  test("a mistake caught by the recipe API is RECIPE_INVALID, not a plain error", () => {
    const d = derivation({ name: "one-output", script: "true" });
    assert.throws(() => d.output("dev"), kilnError("RECIPE_INVALID", "has no output 'dev'"));
    assert.throws(() => derivation({ name: "both", script: "true", builder: "/x" }), kilnError("RECIPE_INVALID", "not both"));
    assert.throws(() => sh`${{ not: "a value" } as never}`, kilnError("RECIPE_INVALID", "cannot interpolate an object"));
  });

  test("system: part of the hash, x86_64-linux by default, an unknown one is RECIPE_INVALID", () => {
    const { ev } = evaluator();
    const x = ev.evaluate(derivation({ name: "s", builder: "/b" })).node;
    const a = ev.evaluate(derivation({ name: "s", builder: "/b", system: "aarch64-linux" })).node;
    assert.equal(x.drv.system, "x86_64-linux");
    assert.equal(a.drv.system, "aarch64-linux");
    assert.notEqual(x.hash, a.hash);
    assert.throws(() => evaluator().ev.evaluate(derivation({ name: "s", builder: "/b", system: "x86_64-darwin" })), kilnError("RECIPE_INVALID", "x86_64-darwin"));
  });
});

describe("Evaluator: builds on a usr tree", () => {
  const tree = () => derivation({ name: "seed-tree", builder: "builtin:seed-root", args: [] });

  test("a script runs with the tree's /bin/sh, no host tool is declared, and the tree is an input", () => {
    const { ev, asked } = evaluator();
    const seed = tree();
    const n = ev.evaluate(derivation({ name: "on-seed", usr: seed, script: "echo hi > $out" })).node;
    assert.equal(n.drv.builder, "/bin/sh");
    assert.deepEqual(n.drv.hostTools, {});
    assert.deepEqual(asked, [], "no host tool was fingerprinted");
    const seedNode = byName(ev, "seed-tree");
    assert.equal(n.drv.usr, inputPlaceholder(seedNode.hash, "seed-tree", "out"));
    assert.deepEqual(Object.keys(n.drv.inputDrvs), [seedNode.hash]);
    assert.equal(seedNode.drv.builder, "builtin:seed-root", "a builtin builder is not a host tool");
    assert.deepEqual(seedNode.drv.hostTools, {});
    const resolved = resolveDerivation(n.drv, [{ drvHash: seedNode.hash, drvName: "seed-tree", output: "out", path: "00000000000000000000000000000000-seed-tree" as StorePathName }]);
    assert.equal(resolved.resolved.usr, "/kiln/store/00000000000000000000000000000000-seed-tree");
  });

  test("a usr tree and host tools together are refused: the build could not see the tools", () => {
    assert.throws(() => evaluator().ev.evaluate(derivation({ name: "mixed", usr: tree(), hostTools: ["gcc"], script: "gcc" })), kilnError("RECIPE_INVALID", "declares host tools (gcc)"));
    assert.throws(() => evaluator().ev.evaluate(derivation({ name: "cmd", usr: tree(), builder: "make" })), kilnError("RECIPE_INVALID", "is a host command, but the build runs on a usr tree"));
  });
});

describe("Evaluator: builtin builders", () => {
  const deb = fetch({ name: "hello_1.0_amd64.deb", sha256: "a".repeat(64), sources: [{ url: "http://example.invalid/hello.deb" }] });

  test("a builtin: builder runs inside kiln: no host tool, its inputs referenced like any other", () => {
    const { ev, asked } = evaluator();
    const { node } = ev.evaluate(derivation({ name: "hello-unpacked", builder: "builtin:unpack-deb", args: [deb] }));
    assert.equal(node.drv.builder, "builtin:unpack-deb");
    assert.deepEqual(node.drv.hostTools, {});
    assert.deepEqual(asked, [], "no host tool was fingerprinted");
    const fetched = byName(ev, "hello_1.0_amd64.deb");
    assert.deepEqual(node.drv.args, [inputPlaceholder(fetched.hash, fetched.name, "out")]);
    assert.deepEqual({ ...node.drv.inputDrvs }, { [fetched.hash]: ["out"] });
  });

  test("an unknown builtin, or host tools for a builtin, are RECIPE_INVALID", () => {
    const { ev } = evaluator();
    assert.throws(() => ev.evaluate(derivation({ name: "x", builder: "builtin:unpack-rpm", args: [deb] })), kilnError("RECIPE_INVALID", "builtin:unpack-rpm", "builtin:unpack-deb"));
    assert.throws(() => ev.evaluate(derivation({ name: "y", builder: "builtin:fetch", args: [] })), kilnError("RECIPE_INVALID", "builtin:fetch"));
    assert.throws(() => ev.evaluate(derivation({ name: "z", builder: "builtin:seed-root", args: [], hostTools: ["sh"] })), kilnError("RECIPE_INVALID", "host tools"));
  });
});
