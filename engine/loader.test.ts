// The recipe loader's JSON modules: bundled as a JSON.parse of the file's text (V8 reads that far
// faster than an object literal), still importable by default and by top-level key, and a file
// that is not JSON is a load error naming it.
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { cleanup, kiln, tempDir } from "../cli/test-helpers/kiln.js";
import { KilnError } from "../store/errors.js";
import { isDrv } from "./api.js";
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

describe("recipe loader: one cache, two ways of running kiln", () => {
  after(cleanup);

  // A bundle imports the recipe API by path: engine/api.ts when kiln runs from its sources under a
  // TypeScript loader, the compiled module when it runs as the CLI. Sharing a store (its
  // eval-cache) must not hand one the other's bundle.
  test("the compiled CLI does not load a bundle made for the sources' api module", async () => {
    const dir = tempDir("loader-two-apis");
    const store = tempDir("loader-two-apis-store");
    mkdirSync(join(dir, "recipes"));
    writeFileSync(join(dir, "recipes", "index.ts"), [
      'import { derivation, sh } from "kiln";',
      'export const hello = derivation({ name: "hello", script: sh`echo hi > $out` });',
    ].join("\n"));
    const set = await loadRecipeSet(join(dir, "recipes", "index.ts"), join(store, "eval-cache"));
    assert.ok(isDrv(set.module.hello));
    const r = await kiln(["targets"], { cwd: dir, store });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hello/);
  });
});

/** A recipe set in a new temporary folder: each file's lines by its path in the folder. */
function recipeSet(prefix: string, files: Record<string, string[]>): string {
  const dir = tempDir(prefix);
  for (const [path, lines] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), lines.join("\n"));
  }
  return dir;
}

/** Each derivation's position by name, as `kiln eval --json <target>` of the recipe set in `dir` (index.ts) gives it. */
async function positions(dir: string, target: string, store = tempDir("loader-positions-store")): Promise<Record<string, string | undefined>> {
  const r = await kiln(["-f", join(dir, "index.ts"), "eval", "--json", target], { cwd: dir, store });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { derivations: Record<string, { name: string; meta: { position?: string } }> };
  return Object.fromEntries(Object.values(out.derivations).map((d) => [d.name, d.meta.position]));
}

