// pi4-llm-os, end to end: evaluation goldens, the real build in a temporary store, both boot
// tests under QEMU, reproducibility (a second store at another host path, and `kiln check`),
// early cutoff after a comment-only change, and a kernel fragment change that rebuilds the
// kernel and what is above it but nothing below.
//
// The full build takes ~10 minutes per store on a 2-core machine (the kernel is most of it).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { LRUCache } from "lru-cache";
import { Evaluator } from "../../engine/evaluate.js";
import { loadRecipeSet, selectTarget } from "../../engine/loader.js";
import { reachable } from "../../engine/graph.js";
import { buildStarts, cleanup, eventsOf, kiln, kilnJson, query, REPO, tempDir } from "../../cli/test-helpers/kiln.js";
import { stubHostTools } from "../../engine/test-helpers/golden.js";

const RECIPES = join(REPO, "recipes");
const GOLDEN = join(REPO, "fixtures", "golden", "pi4-llm-os.json");
const TARGETS = ["pi4-llm-os", "pi4-llm-os.tests.boot", "pi4-llm-os.tests.bootDisk", "pi4-llm-os.report"];

/** A private copy of the recipe set, for tests that edit it. */
function copyRecipes(): string {
  const dir = join(tempDir("recipes"), "recipes");
  cpSync(RECIPES, dir, { recursive: true, filter: (p) => !p.endsWith(".test.ts") });
  return dir;
}

/** Every valid path of a store with its content digest. */
function storeContents(store: string): Map<string, { path: string; digest: string }> {
  const rows = query<{ path: string; nar_digest: string }>(store, "SELECT path, nar_digest FROM valid_paths");
  return new Map(rows.map((r) => [r.path, { path: r.path, digest: r.nar_digest }]));
}

describe("pi4-llm-os recipes", () => {
  test("evaluation goldens: the derivation hashes of every pi4-llm-os node are pinned", async () => {
    // host tools stubbed: the hashes must not depend on this machine's package versions
    const set = await loadRecipeSet(join(RECIPES, "index.ts"), tempDir("eval-cache"));
    const ev = new Evaluator({ hostTools: stubHostTools().hostTools, fileCache: new LRUCache({ max: 1000 }) });
    const roots = TARGETS.flatMap((t) => selectTarget(set, t)).map((t) => ev.evaluate(t.value).node);
    const got: Record<string, string> = {};
    for (const n of reachable(ev.graph, roots)) got[n.name] = n.hash;
    if (process.env.KILN_UPDATE_GOLDEN === "1") writeFileSync(GOLDEN, JSON.stringify(got, null, 2) + "\n");
    const want = JSON.parse(readFileSync(GOLDEN, "utf8")) as Record<string, string>;
    assert.deepEqual(got, want, "a pi4-llm-os derivation changed: if intended, regenerate with KILN_UPDATE_GOLDEN=1 and review the diff");
  });
});

