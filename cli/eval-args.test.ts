// The launcher's reading of a plain `kiln plan` or `kiln eval` (cli/eval-args.ts): what it takes,
// it reads as yargs reads it for the full CLI; anything it is not sure of goes to the full CLI
// (undefined).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseEvalArgs } from "./eval-args.js";

describe("eval-args: which plan and eval command lines the launcher runs from their own bundle", () => {
  test("plain forms are read: the verb, its targets, --json and --[no-]eval-cache after it, the globals that change neither", () => {
    assert.deepEqual(parseEvalArgs(["plan", "a"]), { verb: "plan", args: { targets: ["a"] } });
    assert.deepEqual(parseEvalArgs(["eval", "a", "b.c"]), { verb: "eval", args: { targets: ["a", "b.c"] } });
    assert.deepEqual(parseEvalArgs(["--store", "/s", "-f", "r/index.ts", "plan", "x", "--json"]),
      { verb: "plan", args: { store: "/s", recipes: "r/index.ts", targets: ["x"], json: true } });
    assert.deepEqual(parseEvalArgs(["eval", "--no-eval-cache", "x", "--store=/s"]), { verb: "eval", args: { store: "/s", targets: ["x"], "eval-cache": false } });
    assert.deepEqual(parseEvalArgs(["plan", "x", "--eval-cache", "--reporter", "plain"]), { verb: "plan", args: { reporter: "plain", targets: ["x"], "eval-cache": true } });
    assert.deepEqual(parseEvalArgs(["-j", "4", "--cores", "2", "-k", "-L", "plan", "x"]), { verb: "plan", args: { targets: ["x"] } });
  });

  test("anything else is the full CLI's", () => {
    for (const argv of [
      [], ["plan"], ["eval"], ["realize", "x"], ["gc"], ["plan", "--help"], ["eval", "x", "-h"], ["--help", "plan", "x"],
      ["plan", "x", "--json=true"], ["plan", "x", "--json", "--json"], ["plan", "x", "--no-json"], ["plan", "x", "--jsn"],
      ["--json", "plan", "x"], ["--no-eval-cache", "plan", "x"], ["plan", "x", "--eval-cache", "--no-eval-cache"],
      ["eval", "x", "--svg"], ["plan", "x", "--dry-run"], ["--reporter", "fancy", "plan", "x"], ["plan", "x", "--store"],
      ["plan", "--", "x"], ["plan", "x", "--constructor"], ["-jk", "plan", "x"],
      // an array option takes every word after it, the command too
      ["--mirror", "/m", "plan", "x"], ["plan", "x", "--substituters", "file:///c"], ["--builders", "ssh://h", "eval", "x"],
      ["graph", "plan"], ["why", "eval"],
    ]) {
      assert.equal(parseEvalArgs(argv), undefined, JSON.stringify(argv));
    }
  });
});
