// Positions in a recipe bundle as positions in the recipe files. The loader writes each bundle's
// source map beside it (<bundle>.map, no sourceMappingURL comment, so Node never parses it); this
// module reads a map only when a position in its bundle is asked for, and decodes only the lines
// asked for. Node's own source-map support (process.setSourceMapsEnabled) parses every mapping of
// a bundle when it is loaded: a tenth of the evaluation of a large recipe set, for the few dozen
// call sites a recipe set has.
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface Mapped {
  file: string;
  line: number;
  col: number;
}

interface BundleMap {
  sources: string[];
  /** the mappings of each generated line, still VLQ-encoded */
  lines: string[];
  /** decoded lines: [generated column, source index, original line, original column] per segment */
  decoded: Map<number, Int32Array>;
  /** the decoder's state is cumulative across lines: state at the start of each decoded prefix */
  starts: Array<[number, number, number]>;
}

/**
 * The maps read, the most recently used last; a few (`kiln watch` loads a bundle per edit). Files
 * without a map (kiln's own modules, Node's internals: every stack has some) are remembered apart,
 * so that they never push a bundle's map out and have it parsed again.
 */
const maps = new Map<string, BundleMap>();
const MAPS_KEPT = 8;
const unmapped = new Set<string>();

function mapOf(bundle: string): BundleMap | null {
  const had = maps.get(bundle);
  if (had) {
    maps.delete(bundle);
    maps.set(bundle, had);
    return had;
  }
  if (unmapped.has(bundle)) return null;
  const m = readMap(bundle);
  if (!m) {
    unmapped.add(bundle);
    return null;
  }
  if (maps.size >= MAPS_KEPT) maps.delete(maps.keys().next().value!);
  maps.set(bundle, m);
  return m;
}

function readMap(bundle: string): BundleMap | null {
  const file = `${bundle}.map`;
  if (!existsSync(file)) return null;
  try {
    return parseMap(readFileSync(file, "utf8"), bundle);
  } catch {
    return null;
  }
}

/** A bundle's map from its text; its sources as absolute paths (relative ones are to the bundle's folder). */
function parseMap(text: string, bundle: string): BundleMap {
  const raw = JSON.parse(text) as { sources?: string[]; sourceRoot?: string; mappings?: string };
  const base = dirname(bundle);
  const sources = (raw.sources ?? []).map((s) => {
    const src = raw.sourceRoot ? `${raw.sourceRoot.replace(/\/$/, "")}/${s}` : s;
    return src.startsWith("file://") ? fileURLToPath(src) : isAbsolute(src) ? src : resolve(base, src);
  });
  return { sources, lines: (raw.mappings ?? "").split(";"), decoded: new Map(), starts: [[0, 0, 0]] };
}

/**
 * The name of a marked API function in a bundle (engine/loader.ts, markSites): the stub's
 * (number 0), which every reference in the bundle is written as, or that of call site n, written
 * in a call's place. The number has a fixed width, so a call site's name takes as many characters
 * as the stub's and no column of the bundle moves: its source map stays as esbuild wrote it.
 */
export function siteName(fn: string, n: number): string {
  return `__kiln_${fn}$${String(n).padStart(SITE_DIGITS, "0")}`;
}
export const SITE_DIGITS = 6;
/** A frame of a call site's function: `at __kiln_derivation$000007 (file:///…/eval-cache/….mjs:LINE:COL)`. */
const SITE_FRAME = new RegExp(`\\n[ \\t]+at __kiln_[A-Za-z]+\\$\\d{${SITE_DIGITS}} \\([^\\n]*\\)(?=\\n|$)`, "g");

const B64 = new Int8Array(128).fill(-1);
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".split("").forEach((c, i) => (B64[c.charCodeAt(0)] = i));

/**
 * Decode one generated line. Source index, original line and original column are deltas that
 * run on across lines, so the state at the start of line n needs every earlier line's deltas:
 * those lines are scanned (not stored) once, and the state at each line start is kept.
 */
function decodeLine(m: BundleMap, line: number): Int32Array {
  const done = m.decoded.get(line);
  if (done) return done;
  let state: [number, number, number] = m.starts[m.starts.length - 1]!;
  for (let l = m.starts.length - 1; l < line; l++) {
    state = scan(m.lines[l] ?? "", state, undefined);
    m.starts.push(state);
  }
  const segs: number[] = [];
  scan(m.lines[line] ?? "", m.starts[line]!, segs);
  const out = Int32Array.from(segs);
  m.decoded.set(line, out);
  return out;
}

/** Run the VLQ decoder over one line from a state; collect its 4-field segments when asked. */
function scan(text: string, [src0, line0, col0]: [number, number, number], out: number[] | undefined): [number, number, number] {
  let src = src0, oline = line0, ocol = col0, gcol = 0;
  let field = 0, value = 0, shift = 0;
  const fields = [0, 0, 0, 0, 0];
  const flush = () => {
    if (field >= 4) {
      src += fields[1]!;
      oline += fields[2]!;
      ocol += fields[3]!;
    }
    gcol += fields[0]!;
    if (out && field >= 4) out.push(gcol, src, oline, ocol);
    field = 0;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 44 /* , */) {
      flush();
      continue;
    }
    const d = B64[c] ?? -1;
    if (d < 0) continue;
    value += (d & 31) << shift;
    if (d & 32) {
      shift += 5;
      continue;
    }
    fields[field++] = value & 1 ? -(value >>> 1) : value >>> 1;
    value = 0;
    shift = 0;
  }
  if (text.length > 0) flush();
  return [src, oline, ocol];
}

/**
 * The original position of a 1-based line and column in a bundle that has a map beside it; the
 * nearest mapped segment at or left of the column. Undefined for files without a map.
 */
export function originalPosition(file: string, line: number, col: number): Mapped | undefined {
  const path = file.startsWith("file://") ? fileURLToPath(file) : file;
  const m = mapOf(path);
  return m ? lookup(m, line, col) : undefined;
}

/**
 * originalPosition for a bundle whose map is not written yet: `mapText` is the map of the bundle
 * that will be at `bundle` (its folder is what the map's relative sources are relative to).
 */
export function positionsIn(mapText: string, bundle: string): (line: number, col: number) => Mapped | undefined {
  const m = parseMap(mapText, bundle);
  return (line, col) => lookup(m, line, col);
}

function lookup(m: BundleMap, line: number, col: number): Mapped | undefined {
  if (line < 1 || line > m.lines.length) return undefined;
  const segs = decodeLine(m, line - 1);
  let best = -1;
  for (let i = 0; i < segs.length; i += 4) {
    if (segs[i]! <= col - 1) best = i;
    else break;
  }
  if (best < 0) return undefined;
  const source = m.sources[segs[best + 1]!];
  if (source === undefined) return undefined;
  return { file: source, line: segs[best + 2]! + 1, col: segs[best + 3]! + 1 };
}

/**
 * A stack trace with every frame in a mapped bundle written as the recipe file's position. The
 * frames of the call-site functions the loader adds to a bundle (engine/loader.ts, markSites) are
 * left out: they are no recipe's code, and the recipe line that called one is the next frame.
 */
export function mapStack(stack: string): string {
  return stack.replace(SITE_FRAME, "").replace(/((?:file:\/\/)?\/[^\s():]+):(\d+):(\d+)/g, (all, file: string, line: string, col: string) => {
    const p = originalPosition(file, Number(line), Number(col));
    return p ? `${p.file}:${p.line}:${p.col}` : all;
  });
}
