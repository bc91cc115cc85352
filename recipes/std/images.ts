// Filesystem images made without loop devices or mounts (so they build unprivileged, in the
// sandbox), bit-reproducible: every inode's owner and times fixed.
import { sh, source, type Drv } from "kiln";
import { build } from "./index.js";

/**
 * Copy a store tree (read-only, modes normalised by the store) to ./root with the modes the
 * running system needs: 0755 dirs, 0644/0755 files, /tmp 1777, /root 0700; times = SOURCE_DATE_EPOCH.
 * `hardLinks: false` copies hard-linked files apart: a tree substituted from a binary cache has
 * none, so an image that must not depend on where its tree came from is made without them.
 */
export const stageRoot = (rootfs: Drv, o: { hardLinks?: boolean } = {}) => sh`
  cp -a${o.hardLinks === false ? " --no-preserve=links" : ""} ${rootfs} root
  chmod -R u+w root
  find root -type d -exec chmod 0755 {} +
  find root -type f -perm -u+x -exec chmod 0755 {} +
  find root -type f ! -perm -u+x -exec chmod 0644 {} +
  chmod 1777 root/tmp
  chmod 0700 root/root
  find root -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
`;

export interface RootExt4Options {
  /** store name of the image */
  name: string;
  /** filesystem label */
  label: string;
  rootfs: Drv;
  sizeMiB?: number;
  uuid?: string;
}

/**
 * mke2fs -d of ./root into ./FILE ($SIZE_MIB, $FS_UUID, the label and extra mke2fs options
 * given), then every inode's owner and times fixed with debugfs: mke2fs copies them from the
 * staged files. The text is part of each image's derivation: change it and every image rebuilds.
 */
export const ext4FromRoot = (o: { label: string; file: string; options?: string }) => sh`# a pinned mke2fs.conf: e2fsprogs' built-in defaults must not change the filesystem
      export MKE2FS_CONFIG=${source(import.meta.url, "files/mke2fs.conf")} E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
      mke2fs -q -F -t ext4 -b 4096 -L ${o.label} -U "$FS_UUID"${o.options ? ` ${o.options}` : ""} \
        -E "hash_seed=$FS_UUID,root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0" \
        -d root ${o.file} "\${SIZE_MIB}M"
      # mke2fs copies owners and ctime/atime from the staged files: normalise every inode
      { echo /; echo /lost+found; (cd root && find . -mindepth 1 -printf '/%P\n'); } | LC_ALL=C sort -u | while IFS= read -r p; do
        for f in atime ctime mtime crtime; do echo "set_inode_field \"$p\" $f @$SOURCE_DATE_EPOCH"; done
        echo "set_inode_field \"$p\" uid 0"
        echo "set_inode_field \"$p\" gid 0"
      done > debugfs.cmds
      debugfs -w -f debugfs.cmds ${o.file} > debugfs.log 2>&1
      if grep -v '^debugfs [0-9]\|^debugfs: set_inode_field' debugfs.log | grep -q .; then cat debugfs.log; exit 1; fi
      e2fsck -fn ${o.file} >/dev/null 2>&1 || { e2fsck -fn ${o.file}; exit 1; }`;

/** ext4 root partition via mke2fs -d, then every inode's owner and times fixed with debugfs. */
export function rootExt4(o: RootExt4Options): Drv {
  return build({
    name: o.name,
    seed: ["images"],
    env: { SIZE_MIB: String(o.sizeMiB ?? 64), FS_UUID: o.uuid ?? "5049344c-4c4d-4f53-8000-000000000002" },
    script: sh`
      ${stageRoot(o.rootfs)}
      ${ext4FromRoot({ label: o.label, file: "root.ext4" })}
      mv root.ext4 $out
    `,
  });
}
