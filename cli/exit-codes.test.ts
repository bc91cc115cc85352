// README's exit-code table and the CLI's mapping (cli/run.ts EXIT_CODE) say the same thing.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { EXIT_CODE } from "./run.js";
import { REPO } from "./test-helpers/kiln.js";

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
});
