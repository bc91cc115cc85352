/*
 * kiln-hash: the content digest of a directory tree (store/archive.ts's hashTree, the same bytes),
 * walked and hashed on several threads in one native process. A large source tree (a kernel:
 * 79k files, 1.3 GB) costs Node ~4 us of JavaScript per file on one thread before any byte is
 * read (the lstat's Stats object, the cache key, the job); here each file is an fstatat and,
 * unless the digest cache knows it, an open, reads and BLAKE3 (the official C implementation,
 * store/blake3-c), on the threads it is given (kiln gives one per core, four at most).
 *
 *   kiln-hash [--threads N] [--cache FILE] ROOT
 *
 * prints "<hex digest> <size> <files> <read>\n": size is the sum of file sizes and symlink target
 * lengths, files the regular files, read those actually read (not found in the cache). Exit 0,
 * or 1 with a message on stderr for anything else: an unsupported entry, a name that is not
 * UTF-8 (kiln's paths are text), a file that changed while it was read, an unreadable one. The
 * caller then hashes the tree its own way, which says what went wrong as it always has.
 *
 * The digest (see store/archive.ts): a file is BLAKE3("F-" or "Fx", its size as a big-endian u64,
 * its bytes); a symlink BLAKE3("L", its target); a directory BLAKE3("D", then for each entry in
 * bytewise order of names: the name's length as a big-endian u32, the name, the entry's digest).
 *
 * --cache FILE: digests of the files under ROOT from the last run, by path relative to ROOT,
 * with the size, modification time, inode and exec bit they had: a file that still has them all
 * is not read. The file is rewritten (to a temporary name, then renamed) when anything differs.
 * Format ("2": no digest of a racy file, see put_files): "KILNTHC2", u32 root length, the root,
 * u64 count, then per file: u16 path length, the path, i64 size, i64 mtime seconds, i64 mtime
 * nanoseconds, u64 inode, u32 exec bit, 32 bytes of digest; then BLAKE3 of everything before.
 * One that does not check out is ignored. A cache used as it is gets its modification time
 * renewed: `kiln gc` removes those unused for a month.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "blake3-c/blake3.h"

#define CHUNK (1 << 20)
#define MAX_THREADS 16

typedef struct Node Node;
struct Node {
  char *path;       /* full path */
  const char *name; /* inside path */
  size_t namelen;
  char type;        /* 'D', 'F', 'L' */
  uint64_t size;
  int64_t msec, mnsec;
  uint64_t ino;
  uint32_t exec;
  Node **kids;
  size_t nkids;
  uint8_t digest[32];
};

static size_t rootlen;
static int failed;
static char failure[PATH_MAX + 200];
static uint64_t read_count;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t more = PTHREAD_COND_INITIALIZER;
static Node **tasks;
static size_t ntasks, captasks, pending;

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fputs("kiln-hash: out of memory\n", stderr);
    exit(1);
  }
  return p;
}

static void *xmalloc(size_t n) {
  return xrealloc(NULL, n);
}

/* BLAKE3 of one buffer */
static void blake3_of(const void *data, size_t len, uint8_t out[32]) {
  blake3_hasher h;
  blake3_hasher_init(&h);
  blake3_hasher_update(&h, data, len);
  blake3_hasher_finalize(&h, out, 32);
}

static void fail(const char *what, const char *path, int err) {
  pthread_mutex_lock(&lock);
  if (!failed) {
    failed = 1;
    snprintf(failure, sizeof failure, "%s: %s%s%s", path, what, err ? ": " : "", err ? strerror(err) : "");
  }
  pthread_cond_broadcast(&more);
  pthread_mutex_unlock(&lock);
}

/* ---- the cache: an open-addressing table by path relative to the root ---------------------- */

typedef struct {
  const char *rel;
  size_t rellen;
  int64_t size, msec, mnsec;
  uint64_t ino;
  uint32_t exec;
  const uint8_t *digest;
} Entry;

static Entry *table;
static size_t tablecap, cached_count;

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
  return h;
}

