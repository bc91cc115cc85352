// Host tools: the host commands a derivation declares it runs (compilers, mkfs, qemu...).
// Each is fingerprinted by its Debian package version and the digest of its binaries, and the
// fingerprint is part of the derivation hash, so a host upgrade changes hashes visibly (and
// `why` can name it) instead of silently changing outputs.
import { execFileSync } from "node:child_process";
import { accessSync, constants, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Blake3Hasher, feedFile } from "../store/digest.js";
import { KilnError } from "../store/errors.js";
import type { HostToolFingerprint } from "./derivation.js";

export interface HostToolCache {
  get(key: string): string | undefined;
  put(key: string, json: string): void;
}

interface Cached {
  fp: HostToolFingerprint;
  /** path, size, mtimeMs, ino of the binaries and of the owning package's dpkg file list */
  stats: Array<[string, number, number, number]>;
  v: 2;
}

/** Packages that provide commands recipes commonly declare, for the "how to fix" hint. */
const PACKAGE_HINTS: Record<string, string> = {
  bwrap: "bubblewrap", "qemu-system-aarch64": "qemu-system-arm", "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
  "mkfs.vfat": "dosfstools", mcopy: "mtools", mmd: "mtools", cpio: "cpio", sfdisk: "fdisk", mke2fs: "e2fsprogs",
  debugfs: "e2fsprogs", genimage: "genimage", bc: "bc", flex: "flex", bison: "bison", xz: "xz-utils", gcc: "gcc",
  make: "make", "dpkg-deb": "dpkg", diffoscope: "diffoscope", b3sum: "b3sum", dtc: "device-tree-compiler", perl: "perl",
};

const DPKG_INFO = "/var/lib/dpkg/info";

/**
 * What the sandbox shows of the host to a build that declares host tools (the impure escape),
 * read-only: the host's /usr with the merged-/usr top-level directories, and the /etc files that
 * programs resolve their alternatives and libraries through. Nothing else of the host is there,
 * so a tool anywhere else (/opt, /root/bin, a home directory) is refused at evaluation.
 */
export const HOST_TOOL_DIRS: readonly string[] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
export const HOST_TOOL_ETC: readonly string[] = ["/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"];

export class HostTools {
  /** fingerprints taken by this process, with the stat of the files they were taken from */
  private readonly memo = new Map<string, HostToolFingerprint>();
  private readonly watched = new Map<string, Array<[string, number, number, number]>>();

  /**
   * @param visible the host directories a build with host tools sees (HOST_TOOL_DIRS and
   *   HOST_TOOL_ETC); a declared tool that resolves outside them is refused
   */
  constructor(
    private readonly searchPath: string[],
    private readonly cache?: HostToolCache,
    private readonly visible: readonly string[] = [...HOST_TOOL_DIRS, ...HOST_TOOL_ETC],
  ) {}

  /** Fingerprint a declared tool: a command name, or `pkg:<debian package>` for all its commands. */
  fingerprint(entry: string, where?: string): HostToolFingerprint {
    const hit = this.memo.get(entry);
    if (hit) return hit;
    const key = `${entry}\0${this.searchPath.join(":")}`;
    const cached = this.fromCache(key);
    if (cached) {
      this.checkVisible(entry, cached.fp, where);
      this.memo.set(entry, freeze(cached.fp));
      this.watched.set(entry, cached.stats);
      return cached.fp;
    }
    const { fp, files } = entry.startsWith("pkg:") ? this.fingerprintPackage(entry.slice(4), where) : this.fingerprintCommand(entry, where);
    this.checkVisible(entry, fp, where);
    this.memo.set(entry, freeze(fp));
    // valid while the binaries and the owning package's file list are untouched: dpkg rewrites
    // the list when it installs, upgrades or removes that package (and only that package)
    const stats = [...files, ...(fp.package ? dpkgListFiles(fp.package) : [])].map((f) => statTuple(f));
    this.watched.set(entry, stats);
    if (this.cache) this.cache.put(key, JSON.stringify({ fp, stats, v: 2 } satisfies Cached));
    return fp;
  }

  /**
   * Forget what this process fingerprinted, so that the next evaluation (a watch round) looks at
   * the host again: a tool upgraded meanwhile gets its new fingerprint. The stat-validated
   * persistent cache still spares re-hashing what did not change.
   */
  forget(): void {
    this.memo.clear();
    this.watched.clear();
    infoNames = undefined;
    owners = undefined;
  }

