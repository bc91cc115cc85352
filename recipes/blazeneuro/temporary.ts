// Stage 3, the temporary system (Linux From Scratch 11.3, chapter 6): the tools the native stages
// build with, cross-compiled with stage 2 for x86_64-blazeneuro-linux-gnu and installed as system
// trees (usr/...), then binutils and gcc again, now as programs of the target. Merged with the
// sysroot's glibc and headers, they make `temporarySystem`: a tree that is a build's whole /usr
// (LFS's chroot) with nothing of the seed in it, where gcc compiles natively (`tests.hello`).
import { derivation, sh, type Drv } from "kiln";
import { pkg, rootTree, type PackageArgs } from "../std/index.js";
import * as src from "./sources.js";
import { crossToolchainOf, gccInTreeLibs, glibc, linuxHeaders, onTarget, sysroot, TARGET } from "./toolchain.js";

type Source = { version: string; src: Drv };

/** A package of the temporary system: cross-compiled, installed as a system tree. */
function temporary(name: string, s: Source, a: Partial<PackageArgs> = {}): Drv {
  return pkg({ name, version: s.version, src: s.src, platform: onTarget, layout: "system", toolchain: crossToolchainOf, ...a });
}

/** Tools a package builds for the build machine first (ncurses' tic, file's file): the seed's compiler, not the cross one. */
const NATIVE = "unset CC CXX CPP AR AS LD NM OBJCOPY OBJDUMP RANLIB READELF STRIP";

export const m4 = temporary("m4", src.tools.m4);

export const ncurses = temporary("ncurses", src.tools.ncurses, {
  pre: {
    configure: `sed -i s/mawk// configure
      mkdir build && (cd build && ${NATIVE} && ../configure && make -C include && make -C progs tic)`,
  },
  configureFlags: ["--mandir=/usr/share/man", "--with-manpage-format=normal", "--with-shared", "--without-normal", "--with-cxx-shared",
    "--without-debug", "--without-ada", "--disable-stripping", "--enable-widec"],
  phases: { install: `make DESTDIR=$out TIC_PATH=$KILN_SOURCE/build/progs/tic install` },
  post: { install: `echo "INPUT(-lncursesw)" > $out/usr/lib/libncurses.so` },
});

/** What a tool is configured with in both stages that build it: stage 3 (cross) and stage 4 (native). */
export const toolArgs = {
  bash: { configureFlags: ["--without-bash-malloc"], post: { install: "ln -s bash $out/usr/bin/sh" } },
  coreutils: {
    configureFlags: ["--enable-install-program=hostname", "--enable-no-install-program=kill,uptime"],
    post: { install: "mkdir -p $out/usr/sbin && mv $out/usr/bin/chroot $out/usr/sbin/chroot" },
  },
  findutils: { configureFlags: ["--localstatedir=/var/lib/locate"] },
  // gawk's extras are not needed; Debian's tarball has no gawk.texi sources (GFDL), so doc/ and
  // awklib/ (whose example programs are extracted from them) are left out too
  gawk: { pre: { configure: "sed -i -e 's/extras//' -e 's/^\\(SUBDIRS = .*\\) doc awklib /\\1 /' Makefile.in" } },
  make: { configureFlags: ["--without-guile"] },
  xz: { configureFlags: ["--disable-static"] },
} satisfies Record<string, Partial<PackageArgs>>;

export const bash = temporary("bash", src.tools.bash, toolArgs.bash);

export const coreutils = temporary("coreutils", src.tools.coreutils, toolArgs.coreutils);

export const diffutils = temporary("diffutils", src.tools.diffutils);

export const file = temporary("file", src.tools.file, {
  // file's build runs file to compile its magic: the same version, for the build machine
  pre: { configure: `mkdir build && (cd build && ${NATIVE} && ../configure --disable-bzlib --disable-libseccomp --disable-xzlib --disable-zlib && make)` },
  makeFlags: ["FILE_COMPILE=$KILN_SOURCE/build/src/file"],
});

export const findutils = temporary("findutils", src.tools.findutils, toolArgs.findutils);
export const gawk = temporary("gawk", src.tools.gawk, toolArgs.gawk);

