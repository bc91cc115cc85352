// Every input of pi4-llm-os from outside, pinned by sha256 of the exact bytes. The kernel source
// (Debian's linux-source-6.1) is std's, shared with the other systems.
import { fetch, sh } from "kiln";
import { build, fetchDebFromPool, fetchNpm, unpackDeb } from "../std/index.js";
import { linuxSourceDeb, linuxSourceTarball } from "../std/linux.js";

export { linuxSourceTarball };

export const debs = {
  linuxSource: linuxSourceDeb,
  busyboxStatic: fetchDebFromPool({
    package: "busybox-static", version: "1:1.35.0-4+deb12u1+b1", arch: "arm64",
    sha256: "732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5",
    urls: [
      "http://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb",
      "https://snapshot.debian.org/file/87bf504541e6583e6fef6ec0bc67537f53c327f2",
    ],
  }),
  musl: fetchDebFromPool({
    package: "musl", version: "1.2.3-1", arch: "arm64",
    sha256: "6ccf2bf0f479b00411cb8e1eeb048e648718170db5d63bbb4bf4a89350b81468",
    urls: ["http://deb.debian.org/debian/pool/main/m/musl/musl_1.2.3-1_arm64.deb", "https://snapshot.debian.org/file/4007a673c529401a01b67c13708edc223453a947"],
  }),
  muslDev: fetchDebFromPool({
    package: "musl-dev", version: "1.2.3-1", arch: "arm64",
    sha256: "55c2ca4bc3041c8ed8ac7dc3ef6080d9551a21650568b2fd7610b59eaf98a4f4",
    urls: ["http://deb.debian.org/debian/pool/main/m/musl/musl-dev_1.2.3-1_arm64.deb", "https://snapshot.debian.org/file/1099cd062dcc35e0bf334ae32f40f390a14d116e"],
  }),
};

export const busybox = unpackDeb("busybox-static-arm64", debs.busyboxStatic);
export const musl = unpackDeb("musl-arm64", debs.musl);
export const muslDev = unpackDeb("musl-dev-arm64", debs.muslDev);

/**
 * The Raspberry Pi 4 GPU firmware (start4.elf, fixup4.dat): non-free, in Debian's
 * non-free-firmware section. Only the board image needs it; the QEMU-bootable image is complete
 * without it. Each file is a fixed output of its own, so a user who has them (say, from a Pi OS
 * boot partition of the same release) can `kiln store add-fixed start4.elf` instead.
 */
const raspiFirmwareDeb = fetch({
  name: "raspi-firmware_1.20220830+ds-1_all.deb",
  sha256: "0094ced47a7fbb6a220ff83e7b43aa637a5d8f6802461e2e4e474597fb796f62",
  sources: [
    // works where non-free-firmware is in the apt sources
    { deb: { package: "raspi-firmware", version: "1.20220830+ds-1" } },
    // the same bytes from Debian's pool, where it is not
    { url: "http://deb.debian.org/debian/pool/non-free-firmware/r/raspi-firmware/raspi-firmware_1.20220830+ds-1_all.deb" },
    { url: "https://snapshot.debian.org/file/f37dba3e827325667381703815ac227ee1aa9b64" },
  ],
});

function firmwareFile(file: string, sha256: string) {
  return build({
    name: file,
    sha256,
    script: sh`dpkg-deb --fsys-tarfile ${raspiFirmwareDeb} | tar -xO ./usr/lib/raspi-firmware/${file} > $out`,
  });
}

export const firmware = {
  start4: firmwareFile("start4.elf", "36d12ae9eda1a508430e65d7877aada4d6c8dbe61a6dd3bbf20da1ed6ca58f70"),
  fixup4: firmwareFile("fixup4.dat", "55aeb4d842356c655f230fdd0c08dfad8a0412abdf97e421d420ccd09861a233"),
};

/**
 * llama.cpp, as pinned by node-llama-cpp 3.22.1: its npm tarball carries the llama.cpp source as
 * a git bundle of one commit (llama/gitRelease.bundle). The npm registry is where this machine
 * can reach it; a user who has the tarball or the bundle can `kiln store add-fixed` either.
 */
export const LLAMA_CPP_COMMIT = "de3ff815ea7d559ee917f063901b8986f038abc6";

export const nodeLlamaCpp = fetchNpm({
  name: "node-llama-cpp", version: "3.22.1",
  sha256: "a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f",
});

/** The git bundle inside the npm tarball: a fixed output of its own. */
export const llamaCppBundle = build({
  name: `llama.cpp-${LLAMA_CPP_COMMIT.slice(0, 7)}.bundle`,
  sha256: "5f5d1105d5df040738d87b8290e5d17e7362131cdcfdb0831618e0ea528b4a51",
  script: sh`tar -xzOf ${nodeLlamaCpp} package/llama/gitRelease.bundle > $out`,
});

/**
 * The source tree of the pinned commit: cloned from the bundle (git checks every object's hash
 * as it unpacks), the commit id verified, then exported with git archive, so no .git and no
 * clone-time state; the store fixes modes and times.
 */
export const llamaCppSource = build({
  name: `llama.cpp-${LLAMA_CPP_COMMIT.slice(0, 7)}-src`,
  seed: ["dev"],
  env: { COMMIT: LLAMA_CPP_COMMIT },
  script: sh`
    git clone --quiet --bare ${llamaCppBundle} repo.git
    got=$(git --git-dir=repo.git rev-parse --verify "HEAD^{commit}")
    if [ "$got" != "$COMMIT" ]; then echo "the bundle's HEAD is $got, expected $COMMIT"; exit 1; fi
    git --git-dir=repo.git fsck --no-dangling --no-progress
    mkdir $out
    git --git-dir=repo.git archive --format=tar "$COMMIT" | tar -x -C $out
  `,
});