  /**
   * Whether the files a fingerprint was taken from are untouched since (their stat): asked after a
   * build that ran these tools, before its output is registered. A changed one names the tool.
   */
  changedSince(entries: Iterable<string>): string | undefined {
    for (const entry of entries) {
      for (const s of this.watched.get(entry) ?? []) {
        const now = statTuple(s[0]);
        if (now[1] !== s[1] || now[2] !== s[2] || now[3] !== s[3]) return `${entry} (${s[0]})`;
      }
    }
    return undefined;
  }

  /** Refuse a tool whose binary (or a link on the way to it) lies where the sandbox shows nothing. */
  private checkVisible(entry: string, fp: HostToolFingerprint, where?: string): void {
    for (const [cmd, path] of Object.entries(fp.commands)) {
      const hidden = hiddenHop(path, this.visible);
      if (hidden === undefined) continue;
      throw new KilnError("HOST_TOOL_MISSING",
        `host tool '${cmd}'${entry !== cmd ? ` (of ${entry})` : ""} was found at ${path}${hidden !== path ? ` (-> ${hidden})` : ""}, which a build cannot see: the sandbox shows a build only the host's ${HOST_TOOL_DIRS.join(", ")}${where ? `; declared by ${where}` : ""}`,
        "take the tool from the build's usr tree (the seed), install it under /usr (e.g. /usr/local/bin), or remove it from hostTools",
        { tool: cmd, path, where });
    }
  }

  private fromCache(key: string): Cached | undefined {
    const raw = this.cache?.get(key);
    if (!raw) return undefined;
    const c = JSON.parse(raw) as Cached;
    if (c.v !== 2) return undefined;
    for (const s of c.stats) {
      const now = statTuple(s[0]);
      if (now[1] !== s[1] || now[2] !== s[2] || now[3] !== s[3]) return undefined;
    }
    return c;
  }

  /** Find a command on the host PATH. */
  which(cmd: string): string | undefined {
    return findOnPath(cmd, this.searchPath);
  }

  private fingerprintCommand(cmd: string, where?: string): { fp: HostToolFingerprint; files: string[] } {
    const path = this.which(cmd);
    if (!path) {
      const pkg = PACKAGE_HINTS[cmd];
      throw new KilnError("HOST_TOOL_MISSING", `host tool '${cmd}' is not installed (not found on PATH: ${this.searchPath.join(":")})${where ? `, declared by ${where}` : ""}`,
        pkg ? `install it: apt-get install ${pkg}` : `install the Debian package that provides it (apt-file search bin/${cmd}), or remove it from hostTools`,
        { tool: cmd, where });
    }
    const h = new Blake3Hasher();
    feedFile(h, path);
    // the package that owns the real binary (gcc -> gcc-12 -> x86_64-linux-gnu-gcc-12) is the one
    // whose upgrade changes behaviour
    const real = realpathSync(path);
    // each dpkg-query -S scans every package's file list: do not ask twice about the same path
    const owner = dpkgOwner(real) ?? (real !== path ? dpkgOwner(path) : undefined);
    return {
      fp: { path, package: owner?.package ?? null, version: owner?.version ?? null, digest: h.digest("hex"), commands: { [cmd]: path } },
      files: [path],
    };
  }

