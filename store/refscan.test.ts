import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { hashPart } from "./digest.js";
import { scanHashParts, scanReferences } from "./refscan.js";

const CHUNK = 1 << 20;
const root = mkdtempSync(join(tmpdir(), "kiln-refscan-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(root, `t${n++}`);
  mkdirSync(d);
  return d;
};

/** Random filler that cannot contain a base32 hash by accident (bytes outside the alphabet). */
function filler(len: number): Buffer {
  const b = randomBytes(len);
  for (let i = 0; i < len; i++) b[i] = 0x80 | b[i]!;
  return b;
}

describe("scanReferences", () => {
  const [h1, h2, h3, h4] = ["one", "two", "three", "four"].map((s) => hashPart(s)) as [string, string, string, string];

  test("finds exactly the candidates mentioned in files of a tree", () => {
    const d = fresh();
    mkdirSync(join(d, "a", "b"), { recursive: true });
    writeFileSync(join(d, "top"), `prefix /kiln/store/${h1}-dep suffix`);
    writeFileSync(join(d, "a", "b", "deep"), Buffer.concat([filler(100), Buffer.from(h2), filler(100)]));
    writeFileSync(join(d, "a", "none"), "nothing here");
    assert.deepEqual([...scanReferences(d, [h1, h2, h3])].sort(), [h1, h2].sort());
  });

  test("no candidates: nothing found, and a single file as root works", () => {
    const d = fresh();
    writeFileSync(join(d, "f"), h1);
    assert.equal(scanReferences(join(d, "f"), []).size, 0);
    assert.deepEqual([...scanReferences(join(d, "f"), [h1, h2])], [h1]);
  });

  test("finds a hash in a symlink target (even a dangling one)", () => {
    const d = fresh();
    symlinkSync(`/kiln/store/${h3}-lib/lib/libfoo.so`, join(d, "link"));
    writeFileSync(join(d, "plain"), "x");
    assert.deepEqual([...scanReferences(d, [h1, h3])], [h3]);
  });

  for (const delta of [-31, -16, -1, 0, 1]) {
    test(`finds a hash split across the 1 MiB chunk boundary (starting at CHUNK${delta >= 0 ? "+" : ""}${delta})`, () => {
      const d = fresh();
      const buf = filler(3 * CHUNK);
      buf.write(h4, CHUNK + delta, "latin1");
      buf.write(h2, 2 * CHUNK - 7, "latin1"); // another one across the second boundary
      writeFileSync(join(d, "big"), buf);
      assert.deepEqual([...scanReferences(d, [h1, h2, h4])].sort(), [h2, h4].sort());
    });
  }

  test("many candidates (a seed tree's packages): one pass finds exactly those mentioned, across chunk boundaries, in text and symlinks", () => {
    const d = fresh();
    const many = Array.from({ length: 200 }, (_, i) => hashPart(`candidate ${i}`));
    const buf = filler(3 * CHUNK);
    buf.write(many[7]!, CHUNK - 5, "latin1");
    // base32 characters around a hash: the windows that overlap it are not candidates
    buf.write(`0123456789abcd${many[42]!}zyxw`, 2 * CHUNK + 100, "latin1");
    buf.write(many[43]!.slice(0, 31), 2 * CHUNK + 900, "latin1");
    writeFileSync(join(d, "big"), buf);
    writeFileSync(join(d, "text"), `/kiln/store/${many[199]!}-lib/lib/x.so\n/kiln/store/${many[0]!}-y`);
    symlinkSync(`/kiln/store/${many[100]!}-z/bin/z`, join(d, "link"));
    assert.deepEqual([...scanReferences(d, many)].sort(), [many[0]!, many[7]!, many[42]!, many[100]!, many[199]!].sort());
    // and a candidate that is not a hash part is still searched for
    writeFileSync(join(d, "odd"), "an-odd-candidate");
    assert.deepEqual([...scanReferences(d, [...many.slice(1, 6), "an-odd-candidate", "another-odd-one", "x-y", "x-z"])].sort(), ["an-odd-candidate"]);
  });

  test("a partial hash across the boundary is not a reference", () => {
    const d = fresh();
    const buf = filler(2 * CHUNK);
    buf.write(h1.slice(0, 31), CHUNK - 12, "latin1");
    writeFileSync(join(d, "big"), buf);
    assert.equal(scanReferences(d, [h1]).size, 0);
  });
});

describe("scanHashParts (one pass for many candidates)", () => {
  const [h1, h2, h3] = ["one", "two", "three"].map((s) => hashPart(s)) as [string, string, string];
  const known = new Set([h1, h2, h3]);

  test("finds exactly the known hash parts in files and symlink targets, as scanReferences does", () => {
    const d = fresh();
    mkdirSync(join(d, "a"));
    writeFileSync(join(d, "a", "f"), `prefix /kiln/store/${h1}-dep suffix`);
    symlinkSync(`/kiln/store/${h3}-lib/x`, join(d, "link"));
    writeFileSync(join(d, "none"), `nothing known: ${hashPart("unknown")} here`);
    assert.deepEqual([...scanHashParts(d, known)].sort(), [h1, h3].sort());
    assert.deepEqual([...scanHashParts(d, known)].sort(), [...scanReferences(d, known)].sort());
  });

  test("finds a hash inside a longer run of base32 characters, on either side", () => {
    const d = fresh();
    writeFileSync(join(d, "f"), `zz${"a".repeat(40)}${h2}${"b".repeat(7)}`);
    assert.deepEqual([...scanHashParts(d, known)], [h2]);
  });

  for (const delta of [-31, -1, 0, 1]) {
    test(`finds a hash split across the 1 MiB chunk boundary (starting at CHUNK${delta >= 0 ? "+" : ""}${delta})`, () => {
      const d = fresh();
      const buf = filler(2 * CHUNK + 100);
      buf.write(h3, CHUNK + delta, "latin1");
      writeFileSync(join(d, "big"), buf);
      assert.deepEqual([...scanHashParts(d, known)], [h3]);
    });
  }

  test("a partial hash is not a reference, and nothing known means nothing found", () => {
    const d = fresh();
    writeFileSync(join(d, "f"), `${h1.slice(0, 31)}-x ${h2.slice(1)}`);
    assert.equal(scanHashParts(d, known).size, 0);
    writeFileSync(join(d, "g"), h1);
    assert.equal(scanHashParts(d, new Set()).size, 0);
  });
});
