// Stage 4, the final system (Linux From Scratch 11.3, chapter 8, the part a bootable system
// needs): the temporary system's packages built again, natively, in builds whose whole /usr is
// the temporary system (LFS's chroot: nothing of the seed), plus flex, bison, util-linux, pkgconf and e2fsprogs; then
// the root tree of the USB image: those packages, the toolchain's glibc, the usual directories,
// /etc, and init.
//
// glibc is the one stage 2 built (LFS rebuilds it in chapter 8 to run its test suite; the same
// source, version and configuration are installed either way).
import { derivation, sh, source, type Drv } from "kiln";
import { build, pkg, rootTree, type PackageArgs, type Platform } from "../std/index.js";
import * as src from "./sources.js";
import { gccInTreeLibs, glibc, linuxHeaders, TARGET } from "./toolchain.js";
import { packages as temporaryPackages, temporarySystem, toolArgs } from "./temporary.js";

type Source = { version: string; src: Drv };

/** The temporary system builds for itself: build = host = the target. */
export const onItself: Platform = { build: TARGET, host: TARGET };

/** A package of the final system: built natively on `usr` (the temporary system by default). */
function final(name: string, s: Source, a: Partial<PackageArgs> = {}): Drv {
  return pkg({ name, version: s.version, src: s.src, platform: onItself, layout: "system", usr: temporarySystem, ...a });
}

// coreutils and tar refuse to configure as root unless told; the sandbox's user is not root, but
// a build's configure cannot know which user it will be
const ALLOW_ROOT = { FORCE_UNSAFE_CONFIGURE: "1" };

export const m4 = final("m4", src.tools.m4);

export const ncurses = final("ncurses", src.tools.ncurses, {
  configureFlags: ["--mandir=/usr/share/man", "--with-shared", "--without-debug", "--without-normal", "--with-cxx-shared",
    "--enable-pc-files", "--enable-widec", "--with-pkg-config-libdir=/usr/lib/pkgconfig"],
  post: { install: `echo "INPUT(-lncursesw)" > $out/usr/lib/libncurses.so` },
});

export const bash = final("bash", src.tools.bash, toolArgs.bash);

export const coreutils = final("coreutils", src.tools.coreutils, { ...toolArgs.coreutils, env: ALLOW_ROOT });

export const diffutils = final("diffutils", src.tools.diffutils);
export const file = final("file", src.tools.file);
export const findutils = final("findutils", src.tools.findutils, toolArgs.findutils);
export const gawk = final("gawk", src.tools.gawk, toolArgs.gawk);
export const grep = final("grep", src.tools.grep);
export const gzip = final("gzip", src.tools.gzip);
export const make = final("make", src.tools.make, toolArgs.make);
export const patch = final("patch", src.tools.patch);
export const sed = final("sed", src.tools.sed);
export const tar = final("tar", src.tools.tar, { env: ALLOW_ROOT });
export const xz = final("xz", src.tools.xz, toolArgs.xz);

/** flex and bison (LFS 8.15, 8.32): the native binutils needs both (below). */
export const flex = final("flex", src.system.flex, {
  configureFlags: ["--disable-static"],
  post: { install: "ln -s flex $out/usr/bin/lex" },
});
// Debian's bison tarball has no manual (DFSG): no info pages (INFO_DEPS empty, and all-local's
// backup of them dropped); the examples extracted from the manual are in the tarball, and an
// empty, older stand-in for it keeps make from wanting to extract them again
export const bison = final("bison", src.system.bison, {
  makeFlags: ["MAKEINFO=true", "INFO_DEPS="],
  post: {
    patch: ": > doc/bison.texi && touch -d @0 doc/bison.texi",
    configure: "sed -i '/^all-local: .*info.bak$/d' Makefile",
  },
});

/**
 * Debian's binutils tree has lexers its patches changed (binutils/arlex.l) and lacks ld's
 * generated parser: it builds on the temporary system with flex and bison added.
 */
const withParserTools = rootTree("blazeneuro-temporary-system-flex-bison", {
  "linux-api-headers": linuxHeaders, glibc, ...temporaryPackages, flex, bison,
});

export const binutils = final("binutils", src.binutils, {
  usr: withParserTools,
  outOfTree: true,
  configureFlags: ["--sysconfdir=/etc", "--enable-ld=default", "--enable-plugins", "--enable-shared", "--disable-werror",
    "--enable-64-bit-bfd", "--disable-gprofng", "--disable-nls"],
  makeFlags: ["MAKEINFO=true", "tooldir=/usr"],
  post: { install: "rm -f $out/usr/lib/libbfd.a $out/usr/lib/libctf.a $out/usr/lib/libctf-nobfd.a $out/usr/lib/libopcodes.a $out/usr/lib/libsframe.a" },
});

export const gcc = final("gcc", src.gcc, {
  outOfTree: true,
  post: {
    patch: gccInTreeLibs,
    install: "ln -s gcc $out/usr/bin/cc",
  },
  // (gcc 12's --disable-fixincludes leaves stmp-fixinc wanting a fixinc.sh nothing builds)
  configureFlags: ["--enable-default-pie", "--enable-default-ssp", "--disable-multilib", "--disable-bootstrap", "--disable-nls",
    "--enable-languages=c,c++"],
  makeFlags: ["MAKEINFO=true"],
});

