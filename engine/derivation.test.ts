import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { blake3Hex } from "../store/digest.js";
import type { StorePathName } from "../store/paths.js";
import { canonicalJson } from "./canonical.js";
import {
  encodeDerivation,
  fastEncoding,
  hashDerivation,
  inputPlaceholder,
  outputPlaceholder,
  resolveDerivation,
  scratchHash,
  storePathReplacer,
  type Derivation,
  type DrvHash,
  type ResolvedHash,
} from "./derivation.js";
import { handBuilt, loadGolden } from "./test-helpers/golden.js";

const golden = loadGolden();
const hb = handBuilt(hashDerivation);
const clone = (d: Derivation): Derivation => JSON.parse(JSON.stringify(d)) as Derivation;
const MINIMAL_PATH = "0123456789abcdfghijklmnpqrsvwxyz-minimal" as StorePathName;

describe("golden derivation encodings and hashes", () => {
  test("canonical encodings are byte-for-byte the pinned ones", () => {
    assert.equal(encodeDerivation(hb.minimal), golden.encodings.minimal);
    assert.equal(encodeDerivation(hb.fixed), golden.encodings.fixed);
  });

  test("the hash is BLAKE3 (hex) of the canonical encoding", () => {
    assert.equal(hashDerivation(hb.minimal), blake3Hex(golden.encodings.minimal!));
  });

  for (const name of ["minimal", "multi", "fixed"] as const) {
    test(`hashDerivation(${name}) is the pinned literal`, () => {
      assert.equal(hashDerivation(hb[name]), golden.derivations[name]);
    });
  }

  test("placeholders and scratch hashes are the pinned literals", () => {
    assert.equal(outputPlaceholder("hello", "out"), golden.placeholders["output hello out"]);
    assert.equal(outputPlaceholder("hello", "dev"), golden.placeholders["output hello dev"]);
    assert.equal(inputPlaceholder("a".repeat(64) as DrvHash, "dep", "out"), golden.placeholders["input dep out"]);
    assert.equal(inputPlaceholder("a".repeat(64) as DrvHash, "dep", "lib"), golden.placeholders["input dep lib"]);
    assert.equal(scratchHash("b".repeat(64) as ResolvedHash, "out"), golden.placeholders["scratch"]);
  });

  test("the resolved hash of a derivation with an input is the pinned literal", () => {
    const { hash } = resolveDerivation(hb.multi, [{ drvHash: hashDerivation(hb.minimal), drvName: "minimal", output: "out", path: MINIMAL_PATH }]);
    assert.equal(hash, golden.resolved.multi);
  });
});

