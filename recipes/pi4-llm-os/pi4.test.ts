// pi4-llm-os, end to end: evaluation goldens, a model of one's own, the real build in a
// temporary store, the boot tests and the LLM test under QEMU, reproducibility (a second store at
// another host path for everything below the llama.cpp runtime, and `kiln check`), early cutoff
// after a comment-only change, and a kernel fragment change that rebuilds the kernel and what is
// above it but nothing below.
//
// The full build takes ~10-25 minutes per store on a 2-core machine (the kernel and llama.cpp are
// most of it). The runtime is built once here; pi4.slow.test.ts (npm run test:slow) builds the
// whole image in two more stores and checks the runtime itself.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildStarts, cleanup, eventsOf, git, kiln, kilnJson, REPO, SEED_DEB_CACHE, storeContents, tempDir } from "../../cli/test-helpers/kiln.js";
import { sha256File } from "../../store/digest.js";
import { assertGolden, recipeHashes } from "../../engine/test-helpers/golden.js";
import { TINY_MODEL_TEXT_SHA256 } from "./index.js";

const RECIPES = join(REPO, "recipes");
const GOLDEN = join(REPO, "fixtures", "golden", "pi4-llm-os.json");
const TARGETS = ["pi4-llm-os", "pi4-llm-os.tests.boot", "pi4-llm-os.tests.bootDisk", "pi4-llm-os.tests.llm", "pi4-llm-os.report"];
/** Everything the image is made of except the llama.cpp runtime and what contains it. */
const BELOW_RUNTIME = ["pi4-llm-os.kernel", "pi4-llm-os.sysinfo", "pi4-llm-os.peakRss", "pi4-llm-os.busyboxApplets", "pi4-llm-os.muslToolchain",
  "pi4-llm-os.models.tiny", "pi4-llm-os.modelsExt4", "pi4-llm-os.sources.llamaCpp"];

/** The seed's .debs from the test cache where it has them (the first build of a store fetches ~270). */
const env = { KILN_MIRRORS: SEED_DEB_CACHE };

/** A private copy of the recipe set, for tests that edit it. */
function copyRecipes(): string {
  const dir = join(tempDir("recipes"), "recipes");
  cpSync(RECIPES, dir, { recursive: true, filter: (p) => !p.endsWith(".test.ts") });
  return dir;
}

describe("pi4-llm-os recipes", () => {
  after(cleanup);

  test("evaluation goldens: the derivation hashes of every pi4-llm-os node are pinned", async () => {
    // host tools stubbed: the hashes must not depend on this machine's package versions
    assertGolden(GOLDEN, await recipeHashes(join(RECIPES, "index.ts"), TARGETS, tempDir("eval-cache")), "a pi4-llm-os derivation");
  });

  test("host-independent keys: another PATH, other host tools and other package versions give the same derivation hashes", { timeout: 120_000 }, async () => {
    // a host where every tool a build of pi4-llm-os runs (or once declared) is another program,
    // and dpkg reports other versions of every package; and a host with no tools at all
    const fake = tempDir("fake-host-bin");
    const tools = ["sh", "bash", "dash", "awk", "sed", "grep", "tar", "gzip", "xz", "cp", "make", "gcc", "cc", "cpp", "as", "ld", "perl",
      "bison", "flex", "bc", "cpio", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++", "aarch64-linux-gnu-ld", "cmake", "ninja", "git", "patch",
      "python3", "mke2fs", "debugfs", "e2fsck", "mkfs.vfat", "fsck.vfat", "mcopy", "sfdisk", "qemu-system-aarch64", "qemu-aarch64-static",
      "timeout", "dpkg-deb", "kmod"];
    for (const t of tools) writeFileSync(join(fake, t), `#!/bin/sh\necho "${t} (a faked host tool) 99.0"\n`, { mode: 0o755 });
    writeFileSync(join(fake, "dpkg-query"), "#!/bin/sh\ncase \"$1\" in -S) echo \"fakepkg: $2\" ;; -L) echo /usr/bin/fake ;; *) echo 99.0-faked ;; esac\n", { mode: 0o755 });
    const store = join(tempDir("store"), "kiln-store");
    const hashes = async (host: Record<string, string>) => {
      const r = await kiln(["eval", "--json", ...TARGETS], { cwd: REPO, store, env: host });
      assert.equal(r.code, 0, `kiln eval with ${JSON.stringify(host)}: ${r.stderr}`);
      const drvs = (JSON.parse(r.stdout) as { derivations: Record<string, { name: string; builder: string; hostTools: Record<string, unknown>; usr?: string }> }).derivations;
      for (const d of Object.values(drvs)) {
        assert.deepEqual(d.hostTools, {}, `${d.name} uses host tools`);
        if (!d.builder.startsWith("builtin:")) assert.ok(d.usr && d.builder === "/bin/sh", `${d.name} runs on a seed tree: builder ${d.builder}, usr ${d.usr}`);
      }
      return Object.fromEntries(Object.entries(drvs).map(([h, d]) => [d.name, h]));
    };
    const golden = JSON.parse(readFileSync(GOLDEN, "utf8")) as Record<string, string>;
    // the goldens were taken with every host tool stubbed: the real host gives the same hashes
    assert.deepEqual(await hashes({}), golden);
    assert.deepEqual(await hashes({ PATH: fake }), golden);
    assert.deepEqual(await hashes({ PATH: tempDir("no-tools") }), golden);
  });
});

