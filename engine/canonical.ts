// Canonical JSON: object keys sorted by code unit, undefined-valued keys dropped, no whitespace.
// Everything Kiln hashes goes through here, so an encoding change shows up in the golden tests.

export type Canonical = null | boolean | number | string | Canonical[] | { [k: string]: Canonical };

export function canonicalJson(value: unknown): string {
  try {
    return fast(value);
  } catch (e) {
    // the careful walk below names where the offending value is
    if (e === INVALID) return encode(value, "$");
    throw e;
  }
}

const INVALID = new Error("canonicalJson: invalid value");
const frozenEncodings = new WeakMap<object, string>();

function deeplyFrozen(v: unknown): boolean {
  if (v === null || typeof v !== "object") return true;
  if (!Object.isFrozen(v)) return false;
  for (const x of Object.values(v)) if (!deeplyFrozen(x)) return false;
  return true;
}

/**
 * The encoder every hash goes through: no path bookkeeping (building "$.env.CFLAGS" for every
 * value was a good part of evaluation's garbage) and no intermediate arrays. Anything it cannot
 * encode is handed to encode(), which says where.
 */
function fast(v: unknown): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "number":
      if (!Number.isFinite(v)) throw INVALID;
      return JSON.stringify(v);
    case "object": {
      if (Array.isArray(v)) {
        let s = "[";
        for (let i = 0; i < v.length; i++) {
          const x: unknown = v[i];
          if (x === undefined) throw INVALID;
          s += i === 0 ? fast(x) : "," + fast(x);
        }
        return s + "]";
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw INVALID;
      const o = v as Record<string, unknown>;
      // a frozen object cannot change: encoded once (host tool fingerprints, shared by thousands)
      const frozen = Object.isFrozen(o);
      if (frozen) {
        const done = frozenEncodings.get(o);
        if (done !== undefined) return done;
      }
      // the default sort compares UTF-16 code units, as compareUtf8 does
      const keys = Object.keys(o).sort();
      let s = "{";
      let first = true;
      for (const k of keys) {
        const x = o[k];
        if (x === undefined) continue;
        s += (first ? "" : ",") + JSON.stringify(k) + ":" + fast(x);
        first = false;
      }
      s += "}";
      // (a frozen object may still hold mutable ones: only a wholly frozen tree is remembered)
      if (frozen && deeplyFrozen(o)) frozenEncodings.set(o, s);
      return s;
    }
    default:
      throw INVALID;
  }
}

function encode(v: unknown, at: string): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "number":
      if (!Number.isFinite(v)) throw new Error(`canonicalJson: non-finite number at ${at}`);
      return JSON.stringify(v);
    case "object": {
      if (Array.isArray(v)) {
        return "[" + v.map((x, i) => {
          if (x === undefined) throw new Error(`canonicalJson: undefined in array at ${at}[${i}]`);
          return encode(x, `${at}[${i}]`);
        }).join(",") + "]";
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw new Error(`canonicalJson: not a plain object at ${at}`);
      const keys = Object.keys(v as object).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort(compareUtf8);
      return "{" + keys.map((k) => JSON.stringify(k) + ":" + encode((v as Record<string, unknown>)[k], `${at}.${k}`)).join(",") + "}";
    }
    default:
      throw new Error(`canonicalJson: cannot encode ${typeof v} at ${at}`);
  }
}

/** Code-unit order, independent of locale (equal to bytewise UTF-8 order for all BMP text). */
export function compareUtf8(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
