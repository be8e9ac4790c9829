/* SPDX-License-Identifier: Apache-2.0 */
/* threads: the allocator under concurrent use, and threads that come and go. Deterministic
 * seeds; not a benchmark. Two parts, each one ctest test (test-threads stress | churn):
 *
 * stress
 * 1. transfer: worker threads allocate blocks of random sizes (small, medium, some large),
 *    stamp them with a pattern derived from their address and size, and pass most of them to
 *    other workers through queues; whoever frees a block first checks its pattern. Workers exit
 *    with live blocks still queued or parked, and fresh workers adopt the abandoned slabs and
 *    free the leftovers. Ends with every block freed and the statistics back at zero.
 * 2. remap race: one thread reallocates a block (small <-> large, large <-> large by mremap)
 *    while another frees the same old pointer and a third asks its usable size; exactly one
 *    free must win and nothing may crash.
 * 3. destroy race: threads allocate and free on a heap that the main thread destroys under
 *    them; every call after that must fail with CLOSED, none may crash or touch unmapped memory.
 *
 * churn: 10,000 short-lived threads leave committed memory bounded and statistics exact.
 *    Threads run in waves of CHURN_WAVE. Each allocates CHURN_BLOCKS blocks of 16 B - 8 KiB,
 *    frees half at once (local frees), and swaps the other half into random slots of a shared
 *    transfer table, freeing whatever block it displaces (often one of a thread that has already
 *    exited: a free into an abandoned slab). Every block carries its size and a pattern derived
 *    from its address, checked before it is freed. After each tenth of the threads, and at the
 *    end, the test checks that the heap's statistics agree exactly with the blocks in the table,
 *    and that committed bytes and RSS stay bounded: RSS may not keep growing once the first
 *    tenth of the threads has run.
 *
 * SEGFIT_TEST_SCALE (a factor) shrinks the work under qemu and the sanitizers. Built a second
 * time on the fault-injecting core (testhelper.h, faults.cmake): the same work while the OS
 * refuses calls.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "testhelper.h"

/* --- blocks with a checkable pattern ---------------------------------------------------------- */
static uint64_t stamp_of(const void *p, size_t size) {
  return ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ size;
}

static void stamp(void *p, size_t size) {
  uint8_t *b = p;
  uint64_t s = stamp_of(p, size);
  size_t n = size < 4096 ? size : 256;
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(s >> ((i % 8) * 8)) ^ (uint8_t)i;
  if (size > n)
    for (size_t i = size - 256; i < size; i++) b[i] = (uint8_t)(s >> ((i % 8) * 8)) ^ (uint8_t)i;
}

static void check_stamp(const void *p, size_t size) {
  const uint8_t *b = p;
  uint64_t s = stamp_of(p, size);
  size_t n = size < 4096 ? size : 256;
  for (size_t i = 0; i < n; i++) CHECK(b[i] == ((uint8_t)(s >> ((i % 8) * 8)) ^ (uint8_t)i));
  if (size > n)
    for (size_t i = size - 256; i < size; i++)
      CHECK(b[i] == ((uint8_t)(s >> ((i % 8) * 8)) ^ (uint8_t)i));
}

typedef struct { void *p; size_t size; int64_t usable; } item_t;

/* --- stress 1. transfer ----------------------------------------------------------------------- */
#define NWORKERS 4
#define QCAP 512

typedef struct {
  pthread_mutex_t lock;
  item_t items[QCAP];
  int head, count;
} queue_t;

static queue_t queues[NWORKERS];
static segfit_heap_t *heap;
static _Atomic(long) blocks_freed, blocks_made;

static bool q_push(queue_t *q, item_t it) {
  pthread_mutex_lock(&q->lock);
  bool ok = q->count < QCAP;
  if (ok) q->items[(q->head + q->count++) % QCAP] = it;
  pthread_mutex_unlock(&q->lock);
  return ok;
}

static bool q_pop(queue_t *q, item_t *it) {
  pthread_mutex_lock(&q->lock);
  bool ok = q->count > 0;
  if (ok) {
    *it = q->items[q->head];
    q->head = (q->head + 1) % QCAP;
    q->count--;
  }
  pthread_mutex_unlock(&q->lock);
  return ok;
}

