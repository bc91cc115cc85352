// The Kiln recipe set: `kiln targets` lists these, `kiln realize pi4-llm-os` builds the image.
import { mSeries } from "./m-series/index.js";
import { pi4LlmOs, sources, sysinfo, peakRss, muslToolchain, busyboxApplets, llama, tinyModel } from "./pi4-llm-os/index.js";

const pi4 = pi4LlmOs();
const ms = mSeries();

export default {
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
