// The pi4-llm-os kernel: tinyconfig + named fragments merged with the kernel's own
// scripts/kconfig/merge_config.sh, built out of tree for arm64, reproducibly.
//
// Add a fragment in TypeScript:
//   kernel({ fragments: { ...fragments, mine: { IKCONFIG: "y" } } })
// Every symbol a fragment turns on must survive `olddefconfig` (dependencies met), or the build
// fails and names the symbol, so a fragment never silently does nothing. (A symbol turned off
// that another one selects only gives a warning.)
import { sh, type Drv } from "kiln";
import { build, CROSS_AARCH64, HOST_CC } from "../std/index.js";
import { linuxSourceTarball } from "./sources.js";

/** A kconfig fragment: symbol (without CONFIG_) → value ("y", "n", "m", a number or a quoted string). */
export type Fragment = Record<string, string>;

export const fragments: Record<string, Fragment> = {
  // boots on qemu -M virt from an initramfs, serial console on the PL011
  base: {
    PRINTK: "y", TTY: "y", SERIAL_AMBA_PL011: "y", SERIAL_AMBA_PL011_CONSOLE: "y", BLK_DEV_INITRD: "y", RD_GZIP: "y",
    BINFMT_ELF: "y", BINFMT_SCRIPT: "y", DEVTMPFS: "y", DEVTMPFS_MOUNT: "y", PROC_FS: "y", SYSFS: "y",
  },
  // root disk: virtio-blk on qemu virt (virtio-mmio), MBR partitions, ext4
  disk: {
    BLOCK: "y", BLK_DEV: "y", VIRTIO_MENU: "y", VIRTIO_MMIO: "y", VIRTIO_BLK: "y", EXT4_FS: "y",
    PARTITION_ADVANCED: "y", MSDOS_PARTITION: "y",
  },
  // Raspberry Pi 4 (BCM2711) SoC, its mini-UART console and the VideoCore firmware interface
  pi4: {
    NR_CPUS: "4", ARCH_BCM: "y", ARCH_BCM2835: "y", SERIAL_8250: "y", SERIAL_8250_CONSOLE: "y", SERIAL_8250_EXTENDED: "y",
    SERIAL_8250_SHARE_IRQ: "y", SERIAL_8250_BCM2835AUX: "y", MAILBOX: "y", BCM2835_MBOX: "y", RASPBERRYPI_FIRMWARE: "y",
    CLK_RASPBERRYPI: "y", CLK_BCM2835: "y",
  },
  // the SD card (the BCM2711's EMMC2 controller, sdhci-iproc): the model partition lives there
  sdcard: { MMC: "y", MMC_BLOCK: "y", MMC_SDHCI: "y", MMC_SDHCI_PLTFM: "y", MMC_SDHCI_IPROC: "y" },
  // what the userspace needs: tmpfs for /tmp /var /mnt/models, and what a threaded LLM runner uses
  userspace: {
    SHMEM: "y", TMPFS: "y", MULTIUSER: "y", FUTEX: "y", POSIX_TIMERS: "y", FILE_LOCKING: "y", EPOLL: "y", SIGNALFD: "y",
    TIMERFD: "y", EVENTFD: "y", UNIX98_PTYS: "y",
  },
  // size trims: a serial-only system with a gzip initramfs
  trim: {
    VT: "n", INPUT: "n", HID: "n", LEGACY_PTYS: "n", RD_BZIP2: "n", RD_LZMA: "n", RD_XZ: "n", RD_LZO: "n", RD_LZ4: "n",
    RD_ZSTD: "n", SERIAL_8250_FSL: "n",
  },
};

/** Fixed build identity: without these the kernel embeds the build time, user and host. */
export const KBUILD_ENV = {
  KBUILD_BUILD_TIMESTAMP: "Thu Jan  1 00:00:01 UTC 1970",
  KBUILD_BUILD_USER: "kiln",
  KBUILD_BUILD_HOST: "pi4-llm-os",
  // the "#1" in uname -v is a counter kept in the build dir; pin it rather than rely on a fresh dir
  KBUILD_BUILD_VERSION: "1",
};

function fragmentText(name: string, f: Fragment): string {
  const lines = Object.keys(f).sort().map((k) => (f[k] === "n" ? `# CONFIG_${k} is not set` : `CONFIG_${k}=${f[k]}`));
  return `# fragment: ${name}\n${lines.join("\n")}\n`;
}

export interface KernelOptions {
  fragments?: Record<string, Fragment>;
  /** device trees to build, relative to arch/arm64/boot/dts */
  dtbs?: string[];
}

export function kernel(o: KernelOptions = {}): Drv {
  const frags = o.fragments ?? fragments;
  const dtbs = o.dtbs ?? ["broadcom/bcm2711-rpi-4-b.dtb"];
  const names = Object.keys(frags).sort();
  const writeFrags = names.map((n) => `cat > frag-${n}.config <<'KILN_FRAGMENT'\n${fragmentText(n, frags[n]!)}KILN_FRAGMENT`).join("\n");
  return build({
    name: "linux-pi4-llm-os",
    tools: [...HOST_CC, ...CROSS_AARCH64, "bc", "bison", "flex", "perl", "pkg:kmod", "cmp", "pkg:cpio"],
    env: { ...KBUILD_ENV, ARCH: "arm64", CROSS_COMPILE: "aarch64-linux-gnu-" },
    script: sh`
      ${writeFrags}
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
            "# "*) sym=$(echo "$line" | cut -d' ' -f2); if grep -q "^$sym=" _build/.config; then echo "kconfig: warning: $f asks '$line' but something selects it"; fi ;;
            *) grep -qxF "$line" _build/.config || { echo "kconfig: $f asks '$line' but got: $(grep -E "^(# )?\${line%%=*}[= ]" _build/.config || echo unset)"; echo bad >> /build/bad; } ;;
          esac
        done
      done
      test ! -s /build/bad || { echo "kconfig: unmet requests above (missing dependencies?)"; exit 1; }
      make O=_build -j"$KILN_BUILD_CORES" Image ${dtbs.join(" ")}
      mkdir -p $out/dtbs
      cp _build/arch/arm64/boot/Image $out/Image
      cp _build/.config $out/config
      cp _build/include/config/kernel.release $out/kernel.release
      for d in ${dtbs.join(" ")}; do mkdir -p $out/dtbs/$(dirname $d); cp _build/arch/arm64/boot/dts/$d $out/dtbs/$d; done
    `,
  });
}
