// The bootstrap seed's two files, side by side in the repo (recipes/std/seed/):
//   sets.json        what is asked for: per set, an architecture and Debian package names (the
//                    closure is resolved from them), plus what installing would have done that a
//                    plain unpack does not (alternatives links) and who wins a clashing path
//   seed.lock.json   what `kiln seed lock` resolved: per set its closure, per package the exact
//                    version, architecture, sha256, size and where Debian serves it
// The lock is rendered in a fixed layout (sorted, one package per line) so that running the
// command twice gives the same bytes and a change reads as a short diff.
import { KilnError } from "../store/errors.js";

export const SEED_LOCK_VERSION = 1;

export interface SeedSetSpec {
  description?: string;
  /** Debian architecture of the set's packages (amd64, arm64, ...) */
  arch: string;
  /** package names (or name=version) whose closure makes the set; Essential ones must be listed too */
  packages: string[];
  /**
   * package names taken as already present while resolving: neither they nor what only they need
   * enter the closure (for an image that is unpacked, not installed, what only maintainer scripts,
   * PAM or Python tools use)
   */
  exclude?: string[];
  /** symlinks installation would make (update-alternatives): path in the tree -> target */
  links?: Record<string, string>;
  /** a path two packages ship differently -> the package that wins it */
  prefer?: Record<string, string>;
}

export interface SeedSets {
  /** Debian suite, e.g. "bookworm"; its -updates and -security suites are used too */
  suite: string;
  /** the archive's base URL (default http://deb.debian.org/debian) */
  archive?: string;
  /** the security archive's base URL (default http://deb.debian.org/debian-security) */
  security?: string;
  /** the keyring apt checks the archive's signatures with */
  keyring?: string;
  /** archive components (default ["main"]; e.g. ["main", "contrib"]) */
  components?: string[];
  sets: Record<string, SeedSetSpec>;
}

export interface LockedPackage {
  name: string;
  version: string;
  /** "all" for architecture-independent packages */
  arch: string;
  sha256: string;
  /** bytes of the .deb */
  size: number;
  /** bytes once installed (Debian's Installed-Size, which is in KiB, times 1024); not every package has it */
  installedSize?: number;
  /** where the archive served it when the lock was written */
  url: string;
}

export interface LockedSet {
  arch: string;
  /** the set's package list from sets.json when the lock was written, sorted (a changed list means a stale lock) */
  request: string[];
  /** the set's exclude list when the lock was written, sorted; absent when empty */
  exclude?: string[];
  /** keys of `packages`: "name:arch", sorted */
  packages: string[];
}

export interface SeedLock {
  lockVersion: number;
  suite: string;
  sets: Record<string, LockedSet>;
  packages: Record<string, LockedPackage>;
}

export const DEFAULT_ARCHIVE = "http://deb.debian.org/debian";
export const DEFAULT_SECURITY = "http://deb.debian.org/debian-security";
export const DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

const NAME_RE = /^[a-z0-9][a-z0-9+.-]*$/;
const SPEC_RE = /^[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+~:-]+)?$/;
const ARCH_RE = /^[a-z0-9]+$/;
const SET_RE = /^[a-z0-9][a-z0-9-]*$/;
const SUITE_RE = /^[a-z][a-z0-9-]*$/;
const COMPONENT_RE = /^[a-z][a-z-]*$/;

export function packageKey(name: string, arch: string): string {
  return `${name}:${arch}`;
}

