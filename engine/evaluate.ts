// Evaluation: recipe values (pure data from the recipe API) → a graph of hashed derivations.
// Local sources are hashed by content here (through the per-file digest cache) and host tools
// fingerprinted; nothing is written to the store. The walk is iterative so that very deep
// graphs (100k-long chains) do not overflow the stack.
import { hashTree, UnsupportedEntryError } from "../store/archive.js";
import { contentHashPart } from "../store/digest.js";
import { KilnError } from "../store/errors.js";
import { LOGICAL_STORE, makeStorePathName, validateName, type StorePathName } from "../store/paths.js";
import { DEFAULT_OUTPUTS, isDrv, isLazy, isOutputRef, partsOf, sealedOf, type Sealed, type DerivationArgs, type Drv, type FetchArgs, type OutputRef, type Part, type Source, type Value } from "./api.js";
import { BUILTIN_BUILDERS, isBuiltinBuilder } from "./builtins/builders.js";
import type { Context } from "./context.js";
import { hashDerivation, inputPlaceholder, outputPlaceholder, SYSTEM, SYSTEMS, type Derivation, type DerivationMeta, type DrvHash, type HostToolFingerprint, type ResolvedHash } from "./derivation.js";

export interface Node {
  hash: DrvHash;
  name: string;
  kind: "build" | "fetch";
  drv: Derivation;
  meta: DerivationMeta;
  /** the derivations whose outputs this one uses (each once) */
  deps: readonly Node[];
  /** local sources it uses: store path name -> host path to copy from */
  sources: ReadonlyMap<StorePathName, string>;
  /**
   * Set when the node stands for a derivation of a sealed module (engine/module-records.ts): it
   * was not evaluated again, its derivation was read from the store, `deps` is empty and
   * `sources` too. Its outputs were in the store at evaluation under the resolution recorded
   * for it; what its own inputs were evaluated from is kept here for the no-op record.
   */
  sealed?: SealedNode;
}

export interface SealedNode {
  /** its last resolution (none for a fixed output, found by its own hash) */
  resolved?: ResolvedHash;
  /** the local sources its closure was evaluated from: store path name -> host path */
  sources: Map<StorePathName, string>;
  /** the host tools its closure declares, by the entry declared */
  tools: Record<string, HostToolFingerprint>;
}

/** An input derivation of one derivation, with the outputs of it used. */
interface Input {
  node: Node;
  outputs: string[];
}

/** What one derivation's strings name, gathered as they are turned into text (none: nothing made). */
interface Uses {
  /** the first input derivation named (a chain's only one: no map) */
  first?: Input;
  /** the others, by hash */
  more?: Map<DrvHash, Input>;
  /** local sources: store path name -> host path */
  sources?: Map<StorePathName, string>;
}
/** Shared by every node without inputs or sources (most of a wide graph's): nothing writes to them. */
const NO_DEPS: readonly Node[] = Object.freeze([]) as readonly Node[];
const NO_SOURCES: ReadonlyMap<StorePathName, string> = new Map();
const NO_TOOLS: readonly string[] = Object.freeze([]);

export interface Graph {
  /** every node, dependencies before dependents */
  nodes: Node[];
  byHash: Map<DrvHash, Node>;
}

export interface Root {
  node: Node;
  output: string;
}

/** Host path of the sandbox's declared-tools directory. */
export const HOST_BIN = "/kiln/host/bin";
/** The builder of a script on the host's shell: one string for every such derivation. */
const HOST_SH = `${HOST_BIN}/sh`;

const SHA256_RE = /^[0-9a-f]{64}$/;

export class Evaluator {
  private readonly done = new Map<Drv, Node>();
  readonly graph: Graph = { nodes: [], byHash: new Map() };
  private readonly sourceMemo = new Map<string, { store: StorePathName; host: string }>();
  private readonly toolRecords = new Map<string, Derivation["hostTools"]>();

  /**
   * recipes: the recipe snapshot the values come from, noted in every derivation's meta (for why);
   * sealed: the node a sealed derivation stands for (it throws what isSealBroken knows when the
   * store no longer holds what the record promised)
   */
  constructor(
    private readonly ctx: Pick<Context, "hostTools" | "fileCache">,
    private readonly o: { recipes?: string; sealed?: (d: Drv, s: Sealed) => Node } = {},
  ) {}

