// builtin:seed-root — one tree from the unpacked packages of a seed set (or a union of sets), as
// Nix's builtin:buildenv makes a profile, but with hard links instead of symlinks: the sandbox
// lays this tree out as /usr, and a program must find its libraries, gcc its own directories and
// perl its @INC through real paths under /usr, not through links into other store paths.
//
// - Packages are merged in order of name, each tree walked in bytewise order of entry names, so
//   the result does not depend on the order the caller gives them in.
// - Files are hard-linked from the package trees (a copy where the file system refuses a link:
//   another device, or protected hard links); symlinks are recreated as they are; directories
//   are 0755.
// - Two packages shipping the same path: the same directory, the same symlink target, or files
//   with the same bytes and executable bit are one entry. Anything else is a conflict: an error
//   naming the path and both packages, unless `prefer` names the package that wins that path
//   (the loser's entry, and whatever lies under it, is left out). A `prefer` that decides no
//   conflict is an error too, so stale declarations do not pile up.
// - `links` adds the links Debian's maintainer scripts would make at installation (the
//   alternatives: awk -> gawk, cc -> gcc, ...): path in the tree -> symlink target. A link may
//   not replace a shipped path, and its target must exist in the tree.
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, symlinkSync } from "node:fs";
import { join, posix } from "node:path";
import { KilnError } from "../../store/errors.js";
import { linkOrCopy } from "./unpack-deb.js";

export interface SeedPackageTree {
  /** package name, as the lock has it (e.g. "gawk", "libc6") */
  name: string;
  /** host directory of the unpacked package (a builtin:unpack-deb output) */
  path: string;
}

export interface SeedRootRequest {
  packages: SeedPackageTree[];
  /** extra symlinks: path in the tree (e.g. "usr/bin/awk") -> target (e.g. "gawk") */
  links?: Record<string, string>;
  /** conflicting path -> name of the package whose entry wins */
  prefer?: Record<string, string>;
  /** output directory (created) */
  out: string;
}

export interface SeedRootResult {
  files: number;
  /** files hard-linked / copied (the rest of `files`) */
  linked: number;
  copied: number;
  symlinks: number;
  dirs: number;
  /** paths shipped identically by more than one package */
  shared: number;
  /** conflicts decided by `prefer`: path -> winner and losers */
  decided: Record<string, { winner: string; losers: string[] }>;
}

/** the owner of the entries `links` adds */
const LINKS = "(links)";

/** What a package tree has at a path. */
type Found = { kind: "dir" } | { kind: "file"; host: string; size: number; exec: boolean } | { kind: "symlink"; target: string };
type Entry = Found & { pkg: string };

