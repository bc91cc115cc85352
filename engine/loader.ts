// Loading a recipe set: its TypeScript entry file is bundled with esbuild into a cache keyed by
// the content digest of every file that went into the bundle, then imported. Recipes import the
// recipe API as "kiln": a module of the bundle that takes the engine's own api module from a
// global, so recipe values and the engine share one copy of it, and the bundle imports nothing.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { blake3Hex } from "../store/digest.js";
import { isKilnError, KilnError } from "../store/errors.js";
import * as api from "./api.js";
import { DRV_KEYS, HELPER_SITE, isDrv, isOutputRef, isSealBroken, MARKED_APIS, SITE, siteKind, withModuleHooks, type Drv, type OutputRef } from "./api.js";
import { IDENT, LoadedModules, stubModule, type FileStamp, type ModuleRecords } from "./module-records.js";
import { mapStack, positionsIn, SITE_DIGITS, siteName } from "./source-map.js";
import { importModule, requireModule } from "./dynamic-import.js";

const API_GLOBAL = Symbol.for("kiln.api");
/** What api.ts exports for the engine alone: not for recipes (the stubs' and hooks' names are). */
const ENGINE_ONLY = new Set(["withModuleHooks", "sealBroken", "isSealBroken", "sealBreakCount", "sealedOf", "SEALED", "DEFAULT_OUTPUTS", "partsOf", "siteKind", "SITE", "HELPER_SITE", "MARKED_APIS"]);
/**
 * What recipes import as "kiln": the engine's recipe API as loadRecipeSet hands it over. No module
 * file to find, read and compile for each bundle (the CLI holds the API in its own bundle), and a
 * bundle made by kiln run from its sources works for the compiled CLI too. derivation() and
 * fetch() are declared by their site names, so that the bundle's calls of them can be found.
 */
const API_STUB = `const __kiln_api = globalThis[Symbol.for("kiln.api")];\n${Object.keys(api)
  .filter((k) => !ENGINE_ONLY.has(k))
  .map((k) => ((MARKED_APIS as readonly string[]).includes(k) ? `const ${siteName(k, 0)} = __kiln_api.${k};\nexport { ${siteName(k, 0)} as ${k} };` : `export const ${k} = __kiln_api.${k};`))
  .join("\n")}\n`;

const SITES_MAX = 10 ** SITE_DIGITS - 1;
/** What ends a line for V8 and for the source map's generated lines. */
const LINE_BREAK = /\r\n?|[\n\u2028\u2029]/g;

/**
 * Give each call of derivation() or fetch() in recipe code a position found now, from the bundle's
 * map, rather than by a stack capture at each call (engine/api.ts, callerPosition): a call site
 * `__kiln_derivation$000000(` becomes `__kiln_derivation$000007(`, and site 7 is a function added
 * at the end of the bundle that calls the API with its position. A call in a std helper, whose
 * derivations are positioned by the helper's callers, is marked too: its site function passes
 * itself, the frame above which those callers are. Only the calls esbuild wrote by the stub's
 * name are marked: the API passed around as a value and a place the map does not know are
 * positioned at run time, as before.
 */
