// BlazeNeuro's boot tests, as derivations: qemu-system-x86_64 (TCG) boots a writable copy of the
// USB image from an emulated USB stick (xHCI), by SeaBIOS or by OVMF, with GRUB's environment
// block set for one self-test boot (blazeneuro_test=1: what grub-editenv would write). init runs
// /etc/blazeneuro/selftest and powers off; the test passes on its last line, BLAZENEURO-TEST ok.
//
// The persistence test boots the same copy twice: the second boot must find the first one's
// counter on the root filesystem, and e2fsck -n of the root afterwards must find it clean (init
// remounts / read-only before powering off).
import { sh, type Drv } from "kiln";
import { build } from "../std/index.js";
import { grubenvScript, ROOT_OFFSET_MIB } from "./image.js";

export const MARKER = "BLAZENEURO-TEST ok";

/** how much larger than the image the emulated stick is */
const GROW_MIB = 256;

export type Firmware = "bios" | "uefi";

export interface BootTestOptions {
  name: string;
  /** a usbImage: $image/blazeneuro-usb.img */
  image: Drv;
  firmware: Firmware;
  /** boots of the same copy (2: the persistence test) */
  boots?: number;
  memMiB?: number;
  timeoutSeconds?: number;
}

/** The shell function `boot N`: one QEMU run from disk.img, its console in console-N.log with seconds since start (QEMU's arguments go through "$@", so N is kept first). */
const bootFunction = (firmware: Firmware) => sh`
boot() {
  n=$1
  ${firmware === "uefi"
    ? `# OVMF's variable store is written by the firmware: a copy per boot
  cp /usr/share/OVMF/OVMF_VARS_4M.fd vars.fd && chmod u+w vars.fd
  set -- -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd -drive if=pflash,format=raw,unit=1,file=vars.fd`
    : `set -- `}
  { rc=0; timeout "$TIMEOUT" qemu-system-x86_64 -M q35 -m "$MEM_MIB" -smp 1 -display none -serial stdio -monitor none -no-reboot -nic none \
      "$@" -device qemu-xhci,id=xhci -drive if=none,id=stick,format=raw,file=disk.img -device usb-storage,bus=xhci.0,drive=stick,bootindex=0 \
      </dev/null 2>&1 || rc=$?; echo $rc > qemu.rc; } \
    | perl -MTime::HiRes=time -ne 'BEGIN{$|=1;$t0=time} s/\r//g; s/\e\[[0-9;?]*[A-Za-z]//g; printf "[%8.3f] %s", time-$t0, $_' > console-$n.log
  rc=$(cat qemu.rc)
  marker=$(grep -m1 -a "$MARKER" console-$n.log | sed 's/^\[ *\([0-9.]*\)\].*/\1/' || true)
  if [ -z "$marker" ]; then echo "boot $n FAILED: no '$MARKER' on the console (qemu exit $rc; 124 = timeout)"; tail -n 40 console-$n.log; exit 1; fi
  if [ "$rc" != 0 ]; then echo "boot $n FAILED: QEMU did not power off by itself (exit $rc)"; tail -n 20 console-$n.log; exit 1; fi
  # a clean shutdown: / remounted read-only, then powered off (with -no-reboot a reset would also end QEMU with 0)
  grep -q -a 'BlazeNeuro init: / remounted read-only' console-$n.log || { echo "boot $n FAILED: init did not remount / read-only"; tail -n 20 console-$n.log; exit 1; }
  grep -q -a 'reboot: Power down' console-$n.log || { echo "boot $n FAILED: the system did not power off"; tail -n 20 console-$n.log; exit 1; }
  echo "boot $n: '$MARKER' after \${marker}s"
  echo "$marker" > marker-$n
}
`;

/**
 * Boots the image `boots` times; $out holds each console log, report.json (firmware seen by the
 * system, boots counted on its root, seconds to the marker, e2fsck's verdict) and summary.txt.
 */
export function bootTest(o: BootTestOptions): Drv {
  const boots = o.boots ?? 1;
  return build({
    name: o.name,
    seed: ["qemu-system-x86", "images"],
    env: { MEM_MIB: String(o.memMiB ?? 1024), TIMEOUT: String(o.timeoutSeconds ?? 900), MARKER, FIRMWARE: o.firmware, BOOTS: String(boots) },
    script: sh`
      mkdir -p $out
      cp --sparse=always ${o.image}/blazeneuro-usb.img disk.img
      chmod u+w disk.img
      # a stick larger than the image: the first boot grows the root to its end
      truncate -s +${String(GROW_MIB)}M disk.img
      # one self-test boot per run: GRUB's environment block on the ESP (partition 1, at 1 MiB)
      ${grubenvScript("blazeneuro_test=1\\n")} > grubenv
      MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null mcopy -o -i disk.img@@1M grubenv ::/boot/grub/grubenv
      ${bootFunction(o.firmware)}
      i=1
      while [ $i -le "$BOOTS" ]; do
        boot $i
        seen=$(grep -a -m1 'BLAZENEURO-FIRMWARE' console-$i.log | sed 's/.*BLAZENEURO-FIRMWARE //')
        test "$seen" = "$FIRMWARE" || { echo "boot $i: the system says it was booted by '$seen', not $FIRMWARE"; exit 1; }
        count=$(grep -a -m1 'BLAZENEURO-BOOTS' console-$i.log | sed 's/.*BLAZENEURO-BOOTS //')
        test "$count" = "$i" || { echo "boot $i: the root filesystem counted boot '$count' (persistence lost?)"; exit 1; }
        i=$((i + 1))
      done
      # the root afterwards: clean, as a shutdown that remounted it read-only leaves it: no journal
      # left to replay (e2fsck -n would skip it and still say clean) and no error found
      dd if=disk.img of=root.ext4 bs=1M skip=${ROOT_OFFSET_MIB} status=none
      if dumpe2fs -h root.ext4 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'; then fsck="not clean (the journal needs recovery)"
      elif e2fsck -fn root.ext4 > e2fsck.log 2>&1; then fsck=clean
      else fsck="not clean (e2fsck exit $?)"; fi
      cat e2fsck.log
      cp console-*.log e2fsck.log $out/
      printf '{"firmware":"%s","boots":%s,"markerSeconds":[%s],"e2fsck":"%s"}\n' "$FIRMWARE" "$BOOTS" \
        "$(cat marker-* | paste -sd, -)" "$fsck" > $out/report.json
      cat $out/report.json
      echo "$FIRMWARE, $BOOTS boot(s) of one copy: self-test passed each time (boots counted on the root: $BOOTS), marker after $(cat marker-* | sed 's/$/ s/' | paste -sd, - | sed 's/,/, /g') under QEMU TCG; root afterwards: $fsck" > $out/summary.txt
      test "$fsck" = clean || { echo "the root filesystem is not clean after the last boot"; exit 1; }
    `,
  });
}
