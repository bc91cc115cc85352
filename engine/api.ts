// The recipe API: what recipe files import as "kiln". Everything here is pure data; the engine
// turns it into derivations (hashing sources, fingerprinting host tools) when it evaluates.
//
//   import { derivation, sh, source } from "kiln";
//   export const hello = derivation({
//     name: "hello",
//     hostTools: ["gcc", "pkg:coreutils"],
//     script: sh`mkdir -p $out/bin && gcc -O2 ${source(import.meta.url, "hello.c")} -o $out/bin/hello`,
//   });
import { findSourceMap } from "node:module";
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { KilnError } from "../store/errors.js";
import { originalPosition, type Mapped } from "./source-map.js";
import type { FetchSource } from "./derivation.js";

export const KIND: unique symbol = Symbol.for("kiln.kind") as never;

export interface Drv {
  readonly [KIND]: "drv";
  readonly name: string;
  readonly outputs: readonly string[];
  readonly args: DerivationArgs | FetchArgs;
  readonly kind: "build" | "fetch";
  /** recipe file:line:column that created it */
  readonly position: string | undefined;
  /** the default output */
  readonly out: OutputRef;
  output(name: string): OutputRef;
}

export interface OutputRef {
  readonly [KIND]: "output";
  readonly drv: Drv;
  readonly output: string;
}

export interface Source {
  readonly [KIND]: "source";
  /** absolute host path of the file or directory */
  readonly path: string;
  readonly name: string;
}

/** A reference resolved only when the graph is walked: lets recipes refer to each other lazily. */
export interface Lazy {
  readonly [KIND]: "lazy";
  readonly get: () => Drv | OutputRef;
}

export type Part = string | OutputRef | Source | Lazy;

/** A string with context: the store paths it mentions become inputs of the derivation using it. */
export interface Str {
  readonly [KIND]: "str";
  readonly parts: readonly Part[];
}

export type Value = string | number | boolean | Drv | OutputRef | Source | Lazy | Str | readonly Value[];

export interface DerivationArgs {
  name: string;
  /**
   * the platform the build runs on, in Nix's spelling ('x86_64-linux', 'aarch64-linux'); part of
   * the hash. Default 'x86_64-linux'. Cross compilation keeps the build's own system and names
   * the target in the build (a cross compiler, --host=...).
   */
  system?: string;
  /**
   * a tree laid out as the sandbox's /usr (its bin, sbin, lib, lib64 also linked from /): the
   * build's shell, tools and libraries, e.g. the bootstrap seed (recipes/std/seed.ts). Nothing of
   * the host is visible to such a build; it cannot declare host tools.
   */
  usr?: Drv | OutputRef;
  /** shell script run with -e -u by /bin/sh of `usr` (or, without usr, by the host's sh); mutually exclusive with builder/args */
  script?: Value;
  builder?: Value;
  args?: Value[];
  env?: Record<string, Value | undefined>;
  /**
   * Host commands the build may run, e.g. ["gcc", "make"], or whole Debian packages'
   * commands, e.g. "pkg:coreutils". Only these are on the build's PATH, and each one's package
   * version and binary digest are part of the derivation hash.
   */
  hostTools?: string[];
  outputs?: string[];
  /** make this a fixed-output derivation: the output must be a file with this sha256; gets network */
  sha256?: string;
  /** with sha256: places that may already have the bytes, tried before running the builder */
  sources?: FetchSourceSpec[];
}

/** Where a fixed output's bytes may come from: a URL, a Debian package, a local file or mirror folder. */
export type FetchSourceSpec = FetchSource;

export interface FetchArgs {
  name: string;
  sha256: string;
  /** tried in order; the first that yields the pinned bytes wins */
  sources: FetchSourceSpec[];
}

function isKind<K extends string>(v: unknown, k: K): boolean {
  return typeof v === "object" && v !== null && (v as Record<symbol, unknown>)[KIND] === k;
}
export const isDrv = (v: unknown): v is Drv => isKind(v, "drv");
export const isOutputRef = (v: unknown): v is OutputRef => isKind(v, "output");
export const isSource = (v: unknown): v is Source => isKind(v, "source");
export const isLazy = (v: unknown): v is Lazy => isKind(v, "lazy");
export const isStr = (v: unknown): v is Str => isKind(v, "str");

