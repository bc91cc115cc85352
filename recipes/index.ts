// The Kiln recipe set: `kiln targets` lists these, `kiln realize pi4-llm-os` builds the image.
import * as blazeneuro from "./blazeneuro/index.js";
import { mSeries } from "./m-series/index.js";
import { pi4LlmOs, sources, sysinfo, peakRss, muslToolchain, busyboxApplets, llama, tinyModel } from "./pi4-llm-os/index.js";

const pi4 = pi4LlmOs();
const ms = mSeries();

export default {
  // the USB image (blazeneuro-usb.img), and every stage that leads to it
  blazeneuro: Object.assign(blazeneuro.image, {
    // stage 2: x86_64-blazeneuro-linux-gnu-{gcc,g++,ld,...} and its sysroot
    toolchain: Object.assign(blazeneuro.toolchain.cross, {
      "binutils-pass1": blazeneuro.toolchain.binutilsPass1,
      "gcc-pass1": blazeneuro.toolchain.gccPass1,
      "linux-api-headers": blazeneuro.toolchain.linuxHeaders,
      glibc: blazeneuro.toolchain.glibc,
      "libstdc++": blazeneuro.toolchain.libstdcxx,
      sysroot: blazeneuro.toolchain.sysroot,
    }),
    // stage 3: the temporary system (a tree a build can have as its whole /usr) and its packages
    temporary: Object.assign(blazeneuro.temporary.temporarySystem, {
      ...blazeneuro.temporary.packages,
      tests: { hello: blazeneuro.temporary.hello },
    }),
    // stage 4: the final system's root tree, built natively on the temporary system, and its packages
    system: Object.assign(blazeneuro.system.rootfs, { ...blazeneuro.system.packages, init: blazeneuro.system.init }),
    kernel: Object.assign(blazeneuro.kernel, { config: blazeneuro.kernelConfig }),
    grub: blazeneuro.grub,
    partitions: blazeneuro.partitions,
    // boots under QEMU: by SeaBIOS, by OVMF, and twice for persistence
    tests: blazeneuro.tests,
    report: blazeneuro.report,
  }),
  "pi4-llm-os": Object.assign(pi4.image, {
    report: pi4.report,
    board: pi4.board,
    kernel: pi4.kernel,
    initramfs: pi4.initramfs,
    rootfs: pi4.rootfs,
    bootfs: pi4.bootfs,
    rootExt4: pi4.rootExt4,
    modelsExt4: pi4.modelsExt4,
    model: pi4.model,
    disk: pi4.disk,
    tests: pi4.tests,
    sources,
    sysinfo,
    peakRss,
    muslToolchain,
    busyboxApplets,
    llama,
    models: { tiny: tinyModel },
  }),
  "m-series": Object.assign(ms.disk, {
    report: ms.report,
    kernel: ms.kernel,
    zfs: ms.zfs,
    rootfs: ms.rootfs,
    info: ms.info,
    tests: ms.tests,
    sources: ms.sources,
  }),
};