describe("recipe loader: positions through the bundle's own map", () => {
  after(cleanup);

  // The bundle's source map is a file beside it, read only when a position is asked for
  // (engine/source-map.ts): positions and stack traces still name the recipe files.
  test("a recipe that throws while loading: the stack names the recipe's line, not the bundle's", async () => {
    const dir = tempDir("loader-throw");
    writeFileSync(join(dir, "index.ts"), [
      'import { derivation, sh } from "kiln";',
      "// a comment and a type the bundle drops, so the bundle's lines are not the recipe's",
      "type Unused = { a: number };",
      "function boom(): never {",
      '  throw new Error("recipe bug here");',
      "}",
      'export const hello = derivation({ name: "hello", script: sh`echo ${String(boom())} > $out` });',
    ].join("\n"));
    const r = await kiln(["-f", join(dir, "index.ts"), "eval", "hello"], { cwd: dir, store: tempDir("loader-throw-store") });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /recipe bug here/);
    assert.ok(r.stderr.includes(`at boom (${join(dir, "index.ts")}:5:9)`), r.stderr);
    assert.ok(!/eval-cache/.test(r.stderr), `no frame names the bundle:\n${r.stderr}`);
  });

  test("atCaller: what a helper makes is positioned at the recipe line that called it, once for all", async () => {
    const dir = recipeSet("loader-atcaller", {
      "std/many.ts": [
        'import { atCaller, derivation, sh, type Drv } from "kiln";',
        "export function many(n: number): Drv {",
        "  return atCaller(() => {",
        '    const parts = Array.from({ length: n }, (_, i) => derivation({ name: `part-${i}`, script: sh`echo ${String(i)} > $out` }));',
        '    return derivation({ name: "many", script: sh`cat ${parts} > $out` });',
        "  });",
        "}",
      ],
      "index.ts": [
        'import { derivation, sh } from "kiln";',
        'import { many } from "./std/many.js";',
        "",
        "export const all = many(3);",
        'export const alone = derivation({ name: "alone", script: sh`echo ${all} > $out` });',
      ],
    });
    const index = join(dir, "index.ts");
    assert.deepEqual(await positions(dir, "alone"), { "part-0": `${index}:4:20`, "part-1": `${index}:4:20`, "part-2": `${index}:4:20`, many: `${index}:4:20`, alone: `${index}:5:22` });
  });

  test("a derivation's position is the recipe line that called derivation() or fetch(), past std helpers; a helper's own line only when no recipe line called it", async () => {
    const dir = recipeSet("loader-positions", {
      "std/pkg.ts": [
        'import { derivation, fetch, sh, type Drv } from "kiln";',
        "function inner(name: string): Drv {",
        "  return derivation({ name, script: sh`echo ${name} > $out` });",
        "}",
        "export function pkg(name: string): Drv {",
        "  return inner(name);",
        "}",
        "export function pinned(name: string): Drv {",
        '  return fetch({ name, sha256: "a".repeat(64), sources: [{ file: "/nonexistent" }] });',
        "}",
        'export const helperOwn = derivation({ name: "helper-own", script: sh`true > $out` });',
      ],
      "index.ts": [
        'import { derivation, sh } from "kiln";',
        'import { helperOwn, pinned, pkg } from "./std/pkg.js";',
        "",
        'const viaHelper = pkg("via-helper");',
        "const made = [1, 2].map((i) =>",
        "  derivation({ name: `looped-${i}`, script: sh`echo ${String(i)} > $out` }));",
        'const file = pinned("pinned");',
        'export const all = derivation({ name: "all", script: sh`echo ${viaHelper} ${made} ${file} ${helperOwn} > $out` });',
      ],
    });
    const index = join(dir, "index.ts");
    assert.deepEqual(await positions(dir, "all"), {
      "via-helper": `${index}:4:19`, "looped-1": `${index}:6:3`, "looped-2": `${index}:6:3`, pinned: `${index}:7:14`,
      "helper-own": `${join(dir, "std", "pkg.ts")}:11:26`, all: `${index}:8:20`,
    });
  });

  // A call of derivation() or fetch() written in a recipe file is given its position when the
  // recipes are bundled (engine/loader.ts, markSites); every other way of making a derivation is
  // positioned at run time by a stack capture. Both must give the position callerPosition would.
  test("calls of derivation() and fetch() in recipe files are positioned when bundled, as a stack capture would position them", async () => {
    const dir = recipeSet("loader-sites", {
      "std/h.ts": [
        'import { derivation, sh, type Drv } from "kiln";',
        // a line break in a tagged template, kept as it is in the bundle: the lines after it count it
        'export const banner = sh`printf "a\u2028b"`;',
        "export function helper(name: string): Drv {",
        "  return derivation({ name, script: sh`echo ${name} > $out` });",
        "}",
        "export const mk = derivation;",
      ],
      "index.ts": [
        'import { atCaller, derivation, fetch, sh } from "kiln";',
        'import * as kiln from "kiln";',
        'import { derivation as made } from "kiln";',
        'import { banner, helper, mk } from "./std/h.js";',
        'const ns = kiln.derivation({ name: "ns", script: sh`echo > $out` });',
        'const alias = made({ name: "alias", script: sh`echo > $out` });',
        'const looped = ["x", "y"].map((n) => derivation({ name: `m-${n}`, script: sh`echo ${n} > $out` }));',
        'const viaHelper = helper("via-helper");',
        'const byValue = mk({ name: "by-value", script: sh`echo > $out` });',
        'const mapped = [{ name: "mapped", script: sh`echo > $out` }].map(derivation);',
        'const pinned = fetch({ name: "pinned", sha256: "a".repeat(64), sources: [{ file: "/nonexistent" }] });',
        'const outer = derivation({ name: "outer", script: sh`echo ${derivation({ name: "inner", script: sh`echo > $out` })} > $out` });',
        'const called = derivation.call(undefined, { name: "called", script: sh`echo > $out` });',
        "// new: V8 places the call at the keyword",
        'const newed = new (derivation as any)({ name: "newed", script: sh`echo > $out` });',
        'const fixed = atCaller(() => derivation({ name: "fixed", script: sh`echo > $out` }));',
        'export const all = derivation({ name: "all", script: sh`${banner} ${ns} ${alias} ${looped} ${viaHelper} ${byValue} ${mapped} ${pinned} ${outer} ${called} ${newed} ${fixed} > $out` });',
      ],
    });
    const index = join(dir, "index.ts");
    const store = tempDir("loader-sites-store");
    const at = (line: number, col: number): string => `${index}:${line}:${col}`;
    // as the stack capture found them for every derivation before calls were marked
    assert.deepEqual(await positions(dir, "all", store), {
      ns: at(5, 17), alias: at(6, 15), "m-x": at(7, 38), "m-y": at(7, 38), "via-helper": at(8, 19), "by-value": at(9, 17),
      mapped: at(10, 62), pinned: at(11, 16), outer: at(12, 15), inner: at(12, 61), called: at(13, 27), newed: at(15, 15),
      fixed: at(16, 15), all: at(17, 20),
    });
    // the calls marked in the bundle: those written in index.ts with their positions (the one in
    // atCaller's function too: the fixed position wins), the helper's to be positioned by its
    // callers; the API as a value (mk, map, .call) and `new` are left to the run-time capture
    const cache = join(store, "eval-cache");
    const bundle = readFileSync(join(cache, readdirSync(cache).find((f) => f.endsWith(".mjs"))!), "utf8");
    const sites = /^function (__kiln_(\w+)\$\d{6})\(a\) \{ return __kiln_\w+\$0{6}\.(?:__kilnAt\(a, "([^"]+)"\)|__kilnIn\(a, (__kiln_\w+\$\d{6})\)); \}$/gm;
    const marked = [...bundle.matchAll(sites)].map((m) => `${m[2]} ${m[3] ?? (m[4] === m[1] ? "in a helper" : "?")}`);
    assert.deepEqual(marked.sort(), [
      `derivation ${at(5, 17)}`, `derivation ${at(6, 15)}`, `derivation ${at(7, 38)}`, `fetch ${at(11, 16)}`, `derivation ${at(12, 15)}`,
      `derivation ${at(12, 61)}`, `derivation ${at(16, 30)}`, `derivation ${at(17, 20)}`, "derivation in a helper",
    ].sort());
  });

  test("a marked call in a recipe captures no stack, one in a helper one stack as deep as the last one needed; an error inside the API names the recipe line, not the bundle's call site", async () => {
    const dir = recipeSet("loader-sites-capture", {
      "std/h.ts": [
        'import { derivation, sh, type Drv } from "kiln";',
        "export const pkg = (name: string): Drv => derivation({ name, script: sh`echo ${name} > $out` });",
        "export const wrapped = (name: string): Drv => pkg(`wrapped-${name}`);",
        "function deep(n: number): Drv { return n === 0 ? derivation({ name: \"own\", script: sh`true > $out` }) : deep(n - 1); }",
        "export const own = Array.from({ length: 20 }, () => deep(12));",
      ],
      "index.ts": [
        'import { derivation, sh } from "kiln";',
        'import { pkg, wrapped } from "./std/h.js";',
        "export const direct = Array.from({ length: 50 }, (_, i) => derivation({ name: `d-${i}`, script: sh`echo ${String(i)} > $out` }));",
        "export const helped = Array.from({ length: 50 }, (_, i) => pkg(`h-${i}`));",
        "export const deeper = Array.from({ length: 50 }, (_, i) => wrapped(`w-${i}`));",
        'export const spread = { ...derivation({ name: "spread", script: sh`echo > $out` }) };',
        'export { own } from "./std/h.js";',
        "export default {};",
      ],
    });
    const captureStackTrace = Error.captureStackTrace;
    let captures = 0;
    Error.captureStackTrace = (target: object, ctor?: Function) => {
      captures++;
      captureStackTrace(target, ctor);
    };
    let set;
    try {
      set = await loadRecipeSet(join(dir, "index.ts"), tempDir("loader-sites-cache"));
    } finally {
      Error.captureStackTrace = captureStackTrace;
    }
    const index = join(dir, "index.ts");
    const positions = (name: string) => [...new Set((set.module[name] as Array<{ position?: string }>).map((d) => d.position))];
    assert.deepEqual(positions("direct"), [`${index}:3:60`]);
    assert.deepEqual(positions("helped"), [`${index}:4:60`]);
    assert.deepEqual(positions("deeper"), [`${index}:5:60`]);
    assert.equal((set.module.spread as { position?: string }).position, `${index}:6:28`);
    // made by the std module itself, twelve helper frames down: the helper's own line
    assert.deepEqual([...new Set((set.module.own as Array<{ position?: string }>).map((d) => d.position))], [`${join(dir, "std", "h.ts")}:4:50`]);
    // none for a direct call; one of two frames for each of pkg's (its frame, then the recipe
    // line's); for wrapped's, one of two that finds no recipe frame and one of ten that does, then
    // one of three for each of the others; for deep's, one of two and one of ten, then one of ten
    // for each of the others (a capture at the API, then one further, was 290 in all)
    assert.equal(captures, 0 + 50 + 51 + 21);

    writeFileSync(join(dir, "bad.ts"), ['import { derivation } from "kiln";', "const none: any = undefined;", "export const bad = derivation(none);"].join("\n"));
    const r = await kiln(["-f", join(dir, "bad.ts"), "eval", "bad"], { cwd: dir, store: tempDir("loader-sites-store") });
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${join(dir, "bad.ts")}:3:20`), r.stderr);
    assert.ok(!/eval-cache|__kiln_derivation/.test(r.stderr), `no frame names the bundle or its call site:\n${r.stderr}`);
    // a marked call checks its arguments as derivation() does
    writeFileSync(join(dir, "both.ts"), ['import { derivation, sh } from "kiln";', 'export const both = derivation({ name: "both", script: sh`true`, builder: "/bin/sh" });'].join("\n"));
    const both = await kiln(["-f", join(dir, "both.ts"), "eval", "both"], { cwd: dir, store: tempDir("loader-sites-store") });
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /derivation 'both': give either script or builder\/args, not both/);
  });

  test("derivation positions follow an edit that only moves lines (same code, a new map)", async () => {
    const dir = tempDir("loader-move");
    const store = tempDir("loader-move-store");
    const body = ['import { derivation, sh } from "kiln";', 'export const hello = derivation({ name: "hello", script: sh`echo hi > $out` });'];
    const position = async () => {
      const r = await kiln(["-f", join(dir, "index.ts"), "eval", "--json", "hello"], { cwd: dir, store });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { derivations: Record<string, { meta: { position?: string } }> };
      return Object.values(out.derivations)[0]!.meta.position;
    };
    writeFileSync(join(dir, "index.ts"), body.join("\n"));
    assert.equal(await position(), `${join(dir, "index.ts")}:2:22`);
    writeFileSync(join(dir, "index.ts"), ["// three lines", "// of comments", "// above", ...body].join("\n"));
    assert.equal(await position(), `${join(dir, "index.ts")}:5:22`);
    const cache = join(store, "eval-cache");
    const bundles = readdirSync(cache).filter((f) => f.endsWith(".mjs"));
    assert.equal(bundles.length, 2, "the same code with another map is another bundle");
    for (const b of bundles) assert.ok(readdirSync(cache).includes(`${b}.map`), `${b} has its map beside it`);
  });
});
