// The recipe set's git state, read here (the CLI owns the process and the host) and handed to the
// engine as plain values: history records the revision each realisation was evaluated at.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, realpathSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { KilnError } from "../store/errors.js";
import type { RecipesRev } from "../store/history.js";
import { nearestAbove } from "./locate.js";

function git(dir: string, args: string[]): string | undefined {
  if (!maybeInGit(dir)) return undefined;
  const r = spawnSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return r.status === 0 ? r.stdout : undefined;
}

/**
 * Whether git could find a repository for `dir`: a .git (or a bare repository) in it or a
 * directory above, by its path or its real path, or one named by the environment. Outside one,
 * no git is started (a start costs ~15-20 ms; an evaluation asks for the revision, a plan for
 * each changed line's commit).
 */
function maybeInGit(dir: string): boolean {
  if (process.env.GIT_DIR !== undefined) return true;
  // asked once per directory until forgetGit(): a plan asks for each cause it explains (a
  // hundred inputs of a wide derivation: a hundred walks up to / otherwise)
  let known = inGit.get(dir);
  if (known === undefined) inGit.set(dir, (known = findsRepository(dir)));
  return known;
}
const inGit = new Map<string, boolean>();

/** Look for repositories again (each round of a watch: a `git init` meanwhile is seen). */
export function forgetGit(): void {
  inGit.clear();
}

function findsRepository(dir: string): boolean {
  // a work tree's .git, or a bare repository's own directory, which git also finds
  const repository = (d: string) => existsSync(join(d, ".git")) || (existsSync(join(d, "HEAD")) && existsSync(join(d, "objects")) && existsSync(join(d, "refs")));
  if (nearestAbove(resolve(dir), repository) !== undefined) return true;
  // git searches from the directory's real place: a recipe folder reached through a link
  try {
    return nearestAbove(realpathSync(dir), repository) !== undefined;
  } catch {
    return false;
  }
}

/** HEAD of the git repository holding the recipe entry file, and whether tracked files changed. */
export function recipesRevision(entry: string): RecipesRev | null {
  const dir = dirname(entry);
  // one git for both: the branch header names HEAD's commit ("(initial)" before the first),
  // and every other line is a changed tracked file; untracked files are left out: result links
  // and scratch files are untracked but not recipes
  const status = git(dir, ["status", "--porcelain=v2", "--branch", "--untracked-files=no"]);
  if (status === undefined) {
    // no work tree to compare (recipes inside a bare repository's folder): HEAD alone, as before
    const rev = git(dir, ["rev-parse", "--verify", "-q", "HEAD"])?.trim();
    return rev ? { rev, dirty: false } : null;
  }
  const head = /^# branch\.oid ([0-9a-f]{40,64})$/m.exec(status)?.[1];
  if (!head) return null;
  return { rev: head, dirty: status.split("\n").some((l) => l.length > 0 && !l.startsWith("#")) };
}

/** A revision name (HEAD~1, a branch, a short hash) as a full commit hash, if git knows it. */
export function resolveRevision(entry: string, rev: string): string | undefined {
  return git(dirname(entry), ["rev-parse", "--verify", "-q", `${rev}^{commit}`])?.trim() || undefined;
}

const changedIn = (hash: string, subject: string | undefined) => `last changed in ${hash.slice(0, 10)}${subject ? ` "${subject}"` : ""}`;

/**
 * Which commit last changed a line, as a phrase for the reader; undefined outside git. With a
 * revision, the line is that revision's (the work tree may have moved on); without, the work tree's.
 */
export function lineCommit(file: string, line: number, rev?: string): string | undefined {
  const out = git(dirname(file), ["blame", "--porcelain", "-L", `${line},${line}`, ...(rev ? [rev] : []), "--", file]);
  const hash = out?.split(" ")[0];
  if (!hash || !/^[0-9a-f]{40}$/.test(hash)) return undefined;
  if (/^0+$/.test(hash)) return "not committed yet";
  return changedIn(hash, /^summary (.*)$/m.exec(out!)?.[1]);
}

/**
 * The last commit (up to `rev`, default HEAD) that touched a file, or whose diff of it added or
 * removed `text` (git's pickaxe: what deleted a line that blame can no longer show).
 */
export function fileCommit(file: string, o: { rev?: string; text?: string } = {}): string | undefined {
  const out = git(dirname(file), ["log", "-1", "--format=%H%x00%s", ...(o.text ? [`-S${o.text}`] : []), o.rev ?? "HEAD", "--", file])?.trim();
  const [hash, subject] = (out ?? "").split("\0");
  return hash && /^[0-9a-f]{40}$/.test(hash) ? changedIn(hash, subject) : undefined;
}

/** Whether a file in the work tree differs from HEAD (or is not tracked); undefined outside git. */
export function uncommitted(file: string): boolean | undefined {
  const out = git(dirname(file), ["status", "--porcelain", "--", file]);
  return out === undefined ? undefined : out.trim().length > 0;
}

/** A file's text at a revision (path relative to `dir`), or undefined (not in git, not in that revision). */
export function fileAtRevision(dir: string, rev: string, rel: string): string | undefined {
  return git(dir, ["show", `${rev}:./${rel}`]);
}

/**
 * The recipe set as it was at a revision, unpacked into `into` (git archive; the working tree is
 * not touched). Returns the entry file's path inside it and the full commit hash.
 */
export function recipesAtRevision(entry: string, rev: string, into: string): { entry: string; rev: string } {
  const top = git(dirname(entry), ["rev-parse", "--show-toplevel"])?.trim();
  if (!top) throw new KilnError("USAGE", `--rev needs the recipe set in a git repository; ${entry} is not in one`, "commit the recipes to git, or drop --rev");
  const full = resolveRevision(entry, rev);
  if (!full) throw new KilnError("USAGE", `git does not know the revision '${rev}' in ${top}`, "give a commit, branch or tag that `git rev-parse` accepts");
  const archive = spawnSync("git", ["-C", top, "archive", "--format=tar", full], { maxBuffer: 1 << 30 });
  if (archive.status !== 0) throw new KilnError("USAGE", `git archive ${full} failed: ${archive.stderr.toString().trim()}`, "check the repository");
  mkdirSync(into, { recursive: true });
  const tar = spawnSync("tar", ["-x", "-C", into], { input: archive.stdout });
  if (tar.status !== 0) throw new KilnError("USAGE", `unpacking revision ${full} failed: ${tar.stderr.toString().trim()}`, "check free disk space");
  return { entry: join(into, relative(top, entry)), rev: full };
}
