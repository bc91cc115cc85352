// Linux for arm64 or x86_64 from Debian's 6.1 source: tinyconfig + named kconfig fragments merged with the
// kernel's own scripts/kconfig/merge_config.sh, built out of tree, reproducibly. One function, one
// configuration per system (pi4-llm-os, m-series): a system is its fragments and a few options.
//
// Every symbol a fragment sets must survive `olddefconfig` (dependencies met), or the build fails
// and names the symbol, so a fragment never silently does nothing. A symbol asked off that another
// one selects back on is a warning, or a failure with `strictOff`.
import { sh, type Drv } from "kiln";
import { build, fetchDeb, type SeedSet } from "./index.js";
import type { Toolchain } from "./stdenv.js";

/**
 * Debian's linux-source-6.1: Debian's variant of Linux 6.1 (Debian patches applied, non-free bits
 * removed). It is not byte-identical to a kernel.org release, so it is named and pinned as
 * Debian's; an upstream tarball would be a different source with its own hash.
 */
export const linuxSourceDeb = fetchDeb({
  package: "linux-source-6.1", version: "6.1.192-2",
  sha256: "ae95fe63d4c553f8d0e6c86cb1ab566f3894a43743eb19ab585cd97d82f26514",
  urls: [
    "http://deb.debian.org/debian-security/pool/updates/main/l/linux/linux-source-6.1_6.1.192-2_all.deb",
    "https://snapshot.debian.org/file/68f40866ca310be49762f0b2552e656eae72a14f",
  ],
});

/**
 * The tarball /usr/src/linux-source-6.1.tar.xz inside the pinned .deb. A fixed output itself: its
 * own sha256 is pinned, so a user who has the tarball can `kiln store add-fixed` it directly.
 */
export const linuxSourceTarball = build({
  name: "linux-source-6.1-debian-6.1.192-2.tar.xz",
  sha256: "4d415b3d364834fd818270e88813e90323bbfce4f519a0e6bd4940ddcd7df693",
  // where linux-source-6.1 is installed, the tarball is already on disk
  sources: [{ file: "/usr/src/linux-source-6.1.tar.xz" }],
  script: sh`dpkg-deb --fsys-tarfile ${linuxSourceDeb} | tar -xO ./usr/src/linux-source-6.1.tar.xz > $out`,
});

/** A kconfig fragment: symbol (without CONFIG_) → value ("y", "n", "m", a number or a quoted string). */
export type Fragment = Record<string, string>;

/** Boots on qemu -M virt: serial console on the PL011, an initramfs, ELF and #! executables. */
export const virtConsole: Fragment = {
  PRINTK: "y", TTY: "y", SERIAL_AMBA_PL011: "y", SERIAL_AMBA_PL011_CONSOLE: "y", BLK_DEV_INITRD: "y", RD_GZIP: "y",
  BINFMT_ELF: "y", BINFMT_SCRIPT: "y", DEVTMPFS: "y", DEVTMPFS_MOUNT: "y", PROC_FS: "y", SYSFS: "y",
};

/** What a libc userspace relies on: tmpfs, users, futexes, timers, locks, the fd-based event APIs, ptys. */
export const userspaceBasics: Fragment = {
  SHMEM: "y", TMPFS: "y", MULTIUSER: "y", FUTEX: "y", POSIX_TIMERS: "y", FILE_LOCKING: "y", EPOLL: "y", SIGNALFD: "y",
  TIMERFD: "y", EVENTFD: "y", UNIX98_PTYS: "y",
};

/** Fixed build identity: without these the kernel embeds the build time, user and host. */
export function kbuildEnv(host: string): Record<string, string> {
  return {
    KBUILD_BUILD_TIMESTAMP: "Thu Jan  1 00:00:01 UTC 1970",
    KBUILD_BUILD_USER: "kiln",
    KBUILD_BUILD_HOST: host,
    // the "#1" in uname -v is a counter kept in the build dir; pin it rather than rely on a fresh dir
    KBUILD_BUILD_VERSION: "1",
  };
}

