// BlazeNeuro's USB image, laid out as seeds 000/001 say: an MBR, partition 1 a 512 MiB FAT32
// (the EFI system partition and GRUB's), the rest ext4 mounted read-write as the root (the
// persistence: no overlay, changes are simply written). Made without loop devices, mounts or
// root, and bit-reproducible:
//
//   sector 0        GRUB's boot.img (BIOS), the partition table
//   sectors 1..     GRUB's core.img for i386-pc (diskboot.img first: it loads the rest from sector 2)
//   1 MiB           p1 FAT32 "BLAZEBOOT": EFI/BOOT/BOOTX64.EFI (GRUB for x86_64-efi), boot/grub/
//                   {grub.cfg, grubenv, i386-pc/, x86_64-efi/}, boot/vmlinuz
//   513 MiB         p2 ext4 "blazeroot": the root tree
//
// GRUB is Debian's prebuilt 2.06 (grub-pc-bin, grub-efi-amd64-bin, grub-mkimage from
// grub-common: the seed's `grub` set), named as such in the image's manifest.
import { sh, type Drv } from "kiln";
import { build } from "../std/index.js";
import { ext4FromRoot, stageRoot } from "../std/images.js";

/** The MBR's disk identifier: partition n is PARTUUID=<id>-0n, how the kernel finds its root. */
export const DISK_ID = "424c5a4e";
export const ESP_LABEL = "BLAZEBOOT";
export const ROOT_LABEL = "blazeroot";
const ESP_MIB = 512;
/** the ESP starts at 1 MiB, the root right after it */
export const ROOT_OFFSET_MIB = 1 + ESP_MIB;

/** How the kernel finds and mounts its root. */
export const ROOT_ARGS = `root=PARTUUID=${DISK_ID}-02 rootfstype=ext4 rw rootwait`;
/**
 * The consoles: kernel messages on both, and the last one is /dev/console, where init's shell
 * runs: the screen and keyboard on a PC, the serial port for the self-test (grub.cfg swaps them).
 */
const CONSOLES = "console=ttyS0,115200 console=tty0";
const TEST_CONSOLES = "console=tty0 console=ttyS0,115200";

/** GRUB's modules both images carry in themselves: enough to find the ESP and read grub.cfg. */
const CORE_MODULES = ["part_msdos", "fat", "search", "search_label", "configfile", "normal", "linux", "echo", "test", "loadenv", "serial", "terminal"];

/** The two GRUB images: $out/core.img (i386-pc, diskboot.img first) and $out/BOOTX64.EFI, each finding the ESP by its label. */
export const grubImages = build({
  name: "blazeneuro-grub",
  seed: ["grub"],
  script: sh`mkdir -p $out
    printf 'search --no-floppy --label --set=root ${ESP_LABEL}\nset prefix=($root)/boot/grub\n' > early.cfg
    grub-mkimage -O i386-pc -o $out/core.img -c early.cfg -p /boot/grub biosdisk ${CORE_MODULES.join(" ")}
    grub-mkimage -O x86_64-efi -o $out/BOOTX64.EFI -c early.cfg -p /boot/grub ${CORE_MODULES.join(" ")} efi_gop all_video
    cp /usr/lib/grub/i386-pc/boot.img $out/boot.img
    # core.img sits right after the MBR, in the gap before partition 1
    test $(( $(stat -c %s $out/core.img) / 512 + 1 )) -lt 2048 || { echo "core.img does not fit in the 1 MiB before partition 1"; exit 1; }
    grub-mkimage --version > $out/version`,
});

/** GRUB's menu: one entry; a grubenv with blazeneuro_test=1 (set the way grub-reboot sets next_entry) adds the self-test flag. */
const grubCfg = `serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set default=0
set timeout=3
set test_flag=
set consoles="${CONSOLES}"
load_env
if [ "\${blazeneuro_test}" = 1 ]; then set test_flag=blazeneuro.test=1; set consoles="${TEST_CONSOLES}"; set timeout=0; fi
menuentry "BlazeNeuro" {
  echo "Loading BlazeNeuro..."
  linux /boot/vmlinuz ${ROOT_ARGS} \${consoles} \${test_flag}
}
`;

/** GRUB's environment block: 1024 bytes, "# GRUB Environment Block", key=value lines, padded with '#'. */
export const grubenvScript = (vars: string) => `{ printf '# GRUB Environment Block\\n${vars}'; head -c 1024 /dev/zero | tr '\\0' '#'; } | head -c 1024`;

/** The FAT32 ESP: GRUB for UEFI at the removable-media path, GRUB's modules and menu, the kernel. */
export function esp(o: { kernel: Drv; grub: Drv }): Drv {
  return build({
    name: "blazeneuro-esp.vfat",
    seed: ["images", "grub"],
    env: { GRUB_CFG: grubCfg },
    script: sh`
      mkfs.vfat --invariant -F 32 -S 512 -n ${ESP_LABEL} -i ${DISK_ID} -h 2048 -C esp.vfat $((${ESP_MIB} * 1024)) >/dev/null
      printf '%s' "$GRUB_CFG" > grub.cfg
      ${grubenvScript("")} > grubenv
      export MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null
      # FAT cannot store dates before 1980: give mtools 1980-01-01
      fat_epoch=$SOURCE_DATE_EPOCH; [ "$fat_epoch" -ge 315532800 ] || fat_epoch=315532800
      export SOURCE_DATE_EPOCH=$fat_epoch
      m() { mcopy -i esp.vfat "$@"; }
      # directories and files in a fixed order: a fixed directory-entry order
      for d in ::/EFI ::/EFI/BOOT ::/boot ::/boot/grub ::/boot/grub/i386-pc ::/boot/grub/x86_64-efi; do mmd -i esp.vfat "$d"; done
      m ${o.grub}/BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
      m ${o.kernel}/bzImage ::/boot/vmlinuz
      m grub.cfg ::/boot/grub/grub.cfg
      m grubenv ::/boot/grub/grubenv
      for t in i386-pc x86_64-efi; do
        m $(LC_ALL=C ls -d /usr/lib/grub/$t/*.mod /usr/lib/grub/$t/*.lst | LC_ALL=C sort) ::/boot/grub/$t/
      done
      fsck.vfat -n esp.vfat >/dev/null
      mv esp.vfat $out
    `,
  });
}

