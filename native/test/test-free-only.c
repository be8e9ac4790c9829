/* SPDX-License-Identifier: Apache-2.0 */
/* threads-free-only: threads that only free create no heap, and every API works as a thread's first
 * call (the JVM's Cleaner and reference-handler threads free memory they never allocated).
 *
 * 1. The main thread allocates N blocks; 2,000 short-lived threads, one after another, each free a
 *    share of them and nothing else. The frees must all be counted as remote, the process-wide
 *    reserved/committed bytes must not grow, no slab may be abandoned at their exit (a thread with
 *    no heap owns nothing), and RSS may grow by less than 1 KiB per thread.
 * 2. A fresh thread per API: realloc (grow, shrink, NULL), alloc_aligned, alloc_zeroed,
 *    usable_size, free_sized, checked free of a foreign pointer, stats and trim as the first call.
 */
#include <pthread.h>
#include <string.h>

#include "testhelper.h"

#define FREERS 2000

static segfit_heap_t *g_heap;
static void **g_blocks;
static long g_per_thread;

static void *freer(void *arg) {
  long first = (long)(intptr_t)arg * g_per_thread;
  for (long i = first; i < first + g_per_thread; i++) {
    int rc = segfit_free(g_heap, g_blocks[i]);
    CHECK_MSG(rc == 0, "free: %s", segfit_strerror(rc));
  }
  return NULL;
}

static void run_in_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, fn, arg) == 0);
  CHECK(pthread_join(t, NULL) == 0);
}

/* --- first calls ---------------------------------------------------------------------------- */
typedef struct job_s {
  void *block;
  size_t size;
  void *result;
} job_t;

static void *first_realloc(void *arg) {
  job_t *job = arg;
  job->result = segfit_realloc(g_heap, job->block, job->size);
  return NULL;
}

static void *first_realloc_null(void *arg) {
  job_t *job = arg;
  job->result = segfit_realloc(g_heap, NULL, job->size);
  CHECK(job->result != NULL);
  CHECK(segfit_free(g_heap, job->result) == 0);
  return NULL;
}

static void *first_aligned(void *arg) {
  (void)arg;
  void *p = segfit_alloc_aligned(g_heap, 100, 4096);
  CHECK(p != NULL && (uintptr_t)p % 4096 == 0);
  CHECK(segfit_free(g_heap, p) == 0);
  return NULL;
}

static void *first_zeroed(void *arg) {
  (void)arg;
  unsigned char *p = segfit_alloc_zeroed(g_heap, 3000);
  CHECK(p != NULL);
  for (int i = 0; i < 3000; i++) CHECK(p[i] == 0);
  CHECK(segfit_free(g_heap, p) == 0);
  return NULL;
}

static void *first_usable(void *arg) {
  job_t *job = arg;
  CHECK(segfit_usable_size(g_heap, job->block) >= (int64_t)job->size);
  return NULL;
}

static void *first_free_sized(void *arg) {
  job_t *job = arg;
  int rc = segfit_free_sized(g_heap, job->block, job->size);
  CHECK_MSG(rc == 0, "free_sized: %s", segfit_strerror(rc));
  return NULL;
}

static void *first_foreign_free(void *arg) {
  (void)arg;
  static char not_ours[64];
  CHECK(segfit_free(g_heap, not_ours + 16) == SEGFIT_E_NOT_A_BLOCK);
  CHECK(segfit_last_error() == SEGFIT_E_NOT_A_BLOCK || segfit_last_error() == 0);
  CHECK(segfit_free(g_heap, NULL) == 0);
  return NULL;
}

static void *first_stats_trim(void *arg) {
  (void)arg;
  segfit_stats_t st;
  th_stats(g_heap, &st);
  segfit_trim(g_heap);
  segfit_trim(NULL);
  return NULL;
}