/** Read and check sets.json; every problem names the file, the set and the field. */
export function parseSeedSets(text: string, file: string): SeedSets {
  const bad = (what: string, hint = "see recipes/std/seed/sets.json for the shape"): KilnError => new KilnError("SEED_INVALID", `${file}: ${what}`, hint, { file });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(raw)) throw bad("must be a JSON object");
  const { suite, archive, security, keyring, components, sets } = raw;
  if (typeof suite !== "string" || !SUITE_RE.test(suite)) throw bad(`"suite" must be a Debian suite name such as "bookworm", got ${JSON.stringify(suite)}`);
  for (const [k, v] of [["archive", archive], ["security", security]] as const) {
    if (v !== undefined && (typeof v !== "string" || !/^https?:\/\/\S+[^/]$/.test(v))) throw bad(`"${k}" must be an http(s) URL without a trailing slash, got ${JSON.stringify(v)}`);
  }
  if (keyring !== undefined && (typeof keyring !== "string" || !keyring.startsWith("/"))) throw bad(`"keyring" must be an absolute path, got ${JSON.stringify(keyring)}`);
  if (components !== undefined && (!Array.isArray(components) || components.length === 0 || !components.every((c) => typeof c === "string" && COMPONENT_RE.test(c)) || new Set(components).size !== components.length)) {
    throw bad(`"components" must be a list of distinct archive components such as ["main", "contrib"], got ${JSON.stringify(components)}`);
  }
  if (!isObject(sets) || Object.keys(sets).length === 0) throw bad(`"sets" must be an object with at least one set`);
  const out: SeedSets = { suite, sets: {} };
  if (components !== undefined) out.components = [...(components as string[])];
  if (archive !== undefined) out.archive = archive as string;
  if (security !== undefined) out.security = security as string;
  if (keyring !== undefined) out.keyring = keyring as string;
  for (const name of Object.keys(sets).sort()) {
    const s = sets[name];
    const at = `set "${name}"`;
    if (!SET_RE.test(name)) throw bad(`${at}: a set name is lowercase letters, digits and '-'`);
    if (!isObject(s)) throw bad(`${at} must be an object`);
    const known = new Set(["description", "arch", "packages", "exclude", "links", "prefer"]);
    for (const k of Object.keys(s)) if (!known.has(k)) throw bad(`${at}: unknown field "${k}"`, `the fields are ${[...known].join(", ")}`);
    if (typeof s.arch !== "string" || !ARCH_RE.test(s.arch)) throw bad(`${at}: "arch" must be a Debian architecture such as "amd64" or "arm64"`);
    if (!Array.isArray(s.packages) || s.packages.length === 0) throw bad(`${at}: "packages" must be a non-empty list of package names`);
    const seen = new Set<string>();
    for (const p of s.packages) {
      if (typeof p !== "string" || !SPEC_RE.test(p)) throw bad(`${at}: ${JSON.stringify(p)} is not a Debian package name (or name=version)`);
      if (seen.has(p)) throw bad(`${at}: ${p} is listed twice`);
      seen.add(p);
    }
    const spec: SeedSetSpec = { arch: s.arch, packages: [...(s.packages as string[])] };
    if (s.exclude !== undefined) {
      if (!Array.isArray(s.exclude)) throw bad(`${at}: "exclude" must be a list of package names`);
      const asked = new Set((s.packages as string[]).map((p) => p.split("=")[0]));
      const ex = new Set<string>();
      for (const p of s.exclude) {
        if (typeof p !== "string" || !NAME_RE.test(p)) throw bad(`${at}: "exclude": ${JSON.stringify(p)} is not a Debian package name`);
        if (asked.has(p)) throw bad(`${at}: ${p} is both asked for and excluded`);
        if (ex.has(p)) throw bad(`${at}: "exclude": ${p} is listed twice`);
        ex.add(p);
      }
      if (ex.size) spec.exclude = [...ex];
    }
    if (s.description !== undefined) {
      if (typeof s.description !== "string") throw bad(`${at}: "description" must be a string`);
      spec.description = s.description;
    }
    spec.links = stringMap(s.links, `${at}: "links"`, bad, (k, v) => relPathProblem(k) ?? (v === "" ? "empty target" : undefined));
    spec.prefer = stringMap(s.prefer, `${at}: "prefer"`, bad, (k, v) => relPathProblem(k) ?? (NAME_RE.test(v) ? undefined : `${JSON.stringify(v)} is not a package name`));
    out.sets[name] = spec;
  }
  return out;
}

