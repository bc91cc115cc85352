// Module records: evaluation that keeps what an edit did not touch.
//
// After an evaluation, each recipe module whose exports are plain data (derivations, outputs,
// strings, numbers, arrays and objects of them; no functions) and whose derivations were all
// evaluated gets a record: its exported values, derivations as their hashes, with everything
// their evaluation read: the files of its import closure, the local sources and the host tools
// of every derivation under them. The next evaluation that may seal (plan, realize) bundles such
// a module, while that closure, those sources and those tools are unchanged, as a stub that
// thaws the kept values (engine/api.ts __kilnThaw): its code does not run and nothing under its
// derivations is evaluated again. A sealed derivation becomes a node read from the store's
// derivations table, trusted as in the store under its last resolution (as Nix trusts a
// content-addressed derivation's realisation); when the store no longer has that, or recipe code
// reads more of a sealed value than the record keeps, the evaluation is made again without
// records (isSealBroken). Commands that show or compare whole graphs (eval, why, lock, graph)
// never seal.
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { hashTree } from "../store/archive.js";
import { blake3Hex, contentHashPart } from "../store/digest.js";
import type { LocalStore } from "../store/local-store.js";
import { makeStorePathName, type StorePathName } from "../store/paths.js";
import { DRV_KEYS, isDrv, isOutputRef, sealBroken, sealedOf, type Drv, type Kept, type KeptExports, type Sealed } from "./api.js";
import { canonicalJson } from "./canonical.js";
import type { Context } from "./context.js";
import type { Derivation, DerivationMeta, DrvHash, ResolvedHash } from "./derivation.js";
import type { Evaluator, Node } from "./evaluate.js";
import { closure, sourcesOf, toolsOf } from "./graph.js";
import type { HostToolFingerprint } from "./derivation.js";
import { fixedInStore } from "./plan.js";
import { substitutionKey } from "./substituter.js";

/** Bump when a record's shape or what it means changes. */
const RECORD_FORMAT = "m1";

/** size, mtimeMs, inode, blake3 of the bytes */
export type FileStamp = [number, number, number, string];

export interface ModuleRecord {
  v: typeof RECORD_FORMAT;
  /** the module's file */
  path: string;
  /** every file its evaluation read through imports, itself included */
  closure: Record<string, FileStamp>;
  exports: KeptExports;
  /** local sources under its derivations: [host path, store path name] */
  sources: Array<[string, string]>;
  /** host tools under its derivations, by the entry declared */
  tools: Record<string, HostToolFingerprint>;
}

const SELF = fileURLToPath(import.meta.url);

/** Set by cli/build.mjs in the CLI's bundles: the digest of the engine's and store's sources they were built from. */
declare const __KILN_ENGINE_ID: string | undefined;

/**
 * The engine that made a record: in the CLI's bundles, the sources they were built from (one
 * build's bundles share their records: a realize's serve the plan after an edit, whichever
 * bundle runs it); run from the sources or the compiled modules, the files evaluation and hashing
 * come from. A record of another engine is another file, never read.
 */
const ENGINE = typeof __KILN_ENGINE_ID === "string" ? `bundle ${__KILN_ENGINE_ID}` : (() => {
  const ext = extname(SELF);
  const files = [SELF, ...["api", "evaluate", "derivation", "canonical", "loader", "targets", "source-map"].map((m) => join(dirname(SELF), `${m}${ext}`))];
  return files.filter((f) => existsSync(f)).map((f) => {
    const s = statSync(f);
    return `${f}:${s.size}:${s.mtimeMs}:${s.ino}`;
  }).join("\n");
})();

/** Why a module gets no record, for tests and debugging; undefined: it may. */
export type Unkept = "function" | "value" | "cycle" | "name";

export class ModuleRecords {
  private readonly checked = new Map<string, { rec: ModuleRecord; id: string } | null>();
  private readonly byId = new Map<string, ModuleRecord>();
  private readonly sources = new Map<string, boolean>();

  constructor(readonly dir: string, private readonly ctx: Pick<Context, "hostTools" | "fileCache">) {}

  private fileOf(path: string): string {
    return join(this.dir, `${blake3Hex(`${RECORD_FORMAT}\0${ENGINE}\0${path}`).slice(0, 32)}.json`);
  }

