// Resolving the seed's sets into a lock with apt's own solver, on a private apt state.
//
// apt runs with a configuration of its own (APT_CONFIG, with the host's apt.conf.d, sources and
// preferences switched off) and an EMPTY dpkg status, so what the host has installed, which
// sources it uses and which architectures it enabled do not matter: only the suite, the archive
// and the day the package lists were fetched do. Per set:
//   apt-get -s install --no-install-recommends <packages>   the closure (Essential packages are
//                                                            not pulled in implicitly: sets list them)
//                                                            from a dpkg status that has the set's
//                                                            excluded packages, if any, as installed
//   apt-get download --print-uris name:arch=version...      url, size and sha256 of each .deb
//   apt-cache show name:arch=version...                     Installed-Size (where the archive gives it)
// Each set is resolved with its own architecture as apt's only one, so an amd64 set never pulls
// an arm64 package and the other way round.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KilnError } from "../store/errors.js";
import { DEFAULT_ARCHIVE, DEFAULT_KEYRING, DEFAULT_SECURITY, packageKey, SEED_LOCK_VERSION, type LockedPackage, type SeedLock, type SeedSets } from "./seed-lock.js";

export interface ResolveOptions {
  /** private apt state (lists, caches, config); kept between runs */
  stateDir: string;
  /** fetch the package lists first (apt-get update); without it, the lists already in stateDir are used */
  update: boolean;
  /** environment for apt (PATH, proxies); APT_CONFIG is set here */
  env: Record<string, string | undefined>;
  signal: AbortSignal;
  /** progress lines */
  onLine?: (line: string) => void;
}

/** Resolve every set of `sets` into a lock. */
export async function resolveSeed(sets: SeedSets, opts: ResolveOptions): Promise<SeedLock> {
  const archs = [...new Set(Object.values(sets.sets).map((s) => s.arch))].sort();
  const apt = new PrivateApt(sets, archs, opts);
  if (opts.update) {
    opts.onLine?.(`fetching the package lists of ${sets.suite} (${archs.join(", ")})`);
    await apt.update();
  } else apt.requireLists();

  const lock: SeedLock = { lockVersion: SEED_LOCK_VERSION, suite: sets.suite, sets: {}, packages: {} };
  const wanted = new Map<string, Map<string, Resolved>>();
  for (const name of Object.keys(sets.sets).sort()) {
    const s = sets.sets[name]!;
    opts.onLine?.(`resolving set ${name} (${s.arch}): ${s.packages.length} packages asked`);
    const closure = await apt.closure(name, s.arch, s.packages, s.exclude ?? []);
    const forArch = wanted.get(s.arch) ?? new Map<string, Resolved>();
    for (const p of closure) forArch.set(packageKey(p.name, p.arch), p);
    wanted.set(s.arch, forArch);
    lock.sets[name] = {
      arch: s.arch,
      request: [...s.packages].sort(),
      ...(s.exclude?.length ? { exclude: [...s.exclude].sort() } : {}),
      packages: closure.map((p) => packageKey(p.name, p.arch)).sort(),
    };
  }
  for (const arch of [...wanted.keys()].sort()) {
    const pkgs = [...wanted.get(arch)!.values()];
    opts.onLine?.(`reading the metadata of ${pkgs.length} ${arch} packages`);
    for (const p of await apt.metadata(arch, pkgs)) {
      const key = packageKey(p.name, p.arch);
      const had = lock.packages[key];
      // an arch-all package in sets of two architectures is one package, so it needs one version
      if (had && had.version !== p.version) {
        throw new KilnError("SEED_RESOLVE_FAILED", `${key} resolved to ${had.version} in one architecture's sets and to ${p.version} in another's`,
          "the archive is between two uploads of it: run kiln seed lock again later, or pin it as name=version in the sets");
      }
      lock.packages[key] = p;
    }
  }
  return lock;
}

