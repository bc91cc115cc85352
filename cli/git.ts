// The recipe set's git state, read here (the CLI owns the process and the host) and handed to the
// engine as plain values: history records the revision each realisation was evaluated at.
import { spawnSync } from "node:child_process";
import { dirname } from "node:path";
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