  /** The node a recipe value was evaluated to, if it was. */
  nodeOf(d: Drv): Node | undefined {
    return this.done.get(d);
  }

  /** Evaluate one value (a derivation or one of its outputs) and everything it depends on. */
  evaluate(v: Drv | OutputRef): Root {
    const ref = isDrv(v) ? v.out : v;
    this.visit(ref.drv);
    return { node: this.done.get(ref.drv)!, output: ref.output };
  }

  private visit(root: Drv): void {
    if (this.done.has(root)) return;
    // iterative post-order DFS; `path` is the current chain, for naming cycles
    const stack: Array<{ drv: Drv; deps?: Drv[]; i: number }> = [{ drv: root, i: 0 }];
    const onPath = new Set<Drv>([root]);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      top.deps ??= directDeps(top.drv);
      if (top.i < top.deps.length) {
        const dep = top.deps[top.i++]!;
        if (this.done.has(dep)) continue;
        if (onPath.has(dep)) throw cycleError(stack.map((f) => f.drv), dep);
        onPath.add(dep);
        stack.push({ drv: dep, i: 0 });
        continue;
      }
      stack.pop();
      onPath.delete(top.drv);
      const node = this.build(top.drv);
      this.done.set(top.drv, node);
      const existing = this.graph.byHash.get(node.hash);
      if (existing) {
        // two recipe values describing the same derivation are one node
        this.done.set(top.drv, existing);
      } else {
        this.graph.byHash.set(node.hash, node);
        this.graph.nodes.push(node);
      }
    }
  }

  private build(d: Drv): Node {
    const sealed = sealedOf(d);
    if (sealed) {
      if (!this.o.sealed) throw new Error(`internal: sealed derivation ${d.name} outside a sealed evaluation`);
      return this.o.sealed(d, sealed);
    }
    const where = d.position ? `${d.name} (${d.position})` : d.name;
    const bad = validateName(d.name);
    if (bad) throw new KilnError("RECIPE_INVALID", `invalid derivation name at ${where}: ${bad}`, "rename the derivation", { position: d.position });
    return d.kind === "fetch" ? this.buildFetch(d, d.args as FetchArgs, where) : this.buildDerivation(d, d.args as DerivationArgs, where);
  }

  private buildFetch(d: Drv, a: FetchArgs, where: string): Node {
    checkSha256(a.sha256, where);
    if (!Array.isArray(a.sources)) throw new KilnError("RECIPE_INVALID", `fetch ${where} has no sources list`, "give sources: [{ url }, { deb }, { npm }, { file }, { mirror }]");
    checkSources(a.sources, where);
    const drv: Derivation = {
      name: d.name, system: SYSTEM, builder: "builtin:fetch", args: [], env: {}, inputDrvs: {}, inputSrcs: [],
      hostTools: {}, outputs: ["out"], fixed: { sha256: a.sha256 },
    };
    const meta: DerivationMeta = { sources: a.sources, position: d.position, ...(this.o.recipes ? { recipes: this.o.recipes } : {}) };
    return { hash: hashDerivation(drv), name: d.name, kind: "fetch", drv, meta, deps: [], sources: new Map() };
  }

  private buildDerivation(d: Drv, a: DerivationArgs, where: string): Node {
    const uses: Uses = {};

    // the tools as declared, and the one the build adds (sh for a script on the host, or a host
    // command as builder): most derivations declare sh alone, and make no set for it
    const declared: readonly string[] = a.hostTools ?? NO_TOOLS;
    let added: string | undefined;
    // the sandbox's /usr: its shell runs the script, and nothing of the host is visible
    const usr = a.usr !== undefined ? this.text(a.usr, uses, where) : undefined;
    if (usr !== undefined && declared.length > 0) {
      throw new KilnError("RECIPE_INVALID", `derivation ${where} has a usr tree and declares host tools (${[...new Set(declared)].join(", ")}); a build on usr sees nothing of the host, so it could not run them`,
        "take the tools from the usr tree (add their Debian packages to the seed set), or drop usr to run on the host (impure)", { position: d.position });
    }
    let builder: string;
    let args: string[];
    if (a.script !== undefined) {
      if (usr === undefined) added = "sh";
      builder = usr === undefined ? HOST_SH : "/bin/sh";
      args = ["-e", "-u", "-c", this.text(a.script, uses, where)];
    } else {
      if (a.builder === undefined) throw new KilnError("RECIPE_INVALID", `derivation ${where} has neither script nor builder`, "add script: sh`...`");
      builder = this.text(a.builder, uses, where);
      if (builder.startsWith("builtin:")) {
        // runs inside kiln: no sandbox, so no host tools either
        if (!isBuiltinBuilder(builder)) {
          throw new KilnError("RECIPE_INVALID", `derivation ${where} names an unknown builtin builder ${builder} (there are ${BUILTIN_BUILDERS.join(", ")})`, "fix the builder's name, or use script: sh`...` for a sandboxed build", { position: d.position });
        }
        if (declared.length > 0) throw new KilnError("RECIPE_INVALID", `derivation ${where}: the builtin builder ${builder} runs no host tools (${[...new Set(declared)].join(", ")})`, "remove hostTools", { position: d.position });
      } else if (!builder.includes("/")) {
        if (usr !== undefined) {
          throw new KilnError("RECIPE_INVALID", `derivation ${where}: builder '${builder}' is a host command, but the build runs on a usr tree`, `give the builder's path in the tree, e.g. /usr/bin/${builder}`, { position: d.position });
        }
        added = builder;
        builder = `${HOST_BIN}/${builder}`;
      }
      args = (a.args ?? []).map((v) => this.text(v, uses, where));
    }

    // a derivation's list is only read: the default one is shared
    const outputs = a.outputs === undefined ? (DEFAULT_OUTPUTS as string[]) : [...a.outputs];
    if (outputs.length === 0 || (outputs.length > 1 && new Set(outputs).size !== outputs.length)) {
      throw new KilnError("RECIPE_INVALID", `derivation ${where} must have distinct, non-empty outputs`, "e.g. outputs: [\"out\", \"dev\"]");
    }
    const env: Record<string, string> = {};
    if (a.env !== undefined) {
      for (const [k, v] of Object.entries(a.env)) {
        if (v === undefined) continue;
        if (outputs.includes(k)) throw new KilnError("RECIPE_INVALID", `derivation ${where} sets env '${k}', which names one of its outputs`, "rename the variable");
        env[k] = this.text(v, uses, where);
      }
    }
    for (const o of outputs) env[o] = outputPlaceholder(d.name, o);
    checkArgSizes(env, args, a.script !== undefined, where, d.position);

    const hostTools = this.hostToolsOf(declared, added, where);

    let fixed: Derivation["fixed"];
    if (a.sha256 !== undefined) {
      checkSha256(a.sha256, where);
      if (outputs.length !== 1) throw new KilnError("RECIPE_INVALID", `fixed-output derivation ${where} must have exactly one output`, "remove the extra outputs");
      fixed = { sha256: a.sha256 };
    }

    const system = a.system ?? SYSTEM;
    if (!SYSTEMS.includes(system)) {
      throw new KilnError("RECIPE_INVALID", `derivation ${where} has system ${JSON.stringify(system)}, which kiln does not know`, `use one of ${SYSTEMS.join(", ")}`, { position: d.position });
    }
    const drv: Derivation = {
      name: d.name,
      system,
      builder,
      args,
      env,
      inputDrvs: inputDrvsOf(uses),
      inputSrcs: uses.sources === undefined ? [] : [...uses.sources.keys()].sort(),
      hostTools,
      ...(usr !== undefined ? { usr } : {}),
      outputs,
      ...(fixed ? { fixed } : {}),
    };
    if (a.sources) checkSources(a.sources, where);
    if (a.sources && !fixed) throw new KilnError("RECIPE_INVALID", `derivation ${where} lists sources but has no sha256`, "sources only make sense for a fixed output: add sha256");
    const meta: DerivationMeta = { position: d.position };
    if (a.sources) meta.sources = a.sources;
    if (this.o.recipes) meta.recipes = this.o.recipes;
    if (uses.sources) meta.srcs = Object.fromEntries(uses.sources);
    const deps = uses.first === undefined ? NO_DEPS : uses.more === undefined ? [uses.first.node] : [uses.first.node, ...Array.from(uses.more.values(), (i) => i.node)];
    return { hash: hashDerivation(drv), name: d.name, kind: "build", drv, meta, deps, sources: uses.sources ?? NO_SOURCES };
  }

  /**
   * The host tools record of a set of declared tools: one frozen record per set, shared by every
   * derivation declaring that set (thousands declare just sh), so that its encoding is made once.
   */
  private hostToolsOf(declared: readonly string[], added: string | undefined, where: string): Derivation["hostTools"] {
    // the set's names, sorted and joined, are its key; one name (sh, mostly) is its own key
    let names: readonly string[] | undefined;
    let key: string;
    if (declared.length === 0) key = added ?? "";
    else if (declared.length === 1 && (added === undefined || added === declared[0])) key = declared[0]!;
    else key = (names = [...new Set(added === undefined ? declared : [...declared, added])].sort()).join("\0");
    let record = this.toolRecords.get(key);
    if (record === undefined) {
      record = {};
      for (const t of names ?? (key === "" ? [] : [key])) record[t] = this.ctx.hostTools.fingerprint(t, where);
      this.toolRecords.set(key, Object.freeze(record));
    }
    return record;
  }

  /** A value's text, the inputs and sources it names noted in `uses`. */
  private text(v: Value, uses: Uses, where: string): string {
    // most arguments are plain text (two of a seed tree's three per package)
    if (typeof v === "string") return v;
    let s = "";
    for (const p of partsOf(v)) s += this.partText(p, uses, where);
    return s;
  }

  private partText(p: Part, uses: Uses, where: string): string {
    if (typeof p === "string") return p;
    if (isLazy(p)) p = asRef(p.get());
    if (isOutputRef(p)) {
      const node = this.done.get(p.drv);
      if (!node) throw new Error(`internal: dependency ${p.drv.name} not evaluated before ${where}`);
      const input = uses.first === undefined || uses.first.node === node ? uses.first : uses.more?.get(node.hash);
      // (the default output alone is the shared list: a second output makes a list of its own)
      if (input !== undefined) {
        if (!input.outputs.includes(p.output)) input.outputs = [...input.outputs, p.output];
      } else {
        const used = { node, outputs: p.output === "out" ? (DEFAULT_OUTPUTS as string[]) : [p.output] };
        if (uses.first === undefined) uses.first = used;
        else (uses.more ??= new Map()).set(node.hash, used);
      }
      return inputPlaceholder(node.hash, node.name, p.output);
    }
    const src = this.source(p as Source, where);
    (uses.sources ??= new Map()).set(src.store, src.host);
    return `${LOGICAL_STORE}/${src.store}`;
  }

  private source(s: Source, where: string): { store: StorePathName; host: string } {
    const key = `${s.path}\0${s.name}`;
    const memo = this.sourceMemo.get(key);
    if (memo) return memo;
    let digest: string;
    try {
      digest = hashTree(s.path, { cache: this.ctx.fileCache }).digest;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === "ENOENT") {
        throw new KilnError("SOURCE_MISSING", `source ${s.path} does not exist (used by ${where})`, "create the file, or fix the path given to source()", { path: s.path });
      }
      if (err.code === "EACCES") {
        throw new KilnError("SOURCE_MISSING", `source ${s.path} cannot be read (used by ${where}): ${err.message}`, "make it readable by the user running kiln", { path: s.path });
      }
      if (e instanceof UnsupportedEntryError) {
        throw new KilnError("RECIPE_INVALID", e.reason === "type"
          ? `source ${s.path} holds ${e.path}, which is neither a file, a directory nor a symlink (used by ${where})`
          : `source ${s.path} holds an entry whose name is not UTF-8: ${e.path} (used by ${where})`,
        e.reason === "type" ? "remove it from the folder, or give source() a folder without it" : "rename it: kiln keeps only UTF-8 names");
      }
      if (/^file changed while hashing/.test(err.message ?? "")) {
        throw new KilnError("SOURCE_MISSING", `source ${s.path} changed while kiln was reading it (used by ${where}): ${err.message}`, "run the command again once the file is written", { path: s.path });
      }
      throw e;
    }
    const bad = validateName(s.name);
    if (bad) throw new KilnError("RECIPE_INVALID", `invalid source name for ${s.path}: ${bad}`, "pass a name as the third argument of source()");
    const r = { store: makeStorePathName(contentHashPart(digest, s.name), s.name), host: s.path };
    this.sourceMemo.set(key, r);
    return r;
  }
}

