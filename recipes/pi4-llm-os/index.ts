// pi4-llm-os: a minimal aarch64 Linux for a Raspberry Pi 4 that leaves the most RAM for an LLM:
// musl, BusyBox, a small custom kernel, the llama.cpp runtime, an initramfs, and a disk image
// (FAT32 boot + ext4 root + ext4 model partition), every input pinned and every output
// bit-reproducible.
import { sh, type Drv } from "kiln";
import { build } from "../std/index.js";
import { bootfs, diskImage, initramfs, modelsExt4, rootExt4 } from "./images.js";
import { fragments, kernel, type Fragment } from "./kernel.js";
import { busybox, debs, firmware, linuxSourceTarball, llamaCppBundle, llamaCppSource, musl, muslDev, nodeLlamaCpp } from "./sources.js";
import { gguf, llama, tinyModel, type GgufSpec } from "./llm.js";
import { bootTest, llmTest } from "./tests.js";
import { busyboxApplets, muslToolchain, peakRss, rootfs, sysinfo } from "./userspace.js";

/** Kernel command line on the board: the mini UART console, root on the SD card's second partition. */
export const BOARD_CMDLINE = "console=ttyS0,115200 console=tty1 root=/dev/mmcblk0p2 rootfstype=ext4 rootwait";

export interface Pi4Options {
  /** kconfig fragments; add your own: { ...fragments, mine: { IKCONFIG: "y" } } */
  fragments?: Record<string, Fragment>;
  /**
   * The model on the image's model partition: by default the generated test model; a real one by
   * name and sha256, added to the store by hand first (`kiln store add-fixed tinyllama.gguf`).
   */
  model?: GgufSpec;
}

/** The LLM test's fixed prompt, and what the test model must answer to it (greedy, 32 tokens). */
export const LLM_PROMPT = "Once upon a time";
export const LLM_TOKENS = 32;
export const TINY_MODEL_TEXT_SHA256 = "57a96a4aa34bfb8f578ecf3298b5547429b350ce0d19d7a31165b9b9c7b5a56c";

export function pi4LlmOs(o: Pi4Options = {}) {
  const k = kernel({ fragments: o.fragments ?? fragments });
  const initrd = initramfs(rootfs);
  const boot = bootfs({ kernel: k, initramfs: initrd, cmdline: BOARD_CMDLINE });
  const root = rootExt4({ rootfs });
  const model = o.model ? gguf(o.model) : tinyModel;
  const models = modelsExt4({ model });
  const disk = diskImage({ boot, root, models });
  /** The image: the whole disk, bootable under QEMU (the board image adds the GPU firmware). */
  const image = disk;
  const tests = {
    boot: bootTest({ name: "pi4-llm-os-boot-test-initramfs", kernel: k, initramfs: initrd }),
    bootDisk: bootTest({ name: "pi4-llm-os-boot-test-disk", kernel: k, disk }),
    // the text of a model of your own is not known in advance: only the token count is checked,
    // and a real model is slow under emulation
    llm: llmTest({
      name: "pi4-llm-os-llm-test", kernel: k, initramfs: initrd, disk, prompt: LLM_PROMPT, tokens: LLM_TOKENS,
      ...(o.model ? { timeoutSeconds: 3600 } : { expectTextSha256: TINY_MODEL_TEXT_SHA256 }),
    }),
  };
  /** What the README's main job prints: the image, its parts' sizes, the boot and LLM test results. */
  const report = build({
    name: "pi4-llm-os-report",
    script: sh`
      size() { stat -L -c %s "$1"; }
      mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
      j() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"; }
      mkdir -p $out
      {
        echo "pi4-llm-os: aarch64 Linux for the Raspberry Pi 4 (musl, static BusyBox, Linux $(cat ${k}/kernel.release))"
        echo "  disk image      $(basename ${disk})  $(mib $(size ${disk}))  (FAT32 boot $(mib $(size ${boot})) + ext4 root $(mib $(size ${root})) + ext4 models $(mib $(size ${models})))"
        echo "  kernel Image    $(mib $(size ${k}/Image))"
        echo "  initramfs       $(mib $(size ${initrd}))"
        echo "  rootfs files    $(du -sb --apparent-size ${rootfs} | cut -f1 | xargs -I{} awk -v b={} 'BEGIN { printf "%.1f MiB", b / 1048576 }')"
        info() { sed -n "s/^$1=//p" ${llama}/share/build-info; }
        echo "  LLM runtime     llama.cpp $(info commit) llama-simple  $(mib $(size ${llama}/bin/llama-simple))  (aarch64 $(info cpu), $(info libc), g++ $(info compiler))"
        echo "  model           $(j ${tests.llm}/report.json model)  $(mib $(size ${model}))  (on the models partition; in /mnt/models, $(j ${tests.llm}/report.json modelIn), at boot)"
        for t in ${tests.boot} ${tests.bootDisk}; do
          echo "  boot test ($(j $t/report.json mode)): passed=$(j $t/report.json passed), marker after $(j $t/report.json markerSeconds) s under QEMU TCG, OS overhead $(( $(j $t/report.json osOverheadKb) / 1024 )) MiB of $(( $(j $t/report.json memTotalKb) / 1024 )) MiB (MemTotal - MemAvailable), model budget $(( $(j $t/report.json modelBudgetKb) / 1024 )) MiB"
        done
        t=${tests.llm}
        echo "  LLM test: passed=$(j $t/report.json passed), $(j $t/report.json tokens) tokens at $(j $t/report.json tokensPerSecond) tokens/s under QEMU TCG (-smp $(j $t/report.json cpus), llama.cpp threads: $(j $t/report.json threads)), runtime peak RSS $(( $(j $t/report.json peakRssKb) / 1024 )) MiB, peak in use $(( $(j $t/report.json peakUsedKb) / 1024 )) MiB of $(( $(j $t/report.json memTotalKb) / 1024 )) MiB, OS overhead with the model loaded $(( $(j $t/report.json osOverheadWithModelKb) / 1024 )) MiB (seed: < 30 MB)"
        echo "  LLM output:     $(tr '\n' ' ' < $t/text.txt)"
      } > $out/report.txt
      cat $out/report.txt
    `,
  });
  /** The SD card image for a real board: the same partitions plus the GPU firmware. */
  const boardBoot = bootfs({ kernel: k, initramfs: initrd, cmdline: BOARD_CMDLINE, extra: { "start4.elf": firmware.start4, "fixup4.dat": firmware.fixup4 } });
  const board = diskImage({ boot: boardBoot, root, models, name: "pi4-llm-os-board-sdcard.img" });
  return {
    image,
    report,
    board,
    kernel: k,
    initramfs: initrd,
    rootfs,
    bootfs: boot,
    rootExt4: root,
    modelsExt4: models,
    model,
    disk,
    tests,
  };
}

export const sources = { ...debs, linuxSourceTarball, busybox, musl, muslDev, firmware, nodeLlamaCpp, llamaCppBundle, llamaCpp: llamaCppSource };
export { busyboxApplets, muslToolchain, sysinfo, peakRss, llama, tinyModel, gguf };
export type { Drv };
