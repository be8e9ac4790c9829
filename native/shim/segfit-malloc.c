/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — test-only malloc shim (libsegfit-malloc.so, used with LD_PRELOAD; never in the jar).
 *
 * Makes the core the process allocator so real programs (python, sort, gcc) run on it: every
 * call of the malloc family goes to segfit_default_heap(). Three kinds of pointer reach free():
 * segfit blocks (released by the checked free); blocks of the shim's bootstrap arena, handed to
 * calls that re-enter the shim while the same thread is inside the core (the core calling into
 * libc, which may call malloc); and foreign pointers, e.g. from the dynamic loader's minimal
 * malloc before the shim took over. The checked free reports foreign pointers as NOT_A_BLOCK and
 * the shim leaks them rather than crash. Bootstrap blocks are never reused.
 *
 * Environment: SEGFIT_SHIM_STRICT=1 aborts on a double free or a corrupted block (as glibc
 * does) instead of ignoring it; SEGFIT_SHIM_REPORT=<file> appends one line of counters to the
 * file when the process exits (the preload tests use it to prove the shim was in use).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "segfit.h"

#define SHIM_EXPORT __attribute__((visibility("default")))
#define SHIM_LIKELY(x) __builtin_expect(!!(x), 1)
#define SHIM_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Non-zero while this thread is inside the core. Initial-exec is right here: the shim is only
 * ever loaded at start-up (LD_PRELOAD or a direct link), so its TLS is in the static block.
 * So is the core's TLS word, which the unguarded fast path below reads at its offset from the
 * thread pointer on x86-64 and aarch64 (a TLS word the core's probe could not place goes to the
 * guarded path), and through its descriptor elsewhere: a static descriptor never allocates. */
static __thread int t_busy __attribute__((tls_model("initial-exec")));

static _Atomic(segfit_heap_t *) g_heap;
static int g_strict;
static const char *g_report;
static atomic_uint_fast64_t g_foreign_frees, g_ignored_frees, g_boot_allocs;

/* ---------------------------------------------------------------------------------------------
 * Bootstrap arena: a bump allocator in .bss (untouched pages cost nothing) for re-entrant calls.
 * ------------------------------------------------------------------------------------------- */
#define BOOT_SIZE ((size_t)4 << 20)
#define BOOT_HEADER 16

static char g_boot[BOOT_SIZE] __attribute__((aligned(4096)));
static atomic_size_t g_boot_used;

static int boot_owns(const void *p) {
  return (const char *)p >= g_boot && (const char *)p < g_boot + BOOT_SIZE;
}

/* Blocks carry their requested size in the 16 bytes before them (for realloc/usable size). */
static void *boot_alloc(size_t size, size_t alignment) {
  if (alignment < BOOT_HEADER) alignment = BOOT_HEADER;
  if (size > BOOT_SIZE || alignment > BOOT_SIZE / 2) goto fail;
  size_t need = (size + BOOT_HEADER + 15) & ~(size_t)15;
  size_t old = atomic_load_explicit(&g_boot_used, memory_order_relaxed);
  size_t start, end;
  do {
    start = ((old + BOOT_HEADER + alignment - 1) & ~(alignment - 1)) - BOOT_HEADER;
    end = start + need;
    if (end > BOOT_SIZE) goto fail;
  } while (!atomic_compare_exchange_weak_explicit(&g_boot_used, &old, end, memory_order_relaxed,
                                                  memory_order_relaxed));
  atomic_fetch_add_explicit(&g_boot_allocs, 1, memory_order_relaxed);
  char *block = g_boot + start + BOOT_HEADER;
  memcpy(block - BOOT_HEADER, &size, sizeof size);
  return block;
fail:
  errno = ENOMEM;
  return NULL;
}

static size_t boot_size(const void *p) {
  size_t size;
  memcpy(&size, (const char *)p - BOOT_HEADER, sizeof size);
  return size;
}

/* ---------------------------------------------------------------------------------------------
 * Initialisation and helpers
 * ------------------------------------------------------------------------------------------- */
static segfit_heap_t *heap_init(void) {
  /* Called with t_busy set: whatever libc allocates meanwhile comes from the bootstrap arena. */
  const char *strict = getenv("SEGFIT_SHIM_STRICT");
  g_strict = strict != NULL && strict[0] == '1';
  g_report = getenv("SEGFIT_SHIM_REPORT");
  segfit_heap_t *heap = segfit_default_heap();
  if (heap == NULL) {
    static const char msg[] = "segfit-malloc: cannot create the default heap\n";
    (void)!write(2, msg, sizeof msg - 1);
    abort();
  }
  atomic_store_explicit(&g_heap, heap, memory_order_release);
  return heap;
}