static void release(item_t it) {
  check_stamp(it.p, it.size);
  int64_t u = segfit_usable_size(heap, it.p);
  if (u != it.usable)
    fprintf(stderr, "block %p size %zu: usable %lld at allocation, %lld now\n", it.p, it.size,
            (long long)it.usable, (long long)u);
  CHECK_EQ(u, it.usable);   /* the block's slab kept its class while the block lived */
  CHECK_EQ(segfit_free(heap, it.p), 0);
  atomic_fetch_add(&blocks_freed, 1);
}

static size_t random_size(th_rng_t *r) {
  uint64_t k = th_below(r, 1000);
  if (k < 700) return 1 + th_below(r, 512);
  if (k < 950) return 512 + th_below(r, 16384);
  if (k < 995) return 16384 + th_below(r, 1u << 20);
  return (1u << 20) + th_below(r, 3u << 20);   /* large */
}

typedef struct { int id; uint64_t seed; long ops; } worker_arg_t;

static void *worker(void *argp) {
  worker_arg_t *arg = argp;
  th_rng_t r = {arg->seed};
  item_t local[64];
  int nlocal = 0;
  for (long op = 0; op < arg->ops; op++) {
    uint64_t what = th_below(&r, 100);
    if (what < 45) {
      size_t size = random_size(&r);
      void *p;
      uint64_t how = th_below(&r, 10);
      if (how == 0) {
        size_t al = (size_t)16 << th_below(&r, 10);
        p = FT_RETRY(segfit_alloc_aligned(heap, size, al));
        CHECK(p != NULL && ((uintptr_t)p & (al - 1)) == 0);
      } else if (how == 1) {
        p = FT_RETRY(segfit_alloc_zeroed(heap, size));
        CHECK(p != NULL);
        const uint8_t *b = p;
        for (size_t i = 0; i < size; i += 61) CHECK(b[i] == 0);
      } else {
        p = FT_RETRY(segfit_alloc(heap, size));
        CHECK(p != NULL);
      }
      stamp(p, size);
      atomic_fetch_add(&blocks_made, 1);
      item_t it = {p, size, segfit_usable_size(heap, p)};
      int to = (int)th_below(&r, NWORKERS);
      if (to != arg->id && q_push(&queues[to], it)) continue;
      if (nlocal < 64) local[nlocal++] = it;
      else release(it);
    } else if (what < 80) {
      item_t it;
      if (q_pop(&queues[arg->id], &it)) release(it);   /* mostly remote frees */
    } else if (what < 92) {
      if (nlocal > 0) {
        int i = (int)th_below(&r, (uint64_t)nlocal);
        release(local[i]);
        local[i] = local[--nlocal];
      }
    } else if (nlocal > 0) {
      /* realloc a local block, checking the kept prefix */
      int i = (int)th_below(&r, (uint64_t)nlocal);
      size_t ns = random_size(&r);
      check_stamp(local[i].p, local[i].size);
      uint8_t keep[64];
      size_t kn = local[i].size < ns ? local[i].size : ns;
      if (kn > 64) kn = 64;
      memcpy(keep, local[i].p, kn);
      void *q = FT_RETRY(segfit_realloc(heap, local[i].p, ns));
      CHECK(q != NULL);
      CHECK(memcmp(q, keep, kn) == 0);
      stamp(q, ns);
      local[i].p = q;
      local[i].size = ns;
      local[i].usable = segfit_usable_size(heap, q);
    }
  }
  /* Exit with live blocks: half go to the parking queue of worker 0's successor, half stay
     for the next generation (queued to random workers). */
  for (int i = 0; i < nlocal; i++) {
    if (!q_push(&queues[(arg->id + 1 + i) % NWORKERS], local[i])) release(local[i]);
  }
  th_check_valid(heap);
  return NULL;
}

