// Stage 2, the cross toolchain for x86_64-blazeneuro-linux-gnu (Linux From Scratch 11.3, chapter
// 5), each step a derivation on the bootstrap seed:
//
//   binutils-pass1 ─┐
//                   ├─▶ gcc-pass1 ─┬─▶ glibc ──┐
//   linux-headers ──┼──────────────┘           ├─▶ sysroot-c ─▶ libstdc++ ─▶ sysroot ─▶ cross-toolchain
//                   └──────────────────────────┘
//
// The cross tools install into their own store paths (layout "store"); what the target runs
// (headers, glibc, libstdc++) installs as a system tree (usr/...) and is merged into the sysroot.
// gcc and binutils are configured with a sysroot that cannot exist (SYSROOT_DEFAULT): the
// toolchain's wrappers give the real one with --sysroot, since the sysroot is built by the
// compiler it belongs to and no store path can name its own dependant.
import { sh, type Drv } from "kiln";
import { build, BUILD_TRIPLE, pkg, rootTree, type Platform, type Toolchain } from "../std/index.js";
import * as src from "./sources.js";

/** BlazeNeuro's target triple: a vendor of its own keeps its tools apart from the seed's. */
export const TARGET = "x86_64-blazeneuro-linux-gnu";

/** The configured default sysroot: never there; gcc -v says why. The wrappers pass the real one. */
export const SYSROOT_DEFAULT = "/nonexistent/blazeneuro-sysroot";

/** Tools that run on the build machine and emit code for BlazeNeuro. */
const crossTools: Platform = { build: BUILD_TRIPLE, host: BUILD_TRIPLE, target: TARGET };

/** Code that runs on BlazeNeuro, compiled on the build machine. */
export const onTarget: Platform = { build: BUILD_TRIPLE, host: TARGET };

export const binutilsPass1 = pkg({
  name: "binutils-pass1",
  version: src.binutils.version,
  src: src.binutils.src,
  platform: crossTools,
  outOfTree: true,
  configureFlags: [`--with-sysroot=${SYSROOT_DEFAULT}`, "--disable-nls", "--enable-gprofng=no", "--disable-werror"],
  makeFlags: ["MAKEINFO=true"],
});

/**
 * gcc's tree made ready: Debian's patch for its manual-less tarball (-p2: Debian's paths start
 * with src/); gmp, mpfr and mpc unpacked inside it, built with it and linked statically into cc1.
 * Debian's gmp tarball has its GFDL manual removed, and so its doc/ folder, which configure still
 * lists.
 */
export const gccInTreeLibs = sh`
  patch -p2 --no-backup-if-mismatch < ${src.gccGfdlBuildPatch}
  for l in gmp:${src.gmp.src} mpfr:${src.mpfr.src} mpc:${src.mpc.src}; do
    mkdir "\${l%%:*}" && tar -xf "\${l#*:}" -C "\${l%%:*}" --strip-components=1 --no-same-owner
  done
  test -d gmp/doc || { sed -i 's| doc/Makefile||' gmp/configure; sed -i 's|^\(SUBDIRS = .*\) doc$|\1|' gmp/Makefile.in; }
  # 64-bit libraries in lib, not lib64 (one ABI, no multilib)
  sed -e '/m64=/s/lib64/lib/' -i gcc/config/i386/t-linux64`;

export const gccPass1 = pkg({
  name: "gcc-pass1",
  version: src.gcc.version,
  src: src.gcc.src,
  platform: crossTools,
  deps: [binutilsPass1],
  outOfTree: true,
  configureFlags: [
    sh`--with-as=${binutilsPass1}/bin/${TARGET}-as`, sh`--with-ld=${binutilsPass1}/bin/${TARGET}-ld`,
    `--with-sysroot=${SYSROOT_DEFAULT}`, `--with-gxx-include-dir=${SYSROOT_DEFAULT}/usr/include/c++/${src.gcc.version}`,
    "--with-glibc-version=2.36", "--with-newlib", "--without-headers", "--enable-default-pie", "--enable-default-ssp",
    "--disable-nls", "--disable-shared", "--disable-multilib", "--disable-threads", "--disable-libatomic", "--disable-libgomp",
    "--disable-libquadmath", "--disable-libssp", "--disable-libvtv", "--disable-libstdcxx", "--enable-languages=c,c++",
  ],
  makeFlags: ["MAKEINFO=true"],
  // built without a C library's headers, gcc's limits.h lacks the part that includes the system's;
  // the whole one is made from gcc's own pieces, as its installer would with headers present
  post: {
    patch: gccInTreeLibs,
    install: sh`cd "$KILN_SOURCE"
      cat gcc/limitx.h gcc/glimits.h gcc/limity.h > "$(dirname "$($out/bin/${TARGET}-gcc -print-libgcc-file-name)")/include/limits.h"`,
  },
});