/** A derivation's inputDrvs: by hash, in code-unit order, each with its outputs sorted (one input, a chain's: no sort). */
function inputDrvsOf(uses: Uses): Derivation["inputDrvs"] {
  const first = uses.first;
  if (first === undefined) return {};
  // (a list of one is not sorted: it may be the shared default, which is frozen)
  const sorted = (i: Input) => (i.outputs.length > 1 ? i.outputs.sort() : i.outputs);
  // keyed by hashes, in an object without a prototype, which V8 keeps as a dictionary from the
  // start. An ordinary one gets a layout (a hidden class) for its sequence of keys, made at each
  // key added and shared only by objects with the same keys in the same order, which inputs
  // rarely are: ~1 us for a chain's one input, ~1.6 us per key of a group of a hundred, and
  // old-space garbage. Same keys in the same order; nothing calls Object's methods on it.
  const out: Derivation["inputDrvs"] = Object.create(null);
  if (uses.more === undefined) {
    out[first.node.hash] = sorted(first);
    return out;
  }
  const all = [first, ...uses.more.values()].sort((x, y) => (x.node.hash < y.node.hash ? -1 : 1));
  for (const i of all) out[i.node.hash] = sorted(i);
  return out;
}

function asRef(v: Drv | OutputRef): OutputRef {
  if (isDrv(v)) return v.out;
  if (isOutputRef(v)) return v;
  throw new KilnError("RECIPE_INVALID", `lazy() must return a derivation or an output, got ${String(v)}`, "return the derivation from the lazy function");
}