describe("pi4-llm-os with a model of one's own", { timeout: 5 * 60_000 }, () => {
  after(cleanup);

  test("a model named by sha256 is never downloaded: it fails until `kiln store add-fixed`, then goes onto the model partition", async () => {
    const dir = tempDir("own-model");
    const file = join(dir, "downloaded.gguf");
    // any bytes do for the partition: the runtime is not involved here
    writeFileSync(file, Buffer.concat([Buffer.from("GGUF"), Buffer.alloc(3 * 1024 * 1024, "not a real model ")]));
    const sha = sha256File(file);
    const recipes = copyRecipes();
    const index = join(recipes, "index.ts");
    writeFileSync(index, readFileSync(index, "utf8").replace("const pi4 = pi4LlmOs();", `const pi4 = pi4LlmOs({ model: { name: "my-model.gguf", sha256: "${sha}" } });`));
    const store = join(tempDir("store"), "kiln-store");
    const o = { cwd: REPO, store, env };
    // -k: the seed tree the partition is made on is realized meanwhile
    const missing = await kiln(["realize", "--no-link", "-k", "-f", index, "pi4-llm-os.modelsExt4"], o);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /fixed output my-model\.gguf: unreachable/);
    assert.match(missing.stderr, new RegExp(`kiln store add-fixed <file> +\\(it must have sha256 ${sha}\\)`));

    const add = await kiln(["store", "add-fixed", file], o);
    assert.equal(add.code, 0, add.stderr);
    const r = await kilnJson(["realize", "--no-link", "-f", index, "pi4-llm-os.modelsExt4"], o);
    assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name), ["pi4-llm-os-models.ext4"]);
    assert.ok(!eventsOf(r.events, "log").some((e) => String(e.line).startsWith("trying")), "nothing was fetched");
    const img = r.stdout.trim();
    const dump = join(dir, "model.gguf");
    execFileSync("debugfs", ["-R", `dump /model.gguf ${dump}`, img], { stdio: "ignore" });
    assert.equal(sha256File(dump), sha);
    assert.equal(execFileSync("debugfs", ["-R", "cat /model.name", img], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }), "my-model.gguf\n");
    // and the LLM test of that image checks the token count, not a text only the test model gives
    const drv = JSON.parse((await kilnJson(["show-derivation", "-f", index, "pi4-llm-os.tests.llm"], o)).stdout) as Record<string, { env: Record<string, string> }>;
    assert.equal(Object.values(drv)[0]!.env.EXPECT_SHA256, "");
  });
});

