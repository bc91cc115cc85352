// Profiles and their generations, as Nix users know them (`nix-env --profile`, `nix profile
// rollback`, `nix-env --delete-generations`).
//
// A generation is one store path: a small environment, a directory with one relative link per
// target to its output (`greeting -> ../<hash>-greeting`), added like any output. Being content
// addressed, the same outputs under the same target names give the same environment, which is how
// "no new generation when nothing changed" falls out. A generation's GC root is the roots row
// 'gen:<profile>:<n>', written in the same transaction as its row in `generations`; deleting a
// generation deletes both, and the next gc collects what only it kept alive.
//
// On disk, as in /nix/var/nix/profiles:
//   <store root>/profiles/<name>-<n>-link -> ../store/<hash>-profile-<name>   one per generation
//   <store root>/profiles/<name>          -> <name>-<n>-link                  the current one
// The database is the truth; the links are a view of it, re-made (atomically, by rename) after
// every change. A crash between the two leaves links that the next change of that profile fixes.
import { lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { join, relative } from "node:path";
import { KilnError } from "./errors.js";
import { SELF_PID } from "./process.js";
import { tablesOf, type LocalStore } from "./local-store.js";
import { removeTree, type StorePathName } from "./paths.js";
import type { GenRow } from "./profile-table.js";

/** One link in a generation's environment: a target and the output it was realised to. */
export interface ProfileEntry {
  /** the link's name: the target as realised (e.g. 'greeting', 'pi4-llm-os.tests.boot') */
  name: string;
  output: string;
  /** derivation hash, for 'what changed' between generations */
  drv: string;
  path: StorePathName;
}

export interface Generation {
  profile: string;
  number: number;
  /** the environment */
  path: StorePathName;
  createdAt: number;
  entries: ProfileEntry[];
}

export interface ProfileSummary {
  name: string;
  current: number;
  generations: number[];
}

/** Which generations to delete; see selectGenerations. */
export type GenerationSpec =
  | { kind: "number"; n: number }
  | { kind: "old" }
  | { kind: "keep"; newest: number }
  | { kind: "olderThan"; ms: number };

const PROFILE_RE = /^[A-Za-z0-9+_=-][A-Za-z0-9+._=-]{0,99}$/;

export function validateProfileName(name: string): void {
  // '<p>-<n>-link' is a generation link of profile <p>: a profile may not be named like one
  if (!PROFILE_RE.test(name) || /-\d+-link$/.test(name)) {
    throw new KilnError("USAGE", `invalid profile name ${JSON.stringify(name)}`,
      "use up to 100 letters, digits and + . _ = - (not starting with '.', not ending in -<number>-link)");
  }
}

export const rootName = (profile: string, n: number) => `gen:${profile}:${n}`;

export function profilesDir(store: LocalStore): string {
  return join(store.root, "profiles");
}

function fromRow(r: GenRow): Generation {
  return { profile: r.profile, number: r.number, path: r.path as StorePathName, createdAt: r.created_at, entries: JSON.parse(r.entries) as ProfileEntry[] };
}

export function listProfiles(store: LocalStore): ProfileSummary[] {
  return tablesOf(store).profiles.summaries().map((r) => ({ name: r.name, current: r.current, generations: r.numbers.sort((a, b) => a - b) }));
}

/** A profile's generations, oldest first, and its current one. */
export function profileGenerations(store: LocalStore, profile: string): { current: number; generations: Generation[] } {
  const t = tablesOf(store).profiles;
  const cur = t.current(profile);
  if (cur === undefined) {
    const known = listProfiles(store).map((p) => p.name);
    throw new KilnError("USAGE", `there is no profile named ${JSON.stringify(profile)} in the store ${store.root}`,
      known.length ? `the profiles are: ${known.join(", ")} (kiln profile list); make one with kiln realize --profile ${profile} <target...>`
        : `make one with kiln realize --profile ${profile} <target...>`);
  }
  return { current: cur, generations: t.generations(profile).map(fromRow) };
}

/**
 * Record the environment of `entries` as the profile's next generation, unless it is the current
 * generation's already. The environment is registered, the generation row and its GC root written
 * in ONE transaction (Store.addOutput's), so a crash leaves either all of it or none.
 */
export function addGeneration(store: LocalStore, profile: string, entries: ProfileEntry[], now: number): { generation: Generation; created: boolean; previous?: number } {
  validateProfileName(profile);
  const sorted = checkEntries(entries);
  // rooted before use, as everything a kiln process relies on (see store/gc.ts)
  const valid = store.addTempRoots(sorted.map((e) => e.path));
  const gone = sorted.find((e) => !valid.has(e.path));
  if (gone) throw new KilnError("STORE_PATH_INVALID", `${gone.path} (${gone.name}) is not a valid store path (was it collected?)`, "realize it again");

  const dir = store.scratchDir("profile");
  try {
    const env = join(dir, "env");
    mkdirSync(env);
    // relative links: they resolve on the host and under /kiln/store alike
    for (const e of sorted) symlinkSync(`../${e.path}`, join(env, e.name));
    let out: { generation: Generation; created: boolean; previous?: number } | undefined;
    store.addOutput({ scratch: env, name: `profile-${profile}`, candidates: sorted.map((e) => e.path) }, (_id, path) => {
      out = recordGeneration(store, profile, path, sorted, now);
    });
    return out!;
  } finally {
    removeTree(dir);
  }
}

function checkEntries(entries: ProfileEntry[]): ProfileEntry[] {
  const byName = new Map<string, ProfileEntry>();
  for (const e of entries) {
    if (!e.name || e.name === "." || e.name === ".." || e.name.includes("/") || e.name.includes("\0")) {
      throw new KilnError("USAGE", `the target name ${JSON.stringify(e.name)} cannot name a link in a profile`, "realize targets whose names are plain file names into a profile");
    }
    const seen = byName.get(e.name);
    if (seen && seen.path !== e.path) {
      throw new KilnError("USAGE", `two outputs would be linked as ${e.name} in the profile (${seen.path}, ${e.path})`, "realize them into separate profiles");
    }
    byName.set(e.name, e);
  }
  if (byName.size === 0) throw new KilnError("USAGE", "nothing to put in the profile: no target was realised", "name at least one target");
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Inside the registration transaction: a new generation, or none when the current one is the same. */
function recordGeneration(store: LocalStore, profile: string, path: StorePathName, entries: ProfileEntry[], now: number): { generation: Generation; created: boolean; previous?: number } {
  const t = tablesOf(store);
  const cur = t.profiles.current(profile);
  if (cur !== undefined) {
    const row = t.profiles.generation(profile, cur);
    if (row && row.path === path) return { generation: fromRow(row), created: false };
  }
  // after a rollback and a deletion the newest generations may be gone: their numbers stay used
  const n = t.profiles.last(profile) + 1;
  t.profiles.insertGeneration({ profile, number: n, path, created_at: now, entries: JSON.stringify(entries) });
  t.roots.put(rootName(profile, n), "generation", path, now);
  return { generation: { profile, number: n, path, createdAt: now, entries }, created: true, ...(cur !== undefined ? { previous: cur } : {}) };
}

/** Make generation `to` current ('previous': the newest one before the current, as Nix's rollback). */
export function switchGeneration(store: LocalStore, profile: string, to: number | "previous"): { from: number; to: number } {
  const t = tablesOf(store);
  return t.transaction(() => {
    const { current, generations } = profileGenerations(store, profile);
    const numbers = generations.map((g) => g.number);
    let target: number;
    if (to === "previous") {
      const before = numbers.filter((n) => n < current);
      if (before.length === 0) {
        throw new KilnError("USAGE", `profile ${profile} has no generation before its current one (${current}) to roll back to`,
          numbers.length > 1 ? `switch forward with kiln profile rollback ${profile} --to <N> (generations: ${numbers.join(", ")})` : "see kiln profile history " + profile);
      }
      target = before[before.length - 1]!;
    } else {
      if (!numbers.includes(to)) {
        throw new KilnError("USAGE", `profile ${profile} has no generation ${to}`, `its generations are ${numbers.join(", ")} (kiln profile history ${profile})`);
      }
      target = to;
    }
    t.profiles.setCurrent(profile, target);
    return { from: current, to: target };
  });
}

/**
 * The generations that `specs` select for deletion, as Nix's --delete-generations: numbers (never
 * the current one: an error), 'old' (all but the current), 'keep' (all but the newest K), and
 * 'olderThan' (all created before now - ms, except the newest of those: it was current then, so
 * one can still roll back to how things were at that time). The current generation is always kept.
 * Pure.
 */
export function selectGenerations(profile: string, gens: Array<{ number: number; createdAt: number }>, current: number, specs: GenerationSpec[], now: number): number[] {
  const numbers = gens.map((g) => g.number).sort((a, b) => a - b);
  const out = new Set<number>();
  for (const s of specs) {
    switch (s.kind) {
      case "number":
        if (!numbers.includes(s.n)) throw new KilnError("USAGE", `profile ${profile} has no generation ${s.n}`, `its generations are ${numbers.join(", ")} (kiln profile history ${profile})`);
        if (s.n === current) {
          throw new KilnError("USAGE", `generation ${s.n} is the current generation of profile ${profile}; it cannot be deleted`,
            `switch to another one first (kiln profile rollback ${profile} [--to N])`);
        }
        out.add(s.n);
        break;
      case "old":
        for (const n of numbers) out.add(n);
        break;
      case "keep":
        if (!Number.isInteger(s.newest) || s.newest < 1) throw new KilnError("USAGE", `cannot keep ${s.newest} generations`, "keep at least 1 (the current generation is always kept)");
        for (const n of numbers.slice(0, Math.max(0, numbers.length - s.newest))) out.add(n);
        break;
      case "olderThan": {
        const older = gens.filter((g) => g.createdAt < now - s.ms).map((g) => g.number).sort((a, b) => a - b);
        for (const n of older.slice(0, -1)) out.add(n);
        break;
      }
    }
  }
  out.delete(current);
  return [...out].sort((a, b) => a - b);
}

/**
 * Delete the selected generations of each profile (all profiles when `profile` is undefined) in one
 * transaction: their rows and their GC roots. The paths stay until the next gc. A dry run selects
 * only.
 */
export function deleteGenerations(store: LocalStore, profile: string | undefined, specs: GenerationSpec[], now: number, dryRun = false): Generation[] {
  const t = tablesOf(store);
  const select = () => {
    const names = profile === undefined ? listProfiles(store).map((p) => p.name) : [profile];
    const doomed: Generation[] = [];
    for (const name of names) {
      const { current, generations } = profileGenerations(store, name);
      const pick = new Set(selectGenerations(name, generations, current, specs, now));
      doomed.push(...generations.filter((g) => pick.has(g.number)));
    }
    if (dryRun || doomed.length === 0) return doomed;
    for (const g of doomed) {
      t.profiles.deleteGeneration(g.profile, g.number);
      t.roots.delete(rootName(g.profile, g.number), "generation");
    }
    return doomed;
  };
  return dryRun ? t.snapshot(select) : t.transaction(select);
}

/**
 * Make the links under <store root>/profiles say what the database says for `profile`: one link
 * per generation, none for deleted ones, and <name> pointing at the current one. Each link is
 * replaced by a rename, so a reader sees the old link or the new one, never none.
 */
export function syncProfileLinks(store: LocalStore, profile: string): void {
  const dir = profilesDir(store);
  mkdirSync(dir, { recursive: true });
  // two kiln processes changing one profile: the last to sync reads the newest state
  store.lockSync(`profile:${profile}`);
  try {
    const t = tablesOf(store).profiles;
    const cur = t.current(profile);
    const gens = t.generations(profile);
    const keep = new Set<string>();
    for (const g of gens) {
      const link = `${profile}-${g.number}-link`;
      keep.add(link);
      setLink(dir, link, relative(dir, store.hostPath(g.path as StorePathName)));
    }
    for (const e of readdirSync(dir)) {
      if (keep.has(e) || !e.startsWith(`${profile}-`) || !e.endsWith("-link")) continue;
      if (!/^\d+$/.test(e.slice(profile.length + 1, -"-link".length))) continue;
      rmSync(join(dir, e), { force: true });
    }
    if (cur !== undefined) setLink(dir, profile, `${profile}-${cur}-link`);
    else rmSync(join(dir, profile), { force: true });
  } finally {
    store.unlock(`profile:${profile}`);
  }
}

function setLink(dir: string, name: string, target: string): void {
  const link = join(dir, name);
  let existing: string | undefined;
  try {
    if (!lstatSync(link).isSymbolicLink()) {
      throw new KilnError("USAGE", `${link} exists and is not a symlink; kiln will not replace it`, "move it out of the way, then run the profile command again");
    }
    existing = readlinkSync(link);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (existing === target) return;
  const tmp = join(dir, `.${name}.${SELF_PID}.tmp`);
  try {
    unlinkSync(tmp);
  } catch {
    /* none left over */
  }
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}
