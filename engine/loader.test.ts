// The recipe loader's JSON modules: bundled as a JSON.parse of the file's text (V8 reads that far
// faster than an object literal), still importable by default and by top-level key, and a file
// that is not JSON is a load error naming it.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { cleanup, tempDir } from "../cli/test-helpers/kiln.js";
import { KilnError } from "../store/errors.js";
import { loadRecipeSet } from "./loader.js";

describe("recipe loader: JSON modules", () => {
  after(cleanup);

  test("default and named imports of a JSON file, bundled as JSON.parse", async () => {
    const dir = tempDir("loader-json");
    writeFileSync(join(dir, "data.json"), JSON.stringify({ suite: "bookworm", "not-an-identifier": 1, delete: true, sets: { base: ["a", "b"] } }));
    writeFileSync(join(dir, "index.ts"), [
      'import data, { suite, sets, delete as del } from "./data.json" with { type: "json" };',
      'export const seen = { suite, base: sets.base, del, odd: (data as Record<string, unknown>)["not-an-identifier"] };',
      "export default {};",
    ].join("\n"));
    const cache = tempDir("loader-cache");
    const set = await loadRecipeSet(join(dir, "index.ts"), cache);
    assert.deepEqual(set.module.seen, { suite: "bookworm", base: ["a", "b"], del: true, odd: 1 });
    const bundle = readdirSync(cache).find((f) => f.endsWith(".mjs"))!;
    assert.match(readFileSync(join(cache, bundle), "utf8"), /JSON\.parse\(/);
  });

  test("a JSON file that is not JSON: a load error naming it", async () => {
    const dir = tempDir("loader-json-bad");
    writeFileSync(join(dir, "data.json"), "{ suite: bookworm }");
    writeFileSync(join(dir, "index.ts"), 'import data from "./data.json" with { type: "json" };\nexport default { data };\n');
    await assert.rejects(loadRecipeSet(join(dir, "index.ts"), tempDir("loader-cache")), (e: unknown) => {
      assert.ok(e instanceof KilnError && e.code === "RECIPE_LOAD", String(e));
      assert.match(e.message, /invalid JSON in \/.*\/data\.json: /);
      return true;
    });
  });
});
