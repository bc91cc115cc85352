// Images, each its own derivation and each bit-reproducible: the initramfs, the FAT32 boot
// partition, the ext4 root partition (std's), the model partition and the whole MBR disk image,
// all made without loop devices or mounts (so they build unprivileged, in the sandbox).
import { sh, source, type Drv } from "kiln";
import { build } from "../std/index.js";
import { ext4FromRoot, rootExt4 as ext4Image, stageRoot, type RootExt4Options } from "../std/images.js";

/** gzip'ed newc initramfs: sorted file list, fixed times and owners. */
export function initramfs(rootfs: Drv): Drv {
  return build({
    name: "pi4-llm-os-initramfs.cpio.gz",
    script: sh`
      ${stageRoot(rootfs)}
      (cd root && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | cpio -o -H newc --reproducible -R 0:0 --quiet) | gzip -n -9 > $out
    `,
  });
}

export interface BootfsOptions {
  kernel: Drv;
  initramfs: Drv;
  cmdline: string;
  sizeMiB?: number;
  /** partition start in the disk image, in 512-byte sectors (the FAT's hidden sectors) */
  offsetSectors?: number;
  volumeId?: string;
  /** extra files for the partition: name -> derivation (the GPU firmware on the board image) */
  extra?: Record<string, Drv>;
}

/** FAT32 boot partition: Image, the Pi 4 DTB, the initramfs, config.txt, cmdline.txt. */
export function bootfs(o: BootfsOptions): Drv {
  const extra = Object.keys(o.extra ?? {}).sort().map((n) => sh`${o.extra![n]!}:${n}`);
  return build({
    name: o.extra ? "pi4-llm-os-board-boot.vfat" : "pi4-llm-os-boot.vfat",
    seed: ["images"],
    env: { CMDLINE: o.cmdline, SIZE_MIB: String(o.sizeMiB ?? 64), HIDDEN: String(o.offsetSectors ?? 2048), VOLID: o.volumeId ?? "50493442" },
    script: sh`
      # --invariant must come before -i, or it overrides the volume id
      mkfs.vfat --invariant -F 32 -S 512 -n PI4BOOT -i "$VOLID" -h "$HIDDEN" -C boot.vfat $((SIZE_MIB * 1024)) >/dev/null
      printf '%s\n' "$CMDLINE" > cmdline.txt
      # FAT cannot store dates before 1980: mtools clamps to SOURCE_DATE_EPOCH, so give it 1980-01-01
      export MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null
      fat_epoch=$SOURCE_DATE_EPOCH; [ "$fat_epoch" -ge 315532800 ] || fat_epoch=315532800
      # a fixed order gives a fixed directory-entry order
      for pair in ${o.kernel}/Image:Image ${o.kernel}/dtbs/broadcom/bcm2711-rpi-4-b.dtb:bcm2711-rpi-4-b.dtb ${o.initramfs}:initramfs.cpio.gz ${source(import.meta.url, "files/config.txt")}:config.txt cmdline.txt:cmdline.txt ${extra}; do
        SOURCE_DATE_EPOCH=$fat_epoch mcopy -i boot.vfat "\${pair%%:*}" "::\${pair#*:}"
      done
      fsck.vfat -n boot.vfat >/dev/null
      mv boot.vfat $out
    `,
  });
}

/** The ext4 root partition. */
export function rootExt4(o: Omit<RootExt4Options, "name" | "label">): Drv {
  return ext4Image({ ...o, name: "pi4-llm-os-root.ext4", label: "pi4root" });
}

/**
 * The model partition (label pi4models, found by init with findfs): model.gguf and its original
 * name in model.name. Sized to the model (plus 4% and 4 MiB for the filesystem's own blocks); no
 * journal, since nothing writes to it on the device.
 */
export function modelsExt4(o: { model: Drv; uuid?: string }): Drv {
  return build({
    name: "pi4-llm-os-models.ext4",
    seed: ["images"],
    env: { FS_UUID: o.uuid ?? "5049344c-4c4d-4f53-8000-000000000003", MODEL_NAME: o.model.name },
    script: sh`
      mkdir root
      cp ${o.model} root/model.gguf
      printf '%s\n' "$MODEL_NAME" > root/model.name
      chmod 0755 root; chmod 0644 root/model.gguf root/model.name
      SIZE_MIB=$(( $(stat -c %s root/model.gguf) * 104 / 100 / 1048576 + 4 ))
      ${ext4FromRoot({ label: "pi4models", file: "models.ext4", options: "-O ^has_journal -m 0" })}
      mv models.ext4 $out
    `,
  });
}

/** The whole disk: MBR with a fixed label id, [1 MiB gap][p1 FAT32 boot][p2 ext4 root][p3 ext4 models]. */
export function diskImage(o: { boot: Drv; root: Drv; models?: Drv; labelId?: string; name?: string }): Drv {
  return build({
    name: o.name ?? "pi4-llm-os-disk.img",
    seed: ["images"],
    env: { LABEL_ID: o.labelId ?? "0x50493445" },
    script: sh`
      bsz=$(( $(stat -c %s ${o.boot}) / 512 )); rsz=$(( $(stat -c %s ${o.root}) / 512 ))
      p1=2048; p2=$(( p1 + bsz )); total=$(( p2 + rsz ))
      printf 'label: dos\nlabel-id: %s\nunit: sectors\n\nstart=%s, size=%s, type=c, bootable\nstart=%s, size=%s, type=83\n' \
        "$LABEL_ID" $p1 $bsz $p2 $rsz > table
      ${o.models ? sh`
      msz=$(( $(stat -c %s ${o.models}) / 512 )); p3=$total; total=$(( p3 + msz ))
      printf 'start=%s, size=%s, type=83\n' $p3 $msz >> table` : ""}
      truncate -s $(( total * 512 )) disk.img
      sfdisk --quiet --no-reread --no-tell-kernel disk.img < table
      dd if=${o.boot} of=disk.img bs=512 seek=$p1 conv=notrunc,sparse status=none
      dd if=${o.root} of=disk.img bs=512 seek=$p2 conv=notrunc,sparse status=none
      ${o.models ? sh`dd if=${o.models} of=disk.img bs=512 seek=$p3 conv=notrunc,sparse status=none` : ""}
      mv disk.img $out
    `,
  });
}
