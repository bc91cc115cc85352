// The BlazeNeuro image tier (npm run test:toolchain, with the toolchain stages; hours on 2 cores
// from an empty store): stage 4 (the final system, built natively on the temporary system), the
// kernel, GRUB, the USB image and its boot tests under QEMU: by SeaBIOS, by OVMF, and twice from
// one copy for persistence. Then: the image rebuilds bit for bit (`kiln check`), the final
// system's files name neither the seed nor the temporary system, and the report gives the sizes.
//
// KILN_TOOLCHAIN_STORE names a store to build in and keep, as for the toolchain stages' tier.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, kiln, kilnJson, query, REPO, SEED_DEB_CACHE, tempDir } from "../../cli/test-helpers/kiln.js";

describe("BlazeNeuro final system, image and boot tests", { timeout: 8 * 60 * 60_000 }, () => {
  const store = process.env.KILN_TOOLCHAIN_STORE ?? join(tempDir("store"), "kiln-store");
  const env = { KILN_MIRRORS: SEED_DEB_CACHE };
  const paths: Record<string, string> = {};
  const host = (p: string) => join(store, "store", p.split("/").pop()!);
  const targets = ["blazeneuro.report", "blazeneuro", "blazeneuro.system", "blazeneuro.kernel", "blazeneuro.tests.bios", "blazeneuro.tests.uefi", "blazeneuro.tests.persistence"];

  before(async () => {
    const r = await kilnJson(["realize", "--no-link", "--json", ...targets], { cwd: REPO, store, env });
    for (const o of (JSON.parse(r.stdout) as { outputs: Array<{ target: string; path: string }> }).outputs) paths[o.target] = o.path;
    console.log(readFileSync(join(host(paths["blazeneuro.report"]!), "report.txt"), "utf8"));
  });
  after(() => {
    if (!process.env.KILN_TOOLCHAIN_STORE) cleanup();
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

  test("the USB image and its partitions rebuild bit for bit (kiln check)", async () => {
    const r = await kiln(["check", "blazeneuro.partitions.esp", "blazeneuro.partitions.root", "blazeneuro"], { cwd: REPO, store, env });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });

  test("the root tree: init, the loader, BlazeNeuro's own binaries; nothing of the seed or the temporary system", () => {
    const root = host(paths["blazeneuro.system"]!);
    assert.equal(readlinkSync(join(root, "sbin")), "usr/sbin");
    assert.ok(existsSync(join(root, "usr", "sbin", "init")));
    assert.ok(existsSync(join(root, "usr", "lib64", "ld-linux-x86-64.so.2")));
    for (const bin of ["bash", "gcc", "mount", "mke2fs"]) {
      const p = ["bin", "sbin"].map((d) => join(root, "usr", d, bin)).find((x) => existsSync(x));
      assert.ok(p, `the root has ${bin}`);
      assert.match(spawnSync("readelf", ["-l", p!], { encoding: "utf8" }).stdout, /Requesting program interpreter: \/lib64\/ld-linux-x86-64\.so\.2/);
    }
    const refs = query<{ ref: string }>(store,
      "SELECT DISTINCT r.path AS ref FROM refs JOIN valid_paths v ON v.id = refs.referrer JOIN valid_paths r ON r.id = refs.reference WHERE v.path = ?",
      paths["blazeneuro.system"]!.split("/").pop()!).map((x) => x.ref.slice(33));
    assert.deepEqual(refs.filter((n) => n.startsWith("seed-") || n.startsWith("blazeneuro-temporary")), [], "the root tree refers to the seed or the temporary system");
    const found = spawnSync("grep", ["-rlF", "-e", "/usr/lib/x86_64-linux-gnu", "usr/bin", "usr/sbin", "usr/lib"], { cwd: root, encoding: "utf8" }).stdout.trim();
    assert.equal(found, "", `files naming Debian's multiarch directories:\n${found}`);
  });

  test("the report gives the image's and the root's sizes and every boot test's time", () => {
    const report = readFileSync(join(host(paths["blazeneuro.report"]!), "report.txt"), "utf8");
    assert.match(report, /image +blazeneuro-usb\.img +\d+\.\d MiB \(FAT32 ESP 512\.0 MiB \+ ext4 root \d+\.\d MiB\)/);
    assert.equal(report.match(/boot test .*marker after [\d.]+ s/g)?.length, 3);
    assert.match(report, /GRUB: Debian's prebuilt binaries/);
  });
});
