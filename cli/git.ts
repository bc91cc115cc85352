// The recipe set's git state, read here (the CLI owns the process and the host) and handed to the
// engine as plain values: history records the revision each realisation was evaluated at.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { KilnError } from "../store/errors.js";
import type { RecipesRev } from "../store/history.js";

function git(dir: string, args: string[]): string | undefined {
  const r = spawnSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return r.status === 0 ? r.stdout : undefined;
}

/** HEAD of the git repository holding the recipe entry file, and whether tracked files changed. */
export function recipesRevision(entry: string): RecipesRev | null {
  const dir = dirname(entry);
  const head = git(dir, ["rev-parse", "--verify", "-q", "HEAD"])?.trim();
  if (!head) return null;
  // untracked files are left out: result links and scratch files are untracked but not recipes
  const status = git(dir, ["status", "--porcelain", "--untracked-files=no"]);
  return { rev: head, dirty: (status ?? "").trim().length > 0 };
}

/** A revision name (HEAD~1, a branch, a short hash) as a full commit hash, if git knows it. */
export function resolveRevision(entry: string, rev: string): string | undefined {
  return git(dirname(entry), ["rev-parse", "--verify", "-q", `${rev}^{commit}`])?.trim() || undefined;
}

/** Which commit last changed a line, as a phrase for the reader; undefined outside git. */
export function lineCommit(file: string, line: number): string | undefined {
  const out = git(dirname(file), ["blame", "--porcelain", "-L", `${line},${line}`, "--", file]);
  const hash = out?.split(" ")[0];
  if (!hash || !/^[0-9a-f]{40}$/.test(hash)) return undefined;
  if (/^0+$/.test(hash)) return "not committed yet";
  const summary = /^summary (.*)$/m.exec(out!)?.[1];
  return `last changed in ${hash.slice(0, 10)}${summary ? ` "${summary}"` : ""}`;
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
