import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { canonicalJson, compareUtf8 } from "./canonical.js";

describe("canonicalJson", () => {
  test("sorts keys at every depth and writes no whitespace", () => {
    const v = { b: 1, a: { z: [3, { y: true, x: null }], c: "s" }, A: false };
    assert.equal(canonicalJson(v), '{"A":false,"a":{"c":"s","z":[3,{"x":null,"y":true}]},"b":1}');
  });

  test("key order does not depend on insertion order", () => {
    const a: Record<string, number> = {};
    const b: Record<string, number> = {};
    const keys = ["zeta", "alpha", "Beta", "_u", "10", "9", "é", "a b"];
    for (const k of keys) a[k] = k.length;
    for (const k of [...keys].reverse()) b[k] = k.length;
    assert.equal(canonicalJson(a), canonicalJson(b));
    // integer-like keys are not hoisted (JSON.stringify would put "9" and "10" first, in numeric order)
    assert.equal(canonicalJson({ b: 0, "10": 0, "9": 0, a: 0 }), '{"10":0,"9":0,"a":0,"b":0}');
  });

  test("orders keys by code unit, independent of locale", () => {
    assert.deepEqual(["b", "B", "a", "é", "Z", "_"].sort(compareUtf8), ["B", "Z", "_", "a", "b", "é"]);
  });

  test("drops undefined-valued keys", () => {
    assert.equal(canonicalJson({ a: undefined, b: 2, c: { d: undefined } }), '{"b":2,"c":{}}');
    assert.equal(canonicalJson({ a: undefined }), canonicalJson({}));
  });

  test("escapes strings like JSON", () => {
    assert.equal(canonicalJson({ s: 'q"\\\n\u0001é' }), '{"s":"q\\"\\\\\\n\\u0001é"}');
  });

  test("numbers, booleans, null, empty containers", () => {
    assert.equal(canonicalJson([0, -1.5, 1e21, true, false, null, [], {}]), "[0,-1.5,1e+21,true,false,null,[],{}]");
  });

  test("accepts null-prototype objects", () => {
    const o = Object.create(null) as Record<string, number>;
    o.b = 1;
    o.a = 2;
    assert.equal(canonicalJson(o), '{"a":2,"b":1}');
  });

  test("rejects non-finite numbers", () => {
    assert.throws(() => canonicalJson({ a: NaN }), /non-finite number at \$\.a/);
    assert.throws(() => canonicalJson([Infinity]), /non-finite/);
    assert.throws(() => canonicalJson(-Infinity), /non-finite/);
  });

  test("rejects undefined inside arrays (it cannot be dropped without shifting positions)", () => {
    assert.throws(() => canonicalJson({ list: [1, undefined, 3] }), /undefined in array at \$\.list\[1\]/);
  });

  test("rejects class instances and other non-plain objects", () => {
    class Point {
      constructor(readonly x = 1) {}
    }
    assert.throws(() => canonicalJson({ p: new Point() }), /not a plain object at \$\.p/);
    assert.throws(() => canonicalJson(new Date(0)), /not a plain object/);
    assert.throws(() => canonicalJson(new Map([["a", 1]])), /not a plain object/);
    assert.throws(() => canonicalJson({ b: Buffer.from("x") }), /not a plain object/);
  });

  test("rejects functions, symbols and bigints", () => {
    assert.throws(() => canonicalJson({ f: () => 1 }), /cannot encode function at \$\.f/);
    assert.throws(() => canonicalJson([Symbol("s")]), /cannot encode symbol/);
    assert.throws(() => canonicalJson({ n: 1n }), /cannot encode bigint/);
    assert.throws(() => canonicalJson(undefined), /cannot encode undefined/);
  });

  test("a wholly frozen object is encoded once; a frozen one holding a mutable object is encoded afresh", () => {
    const fp = Object.freeze({ b: 1, a: Object.freeze({ z: "x" }) });
    assert.equal(canonicalJson({ t: fp }), '{"t":{"a":{"z":"x"},"b":1}}');
    assert.equal(canonicalJson([fp, fp]), '[{"a":{"z":"x"},"b":1},{"a":{"z":"x"},"b":1}]');
    const inner = { v: 1 };
    const shell = Object.freeze({ inner });
    assert.equal(canonicalJson(shell), '{"inner":{"v":1}}');
    inner.v = 2;
    assert.equal(canonicalJson(shell), '{"inner":{"v":2}}');
  });
});
