// kiln-sandbox: how builds start (engine/builders/sandbox.ts, StoreView and SandboxServer).
//
// kiln-sandbox OPTIONS PROGRAM [ARG...]
//   what `unshare --user --map-root-user --mount` and `mount -t overlay kiln -o OPTIONS .` do for a
//   build, in one process, then PROGRAM (bubblewrap) in its place. Run in the build's scratch
//   directory, with an empty environment. A failure before PROGRAM ends it with 125 and a line
//   "kiln-sandbox: ...". Without a C compiler at `npm run build`, kiln takes the way through
//   unshare(1), a shell and mount(8).
//
// kiln-sandbox --serve
//   the same for many builds, started once by kiln: forking this small process costs a fraction
//   of forking kiln's own (fork copies the parent's page tables: ~1.7 ms a build from a Node
//   process of ~140 MB, 0.1 ms from this one). Requests on stdin, events on stdout, all integers
//   little-endian u32:
//     request  len type id payload     (len counts type, id and payload)
//       'B' build: cwd\0 options\0 argc argv[0]\0...argv[argc-1]\0 then bubblewrap's options
//           (its fd 3, `--args 3`); options empty: no namespace or overlay of its own (bind mounts)
//       'K' kill the build's process group
//       'X' kill every build
//       'R' remove a directory tree: path\0 (a finished build's scratch dir, off kiln's thread);
//           its 'D' says how it went (status 0: removed)
//     event    id type len data
//       'O' output (the build's stdout and stderr, one pipe, in the order written)
//       'D' done: the raw wait status (u32), then, if the sandbox could not be set up, why
//           ("kiln-sandbox: ..."; the build's own output can never fake it: it comes on a pipe
//           closed by the exec of bubblewrap)
//   Once its stdin closes, the server ends when its last build does; it ends at once, and its
//   builds with it (bubblewrap's --die-with-parent), when kiln dies.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int put(const char *file, const char *text) {
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

// The user and mount namespace, and the overlay mounted over the working directory (the build's
// scratch dir: paths through it then lead into the overlay; the process's own working directory
// stays the directory below); NULL, or why not.
static const char *enter(const char *options, char *why, size_t size) {
  uid_t uid = getuid(); gid_t gid = getgid();
  char map[64];
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) { snprintf(why, size, "kiln-sandbox: unshare: %s", strerror(errno)); return why; }
  snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
  if (put("/proc/self/setgroups", "deny") != 0 && errno != ENOENT) { snprintf(why, size, "kiln-sandbox: setgroups: %s", strerror(errno)); return why; }
  if (put("/proc/self/uid_map", map) != 0) { snprintf(why, size, "kiln-sandbox: uid_map: %s", strerror(errno)); return why; }
  snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
  if (put("/proc/self/gid_map", map) != 0) { snprintf(why, size, "kiln-sandbox: gid_map: %s", strerror(errno)); return why; }
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) { snprintf(why, size, "kiln-sandbox: private mounts: %s", strerror(errno)); return why; }
  if (mount("kiln", ".", "overlay", 0, options) != 0) { snprintf(why, size, "kiln-sandbox: the build's overlay could not be mounted: %s", strerror(errno)); return why; }
  return NULL;
}

static void close_from(unsigned fd) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, fd, ~0U, 0U) == 0) return;
#endif
  for (int i = (int)fd; i < 1024; i++) close(i);
}

static int helper(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: kiln-sandbox OPTIONS PROGRAM [ARG...] | kiln-sandbox --serve\n"); return 2; }
  char why[512];
  if (enter(argv[1], why, sizeof why)) { fprintf(stderr, "%s\n", why); return 125; }
  // kiln gives the sandbox stdin, stdout, stderr and bubblewrap's options (3): nothing else of its own
  close_from(4);
  execv(argv[2], argv + 2);
  fprintf(stderr, "kiln-sandbox: exec %s: %s\n", argv[2], strerror(errno));
  return 125;
}

// ---- the server ----

#define MAXB 4096
// a request at most: bubblewrap's options for a closure of thousands of paths are a few MiB
#define MAXREQ (256u << 20)
struct build {
  uint32_t id;
  pid_t pid;      // 0 once reaped
  int status;
  int out;        // the build's output pipe, -1 at its end
  int setup;      // the setup-failure pipe, -1 at its end
  int remover;    // a removal ('R'), not a build
  char why[512];
  size_t whylen;
};
static struct build builds[MAXB];
static int nbuilds;

static void put_u32(unsigned char *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; }
static uint32_t get_u32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void write_all(const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0) { if (errno == EINTR) continue; _exit(0); /* kiln is gone */ }
    p += w; n -= (size_t)w;
  }
}

static void event(uint32_t id, char type, const void *data, uint32_t len) {
  unsigned char h[9];
  put_u32(h, id); h[4] = (unsigned char)type; put_u32(h + 5, len);
  write_all(h, 9);
  if (len) write_all(data, len);
}