/** The derivations a recipe value refers to directly (lazy references are forced here). */
function directDeps(d: Drv): Drv[] {
  // a sealed derivation's inputs are in the store's record of it, not in recipe values
  if (d.kind === "fetch" || sealedOf(d)) return [];
  const a = d.args as DerivationArgs;
  const out = new Set<Drv>();
  const scan = (v: Value | undefined) => {
    if (v === undefined) return;
    for (let p of partsOf(v)) {
      if (isLazy(p)) p = asRef(p.get());
      if (isOutputRef(p)) out.add(p.drv);
    }
  };
  scan(a.usr);
  scan(a.script);
  scan(a.builder);
  a.args?.forEach(scan);
  for (const v of Object.values(a.env ?? {})) scan(v);
  return [...out];
}

function cycleError(chain: Drv[], back: Drv): KilnError {
  const start = chain.indexOf(back);
  const cyc = [...chain.slice(start), back];
  const text = cyc.map((d) => d.name).join(" -> ");
  const where = cyc.slice(0, -1).map((d) => `  ${d.name}${d.position ? ` at ${d.position}` : ""}`).join("\n");
  return new KilnError("CYCLE", `dependency cycle in the recipe graph: ${text}\n${where}`, "break the cycle: one of these derivations must not depend on the next", { cycle: cyc.map((d) => d.name) });
}

