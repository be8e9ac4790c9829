/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — helpers shared by the system tests (sys-*): checks that fail with file and line,
 * RSS from /proc/self/statm, the workload scale, a monotonic clock and block patterns.
 *
 * SEGFIT_TEST_SCALE (a factor, default 1) shrinks the workloads; system.cmake sets it for qemu
 * and sanitizer builds so every test stays short there; SEGFIT_TEST_RSS=0 turns off the RSS
 * bounds of the thread tests (qemu). Checks never depend on wall time except
 * where the test's whole point is a deadline (the purge test), and those deadlines are generous.
 */
#ifndef SEGFIT_SYSTEST_H
#define SEGFIT_SYSTEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "segfit.h"

#define CHECK(cond)                                                                            \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                 \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

#define CHECK_MSG(cond, ...)                                                                   \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                 \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fputc('\n', stderr);                                                                     \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

#define MiB ((uint64_t)1 << 20)

static inline double systest_scale(void) {
  const char *s = getenv("SEGFIT_TEST_SCALE");
  double v = s != NULL ? atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

static inline long systest_scaled(long n) {
  long v = (long)((double)n * systest_scale());
  return v < 1 ? 1 : v;
}

/* Whether RSS reflects the allocator: SEGFIT_TEST_RSS=0 under qemu-user, whose own per-thread
 * memory swamps the figure (purging itself is visible there; thread churn is not). */
static inline int systest_rss_checks(void) {
  const char *s = getenv("SEGFIT_TEST_RSS");
  return s == NULL || s[0] != '0';
}

/* Resident bytes of this process. */
static inline uint64_t systest_rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  CHECK(f != NULL);
  CHECK(fscanf(f, "%ld %ld", &size, &resident) == 2);
  fclose(f);
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static inline double systest_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void systest_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Block contents: byte `offset` of a block filled for `seed`, never the same for all seeds. */
static inline unsigned char systest_pattern(size_t seed, size_t offset) {
  return (unsigned char)((seed * 131u + offset * 7u + 1u) & 0xff);
}

static inline void systest_fill(void *p, size_t n, size_t seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = systest_pattern(seed, i);
}

/* Whether the n bytes at p still hold the pattern of seed. */
static inline int systest_intact(const void *p, size_t n, size_t seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != systest_pattern(seed, i)) return 0;
  return 1;
}

/* Reads the heap's statistics (NULL: all heaps) into *st, failing the test on an error. */
static inline void systest_stats(segfit_heap_t *heap, segfit_stats_t *st) {
  int rc = segfit_stats(heap, st);
  CHECK_MSG(rc == 0, "segfit_stats: %s", segfit_strerror(rc));
}

/* The heap's committed bytes now. */
static inline uint64_t systest_committed(segfit_heap_t *heap) {
  segfit_stats_t st;
  systest_stats(heap, &st);
  return st.committed_bytes;
}

#endif /* SEGFIT_SYSTEST_H */