static const Entry *lookup(const char *rel, size_t n) {
  if (!tablecap) return NULL;
  for (size_t i = hash_bytes(rel, n) & (tablecap - 1);; i = (i + 1) & (tablecap - 1)) {
    const Entry *e = &table[i];
    if (!e->rel) return NULL;
    if (e->rellen == n && memcmp(e->rel, rel, n) == 0) return e;
  }
}

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Load FILE if it is whole and for this root; anything else leaves the cache empty. */
static void load_cache(const char *file, const char *root) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) || st.st_size < 8 + 4 + 8 + 32) {
    close(fd);
    return;
  }
  size_t len = st.st_size;
  uint8_t *data = xmalloc(len);
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, data + got, len - got);
    if (n <= 0) break;
    got += n;
  }
  close(fd);
  uint8_t sum[32];
  blake3_of(data, len - 32, sum);
  if (got != len || memcmp(data, "KILNTHC2", 8) || memcmp(sum, data + len - 32, 32)) goto bad;
  uint32_t rl;
  memcpy(&rl, data + 8, 4);
  size_t at = 12;
  if (at + rl + 8 > len - 32 || rl != strlen(root) || memcmp(data + at, root, rl)) goto bad;
  at += rl;
  uint64_t count = get_u64(data + at);
  at += 8;
  if (count > (len / 62) + 1) goto bad;
  tablecap = 16;
  while (tablecap < count * 2) tablecap <<= 1;
  table = calloc(tablecap, sizeof *table);
  if (!table) goto bad;
  for (uint64_t i = 0; i < count; i++) {
    if (at + 2 > len - 32) goto bad;
    uint16_t pl;
    memcpy(&pl, data + at, 2);
    at += 2;
    if (at + pl + 8 * 4 + 4 + 32 > len - 32) goto bad;
    Entry e = { (const char *)data + at, pl, 0, 0, 0, 0, 0, NULL };
    at += pl;
    e.size = (int64_t)get_u64(data + at);
    e.msec = (int64_t)get_u64(data + at + 8);
    e.mnsec = (int64_t)get_u64(data + at + 16);
    e.ino = get_u64(data + at + 24);
    memcpy(&e.exec, data + at + 32, 4);
    e.digest = data + at + 36;
    at += 36 + 32;
    size_t j = hash_bytes(e.rel, e.rellen) & (tablecap - 1);
    while (table[j].rel) j = (j + 1) & (tablecap - 1);
    table[j] = e;
    cached_count++;
  }
  if (at != len - 32) goto bad;
  return; /* data stays: the table points into it */
bad:
  free(table);
  table = NULL;
  tablecap = 0;
  cached_count = 0;
  free(data);
}

/* ---- the walk and the hashing, as tasks on a shared stack ----------------------------------- */

static void push(Node **nodes, size_t n) {
  if (!n) return;
  pthread_mutex_lock(&lock);
  if (ntasks + n > captasks) {
    captasks = (ntasks + n) * 2;
    tasks = xrealloc(tasks, captasks * sizeof *tasks);
  }
  memcpy(tasks + ntasks, nodes, n * sizeof *nodes);
  ntasks += n;
  pending += n;
  pthread_cond_broadcast(&more);
  pthread_mutex_unlock(&lock);
}

/* Whether s[0..n) is valid UTF-8, strictly (no overlong forms, surrogates or code points past
   U+10FFFF), as Node's buffer.isUtf8 decides for the walk in store/archive.ts. */
static int utf8(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!len || i + len > n) return 0;
    for (size_t k = 1; k < len; k++)
      if ((s[i + k] & 0xc0) != 0x80) return 0;
    unsigned d = s[i + 1];
    if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d > 0x9f) || (c == 0xf0 && d < 0x90) || (c == 0xf4 && d > 0x8f)) return 0;
    i += len;
  }
  return 1;
}

