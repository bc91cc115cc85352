// The derivation: the canonical, serialisable description of one build step, and the
// placeholder scheme that makes it content-addressed (as in Nix's CA derivations).
//
//   unresolved derivation ──(inputs realised)──▶ resolved derivation ──hash──▶ cache key
//
// In an unresolved derivation an input's output path is not known yet, so strings mention a
// placeholder path `/kiln/store/<hash of (input drv, output)>-<name>`. Resolving replaces each
// placeholder with the real content-addressed store path and moves the input into inputSrcs;
// the hash of that resolved form is what realisations are keyed by. A rebuilt input that comes
// out bit-identical resolves to the same store path, hence the same key: early cutoff.
import { blake3Hex, hashPart } from "../store/digest.js";
import { LOGICAL_STORE, type StorePathName } from "../store/paths.js";
import { allStrings, ascending, canonicalJson } from "./canonical.js";

export type DrvHash = string & { readonly __brand: "DrvHash" };
export type ResolvedHash = string & { readonly __brand: "ResolvedHash" };

export interface HostToolFingerprint {
  /** where the command was found on the host PATH */
  path: string;
  /** Debian package that owns it and its version, when dpkg knows it */
  package: string | null;
  version: string | null;
  /** BLAKE3 of the binary (for a pkg: entry, of all its commands' digests) */
  digest: string;
  /** commands this entry puts on the build's PATH: name -> host path */
  commands: Record<string, string>;
}

export interface FixedOutput {
  /** hex sha256 of the output file's bytes */
  sha256: string;
}

export type FetchSource =
  | { url: string }
  | { deb: { package: string; version: string; arch?: string } }
  /** a file of a Debian source package (an .orig.tar.*, a .debian.tar.*, the .dsc), as `apt-get source` downloads it */
  | { debSource: { package: string; version: string; file: string } }
  /** a package tarball from the npm registry (npm_config_registry, else registry.npmjs.org) */
  | { npm: { name: string; version: string } }
  | { file: string }
  | { mirror: string };

export interface Derivation {
  name: string;
  system: string;
  /** 'builtin:fetch', another builtin (engine/builtins/builders.ts), or a logical path / host command run inside the sandbox */
  builder: string;
  args: string[];
  env: Record<string, string>;
  /** input derivation hash -> names of its outputs used */
  inputDrvs: Record<string, string[]>;
  /** store paths (sources, or realised inputs once resolved) */
  inputSrcs: string[];
  /** declared host tools, fingerprinted so a host upgrade changes the hash */
  hostTools: Record<string, HostToolFingerprint>;
  /** a store path (an input's output) laid out as the sandbox's /usr; absent: none (or the host's, for host tools) */
  usr?: string;
  outputs: string[];
  /** present for fixed-output derivations: the only kind allowed network access */
  fixed?: FixedOutput;
}

/** Not part of the hash: where the bytes of a fixed output may come from, and where a recipe was written. */
export interface DerivationMeta {
  sources?: FetchSource[];
  position?: string;
  /** the recipe snapshot it was first evaluated from (engine/recipe-snapshot.ts) */
  recipes?: string;
  /** its local sources: store path name -> host path it was copied from */
  srcs?: Record<string, string>;
}

/**
 * What of the host a derivation uses, one line per use: its declared host tools (the impure
 * escape), each with where it was found and the package it came from. Empty for a pure build.
 */
export function impurities(d: Pick<Derivation, "hostTools">): string[] {
  return Object.entries(d.hostTools).map(([tool, fp]) => {
    const pkg = fp.package ? `${fp.package}${fp.version ? ` ${fp.version}` : ""}` : undefined;
    const what = tool.startsWith("pkg:")
      ? `${Object.keys(fp.commands).length} commands of the host's package ${pkg ?? tool.slice(4)}`
      : `${fp.path}${pkg ? ` (${pkg})` : ""}`;
    return `host tool ${tool}: ${what}`;
  });
}

export const SYSTEM = "x86_64-linux";

/** The systems a derivation may name. */
export const SYSTEMS: readonly string[] = ["x86_64-linux", "aarch64-linux", "i686-linux", "riscv64-linux"];

/** The system this machine builds for natively, in Nix's spelling. */
export function hostSystem(arch: string = process.arch): string {
  const cpu: Record<string, string> = { x64: "x86_64", arm64: "aarch64", ia32: "i686", riscv64: "riscv64" };
  return `${cpu[arch] ?? arch}-linux`;
}

export function outputPathName(drvName: string, output: string): string {
  return output === "out" ? drvName : `${drvName}-${output}`;
}

/**
 * Input placeholders' hash parts by derivation hash and output, once per process: evaluation,
 * planning and realizing each name every input (a seed tree a few hundred), and each name is a
 * hash to compute. Grows with the distinct derivations a process sees.
 */
const inputHashParts = new Map<string, string>();