export const utilLinux = final("util-linux", src.system.utilLinux, {
  configureFlags: ["--bindir=/usr/bin", "--libdir=/usr/lib", "--sbindir=/usr/sbin", "--runstatedir=/run", "--disable-chfn-chsh",
    "--disable-login", "--disable-nologin", "--disable-su", "--disable-setpriv", "--disable-runuser", "--disable-pylibmount",
    "--disable-static", "--without-python", "--without-systemd", "--without-systemdsystemunitdir", "--without-udev",
    "--disable-makeinstall-chown", "--disable-makeinstall-setuid", "--disable-bash-completion", "--without-ncurses", "--without-ncursesw",
    "--without-tinfo", "--without-readline", "ADJTIME_PATH=/var/lib/hwclock/adjtime"],
});

/** pkg-config (LFS 8.27): e2fsprogs finds util-linux's libraries with it, and the system keeps it. */
export const pkgconf = final("pkgconf", src.system.pkgconf, {
  configureFlags: ["--disable-static"],
  post: { install: "ln -s pkgconf $out/usr/bin/pkg-config" },
});

/** e2fsprogs uses util-linux's libblkid and libuuid, found by pkg-config: it builds on the temporary system with both added. */
const withUtilLinux = rootTree("blazeneuro-temporary-system-util-linux", {
  "linux-api-headers": linuxHeaders, glibc, ...temporaryPackages, "util-linux": utilLinux, pkgconf,
});

export const e2fsprogs = final("e2fsprogs", src.system.e2fsprogs, {
  usr: withUtilLinux,
  outOfTree: true,
  configureFlags: ["--sysconfdir=/etc", "--enable-elf-shlibs", "--disable-libblkid", "--disable-libuuid", "--disable-uuidd", "--disable-fsck"],
  post: { install: "rm -f $out/usr/lib/libcom_err.a $out/usr/lib/libe2p.a $out/usr/lib/libext2fs.a $out/usr/lib/libss.a" },
});

export const packages = {
  m4, ncurses, bash, coreutils, diffutils, file, findutils, gawk, grep, gzip, make, patch, sed, tar, xz, flex, bison, binutils, gcc,
  "util-linux": utilLinux, pkgconf, e2fsprogs,
};

/** init, compiled on the temporary system: the system's PID 1 (files/init.c), poweroff/reboot, which signal it, and the root's growing at boot. */
export const init = derivation({
  name: "blazeneuro-init",
  usr: temporarySystem,
  script: sh`mkdir -p $out/usr/sbin
    gcc -O2 -Wall -Werror -o $out/usr/sbin/init ${source(import.meta.url, "files/init.c")}
    cp ${source(import.meta.url, "files/poweroff")} $out/usr/sbin/poweroff
    cp ${source(import.meta.url, "files/grow-root")} $out/usr/sbin/blazeneuro-grow-root
    chmod 0755 $out/usr/sbin/poweroff $out/usr/sbin/blazeneuro-grow-root
    ln -s poweroff $out/usr/sbin/reboot`,
});

/** /etc and the directories of a running system (LFS chapter 7.5-7.6, 9). */
export const etc = build({
  name: "blazeneuro-etc",
  script: sh`mkdir -p $out && cd $out
    mkdir -p etc/blazeneuro boot/efi dev home media mnt opt proc root run srv sys tmp var/lib/blazeneuro var/log var/tmp
    echo blazeneuro > etc/hostname
    printf 'NAME="BlazeNeuro"\nID=blazeneuro\nPRETTY_NAME="BlazeNeuro (Kiln)"\n' > etc/os-release
    cat > etc/fstab <<'EOF'
# file system   mount point  type   options           dump  fsck
LABEL=blazeroot /            ext4   defaults,rw       1     1
LABEL=BLAZEBOOT /boot/efi    vfat   noauto,umask=0077 0     2
EOF
    printf 'root:x:0:0:root:/root:/usr/bin/bash\nnobody:x:65534:65534:Unprivileged User:/dev/null:/usr/bin/false\n' > etc/passwd
    printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > etc/group
    printf '127.0.0.1 localhost blazeneuro\n::1 localhost\n' > etc/hosts
    # the time zone is UTC: no zoneinfo needed, glibc's default without /etc/localtime
    echo UTC > etc/timezone
    printf 'export PS1="\\\\u@\\\\h:\\\\w# "\n' > etc/profile
    cp ${source(import.meta.url, "files/selftest")} etc/blazeneuro/selftest`,
});

/** The final packages, the toolchain's glibc and the kernel headers, /etc, init; merged-/usr (bin, sbin, lib, lib64 -> usr/...). */
export const rootfsUnstripped = rootTree("blazeneuro-rootfs-unstripped", {
  "linux-api-headers": linuxHeaders, glibc, ...packages, init, etc,
}, { bin: "usr/bin", lib: "usr/lib", lib64: "usr/lib64", sbin: "usr/sbin" });

/**
 * The root of the USB image: that tree with the debug information stripped from every ELF file
 * and archive (LFS 8.84), on the temporary system's strip (archives rewritten with zero dates and
 * ids, or each build would differ). The debug information named the
 * build's paths (stage 3's headers in the store) and was half of the tree (gcc's cc1, cc1plus,
 * lto1).
 */
export const rootfs = derivation({
  name: "blazeneuro-rootfs",
  usr: temporarySystem,
  script: sh`cp -a ${rootfsUnstripped}/. $out
    chmod -R u+w $out
    find $out/usr -type f | while read -r f; do
      case "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" in
        7f454c46|213c6172) strip --strip-debug --enable-deterministic-archives "$f" ;;
      esac
    done`,
});
