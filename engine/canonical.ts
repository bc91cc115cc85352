// Canonical JSON: object keys sorted by code unit, undefined-valued keys dropped, no whitespace.
// Everything Kiln hashes goes through here, so an encoding change shows up in the golden tests.

export type Canonical = null | boolean | number | string | Canonical[] | { [k: string]: Canonical };

export function canonicalJson(value: unknown): string {
  return encode(value, "$");
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