static int by_name(const void *a, const void *b) {
  const Node *x = *(Node *const *)a, *y = *(Node *const *)b;
  size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
  int c = memcmp(x->name, y->name, n);
  return c ? c : (x->namelen > y->namelen) - (x->namelen < y->namelen);
}

static void symlink_digest(Node *n, int dfd) {
  char target[PATH_MAX + 1];
  ssize_t len = readlinkat(dfd, n->name, target + 1, PATH_MAX);
  if (len < 0 || len >= PATH_MAX) {
    fail("cannot read the link", n->path, len < 0 ? errno : ENAMETOOLONG);
    return;
  }
  target[0] = 'L';
  n->size = len;
  blake3_of(target, len + 1, n->digest);
}

/* Read and hash a file: by its name in its open directory (dfd), or by its whole path (dfd < 0). */
static void hash_file(Node *f, uint8_t *buf, int dfd) {
  int fd = dfd >= 0 ? openat(dfd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : open(f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    fail("cannot open", f->path, errno);
    return;
  }
  uint8_t head[10] = { 'F', f->exec ? 'x' : '-' };
  for (int i = 0; i < 8; i++) head[2 + i] = (uint8_t)(f->size >> (56 - 8 * i));
  blake3_hasher h;
  blake3_hasher_init(&h);
  blake3_hasher_update(&h, head, sizeof head);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, CHUNK);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot read", f->path, errno);
      close(fd);
      return;
    }
    if (n == 0) break;
    blake3_hasher_update(&h, buf, n);
    total += n;
    /* a regular file reads short only at its end: no read to be told so, once its size is in
       (a file grown since its stat would have filled the buffer further) */
    if (n < CHUNK && total >= f->size) break;
  }
  close(fd);
  if (total != f->size) {
    fail("file changed while hashing", f->path, 0);
    return;
  }
  blake3_hasher_finalize(&h, f->digest, 32);
  __atomic_add_fetch(&read_count, 1, __ATOMIC_RELAXED);
}

/* A directory's small files, up to this many bytes in all, are read by the thread that listed it,
   by name in the open directory (no walk of the whole path for each, no task of their own), once
   its subdirectories and other files are queued for every thread; the rest are tasks too. */
#define INLINE_BYTES (1024 * 1024)

static void read_dir(Node *d, uint8_t *buf) {
  int dfd = open(d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    fail("cannot open the directory", d->path, errno);
    return;
  }
  DIR *dir = fdopendir(dfd);
  if (!dir) {
    close(dfd);
    fail("cannot read the directory", d->path, errno);
    return;
  }
  size_t cap = 16, plen = strlen(d->path);
  d->kids = xmalloc(cap * sizeof *d->kids);
  struct dirent *e;
  for (;;) {
    errno = 0; /* readdir says "no more" and "failed" alike, but for errno */
    if (!(e = readdir(dir))) {
      if (errno) fail("cannot read the directory", d->path, errno);
      break;
    }
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
    size_t nl = strlen(e->d_name);
    if (!utf8((const unsigned char *)e->d_name, nl)) {
      fail("a name that is not UTF-8", d->path, 0);
      break;
    }
    if (plen + 1 + nl >= PATH_MAX) {
      fail("path too long", d->path, 0);
      break;
    }
    Node *k = calloc(1, sizeof *k);
    if (!k) {
      fail("out of memory", d->path, 0);
      break;
    }
    k->path = xmalloc(plen + 1 + nl + 1);
    memcpy(k->path, d->path, plen);
    k->path[plen] = '/';
    memcpy(k->path + plen + 1, e->d_name, nl + 1);
    k->name = k->path + plen + 1;
    k->namelen = nl;
    if (d->nkids == cap) d->kids = xrealloc(d->kids, (cap *= 2) * sizeof *d->kids);
    d->kids[d->nkids++] = k;
  }
  qsort(d->kids, d->nkids, sizeof *d->kids, by_name);
  Node **work = xmalloc((d->nkids + 1) * sizeof *work);
  Node **here = xmalloc((d->nkids + 1) * sizeof *here);
  size_t nwork = 0, nhere = 0, budget = INLINE_BYTES;
  for (size_t i = 0; i < d->nkids && !__atomic_load_n(&failed, __ATOMIC_RELAXED); i++) {
    Node *k = d->kids[i];
    struct stat st;
    if (fstatat(dfd, k->name, &st, AT_SYMLINK_NOFOLLOW)) {
      fail("cannot stat", k->path, errno);
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      k->type = 'D';
      work[nwork++] = k;
    } else if (S_ISLNK(st.st_mode)) {
      k->type = 'L';
      symlink_digest(k, dfd);
    } else if (S_ISREG(st.st_mode)) {
      k->type = 'F';
      k->size = st.st_size;
      k->msec = st.st_mtim.tv_sec;
      k->mnsec = st.st_mtim.tv_nsec;
      k->ino = st.st_ino;
      k->exec = (st.st_mode & 0100) != 0;
      const Entry *c = lookup(k->path + rootlen + 1, strlen(k->path + rootlen + 1));
      if (c && c->size == (int64_t)k->size && c->msec == k->msec && c->mnsec == k->mnsec && c->ino == k->ino && c->exec == k->exec) {
        memcpy(k->digest, c->digest, 32);
      } else if (k->size <= budget) {
        budget -= k->size;
        here[nhere++] = k;
      } else {
        work[nwork++] = k;
      }
    } else {
      fail("unsupported file type (only files, directories and symlinks can be stored)", k->path, 0);
    }
  }
  push(work, nwork);
  free(work);
  for (size_t i = 0; i < nhere && !__atomic_load_n(&failed, __ATOMIC_RELAXED); i++) hash_file(here[i], buf, dfd);
  free(here);
  closedir(dir);
}

