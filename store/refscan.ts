// Reference scanning: which of the candidate store paths does an output mention?
// Like Nix, we look for the 32-character hash parts of the candidates (the closure of the
// build's inputs plus the output itself) in every file and symlink target.
import { closeSync, openSync, readlinkSync, readSync } from "node:fs";
import { walkTree } from "./archive.js";
import { BASE32_CHARS, HASH_PART_LEN } from "./digest.js";

const CHUNK = 1 << 20;
const buf = Buffer.allocUnsafe(CHUNK + HASH_PART_LEN);

/** Above this many candidates, one pass over windows beats one native search per candidate. */
const MANY = 8;
const isBase32 = new Uint8Array(256);
for (const c of BASE32_CHARS) isBase32[c.charCodeAt(0)] = 1;

/**
 * Every candidate found in `data`, in one pass, as Nix's scanner does: look at each window of
 * HASH_PART_LEN base32 characters and ask the set; a byte outside the alphabet lets the window
 * jump past it. A seed tree has a few hundred candidates (its packages) and half a gigabyte of
 * files: a search per candidate took 30 s of it, this one pass about a second.
 */
function scanWindows(data: Buffer, pending: Map<string, Buffer>, found: Set<string>): void {
  const L = HASH_PART_LEN;
  for (let i = 0; i + L <= data.length; ) {
    let j = L - 1;
    while (j >= 0 && isBase32[data[i + j]!] === 1) j--;
    if (j >= 0) {
      i += j + 1;
      continue;
    }
    const window = data.toString("latin1", i, i + L);
    if (pending.has(window)) {
      found.add(window);
      pending.delete(window);
      if (pending.size === 0) return;
    }
    i++;
  }
}

export function scanReferences(root: string, candidates: Iterable<string>): Set<string> {
  const pending = new Map<string, Buffer>();
  for (const c of candidates) pending.set(c, Buffer.from(c));
  const found = new Set<string>();
  if (pending.size === 0) return found;
  // the window scan sees hash parts only: another kind of candidate is searched for by itself
  const windows = pending.size > MANY && [...pending.keys()].every((c) => c.length === HASH_PART_LEN && [...c].every((x) => BASE32_CHARS.has(x)));
  const check = (data: Buffer) => {
    if (windows && pending.size > MANY) return scanWindows(data, pending, found);
    for (const [c, pat] of pending) {
      if (data.indexOf(pat) !== -1) {
        found.add(c);
        pending.delete(c);
      }
    }
  };
  walkTree(root, (p, st) => {
    if (pending.size === 0) return;
    if (st.isSymbolicLink()) check(readlinkSync(p, { encoding: "buffer" }));
    else if (st.isFile()) {
      const fd = openSync(p, "r");
      try {
        // keep the last HASH_PART_LEN-1 bytes of each chunk so matches across chunks are seen
        let carry = 0;
        for (;;) {
          const n = readSync(fd, buf, carry, CHUNK, null);
          if (n === 0) break;
          check(buf.subarray(0, carry + n));
          if (pending.size === 0) break;
          const keep = Math.min(HASH_PART_LEN - 1, carry + n);
          buf.copy(buf, 0, carry + n - keep, carry + n);
          carry = keep;
        }
      } finally {
        closeSync(fd);
      }
    }
  });
  return found;
}
