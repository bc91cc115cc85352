// m-series, the fast part (the normal suite): evaluation goldens, the kernel's configuration
// realized on its own (a minute, not the kernel's many) with every fragment option checked in
// the resulting .config, the strict check failing on options that cannot hold, and the rootfs
// package lock agreeing with its request. The kernel build, ZFS and the boot test are in
// m-series.slow.test.ts (`npm run test:slow`).
import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { buildRows, cleanup, kilnJson, REPO, SEED_DEB_CACHE, tempDir } from "../../cli/test-helpers/kiln.js";
import { assertGolden, recipeHashes } from "../../engine/test-helpers/golden.js";
import { fragments } from "./kernel.js";

const RECIPES = join(REPO, "recipes");
const GOLDEN = join(REPO, "fixtures", "golden", "m-series.json");
const TARGETS = ["m-series", "m-series.tests.boot", "m-series.report", "m-series.kernel.config"];

describe("m-series recipes", () => {
  test("evaluation goldens: the derivation hashes of every m-series node are pinned", async () => {
    // host tools stubbed: the hashes must not depend on this machine's package versions
    assertGolden(GOLDEN, await recipeHashes(join(RECIPES, "index.ts"), TARGETS, tempDir("eval-cache")), "an m-series derivation");
  });

  test("the rootfs lock holds together: every set package pinned, request and exclusions as in the sets file", () => {
    const lock = JSON.parse(readFileSync(join(RECIPES, "m-series", "rootfs.lock.json"), "utf8")) as {
      sets: Record<string, { arch: string; request: string[]; exclude: string[]; packages: string[] }>;
      packages: Record<string, { name: string; version: string; arch: string; sha256: string; url: string }>;
    };
    const sets = JSON.parse(readFileSync(join(RECIPES, "m-series", "rootfs.sets.json"), "utf8")) as { sets: Record<string, { arch: string; packages: string[]; exclude: string[] }> };
    const set = lock.sets["m-series-rootfs"]!;
    const spec = sets.sets["m-series-rootfs"]!;
    assert.equal(set.arch, "arm64");
    assert.deepEqual(set.request, [...spec.packages].sort());
    assert.deepEqual(set.exclude, [...spec.exclude].sort());
    assert.deepEqual(set.packages, [...set.packages].sort());
    assert.deepEqual(Object.keys(lock.packages).sort(), set.packages);
    const names = new Set(set.packages.map((k) => lock.packages[k]!.name));
    for (const r of spec.packages) assert.ok(names.has(r), `${r} is requested but not locked`);
    for (const x of spec.exclude) assert.ok(!names.has(x), `${x} is excluded but locked`);
    for (const [k, p] of Object.entries(lock.packages)) {
      assert.equal(k, `${p.name}:${p.arch}`);
      assert.ok(p.arch === "arm64" || p.arch === "all", `${k}: arch ${p.arch}`);
      assert.match(p.sha256, /^[0-9a-f]{64}$/, k);
      assert.match(p.url, /^http:\/\/deb\.debian\.org\/debian(-security)?\/pool\//, k);
    }
  });
});

describe("m-series kernel configuration", { timeout: 30 * 60_000 }, () => {
  const store = join(tempDir("store"), "kiln-store");
  after(cleanup);

  test("every option the fragments ask for is in the checked .config", async () => {
    const r = await kilnJson(["realize", "--no-link", "--json", "m-series.kernel.config"], { cwd: REPO, store, env: { KILN_MIRRORS: SEED_DEB_CACHE } });
    const out = JSON.parse(r.stdout) as { outputs: Array<{ path: string }> };
    const config = readFileSync(out.outputs[0]!.path, "utf8").split("\n");
    const set = new Map<string, string>();
    for (const line of config) {
      const m = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line);
      if (m) set.set(m[1]!, m[2]!);
    }
    let checked = 0;
    for (const [name, frag] of Object.entries(fragments)) {
      for (const [sym, want] of Object.entries(frag)) {
        if (want === "n") assert.ok(!set.has(sym), `fragment ${name}: ${sym} must be off, .config has ${sym}=${set.get(sym)}`);
        else assert.equal(set.get(sym), want, `fragment ${name}: ${sym}`);
        checked++;
      }
    }
    assert.ok(checked > 80, `only ${checked} options checked`);
    // the seed's headline facts, spelled out
    assert.equal(set.get("ARM64_PAGE_SHIFT"), "14");
    assert.equal(set.get("ARM64_PTR_AUTH_KERNEL"), "y");
    assert.equal(set.get("CRYPTO_AES_ARM64_CE"), "y");
    assert.equal(set.get("BLK_DEV_NVME"), "y");
    assert.ok(!set.has("DEBUG_INFO"), "no debug info");
  });

  test("a fragment asking for what cannot hold fails the configuration and names each symbol", async () => {
    const dir = join(tempDir("recipes"), "recipes");
    cpSync(RECIPES, dir, { recursive: true, filter: (p) => !p.endsWith(".test.ts") });
    const index = join(dir, "index.ts");
    // DEBUG_KERNEL is selected by EXPERT (which tinyconfig turns on); 52-bit VAs need 64K pages
    writeFileSync(index, readFileSync(index, "utf8")
      .replace('import { mSeries } from "./m-series/index.js";', 'import { mSeries } from "./m-series/index.js";\nimport { fragments as msFragments } from "./m-series/kernel.js";')
      .replace("const ms = mSeries();", 'const ms = mSeries({ fragments: { ...msFragments, impossible: { DEBUG_KERNEL: "n", ARM64_VA_BITS_52: "y" } } });'));
    const r = await kilnJson(["realize", "--no-link", "-f", index, "m-series.kernel.config"], { cwd: REPO, store, env: { KILN_MIRRORS: SEED_DEB_CACHE } }, 1);
    assert.ok(r.events.some((e) => e.type === "failed" && e.node?.name === "linux-m-series.config"), "the configuration failed");
    const row = buildRows(store, "linux-m-series.config").find((b) => b.status === "failed");
    assert.ok(row?.log_file, "the failed build has a log");
    const log = readFileSync(row.log_file, "utf8");
    assert.match(log, /frag-impossible\.config asks '# CONFIG_DEBUG_KERNEL is not set' but something selects it: CONFIG_DEBUG_KERNEL=y/);
    assert.match(log, /frag-impossible\.config asks 'CONFIG_ARM64_VA_BITS_52=y' but got: (# CONFIG_ARM64_VA_BITS_52 is not set|unset)/);
    assert.match(log, /kconfig: unmet requests above/);
  });
});
