// The pi4-llm-os kernel: std's Linux 6.1 for arm64 with the Pi 4's fragments.
//
// Add a fragment in TypeScript:
//   kernel({ fragments: { ...fragments, mine: { IKCONFIG: "y" } } })
import type { Drv } from "kiln";
import { kernel as linux, userspaceBasics, virtConsole, type Fragment } from "../std/linux.js";

export type { Fragment };

export const fragments: Record<string, Fragment> = {
  // boots on qemu -M virt from an initramfs, serial console on the PL011
  base: virtConsole,
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
  userspace: userspaceBasics,
  // size trims: a serial-only system with a gzip initramfs
  trim: {
    VT: "n", INPUT: "n", HID: "n", LEGACY_PTYS: "n", RD_BZIP2: "n", RD_LZMA: "n", RD_XZ: "n", RD_LZO: "n", RD_LZ4: "n",
    RD_ZSTD: "n", SERIAL_8250_FSL: "n",
  },
};

export interface KernelOptions {
  fragments?: Record<string, Fragment>;
  /** device trees to build, relative to arch/arm64/boot/dts */
  dtbs?: string[];
}

export function kernel(o: KernelOptions = {}): Drv {
  return linux({
    name: "linux-pi4-llm-os",
    buildHost: "pi4-llm-os",
    fragments: o.fragments ?? fragments,
    dtbs: o.dtbs ?? ["broadcom/bcm2711-rpi-4-b.dtb"],
  });
}
