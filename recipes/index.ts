// The Kiln recipe set: `kiln targets` lists these, `kiln realize pi4-llm-os` builds the image.
import { pi4LlmOs, sources, sysinfo, peakRss, muslToolchain, busyboxApplets, llama, tinyModel } from "./pi4-llm-os/index.js";

const pi4 = pi4LlmOs();

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
};
