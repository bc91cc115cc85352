// Canonical JSON: object keys sorted by code unit, undefined-valued keys dropped, no whitespace.
// Everything Kiln hashes goes through here, so an encoding change shows up in the golden tests.

export type Canonical = null | boolean | number | string | Canonical[] | { [k: string]: Canonical };

export function canonicalJson(value: unknown): string {
  return encode(value, []);
}

const frozenEncodings = new WeakMap<object, string>();

function deeplyFrozen(v: unknown): boolean {
  if (v === null || typeof v !== "object") return true;
  if (!Object.isFrozen(v)) return false;
  for (const x of Object.values(v)) if (!deeplyFrozen(x)) return false;
  return true;
}

/** "$.env.CFLAGS", "$.args[2]": where a bad value is, built only when there is one. */
function where(path: Array<string | number>): string {
  return "$" + path.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("");
}

/**
 * The encoder every hash goes through. The path to the current value is a stack, turned into
 * text only for an error (a string per value was a good part of evaluation's garbage); strings are
 * built by concatenation, without intermediate arrays.
 */
function encode(v: unknown, path: Array<string | number>): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "number":
      if (!Number.isFinite(v)) throw new Error(`canonicalJson: non-finite number at ${where(path)}`);
      return JSON.stringify(v);
    case "object": {
      if (Array.isArray(v)) {
        // an array of strings (a builder's arguments: a seed tree's are a few hundred) is what
        // JSON.stringify writes, natively and in one call
        if (allStrings(v)) return JSON.stringify(v);
        let s = "[";
        for (let i = 0; i < v.length; i++) {
          const x: unknown = v[i];
          path.push(i);
          if (x === undefined) throw new Error(`canonicalJson: undefined in array at ${where(path)}`);
          s += (i === 0 ? "" : ",") + encode(x, path);
          path.pop();
        }
        return s + "]";
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw new Error(`canonicalJson: not a plain object at ${where(path)}`);
      const o = v as Record<string, unknown>;
      // a frozen object cannot change: encoded once (host tool fingerprints, shared by thousands)
      const frozen = Object.isFrozen(o);
      if (frozen) {
        const done = frozenEncodings.get(o);
        if (done !== undefined) return done;
      }
      // the default sort compares UTF-16 code units, as compareUtf8 does; most small objects
      // (an env, a fingerprint's commands) come in that order already
      const keys = Object.keys(o);
      if (!ascending(keys)) keys.sort();
      let s = "{";
      let first = true;
      for (const k of keys) {
        const x = o[k];
        if (x === undefined) continue;
        path.push(k);
        s += (first ? "" : ",") + JSON.stringify(k) + ":" + encode(x, path);
        path.pop();
        first = false;
      }
      s += "}";
      // (a frozen object may still hold mutable ones: only a wholly frozen tree is remembered)
      if (frozen && deeplyFrozen(o)) frozenEncodings.set(o, s);
      return s;
    }
    default:
      throw new Error(`canonicalJson: cannot encode ${typeof v} at ${where(path)}`);
  }
}

/** As `a.every((x) => typeof x === "string")`, holes passed over as every() does (JSON.stringify writes them as null). */
export function allStrings(a: readonly unknown[]): boolean {
  for (let i = 0; i < a.length; i++) if (typeof a[i] !== "string" && i in a) return false;
  return true;
}

/** Keys in canonical (code-unit) order already. */
export function ascending(keys: readonly string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) return false;
  return true;
}

/** Code-unit order, independent of locale (equal to bytewise UTF-8 order for all BMP text). */
export function compareUtf8(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
