/* SPDX-License-Identifier: Apache-2.0 */
/* purge: memory goes back to the OS while the allocating thread sleeps.
 *
 * Thread A allocates 256 MiB of small blocks from a heap with a 50 ms purge delay, chained into a
 * list through their first word, and hands the list to thread B, which frees every block. Then
 * both threads sleep: from here on nobody calls the allocator. The main thread watches RSS in
 * /proc/self/statm; it must fall back near where it started within twice the purge delay plus a
 * slack for a loaded machine (SEGFIT_TEST_SLACK_MS, default 400). Afterwards the heap's
 * committed bytes must be back near zero too. Run twice: once with a fresh heap, once with the
 * same heap reused, so that purging a heap that already purged once is covered.
 * Under ThreadSanitizer RSS is dominated by shadow memory that never shrinks, so there (and when
 * SEGFIT_TEST_PURGE_BY_STATS=1) the heap's committed bytes are watched instead of RSS.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "testhelper.h"

#define PURGE_DELAY_MS 50

#if defined(__SANITIZE_THREAD__)
#define BY_STATS_DEFAULT 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BY_STATS_DEFAULT 1
#endif
#endif
#ifndef BY_STATS_DEFAULT
#define BY_STATS_DEFAULT 0
#endif
static int g_by_stats;

static segfit_heap_t *g_heap;
static void *g_list;                 /* the blocks, from A to B */
static atomic_int g_phase;           /* 0 start, 1 allocated, 2 freed, 3 done */
static double g_freed_at;            /* when B finished, ms */
static uint64_t g_bytes;

static void wait_phase(int phase) {
  while (atomic_load(&g_phase) < phase) th_sleep_ms(1);
}

static void *allocator(void *arg) {
  uint64_t target = *(uint64_t *)arg, bytes = 0;
  void *list = NULL;
  uint32_t x = 12345;
  while (bytes < target) {
    x = x * 1103515245u + 12345u;
    size_t size = 16 * (1 + (x >> 16) % 32);   /* 16 .. 512 B */
    void **p = segfit_alloc(g_heap, size);
    CHECK(p != NULL);
    memset(p, 0xA5, size);
    *p = list;
    list = p;
    bytes += size;
  }
  g_list = list;
  g_bytes = bytes;
  atomic_store(&g_phase, 1);
  wait_phase(3);   /* sleeps through the purge: no allocator calls from this thread */
  return NULL;
}

static void *freer(void *arg) {
  (void)arg;
  wait_phase(1);
  for (void *p = g_list; p != NULL;) {
    void *next = *(void **)p;
    int rc = segfit_free(g_heap, p);
    CHECK_MSG(rc == 0, "free: %s", segfit_strerror(rc));
    p = next;
  }
  g_freed_at = th_now_ms();
  atomic_store(&g_phase, 2);
  wait_phase(3);
  return NULL;
}

/* What the test watches: RSS, or the heap's committed bytes. */
static uint64_t observe(void) {
  return g_by_stats ? th_committed(g_heap) : th_rss();
}

static void run(int round, uint64_t target, long slack_ms) {
  atomic_store(&g_phase, 0);
  uint64_t rss0 = observe();
  pthread_t a, b;
  CHECK(pthread_create(&a, NULL, allocator, &target) == 0);
  CHECK(pthread_create(&b, NULL, freer, NULL) == 0);
  wait_phase(1);
  uint64_t rss_full = observe();
  wait_phase(2);
  /* "Near the start": within 5% of the workload plus 4 MiB (thread stacks, slab metadata). */
  uint64_t limit = rss0 + g_bytes / 20 + 4 * MiB;
  double deadline = g_freed_at + 2 * PURGE_DELAY_MS + (double)slack_ms;
  /* The heap's committed bytes must also fall below an absolute bound: rss0 of a later round
     may still hold the previous round's residue, which the purger is releasing meanwhile. */
  uint64_t committed_limit = g_bytes / 20 + 4 * MiB;
  uint64_t rss = observe();
  while ((rss > limit || th_committed(g_heap) > committed_limit) &&
         th_now_ms() < deadline) {
    th_sleep_ms(2);
    rss = observe();
  }
  double took = th_now_ms() - g_freed_at;
  atomic_store(&g_phase, 3);
  CHECK(pthread_join(a, NULL) == 0);
  CHECK(pthread_join(b, NULL) == 0);
  printf("round %d: %.0f MiB allocated; %s start %.1f MiB, full %.1f MiB, now %.1f MiB "
         "(limit %.1f) %.0f ms after the last free (deadline %d + %ld ms)\n",
         round, (double)g_bytes / MiB, g_by_stats ? "committed" : "RSS", (double)rss0 / MiB, (double)rss_full / MiB,
         (double)rss / MiB, (double)limit / MiB, took, 2 * PURGE_DELAY_MS, slack_ms);
  CHECK_MSG(rss_full >= rss0 + g_bytes / 2, "the workload did not show; the test is blind");
  CHECK_MSG(rss <= limit, "memory did not go back within 2 x purge delay + slack");
  segfit_stats_t st;
  th_stats(g_heap, &st);
  printf("round %d: live %llu B, committed %llu B, purges %llu, purged %llu B\n", round,
         (unsigned long long)st.live_bytes, (unsigned long long)st.committed_bytes,
         (unsigned long long)st.purges, (unsigned long long)st.purged_bytes);
  CHECK(st.live_blocks == 0 && st.live_bytes == 0);
  CHECK_MSG(st.committed_bytes <= committed_limit, "committed bytes stayed high");
  CHECK(st.purges > 0 && st.purged_bytes >= g_bytes / 2);
}

int main(void) {
  const char *s = getenv("SEGFIT_TEST_SLACK_MS");
  long slack_ms = s != NULL ? atol(s) : 400;
  const char *by = getenv("SEGFIT_TEST_PURGE_BY_STATS");
  g_by_stats = by != NULL ? by[0] == '1' : BY_STATS_DEFAULT;
  uint64_t target = (uint64_t)th_scaled(256) * MiB;
  segfit_options_t opt;
  segfit_options_init(&opt);
  opt.name = "purge";
  opt.purge_delay_ms = PURGE_DELAY_MS;
  int rc = segfit_heap_create(&opt, &g_heap);
  CHECK_MSG(rc == 0, "heap_create: %s", segfit_strerror(rc));
  run(1, target, slack_ms);
  run(2, target, slack_ms);
  CHECK(segfit_heap_destroy(g_heap) == 0);
  printf("purge: ok\n");
  return 0;
}