static inline segfit_heap_t *heap_get(void) {
  segfit_heap_t *heap = atomic_load_explicit(&g_heap, memory_order_acquire);
  return SHIM_LIKELY(heap != NULL) ? heap : heap_init();
}

static size_t page_size(void) {
  static size_t page;
  if (page == 0) page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

/* Copies up to n bytes from a foreign block of unknown size: as much as is readable, at least
 * the rest of the page src starts in (which holds src, so it is mapped). */
static void copy_foreign(void *dst, const void *src, size_t n) {
  size_t page = page_size();
  size_t first = page - ((uintptr_t)src & (page - 1));
  size_t done = first < n ? first : n;
  memcpy(dst, src, done);
  pid_t self = getpid();
  while (done < n) {
    size_t chunk = n - done < page ? n - done : page;
    struct iovec local = {(char *)dst + done, chunk};
    struct iovec remote = {(char *)src + done, chunk};
    if (process_vm_readv(self, &local, 1, &remote, 1, 0) != (ssize_t)chunk) break;
    done += chunk;
  }
}

static void bad_free(int code) {
  atomic_fetch_add_explicit(&g_ignored_frees, 1, memory_order_relaxed);
  if (g_strict) {
    const char *msg = segfit_strerror(code);
    static const char prefix[] = "segfit-malloc: free: ";
    (void)!write(2, prefix, sizeof prefix - 1);
    (void)!write(2, msg, strlen(msg));
    (void)!write(2, "\n", 1);
    abort();
  }
}

/* ---------------------------------------------------------------------------------------------
 * The malloc family
 * ------------------------------------------------------------------------------------------- */
/* malloc, calloc and free take the core's fast path (_sf_alloc_else, _sf_alloc_zeroed_else,
 * _sf_free_else) with no re-entry guard and no errno saved: it calls nothing that could
 * allocate and leaves errno alone. What it cannot do it hands, as a tail call, to the *_slow
 * functions, which guard the public calls. Never while t_busy: the thread is then inside the
 * core, in the middle of a call the fast path would step on. (A signal handler that calls
 * malloc while the interrupted code is in the fast path corrupts its lists, as it would
 * glibc's.) */
static inline segfit_heap_t *heap_fast(void) {
  segfit_heap_t *heap = atomic_load_explicit(&g_heap, memory_order_acquire);
  return SHIM_LIKELY(!t_busy) ? heap : NULL;
}

static void *malloc_slow(size_t size) {
  if (SHIM_UNLIKELY(t_busy)) return boot_alloc(size, 16);
  t_busy = 1;
  void *p = segfit_alloc(heap_get(), size);
  t_busy = 0;
  if (SHIM_UNLIKELY(p == NULL)) errno = ENOMEM;
  return p;
}

SHIM_EXPORT void *malloc(size_t size) {
  segfit_heap_t *heap = heap_fast();
  if (SHIM_LIKELY(heap != NULL)) return _sf_alloc_else(heap, size, malloc_slow);
  return malloc_slow(size);
}

/* The core's code for p (0, or the error the free ignored). */
static int free_slow(void *p) {
  if (p == NULL || boot_owns(p)) return 0;
  if (SHIM_UNLIKELY(t_busy)) {   /* the core freeing through libc: cannot re-enter, leak it */
    atomic_fetch_add_explicit(&g_ignored_frees, 1, memory_order_relaxed);
    return 0;
  }
  t_busy = 1;
  int saved = errno;
  int rc = segfit_free(heap_get(), p);
  t_busy = 0;
  if (SHIM_LIKELY(rc == 0)) return 0;
  errno = saved;
  if (rc == SEGFIT_E_NOT_A_BLOCK)
    atomic_fetch_add_explicit(&g_foreign_frees, 1, memory_order_relaxed);
  else
    bad_free(rc);
  return rc;
}

SHIM_EXPORT void free(void *p) {
  segfit_heap_t *heap = heap_fast();
  if (SHIM_LIKELY(heap != NULL)) (void)_sf_free_else(heap, p, free_slow);
  else (void)free_slow(p);
}

static void *calloc_slow(size_t total) {
  if (SHIM_UNLIKELY(t_busy)) return boot_alloc(total, 16);   /* .bss: never written before */
  t_busy = 1;
  void *p = segfit_alloc_zeroed(heap_get(), total);
  t_busy = 0;
  if (SHIM_UNLIKELY(p == NULL)) errno = ENOMEM;
  return p;
}

SHIM_EXPORT void *calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  segfit_heap_t *heap = heap_fast();
  if (SHIM_LIKELY(heap != NULL)) return _sf_alloc_zeroed_else(heap, total, calloc_slow);
  return calloc_slow(total);
}

