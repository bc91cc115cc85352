// README's exit-code table and the CLI's mapping (cli/run.ts EXIT_CODE) say the same thing.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { EXIT_CODE } from "./run.js";
import { CLI, REPO, tempDir } from "./test-helpers/kiln.js";

describe("exit codes", () => {
  test("every kind of failure is in README's table with the exit code the CLI gives it", () => {
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const table = readme.slice(readme.indexOf("### Exit codes"));
    const documented = new Map<string, number>();
    for (const row of table.split("\n").filter((l) => /^\| \d+ \|/.test(l))) {
      const code = Number(/^\| (\d+) \|/.exec(row)![1]);
      for (const m of row.matchAll(/`([A-Z_]+)`/g)) documented.set(m[1]!, code);
    }
    assert.deepEqual(Object.fromEntries([...documented].sort()), Object.fromEntries(Object.entries(EXIT_CODE).sort()));
  });

  test("a reader that stops reading ends the output quietly: exit 0, no stack trace", () => {
    const err = join(tempDir("out"), "stderr");
    // `true` is gone before kiln writes its first line, so the writes meet a closed pipe
    const r = spawnSync("bash", ["-c", 'set -o pipefail; "$0" "$1" --store "$2" targets -a 2>"$3" | true', process.execPath, CLI, tempDir("store"), err], { cwd: REPO, encoding: "utf8" });
    assert.equal(r.status, 0, readFileSync(err, "utf8"));
    assert.equal(readFileSync(err, "utf8"), "");
  });

  test("builder-serve given what is not its protocol says so (exit 2), instead of an internal error", () => {
    for (const [verb, input] of [["missing", "garbage"], ["build", "{}"], ["build", "[1,"]]) {
      const r = spawnSync(process.execPath, [CLI, "--store", tempDir("store"), "builder-serve", verb!], { input, encoding: "utf8" });
      assert.equal(r.status, 2, `${verb} <<< ${input}: ${r.stderr}`);
      assert.match(r.stderr, /^error: builder-serve: expected /);
      assert.doesNotMatch(r.stderr, /internal error/);
    }
  });
});