function markSites(code: string, map: string, bundlePath: string): string {
  const declared = MARKED_APIS.filter((k) => new RegExp(`\\n(?:var|let|const) ${siteName(k, 0).replace("$", "\\$")} = __kiln_api\\.${k};\\n`).test(code));
  if (declared.length === 0) return code;
  const at = positionsIn(map, bundlePath);
  const calls = new RegExp(`__kiln_(${declared.join("|")})\\$${"0".repeat(SITE_DIGITS)}\\(`, "g");
  const parts: string[] = [];
  const added: string[] = [];
  let from = 0;
  let line = 1;
  let lineStart = 0;
  for (let m = calls.exec(code); m !== null && added.length < SITES_MAX; m = calls.exec(code)) {
    // not a call of the name: part of a longer name, or a property (`x.name(`, not a spread's
    // `...name(`); nor `new name(`, which V8 positions at the keyword
    const before = code[m.index - 1] ?? "";
    if (/[\w$]/.test(before) || (before === "." && !code.endsWith("...", m.index)) || code.endsWith("new ", m.index)) continue;
    LINE_BREAK.lastIndex = lineStart;
    for (let br = LINE_BREAK.exec(code); br !== null && br.index < m.index; br = LINE_BREAK.exec(code)) {
      line++;
      lineStart = br.index + br[0].length;
    }
    const mapped = at(line, m.index - lineStart + 1);
    const place = mapped && siteKind(mapped);
    if (place === undefined || place.kind === "other") continue;
    const fn = m[1]!;
    const name = siteName(fn, added.length + 1);
    parts.push(code.slice(from, m.index), name);
    from = m.index + name.length;
    const stub = siteName(fn, 0);
    added.push(`function ${name}(a) { return ${place.kind === "recipe" ? `${stub}.${SITE}(a, ${JSON.stringify(place.pos)})` : `${stub}.${HELPER_SITE}(a, ${name})`}; }`);
  }
  if (added.length === 0) return code;
  parts.push(code.slice(from), "// the call sites of derivation() and fetch() (engine/loader.ts, markSites)\n", added.join("\n"), "\n");
  return parts.join("");
}

interface CacheIndex {
  inputs: Record<string, FileStamp>; // size, mtimeMs, ino, blake3
  bundle: string;
  /** every file of the bundle with the files it imports */
  graph: Record<string, string[]>;
  /** modules bundled as stubs of their records (engine/module-records.ts): path -> record id */
  stubs: Record<string, string>;
}

/** Recipe modules: the files a bundle hands over to be recorded, or stands in for by a record. */
const RECIPE_MODULE = /\.m?tsx?$/;
/**
 * CommonJS written in a TypeScript file (`module.exports`, `exports.x`, `export =`, `require()`):
 * its namespace is not its exports, so it is neither recorded nor handed over; it runs every time.
 */
