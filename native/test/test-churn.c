/* SPDX-License-Identifier: Apache-2.0 */
/* sys-churn: 10,000 short-lived threads leave committed memory bounded and statistics exact.
 *
 * Threads run in waves of WAVE. Each allocates BLOCKS blocks of 16 B - 8 KiB, frees half at once
 * (local frees), and swaps the other half into random slots of a shared transfer table, freeing
 * whatever block it displaces (often one of a thread that has already exited: a free into an
 * abandoned slab). Every block carries its size and a pattern derived from its address, checked
 * before it is freed. After each tenth of the threads, and at the end, the test checks that the
 * heap's statistics agree exactly with the blocks in the table, and that committed bytes and RSS
 * stay bounded: RSS may not keep growing once the first tenth of the threads has run. Built a
 * second time on the fault-injecting core (faulttest.h): the same while the OS refuses calls.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "faulttest.h"
#include "systest.h"

#define SLOTS 2048
#define BLOCKS 32
#define WAVE 8

static segfit_heap_t *g_heap;
static _Atomic(void *) g_slot[SLOTS];

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

static void stamp(unsigned char *p, size_t size) {
  memcpy(p, &size, sizeof size);
  unsigned char v = (unsigned char)mix((uintptr_t)p);
  for (size_t i = sizeof size; i < size; i++) p[i] = (unsigned char)(v + i);
}

static void check_and_free(unsigned char *p) {
  size_t size;
  memcpy(&size, p, sizeof size);
  CHECK(size >= 16 && size <= 8192);
  unsigned char v = (unsigned char)mix((uintptr_t)p);
  for (size_t i = sizeof size; i < size; i++)
    CHECK_MSG(p[i] == (unsigned char)(v + i), "block %p (size %zu) corrupted at %zu", (void *)p,
              size, i);
  int rc = segfit_free(g_heap, p);
  CHECK_MSG(rc == 0, "free %p: %s", (void *)p, segfit_strerror(rc));
}

static void *worker(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  unsigned char *mine[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) {
    seed = mix(seed + 0x9E3779B97F4A7C15ull);
    size_t size = (seed & 7) == 0 ? 1024 + (seed >> 8) % 7169 : 16 + (seed >> 8) % 1009;
    mine[i] = FT_RETRY(segfit_alloc(g_heap, size));
    CHECK(mine[i] != NULL);
    stamp(mine[i], size);
  }
  for (int i = 0; i < BLOCKS; i += 2) check_and_free(mine[i]);
  for (int i = 1; i < BLOCKS; i += 2) {
    seed = mix(seed);
    void *old = atomic_exchange(&g_slot[seed % SLOTS], mine[i]);
    if (old != NULL) check_and_free(old);
  }
  return NULL;
}

/* Checks the statistics against the table; returns the live usable bytes. */
static uint64_t check_stats(const char *when) {
  uint64_t blocks = 0, bytes = 0;
  for (int i = 0; i < SLOTS; i++) {
    void *p = atomic_load(&g_slot[i]);
    if (p == NULL) continue;
    int64_t usable = segfit_usable_size(g_heap, p);
    CHECK_MSG(usable >= 16, "usable_size of a live block: %s", segfit_strerror((int)usable));
    blocks++;
    bytes += (uint64_t)usable;
  }
  segfit_stats_t st;
  systest_stats(g_heap, &st);
  uint64_t rss = systest_rss();
  printf("%s: live %llu blocks / %llu B (stats %llu / %llu), committed %.1f MiB, RSS %.1f MiB, "
         "abandoned %llu, adopted %llu, remote frees %llu\n",
         when, (unsigned long long)blocks, (unsigned long long)bytes,
         (unsigned long long)st.live_blocks, (unsigned long long)st.live_bytes,
         (double)st.committed_bytes / MiB, (double)rss / MiB,
         (unsigned long long)st.abandoned_slabs, (unsigned long long)st.adopted_slabs,
         (unsigned long long)st.remote_frees);
  CHECK(st.live_blocks == blocks);
  CHECK(st.live_bytes == bytes);
  CHECK(st.allocs - st.frees == st.live_blocks);
  uint64_t class_blocks = 0;
  for (uint32_t c = 0; c < st.class_count; c++) class_blocks += st.classes[c].live_blocks;
  CHECK(class_blocks + st.large.live_blocks == st.live_blocks);
  /* Bounded: the live bytes twice over (fragmentation across 2048 scattered survivors in ~150
   * size classes) plus a fixed allowance for the slabs of the WAVE threads running at once. */
  CHECK_MSG(st.committed_bytes <= 2 * bytes + 48 * MiB, "committed %llu B for %llu live B",
            (unsigned long long)st.committed_bytes, (unsigned long long)bytes);
  return bytes;
}

int main(void) {
  long threads = systest_scaled(10000);
  if (threads < 10 * WAVE) threads = 10 * WAVE;
  segfit_options_t opt;
  segfit_options_init(&opt);
  opt.name = "sys-churn";
#ifdef SEGFIT_FAULTS
  opt.purge_delay_ms = 0;   /* emptied slabs go back at once: more OS calls to refuse */
#endif
  ft_begin();
  int rc = FT_RETRY_RC(segfit_heap_create(&opt, &g_heap));
  CHECK_MSG(rc == 0, "heap_create: %s", segfit_strerror(rc));

  uint64_t rss_warm = 0;
  long done = 0;
  for (int tenth = 1; tenth <= 10; tenth++) {
    for (; done < threads * tenth / 10; done += WAVE) {
      pthread_t t[WAVE];
      for (int i = 0; i < WAVE; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(done + i + 1)) == 0);
      for (int i = 0; i < WAVE; i++) CHECK(pthread_join(t[i], NULL) == 0);
    }
    char when[64];
    snprintf(when, sizeof when, "after %ld threads", done);
    check_stats(when);
    if (tenth == 1) rss_warm = systest_rss();
  }
  uint64_t rss_end = systest_rss();
  CHECK_MSG(!systest_rss_checks() || rss_end <= rss_warm + 16 * MiB,
            "RSS grew by %.1f MiB between the first tenth of the threads and the end",
            ((double)rss_end - (double)rss_warm) / MiB);

  for (int i = 0; i < SLOTS; i++) {
    void *p = atomic_exchange(&g_slot[i], NULL);
    if (p != NULL) check_and_free(p);
  }
  ft_pause();   /* the faults stop: everything freed goes back now */
  segfit_trim(g_heap);
  segfit_stats_t st;
  systest_stats(g_heap, &st);
  printf("after freeing all and trim: live %llu, committed %.1f MiB, segments %llu, slabs %llu\n",
         (unsigned long long)st.live_bytes, (double)st.committed_bytes / MiB,
         (unsigned long long)st.segments, (unsigned long long)st.slabs);
  CHECK(st.live_blocks == 0 && st.live_bytes == 0);
  CHECK_MSG(st.committed_bytes <= 4 * MiB, "trim left %llu B committed in an empty heap",
            (unsigned long long)st.committed_bytes);
  CHECK(segfit_heap_destroy(g_heap) == 0);
  ft_end("sys-churn");
  printf("sys-churn: %ld threads ok\n", threads);
  return 0;
}