function fragmentText(name: string, f: Fragment): string {
  const lines = Object.keys(f).sort().map((k) => (f[k] === "n" ? `# CONFIG_${k} is not set` : `CONFIG_${k}=${f[k]}`));
  return `# fragment: ${name}\n${lines.join("\n")}\n`;
}

/** What a kernel is built for, and with what. */
export interface KernelArch {
  /** make's ARCH= */
  arch: string;
  /** the folder under arch/ (x86_64's is x86) */
  srcArch: string;
  /** the image make builds, found in arch/<srcArch>/boot/ and copied to $out */
  image: string;
  /** the compiler's prefix (CROSS_COMPILE=) */
  crossCompile: string;
  /** seed sets besides base: the compiler (unless a toolchain gives it) and the kernel's host tools */
  seed: readonly SeedSet[];
  /** a toolchain of the recipes' own, first on PATH */
  toolchain?: Toolchain;
}

/** arm64 with the seed's aarch64-linux-gnu cross compiler: pi4-llm-os and m-series. */
export const arm64: KernelArch = { arch: "arm64", srcArch: "arm64", image: "Image", crossCompile: "aarch64-linux-gnu-", seed: ["cross-aarch64", "kernel"] };

/** x86_64 with a toolchain of the recipes' own (BlazeNeuro's). */
export function x86_64(toolchain: Toolchain): KernelArch {
  return { arch: "x86_64", srcArch: "x86", image: "bzImage", crossCompile: `${toolchain.triple}-`, seed: ["kernel"], toolchain };
}

export interface KernelConfigOptions {
  /** default arm64 */
  arch?: KernelArch;
  /** named fragments, merged in name order over tinyconfig */
  fragments: Record<string, Fragment>;
  /** a symbol asked off that something selects back on fails the build (default: a warning) */
  strictOff?: boolean;
  /** KBUILD_BUILD_HOST, the name the kernel reports as its build host */
  buildHost: string;
}

export interface KernelOptions extends KernelConfigOptions {
  name: string;
  /** device trees to build, relative to arch/arm64/boot/dts */
  dtbs?: string[];
  /**
   * Build with loadable modules: `make modules` and modules_install into $out/lib/modules, and a
   * second output, `headers`, with what out-of-tree modules build against (the tree Debian's
   * linux-headers package holds: Makefiles, include/, scripts/, .config, Module.symvers).
   */
  modules?: boolean;
}

/** The environment of a kernel build: the native compiler (base) for the kernel's own host programs, the cross compiler, bc, kmod, the libelf and OpenSSL headers. */
function archEnv(a: KernelArch) {
  return { ARCH: a.arch, CROSS_COMPILE: a.crossCompile };
}

/** A toolchain's bin/ first on PATH (nothing for the seed's compilers). */
function toolchainPath(a: KernelArch) {
  return a.toolchain ? sh`export PATH=${a.toolchain.tree}/bin:$PATH
` : "";
}

/** The fragment files, written to /build by the script. */
function writeFragments(frags: Record<string, Fragment>): string {
  return Object.keys(frags).sort().map((n) => `cat > frag-${n}.config <<'KILN_FRAGMENT'\n${fragmentText(n, frags[n]!)}KILN_FRAGMENT`).join("\n");
}

