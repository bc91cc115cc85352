// Reference scanning: which of the candidate store paths does an output mention?
// Like Nix, we look for the 32-character hash parts of the candidates (the closure of the
// build's inputs plus the output itself) in every file and symlink target.
import { closeSync, openSync, readlinkSync, readSync } from "node:fs";
import { walkTree } from "./archive.js";
import { HASH_PART_LEN } from "./digest.js";

const CHUNK = 1 << 20;
const buf = Buffer.allocUnsafe(CHUNK + HASH_PART_LEN);

export function scanReferences(root: string, candidates: Iterable<string>): Set<string> {
  const pending = new Map<string, Buffer>();
  for (const c of candidates) pending.set(c, Buffer.from(c));
  const found = new Set<string>();
  if (pending.size === 0) return found;
  const check = (data: Buffer) => {
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
