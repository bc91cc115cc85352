// pi4-llm-os: a minimal aarch64 Linux for a Raspberry Pi 4 that leaves the most RAM for an LLM
// runtime: musl, BusyBox, a small custom kernel, an initramfs, and a disk image (FAT32 boot +
// ext4 root), every input pinned and every output bit-reproducible.
import { sh, type Drv } from "kiln";
import { build } from "../std/index.js";
import { bootfs, diskImage, initramfs, rootExt4 } from "./images.js";
import { fragments, kernel, type Fragment } from "./kernel.js";
import { busybox, debs, firmware, linuxSourceTarball, musl, muslDev } from "./sources.js";
import { bootTest } from "./tests.js";
import { busyboxApplets, muslToolchain, rootfs, sysinfo } from "./userspace.js";

/** Kernel command line on the board: the mini UART console, root on the SD card's second partition. */
export const BOARD_CMDLINE = "console=ttyS0,115200 console=tty1 root=/dev/mmcblk0p2 rootfstype=ext4 rootwait";

export interface Pi4Options {
  /** kconfig fragments; add your own: { ...fragments, mine: { IKCONFIG: "y" } } */
  fragments?: Record<string, Fragment>;
}

export function pi4LlmOs(o: Pi4Options = {}) {
  const k = kernel({ fragments: o.fragments ?? fragments });
  const initrd = initramfs(rootfs);
  const boot = bootfs({ kernel: k, initramfs: initrd, cmdline: BOARD_CMDLINE });
  const root = rootExt4({ rootfs });
  const disk = diskImage({ boot, root });
  /** The image: the whole disk, bootable under QEMU (the board image adds the GPU firmware). */
  const image = disk;
  const tests = {
    boot: bootTest({ name: "pi4-llm-os-boot-test-initramfs", kernel: k, initramfs: initrd }),
    bootDisk: bootTest({ name: "pi4-llm-os-boot-test-disk", kernel: k, disk }),
  };
  /** What the README's main job prints: the image, its parts' sizes, and the two boot results. */
  const report = build({
    name: "pi4-llm-os-report",
    script: sh`
      size() { stat -L -c %s "$1"; }
      mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
      j() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"; }
      mkdir -p $out
      {
        echo "pi4-llm-os: aarch64 Linux for the Raspberry Pi 4 (musl, static BusyBox, Linux $(cat ${k}/kernel.release))"
        echo "  disk image      $(basename ${disk})  $(mib $(size ${disk}))  (FAT32 boot $(mib $(size ${boot})) + ext4 root $(mib $(size ${root})))"
        echo "  kernel Image    $(mib $(size ${k}/Image))"
        echo "  initramfs       $(mib $(size ${initrd}))"
        echo "  rootfs files    $(du -sb --apparent-size ${rootfs} | cut -f1 | xargs -I{} awk -v b={} 'BEGIN { printf "%.1f MiB", b / 1048576 }')"
        for t in ${tests.boot} ${tests.bootDisk}; do
          echo "  boot test ($(j $t/report.json mode)): passed=$(j $t/report.json passed), marker after $(j $t/report.json markerSeconds) s under QEMU TCG, OS overhead $(( $(j $t/report.json osOverheadKb) / 1024 )) MiB of $(( $(j $t/report.json memTotalKb) / 1024 )) MiB (MemTotal - MemAvailable), model budget $(( $(j $t/report.json modelBudgetKb) / 1024 )) MiB"
        done
      } > $out/report.txt
      cat $out/report.txt
    `,
  });
  /** The SD card image for a real board: the same partitions plus the GPU firmware. */
  const boardBoot = bootfs({ kernel: k, initramfs: initrd, cmdline: BOARD_CMDLINE, extra: { "start4.elf": firmware.start4, "fixup4.dat": firmware.fixup4 } });
  const board = diskImage({ boot: boardBoot, root, name: "pi4-llm-os-board-sdcard.img" });
  return {
    image,
    report,
    board,
    kernel: k,
    initramfs: initrd,
    rootfs,
    bootfs: boot,
    rootExt4: root,
    disk,
    tests,
  };
}

export const sources = { ...debs, linuxSourceTarball, busybox, musl, muslDev, firmware };
export { busyboxApplets, muslToolchain, sysinfo };
export type { Drv };