function stringMap(v: unknown, at: string, bad: (w: string) => KilnError, check: (k: string, v: string) => string | undefined): Record<string, string> {
  if (v === undefined) return {};
  if (!isObject(v)) throw bad(`${at} must be an object of path -> string`);
  const out: Record<string, string> = {};
  for (const k of Object.keys(v).sort()) {
    const x = v[k];
    if (typeof x !== "string") throw bad(`${at}: ${k} must map to a string`);
    const problem = check(k, x);
    if (problem) throw bad(`${at}: ${k}: ${problem}`);
    out[k] = x;
  }
  return out;
}

function relPathProblem(p: string): string | undefined {
  if (p.startsWith("/")) return "a path in the tree is relative, like usr/bin/awk";
  if (p.split("/").some((x) => x === ".." || x === "." || x === "")) return "a path in the tree has no '.', '..' or empty components";
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Read seed.lock.json, checked enough that recipes can trust its shape. */
export function parseSeedLock(text: string, file: string): SeedLock {
  const bad = (what: string): KilnError => new KilnError("SEED_INVALID", `${file}: ${what}`, "write it again with: kiln seed lock", { file });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(raw) || raw.lockVersion !== SEED_LOCK_VERSION) throw bad(`not a seed lock of version ${SEED_LOCK_VERSION}`);
  if (typeof raw.suite !== "string" || !isObject(raw.sets) || !isObject(raw.packages)) throw bad("missing suite, sets or packages");
  const packages = raw.packages as Record<string, LockedPackage>;
  for (const [k, p] of Object.entries(packages)) {
    if (!isObject(p) || typeof p.name !== "string" || typeof p.version !== "string" || typeof p.arch !== "string" || packageKey(p.name, p.arch) !== k
      || typeof p.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(p.sha256) || typeof p.size !== "number" || !["number", "undefined"].includes(typeof p.installedSize) || typeof p.url !== "string") {
      throw bad(`package ${k} is malformed`);
    }
  }
  for (const [name, s] of Object.entries(raw.sets as Record<string, LockedSet>)) {
    if (!isObject(s) || typeof s.arch !== "string" || !Array.isArray(s.request) || !Array.isArray(s.packages) || !(s.exclude === undefined || Array.isArray(s.exclude))) throw bad(`set ${name} is malformed`);
    for (const k of s.packages) if (!packages[k]) throw bad(`set ${name} names package ${k}, which the lock does not have`);
  }
  return raw as unknown as SeedLock;
}

/**
 * The lock as text: top-level and set fields one per line, each package on one line, all sorted.
 * Valid JSON; the same lock always gives the same bytes.
 */
export function renderSeedLock(lock: SeedLock): string {
  const j = (v: unknown): string => JSON.stringify(v);
  const lines: string[] = ["{", `  "lockVersion": ${lock.lockVersion},`, `  "suite": ${j(lock.suite)},`, `  "sets": {`];
  const setNames = Object.keys(lock.sets).sort();
  setNames.forEach((name, i) => {
    const s = lock.sets[name]!;
    lines.push(`    ${j(name)}: {`, `      "arch": ${j(s.arch)},`);
    lines.push(`      "request": [${[...s.request].sort().map(j).join(", ")}],`);
    if (s.exclude?.length) lines.push(`      "exclude": [${[...s.exclude].sort().map(j).join(", ")}],`);
    lines.push(`      "packages": [`);
    const pk = [...s.packages].sort();
    pk.forEach((k, n) => lines.push(`        ${j(k)}${n < pk.length - 1 ? "," : ""}`));
    lines.push(`      ]`, `    }${i < setNames.length - 1 ? "," : ""}`);
  });
  lines.push("  },", `  "packages": {`);
  const keys = Object.keys(lock.packages).sort();
  keys.forEach((k, i) => {
    const p = lock.packages[k]!;
    const fields = { name: p.name, version: p.version, arch: p.arch, size: p.size, ...(p.installedSize !== undefined ? { installedSize: p.installedSize } : {}), sha256: p.sha256, url: p.url };
    const text = Object.entries(fields).map(([f, v]) => `${j(f)}: ${j(v)}`).join(", ");
    lines.push(`    ${j(k)}: {${text}}${i < keys.length - 1 ? "," : ""}`);
  });
  lines.push("  }", "}");
  return lines.join("\n") + "\n";
}