static void *worker(void *arg) {
  (void)arg;
  uint8_t *buf = xmalloc(CHUNK);
  for (;;) {
    pthread_mutex_lock(&lock);
    while (!ntasks && pending && !failed) pthread_cond_wait(&more, &lock);
    if (failed || (!ntasks && !pending)) {
      pthread_cond_broadcast(&more);
      pthread_mutex_unlock(&lock);
      break;
    }
    Node *t = tasks[--ntasks];
    pthread_mutex_unlock(&lock);
    if (t->type == 'D') read_dir(t, buf);
    else hash_file(t, buf, -1);
    pthread_mutex_lock(&lock);
    if (--pending == 0) pthread_cond_broadcast(&more);
    pthread_mutex_unlock(&lock);
  }
  free(buf);
  return NULL;
}

/* ---- digests of directories, totals, and the cache written back ----------------------------- */

static uint64_t total_size, file_count;

static void dir_digest(Node *d) {
  size_t len = 1;
  for (size_t i = 0; i < d->nkids; i++) {
    Node *k = d->kids[i];
    if (k->type == 'D') dir_digest(k);
    else {
      total_size += k->size;
      if (k->type == 'F') file_count++;
    }
    len += 4 + k->namelen + 32;
  }
  uint8_t *b = xmalloc(len), *p = b;
  *p++ = 'D';
  for (size_t i = 0; i < d->nkids; i++) {
    Node *k = d->kids[i];
    uint32_t n = (uint32_t)k->namelen;
    *p++ = n >> 24, *p++ = n >> 16, *p++ = n >> 8, *p++ = n;
    memcpy(p, k->name, k->namelen);
    p += k->namelen;
    memcpy(p, k->digest, 32);
    p += 32;
  }
  blake3_of(b, len, d->digest);
  free(b);
}

typedef struct {
  uint8_t *b;
  size_t len, cap;
} Buf;

static void put(Buf *o, const void *p, size_t n) {
  if (o->len + n > o->cap) o->b = xrealloc(o->b, o->cap = (o->len + n) * 2);
  memcpy(o->b + o->len, p, n);
  o->len += n;
}

/* when the walk began: files modified in the two seconds before it (or since) are not cached,
   as in store/archive.ts (RACY_MS): a rewrite within the same tick of the file's clock could keep
   the size and time its digest would be kept under */
