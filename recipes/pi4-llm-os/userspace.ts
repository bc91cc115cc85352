// Userspace: a musl cross toolchain (the seed's aarch64 gcc + a specs file pointing at Debian's
// musl for arm64), small C programs built with it, BusyBox with its applet links, and the rootfs.
import { sh, source, type Drv } from "kiln";
import { build } from "../std/index.js";
import { llama } from "./llm.js";
import { busybox, musl, muslDev } from "./sources.js";

/**
 * The musl toolchain: a sysroot from musl-dev:arm64 and a gcc specs file in the shape of
 * Debian's musl-gcc.specs, so `aarch64-linux-gnu-gcc -specs $toolchain/musl-gcc.specs` links
 * against musl instead of glibc. A wrapper bin/aarch64-linux-musl-gcc does just that.
 */
export const muslToolchain = build({
  name: "aarch64-linux-musl-toolchain",
  script: sh`
    mkdir -p $out/sysroot/lib $out/sysroot/include $out/bin
    cp -a ${muslDev}/usr/include/aarch64-linux-musl/. $out/sysroot/include/
    cp -a ${muslDev}/usr/lib/aarch64-linux-musl/. $out/sysroot/lib/
    chmod -R u+w $out/sysroot
    rm -f $out/sysroot/lib/musl-gcc.specs $out/sysroot/lib/libc.so
    # the real shared object, so dynamic linking works too (musl-dev's libc.so is a symlink)
    cp ${musl}/lib/aarch64-linux-musl/libc.so $out/sysroot/lib/libc.so
    sed -e "s|/usr/include/aarch64-linux-musl|$out/sysroot/include|g" \
        -e "s|/usr/lib/aarch64-linux-musl|$out/sysroot/lib|g" \
        ${muslDev}/usr/lib/aarch64-linux-musl/musl-gcc.specs > $out/musl-gcc.specs
    grep -q "$out/sysroot/lib/crti.o" $out/musl-gcc.specs || { echo "unexpected shape of musl-gcc.specs"; exit 1; }
    printf '#!/bin/sh\nexec aarch64-linux-gnu-gcc -specs %s/musl-gcc.specs "$@"\n' "$out" > $out/bin/aarch64-linux-musl-gcc
    chmod 755 $out/bin/aarch64-linux-musl-gcc
  `,
});

/** A small static musl program from one C file in files/, stripped. */
function staticC(name: string): Drv {
  return build({
    name,
    seed: ["cross-aarch64"],
    env: { CFLAGS: "-Os -Wall -Wextra -Werror" },
    script: sh`
      cp ${source(import.meta.url, `files/${name}.c`)} ${name}.c
      ${muslToolchain}/bin/aarch64-linux-musl-gcc -static $CFLAGS -o ${name} ${name}.c
      aarch64-linux-gnu-strip --strip-all ${name}
      mkdir -p $out/bin
      cp ${name} $out/bin/${name}
    `,
  });
}

/** sysinfo: prints the kernel, MemTotal/MemAvailable, the OS overhead and the model budget. */
export const sysinfo = staticC("sysinfo");

/** peak-rss: runs a command and writes its peak RSS (llm-run measures the runtime with it). */
export const peakRss = staticC("peak-rss");

/** BusyBox's applet list, asked from the pinned binary itself under qemu-user. */
export const busyboxApplets = build({
  name: "busybox-applets",
  seed: ["qemu-user"],
  script: sh`qemu-aarch64-static ${busybox}/bin/busybox --list-full | LC_ALL=C sort -u > $out`,
});

/**
 * The root filesystem tree, as the seed lays it out; every binary static, so no /lib/ld-musl.
 * The LLM runtime is llama-simple (static glibc, see llm.ts) with llm-run around it; the model
 * itself is not here but on its own partition (images.ts), loaded into /mnt/models at boot.
 */
export const rootfs = build({
  name: "pi4-llm-os-rootfs",
  script: sh`
    r=$out
    for d in bin sbin lib etc dev proc sys tmp var mnt mnt/models mnt/modelstore root usr usr/bin usr/sbin; do mkdir -p $r/$d; chmod 0755 $r/$d; done
    chmod 1777 $r/tmp; chmod 0700 $r/root
    cp ${busybox}/bin/busybox $r/bin/busybox; chmod 0755 $r/bin/busybox
    grep / ${busyboxApplets} | while IFS= read -r a; do
      case "$a" in bin/busybox|sbin/init) continue;; esac
      [ -e "$r/$a" ] || [ -L "$r/$a" ] || ln -s /bin/busybox "$r/$a"
    done
    cp ${sysinfo}/bin/sysinfo $r/bin/sysinfo; chmod 0755 $r/bin/sysinfo
    cp ${peakRss}/bin/peak-rss $r/usr/bin/peak-rss; chmod 0755 $r/usr/bin/peak-rss
    cp ${source(import.meta.url, "files/init")} $r/sbin/init; chmod 0755 $r/sbin/init
    cp ${llama}/bin/llama-simple $r/usr/bin/llama-simple; chmod 0755 $r/usr/bin/llama-simple
    cp ${source(import.meta.url, "files/llm-run")} $r/usr/bin/llm-run; chmod 0755 $r/usr/bin/llm-run
    ln -s sbin/init $r/init
    printf 'root:x:0:0:root:/root:/bin/sh\n' > $r/etc/passwd
    printf 'root:x:0:\n' > $r/etc/group
    printf 'pi4-llm-os\n' > $r/etc/hostname
    printf 'NAME="pi4-llm-os"\nID=pi4-llm-os\nPRETTY_NAME="pi4-llm-os (aarch64, Raspberry Pi 4)"\n' > $r/etc/os-release
  `,
});
