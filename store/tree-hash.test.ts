// kiln-hash (store/tree-hash.c): the same digest as store/archive.ts's own walk, on every kind of
// entry the store keeps; its cache of file digests spares reads only while a file's size, time,
// inode and exec bit are unchanged; anything it cannot hash leaves the tree to the walk, whose
// errors are kiln's.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import { hashTree, UnsupportedEntryError, type FileDigestCache } from "./archive.js";

const HELPER = fileURLToPath(new URL("../dist/kiln-hash", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "kiln-treehash-"));
after(() => rmSync(root, { recursive: true, force: true }));

let trees = 0;
/** A tree with every kind of entry and name order that matters, and `extra` small files more. */
function makeTree(extra = 0): string {
  const t = join(root, `t${trees++}`);
  mkdirSync(join(t, "sub", "deeper"), { recursive: true });
  mkdirSync(join(t, "empty"));
  writeFileSync(join(t, "a.txt"), "hello\n");
  writeFileSync(join(t, "empty-file"), "");
  writeFileSync(join(t, "run.sh"), "#!/bin/sh\necho hi\n");
  chmodSync(join(t, "run.sh"), 0o755);
  // bytewise order: "B" < "_" < "a" < "ä" (0xc3 0xa4), whatever the locale says
  for (const n of ["B", "_", "a", "ä", "with space", "new\nline"]) writeFileSync(join(t, "sub", n), `name ${n}\n`);
  writeFileSync(join(t, "sub", "deeper", "big.bin"), Buffer.alloc((1 << 20) * 2 + 12345, 7));
  symlinkSync("../a.txt", join(t, "sub", "link"));
  symlinkSync("does/not/exist", join(t, "dangling"));
  symlinkSync("x".repeat(300), join(t, "long-target"));
  if (extra) {
    for (let d = 0; d * 100 < extra; d++) {
      mkdirSync(join(t, "many", `d${d}`), { recursive: true });
      for (let f = d * 100; f < Math.min(extra, (d + 1) * 100); f++) writeFileSync(join(t, "many", `d${d}`, `f${f}`), `file ${f}\n`.repeat(f % 7));
    }
  }
  // written an hour ago: files written in the last two seconds are not cached (a test below)
  age(t, 3600);
  return t;
}

/** Set the times of every file under `t` to `seconds` ago. */
function age(t: string, seconds: number): void {
  const when = new Date(Date.now() - seconds * 1000);
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.isFile()) utimesSync(join(d, e.name), when, when);
    }
  };
  walk(t);
}