/** Hard-link every file of the packages into one tree at req.out. Throws SEED_CONFLICT or SEED_INVALID. */
export function seedRoot(req: SeedRootRequest): SeedRootResult {
  const packages = [...req.packages].sort((a, b) => cmp(a.name, b.name));
  for (let i = 1; i < packages.length; i++) {
    if (packages[i]!.name === packages[i - 1]!.name) throw new KilnError("SEED_INVALID", `seed root: package ${packages[i]!.name} is given twice`, "give each package once");
  }
  const prefer = req.prefer ?? {};
  const known = new Set(packages.map((p) => p.name));
  for (const [path, winner] of Object.entries(prefer)) {
    if (!known.has(winner)) throw new KilnError("SEED_INVALID", `seed root: prefer ${path} -> ${winner}, but ${winner} is not one of the packages`, "name one of the set's packages");
  }

  // phase 1: every entry of every package, in order; the first claim of a path stands unless a
  // later one is preferred
  const tree = new Map<string, Entry>();
  const conflicts = new Map<string, Set<string>>();
  const decided: SeedRootResult["decided"] = {};
  let shared = 0;
  for (const p of packages) {
    walk(p.path, "", (rel, e) => {
      const entry: Entry = { ...e, pkg: p.name };
      const had = tree.get(rel);
      if (!had) {
        tree.set(rel, entry);
        return;
      }
      if (same(had, entry)) {
        shared++;
        return;
      }
      const winner = prefer[rel];
      if (winner === undefined) {
        const s = conflicts.get(rel) ?? new Set([had.pkg]);
        s.add(p.name);
        conflicts.set(rel, s);
        return;
      }
      const d = (decided[rel] ??= { winner, losers: [] });
      if (entry.pkg === winner) {
        d.losers.push(had.pkg);
        tree.set(rel, entry);
      } else d.losers.push(entry.pkg);
    });
  }
  if (conflicts.size > 0) {
    const lines = [...conflicts].sort(([a], [b]) => cmp(a, b)).map(([path, pkgs]) => `  ${path}: ${[...pkgs].join(", ")}`);
    const shown = lines.slice(0, 20).join("\n") + (lines.length > 20 ? `\n  ... and ${lines.length - 20} more` : "");
    throw new KilnError("SEED_CONFLICT", `seed root: ${conflicts.size} path(s) shipped differently by more than one package:\n${shown}`,
      'decide each with "prefer" (a seed set\'s in sets.json, or rootTree\'s): "path": "winning-package", or leave one of the packages out',
      { conflicts: Object.fromEntries([...conflicts].map(([k, v]) => [k, [...v]])) });
  }
  for (const [path, d] of Object.entries(decided)) {
    if (tree.get(path)!.pkg !== d.winner) throw new KilnError("SEED_INVALID", `seed root: prefer ${path} -> ${d.winner}, but ${d.winner} does not ship ${path}`, "name a package that ships the path");
  }
  for (const path of Object.keys(prefer)) {
    if (!decided[path]) throw new KilnError("SEED_INVALID", `seed root: prefer ${path} decides nothing: no two packages ship it differently`, "remove the entry from the set's prefer");
  }

  // the extra links, checked against the merged tree
  const links = req.links ?? {};
  for (const path of Object.keys(links).sort(cmp)) {
    const target = links[path]!;
    const rel = checkedRelPath(path);
    const had = tree.get(rel);
    if (had) throw new KilnError("SEED_INVALID", `seed root: link ${rel} would replace the ${had.kind} that ${had.pkg} ships there`, "remove the link, or give it a path no package ships");
    if (target === "") throw new KilnError("SEED_INVALID", `seed root: link ${rel} has an empty target`, "give the target, e.g. \"gawk\"");
    // the directories a link needs and no package made are made for it; never through a symlink
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      const e = tree.get(dir);
      if (!e) tree.set(dir, { kind: "dir", pkg: LINKS });
      else if (e.kind !== "dir") throw new KilnError("SEED_INVALID", `seed root: link ${rel} lies under ${dir}, a ${e.kind} of ${e.pkg}`, "give the link's real path, e.g. usr/bin/x rather than bin/x");
    }
    tree.set(rel, { kind: "symlink", pkg: LINKS, target });
    if (resolve(tree, target.startsWith("/") ? target : `${posix.dirname(rel)}/${target}`) === undefined) {
      throw new KilnError("SEED_INVALID", `seed root: link ${rel} -> ${target} points to nothing in the merged tree`, "fix the target, or add the package that ships it to the set");
    }
  }

  // phase 2: write, parents before children; a path under a non-directory winner is left out
  const result: SeedRootResult = { files: 0, linked: 0, copied: 0, symlinks: 0, dirs: 0, shared, decided };
  mkdirSync(req.out, { recursive: true });
  const written = new Map<string, Entry["kind"]>([["", "dir"]]);
  for (const rel of [...tree.keys()].sort(cmp)) {
    const parent = posix.dirname(rel) === "." ? "" : posix.dirname(rel);
    // an entry under a path that a preferred non-directory took is left out
    if (written.get(parent) !== "dir") continue;
    const e = tree.get(rel)!;
    const dst = join(req.out, rel);
    if (e.kind === "dir") {
      mkdirSync(dst, { mode: 0o755 });
      result.dirs++;
    } else if (e.kind === "symlink") {
      symlinkSync(e.target, dst);
      result.symlinks++;
    } else {
      if (linkOrCopy(e.host, dst) === "link") result.linked++;
      else result.copied++;
      result.files++;
    }
    written.set(rel, e.kind);
  }
  return result;
}

