/* m-series-info.c: one console line saying what the running system really has: the page size
 * user space sees (sysconf), the kernel release, memory, and the CPU features the kernel enabled
 * for user space (AT_HWCAP/AT_HWCAP2: only those the kernel supports and turned on appear). */
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <asm/hwcap.h>
#include <unistd.h>

struct bit { unsigned long mask; const char *name; };

/* the kernel's names for the bits (asm/hwcap.h), as /proc/cpuinfo prints them */
#define B(x, n) {x, n}
static const struct bit hwcap[] = {
  B(HWCAP_ASIMD, "asimd"), B(HWCAP_AES, "aes"), B(HWCAP_PMULL, "pmull"), B(HWCAP_SHA1, "sha1"), B(HWCAP_SHA2, "sha2"),
  B(HWCAP_CRC32, "crc32"), B(HWCAP_ATOMICS, "atomics"), B(HWCAP_SHA3, "sha3"), B(HWCAP_SHA512, "sha512"), B(HWCAP_SVE, "sve"),
  B(HWCAP_DIT, "dit"), B(HWCAP_USCAT, "uscat"), B(HWCAP_ILRCPC, "ilrcpc"), B(HWCAP_FLAGM, "flagm"), B(HWCAP_SSBS, "ssbs"),
  B(HWCAP_SB, "sb"), B(HWCAP_PACA, "paca"), B(HWCAP_PACG, "pacg"),
};
static const struct bit hwcap2[] = {
  B(HWCAP2_FLAGM2, "flagm2"), B(HWCAP2_FRINT, "frint"), B(HWCAP2_RNG, "rng"), B(HWCAP2_BTI, "bti"), B(HWCAP2_MTE, "mte"),
};

static void names(const struct bit *b, size_t n, unsigned long v, int *first) {
  for (size_t i = 0; i < n; i++)
    if (v & b[i].mask) { printf("%s%s", *first ? "" : ",", b[i].name); *first = 0; }
}

int main(void) {
  struct utsname u;
  struct sysinfo si;
  if (uname(&u) != 0 || sysinfo(&si) != 0) { perror("m-series-info"); return 1; }
  int first = 1;
  printf("M-SERIES INFO page_size=%ld kernel=%s machine=%s mem_total_kb=%lu hwcaps=",
         sysconf(_SC_PAGESIZE), u.release, u.machine, (unsigned long)(si.totalram / 1024 * si.mem_unit));
  names(hwcap, sizeof hwcap / sizeof *hwcap, getauxval(AT_HWCAP), &first);
  names(hwcap2, sizeof hwcap2 / sizeof *hwcap2, getauxval(AT_HWCAP2), &first);
  printf("\n");
  return 0;
}