function native(tree: string, ...args: string[]): { digest: string; size: number; files: number; read: number } {
  const r = spawnSync(HELPER, [...args, tree], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const [digest, size, files, read] = r.stdout.trim().split(" ");
  return { digest: digest!, size: Number(size), files: Number(files), read: Number(read) };
}

const walked = (tree: string) => hashTree(tree, { native: false, workers: 0 });

describe("kiln-hash", { skip: existsSync(HELPER) ? false : "dist/kiln-hash is not built (no C compiler)" }, () => {
  test("gives the walk's digest, size and file count, on any number of threads", () => {
    const t = makeTree();
    const js = walked(t);
    for (const threads of ["1", "2", "5"]) {
      const n = native(t, "--threads", threads);
      assert.deepEqual({ digest: n.digest, size: n.size, files: n.files }, js);
      assert.equal(n.read, js.files);
    }
    // and the digest is of the contents: one byte changes it
    writeFileSync(join(t, "sub", "a"), "name b\n");
    assert.notEqual(native(t).digest, js.digest);
    assert.equal(native(t).digest, walked(t).digest);
  });

  test("its cache spares the reads of unchanged files, and only theirs", () => {
    const t = makeTree(50);
    const cache = join(root, "cache-1.bin");
    const first = native(t, "--cache", cache);
    assert.equal(first.read, first.files);
    assert.ok(existsSync(cache));
    const again = native(t, "--cache", cache);
    assert.deepEqual(again, { ...first, read: 0 });

    // new bytes, same size: the time tells
    const f = join(t, "many", "d0", "f10");
    writeFileSync(f, readFileSync(f).reverse());
    utimesSync(f, new Date(Date.now() - 100_000), new Date(Date.now() - 100_000));
    const edited = native(t, "--cache", cache);
    assert.equal(edited.read, 1);
    assert.equal(edited.digest, walked(t).digest);
    assert.notEqual(edited.digest, first.digest);

    // the exec bit alone
    chmodSync(join(t, "a.txt"), 0o755);
    const exec = native(t, "--cache", cache);
    assert.equal(exec.read, 1);
    assert.equal(exec.digest, walked(t).digest);

    // a file removed and one added: the cache is rewritten for the tree as it is
    rmSync(join(t, "many", "d0", "f11"));
    writeFileSync(join(t, "added"), "new\n");
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(join(t, "added"), minuteAgo, minuteAgo);
    const changed = native(t, "--cache", cache);
    assert.equal(changed.read, 1);
    assert.equal(changed.digest, walked(t).digest);
    assert.equal(native(t, "--cache", cache).read, 0);
  });

  test("a file written less than two seconds before the hash is read again next time: its digest is not cached", () => {
    const t = makeTree(20);
    const cache = join(root, "cache-racy.bin");
    // a time in the future is racy however slowly the test runs: the rewrite below keeps it, the
    // size and the inode, so the file's cache key stays as it was
    const now = new Date(Date.now() + 60_000);
    const f = join(t, "a.txt");
    writeFileSync(f, "hello\n");
    utimesSync(f, now, now);
    const first = native(t, "--cache", cache);
    writeFileSync(f, "HELLO\n");
    utimesSync(f, now, now);
    const second = native(t, "--cache", cache);
    assert.equal(second.read, 1, "only the racy file is read again");
    assert.notEqual(second.digest, first.digest);
    assert.equal(second.digest, walked(t).digest);
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(f, minuteAgo, minuteAgo);
    assert.equal(native(t, "--cache", cache).read, 1, "its time changed: read, and now cached");
    assert.equal(native(t, "--cache", cache).read, 0);
  });

  test("a cache used as it is gets its time renewed (gc removes those unused for a month)", () => {
    const t = makeTree(20);
    const cache = join(root, "cache-3.bin");
    native(t, "--cache", cache);
    const old = new Date(Date.now() - 40 * 24 * 3600_000);
    utimesSync(cache, old, old);
    assert.equal(native(t, "--cache", cache).read, 0);
    assert.ok(Date.now() - statSync(cache).mtimeMs < 60_000, "renewed");
    // without a cache of its own (another tree's file), nothing to renew: it is made anew
    utimesSync(cache, old, old);
    native(makeTree(5), "--cache", cache);
    assert.ok(Date.now() - statSync(cache).mtimeMs < 60_000);
  });

  test("a damaged cache, or another tree's, is ignored and made anew", () => {
    const t = makeTree(20);
    const cache = join(root, "cache-2.bin");
    const first = native(t, "--cache", cache);
    const bytes = readFileSync(cache);
    bytes[bytes.length - 40]! ^= 0xff; // a digest byte: the file's checksum no longer holds
    writeFileSync(cache, bytes);
    assert.deepEqual(native(t, "--cache", cache), first);
    writeFileSync(cache, bytes.subarray(0, 100)); // cut short
    assert.deepEqual(native(t, "--cache", cache), first);
    assert.equal(native(t, "--cache", cache).read, 0); // whole again

    const other = makeTree(20);
    const o = native(other, "--cache", cache);
    assert.equal(o.read, o.files);
    assert.equal(o.digest, walked(other).digest);
  });

  test("a name that is not UTF-8 is refused, as the walk refuses it", () => {
    const t = makeTree(5);
    writeFileSync(Buffer.concat([Buffer.from(join(t, "sub", "bad")), Buffer.from([0xc0, 0x80])]), "x"); // an overlong NUL
    const r = spawnSync(HELPER, [t], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /sub: a name that is not UTF-8/);
    assert.throws(() => walked(t), (e: unknown) => e instanceof UnsupportedEntryError && e.reason === "name");
  });

  test("an entry it cannot hash leaves the tree to the walk, whose error is kiln's", () => {
    const t = makeTree(1000);
    spawnSync("mkfifo", [join(t, "sub", "pipe")]);
    assert.ok(statSync(join(t, "sub", "pipe")).isFIFO());
    const r = spawnSync(HELPER, [t], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /sub\/pipe: unsupported file type/);
    assert.throws(() => hashTree(t), (e: unknown) => e instanceof UnsupportedEntryError && e.path === join(t, "sub", "pipe"));
  });

  test("hashTree sends large trees to it, with the cache's tree file, and keeps small ones", () => {
    const big = makeTree(1200);
    const small = makeTree(10);
    const files = new Map<string, string>();
    const cache: FileDigestCache = {
      get: () => undefined,
      set: () => {},
      treeFile: (r) => {
        const f = join(root, `tree-${files.size}.bin`);
        files.set(r, f);
        return f;
      },
    };
    assert.deepEqual(hashTree(big, { cache }), walked(big));
    assert.ok(existsSync(files.get(big)!), "the large tree's digests are in kiln-hash's cache");
    assert.deepEqual(hashTree(small, { cache }), walked(small));
    assert.equal(files.has(small), false, "a small tree is hashed without starting kiln-hash");
  });
});