  /**
   * The record of the module at `path`, with its id (a digest of its text), if one was made and
   * everything it was made from is unchanged: the closure's files (by stat, else by content),
   * the sources (by content, through the file digest cache) and the host tools' fingerprints.
   */
  usable(path: string): { rec: ModuleRecord; id: string } | undefined {
    const memo = this.checked.get(path);
    if (memo !== undefined) return memo ?? undefined;
    let found: { rec: ModuleRecord; id: string } | null = null;
    try {
      const text = readFileSync(this.fileOf(path), "utf8");
      const rec = JSON.parse(text) as ModuleRecord;
      if (rec.v === RECORD_FORMAT && rec.path === path && this.unchanged(rec)) {
        found = { rec, id: blake3Hex(text).slice(0, 16) };
        this.byId.set(found.id, rec);
      }
    } catch {
      /* no record, or an unreadable one: the module runs */
    }
    this.checked.set(path, found);
    return found ?? undefined;
  }

  /** Whether the source at `host` still makes the store path `store` (asked once per process: records share sources). */
  private sourceIs(host: string, store: string): boolean {
    const key = `${host}\0${store}`;
    let ok = this.sources.get(key);
    if (ok === undefined) {
      const name = store.slice(33);
      try {
        ok = makeStorePathName(contentHashPart(hashTree(host, { cache: this.ctx.fileCache }).digest, name), name) === store;
      } catch {
        ok = false;
      }
      this.sources.set(key, ok);
    }
    return ok;
  }

  private unchanged(rec: ModuleRecord): boolean {
    for (const [f, st] of Object.entries(rec.closure)) {
      let now;
      try {
        now = statSync(f);
      } catch {
        return false;
      }
      if (now.size === st[0] && now.mtimeMs === st[1] && now.ino === st[2]) continue;
      if (blake3Hex(readFileSync(f)) !== st[3]) return false;
    }
    for (const [host, store] of rec.sources) if (!this.sourceIs(host, store)) return false;
    for (const [entry, fp] of Object.entries(rec.tools)) {
      try {
        if (canonicalJson(this.ctx.hostTools.fingerprint(entry)) !== canonicalJson(fp)) return false;
      } catch {
        return false;
      }
    }
    return true;
  }

  /**
   * The node a sealed derivation stands for: its derivation as the store recorded it, its outputs
   * as the store has them under its last resolution. Throws a seal-broken error when the store
   * has not got them: the evaluation is then made again without records.
   */
  sealedNode(store: LocalStore, d: Drv, s: Sealed): Node {
    const rec = this.byId.get(s.record);
    if (s.hash === null) throw sealBroken(`derivation ${d.name} was not evaluated when its module was recorded`);
    const row = store.derivation(s.hash);
    if (!rec || !row) throw sealBroken(`derivation ${d.name} (${s.hash}) is not recorded in the store`);
    const { drv, meta } = JSON.parse(row.json) as { drv: Derivation; meta: DerivationMeta };
    const node: Node = { hash: s.hash as DrvHash, name: d.name, kind: d.kind, drv, meta, deps: [], sources: new Map() };
    let resolved: ResolvedHash | undefined;
    let inStore: boolean;
    if (drv.fixed) inStore = fixedInStore(store, node) !== undefined;
    else {
      resolved = store.resolution(s.hash) as ResolvedHash | undefined;
      const found = resolved ? store.realisations(drv.outputs.map((o) => [resolved!, o] as [string, string])) : new Map();
      inStore = drv.outputs.every((o) => found.has(substitutionKey(resolved!, o)));
    }
    if (!inStore) throw sealBroken(`the outputs of ${d.name} (${s.hash}) are not in the store`);
    node.sealed = { ...(resolved ? { resolved } : {}), sources: new Map(rec.sources.map(([host, store]) => [store as StorePathName, host])), tools: rec.tools };
    return node;
  }

  /**
   * Record each module of a load that was not impure (LoadedModules.impure) whose exports can be
   * kept, but the stubs; `ev` gives its derivations' nodes and `closureOf` the files of its import
   * closure. A record that would say what the usable one says is not written again.
   */
  keep(modules: LoadedModules, closureOf: (path: string) => Record<string, FileStamp> | undefined, ev: Evaluator, stubs: ReadonlySet<string>): void {
    for (const [path, { taken }] of modules.taken) {
      if (typeof taken === "string" || stubs.has(path)) continue;
      const closure = closureOf(path);
      if (!closure) continue;
      const kept = keepExports(taken, (d) => ev.nodeOf(d));
      const { sources, tools } = underneath(kept.nodes);
      const rec: ModuleRecord = { v: RECORD_FORMAT, path, closure, exports: kept.exports, sources, tools };
      const text = JSON.stringify(rec);
      const file = this.fileOf(path);
      try {
        if (readFileSync(file, "utf8") === text) continue;
      } catch {
        /* none yet */
      }
      mkdirSync(this.dir, { recursive: true });
      const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
      writeFileSync(tmp, text);
      renameSync(tmp, file);
      this.checked.delete(path);
    }
  }
}