static void finish_if_done(int i) {
  struct build *b = &builds[i];
  if (b->pid != 0 || b->out >= 0 || b->setup >= 0) return;
  unsigned char d[4 + sizeof b->why];
  put_u32(d, (uint32_t)b->status);
  memcpy(d + 4, b->why, b->whylen);
  event(b->id, 'D', d, 4 + (uint32_t)b->whylen);
  builds[i] = builds[--nbuilds];
}

static void fail(uint32_t id, const char *what) {
  char why[512];
  int n = snprintf(why, sizeof why, "kiln-sandbox: %s: %s", what, strerror(errno));
  unsigned char d[4 + sizeof why];
  put_u32(d, 125 << 8);
  memcpy(d + 4, why, (size_t)n);
  event(id, 'D', d, 4 + (uint32_t)n);
}

// The NUL-terminated string at *p, before end; NULL when there is none.
static const char *next(const char **p, const char *end) {
  const char *s = *p;
  size_t n = strnlen(s, (size_t)(end - s));
  if (s + n >= end) return NULL;
  *p = s + n + 1;
  return s;
}

static void start(uint32_t id, const char *p, size_t n, sigset_t *old) {
  const char *end = p + n;
  const char *cwd = next(&p, end), *options = cwd ? next(&p, end) : NULL;
  errno = EINVAL;
  if (!options || end - p < 4 || nbuilds == MAXB) { fail(id, "bad request"); return; }
  uint32_t argc = get_u32((const unsigned char *)p); p += 4;
  if (argc == 0 || argc > 65536) { fail(id, "bad request"); return; }
  char **argv = calloc(argc + 1, sizeof *argv);
  if (!argv) { fail(id, "out of memory"); return; }
  for (uint32_t i = 0; i < argc; i++) {
    if (!(argv[i] = (char *)next(&p, end))) { free(argv); errno = EINVAL; fail(id, "bad request"); return; }
  }
  int args = memfd_create("kiln-bwrap-args", MFD_CLOEXEC);
  int out[2] = {-1, -1}, setup[2] = {-1, -1};
  if (args < 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(setup, O_CLOEXEC) != 0) {
    fail(id, "pipes");
    goto close_all;
  }
  for (const char *q = p; q < end;) {
    ssize_t w = write(args, q, (size_t)(end - q));
    if (w < 0) { fail(id, "bubblewrap's options"); goto close_all; }
    q += w;
  }
  lseek(args, 0, SEEK_SET);
  pid_t server = getpid();
  pid_t pid = fork();
  if (pid < 0) { fail(id, "fork"); goto close_all; }
  if (pid == 0) {
    char why[512];
    const char *err = why;
    int status = setup[1];
    // dies with the server until bubblewrap's --die-with-parent takes over
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != server) _exit(125);
    sigprocmask(SIG_SETMASK, old, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    // the setup pipe at 4 (closed by the exec), bubblewrap's options at 3, output at 1 and 2; each
    // moved above 4 first, where none of the others can be
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int s = fcntl(setup[1], F_DUPFD_CLOEXEC, 5), n = fcntl(null, F_DUPFD_CLOEXEC, 5), o = fcntl(out[1], F_DUPFD_CLOEXEC, 5), a = fcntl(args, F_DUPFD_CLOEXEC, 5);
    if (null < 0 || s < 0 || n < 0 || o < 0 || a < 0 || dup3(s, 4, O_CLOEXEC) < 0 || dup2(n, 0) < 0 || dup2(o, 1) < 0 || dup2(o, 2) < 0 || dup2(a, 3) < 0) {
      snprintf(why, sizeof why, "kiln-sandbox: descriptors: %s", strerror(errno));
    } else {
      status = 4;
      close_from(5);
      umask(022);
      if (chdir(cwd) != 0) snprintf(why, sizeof why, "kiln-sandbox: chdir %s: %s", cwd, strerror(errno));
      else if (!*options || !(err = enter(options, why, sizeof why))) {
        char *env[] = {NULL};
        execve(argv[0], argv, env);
        snprintf(why, sizeof why, "kiln-sandbox: exec %s: %s", argv[0], strerror(errno));
        err = why;
      }
    }
    ssize_t w = write(status, err, strlen(err));
    (void)w;
    _exit(125);
  }
  struct build *b = &builds[nbuilds++];
  b->id = id; b->pid = pid; b->status = 0; b->out = out[0]; b->setup = setup[0]; b->whylen = 0; b->remover = 0;
  out[0] = setup[0] = -1;
close_all:
  free(argv);
  if (args >= 0) close(args);
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0) close(out[i]);
    if (setup[i] >= 0) close(setup[i]);
  }
}

