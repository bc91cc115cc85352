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
//   builds for kiln, started once: forking this small process costs a fraction of forking
//   kiln's own (fork copies the parent's page tables: ~1.7 ms a build from a Node process of
//   ~140 MB, 0.1 ms from this one). Requests on stdin, events on stdout, all integers
//   little-endian u32:
//     request  len type id payload     (len counts type, id and payload)
//       'S' a build in a sandbox the server makes itself (below, "the sandbox"): cwd\0 overlay\0
//           argc argv[0]\0...argv[argc-1]\0 then the sandbox's options (bubblewrap's, NUL-ended)
//       'P' a sandbox made ahead of its build: as 'S' with argc 0 and the options every build of
//           its kind shares; it waits for its 'G'
//       'G' the build for prepared sandbox id: argc argv... then the rest of its options
//       'B' a process: cwd\0 options\0 argc argv... then bubblewrap's options (its fd 3,
//           `--args 3`), run as the helper above does (the namespace and overlay, then argv[0],
//           bubblewrap); options empty: no namespace or overlay of its own
//       'K' kill the build's process group (a sandbox's pid 1: its namespace with it)
//       'X' kill every build
//       'R' remove a directory tree: path\0 (a finished build's scratch dir, off kiln's thread);
//           its 'D' says how it went (status 0: removed)
//     event    id type len data
//       'O' output (the build's stdout and stderr, one pipe, in the order written)
//       'D' done: the raw wait status (u32), then, if the sandbox could not be set up, why
//           ("kiln-sandbox: ..."; the build's own output can never fake it: it comes on a pipe
//           closed by the exec of the command, or of bubblewrap)
//   Once its stdin closes, prepared sandboxes end and the server ends when its last build does;
//   it ends at once, and its builds with it, when kiln dies.
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
#include <sys/statvfs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
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
  int go;         // a prepared sandbox ('P') waiting for its build ('G'): the pipe that starts it, else -1
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

// ---- the sandbox ('S'): what bubblewrap did for a build, done by the server's child itself ----
//
// A build's sandbox is made by one process of the server's: cloned into new user, mount, PID,
// IPC, UTS, cgroup and (unless --share-net) network namespaces at once, it mounts the overlay over
// the build's scratch dir, lays the sandbox's root out on a tmpfs as the options say, pivots into
// it, and then, as the namespace's pid 1, starts the build's command and waits for it. bubblewrap
// did the same work in two more processes (its exec, its pid 1) and a second user namespace; this
// keeps its behaviour: uid and gid as asked with nothing else mapped, no capabilities left
// (bounding set dropped, no_new_privs), a session of its own, a fresh /proc, /dev and /tmp.
//
// The options are bubblewrap's, the ones kiln gives (engine/builders/sandbox.ts, bwrapOptions):
//   --unshare-all --share-net --die-with-parent --new-session --clearenv
//   --uid N --gid N --hostname H --proc D --dev D --tmpfs D --dir D --perms MODE --chdir D
//   --ro-bind SRC D --bind SRC D --symlink TARGET D --setenv NAME VALUE
// and one of kiln's own: --scratch-dir PATH, a directory made (with the scratch dir, the working
// directory, and its parents, if they are not there) before the overlay is mounted: a prepared sandbox makes its scratch
// dir's layout itself, off kiln's thread. Any other is refused (the build does not start: 'D' says
// why). Sources are host paths, read before the pivot; destinations are the sandbox's.

enum { O_FLAG, O_UID, O_GID, O_HOSTNAME, O_PROC, O_DEV, O_TMPFS, O_DIR, O_PERMS, O_CHDIR, O_ROBIND, O_BIND, O_SYMLINK, O_SETENV, O_SHARENET, O_SCRATCH };
static const struct { const char *name; int op, args; } OPTS[] = {
  {"--unshare-all", O_FLAG, 0}, {"--die-with-parent", O_FLAG, 0}, {"--new-session", O_FLAG, 0}, {"--clearenv", O_FLAG, 0},
  {"--share-net", O_SHARENET, 0}, {"--uid", O_UID, 1}, {"--gid", O_GID, 1}, {"--hostname", O_HOSTNAME, 1},
  {"--proc", O_PROC, 1}, {"--dev", O_DEV, 1}, {"--tmpfs", O_TMPFS, 1}, {"--dir", O_DIR, 1}, {"--perms", O_PERMS, 1},
  {"--chdir", O_CHDIR, 1}, {"--scratch-dir", O_SCRATCH, 1}, {"--ro-bind", O_ROBIND, 2}, {"--bind", O_BIND, 2}, {"--symlink", O_SYMLINK, 2}, {"--setenv", O_SETENV, 2},
};
struct op { int op; const char *a, *b; };
struct sandbox {
  struct op *ops; size_t nops;
  int share_net;
  size_t nenv;
  char why[512];
};

