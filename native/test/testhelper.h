/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — what the C tests share, in one place:
 *
 * - checks: CHECK(cond), CHECK_EQ(a, b), CHECK_MSG(cond, fmt, ...) and FAIL(fmt, ...) print
 *   file, line, the running test's name (RUN), the failed expression and errno (or the values,
 *   or the message), then end the process with abort(): a fuzzer records the input, a forked
 *   child dies visibly, and no other thread of a multi-threaded test runs on after a failure;
 * - the workload scale: SEGFIT_TEST_SCALE (a factor, default 1) shrinks the work; the cmake
 *   files set it for qemu and the sanitizer builds so every test stays short there;
 *   SEGFIT_TEST_RSS=0 turns off the RSS bounds of the thread tests (qemu-user, whose own
 *   per-thread memory swamps the figure);
 * - the process seen from inside: RSS, mappings, address space, whether a sanitizer runtime is
 *   in it, a monotonic clock;
 * - a deterministic random generator and block contents derived from (seed, offset);
 * - the fault harness of the drivers built a second time on the fault-injecting core
 *   (SEGFIT_FAULTS, see faults.cmake), and FT_RETRY;
 * - heaps: creation, statistics, and invariant walks over the calling thread's slabs and a
 *   heap's segments (through internal.h).
 * Checks never depend on wall time except where the test's whole point is a deadline (the purge
 * test), and those deadlines are generous.
 */
#ifndef SEGFIT_TESTHELPER_H
#define SEGFIT_TESTHELPER_H

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "segfit.h"
#ifdef SEGFIT_FAULTS
#include "faults.h"
#endif

#define MiB ((size_t)1 << 20)

/* A sanitizer runtime in the process: the address space and the mappings are then not the
   allocator's alone (sanitizers reserve terabytes and map memory of their own at any time). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* --- checks -------------------------------------------------------------------------------- */
static const char *th_current = "";   /* the test RUN runs, for the failure's first line */

static inline void th_failed_at(const char *file, int line) {
  fprintf(stderr, "%s:%d: ", file, line);
  if (th_current[0] != '\0') fprintf(stderr, "[%s] ", th_current);
}

/* What was printed to stdout so far stays with the failure (ctest reads stdout from a pipe). */
static inline _Noreturn void th_stop(void) {
  fflush(stdout);
  abort();
}

static inline _Noreturn __attribute__((format(printf, 1, 2))) void th_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  th_stop();
}

#define CHECK(cond)                                                                           \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      int th_errno_ = errno;   /* of the calls in cond, for the OS-facing tests */            \
      th_failed_at(__FILE__, __LINE__);                                                       \
      fprintf(stderr, "check failed: %s (errno %d)\n", #cond, th_errno_);                     \
      th_stop();                                                                              \
    }                                                                                         \
  } while (0)

#define CHECK_EQ(a, b)                                                                        \
  do {                                                                                        \
    long long a_ = (long long)(a), b_ = (long long)(b);                                       \
    if (a_ != b_) {                                                                           \
      th_failed_at(__FILE__, __LINE__);                                                       \
      fprintf(stderr, "check failed: %s == %s (%lld vs %lld)\n", #a, #b, a_, b_);             \
      th_stop();                                                                              \
    }                                                                                         \
  } while (0)

#define CHECK_MSG(cond, ...)                                                                  \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      th_failed_at(__FILE__, __LINE__);                                                       \
      fprintf(stderr, "check failed: %s: ", #cond);                                           \
      th_die(__VA_ARGS__);                                                                    \
    }                                                                                         \
  } while (0)

/* A failure found otherwise than by one expression. */
#define FAIL(...)                                                                             \
  do {                                                                                        \
    th_failed_at(__FILE__, __LINE__);                                                         \
    th_die(__VA_ARGS__);                                                                      \
  } while (0)