/** Keys every derivation value has: not attributes a recipe hung on it (pi4-llm-os.kernel). */
export const DRV_KEYS: ReadonlySet<string> = new Set(["name", "outputs", "args", "kind", "position", "out", "output"]);

/**
 * file:line:column of the recipe code that called derivation()/fetch(), in the recipe's own file
 * (the bundle's source map applied, engine/source-map.ts). Helper libraries in a `std/` folder of the recipe set (the
 * stdenv's pkg(), std's build()) are passed over like the API itself, so a package's position is
 * the line that made it, where `kiln why` should point; failing any other frame, the helper's. Structured call sites and one source-map lookup per call
 * site (a loop making 10k derivations asks once): formatting a whole mapped stack trace per
 * derivation cost more than the rest of the evaluation.
 */
function callerPosition(api: Function): string | undefined {
  // the frame that called the API is usually the recipe line; ten frames only when it is a std
  // helper's (or the API's own)
  return positionOf(callSites(SHORT_STACK, api), SHORT_STACK) ?? positionOf(callSites(LONG_STACK, api), 0);
}

const SHORT_STACK = 1;
const LONG_STACK = 10;

/** The structured call sites as the stack (one function for every capture, not one made per capture). */
const SITES = (_e: Error, s: NodeJS.CallSite[]): NodeJS.CallSite[] => s;

/** The call sites above `api`'s frame (the API function a recipe called), at most `limit`. */
function callSites(limit: number, api: Function): NodeJS.CallSite[] {
  const savedPrepare = Error.prepareStackTrace;
  const savedLimit = Error.stackTraceLimit;
  try {
    Error.prepareStackTrace = SITES;
    Error.stackTraceLimit = limit;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, api);
    return (holder.stack as NodeJS.CallSite[] | undefined) ?? [];
  } finally {
    Error.prepareStackTrace = savedPrepare;
    Error.stackTraceLimit = savedLimit;
  }
}

/**
 * The first recipe frame's position; failing that, the first std helper's. Sites cut short at
 * `limit` (0: not cut) without a recipe frame give undefined: look further.
 */
function positionOf(sites: NodeJS.CallSite[], limit: number): string | undefined {
  let helper: string | undefined;
  for (let i = 0; i < sites.length; i++) {
    const site = sites[i]!;
    const file = site.getFileName();
    if (!file) continue;
    // by file, then by the frame's offset in it: a loop's derivations come from one place, whose
    // line and column are read and mapped once, and no key string is built per frame
    let byOffset = places.get(file);
    if (byOffset === undefined) places.set(file, (byOffset = new Map()));
    const offset = site.getPosition();
    let place = byOffset.get(offset);
    if (place === undefined) byOffset.set(offset, (place = placeOf(file, site.getLineNumber(), site.getColumnNumber())));
    if (place.kind === "other") continue;
    if (place.kind === "helper") {
      helper ??= place.pos;
      continue;
    }
    recipeDepth = i + 1;
    return place.pos;
  }
  recipeDepth = 0;
  // a helper's position only once the whole stack (as far as LONG_STACK goes) had no recipe frame
  return limit > 0 && sites.length >= limit ? undefined : helper;
}
/** How many frames positionOf's last answer took to reach a recipe frame; 0: none had one. */
let recipeDepth = 0;

export interface Place {
  pos: string;
  /** recipe: a recipe's line; helper: a std helper's; other: the API's own, Node's, or unknown */
  kind: "recipe" | "helper" | "other";
}
const OTHER: Place = { pos: "", kind: "other" };
const places = new Map<string, Map<number, Place>>();

function placeOf(file: string, line: number | null, col: number | null): Place {
  if (!line || !col) return OTHER;
  return classify(mapPosition(file, line, col));
}

function classify(pos: string): Place {
  return pos === API_FRAME ? OTHER : { pos, kind: STD_HELPER.test(pos) ? "helper" : "recipe" };
}

const API_FRAME = "";
/** The file this module runs from: engine/api.ts, or the CLI's bundle that holds it. */
const OWN_FILE = ((): string | undefined => {
  const saved = Error.prepareStackTrace;
  try {
    Error.prepareStackTrace = (_e, s) => s;
    return (new Error().stack as unknown as NodeJS.CallSite[])[0]?.getFileName() ?? undefined;
  } finally {
    Error.prepareStackTrace = saved;
  }
})();
/** a file in a recipe set's std/ folder: helper code, not the recipe a derivation belongs to */
const STD_HELPER = /[\\/]std[\\/][^\\/]+\.[cm]?[jt]s:\d+:\d+$/;

