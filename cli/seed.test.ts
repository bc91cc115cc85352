// kiln seed lock against Debian's real archive (network to deb.debian.org): the closure of each
// set from apt's solver on a private apt state, exclusions, contrib, the same bytes on a second
// run, a readable diff when a set changes, --check, an arm64 set that stays arm64, and a clear
// error for a package that does not exist.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, kiln, tempDir } from "./test-helpers/kiln.js";

interface Lock {
  suite: string;
  sets: Record<string, { arch: string; request: string[]; packages: string[] }>;
  packages: Record<string, { name: string; version: string; arch: string; sha256: string; size: number; url: string }>;
}

describe("kiln seed lock", { timeout: 10 * 60_000 }, () => {
  let dir: string;
  let store: string;
  let aptDir: string;
  // a test that changes the sets file or the lock does it in a folder of its own (`at`)
  const setsFile = (at = dir) => join(at, "sets.json");
  const lockFile = (at = dir) => join(at, "seed.lock.json");
  const writeSets = (sets: Record<string, unknown>, at = dir) => writeFileSync(setsFile(at), JSON.stringify({ suite: "bookworm", components: ["main", "contrib"], sets }, null, 2));
  const seedLock = (at: string, ...extra: string[]) => kiln(["seed", "lock", "--sets", setsFile(at), "--apt-dir", aptDir, ...extra], { cwd: at, store });
  let first: string;

  before(async () => {
    dir = tempDir("seed");
    store = join(tempDir("seed-store"), "store");
    aptDir = join(tempDir("seed-apt"), "apt");
    writeSets({
      shell: { arch: "amd64", packages: ["dash"] },
      "arm-shell": { arch: "arm64", packages: ["dash", "musl"] },
      "arm-ssh": { arch: "arm64", packages: ["openssh-client"] },
      "arm-ssh-lean": { arch: "arm64", packages: ["openssh-client"], exclude: ["adduser", "passwd"] },
      "arm-contrib": { arch: "arm64", packages: ["b43-fwcutter"], exclude: ["debconf"] },
    });
    const r = await seedLock(dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /seed\.lock\.json created/);
    first = readFileSync(lockFile(), "utf8");
  });
  after(cleanup);

  test("each set is its closure from an empty system, every package pinned by sha256 with its archive URL", () => {
    const lock = JSON.parse(first) as Lock;
    assert.equal(lock.suite, "bookworm");
    assert.ok(lock.sets.shell!.packages.includes("dash:amd64"));
    assert.ok(lock.sets.shell!.packages.includes("libc6:amd64"), "dash's dependency is in the closure although the host has it installed");
    assert.ok(!lock.sets.shell!.packages.includes("coreutils:amd64"), "Essential packages are not pulled in unless a dependency asks");
    for (const [k, p] of Object.entries(lock.packages)) {
      assert.equal(k, `${p.name}:${p.arch}`);
      assert.match(p.sha256, /^[0-9a-f]{64}$/);
      assert.ok(p.size > 0);
      assert.match(p.url, /^http:\/\/deb\.debian\.org\/debian(-security)?\/pool\/.+\.deb$/);
    }
  });

  test("an arm64 set resolves to arm64 (or arch-independent) packages only", () => {
    const lock = JSON.parse(first) as Lock;
    const arm = lock.sets["arm-shell"]!;
    assert.equal(arm.arch, "arm64");
    assert.ok(arm.packages.includes("dash:arm64") && arm.packages.includes("musl:arm64"), arm.packages.join(" "));
    for (const k of arm.packages) assert.match(k, /:(arm64|all)$/, k);
  });

  test("excluded packages, and what only they need, stay out of a set's closure; the lock records the exclusions", () => {
    const lock = JSON.parse(first) as Lock & { sets: Record<string, { exclude?: string[] }> };
    const full = lock.sets["arm-ssh"]!.packages;
    const lean = lock.sets["arm-ssh-lean"]!.packages;
    // passwd is the only one of these to need libsemanage2
    for (const k of ["adduser:all", "passwd:arm64", "libsemanage2:arm64"]) {
      assert.ok(full.includes(k), `${k} is in openssh-client's closure`);
      assert.ok(!lean.includes(k), `${k} is excluded (or needed only by what is)`);
    }
    assert.ok(lean.includes("openssh-client:arm64") && lean.includes("libssl3:arm64"), lean.join(" "));
    assert.deepEqual(lock.sets["arm-ssh-lean"]!.exclude, ["adduser", "passwd"]);
    assert.equal(lock.sets["arm-ssh"]!.exclude, undefined);
  });

  test("a set may take packages from the components the sets file names (contrib)", () => {
    const lock = JSON.parse(first) as Lock;
    const set = lock.sets["arm-contrib"]!.packages;
    assert.ok(set.includes("b43-fwcutter:arm64"), set.join(" "));
    assert.match(lock.packages["b43-fwcutter:arm64"]!.url, /\/pool\/contrib\//);
    assert.ok(!set.includes("debconf:all"), "debconf is excluded");
  });

  test("a second run writes the same bytes and says the lock is up to date", async () => {
    const r = await seedLock(dir, "--no-update");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /seed\.lock\.json is up to date/);
    assert.equal(readFileSync(lockFile(), "utf8"), first);
  });

  test("a changed set: --check reports it and exits 1 without writing; a run writes it and shows the diff", async () => {
    const own = tempDir("seed");
    writeFileSync(lockFile(own), first);
    writeSets({
      shell: { arch: "amd64", packages: ["dash", "bc"] },
      "arm-shell": { arch: "arm64", packages: ["dash", "musl"] },
    }, own);
    const check = await seedLock(own, "--no-update", "--check");
    assert.equal(check.code, 1, check.stderr);
    assert.match(check.stdout, /would change/);
    assert.equal(readFileSync(lockFile(own), "utf8"), first, "--check leaves the file alone");
    const r = await seedLock(own, "--no-update");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /seed\.lock\.json updated:\n(.*\n)*  shell: \+ bc:amd64 \S+/);
    const lock = JSON.parse(readFileSync(lockFile(own), "utf8")) as Lock;
    assert.deepEqual(lock.sets.shell!.request, ["bc", "dash"]);
    assert.ok(lock.sets.shell!.packages.includes("bc:amd64"));
  });

  test("a package that does not exist is SEED_INVALID (exit 2) naming the set and the package", async () => {
    const own = tempDir("seed");
    writeSets({ shell: { arch: "amd64", packages: ["dash", "no-such-package-kiln"] } }, own);
    const r = await seedLock(own, "--no-update");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /set shell \(amd64\): no-such-package-kiln cannot be installed from bookworm/);
  });

  test("a malformed sets file is SEED_INVALID naming the file and the field", async () => {
    const own = tempDir("seed");
    writeFileSync(setsFile(own), JSON.stringify({ suite: "bookworm", sets: { shell: { arch: "amd64", packages: "dash" } } }));
    const r = await seedLock(own, "--no-update");
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(setsFile(own)), r.stderr);
    assert.match(r.stderr, /set "shell": "packages" must be a non-empty list/);
  });
});
