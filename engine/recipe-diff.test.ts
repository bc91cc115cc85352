// Locating a derivation change in the recipe diff: constants, helpers, spreads and other modules,
// and the real pi4-llm-os kernel fragments.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { REPO } from "../cli/test-helpers/kiln.js";
import { contextAt, diffLines, diffRecipes, indexHunks, locate } from "./recipe-diff.js";

const texts = (files: Record<string, string>) => ({ root: "/p", files: new Map(Object.entries(files)) });

describe("diffLines", () => {
  test("hunks with their first old and new lines; a pure deletion sits before the next new line", () => {
    const a = ["a", "b", "c", "d", "e"];
    const b = ["a", "B", "c", "e", "f"];
    assert.deepEqual(diffLines(a, b), [
      { oldStart: 2, newStart: 2, old: ["b"], new: ["B"] },
      { oldStart: 4, newStart: 4, old: ["d"], new: [] },
      { oldStart: 6, newStart: 5, old: [], new: ["f"] },
    ]);
    assert.deepEqual(diffLines(a, a), []);
  });
});

describe("locate", () => {
  const flagsOld = '// shared flags\nexport const OPT = "-O1";\nexport const WARN = "-Wall";\n';
  const index = 'import { OPT } from "./flags.js";\nconst app = (name: string) => derivation({ name, env: { CFLAGS: `${OPT} -g` } });\n';

  test("a constant in another module: the change of env CFLAGS is the edit of its defining line", () => {
    const hunks = indexHunks(diffRecipes(
      texts({ "recipes/flags.ts": flagsOld, "recipes/index.ts": index }),
      texts({ "recipes/flags.ts": flagsOld.replace("-O1", "-O2"), "recipes/index.ts": index }),
    ));
    const found = locate({ added: ["CFLAGS=-O2 -g"], removed: ["CFLAGS=-O1 -g"] }, hunks);
    assert.equal(found.length, 1);
    assert.equal(found[0]!.hunk.file, "recipes/flags.ts");
    assert.equal(found[0]!.line, 2);
  });

  test("an unrelated edit in the same diff is not blamed, and a change no hunk shares a token with finds nothing", () => {
    const hunks = indexHunks(diffRecipes(
      texts({ "recipes/flags.ts": flagsOld, "recipes/index.ts": index }),
      texts({ "recipes/flags.ts": flagsOld.replace("-O1", "-O2").replace("shared flags", "shared flags, step 2"), "recipes/index.ts": index.replace("name, env", "name, hostTools: [\"gcc\"], env") }),
    ));
    const found = locate({ added: ["CFLAGS=-O2 -g"], removed: ["CFLAGS=-O1 -g"] }, hunks);
    assert.deepEqual(found.map((f) => [f.hunk.file, f.line]), [["recipes/flags.ts", 2]]);
    assert.deepEqual(locate({ added: ["LDFLAGS=-s"], removed: [] }, hunks), []);
  });

  test("two edits behind one value are both found", () => {
    const spaced = flagsOld.replace("\nexport const WARN", "\n// warnings\nexport const WARN");
    const hunks = indexHunks(diffRecipes(
      texts({ "recipes/flags.ts": spaced }),
      texts({ "recipes/flags.ts": spaced.replace("-O1", "-O2").replace("-Wall", "-Wextra") }),
    ));
    const found = locate({ added: ["CFLAGS=-O2 -Wextra"], removed: ["CFLAGS=-O1 -Wall"] }, hunks);
    assert.deepEqual(found.map((f) => f.line).sort(), [2, 4]);
  });

  test("std's kernel: IKCONFIG added to the userspace fragment explains the script's new CONFIG_IKCONFIG=y line", () => {
    // pi4-llm-os's userspace fragment (and m-series') is std's userspaceBasics
    const pi4 = readFileSync(join(REPO, "recipes", "pi4-llm-os", "kernel.ts"), "utf8");
    assert.match(pi4, /userspace: userspaceBasics,/);
    const linux = readFileSync(join(REPO, "recipes", "std", "linux.ts"), "utf8");
    const edited = linux.replace('TIMERFD: "y", EVENTFD: "y", UNIX98_PTYS: "y",', 'TIMERFD: "y", EVENTFD: "y", UNIX98_PTYS: "y", IKCONFIG: "y",');
    assert.notEqual(edited, linux);
    const line = edited.split("\n").findIndex((l) => l.includes("IKCONFIG: \"y\",") && l.includes("TIMERFD")) + 1;
    const hunks = indexHunks(diffRecipes(texts({ "recipes/std/linux.ts": linux }), texts({ "recipes/std/linux.ts": edited })));
    const found = locate({ added: ["CONFIG_IKCONFIG=y"], removed: [] }, hunks);
    assert.equal(found.length, 1);
    assert.equal(found[0]!.line, line);
    assert.equal(contextAt(edited, line), "userspaceBasics");
  });
});

describe("contextAt", () => {
  test("names the enclosing declarations and keys, skipping calls and sibling blocks", () => {
    const text = [
      "export function kernel(o: Options = {}): Drv {",
      "  const frags = {",
      "    base: {",
      "      A: \"y\",",
      "    },",
      "    extra: {",
      "      B: \"y\",",
      "    },",
      "  };",
      "  return build({",
      "    script: sh`",
      "      make tinyconfig",
      "    `,",
      "  });",
      "}",
    ].join("\n");
    assert.equal(contextAt(text, 7), "kernel.frags.extra");
    assert.equal(contextAt(text, 12), "kernel.script");
    assert.equal(contextAt(text, 1), undefined);
  });
});
