// BlazeNeuro's kernel: std's Linux 6.1 for x86_64, built with BlazeNeuro's own cross toolchain
// (stage 2), from named fragments over tinyconfig, the mechanism pi4-llm-os and m-series use.
//
// What the seed's USB image needs: a 64-bit kernel booting from GRUB by BIOS or as an EFI stub,
// its console on the first serial port (and the VGA console), the root filesystem on a USB stick
// (xHCI or EHCI, USB mass storage, SCSI disks, GPT/MBR), ext4 for the root and vfat for the EFI
// partition; and for the boot tests, QEMU's virtio devices.
import type { Drv } from "kiln";
import { kernel as linux, kernelConfig as linuxConfig, x86_64, type Fragment } from "../std/linux.js";
import { crossToolchainOf } from "./toolchain.js";

export type { Fragment };

export const fragments: Record<string, Fragment> = {
  // a 64-bit PC: SMP, the ELF and #! loaders, the pseudo filesystems an init mounts
  base: {
    "64BIT": "y", SMP: "y", PRINTK: "y", TTY: "y", BINFMT_ELF: "y", BINFMT_SCRIPT: "y", PROC_FS: "y", SYSFS: "y",
    DEVTMPFS: "y", DEVTMPFS_MOUNT: "y", BLK_DEV_INITRD: "y", RD_GZIP: "y", PCI: "y", PCI_MSI: "y", ACPI: "y",
    // the firmware's tables (i8042 and reboot quirks), write-combining for the EFI framebuffer, SysRq for a stuck console
    DMI: "y", MTRR: "y", X86_PAT: "y", MAGIC_SYSRQ: "y",
  },
  // consoles: 16550 serial (ttyS0, where the boot tests read) and VGA text
  console: { SERIAL_8250: "y", SERIAL_8250_CONSOLE: "y", VT: "y", VT_CONSOLE: "y", VGA_CONSOLE: "y" },
  // UEFI: the kernel as an EFI application (GRUB's x86_64-efi chain-loads it) and the EFI runtime
  efi: { EFI: "y", EFI_STUB: "y", EFI_PARTITION: "y", FB: "y", FB_EFI: "y", FRAMEBUFFER_CONSOLE: "y" },
  // the root on a USB stick: host controllers, mass storage, SCSI disks, partition tables
  usb: {
    BLOCK: "y", USB_SUPPORT: "y", USB: "y", USB_PCI: "y", USB_XHCI_HCD: "y", USB_EHCI_HCD: "y", USB_STORAGE: "y", USB_UAS: "y",
    // the companion controllers a low- or full-speed keyboard sits behind on older and AMD machines
    USB_OHCI_HCD: "y", USB_OHCI_HCD_PCI: "y", USB_UHCI_HCD: "y",
    SCSI: "y", BLK_DEV_SD: "y", PARTITION_ADVANCED: "y", MSDOS_PARTITION: "y",
  },
  // the filesystems: ext4 (root, read-write: the persistence), vfat (the EFI system partition)
  filesystems: {
    EXT4_FS: "y", VFAT_FS: "y", FAT_DEFAULT_UTF8: "y", NLS: "y", NLS_CODEPAGE_437: "y", NLS_ISO8859_1: "y", NLS_UTF8: "y",
    TMPFS: "y", SHMEM: "y",
  },
  // a keyboard on a PC (i8042) or on USB
  input: {
    INPUT: "y", INPUT_KEYBOARD: "y", KEYBOARD_ATKBD: "y", SERIO: "y", SERIO_I8042: "y", HID: "y", HID_GENERIC: "y", USB_HID: "y",
  },
  // QEMU's devices for the boot tests
  virtio: { VIRTIO_MENU: "y", VIRTIO_PCI: "y", VIRTIO_BLK: "y", VIRTIO_CONSOLE: "y", HW_RANDOM: "y", HW_RANDOM_VIRTIO: "y" },
  // what a glibc userspace relies on
  userspace: {
    MULTIUSER: "y", FUTEX: "y", POSIX_TIMERS: "y", FILE_LOCKING: "y", EPOLL: "y", SIGNALFD: "y", TIMERFD: "y", EVENTFD: "y",
    UNIX98_PTYS: "y", UNIX: "y", NET: "y", INET: "y",
  },
};

const BUILD_HOST = "blazeneuro";

/** The merged and checked .config alone (a minute): what the fast tests realize. */
export function kernelConfig(o: { fragments?: Record<string, Fragment> } = {}): Drv {
  return linuxConfig("linux-blazeneuro.config", { arch: x86_64(crossToolchainOf), buildHost: BUILD_HOST, fragments: o.fragments ?? fragments });
}

/** $out/bzImage, config, kernel.release. */
export function kernel(o: { fragments?: Record<string, Fragment> } = {}): Drv {
  return linux({ name: "linux-blazeneuro", arch: x86_64(crossToolchainOf), buildHost: BUILD_HOST, fragments: o.fragments ?? fragments });
}
