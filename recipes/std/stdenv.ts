// The stdenv: a package built in phases, the autotools way, on the bootstrap seed. The vocabulary is
// nixpkgs' stdenv.mkDerivation (unpack, patch, configure, build, check, install, fixup; a pre and a
// post hook around each; any phase replaceable), the platform triples are GNU's (build, host,
// target), and dependencies are wired into the environment rather than spliced into scripts:
//
//   package({ name: "m4", version: "1.4.19", src, layout: "system", platform: cross(toolchain) })
//
// - `deps`: store-layout packages (prefix = their store path) whose bin/ goes on PATH, include/ on
//   CPATH, lib/ on LIBRARY_PATH, lib/pkgconfig and share/pkgconfig on PKG_CONFIG_PATH. Those are
//   packages of the build machine: in a cross build (host != build) they give tools only (PATH),
//   since their headers and libraries are not the host's, and CPATH would reach the cross
//   compiler too; the host's headers and libraries come from the toolchain's sysroot.
// - `toolchain`: a cross toolchain (its bin/ holds <triple>-gcc, <triple>-ld...). Configure is
//   given --host (and --target), so autoconf picks the prefixed tools itself; CC, CXX, AR... are
//   also set for Makefiles that do not use autoconf.
// - `layout`: "store" installs with --prefix=$out (tools that run from the store: a cross
//   compiler); "system" configures --prefix=/usr and installs with DESTDIR=$out (a tree for a
//   system image, merged with others by `rootTree`).
//
// Every phase prints a "== phase" line, so a failed build's log says where it stopped.
import { concat, derivation, sh, type Drv, type OutputRef, type Value } from "kiln";
import { seed, type SeedSet } from "./seed.js";

export type Phase = "unpack" | "patch" | "configure" | "build" | "check" | "install" | "fixup";
export const PHASES: readonly Phase[] = ["unpack", "patch", "configure", "build", "check", "install", "fixup"];

/** GNU triples: where the build runs, where its output runs, and (for compilers) what they emit code for. */
export interface Platform {
  build: string;
  host: string;
  target?: string;
}

/** The seed's machine: Debian's amd64 gcc answers this to -dumpmachine (config.guess says x86_64-pc-linux-gnu). */
export const BUILD_TRIPLE = "x86_64-pc-linux-gnu";

/** A build for the machine it runs on. */
export const native: Platform = { build: BUILD_TRIPLE, host: BUILD_TRIPLE };

/** A cross toolchain: a tree whose bin/ holds `<triple>-gcc`, `<triple>-g++`, `<triple>-ld`... */
export interface Toolchain {
  triple: string;
  tree: Drv | OutputRef;
}

export interface PackageArgs {
  name: string;
  version: string;
  /** a tarball (any compression tar reads) or a directory */
  src: Value;
  /** the directory the source unpacks to, if not the single top-level one */
  sourceRoot?: string;
  /** patch files, applied with patch -p1 in order */
  patches?: Value[];
  /** store-layout packages of the build machine: bin/ on PATH; include/ and lib/ on the search paths unless the build is a cross build */
  deps?: Array<Drv | OutputRef>;
  /** the compiler for `platform.host` when it is not the build machine */
  toolchain?: Toolchain;
  platform?: Platform;
  /** "store" (default): --prefix=$out; "system": --prefix=/usr and DESTDIR=$out */
  layout?: "store" | "system";
  /** configure in a directory of its own (gcc, glibc and binutils ask for it) */
  outOfTree?: boolean;
  /** the configure script, relative to the source root (default: configure) */
  configureScript?: string;
  configureFlags?: Value[];
  /** without --build/--host/--target (a configure script that is not autoconf's) */
  noPlatformFlags?: boolean;
  makeFlags?: Value[];
  buildTargets?: Value[];
  installTargets?: Value[];
  /** run `make check` (default false: a test suite on a cross build cannot run) */
  doCheck?: boolean;
  checkTargets?: Value[];
  /** replace a phase's script */
  phases?: Partial<Record<Phase, Value>>;
  /** run before a phase (in its directory) */
  pre?: Partial<Record<Phase, Value>>;
  /** run after a phase */
  post?: Partial<Record<Phase, Value>>;
  env?: Record<string, Value>;
  /** seed sets the build needs besides `base` */
  seed?: readonly SeedSet[];
  /**
   * The tree that is the build's whole /usr instead of the seed (a system built with itself:
   * Linux From Scratch's chroot). Excludes `seed`.
   */
  usr?: Drv | OutputRef;
  outputs?: string[];
  /** build with `make -j1` (a Makefile that races) */
  serial?: boolean;
}

/** The default script of each phase. */
function defaultPhases(a: PackageArgs): Record<Phase, Value> {
  const prefix = a.layout === "system" ? "/usr" : "$out";
  const p = a.platform ?? native;
  const platformFlags = a.noPlatformFlags ? [] : [`--build=${p.build}`, `--host=${p.host}`, ...(p.target ? [`--target=${p.target}`] : [])];
  const configure = a.outOfTree ? `"$KILN_SOURCE/${a.configureScript ?? "configure"}"` : `./${a.configureScript ?? "configure"}`;
  const jobs = a.serial ? "-j1" : `-j"$KILN_BUILD_CORES"`;
  const destdir = a.layout === "system" ? ["DESTDIR=$out"] : [];
  return {
    unpack: sh`kiln_unpack ${a.src} ${a.sourceRoot ?? ""}`,
    patch: a.patches?.length ? sh`for p in ${a.patches}; do echo "patching with $p"; patch -p1 --no-backup-if-mismatch < "$p"; done` : "",
    configure: sh`${a.outOfTree ? "mkdir -p ../build && cd ../build\n" : ""}${configure} --prefix=${prefix} ${platformFlags} ${a.configureFlags ?? []}`,
    build: sh`make ${jobs} ${a.makeFlags ?? []} ${a.buildTargets ?? []}`,
    check: a.doCheck ? sh`make ${jobs} ${a.makeFlags ?? []} ${a.checkTargets ?? ["check"]}` : "",
    install: sh`make ${a.makeFlags ?? []} ${destdir} ${a.installTargets ?? ["install"]}`,
    fixup: sh`kiln_fixup`,
  };
}

