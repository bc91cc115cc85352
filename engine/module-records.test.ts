// What a module record keeps of a module's exports, and what the bundle's stub gives back: the
// same shape of values, derivations standing as sealed values with their hash, name, outputs and
// position; and what cannot be kept, each for its reason.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { __kilnThaw, derivation, isDrv, isOutputRef, isSealBroken, lazy, sealedOf, sh, source, type Drv } from "./api.js";
import type { Node } from "./evaluate.js";
import { keepExports, takeExports, type Taken } from "./module-records.js";

/** Exports taken as a module's code ends; they must be keepable here. */
function taken(ns: object): Taken {
  const t = takeExports(ns);
  assert.ok(typeof t === "object", String(t));
  return t;
}

/** A stand-in evaluation: every derivation given gets a node with a hash of its name. */
function nodes(...ds: Drv[]): (d: Drv) => Node | undefined {
  const m = new Map(ds.map((d) => [d, { hash: `h-${d.name}`, name: d.name } as Node]));
  return (d) => m.get(d);
}

describe("module records: keeping exports", () => {
  test("values, derivations, outputs and attributes come back from the stub as they were", () => {
    const a = derivation({ name: "a", outputs: ["out", "dev"], script: sh`echo a > $out; echo > $dev` });
    const b = Object.assign(derivation({ name: "b", script: sh`cat ${a} > $out` }), { parts: { a, dev: a.output("dev") } });
    const ns = { default: { b, list: [a, 1, "x", null, true, undefined], nested: { deeper: { ref: a.out } } }, a, count: 3 };
    const kept = keepExports(taken(ns), nodes(a, b));
    assert.deepEqual(kept.nodes.map((n) => n.name).sort(), ["a", "b"]);
    // what the stub is given is JSON, as the bundle holds it
    const back = __kilnThaw("rec", JSON.parse(JSON.stringify(kept.exports))) as typeof ns;
    const d = back.default;
    assert.ok(isDrv(d.b) && isDrv(back.a));
    assert.equal(d.list[0], back.a, "one derivation is one value wherever it appears");
    assert.deepEqual(d.list.slice(1), [1, "x", null, true, undefined]);
    assert.deepEqual(sealedOf(back.a), { hash: "h-a", record: "rec" });
    assert.deepEqual([back.a.name, back.a.outputs, back.a.kind, back.a.position], [a.name, a.outputs, a.kind, a.position]);
    assert.ok(a.position?.includes("module-records.test.ts"), a.position);
    const ref = d.nested.deeper.ref;
    assert.ok(isOutputRef(ref) && ref.drv === back.a && ref.output === "out");
    const attrs = (d.b as typeof b).parts;
    assert.equal(attrs.a, back.a);
    assert.ok(attrs.dev.drv === back.a && attrs.dev.output === "dev");
    assert.equal(back.count, 3);
    // a sealed value has no arguments to read: reading them breaks the seal, by name
    assert.throws(() => back.a.args, (e: unknown) => isSealBroken(e) && /derivation 'a'/.test(String(e)));
    assert.throws(() => back.a.output("lib"), /has no output 'lib'/);
  });

  test("what cannot be kept, and why", () => {
    const a = derivation({ name: "a", script: sh`echo > $out` });
    const cyclic: Record<string, unknown> = { a };
    cyclic.self = cyclic;
    const cases: Array<[string, object, string]> = [
      ["a function", { make: () => a }, "function"],
      ["a function inside", { default: { helpers: [() => 1] } }, "function"],
      ["a source", { src: source("/tmp", "x") }, "value"],
      ["a lazy reference", { l: lazy(() => a) }, "value"],
      ["a string with context", { s: sh`${a}` }, "value"],
      ["a Map", { m: new Map() }, "value"],
      ["a class instance", { d: new Date(0) }, "value"],
      ["NaN", { n: Number.NaN }, "value"],
      ["a cycle", { c: cyclic }, "cycle"],
    ];
    for (const [what, ns, why] of cases) assert.equal(takeExports(ns), why, what);
    // the same object twice, not inside itself, is no cycle
    const shared = { a };
    assert.equal(typeof takeExports({ x: shared, y: [shared] }), "object");
  });

  test("a derivation the evaluation did not reach is kept without a hash", () => {
    const a = derivation({ name: "a", script: sh`echo > $out` });
    const other = derivation({ name: "other", script: sh`cat ${a} > $out` });
    const kept = keepExports(taken({ a, other }), nodes(a));
    assert.deepEqual(kept.nodes.map((n) => n.name), ["a"]);
    const back = __kilnThaw("rec", kept.exports) as { a: Drv; other: Drv };
    assert.deepEqual(sealedOf(back.other), { hash: null, record: "rec" });
    assert.equal(back.other.name, "other");
  });

  test("what an importer does to the exports afterwards is not kept: the stub gives what the module's code left", () => {
    const a = derivation({ name: "a", script: sh`echo > $out` });
    const ns = { list: [a], conf: { level: 1 } };
    const t = taken(ns);
    // an importer's changes, after the module's code ended
    ns.list.push(a);
    ns.conf.level = 2;
    Object.assign(a, { added: "later" });
    const back = __kilnThaw("rec", keepExports(t, nodes(a)).exports) as { list: Drv[]; conf: { level: number } };
    assert.equal(back.list.length, 1);
    assert.equal(back.conf.level, 1);
    assert.equal((back.list[0] as unknown as Record<string, unknown>).added, undefined);
  });
});
