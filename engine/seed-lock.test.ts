import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { KilnError } from "../store/errors.js";
import { diffSeedLocks, parseSeedLock, parseSeedSets, renderSeedDiff, renderSeedLock, seedSize, type LockedPackage, type SeedLock } from "./seed-lock.js";

const FILE = "/repo/recipes/std/seed/sets.json";

function invalid(...mention: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof KilnError, `expected a KilnError, got ${String(e)}`);
    assert.equal(e.code, "SEED_INVALID", e.message);
    for (const m of mention) assert.ok(e.message.includes(m), `message should mention ${m}: ${e.message}`);
    return true;
  };
}

const sets = (s: unknown) => JSON.stringify({ suite: "bookworm", sets: s });

function pkg(name: string, version: string, arch = "amd64", extra: Partial<LockedPackage> = {}): LockedPackage {
  return { name, version, arch, sha256: (name.length % 10).toString().repeat(64), size: 1000, installedSize: 4096, url: `http://deb.debian.org/debian/pool/main/${name[0]}/${name}/${name}_${version}_${arch}.deb`, ...extra };
}

function lockOf(setsOf: Record<string, LockedPackage[]>, arch = "amd64"): SeedLock {
  const lock: SeedLock = { lockVersion: 1, suite: "bookworm", sets: {}, packages: {} };
  for (const [name, ps] of Object.entries(setsOf)) {
    lock.sets[name] = { arch, request: ps.slice(0, 1).map((p) => p.name), packages: ps.map((p) => `${p.name}:${p.arch}`) };
    for (const p of ps) lock.packages[`${p.name}:${p.arch}`] = p;
  }
  return lock;
}

describe("parseSeedSets", () => {
  test("a valid file: sets sorted, links and prefer kept", () => {
    const s = parseSeedSets(sets({ z: { arch: "arm64", packages: ["musl"] }, base: { arch: "amd64", packages: ["gawk", "gcc-12=12.2.0-14"], links: { "usr/bin/awk": "gawk" } } }), FILE);
    assert.deepEqual(Object.keys(s.sets), ["base", "z"]);
    assert.deepEqual(s.sets.base, { arch: "amd64", packages: ["gawk", "gcc-12=12.2.0-14"], links: { "usr/bin/awk": "gawk" }, prefer: {} });
    assert.equal(s.sets.z!.arch, "arm64");
  });

  test("each mistake is SEED_INVALID naming the file, the set and the field", () => {
    assert.throws(() => parseSeedSets("{", FILE), invalid(FILE, "not valid JSON"));
    assert.throws(() => parseSeedSets(JSON.stringify({ suite: "Bookworm!", sets: {} }), FILE), invalid('"suite"'));
    assert.throws(() => parseSeedSets(sets({}), FILE), invalid('"sets"'));
    assert.throws(() => parseSeedSets(sets({ base: { arch: "amd64", packages: [] } }), FILE), invalid('set "base"', '"packages"'));
    assert.throws(() => parseSeedSets(sets({ base: { arch: "amd64", packages: ["gawk", "gawk"] } }), FILE), invalid('set "base"', "gawk is listed twice"));
    assert.throws(() => parseSeedSets(sets({ base: { arch: "amd64", packages: ["GAWK"] } }), FILE), invalid('"GAWK"'));
    assert.throws(() => parseSeedSets(sets({ base: { packages: ["gawk"] } }), FILE), invalid('"arch"'));
    assert.throws(() => parseSeedSets(sets({ base: { arch: "amd64", packages: ["gawk"], link: {} } }), FILE), invalid('unknown field "link"'));
    assert.throws(() => parseSeedSets(sets({ base: { arch: "amd64", packages: ["gawk"], links: { "/usr/bin/awk": "gawk" } } }), FILE), invalid('"links"', "/usr/bin/awk", "relative"));
    assert.throws(() => parseSeedSets(sets({ base: { arch: "amd64", packages: ["gawk"], links: { "usr/../etc/x": "gawk" } } }), FILE), invalid("usr/../etc/x"));
    assert.throws(() => parseSeedSets(sets({ base: { arch: "amd64", packages: ["gawk"], prefer: { "usr/bin/x": "Not A Package" } } }), FILE), invalid('"prefer"', "not a package name"));
  });
});

