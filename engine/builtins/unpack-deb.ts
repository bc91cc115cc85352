// builtin:unpack-deb — the files of a Debian binary package, unpacked inside kiln (no sandbox, no
// host tool), laid out merged-/usr.
//
// A .deb is an `ar` archive: debian-binary ("2.0\n"), control.tar.*, data.tar.*. Only the data
// member is unpacked (xz, gzip or uncompressed tar). The archive is trusted to be what Debian
// published (it is a fixed output, pinned by sha256), but it is still treated as data: nothing in
// it may write outside the output directory.
//
// What the output holds, and why:
// - paths are taken as relative; an absolute path or a `..` component is refused, and nothing is
//   ever written through a symlink (every parent must be a directory this unpack created);
// - bin, sbin, lib, lib32, lib64 and libx32 at the top move under usr/ (merged /usr, as Debian
//   itself has done since bookworm's usrmerge), and each moved directory gets the compatibility
//   link a merged system has (`bin -> usr/bin`), so the tree is consistent on its own;
// - symlinks stay as they are, absolute targets included (they are meant for the system the
//   package is installed into, which the sandbox lays out from this tree). A relative target
//   that climbs out of the tree is refused. A relative link inside a moved directory whose meaning
//   the move would change (`bin/x -> ../usr/bin/y`) is rewritten to the same file;
// - tar hard links become hard links (a copy where the file system refuses one);
// - setuid, setgid and sticky bits are dropped (a build needs none; the store keeps none);
//   directories are 0755, files keep their permission bits;
// - device nodes and FIFOs are skipped and reported: a store path cannot hold them;
// - owners and times are not kept (the store normalises them).
// The result depends only on the bytes of the .deb. The data member is decompressed in memory
// (@napi-rs/lzma has no streaming API): unpacking costs the package's unpacked size in RAM for a
// moment (qemu-user-static, the largest seed package: 370 MiB).
import { closeSync, copyFileSync, linkSync, mkdirSync, openSync, readSync, fstatSync, symlinkSync, writeSync, fchmodSync } from "node:fs";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import tar, { type Header } from "tar-stream";
import { KilnError } from "../../store/errors.js";
import { importModule } from "../dynamic-import.js";

/** Top-level directories a merged-/usr system keeps under usr/ (with a compatibility link). */
export const MERGED_DIRS: readonly string[] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

export interface UnpackResult {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** bytes of regular files written */
  bytes: number;
  /** paths not unpacked because a store path cannot hold them (device nodes, FIFOs) */
  skipped: string[];
  /** relative symlinks rewritten because the merged-/usr move would have changed their meaning: path -> new target */
  rewritten: Record<string, string>;
}

interface ArMember {
  name: string;
  offset: number;
  size: number;
}

/**
 * Unpack the data part of the .deb at `debFile` into `outDir` (created; must not exist yet or be
 * empty). Throws KilnError DEB_INVALID, naming the package file and the entry, for a malformed
 * archive or an entry that would write outside `outDir`.
 */
export async function unpackDeb(debFile: string, outDir: string): Promise<UnpackResult> {
  const fd = openSync(debFile, "r");
  let member: ArMember;
  let data: Buffer;
  try {
    member = dataMember(fd, debFile);
    data = readAt(fd, member.offset, member.size);
  } finally {
    closeSync(fd);
  }
  const tarStream = await decompress(member.name, data, debFile);
  mkdirSync(outDir, { recursive: true });
  const w = new TreeWriter(outDir, debFile);
  const extract = tar.extract();
  tarStream.on("error", (e) => extract.destroy(e));
  tarStream.pipe(extract);
  try {
    for await (const entry of extract) {
      await w.entry(entry);
    }
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw invalid(debFile, `cannot read ${member.name}: ${(e as Error).message}`);
  }
  return w.finish();
}

function invalid(debFile: string, what: string): KilnError {
  return new KilnError("DEB_INVALID", `${debFile}: ${what}`, "the .deb is pinned by sha256, so this is what Debian published: unpack it with dpkg-deb in a build step instead, or report the package", { deb: debFile });
}

