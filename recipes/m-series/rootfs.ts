// The m-series root filesystem: pinned Debian 12 arm64 packages unpacked into one merged-/usr
// tree (what an install would leave, minus what only maintainer scripts, a package manager or an
// init system use), BusyBox init and applets, the kernel's modules with ZFS's, and a few files of
// our own. No package manager, compiler, docs, translations or host keys.
//
// The package set is rootfs.lock.json, written by
//   kiln seed lock --sets recipes/m-series/rootfs.sets.json --lock recipes/m-series/rootfs.lock.json
// the Depends closure of the set's packages for arm64 (main and contrib), resolved by apt from
// Debian's metadata with the packages listed under "exclude" taken as already present: they are
// only needed by maintainer scripts, PAM or Python tools, and the image is unpacked, not installed.
import { sh, source, type Drv } from "kiln";
import { build, fetchDebFromPool } from "../std/index.js";
import lock from "./rootfs.lock.json" with { type: "json" };
import sets from "./rootfs.sets.json" with { type: "json" };

interface LockedPackage {
  name: string;
  version: string;
  arch: string;
  sha256: string;
  url: string;
}

const SET = "m-series-rootfs";

// a lock written for another request would pin the wrong packages without anyone noticing
{
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  const want = sets.sets[SET];
  const got = lock.sets[SET] as { arch: string; request: string[]; exclude?: string[] };
  if (got.arch !== want.arch || !same(got.request, [...want.packages].sort()) || !same(got.exclude ?? [], [...want.exclude].sort())) {
    throw new Error("recipes/m-series/rootfs.lock.json does not match rootfs.sets.json: run `kiln seed lock --sets recipes/m-series/rootfs.sets.json --lock recipes/m-series/rootfs.lock.json` and commit both files");
  }
}

/** Every package of the set by name, fetched by its pinned sha256 (the archive's pool URL the lock names, then apt). */
export const packages: Record<string, Drv> = Object.fromEntries(lock.sets[SET].packages.map((key) => {
  const p = (lock.packages as Record<string, LockedPackage>)[key]!;
  return [p.name, fetchDebFromPool({ package: p.name, version: p.version, arch: p.arch, sha256: p.sha256, urls: [p.url] })];
}));

/** Prints page size, kernel, memory and the CPU features the kernel enabled (AT_HWCAP). */
export const info = build({
  name: "m-series-info",
  seed: ["cross-aarch64"],
  env: { CFLAGS: "-O2 -Wall -Wextra -Werror" },
  script: sh`
    aarch64-linux-gnu-gcc $CFLAGS -o m-series-info ${source(import.meta.url, "files/m-series-info.c")}
    aarch64-linux-gnu-strip --strip-all m-series-info
    mkdir -p $out/bin
    cp m-series-info $out/bin/m-series-info
  `,
});

/** What of the unpacked packages a running m-series never uses. */
const PRUNE = [
  // documentation and translations
  "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian", "usr/share/bug",
  "usr/share/menu", "usr/share/bash-completion", "usr/share/zsh", "usr/share/apport",
  // systemd, udev, runit, sysvinit, cron and initramfs integration: BusyBox init runs this system
  "etc/init.d", "etc/systemd", "usr/lib/systemd", "usr/lib/udev", "etc/runit", "etc/sv", "usr/share/runit",
  "etc/cron.d", "etc/default", "usr/share/initramfs-tools", "usr/lib/os-probes", "etc/ufw", "etc/sudoers.d",
  // PAM is off in sshd (no PAM modules in the image); ucf's sshd_config template is replaced
  "etc/pam.d", "usr/share/openssh",
  // glibc's iconv modules (19 MiB): nothing here converts between character sets
  "usr/lib/aarch64-linux-gnu/gconv",
  // ZFS's Python tools (arc_summary, arcstat, dbufstat): no Python in the image
  "usr/bin/arc_summary", "usr/bin/arcstat", "usr/bin/dbufstat",
];

/** Names that must not be in the image: a package manager, a compiler, an interpreter we left out. */
const ABSENT = ["dpkg", "apt", "apt-get", "gcc", "cc", "perl", "python3", "rpm"];

export interface RootfsOptions {
  kernel: Drv;
  zfsModules: Drv;
}