const COMMONJS = /\bmodule\.exports\b|\bexports\.[A-Za-z_$]|\bexport\s*=|\brequire\s*\(/;

function fileStamp(p: string): [number, number, number, string] | undefined {
  try {
    const s = statSync(p);
    return [s.size, s.mtimeMs, s.ino, ""];
  } catch {
    return undefined;
  }
}

/**
 * Bump when the bundle's shape changes (v2: source map paths name the real recipe files; v3: no
 * sources in the map; v4: JSON modules as JSON.parse; v5: the map in a file of its own; v6:
 * recipe modules hand their namespace over, sealed ones are stubs; v7: the API from a global; v8:
 * calls of derivation() and fetch() marked with their positions).
 */
const BUNDLE_FORMAT = "v8";

/**
 * The index of an entry's bundle. The key holds the API's stub (the names a bundle takes from the
 * engine), and whether modules may be stubs of their records.
 */
function indexFileOf(entry: string, cacheDir: string, sealed: boolean): string {
  return join(cacheDir, `${blake3Hex(`${BUNDLE_FORMAT}\0${API_STUB}\0${entry}${sealed ? "\0sealed" : ""}`).slice(0, 32)}.json`);
}

/**
 * Return the bundle for an entry file, rebuilding it only when one of its inputs changed. With
 * `seal`, a module other than the entry that has a usable record is bundled as its stub; such a
 * bundle is also rebuilt when a stub's record is no longer usable or another module got one.
 */
async function bundle(entry: string, cacheDir: string, seal?: ModuleRecords): Promise<{ file: string; index: CacheIndex }> {
  mkdirSync(cacheDir, { recursive: true });
  const indexFile = indexFileOf(entry, cacheDir, seal !== undefined);
  // esbuild names files by their real path
  const entryPath = realpathSync(resolve(entry));
  if (existsSync(indexFile)) {
    try {
      const idx = JSON.parse(readFileSync(indexFile, "utf8")) as CacheIndex;
      let fresh = existsSync(join(cacheDir, idx.bundle)) && existsSync(join(cacheDir, `${idx.bundle}.map`));
      for (const [f, st] of Object.entries(idx.inputs)) {
        if (!fresh) break;
        const now = fileStamp(f);
        if (!now) fresh = false;
        else if (now[0] !== st[0] || now[1] !== st[1] || now[2] !== st[2]) {
          // touched but maybe unchanged: compare content
          fresh = blake3Hex(readFileSync(f)) === st[3];
        }
      }
      if (fresh && seal) {
        for (const [p, id] of Object.entries(idx.stubs)) if (seal.usable(p)?.id !== id) fresh = false;
        for (const p of Object.keys(idx.graph)) if (fresh && !(p in idx.stubs) && p !== entryPath && RECIPE_MODULE.test(p) && seal.usable(p)) fresh = false;
      }
      if (fresh) return { file: join(cacheDir, idx.bundle), index: idx };
    } catch {
      /* unreadable index: rebuild */
    }
  }

  // required, not imported: import() of a CommonJS package makes Node's module loader scan its
  // 100 kB for exports (~13 ms here) before anything runs
  const esbuild = requireModule<typeof import("esbuild")>("esbuild", import.meta.url);
  const stubs: CacheIndex["stubs"] = {};
  // each file's stamp as esbuild was given it: a save while it bundles is then a change next time
  const read = new Map<string, FileStamp>();
  const readText = (path: string): string => {
    const st = statSync(path);
    const bytes = readFileSync(path);
    read.set(path, [st.size, st.mtimeMs, st.ino, blake3Hex(bytes)]);
    return bytes.toString("utf8");
  };
  const closures: Array<Record<string, FileStamp>> = [];
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      write: false,
      // beside the bundle, read only when a position is asked for (engine/source-map.ts)
      sourcemap: "external",
      // positions need only the mappings; the sources' text (the seed's lock is 100 kB of JSON)
      // would be parsed again by every process that loads the bundle
      sourcesContent: false,
      // source map paths are written relative to the output's folder: the bundle lives in the
      // cache, so recipe positions (meta.position, stack traces) then name the real recipe files
      outdir: cacheDir,
      metafile: true,
      logLevel: "silent",
      plugins: [
        {
          name: "kiln",
          setup(b) {
            b.onResolve({ filter: /^kiln$/ }, () => ({ path: "kiln", namespace: "kiln-api" }));
            b.onLoad({ filter: /.*/, namespace: "kiln-api" }, () => ({ contents: API_STUB, loader: "js" }));
            // recipe files keep their own location in import.meta.url (for source() paths)
            b.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, (args) => {
              if (args.path.includes("/node_modules/")) return undefined;
              const source = readText(args.path);
              const module = args.path !== entryPath && RECIPE_MODULE.test(args.path) && !COMMONJS.test(source);
              const kept = module ? seal?.usable(args.path) : undefined;
              if (kept) {
                stubs[args.path] = kept.id;
                closures.push(kept.rec.closure);
                return { contents: stubModule(kept.id, kept.rec), loader: "js", resolveDir: dirname(args.path) };
              }
              let text = source
                .replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(args.path).href))
                .replace(/\bimport\.meta\.dirname\b/g, JSON.stringify(dirname(args.path)))
                .replace(/\bimport\.meta\.filename\b/g, JSON.stringify(args.path));
              // the module's namespace, for its record (engine/module-records.ts); after its own
              // lines, so that their positions stay as they are
              if (module) {
                const self = JSON.stringify(args.path);
                text += `\n;import * as __kiln_self from ${self};\nimport { __kilnModule as __kiln_keep } from "kiln";\n__kiln_keep(${self}, __kiln_self);\n`;
              } else if (args.path === entryPath && !COMMONJS.test(source)) {
                // first in the entry's code (imports run before it wherever they are written),
                // on its first line: its lines stay where they are
                text = `__kiln_imported();${text}\n;import { __kilnImported as __kiln_imported } from "kiln";\n`;
              }
              const ext = extname(args.path).slice(1);
              const loader = ext.startsWith("t") || ext.endsWith("ts") ? (ext.endsWith("x") ? "tsx" : "ts") : ext.endsWith("x") ? "jsx" : "js";
              return { contents: text, loader, resolveDir: dirname(args.path) };
            });
            // a JSON module as a JSON.parse of its text, which V8 reads many times faster than the
            // object literal esbuild's json loader writes (the seed's lock is 100 kB: 40 ms per
            // process here); the top-level keys stay importable by name
            b.onLoad({ filter: /\.json$/ }, (args) => {
              if (args.path.includes("/node_modules/")) return undefined;
              const text = readText(args.path);
              let keys: string[] = [];
              try {
                const v = JSON.parse(text) as unknown;
                if (v && typeof v === "object" && !Array.isArray(v)) keys = Object.keys(v).filter((k) => IDENT.test(k) && k !== "default");
              } catch (e) {
                return { errors: [{ text: `invalid JSON in ${args.path}: ${(e as Error).message}` }] };
              }
              const named = keys.map((k, i) => `const k${i} = data[${JSON.stringify(k)}];\nexport { k${i} as ${k} };`).join("\n");
              return { contents: `const data = JSON.parse(${JSON.stringify(text)});\nexport default data;\n${named}\n`, loader: "js" };
            });
          },
        },
      ],
    });
  } catch (e) {
    const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } }> }).errors ?? [];
    const text = errors.map((x) => (x.location ? `${x.location.file}:${x.location.line}:${x.location.column}: ${x.text}` : x.text)).join("\n");
    throw new KilnError("RECIPE_LOAD", `cannot compile the recipes in ${entry}:\n${text || (e as Error).message}`, "fix the error above; `npm run typecheck` shows type errors too");
  }
  const out = result.outputFiles.find((f) => !f.path.endsWith(".map"))!;
  const mapFile = result.outputFiles.find((f) => f.path.endsWith(".map"))!;
  const map = mapFile.contents;
  const code = Buffer.from(markSites(out.text, mapFile.text, out.path));
  // the map is part of the name: an edit that moves lines but bundles to the same code still
  // needs its own positions
  const digest = blake3Hex(Buffer.concat([code, Buffer.from([0]), map])).slice(0, 32);
  const name = `${digest}.mjs`;
  const target = join(cacheDir, name);
  if (!existsSync(target)) {
    // the map first: whoever finds the bundle finds its map (engine/source-map.ts)
    for (const [file, bytes] of [[`${target}.map`, map], [target, code]] as const) {
      const tmp = tmpName(file);
      writeFileSync(tmp, bytes);
      renameSync(tmp, file);
    }
  }
  const inputs: CacheIndex["inputs"] = {};
  const graph: CacheIndex["graph"] = {};
  for (const [f, info] of Object.entries(result.metafile!.inputs)) {
    // the recipe API is the engine's, not a file of the recipe set
    if (f.startsWith("kiln-api:")) continue;
    const abs = resolve(f);
    const had = read.get(abs);
    const st = had ? undefined : fileStamp(abs);
    if (had) inputs[abs] = had;
    else if (st) inputs[abs] = [st[0], st[1], st[2], blake3Hex(readFileSync(abs))];
    graph[abs] = info.imports.filter((i) => !i.external && !i.path.startsWith("kiln-api:")).map((i) => resolve(i.path));
  }
  // a stub's files are the bundle's inputs too: an edit of one of them makes the module run again
  for (const c of closures) for (const [f, st] of Object.entries(c)) inputs[f] ??= st;
  const index: CacheIndex = { inputs, bundle: name, graph, stubs };
  const tmpIndex = tmpName(indexFile);
  writeFileSync(tmpIndex, JSON.stringify(index));
  renameSync(tmpIndex, indexFile);
  return { file: target, index };
}

