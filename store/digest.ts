// Content digests. BLAKE3 (native: @napi-rs/blake-hash, and kiln's own addon for short texts,
// store/text-hash.c) names everything Kiln produces; sha256 stays for fixed outputs because
// upstream projects publish sha256.
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { loadBlake } from "./blake-binding.js";

const loaded = loadBlake();
const { Blake3Hasher, blake3 } = loaded.module;
/** the module the binding was loaded from, for worker threads (store/hash-files.ts) to load it the same way */
export const BLAKE_MODULE_PATH = loaded.path;
type Blake3Hasher = InstanceType<typeof Blake3Hasher>;

export { Blake3Hasher };

/** Nix's base32 alphabet (no e, o, u, t): store path hash parts look familiar to Nix users. */
const BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";
export const BASE32_CHARS = new Set(BASE32);

/** Length in characters of the hash part of every store path (160 bits). */
export const HASH_PART_LEN = 32;

const BASE32_CODES = Uint8Array.from(BASE32, (c) => c.charCodeAt(0));
/** Room for the longest encoding made here (a 64-byte digest: 103 characters). */
const base32Out = Buffer.allocUnsafeSlow(128);

/**
 * Encode the first `size` bytes (all of them by default) in Nix's base32 (least significant 5-bit
 * group last, like nix-hash --to-base32). Into one reused buffer, read as latin1: a placeholder or
 * a store path's hash part is made per input of every derivation an evaluation sees, and a string
 * built a character at a time (and a subarray of the digest) cost a third of making one.
 */
export function toBase32(bytes: Uint8Array, size = bytes.length): string {
  if (!(Number.isInteger(size) && size >= 0 && size <= bytes.length)) throw new RangeError(`toBase32: size ${size} of ${bytes.length} bytes`);
  const len = Math.ceil((size * 8) / 5);
  const out = len <= base32Out.length ? base32Out : Buffer.allocUnsafe(len);
  for (let n = len - 1, k = 0; n >= 0; n--, k++) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const v = (bytes[i]! >> j) | (i + 1 < size ? bytes[i + 1]! << (8 - j) : 0);
    out[k] = BASE32_CODES[v & 0x1f]!;
  }
  return out.toString("latin1", 0, len);
}

/**
 * BLAKE3 of a text's UTF-8 bytes, in hex: a derivation's encoding, a placeholder's key (two per
 * derivation an evaluation sees). Through the text hasher addon (store/text-hash.c,
 * dist/kiln-text-hash.node), one call of ~0.4 us; where it is not built or does not load, through
 * one reused hasher of the binding, reset before each use (three calls, ~1 us: its one-shot call
 * returns a new Buffer, which cost more still). Both take the string as Buffer.from would write it.
 */
const textHasher = new Blake3Hasher();
function bindingTextHex(text: string): string {
  textHasher.reset();
  textHasher.update(text);
  return textHasher.digest("hex");
}

/** BLAKE3 of no bytes: an addon that does not give it is not used */
const EMPTY_BLAKE3 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

/**
 * Where the addon is, from this module: beside the bundle that runs (dist/kiln-*.cjs), above the
 * compiled module (dist/store/digest.js), in dist/ beside store/ (the TypeScript sources).
 */
const TEXT_ADDON_PLACES = ["./kiln-text-hash.node", "../kiln-text-hash.node", "../dist/kiln-text-hash.node"];

function loadTextAddon(): ((text: string) => string) | undefined {
  for (const place of TEXT_ADDON_PLACES) {
    const file = fileURLToPath(new URL(place, import.meta.url));
    if (!existsSync(file)) continue;
    try {
      const addon = createRequire(import.meta.url)(file) as { blake3Hex?: (text: string) => string };
      return typeof addon.blake3Hex === "function" && addon.blake3Hex("") === EMPTY_BLAKE3 ? addon.blake3Hex : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** the addon's function, or the binding's way: chosen at the first text hashed (a gc hashes none) */
let textHex = (text: string): string => {
  textHex = loadTextAddon() ?? bindingTextHex;
  return textHex(text);
};

/** Which way text is hashed in this process. */
export function textHashWay(): "addon" | "binding" {
  blake3Hex("");
  return textHex === bindingTextHex ? "binding" : "addon";
}

/** Both ways of hashing text, for their tests; `addon` is undefined where it is not built. */
export function textHexWays(): { addon: ((text: string) => string) | undefined; binding: (text: string) => string } {
  return { addon: loadTextAddon(), binding: bindingTextHex };
}

export function blake3Hex(data: string | Uint8Array): string {
  if (typeof data === "string") return textHex(data);
  return blake3(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)).toString("hex");
}

/** One-shot BLAKE3 of a buffer, as a Buffer (32 bytes). */
export function blake3Buffer(data: Buffer): Buffer {
  return blake3(data);
}

/** A 32-character base32 hash part derived from arbitrary text (truncated BLAKE3, 160 bits). */
export function hashPart(text: string): string {
  const hex = textHex(text);
  for (let i = 0; i < 20; i++) partBytes[i] = (HEX_VALUE[hex.charCodeAt(2 * i)]! << 4) | HEX_VALUE[hex.charCodeAt(2 * i + 1)]!;
  return toBase32(partBytes, 20);
}

const partBytes = new Uint8Array(20);
/** a lower-case hex digit's value, by its character code */
const HEX_VALUE = new Uint8Array(128);
for (let i = 0; i < 16; i++) HEX_VALUE["0123456789abcdef".charCodeAt(i)] = i;

/** The hash part of a content-addressed store path: its tree's digest and its name give it. */
export function contentHashPart(narDigest: string, name: string): string {
  return hashPart(`kiln-ca:${narDigest}:${name}`);
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

const CHUNK = 1 << 20;
let sharedBuf: Buffer | undefined;
function chunkBuffer(): Buffer {
  return (sharedBuf ??= Buffer.allocUnsafe(CHUNK));
}

/** sha256 of a file, read with a reused 1 MiB buffer (streams are ~8x slower here). */
export function sha256File(path: string): string {
  const h = createHash("sha256");
  const buf = chunkBuffer();
  const fd = openSync(path, "r");
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/** Feed a file's bytes into a BLAKE3 hasher; returns the number of bytes read. */
export function feedFile(hasher: Blake3Hasher, path: string): number {
  const buf = chunkBuffer();
  const fd = openSync(path, "r");
  let total = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      hasher.update(buf.subarray(0, n));
      total += n;
    }
  } finally {
    closeSync(fd);
  }
  return total;
}
