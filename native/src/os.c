/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — the operating system: mmap, munmap, mremap, madvise, membarrier, clocks, sysconf,
 * and the SIGSEGV hook of debug heaps' guard pages.
 *
 * This is the only file that makes system calls. Everything is rounded to the run-time OS page
 * size (_sf_page_size, from sysconf); callers pass page multiples. Aligned reservations are
 * made by over-mapping and trimming, so the result is aligned to `align` exactly. Failures
 * are reported as NULL/false and never abort. An unmap cannot fail for the caller: a range the
 * OS would not unmap is kept here and unmapped later (see "ranges the OS would not unmap").
 * Test builds (SEGFIT_FAULTS) make the five memory calls fail on a schedule (faults.h).
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
#ifdef SEGFIT_FAULTS
#include "faults.h"
#define SF_FAULT(op) _sf_fault(SF_FAULT_##op)
#else
#define SF_FAULT(op) false
#endif

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

/* --- the memory calls ------------------------------------------------------------------------
   Every mmap, munmap, mremap, madvise and membarrier of the library goes through these; test
   builds may make one fail with ENOMEM, as the kernel does at RLIMIT_AS or vm.max_map_count. */
static void *sf_mmap(void *addr, size_t len, int flags) {
  if (SF_FAULT(MMAP)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return mmap(addr, len, PROT_READ | PROT_WRITE, flags, -1, 0);
}

static int sf_munmap(void *p, size_t len) {
  if (SF_FAULT(MUNMAP)) {
    errno = ENOMEM;
    return -1;
  }
  return munmap(p, len);
}

static void *sf_mremap(void *p, size_t old_size, size_t new_size) {
  if (SF_FAULT(MREMAP)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
#if SF_TSAN
  /* ThreadSanitizer does not intercept mremap: a range it moves keeps the access history of
     whatever was mapped there before, and the next thread to use it is reported as racing
     with that. Under TSan a move is a new mapping, a copy and an unmap, which it follows. */
  if (new_size <= old_size) {
    if (new_size < old_size) munmap((uint8_t *)p + new_size, old_size - new_size);
    return p;
  }
  void *q = mmap(NULL, new_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q == MAP_FAILED) return MAP_FAILED;
  memcpy(q, p, old_size);
  munmap(p, old_size);
  return q;
#else
  return mremap(p, old_size, new_size, MREMAP_MAYMOVE);
#endif
}

static int sf_madvise(void *p, size_t len, int advice) {
  if (SF_FAULT(MADVISE)) {
    errno = ENOMEM;
    return -1;
  }
  return madvise(p, len, advice);
}

static long sf_membarrier(int cmd) {
#ifdef SYS_membarrier
  if (SF_FAULT(MEMBARRIER)) {
    errno = ENOMEM;
    return -1;
  }
  return syscall(SYS_membarrier, cmd, 0, 0);
#else
  (void)cmd;
  errno = ENOSYS;
  return -1;
#endif
}

/* --- ranges the OS would not unmap -----------------------------------------------------------
   munmap fails (ENOMEM) when it must split a mapping and the process already has
   vm.max_map_count of them: segfit's mappings merge with their neighbours, so freeing one block
   among many splits one. Such a range must not leak: it is released with MADV_DONTNEED (which
   never splits, so it holds no memory from then on) and kept in a table, to be unmapped by
   _sf_os_unmap_retry (every purger tick and trim) once the OS agrees. The table is reserved at
   init (MAP_NORESERVE: no memory until used), because when it is needed a new mapping may be
   what the OS refuses. Only if it is full or missing is a range left mapped for good, released
   and counted (sf_unmap_lost_bytes, which tests require to stay zero). */
typedef struct sf_range_s { uintptr_t addr; size_t size; } sf_range_t;
#define SF_PENDING_MAX ((size_t)1 << 18)
static pthread_mutex_t sf_pending_lock = PTHREAD_MUTEX_INITIALIZER;
static sf_range_t *sf_pending;                   /* SF_PENDING_MAX entries, or NULL */
static size_t sf_pending_count, sf_pending_bytes; /* sf_pending_lock */
static _Atomic(size_t) sf_pending_any;           /* sf_pending_count, for a lock-free look */
static uint64_t sf_unmap_lost_bytes;             /* sf_pending_lock */

static void sf_unmap(void *p, size_t size) {
  if (sf_munmap(p, size) == 0) return;
  sf_madvise(p, size, MADV_DONTNEED);   /* if even this fails, the retry's munmap frees it */
  pthread_mutex_lock(&sf_pending_lock);
  if (sf_pending != NULL && sf_pending_count < SF_PENDING_MAX) {
    sf_pending[sf_pending_count++] = (sf_range_t){(uintptr_t)p, size};
    sf_pending_bytes += size;
    atomic_store_explicit(&sf_pending_any, sf_pending_count, memory_order_relaxed);
  } else {
    sf_unmap_lost_bytes += size;
  }
  pthread_mutex_unlock(&sf_pending_lock);
}

void _sf_os_unmap_retry(void) {
  if (atomic_load_explicit(&sf_pending_any, memory_order_relaxed) == 0) return;
  pthread_mutex_lock(&sf_pending_lock);
  /* Newest first; the first refusal ends the pass (the OS is still at its limit: the others
     would be refused too, and the next tick tries again). */
  while (sf_pending_count > 0) {
    sf_range_t *r = &sf_pending[sf_pending_count - 1];
    if (sf_munmap((void *)r->addr, r->size) != 0) break;
    sf_pending_bytes -= r->size;
    sf_pending_count--;
  }
  atomic_store_explicit(&sf_pending_any, sf_pending_count, memory_order_relaxed);
  pthread_mutex_unlock(&sf_pending_lock);
}

size_t _sf_os_unmap_pending(size_t *bytes, uint64_t *lost_bytes) {
  pthread_mutex_lock(&sf_pending_lock);
  size_t n = sf_pending_count;
  if (bytes != NULL) *bytes = sf_pending_bytes;
  if (lost_bytes != NULL) *lost_bytes = sf_unmap_lost_bytes;
  pthread_mutex_unlock(&sf_pending_lock);
  return n;
}

void _sf_os_fork_lock(void) { pthread_mutex_lock(&sf_pending_lock); }
void _sf_os_fork_unlock(void) { pthread_mutex_unlock(&sf_pending_lock); }

void _sf_os_init(void) {
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) _sf_page_size = (size_t)ps;
#ifdef SEGFIT_FAULTS
  _sf_fault_init_env();   /* before the first mapping, so a plan sees every call */
#endif
  void *t = sf_mmap(NULL, SF_PENDING_MAX * sizeof(sf_range_t),
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  sf_pending = t == MAP_FAILED ? NULL : t;
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
  void *p = sf_mmap(NULL, over, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  if (p == MAP_FAILED) return NULL;
  uintptr_t a = (uintptr_t)p, aligned = (a + align - 1) & ~(uintptr_t)(align - 1);
  if (aligned > a) sf_unmap(p, aligned - a);
  size_t tail = (a + over) - (aligned + size);
  if (tail > 0) sf_unmap((void *)(aligned + size), tail);
  if (aligned + size > ((uintptr_t)1 << SF_VA_BITS)) {   /* beyond the segment map */
    sf_unmap((void *)aligned, size);
    return NULL;
  }
  if (huge) sf_madvise((void *)aligned, size, MADV_HUGEPAGE);   /* a hint: failure is harmless */
  if (populate) {
    void *q = sf_mmap((void *)aligned, size,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE);
    if (q == MAP_FAILED) {
      sf_unmap((void *)aligned, size);
      return NULL;
    }
    if (huge) sf_madvise((void *)aligned, size, MADV_HUGEPAGE);
  }
  return (void *)aligned;
}

/* A range that may hold faulted pages goes back in two steps: its pages are freed in pieces
   of this size with MADV_DONTNEED, then the empty range is unmapped. Freeing the pages is most
   of the work (4 ms for 64 MiB of 4 KiB pages), and munmap holds the address space's lock for
   writing while it does it, so that every thread that maps, remaps or unmaps meanwhile waits
   for all of it: the purger's unmap of a kept mapping stalled a realloc's mremap by
   milliseconds. madvise takes the lock for reading, one piece at a time, and a writer waiting
   on the lock goes before the next piece. */
#define SF_RELEASE_PIECE ((size_t)2 << 20)

void _sf_os_unmap(void *p, size_t size) {
  if (p == NULL || size == 0) return;
  size = round_up(size, _sf_page_size);
  for (size_t off = 0; size > SF_RELEASE_PIECE && off < size; off += SF_RELEASE_PIECE) {
    size_t n = size - off < SF_RELEASE_PIECE ? size - off : SF_RELEASE_PIECE;
    sf_madvise((uint8_t *)p + off, n, MADV_DONTNEED);   /* failed: munmap frees them */
  }
  sf_unmap(p, size);
}

void _sf_os_unreserve(void *p, size_t size) {
  if (p != NULL && size > 0) sf_unmap(p, round_up(size, _sf_page_size));
}

void *_sf_os_remap(void *p, size_t old_size, size_t new_size) {
  void *q = sf_mremap(p, old_size, new_size);
  if (q == MAP_FAILED) return NULL;
  if ((uintptr_t)q + new_size > ((uintptr_t)1 << SF_VA_BITS)) {
    /* Keep the invariant that every block lies below the map's limit: move it back. */
    void *r = sf_mremap(q, new_size, old_size);
    (void)r;
    return NULL;
  }
  return q;
}

bool _sf_os_purge(void *p, size_t size) {
  return sf_madvise(p, size, MADV_DONTNEED) == 0;
}

void _sf_os_huge(void *p, size_t size) {
  sf_madvise(p, size, MADV_HUGEPAGE);
}

bool _sf_os_protect_none(void *p, size_t size) {
  return mprotect(p, size, PROT_NONE) == 0;
}

void *_sf_os_meta_alloc(size_t size) {
  size = round_up(size, _sf_page_size);
  void *p = sf_mmap(NULL, size, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  return p == MAP_FAILED ? NULL : p;
}

void _sf_os_meta_free(void *p, size_t size) {
  if (p != NULL) sf_unmap(p, round_up(size, _sf_page_size));
}

uint64_t _sf_os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool _sf_os_membarrier_register(void) {
  return sf_membarrier(SF_MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

bool _sf_os_membarrier(void) {
  atomic_thread_fence(memory_order_seq_cst);
  if (_sf_use_fence) return true;   /* the owners fence themselves */
  /* Registered, it can still fail: the kernel allocates a CPU mask for it (ENOMEM). Then the
     owners were not fenced, and the caller must not rely on what it reads of them. */
  return sf_membarrier(SF_MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0;
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
