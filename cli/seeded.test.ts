// Builds on a seed, end to end through the CLI: pinned .debs fetched by sha256, unpacked and
// merged inside kiln (builtin:unpack-deb, builtin:seed-root), then a sandboxed build whose whole
// /usr is that tree. The build sees nothing of the host, its derivation hash does not depend on
// the host's PATH or tools, and a second realize builds nothing.
//
// The .debs come from $KILN_SEED_DEB_CACHE (or ~/.cache/kiln-test/seed-debs) as a mirror when it
// holds them, else from Debian's archive.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseSeedLock } from "../engine/seed-lock.js";
import { buildStarts, cleanup, copyFixture, eventsOf, hostStorePath, kiln, kilnJson, REPO, SEED_DEB_CACHE, tempDir } from "./test-helpers/kiln.js";

// dash and coreutils and the libraries they load: the smallest tree a shell script runs on
const KEYS = ["coreutils:amd64", "dash:amd64", "gcc-12-base:amd64", "libacl1:amd64", "libattr1:amd64", "libc6:amd64", "libgcc-s1:amd64", "libgmp10:amd64", "libpcre2-8-0:amd64", "libselinux1:amd64"];

describe("a build on a seed", { timeout: 600_000 }, () => {
  let cwd: string;
  let store: string;
  let out: string;
  const read = (file: string) => readFileSync(join(hostStorePath(store, out), file), "utf8");
  const env = { KILN_MIRRORS: SEED_DEB_CACHE };

  before(async () => {
    cwd = copyFixture("seeded");
    store = tempDir("store");
    const lock = parseSeedLock(readFileSync(join(REPO, "recipes", "std", "seed", "seed.lock.json"), "utf8"), "seed.lock.json");
    // the fixture's packages are the seed's: a seed update that moves them shows here
    const pkgs = KEYS.map((k) => {
      const p = lock.packages[k];
      assert.ok(p, `${k} is in the seed lock`);
      return { name: p.name, version: p.version, arch: p.arch, sha256: p.sha256, url: p.url };
    });
    assert.deepEqual(JSON.parse(readFileSync(join(cwd, "recipes", "packages.json"), "utf8")), pkgs, "fixtures/seeded/recipes/packages.json is the seed lock's");
    const r = await kilnJson(["realize", "--no-link", "probe"], { cwd, store, env });
    out = eventsOf(r.events, "built", "seeded-probe")[0]!.paths!.out!;
    assert.equal(buildStarts(r.events).length, KEYS.length + 2, "one unpack per package, one merge, one probe");
  });
  after(cleanup);

  test("the build runs the seed's shell and tools, with the seed's PATH", () => {
    assert.equal(read("greeting"), "hello from the seed\n");
    assert.equal(read("PATH"), "/usr/bin:/usr/sbin:/bin:/sbin\n");
    const bin = read("usr-bin").split("\n");
    for (const tool of ["dash", "ls", "cat", "sort"]) assert.ok(bin.includes(tool), `${tool} is in the seed's /usr/bin`);
  });

  test("nothing of the host is visible: no host tool, compiler, header or /etc/debian_version", () => {
    assert.equal(read("host-visible"), "");
    const bin = read("usr-bin").split("\n").filter(Boolean);
    for (const tool of ["node", "bwrap", "apt", "perl", "gcc", "python3"]) assert.ok(!bin.includes(tool), `${tool} leaked into /usr/bin`);
    assert.deepEqual(read("root").split("\n").filter(Boolean).filter((e) => !["bin", "build", "dev", "etc", "kiln", "lib", "lib64", "proc", "sbin", "tmp", "usr"].includes(e)), []);
  });

  test("a second realize builds and fetches nothing", async () => {
    const r = await kilnJson(["realize", "--no-link", "probe"], { cwd, store, env });
    assert.equal(buildStarts(r.events).length, 0);
    assert.equal(eventsOf(r.events, "started").length, 0);
  });

  test("the derivation hash does not depend on the host: another PATH gives the same hashes", async () => {
    const a = await kiln(["show-derivation", "probe"], { cwd, store, env });
    const b = await kiln(["show-derivation", "probe"], { cwd, store, env: { ...env, PATH: `${tempDir("empty-path")}:/usr/bin:/bin` } });
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(Object.keys(JSON.parse(b.stdout)), Object.keys(JSON.parse(a.stdout)));
    const drv = Object.values(JSON.parse(a.stdout) as Record<string, { hostTools: Record<string, unknown>; builder: string }>)[0]!;
    assert.deepEqual(drv.hostTools, {}, "no host tool is part of the derivation");
    assert.equal(drv.builder, "/bin/sh");
  });
});
