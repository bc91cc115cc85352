// Every input of pi4-llm-os from outside, pinned by sha256 of the exact bytes.
//
// The kernel source is *Debian's* variant of Linux 6.1 (Debian patches applied, non-free bits
// removed): the tarball /usr/src/linux-source-6.1.tar.xz inside Debian's linux-source-6.1 package.
// It is not byte-identical to a kernel.org release, so it is named and pinned as Debian's; an
// upstream tarball would be a different source with its own hash.
import { sh } from "kiln";
import { build, fetchDeb, unpackDeb } from "../std/index.js";

export const debs = {
  linuxSource: fetchDeb({
    package: "linux-source-6.1", version: "6.1.192-2",
    sha256: "ae95fe63d4c553f8d0e6c86cb1ab566f3894a43743eb19ab585cd97d82f26514",
  }),
  busyboxStatic: fetchDeb({
    package: "busybox-static", version: "1:1.35.0-4+deb12u1+b1", arch: "arm64",
    sha256: "732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5",
  }),
  musl: fetchDeb({
    package: "musl", version: "1.2.3-1", arch: "arm64",
    sha256: "6ccf2bf0f479b00411cb8e1eeb048e648718170db5d63bbb4bf4a89350b81468",
  }),
  muslDev: fetchDeb({
    package: "musl-dev", version: "1.2.3-1", arch: "arm64",
    sha256: "55c2ca4bc3041c8ed8ac7dc3ef6080d9551a21650568b2fd7610b59eaf98a4f4",
  }),
};

/**
 * Debian's linux-source-6.1 tarball, taken out of the pinned .deb. A fixed output itself: its
 * own sha256 is pinned, so a user who has the tarball can `kiln store add-fixed` it directly.
 */
export const linuxSourceTarball = build({
  name: "linux-source-6.1-debian-6.1.192-2.tar.xz",
  sha256: "4d415b3d364834fd818270e88813e90323bbfce4f519a0e6bd4940ddcd7df693",
  tools: ["dpkg-deb"],
  script: sh`dpkg-deb --fsys-tarfile ${debs.linuxSource} | tar -xO ./usr/src/linux-source-6.1.tar.xz > $out`,
});

export const busybox = unpackDeb("busybox-static-arm64", debs.busyboxStatic);
export const musl = unpackDeb("musl-arm64", debs.musl);
export const muslDev = unpackDeb("musl-dev-arm64", debs.muslDev);
