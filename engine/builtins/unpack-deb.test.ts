import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, describe, test } from "node:test";
import { hashTree } from "../../store/archive.js";
import { KilnError } from "../../store/errors.js";
import { writeDeb, type Compression, type DebEntry } from "../test-helpers/deb.js";
import { unpackDeb } from "./unpack-deb.js";

const tmp = mkdtempSync(join(tmpdir(), "kiln-unpack-deb-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (label: string) => join(tmp, `${label}-${n++}`);

/** A package shaped like Debian's bookworm ones: files in /bin and /lib as well as /usr. */
const TYPICAL: DebEntry[] = [
  { name: "./", type: "directory" },
  { name: "./bin/", type: "directory" },
  { name: "./bin/tool", data: "#!/bin/sh\necho tool\n", mode: 0o755 },
  { name: "./bin/tool-alias", type: "link", linkname: "./bin/tool" },
  { name: "./bin/sh", type: "symlink", linkname: "tool" },
  { name: "./bin/up", type: "symlink", linkname: "../usr/bin/helper" },
  { name: "./lib64/", type: "directory" },
  { name: "./lib64/ld.so", type: "symlink", linkname: "/lib/x86_64-linux-gnu/ld.so" },
  { name: "./usr/", type: "directory" },
  { name: "./usr/bin/", type: "directory" },
  { name: "./usr/bin/helper", data: "helper\n", mode: 0o4755 },
  { name: "./usr/bin/passwd", data: "setgid\n", mode: 0o2755 },
  { name: "./usr/lib/x86_64-linux-gnu/libz.so", type: "symlink", linkname: "../../../lib/x86_64-linux-gnu/libz.so.1" },
  { name: "./lib/x86_64-linux-gnu/libz.so.1", data: "ELF", mode: 0o644 },
  { name: "./dev/null", type: "character-device" },
  { name: "./run/fifo", type: "fifo" },
  { name: "./usr/share/doc/test/copyright", data: "free\n" },
];

async function unpackOf(entries: DebEntry[], compression: Compression = "xz") {
  const deb = fresh("deb") + ".deb";
  await writeDeb(deb, entries, compression);
  const out = fresh("out");
  return { deb, out, result: await unpackDeb(deb, out) };
}

function invalid(...mention: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof KilnError, `expected a KilnError, got ${String(e)}`);
    assert.equal(e.code, "DEB_INVALID", e.message);
    for (const m of mention) assert.ok(e.message.includes(m), `message should mention ${m}: ${e.message}`);
    return true;
  };
}