/**
 * Shell functions every package script starts with.
 * - kiln_unpack SRC [ROOT]: a tarball or a directory into /build/src, then cd into its root.
 * - kiln_fixup: what makes an output mergeable and free of the build's paths: libtool archives
 *   (.la, which name the build's directories) and info's `dir` index (every package ships its own)
 *   are removed.
 */
const PRELUDE = `
kiln_unpack() {
  mkdir -p /build/src && cd /build/src
  if [ -d "$1" ]; then cp -R "$1"/. . && chmod -R u+w .; else tar -xf "$1" --no-same-owner --no-same-permissions; fi
  if [ -n "\${2:-}" ]; then cd "$2"
  elif [ "$(ls -A | wc -l)" = 1 ] && [ -d "$(ls -A)" ]; then cd "$(ls -A)"
  fi
  KILN_SOURCE=$(pwd); export KILN_SOURCE
}
kiln_fixup() {
  for o in $KILN_OUTPUTS; do
    eval "d=\\$$o"
    [ -d "$d" ] || continue
    find "$d" -name '*.la' -type f -delete
    find "$d" -path '*/share/info/dir' -type f -delete
  done
}
`;

/** PATH, CPATH, LIBRARY_PATH and PKG_CONFIG_PATH entries for the dependencies, and the cross tools. */
function depsEnv(a: PackageArgs): Value {
  const deps = a.deps ?? [];
  const lines: Value[] = [];
  const add = (v: string, dirs: Value[]) => {
    if (dirs.length) lines.push(concat(`${v}=`, ...dirs.flatMap((d, i) => (i ? [":", d] : [d])), `\${${v}:+:$${v}}; export ${v}\n`));
  };
  const tc = a.toolchain ? [sh`${a.toolchain.tree}/bin`] : [];
  add("PATH", [...tc, ...deps.map((d) => sh`${d}/bin`)]);
  const p = a.platform ?? native;
  if (p.host === p.build) {
    add("CPATH", deps.map((d) => sh`${d}/include`));
    add("LIBRARY_PATH", deps.map((d) => sh`${d}/lib`));
    add("PKG_CONFIG_PATH", deps.flatMap((d) => [sh`${d}/lib/pkgconfig`, sh`${d}/share/pkgconfig`]));
  }
  if (a.toolchain) {
    const t = a.toolchain.triple;
    for (const [v, tool] of Object.entries({ CC: "gcc", CXX: "g++", CPP: "cpp", AR: "ar", AS: "as", LD: "ld", NM: "nm", OBJCOPY: "objcopy", OBJDUMP: "objdump", RANLIB: "ranlib", READELF: "readelf", STRIP: "strip" })) {
      lines.push(`${v}=${t}-${tool}; export ${v}\n`);
    }
  }
  return lines;
}

/** The script of a package: prelude, environment, then each phase with its hooks. */
export function packageScript(a: PackageArgs): Value {
  const phases = { ...defaultPhases(a), ...(a.phases ?? {}) };
  const body: Value[] = [PRELUDE, `KILN_OUTPUTS="${(a.outputs ?? ["out"]).join(" ")}"\n`, depsEnv(a)];
  for (const ph of PHASES) {
    const parts = [a.pre?.[ph], phases[ph], a.post?.[ph]].filter((x): x is Value => x !== undefined && x !== "");
    if (!parts.length) continue;
    body.push(`echo "== ${ph}"\n`);
    for (const x of parts) body.push(x, "\n");
  }
  return body;
}

/** A package built in phases (see the head of this file); named name-version. */
export function pkg(a: PackageArgs): Drv {
  if (a.usr && a.seed?.length) throw new Error(`package ${a.name}: \`usr\` replaces the seed, so \`seed: [${a.seed.join(", ")}]\` cannot be given with it`);
  return derivation({
    name: `${a.name}-${a.version}`,
    usr: a.usr ?? seed("base", ...(a.seed ?? [])),
    ...(a.outputs ? { outputs: a.outputs } : {}),
    ...(a.env ? { env: a.env } : {}),
    script: sh`${packageScript(a)}`,
  });
}

/** `package` under the name issues and users know it by. */
export { pkg as package };

/**
 * One system tree from packages installed with layout "system" (each a tree of usr/...): merged
 * with hard links, each path from one package, as the seed's trees are (engine/builtins/
 * seed-root.ts), with `links` made as symlinks (e.g. usr/bin/sh -> bash) and `prefer` naming the
 * part that wins a path two parts ship differently. The result can be a
 * build's /usr (a chroot, in Linux From Scratch's terms) or the root of an image.
 */
export function rootTree(name: string, parts: Record<string, Drv | OutputRef>, links: Record<string, string> = {}, prefer: Record<string, string> = {}): Drv {
  const args: Array<string | Drv | OutputRef> = [];
  for (const n of Object.keys(parts).sort()) args.push("package", n, parts[n]!);
  for (const p of Object.keys(links).sort()) args.push("link", p, links[p]!);
  for (const p of Object.keys(prefer).sort()) args.push("prefer", p, prefer[p]!);
  return derivation({ name, builder: "builtin:seed-root", args });
}
