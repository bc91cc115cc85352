// The toolchain tier (npm run test:toolchain; hours on 2 cores from an empty store), in one store:
// BlazeNeuro's stage 2 (the cross toolchain) and stage 3 (the temporary system) built from source
// on the seed, then the proofs: gcc and g++ of the temporary system compile and run programs in a
// build whose whole /usr is that system, through its own glibc; no output names the host's
// multiarch paths; binutils and glibc rebuild bit for bit (`kiln check`); a change to the kernel
// headers' recipe that leaves their output the same rebuilds them alone (early cutoff). Then stage
// 4, the kernel, the USB image and its boot tests: booted by SeaBIOS and by OVMF, twice from one
// copy for persistence, the image and its parts rebuilt bit for bit, no store path in the root.
//
// KILN_TOOLCHAIN_STORE names a store to build in and keep (to re-run the proofs without the hours);
// by default the test uses a store of its own, removed afterwards. The time each stage took is
// printed (the numbers in the README come from here).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildStarts, cleanup, kiln, kilnJson, query, REPO, SEED_DEB_CACHE, tempDir } from "../../cli/test-helpers/kiln.js";

const STAGE3 = ["m4-1.4.19", "ncurses-6.4", "bash-5.2.15", "coreutils-9.1", "diffutils-3.8", "file-5.44", "findutils-4.9.0", "gawk-5.2.1",
  "grep-3.8", "gzip-1.12", "make-4.3", "patch-2.7.6", "sed-4.9", "tar-1.34", "xz-5.4.1", "binutils-pass2-2.40", "gcc-pass2-12.2.0"];

const TOOLS = ["m4", "ncurses", "bash", "coreutils", "diffutils", "file", "findutils", "gawk", "grep", "gzip", "make", "patch", "sed", "tar", "xz"];
/** each stage's targets, for the time each took */
const STAGES: Record<string, string[]> = {
  "stage 2": ["binutils-pass1", "gcc-pass1", "linux-api-headers", "glibc", "libstdc++"].map((t) => `blazeneuro.toolchain.${t}`),
  "stage 3": [...TOOLS, "binutils-pass2", "gcc-pass2"].map((t) => `blazeneuro.temporary.${t}`),
  "stage 4": [...TOOLS, "flex", "bison", "binutils", "gcc", "util-linux", "pkgconf", "e2fsprogs", "init"].map((t) => `blazeneuro.system.${t}`),
  "kernel and image": ["blazeneuro.kernel", "blazeneuro.partitions.esp", "blazeneuro.partitions.root", "blazeneuro"],
  "boot tests": ["blazeneuro.tests.bios", "blazeneuro.tests.uefi", "blazeneuro.tests.persistence"],
};

// one store for both parts: the image is built on the stages
const store = process.env.KILN_TOOLCHAIN_STORE ?? join(tempDir("store"), "kiln-store");
const env = { KILN_MIRRORS: SEED_DEB_CACHE };
const host = (p: string) => join(store, "store", p.split("/").pop()!);
after(() => {
  if (!process.env.KILN_TOOLCHAIN_STORE) cleanup();
});

/**
 * The time each stage's derivations took, from the store's record of their latest successful
 * builds, found by derivation hash (stage 3's m4 and stage 4's have one name).
 */
async function stageTimes(stages: string[]): Promise<string> {
  const all = stages.flatMap((s) => STAGES[s]!);
  const r = await kilnJson(["eval", "--json", ...all], { cwd: REPO, store, env });
  const drv = new Map((JSON.parse(r.stdout) as { roots: Array<{ target: string; drv: string }> }).roots.map((x) => [x.target, x.drv]));
  const secs = (t: string) => query<{ secs: number }>(store,
    "SELECT (ended_at - started_at) / 1000.0 AS secs FROM builds WHERE status = 'built' AND drv_hash = ? ORDER BY id DESC LIMIT 1", drv.get(t)!)[0]?.secs;
  const min = (x: number | undefined) => (x === undefined ? "?" : `${(x / 60).toFixed(1)} min`);
  return stages.map((s) => {
    const ts = STAGES[s]!;
    const total = ts.reduce((sum, t) => sum + (secs(t) ?? 0), 0);
    return `${s} (${min(total)}):\n${ts.map((t) => `  ${t.padEnd(40)} ${min(secs(t))}`).join("\n")}`;
  }).join("\n");
}

