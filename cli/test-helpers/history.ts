// A fixture's history for tests of what kiln records over time (why, plan): the fixture in a git
// repository of its own with a store beside it, and later states of both, each made once, on first
// need, from a copy of the state before it. A state is never changed once made: a test that changes
// anything (the work tree, the store) works on a copy, so that tests run alone and in any order
// without building the history again for each. Commands that only read (why) may run in the state
// itself, and must where they name files: kiln records where the recipes were when it realised.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { copyFixture, git, kilnJson, tempDir, type RunResult } from "./kiln.js";

/** A recipe set in a git work tree (cwd) and its store. */
export interface State {
  cwd: string;
  store: string;
}

/** A state and what the change that made it returned. */
export type After<T> = State & { made: T };

/** `make`, run once, when first asked for. */
export function lazy<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

/**
 * fixtures/<name> committed in a repository of its own, that also holds the seed it imports
 * (../lib), as kiln's own does; an empty store beside it.
 */
export function fixtureInGit(name: string, message: string): State & { rev: string } {
  const cwd = copyFixture(name);
  git(dirname(cwd), "init", "-q");
  git(dirname(cwd), "add", `${name}/recipes`, `${name}/src`, "lib");
  git(cwd, "commit", "-q", "-m", message);
  return { cwd, store: tempDir(`${name}-store`), rev: git(cwd, "rev-parse", "HEAD") };
}

/**
 * A copy of a state that nothing else uses: the repository (work tree and .git) and the store,
 * symlinks as they are. `cp -a`: fs.cpSync takes ten times as long on a store's thousand files.
 */
export function copyState<S extends State>(s: S): S {
  const dir = tempDir("state");
  const repo = join(dir, "repo");
  const store = join(dir, "store");
  for (const [from, to] of [[dirname(s.cwd), repo], [s.store, store]] as const) {
    const r = spawnSync("cp", ["-a", from, to], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`cp -a ${from} ${to}: ${r.stderr}`);
  }
  return { ...s, cwd: join(repo, basename(s.cwd)), store };
}

/** The state `change` makes of a copy of `from`'s, made once, on first need. */
export function stateAfter<T>(from: () => Promise<State>, change: (s: State) => Promise<T>): () => Promise<After<T>> {
  return lazy(async () => {
    const s = copyState(await from());
    return { ...s, made: await change(s) };
  });
}

/** Replace `from` by `to` in a file; a text that is not there is the test's mistake, not a no-op. */
export function edit(file: string, from: string, to: string): void {
  const text = readFileSync(file, "utf8");
  if (!text.includes(from)) throw new Error(`${file} does not contain ${JSON.stringify(from)}`);
  writeFileSync(file, text.replace(from, to));
}

/** Commit every tracked change with `message`, then realize `target`. */
export function commitAndRealize(s: State, message: string, target: string): Promise<RunResult> {
  git(s.cwd, "commit", "-q", "-am", message);
  return kilnJson(["realize", target], s);
}