/** A temporary name of our own: two kiln processes may fill the same cache at once. */
function tmpName(target: string): string {
  return `${target}.${randomBytes(6).toString("hex")}.tmp`;
}

export interface RecipeSet {
  entry: string;
  module: Record<string, unknown>;
  /** files that went into the recipe set (for watch mode and history), sealed modules' included */
  files: string[];
  /** blake3 of each of those files, as bundled */
  digests: Record<string, string>;
  /** the recipe modules of the load, by path: their exports as their code left them, to be recorded */
  modules: LoadedModules;
  /** the modules bundled as stubs of their records */
  stubs: ReadonlySet<string>;
  /** the files of a module's import closure, with their stamps; undefined for a file not bundled */
  closureOf(path: string): Record<string, FileStamp> | undefined;
}

/**
 * Load a recipe set. `records`: with `seal`, the modules to stand in for by their records; either
 * way the modules that ran are handed over in `modules` (engine/module-records.ts).
 */
export async function loadRecipeSet(entry: string, cacheDir: string, o: { records?: ModuleRecords; seal?: boolean } = {}): Promise<RecipeSet> {
  if (!existsSync(entry)) {
    throw new KilnError("RECIPE_NOT_FOUND", `no recipe set at ${entry}`, "run kiln inside a project with recipes/index.ts, or pass --recipes <file>");
  }
  const { file, index } = await bundle(entry, cacheDir, o.seal ? o.records : undefined);
  const modules = new LoadedModules();
  let module: Record<string, unknown>;
  try {
    (globalThis as Record<symbol, unknown>)[API_GLOBAL] = api;
    module = await withModuleHooks(modules, () => importModule(pathToFileURL(file).href));
  } catch (e) {
    // a mistake the recipe API caught says so itself (what, where, how to fix)
    if (isKilnError(e) || isSealBroken(e)) throw e;
    throw new KilnError("RECIPE_LOAD", `evaluating the recipes in ${entry} failed: ${mapStack(String((e as Error)?.stack ?? e))}`, "fix the recipe code at the location above");
  }
  const closureOf = (path: string): Record<string, FileStamp> | undefined => {
    if (!(path in index.graph)) return undefined;
    const out: Record<string, FileStamp> = {};
    const stack = [path];
    while (stack.length) {
      const f = stack.pop()!;
      if (out[f]) continue;
      const id = index.stubs[f];
      const kept = id !== undefined ? o.records?.usable(f) : undefined;
      if (id !== undefined) {
        if (kept?.id !== id) return undefined;
        Object.assign(out, kept.rec.closure);
        continue;
      }
      const st = index.inputs[f];
      if (!st) return undefined;
      out[f] = st;
      stack.push(...(index.graph[f] ?? []));
    }
    return out;
  };
  return {
    entry, module, files: Object.keys(index.inputs), digests: Object.fromEntries(Object.entries(index.inputs).map(([f, st]) => [f, st[3]])),
    modules, stubs: new Set(Object.keys(index.stubs)), closureOf,
  };
}

