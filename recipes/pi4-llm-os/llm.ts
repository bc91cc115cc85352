// The LLM side of pi4-llm-os: the llama.cpp runtime cross-built for the Pi 4, the test model
// generated from source, and the slot for a real model that the user adds to the store by hand.
import { fetch, sh, source, type Drv } from "kiln";
import { build } from "../std/index.js";
import { LLAMA_CPP_COMMIT, llamaCppSource } from "./sources.js";

/**
 * llama-simple from the pinned llama.cpp: static aarch64, tuned for the Pi 4's Cortex-A72
 * (armv8-a+crc: no dot-product instructions), no OpenMP (ggml's own thread pool). Linked
 * statically against Debian's cross glibc and libstdc++: there is no musl C++ toolchain in Debian,
 * and a static binary needs no /lib in the musl/BusyBox root. One patch: a -t option for the
 * thread count (files/llama-simple-threads.patch says why). Reproducible: source and build paths
 * are mapped away (so the binary does not mention the source tree in the store), the build-id is
 * a hash of the content, and the build info is the pinned commit instead of a git query.
 */
export const llama = build({
  name: `llama.cpp-${LLAMA_CPP_COMMIT.slice(0, 7)}-aarch64`,
  seed: ["cross-aarch64", "dev"],
  env: { COMMIT: LLAMA_CPP_COMMIT.slice(0, 7), ARM_ARCH: "armv8-a+crc" },
  script: sh`
    cp -a ${llamaCppSource} src
    chmod -R u+w src
    patch -d src -p1 --no-backup-if-mismatch < ${source(import.meta.url, "files/llama-simple-threads.patch")}
    flags="-ffile-prefix-map=/build/src=llama.cpp -ffile-prefix-map=/build/b=build"
    cmake -G Ninja -S src -B b -Wno-dev \
      -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
      -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
      -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS=-static \
      -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DGGML_CPU_ARM_ARCH="$ARM_ARCH" \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF \
      -DLLAMA_BUILD_COMMIT="$COMMIT" -DLLAMA_BUILD_NUMBER=0 > configure.log 2>&1 || { cat configure.log; exit 1; }
    ninja -C b -j"$KILN_BUILD_CORES" llama-simple
    mkdir -p $out/bin $out/share
    aarch64-linux-gnu-strip --strip-all -o $out/bin/llama-simple b/bin/llama-simple
    # what the binary is, for the report: the commit, the libc it carries, the compiler, the CPU target
    {
      echo "commit=$COMMIT"
      printf '#include <features.h>\nglibc __GLIBC__.__GLIBC_MINOR__\n' | aarch64-linux-gnu-gcc -E -P - | sed -n 's/^glibc \([0-9]*\) \. \([0-9]*\)$/libc=static glibc \1.\2/p'
      echo "compiler=$(aarch64-linux-gnu-g++ -dumpfullversion) $(aarch64-linux-gnu-g++ -dumpmachine)"
      echo "cpu=$ARM_ARCH"
    } > $out/share/build-info
    grep -q '^libc=static glibc [0-9]' $out/share/build-info || { echo "could not tell the glibc version"; exit 1; }
    # a store path in the binary would pull it into the image's closure (the source tree: 175 MB)
    if grep -q /kiln/store/ $out/bin/llama-simple; then echo "llama-simple mentions a store path"; exit 1; fi
  `,
});

/**
 * The test model: llama architecture, 2 layers, 64 wide, Q4_0, weights from a fixed seed, and
 * llama.cpp's own Llama (SentencePiece) tokenizer, the one TinyLlama uses. Written by llama.cpp's
 * gguf-py from the same source tree. Noise, not language: it proves the runtime end to end.
 */
export const tinyModel = build({
  name: "kiln-tiny-llama-q4_0.gguf",
  seed: ["python"],
  env: { PYTHONDONTWRITEBYTECODE: "1" },
  script: sh`
    PYTHONPATH=${llamaCppSource}/gguf-py python3 ${source(import.meta.url, "files/tiny-model.py")} \
      --vocab ${llamaCppSource}/models/ggml-vocab-llama-spm.gguf --out $out
  `,
});

export interface GgufSpec {
  /** the file name, e.g. tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf */
  name: string;
  /** sha256 of the file (sha256sum) */
  sha256: string;
}

/**
 * A model the user supplies: a fixed output with no source to fetch from, satisfied by
 * `kiln store add-fixed <file>` (or a --mirror folder). Nothing is downloaded.
 */
export function gguf(m: GgufSpec): Drv {
  return fetch({ name: m.name, sha256: m.sha256, sources: [] });
}
