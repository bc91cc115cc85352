/* sysinfo.c - pi4-llm-os: report the memory an on-device model may use.
 *
 * Prints exactly one line (stable, machine-parsable):
 *   PI4-LLM-OS SYSINFO kernel=<uname -r> mem_total_kb=<MemTotal>
 *     mem_available_kb=<MemAvailable> os_overhead_kb=<MemTotal-MemAvailable>
 *     model_budget_kb=<budget>
 * (all on one line). model_budget_kb = MemAvailable minus a safety reserve of
 * max(MemTotal/16, 16384 kB) that stays free for the kernel and the OS
 * (page cache, the runner's own stack/heap), clamped at 0.
 * Exit status: 0 ok, 1 if /proc/meminfo could not be read/parsed.
 */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

static int meminfo_kb(const char *key, long long *val)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	size_t klen = strlen(key);
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			found = sscanf(line + klen + 1, "%lld", val) == 1;
			break;
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

int main(void)
{
	struct utsname u;
	long long total, avail, reserve, budget;

	if (uname(&u) != 0)
		strcpy(u.release, "unknown");
	if (meminfo_kb("MemTotal", &total) || meminfo_kb("MemAvailable", &avail)) {
		fprintf(stderr, "sysinfo: cannot read MemTotal/MemAvailable from /proc/meminfo\n");
		return 1;
	}
	reserve = total / 16;
	if (reserve < 16384)
		reserve = 16384;
	budget = avail - reserve;
	if (budget < 0)
		budget = 0;
	printf("PI4-LLM-OS SYSINFO kernel=%s mem_total_kb=%lld mem_available_kb=%lld "
	       "os_overhead_kb=%lld model_budget_kb=%lld\n",
	       u.release, total, avail, total - avail, budget);
	return 0;
}