describe("parseSeedSets: components and exclusions", () => {
  test("components and a set's exclude list are kept", () => {
    const s = parseSeedSets(JSON.stringify({ suite: "bookworm", components: ["main", "contrib"], sets: { img: { arch: "arm64", packages: ["openssh-server"], exclude: ["adduser", "debconf"] } } }), FILE);
    assert.deepEqual(s.components, ["main", "contrib"]);
    assert.deepEqual(s.sets.img!.exclude, ["adduser", "debconf"]);
    assert.equal(parseSeedSets(sets({ base: { arch: "amd64", packages: ["gawk"], exclude: [] } }), FILE).sets.base!.exclude, undefined);
  });

  test("a bad component or exclude list is SEED_INVALID naming the field", () => {
    assert.throws(() => parseSeedSets(JSON.stringify({ suite: "bookworm", components: "contrib", sets: { a: { arch: "amd64", packages: ["gawk"] } } }), FILE), invalid('"components"'));
    assert.throws(() => parseSeedSets(JSON.stringify({ suite: "bookworm", components: ["main", "main"], sets: { a: { arch: "amd64", packages: ["gawk"] } } }), FILE), invalid('"components"'));
    assert.throws(() => parseSeedSets(sets({ a: { arch: "amd64", packages: ["gawk"], exclude: "debconf" } }), FILE), invalid('set "a"', '"exclude"'));
    assert.throws(() => parseSeedSets(sets({ a: { arch: "amd64", packages: ["gawk"], exclude: ["Debconf"] } }), FILE), invalid('"exclude"', '"Debconf"'));
    assert.throws(() => parseSeedSets(sets({ a: { arch: "amd64", packages: ["gawk=1:5.2.1-2"], exclude: ["gawk"] } }), FILE), invalid("gawk is both asked for and excluded"));
    assert.throws(() => parseSeedSets(sets({ a: { arch: "amd64", packages: ["gawk"], exclude: ["x", "x"] } }), FILE), invalid("x is listed twice"));
  });
});