describe("pi4-llm-os build, boot and reproducibility", { timeout: 60 * 60_000 }, () => {
  const store = join(tempDir("store-a"), "kiln-store");
  let first: Awaited<ReturnType<typeof kilnJson>>;

  before(async () => {
    first = await kilnJson(["realize", "--no-link", "--json", ...TARGETS], { cwd: REPO, store, env });
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
    assert.match(report, /LLM runtime +llama\.cpp de3ff81 llama-simple .*static glibc 2\.\d+/);
    assert.match(report, /LLM test: passed=true, 32 tokens at [\d.]+ tokens\/s/);
  });

  test("the LLM boot test: the model loaded into tmpfs, 32 tokens of the pinned text, within the seed's RAM budget", () => {
    const out = JSON.parse(first.stdout) as { outputs: Array<{ target: string; path: string }> };
    const dir = out.outputs.find((o) => o.target === "pi4-llm-os.tests.llm")!.path;
    const r = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as Record<string, unknown>;
    assert.equal(r.passed, true, JSON.stringify(r));
    assert.equal(r.poweredOff, true);
    assert.equal(r.tokens, 32);
    assert.equal(r.textSha256, TINY_MODEL_TEXT_SHA256);
    assert.equal(r.model, "kiln-tiny-llama-q4_0.gguf");
    assert.equal(r.modelIn, "tmpfs");
    assert.ok(Number(r.tokensPerSecond) > 0, `tokens/s ${r.tokensPerSecond}`);
    // the model's pages are in the runtime's RSS (it maps the file and reads all of it), and all
    // of its RSS is memory in use, which the lowest MemAvailable while it ran tells (in kB both)
    assert.ok(Number(r.peakRssKb) > Number(r.modelKb), `peak RSS ${r.peakRssKb} kB, model ${r.modelKb} kB`);
    assert.ok(Number(r.peakRssKb) < Number(r.peakUsedKb), `peak RSS ${r.peakRssKb} kB, peak in use ${r.peakUsedKb} kB`);
    assert.ok(Number(r.peakUsedKb) > Number(r.osOverheadKb), `peak in use ${r.peakUsedKb} kB`);
    assert.ok(Number(r.osOverheadWithModelKb) > 0 && Number(r.osOverheadWithModelKb) < 30 * 1024, `OS overhead with the model ${r.osOverheadWithModelKb} kB`);
    const log = readFileSync(join(dir, "console.log"), "utf8");
    assert.match(log, /PI4-LLM-OS MODEL name=kiln-tiny-llama-q4_0\.gguf size_kb=\d+ from=\/dev\/vda3 in=tmpfs/);
    // what the text digest covers: the prompt as llama-simple echoes it, then the generated text
    assert.match(readFileSync(join(dir, "text.txt"), "utf8"), /^<s> Once upon a time\S* \S/);
  });

  test("a second store at another host path gives the same digest for every output below the runtime", async () => {
    // the llama.cpp runtime (and everything above it: the rootfs and the images) is built twice
    // more in the slow tier (pi4.slow.test.ts), where the whole image is compared
    const storeB = join(tempDir("elsewhere"), "deeper", "store-b");
    await kilnJson(["realize", "--no-link", ...BELOW_RUNTIME], { cwd: REPO, store: storeB, env });
    const a = storeContents(store);
    const b = storeContents(storeB);
    assert.ok(b.size >= 15, `store B has ${b.size} paths`);
    for (const [p, info] of b) {
      assert.ok(a.has(p), `${p} was built in store B but not in store A: not reproducible`);
      assert.equal(a.get(p)!.digest, info.digest, p);
    }
  });

  test("kiln check rebuilds the images bit-identically", async () => {
    const targets = ["pi4-llm-os.initramfs", "pi4-llm-os.rootExt4", "pi4-llm-os.modelsExt4", "pi4-llm-os.bootfs", "pi4-llm-os.disk", "pi4-llm-os.sysinfo",
      "pi4-llm-os.peakRss", "pi4-llm-os.rootfs", "pi4-llm-os.models.tiny", "pi4-llm-os.sources.llamaCpp"];
    const r = await kilnJson(["check", "--json", ...targets], { cwd: REPO, store });
    const res = JSON.parse(r.stdout) as { checked: number; identical: number };
    assert.equal(res.checked, targets.length);
    assert.equal(res.identical, targets.length);
    assert.equal(eventsOf(r.events, "checked").length, targets.length);
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
    git(repo, "init", "-q");
    git(repo, "add", "recipes");
    git(repo, "commit", "-q", "-m", "pi4-llm-os as it was");
    const index = join(recipes, "index.ts");
    const o = { cwd: repo, store };
    const base = await kilnJson(["realize", "--no-link", "-f", index, "pi4-llm-os", "pi4-llm-os.tests.boot"], o);
    assert.deepEqual(buildStarts(base.events), [], "the copy is the same recipe set: everything is in the store");

    // IKCONFIG added to the userspace fragment (std's, which pi4-llm-os's kernel takes), committed
    assert.match(readFileSync(join(recipes, "pi4-llm-os", "kernel.ts"), "utf8"), /userspace: userspaceBasics,/);
    const kernelTs = join(recipes, "std", "linux.ts");
    const text = readFileSync(kernelTs, "utf8");
    const edited = text.replace('TIMERFD: "y", EVENTFD: "y", UNIX98_PTYS: "y",', 'TIMERFD: "y", EVENTFD: "y", UNIX98_PTYS: "y", IKCONFIG: "y",');
    assert.notEqual(edited, text);
    writeFileSync(kernelTs, edited);
    const line = edited.split("\n").findIndex((l) => l.includes('IKCONFIG: "y",') && l.includes("TIMERFD")) + 1;
    git(repo, "commit", "-q", "-am", "kernel: keep the config in /proc/config.gz");
    const commit = git(repo, "rev-parse", "--short=10", "HEAD");
    const cause = new RegExp(
      `recipes/std/linux\\.ts:${line}, in userspaceBasics \\(last changed in ${commit} "kernel: keep the config in /proc/config\\.gz"\\)\n` +
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
    for (const below of ["sysinfo", "pi4-llm-os-rootfs", "pi4-llm-os-initramfs.cpio.gz", "pi4-llm-os-root.ext4", "busybox-static-arm64", "aarch64-linux-musl-toolchain", "llama.cpp-de3ff81-aarch64", "pi4-llm-os-models.ext4"]) {
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
