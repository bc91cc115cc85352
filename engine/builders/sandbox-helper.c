// kiln-sandbox OPTIONS PROGRAM [ARG...]: what `unshare --user --map-root-user --mount` and
// `mount -t overlay kiln -o OPTIONS m` do for a build (engine/builders/sandbox.ts, StoreView), in
// one process, then PROGRAM (bubblewrap) in its place. Run in the build's scratch directory, with
// an empty environment. Three programs fewer to start for every build: about 2.5 ms of the
// overlay's cost. Without a C compiler at `npm run build`, kiln takes the way through unshare(1),
// a shell and mount(8). A failure before PROGRAM ends it with 125 and a line "kiln-sandbox: ...".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>
static int put(const char *file, const char *text) {
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n == (ssize_t)strlen(text) ? 0 : -1;
}
int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: kiln-sandbox OPTIONS PROGRAM [ARG...]\n"); return 2; }
  uid_t uid = getuid(); gid_t gid = getgid();
  char map[64];
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) { fprintf(stderr, "kiln-sandbox: unshare: %s\n", strerror(errno)); return 125; }
  snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
  if (put("/proc/self/setgroups", "deny") != 0 && errno != ENOENT) { fprintf(stderr, "kiln-sandbox: setgroups: %s\n", strerror(errno)); return 125; }
  if (put("/proc/self/uid_map", map) != 0) { fprintf(stderr, "kiln-sandbox: uid_map: %s\n", strerror(errno)); return 125; }
  snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
  if (put("/proc/self/gid_map", map) != 0) { fprintf(stderr, "kiln-sandbox: gid_map: %s\n", strerror(errno)); return 125; }
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) { fprintf(stderr, "kiln-sandbox: private mounts: %s\n", strerror(errno)); return 125; }
  if (mount("kiln", "m", "overlay", 0, argv[1]) != 0) { fprintf(stderr, "kiln-sandbox: the build's overlay could not be mounted: %s\n", strerror(errno)); return 125; }
  // kiln gives the sandbox stdin, stdout, stderr and bubblewrap's options (3): nothing else of its own
#ifdef SYS_close_range
  syscall(SYS_close_range, 4U, ~0U, 0U);
#endif
  execv(argv[2], argv + 2);
  fprintf(stderr, "kiln-sandbox: exec %s: %s\n", argv[2], strerror(errno));
  return 125;
}