/** A name `export { x as NAME }` takes as it is (engine/loader.ts's JSON modules use it too). */
export const IDENT = /^[A-Za-z_$][\w$]*$/;

/**
 * A module's exports as they stood when its code ended: plain objects and arrays copied (what an
 * importer does to them afterwards is not the module's), derivations and outputs by reference,
 * with the attributes hung on a derivation copied too.
 */
export interface Taken {
  value: Record<string, unknown>;
  attrs: Map<Drv, Record<string, unknown>>;
  /** each derivation's arguments as text (derivations in them by name and place), to see them changed later */
  args: Map<Drv, string>;
}

/** A module namespace taken as it is now (`Taken`), or why it cannot be kept. */
export function takeExports(ns: object): Taken | Unkept {
  try {
    return takeExportsOf(ns);
  } catch {
    // a getter or proxy that throws: such a module runs every time
    return "value";
  }
}

function takeExportsOf(ns: object): Taken | Unkept {
  const attrs = new Map<Drv, Record<string, unknown>>();
  const args = new Map<Drv, string>();
  const onPath = new Set<object>();
  let why: Unkept | undefined;
  const take = (v: unknown): unknown => {
    if (why || v === null || v === undefined || typeof v === "string" || typeof v === "boolean") return v;
    if (typeof v === "number") {
      if (!Number.isFinite(v) || Object.is(v, -0)) why = "value";
      return v;
    }
    if (typeof v === "function") return (why = "function"), undefined;
    if (typeof v !== "object") return (why = "value"), undefined;
    if (isOutputRef(v)) return take(v.drv) && v;
    if (onPath.has(v)) return (why = "cycle"), undefined;
    onPath.add(v);
    try {
      if (isDrv(v)) {
        if (!attrs.has(v)) {
          const own: Record<string, unknown> = {};
          attrs.set(v, own);
          if (!sealedOf(v)) args.set(v, argsText(v));
          // attributes hung on the derivation (pi4-llm-os.kernel)
          for (const k of Object.keys(v)) if (!DRV_KEYS.has(k)) own[k] = take((v as unknown as Record<string, unknown>)[k]);
        }
        return v;
      }
      const proto = Object.getPrototypeOf(v) as unknown;
      const array = Array.isArray(v);
      // sources, lazy references, strings with context, class instances, maps: not kept
      if ((array ? proto !== Array.prototype : proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(v).length) {
        return (why = "value"), undefined;
      }
      if (array) return (v as unknown[]).map(take);
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(v)) o[k] = take((v as Record<string, unknown>)[k]);
      return o;
    } finally {
      onPath.delete(v);
    }
  };
  const value: Record<string, unknown> = {};
  for (const k of Object.keys(ns)) {
    if (k !== "default" && !IDENT.test(k)) return "name";
    value[k] = take((ns as Record<string, unknown>)[k]);
  }
  return why ?? { value, attrs, args };
}

/** A derivation's arguments as text: the derivations they name by name and place, not followed. */
function argsText(d: Drv): string {
  return JSON.stringify(d.args, (_k, x: unknown) => (isDrv(x) ? `drv ${x.name} ${x.position ?? ""}` : isOutputRef(x) ? `out ${x.drv.name} ${x.drv.position ?? ""} ${x.output}` : x));
}

/** Whether two takes of the same module are the same values (derivations the same objects). */
function sameTaken(a: Taken, b: Taken): boolean {
  const same = (x: unknown, y: unknown): boolean => {
    if (x === y) return true;
    if (typeof x !== "object" || typeof y !== "object" || x === null || y === null || isDrv(x) || isDrv(y)) return false;
    if (isOutputRef(x) || isOutputRef(y)) return false;
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    const kx = Object.keys(x);
    const ky = Object.keys(y);
    return kx.length === ky.length && kx.every((k, i) => k === ky[i] && same((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]));
  };
  if (!same(a.value, b.value) || a.attrs.size !== b.attrs.size) return false;
  for (const [d, own] of a.attrs) if (!b.attrs.has(d) || !same(own, b.attrs.get(d))) return false;
  return true;
}

/**
 * The recipe modules of one load, as the bundle hands them over: each one's exports taken as its
 * code ended. A module's exports changed before the entry's code ran were changed by another
 * module's code (a registry filled by the modules that import it, a cycle's re-export still
 * undefined when it ended): what a stub would give differs from what a whole evaluation sees, so
 * such a load records nothing and a sealed one is made again whole. The entry's own changes come
 * after every module's code, and a stub gives what its module's code left, so those are the
 * entry's to make again; but a derivation whose arguments changed after its module's code ended
 * would be kept with a hash that module's files do not make.
 */
