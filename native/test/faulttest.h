/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — the drivers (stress, churn, fuzz) under an OS that says no (faults.cmake builds them
 * a second time with SEGFIT_FAULTS, on the fault-injecting core).
 *
 * In those builds ft_begin() installs the schedule of the SEGFIT_TEST_FAULTS environment
 * variable (the syntax of SEGFIT_FAULTS in faults.h; a name of its own, so the library does not
 * install it too, at init, before the driver is ready), and FT_RETRY(call) repeats an
 * allocation call that failed because the OS refused: such a failure must say
 * SEGFIT_E_OUT_OF_MEMORY (a call that failed with it while no fault was injected on its thread
 * fails the test; any other code is left to the driver, which refuses it), and the retry shows
 * the heap still works after the refusal. ft_pause() stops injecting before a driver's leak
 * checks (trim, then live and committed bytes back to zero) and ft_resume() starts again;
 * ft_end() checks that faults were injected at all, that every range munmap refused was
 * unmapped in the end, and prints the figures. In normal builds all of it is nothing and
 * FT_RETRY(call) is the call.
 */
#ifndef SEGFIT_FAULTTEST_H
#define SEGFIT_FAULTTEST_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "segfit.h"

#ifdef SEGFIT_FAULTS
#include "faults.h"
#include "internal.h"

#define FT_FAIL(...)                                                                           \
  do {                                                                                         \
    fprintf(stderr, "%s:%d: fault test: ", __FILE__, __LINE__);                                \
    fprintf(stderr, __VA_ARGS__);                                                              \
    fputc('\n', stderr);                                                                       \
    abort();                                                                                   \
  } while (0)

static sf_fault_plan_t ft_plan;
static _Atomic(uint64_t) ft_refusals;       /* calls that failed with OUT_OF_MEMORY */
static uint64_t ft_calls[SF_FAULT_COUNT], ft_faults[SF_FAULT_COUNT];   /* paused phases */

static inline uint64_t ft_thread_faults(void) { return _sf_fault_thread_faults(); }

static inline void ft_begin(void) {
  const char *spec = getenv("SEGFIT_TEST_FAULTS");
  if (spec == NULL || _sf_fault_parse(spec, &ft_plan) != 0)
    FT_FAIL("set SEGFIT_TEST_FAULTS to a fault plan (faults.h), got %s", spec ? spec : "nothing");
  segfit_page_size();   /* process init (the segment map) before the faults */
  _sf_fault_plan(&ft_plan);
  printf("faults: %s\n", spec);
}

/* A call that failed with `code` after `before` faults on this thread: true when the OS
   refused (retry it). */
static inline int ft_refused(int code, uint64_t before) {
  if (code != SEGFIT_E_OUT_OF_MEMORY) return 0;
  if (ft_thread_faults() == before)
    FT_FAIL("out of memory, and no fault was injected on this thread");
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
      if (ft_n_ == FT_MAX_RETRIES) FT_FAIL("%s refused %d times in a row", #call, ft_n_);      \
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
  if (total == 0) FT_FAIL("no fault was injected: the plan never bit");
  if (pending != 0 || lost != 0) FT_FAIL("ranges munmap refused were never unmapped");
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

#endif /* SEGFIT_FAULTTEST_H */