static void test_transfer(void) {
  heap = th_heap("stress-transfer", 20);
  for (int i = 0; i < NWORKERS; i++) pthread_mutex_init(&queues[i].lock, NULL);
  long ops = th_scaled(40000);
  int generations = 4;
  for (int g = 0; g < generations; g++) {
    pthread_t t[NWORKERS];
    worker_arg_t a[NWORKERS];
    for (int i = 0; i < NWORKERS; i++) {
      a[i] = (worker_arg_t){i, 0x1234567ull * (uint64_t)(g * NWORKERS + i + 1), ops};
      CHECK(pthread_create(&t[i], NULL, worker, &a[i]) == 0);
    }
    for (int i = 0; i < NWORKERS; i++) CHECK(pthread_join(t[i], NULL) == 0);
  }
  segfit_stats_t st;
  CHECK(segfit_stats(heap, &st) == 0);
  CHECK(st.abandoned_slabs > 0 && st.remote_frees > 0);
  /* The main thread frees what is left in the queues. */
  for (int i = 0; i < NWORKERS; i++) {
    item_t it;
    while (q_pop(&queues[i], &it)) release(it);
  }
  CHECK_EQ(atomic_load(&blocks_freed), atomic_load(&blocks_made));
  CHECK(segfit_stats(heap, &st) == 0);
  if (st.live_blocks != 0) {
    for (uint32_t c = 0; c < st.class_count; c++)
      if (st.classes[c].allocs != st.classes[c].frees)
        fprintf(stderr, "class %u (%llu B): allocs %llu frees %llu\n", c,
                (unsigned long long)st.classes[c].block_size,
                (unsigned long long)st.classes[c].allocs, (unsigned long long)st.classes[c].frees);
    fprintf(stderr, "large: allocs %llu frees %llu\n", (unsigned long long)st.large.allocs,
            (unsigned long long)st.large.frees);
  }
  CHECK_EQ(st.live_blocks, 0);
  CHECK_EQ(st.live_bytes, 0);
  CHECK_EQ(st.large_blocks, 0);
  printf("  transfer: %ld blocks, %llu remote frees, %llu abandoned, %llu adopted slabs\n",
         atomic_load(&blocks_made), (unsigned long long)st.remote_frees,
         (unsigned long long)st.abandoned_slabs, (unsigned long long)st.adopted_slabs);
  ft_pause();   /* the faults stop: everything freed goes back now */
  segfit_trim(heap);
  CHECK(segfit_stats(heap, &st) == 0);
  CHECK_EQ(st.committed_bytes, 0);
  CHECK_EQ(segfit_heap_destroy(heap), 0);
  ft_resume();
}

/* --- stress 2. remap race --------------------------------------------------------------------- */
static _Atomic(void *) race_ptr;
static _Atomic(int) race_round = -1, race_done_b = -1, race_stop;
static _Atomic(int) race_free_rc;

static void *race_freer(void *arg) {
  (void)arg;
  for (int round = 0;; round++) {
    /* Spin a while (to meet the realloc head-on), then yield (the cores are shared). */
    for (long spins = 0; atomic_load(&race_round) < round; spins++) {
      if (atomic_load(&race_stop)) return NULL;
      if (spins % 1000000 == 999999) sched_yield();
    }
    void *p = atomic_load(&race_ptr);
    atomic_store(&race_free_rc, segfit_free(heap, p));
    atomic_store(&race_done_b, round);
  }
}

static void *race_asker(void *arg) {
  (void)arg;
  while (!atomic_load(&race_stop)) {
    void *p = atomic_load(&race_ptr);
    int64_t u = segfit_usable_size(heap, p);
    CHECK(u > 0 || u == SEGFIT_E_NOT_A_BLOCK || u == SEGFIT_E_ALREADY_FREE);
    sched_yield();   /* two cores shared with the other two threads */
  }
  return NULL;
}

