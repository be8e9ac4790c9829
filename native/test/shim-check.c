/* SPDX-License-Identifier: Apache-2.0 */
/* shim: the malloc shim as the process allocator (run with LD_PRELOAD=libsegfit-malloc.so).
 *
 * Checks that malloc really resolves into the shim, then the malloc family's contract as glibc
 * programs rely on it: malloc(0), overflow and impossible sizes (NULL + ENOMEM), calloc zeroing
 * reused memory, realloc keeping contents across classes and into large blocks, realloc(p, 0),
 * posix_memalign/aligned_alloc/memalign/valloc/pvalloc alignment and their EINVAL cases,
 * malloc_usable_size; that frees of pointers the shim never handed out (static, stack, interior,
 * mmap) are ignored without harm; that realloc of such a pointer copies what it can; that
 * blocks cross threads; that dlopen (the loader allocating through the shim) works; and that
 * fork works, also while other threads allocate ("fork N"), the child allocating and freeing
 * (blocks of its parent too) and dying of SIGALRM if it hangs.
 * Uses only libc and testhelper.h's checks: the segfit API inside the shim is not exported.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testhelper.h"

/* Opaque calls: the compiler may not fold malloc semantics it knows into constants. */
static void *(*volatile p_malloc)(size_t) = malloc;
static void *(*volatile p_calloc)(size_t, size_t) = calloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;
static void (*volatile p_free)(void *) = free;
static void *(*volatile p_reallocarray)(void *, size_t, size_t) = reallocarray;

static void check_resolved(void) {
  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, "malloc");
  CHECK(sym != NULL);
  CHECK(dladdr(sym, &info) != 0 && info.dli_fname != NULL);
  if (strstr(info.dli_fname, "segfit-malloc") == NULL) {
    fprintf(stderr, "malloc resolves to %s, not the shim: run with LD_PRELOAD\n", info.dli_fname);
    exit(1);
  }
  /* The shim exports the malloc family only, never the segfit API. */
  CHECK(dlsym(RTLD_DEFAULT, "segfit_alloc") == NULL);
}

