// m-series, end to end (the slow tier, `npm run test:slow`): the kernel, the ZFS modules and the
// rootfs built in a temporary store, the boot test under QEMU (16K pages, SSH login with the
// test's own key, a ZFS pool on the second NVMe disk, power-off), the final .config and the image's
// contents checked, and reproducibility: a second store at another host path gives the same digest
// for every output, and `kiln check` rebuilds the userspace bit for bit.
//
// On a 2-core machine each store's build takes most of an hour (the kernel ~25-45 minutes, ZFS
// ~10-20), so the file takes one to two hours.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, eventsOf, kilnJson, query, REPO, SEED_DEB_CACHE, tempDir } from "../../cli/test-helpers/kiln.js";
import { fragments } from "./kernel.js";

const TARGETS = ["m-series", "m-series.kernel", "m-series.zfs", "m-series.rootfs", "m-series.tests.boot", "m-series.report"];

/** Every valid path of a store with its content digest. */
function storeContents(store: string): Map<string, string> {
  const rows = query<{ path: string; nar_digest: string }>(store, "SELECT path, nar_digest FROM valid_paths");
  return new Map(rows.map((r) => [r.path, r.nar_digest]));
}

describe("m-series build, boot and reproducibility", { timeout: 4 * 60 * 60_000 }, () => {
  const store = join(tempDir("store-a"), "kiln-store");
  const out = new Map<string, string>();

  before(async () => {
    const r = await kilnJson(["realize", "--no-link", "--json", ...TARGETS], { cwd: REPO, store, env: { KILN_MIRRORS: SEED_DEB_CACHE } });
    for (const o of (JSON.parse(r.stdout) as { outputs: Array<{ target: string; path: string }> }).outputs) out.set(o.target, o.path);
  });
  after(cleanup);

  test("the boot test passes: 16K pages, the ARMv8.4 features, SSH with the test's key, a ZFS pool, power-off", () => {
    const dir = out.get("m-series.tests.boot")!;
    const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as Record<string, unknown>;
    assert.equal(report.passed, true, JSON.stringify(report));
    assert.equal(report.pageSize, 16384);
    assert.equal(report.poweredOff, true);
    assert.equal(report.ssh, true);
    assert.equal(report.zfs, true);
    assert.equal(report.hostKeyFromBoot, true, "the host key ssh saw is the one the VM made at boot");
    const hwcaps = String(report.hwcaps).split(",");
    for (const f of ["aes", "pmull", "sha1", "sha2", "sha3", "sha512", "crc32", "atomics", "paca", "pacg"]) assert.ok(hwcaps.includes(f), `hwcap ${f} in ${report.hwcaps}`);
    const consoleLog = readFileSync(join(dir, "console.log"), "utf8");
    assert.match(consoleLog, /M-SERIES KERNEL .*ARM64_16K_PAGES .*ARM64_PTR_AUTH_KERNEL .*ARM64_AMU_EXTN/);
    assert.match(consoleLog, /M-SERIES CRYPTO .*aes-ce.* sha256-ce/);
    assert.match(consoleLog, /M-SERIES ZFS module 2\.1\.11/);
    assert.doesNotMatch(consoleLog, /Posix ACLs disabled/);
    const ssh = readFileSync(join(dir, "ssh.log"), "utf8");
    assert.match(ssh, /M-SERIES SSH OK user=root host=m-series kernel=6\.1\.\d+/);
    assert.match(ssh, /M-SERIES ZFS OK pool=tank,\d+M,ONLINE dataset=tank\/data,32\.\dM,lz4 sha256=[0-9a-f]{64}/);
    const text = readFileSync(join(out.get("m-series.report")!, "report.txt"), "utf8");
    assert.match(text, /boot test +passed=true: page size 16384/);
  });

  test("the kernel's final .config has every option the fragments ask for", () => {
    const config = readFileSync(join(out.get("m-series.kernel")!, "config"), "utf8");
    for (const [name, frag] of Object.entries(fragments)) {
      for (const [sym, want] of Object.entries(frag)) {
        if (want === "n") assert.doesNotMatch(config, new RegExp(`^CONFIG_${sym}=`, "m"), `${name}: ${sym} must be off`);
        else assert.match(config, new RegExp(`^CONFIG_${sym}=${want}$`, "m"), `${name}: ${sym}=${want}`);
      }
    }
  });

  test("the image has no package manager, compiler, docs, host keys or login key", () => {
    const root = out.get("m-series.rootfs")!;
    for (const p of ["usr/bin/dpkg", "usr/bin/apt", "usr/bin/gcc", "usr/bin/perl", "usr/bin/python3", "usr/share/doc", "usr/share/man", "root/.ssh/authorized_keys"]) {
      assert.ok(!existsSync(join(root, p)), `${p} is in the image`);
    }
    assert.deepEqual(readdirSync(join(root, "etc/ssh")).filter((f) => f.startsWith("ssh_host_")), []);
    for (const p of ["usr/sbin/sshd", "usr/bin/bash", "usr/bin/curl", "usr/bin/ip", "usr/sbin/zpool", "usr/bin/busybox"]) assert.ok(existsSync(join(root, p)), `${p} missing`);
    const release = readFileSync(join(out.get("m-series.kernel")!, "kernel.release"), "utf8").trim();
    assert.ok(existsSync(join(root, `usr/lib/modules/${release}/extra/zfs.ko`)));
    assert.match(readFileSync(join(root, `usr/lib/modules/${release}/modules.dep`), "utf8"), /^extra\/zfs\.ko: /m);
  });

  test("a second store at another host path gives the same digest for every output", async () => {
    const storeB = join(tempDir("elsewhere"), "deeper", "store-b");
    await kilnJson(["realize", "--no-link", "m-series", "m-series.kernel", "m-series.zfs"], { cwd: REPO, store: storeB, env: { KILN_MIRRORS: SEED_DEB_CACHE } });
    const a = storeContents(store);
    const b = storeContents(storeB);
    assert.ok(b.size >= 85, `store B has ${b.size} paths`);
    for (const [p, digest] of b) {
      assert.ok(a.has(p), `${p} was built in store B but not in store A: not reproducible`);
      assert.equal(a.get(p), digest, p);
    }
  });

  test("kiln check rebuilds the userspace and the root disk bit-identically", async () => {
    const targets = ["m-series.info", "m-series.rootfs", "m-series"];
    const r = await kilnJson(["check", "--json", ...targets], { cwd: REPO, store });
    const res = JSON.parse(r.stdout) as { checked: number; identical: number };
    assert.equal(res.checked, targets.length);
    assert.equal(res.identical, targets.length);
    assert.equal(eventsOf(r.events, "checked").length, targets.length);
  });
});