describe("BlazeNeuro toolchain stages", { timeout: 5 * 60 * 60_000 }, () => {
  const paths: Record<string, string> = {};

  before(async () => {
    const targets = ["blazeneuro.temporary.tests.hello", "blazeneuro.toolchain", "blazeneuro.temporary"];
    const r = await kilnJson(["realize", "--no-link", "--json", ...targets], { cwd: REPO, store, env });
    for (const o of (JSON.parse(r.stdout) as { outputs: Array<{ target: string; path: string }> }).outputs) paths[o.target] = o.path;
    console.log(await stageTimes(["stage 2", "stage 3"]));
  });

  test("the temporary system's gcc and g++ compile C and C++ that run through its own glibc, with no seed in sight", () => {
    const dir = host(paths["blazeneuro.temporary.tests.hello"]!);
    const report = readFileSync(join(dir, "report.txt"), "utf8");
    assert.match(report, /^compiler: x86_64-blazeneuro-linux-gnu 12\.2\.0$/m);
    assert.match(report, /^hello-c: hello from C, glibc 2\.36$/m);
    assert.match(report, /^hello-cpp: hello from C\+\+ 12\.2\.0/m);
    assert.match(report, /^hello-c interpreter: \/lib64\/ld-linux-x86-64\.so\.2$/m);
    assert.match(report, /^hello-cpp needs: libstdc\+\+\.so\.6 libm\.so\.6 libgcc_s\.so\.1 libc\.so\.6 $/m);
    assert.match(report, /^loader: \/lib64\/ld-linux-x86-64\.so\.2 -> \/usr\/lib\/ld-linux-x86-64\.so\.2$/m);
    // the interpreter the binaries ask for is the toolchain sysroot's and the temporary system's
    const readelf = spawnSync("readelf", ["-l", join(dir, "bin", "hello-c")], { encoding: "utf8" }).stdout;
    assert.match(readelf, /Requesting program interpreter: \/lib64\/ld-linux-x86-64\.so\.2/);
    for (const tree of [paths["blazeneuro.toolchain"]!, paths["blazeneuro.temporary"]!]) {
      // the toolchain's sysroot is a link to its own store path, as the sandbox sees it (/kiln/store/…)
      const root = tree === paths["blazeneuro.toolchain"] ? host(readlinkSync(join(host(tree), "sysroot"))) : host(tree);
      assert.ok(existsSync(join(root, "usr", "lib64", "ld-linux-x86-64.so.2")), `${root} has the loader`);
    }
  });

  test("no output of stage 3 names the host's multiarch paths, and none refers to the seed", () => {
    const temp = host(paths["blazeneuro.temporary"]!);
    const found = spawnSync("grep", ["-rlF", "-e", "/usr/lib/x86_64-linux-gnu", "-e", "/usr/include/x86_64-linux-gnu", "."], { cwd: temp, encoding: "utf8" }).stdout.trim();
    assert.equal(found, "", `files naming Debian's multiarch directories:\n${found}`);
    const refs = query<{ ref: string }>(store,
      "SELECT DISTINCT r.path AS ref FROM refs JOIN valid_paths v ON v.id = refs.referrer JOIN valid_paths r ON r.id = refs.reference WHERE substr(v.path, 34) IN (" +
      STAGE3.map(() => "?").join(",") + ")", ...STAGE3).map((x) => x.ref.slice(33));
    assert.deepEqual(refs.filter((n) => n.startsWith("seed-")), [], "a stage 3 package refers to the seed");
  });

  test("binutils and glibc rebuild bit for bit (kiln check)", async () => {
    for (const t of ["blazeneuro.toolchain.binutils-pass1", "blazeneuro.toolchain.glibc"]) {
      const r = await kiln(["check", t], { cwd: REPO, store, env });
      assert.equal(r.code, 0, `${t}:\n${r.stdout}\n${r.stderr}`);
    }
  });

  test("a recipe change that leaves the kernel headers the same rebuilds them alone: early cutoff stops there", async () => {
    const dir = join(tempDir("recipes"), "recipes");
    cpSync(join(REPO, "recipes"), dir, { recursive: true, filter: (p) => !p.endsWith(".test.ts") });
    const file = join(dir, "blazeneuro", "toolchain.ts");
    const text = readFileSync(file, "utf8");
    assert.ok(text.includes(`configure: "make mrproper",`));
    writeFileSync(file, text.replace(`configure: "make mrproper",`, `configure: "make mrproper # the same headers, another recipe",`));
    const r = await kilnJson(["realize", "--no-link", "-f", join(dir, "index.ts"), "blazeneuro.temporary.tests.hello"], { cwd: REPO, store, env });
    assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name), ["linux-api-headers-6.1"]);
    const cut = r.events.filter((e) => e.type === "cached" && (e as { cutoff?: boolean }).cutoff).map((e) => e.node!.name);
    assert.ok(cut.includes("glibc-2.36"), `glibc is cut off, not rebuilt (cut off: ${cut.join(", ")})`);
    // and why names the stage that changed, and where the rebuild stopped
    const why = await kiln(["why", "-f", join(dir, "index.ts"), "blazeneuro.temporary.tests.hello"], { cwd: REPO, store, env });
    assert.equal(why.code, 0, why.stderr);
    assert.match(why.stdout, /linux-api-headers-6\.1/);
    assert.match(why.stdout, /early cutoff at linux-api-headers-6\.1/);
  });

  test("the stages' outputs are where the README says, and their sizes are reported", () => {
    const du = (p: string) => Number(spawnSync("du", ["-sb", host(p)], { encoding: "utf8" }).stdout.split("\t")[0]);
    const sizes = Object.fromEntries(Object.entries(paths).map(([t, p]) => [t, `${(du(p) / 2 ** 20).toFixed(0)} MiB`]));
    console.log(sizes);
    assert.ok(statSync(join(host(paths["blazeneuro.toolchain"]!), "bin", "x86_64-blazeneuro-linux-gnu-gcc")).isFile());
    assert.ok(readdirSync(join(host(paths["blazeneuro.temporary"]!), "usr", "bin")).includes("gcc"));
  });
});