export class LoadedModules {
  readonly taken = new Map<string, { ns: object; taken: Taken | Unkept }>();
  private changedBy?: string;
  private entryRan = false;

  ended(path: string, ns: object): void {
    this.taken.set(path, { ns, taken: takeExports(ns) });
  }

  imported(): void {
    this.entryRan = true;
    for (const [path, t] of this.taken) {
      if (this.changedBy) return;
      if (typeof t.taken === "string") continue;
      const now = takeExports(t.ns);
      if (typeof now === "string" || !sameTaken(t.taken, now)) this.changedBy = `the exports of ${path} were changed by another module's code`;
    }
  }

  /** Why the modules of this load may not be recorded (nor a sealed evaluation trusted), if so. */
  impure(): string | undefined {
    if (this.changedBy) return this.changedBy;
    // an entry that could not be marked (CommonJS): what its imports did to each other is unknown
    if (!this.entryRan && this.taken.size > 0) return "the entry's imports were not seen to end";
    for (const [path, t] of this.taken) {
      if (typeof t.taken === "string") continue;
      for (const [d, text] of t.taken.args) if (argsText(d) !== text) return `the arguments of ${d.name} (exported by ${path}) were changed after its module's code ended`;
    }
    return undefined;
  }
}

/**
 * Taken exports as kept values, with the nodes of their derivations (`nodeOf`: the evaluated
 * node of a derivation value; one the evaluation did not reach is kept without a hash: only a
 * later evaluation that needs it has to run the module, its seal breaking there).
 */
export function keepExports(taken: Taken, nodeOf: (d: Drv) => Node | undefined): { exports: KeptExports; nodes: Node[] } {
  const d: KeptExports["d"] = [];
  const index = new Map<Drv, number>();
  const nodes: Node[] = [];
  const drvIndex = (v: Drv): number => {
    let i = index.get(v);
    if (i !== undefined) return i;
    const node = nodeOf(v);
    i = d.length;
    index.set(v, i);
    if (node) nodes.push(node);
    const row: KeptExports["d"][number] = [node?.hash ?? null, v.name, [...v.outputs], v.kind, v.position ?? null, null];
    d.push(row);
    const own = Object.entries(taken.attrs.get(v) ?? {});
    if (own.length) row[5] = Object.fromEntries(own.map(([k, x]) => [k, keep(x)]));
    return i;
  };
  const keep = (v: unknown): Kept => {
    if (v === undefined) return { u: 1 };
    if (v === null || typeof v !== "object") return v as Kept;
    if (isDrv(v)) return { d: drvIndex(v) };
    if (isOutputRef(v)) return { r: [drvIndex(v.drv), v.output] };
    if (Array.isArray(v)) return { a: v.map(keep) };
    const o: Record<string, Kept> = {};
    for (const [k, x] of Object.entries(v)) o[k] = keep(x);
    return { o };
  };
  const v: Record<string, Kept> = {};
  for (const [k, x] of Object.entries(taken.value)) v[k] = keep(x);
  return { exports: { d, v }, nodes };
}

/** The local sources and host tools of every derivation under `roots` (sealed ones by their record). */
function underneath(roots: Node[]): { sources: Array<[string, string]>; tools: Record<string, HostToolFingerprint> } {
  const sources = new Map<string, string>();
  const tools: Record<string, HostToolFingerprint> = {};
  for (const n of closure(roots)) {
    for (const [store, host] of sourcesOf(n)) sources.set(store, host);
    Object.assign(tools, toolsOf(n));
  }
  return { sources: [...sources].map(([store, host]) => [host, store] as [string, string]).sort(), tools: Object.fromEntries(Object.entries(tools).sort(([a], [b]) => (a < b ? -1 : 1))) };
}

/** The stub a sealed module is bundled as: its exports thawed from the record. */
export function stubModule(id: string, rec: ModuleRecord): string {
  const names = Object.keys(rec.exports.v);
  const lines = [
    `import { __kilnThaw } from "kiln";`,
    `const kept = __kilnThaw(${JSON.stringify(id)}, ${JSON.stringify(rec.exports)});`,
    ...names.map((k, i) => (k === "default" ? `export default kept["default"];` : `const k${i} = kept[${JSON.stringify(k)}];\nexport { k${i} as ${k} };`)),
    // handed over like a module's: what other modules' code does to it is seen (LoadedModules)
    `import * as __kiln_self from ${JSON.stringify(rec.path)};`,
    `import { __kilnModule as __kiln_keep } from "kiln";`,
    `__kiln_keep(${JSON.stringify(rec.path)}, __kiln_self);`,
  ];
  return lines.join("\n") + "\n";
}