/** A generated position as the original file's, or API_FRAME for frames inside this module. */
function mapPosition(file: string, line: number, col: number): string {
  // this module's own frames: in the CLI's bundle, whose own (large) map is never needed here;
  // and Node's (the module loader's, under a module's top level): no recipe's
  if (file === OWN_FILE || file.startsWith("node:")) return API_FRAME;
  let out = originalPosition(file, line, col);
  if (!out) {
    // a module Node maps itself (recipes run under a TypeScript loader, as in kiln's tests)
    const entry = findSourceMap(file)?.findEntry(line - 1, col - 1) as
      | { originalSource?: string; originalLine?: number; originalColumn?: number }
      | undefined;
    const base = file.startsWith("file://") ? fileURLToPath(file) : file;
    if (entry?.originalSource !== undefined && entry.originalLine !== undefined && entry.originalColumn !== undefined) {
      const src = entry.originalSource;
      out = {
        file: src.startsWith("file://") ? fileURLToPath(src) : isAbsolute(src) ? src : resolve(dirname(base), src),
        line: entry.originalLine + 1,
        col: entry.originalColumn + 1,
      };
    } else out = { file: base, line, col };
  }
  return formatPosition(out);
}

/** file:line:col of an original position; API_FRAME for this module's own lines. */
function formatPosition(out: Mapped): string {
  if (out.file.endsWith("/engine/api.ts") || out.file.endsWith("/engine/api.js")) return API_FRAME;
  return `${out.file}:${out.line}:${out.col}`;
}

/**
 * What a call of derivation() or fetch() at this place of a bundle is (engine/loader.ts,
 * markSites): a recipe line, whose derivations are positioned there; a std helper's line, whose
 * derivations are positioned by the helper's callers; or another (the API's own).
 */
export function siteKind(place: Mapped): Place {
  return classify(formatPosition(place));
}

/** The position atCaller() fixed for the derivations its function makes; null: find each one's. */
let fixedPosition: string | undefined | null = null;

/**
 * For helper libraries that make many derivations in one call (std's seed(): two per Debian
 * package, hundreds per tree): run `make` with every derivation it creates positioned where
 * atCaller was called from, found once, rather than by a stack capture per derivation. Called
 * from a helper in the recipe set's std/ folder, that is the recipe line that called the helper,
 * which each derivation would have got anyway (std frames are passed over); elsewhere it is the
 * atCaller line itself. Everything `make` creates synchronously gets it, derivations made by a
 * callback the helper runs included; after `make` returns (or awaits), positions are found one
 * by one again. Nested calls keep the outermost position.
 */
export function atCaller<T>(make: () => T): T {
  if (fixedPosition !== null) return make();
  fixedPosition = callerPosition(atCaller);
  try {
    return make();
  } finally {
    fixedPosition = null;
  }
}

/**
 * A derivation value, positioned where atCaller() fixed it, else by `where`: the position itself
 * (a marked call at a recipe line); with `inHelper`, the call site function of a marked call in a
 * std helper (helperPosition); else the API function the recipe called (derivation, fetch), whose
 * caller is the position.
 */
function makeDrv(kind: "build" | "fetch", args: DerivationArgs | FetchArgs, outputs: readonly string[], where: string | Function, inHelper = false): Drv {
  const position = fixedPosition !== null ? fixedPosition : typeof where === "string" ? where : inHelper ? helperPosition(where) : callerPosition(where);
  return new DrvValue(kind, args.name, outputs, args, position);
}

/**
 * A derivation value. Its methods and the default output's getter live on the prototype: an
 * object literal with its own getter and method made two closures and a slow object for every
 * derivation, more than half of what a recipe's derivation() call cost. `output` is a method:
 * call it on the derivation (`lib.output("dev")`).
 */
class DrvValue implements Drv {
  declare readonly [KIND]: "drv";
  readonly name: string;
  readonly outputs: readonly string[];
  readonly args: DerivationArgs | FetchArgs;
  readonly kind: "build" | "fetch";
  readonly position: string | undefined;
  /** the default output's reference (nearly every use); any other in a map */
  #first: OutputRef | undefined;
  #refs: Map<string, OutputRef> | undefined;