/** Placeholder for an input derivation's output, replaced when the derivation is resolved. */
export function inputPlaceholder(drvHash: DrvHash, drvName: string, output: string): string {
  // the default output's by the hash itself: no key string kept per input derivation
  const key = output === "out" ? drvHash : `${drvHash}:${output}`;
  let part = inputHashParts.get(key);
  if (part === undefined) inputHashParts.set(key, (part = hashPart(`kiln-input:${drvHash}:${output}`)));
  return `${LOGICAL_STORE}/${part}-${outputPathName(drvName, output)}`;
}

const outputHashParts = new Map<string, string>();

/** Placeholder for a derivation's own output; the same for every derivation with that output name. */
export function outputPlaceholder(drvName: string, output: string): string {
  let part = outputHashParts.get(output);
  if (part === undefined) outputHashParts.set(output, (part = hashPart(`kiln-output:${output}`)));
  return `${LOGICAL_STORE}/${part}-${outputPathName(drvName, output)}`;
}

/** Where a build writes an output: unique per resolved derivation, normalised away afterwards. */
export function scratchHash(resolved: ResolvedHash, output: string): string {
  return hashPart(`kiln-scratch:${resolved}:${output}`);
}

/**
 * The canonical JSON of a derivation (canonicalJson's bytes exactly). A derivation has the same
 * few fields every time, most of them strings and arrays of strings, and it is encoded once or
 * twice per node of every evaluation: its fields are written in their sorted order, each string
 * array in one native JSON.stringify, an object whose keys already come sorted (an env, the
 * inputs by hash) in one too. A derivation of any other shape (a field added, a value of another
 * type, keys out of order) is encoded the general way.
 */
export function encodeDerivation(d: Derivation): string {
  return fastEncoding(d) ?? canonicalJson(d);
}

/** encodeDerivation's way for the usual shape; undefined for any other (exported for its tests). */
export function fastEncoding(d: Derivation): string | undefined {
  const { args, builder, env, fixed, hostTools, inputDrvs, inputSrcs, name, outputs, system, usr } = d;
  if (typeof builder !== "string" || typeof name !== "string" || typeof system !== "string") return undefined;
  if (!stringArray(args) || !stringArray(inputSrcs) || !stringArray(outputs)) return undefined;
  if (!stringRecord(env) || !plainObject(hostTools) || !plainObject(inputDrvs)) return undefined;
  // every field a derivation may have is one of these: another would be left out
  const fields = 9 + (fixed !== undefined ? 1 : 0) + (usr !== undefined ? 1 : 0);
  if (ownKeys(d) !== fields) return undefined;
  if (usr !== undefined && typeof usr !== "string") return undefined;
  const drvs = Object.keys(inputDrvs);
  if (!ascending(drvs)) return undefined;
  let encodedDrvs = "{";
  for (let i = 0; i < drvs.length; i++) {
    const os = inputDrvs[drvs[i]!];
    if (!stringArray(os)) return undefined;
    encodedDrvs += (i ? "," : "") + JSON.stringify(drvs[i]) + ":" + JSON.stringify(os);
  }
  return '{"args":' + JSON.stringify(args) + ',"builder":' + SAME.builder.json(builder) + ',"env":' + JSON.stringify(env) +
    (fixed !== undefined ? ',"fixed":' + canonicalJson(fixed) : "") + ',"hostTools":' + SAME.hostTools.json(hostTools) +
    ',"inputDrvs":' + encodedDrvs + '},"inputSrcs":' + JSON.stringify(inputSrcs) + ',"name":' + JSON.stringify(name) +
    ',"outputs":' + SAME.outputs.json(outputs) + ',"system":' + SAME.system.json(system) + (usr !== undefined ? ',"usr":' + JSON.stringify(usr) : "") + "}";
}

/**
 * The last value of a field and its encoding: a builder, a system, an outputs list, a host tools
 * record are mostly the same from one derivation to the next (the same string, the shared frozen
 * ["out"], the one frozen record per set of tools), and are encoded once while they stay so.
 * Strings are compared by value; an object is remembered only when frozen (it cannot change), by
 * identity.
 */
class Same<T extends string | object> {
  #last: T | undefined;
  #json = "";
  constructor(private readonly encode: (v: T) => string) {}
  json(v: T): string {
    if (v === this.#last) return this.#json;
    const json = this.encode(v);
    if (typeof v === "string" || Object.isFrozen(v)) {
      this.#last = v;
      this.#json = json;
    }
    return json;
  }
}
const SAME = {
  builder: new Same<string>(JSON.stringify),
  system: new Same<string>(JSON.stringify),
  outputs: new Same<readonly string[]>(JSON.stringify),
  hostTools: new Same<object>(canonicalJson),
};

/** How many own enumerable keys an object has, without making the list of them. */
function ownKeys(o: object): number {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k)) n++;
  return n;
}

function plainObject(o: unknown): o is Record<string, unknown> {
  if (typeof o !== "object" || o === null) return false;
  const proto = Object.getPrototypeOf(o);
  return proto === Object.prototype || proto === null;
}

