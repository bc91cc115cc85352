import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { blake3 } from "@napi-rs/blake-hash";
import { BASE32_CHARS, blake3Hex, Blake3Hasher, feedFile, HASH_PART_LEN, hashPart, sha256File, textHashWay, textHexWays, toBase32 } from "./digest.js";

const ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";

/** Independent decoder of Nix base32 (the inverse of toBase32), for the round-trip property. */
function fromBase32(s: string, byteLen: number): Uint8Array {
  // the encoding is the little-endian integer of the bytes, written most significant digit first
  let n = 0n;
  for (const c of s) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) throw new Error(`bad base32 char ${c}`);
    n = n * 32n + BigInt(v);
  }
  const out = new Uint8Array(byteLen);
  for (let i = 0; i < byteLen; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  if (n !== 0n) throw new Error("base32 value too large for the byte length");
  return out;
}

const hex = (h: string) => Buffer.from(h, "hex");

describe("toBase32 (Nix base32)", () => {
  // Known vectors: what Nix itself prints (`nix-hash --type sha256 --to-base32 <hex>`, and the
  // 20-byte one as used in store path hash parts), as pinned in Nix's and nix-compat's test suites.
  const vectors: Array<[string, string]> = [
    ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"], // sha256("")
    ["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"], // sha256("abc")
    ["0839703786356bca59b0f4a32987eb2e6de43ae8", "x0xf8v9fxf3jk8zln1cwlsrmhqvp0f88"], // 20 bytes, a store hash part
    [
      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
      "2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7xac99vxfc4ii84hawjbk876blyk1jfhkbbyx",
    ], // sha512("abc")
  ];
  for (const [h, b32] of vectors) {
    test(`encodes ${h.slice(0, 16)}… (${h.length / 2} bytes) as Nix does`, () => {
      assert.equal(toBase32(hex(h)), b32);
    });
  }

  test("the vectors also agree with sha256 computed here", () => {
    assert.equal(toBase32(createHash("sha256").update("abc").digest()), "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s");
  });

  test("length is ceil(8n/5) and only the Nix alphabet (no e, o, u, t) is used", () => {
    for (const n of [1, 2, 5, 16, 20, 32, 33, 64]) {
      const s = toBase32(randomBytes(n));
      assert.equal(s.length, Math.ceil((n * 8) / 5), `length for ${n} bytes`);
      for (const c of s) assert.ok(BASE32_CHARS.has(c) && !"eout".includes(c), `char ${c}`);
    }
    assert.equal(BASE32_CHARS.size, 32);
  });

  test("round-trips through an independent decoder for random inputs", () => {
    for (let i = 0; i < 200; i++) {
      const n = 1 + (i % 40);
      const bytes = randomBytes(n);
      assert.deepEqual(Buffer.from(fromBase32(toBase32(bytes), n)), bytes);
    }
  });

  test("a prefix (size) encodes as the prefix's own bytes; encodings longer than the reused buffer too", () => {
    for (let i = 0; i < 50; i++) {
      const bytes = randomBytes(32);
      assert.equal(toBase32(bytes, 20), toBase32(bytes.subarray(0, 20)));
    }
    const head = randomBytes(5);
    const headFirst = toBase32(head);
    // an encoding made after the others (several longer than the reused buffer, one of 64 bytes
    // that fills most of it) is what it was before them: no other encoding's tail is left in it
    for (const n of [64, 80, 81, 100, 200]) {
      const bytes = randomBytes(n);
      const s = toBase32(bytes);
      assert.equal(s.length, Math.ceil((n * 8) / 5));
      assert.deepEqual(Buffer.from(fromBase32(s, n)), bytes);
      assert.equal(toBase32(head), headFirst);
    }
    assert.deepEqual(Buffer.from(fromBase32(headFirst, 5)), head);
    assert.throws(() => toBase32(randomBytes(4), 5), RangeError);
  });

  test("distinct inputs give distinct encodings (single-bit flips)", () => {
    const base = randomBytes(20);
    const seen = new Set([toBase32(base)]);
    for (let bit = 0; bit < 160; bit++) {
      const b = Buffer.from(base);
      b[bit >> 3] = b[bit >> 3]! ^ (1 << (bit & 7));
      seen.add(toBase32(b));
    }
    assert.equal(seen.size, 161);
  });
});

describe("hashPart", () => {
  test("is a 32-character base32 truncation of BLAKE3 (160 bits)", () => {
    const p = hashPart("some text");
    assert.equal(p.length, HASH_PART_LEN);
    assert.equal(p, toBase32(blake3(Buffer.from("some text")).subarray(0, 20)));
    assert.notEqual(hashPart("some text"), hashPart("some text."));
  });

  // around the addon's first buffer (64 KiB): a character cut at its end, then one that grows it
  const texts = ["", "a", "héllo wörld ✓ 𝄞", "nul\0inside", "lone \ud800 surrogate", "x".repeat(65_531) + "é", "x".repeat(65_532) + "𝄞", "x".repeat(65_535),
    "x".repeat(300_000), "é".repeat(100_000), randomBytes(5000).toString("latin1"), "short after long"];

  test("text is hashed as its UTF-8 bytes, whatever its characters and length (hashPart and blake3Hex alike)", () => {
    for (const t of texts) {
      const bytes = blake3(Buffer.from(t, "utf8"));
      assert.equal(blake3Hex(t), bytes.toString("hex"), `blake3Hex of ${JSON.stringify(t.slice(0, 20))}`);
      assert.equal(hashPart(t), toBase32(bytes.subarray(0, 20)), `hashPart of ${JSON.stringify(t.slice(0, 20))}`);
    }
    // one after another: nothing of the text before stays in the digest
    assert.equal(hashPart("b"), toBase32(blake3(Buffer.from("b")).subarray(0, 20)));
  });

  test("the text hasher addon is built and used, and gives what the binding gives", () => {
    const built = existsSync(fileURLToPath(new URL("../dist/kiln-text-hash.node", import.meta.url)));
    const ways = textHexWays();
    assert.equal(ways.addon !== undefined, built, "the addon loads where npm run build made it");
    assert.equal(textHashWay(), built ? "addon" : "binding", "and is the way text is hashed");
    if (!ways.addon) return;
    for (const t of texts) assert.equal(ways.addon(t), ways.binding(t), `addon vs binding for ${JSON.stringify(t.slice(0, 20))}`);
    assert.equal(blake3Hex("a"), ways.addon("a"));
    assert.throws(() => (ways.addon as (t: unknown) => string)(5), /blake3Hex takes a string/);
  });
});

describe("file digests", () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-digest-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("sha256File and feedFile read files larger than the 1 MiB buffer correctly", () => {
    const data = randomBytes(3 * (1 << 20) + 12345);
    const f = join(dir, "big");
    writeFileSync(f, data);
    assert.equal(sha256File(f), createHash("sha256").update(data).digest("hex"));
    const h = new Blake3Hasher();
    assert.equal(feedFile(h, f), data.length);
    assert.equal(h.digest("hex"), blake3(data).toString("hex"));
  });

  test("sha256File of an empty file", () => {
    const f = join(dir, "empty");
    writeFileSync(f, "");
    assert.equal(sha256File(f), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });
});