describe("pi4-llm-os build, boot and reproducibility", { timeout: 60 * 60_000 }, () => {
  const store = join(tempDir("store-a"), "kiln-store");
  let first: Awaited<ReturnType<typeof kilnJson>>;

  before(async () => {
    first = await kilnJson(["realize", "--no-link", "--json", ...TARGETS], { cwd: REPO, store });
  });
  after(cleanup);

  test("realize builds the image and both boot tests pass", () => {
    const out = JSON.parse(first.stdout) as { outputs: Array<{ target: string; path: string }> };
    const byTarget = new Map(out.outputs.map((o) => [o.target, o.path]));
    for (const t of ["pi4-llm-os.tests.boot", "pi4-llm-os.tests.bootDisk"]) {
      const report = JSON.parse(readFileSync(join(byTarget.get(t)!, "report.json"), "utf8")) as Record<string, unknown>;
      assert.equal(report.passed, true, `${t}: ${JSON.stringify(report)}`);
      assert.equal(report.poweredOff, true);
      assert.match(String(report.kernel), /^6\.1\./);
      // the seed's budget: OS overhead under 30 MB of RAM
      assert.ok(Number(report.osOverheadKb) > 0 && Number(report.osOverheadKb) < 30 * 1024, `overhead ${report.osOverheadKb} kB`);
      const log = readFileSync(join(byTarget.get(t)!, "console.log"), "utf8");
      assert.match(log, /PI4-LLM-OS BOOT OK/);
      assert.match(log, /PI4-LLM-OS SYSINFO kernel=6\.1\.\S+ mem_total_kb=\d+/);
    }
    const report = readFileSync(join(byTarget.get("pi4-llm-os.report")!, "report.txt"), "utf8");
    assert.match(report, /boot test \(initramfs\): passed=true/);
    assert.match(report, /boot test \(disk\): passed=true/);
  });

  test("a second store at another host path gives the same digest for every output", async () => {
    const storeB = join(tempDir("elsewhere"), "deeper", "store-b");
    await kilnJson(["realize", "--no-link", "pi4-llm-os"], { cwd: REPO, store: storeB });
    const a = storeContents(store);
    const b = storeContents(storeB);
    assert.ok(b.size >= 15, `store B has ${b.size} paths`);
    for (const [p, info] of b) {
      assert.ok(a.has(p), `${p} was built in store B but not in store A: not reproducible`);
      assert.equal(a.get(p)!.digest, info.digest, p);
    }
  });

  test("kiln check rebuilds the images bit-identically", async () => {
    const r = await kilnJson(["check", "--json", "pi4-llm-os.initramfs", "pi4-llm-os.rootExt4", "pi4-llm-os.bootfs", "pi4-llm-os.disk", "pi4-llm-os.sysinfo", "pi4-llm-os.rootfs"], { cwd: REPO, store });
    const res = JSON.parse(r.stdout) as { checked: number; identical: number };
    assert.equal(res.checked, 6);
    assert.equal(res.identical, 6);
    assert.equal(eventsOf(r.events, "checked").length, 6);
  });

  test("a comment-only change to sysinfo.c rebuilds sysinfo and cuts off everything above it", async () => {
    const recipes = copyRecipes();
    const c = join(recipes, "pi4-llm-os", "files", "sysinfo.c");
    writeFileSync(c, readFileSync(c, "utf8").replace("/* sysinfo.c", "/* (a comment edited by a test)\n * sysinfo.c"));
    const r = await kilnJson(["realize", "--no-link", "-f", join(recipes, "index.ts"), "pi4-llm-os"], { cwd: REPO, store });
    assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name), ["sysinfo"]);
    const cut = eventsOf(r.events, "cached").filter((e) => e.cutoff).map((e) => e.node!.name).sort();
    assert.ok(cut.includes("pi4-llm-os-rootfs"), `cut off: ${cut.join(", ")}`);
  });

  test("a kernel fragment edit rebuilds the kernel and everything above it, nothing below; plan and why name the edit", async () => {
    // the recipes in a git repository of their own, realized once as they are (all from the store)
    const recipes = copyRecipes();
    const repo = dirname(recipes);
    const git = (...args: string[]) => {
      const r = spawnSync("git", ["-c", "user.name=kiln test", "-c", "user.email=test@kiln", ...args], { cwd: repo, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    git("init", "-q");
    git("add", "recipes");
    git("commit", "-q", "-m", "pi4-llm-os as it was");
    const index = join(recipes, "index.ts");
    const o = { cwd: repo, store };
    const base = await kilnJson(["realize", "--no-link", "-f", index, "pi4-llm-os", "pi4-llm-os.tests.boot"], o);
    assert.deepEqual(buildStarts(base.events), [], "the copy is the same recipe set: everything is in the store");

    // IKCONFIG added to the userspace fragment, committed
    const kernelTs = join(recipes, "pi4-llm-os", "kernel.ts");
    const text = readFileSync(kernelTs, "utf8");
    const edited = text.replace('TIMERFD: "y", EVENTFD: "y", UNIX98_PTYS: "y",', 'TIMERFD: "y", EVENTFD: "y", UNIX98_PTYS: "y", IKCONFIG: "y",');
    assert.notEqual(edited, text);
    writeFileSync(kernelTs, edited);
    const line = edited.split("\n").findIndex((l) => l.includes('IKCONFIG: "y",') && l.includes("TIMERFD")) + 1;
    git("commit", "-q", "-am", "kernel: keep the config in /proc/config.gz");
    const commit = git("rev-parse", "--short=10", "HEAD");
    const cause = new RegExp(
      `recipes/pi4-llm-os/kernel\\.ts:${line}, in fragments\\.userspace \\(last changed in ${commit} "kernel: keep the config in /proc/config\\.gz"\\)\n` +
      ` *- TIMERFD: "y", EVENTFD: "y", UNIX98_PTYS: "y",\n *\\+ TIMERFD: "y", EVENTFD: "y", UNIX98_PTYS: "y", IKCONFIG: "y",\n` +
      ` *→ the build script of linux-pi4-llm-os changed\n *\\+ CONFIG_IKCONFIG=y\n`);

    // before building: plan names the edit, and the kernel as certain to build
    const plan = await kiln(["plan", "-f", index, "pi4-llm-os"], o);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /^would build 1, fetch 0, take \d+ from the store; 2 more only if/);
    assert.match(plan.stdout, cause);
    assert.doesNotMatch(plan.stdout, /std\/index\.ts/, "not the build() helper's line");

    const r = await kilnJson(["realize", "--no-link", "-f", index, "pi4-llm-os", "pi4-llm-os.tests.boot"], o);
    const built = new Set(buildStarts(r.events).map((e) => e.node!.name));
    for (const above of ["linux-pi4-llm-os", "pi4-llm-os-boot.vfat", "pi4-llm-os-disk.img", "pi4-llm-os-boot-test-initramfs"]) {
      assert.ok(built.has(above), `${above} should be rebuilt; built: ${[...built].join(", ")}`);
    }
    for (const below of ["sysinfo", "pi4-llm-os-rootfs", "pi4-llm-os-initramfs.cpio.gz", "pi4-llm-os-root.ext4", "busybox-static-arm64", "aarch64-linux-musl-toolchain"]) {
      assert.ok(!built.has(below), `${below} should not be rebuilt`);
    }
    const fetched = eventsOf(r.events, "started").filter((e) => e.kind === "fetch");
    assert.equal(fetched.length, 0, "no source is fetched again");

    // and why, from the recorded history: one root cause, the edit, with its commit
    const why = await kiln(["why", "-f", index, "pi4-llm-os"], o);
    assert.equal(why.code, 0, why.stderr);
    assert.match(why.stdout, /^why pi4-llm-os changed: 3 derivations differ, 1 root cause\n/);
    assert.match(why.stdout, new RegExp(`\\n\\[1\\] ${cause.source}`));
    assert.match(why.stdout, /blast radius: 3 derivations changed, 3 rebuilt \(linux-pi4-llm-os, pi4-llm-os-boot\.vfat, pi4-llm-os-disk\.img\)/);
  });
});
