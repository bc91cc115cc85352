// The bootstrap seed as derivations: pinned Debian binary packages (seed/seed.lock.json, written by
// `kiln seed lock` from seed/sets.json), each fetched by sha256 and unpacked by kiln itself into a
// store path of its own, then merged into one tree per set or union of sets:
//
//   fetchDeb(gawk_5.2.1-2_amd64.deb) ─▶ builtin:unpack-deb ─┐
//   fetchDeb(libc6_2.36-9_amd64.deb) ─▶ builtin:unpack-deb ─┼─▶ builtin:seed-root ─▶ seed-base
//   ...                                                      ┘   (+ alternatives links)
//
// The tree is laid out merged-/usr (usr/bin, usr/lib, ...; bin -> usr/bin): a sandbox that mounts
// its usr/ as /usr runs unmodified Debian binaries. A package shared by several sets is fetched
// and unpacked once.
import { atCaller, derivation, type Drv } from "kiln";
import { fetchDebFromPool } from "./fetch.js";
import lockJson from "./seed/seed.lock.json" with { type: "json" };
import setsJson from "./seed/sets.json" with { type: "json" };

interface SetSpec {
  arch: string;
  packages: string[];
  exclude?: string[];
  links?: Record<string, string>;
  prefer?: Record<string, string>;
}

interface LockedPackage {
  name: string;
  version: string;
  arch: string;
  sha256: string;
  url: string;
}

const sets = setsJson as { suite: string; archive?: string; security?: string; sets: Record<string, SetSpec> };
const lock = lockJson as { suite: string; sets: Record<string, { arch: string; request: string[]; exclude?: string[]; packages: string[] }>; packages: Record<string, LockedPackage> };

const ARCHIVE = sets.archive ?? "http://deb.debian.org/debian";
const SECURITY = sets.security ?? "http://deb.debian.org/debian-security";

/** The names of the seed's sets. */
export const seedSets: readonly string[] = Object.keys(sets.sets).sort();

/** A set of sets.json, by name: a typo is a type error in the recipe. */
export type SeedSet = keyof typeof setsJson.sets;

// a lock written for other sets would pin the wrong packages without anyone noticing
{
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  const stale = [
    ...(lock.suite !== sets.suite ? [`suite ${lock.suite} -> ${sets.suite}`] : []),
    ...seedSets.filter((s) => !lock.sets[s] || lock.sets[s].arch !== sets.sets[s]!.arch || !same(lock.sets[s].request, [...sets.sets[s]!.packages].sort())
      || !same(lock.sets[s].exclude ?? [], [...(sets.sets[s]!.exclude ?? [])].sort())).map((s) => `set ${s}`),
    ...Object.keys(lock.sets).filter((s) => !sets.sets[s]).map((s) => `set ${s} (removed)`),
  ];
  if (stale.length) throw new Error(`recipes/std/seed/seed.lock.json does not match sets.json (${stale.join(", ")}): run \`kiln seed lock\` and commit both files`);
}

/** Debian's .deb name without the epoch, as a store name. */
function storeName(p: LockedPackage): string {
  return `${p.name}_${p.version.replace(/^\d+:/, "")}_${p.arch}`.replace(/[^a-zA-Z0-9+._?=-]/g, "_");
}

const unpacked = new Map<string, Drv>();

/**
 * One locked package ("gawk:amd64", "perl-modules-5.36:all"), fetched and unpacked into its own
 * store path (merged-/usr, see engine/builtins/unpack-deb.ts).
 */
export function seedPackage(key: string): Drv {
  let tree = unpacked.get(key);
  if (tree) return tree;
  const p = lock.packages[key];
  if (!p) throw new Error(`seed: no package ${key} in recipes/std/seed/seed.lock.json`);
  // a security update moves to the main archive's pool at the next point release, and the
  // security pool drops it once superseded: the main pool is the fallback for the same bytes
  const urls = [p.url, ...(p.url.startsWith(`${SECURITY}/pool/updates/`) ? [p.url.replace(`${SECURITY}/pool/updates/`, `${ARCHIVE}/pool/`)] : [])];
  const deb = fetchDebFromPool({ package: p.name, version: p.version, ...(p.arch !== "all" ? { arch: p.arch } : {}), sha256: p.sha256, urls });
  tree = derivation({ name: storeName(p), builder: "builtin:unpack-deb", args: [deb] });
  unpacked.set(key, tree);
  return tree;
}

const roots = new Map<string, Drv>();

/**
 * The seed tree of one set, or of the union of several (each package once), with the sets'
 * alternatives links; named seed-<set>+<set>... Sets of different architectures cannot share a
 * tree.
 */
export function seed(...names: string[]): Drv {
  const chosen = [...new Set(names)].sort();
  if (chosen.length === 0) throw new Error("seed(): name at least one set");
  for (const s of chosen) if (!sets.sets[s]) throw new Error(`seed: no set ${JSON.stringify(s)} (the sets are ${seedSets.join(", ")})`);
  const id = chosen.join("+");
  const done = roots.get(id);
  if (done) return done;
  const archs = [...new Set(chosen.map((s) => sets.sets[s]!.arch))];
  if (archs.length > 1) throw new Error(`seed: sets ${chosen.join(", ")} are for different architectures (${archs.join(", ")}) and cannot share one tree`);

  const keys = [...new Set(chosen.flatMap((s) => lock.sets[s]!.packages))].sort();
  const links = merge(chosen, "links");
  const prefer = merge(chosen, "prefer");
  // hundreds of derivations, all positioned at the line that asked for the tree: found once
  const root = atCaller(() => {
    const args: Array<string | Drv> = [];
    for (const k of keys) args.push("package", lock.packages[k]!.name, seedPackage(k));
    for (const [path, target] of Object.entries(links)) args.push("link", path, target);
    for (const [path, winner] of Object.entries(prefer)) args.push("prefer", path, winner);
    return derivation({ name: `seed-${id}`, builder: "builtin:seed-root", args });
  });
  roots.set(id, root);
  return root;
}

/** The sets' links (or prefers) together, sorted; one path with two different values is an error. */
function merge(chosen: string[], field: "links" | "prefer"): Record<string, string> {
  const out = new Map<string, { value: string; set: string }>();
  for (const s of chosen) {
    for (const [path, value] of Object.entries(sets.sets[s]![field] ?? {})) {
      const had = out.get(path);
      if (had && had.value !== value) throw new Error(`seed: sets ${had.set} and ${s} give ${path} different ${field} (${had.value}, ${value})`);
      out.set(path, { value, set: s });
    }
  }
  return Object.fromEntries([...out.keys()].sort().map((k) => [k, out.get(k)!.value]));
}