/* realloc of a block the core does not own: a new block holding what could be read. */
static void *realloc_elsewhere(void *p, size_t size) {
  void *q = malloc(size);
  if (q == NULL) return NULL;
  if (boot_owns(p)) {
    size_t old = boot_size(p);
    memcpy(q, p, old < size ? old : size);
  } else {
    copy_foreign(q, p, size);
    atomic_fetch_add_explicit(&g_foreign_frees, 1, memory_order_relaxed);
  }
  return q;
}

SHIM_EXPORT void *realloc(void *p, size_t size) {
  if (p == NULL) return malloc(size);
  if (size == 0) {   /* glibc frees and returns NULL; programs written for it rely on that */
    free(p);
    return NULL;
  }
  if (boot_owns(p) || SHIM_UNLIKELY(t_busy)) return realloc_elsewhere(p, size);
  t_busy = 1;
  void *q = segfit_realloc(heap_get(), p, size);
  int code = q == NULL ? segfit_last_error() : 0;
  t_busy = 0;
  if (SHIM_LIKELY(q != NULL)) return q;
  if (code == SEGFIT_E_NOT_A_BLOCK) return realloc_elsewhere(p, size);
  errno = ENOMEM;
  return NULL;
}

SHIM_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, total);
}

/* alignment: a power of two; callers check their own extra rules first. */
static void *aligned(size_t alignment, size_t size) {
  if (alignment <= 16) return malloc(size);
  if (alignment > SEGFIT_MAX_ALIGNMENT) {
    errno = ENOMEM;
    return NULL;
  }
  if (SHIM_UNLIKELY(t_busy)) return boot_alloc(size, alignment);
  t_busy = 1;
  void *p = segfit_alloc_aligned(heap_get(), size, alignment);
  t_busy = 0;
  if (SHIM_UNLIKELY(p == NULL)) errno = ENOMEM;
  return p;
}

static int is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

SHIM_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  if (!is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = aligned(alignment, size);
  errno = saved;
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

SHIM_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
  if (!is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned(alignment, size);
}

SHIM_EXPORT void *memalign(size_t alignment, size_t size) {
  if (alignment > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return NULL;
  }
  size_t a = 1;   /* glibc rounds a non-power-of-two alignment up */
  while (a < alignment) a <<= 1;
  return aligned(a, size);
}

SHIM_EXPORT void *valloc(size_t size) { return aligned(page_size(), size); }

SHIM_EXPORT void *pvalloc(size_t size) {
  size_t page = page_size();
  size_t rounded;
  if (__builtin_add_overflow(size, page - 1, &rounded)) {
    errno = ENOMEM;
    return NULL;
  }
  rounded &= ~(page - 1);
  return aligned(page, rounded == 0 ? page : rounded);
}

SHIM_EXPORT size_t malloc_usable_size(void *p) {
  if (p == NULL) return 0;
  if (boot_owns(p)) return boot_size(p);
  if (SHIM_UNLIKELY(t_busy)) return 0;
  t_busy = 1;
  int64_t usable = segfit_usable_size(heap_get(), p);
  t_busy = 0;
  return usable < 0 ? 0 : (size_t)usable;
}

/* ---------------------------------------------------------------------------------------------
 * Exit report (SEGFIT_SHIM_REPORT): no stdio, nothing that could allocate.
 * ------------------------------------------------------------------------------------------- */
static char *put_u64(char *out, const char *key, uint64_t v) {
  while (*key) *out++ = *key++;
  char digits[24];
  int n = 0;
  do digits[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (n > 0) *out++ = digits[--n];
  return out;
}

__attribute__((destructor)) static void shim_report(void) {
  if (g_report == NULL || atomic_load(&g_heap) == NULL) return;
  segfit_stats_t st;
  if (segfit_stats(atomic_load(&g_heap), &st) != 0) return;
  char line[512], *o = line;
  o = put_u64(o, "segfit-malloc: pid=", (uint64_t)getpid());
  o = put_u64(o, " allocs=", st.allocs);
  o = put_u64(o, " frees=", st.frees);
  o = put_u64(o, " live_bytes=", st.live_bytes);
  o = put_u64(o, " remote_frees=", st.remote_frees);
  o = put_u64(o, " reallocs_remapped=", st.reallocs_remapped);
  o = put_u64(o, " foreign_frees=", atomic_load(&g_foreign_frees));
  o = put_u64(o, " ignored_frees=", atomic_load(&g_ignored_frees));
  o = put_u64(o, " boot_allocs=", atomic_load(&g_boot_allocs));
  *o++ = '\n';
  int fd = open(g_report, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  (void)!write(fd, line, (size_t)(o - line));
  close(fd);
}