static void test_remap_race(void) {
  heap = th_heap("stress-remap", -1);
  pthread_t b, c;
  CHECK(pthread_create(&b, NULL, race_freer, NULL) == 0);
  CHECK(pthread_create(&c, NULL, race_asker, NULL) == 0);
  th_rng_t r = {777};
  int rounds = (int)th_scaled(2000), realloc_won = 0, free_won = 0, b_freed_new = 0;
  for (int round = 0; round < rounds; round++) {
    static const size_t sizes[] = {100, 5000, 300000, (size_t)2 << 20, (size_t)9 << 20};
    size_t from = sizes[th_below(&r, 5)], to = sizes[th_below(&r, 5)] + th_below(&r, 100000);
    uint8_t *p = FT_RETRY(segfit_alloc(heap, from));
    CHECK(p != NULL);
    memset(p, 0x3C, from < 4096 ? from : 4096);
    atomic_store(&race_ptr, p);
    atomic_store(&race_round, round);   /* B frees p now, while we realloc it */
    for (volatile long k = (long)th_below(&r, 3000); k > 0; k--) {   /* vary who goes first */
    }
    uint8_t *q = FT_RETRY(segfit_realloc(heap, p, to));
    int err = q == NULL ? segfit_last_error() : 0;
    while (atomic_load(&race_done_b) < round) sched_yield();
    int rb = atomic_load(&race_free_rc);
    if (q == NULL) {
      CHECK(err == SEGFIT_E_NOT_A_BLOCK || err == SEGFIT_E_ALREADY_FREE);
      CHECK_EQ(rb, 0);
      free_won++;
    } else {
      int fa = segfit_free(heap, q);
      if (rb == 0) b_freed_new++;
      if ((rb == 0) + (fa == 0) != 1)
        fprintf(stderr, "round %d: %zu -> %zu: p %p q %p free(p) %d free(q) %d\n", round, from,
                to, (void *)p, (void *)q, rb, fa);
      CHECK((rb == 0) + (fa == 0) == 1);
      realloc_won++;
    }
  }
  atomic_store(&race_stop, 1);
  CHECK(pthread_join(b, NULL) == 0);
  CHECK(pthread_join(c, NULL) == 0);
  segfit_stats_t st;
  CHECK(segfit_stats(heap, &st) == 0);
  CHECK_EQ(st.live_blocks, 0);
  CHECK_EQ(st.large_blocks, 0);
  printf("  remap race: %d rounds: free lost to realloc %d, free won %d, free took the "
         "reallocated block %d; %llu mremaps\n", rounds, realloc_won - b_freed_new, free_won,
         b_freed_new, (unsigned long long)st.reallocs_remapped);
  CHECK_EQ(segfit_heap_destroy(heap), 0);
}

/* --- stress 3. destroy race ------------------------------------------------------------------- */
static segfit_heap_t *_Atomic doomed;
static _Atomic(int) doomed_closed_seen;
static void *_Atomic doomed_swap;   /* a block passed between workers: remote frees race too */

static void *doomed_worker(void *arg) {
  th_rng_t r = {(uint64_t)(uintptr_t)arg};
  segfit_heap_t *h = atomic_load(&doomed);
  void *mine[32] = {0};
  for (;;) {
    int i = (int)th_below(&r, 32);
    if (mine[i] == NULL) {
      size_t size = th_below(&r, 10) == 0 ? (size_t)(1 << 20) + 4096 : 1 + th_below(&r, 20000);
      void *p = th_below(&r, 2) ? FT_RETRY(segfit_alloc(h, size))
                                : FT_RETRY(segfit_alloc_zeroed(h, size));
      if (p == NULL) {
        CHECK_EQ(segfit_last_error(), SEGFIT_E_CLOSED);
        break;
      }
      /* Not touched here: the heap may be destroyed (and the block unmapped) at any moment
         after the call returns; zeroed allocations write inside the call. */
      mine[i] = p;
      /* Now and then trade it for another worker's: its free is then another thread's. */
      if (th_below(&r, 4) == 0) mine[i] = atomic_exchange(&doomed_swap, p);
    } else {
      int rc = segfit_free(h, mine[i]);
      if (rc == SEGFIT_E_CLOSED) break;
      CHECK_EQ(rc, 0);
      mine[i] = NULL;
    }
  }
  /* Everything after the close fails the same way. */
  CHECK(segfit_alloc(h, 10) == NULL);
  CHECK_EQ(segfit_free(h, mine[0] != NULL ? mine[0] : (void *)&r), SEGFIT_E_CLOSED);
  CHECK_EQ(segfit_usable_size(h, &r), SEGFIT_E_CLOSED);
  atomic_fetch_add(&doomed_closed_seen, 1);
  return NULL;
}