function checkSha256(h: unknown, where: string): void {
  if (typeof h !== "string" || !SHA256_RE.test(h)) {
    throw new KilnError("RECIPE_INVALID", `fixed output ${where} needs sha256 as 64 lowercase hex digits, got ${JSON.stringify(h)}`,
      "compute it with: sha256sum <file>");
  }
}

const NPM_NAME_RE = /^(@[a-z0-9~-][a-z0-9._~-]*\/)?[a-z0-9~-][a-z0-9._~-]*$/;
/** an exact version: a range or a dist-tag ("latest") would name different bytes over time */
const NPM_VERSION_RE = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** Each place a fixed output's bytes may come from must be one of the known kinds, well formed. */
function checkSources(sources: readonly unknown[], where: string): void {
  const str = (v: unknown) => typeof v === "string" && v.length > 0;
  sources.forEach((s, i) => {
    const o = (typeof s === "object" && s !== null ? s : {}) as Record<string, Record<string, unknown> | undefined>;
    const keys = Object.keys(o);
    let bad: string | undefined;
    if (keys.length !== 1) bad = "must have exactly one of url, deb, debSource, npm, file, mirror";
    else if (keys[0] === "url" || keys[0] === "file" || keys[0] === "mirror") bad = str(o[keys[0]]) ? undefined : `${keys[0]} must be a non-empty string`;
    else if (keys[0] === "deb") bad = str(o.deb?.package) && str(o.deb?.version) && (o.deb?.arch === undefined || str(o.deb.arch)) ? undefined : "deb needs package and version (and optionally arch) as strings";
    else if (keys[0] === "debSource") {
      const { package: pkg, version, file } = o.debSource ?? {};
      bad = str(pkg) && str(version) && str(file) && !String(file).includes("/") ? undefined : "debSource needs package, version and file (a file name, no slash) as strings";
    } else if (keys[0] === "npm") {
      const { name, version } = o.npm ?? {};
      if (typeof name !== "string" || !NPM_NAME_RE.test(name)) bad = `npm.name ${JSON.stringify(name)} is not an npm package name`;
      else if (typeof version !== "string" || !NPM_VERSION_RE.test(version)) bad = `npm.version ${JSON.stringify(version)} is not an exact version (ranges and tags such as "latest" are not pinned)`;
    } else bad = `unknown kind '${keys[0]}'`;
    if (bad) {
      throw new KilnError("RECIPE_INVALID", `fixed output ${where}: source ${i + 1} (${JSON.stringify(s)}) ${bad}`,
        'a source is { url }, { deb: { package, version, arch? } }, { debSource: { package, version, file } }, { npm: { name, version } }, { file } or { mirror }');
    }
  });
}