  constructor(kind: "build" | "fetch", name: string, outputs: readonly string[], args: DerivationArgs | FetchArgs, position: string | undefined) {
    this.name = name;
    this.outputs = outputs;
    this.args = args;
    this.kind = kind;
    this.position = position;
  }

  get out(): OutputRef {
    // (no outputs at all: output() says so)
    return (this.#first ??= this.outputs.length ? { [KIND]: "output", drv: this, output: this.outputs[0]! } : this.output(this.outputs[0]!));
  }

  output(name: string): OutputRef {
    const { outputs, position } = this;
    if (!outputs.includes(name)) {
      throw new KilnError("RECIPE_INVALID", `derivation '${this.name}' has no output '${name}' (outputs: ${outputs.join(", ")})${position ? ` (${position})` : ""}`,
        `use one of its outputs, or add '${name}' to its outputs`, position ? { position } : {});
    }
    if (name === outputs[0]) return this.out;
    this.#refs ??= new Map();
    let r = this.#refs.get(name);
    if (!r) this.#refs.set(name, (r = { [KIND]: "output", drv: this, output: name }));
    return r;
  }
}
Object.defineProperty(DrvValue.prototype, KIND, { value: "drv" });

/** A sealed derivation's value: it carries its hash, not the values it was made of. */
function sealedDrvValue(kind: "build" | "fetch", name: string, outputs: readonly string[], position: string | undefined, sealed: Sealed): Drv {
  const drv = new DrvValue(kind, name, outputs, undefined as never, position);
  Object.defineProperty(drv, SEALED, { value: sealed });
  Object.defineProperty(drv, "args", {
    enumerable: true,
    get(): never {
      throw sealBroken(`recipe code reads the arguments of derivation '${name}'${position ? ` (${position})` : ""}, which its module's record does not keep`);
    },
  });
  return drv;
}

/** The outputs of a derivation that names none, shared by all of them (frozen: nothing writes to it). */
export const DEFAULT_OUTPUTS: readonly string[] = Object.freeze(["out"]);

/** A build step. */
export function derivation(args: DerivationArgs): Drv {
  checkBuild(args);
  return makeDrv("build", args, args.outputs ?? DEFAULT_OUTPUTS, derivation);
}

function checkBuild(args: DerivationArgs): void {
  if (args.script !== undefined && (args.builder !== undefined || args.args !== undefined)) {
    throw new KilnError("RECIPE_INVALID", `derivation '${args.name}': give either script or builder/args, not both`, "remove script, or remove builder and args");
  }
}

/** A fixed-output fetch: the file whose sha256 is pinned, from the first source that has it. */
export function fetch(args: FetchArgs): Drv {
  return makeDrv("fetch", args, DEFAULT_OUTPUTS, fetch);
}

/**
 * derivation() and fetch() called at a place of the bundle the loader marked when it bundled the
 * recipes (engine/loader.ts, markSites), through the function the bundle has for that call site.
 * At a recipe line (SITE), the bundle passes the line's position: no stack is captured. In a std
 * helper (HELPER_SITE), it passes the site's function, and the frames above it are read, as many
 * as the last derivation made there needed to reach a recipe line. A derivation an atCaller()
 * helper makes keeps the helper's position, as it would otherwise.
 */
export const SITE = "__kilnAt";
export const HELPER_SITE = "__kilnIn";
/** The API functions whose calls the loader marks. */
export const MARKED_APIS = ["derivation", "fetch"] as const;
Object.defineProperties(derivation, {
  [SITE]: {
    value: function derivationAt(args: DerivationArgs, position: string): Drv {
      checkBuild(args);
      return makeDrv("build", args, args.outputs ?? DEFAULT_OUTPUTS, position);
    },
  },
  [HELPER_SITE]: {
    value: function derivationIn(args: DerivationArgs, site: Function): Drv {
      checkBuild(args);
      return makeDrv("build", args, args.outputs ?? DEFAULT_OUTPUTS, site, true);
    },
  },
});
Object.defineProperties(fetch, {
  [SITE]: { value: function fetchAt(args: FetchArgs, position: string): Drv { return makeDrv("fetch", args, DEFAULT_OUTPUTS, position); } },
  [HELPER_SITE]: { value: function fetchIn(args: FetchArgs, site: Function): Drv { return makeDrv("fetch", args, DEFAULT_OUTPUTS, site, true); } },
});

/**
 * callerPosition for a call in a std helper, whose first frame (the helper's) is never the
 * answer: from the frames above the call site's function, as many as reached a recipe frame the
 * last time, then as far as LONG_STACK goes. The same answer callerPosition gives, with one
 * capture of two frames for a helper a recipe line calls directly, rather than two captures.
 */
function helperPosition(site: Function): string | undefined {
  const depth = helperDepths.get(site) ?? 2;
  // a site whose last answer needed the whole LONG_STACK is read that far at once
  const short = depth < LONG_STACK;
  let pos = positionOf(callSites(depth, site), short ? depth : 0);
  if (pos === undefined && short) pos = positionOf(callSites(LONG_STACK, site), 0);
  const next = recipeDepth || LONG_STACK;
  if (next !== depth) helperDepths.set(site, next);
  return pos;
}
/** By call site function: weakly, so that a bundle `kiln watch` has loaded before is not kept. */
const helperDepths = new WeakMap<Function, number>();

/** A local file or directory, hashed by content and copied into the store as an input. */
export function source(base: string, rel?: string, name?: string): Source {
  const baseDir = base.startsWith("file:") ? dirname(fileURLToPath(base)) : base;
  const path = rel === undefined ? baseDir : isAbsolute(rel) ? rel : resolve(baseDir, rel);
  const base_ = path.split("/").pop() || "source";
  return { [KIND]: "source", path, name: name ?? base_.replace(/[^a-zA-Z0-9+._?=-]/g, "_").replace(/^\./, "_") };
}

/** Refer to a derivation that is only looked up when the graph is walked. */
export function lazy(get: () => Drv | OutputRef): Lazy {
  return { [KIND]: "lazy", get };
}

/**
 * Template tag: a string whose interpolated derivations and sources become inputs.
 *
 * The text is taken raw, as the shell should see it: backslashes stay as written (`\n`, `\(`,
 * `\1` reach sed or printf unchanged). Only `\${` and `` \` `` are unescaped, because a template
 * cannot contain them otherwise: write `\${var}` for a shell `${var}`.
 */
export function sh(strings: TemplateStringsArray, ...values: Value[]): Str {
  let texts = unescaped.get(strings);
  if (texts === undefined) unescaped.set(strings, (texts = strings.raw.map((raw) => raw.replace(/\\(\$\{|`)/g, "$1"))));
  const parts: Part[] = [];
  for (let i = 0; i < texts.length; i++) {
    if (texts[i]) parts.push(texts[i]!);
    if (i < values.length) pushValue(parts, values[i]!);
  }
  return { [KIND]: "str", parts };
}

/** A template's texts, unescaped: the same strings object comes back at each run of a template (a loop's), so once each. */
const unescaped = new WeakMap<TemplateStringsArray, string[]>();

/** Concatenate values into one string with context. */
export function concat(...values: Value[]): Str {
  const parts: Part[] = [];
  for (const v of values) pushValue(parts, v);
  return { [KIND]: "str", parts };
}

function pushValue(parts: Part[], v: Value): void {
  if (typeof v === "string") parts.push(v);
  else if (typeof v === "number" || typeof v === "boolean") parts.push(String(v));
  else if (Array.isArray(v)) {
    v.forEach((x, i) => {
      if (i > 0) parts.push(" ");
      pushValue(parts, x);
    });
  } else if (isDrv(v)) parts.push(v.out);
  else if (isStr(v)) parts.push(...v.parts);
  else if (isOutputRef(v) || isSource(v) || isLazy(v)) parts.push(v);
  else throw new KilnError("RECIPE_INVALID", `cannot interpolate ${describeValue(v)} into a recipe string`, "interpolate strings, numbers, booleans, derivations, outputs, sources or arrays of them");
}

export function toParts(v: Value): Part[] {
  const parts: Part[] = [];
  pushValue(parts, v);
  return parts;
}

/** A value's parts, to read: a string with context's own (a script's: no copy), else toParts'. */
export function partsOf(v: Value): readonly Part[] {
  return isStr(v) ? v.parts : toParts(v);
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "object") return `an object (${JSON.stringify(v).slice(0, 60)})`;
  return `${typeof v} ${String(v)}`;
}

// ---- module records (engine/module-records.ts) ----------------------------------------------
// A recipe module whose files, sources and host tools are unchanged since an evaluation kept its
// exported values is not run again: the bundle holds a stub that thaws those values, derivations
// standing as their hashes ("sealed"). These are the bundle's side of it; recipes do not call them.

/** What a sealed derivation stands for: its hash, and the record (module) it came from. */
export interface Sealed {
  /** null: the evaluation the record was made from did not reach it */
  hash: string | null;
  record: string;
}
export const SEALED: unique symbol = Symbol.for("kiln.sealed") as never;
export const sealedOf = (d: Drv): Sealed | undefined => (d as unknown as Record<symbol, Sealed | undefined>)[SEALED];

const SEAL_BROKEN = Symbol.for("kiln.sealBroken");
let sealBreaks = 0;
/** Recipe code needed more of a sealed value than its record keeps: the engine evaluates without records. */
export function sealBroken(message: string): Error {
  sealBreaks++;
  return Object.assign(new Error(message), { [SEAL_BROKEN]: true });
}
/** How many seals broke in this process: one that recipe code caught and went on from still counts. */
export const sealBreakCount = (): number => sealBreaks;
export const isSealBroken = (e: unknown): boolean => typeof e === "object" && e !== null && (e as Record<symbol, unknown>)[SEAL_BROKEN] === true;

/**
 * A module's exported values as kept: derivations in a table (each [hash or null when not
 * evaluated, name, outputs, kind, position, attributes hung on it]), values as tagged JSON: {a: [...]} an array, {o: {...}} an
 * object, {d: i} derivation i, {r: [i, output]} one of its outputs, {u: 1} undefined.
 */
export interface KeptExports {
  d: Array<[string | null, string, string[], "build" | "fetch", string | null, Record<string, Kept> | null]>;
  v: Record<string, Kept>;
}
export type Kept = null | boolean | number | string | { a: Kept[] } | { o: Record<string, Kept> } | { d: number } | { r: [number, string] } | { u: 1 };

/** The bundle's stub of a sealed module: its exports from their record. */
export function __kilnThaw(record: string, kept: KeptExports): Record<string, unknown> {
  const drvs = kept.d.map(([hash, name, outputs, kind, position]) => sealedDrvValue(kind, name, outputs, position ?? undefined, { hash, record }));
  const thaw = (k: Kept): unknown => {
    if (k === null || typeof k !== "object") return k;
    if ("a" in k) return k.a.map(thaw);
    if ("d" in k) return drvs[k.d];
    if ("r" in k) return drvs[k.r[0]]!.output(k.r[1]);
    if ("u" in k) return undefined;
    const o: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(k.o)) o[key] = thaw(v);
    return o;
  };
  kept.d.forEach(([, , , , , attrs], i) => {
    if (attrs) for (const [key, v] of Object.entries(attrs)) (drvs[i] as unknown as Record<string, unknown>)[key] = thaw(v);
  });
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(kept.v)) out[key] = thaw(v);
  return out;
}

const MODULES = Symbol.for("kiln.modules");
/** What the engine listens with while a bundle loads (engine/module-records.ts LoadedModules). */
export interface ModuleHooks {
  /** a recipe module's code ended (a stub's too) */
  ended(path: string, ns: object): void;
  /** every module the entry imports has run; the entry's own code is next */
  imported(): void;
}
const hooks = (): ModuleHooks | undefined => (globalThis as Record<symbol, unknown>)[MODULES] as ModuleHooks | undefined;
/** Appended to every recipe module of a bundle but the entry: hands its namespace over as its code ends. */
export function __kilnModule(path: string, ns: object): void {
  hooks()?.ended(path, ns);
}
/** First in the entry's code: everything it imports has run. */
export function __kilnImported(): void {
  hooks()?.imported();
}
/** For the engine: run `load` with `h` listening. */
export async function withModuleHooks<T>(h: ModuleHooks, load: () => Promise<T>): Promise<T> {
  const g = globalThis as Record<symbol, unknown>;
  g[MODULES] = h;
  try {
    return await load();
  } finally {
    delete g[MODULES];
  }
}