static void test_destroy_race(void) {
  int rounds = (int)th_scaled(20);
  if (rounds < 3) rounds = 3;
  for (int round = 0; round < rounds; round++) {
    atomic_store(&doomed, th_heap("stress-doomed", round % 2 ? 0 : -1));
    atomic_store(&doomed_closed_seen, 0);
    atomic_store(&doomed_swap, NULL);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
      CHECK(pthread_create(&t[i], NULL, doomed_worker, (void *)(uintptr_t)(round * 3 + i + 1)) == 0);
    usleep(2000 + 1000 * (round % 5));
    CHECK_EQ(segfit_heap_destroy(atomic_load(&doomed)), 0);
    for (int i = 0; i < 3; i++) CHECK(pthread_join(t[i], NULL) == 0);
    CHECK_EQ(atomic_load(&doomed_closed_seen), 3);
  }
  printf("  destroy race: %d rounds\n", rounds);
}

/* --- churn ------------------------------------------------------------------------------------ */
#define CHURN_SLOTS 2048
#define CHURN_BLOCKS 32
#define CHURN_WAVE 8

static segfit_heap_t *churn_heap;
static _Atomic(void *) churn_slot[CHURN_SLOTS];

static uint64_t churn_mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

static void churn_stamp(unsigned char *p, size_t size) {
  memcpy(p, &size, sizeof size);
  unsigned char v = (unsigned char)churn_mix((uintptr_t)p);
  for (size_t i = sizeof size; i < size; i++) p[i] = (unsigned char)(v + i);
}

static void churn_check_and_free(unsigned char *p) {
  size_t size;
  memcpy(&size, p, sizeof size);
  CHECK(size >= 16 && size <= 8192);
  unsigned char v = (unsigned char)churn_mix((uintptr_t)p);
  for (size_t i = sizeof size; i < size; i++)
    CHECK_MSG(p[i] == (unsigned char)(v + i), "block %p (size %zu) corrupted at %zu", (void *)p,
              size, i);
  int rc = segfit_free(churn_heap, p);
  CHECK_MSG(rc == 0, "free %p: %s", (void *)p, segfit_strerror(rc));
}

static void *churn_worker(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  unsigned char *mine[CHURN_BLOCKS];
  for (int i = 0; i < CHURN_BLOCKS; i++) {
    seed = churn_mix(seed + 0x9E3779B97F4A7C15ull);
    size_t size = (seed & 7) == 0 ? 1024 + (seed >> 8) % 7169 : 16 + (seed >> 8) % 1009;
    mine[i] = FT_RETRY(segfit_alloc(churn_heap, size));
    CHECK(mine[i] != NULL);
    churn_stamp(mine[i], size);
  }
  for (int i = 0; i < CHURN_BLOCKS; i += 2) churn_check_and_free(mine[i]);
  for (int i = 1; i < CHURN_BLOCKS; i += 2) {
    seed = churn_mix(seed);
    void *old = atomic_exchange(&churn_slot[seed % CHURN_SLOTS], mine[i]);
    if (old != NULL) churn_check_and_free(old);
  }
  return NULL;
}

/* Checks the statistics against the table; returns the live usable bytes. */
static uint64_t churn_check_stats(const char *when) {
  uint64_t blocks = 0, bytes = 0;
  for (int i = 0; i < CHURN_SLOTS; i++) {
    void *p = atomic_load(&churn_slot[i]);
    if (p == NULL) continue;
    int64_t usable = segfit_usable_size(churn_heap, p);
    CHECK_MSG(usable >= 16, "usable_size of a live block: %s", segfit_strerror((int)usable));
    blocks++;
    bytes += (uint64_t)usable;
  }
  segfit_stats_t st;
  th_stats(churn_heap, &st);
  uint64_t rss = th_rss();
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
   * size classes) plus a fixed allowance for the slabs of the CHURN_WAVE threads running at
   * once. */
  CHECK_MSG(st.committed_bytes <= 2 * bytes + 48 * MiB, "committed %llu B for %llu live B",
            (unsigned long long)st.committed_bytes, (unsigned long long)bytes);
  return bytes;
}

