// Sizes, durations and dates as users type and read them: `--max-size 10G`, `--older-than 30d`.
import { KilnError } from "../store/errors.js";

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Bytes from "1234", "500K", "1.5G", "2GiB", "10MB" (binary multiples, as du and Nix do). */
export function parseSize(s: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$/i.exec(s);
  if (!m) throw new KilnError("USAGE", `${option}: cannot read ${JSON.stringify(s)} as a size`, "write a number with an optional unit: 500M, 10G, 1.5T (binary multiples)");
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** Milliseconds from "45s", "90m", "12h", "30d", "2w". */
export function parseDuration(s: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$/i.exec(s);
  if (!m) throw new KilnError("USAGE", `${option}: cannot read ${JSON.stringify(s)} as a duration`, "write a number and a unit: 45s, 90m, 12h, 30d, 2w");
  return Math.floor(Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!);
}

/** Bytes for people: "512 B", "3.4 MiB" (binary multiples). */
export function human(n: number): string {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${u[i]}`;
}

/** '2025-06-01 12:00:00 UTC' */
export function dateText(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}