/** The kernel's limit on one string of a command line or environment (MAX_ARG_STRLEN, with its NUL). */
export const MAX_ARG_STRLEN = 128 * 1024;
/** What kiln lets a build's environment and arguments take together: half the kernel's default limit of 2 MiB. */
export const MAX_ARGS_TOTAL = 1024 * 1024;

/**
 * Refuse, at evaluation and naming it, an environment variable or argument that no builder could
 * be started with: one with a NUL byte, or a larger one than the kernel takes (E2BIG) on every
 * machine.
 */
function checkArgSizes(env: Record<string, string>, args: string[], script: boolean, where: string, position: string | undefined): void {
  // a C string ends at its first NUL: no program can be given one, and it would split where kiln
  // hands the build's command and environment on
  const nul = (what: string) => new KilnError("RECIPE_INVALID", `derivation ${where}: ${what} contains a NUL byte, which no program can be given`, "remove it, or pass binary data as a file", { position });
  for (const k in env) if (k.includes("\0") || env[k]!.includes("\0")) throw nul(`env ${k.replaceAll("\0", "\\0")}`);
  args.forEach((a, i) => {
    if (a.includes("\0")) throw nul(script && i === args.length - 1 ? "its script" : `argument ${i + 1} of the builder`);
  });
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const hint = "pass large data as a file: a source() file, or the output of a derivation that writes it, and give the build its path";
  // a UTF-16 code unit is at most 3 bytes of UTF-8: when even that bound fits, no byte is counted
  // (a seed tree's builder has a few thousand arguments)
  let bound = 0;
  let long = false;
  const bounded = (n: number) => {
    bound += n;
    if (n >= MAX_ARG_STRLEN) long = true;
  };
  for (const k in env) bounded((k.length + env[k]!.length) * 3 + 2);
  for (const a of args) bounded(a.length * 3 + 1);
  if (!long && bound <= MAX_ARGS_TOTAL) return;
  let total = 0;
  const check = (what: string, bytes: number) => {
    total += bytes;
    if (bytes >= MAX_ARG_STRLEN) {
      throw new KilnError("RECIPE_INVALID", `derivation ${where}: ${what} is ${kib(bytes)}; the kernel starts no program with a variable or argument of ${kib(MAX_ARG_STRLEN)} or more`, hint, { position });
    }
  };
  for (const [k, v] of Object.entries(env)) check(`env ${k}`, Buffer.byteLength(`${k}=${v}`) + 1);
  args.forEach((a, i) => check(script && i === args.length - 1 ? "its script" : `argument ${i + 1} of the builder`, Buffer.byteLength(a) + 1));
  if (total > MAX_ARGS_TOTAL) {
    throw new KilnError("RECIPE_INVALID", `derivation ${where}: its environment and arguments take ${kib(total)}, more than the ${kib(MAX_ARGS_TOTAL)} kiln allows a build`, hint, { position });
  }
}