function readAt(fd: number, offset: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let done = 0;
  while (done < size) {
    const n = readSync(fd, buf, done, size - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return done === size ? buf : buf.subarray(0, done);
}

const AR_MAGIC = "!<arch>\n";
const AR_HEADER = 60;

/** The ar members of a .deb, checked for the shape dpkg writes; returns the data member. */
function dataMember(fd: number, debFile: string): ArMember {
  const total = fstatSync(fd).size;
  if (readAt(fd, 0, AR_MAGIC.length).toString("latin1") !== AR_MAGIC) throw invalid(debFile, "not a Debian package (no ar archive signature)");
  const members: ArMember[] = [];
  let pos = AR_MAGIC.length;
  while (pos + AR_HEADER <= total) {
    const h = readAt(fd, pos, AR_HEADER).toString("latin1");
    if (h.slice(58, 60) !== "`\n") throw invalid(debFile, `corrupt ar member header at byte ${pos}`);
    const name = h.slice(0, 16).trimEnd().replace(/\/$/, "");
    const size = Number(h.slice(48, 58).trim());
    if (!Number.isSafeInteger(size) || size < 0 || pos + AR_HEADER + size > total) throw invalid(debFile, `ar member ${name} has a bad size`);
    members.push({ name, offset: pos + AR_HEADER, size });
    pos += AR_HEADER + size + (size % 2);
  }
  const names = members.map((m) => m.name);
  if (names[0] !== "debian-binary" || !/^2\.\d+\n/.test(readAt(fd, members[0]!.offset, Math.min(members[0]!.size, 16)).toString("latin1"))) {
    throw invalid(debFile, `not a version 2 Debian package (members: ${names.join(", ")})`);
  }
  const data = members.find((m) => m.name.startsWith("data.tar"));
  if (!data) throw invalid(debFile, `no data.tar member (members: ${names.join(", ")})`);
  return data;
}

async function decompress(name: string, data: Buffer, debFile: string): Promise<Readable> {
  switch (name) {
    case "data.tar":
      return Readable.from([data]);
    case "data.tar.gz":
      return Readable.from([data]).pipe(createGunzip());
    case "data.tar.xz": {
      // loaded when first needed: its loader asks process.report for the libc (tens of ms), a
      // cost every kiln command would pay at start-up
      const { xz } = await importModule<typeof import("@napi-rs/lzma")>("@napi-rs/lzma");
      let plain: Buffer;
      try {
        plain = await xz.decompress(data);
      } catch (e) {
        throw invalid(debFile, `${name} is not valid xz: ${(e as Error).message}`);
      }
      return Readable.from([plain]);
    }
    default:
      throw invalid(debFile, `${name}: unsupported compression (kiln unpacks data.tar, data.tar.gz and data.tar.xz, which Debian uses)`);
  }
}

type Kind = "dir" | "file" | "symlink";

/** An entry of tar-stream's extract: its header, and its data, which must be read or skipped. */
type TarEntry = AsyncIterable<unknown> & { header: Header; resume(): unknown };

/** Writes entries under a root, never following a link and never leaving the root. */
class TreeWriter {
  private readonly kinds = new Map<string, Kind>([["", "dir"]]);
  /** normalised path -> the archive's own name for it, to name both sides of a clash */
  private readonly origin = new Map<string, string>();
  private readonly moved = new Set<string>();
  private readonly result: UnpackResult = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0, skipped: [], rewritten: {} };

  constructor(private readonly root: string, private readonly deb: string) {}

  async entry(entry: TarEntry): Promise<void> {
    const h = entry.header;
    const raw = h.name;
    const rel = this.normalise(raw, "entry");
    const type: string = h.type ?? "file";
    if (rel === "") {
      entry.resume();
      return;
    }
    switch (type) {
      case "directory":
        entry.resume();
        this.dir(rel, raw);
        return;
      case "file":
      case "contiguous-file":
        await this.file(rel, raw, h.mode ?? 0o644, entry);
        return;
      case "symlink":
        entry.resume();
        this.symlink(rel, raw, h.linkname ?? "");
        return;
      case "link":
        entry.resume();
        this.hardlink(rel, raw, h.linkname ?? "");
        return;
      case "character-device":
      case "block-device":
      case "fifo":
        entry.resume();
        this.result.skipped.push(rel);
        return;
      default:
        entry.resume();
        throw invalid(this.deb, `entry ${raw} has an unsupported type ${String(type)}`);
    }
  }

  finish(): UnpackResult {
    // the compatibility links of a merged-/usr system, for the directories this package had
    for (const d of MERGED_DIRS) {
      if (!this.moved.has(d)) continue;
      symlinkSync(`usr/${d}`, join(this.root, d));
      this.kinds.set(d, "symlink");
      this.result.symlinks++;
    }
    this.result.skipped.sort();
    return this.result;
  }

  /** The archive name as a relative path in the merged layout; refuses absolute paths and `..`. */
  private normalise(name: string, what: string): string {
    const parts = this.split(name, what);
    if (parts.length > 0 && MERGED_DIRS.includes(parts[0]!)) {
      this.moved.add(parts[0]!);
      parts.unshift("usr");
    }
    return parts.join("/");
  }

  /** The archive name's components, as the package has them (before the merged-/usr move). */
  private split(name: string, what: string): string[] {
    if (name.startsWith("/")) throw invalid(this.deb, `${what} ${name} is an absolute path`);
    const parts = name.split("/").filter((p) => p !== "" && p !== ".");
    if (parts.includes("..")) throw invalid(this.deb, `${what} ${name} has a '..' component`);
    return parts;
  }

  /** Make sure every ancestor of rel is a directory made here (never a link), creating as needed. */
  private parents(rel: string, raw: string): void {
    const parts = rel.split("/");
    let cur = "";
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur ? `${cur}/${parts[i]}` : parts[i]!;
      const k = this.kinds.get(cur);
      if (k === undefined) {
        mkdirSync(join(this.root, cur), { mode: 0o755 });
        this.kinds.set(cur, "dir");
        this.result.dirs++;
      } else if (k !== "dir") {
        throw invalid(this.deb, `entry ${raw} lies under ${this.origin.get(cur) ?? cur}, which is a ${k}, not a directory`);
      }
    }
  }

  /** Claim rel for a new non-directory entry; a second entry at the same place is an error. */
  private claim(rel: string, raw: string, kind: Kind): void {
    const had = this.kinds.get(rel);
    if (had !== undefined) {
      const first = this.origin.get(rel) ?? rel;
      throw invalid(this.deb, `entry ${raw} and entry ${first} are both ${rel} in the merged-/usr layout`);
    }
    this.kinds.set(rel, kind);
    this.origin.set(rel, raw);
  }

  private dir(rel: string, raw: string): void {
    this.parents(rel, raw);
    const had = this.kinds.get(rel);
    if (had === "dir") return;
    if (had !== undefined) throw invalid(this.deb, `directory ${raw} clashes with ${this.origin.get(rel) ?? rel}, a ${had}`);
    mkdirSync(join(this.root, rel), { mode: 0o755 });
    this.kinds.set(rel, "dir");
    this.origin.set(rel, raw);
    this.result.dirs++;
  }

  private async file(rel: string, raw: string, mode: number, data: AsyncIterable<unknown>): Promise<void> {
    this.parents(rel, raw);
    this.claim(rel, raw, "file");
    // 'wx': O_CREAT|O_EXCL, which never follows a link at the last component
    const fd = openSync(join(this.root, rel), "wx", 0o600);
    try {
      for await (const c of data) {
        const chunk = c as Buffer;
        writeSync(fd, chunk);
        this.result.bytes += chunk.length;
      }
      fchmodSync(fd, mode & 0o777);
    } finally {
      closeSync(fd);
    }
    this.result.files++;
  }

  private symlink(rel: string, raw: string, target: string): void {
    if (target === "") throw invalid(this.deb, `symlink ${raw} has an empty target`);
    this.parents(rel, raw);
    let t = target;
    if (!t.startsWith("/")) {
      const logical = resolveWithin(this.split(raw, "entry").slice(0, -1).join("/"), t);
      if (logical === undefined) throw invalid(this.deb, `symlink ${raw} -> ${target} points outside the package's tree`);
      const newDir = posix.dirname(rel);
      const here = resolveWithin(newDir === "." ? "" : newDir, t);
      if (here === undefined || merged(here) !== merged(logical)) {
        t = relativeTo(newDir === "." ? "" : newDir, merged(logical));
        this.result.rewritten[rel] = t;
      }
    }
    this.claim(rel, raw, "symlink");
    symlinkSync(t, join(this.root, rel));
    this.result.symlinks++;
  }

  private hardlink(rel: string, raw: string, target: string): void {
    const to = this.normalise(target, `hard link target of ${raw}:`);
    if (this.kinds.get(to) !== "file") throw invalid(this.deb, `hard link ${raw} -> ${target}: the target is not a file unpacked before it`);
    this.parents(rel, raw);
    this.claim(rel, raw, "file");
    linkOrCopy(join(this.root, to), join(this.root, rel));
    this.result.hardlinks++;
  }
}

/** A hard link, or a copy where the file system does not allow one (other device, protected links). */
export function linkOrCopy(from: string, to: string): "link" | "copy" {
  try {
    linkSync(from, to);
    return "link";
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EXDEV" && code !== "EPERM" && code !== "EMLINK") throw e;
    copyFileSync(from, to);
    return "copy";
  }
}

/** Lexically resolve a relative target from directory `dir` ("" = root); undefined if it climbs above the root. */
function resolveWithin(dir: string, target: string): string | undefined {
  const parts = dir ? dir.split("/") : [];
  for (const p of target.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else parts.push(p);
  }
  return parts.join("/");
}

/** A relative path in the merged-/usr view: bin/x and usr/bin/x are the same file. */
function merged(p: string): string {
  const first = p.split("/", 1)[0]!;
  return MERGED_DIRS.includes(first) ? `usr/${p}` : p;
}

/** The relative path from directory `from` to `to` (both relative to the root). */
function relativeTo(from: string, to: string): string {
  const r = posix.relative(`/${from}`, `/${to}`);
  return r === "" ? "." : r;
}