  private fingerprintPackage(pkg: string, where?: string): { fp: HostToolFingerprint; files: string[] } {
    let listing: string;
    try {
      listing = execFileSync("dpkg-query", ["-L", pkg], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    } catch {
      throw new KilnError("HOST_TOOL_MISSING", `host package '${pkg}' is not installed${where ? ` (declared by ${where})` : ""}`,
        `install it: apt-get install ${pkg}`, { package: pkg, where });
    }
    const commands: Record<string, string> = {};
    const dirs = ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"];
    const files = listing.split("\n").filter((f) => dirs.some((d) => f.startsWith(d) && !f.slice(d.length).includes("/")) && isExecutable(f)).sort();
    // prefer /usr/bin over /bin for the same name (merged /usr lists both)
    for (const f of files) if (!commands[basename(f)] || f.startsWith("/usr/")) commands[basename(f)] = f;
    const h = new Blake3Hasher();
    for (const name of Object.keys(commands).sort()) {
      h.update(name + "\0");
      feedFile(h, commands[name]!);
    }
    return {
      fp: { path: `pkg:${pkg}`, package: pkg, version: dpkgVersion(pkg), digest: h.digest("hex"), commands },
      files: Object.values(commands),
    };
  }
}

/**
 * Fingerprints are shared by every derivation declaring the tool: frozen, so that the canonical
 * encoder may encode each once (engine/canonical.ts) and nobody can change one for all.
 */
function freeze(fp: HostToolFingerprint): HostToolFingerprint {
  Object.freeze(fp.commands);
  return Object.freeze(fp);
}

const under = (p: string, dirs: readonly string[]) => dirs.some((d) => p === d || p.startsWith(`${d}/`));

/**
 * The first place on the way from `path` to the file it names (each symlink followed, then the
 * real path) that is not under `visible`; undefined when the whole way is visible.
 */
function hiddenHop(path: string, visible: readonly string[]): string | undefined {
  let p = path;
  for (let hops = 0; hops < 40; hops++) {
    if (!under(p, visible)) return p;
    let link: string;
    try {
      if (!lstatSync(p).isSymbolicLink()) break;
      link = readlinkSync(p);
    } catch {
      return p;
    }
    p = resolve(dirname(p), link);
  }
  // a symlinked directory on the way (/usr/local -> /opt/local) shows in the real path
  let real: string;
  try {
    real = realpathSync(p);
  } catch {
    return p;
  }
  return under(real, visible) ? undefined : real;
}

/** A command's path: itself when it has a slash, else the first executable file of that name in `searchPath`. */
export function findOnPath(cmd: string, searchPath: readonly string[]): string | undefined {
  if (cmd.includes("/")) return isExecutable(cmd) ? cmd : undefined;
  for (const dir of searchPath) {
    const p = join(dir, cmd);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function statTuple(p: string): [string, number, number, number] {
  try {
    const s = statSync(p);
    return [p, s.size, s.mtimeMs, s.ino];
  } catch {
    return [p, -1, -1, -1];
  }
}

let infoNames: string[] | undefined;

/** dpkg's file list(s) of a package: <pkg>.list, or <pkg>:<arch>.list for a multi-arch one. */
export function dpkgListFiles(pkg: string): string[] {
  const base = pkg.split(":")[0]!;
  try {
    infoNames ??= readdirSync(DPKG_INFO);
  } catch {
    return [];
  }
  return infoNames.filter((n) => n === `${base}.list` || (n.startsWith(`${base}:`) && n.endsWith(".list"))).map((n) => join(DPKG_INFO, n));
}

function dpkgOwner(path: string): { package: string; version: string | null } | undefined {
  // dpkg knows paths as installed (merged /usr: /bin/x may be listed as /usr/bin/x or vice versa)
  const candidates = [path, path.startsWith("/usr/") ? path.slice(4) : `/usr${path}`];
  for (const c of candidates) {
    const pkg = INDEXED.test(c) ? commandOwners()?.get(c) : dpkgQueryOwner(c);
    if (pkg) return { package: pkg, version: dpkgVersion(pkg) };
  }
  return undefined;
}

/** Paths the owner index covers: commands. Anything else is asked of dpkg-query. */
const INDEXED = /\/s?bin\/[^/]+$/;
let owners: Map<string, string> | undefined | null;

/**
 * Which package installed each command, from dpkg's file lists, read once per process. One
 * `dpkg-query -S` reads every file list too (~0.3-1 s here), and a recipe set declares a dozen
 * tools: a fresh store spent ~15 s there. Null when dpkg's lists cannot be read.
 */
function commandOwners(): Map<string, string> | undefined {
  if (owners !== undefined) return owners ?? undefined;
  try {
    const m = new Map<string, string>();
    for (const f of readdirSync(DPKG_INFO)) {
      if (!f.endsWith(".list")) continue;
      const pkg = f.slice(0, -5).split(":")[0]!;
      for (const line of readFileSync(join(DPKG_INFO, f), "latin1").split("\n")) {
        if (INDEXED.test(line) && !m.has(line)) m.set(line, pkg);
      }
    }
    owners = m;
  } catch {
    owners = null;
  }
  return owners ?? undefined;
}

function dpkgQueryOwner(path: string): string | undefined {
  try {
    const out = execFileSync("dpkg-query", ["-S", path], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const pkg = out.split(":")[0]!.split(",")[0]!.trim();
    return pkg && !pkg.startsWith("diversion") ? pkg : undefined;
  } catch {
    return undefined; // not owned by a package under this name
  }
}

function dpkgVersion(pkg: string): string | null {
  try {
    return execFileSync("dpkg-query", ["-W", "-f=${Version}", pkg], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || null;
  } catch {
    return null;
  }
}