interface Resolved {
  name: string;
  version: string;
  arch: string;
}

/** apt with its own configuration, lists and caches under one directory. */
class PrivateApt {
  private readonly dir: string;

  constructor(private readonly sets: SeedSets, private readonly archs: string[], private readonly opts: ResolveOptions) {
    this.dir = opts.stateDir;
    const keyring = sets.keyring ?? DEFAULT_KEYRING;
    if (!existsSync(keyring)) {
      throw new KilnError("SEED_RESOLVE_FAILED", `the archive keyring ${keyring} is missing: apt cannot check the package lists' signatures`, "install it (apt-get install debian-archive-keyring), or name another in sets.json \"keyring\"");
    }
    for (const d of ["lists/partial", "empty", "etc"]) mkdirSync(join(this.dir, d), { recursive: true });
    const archive = sets.archive ?? DEFAULT_ARCHIVE;
    const security = sets.security ?? DEFAULT_SECURITY;
    const components = (sets.components ?? ["main"]).join(" ");
    const src = (url: string, suite: string) => `deb [signed-by=${keyring}] ${url} ${suite} ${components}`;
    writeFileSync(join(this.dir, "etc", "sources.list"),
      [src(archive, sets.suite), src(archive, `${sets.suite}-updates`), src(security, `${sets.suite}-security`)].join("\n") + "\n");
    this.writeConfig("update", archs[0]!, archs);
    for (const a of archs) this.writeConfig(a, a, [a]);
  }

  /** One apt.conf per use: fetching lists for all architectures, resolving for one. */
  private writeConfig(label: string, native: string, archs: string[]): void {
    const d = this.dir;
    const q = JSON.stringify;
    const empty = join(d, "empty");
    const cache = join(d, `cache-${label}`);
    mkdirSync(join(cache, "archives", "partial"), { recursive: true });
    const lines = [
      `Dir::Etc::main "/dev/null";`,
      `Dir::Etc::parts ${q(empty)};`,
      `Dir::Etc::sourcelist ${q(join(d, "etc", "sources.list"))};`,
      `Dir::Etc::sourceparts ${q(empty)};`,
      `Dir::Etc::preferences "/dev/null";`,
      `Dir::Etc::preferencesparts ${q(empty)};`,
      `Dir::Etc::trusted "/dev/null";`,
      `Dir::Etc::trustedparts ${q(empty)};`,
      `Dir::State::lists ${q(join(d, "lists"))};`,
      `Dir::State::status "/dev/null";`,
      `Dir::State::extended_states "/dev/null";`,
      `Dir::Cache ${q(cache)};`,
      `Dir::Log ${q(join(d, "log"))};`,
      `Debug::NoLocking "true";`,
      `APT::Sandbox::User "root";`,
      `Acquire::Languages "none";`,
      `APT::Install-Recommends "false";`,
      `APT::Install-Suggests "false";`,
      `APT::Get::Show-Versions "false";`,
      `APT::Architecture ${q(native)};`,
      `APT::Architectures { ${archs.map((a) => `${q(a)};`).join(" ")} };`,
    ];
    writeFileSync(join(d, `apt-${label}.conf`), lines.join("\n") + "\n");
  }

  requireLists(): void {
    const lists = join(this.dir, "lists");
    const have = existsSync(lists) ? readdirSync(lists).filter((f) => f.includes("_Packages")) : [];
    for (const a of this.archs) {
      if (!have.some((f) => f.includes(`binary-${a}_`))) {
        throw new KilnError("SEED_RESOLVE_FAILED", `no ${a} package lists in ${lists}`, "run kiln seed lock without --no-update once, to fetch them");
      }
    }
  }