static void check_basics(void) {
  void *a = p_malloc(0), *b = p_malloc(0);
  CHECK(a != NULL && b != NULL && a != b);
  p_free(a);
  p_free(b);
  p_free(NULL);
  errno = 0;
  CHECK(p_malloc(SIZE_MAX) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(p_malloc(PTRDIFF_MAX) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(p_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
  /* calloc on reused memory: dirty a block of each size, free it, calloc the same size. */
  for (size_t n = 8; n <= ((size_t)2 << 20); n = n * 3 + 5) {
    for (int k = 0; k < 4; k++) {
      unsigned char *d = p_malloc(n);
      CHECK(d != NULL);
      memset(d, 0xEE, n);
      p_free(d);
    }
    unsigned char *z = p_calloc(1, n);
    CHECK(z != NULL);
    for (size_t i = 0; i < n; i++) CHECK(z[i] == 0);
    CHECK(malloc_usable_size(z) >= n);
    p_free(z);
  }
  CHECK(malloc_usable_size(NULL) == 0);
}

static void check_realloc(void) {
  unsigned char *p = p_realloc(NULL, 10);
  CHECK(p != NULL);
  size_t size = 10;
  for (size_t i = 0; i < size; i++) p[i] = (unsigned char)(i * 7 + i / 251);
  for (size_t n = 17; n < ((size_t)48 << 20); n = n * 5 / 2 + 3) {   /* up into large blocks */
    p = p_realloc(p, n);
    CHECK(p != NULL);
    for (size_t i = 0; i < size; i += (size > 100000 ? 4093 : 1))
      CHECK(p[i] == (unsigned char)(i * 7 + i / 251));
    for (size_t i = size; i < n; i++) p[i] = (unsigned char)(i * 7 + i / 251);
    size = n;
  }
  p = p_realloc(p, 100);   /* shrink from large to small */
  CHECK(p != NULL);
  for (size_t i = 0; i < 100; i++) CHECK(p[i] == (unsigned char)(i * 7 + i / 251));
  errno = 0;
  CHECK(p_realloc(p, SIZE_MAX) == NULL && errno == ENOMEM);
  CHECK(p[50] == (unsigned char)(50 * 7));   /* a failed realloc keeps the block */
  CHECK(p_realloc(p, 0) == NULL);             /* glibc: frees and returns NULL */
  void *q = p_reallocarray(NULL, 10, 10);
  CHECK(q != NULL);
  errno = 0;
  CHECK(p_reallocarray(q, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
  p_free(q);
}

static void check_aligned(void) {
  for (size_t a = sizeof(void *); a <= ((size_t)4 << 20); a *= 2) {
    void *p = NULL;
    CHECK(posix_memalign(&p, a, 100 + a / 3) == 0);
    CHECK(p != NULL && (uintptr_t)p % a == 0);
    memset(p, 1, 100 + a / 3);
    p_free(p);
    p = aligned_alloc(a, a * 2);
    CHECK(p != NULL && (uintptr_t)p % a == 0);
    p_free(p);
  }
  void *p = (void *)1;
  errno = 1234;
  CHECK(posix_memalign(&p, 24, 10) == EINVAL && p == (void *)1);
  CHECK(posix_memalign(&p, 0, 10) == EINVAL);
  CHECK(posix_memalign(&p, sizeof(void *) / 2, 10) == EINVAL);
  CHECK(posix_memalign(&p, 64, SIZE_MAX / 2) == ENOMEM);
  CHECK(errno == 1234);   /* posix_memalign reports through its result only */
  errno = 0;
  CHECK(aligned_alloc(48, 96) == NULL && errno == EINVAL);
  p = memalign(48, 10);   /* glibc rounds the alignment up to 64 */
  CHECK(p != NULL && (uintptr_t)p % 64 == 0);
  p_free(p);
  long page = sysconf(_SC_PAGESIZE);
  p = valloc(10);
  CHECK(p != NULL && (uintptr_t)p % (uintptr_t)page == 0);
  p_free(p);
  p = pvalloc(1);
  CHECK(p != NULL && (uintptr_t)p % (uintptr_t)page == 0 && malloc_usable_size(p) >= (size_t)page);
  p_free(p);
}

static void check_foreign(void) {
  static char buffer[256] = "static contents";
  char stack[64];
  p_free(buffer + 16);
  p_free(stack + 16);
  void *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(m != MAP_FAILED);
  p_free((char *)m + 4096);
  munmap(m, 65536);
  /* Interior pointer of a live block: ignored, the block stays usable. */
  char *live = p_malloc(200);
  CHECK(live != NULL);
  memset(live, 'x', 200);
  p_free(live + 32);
  CHECK(live[199] == 'x' && malloc_usable_size(live) >= 200);
  CHECK(malloc_usable_size(buffer) == 0);
  /* realloc of a block the shim never saw: a new block with the old contents. */
  char *moved = p_realloc(buffer, 64);
  CHECK(moved != NULL && moved != buffer && strcmp(moved, "static contents") == 0);
  p_free(moved);
  p_free(live);
}

static void *free_twice(void *arg) {
  p_free(arg);
  p_free(arg);
  return NULL;
}

/* A double free reaches the checked free whether the owner (free_twice_fn NULL) or another
 * thread makes it: strict mode aborts. In a child, so that the test goes on. */
static void check_double_free_aborts(void *(*free_twice_fn)(void *)) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    alarm(10);
    void *p = p_malloc(40);
    if (free_twice_fn == NULL) {
      free_twice(p);
    } else {
      pthread_t t;
      if (pthread_create(&t, NULL, free_twice_fn, p) != 0) _exit(3);
      pthread_join(t, NULL);
    }
    _exit(0);
  }
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

/* free leaves errno alone whichever path takes the pointer: a block (the core's fast path),
 * NULL, a foreign or an interior pointer (the guarded path, which ignores them). */
static void check_free_errors(void) {
  static char foreign[32];
  char *p = p_malloc(40), *q = p_malloc(40);
  CHECK(p != NULL && q != NULL);
  void *ptrs[] = {p, NULL, foreign + 8, q + 8, q};
  for (unsigned i = 0; i < sizeof ptrs / sizeof *ptrs; i++) {
    errno = 4321;
    p_free(ptrs[i]);
    CHECK(errno == 4321);
  }
  const char *strict = getenv("SEGFIT_SHIM_STRICT");
  if (strict != NULL && strcmp(strict, "1") == 0) {
    check_double_free_aborts(NULL);
    check_double_free_aborts(free_twice);
  }
}

static void *strdup_many(void *arg) {
  char **out = arg;
  for (int i = 0; i < 1000; i++) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "thread string %d", i);
    out[i] = strdup(tmp);
    CHECK(out[i] != NULL);
  }
  return NULL;
}

static void check_threads(void) {
  static char *strings[4][1000];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, strdup_many, strings[i]) == 0);
  for (int i = 0; i < 4; i++) CHECK(pthread_join(t[i], NULL) == 0);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 1000; j++) {
      char tmp[32];
      snprintf(tmp, sizeof tmp, "thread string %d", j);
      CHECK(strcmp(strings[i][j], tmp) == 0);
      p_free(strings[i][j]);   /* freed by another thread than the one that allocated */
    }
}

