// recipes/std/seed.ts evaluated through the real loader (esbuild bundles the JSON files it
// imports): per locked package a fetch pinned by the lock's sha256 and a builtin:unpack-deb, per
// set or union a builtin:seed-root with the sets' links, no host tool anywhere, and a lock that
// no longer matches sets.json refused at load with the command that fixes it.
import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { LRUCache } from "lru-cache";
import { cleanup, REPO, tempDir } from "../../cli/test-helpers/kiln.js";
import { Evaluator, type Node } from "../../engine/evaluate.js";
import { loadRecipeSet, selectTarget } from "../../engine/loader.js";
import { reachable } from "../../engine/graph.js";
import { stubHostTools } from "../../engine/test-helpers/golden.js";
import { KilnError } from "../../store/errors.js";

const STD = join(REPO, "recipes", "std");
const lock = JSON.parse(readFileSync(join(STD, "seed", "seed.lock.json"), "utf8")) as {
  sets: Record<string, { packages: string[] }>;
  packages: Record<string, { name: string; sha256: string; url: string }>;
};
const PI4 = ["base", "cross-aarch64", "images", "kernel", "qemu-system-arm", "qemu-user"];

/** A recipe set whose entry imports seed.ts from `std` and exports `targets` (code). */
function entry(std: string, targets: string): string {
  const dir = tempDir("seed-recipes");
  const file = join(dir, "index.ts");
  writeFileSync(file, `import { seed } from ${JSON.stringify(join(std, "seed.ts"))};\nexport default { ${targets} };\n`);
  return file;
}

async function evaluate(file: string, target: string): Promise<{ root: Node; nodes: Node[]; asked: string[] }> {
  const set = await loadRecipeSet(file, tempDir("seed-cache"));
  const { hostTools, asked } = stubHostTools();
  const ev = new Evaluator({ hostTools, fileCache: new LRUCache({ max: 100 }) });
  const [t] = selectTarget(set, target);
  const root = ev.evaluate(t!.value).node;
  return { root, nodes: reachable(ev.graph, [root]), asked };
}

describe("recipes/std/seed.ts", { timeout: 120_000 }, () => {
  after(cleanup);

  test("seed('base'): a fetch and an unpack per locked package, merged by builtin:seed-root with the set's links", async () => {
    const { root, nodes, asked } = await evaluate(entry(STD, `base: seed("base")`), "base");
    assert.equal(root.name, "seed-base");
    assert.equal(root.drv.builder, "builtin:seed-root");
    const unpacks = nodes.filter((n) => n.drv.builder === "builtin:unpack-deb");
    const fetches = nodes.filter((n) => n.kind === "fetch");
    assert.equal(unpacks.length, lock.sets.base!.packages.length);
    assert.equal(fetches.length, unpacks.length);
    assert.equal(nodes.length, 2 * unpacks.length + 1);
    assert.deepEqual(new Set(fetches.map((f) => f.drv.fixed!.sha256)), new Set(lock.sets.base!.packages.map((k) => lock.packages[k]!.sha256)));
    assert.deepEqual(asked, [], "no host tool is fingerprinted");
    for (const n of nodes) assert.deepEqual(n.drv.hostTools, {}, n.name);
    const args = root.drv.args;
    const triple = (i: number) => args.slice(i, i + 3).join(" ");
    const at = args.indexOf("usr/bin/awk");
    assert.equal(triple(at - 1), "link usr/bin/awk gawk");
    const gawk = args.indexOf("gawk");
    assert.equal(args[gawk - 1], "package");
    assert.match(args[gawk + 1]!, /^\/kiln\/store\/[0-9a-z]{32}-gawk_5\.2\.1-2_amd64$/);
  });

  test("a union: each package once, and the packages base shares with it are the same derivations", async () => {
    const file = entry(STD, `base: seed("base"), pi4: seed(${PI4.map((s) => JSON.stringify(s)).reverse().join(", ")})`);
    const base = await evaluate(file, "base");
    const pi4 = await evaluate(file, "pi4");
    assert.equal(pi4.root.name, `seed-${PI4.join("+")}`, "the name lists the sets sorted, whatever the order given");
    const union = new Set(PI4.flatMap((s) => lock.sets[s]!.packages));
    const pi4Unpacks = pi4.nodes.filter((n) => n.drv.builder === "builtin:unpack-deb");
    assert.equal(pi4Unpacks.length, union.size);
    const pi4Hashes = new Set(pi4Unpacks.map((n) => n.hash));
    for (const n of base.nodes.filter((x) => x.drv.builder === "builtin:unpack-deb")) assert.ok(pi4Hashes.has(n.hash), `${n.name} is shared`);
  });

  test("a package from the security archive also names the main archive's pool, where it moves at the next point release", async () => {
    const { nodes } = await evaluate(entry(STD, `base: seed("base")`), "base");
    const key = Object.keys(lock.packages).find((k) => lock.sets.base!.packages.includes(k) && lock.packages[k]!.url.includes("/debian-security/"));
    assert.ok(key, "the base set has a package from bookworm-security");
    const p = lock.packages[key]!;
    const f = nodes.find((n) => n.kind === "fetch" && n.drv.fixed!.sha256 === p.sha256)!;
    const urls = (f.meta.sources ?? []).flatMap((s) => ("url" in s ? [s.url] : []));
    assert.deepEqual(urls, [p.url, p.url.replace("http://deb.debian.org/debian-security/pool/updates/", "http://deb.debian.org/debian/pool/")]);
  });

  test("a lock that does not match sets.json is refused at load, naming the set and the command", async () => {
    const std = join(tempDir("seed-std"), "std");
    cpSync(STD, std, { recursive: true, filter: (p) => !p.endsWith(".test.ts") });
    const setsFile = join(std, "seed", "sets.json");
    const sets = JSON.parse(readFileSync(setsFile, "utf8")) as { sets: Record<string, { packages: string[] }> };
    sets.sets.images!.packages.push("squashfs-tools");
    writeFileSync(setsFile, JSON.stringify(sets, null, 2));
    await assert.rejects(loadRecipeSet(entry(std, `base: seed("base")`), tempDir("seed-cache")), (e: unknown) => {
      assert.ok(e instanceof KilnError && e.code === "RECIPE_LOAD", String(e));
      assert.match(e.message, /seed\.lock\.json does not match sets\.json \(set images\): run `kiln seed lock`/);
      return true;
    });
  });

  test("an unknown set is an error naming the sets there are", async () => {
    await assert.rejects(loadRecipeSet(entry(STD, `x: seed("bsae")`), tempDir("seed-cache")), /no set "bsae" \(the sets are autotools, base, cross-aarch64, /);
  });
});