  async update(): Promise<void> {
    const r = await this.run("update", "apt-get", ["-q", "update"]);
    if (r.code !== 0 || /^(E|W): (Failed to fetch|Some index files failed)/m.test(r.stderr)) {
      throw new KilnError("SEED_RESOLVE_FAILED", `apt-get update of the seed's package lists failed:\n${tail(r.stderr || r.stdout)}`,
        "check the network to the archive (sets.json \"archive\"/\"security\"), or use the lists already fetched: kiln seed lock --no-update");
    }
  }

  /**
   * The closure of `packages` from an empty system, as apt's solver installs it; `exclude`d
   * packages count as installed (so what only they need stays out too).
   */
  async closure(set: string, arch: string, packages: string[], exclude: string[]): Promise<Resolved[]> {
    // apt 2 upgrades the packages of one source together: an excluded package (installed, as apt
    // sees it) would be "upgraded" into the closure when a sibling is installed (openssl with libssl3)
    const status = exclude.length
      ? ["-o", `Dir::State::status=${await this.excludedStatus(set, arch, exclude)}`, "-o", "APT::Get::Upgrade-By-Source-Package=false"]
      : [];
    const r = await this.run(arch, "apt-get", [...status, "-s", "-q", "install", ...packages]);
    if (r.code !== 0) {
      const text = r.stdout + r.stderr;
      const unknown = [
        ...[...text.matchAll(/^E: Unable to locate package (\S+)$/gm)].map((m) => m[1]),
        ...[...text.matchAll(/^E: Package '(\S+)' has no installation candidate$/gm)].map((m) => m[1]),
        ...[...text.matchAll(/^E: Version '(\S+)' for '(\S+)' was not found$/gm)].map((m) => `${m[2]}=${m[1]}`),
      ];
      if (unknown.length) {
        throw new KilnError("SEED_INVALID", `set ${set} (${arch}): ${unknown.join(", ")} cannot be installed from ${this.sets.suite}:\n${tail(text)}`,
          "fix the package name in sets.json (a virtual package must be replaced by the package that provides it)");
      }
      throw new KilnError("SEED_RESOLVE_FAILED", `set ${set} (${arch}): apt cannot install the set:\n${tail(text)}`, "change the set's packages in sets.json so that they can be installed together");
    }
    const out: Resolved[] = [];
    for (const line of r.stdout.split("\n")) {
      const m = /^Inst (\S+) (?:\[\S+\] )?\((\S+) .*\[(\S+)\]\)/.exec(line);
      if (!m) {
        if (/^Remv /.test(line)) throw new Error(`apt wants to remove a package from an empty system: ${line}`);
        continue;
      }
      const [name, qual] = m[1]!.split(":");
      const pkgArch = m[3]!;
      if (qual !== undefined && qual !== arch) throw new KilnError("SEED_RESOLVE_FAILED", `set ${set} (${arch}): apt chose ${m[1]}, of another architecture`, "the set must be installable on its architecture alone");
      if (pkgArch !== arch && pkgArch !== "all") throw new KilnError("SEED_RESOLVE_FAILED", `set ${set} (${arch}): apt chose ${name} for ${pkgArch}`, "the set must be installable on its architecture alone");
      out.push({ name: name!, version: m[2]!, arch: pkgArch });
    }
    if (out.length === 0) throw new Error(`apt-get -s install printed no Inst lines for set ${set}:\n${tail(r.stdout)}`);
    return out;
  }