// The options in [p, end) into s; 0, or -1 with why in s->why.
static int parse_sandbox(struct sandbox *s, const char *p, const char *end) {
  size_t cap = 0;
  s->ops = NULL; s->nops = 0; s->share_net = 0; s->nenv = 0;
  while (p < end) {
    const char *name = next(&p, end);
    if (!name) { snprintf(s->why, sizeof s->why, "kiln-sandbox: bad request (options)"); return -1; }
    size_t k = 0;
    while (k < sizeof OPTS / sizeof OPTS[0] && strcmp(OPTS[k].name, name) != 0) k++;
    if (k == sizeof OPTS / sizeof OPTS[0]) { snprintf(s->why, sizeof s->why, "kiln-sandbox: unsupported sandbox option %.100s", name); return -1; }
    struct op o = {OPTS[k].op, NULL, NULL};
    if (OPTS[k].args >= 1 && !(o.a = next(&p, end))) { snprintf(s->why, sizeof s->why, "kiln-sandbox: %s needs an argument", name); return -1; }
    if (OPTS[k].args >= 2 && !(o.b = next(&p, end))) { snprintf(s->why, sizeof s->why, "kiln-sandbox: %s needs two arguments", name); return -1; }
    if (o.op == O_SHARENET) s->share_net = 1;
    if (o.op == O_FLAG || o.op == O_SHARENET) continue;
    if (s->nops == cap) {
      cap = cap ? cap * 2 : 64;
      struct op *q = realloc(s->ops, cap * sizeof *q);
      if (!q) { snprintf(s->why, sizeof s->why, "kiln-sandbox: out of memory"); return -1; }
      s->ops = q;
    }
    s->ops[s->nops++] = o;
    if (o.op == O_SETENV) s->nenv++;
  }
  return 0;
}

// what failed, into why: the setup ends
#define TRY(x, ...) do { if ((x) < 0) { int e_ = errno; int n_ = snprintf(why, 512, "kiln-sandbox: " __VA_ARGS__); snprintf(why + n_, n_ < 512 ? 512 - (size_t)n_ : 0, ": %s", strerror(e_)); return why; } } while (0)

static int mkdirs(char *path, mode_t mode) {
  // most are made in one step: their parents are there
  if (mkdir(path, mode) == 0 || errno == EEXIST) return 0;
  if (errno != ENOENT) return -1;
  for (char *q = path + 1; *q; q++) {
    if (*q != '/') continue;
    *q = 0;
    int r = mkdir(path, 0755);
    *q = '/';
    if (r != 0 && errno != EEXIST) return -1;
  }
  return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -1;
}

static int parent_dirs(char *path) {
  char *slash = strrchr(path, '/');
  if (!slash || slash == path) return 0;
  *slash = 0;
  int r = mkdirs(path, 0755);
  *slash = '/';
  return r;
}