#define TEST(name) static void name(void)
#define RUN(name)                                                                             \
  do {                                                                                        \
    th_current = #name;                                                                       \
    name();                                                                                   \
    printf("  ok  %s\n", #name);                                                              \
    fflush(stdout);                                                                           \
  } while (0)

/* --- the workload scale -------------------------------------------------------------------- */
static inline double th_scale(void) {
  const char *s = getenv("SEGFIT_TEST_SCALE");
  double v = s != NULL ? atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

/* n times the scale, at least 1. */
static inline long th_scaled(long n) {
  long v = (long)((double)n * th_scale());
  return v < 1 ? 1 : v;
}

/* Whether RSS reflects the allocator (SEGFIT_TEST_RSS=0 under qemu-user: purging itself is
   visible there; thread churn is not). */
static inline int th_rss_checks(void) {
  const char *s = getenv("SEGFIT_TEST_RSS");
  return s == NULL || s[0] != '0';
}

/* --- the process --------------------------------------------------------------------------- */
/* Resident bytes of this process. */
static inline uint64_t th_rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  CHECK(f != NULL);
  CHECK(fscanf(f, "%ld %ld", &size, &resident) == 2);
  fclose(f);
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Mappings of the process (lines of /proc/self/maps), -1 if unreadable. */
static inline long th_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL) return -1;
  long n = 0;
  int c;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

/* Address space of the process in bytes (VmSize), 0 if unreadable. */
static inline size_t th_vm_size(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t kib = 0;
  while (f != NULL && fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %zu kB", &kib) == 1) break;
  if (f != NULL) fclose(f);
  return kib * 1024;
}

static inline double th_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void th_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* --- random numbers and block contents ----------------------------------------------------- */
/* xorshift64*: deterministic per seed. */
typedef struct { uint64_t s; } th_rng_t;
static inline uint64_t th_next(th_rng_t *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545F4914F6CDD1Dull;
}
static inline uint64_t th_below(th_rng_t *r, uint64_t n) { return th_next(r) % n; }

/* Byte `offset` of a block filled for `seed`: never the same for all seeds, so the expected
   contents of a block are its seed, never a copy. */
static inline unsigned char th_pattern(size_t seed, size_t offset) {
  return (unsigned char)((seed * 131u + offset * 7u + 1u) & 0xff);
}

static inline void th_fill(void *p, size_t n, size_t seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = th_pattern(seed, i);
}

/* Whether the n bytes at p still hold the pattern of seed. */
static inline int th_intact(const void *p, size_t n, size_t seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != th_pattern(seed, i)) return 0;
  return 1;
}

/* --- the OS saying no: the drivers on the fault-injecting core ----------------------------- */
/* faults.cmake builds the drivers (stress, churn, fuzz) a second time with SEGFIT_FAULTS, on
 * the fault-injecting core. There ft_begin() installs the schedule of the SEGFIT_TEST_FAULTS
 * environment variable (the syntax of SEGFIT_FAULTS in faults.h; a name of its own, so the
 * library does not install it too, at init, before the driver is ready), and FT_RETRY(call)
 * repeats an allocation call that failed because the OS refused: such a failure must say
 * SEGFIT_E_OUT_OF_MEMORY (a call that failed with it while no fault was injected on its thread
 * fails the test; any other code is left to the driver, which refuses it), and the retry shows
 * the heap still works after the refusal. ft_pause() stops injecting before a driver's leak
 * checks (trim, then live and committed bytes back to zero) and ft_resume() starts again;
 * ft_end() checks that faults were injected at all, that every range munmap refused was
 * unmapped in the end, and prints the figures. In normal builds all of it is nothing and
 * FT_RETRY(call) is the call. */
#ifdef SEGFIT_FAULTS
static sf_fault_plan_t ft_plan;
static _Atomic(uint64_t) ft_refusals;       /* calls that failed with OUT_OF_MEMORY */
static uint64_t ft_calls[SF_FAULT_COUNT], ft_faults[SF_FAULT_COUNT];   /* paused phases */

static inline uint64_t ft_thread_faults(void) { return _sf_fault_thread_faults(); }

static inline void ft_begin(void) {
  const char *spec = getenv("SEGFIT_TEST_FAULTS");
  if (spec == NULL || _sf_fault_parse(spec, &ft_plan) != 0)
    FAIL("fault test: set SEGFIT_TEST_FAULTS to a fault plan (faults.h), got %s",
         spec ? spec : "nothing");
  segfit_page_size();   /* process init (the segment map) before the faults */
  _sf_fault_plan(&ft_plan);
  printf("faults: %s\n", spec);
}

/* A call that failed with `code` after `before` faults on this thread: true when the OS
   refused (retry it). */
static inline int ft_refused(int code, uint64_t before) {
  if (code != SEGFIT_E_OUT_OF_MEMORY) return 0;
  if (ft_thread_faults() == before)
    FAIL("fault test: out of memory, and no fault was injected on this thread");
  atomic_fetch_add_explicit(&ft_refusals, 1, memory_order_relaxed);
  return 1;
}

/* Refusals in a row after which the schedule itself is suspect (a livelock, not a test). */
#define FT_MAX_RETRIES 10000
#define FT_RETRY_WHILE(call, code_if_failed)                                                   \
  __extension__({                                                                              \
    __typeof__(call) ft_r_;                                                                    \
    for (int ft_n_ = 0;; ft_n_++) {                                                            \
      uint64_t ft_b_ = ft_thread_faults();                                                     \
      ft_r_ = (call);                                                                          \
      if (!ft_refused((code_if_failed), ft_b_)) break;                                         \
      if (ft_n_ == FT_MAX_RETRIES)                                                             \
        FAIL("fault test: %s refused %d times in a row", #call, ft_n_);                        \
    }                                                                                          \
    ft_r_;                                                                                     \
  })
/* Pointer-returning calls (NULL and segfit_last_error()) and code-returning ones (< 0). */
#define FT_RETRY(call) FT_RETRY_WHILE(call, ft_r_ == NULL ? segfit_last_error() : 0)
#define FT_RETRY_RC(call) FT_RETRY_WHILE(call, ft_r_ < 0 ? (int)ft_r_ : 0)

static inline void ft_add_counts(void) {
  uint64_t calls[SF_FAULT_COUNT], faults[SF_FAULT_COUNT];
  _sf_fault_counts(calls, faults);
  for (unsigned op = 0; op < SF_FAULT_COUNT; op++) {
    ft_calls[op] += calls[op];
    ft_faults[op] += faults[op];
  }
}

static inline void ft_pause(void) {
  ft_add_counts();
  _sf_fault_plan(NULL);
}

static inline void ft_resume(void) { _sf_fault_plan(&ft_plan); }

static inline void ft_end(const char *driver) {
  ft_pause();
  /* The faults stopped: every range munmap refused goes at the next retry. */
  segfit_trim(NULL);
  size_t pending_bytes;
  uint64_t lost;
  size_t pending = _sf_os_unmap_pending(&pending_bytes, &lost);
  uint64_t total = 0;
  printf("%s under faults: injected (faults/calls)", driver);
  for (unsigned op = 0; op < SF_FAULT_COUNT; op++) {
    printf(" %s %llu/%llu", _sf_fault_name(op), (unsigned long long)ft_faults[op],
           (unsigned long long)ft_calls[op]);
    total += ft_faults[op];
  }
  printf("; %llu calls refused with OUT_OF_MEMORY and retried; unmaps pending %zu (%zu B), "
         "lost %llu B\n", (unsigned long long)atomic_load(&ft_refusals), pending, pending_bytes,
         (unsigned long long)lost);
  if (total == 0) FAIL("fault test: no fault was injected: the plan never bit");
  if (pending != 0 || lost != 0) FAIL("fault test: ranges munmap refused were never unmapped");
}

#else
#define FT_RETRY(call) (call)
#define FT_RETRY_RC(call) (call)
static inline void ft_begin(void) {}
static inline int ft_refused(int code, uint64_t before) {
  (void)code;
  (void)before;
  return 0;
}
static inline uint64_t ft_thread_faults(void) { return 0; }
static inline void ft_pause(void) {}
static inline void ft_resume(void) {}
static inline void ft_end(const char *driver) { (void)driver; }
#endif

/* --- heaps --------------------------------------------------------------------------------- */
static inline segfit_heap_t *th_heap(const char *name, int64_t purge_delay_ms) {
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = name;
  o.purge_delay_ms = purge_delay_ms;
  segfit_heap_t *h = NULL;
  CHECK(FT_RETRY_RC(segfit_heap_create(&o, &h)) == 0 && h != NULL);
  return h;
}

/* Reads the heap's statistics (NULL: all heaps) into *st, failing the test on an error. */
static inline void th_stats(segfit_heap_t *heap, segfit_stats_t *st) {
  int rc = segfit_stats(heap, st);
  CHECK_MSG(rc == 0, "segfit_stats: %s", segfit_strerror(rc));
}

/* The heap's committed bytes now. */
static inline uint64_t th_committed(segfit_heap_t *heap) {
  segfit_stats_t st;
  th_stats(heap, &st);
  return st.committed_bytes;
}

/* Every slab the calling thread owns in `heap` satisfies _sf_slab_is_valid, and every segment
   of the heap _sf_segment_is_valid. */
static inline void th_check_valid(segfit_heap_t *heap) {
  /* Inside an operation, so the purger cannot take our record over while we walk it. */
  sf_op_t op;
  CHECK(_sf_thread_begin(&op, heap) == 0);
  sf_tld_t *t = op.tld;
  if (!op.fallback) {
    for (sf_theap_t *th = t->theaps; th != NULL; th = th->next) {
      if (th->heap != heap) continue;
      for (unsigned c = 0; c < SF_CLASSES; c++) {
        CHECK(th->cur[c] == (th->avail[c].head ? th->avail[c].head : &_sf_slab_empty));
        for (sf_slab_t *s = th->avail[c].head; s != NULL; s = s->next) {
          CHECK(_sf_slab_class(s) == c && !s->in_full);
          CHECK(_sf_slab_is_valid(s));
        }
        for (sf_slab_t *s = th->fulls[c].head; s != NULL; s = s->next) {
          CHECK(_sf_slab_class(s) == c && s->in_full);
          CHECK(_sf_slab_is_valid(s));
        }
      }
    }
  }
  sf_heap_body_t *b = heap->body;
  pthread_mutex_lock(&b->lock);
  for (sf_segment_t *s = b->segments; s != NULL; s = s->next) CHECK(_sf_segment_is_valid(s));
  pthread_mutex_unlock(&b->lock);
  _sf_thread_end(&op);
}

#endif /* SEGFIT_TESTHELPER_H */