  /**
   * A dpkg status file in which the excluded packages are installed: their archive stanzas,
   * without the relations (an installed package with unmet dependencies would make apt fix them).
   */
  private async excludedStatus(set: string, arch: string, exclude: string[]): Promise<string> {
    const r = await this.run(arch, "apt-cache", ["show", "--no-all-versions", ...exclude]);
    const stanzas = r.stdout.split(/\n\n+/).filter((st) => /^Package: /m.test(st));
    const found = new Set(stanzas.map((st) => /^Package: (\S+)$/m.exec(st)![1]!));
    const missing = exclude.filter((p) => !found.has(p));
    if (r.code !== 0 || missing.length) {
      throw new KilnError("SEED_INVALID", `set ${set} (${arch}): excluded ${missing.join(", ") || "packages"} not found in ${this.sets.suite}:\n${tail(r.stderr)}`, "fix the name in the set's \"exclude\" list");
    }
    const keep = new Set(["Package", "Version", "Architecture", "Multi-Arch", "Provides", "Essential"]);
    const text = stanzas.map((st) => {
      const fields = st.split("\n").filter((l) => /^[A-Za-z-]+: /.test(l) && keep.has(l.slice(0, l.indexOf(":"))));
      return ["Status: install ok installed", ...fields, "Maintainer: excluded", "Description: excluded from the set"].join("\n");
    }).join("\n\n") + "\n";
    const file = join(this.dir, `status-${set}`);
    writeFileSync(file, text);
    return file;
  }

  /** url, size, sha256 and installed size of each package, exactly as the archive lists them. */
  async metadata(arch: string, pkgs: Resolved[]): Promise<LockedPackage[]> {
    const specs = pkgs.map((p) => `${p.name}:${p.arch}=${p.version}`);
    const uris = await this.run(arch, "apt-get", ["-q", "download", "--print-uris", ...specs]);
    if (uris.code !== 0) throw new KilnError("SEED_RESOLVE_FAILED", `apt-get download --print-uris failed:\n${tail(uris.stderr)}`, "run kiln seed lock again");
    const where = new Map<string, { url: string; size: number; sha256: string }>();
    for (const line of uris.stdout.split("\n")) {
      const m = /^'([^']+)' (\S+) (\d+) SHA256:([0-9a-f]{64})$/.exec(line);
      if (!m) continue;
      const [name, version, debArch] = decodeURIComponent(m[2]!).replace(/\.deb$/, "").split("_");
      where.set(`${name}:${debArch}=${version}`, { url: m[1]!, size: Number(m[3]), sha256: m[4]! });
    }
    const show = await this.run(arch, "apt-cache", ["show", ...specs]);
    if (show.code !== 0) throw new KilnError("SEED_RESOLVE_FAILED", `apt-cache show failed:\n${tail(show.stderr)}`, "run kiln seed lock again");
    const installed = new Map<string, number>();
    for (const stanza of show.stdout.split(/\n\n+/)) {
      const f = (k: string) => new RegExp(`^${k}: (.*)$`, "m").exec(stanza)?.[1];
      const [name, version, a, size] = [f("Package"), f("Version"), f("Architecture"), f("Installed-Size")];
      if (name && version && a && size) installed.set(`${name}:${a}=${version}`, Number(size) * 1024);
    }
    return pkgs.map((p, i) => {
      const w = where.get(specs[i]!);
      if (!w) throw new KilnError("SEED_RESOLVE_FAILED", `the archive's lists give no .deb with a SHA256 for ${specs[i]}`, "run kiln seed lock again; if it persists, leave the package out");
      const installedSize = installed.get(specs[i]!);
      return { name: p.name, version: p.version, arch: p.arch, sha256: w.sha256, size: w.size, ...(installedSize !== undefined ? { installedSize } : {}), url: w.url };
    });
  }

  private run(config: string, cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const env = { ...this.opts.env, APT_CONFIG: join(this.dir, `apt-${config}.conf`), LC_ALL: "C" };
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"], signal: this.opts.signal });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
      child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
      child.on("error", (e) => {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") reject(new KilnError("SEED_RESOLVE_FAILED", `${cmd} is not installed: kiln seed lock resolves with apt`, "run it on a Debian or Ubuntu machine with apt"));
        else if (this.opts.signal.aborted) reject(new KilnError("CANCELLED", "kiln seed lock cancelled; the lock was not changed"));
        else reject(e);
      });
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  }
}

function tail(s: string, n = 15): string {
  return s.trim().split("\n").slice(-n).map((l) => `  ${l}`).join("\n");
}
