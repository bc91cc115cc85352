// Store path names and the tree operations every store module needs: validating and making
// names, removing a (read-only) tree, and making a finished output immutable.
import { chmodSync, lstatSync, lutimesSync, rmSync } from "node:fs";
import { walkTree } from "./archive.js";
import { BASE32_CHARS, HASH_PART_LEN } from "./digest.js";

/** Where every build sees the store, wherever it lives on the host. */
export const LOGICAL_STORE = "/kiln/store";

/** The base name of a store path: `<32-char hash>-<name>`. */
export type StorePathName = string & { readonly __brand: "StorePathName" };

const NAME_RE = /^[a-zA-Z0-9+._?=-][a-zA-Z0-9+._?=-]*$/;

export function validateName(name: string): string | undefined {
  if (!name) return "a store path name cannot be empty";
  if (name.length > 180) return "a store path name must be at most 180 characters";
  if (!NAME_RE.test(name) || name.startsWith(".")) {
    return `store path names may only contain letters, digits and + - . _ ? = and must not start with '.': ${JSON.stringify(name)}`;
  }
  return undefined;
}

export function parseStorePathName(s: string): { hash: string; name: string } | undefined {
  const base = s.startsWith(LOGICAL_STORE + "/") ? s.slice(LOGICAL_STORE.length + 1).split("/")[0]! : s;
  if (base.length < HASH_PART_LEN + 2 || base[HASH_PART_LEN] !== "-") return undefined;
  const hash = base.slice(0, HASH_PART_LEN);
  for (const c of hash) if (!BASE32_CHARS.has(c)) return undefined;
  return { hash, name: base.slice(HASH_PART_LEN + 1) };
}

export function makeStorePathName(hash: string, name: string): StorePathName {
  return `${hash}-${name}` as StorePathName;
}

export function logicalPath(p: StorePathName): string {
  return `${LOGICAL_STORE}/${p}`;
}

/** Remove a tree even when it was made read-only. Native chmod/rm: a kernel build tree has ~80k files. */
export function removeTree(path: string): void {
  // in-process: a build's scratch dir is removed after every build, and spawning chmod + rm
  // synchronously cost ~45 ms each time (as much as the sandboxed build of a small derivation)
  try {
    rmSync(path, { recursive: true, force: true });
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM" && code !== "ENOTEMPTY") throw e;
  }
  // read-only directories (finished outputs are 0555) block unlinking their entries unless root
  try {
    walkTree(path, (p, st) => {
      if (st.isDirectory()) chmodSync(p, 0o755);
    });
  } catch {
    /* best effort; rmSync reports what really fails */
  }
  rmSync(path, { recursive: true, force: true });
}

export function isDanglingLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** lstat that says whether anything (a file, a directory, a dangling link) is at `p`. */
export function existsOrLink(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Make a finished output immutable and time-normalised: files 0444 (0555 if executable),
 * directories 0555, every mtime/atime = 1 s after the epoch (as Nix does).
 */
export function canonicalise(root: string): void {
  const dirs: string[] = [];
  walkTree(root, (p, st) => {
    if (st.isSymbolicLink()) {
      lutimesSync(p, 1, 1);
    } else if (st.isDirectory()) {
      dirs.push(p);
    } else {
      chmodSync(p, st.mode & 0o100 ? 0o555 : 0o444);
      lutimesSync(p, 1, 1);
    }
  });
  // directories last, deepest first, so that making them read-only does not block the walk
  for (const d of dirs.reverse()) {
    chmodSync(d, 0o555);
    lutimesSync(d, 1, 1);
  }
}
