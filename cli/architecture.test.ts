// The layout rules of shared design notes, checked on the source: imports flow cli -> engine ->
// store (recipes use the recipe API only), no import cycles, and SQL only in store/.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

interface Module {
  file: string;
  /** relative imports that are not type-only, resolved to repo files */
  runtime: string[];
  /** every relative import, type-only included */
  all: string[];
  source: string;
}

function sources(dir: string, tests = false): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) {
        if (e !== "node_modules" && e !== "files") walk(p);
      } else if (/\.tsx?$/.test(e) && !e.endsWith(".d.ts") && (tests || !/\.test\.tsx?$/.test(e))) out.push(p);
    }
  };
  walk(join(REPO, dir));
  return out;
}

function load(files: string[]): Map<string, Module> {
  const set = new Set(files);
  const mods = new Map<string, Module>();
  for (const f of files) {
    const source = readFileSync(f, "utf8");
    const runtime: string[] = [];
    const all: string[] = [];
    for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+["'](\.[^"']+)["']/gm)) {
      const base = resolve(dirname(f), m[3]!).replace(/\.(m?js|jsx)$/, "");
      const target = [base + ".ts", base + ".tsx", join(base, "index.ts")].find((c) => set.has(c));
      if (!target) continue;
      all.push(target);
      // `import { type A, type B }` is type-only too
      const typeOnly = Boolean(m[2]) || /^\s*(import|export)\s*\{\s*(type\s+[\w$]+\s*(as\s+[\w$]+\s*)?,?\s*)+\}/.test(m[0]);
      if (!typeOnly) runtime.push(target);
    }
    mods.set(f, { file: f, runtime, all, source });
  }
  return mods;
}

const rel = (f: string) => relative(REPO, f);
const code = load(["engine", "store", "cli", "recipes"].flatMap((d) => sources(d)));

/** Every cycle of runtime imports, as 'a -> b -> a'. */
function cyclesOf(mods: Map<string, Module>): string[] {
  const cycles: string[] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const dfs = (f: string) => {
    state.set(f, 1);
    stack.push(f);
    for (const g of mods.get(f)!.runtime) {
      if (state.get(g) === 1) cycles.push(stack.slice(stack.indexOf(g)).concat(g).map(rel).join(" -> "));
      else if (!state.has(g)) dfs(g);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of mods.keys()) if (!state.has(f)) dfs(f);
  return cycles;
}

describe("architecture", () => {
  test("no import cycles among the modules (type-only imports aside)", () => {
    assert.deepEqual(cyclesOf(code), []);
  });

  test("imports flow downwards: store imports nothing above it, engine nothing of cli, recipes only the recipe API", () => {
    const bad: string[] = [];
    for (const m of code.values()) {
      const from = rel(m.file).split("/")[0]!;
      for (const t of m.all) {
        const to = rel(t).split("/")[0]!;
        const ok =
          from === to ||
          (from === "cli" && (to === "engine" || to === "store")) ||
          (from === "engine" && to === "store");
        if (!ok) bad.push(`${rel(m.file)} imports ${rel(t)}`);
      }
      if (from === "recipes") {
        for (const x of m.source.matchAll(/from\s+["']([^."'][^"']*)["']/g)) if (x[1] !== "kiln" && !x[1]!.startsWith("node:")) bad.push(`${rel(m.file)} imports ${x[1]}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  test("SQL only in store/: no database handle, statement or SQL text elsewhere", () => {
    const bad: string[] = [];
    const sqlText = /["'`]\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA)\b[^"'`]*\b(FROM|INTO|SET|TABLE|WHERE)\b/i;
    for (const m of code.values()) {
      if (rel(m.file).startsWith("store/")) continue;
      if (/from\s+["']better-sqlite3["']/.test(m.source)) bad.push(`${rel(m.file)} imports better-sqlite3`);
      if (/\.(prepare|pragma)\(/.test(m.source)) bad.push(`${rel(m.file)} prepares statements`);
      if (sqlText.test(m.source)) bad.push(`${rel(m.file)} has SQL text`);
      // the launcher's no-op path opens the database itself, and the launcher hands its copy of
      // better-sqlite3 to the bundle it runs: the two exceptions
      for (const t of m.all) if (/store\/(database|tables|[a-z-]+-table)\.ts$/.test(t) && !["cli/fast.ts", "cli/kiln.ts"].includes(rel(m.file))) bad.push(`${rel(m.file)} reaches into ${rel(t)}`);
      if (/\btablesOf\b/.test(m.source)) bad.push(`${rel(m.file)} uses tablesOf`);
    }
    assert.deepEqual(bad, []);
  });

  test("the cycle check sees a real cycle, and not a type-only one", () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-arch-"));
    try {
      const [a, b, c] = ["a", "b", "c"].map((x) => join(dir, `${x}.ts`)) as [string, string, string];
      writeFileSync(a, `import { b } from "./b.js";\nexport const a = () => b;\n`);
      writeFileSync(b, `import { a } from "./a.js";\nimport type { T } from "./c.js";\nexport const b = () => a;\n`);
      writeFileSync(c, `import { type X } from "./b.js";\nexport type T = X;\n`);
      const mods = load([a, b, c]);
      assert.equal(cyclesOf(mods).length, 1, "a <-> b is one cycle; b -> c -> b is type-only");
      assert.deepEqual(mods.get(c)!.runtime, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