/** Walk a package tree in bytewise name order; `rel` is relative to the package root. */
function walk(root: string, rel: string, visit: (rel: string, e: Found) => void): void {
  const names = readdirSync(join(root, rel)).sort(cmp);
  for (const name of names) {
    const r = rel ? `${rel}/${name}` : name;
    const host = join(root, r);
    const st = lstatSync(host);
    if (st.isDirectory()) {
      visit(r, { kind: "dir" });
      walk(root, r, visit);
    } else if (st.isSymbolicLink()) visit(r, { kind: "symlink", target: readlinkSync(host) });
    else if (st.isFile()) visit(r, { kind: "file", host, size: st.size, exec: (st.mode & 0o100) !== 0 });
    else throw new KilnError("SEED_INVALID", `seed root: ${host} is neither a file, a directory nor a symlink`, "seed packages must be builtin:unpack-deb outputs");
  }
}

function same(a: Entry, b: Entry): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "dir") return true;
  if (a.kind === "symlink") return a.target === (b as typeof a).target;
  const f = b as typeof a;
  return a.size === f.size && a.exec === f.exec && sameBytes(a.host, f.host);
}

const bufA = Buffer.allocUnsafe(1 << 16);
const bufB = Buffer.allocUnsafe(1 << 16);

function sameBytes(x: string, y: string): boolean {
  const fx = openSync(x, "r");
  const fy = openSync(y, "r");
  try {
    for (;;) {
      const n = readSync(fx, bufA, 0, bufA.length, null);
      const m = readSync(fy, bufB, 0, bufB.length, null);
      if (n !== m) return false;
      if (n === 0) return true;
      if (bufA.compare(bufB, 0, m, 0, n) !== 0) return false;
    }
  } finally {
    closeSync(fx);
    closeSync(fy);
  }
}

function checkedRelPath(p: string): string {
  const parts = p.split("/").filter((x) => x !== "" && x !== ".");
  if (p.startsWith("/") || parts.includes("..") || parts.length === 0) {
    throw new KilnError("SEED_INVALID", `seed root: link path ${JSON.stringify(p)} must be relative to the tree, without '..'`, 'write it like "usr/bin/awk"');
  }
  return parts.join("/");
}

/**
 * Follow `path` (from the tree's root) through the merged tree's own symlinks (an absolute
 * target is taken from the tree's root too, as inside the sandbox); the path it ends at, or
 * undefined if nothing is there.
 */
function resolve(tree: Map<string, Entry>, path: string): string | undefined {
  let parts = path.split("/");
  for (let hops = 0; hops < 40; ) {
    let cur: string[] = [];
    let restarted = false;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (p === "" || p === ".") continue;
      if (p === "..") {
        cur.pop();
        continue;
      }
      cur.push(p);
      const e = tree.get(cur.join("/"));
      if (!e) return undefined;
      if (e.kind === "symlink") {
        hops++;
        const base = e.target.startsWith("/") ? [] : cur.slice(0, -1);
        parts = [...base, ...e.target.split("/"), ...parts.slice(i + 1)];
        restarted = true;
        break;
      }
    }
    if (!restarted) return cur.join("/");
  }
  return undefined;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The derivation arguments of builtin:seed-root, as recipes/std/seed.ts writes them: triples
 * `package NAME PATH`, `link PATH TARGET` and `prefer PATH NAME`. `toHost` maps a store path as
 * the derivation names it (/kiln/store/...) to where it is on this machine.
 */
export function seedRootRequestFromArgs(args: readonly string[], out: string, toHost: (logical: string) => string): SeedRootRequest {
  const req: SeedRootRequest = { packages: [], links: {}, prefer: {}, out };
  if (args.length % 3 !== 0) throw new KilnError("SEED_INVALID", `builtin:seed-root: ${args.length} arguments, expected triples (package NAME PATH | link PATH TARGET | prefer PATH NAME)`, "write the derivation with recipes/std/seed.ts");
  for (let i = 0; i < args.length; i += 3) {
    const [kind, a, b] = [args[i]!, args[i + 1]!, args[i + 2]!];
    if (kind === "package") req.packages.push({ name: a, path: toHost(b) });
    else if (kind === "link") req.links![a] = b;
    else if (kind === "prefer") req.prefer![a] = b;
    else throw new KilnError("SEED_INVALID", `builtin:seed-root: unknown argument ${JSON.stringify(kind)} at position ${i}`, "expected package, link or prefer");
  }
  return req;
}