static void test_churn(void) {
  long threads = th_scaled(10000);
  if (threads < 10 * CHURN_WAVE) threads = 10 * CHURN_WAVE;
  segfit_options_t opt;
  segfit_options_init(&opt);
  opt.name = "threads-churn";
#ifdef SEGFIT_FAULTS
  opt.purge_delay_ms = 0;   /* emptied slabs go back at once: more OS calls to refuse */
#endif
  int rc = FT_RETRY_RC(segfit_heap_create(&opt, &churn_heap));
  CHECK_MSG(rc == 0, "heap_create: %s", segfit_strerror(rc));

  uint64_t rss_warm = 0;
  long done = 0;
  for (int tenth = 1; tenth <= 10; tenth++) {
    for (; done < threads * tenth / 10; done += CHURN_WAVE) {
      pthread_t t[CHURN_WAVE];
      for (int i = 0; i < CHURN_WAVE; i++)
        CHECK(pthread_create(&t[i], NULL, churn_worker, (void *)(uintptr_t)(done + i + 1)) == 0);
      for (int i = 0; i < CHURN_WAVE; i++) CHECK(pthread_join(t[i], NULL) == 0);
    }
    char when[64];
    snprintf(when, sizeof when, "after %ld threads", done);
    churn_check_stats(when);
    if (tenth == 1) rss_warm = th_rss();
  }
  uint64_t rss_end = th_rss();
  CHECK_MSG(!th_rss_checks() || rss_end <= rss_warm + 16 * MiB,
            "RSS grew by %.1f MiB between the first tenth of the threads and the end",
            ((double)rss_end - (double)rss_warm) / MiB);

  for (int i = 0; i < CHURN_SLOTS; i++) {
    void *p = atomic_exchange(&churn_slot[i], NULL);
    if (p != NULL) churn_check_and_free(p);
  }
  ft_pause();   /* the faults stop: everything freed goes back now */
  segfit_trim(churn_heap);
  segfit_stats_t st;
  th_stats(churn_heap, &st);
  printf("after freeing all and trim: live %llu, committed %.1f MiB, segments %llu, slabs %llu\n",
         (unsigned long long)st.live_bytes, (double)st.committed_bytes / MiB,
         (unsigned long long)st.segments, (unsigned long long)st.slabs);
  CHECK(st.live_blocks == 0 && st.live_bytes == 0);
  CHECK_MSG(st.committed_bytes <= 4 * MiB, "trim left %llu B committed in an empty heap",
            (unsigned long long)st.committed_bytes);
  CHECK(segfit_heap_destroy(churn_heap) == 0);
  printf("  churn: %ld threads\n", threads);
}

/* --- main ------------------------------------------------------------------------------------- */
static void run_part(const char *name, void (*part)(void)) {
  th_current = name;
  double t0 = th_now_ms();
  part();
  printf("  ok  %s (%.1f s)\n", name, (th_now_ms() - t0) / 1e3);
  fflush(stdout);
}

/* test-threads [stress | churn]...: the parts named, every part without an argument. */
int main(int argc, char **argv) {
  int stress = argc < 2, churn = argc < 2;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "stress") == 0) {
      stress = 1;
    } else if (strcmp(argv[i], "churn") == 0) {
      churn = 1;
    } else {
      fprintf(stderr, "usage: %s [stress | churn]...\n", argv[0]);
      return 2;
    }
  }
  printf("threads (page size %zu, scale %.2f)\n", segfit_page_size(), th_scale());
  ft_begin();
  if (stress) {
    run_part("transfer", test_transfer);
    run_part("remap race", test_remap_race);
    run_part("destroy race", test_destroy_race);
  }
  if (churn) run_part("churn", test_churn);
  ft_end("threads");
  printf("threads: ok\n");
  return 0;
}