static void check_dlopen(void) {
  /* The loader allocates its link maps and scopes through the shim. */
  const char *libs[] = {"libz.so.1", "libm.so.6", "libresolv.so.2"};
  for (unsigned i = 0; i < sizeof libs / sizeof *libs; i++) {
    void *h = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) continue;
    CHECK(dlclose(h) == 0);
  }
  CHECK(dlopen("libdoes-not-exist-segfit.so", RTLD_NOW) == NULL && dlerror() != NULL);
}

/* --- fork ------------------------------------------------------------------------------------ */
static atomic_int g_stop;

static void *churn(void *arg) {
  (void)arg;
  void *keep[64] = {0};
  for (unsigned i = 0; !atomic_load(&g_stop); i++) {
    unsigned k = i % 64;
    p_free(keep[k]);
    keep[k] = p_malloc(16 + (i * 37) % 4000);
    if (i % 97 == 0) {   /* a large block now and then: large-block table and mmap paths */
      void *big = p_malloc((size_t)2 << 20);
      p_free(big);
    }
  }
  for (int k = 0; k < 64; k++) p_free(keep[k]);
  return NULL;
}

static void child_work(char **inherited, int n) {
  alarm(10);   /* a deadlocked child dies (SIGALRM) instead of hanging the test */
  for (int i = 0; i < n; i++) p_free(inherited[i]);   /* blocks the parent allocated */
  void *blocks[1000];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 1000; i++) {
      blocks[i] = p_malloc(16 + (size_t)i * 13);
      if (blocks[i] == NULL) _exit(3);
      memset(blocks[i], i, 16);
    }
    for (int i = 0; i < 1000; i++) p_free(blocks[i]);
  }
  void *big = p_realloc(p_malloc((size_t)3 << 20), (size_t)9 << 20);
  if (big == NULL) _exit(4);
  p_free(big);
  _exit(0);
}

static void fork_and_wait(char **inherited, int n) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) child_work(inherited, n);
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "fork child failed: %s %d\n", WIFSIGNALED(status) ? "signal" : "exit",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    exit(1);
  }
}

/* forks == 0: one fork of a single-threaded parent; else that many forks while three other
 * threads allocate and free (a lock or handshake held at fork must not hang the child). */
static void check_fork(int forks) {
  char *inherited[100];
  for (int i = 0; i < 100; i++) CHECK((inherited[i] = strdup("parent block")) != NULL);
  if (forks == 0) {
    fork_and_wait(inherited, 100);
    for (int i = 0; i < 100; i++) p_free(inherited[i]);
    return;
  }
  pthread_t t[3];
  atomic_store(&g_stop, 0);
  for (int i = 0; i < 3; i++) CHECK(pthread_create(&t[i], NULL, churn, NULL) == 0);
  for (int i = 0; i < forks; i++) fork_and_wait(inherited, 100);   /* others busy allocating */
  atomic_store(&g_stop, 1);
  for (int i = 0; i < 3; i++) CHECK(pthread_join(t[i], NULL) == 0);
  for (int i = 0; i < 100; i++) CHECK(strcmp(inherited[i], "parent block") == 0);
  for (int i = 0; i < 100; i++) p_free(inherited[i]);
}

/* shim-check            the malloc family's contract, foreign pointers, threads, dlopen, and a
 *                       fork of a single-threaded process (shim)
 * shim-check fork N     N forks while other threads allocate (shim-fork) */
int main(int argc, char **argv) {
  check_resolved();
  if (argc == 3 && strcmp(argv[1], "fork") == 0) {
    int forks = atoi(argv[2]);
    CHECK(forks > 0);
    check_fork(forks);
    printf("shim-fork: ok (%d forks under load)\n", forks);
    return 0;
  }
  CHECK(argc == 1);
  check_basics();
  check_realloc();
  check_aligned();
  check_foreign();
  check_free_errors();
  check_threads();
  check_dlopen();
  check_fork(0);
  printf("shim: ok\n");
  return 0;
}
