// Reference scanning: which of the candidate store paths does an output mention?
// Like Nix, we look for the 32-character hash parts of the candidates (the closure of the
// build's inputs plus the output itself) in every file and symlink target.
import { closeSync, openSync, readlinkSync, readSync } from "node:fs";
import { walkTree } from "./archive.js";
import { BASE32_CHARS, HASH_PART_LEN } from "./digest.js";

const CHUNK = 1 << 20;
const buf = Buffer.allocUnsafe(CHUNK + HASH_PART_LEN);
const IS_BASE32 = new Uint8Array(256);
for (const c of BASE32_CHARS) IS_BASE32[c.charCodeAt(0)] = 1;

/**
 * Call `check` with every symlink target and every file's content under `root`, a chunk at a
 * time; each chunk starts with the last HASH_PART_LEN-1 bytes of the one before, so a hash part
 * across two chunks is seen. Stops once `done()` says so.
 */
function eachChunk(root: string, check: (data: Buffer) => void, done: () => boolean): void {
  walkTree(root, (p, st) => {
    if (done()) return;
    if (st.isSymbolicLink()) check(readlinkSync(p, { encoding: "buffer" }));
    else if (st.isFile()) {
      const fd = openSync(p, "r");
      try {
        let carry = 0;
        for (;;) {
          const n = readSync(fd, buf, carry, CHUNK, null);
          if (n === 0) break;
          check(buf.subarray(0, carry + n));
          if (done()) break;
          const keep = Math.min(HASH_PART_LEN - 1, carry + n);
          buf.copy(buf, 0, carry + n - keep, carry + n);
          carry = keep;
        }
      } finally {
        closeSync(fd);
      }
    }
  });
}

/** Above this many candidates, one pass over windows (scanHashParts) beats one native search per candidate. */
const MANY = 8;

export function scanReferences(root: string, candidates: Iterable<string>): Set<string> {
  const pending = new Map<string, Buffer>();
  for (const c of candidates) pending.set(c, Buffer.from(c));
  const found = new Set<string>();
  if (pending.size === 0) return found;
  // a seed tree has a few hundred candidates (its packages) and half a gigabyte of files: a
  // search per candidate took 30 s of it, one pass about a second. The window scan sees hash parts
  // only: another kind of candidate is searched for by itself.
  const keys = [...pending.keys()];
  if (keys.length > MANY && keys.every((c) => c.length === HASH_PART_LEN && [...c].every((x) => IS_BASE32[x.charCodeAt(0)] === 1))) {
    return scanHashParts(root, new Set(keys));
  }
  eachChunk(root, (data) => {
    for (const [c, pat] of pending) {
      if (data.indexOf(pat) !== -1) {
        found.add(c);
        pending.delete(c);
      }
    }
  }, () => pending.size === 0);
  return found;
}


/**
 * Which of `known` hash parts occur under `root`, in one pass whatever their number: every run of
 * 32 base32 characters is looked up, as Nix's scanner does (for re-registering a whole store,
 * where scanReferences would read the data once per candidate). A window whose last byte is not
 * base32 cannot hold one, so the scan mostly jumps 32 bytes at a time.
 */
export function scanHashParts(root: string, known: ReadonlySet<string>): Set<string> {
  const found = new Set<string>();
  if (known.size === 0) return found;
  eachChunk(root, (data) => {
    const n = data.length;
    let i = 0;
    while (i + HASH_PART_LEN <= n) {
      let j = i + HASH_PART_LEN - 1;
      while (j >= i && IS_BASE32[data[j]!] === 1) j--;
      if (j >= i) {
        i = j + 1;
        continue;
      }
      // data[i .. i+31] is all base32: look it up, then every window of the run that follows
      let end = i + HASH_PART_LEN;
      for (;;) {
        const h = data.toString("latin1", end - HASH_PART_LEN, end);
        if (known.has(h)) found.add(h);
        if (end >= n || IS_BASE32[data[end]!] !== 1) break;
        end++;
      }
      i = end + 1;
    }
  }, () => found.size === known.size);
  return found;
}