/** An array of strings: what JSON.stringify writes as canonicalJson does (canonicalJson's own test). */
function stringArray(a: unknown): a is string[] {
  return Array.isArray(a) && allStrings(a);
}

/** A plain object of strings whose keys come in canonical order: JSON.stringify writes it in that order. */
function stringRecord(o: unknown): o is Record<string, string> {
  if (!plainObject(o)) return false;
  const keys = Object.keys(o);
  if (!ascending(keys)) return false;
  for (const k of keys) if (typeof o[k] !== "string") return false;
  return true;
}

/**
 * The derivation hash. A fixed output's hash depends only on its name and pinned sha256: how the
 * bytes are obtained (URLs, Debian packages, a builder and its inputs) cannot change them.
 */
export function hashDerivation(d: Derivation): DrvHash {
  if (d.fixed) return blake3Hex(canonicalJson({ fixed: d.fixed, name: d.name, outputs: d.outputs })) as DrvHash;
  return blake3Hex(encodeDerivation(d)) as DrvHash;
}

export interface InputRealisation {
  drvHash: DrvHash;
  drvName: string;
  output: string;
  path: StorePathName;
}

/**
 * Replace input placeholders by realised store paths; the result has no inputDrvs. `drvHash`, the
 * derivation's own hash, when the caller has it: a derivation without input derivations (a wide
 * graph's leaves) resolves to itself, and its resolved hash is then that hash, not encoded and
 * hashed again. Its resolution shares args and env with it: callers only read them.
 */
export function resolveDerivation(d: Derivation, inputs: InputRealisation[], drvHash?: DrvHash): { resolved: Derivation; hash: ResolvedHash } {
  if (drvHash !== undefined && inputs.length === 0 && !d.fixed && Object.keys(d.inputDrvs).length === 0 && sortedUnique(d.inputSrcs)) {
    return { resolved: { ...d, inputDrvs: {}, inputSrcs: [...d.inputSrcs] }, hash: drvHash as string as ResolvedHash };
  }
  const map = new Map<string, string>();
  const srcs = new Set(d.inputSrcs);
  for (const i of inputs) {
    map.set(inputPlaceholder(i.drvHash, i.drvName, i.output), `${LOGICAL_STORE}/${i.path}`);
    srcs.add(i.path);
  }
  const rewrite = storePathReplacer(map);
  const resolved: Derivation = {
    ...d,
    ...(d.usr !== undefined ? { usr: rewrite(d.usr) } : {}),
    args: d.args.map(rewrite),
    env: Object.fromEntries(Object.entries(d.env).map(([k, v]) => [k, rewrite(v)])),
    inputDrvs: {},
    inputSrcs: [...srcs].sort(),
  };
  return { resolved, hash: blake3Hex(encodeDerivation(resolved)) as ResolvedHash };
}

/** In the order resolving puts them (a code-unit sort), each once. */
function sortedUnique(a: readonly string[]): boolean {
  for (let i = 1; i < a.length; i++) if (!(a[i - 1]! < a[i]!)) return false;
  return true;
}

const STORE_PREFIX = `${LOGICAL_STORE}/`;

/**
 * A function replacing every occurrence of each key of `map` (a store path,
 * `/kiln/store/<hash>-<name>`) by its value, in one pass over its argument: keys are found by
 * their hash part. A seed tree's derivation names a few hundred inputs in as many arguments, and
 * trying every key on every argument cost more than the rest of planning.
 */
export function storePathReplacer(map: Map<string, string>): (s: string) => string {
  if (map.size === 0) return (s) => s;
  const index = new Map<string, Array<[string, string]>>();
  for (const [from, to] of map) {
    const dash = from.indexOf("-", STORE_PREFIX.length);
    if (!from.startsWith(STORE_PREFIX) || dash < 0) throw new Error(`internal: replacement key ${from} is not a store path`);
    const part = from.slice(STORE_PREFIX.length, dash);
    const list = index.get(part) ?? [];
    list.push([from, to]);
    // the longest name first, should two keys share a hash part
    list.sort(([x], [y]) => y.length - x.length);
    index.set(part, list);
  }
  return (s) => {
    let i = s.indexOf(STORE_PREFIX);
    if (i < 0) return s;
    let out = "";
    let last = 0;
    while (i >= 0) {
      const start = i + STORE_PREFIX.length;
      const dash = s.indexOf("-", start);
      const hit = dash < 0 ? undefined : index.get(s.slice(start, dash))?.find(([from]) => s.startsWith(from, i));
      if (hit) {
        out += s.slice(last, i) + hit[1];
        last = i + hit[0].length;
        i = s.indexOf(STORE_PREFIX, last);
      } else {
        i = s.indexOf(STORE_PREFIX, start);
      }
    }
    return last === 0 ? s : out + s.slice(last);
  };
}