/** Linux's user-space API headers (make headers), as usr/include. */
export const linuxHeaders = pkg({
  name: "linux-api-headers",
  version: "6.1",
  src: src.linuxSourceTarball,
  seed: ["kernel"],
  phases: {
    configure: "make mrproper",
    build: "make ARCH=x86_64 headers",
    install: `find usr/include -type f ! -name '*.h' -delete
      mkdir -p $out/usr && cp -R usr/include $out/usr/include`,
  },
});

/** The cross compiler without a C library: what glibc is built with. */
const gccAlone: Toolchain = { triple: TARGET, tree: gccPass1 };

export const glibc = pkg({
  name: "glibc",
  version: src.glibc.version,
  src: src.glibc.src,
  platform: onTarget,
  layout: "system",
  toolchain: gccAlone,
  deps: [binutilsPass1],
  // glibc's build generates code with Python 3 scripts
  seed: ["python"],
  outOfTree: true,
  pre: { configure: `mkdir -p ../build && echo "rootsbindir=/usr/sbin" > ../build/configparms` },
  configureFlags: ["--enable-kernel=3.2", sh`--with-headers=${linuxHeaders}/usr/include`, "--disable-werror", "libc_cv_slibdir=/usr/lib"],
  // Debian's tree has no manual sources; manual/Makefile skips the info install only when
  // MAKEINFO is ":" (with "true" it still asks for libc.texinfo)
  makeFlags: ["MAKEINFO=:"],
  post: {
    install: `# the loader where the x86_64 ABI puts it: /lib64 (-> usr/lib64 in a merged-/usr tree)
      mkdir -p $out/usr/lib64
      ln -s ../lib/ld-linux-x86-64.so.2 $out/usr/lib64/ld-linux-x86-64.so.2
      ln -s ../lib/ld-linux-x86-64.so.2 $out/usr/lib64/ld-lsb-x86-64.so.3
      sed '/RTLDLIST=/s@/usr@@g' -i $out/usr/bin/ldd
      # the dynamic linker's cache is made on the system itself
      rm -rf $out/var/db`,
  },
});

/**
 * A cross toolchain: binutils' and gcc's commands for the target in one bin/, gcc's drivers as
 * wrappers that give the sysroot (exec the real driver with --sysroot), the others as links; and
 * sysroot -> the sysroot, for a user who wants to look.
 */
function wrapTools(name: string, sysroot: Drv): Drv {
  return build({
    name,
    script: sh`mkdir -p $out/bin
      for d in ${binutilsPass1}/bin ${gccPass1}/bin; do
        for f in "$d"/${TARGET}-*; do
          t=$out/bin/$(basename "$f")
          case "$(basename "$f")" in
            ${TARGET}-gcc|${TARGET}-g++|${TARGET}-c++|${TARGET}-cpp|${TARGET}-gcc-${src.gcc.version})
              printf '#!/bin/sh\nexec %s --sysroot=%s "$@"\n' "$f" ${sysroot} > "$t"; chmod 0755 "$t" ;;
            *) ln -s "$f" "$t" ;;
          esac
        done
      done
      ln -s ${sysroot} $out/sysroot`,
  });
}

/** headers and glibc: the sysroot libstdc++ is built against */
export const sysrootC = rootTree("blazeneuro-sysroot-c", { "linux-api-headers": linuxHeaders, glibc });

export const crossC = wrapTools("blazeneuro-cross-c", sysrootC);

export const libstdcxx = pkg({
  name: "libstdc++",
  version: src.gcc.version,
  src: src.gcc.src,
  platform: onTarget,
  layout: "system",
  toolchain: { triple: TARGET, tree: crossC },
  outOfTree: true,
  configureScript: "libstdc++-v3/configure",
  configureFlags: ["--disable-multilib", "--disable-nls", "--disable-libstdcxx-pch", `--with-gxx-include-dir=/usr/include/c++/${src.gcc.version}`],
  makeFlags: ["MAKEINFO=true"],
});

export const sysroot = rootTree("blazeneuro-sysroot", { "linux-api-headers": linuxHeaders, glibc, "libstdc++": libstdcxx });

/** The stage's result: x86_64-blazeneuro-linux-gnu-{gcc,g++,ld,as,...} with the whole sysroot. */
export const cross = wrapTools("blazeneuro-cross", sysroot);

export const crossToolchainOf: Toolchain = { triple: TARGET, tree: cross };

