import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, lutimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { hashTree, type FileDigestCache } from "./archive.js";
import { hashPart } from "./digest.js";

const CHUNK = 1 << 20;
const root = mkdtempSync(join(tmpdir(), "kiln-archive-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(root, `t${n++}`);
  mkdirSync(d);
  return d;
};

/** A small tree: files, an executable, a nested dir, a symlink. */
function makeTree(dir: string, opts: { reverse?: boolean } = {}): string {
  const steps: Array<() => void> = [
    () => writeFileSync(join(dir, "a.txt"), "alpha\n"),
    () => {
      mkdirSync(join(dir, "sub"), { recursive: true });
      writeFileSync(join(dir, "sub", "b.bin"), Buffer.from([0, 1, 2, 255]));
    },
    () => {
      writeFileSync(join(dir, "run.sh"), "#!/bin/sh\necho hi\n");
      chmodSync(join(dir, "run.sh"), 0o755);
    },
    () => symlinkSync("sub/b.bin", join(dir, "link")),
    () => mkdirSync(join(dir, "empty"), { recursive: true }),
  ];
  // creation order must not matter (entries are sorted)
  for (const s of opts.reverse ? [...steps].reverse() : steps) s();
  return dir;
}

describe("hashTree", () => {
  test("same content in two different directories gives the same digest, sizes and file count", () => {
    const a = hashTree(makeTree(fresh()));
    const b = hashTree(makeTree(fresh(), { reverse: true }));
    assert.equal(a.digest, b.digest);
    assert.match(a.digest, /^[0-9a-f]{64}$/);
    assert.equal(a.files, 3);
    assert.equal(a.size, "alpha\n".length + 4 + "#!/bin/sh\necho hi\n".length + "sub/b.bin".length);
    assert.deepEqual(a, b);
  });

  test("content, names, the exec bit and symlink targets each change the digest", () => {
    const base = hashTree(makeTree(fresh())).digest;

    const content = makeTree(fresh());
    writeFileSync(join(content, "a.txt"), "alphA\n");
    assert.notEqual(hashTree(content).digest, base, "file content");

    const exec = makeTree(fresh());
    chmodSync(join(exec, "a.txt"), 0o755);
    assert.notEqual(hashTree(exec).digest, base, "exec bit");

    const target = makeTree(fresh());
    rmSync(join(target, "link"));
    symlinkSync("a.txt", join(target, "link"));
    assert.notEqual(hashTree(target).digest, base, "symlink target");

    const renamed = makeTree(fresh());
    rmSync(join(renamed, "empty"), { recursive: true });
    mkdirSync(join(renamed, "empty2"));
    assert.notEqual(hashTree(renamed).digest, base, "entry name");

    const extra = makeTree(fresh());
    writeFileSync(join(extra, "sub", "c"), "");
    assert.notEqual(hashTree(extra).digest, base, "an extra empty file");
  });

  test("a file and a symlink with the same bytes as target are different", () => {
    const f = fresh();
    writeFileSync(join(f, "x"), "a.txt");
    const l = fresh();
    symlinkSync("a.txt", join(l, "x"));
    assert.notEqual(hashTree(join(f, "x")).digest, hashTree(join(l, "x")).digest);
  });

  test("mtimes, owners and non-exec mode bits do not change the digest", () => {
    const base = hashTree(makeTree(fresh())).digest;
    const d = makeTree(fresh());
    utimesSync(join(d, "a.txt"), 12345, 67890);
    utimesSync(join(d, "sub"), 1, 1);
    lutimesSync(join(d, "link"), 5, 5);
    chmodSync(join(d, "a.txt"), 0o600); // still not executable
    chmodSync(join(d, "run.sh"), 0o700); // still executable
    if (process.getuid?.() === 0) {
      chownSync(join(d, "a.txt"), 1234, 5678);
      chownSync(join(d, "sub"), 4321, 8765);
    }
    assert.equal(hashTree(d).digest, base);
  });

  test("selfHash: a file mentioning its own path with hash A (selfHash A) equals the one with hash B (selfHash B)", () => {
    const A = hashPart("build A");
    const B = hashPart("build B");
    const mk = (h: string) => {
      const d = fresh();
      writeFileSync(join(d, "self"), `/kiln/store/${h}-hello\nand again ${h}\n`);
      symlinkSync(`/kiln/store/${h}-hello/self`, join(d, "selflink"));
      return d;
    };
    const a = mk(A);
    const b = mk(B);
    assert.notEqual(hashTree(a).digest, hashTree(b).digest, "without normalisation they differ");
    const refsA: Array<[string, number]> = [];
    const da = hashTree(a, { selfHash: A, onSelfRef: (f, off) => refsA.push([f, off]) }).digest;
    assert.equal(da, hashTree(b, { selfHash: B }).digest);
    // and it is what the content hashes to with the hash zeroed
    const z = fresh();
    writeFileSync(join(z, "self"), `/kiln/store/${"0".repeat(32)}-hello\nand again ${"0".repeat(32)}\n`);
    symlinkSync(`/kiln/store/${"0".repeat(32)}-hello/self`, join(z, "selflink"));
    assert.equal(da, hashTree(z).digest);
    const prefix = "/kiln/store/".length;
    assert.deepEqual(refsA.sort(), [
      [join(a, "self"), prefix],
      [join(a, "self"), `/kiln/store/${A}-hello\nand again `.length],
      [join(a, "selflink"), -1],
    ].sort());
    // a different selfHash does not normalise this one
    assert.notEqual(hashTree(a, { selfHash: B }).digest, da);
  });

  for (const off of [CHUNK - 32, CHUNK - 31, CHUNK - 16, CHUNK - 1, CHUNK, 2 * CHUNK - 5]) {
    test(`selfHash spanning the 1 MiB read boundary (at offset ${off - CHUNK >= 0 ? "+" : ""}${off - CHUNK})`, () => {
      const A = hashPart(`a${off}`);
      const B = hashPart(`b${off}`);
      const filler = randomBytes(2 * CHUNK + 100);
      const mk = (h: string) => {
        const buf = Buffer.from(filler);
        buf.write(h, off, "latin1");
        buf.write(h, 10, "latin1"); // and one early occurrence
        const d = fresh();
        writeFileSync(join(d, "big"), buf);
        return join(d, "big");
      };
      const fa = mk(A);
      const offsets: number[] = [];
      const da = hashTree(fa, { selfHash: A, onSelfRef: (_f, o) => offsets.push(o) }).digest;
      assert.deepEqual(offsets, [10, off]);
      assert.equal(da, hashTree(mk(B), { selfHash: B }).digest);
      assert.equal(da, hashTree(mk("0".repeat(32))).digest, "equals the digest of the zeroed content");
    });
  }

  test("selfHash does not treat a partial match at the chunk boundary as a reference", () => {
    const A = hashPart("partial");
    const buf = randomBytes(CHUNK + 64);
    buf.write(A.slice(0, 20), CHUNK - 10, "latin1"); // only 20 of 32 chars
    const d = fresh();
    writeFileSync(join(d, "f"), buf);
    const offsets: number[] = [];
    const da = hashTree(join(d, "f"), { selfHash: A, onSelfRef: (_f, o) => offsets.push(o) }).digest;
    assert.deepEqual(offsets, []);
    assert.equal(da, hashTree(join(d, "f")).digest);
  });

  test("a digest cache is used for unchanged files and invalidated when a file changes", () => {
    const d = makeTree(fresh());
    // written an hour ago: a file written just now is not cached (the next test)
    const hourAgo = new Date(Date.now() - 3600_000);
    for (const f of ["a.txt", "sub/b.bin", "run.sh"]) utimesSync(join(d, f), hourAgo, hourAgo);
    const map = new Map<string, string>();
    let hits = 0;
    const cache: FileDigestCache = {
      get: (k) => {
        const v = map.get(k);
        if (v) hits++;
        return v;
      },
      set: (k, v) => void map.set(k, v),
    };
    const first = hashTree(d, { cache }).digest;
    assert.equal(first, hashTree(d).digest);
    assert.equal(map.size, 3);
    assert.equal(hashTree(d, { cache }).digest, first);
    assert.equal(hits, 3);
    writeFileSync(join(d, "a.txt"), "changed, and longer\n");
    assert.notEqual(hashTree(d, { cache }).digest, first);
  });

  test("a file written less than two seconds before the hash is hashed but not cached (it may change again within its clock's tick)", () => {
    const d = fresh();
    // a time in the future is racy however slowly the test runs: a rewrite below keeps it, and
    // so the whole cache key
    const now = new Date(Date.now() + 60_000);
    writeFileSync(join(d, "new.txt"), "just written\n");
    utimesSync(join(d, "new.txt"), now, now);
    writeFileSync(join(d, "old.txt"), "written long ago\n");
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(join(d, "old.txt"), minuteAgo, minuteAgo);
    const map = new Map<string, string>();
    const cache: FileDigestCache = { get: (k) => map.get(k), set: (k, v) => void map.set(k, v) };
    const first = hashTree(d, { cache }).digest;
    assert.deepEqual([...map.keys()].map((k) => k.split("\0")[0]), [join(d, "old.txt")]);
    // rewritten at the same size within the same second: with its digest cached, the old one would stand
    writeFileSync(join(d, "new.txt"), "just WRITTEN\n");
    utimesSync(join(d, "new.txt"), now, now);
    const second = hashTree(d, { cache }).digest;
    assert.notEqual(second, first);
    assert.equal(second, hashTree(d).digest);
  });
});