describe("renderSeedLock", () => {
  test("a set's exclusions get a line of their own after its request; a set without them none", () => {
    const lock = lockOf({ img: [pkg("openssh-server", "1:9.2p1-2", "arm64")], plain: [pkg("gawk", "1:5.2.1-2", "arm64")] }, "arm64");
    lock.sets.img!.exclude = ["debconf", "adduser"];
    const text = renderSeedLock(lock);
    assert.match(text, /"request": \["openssh-server"\],\n {6}"exclude": \["adduser", "debconf"\],\n {6}"packages": \[/);
    assert.equal(text.match(/"exclude"/g)!.length, 1);
    assert.deepEqual(parseSeedLock(text, "lock.json").sets.img!.exclude, ["adduser", "debconf"]);
  });


  test("a fixed layout: sorted, one package per line, the same bytes whatever order the lock was built in", () => {
    const a = lockOf({ base: [pkg("zlib1g", "1:1.2.13"), pkg("gawk", "1:5.2.1-2"), pkg("debconf", "1.5.82", "all")] });
    const text = renderSeedLock(a);
    assert.equal(text, [
      "{",
      '  "lockVersion": 1,',
      '  "suite": "bookworm",',
      '  "sets": {',
      '    "base": {',
      '      "arch": "amd64",',
      '      "request": ["zlib1g"],',
      '      "packages": [',
      '        "debconf:all",',
      '        "gawk:amd64",',
      '        "zlib1g:amd64"',
      "      ]",
      "    }",
      "  },",
      '  "packages": {',
      `    "debconf:all": {"name": "debconf", "version": "1.5.82", "arch": "all", "size": 1000, "installedSize": 4096, "sha256": "${"7".repeat(64)}", "url": "http://deb.debian.org/debian/pool/main/d/debconf/debconf_1.5.82_all.deb"},`,
      `    "gawk:amd64": {"name": "gawk", "version": "1:5.2.1-2", "arch": "amd64", "size": 1000, "installedSize": 4096, "sha256": "${"4".repeat(64)}", "url": "http://deb.debian.org/debian/pool/main/g/gawk/gawk_1:5.2.1-2_amd64.deb"},`,
      `    "zlib1g:amd64": {"name": "zlib1g", "version": "1:1.2.13", "arch": "amd64", "size": 1000, "installedSize": 4096, "sha256": "${"6".repeat(64)}", "url": "http://deb.debian.org/debian/pool/main/z/zlib1g/zlib1g_1:1.2.13_amd64.deb"}`,
      "  }",
      "}",
      "",
    ].join("\n"));
    const b = lockOf({ base: [pkg("debconf", "1.5.82", "all"), pkg("gawk", "1:5.2.1-2"), pkg("zlib1g", "1:1.2.13")] });
    b.sets.base!.request = ["zlib1g"];
    assert.equal(renderSeedLock(b), text);
    assert.deepEqual(parseSeedLock(text, "seed.lock.json"), JSON.parse(text), "the text is the lock, as JSON");
  });

  test("a package without Installed-Size has no such field", () => {
    const text = renderSeedLock(lockOf({ cross: [pkg("libc6-arm64-cross", "2.36-8cross1", "all", { installedSize: undefined })] }));
    assert.ok(!text.includes("installedSize"), text);
    assert.equal(parseSeedLock(text, "x").packages["libc6-arm64-cross:all"]!.installedSize, undefined);
  });

  test("a lock that does not hold together is SEED_INVALID", () => {
    const l = lockOf({ base: [pkg("gawk", "1")] });
    l.sets.base!.packages.push("mawk:amd64");
    assert.throws(() => parseSeedLock(JSON.stringify(l), "seed.lock.json"), invalid("seed.lock.json", "mawk:amd64"));
    assert.throws(() => parseSeedLock(JSON.stringify({ ...l, lockVersion: 7 }), "seed.lock.json"), invalid("version 1"));
  });
});

describe("diffSeedLocks", () => {
  test("per set: added, removed and changed packages; new and dropped sets", () => {
    const old = lockOf({ base: [pkg("gawk", "5.2.1-2"), pkg("libc6", "2.36-9+deb12u13"), pkg("mawk", "1.3.4")], gone: [pkg("bc", "1.07")] });
    const next = lockOf({ base: [pkg("gawk", "5.2.1-2"), pkg("libc6", "2.36-9+deb12u14"), pkg("sed", "4.9")], fresh: [pkg("m4", "1.4.19")] });
    const changes = diffSeedLocks(old, next);
    assert.equal(renderSeedDiff(changes), [
      "  base: libc6:amd64 2.36-9+deb12u13 -> 2.36-9+deb12u14",
      "  base: - mawk:amd64 1.3.4",
      "  base: + sed:amd64 4.9",
      "  + set fresh (1 packages)",
      "  - set gone (1 packages)",
    ].join("\n"));
    assert.deepEqual(diffSeedLocks(next, next), []);
  });

  test("the same version with other bytes is shown", () => {
    const old = lockOf({ base: [pkg("gawk", "5.2.1-2")] });
    const next = lockOf({ base: [pkg("gawk", "5.2.1-2", "amd64", { sha256: "f".repeat(64) })] });
    assert.equal(renderSeedDiff(diffSeedLocks(old, next)), "  gawk:amd64 5.2.1-2: same version, different sha256");
  });
});

describe("seedSize", () => {
  test("a union counts each package once", () => {
    const l = lockOf({ a: [pkg("libc6", "1"), pkg("gawk", "1")], b: [pkg("libc6", "1"), pkg("sed", "1")] });
    assert.deepEqual(seedSize(l, ["a", "b"]), { packages: 3, size: 3000, installedSize: 3 * 4096 });
  });
});
