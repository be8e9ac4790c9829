/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — the operating system: mmap, munmap, mremap, madvise, membarrier, clocks, sysconf,
 * and the SIGSEGV hook of debug heaps' guard pages.
 *
 * This is the only file that makes system calls. Everything is rounded to the run-time OS page
 * size (_sf_page_size, from sysconf); callers pass page multiples. Aligned reservations are
 * made by over-mapping and trimming, so the result is aligned to `align` exactly. Failures
 * are reported as NULL/false and never abort.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "internal.h"

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
/* From linux/membarrier.h, spelled out so old headers do not matter. */
#define SF_MEMBARRIER_CMD_PRIVATE_EXPEDITED (1 << 3)
#define SF_MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)

size_t _sf_page_size = 4096;

void _sf_os_init(void) {
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) _sf_page_size = (size_t)ps;
}

void _sf_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "segfit: assertion failed: %s (%s:%d)\n", expr, file, line);
  abort();
}

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

void *_sf_os_reserve(size_t size, size_t align, bool populate, bool huge) {
  if (align < _sf_page_size) align = _sf_page_size;
  size = round_up(size, _sf_page_size);
  size_t over = size + align - _sf_page_size;
  if (over < size) return NULL;
  void *p = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return NULL;
  uintptr_t a = (uintptr_t)p, aligned = (a + align - 1) & ~(uintptr_t)(align - 1);
  if (aligned > a) munmap(p, aligned - a);
  size_t tail = (a + over) - (aligned + size);
  if (tail > 0) munmap((void *)(aligned + size), tail);
  if (aligned + size > ((uintptr_t)1 << SF_VA_BITS)) {   /* beyond the segment map */
    munmap((void *)aligned, size);
    return NULL;
  }
  if (huge) madvise((void *)aligned, size, MADV_HUGEPAGE);
  if (populate) {
    void *q = mmap((void *)aligned, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE, -1, 0);
    if (q == MAP_FAILED) {
      munmap((void *)aligned, size);
      return NULL;
    }
    if (huge) madvise((void *)aligned, size, MADV_HUGEPAGE);
  }
  return (void *)aligned;
}

void _sf_os_unmap(void *p, size_t size) {
  if (p != NULL && size > 0) munmap(p, round_up(size, _sf_page_size));
}

void *_sf_os_remap(void *p, size_t old_size, size_t new_size) {
  void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE);
  if (q == MAP_FAILED) return NULL;
  if ((uintptr_t)q + new_size > ((uintptr_t)1 << SF_VA_BITS)) {
    /* Keep the invariant that every block lies below the map's limit: move it back. */
    void *r = mremap(q, new_size, old_size, MREMAP_MAYMOVE);
    (void)r;
    return NULL;
  }
  return q;
}

void _sf_os_purge(void *p, size_t size) {
  madvise(p, size, MADV_DONTNEED);
}

void _sf_os_huge(void *p, size_t size) {
  madvise(p, size, MADV_HUGEPAGE);
}

bool _sf_os_protect_none(void *p, size_t size) {
  return mprotect(p, size, PROT_NONE) == 0;
}

void *_sf_os_meta_alloc(size_t size) {
  size = round_up(size, _sf_page_size);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void _sf_os_meta_free(void *p, size_t size) {
  if (p != NULL) munmap(p, round_up(size, _sf_page_size));
}

uint64_t _sf_os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool _sf_os_membarrier_register(void) {
#ifdef SYS_membarrier
  return syscall(SYS_membarrier, SF_MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
  return false;
#endif
}

void _sf_os_membarrier(void) {
#ifdef SYS_membarrier
  if (!_sf_use_fence) {
    if (syscall(SYS_membarrier, SF_MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
    /* Cannot happen once registered; stay correct anyway: owners see no fence, so fail loudly
       in debug builds and fall back to a local fence. */
    sf_assert(!"membarrier failed after registration");
  }
#endif
  atomic_thread_fence(memory_order_seq_cst);
}

void _sf_os_yield(void) { sched_yield(); }

void _sf_os_sleep_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* The SIGSEGV hook. It runs first and then hands the signal, untouched, to the handler that was
   there before (the JVM's, which tells its own faults -- null checks, safepoint polls, stack
   banging -- from real crashes), or restores the default action so the faulting instruction
   faults again and the process dies as it would have. */
static void (*sf_segv_fn)(uintptr_t addr, int is_write);
static struct sigaction sf_segv_prev;

static void sf_segv(int sig, siginfo_t *info, void *ctx) {
  int saved = errno;
  int is_write = -1;
#if defined(__x86_64__)
  is_write = (((ucontext_t *)ctx)->uc_mcontext.gregs[REG_ERR] & 2) != 0;  /* page-fault W bit */
#endif
  if (info->si_code == SEGV_ACCERR) sf_segv_fn((uintptr_t)info->si_addr, is_write);
  errno = saved;
  if (sf_segv_prev.sa_flags & SA_SIGINFO) {
    sf_segv_prev.sa_sigaction(sig, info, ctx);
  } else if (sf_segv_prev.sa_handler != SIG_DFL && sf_segv_prev.sa_handler != SIG_IGN) {
    sf_segv_prev.sa_handler(sig);
  } else {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
  }
}

bool _sf_os_on_segv(void (*fn)(uintptr_t addr, int is_write)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = sf_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sf_segv_fn = fn;
  return sigaction(SIGSEGV, &sa, &sf_segv_prev) == 0;
}

void _sf_os_write_err(const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}