export function rootfs(o: RootfsOptions): Drv {
  const f = (name: string) => source(import.meta.url, `files/${name}`);
  return build({
    name: "m-series-rootfs",
    // dpkg-deb is base's, qemu-aarch64-static qemu-user's, depmod (kmod) the kernel set's
    seed: ["kernel", "qemu-user"],
    env: { PRUNE: PRUNE.join(" "), ABSENT: ABSENT.join(" ") },
    script: sh`
      r=$out
      # merged /usr, as Debian 12 installs: /bin, /sbin and /lib are links into /usr
      mkdir -p $r/usr/bin $r/usr/sbin $r/usr/lib
      ln -s usr/bin $r/bin; ln -s usr/sbin $r/sbin; ln -s usr/lib $r/lib
      for deb in ${Object.values(packages)}; do
        dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink --no-same-owner -C $r
      done
      cd $r
      rm -rf $PRUNE
      # the CA bundle update-ca-certificates would make: every certificate, in a fixed order
      find usr/share/ca-certificates -name '*.crt' | LC_ALL=C sort | xargs cat > etc/ssl/certs/ca-certificates.crt
      rm -rf usr/share/ca-certificates etc/ca-certificates

      # BusyBox applets for what no package provides, asked from the binary itself (under qemu-user);
      # /bin/sh is BusyBox's ash, as on Alpine. No rpm applets: no package manager.
      qemu-aarch64-static -L $r usr/bin/busybox --list-full | LC_ALL=C sort | while IFS= read -r a; do
        name=\${a##*/}
        case "$name" in rpm|rpm2cpio|linuxrc) continue ;; esac
        case "$a" in sbin/*|usr/sbin/*) dir=usr/sbin ;; *) dir=usr/bin ;; esac
        [ -e usr/bin/$name ] || [ -e usr/sbin/$name ] || ln -s /usr/bin/busybox $dir/$name
      done
      cp ${info}/bin/m-series-info usr/bin/m-series-info

      # the kernel's modules and ZFS's, with their index
      release=$(cat ${o.kernel}/kernel.release)
      mkdir -p usr/lib/modules
      cp -r ${o.kernel}/lib/modules/$release usr/lib/modules/$release
      chmod -R u+w usr/lib/modules
      cp -r ${o.zfsModules}/$release/extra usr/lib/modules/$release/extra
      depmod -b $r $release

      # init, users, names, the network and the sshd configuration
      mkdir -p etc/init.d etc/ssh root tmp var/log var/empty run proc sys dev mnt
      cp ${f("inittab")} etc/inittab
      cp ${f("rcS")} etc/init.d/rcS; cp ${f("rcK")} etc/init.d/rcK; chmod 0755 etc/init.d/rcS etc/init.d/rcK
      mkdir -p usr/lib/m-series; cp ${f("uevent")} usr/lib/m-series/uevent; chmod 0755 usr/lib/m-series/uevent
      cp ${f("sshd_config")} etc/ssh/sshd_config
      printf 'root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > etc/passwd
      printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > etc/group
      printf 'root:*:1:0:99999:7:::\nsshd:*:1:0:99999:7:::\nnobody:*:1:0:99999:7:::\n' > etc/shadow
      printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' > etc/nsswitch.conf
      printf 'm-series\n' > etc/hostname
      printf '127.0.0.1 localhost\n127.0.1.1 m-series\n::1 localhost\n' > etc/hosts
      printf 'NAME="m-series"\nID=m-series\nID_LIKE=debian\nVERSION_ID=12\nPRETTY_NAME="m-series (arm64, 16K pages, Debian 12 packages)"\n' > etc/os-release
      cp ${f("profile")} etc/profile
      # the kernel's DHCP client writes the name servers it was given to /proc/net/pnp
      ln -s /proc/net/pnp etc/resolv.conf
      ln -s /proc/self/mounts etc/mtab

      # what must not be here
      for x in $ABSENT; do
        if [ -e usr/bin/$x ] || [ -e usr/sbin/$x ]; then echo "rootfs: $x must not be in the image"; exit 1; fi
      done
      if ls etc/ssh/ssh_host_* >/dev/null 2>&1; then echo "rootfs: host keys must be made at first boot, not shipped"; exit 1; fi
      if test -d usr/share/doc; then echo "rootfs: documentation left in usr/share/doc"; exit 1; fi
    `,
  });
}