static void first_calls(void) {
  /* realloc as the first call: grow across classes, shrink, and into a large block. */
  static const size_t from[] = {24, 200, 5000, 100};
  static const size_t to[] = {300, 40, 3 << 20, 100};
  for (int i = 0; i < 4; i++) {
    job_t job = {segfit_alloc(g_heap, from[i]), to[i], NULL};
    CHECK(job.block != NULL);
    th_fill(job.block, from[i], (unsigned)i);
    run_in_thread(first_realloc, &job);
    CHECK_MSG(job.result != NULL, "first-call realloc %zu -> %zu: %s", from[i], to[i],
              segfit_strerror(segfit_last_error()));
    CHECK(th_intact(job.result, from[i] < to[i] ? from[i] : to[i], (unsigned)i));
    CHECK(segfit_free(g_heap, job.result) == 0);
  }
  job_t job = {NULL, 777, NULL};
  run_in_thread(first_realloc_null, &job);
  run_in_thread(first_aligned, NULL);
  run_in_thread(first_zeroed, NULL);
  job.block = segfit_alloc(g_heap, 777);
  CHECK(job.block != NULL);
  run_in_thread(first_usable, &job);
  run_in_thread(first_free_sized, &job);
  CHECK(segfit_free(g_heap, job.block) == SEGFIT_E_ALREADY_FREE);
  run_in_thread(first_foreign_free, NULL);
  run_in_thread(first_stats_trim, NULL);
}

int main(void) {
  segfit_options_t opt;
  segfit_options_init(&opt);
  opt.name = "threads-free-only";
  int rc = segfit_heap_create(&opt, &g_heap);
  CHECK_MSG(rc == 0, "heap_create: %s", segfit_strerror(rc));

  g_per_thread = th_scaled(50);
  long n = g_per_thread * FREERS;
  g_blocks = calloc((size_t)n, sizeof *g_blocks);
  CHECK(g_blocks != NULL);
  for (long i = 0; i < n; i++) {
    g_blocks[i] = segfit_alloc(g_heap, 16 + (size_t)(i % 64) * 16);
    CHECK(g_blocks[i] != NULL);
  }
  /* Warm the thread machinery (stack cache, libc's per-thread state) before measuring RSS. */
  run_in_thread(first_stats_trim, NULL);
  segfit_stats_t heap0, all0, heap1, all1;
  th_stats(g_heap, &heap0);
  th_stats(NULL, &all0);
  uint64_t rss0 = th_rss();
  for (long t = 0; t < FREERS; t++) run_in_thread(freer, (void *)(intptr_t)t);
  uint64_t rss1 = th_rss();
  th_stats(g_heap, &heap1);
  th_stats(NULL, &all1);
  printf("%d free-only threads freed %ld blocks: remote frees +%llu, abandoned +%llu, reserved "
         "%llu -> %llu, committed %llu -> %llu, RSS %+.1f KiB\n",
         FREERS, n, (unsigned long long)(heap1.remote_frees - heap0.remote_frees),
         (unsigned long long)(all1.abandoned_slabs - all0.abandoned_slabs),
         (unsigned long long)all0.reserved_bytes, (unsigned long long)all1.reserved_bytes,
         (unsigned long long)all0.committed_bytes, (unsigned long long)all1.committed_bytes,
         ((double)rss1 - (double)rss0) / 1024);
  CHECK(heap1.live_blocks == 0 && heap1.frees - heap0.frees == (uint64_t)n);
  CHECK(heap1.remote_frees - heap0.remote_frees == (uint64_t)n);
  CHECK(all1.abandoned_slabs == all0.abandoned_slabs);
  CHECK(all1.reserved_bytes <= all0.reserved_bytes);
  CHECK(all1.committed_bytes <= all0.committed_bytes);
  CHECK_MSG(!th_rss_checks() || rss1 <= rss0 + (uint64_t)FREERS * 1024,
            "free-only threads grew RSS");
  free(g_blocks);

  first_calls();
  segfit_stats_t end;
  th_stats(g_heap, &end);
  CHECK(end.live_blocks == 0);
  CHECK(segfit_heap_destroy(g_heap) == 0);
  printf("threads-free-only: ok\n");
  return 0;
}