/** Every path under root (relative, sorted). */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      out.push(relative(root, p));
      if (lstatSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

describe("unpackDeb", () => {
  test("unpacks the data part merged-/usr: bin and lib move under usr/, with compatibility links", async () => {
    const { out, result } = await unpackOf(TYPICAL);
    assert.equal(readFileSync(join(out, "usr/bin/tool"), "utf8"), "#!/bin/sh\necho tool\n");
    assert.equal(statSync(join(out, "usr/bin/tool")).mode & 0o777, 0o755);
    assert.equal(readFileSync(join(out, "usr/lib/x86_64-linux-gnu/libz.so.1"), "utf8"), "ELF");
    assert.ok(!existsSync(join(out, "dev")) || readdirSync(join(out, "dev")).length === 0, "no device node");
    for (const d of ["bin", "lib", "lib64"]) assert.equal(readlinkSync(join(out, d)), `usr/${d}`, `${d} is the merged-/usr link`);
    assert.ok(!existsSync(join(out, "sbin")), "only directories the package had get a link");
    assert.deepEqual(result.skipped, ["dev/null", "run/fifo"]);
    assert.equal(result.hardlinks, 1);
  });

  test("symlinks keep their targets (absolute ones too), unless the move to usr/ would change what they mean", async () => {
    const { out, result } = await unpackOf(TYPICAL);
    assert.equal(readlinkSync(join(out, "usr/bin/sh")), "tool");
    assert.equal(readlinkSync(join(out, "usr/lib64/ld.so")), "/lib/x86_64-linux-gnu/ld.so");
    assert.equal(readlinkSync(join(out, "usr/lib/x86_64-linux-gnu/libz.so")), "../../../lib/x86_64-linux-gnu/libz.so.1");
    assert.equal(readFileSync(join(out, "usr/lib/x86_64-linux-gnu/libz.so"), "utf8"), "ELF", "resolves inside the tree through the lib link");
    // /bin/up -> ../usr/bin/helper would be usr/usr/bin/helper once under usr/bin
    assert.equal(readlinkSync(join(out, "usr/bin/up")), "helper");
    assert.deepEqual(result.rewritten, { "usr/bin/up": "helper" });
  });

  test("hard links are links to the same file; setuid and setgid bits are dropped", async () => {
    const { out } = await unpackOf(TYPICAL);
    assert.equal(statSync(join(out, "usr/bin/tool-alias")).ino, statSync(join(out, "usr/bin/tool")).ino);
    assert.equal(statSync(join(out, "usr/bin/helper")).mode & 0o7777, 0o755);
    assert.equal(statSync(join(out, "usr/bin/passwd")).mode & 0o7777, 0o755);
  });

  test("xz, gzip and uncompressed data give the same tree, every time", async () => {
    const digests = [];
    for (const c of ["xz", "gz", "none", "xz"] as const) digests.push(hashTree((await unpackOf(TYPICAL, c)).out).digest);
    assert.equal(new Set(digests).size, 1, digests.join(" "));
  });

  test("the same files as dpkg-deb -x, apart from the merged-/usr layout", { skip: spawnSync("dpkg-deb", ["--version"]).status !== 0 && "dpkg-deb is not installed" }, async () => {
    const { deb, out } = await unpackOf(TYPICAL.filter((e) => e.type !== "character-device" && e.type !== "fifo"));
    const ref = fresh("dpkg");
    const r = spawnSync("dpkg-deb", ["-x", deb, ref], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const merged = (p: string) => (/^(bin|sbin|lib|lib64)(\/|$)/.test(p) ? `usr/${p}` : p);
    const theirs = [...new Set(listing(ref).map(merged))].filter((p) => p !== "usr/bin/up").sort();
    const ours = listing(out).filter((p) => !["bin", "lib", "lib64", "usr/bin/up"].includes(p)).sort();
    assert.deepEqual(ours, theirs);
    for (const p of ours) {
      const a = lstatSync(join(out, p));
      const src = listing(ref).find((q) => merged(q) === p)!;
      const b = lstatSync(join(ref, src));
      assert.equal(a.isSymbolicLink(), b.isSymbolicLink(), p);
      if (a.isSymbolicLink()) assert.equal(readlinkSync(join(out, p)), readlinkSync(join(ref, src)), p);
      else if (a.isFile()) {
        assert.deepEqual(readFileSync(join(out, p)), readFileSync(join(ref, src)), p);
        assert.equal(a.mode & 0o777, b.mode & 0o777, p);
      }
    }
  });

  test("nothing is written outside the output: absolute paths, '..', escaping links and paths through links are refused", async () => {
    await assert.rejects(unpackOf([{ name: "/etc/passwd", data: "x" }]), invalid("/etc/passwd", "absolute"));
    await assert.rejects(unpackOf([{ name: "./usr/../../escape", data: "x" }]), invalid("..", "escape"));
    await assert.rejects(unpackOf([{ name: "./usr/bin/out", type: "symlink", linkname: "../../../etc/shadow" }]), invalid("usr/bin/out", "outside"));
    const through = [
      { name: "./usr/lib/dir", type: "symlink" as const, linkname: tmp },
      { name: "./usr/lib/dir/planted", data: "x" },
    ];
    await assert.rejects(unpackOf(through), invalid("usr/lib/dir/planted", "symlink"));
    assert.ok(!existsSync(join(tmp, "planted")), "nothing was written through the link");
    await assert.rejects(unpackOf([{ name: "./usr/bin/x", type: "link", linkname: "../../etc/passwd" }]), invalid(".."));
    await assert.rejects(unpackOf([{ name: "./usr/bin/x", type: "link", linkname: "./usr/bin/later" }, { name: "./usr/bin/later", data: "x" }]), invalid("not a file unpacked before"));
  });

  test("a path shipped both in /bin and /usr/bin is refused, naming both entries", async () => {
    await assert.rejects(unpackOf([{ name: "./bin/ls", data: "a" }, { name: "./usr/bin/ls", data: "b" }]), invalid("./bin/ls", "./usr/bin/ls"));
  });

  test("what is not a version 2 .deb with xz, gzip or no compression is DEB_INVALID", async () => {
    await assert.rejects(unpackOf(TYPICAL, "zst"), invalid("data.tar.zst", "unsupported compression"));
    const junk = fresh("junk");
    await writeDeb(junk, TYPICAL);
    const bytes = readFileSync(junk);
    writeFileSync(junk, bytes.subarray(0, bytes.length - 100));
    await assert.rejects(unpackDeb(junk, fresh("out")), invalid(junk));
    writeFileSync(junk, "not an archive at all");
    await assert.rejects(unpackDeb(junk, fresh("out")), invalid("not a Debian package"));
  });
});
