// BlazeNeuro (shared/seeds 000/001): an LFS-style x86_64 glibc system on a USB stick, built from
// its toolchain up. Stage 2 (toolchain.ts): the cross toolchain. Stage 3 (temporary.ts): the
// temporary system built with it, which builds natively with no seed at all. Stage 4
// (system.ts): the final system built on the temporary one. Then the kernel (kernel.ts), the USB
// image (image.ts) and its boot tests under QEMU (boot.ts).
import { sh, type Drv } from "kiln";
import { build } from "../std/index.js";
import { bootTest } from "./boot.js";
import { esp, grubImages, rootPartition, usbImage } from "./image.js";
import { kernel as makeKernel, kernelConfig as makeKernelConfig } from "./kernel.js";
import * as sources from "./sources.js";
import * as system from "./system.js";
import * as temporary from "./temporary.js";
import * as toolchain from "./toolchain.js";

export { sources, system, temporary, toolchain };

/** Linux 6.1 for x86_64, from BlazeNeuro's fragments, built with its cross toolchain. */
export const kernel: Drv = makeKernel();
/** Only the merged and checked configuration (a minute). */
export const kernelConfig: Drv = makeKernelConfig();
/** GRUB's BIOS and UEFI images (Debian's prebuilt GRUB). */
export const grub: Drv = grubImages;
/** The USB image: $out/blazeneuro-usb.img, manifest.txt, sizes.txt. */
export const image: Drv = usbImage({ kernel, rootfs: system.rootfs });
/** The image's partitions, as targets of their own (the same derivations the image is made of). */
export const partitions = { esp: esp({ kernel, grub: grubImages }), root: rootPartition({ rootfs: system.rootfs }) };

export const tests = {
  bios: bootTest({ name: "blazeneuro-boot-bios", image, firmware: "bios" }),
  uefi: bootTest({ name: "blazeneuro-boot-uefi", image, firmware: "uefi" }),
  persistence: bootTest({ name: "blazeneuro-boot-persistence", image, firmware: "bios", boots: 2 }),
};

/** What `npm run demo:blazeneuro` prints: the image and its parts' sizes, the boot tests' results, against the seed's figures. */
export const report: Drv = build({
  name: "blazeneuro-report",
  script: sh`
    mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
    sz() { sed -n "s/^$1 \([0-9]*\) bytes.*/\1/p" ${image}/sizes.txt; }
    mkdir -p $out
    {
      echo "BlazeNeuro: x86_64 glibc 2.36, gcc 12.2.0, Linux $(cat ${kernel}/kernel.release), on a USB image"
      echo "  image           blazeneuro-usb.img  $(mib $(sz image))  (FAT32 ESP $(mib $(sz esp)) + ext4 root $(mib $(sz 'root partition')))"
      echo "  root tree       $(mib $(sz 'root tree'))  (seed: ~2 GB final)"
      echo "  kernel bzImage  $(mib $(sz kernel))"
      for t in ${tests.bios} ${tests.uefi} ${tests.persistence}; do echo "  boot test       $(cat $t/summary.txt)"; done
      echo "                  (seed: a USB boot in ~10-30 s on hardware; TCG emulates every instruction)"
      sed 's/^/  /' ${image}/manifest.txt
    } > $out/report.txt
    cat $out/report.txt
  `,
});
