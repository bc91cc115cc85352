// Every input of pi4-llm-os from outside, pinned by sha256 of the exact bytes. The kernel source
// (Debian's linux-source-6.1) is std's, shared with the other systems.
import { fetch, sh } from "kiln";
import { build, fetchDeb, unpackDeb } from "../std/index.js";
import { linuxSourceDeb, linuxSourceTarball } from "../std/linux.js";

export { linuxSourceTarball };

export const debs = {
  linuxSource: linuxSourceDeb,
  busyboxStatic: fetchDeb({
    package: "busybox-static", version: "1:1.35.0-4+deb12u1+b1", arch: "arm64",
    sha256: "732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5",
    urls: [
      "http://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb",
      "https://snapshot.debian.org/file/87bf504541e6583e6fef6ec0bc67537f53c327f2",
    ],
  }),
  musl: fetchDeb({
    package: "musl", version: "1.2.3-1", arch: "arm64",
    sha256: "6ccf2bf0f479b00411cb8e1eeb048e648718170db5d63bbb4bf4a89350b81468",
    urls: ["http://deb.debian.org/debian/pool/main/m/musl/musl_1.2.3-1_arm64.deb", "https://snapshot.debian.org/file/4007a673c529401a01b67c13708edc223453a947"],
  }),
  muslDev: fetchDeb({
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
    tools: ["dpkg-deb"],
    script: sh`dpkg-deb --fsys-tarfile ${raspiFirmwareDeb} | tar -xO ./usr/lib/raspi-firmware/${file} > $out`,
  });
}

export const firmware = {
  start4: firmwareFile("start4.elf", "36d12ae9eda1a508430e65d7877aada4d6c8dbe61a6dd3bbf20da1ed6ca58f70"),
  fixup4: firmwareFile("fixup4.dat", "55aeb4d842356c655f230fdd0c08dfad8a0412abdf97e421d420ccd09861a233"),
};
