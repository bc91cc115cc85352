// The launcher's reading of a plain `kiln gc` (cli/gc-args.ts): what it takes, it reads as yargs
// reads it for the full CLI; anything it is not sure of goes to the full CLI (undefined).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseGcArgs } from "./gc-args.js";

describe("gc-args: which gc command lines the launcher runs from gc's own bundle", () => {
  test("plain forms are read, with gc's options by name and alias and the globals that do not change a gc", () => {
    assert.deepEqual(parseGcArgs(["gc"]), {});
    assert.deepEqual(parseGcArgs(["--store", "/s", "gc", "--dry-run"]), { store: "/s", "dry-run": true });
    assert.deepEqual(parseGcArgs(["gc", "-n", "--store=/s"]), { store: "/s", "dry-run": true });
    assert.deepEqual(parseGcArgs(["gc", "--print-dead", "--json"]), { "print-dead": true, json: true });
    assert.deepEqual(parseGcArgs(["gc", "--max-size", "10G", "--older-than=30d", "--keep-build-deps"]), { "max-size": "10G", "older-than": "30d", "keep-build-deps": true });
    assert.deepEqual(parseGcArgs(["gc", "--keep-generations", "3", "--delete-older-than", "7d", "--history-older-than", "90d"]),
      { "keep-generations": 3, "delete-older-than": "7d", "history-older-than": "90d" });
    assert.deepEqual(parseGcArgs(["gc", "--max-freed", "2G", "--batch-size=5"]), { "max-freed": "2G", "batch-size": 5 });
    assert.deepEqual(parseGcArgs(["-j", "4", "--cores", "2", "-k", "-L", "--no-eval-cache", "--reporter", "json", "-f", "r.ts", "gc"]), {});
  });

  test("anything else is the full CLI's", () => {
    for (const argv of [
      [], ["realize", "x"], ["gc", "extra"], ["gc", "gc"], ["--help"], ["gc", "--help"], ["gc", "-h"],
      ["gc", "--dry-run=true"], ["gc", "--dry-run=false"], ["gc", "--no-dry-run"], ["gc", "-nk"],
      ["gc", "--dry-run", "-n"], ["gc", "-n", "--dry-run"], ["gc", "--json", "--json"], ["--store", "a", "gc", "--store", "b"],
      ["gc", "--max-size"], ["gc", "--max-size", "-1"], ["gc", "--max-size="], ["gc", "--keep-generations", "2.5"],
      ["gc", "--keep-generations", "x"], ["gc", "--dryrun"], ["gc", "--substituters", "file:///c"], ["--reporter", "fancy", "gc"],
      ["--dry-run", "gc"], ["gc", "--store"], ["gc", "--", "x"], ["gc", "--constructor", "1"], ["gc", "--toString"],
      // an array option takes every word after it, the command too: `kiln --mirror /m gc` has none
      ["--mirror", "/m", "gc"], ["--mirror=/m", "gc"], ["gc", "--mirror", "/m"], ["--substituters", "file:///c", "gc"],
    ]) {
      assert.equal(parseGcArgs(argv), undefined, JSON.stringify(argv));
    }
  });
});