describe("derivation hashing", () => {
  test("does not depend on the insertion order of object keys", () => {
    const m = hb.multi;
    const reordered: Derivation = {
      outputs: m.outputs,
      hostTools: Object.fromEntries(Object.entries(m.hostTools).reverse()),
      inputSrcs: m.inputSrcs,
      inputDrvs: m.inputDrvs,
      env: Object.fromEntries(Object.entries(m.env).reverse()),
      args: m.args,
      builder: m.builder,
      system: m.system,
      name: m.name,
    };
    assert.equal(hashDerivation(reordered), hashDerivation(m));
  });

  test("every hashed field changes the hash", () => {
    const base = hashDerivation(hb.multi);
    const edits: Array<[string, (d: Derivation) => void]> = [
      ["name", (d) => (d.name = "multi2")],
      ["system", (d) => (d.system = "aarch64-linux")],
      ["builder", (d) => (d.builder = "/kiln/host/bin/gmake")],
      ["an arg", (d) => (d.args[0] = "-j")],
      ["arg order", (d) => d.args.reverse()],
      ["an env value", (d) => (d.env.ALPHA = "second")],
      ["an env key", (d) => (d.env.BETA = "first")],
      ["an input output name", (d) => (d.inputDrvs[Object.keys(d.inputDrvs)[0]!] = ["dev"])],
      ["an input source", (d) => (d.inputSrcs = ["1w2n1m5l6h3f0x8k4j9c7b2a0z9y8x7w-patches2"])],
      ["a host tool digest", (d) => (d.hostTools.make!.digest = "ff".repeat(32))],
      ["a host tool package version", (d) => (d.hostTools.make!.version = "4.4-1")],
      ["outputs", (d) => (d.outputs = ["out"])],
    ];
    const seen = new Set([base]);
    for (const [what, edit] of edits) {
      const d = clone(hb.multi);
      edit(d);
      const h = hashDerivation(d);
      assert.notEqual(h, base, what);
      seen.add(h);
    }
    assert.equal(seen.size, edits.length + 1);
  });

  test("a fixed output's hash depends only on its name and sha256 (not on how it is built)", () => {
    const base = hashDerivation(hb.fixed);
    const other = clone(hb.fixed);
    other.builder = "/kiln/host/bin/sh";
    other.args = ["-c", "curl -o $out https://example.org/source.tar.gz"];
    other.env = { out: "x", URL: "https://mirror.example/source.tar.gz" };
    other.inputSrcs = ["1w2n1m5l6h3f0x8k4j9c7b2a0z9y8x7w-patches"];
    other.inputDrvs = { [hashDerivation(hb.minimal)]: ["out"] };
    other.hostTools = { curl: hb.minimal.hostTools.sh! };
    assert.equal(hashDerivation(other), base);

    const renamed = clone(hb.fixed);
    renamed.name = "source-2.tar.gz";
    assert.notEqual(hashDerivation(renamed), base);
    const rehashed = clone(hb.fixed);
    rehashed.fixed = { sha256: "0".repeat(64) };
    assert.notEqual(hashDerivation(rehashed), base);
  });
});

describe("encodeDerivation: the usual shape written field by field, the same bytes as canonicalJson", () => {
  const fp = Object.freeze({ commands: Object.freeze({ sh: "/usr/bin/dash" }), digest: "d".repeat(64), package: "dash", path: "/usr/bin/sh", version: "0.5.12-2" });
  const base = (): Derivation => ({
    name: "x", system: "x86_64-linux", builder: "/kiln/host/bin/sh", args: ["-e", "-u", "-c", "echo \"é\\n\" > $out"],
    env: { A: "1", out: "/kiln/store/0123456789abcdfghijklmnpqrsvwxyz-x" }, inputDrvs: { ["a".repeat(64)]: ["dev", "out"], ["b".repeat(64)]: ["out"] },
    inputSrcs: ["0123456789abcdfghijklmnpqrsvwxyz-src"], hostTools: { sh: fp }, outputs: ["out"],
  });

  test("the usual shapes go the fast way, and agree with canonicalJson", () => {
    const shapes: Derivation[] = [base(), hb.minimal, { ...base(), usr: "/kiln/store/0123456789abcdfghijklmnpqrsvwxyz-usr", hostTools: {} },
      { ...base(), fixed: { sha256: "c".repeat(64) } }, { ...base(), inputDrvs: {}, inputSrcs: [], env: {} }];
    for (const d of shapes) {
      assert.equal(fastEncoding(d), canonicalJson(d));
      assert.equal(encodeDerivation(d), canonicalJson(d));
    }
  });

  test("a field like the last derivation's (kept encoded), another one, or a list changed in place: the same bytes as canonicalJson", () => {
    const shared = Object.freeze(["out"]);
    const other = Object.freeze({ sh: fp, cc: fp });
    const mutable = ["dev", "out"];
    const seq: Derivation[] = [
      { ...base(), outputs: shared as string[] },
      { ...base(), outputs: shared as string[], builder: "/bin/sh", system: "aarch64-linux" },
      { ...base(), outputs: shared as string[], hostTools: other },
      { ...base(), outputs: mutable },
      { ...base(), outputs: mutable, hostTools: other },
      { ...base(), outputs: shared as string[], builder: "/bin/sh" },
    ];
    for (const [i, d] of seq.entries()) {
      assert.equal(encodeDerivation(d), canonicalJson(d), `derivation ${i}`);
      // an unfrozen list may change between two derivations: never taken from the last encoding
      if (d.outputs === mutable) mutable.push(`o${i}`);
    }
    mutable.push("again");
    assert.equal(encodeDerivation({ ...base(), outputs: mutable }), canonicalJson({ ...base(), outputs: mutable }));
  });

  test("any other shape is encoded the general way, to the same bytes", () => {
    const odd: Array<[string, Derivation]> = [
      ["env keys out of order", { ...base(), env: { out: "/o", A: "1" } }],
      ["an integer-like env key (which objects order first)", { ...base(), env: { "10": "a", "9": "b", out: "/o" } }],
      ["inputs out of order", { ...base(), inputDrvs: { ["b".repeat(64)]: ["out"], ["a".repeat(64)]: ["out"] } }],
      ["a field the encoder does not know", { ...base(), extra: "kept" } as Derivation],
      ["an undefined field", { ...base(), usr: undefined }],
      ["a number among the arguments", { ...base(), args: ["-c", 7] } as unknown as Derivation],
      ["an object's inputs in another order", clone({ ...base(), env: { Z: "z", B: "b", out: "/o" } })],
    ];
    for (const [what, d] of odd) {
      if (what !== "an undefined field") assert.equal(fastEncoding(d), undefined, what);
      assert.equal(encodeDerivation(d), canonicalJson(d), what);
    }
    assert.throws(() => encodeDerivation({ ...base(), args: ["-c", Number.NaN] } as unknown as Derivation), /non-finite/);
  });
});