static struct timespec started;

static void put_files(Buf *o, Node *d, uint64_t *count) {
  for (size_t i = 0; i < d->nkids; i++) {
    Node *k = d->kids[i];
    if (k->type == 'D') put_files(o, k, count);
    if (k->type != 'F') continue;
    if (k->msec > started.tv_sec - 2 || (k->msec == started.tv_sec - 2 && k->mnsec >= started.tv_nsec)) continue;
    const char *rel = k->path + rootlen + 1;
    uint16_t pl = (uint16_t)strlen(rel);
    int64_t v[4] = { (int64_t)k->size, k->msec, k->mnsec, (int64_t)k->ino };
    put(o, &pl, 2);
    put(o, rel, pl);
    put(o, v, sizeof v);
    put(o, &k->exec, 4);
    put(o, k->digest, 32);
    (*count)++;
  }
}

static void save_cache(const char *file, const char *root, Node *top) {
  Buf o = { 0 };
  uint32_t rl = (uint32_t)strlen(root);
  uint64_t count = 0;
  put(&o, "KILNTHC2", 8);
  put(&o, &rl, 4);
  put(&o, root, rl);
  size_t count_at = o.len;
  put(&o, &count, 8);
  put_files(&o, top, &count);
  memcpy(o.b + count_at, &count, 8);
  uint8_t sum[32];
  blake3_of(o.b, o.len, sum);
  put(&o, sum, 32);
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", file, (long)getpid()) >= (int)sizeof tmp) return;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return; /* a cache not written costs the next run its reads, nothing else */
  size_t done = 0;
  while (done < o.len) {
    ssize_t n = write(fd, o.b + done, o.len - done);
    if (n <= 0) break;
    done += n;
  }
  if (close(fd) || done != o.len || rename(tmp, file)) unlink(tmp);
  free(o.b);
}

int main(int argc, char **argv) {
  const char *cache = NULL, *root = NULL;
  int threads = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--cache") && i + 1 < argc) cache = argv[++i];
    else if (!root && argv[i][0] != '-') root = argv[i];
    else {
      fprintf(stderr, "usage: kiln-hash [--threads N] [--cache FILE] ROOT\n");
      return 2;
    }
  }
  if (!root) {
    fprintf(stderr, "usage: kiln-hash [--threads N] [--cache FILE] ROOT\n");
    return 2;
  }
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  rootlen = strlen(root);
  while (rootlen > 1 && root[rootlen - 1] == '/') rootlen--;
  char *top_path = strndup(root, rootlen);
  struct stat st;
  if (!top_path || lstat(top_path, &st) || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "kiln-hash: %s: not a directory\n", root);
    return 1;
  }
  clock_gettime(CLOCK_REALTIME, &started);
  if (cache) load_cache(cache, top_path);
  Node top = { .path = top_path, .name = top_path, .namelen = rootlen, .type = 'D' };
  Node *first = &top;
  push(&first, 1);
  pthread_t tid[MAX_THREADS];
  int spawned = 0;
  for (int i = 1; i < threads; i++) {
    if (pthread_create(&tid[i], NULL, worker, NULL)) break;
    spawned++;
  }
  worker(NULL);
  for (int i = 1; i <= spawned; i++) pthread_join(tid[i], NULL);
  if (failed) {
    fprintf(stderr, "kiln-hash: %s\n", failure);
    return 1;
  }
  dir_digest(&top);
  if (cache && (read_count || file_count != cached_count)) save_cache(cache, top_path, &top);
  /* used: `kiln gc` removes the caches of trees not hashed for a month (store/digest-cache.ts) */
  else if (cache && tablecap) utimensat(AT_FDCWD, cache, NULL, 0);
  for (int i = 0; i < 32; i++) printf("%02x", top.digest[i]);
  printf(" %llu %llu %llu\n", (unsigned long long)total_size, (unsigned long long)file_count, (unsigned long long)read_count);
  return 0;
}
