// The recipe set's revision as history records it (cli/git.ts): git is asked only where a
// repository can be found, and must find the same one git itself would.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { forgetGit, recipesRevision } from "./git.js";
import { cleanup, tempDir } from "./test-helpers/kiln.js";

after(cleanup);

const git = (cwd: string, ...args: string[]) => execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd, encoding: "utf8" }).trim();

function repo(): { top: string; entry: string; head: string } {
  const top = tempDir("git-repo");
  mkdirSync(join(top, "recipes"));
  const entry = join(top, "recipes", "index.ts");
  writeFileSync(entry, "export default {};\n");
  git(top, "init", "-q");
  git(top, "add", ".");
  git(top, "commit", "-q", "-m", "recipes");
  return { top, entry, head: git(top, "rev-parse", "HEAD") };
}

describe("recipesRevision", () => {
  test("HEAD of the repository, clean, then dirty once a tracked file changes (untracked files do not count)", () => {
    const r = repo();
    assert.deepEqual(recipesRevision(r.entry), { rev: r.head, dirty: false });
    writeFileSync(join(r.top, "recipes", "scratch.ts"), "untracked\n");
    assert.deepEqual(recipesRevision(r.entry), { rev: r.head, dirty: false });
    appendFileSync(r.entry, "// edited\n");
    assert.deepEqual(recipesRevision(r.entry), { rev: r.head, dirty: true });
  });

  test("whether a folder is in a repository is looked up once, until forgetGit (a watch's next round)", () => {
    const top = tempDir("git-later");
    mkdirSync(join(top, "recipes"));
    const entry = join(top, "recipes", "index.ts");
    writeFileSync(entry, "export default {};\n");
    assert.equal(recipesRevision(entry), null);
    git(top, "init", "-q");
    git(top, "add", ".");
    git(top, "commit", "-q", "-m", "recipes");
    assert.equal(recipesRevision(entry), null, "the answer found before stands");
    forgetGit();
    assert.deepEqual(recipesRevision(entry), { rev: git(top, "rev-parse", "HEAD"), dirty: false });
  });

  test("a recipe folder reached through a symbolic link: the repository of its real place", () => {
    const r = repo();
    const elsewhere = tempDir("git-link");
    symlinkSync(join(r.top, "recipes"), join(elsewhere, "recipes"));
    assert.deepEqual(recipesRevision(join(elsewhere, "recipes", "index.ts")), { rev: r.head, dirty: false });
  });

  test("no repository, or one without a commit yet: none", () => {
    const outside = tempDir("git-none");
    writeFileSync(join(outside, "index.ts"), "export default {};\n");
    assert.equal(recipesRevision(join(outside, "index.ts")), null);
    git(outside, "init", "-q");
    assert.equal(recipesRevision(join(outside, "index.ts")), null);
  });
});
