/*
 * BlazeNeuro's init, PID 1: mounts the pseudo filesystems, names the host, then either runs the
 * self-test (blazeneuro.test=1 on the kernel command line) and powers off, or gives the console a
 * shell, again whenever it exits. The root filesystem is mounted read-write by the kernel ("rw"):
 * what a user changes stays on the stick, and at every boot blazeneuro-grow-root grows it to the
 * end of the stick if it does not reach it yet. `poweroff` and `reboot` (/usr/sbin, scripts) signal
 * init: SIGUSR2 powers off, SIGTERM reboots; Ctrl-Alt-Del (SIGINT) reboots too. On the way down
 * every process is stopped and reaped, and / is remounted read-only, so the next boot finds it
 * clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* set by the signal handlers: what to do once the current wait returns */
static volatile sig_atomic_t going_down = 0;
static volatile sig_atomic_t reboot_instead = 0;

static void on_poweroff(int sig) { (void)sig; going_down = 1; }
static void on_reboot(int sig) { (void)sig; going_down = 1; reboot_instead = 1; }

static void mnt(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  mkdir(dst, 0755);
  if (mount(src, dst, type, flags, data) != 0 && errno != EBUSY)
    fprintf(stderr, "init: mounting %s on %s: %s\n", type, dst, strerror(errno));
}

/* run argv with the console as its controlling terminal; reap every child until it exits */
static int run(char *const argv[], int session) {
  pid_t pid = fork();
  if (pid < 0) { perror("init: fork"); return 127; }
  if (pid == 0) {
    if (session) {
      setsid();
      int fd = open("/dev/console", O_RDWR);
      if (fd >= 0) { ioctl(fd, TIOCSCTTY, 1); dup2(fd, 0); dup2(fd, 1); dup2(fd, 2); if (fd > 2) close(fd); }
    }
    execv(argv[0], argv);
    fprintf(stderr, "init: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int status = 0;
  for (;;) {
    pid_t w = wait(&status);
    if (w == pid) break;
    if (w < 0 && errno == EINTR && going_down) return -1;
    if (w < 0 && errno != EINTR) return 127;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* reap every child, for at most `seconds` */
static void reap_all(int seconds) {
  time_t end = time(NULL) + seconds;
  while (time(NULL) <= end) {
    pid_t w = waitpid(-1, NULL, WNOHANG);
    if (w < 0 && errno == ECHILD) return;
    if (w <= 0) usleep(50000);
  }
}

static void shut_down(void) {
  printf("BlazeNeuro init: %s\n", reboot_instead ? "rebooting" : "powering off");
  fflush(stdout);
  kill(-1, SIGTERM);
  reap_all(2);
  kill(-1, SIGKILL);
  reap_all(2);
  sync();
  int remounted = 0;
  for (int i = 0; i < 10 && !remounted; i++) {
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0) remounted = 1;
    else usleep(200000);
  }
  if (remounted) printf("BlazeNeuro init: / remounted read-only\n");
  else printf("BlazeNeuro init: remounting / read-only failed: %s\n", strerror(errno));
  fflush(stdout);
  sync();
  reboot(reboot_instead ? RB_AUTOBOOT : RB_POWER_OFF);
  /* PID 1 must not exit: that is a kernel panic */
  for (;;) pause();
}

static int cmdline_has(const char *word) {
  char buf[4096];
  int fd = open("/proc/cmdline", O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
    if (strcmp(t, word) == 0) return 1;
  return 0;
}

static void set_hostname(void) {
  char name[65] = "blazeneuro";
  FILE *f = fopen("/etc/hostname", "r");
  if (f) {
    if (fgets(name, sizeof name, f)) name[strcspn(name, "\n")] = 0;
    fclose(f);
  }
  if (sethostname(name, strlen(name)) != 0) perror("init: sethostname");
}

int main(void) {
  if (getpid() != 1) { fprintf(stderr, "init: not process 1\n"); return 1; }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_poweroff;
  sigaction(SIGUSR2, &sa, NULL);
  sa.sa_handler = on_reboot;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  /* Ctrl-Alt-Del is a SIGINT to init, not an immediate reset */
  reboot(RB_DISABLE_CAD);
  mnt("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mnt("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mnt("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mnt("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620");
  mnt("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  mnt("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  set_hostname();
  setenv("PATH", "/usr/bin:/usr/sbin", 1);
  setenv("HOME", "/root", 1);
  setenv("TERM", "linux", 0);
  printf("BlazeNeuro init: up\n");
  fflush(stdout);
  /* the root grown to the end of the stick, before anything else writes to it */
  char *grow[] = { "/usr/sbin/blazeneuro-grow-root", NULL };
  if (access(grow[0], X_OK) == 0) run(grow, 0);

  if (cmdline_has("blazeneuro.test=1")) {
    char *argv[] = { "/usr/bin/bash", "/etc/blazeneuro/selftest", NULL };
    int rc = run(argv, 1);
    printf("BlazeNeuro init: self-test exited %d\n", rc);
  } else {
    char *argv[] = { "/usr/bin/bash", "--login", NULL };
    while (!going_down) {
      run(argv, 1);
      if (!going_down) sleep(1);
    }
  }
  shut_down();
  return 0;
}