export const grep = temporary("grep", src.tools.grep);
export const gzip = temporary("gzip", src.tools.gzip);
export const make = temporary("make", src.tools.make, toolArgs.make);
export const patch = temporary("patch", src.tools.patch);
export const sed = temporary("sed", src.tools.sed);
export const tar = temporary("tar", src.tools.tar);
export const xz = temporary("xz", src.tools.xz, toolArgs.xz);

export const binutilsPass2 = temporary("binutils-pass2", src.binutils, {
  outOfTree: true,
  // libtool would link the build's libraries against the installed ones under DESTDIR's prefix
  pre: { configure: "sed '6009s/$add_dir//' -i ltmain.sh" },
  configureFlags: ["--disable-nls", "--enable-shared", "--enable-gprofng=no", "--disable-werror", "--enable-64-bit-bfd"],
  makeFlags: ["MAKEINFO=true"],
  post: { install: "rm -f $out/usr/lib/libbfd.a $out/usr/lib/libctf.a $out/usr/lib/libctf-nobfd.a $out/usr/lib/libopcodes.a" },
});

export const gccPass2 = temporary("gcc-pass2", src.gcc, {
  platform: { ...onTarget, target: TARGET },
  outOfTree: true,
  post: {
    patch: sh`${gccInTreeLibs}
      # libgcc and libstdc++ with POSIX threads, which the cross gcc could not give them
      sed '/thread_header =/s/@.*@/gthr-posix.h/' -i libgcc/Makefile.in libstdc++-v3/include/Makefile.in`,
    install: "ln -s gcc $out/usr/bin/cc",
  },
  configureFlags: [
    `LDFLAGS_FOR_TARGET=-L/build/src/build/${TARGET}/libgcc`, sh`--with-build-sysroot=${sysroot}`,
    "--enable-default-pie", "--enable-default-ssp", "--disable-nls", "--disable-multilib", "--disable-libatomic", "--disable-libgomp",
    "--disable-libquadmath", "--disable-libssp", "--disable-libvtv", "--enable-languages=c,c++",
  ],
  makeFlags: ["MAKEINFO=true"],
});

export const packages = { m4, ncurses, bash, coreutils, diffutils, file, findutils, gawk, grep, gzip, make, patch, sed, tar, xz, "binutils-pass2": binutilsPass2, "gcc-pass2": gccPass2 };

/**
 * The temporary system as one tree: glibc, the kernel headers and every package above (gcc pass
 * 2 brings its own libstdc++). A build whose /usr it is sees no seed: LFS's chroot.
 */
export const temporarySystem = rootTree("blazeneuro-temporary-system", { "linux-api-headers": linuxHeaders, glibc, ...packages });

/**
 * The proof: in a build whose whole /usr is the temporary system, gcc and g++ compile a C and a
 * C++ program, which run through the system's own loader; the report says what each binary's
 * interpreter and libraries are.
 */
export const hello = derivation({
  name: "blazeneuro-hello",
  usr: temporarySystem,
  script: sh`
    test ! -e /usr/lib/x86_64-linux-gnu || { echo "the Debian seed is visible: /usr/lib/x86_64-linux-gnu exists"; exit 1; }
    cat > hello.c <<'EOF'
#include <stdio.h>
#include <gnu/libc-version.h>
int main(void) { printf("hello from C, glibc %s\n", gnu_get_libc_version()); return 0; }
EOF
    cat > hello.cpp <<'EOF'
#include <iostream>
#include <string>
#include <vector>
int main() { std::vector<std::string> w{"hello", "from", "C++"}; for (auto& s : w) std::cout << s << ' '; std::cout << __VERSION__ << '\n'; }
EOF
    gcc -O2 -o hello-c hello.c
    g++ -O2 -o hello-cpp hello.cpp
    mkdir -p $out/bin
    cp hello-c hello-cpp $out/bin/
    {
      echo "compiler: $(gcc -dumpmachine) $(gcc -dumpversion)"
      for p in hello-c hello-cpp; do
        echo "$p: $(./$p)"
        echo "$p interpreter: $(readelf -l $p | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
        echo "$p needs: $(readelf -d $p | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
      done
      echo "loader: /lib64/ld-linux-x86-64.so.2 -> $(readlink -f /lib64/ld-linux-x86-64.so.2)"
      ldd ./hello-cpp
    } | tee $out/report.txt
  `,
});
