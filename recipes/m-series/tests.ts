// The boot test, a derivation: qemu-system-aarch64 -M virt -cpu max boots the kernel with the
// root on NVMe and a second, empty NVMe disk for ZFS; a key made by the test (never in the image)
// reaches the VM on the kernel command line; once sshd is up the seed's ssh client logs in through
// QEMU's user-mode network (a port of 127.0.0.1 forwarded to the VM's 22), runs the session
// (ZFS on the second disk) and powers the VM off.
//
// The build has no network, and needs none: QEMU's user network runs inside QEMU, and the ssh
// client talks to it on the sandbox's own loopback. The sandbox's network namespace is private,
// so the forwarded port is free whatever runs on the host.
import { sh, source, type Drv } from "kiln";
import { build } from "../std/index.js";

export interface BootTestOptions {
  name: string;
  kernel: Drv;
  /** the root disk image (ext4 on the whole NVMe namespace) */
  disk: Drv;
  memMiB?: number;
  cpus?: number;
  timeoutSeconds?: number;
}

export function bootTest(o: BootTestOptions): Drv {
  return build({
    name: o.name,
    seed: ["qemu-system-arm", "ssh"],
    env: { MEM_MIB: String(o.memMiB ?? 1024), CPUS: String(o.cpus ?? 2), TIMEOUT: String(o.timeoutSeconds ?? 900), PORT: "2222" },
    script: sh`
      ssh-keygen -q -t ed25519 -N "" -C m-series-test -f id
      key=$(cut -d' ' -f1,2 id.pub | tr ' ' ':')
      cp --sparse=always ${o.disk} root.img && chmod u+w root.img
      truncate -s 512M tank.img
      # console lines stamped with seconds since QEMU started; pointer authentication with QEMU's
      # own cipher (pauth-impdef), as the architected one is slow to emulate
      { rc=0; timeout "$TIMEOUT" qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -smp "$CPUS" -m "$MEM_MIB" -nographic -no-reboot \
          -kernel ${o.kernel}/Image \
          -append "console=ttyAMA0 root=/dev/nvme0n1 rootfstype=ext4 rootwait ip=dhcp kiln.ssh_key=$key" \
          -drive file=root.img,format=raw,if=none,id=root -device nvme,serial=m-series-root,drive=root \
          -drive file=tank.img,format=raw,if=none,id=tank -device nvme,serial=m-series-tank,drive=tank \
          -netdev user,id=net0,hostfwd=tcp:127.0.0.1:$PORT-:22 -device virtio-net-pci,netdev=net0,romfile= \
          </dev/null 2>&1 || rc=$?; echo $rc > qemu.rc; } \
        | perl -MTime::HiRes=time -ne 'BEGIN{$|=1;$t0=time} s/\r//g; printf "[%8.3f] %s", time-$t0, $_' > console.log &
      qemu=$!
      stamp() { grep -m1 "$1" console.log | sed 's/^\[ *\([0-9.]*\)\].*/\1/'; }
      while ! grep -q "M-SERIES SSHD READY" console.log; do
        if ! kill -0 $qemu 2>/dev/null; then echo "boot test FAILED: QEMU ended before sshd was up"; tail -n 40 console.log; exit 1; fi
        sleep 1
      done
      ready=$(stamp "M-SERIES SSHD READY")
      ssh_() { ssh -F /dev/null -i id -p "$PORT" -o BatchMode=yes -o ConnectTimeout=60 -o HostKeyAlgorithms=ssh-ed25519 \
        -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/build/known_hosts root@127.0.0.1 "$@"; }
      # QEMU accepts on the forwarded port before the VM's sshd answers: retry the first login a little
      tries=0; until ssh_ true 2>>ssh.log; do tries=$((tries + 1)); [ $tries -lt 10 ] || break; sleep 3; done
      t0=$(date +%s.%N)
      src=0; ssh_ sh -s < ${source(import.meta.url, "files/ssh-session.sh")} >> ssh.log 2>&1 || src=$?
      t1=$(date +%s.%N)
      ssh_ poweroff >> ssh.log 2>&1 || true
      wait $qemu || true
      rc=$(cat qemu.rc)
      # the host key sshd showed over SSH is the one the VM made at boot and printed on its console
      seen=$(ssh-keygen -lf known_hosts | cut -d' ' -f2)
      booted=$(grep -m1 "M-SERIES HOSTKEY" console.log | sed 's/^\[[^]]*\] //' | cut -d' ' -f4)
      mkdir -p $out
      cp console.log ssh.log $out/
      info=$(grep -m1 "M-SERIES INFO" console.log | sed 's/^\[[^]]*\] //')
      field() { echo "$info" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
      poweroff=no; grep -q "reboot: Power down" console.log && poweroff=yes
      zfs=no; grep -q "^M-SERIES ZFS OK" ssh.log && zfs=yes
      sshok=no; grep -q "^M-SERIES SSH OK user=root host=m-series" ssh.log && [ $src = 0 ] && sshok=yes
      hostkey=no; [ -n "$seen" ] && [ "$seen" = "$booted" ] && hostkey=yes
      pagesize=$(field page_size)
      passed=false
      [ "$pagesize" = 16384 ] && [ $sshok = yes ] && [ $zfs = yes ] && [ $hostkey = yes ] && [ "$rc" = 0 ] && [ $poweroff = yes ] && passed=true
      printf '{"passed":%s,"qemuExit":%s,"poweredOff":%s,"sshReadySeconds":%s,"sshSessionSeconds":%s,"pageSize":%s,"kernel":"%s","hwcaps":"%s","memTotalKb":%s,"ssh":%s,"zfs":%s,"hostKeyFromBoot":%s}\n' \
        $passed "$rc" "$([ $poweroff = yes ] && echo true || echo false)" "$ready" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" \
        "\${pagesize:-null}" "$(field kernel)" "$(field hwcaps)" "$(field mem_total_kb)" \
        "$([ $sshok = yes ] && echo true || echo false)" "$([ $zfs = yes ] && echo true || echo false)" "$([ $hostkey = yes ] && echo true || echo false)" > $out/report.json
      cat $out/report.json
      if [ $passed != true ]; then
        echo "boot test FAILED (page size $pagesize, ssh $sshok (exit $src), zfs $zfs, host key $hostkey, qemu exit $rc, powered off $poweroff)"
        echo "--- ssh.log"; cat ssh.log; echo "--- console.log (tail)"; tail -n 40 console.log; exit 1
      fi
      echo "boot test passed: sshd up after \${ready}s"
    `,
  });
}