/** The targets object of a recipe set: its default export, else its named exports. */
function targetsOf(mod: Record<string, unknown>): Record<string, unknown> {
  const d = mod.default;
  return d && typeof d === "object" ? (d as Record<string, unknown>) : mod;
}

/** Resolve a dotted target name ("pi4-llm-os.tests.boot") to derivation values. */
export function selectTarget(set: RecipeSet, target: string): Array<{ name: string; value: Drv | OutputRef }> {
  let cur: unknown = targetsOf(set.module);
  const parts = splitTarget(cur as Record<string, unknown>, target);
  const walked: string[] = [];
  for (const p of parts) {
    if (typeof cur === "function") cur = (cur as () => unknown)();
    if (!cur || typeof cur !== "object" || !(p in (cur as object))) {
      const avail = cur && typeof cur === "object" ? Object.keys(cur as object).sort() : [];
      throw new KilnError("TARGET_NOT_FOUND", `no target '${[...walked, p].join(".")}' in ${set.entry}`,
        avail.length ? `available here: ${avail.join(", ")}` : "list targets with `kiln targets`", { target });
    }
    cur = (cur as Record<string, unknown>)[p];
    walked.push(p);
  }
  return collect(target, cur);
}

/** Target names may contain dots themselves; prefer the longest key that matches. */
function splitTarget(obj: Record<string, unknown>, target: string): string[] {
  if (target in obj) return [target];
  const parts = target.split(".");
  for (let i = parts.length - 1; i > 0; i--) {
    const head = parts.slice(0, i).join(".");
    if (head in obj) return [head, ...parts.slice(i)];
  }
  return parts;
}