static int make_writable(const char *path, const struct stat *st, int type, struct FTW *f) {
  (void)f;
  if (type == FTW_D && (st->st_mode & 0700) != 0700) chmod(path, (st->st_mode & 07777) | 0700);
  return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *f) {
  (void)st; (void)f;
  return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

// Remove a tree in a child of the server: the server goes on forwarding builds' output meanwhile.
static void remove_tree(uint32_t id, const char *p, size_t n) {
  const char *end = p + n;
  const char *path = next(&p, end);
  errno = EINVAL;
  if (!path || !*path || nbuilds == MAXB) { fail(id, "bad request"); return; }
  pid_t pid = fork();
  if (pid < 0) { fail(id, "fork"); return; }
  if (pid == 0) {
    // nothing of the server's kept: it dies with the server
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0) _exit(1);
    close_from(3);
    // read-only directories (a failed build's outputs) first made writable, then depth first
    nftw(path, make_writable, 64, FTW_PHYS | FTW_MOUNT);
    _exit(nftw(path, remove_entry, 64, FTW_PHYS | FTW_MOUNT | FTW_DEPTH) == 0 || errno == ENOENT ? 0 : 1);
  }
  struct build *b = &builds[nbuilds++];
  b->id = id; b->pid = pid; b->status = 0; b->out = -1; b->setup = -1; b->whylen = 0; b->remover = 1;
}

// A build's process group; or the child alone, before its setsid() made the group (nothing of
// its own is started before then). Its pid cannot be reused before the server reaps it.
static void kill_build(pid_t pid) {
  if (kill(-pid, SIGKILL) != 0) kill(pid, SIGKILL);
}

static void kill_all(void) {
  for (int i = 0; i < nbuilds; i++) if (builds[i].pid > 0 && !builds[i].remover) kill_build(builds[i].pid);
}

static int serve(void) {
  // die with kiln, whatever kills it
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 0;
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) { perror("kiln-sandbox: signalfd"); return 1; }
  size_t cap = 1 << 16, have = 0;
  unsigned char *req = malloc(cap);
  if (!req) return 1;
  static struct pollfd fds[2 + 2 * MAXB];
  static int owner[2 + 2 * MAXB];
  static char buf[1 << 16];
  int input = 1;
  for (;;) {
    int n = 0;
    if (input) { fds[n].fd = 0; fds[n].events = POLLIN; owner[n++] = -1; }
    fds[n].fd = sfd; fds[n].events = POLLIN; owner[n++] = -2;
    for (int i = 0; i < nbuilds; i++) {
      if (builds[i].out >= 0) { fds[n].fd = builds[i].out; fds[n].events = POLLIN; owner[n++] = i; }
      if (builds[i].setup >= 0) { fds[n].fd = builds[i].setup; fds[n].events = POLLIN; owner[n++] = i; }
    }
    if (!input && nbuilds == 0) return 0;
    if (poll(fds, (nfds_t)n, -1) < 0) { if (errno == EINTR) continue; perror("kiln-sandbox: poll"); return 1; }
    // builds' pipes first, then exits, then requests: a build's indices stay valid while its pipes are read
    for (int k = 0; k < n; k++) {
      if (owner[k] < 0 || !fds[k].revents) continue;
      struct build *b = &builds[owner[k]];
      if (fds[k].fd == b->out) {
        ssize_t r = read(b->out, buf, sizeof buf);
        if (r > 0) event(b->id, 'O', buf, (uint32_t)r);
        else if (r == 0 || errno != EINTR) { close(b->out); b->out = -1; }
      } else {
        ssize_t r = read(b->setup, b->why + b->whylen, sizeof b->why - b->whylen);
        if (r > 0) b->whylen += (size_t)r;
        else if (r == 0 || errno != EINTR) { close(b->setup); b->setup = -1; }
      }
    }
    for (int k = 0; k < n; k++) {
      if (owner[k] != -2 || !fds[k].revents) continue;
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {}
      for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p <= 0) break;
        for (int i = 0; i < nbuilds; i++) if (builds[i].pid == p) { builds[i].pid = 0; builds[i].status = st; break; }
      }
    }
    for (int i = nbuilds - 1; i >= 0; i--) finish_if_done(i);
    if (input && fds[0].revents) {
      if (have == cap) { cap *= 2; unsigned char *r = realloc(req, cap); if (!r) return 1; req = r; }
      ssize_t r = read(0, req + have, cap - have);
      if (r == 0 || (r < 0 && errno != EINTR)) { input = 0; continue; }
      if (r < 0) continue;
      have += (size_t)r;
      size_t at = 0;
      while (have - at >= 4) {
        uint32_t len = get_u32(req + at);
        if (len < 5 || len > MAXREQ) { fprintf(stderr, "kiln-sandbox: bad request\n"); return 1; }
        if (have - at - 4 < len) {
          if ((size_t)len + 4 > cap) { cap = (size_t)len + 4; unsigned char *q = realloc(req, cap); if (!q) return 1; req = q; }
          break;
        }
        unsigned char type = req[at + 4];
        uint32_t id = get_u32(req + at + 5);
        if (type == 'B') start(id, (const char *)req + at + 9, len - 5, &old);
        else if (type == 'R') remove_tree(id, (const char *)req + at + 9, len - 5);
        else if (type == 'X') kill_all();
        else if (type == 'K') { for (int i = 0; i < nbuilds; i++) if (builds[i].id == id && builds[i].pid > 0) kill_build(builds[i].pid); }
        at += 4 + len;
      }
      memmove(req, req + at, have - at);
      have -= at;
    }
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--serve") == 0) return serve();
  return helper(argc, argv);
}
