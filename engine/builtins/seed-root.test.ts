import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { hashTree } from "../../store/archive.js";
import { KilnError } from "../../store/errors.js";
import { seedRoot, seedRootRequestFromArgs, type SeedPackageTree } from "./seed-root.js";

const tmp = mkdtempSync(join(tmpdir(), "kiln-seed-root-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (label: string, base = tmp) => join(base, `${label}-${n++}`);

/** A package tree: path -> file content, or { link } for a symlink. */
type Spec = Record<string, string | { link: string } | { exec: string }>;

function pkg(name: string, spec: Spec, base = tmp): SeedPackageTree {
  const root = fresh(name, base);
  mkdirSync(root, { recursive: true });
  for (const [p, v] of Object.entries(spec)) {
    const host = join(root, p);
    mkdirSync(dirname(host), { recursive: true });
    if (typeof v === "string") writeFileSync(host, v);
    else if ("link" in v) symlinkSync(v.link, host);
    else writeFileSync(host, v.exec, { mode: 0o755 });
  }
  return { name, path: root };
}

function error(code: string, ...mention: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof KilnError, `expected a KilnError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const m of mention) assert.ok(e.message.includes(m), `message should mention ${m}: ${e.message}`);
    return true;
  };
}

const gawk = () => pkg("gawk", { "usr/bin/gawk": { exec: "gawk" }, "usr/share/doc/gawk/copyright": "GPL", bin: { link: "usr/bin" } });
const libc = () => pkg("libc6", { "usr/lib/x86_64-linux-gnu/libc.so.6": "libc", "usr/lib64/ld-linux-x86-64.so.2": { link: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" }, lib: { link: "usr/lib" }, lib64: { link: "usr/lib64" }, "usr/share/doc/libc6/copyright": "LGPL" });

describe("seedRoot", () => {
  test("files are hard links to the package trees, symlinks are kept, the shared links are one entry", () => {
    const a = gawk();
    const b = libc();
    const out = fresh("out");
    const r = seedRoot({ packages: [a, b], out });
    assert.equal(statSync(join(out, "usr/bin/gawk")).ino, statSync(join(a.path, "usr/bin/gawk")).ino);
    assert.equal(statSync(join(out, "usr/lib/x86_64-linux-gnu/libc.so.6")).ino, statSync(join(b.path, "usr/lib/x86_64-linux-gnu/libc.so.6")).ino);
    assert.equal(readlinkSync(join(out, "usr/lib64/ld-linux-x86-64.so.2")), "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    assert.equal(readlinkSync(join(out, "bin")), "usr/bin");
    assert.equal(statSync(join(out, "usr/bin/gawk")).mode & 0o100, 0o100);
    assert.equal(r.files, 4);
    assert.equal(r.linked, 4);
    assert.equal(r.copied, 0);
  });

  test("the tree does not depend on the order the packages are given in", () => {
    const ps = [gawk(), libc(), pkg("zlib", { "usr/lib/x86_64-linux-gnu/libz.so.1": "z", lib: { link: "usr/lib" } })];
    const x = fresh("out");
    const y = fresh("out");
    seedRoot({ packages: ps, out: x, links: { "usr/bin/awk": "gawk" } });
    seedRoot({ packages: [...ps].reverse(), out: y, links: { "usr/bin/awk": "gawk" } });
    assert.equal(hashTree(x).digest, hashTree(y).digest);
  });

  test("a path two packages ship with the same bytes is fine; with other bytes it is a conflict naming both", () => {
    const same = seedRoot({ packages: [gawk(), pkg("mawk", { "usr/share/doc/gawk/copyright": "GPL" })], out: fresh("out") });
    assert.equal(same.shared, 5, "usr, usr/share, usr/share/doc, usr/share/doc/gawk and the identical copyright file");
    const out = fresh("out");
    assert.throws(() => seedRoot({ packages: [gawk(), pkg("mawk", { "usr/bin/gawk": { exec: "GAWK" } })], out }), error("SEED_CONFLICT", "usr/bin/gawk", "gawk, mawk"));
    assert.ok(!existsSync(out), "nothing is written when there is a conflict");
    // the executable bit is part of a file's identity, as in the store
    assert.throws(() => seedRoot({ packages: [gawk(), pkg("other", { "usr/bin/gawk": "gawk" })], out: fresh("out") }), error("SEED_CONFLICT", "usr/bin/gawk"));
    // a symlink against a directory
    assert.throws(() => seedRoot({ packages: [gawk(), pkg("odd", { "usr/share/doc/gawk": { link: "../gawk-doc" } })], out: fresh("out") }), error("SEED_CONFLICT", "usr/share/doc/gawk", "gawk, odd"));
  });

  test("prefer decides a conflict, visibly; a prefer that decides nothing or names a non-shipper is refused", () => {
    const out = fresh("out");
    const mawk = pkg("mawk", { "usr/bin/gawk": { exec: "imposter" } });
    const r = seedRoot({ packages: [gawk(), mawk], out, prefer: { "usr/bin/gawk": "mawk" } });
    assert.equal(readFileSync(join(out, "usr/bin/gawk"), "utf8"), "imposter");
    assert.deepEqual(r.decided, { "usr/bin/gawk": { winner: "mawk", losers: ["gawk"] } });
    const r2 = seedRoot({ packages: [gawk(), mawk], out: fresh("out"), prefer: { "usr/bin/gawk": "gawk" } });
    assert.deepEqual(r2.decided, { "usr/bin/gawk": { winner: "gawk", losers: ["mawk"] } });
    assert.throws(() => seedRoot({ packages: [gawk(), libc()], out: fresh("out"), prefer: { "usr/bin/gawk": "gawk" } }), error("SEED_INVALID", "usr/bin/gawk", "decides nothing"));
    assert.throws(() => seedRoot({ packages: [gawk(), mawk, libc()], out: fresh("out"), prefer: { "usr/bin/gawk": "libc6" } }), error("SEED_INVALID", "libc6 does not ship usr/bin/gawk"));
    assert.throws(() => seedRoot({ packages: [gawk(), mawk], out: fresh("out"), prefer: { "usr/bin/gawk": "busybox" } }), error("SEED_INVALID", "busybox is not one of the packages"));
  });

  test("links: made where no package ships the path, checked to point at something in the merged tree", () => {
    const cpp = pkg("cpp", { "usr/bin/cpp-12": { exec: "cpp" }, "usr/bin/cpp": { link: "cpp-12" } });
    const out = fresh("out");
    const r = seedRoot({ packages: [gawk(), cpp], out, links: { "usr/bin/awk": "gawk", "usr/lib/cpp": "/usr/bin/cpp", "usr/libexec/x/awk": "../../bin/gawk" } });
    assert.equal(readlinkSync(join(out, "usr/bin/awk")), "gawk");
    assert.equal(readFileSync(join(out, "usr/bin/awk"), "utf8"), "gawk");
    assert.equal(readlinkSync(join(out, "usr/lib/cpp")), "/usr/bin/cpp");
    assert.equal(readFileSync(join(out, "usr/libexec/x/awk"), "utf8"), "gawk", "directories a link needs are made");
    assert.equal(r.symlinks, 5);
    assert.throws(() => seedRoot({ packages: [gawk()], out: fresh("out"), links: { "usr/bin/gawk": "mawk" } }), error("SEED_INVALID", "usr/bin/gawk", "would replace", "gawk ships"));
    assert.throws(() => seedRoot({ packages: [gawk()], out: fresh("out"), links: { "usr/bin/awk": "mawk" } }), error("SEED_INVALID", "usr/bin/awk -> mawk", "points to nothing"));
    // an absolute target is looked up in the tree, never on the host (the host has /usr/bin/env)
    assert.throws(() => seedRoot({ packages: [gawk()], out: fresh("out"), links: { "usr/bin/e": "/usr/bin/env" } }), error("SEED_INVALID", "points to nothing"));
    assert.throws(() => seedRoot({ packages: [gawk()], out: fresh("out"), links: { "bin/awk": "gawk" } }), error("SEED_INVALID", "bin/awk"));
    assert.throws(() => seedRoot({ packages: [gawk()], out: fresh("out"), links: { "../awk": "gawk" } }), error("SEED_INVALID", "../awk"));
  });

  test("files are copied where they cannot be hard-linked (another file system)", { skip: !existsSync("/dev/shm") || statSync("/dev/shm").dev === statSync(tmpdir()).dev ? "no second file system at /dev/shm" : false }, () => {
    const shm = mkdtempSync(join("/dev/shm", "kiln-seed-root-"));
    try {
      const a = pkg("gawk", { "usr/bin/gawk": { exec: "gawk" } }, shm);
      const out = fresh("out");
      const r = seedRoot({ packages: [a], out });
      assert.deepEqual([r.linked, r.copied], [0, 1]);
      assert.equal(readFileSync(join(out, "usr/bin/gawk"), "utf8"), "gawk");
      assert.equal(statSync(join(out, "usr/bin/gawk")).mode & 0o100, 0o100, "the copy keeps the executable bit");
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
  });

  test("a package given twice is refused", () => {
    const a = gawk();
    assert.throws(() => seedRoot({ packages: [a, a], out: fresh("out") }), error("SEED_INVALID", "gawk is given twice"));
  });
});

describe("seedRootRequestFromArgs", () => {
  test("reads the package/link/prefer triples and maps store paths to the host", () => {
    const req = seedRootRequestFromArgs(
      ["package", "gawk", "/kiln/store/aaa-gawk", "link", "usr/bin/awk", "gawk", "prefer", "usr/bin/x", "gawk"],
      "/out",
      (p) => p.replace("/kiln/store", "/home/me/store"),
    );
    assert.deepEqual(req, { packages: [{ name: "gawk", path: "/home/me/store/aaa-gawk" }], links: { "usr/bin/awk": "gawk" }, prefer: { "usr/bin/x": "gawk" }, out: "/out" });
    assert.throws(() => seedRootRequestFromArgs(["package", "gawk"], "/out", (p) => p), error("SEED_INVALID", "triples"));
    assert.throws(() => seedRootRequestFromArgs(["pkg", "gawk", "/x"], "/out", (p) => p), error("SEED_INVALID", '"pkg"'));
  });
});