static int set_attrs(const char *path, int readonly) {
#ifdef SYS_mount_setattr
  struct { uint64_t set, clr, propagation, userns; } a = { (readonly ? 0x1 : 0) | 0x2 | 0x4, 0, 0, 0 }; // MOUNT_ATTR_RDONLY, NOSUID, NODEV
  if (syscall(SYS_mount_setattr, AT_FDCWD, path, 0x8000 /* AT_RECURSIVE */, &a, sizeof a) == 0) return 0;
  if (errno != ENOSYS) return -1;
#endif
  // before Linux 5.12: the top mount alone, keeping the flags the kernel locked on it
  struct statvfs v;
  if (statvfs(path, &v) != 0) return -1;
  unsigned long f = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (readonly ? MS_RDONLY : 0);
  if (v.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (v.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (v.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (v.f_flag & ST_RELATIME) f |= MS_RELATIME;
  if (v.f_flag & ST_RDONLY) f |= MS_RDONLY;
  return mount(NULL, path, NULL, f, NULL);
}

static int bind_path(const char *src, char *dst, int readonly, int devices) {
  struct stat st;
  if (stat(src, &st) != 0) return -1;
  if (S_ISDIR(st.st_mode)) { if (mkdirs(dst, 0755) != 0) return -1; }
  else {
    if (parent_dirs(dst) != 0) return -1;
    int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0 && errno != EEXIST) return -1;
    if (fd >= 0) close(fd);
  }
  if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0) return -1;
  return devices ? 0 : set_attrs(dst, readonly);
}

// The sandbox's root, laid out at `root` (a tmpfs) as the options say, the host's root at `host`,
// and paths under the scratch dir taken from the overlay at /overlay; NULL, or why not.
static const char *lay_out(struct sandbox *s, const char *root, const char *host, const char *scratch, char *why) {
  size_t sn = scratch ? strlen(scratch) : 0;
  char dst[4096], src[4200];
  mode_t perms = 0;
  for (size_t i = 0; i < s->nops; i++) {
    struct op *o = &s->ops[i];
    const char *d = o->op == O_ROBIND || o->op == O_BIND || o->op == O_SYMLINK ? o->b : o->a;
    if (o->op == O_SCRATCH) continue;
    if (o->op != O_SETENV && o->op != O_PERMS && o->op != O_UID && o->op != O_GID && o->op != O_HOSTNAME && o->op != O_CHDIR) {
      if (d[0] != '/') { errno = EINVAL; TRY(-1, "%.200s: not an absolute path", d); }
      if ((size_t)snprintf(dst, sizeof dst, "%s%s", root, strcmp(d, "/") == 0 ? "" : d) >= sizeof dst) { errno = ENAMETOOLONG; TRY(-1, "%.200s", d); }
    }
    mode_t mode = perms ? perms : 0755;
    switch (o->op) {
    case O_PERMS: {
      char *e;
      unsigned long m = strtoul(o->a, &e, 8);
      if (*e || m > 07777) { errno = EINVAL; TRY(-1, "--perms %.20s", o->a); }
      perms = (mode_t)m;
      continue;
    }
    case O_DIR:
      TRY(mkdirs(dst, mode), "directory %.200s", d);
      TRY(chmod(dst, mode), "directory %.200s", d);
      break;
    case O_TMPFS: {
      char opt[32];
      snprintf(opt, sizeof opt, "mode=%04o", (unsigned)mode);
      TRY(mkdirs(dst, 0755), "tmpfs %.200s", d);
      TRY(mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, opt), "tmpfs %.200s", d);
      break;
    }
    case O_SYMLINK:
      TRY(parent_dirs(dst), "symlink %.200s", d);
      if (symlink(o->a, dst) != 0) {
        char t[4096];
        ssize_t n = readlink(dst, t, sizeof t - 1);
        if (n < 0 || (t[n] = 0, strcmp(t, o->a) != 0)) TRY(-1, "symlink %.200s", d);
      }
      break;
    case O_ROBIND: case O_BIND:
      if (o->a[0] != '/') { errno = EINVAL; TRY(-1, "%.200s: not an absolute path", o->a); }
      if (sn && strncmp(o->a, scratch, sn) == 0 && (o->a[sn] == '/' || !o->a[sn])) snprintf(src, sizeof src, "/overlay%s", o->a + sn);
      else snprintf(src, sizeof src, "%s%s", host, o->a);
      TRY(bind_path(src, dst, o->op == O_ROBIND, 0), "bind mount %.200s on %.200s", o->a, d);
      break;
    case O_PROC: {
      TRY(mkdirs(dst, 0755), "proc %.200s", d);
      TRY(mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "proc %.200s", d);
      // what the kernel does not confine to the namespace, read-only (as bubblewrap does)
      static const char *const RO[] = {"sys", "sysrq-trigger", "irq", "bus"};
      for (size_t k = 0; k < sizeof RO / sizeof RO[0]; k++) {
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", dst, RO[k]);
        if (access(sub, F_OK) != 0) continue;
        TRY(mount(sub, sub, NULL, MS_BIND | MS_REC, NULL), "proc %.200s", d);
        TRY(set_attrs(sub, 1), "proc %.200s", d);
      }
      break;
    }
    case O_DEV: {
      TRY(mkdirs(dst, 0755), "dev %.200s", d);
      TRY(mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"), "dev %.200s", d);
      static const char *const NODES[] = {"null", "zero", "full", "random", "urandom", "tty"};
      char a[4200], b[4200];
      for (size_t k = 0; k < sizeof NODES / sizeof NODES[0]; k++) {
        snprintf(a, sizeof a, "%s/dev/%s", host, NODES[k]);
        snprintf(b, sizeof b, "%s/%s", dst, NODES[k]);
        TRY(bind_path(a, b, 0, 1), "dev %.200s: %s", d, NODES[k]);
      }
      static const char *const LINKS[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"}, {"pts/ptmx", "ptmx"}};
      for (size_t k = 0; k < sizeof LINKS / sizeof LINKS[0]; k++) {
        snprintf(b, sizeof b, "%s/%s", dst, LINKS[k][1]);
        TRY(symlink(LINKS[k][0], b), "dev %.200s: %s", d, LINKS[k][1]);
      }
      snprintf(b, sizeof b, "%s/shm", dst);
      TRY(mkdir(b, 0755), "dev %.200s: shm", d);
      snprintf(b, sizeof b, "%s/pts", dst);
      TRY(mkdir(b, 0755), "dev %.200s: pts", d);
      TRY(mount("devpts", b, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"), "dev %.200s: pts", d);
      break;
    }
    case O_HOSTNAME:
      TRY(sethostname(o->a, strlen(o->a)), "hostname");
      break;
    default:
      break;
    }
    if (o->op == O_DIR || o->op == O_TMPFS) perms = 0;
  }
  return NULL;
}

static int id_of(const char *s, unsigned *v) {
  char *e;
  unsigned long n = strtoul(s, &e, 10);
  if (!*s || *e || n > 0xfffffffeUL) return -1;
  *v = (unsigned)n;
  return 0;
}

// A prepared sandbox's build ('G'), read from its pipe (fd 3) to its end: argc, argv, then the rest
// of the sandbox's options, into *rest and *argv; NULL, or why not. Nothing at all: discarded.
static const char *await_build(struct sandbox *rest, char ***argv, char *why) {
  size_t cap = 1 << 16, have = 0;
  char *buf = malloc(cap);
  if (!buf) TRY(-1, "out of memory");
  for (;;) {
    if (have == cap) {
      char *b = realloc(buf, cap *= 2);
      if (!b) TRY(-1, "out of memory");
      buf = b;
    }
    ssize_t r = read(3, buf + have, cap - have);
    if (r < 0 && errno == EINTR) continue;
    TRY(r, "the prepared sandbox's build");
    if (r == 0) break;
    have += (size_t)r;
  }
  close(3);
  if (have == 0) _exit(0);
  const char *p = buf, *end = buf + have;
  errno = EINVAL;
  if (have < 4) TRY(-1, "bad request (build)");
  uint32_t argc = get_u32((const unsigned char *)p); p += 4;
  if (argc == 0 || argc > 65536 || !(*argv = calloc(argc + 1, sizeof **argv))) TRY(-1, "bad request (build)");
  for (uint32_t i = 0; i < argc; i++) if (!((*argv)[i] = (char *)next(&p, end))) TRY(-1, "bad request (build)");
  if (parse_sandbox(rest, p, end) != 0) { memcpy(why, rest->why, sizeof rest->why); return why; }
  return NULL;
}

// In the new namespaces, as their pid 1: the maps, the overlay, the root, then the build's command,
// waited for. Returns why the setup failed; does not return once the command started.
static const char *sandbox_pid1(struct sandbox *s, const char *cwd, const char *overlay, char **argv, uid_t host_uid, gid_t host_gid, int prepared, char *why) {
  unsigned uid = 0, gid = 0;
  for (size_t i = 0; i < s->nops; i++) {
    struct op *o = &s->ops[i];
    if ((o->op == O_UID && id_of(o->a, &uid) != 0) || (o->op == O_GID && id_of(o->a, &gid) != 0)) { errno = EINVAL; TRY(-1, "bad uid or gid %.20s", o->a); }
  }
  char map[64];
  if (put("/proc/self/setgroups", "deny") != 0 && errno != ENOENT) TRY(-1, "setgroups");
  snprintf(map, sizeof map, "%u %u 1", uid, (unsigned)host_uid);
  TRY(put("/proc/self/uid_map", map), "uid_map");
  snprintf(map, sizeof map, "%u %u 1", gid, (unsigned)host_gid);
  TRY(put("/proc/self/gid_map", map), "gid_map");
  if (!s->share_net) {
    // the new network namespace's loopback, up (the kernel gives it 127.0.0.1 and ::1 then), as
    // bubblewrap's was: builds and their tests may talk to themselves
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    TRY(fd, "loopback");
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strcpy(r.ifr_name, "lo");
    TRY(ioctl(fd, SIOCGIFFLAGS, &r), "loopback");
    r.ifr_flags |= IFF_UP | IFF_RUNNING;
    TRY(ioctl(fd, SIOCSIFFLAGS, &r), "loopback");
    close(fd);
  }
  TRY(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "private mounts");
  for (size_t i = 0, made = 0; i < s->nops; i++) {
    if (s->ops[i].op != O_SCRATCH) continue;
    if (!made++) {
      char dir[4200];
      snprintf(dir, sizeof dir, "%s", cwd);
      TRY(mkdirs(dir, 0755), "the scratch dir %.200s", cwd);
    }
    char d[4200];
    if (s->ops[i].a[0] == '/' || strstr(s->ops[i].a, "..")) { errno = EINVAL; TRY(-1, "--scratch-dir %.200s: not a path in the scratch dir", s->ops[i].a); }
    snprintf(d, sizeof d, "%s/%s", cwd, s->ops[i].a);
    TRY(mkdir(d, 0755) == 0 || errno == EEXIST ? 0 : -1, "the scratch dir's %.200s", s->ops[i].a);
  }
  TRY(chdir(cwd), "chdir %.200s", cwd);
  // a tmpfs, made the root for the while, holds the overlay (at /overlay: no directory on the
  // host's disk is ever a mount point, so its removal never waits on a namespace) and the new root
  // (/newroot); the host's root is below them at /oldroot (bubblewrap's way)
  TRY(mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"), "the sandbox's root");
  TRY(mkdir("/tmp/newroot", 0755), "the sandbox's root");
  TRY(mkdir("/tmp/oldroot", 0755), "the sandbox's root");
  TRY(mkdir("/tmp/overlay", 0755), "the sandbox's root");
  // the overlay's options name its directories relative to the scratch dir, the working directory
  if (*overlay) TRY(mount("kiln", "/tmp/overlay", "overlay", 0, overlay), "the build's overlay could not be mounted");
  TRY(mount("tmpfs", "/tmp/newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"), "the sandbox's root");
  TRY(chdir("/tmp"), "the sandbox's root");
  TRY(syscall(SYS_pivot_root, ".", "oldroot"), "pivot_root");
  TRY(chdir("/"), "chdir /");
  const char *err = lay_out(s, "/newroot", "/oldroot", *overlay ? cwd : NULL, why);
  if (err) return err;
  // prepared ('P'): the rest, and the command, when the build comes ('G')
  struct sandbox rest = {0};
  if (prepared) {
    if ((err = await_build(&rest, &argv, why)) || (err = lay_out(&rest, "/newroot", "/oldroot", *overlay ? cwd : NULL, why))) return err;
  }
  const char *dir = "/";
  size_t nenv = 0;
  for (int k = 0; k < 2; k++) {
    struct sandbox *part = k ? &rest : s;
    for (size_t i = 0; i < part->nops; i++) if (part->ops[i].op == O_CHDIR) dir = part->ops[i].a;
    nenv += part->nenv;
  }
  TRY(chdir("/newroot"), "the sandbox's root");
  TRY(syscall(SYS_pivot_root, ".", "."), "pivot_root");
  TRY(umount2(".", MNT_DETACH), "the host's root");
  TRY(chdir("/"), "chdir /");
  char **env = calloc(nenv + 1, sizeof *env);
  if (!env) TRY(-1, "out of memory");
  size_t ne = 0;
  for (int k = 0; k < 2; k++) {
    struct sandbox *part = k ? &rest : s;
    for (size_t i = 0; i < part->nops; i++) {
      struct op *o = &part->ops[i];
      if (o->op != O_SETENV) continue;
      size_t n = strlen(o->a) + strlen(o->b) + 2;
      if (!(env[ne] = malloc(n))) TRY(-1, "out of memory");
      snprintf(env[ne++], n, "%s=%s", o->a, o->b);
    }
  }
  pid_t pid = fork();
  TRY(pid, "fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setsid();
    // no capability can come back: none in the bounding set, none through an exec
    for (int c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++) prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (chdir(dir) != 0) { dprintf(2, "kiln-sandbox: chdir %s: %s\n", dir, strerror(errno)); _exit(127); }
    environ = env;
    execvp(argv[0], argv);
    dprintf(2, "kiln-sandbox: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  // the setup went through: its pipe closes (the build's own output can never fake a setup failure)
  close(4);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) { dup2(null, 1); dup2(null, 2); close(null); }
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) _exit(125);
    if (p == pid) _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  }
}

// a pipe whose write end only the server holds: its children see it hang up when the server is gone
static int lifeline[2] = {-1, -1};

// 'B' (a process) or 'S' (a sandbox): cwd\0 overlay\0 argc argv... then, for 'B', bubblewrap's
// options (the child's fd 3), for 'S', the sandbox's. 'P' (a prepared sandbox): as 'S' with argc 0
// and the first part of the options; its build comes later ('G').
static void start(uint32_t id, char type, const char *p, size_t n, sigset_t *old) {
  const char *end = p + n;
  const char *cwd = next(&p, end), *options = cwd ? next(&p, end) : NULL;
  errno = EINVAL;
  if (!options || end - p < 4 || nbuilds == MAXB) { fail(id, "bad request"); return; }
  uint32_t argc = get_u32((const unsigned char *)p); p += 4;
  if ((argc == 0) != (type == 'P') || argc > 65536) { fail(id, "bad request"); return; }
  char **argv = calloc(argc + 1, sizeof *argv);
  if (!argv) { fail(id, "out of memory"); return; }
  struct sandbox sb = {0};
  int args = -1;
  int out[2] = {-1, -1}, setup[2] = {-1, -1}, go[2] = {-1, -1};
  for (uint32_t i = 0; i < argc; i++) {
    if (!(argv[i] = (char *)next(&p, end))) { errno = EINVAL; fail(id, "bad request"); goto close_all; }
  }
  if (type != 'B' && parse_sandbox(&sb, p, end) != 0) {
    unsigned char d[4 + sizeof sb.why];
    size_t len = strlen(sb.why);
    put_u32(d, 125 << 8);
    memcpy(d + 4, sb.why, len);
    event(id, 'D', d, 4 + (uint32_t)len);
    goto close_all;
  }
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(setup, O_CLOEXEC) != 0 || (type == 'P' && pipe2(go, O_CLOEXEC) != 0)) { fail(id, "pipes"); goto close_all; }
  // a build's rest of options for a large closure: the server writes them whole, without waiting
  if (type == 'P') fcntl(go[1], F_SETPIPE_SZ, 1 << 20);
  if (type == 'B') {
    if ((args = memfd_create("kiln-bwrap-args", MFD_CLOEXEC)) < 0) { fail(id, "pipes"); goto close_all; }
    for (const char *q = p; q < end;) {
      ssize_t w = write(args, q, (size_t)(end - q));
      if (w < 0) { fail(id, "bubblewrap's options"); goto close_all; }
      q += w;
    }
    lseek(args, 0, SEEK_SET);
  }
  uid_t host_uid = geteuid(); gid_t host_gid = getegid();
  pid_t pid = type != 'B'
    ? (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | (sb.share_net ? 0 : CLONE_NEWNET) | SIGCHLD), NULL, NULL, NULL, NULL)
    : fork();
  if (pid < 0) { fail(id, type != 'B' ? "the sandbox's namespaces" : "fork"); goto close_all; }
  if (pid == 0) {
    char why[512];
    const char *err = why;
    int status = setup[1];
    // dies with the server (until bubblewrap's --die-with-parent takes over, for 'B')
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(lifeline[1]);
    struct pollfd life = {lifeline[0], POLLIN, 0};
    if (poll(&life, 1, 0) != 0) _exit(125);
    close(lifeline[0]);
    sigprocmask(SIG_SETMASK, old, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    // the setup pipe at 4 (closed by the exec), bubblewrap's options at 3 ('B'), output at 1 and 2;
    // each moved above 4 first, where none of the others can be
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int s = fcntl(setup[1], F_DUPFD_CLOEXEC, 5), nl = fcntl(null, F_DUPFD_CLOEXEC, 5), o = fcntl(out[1], F_DUPFD_CLOEXEC, 5);
    int a = args >= 0 ? fcntl(args, F_DUPFD_CLOEXEC, 5) : go[0] >= 0 ? fcntl(go[0], F_DUPFD_CLOEXEC, 5) : -1;
    if (go[1] >= 0) close(go[1]);
    if (null < 0 || s < 0 || nl < 0 || o < 0 || ((args >= 0 || go[0] >= 0) && a < 0) || dup3(s, 4, O_CLOEXEC) < 0 || dup2(nl, 0) < 0 || dup2(o, 1) < 0 || dup2(o, 2) < 0 || (a >= 0 && dup2(a, 3) < 0)) {
      snprintf(why, sizeof why, "kiln-sandbox: descriptors: %s", strerror(errno));
    } else {
      status = 4;
      close_from(5);
      if (a < 0) close(3);
      umask(022);
      if (type != 'B') err = sandbox_pid1(&sb, cwd, options, argv, host_uid, host_gid, type == 'P', why);
      else if (chdir(cwd) != 0) snprintf(why, sizeof why, "kiln-sandbox: chdir %s: %s", cwd, strerror(errno));
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
  b->id = id; b->pid = pid; b->status = 0; b->out = out[0]; b->setup = setup[0]; b->whylen = 0; b->remover = 0; b->go = go[1];
  out[0] = setup[0] = go[1] = -1;
close_all:
  free(argv);
  free(sb.ops);
  if (args >= 0) close(args);
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0) close(out[i]);
    if (setup[i] >= 0) close(setup[i]);
    if (go[i] >= 0) close(go[i]);
  }
}

// 'G': the build for a prepared sandbox (the frame's id is the prepared one's): argc argv... then
// the rest of the sandbox's options, handed to it whole.
static void go_build(uint32_t id, const char *p, size_t n) {
  for (int i = 0; i < nbuilds; i++) {
    struct build *b = &builds[i];
    if (b->id != id || b->go < 0) continue;
    while (n > 0) {
      ssize_t w = write(b->go, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) break;  // it is gone: its 'D' says why
      p += w; n -= (size_t)w;
    }
    close(b->go);
    b->go = -1;
    return;
  }
  errno = ESRCH;
  fail(id, "no such prepared sandbox");
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
  b->id = id; b->pid = pid; b->status = 0; b->out = -1; b->setup = -1; b->whylen = 0; b->remover = 1; b->go = -1;
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
  if (pipe2(lifeline, O_CLOEXEC) != 0) { perror("kiln-sandbox: pipe"); return 1; }
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
      if (r == 0 || (r < 0 && errno != EINTR)) {
        input = 0;
        // no build will come for the prepared sandboxes: they end (without a build, quietly)
        for (int i = 0; i < nbuilds; i++) if (builds[i].go >= 0) { close(builds[i].go); builds[i].go = -1; }
        continue;
      }
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
        if (type == 'B' || type == 'S' || type == 'P') start(id, (char)type, (const char *)req + at + 9, len - 5, &old);
        else if (type == 'G') go_build(id, (const char *)req + at + 9, len - 5);
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