describe("BlazeNeuro final system, image and boot tests", { timeout: 8 * 60 * 60_000 }, () => {
  const paths: Record<string, string> = {};
  const targets = ["blazeneuro.report", "blazeneuro", "blazeneuro.system", "blazeneuro.kernel", "blazeneuro.tests.bios", "blazeneuro.tests.uefi", "blazeneuro.tests.persistence"];

  before(async () => {
    const r = await kilnJson(["realize", "--no-link", "--json", ...targets], { cwd: REPO, store, env });
    for (const o of (JSON.parse(r.stdout) as { outputs: Array<{ target: string; path: string }> }).outputs) paths[o.target] = o.path;
    console.log(readFileSync(join(host(paths["blazeneuro.report"]!), "report.txt"), "utf8"));
    console.log(await stageTimes(["stage 4", "kernel and image", "boot tests"]));
  });

  test("the image boots by SeaBIOS and by OVMF, the system says which, and its self-test passes", () => {
    for (const [t, fw] of [["bios", "bios"], ["uefi", "uefi"]] as const) {
      const dir = host(paths[`blazeneuro.tests.${t}`]!);
      const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as { firmware: string; boots: number; markerSeconds: number[]; e2fsck: string };
      assert.equal(report.firmware, fw);
      assert.equal(report.markerSeconds.length, 1);
      const console_ = readFileSync(join(dir, "console-1.log"), "utf8");
      assert.match(console_, new RegExp(`BLAZENEURO-FIRMWARE ${fw}`));
      assert.match(console_, /BLAZENEURO-TEST ok/);
      assert.doesNotMatch(console_, /BLAZENEURO-CHECK FAILED/);
      assert.match(console_, /compiled on BlazeNeuro/, "the system's own gcc compiles and runs a program on it");
    }
  });

  test("persistence: the second boot of one copy finds the first one's write, and the root is clean afterwards", () => {
    const dir = host(paths["blazeneuro.tests.persistence"]!);
    const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as { boots: number; e2fsck: string };
    assert.equal(report.boots, 2);
    assert.equal(report.e2fsck, "clean");
    assert.match(readFileSync(join(dir, "console-1.log"), "utf8"), /BLAZENEURO-BOOTS 1/);
    assert.match(readFileSync(join(dir, "console-2.log"), "utf8"), /BLAZENEURO-BOOTS 2/);
  });

  test("the USB image, its partitions, GRUB's images, init and the root tree rebuild bit for bit (kiln check)", async () => {
    const r = await kiln(["check", "blazeneuro.grub", "blazeneuro.system.init", "blazeneuro.system", "blazeneuro.partitions.esp", "blazeneuro.partitions.root", "blazeneuro"], { cwd: REPO, store, env });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });

  test("the root tree: init, the loader, BlazeNeuro's own binaries, and no store path anywhere in it", () => {
    const root = host(paths["blazeneuro.system"]!);
    assert.equal(readlinkSync(join(root, "sbin")), "usr/sbin");
    assert.ok(existsSync(join(root, "usr", "sbin", "init")));
    assert.ok(existsSync(join(root, "usr", "lib64", "ld-linux-x86-64.so.2")));
    for (const bin of ["bash", "gcc", "mount", "mke2fs"]) {
      const p = ["bin", "sbin"].map((d) => join(root, "usr", d, bin)).find((x) => existsSync(x));
      assert.ok(p, `the root has ${bin}`);
      assert.match(spawnSync("readelf", ["-l", p!], { encoding: "utf8" }).stdout, /Requesting program interpreter: \/lib64\/ld-linux-x86-64\.so\.2/);
    }
    // the tree is a whole system on a stick: a store path anywhere in it would point at nothing there
    const named = spawnSync("grep", ["-rlF", "/kiln/store/", "usr", "etc"], { cwd: root, encoding: "utf8" }).stdout.trim();
    assert.equal(named, "", `files naming a store path:\n${named}`);
    const found = spawnSync("grep", ["-rlF", "-e", "/usr/lib/x86_64-linux-gnu", "usr/bin", "usr/sbin", "usr/lib"], { cwd: root, encoding: "utf8" }).stdout.trim();
    assert.equal(found, "", `files naming Debian's multiarch directories:\n${found}`);
  });

  test("the report gives the image's and the root's sizes and every boot test's time", () => {
    const report = readFileSync(join(host(paths["blazeneuro.report"]!), "report.txt"), "utf8");
    assert.match(report, /image +blazeneuro-usb\.img +\d+\.\d MiB +\(FAT32 ESP 512\.0 MiB \+ ext4 root \d+\.\d MiB\)/);
    assert.equal(report.match(/boot test .*marker after [\d.]+ s/g)?.length, 3);
    assert.match(report, /GRUB: Debian's prebuilt binaries/);
  });
});