export type SeedChange =
  | { kind: "set-added" | "set-removed"; set: string; packages: number }
  | { kind: "added" | "removed"; set: string; key: string; version: string }
  | { kind: "changed"; set: string; key: string; from: string; to: string }
  | { kind: "rehashed"; key: string; version: string };

/** What changed from one lock to the next, per set, in a fixed order. */
export function diffSeedLocks(old: SeedLock | undefined, next: SeedLock): SeedChange[] {
  const out: SeedChange[] = [];
  const oldSets = old?.sets ?? {};
  const names = [...new Set([...Object.keys(oldSets), ...Object.keys(next.sets)])].sort();
  for (const set of names) {
    const a = oldSets[set];
    const b = next.sets[set];
    if (!a) {
      out.push({ kind: "set-added", set, packages: b!.packages.length });
      continue;
    }
    if (!b) {
      out.push({ kind: "set-removed", set, packages: a.packages.length });
      continue;
    }
    const av = new Map(a.packages.map((k) => [k, old!.packages[k]!.version]));
    const bv = new Map(b.packages.map((k) => [k, next.packages[k]!.version]));
    for (const k of [...new Set([...av.keys(), ...bv.keys()])].sort()) {
      const x = av.get(k);
      const y = bv.get(k);
      if (x === undefined) out.push({ kind: "added", set, key: k, version: y! });
      else if (y === undefined) out.push({ kind: "removed", set, key: k, version: x });
      else if (x !== y) out.push({ kind: "changed", set, key: k, from: x, to: y });
    }
  }
  // the same version with other bytes: the archive rebuilt it, or something is wrong
  for (const k of Object.keys(next.packages).sort()) {
    const a = old?.packages[k];
    const b = next.packages[k]!;
    if (a && a.version === b.version && a.sha256 !== b.sha256) out.push({ kind: "rehashed", key: k, version: b.version });
  }
  return out;
}

export function renderSeedDiff(changes: SeedChange[]): string {
  return changes
    .map((c) => {
      switch (c.kind) {
        case "set-added":
          return `  + set ${c.set} (${c.packages} packages)`;
        case "set-removed":
          return `  - set ${c.set} (${c.packages} packages)`;
        case "added":
          return `  ${c.set}: + ${c.key} ${c.version}`;
        case "removed":
          return `  ${c.set}: - ${c.key} ${c.version}`;
        case "changed":
          return `  ${c.set}: ${c.key} ${c.from} -> ${c.to}`;
        case "rehashed":
          return `  ${c.key} ${c.version}: same version, different sha256`;
      }
    })
    .join("\n");
}

/**
 * Packages, .deb bytes and installed bytes of one set's closure (or several: each package once);
 * `installedSize` counts only the packages whose Installed-Size the archive gives.
 */
export function seedSize(lock: SeedLock, sets: readonly string[]): { packages: number; size: number; installedSize: number } {
  const keys = new Set(sets.flatMap((s) => lock.sets[s]?.packages ?? []));
  let size = 0;
  let installedSize = 0;
  for (const k of keys) {
    size += lock.packages[k]!.size;
    installedSize += lock.packages[k]!.installedSize ?? 0;
  }
  return { packages: keys.size, size, installedSize };
}
