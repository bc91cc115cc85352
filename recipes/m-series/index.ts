// m-series: an Alpine-style arm64 Linux for Apple M-series machines and their VMs: a 16K-page
// kernel with the ARMv8.4 features and the hardware crypto built in, NVMe + virtio only, ZFS as
// modules, and a minimal glibc system (BusyBox init, bash, OpenSSH, curl, iproute2, zfsutils) from
// pinned Debian arm64 packages, booted under QEMU with its root on NVMe.
import { sh } from "kiln";
import { build } from "../std/index.js";
import { rootExt4 } from "../std/images.js";
import { config, fragments, kernel, type Fragment } from "./kernel.js";
import { info, packages, rootfs } from "./rootfs.js";
import { bootTest } from "./tests.js";
import { zfsDkmsDeb, zfsModules } from "./zfs.js";

/** Kernel command line: serial console, root on the first NVMe namespace, the kernel's own DHCP. */
export const CMDLINE = "console=ttyAMA0 root=/dev/nvme0n1 rootfstype=ext4 rootwait ip=dhcp";

export interface MSeriesOptions {
  /** kconfig fragments; add your own: { ...fragments, mine: { IKCONFIG: "y" } } */
  fragments?: Record<string, Fragment>;
}

export function mSeries(o: MSeriesOptions = {}) {
  const frags = o.fragments ?? fragments;
  const k = kernel({ fragments: frags });
  const zfs = zfsModules(k);
  const root = rootfs({ kernel: k, zfsModules: zfs });
  /** The root disk: ext4 on the whole NVMe namespace (the kernel is booted directly, as QEMU's -kernel or Virtualization.framework's Linux boot loader do). */
  const disk = rootExt4({ name: "m-series-root.ext4", label: "m-series", rootfs: root, sizeMiB: 160, uuid: "4d2d5345-5249-4553-8000-000000000001" });
  const tests = { boot: bootTest({ name: "m-series-boot-test", kernel: k, disk }) };
  /** Sizes against the seed's ~50 MB, and the boot test's results. */
  const report = build({
    name: "m-series-report",
    script: sh`
      mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
      tree() { du -sb --apparent-size "$1" | cut -f1; }
      j() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"; }
      t=${tests.boot}/report.json
      mkdir -p $out
      {
        echo "m-series: arm64 Linux $(cat ${k}/kernel.release) with 16K pages, ZFS and OpenSSH (Debian 12 packages, glibc)"
        echo "  root disk       $(basename ${disk})  $(mib $(stat -c %s ${disk})) ext4, $(mib $(gzip -9 -n -c ${disk} | wc -c)) gzip'ed"
        echo "  root files      $(mib $(tree ${root})), of which kernel modules $(mib $(tree ${root}/usr/lib/modules)) (ZFS $(mib $(tree ${zfs})))"
        echo "  kernel Image    $(mib $(stat -c %s ${k}/Image))"
        echo "  boot test       passed=$(j $t passed): page size $(j $t pageSize), sshd up $(j $t sshReadySeconds) s after QEMU started (TCG, -cpu max), SSH session with ZFS $(j $t sshSessionSeconds) s, zfs=$(j $t zfs), host key made at boot=$(j $t hostKeyFromBoot)"
        echo "  CPU features    $(sed -n 's/.*"hwcaps":"\([^"]*\)".*/\1/p' $t)"
      } > $out/report.txt
      cat $out/report.txt
    `,
  });
  return {
    disk,
    report,
    kernel: Object.assign(k, { config: config({ fragments: frags }) }),
    zfs,
    rootfs: root,
    info,
    tests,
    sources: { zfsDkms: zfsDkmsDeb, packages },
  };
}
