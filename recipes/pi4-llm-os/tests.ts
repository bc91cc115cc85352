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
    seed: ["qemu-system-arm"],
    env: { MODE: mode, MEM_MIB: String(o.memMiB ?? 512), TIMEOUT: String(o.timeoutSeconds ?? 300), MARKER },
    script: sh`
      ${media}
      # each console line stamped with seconds since QEMU started. No network device: the image
      # needs none, and QEMU's default NIC wants a boot ROM (efi-virtio.rom, Debian's ipxe-qemu)
      # that the seed's qemu-system-arm, without recommended packages, does not have. QEMU's exit
      # code is kept even under errexit, so a QEMU that cannot start shows its own message below.
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

export interface LlmTestOptions {
  name: string;
  kernel: Drv;
  initramfs: Drv;
  /** the disk whose third partition (label pi4models) holds the model */
  disk: Drv;
  prompt: string;
  /** tokens to generate; the test passes only if exactly this many come out */
  tokens: number;
  /** sha256 of llama-simple's stdout (prompt and generated text); unset: not checked */
  expectTextSha256?: string;
  memMiB?: number;
  /**
   * QEMU's CPUs (llm-run runs one thread per CPU). One by default: emulated CPUs are host threads,
   * and on a busy 2-core host four of them spend their time waiting for each other at the thread
   * pool's barriers. The Pi 4 itself has four cores, and runs four threads.
   */
  cpus?: number;
  timeoutSeconds?: number;
}

/**
 * The LLM boot test: boots as the board does (kernel + initramfs, the SD card's image attached)
 * with kiln.test=llm; init loads the model from its partition into the tmpfs /mnt/models and runs
 * llm-run with the prompt (greedy sampling), then powers off. Passes when the boot marker
 * appears, exactly `tokens` tokens come out, the text has its pinned digest and QEMU exits by
 * itself. report.json records tokens/s, the runtime's peak RSS, the system's peak memory in use
 * and the OS overhead with the model loaded (MemTotal - MemAvailable, minus the model's own pages
 * in tmpfs), against the seed's budget of 30 MB.
 */
export function llmTest(o: LlmTestOptions): Drv {
  // it travels on the kernel command line, in double quotes, and into JSON
  if (/["\\\n]/.test(o.prompt)) throw new Error(`llmTest ${o.name}: the prompt may not contain double quotes, backslashes or newlines`);
  return build({
    name: o.name,
    seed: ["qemu-system-arm"],
    env: {
      MEM_MIB: String(o.memMiB ?? 512), CPUS: String(o.cpus ?? 1), TIMEOUT: String(o.timeoutSeconds ?? 900), MARKER,
      PROMPT: o.prompt, TOKENS: String(o.tokens), EXPECT_SHA256: o.expectTextSha256 ?? "",
    },
    script: sh`
      cp --sparse=always ${o.disk} disk.img && chmod u+w disk.img
      # NAME=value parameters reach init as environment variables; quotes keep the prompt one value
      { rc=0; timeout "$TIMEOUT" qemu-system-aarch64 -M virt -cpu cortex-a72 -smp "$CPUS" -m "$MEM_MIB" -nographic -no-reboot -nic none \
          -kernel ${o.kernel}/Image -initrd ${o.initramfs} \
          -drive file=disk.img,format=raw,if=none,id=hd0 -device virtio-blk-device,drive=hd0 \
          -append "console=ttyAMA0 kiln.test=llm LLM_TOKENS=$TOKENS LLM_PROMPT=\"$PROMPT\"" </dev/null 2>&1 || rc=$?; echo $rc > qemu.rc; } \
        | perl -MTime::HiRes=time -ne 'BEGIN{$|=1;$t0=time} s/\r//g; printf "[%8.3f] %s", time-$t0, $_' > console.log
      rc=$(cat qemu.rc)
      line() { grep -m"$2" "$1" console.log | tail -n 1 | sed 's/^\[[^]]*\] //'; }
      field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
      marker=$(grep -m1 "$MARKER" console.log | sed 's/^\[ *\([0-9.]*\)\].*/\1/' || true)
      boot=$(line 'PI4-LLM-OS SYSINFO' 1)
      loaded=$(line 'PI4-LLM-OS SYSINFO' 2)
      model=$(line 'PI4-LLM-OS MODEL' 1)
      llm=$(line 'PI4-LLM-OS LLM exit=' 1)
      poweroff=no; grep -q 'reboot: Power down' console.log && poweroff=yes
      sed -n '/PI4-LLM-OS LLM TEXT BEGIN/,/PI4-LLM-OS LLM TEXT END/p' console.log | sed '1d;$d' | sed 's/^\[[^]]*\] //' > text.txt
      tokens=$(field "$llm" tokens); digest=$(field "$llm" text_sha256); model_kb=$(field "$model" size_kb)
      # with the model in tmpfs, MemTotal - MemAvailable counts its pages: take them out
      overhead=$(field "$loaded" os_overhead_kb)
      [ "$(field "$model" in)" = tmpfs ] && overhead=$(( overhead - model_kb ))
      ok=true
      [ -n "$marker" ] && [ -n "$llm" ] && [ "$(field "$llm" exit)" = 0 ] && [ "$rc" = 0 ] && [ $poweroff = yes ] || ok=false
      [ "$tokens" = "$TOKENS" ] || ok=false
      [ -z "$EXPECT_SHA256" ] || [ "$digest" = "$EXPECT_SHA256" ] || ok=false
      mkdir -p $out
      cp console.log $out/console.log
      cp text.txt $out/text.txt
      printf '{"mode":"llm","passed":%s,"qemuExit":%s,"poweredOff":%s,"markerSeconds":%s,"cpus":%s,"threads":%s,"memTotalKb":%s,"osOverheadKb":%s,"osOverheadWithModelKb":%s,"model":"%s","modelKb":%s,"modelIn":"%s","prompt":"%s","tokens":%s,"expectTokens":%s,"seconds":%s,"tokensPerSecond":%s,"peakRssKb":%s,"peakUsedKb":%s,"textSha256":"%s","expectTextSha256":"%s"}\n' \
        $ok "$rc" "$([ $poweroff = yes ] && echo true || echo false)" "\${marker:-null}" "$CPUS" "$(field "$llm" threads)" "$(field "$boot" mem_total_kb)" \
        "$(field "$boot" os_overhead_kb)" "\${overhead:-null}" "$(field "$model" name)" "\${model_kb:-null}" "$(field "$model" in)" "$PROMPT" \
        "\${tokens:-null}" "$TOKENS" "$(field "$llm" seconds)" "$(field "$llm" tokens_per_s)" "$(field "$llm" peak_rss_kb)" "$(field "$llm" peak_used_kb)" \
        "$digest" "$EXPECT_SHA256" > $out/report.json
      cat $out/report.json
      if [ $ok != true ]; then
        echo "LLM test FAILED: marker=\${marker:-none} qemu exit $rc (124 = timeout) powered off: $poweroff; tokens \${tokens:-none} of $TOKENS; text sha256 \${digest:-none}, expected \${EXPECT_SHA256:-any}"
        tail -n 40 console.log
        exit 1
      fi
      echo "LLM test passed: $tokens tokens, $(field "$llm" tokens_per_s) tokens/s"
    `,
  });
}
