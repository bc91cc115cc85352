// The m-series kernel: std's Linux 6.1 for arm64 with the seed's options, each a named fragment.
// A fragment's every symbol is checked in the final .config, the "off" ones included (strictOff):
// "no debug" that something quietly selects back on fails the build, naming the symbol.
//
// What "ARMv8.4-A minimum" means for Linux 6.1: there is no -march knob; the kernel patches in
// each CPU feature at boot through alternatives. The fragment turns on every 8.1-8.4 feature it
// has an option for, so an M1 or later gets all of them (a CPU without one just runs without it).
import type { Drv } from "kiln";
import { kernel as linux, kernelConfig, userspaceBasics, virtConsole, type Fragment } from "../std/linux.js";

export type { Fragment };

export const fragments: Record<string, Fragment> = {
  // serial console on qemu -M virt's PL011 (Virtualization.framework's console is virtio, below)
  console: virtConsole,
  // glibc, OpenSSH and BusyBox: the common userspace calls, inotify, seccomp for sshd's sandbox,
  // the running kernel's config in /proc/config.gz (what the boot test prints)
  userspace: {
    ...userspaceBasics,
    INOTIFY_USER: "y", FHANDLE: "y", SECCOMP: "y", SECCOMP_FILTER: "y", PROC_SYSCTL: "y", IKCONFIG: "y", IKCONFIG_PROC: "y",
  },
  // ARMv8.1-8.4: LSE atomics, PAN, hardware access/dirty flags (8.1); RAS, common-not-private
  // TLB entries (8.2); pointer authentication, for user space and the kernel (8.3); the activity
  // monitors and range TLB invalidation (8.4)
  armv8_4: {
    ARM64_USE_LSE_ATOMICS: "y", ARM64_LSE_ATOMICS: "y", ARM64_PAN: "y", ARM64_HW_AFDBM: "y", ARM64_RAS_EXTN: "y", ARM64_CNP: "y",
    ARM64_PTR_AUTH: "y", ARM64_PTR_AUTH_KERNEL: "y", ARM64_AMU_EXTN: "y", ARM64_TLB_RANGE: "y", NR_CPUS: "32",
  },
  // 16K pages, the M-series' native granule, with 47-bit virtual addresses
  pages16k: { ARM64_16K_PAGES: "y", ARM64_VA_BITS_47: "y", ARM64_PAGE_SHIFT: "14" },
  // the ARMv8 Crypto Extensions' AES, SHA-1/2/512/3, GHASH and CRC-T10DIF, and NEON ChaCha20/
  // Poly1305, built in (no module to load first); CRC32/CRC32C use the CRC32 instructions
  crypto: {
    CRYPTO: "y", CRYPTO_AES_ARM64_CE: "y", CRYPTO_AES_ARM64_CE_BLK: "y", CRYPTO_AES_ARM64_CE_CCM: "y", CRYPTO_GHASH_ARM64_CE: "y",
    CRYPTO_SHA1_ARM64_CE: "y", CRYPTO_SHA2_ARM64_CE: "y", CRYPTO_SHA512_ARM64_CE: "y", CRYPTO_SHA3_ARM64: "y",
    CRC_T10DIF: "y", CRYPTO_CRCT10DIF_ARM64_CE: "y", CRYPTO_CHACHA20_NEON: "y", CRYPTO_POLY1305_NEON: "y", CRC32: "y", CRYPTO_CRC32C: "y",
  },
  // storage is NVMe only: PCIe, the NVMe driver, GPT (what zpool writes on a whole disk), ext4 root
  nvme: {
    PCI: "y", PCI_HOST_GENERIC: "y", BLOCK: "y", BLK_DEV: "y", BLK_DEV_NVME: "y", PARTITION_ADVANCED: "y", EFI_PARTITION: "y",
    EXT4_FS: "y",
  },
  // the devices a VM has (QEMU virt, Apple's Virtualization.framework): virtio over PCI for
  // block, network, console, entropy, balloon and vsock, and the PL031 clock
  vm: {
    VIRTIO_MENU: "y", VIRTIO_PCI: "y", VIRTIO_BLK: "y", NETDEVICES: "y", NET_CORE: "y", VIRTIO_NET: "y", VIRTIO_CONSOLE: "y",
    HW_RANDOM: "y", HW_RANDOM_VIRTIO: "y", VIRTIO_BALLOON: "y", VSOCKETS: "y", VIRTIO_VSOCKETS: "y", RTC_CLASS: "y", RTC_DRV_PL031: "y",
  },
  // IPv4/IPv6 and the kernel's own DHCP client (ip=dhcp): no DHCP daemon in the image
  network: { NET: "y", INET: "y", IPV6: "y", UNIX: "y", IP_PNP: "y", IP_PNP_DHCP: "y" },
  // transparent huge pages (32 MiB with 16K pages) on request, and hugetlbfs
  hugepages: { TRANSPARENT_HUGEPAGE: "y", TRANSPARENT_HUGEPAGE_MADVISE: "y", HUGETLBFS: "y", HUGETLB_PAGE: "y" },
  // what the ZFS modules need: loadable modules, the kernel's zlib (selected by deflate), and
  // POSIX ACLs (acltype=posixacl; without them ZFS says "Posix ACLs disabled by kernel")
  zfs: { MODULES: "y", MODULE_UNLOAD: "y", CRYPTO_DEFLATE: "y", ZLIB_DEFLATE: "y", ZLIB_INFLATE: "y", FS_POSIX_ACL: "y", EXT4_FS_POSIX_ACL: "y" },
  // a serial/ssh system: no virtual terminals, input devices or legacy ptys
  trim: { VT: "n", INPUT: "n", LEGACY_PTYS: "n" },
  // built for speed, not size (tinyconfig's defaults are -Os, SLOB and small core tables: 4096 pids, 16 futex buckets)
  performance: { CC_OPTIMIZE_FOR_PERFORMANCE: "y", SLUB: "y", BASE_FULL: "y" },
  // the speculation mitigations a general kernel has; each checks the CPU at boot and costs
  // nothing where it is not affected
  mitigations: { UNMAP_KERNEL_AT_EL0: "y", MITIGATE_SPECTRE_BRANCH_HISTORY: "y", RODATA_FULL_DEFAULT_ENABLED: "y" },
  // no debug code: no debug info, tracers, probes, symbol tables, verbose BUG()s or debug checks
  // (BUG() itself stays: a kernel that stops on a detected bug rather than running on corrupted)
  nodebug: {
    BUG: "y", DEBUG_INFO_NONE: "y", DEBUG_BUGVERBOSE: "n", SLUB_DEBUG: "n", FTRACE: "n", KPROBES: "n", KALLSYMS: "n", SCHED_DEBUG: "n",
    DEBUG_MISC: "n", DEBUG_FS: "n", DYNAMIC_DEBUG: "n", PROFILING: "n", MAGIC_SYSRQ: "n",
  },
};

export interface KernelOptions {
  fragments?: Record<string, Fragment>;
}

const BUILD_HOST = "m-series";

/** The kernel, its modules' tree (lib/modules) and, as output `headers`, what ZFS builds against. */
export function kernel(o: KernelOptions = {}): Drv {
  return linux({ name: "linux-m-series", buildHost: BUILD_HOST, fragments: o.fragments ?? fragments, strictOff: true, modules: true });
}

/** The checked .config alone: a minute, where the kernel takes many. */
export function config(o: KernelOptions = {}): Drv {
  return kernelConfig("linux-m-series.config", { buildHost: BUILD_HOST, fragments: o.fragments ?? fragments, strictOff: true });
}