/** Unpack, make tinyconfig, merge the fragments, olddefconfig, and check every request held. */
function configure(o: KernelConfigOptions) {
  const names = Object.keys(o.fragments).sort();
  const offSelected = o.strictOff
    ? `echo "kconfig: $f asks '$line' but something selects it: $(grep -E "^$sym=" _build/.config)"; echo bad >> /build/bad`
    : `echo "kconfig: warning: $f asks '$line' but something selects it"`;
  return sh`
      ${writeFragments(o.fragments)}
      tar -xJf ${linuxSourceTarball} --no-same-owner
      src=/build/$(ls -d linux-source-*)
      cd "$src"
      # out of tree, in a subdirectory so that the objects only ever see relative source paths
      make -s O=_build tinyconfig
      scripts/kconfig/merge_config.sh -m -O _build _build/.config ${names.map((n) => `/build/frag-${n}.config`).join(" ")}
      make -s O=_build olddefconfig
      # a requested symbol that olddefconfig dropped means an unmet dependency: say which
      bad=0
      for f in /build/frag-*.config; do
        grep -E '^(CONFIG_[A-Za-z0-9_]+=|# CONFIG_[A-Za-z0-9_]+ is not set)' "$f" | while IFS= read -r line; do
          case "$line" in
            # another symbol may select it back on: worth a warning, not a failure
            "# "*) sym=$(echo "$line" | cut -d' ' -f2); if grep -q "^$sym=" _build/.config; then ${offSelected}; fi ;;
            *) grep -qxF "$line" _build/.config || { echo "kconfig: $f asks '$line' but got: $(grep -E "^(# )?\${line%%=*}[= ]" _build/.config || echo unset)"; echo bad >> /build/bad; } ;;
          esac
        done
      done
      test ! -s /build/bad || { echo "kconfig: unmet requests above (missing dependencies?)"; exit 1; }`;
}

/**
 * Only the configuration: the merged and checked .config, in a minute instead of the kernel's
 * many. What a fast test of a system's fragments realizes.
 */
export function kernelConfig(name: string, o: KernelConfigOptions): Drv {
  const a = o.arch ?? arm64;
  return build({
    name,
    seed: a.seed,
    env: { ...kbuildEnv(o.buildHost), ...archEnv(a) },
    script: sh`${toolchainPath(a)}${configure(o)}
      cp _build/.config $out
    `,
  });
}

/** The kernel: $out/Image (or bzImage), config, kernel.release, dtbs/ (and lib/modules/, headers with `modules`). */
export function kernel(o: KernelOptions): Drv {
  const a = o.arch ?? arm64;
  const arch = `arch/${a.srcArch}`;
  const dtbs = o.dtbs ?? [];
  const targets = [a.image, ...(o.modules ? ["modules"] : []), ...dtbs];
  const modules = o.modules
    ? `
      make O=_build INSTALL_MOD_PATH=$out INSTALL_MOD_STRIP=1 modules_install
      # the headers: Debian's linux-headers layout (scripts/package/builddeb), source and objects in one tree
      rm -f $out/lib/modules/*/build $out/lib/modules/*/source
      { find . ${arch} -maxdepth 1 -name 'Makefile*'; find include scripts -type f -o -type l
        find ${arch} -name Kbuild.platforms -o -name Platform
        find $(find ${arch} -name include -o -name scripts -type d) -type f; } | LC_ALL=C sort > /build/hdrsrc
      (cd _build && find ${arch}/include Module.symvers include scripts -type f | LC_ALL=C sort) > /build/hdrobj
      mkdir -p $headers
      tar -c -f - -T /build/hdrsrc | tar -xf - -C $headers
      tar -c -f - -C _build -T /build/hdrobj | tar -xf - -C $headers
      cp _build/.config $headers/.config`
    : "";
  return build({
    name: o.name,
    seed: a.seed,
    env: { ...kbuildEnv(o.buildHost), ...archEnv(a) },
    ...(o.modules ? { outputs: ["out", "headers"] } : {}),
    script: sh`${toolchainPath(a)}${configure(o)}
      make O=_build -j"$KILN_BUILD_CORES" ${targets.join(" ")}
      mkdir -p $out/dtbs
      cp _build/${arch}/boot/${a.image} $out/${a.image}
      cp _build/.config $out/config
      cp _build/include/config/kernel.release $out/kernel.release
      for d in ${dtbs.join(" ")}; do mkdir -p $out/dtbs/$(dirname $d); cp _build/${arch}/boot/dts/$d $out/dtbs/$d; done${modules}
    `,
  });
}
