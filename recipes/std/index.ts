// The standard helpers recipe authors use: a shell build step with the usual base tools, Debian
// package fetch + unpack, and the host tool sets most builds declare.
import { derivation, fetch, sh, type DerivationArgs, type Drv, type Value } from "kiln";

/** Commands nearly every shell build step needs (all fingerprinted into the hash). */
export const BASE_TOOLS: readonly string[] = [
  "sh", "bash", "pkg:coreutils", "pkg:sed", "pkg:grep", "pkg:findutils", "pkg:diffutils",
  "pkg:tar", "pkg:gzip", "pkg:xz-utils", "awk",
];

/** The host C toolchain. */
export const HOST_CC: readonly string[] = ["gcc", "cc", "cpp", "pkg:binutils", "pkg:binutils-x86-64-linux-gnu", "make"];

/** The aarch64 cross toolchain (glibc triplet; musl comes from a specs file, see pi4-llm-os). */
export const CROSS_AARCH64: readonly string[] = ["pkg:gcc-aarch64-linux-gnu", "pkg:gcc-12-aarch64-linux-gnu", "pkg:binutils-aarch64-linux-gnu", "pkg:cpp-12-aarch64-linux-gnu"];

/**
 * The same with C++ and the static glibc and libstdc++ it links against. The library packages
 * have no commands: declaring them puts their versions into the hash.
 */
export const CROSS_AARCH64_CXX: readonly string[] = [
  ...CROSS_AARCH64, "pkg:g++-aarch64-linux-gnu", "pkg:g++-12-aarch64-linux-gnu", "pkg:libstdc++-12-dev-arm64-cross", "pkg:libc6-dev-arm64-cross",
];

export interface BuildArgs extends Omit<DerivationArgs, "script" | "builder" | "args"> {
  /** the build script (sh -e -u), run in /build with $out set */
  script: Value;
  /** extra host tools on top of BASE_TOOLS */
  tools?: readonly string[];
}

/** A shell build step with the base tools on PATH. */
export function build(a: BuildArgs): Drv {
  const { tools = [], hostTools = [], script, ...rest } = a;
  return derivation({ ...rest, hostTools: [...new Set([...BASE_TOOLS, ...tools, ...hostTools])], script });
}

export interface DebSpec {
  package: string;
  version: string;
  arch?: string;
  /** sha256 of the .deb file exactly as Debian's archive serves it */
  sha256: string;
  /**
   * Other places with the same bytes, tried after apt: the archive's pool URL (while the version
   * is current) and snapshot.debian.org/file/<sha1> (for good, once superseded).
   */
  urls?: string[];
}

/** Store name for a .deb: Debian's own file naming, with the epoch colon made safe. */
function debName(d: DebSpec): string {
  return `${d.package}_${d.version.replace(/^\d+:/, "")}_${d.arch ?? "all"}.deb`.replace(/[^a-zA-Z0-9+._?=-]/g, "_");
}

/** A pinned Debian binary package (.deb), fetched with apt-get download and checked by sha256. */
export function fetchDeb(d: DebSpec): Drv {
  return fetch({
    name: debName(d),
    sha256: d.sha256,
    sources: [{ deb: { package: d.package, version: d.version, ...(d.arch ? { arch: d.arch } : {}) } }, ...(d.urls ?? []).map((url) => ({ url }))],
  });
}

export interface NpmSpec {
  name: string;
  /** an exact version */
  version: string;
  /** sha256 of the tarball exactly as the registry serves it (`npm pack NAME@VERSION; sha256sum *.tgz`) */
  sha256: string;
}

/** A pinned npm package tarball, from the npm registry (or `kiln store add-fixed`, or a mirror). */
export function fetchNpm(p: NpmSpec): Drv {
  return fetch({
    name: `${p.name.replace(/^@/, "").replace("/", "-")}-${p.version}.tgz`,
    sha256: p.sha256,
    sources: [{ npm: { name: p.name, version: p.version } }],
  });
}

/** The files of a .deb (its data part), unpacked with dpkg-deb. */
export function unpackDeb(name: string, deb: Drv): Drv {
  return build({
    name,
    tools: ["dpkg-deb"],
    script: sh`
      mkdir -p $out
      dpkg-deb -x ${deb} $out
      # documentation is not part of what we ship
      rm -rf $out/usr/share/doc $out/usr/share/man $out/usr/share/lintian
    `,
  });
}
