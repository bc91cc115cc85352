// Boot tests as derivations: QEMU (TCG) boots the kernel with the initramfs, or from the disk
// image (root=/dev/vda2 on virtio-blk), in test mode (kiln.test=1 on the kernel command line:
// init powers off after its report). A test passes only if the boot marker and the sysinfo line
// appear and QEMU exits by itself; its output records the console log, the boot time and the RAM
// overhead the booted system really has (MemTotal - MemAvailable).
import { sh, type Drv } from "kiln";
import { build } from "../std/index.js";

export const MARKER = "PI4-LLM-OS BOOT OK";

export interface BootTestOptions {
  name: string;
  kernel: Drv;
  initramfs?: Drv;
  disk?: Drv;
  memMiB?: number;
  timeoutSeconds?: number;
}

export function bootTest(o: BootTestOptions): Drv {
  const mode = o.disk ? "disk" : "initramfs";
  const media = o.disk
    ? sh`cp --sparse=always ${o.disk} disk.img && chmod u+w disk.img
         set -- -drive file=disk.img,format=raw,if=none,id=hd0 -device virtio-blk-device,drive=hd0 -append "console=ttyAMA0 root=/dev/vda2 rootfstype=ext4 rootwait kiln.test=1"`
    : sh`set -- -initrd ${o.initramfs!} -append "console=ttyAMA0 kiln.test=1"`;
  return build({
    name: o.name,
    tools: ["qemu-system-aarch64", "timeout", "perl"],
    env: { MODE: mode, MEM_MIB: String(o.memMiB ?? 512), TIMEOUT: String(o.timeoutSeconds ?? 300), MARKER },
    script: sh`
      ${media}
      # each console line stamped with seconds since QEMU started. No network device: the image
      # needs none, and QEMU's default NIC wants a boot ROM (efi-virtio.rom, Debian's ipxe-qemu)
      # that a host installed without recommended packages does not have. QEMU's exit code is
      # kept even under errexit, so a QEMU that cannot start shows its own message below.
      { rc=0; timeout "$TIMEOUT" qemu-system-aarch64 -M virt -cpu cortex-a72 -m "$MEM_MIB" -nographic -no-reboot -nic none \
          -kernel ${o.kernel}/Image "$@" </dev/null 2>&1 || rc=$?; echo $rc > qemu.rc; } \
        | perl -MTime::HiRes=time -ne 'BEGIN{$|=1;$t0=time} s/\r//g; printf "[%8.3f] %s", time-$t0, $_' > console.log
      rc=$(cat qemu.rc)
      marker=$(grep -m1 "$MARKER" console.log | sed 's/^\[ *\([0-9.]*\)\].*/\1/' || true)
      sysline=$(grep -m1 'PI4-LLM-OS SYSINFO' console.log | sed 's/^\[[^]]*\] //' || true)
      field() { echo "$sysline" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
      poweroff=no; grep -q 'reboot: Power down' console.log && poweroff=yes
      mkdir -p $out
      cp console.log $out/console.log
      printf '{"mode":"%s","passed":%s,"qemuExit":%s,"poweredOff":%s,"markerSeconds":%s,"kernel":"%s","memTotalKb":%s,"memAvailableKb":%s,"osOverheadKb":%s,"modelBudgetKb":%s}\n' \
        "$MODE" "$([ -n "$marker" ] && [ -n "$sysline" ] && [ "$rc" = 0 ] && [ $poweroff = yes ] && echo true || echo false)" \
        "$rc" "$([ $poweroff = yes ] && echo true || echo false)" "\${marker:-null}" "$(field kernel)" \
        "$(field mem_total_kb)" "$(field mem_available_kb)" "$(field os_overhead_kb)" "$(field model_budget_kb)" > $out/report.json
      cat $out/report.json
      if [ -z "$marker" ]; then echo "boot test FAILED: no '$MARKER' on the console (qemu exit $rc)"; tail -n 30 console.log; exit 1; fi
      if [ -z "$sysline" ]; then echo "boot test FAILED: no sysinfo line"; tail -n 30 console.log; exit 1; fi
      if [ "$rc" != 0 ] || [ $poweroff != yes ]; then echo "boot test FAILED: QEMU did not power off by itself (exit $rc; 124 = timeout)"; tail -n 30 console.log; exit 1; fi
      echo "boot test passed: marker after \${marker}s"
    `,
  });
}