describe("resolveDerivation", () => {
  const input = { drvHash: hashDerivation(hb.minimal), drvName: "minimal", output: "out", path: MINIMAL_PATH };

  test("replaces input placeholders by realised paths and moves inputs to inputSrcs", () => {
    const ph = inputPlaceholder(hashDerivation(hb.minimal), "minimal", "out");
    assert.ok(hb.multi.args[1]!.startsWith(ph));
    const { resolved } = resolveDerivation(hb.multi, [input]);
    assert.equal(resolved.args[1], `/kiln/store/${MINIMAL_PATH}/src`);
    assert.equal(resolved.env.DEP, `/kiln/store/${MINIMAL_PATH}`);
    assert.deepEqual(resolved.inputDrvs, {});
    assert.deepEqual(resolved.inputSrcs, ["0123456789abcdfghijklmnpqrsvwxyz-minimal", "1w2n1m5l6h3f0x8k4j9c7b2a0z9y8x7w-patches"]);
    // own output placeholders are left for the builder to fill
    assert.equal(resolved.env.out, outputPlaceholder("multi", "out"));
    assert.ok(!JSON.stringify(resolved).includes(ph));
    // the unresolved derivation is not modified
    assert.deepEqual(hb.multi.inputDrvs, { [hashDerivation(hb.minimal)]: ["out"] });
  });

  test("a derivation without input derivations resolves to itself: given its hash, the same answer without hashing it again", () => {
    const leaf: Derivation = {
      ...clone(hb.multi), inputDrvs: {}, args: ["-c", "echo hi > $out"], env: { A: "1", out: outputPlaceholder("multi", "out") },
      inputSrcs: ["0123456789abcdfghijklmnpqrsvwxyz-src", "1w2n1m5l6h3f0x8k4j9c7b2a0z9y8x7w-patches"],
    };
    const long = resolveDerivation(leaf, []);
    const short = resolveDerivation(leaf, [], hashDerivation(leaf));
    assert.equal(long.hash, hashDerivation(leaf), "the long way gives the derivation's own hash");
    assert.equal(short.hash, long.hash);
    assert.deepEqual(short.resolved, long.resolved);
    // sources out of order (a derivation not made by kiln's evaluator): resolving sorts them, so
    // the derivation is not its own resolution and the hash passed in is not taken
    const unsorted: Derivation = { ...leaf, inputSrcs: [...leaf.inputSrcs].reverse() };
    const r = resolveDerivation(unsorted, [], "f".repeat(64) as DrvHash);
    assert.equal(r.hash, long.hash);
    assert.deepEqual(r.resolved.inputSrcs, leaf.inputSrcs);
    // a source named twice: resolving names it once, so not its own resolution either
    const twice: Derivation = { ...leaf, inputSrcs: [leaf.inputSrcs[0]!, ...leaf.inputSrcs] };
    assert.equal(resolveDerivation(twice, [], "f".repeat(64) as DrvHash).hash, resolveDerivation(twice, []).hash);
    assert.deepEqual(resolveDerivation(twice, [], "f".repeat(64) as DrvHash).resolved.inputSrcs, leaf.inputSrcs);
    // a fixed output's hash is made another way (its name and sha256): never taken for its resolution
    assert.equal(resolveDerivation(hb.fixed, [], hashDerivation(hb.fixed)).hash, resolveDerivation(hb.fixed, []).hash);
    assert.notEqual(resolveDerivation(hb.fixed, []).hash, hashDerivation(hb.fixed));
    // with an input, the hash passed in is never the answer
    assert.notEqual(resolveDerivation(hb.multi, [input], hashDerivation(hb.multi)).hash, hashDerivation(hb.multi));
  });

  test("the resolved hash changes with the realised input path", () => {
    const a = resolveDerivation(hb.multi, [input]).hash;
    const b = resolveDerivation(hb.multi, [{ ...input, path: "1123456789abcdfghijklmnpqrsvwxyz-minimal" as StorePathName }]).hash;
    assert.notEqual(a, b);
  });

  test("early cutoff: dependents of two different input derivations that realised to the same path resolve identically", () => {
    // the input derivation changed (say, a comment in its source) but produced the same output
    const changedInput = clone(hb.minimal);
    changedInput.args = ["-e", "-u", "-c", "echo hi > $out # comment"];
    const h1 = hashDerivation(hb.minimal);
    const h2 = hashDerivation(changedInput);
    assert.notEqual(h1, h2);
    const dependent = (h: DrvHash): Derivation => ({
      ...clone(hb.multi),
      args: hb.multi.args.map((a) => a.replace(inputPlaceholder(h1, "minimal", "out"), inputPlaceholder(h, "minimal", "out"))),
      env: Object.fromEntries(Object.entries(hb.multi.env).map(([k, v]) => [k, v.replace(inputPlaceholder(h1, "minimal", "out"), inputPlaceholder(h, "minimal", "out"))])),
      inputDrvs: { [h]: ["out"] },
    });
    const d1 = dependent(h1);
    const d2 = dependent(h2);
    assert.notEqual(hashDerivation(d1), hashDerivation(d2), "the unresolved dependents differ");
    const r1 = resolveDerivation(d1, [{ ...input, drvHash: h1 }]);
    const r2 = resolveDerivation(d2, [{ ...input, drvHash: h2 }]);
    assert.equal(r1.hash, r2.hash, "the resolved dependents are the same cache key");
    assert.deepEqual(r1.resolved, r2.resolved);
  });

  test("storePathReplacer replaces every occurrence, the longest key first, and leaves strings without store paths alone", () => {
    const m = new Map([["/kiln/store/aaaa-x", "/kiln/store/bbbb-x"]]);
    assert.equal(storePathReplacer(m)("/kiln/store/aaaa-x:/kiln/store/aaaa-x/bin"), "/kiln/store/bbbb-x:/kiln/store/bbbb-x/bin");
    assert.equal(storePathReplacer(m)("no paths here"), "no paths here");
    // one pass: a path next to another, a longer name sharing the hash part, a path not in the map
    const m2 = new Map([["/kiln/store/aaaa-x", "/kiln/store/bbbb-x"], ["/kiln/store/aaaa-xy", "/kiln/store/cccc-xy"], ["/kiln/store/dddd-z", "/kiln/store/eeee-z"]]);
    assert.equal(storePathReplacer(m2)("/kiln/store/dddd-z/kiln/store/aaaa-xy /kiln/store/ffff-x /kiln/store/aaaa-x"), "/kiln/store/eeee-z/kiln/store/cccc-xy /kiln/store/ffff-x /kiln/store/bbbb-x");
    assert.equal(storePathReplacer(m2)("/kiln/store/"), "/kiln/store/");
  });
});