function collect(name: string, v: unknown): Array<{ name: string; value: Drv | OutputRef }> {
  if (typeof v === "function") v = (v as () => unknown)();
  if (isDrv(v) || isOutputRef(v)) return [{ name, value: v }];
  if (Array.isArray(v)) return v.flatMap((x, i) => collect(`${name}.${i}`, x));
  if (v && typeof v === "object") return Object.keys(v).sort().flatMap((k) => collect(`${name}.${k}`, (v as Record<string, unknown>)[k]));
  throw new KilnError("TARGET_NOT_FOUND", `target '${name}' is not a derivation (got ${typeof v})`, "a target must be a derivation, a function returning one, or an object of them");
}

/** The top-level target names. */
export function listTargets(set: RecipeSet): string[] {
  const t = targetsOf(set.module);
  return Object.keys(t).sort();
}


/**
 * Every target under `prefix` (the whole set without one), however deeply nested, with the name
 * of the derivation it is: a derivation's own attributes (pi4-llm-os.kernel) included, in order
 * of the dotted path. A value reached twice is listed under each path.
 */
export function listTargetTree(set: RecipeSet, prefix?: string): Array<{ target: string; name: string }> {
  let start: unknown = targetsOf(set.module);
  if (prefix !== undefined) {
    const parts = splitTarget(start as Record<string, unknown>, prefix);
    for (const [i, p] of parts.entries()) {
      if (typeof start === "function") start = (start as () => unknown)();
      if (!start || typeof start !== "object" || !(p in (start as object))) {
        const avail = start && typeof start === "object" ? Object.keys(start as object).filter((k) => !isDrv(start) || !DRV_KEYS.has(k)).sort() : [];
        throw new KilnError("TARGET_NOT_FOUND", `no target '${parts.slice(0, i + 1).join(".")}' in ${set.entry}`,
          avail.length ? `available here: ${avail.join(", ")}` : "list targets with `kiln targets`", { target: prefix });
      }
      start = (start as Record<string, unknown>)[p];
    }
  }
  const out: Array<{ target: string; name: string }> = [];
  const onPath = new Set<unknown>();
  const walk = (path: string, v: unknown) => {
    if (typeof v === "function") v = (v as () => unknown)();
    if (!v || typeof v !== "object" || onPath.has(v)) return;
    if (isOutputRef(v)) return void out.push({ target: path, name: `${v.drv.name}${v.output === "out" ? "" : `.${v.output}`}` });
    if (isDrv(v) && path) out.push({ target: path, name: v.name });
    onPath.add(v);
    const keys = Object.keys(v).filter((k) => !isDrv(v) || !DRV_KEYS.has(k)).sort();
    for (const k of keys) walk(path ? `${path}.${k}` : k, (v as Record<string, unknown>)[k]);
    onPath.delete(v);
  };
  walk(prefix ?? "", start);
  return out;
}

/**
 * Every derivation value reachable from the recipe set's targets, however deeply nested
 * (including attributes hung on a derivation, as `pi4-llm-os.kernel`). For the lockfile.
 */
export function allTargetValues(set: RecipeSet): Array<Drv | OutputRef> {
  const out: Array<Drv | OutputRef> = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown) => {
    if (typeof v === "function") v = (v as () => unknown)();
    if (!v || typeof v !== "object" || seen.has(v)) return;
    seen.add(v);
    if (isOutputRef(v)) {
      out.push(v);
      return;
    }
    if (isDrv(v)) out.push(v);
    for (const k of Object.keys(v)) if (!isDrv(v) || !DRV_KEYS.has(k)) walk((v as Record<string, unknown>)[k]);
  };
  walk(targetsOf(set.module));
  return out;
}