/** The ext4 root: the root tree with the modes a running system needs, sized to it plus room to grow. */
export function rootPartition(o: { rootfs: Drv; freeMiB?: number }): Drv {
  return build({
    name: "blazeneuro-root.ext4",
    seed: ["images"],
    env: { FS_UUID: "424c5a4e-524f-4f54-8000-000000000002", FREE_MIB: String(o.freeMiB ?? 256) },
    script: sh`
      ${stageRoot(o.rootfs, { hardLinks: false })}
      # the size from the files' contents alone (a directory's size depends on the filesystem the
      # build runs on): a 4 KiB block per started 4 KiB of a file and one per directory or link,
      # a quarter more for the filesystem's own blocks, and free room for what users write
      blocks=$(find root -type f -printf '%s\n' | awk '{ b += int(($1 + 4095) / 4096) } END { print b + 0 }')
      others=$(find root ! -type f | wc -l)
      SIZE_MIB=$(( (blocks + others) / 256 * 5 / 4 + FREE_MIB ))
      ${ext4FromRoot({ label: ROOT_LABEL, file: "root.ext4" })}
      mv root.ext4 $out
    `,
  });
}

/**
 * The whole stick: $out/blazeneuro-usb.img (write it to a USB stick with dd), $out/manifest.txt
 * (what is in it, GRUB named as Debian's binaries) and $out/sizes.txt.
 */
export function usbImage(o: { kernel: Drv; rootfs: Drv; grub?: Drv; rootFreeMiB?: number }): Drv {
  const grub = o.grub ?? grubImages;
  const boot = esp({ kernel: o.kernel, grub });
  const root = rootPartition({ rootfs: o.rootfs, freeMiB: o.rootFreeMiB });
  return build({
    name: "blazeneuro-usb",
    seed: ["images"],
    env: { LABEL_ID: `0x${DISK_ID}` },
    script: sh`
      bsz=$(( $(stat -c %s ${boot}) / 512 )); rsz=$(( $(stat -c %s ${root}) / 512 ))
      p1=2048; p2=$(( p1 + bsz )); total=$(( p2 + rsz ))
      test $p2 = $(( ${ROOT_OFFSET_MIB} * 2048 ))
      printf 'label: dos\nlabel-id: %s\nunit: sectors\n\nstart=%s, size=%s, type=ef, bootable\nstart=%s, size=%s, type=83\n' \
        "$LABEL_ID" $p1 $bsz $p2 $rsz > table
      truncate -s $(( total * 512 )) disk.img
      sfdisk --quiet --no-reread --no-tell-kernel disk.img < table
      # BIOS: boot.img's code (not its partition table) in the MBR, core.img from sector 1, where boot.img looks
      dd if=${grub}/boot.img of=disk.img bs=440 count=1 conv=notrunc status=none
      # as grub-bios-setup does for a disk: no jump over the boot-drive check (0x66), so a BIOS that passes a wrong drive number still boots it
      printf '\220\220' | dd of=disk.img bs=1 seek=102 conv=notrunc status=none
      dd if=${grub}/core.img of=disk.img bs=512 seek=1 conv=notrunc status=none
      dd if=${boot} of=disk.img bs=512 seek=$p1 conv=notrunc,sparse status=none
      dd if=${root} of=disk.img bs=512 seek=$p2 conv=notrunc,sparse status=none
      mkdir -p $out
      mv disk.img $out/blazeneuro-usb.img
      {
        echo "BlazeNeuro USB image"
        echo "partition 1: FAT32 ${ESP_LABEL}, $(( bsz / 2048 )) MiB: EFI/BOOT/BOOTX64.EFI, boot/grub, boot/vmlinuz"
        echo "partition 2: ext4 ${ROOT_LABEL}, $(( rsz / 2048 )) MiB, read-write root (persistence)"
        echo "kernel: Linux $(cat ${o.kernel}/kernel.release), ${o.kernel}"
        echo "command line: ${ROOT_ARGS} ${CONSOLES} (the self-test: ${TEST_CONSOLES} blazeneuro.test=1)"
        echo "GRUB: Debian's prebuilt binaries, not built from source ($(cat ${grub}/version)): grub-mkimage of grub-common, modules of grub-pc-bin (i386-pc) and grub-efi-amd64-bin (x86_64-efi)"
        echo "root tree: ${o.rootfs}"
      } > $out/manifest.txt
      {
        echo "image $(stat -c %s $out/blazeneuro-usb.img) bytes"
        echo "esp $(stat -c %s ${boot}) bytes"
        echo "root partition $(stat -c %s ${root}) bytes"
        echo "root tree $(find ${o.rootfs} -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }') bytes (its files' contents)"
        echo "kernel $(stat -c %s ${o.kernel}/bzImage) bytes"
      } > $out/sizes.txt
    `,
  });
}
