// OpenZFS kernel modules, built out of tree against the m-series kernel (16K pages) from the
// source Debian ships in zfs-dkms (contrib): the same 2.1.11 as the zfsutils-linux userspace in
// the rootfs. DKMS itself is not used: its dkms.conf only runs configure and make, done here.
import { sh, type Drv } from "kiln";
import { build, fetchDeb } from "../std/index.js";

export const ZFS_VERSION = "2.1.11";

/** zfs-dkms is in contrib: where apt's sources lack contrib, the pool URL serves the same bytes. */
export const zfsDkmsDeb = fetchDeb({
  package: "zfs-dkms", version: "2.1.11-1+deb12u1",
  sha256: "2863f936900d315b499ab67cc7b7db3bcba9d5fc5fd33ec5f12fb3ed1ff5580e",
  urls: [
    "http://deb.debian.org/debian/pool/contrib/z/zfs-linux/zfs-dkms_2.1.11-1%2bdeb12u1_all.deb",
    "https://snapshot.debian.org/file/98debbf75602bef246c13667402043cb55de8da4",
  ],
});

/** $out/<kernel release>/extra/*.ko: spl, zfs and their parts, debug info stripped. */
export function zfsModules(kernel: Drv): Drv {
  return build({
    name: "zfs-modules-m-series",
    seed: ["cross-aarch64", "kernel"],
    env: { ARCH: "arm64", CROSS_COMPILE: "aarch64-linux-gnu-" },
    script: sh`
      dpkg-deb --fsys-tarfile ${zfsDkmsDeb} | tar -x --no-same-owner ./usr/src/zfs-${ZFS_VERSION}
      cd usr/src/zfs-${ZFS_VERSION}
      headers=${kernel.output("headers")}
      release=$(cat ${kernel}/kernel.release)
      # what dkms.conf's PRE_BUILD runs, for a cross build; configure compiles its kernel
      # interface probes against the headers, so a kernel too new or too old fails here
      ./configure --prefix=/usr --with-config=kernel --host=aarch64-linux-gnu --build=x86_64-linux-gnu \
        --with-linux="$headers" --with-linux-obj="$headers" > configure.log 2>&1 || { tail -n 40 configure.log; exit 1; }
      make -C module -j"$KILN_BUILD_CORES"
      mkdir -p $out/$release/extra
      for ko in $(find module -name '*.ko' | LC_ALL=C sort); do
        aarch64-linux-gnu-strip --strip-debug -o $out/$release/extra/$(basename $ko) $ko
      done
      # vermagic must be the kernel's, or modprobe refuses the module at boot
      want="$release SMP mod_unload aarch64"
      for ko in $out/$release/extra/*.ko; do
        got=$(modinfo -F vermagic "$ko" | sed 's/ *$//')
        [ "$got" = "$want" ] || { echo "$ko: vermagic '$got', kernel has '$want'"; exit 1; }
      done
      ls $out/$release/extra
    `,
  });
}
