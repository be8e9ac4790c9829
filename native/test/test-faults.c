/* SPDX-License-Identifier: Apache-2.0 */
/* faults-paths: each of the OS's refusals, one at a time, on the fault-injecting core; then the
 * realloc driver under faults; then RLIMIT_AS (real, in forked children) in the middle of a
 * growth by mremap and at a thread's first allocation.
 *
 * What each refusal must do. mmap: the call fails with OUT_OF_MEMORY (errno ENOMEM) and changes
 * nothing -- no block, no committed byte, no mapping left behind -- except where segfit has a
 * fallback (a thread whose record cannot be mapped uses the shared one). munmap: the call
 * succeeds, the range holds no memory from then on and is unmapped once the OS agrees (at the
 * next purger tick or trim). mremap: the realloc fails with OUT_OF_MEMORY, the block unchanged.
 * madvise(MADV_DONTNEED): the slab stays dirty and counted as committed (its pages are still
 * there), and a later pass purges it. membarrier: the purger leaves the threads' records alone
 * for that tick; heap destroy waits and tries again. Residency is read with mincore(2), so the
 * statistics are checked against what the kernel holds, not against themselves.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faults.h"
#include "testhelper.h"

/* --- plans and figures ------------------------------------------------------------------------ */
static uint64_t total_faults[SF_FAULT_COUNT];

static void plan(unsigned op, uint32_t every) {
  sf_fault_plan_t p;
  memset(&p, 0, sizeof p);
  p.every[op] = every;
  _sf_fault_plan(&p);
}

/* Stops injecting; returns the faults of `op` the plan injected (added to the totals). */
static uint64_t plan_off(unsigned op) {
  uint64_t calls[SF_FAULT_COUNT], faults[SF_FAULT_COUNT];
  _sf_fault_counts(calls, faults);
  _sf_fault_plan(NULL);
  for (unsigned i = 0; i < SF_FAULT_COUNT; i++) total_faults[i] += faults[i];
  return faults[op];
}

static segfit_stats_t stats(segfit_heap_t *h) {
  static segfit_stats_t st;   /* large: one thread reads it at a time */
  CHECK_EQ(segfit_stats(h, &st), 0);
  return st;
}

static size_t pending(size_t *bytes) {
  uint64_t lost;
  size_t n = _sf_os_unmap_pending(bytes, &lost);
  CHECK_EQ(lost, 0);
  return n;
}

/* Pages of [p, p + len) resident in memory, or -1 if the range is not mapped. */
static long resident(const void *p, size_t len) {
  size_t ps = segfit_page_size(), n = (len + ps - 1) / ps;
  /* One byte per 4 KiB, not per page: qemu-user emulating larger pages than the host's fills
     the vector per host page. */
  unsigned char *v = malloc(len / 4096 + 1);
  CHECK(v != NULL);
  long r = 0;
  if (mincore((void *)p, len, v) != 0) {
    CHECK(errno == ENOMEM);
    r = -1;
  } else {
    for (size_t i = 0; i < n; i++) r += v[i] & 1;
  }
  free(v);
  return r;
}

/* Mappings of the process; 0 under the sanitizers, whose own allocators map memory at any
   time (the comparisons then hold trivially; the residency checks still apply). */
static long count_maps(void) { return SANITIZED ? 0 : th_maps(); }

static void expect_refused(void *p) {
  CHECK(p == NULL);
  CHECK_EQ(segfit_last_error(), SEGFIT_E_OUT_OF_MEMORY);
  CHECK_EQ(errno, ENOMEM);
}

/* --- munmap -------------------------------------------------------------------------------- */
TEST(munmap_refused_large_block) {
  segfit_heap_t *h = th_heap("munmap-large", 0);   /* no purge delay: no kept mappings */
  size_t size = 4 * MiB;
  uint8_t *p = segfit_alloc(h, size);
  CHECK(p != NULL);
  memset(p, 0x5A, size);
  CHECK_EQ(resident(p, size), (long)(size / segfit_page_size()));
  /* Checked while the plan still refuses: the purger's retries (every tick) are refused too. */
  plan(SF_FAULT_MUNMAP, 1);
  CHECK_EQ(segfit_free(h, p), 0);
  segfit_stats_t st = stats(h);
  CHECK_EQ(st.live_blocks, 0);
  CHECK_EQ(st.committed_bytes, 0);
  size_t bytes;
  CHECK_EQ(pending(&bytes), 1);
  CHECK_EQ(bytes, size);
  CHECK_EQ(resident(p, size), 0);   /* still mapped, but holding no memory */
  CHECK_EQ(segfit_free(h, p), SEGFIT_E_ALREADY_FREE);
  uint8_t *q = segfit_alloc(h, size);   /* the heap goes on meanwhile */
  CHECK(q != NULL && q != p);
  CHECK_EQ(segfit_free(h, q), 0);
  CHECK_EQ(pending(NULL), 2);
  CHECK(plan_off(SF_FAULT_MUNMAP) >= 2);
  CHECK_EQ(segfit_trim(h), 0);
  CHECK_EQ(pending(NULL), 0);
  CHECK_EQ(resident(p, size), -1);   /* unmapped at last */
  CHECK_EQ(segfit_heap_destroy(h), 0);
}

TEST(munmap_refused_segment) {
  segfit_heap_t *h = th_heap("munmap-segment", 0);
  long maps = count_maps();
  plan(SF_FAULT_MUNMAP, 1);
  /* A new segment: the over-mapping made for alignment cannot be trimmed either. */
  uint8_t *p = segfit_alloc(h, 1000);
  CHECK(p != NULL);
  memset(p, 1, 1000);
  size_t trims = pending(NULL);
  uint8_t *base = (uint8_t *)((uintptr_t)p & ~(SF_SEGMENT_SIZE - 1));
  CHECK_EQ(segfit_free(h, p), 0);   /* the empty segment goes at once (no purge delay) */
  segfit_stats_t st = stats(h);
  CHECK_EQ(st.segments, 0);
  CHECK_EQ(st.reserved_bytes, 0);
  CHECK_EQ(st.committed_bytes, 0);
  size_t bytes;
  CHECK_EQ(pending(&bytes), trims + 1);
  CHECK(bytes >= SF_SEGMENT_SIZE);
  CHECK_EQ(resident(base, SF_SEGMENT_SIZE), 0);
  CHECK(plan_off(SF_FAULT_MUNMAP) >= 1);
  CHECK_EQ(segfit_trim(h), 0);
  CHECK_EQ(pending(NULL), 0);
  CHECK_EQ(resident(base, SF_SEGMENT_SIZE), -1);
  CHECK(count_maps() <= maps + 1);   /* at most the segment metadata, pooled for good */
  CHECK_EQ(segfit_heap_destroy(h), 0);
}

/* --- madvise ------------------------------------------------------------------------------- */
TEST(madvise_refused_keeps_slab_committed) {
  segfit_heap_t *h = th_heap("madvise", 0);
  const size_t bs = 1024, n = ((size_t)64 << 10) / bs;   /* one 64 KiB slab, full */
  uint8_t *b[64];
  for (size_t i = 0; i < n; i++) {
    b[i] = segfit_alloc(h, bs);
    CHECK(b[i] != NULL);
    memset(b[i], (int)i, bs);
  }
  uint8_t *slab = b[0];
  for (size_t i = 1; i < n; i++) if (b[i] < slab) slab = b[i];
  CHECK_EQ(((uintptr_t)slab & 0xFFFF), 0);
  plan(SF_FAULT_MADVISE, 1);
  for (size_t i = 0; i < n; i++) CHECK_EQ(segfit_free(h, b[i]), 0);   /* emptied: purge now */
  segfit_stats_t st = stats(h);   /* the purger's passes are refused too, meanwhile */
  long pages = resident(slab, (size_t)64 << 10);
  printf("    madvise refused: live %llu, committed %llu, slab pages resident %ld\n",
         (unsigned long long)st.live_bytes, (unsigned long long)st.committed_bytes, pages);
  CHECK_EQ(st.live_blocks, 0);
  CHECK_EQ(st.committed_bytes, ((size_t)64 << 10));   /* still backed, still counted */
  CHECK_EQ(pages * (long)segfit_page_size(), (long)(64 << 10));
  CHECK(plan_off(SF_FAULT_MADVISE) >= 1);
  CHECK_EQ(segfit_trim(h), 0);   /* the OS agrees now */
  st = stats(h);
  CHECK_EQ(st.committed_bytes, 0);
  CHECK(resident(slab, (size_t)64 << 10) <= 0);
  CHECK_EQ(segfit_heap_destroy(h), 0);
}

/* --- mremap -------------------------------------------------------------------------------- */
TEST(mremap_refused_realloc_unchanged) {
  segfit_heap_t *h = th_heap("mremap", -1);
  size_t size = 2 * MiB + 100;
  uint8_t *p = segfit_alloc(h, size);
  CHECK(p != NULL);
  th_fill(p, size, 7);
  segfit_stats_t before = stats(h);
  int64_t usable = segfit_usable_size(h, p);
  plan(SF_FAULT_MREMAP, 1);
  static const size_t to[] = {8 * MiB, 3 * MiB, 1 * MiB + 4096 * 3};   /* grow, grow, shrink */
  for (size_t i = 0; i < sizeof to / sizeof to[0]; i++) {
    errno = 0;
    expect_refused(segfit_realloc(h, p, to[i]));
    CHECK_EQ(segfit_usable_size(h, p), usable);
    CHECK(th_intact(p, size, 7));
    segfit_stats_t st = stats(h);
    CHECK_EQ(st.committed_bytes, before.committed_bytes);
    CHECK_EQ(st.live_bytes, before.live_bytes);
    CHECK_EQ(st.large_blocks, 1);
  }
  CHECK_EQ(plan_off(SF_FAULT_MREMAP), 3);
  uint8_t *q = segfit_realloc(h, p, 8 * MiB);
  CHECK(q != NULL);
  CHECK(th_intact(q, size, 7));
  CHECK_EQ(segfit_free(h, q), 0);
  CHECK_EQ(segfit_trim(h), 0);
  CHECK_EQ(stats(h).committed_bytes, 0);
  CHECK_EQ(segfit_heap_destroy(h), 0);
}

/* A kept mapping too small for a request grows by mremap; refused, it goes back to the OS and
   the request gets a fresh mapping. */
TEST(mremap_refused_kept_mapping_unmapped) {
  segfit_heap_t *h = th_heap("mremap-kept", 60 * 1000);
  uint8_t *p = segfit_alloc(h, 2 * MiB);
  CHECK(p != NULL);
  th_fill(p, 2 * MiB, 5);
  CHECK_EQ(segfit_free(h, p), 0);
  CHECK_EQ(stats(h).committed_bytes, 2 * MiB);
  long maps = count_maps();
  plan(SF_FAULT_MREMAP, 1);
  uint8_t *q = segfit_alloc(h, 3 * MiB);
  CHECK_EQ(plan_off(SF_FAULT_MREMAP), 1);
  CHECK(q != NULL);
  th_fill(q, 3 * MiB, 6);
  CHECK(SANITIZED || count_maps() <= maps + 1);
  segfit_stats_t st = stats(h);
  CHECK_EQ(st.committed_bytes, 3 * MiB);           /* the kept 2 MiB went back */
  CHECK_EQ(st.large_blocks, 1);
  CHECK_EQ(segfit_free(h, q), 0);
  CHECK_EQ(segfit_trim(h), 0);
  CHECK_EQ(stats(h).committed_bytes, 0);
  CHECK_EQ(segfit_heap_destroy(h), 0);
}

/* --- mmap ---------------------------------------------------------------------------------- */
TEST(mmap_refused_slab_and_large) {
  segfit_heap_t *h = th_heap("mmap", -1);
  static const size_t sizes[] = {100, 5000, 300000, 4 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    plan(SF_FAULT_MMAP, 1);
    errno = 0;
    expect_refused(segfit_alloc(h, sizes[i]));
    errno = 0;
    expect_refused(segfit_alloc_zeroed(h, sizes[i]));
    errno = 0;
    expect_refused(segfit_alloc_aligned(h, sizes[i], 4096));
    CHECK(plan_off(SF_FAULT_MMAP) >= 3);
    segfit_stats_t st = stats(h);
    CHECK_EQ(st.live_blocks, 0);
    CHECK_EQ(st.committed_bytes, 0);
    CHECK_EQ(st.segments, 0);
    CHECK_EQ(pending(NULL), 0);
  }
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint8_t *p = segfit_alloc(h, sizes[i]);
    CHECK(p != NULL);
    memset(p, 3, sizes[i]);
    CHECK_EQ(segfit_free(h, p), 0);
  }
  CHECK_EQ(segfit_heap_destroy(h), 0);
}

/* The table of large blocks grows (a mapping) at its 33rd block: the block's own mapping
   succeeds, the table's is refused, and the block must go again. */
TEST(mmap_refused_large_table) {
  segfit_heap_t *h = th_heap("mmap-table", 0);
  uint8_t *p[34];
  for (int i = 0; i < 32; i++) CHECK((p[i] = segfit_alloc(h, 2 * MiB)) != NULL);
  segfit_stats_t before = stats(h);
  long maps = count_maps();
  plan(SF_FAULT_MMAP, 2);   /* the block's mapping (odd call) succeeds, the table's fails */
  errno = 0;
  expect_refused(segfit_alloc(h, 2 * MiB));
  CHECK_EQ(plan_off(SF_FAULT_MMAP), 1);
  segfit_stats_t st = stats(h);
  CHECK_EQ(st.large_blocks, 32);
  CHECK_EQ(st.committed_bytes, before.committed_bytes);
  CHECK_EQ(count_maps(), maps);   /* the refused block's mapping went again */
  for (int i = 32; i < 34; i++) CHECK((p[i] = segfit_alloc(h, 2 * MiB)) != NULL);
  for (int i = 0; i < 34; i++) CHECK_EQ(segfit_free(h, p[i]), 0);
  CHECK_EQ(stats(h).committed_bytes, 0);
  CHECK_EQ(segfit_heap_destroy(h), 0);
}

/* Heap creation (its body, a reservation pre-faulted with MAP_POPULATE), and thread heaps: a
   thread's first call on a heap takes a record from a pool that grows by mappings of 16; over
   40 heaps the pool runs dry, so that mapping is refused too. */
TEST(mmap_refused_heap_and_thread_heap) {
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = "refused";
  segfit_heap_t *h = NULL;
  plan(SF_FAULT_MMAP, 1);
  CHECK_EQ(segfit_heap_create(&o, &h), SEGFIT_E_OUT_OF_MEMORY);
  CHECK(h == NULL);
  plan_off(SF_FAULT_MMAP);
  long maps = count_maps();
  o.reserve_bytes = SF_SEGMENT_SIZE;
  o.pre_touch = 1;
  plan(SF_FAULT_MMAP, 2);   /* the body and the over-mapping succeed... */
  int rc = segfit_heap_create(&o, &h);
  CHECK_EQ(plan_off(SF_FAULT_MMAP), 1);   /* ...the MAP_POPULATE remapping is refused */
  CHECK_EQ(rc, SEGFIT_E_OUT_OF_MEMORY);
  CHECK_EQ(pending(NULL), 0);
  CHECK(count_maps() <= maps);
  segfit_heap_t *heaps[40];
  for (int i = 0; i < 40; i++) {
    heaps[i] = th_heap("thread-heap", -1);
    plan(SF_FAULT_MMAP, 1);
    errno = 0;
    expect_refused(segfit_alloc(heaps[i], 64));
    plan_off(SF_FAULT_MMAP);
    void *p = segfit_alloc(heaps[i], 64);
    CHECK(p != NULL);
    CHECK_EQ(segfit_free(heaps[i], p), 0);
  }
  for (int i = 0; i < 40; i++) CHECK_EQ(segfit_heap_destroy(heaps[i]), 0);
}

/* A debug heap's quarantine is mapped on the first free: refused, the block is freed at once. */
TEST(mmap_refused_debug_quarantine) {
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = "debug";
  o.debug = 1;
  segfit_heap_t *h;
  CHECK_EQ(segfit_heap_create(&o, &h), 0);
  void *p = segfit_alloc(h, 200);
  CHECK(p != NULL);
  plan(SF_FAULT_MMAP, 1);
  CHECK_EQ(segfit_free(h, p), 0);
  CHECK_EQ(plan_off(SF_FAULT_MMAP), 1);
  CHECK_EQ(segfit_free(h, p), SEGFIT_E_ALREADY_FREE);
  CHECK_EQ(stats(h).live_blocks, 0);
  CHECK_EQ(segfit_heap_destroy(h), 0);
}

/* --- membarrier ----------------------------------------------------------------------------- */
static segfit_heap_t *mb_heap;
static pthread_mutex_t mb_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mb_cond = PTHREAD_COND_INITIALIZER;
static int mb_stage;

static void mb_wait(int stage) {
  pthread_mutex_lock(&mb_lock);
  while (mb_stage < stage) pthread_cond_wait(&mb_cond, &mb_lock);
  pthread_mutex_unlock(&mb_lock);
}

static void mb_set(int stage) {
  pthread_mutex_lock(&mb_lock);
  mb_stage = stage;
  pthread_cond_broadcast(&mb_cond);
  pthread_mutex_unlock(&mb_lock);
}

/* Allocates and frees (its slab stays current: purge delay), then idles until told to go. */
static void *mb_idler(void *arg) {
  (void)arg;
  for (int i = 0; i < 50; i++) {
    void *p = segfit_alloc(mb_heap, 3000);
    CHECK(p != NULL);
    memset(p, 1, 3000);
    CHECK_EQ(segfit_free(mb_heap, p), 0);
  }
  mb_set(1);
  mb_wait(2);
  return NULL;
}

/* Without the barrier the purger cannot take an idle thread's record over: its empty current
   slab stays committed until the barrier works again. */
TEST(membarrier_refused_purge_leaves_records) {
  if (_sf_use_fence) {
    printf("    skip: membarrier unavailable here (fence mode: no barrier to refuse)\n");
    return;
  }
  mb_heap = th_heap("membarrier", 20);
  mb_stage = 0;
  plan(SF_FAULT_MEMBARRIER, 1);   /* before the thread goes idle: no tick may take it over */
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, mb_idler, NULL), 0);
  mb_wait(1);
  CHECK_EQ(segfit_trim(mb_heap), 0);
  usleep(150 * 1000);   /* purger ticks, all refused */
  segfit_stats_t st = stats(mb_heap);
  CHECK(plan_off(SF_FAULT_MEMBARRIER) >= 1);
  CHECK_EQ(st.live_blocks, 0);
  CHECK(st.committed_bytes > 0);
  CHECK_EQ(segfit_trim(mb_heap), 0);
  CHECK_EQ(stats(mb_heap).committed_bytes, 0);
  mb_set(2);
  CHECK_EQ(pthread_join(t, NULL), 0);
  CHECK_EQ(segfit_heap_destroy(mb_heap), 0);
}

/* The borrowers' barrier says when it did not run: a refused membarrier, or fence mode. */
TEST(membarrier_refused_slab_barrier_says_so) {
  if (_sf_use_fence) {
    CHECK_EQ(segfit_slab_barrier(), 0);
    return;
  }
  CHECK_EQ(segfit_slab_barrier(), 1);
  plan(SF_FAULT_MEMBARRIER, 1);
  CHECK_EQ(segfit_slab_barrier(), 0);
  CHECK(plan_off(SF_FAULT_MEMBARRIER) >= 1);
  CHECK_EQ(segfit_slab_barrier(), 1);
}

static char stop_file[64];
static void *create_stop_file(void *arg) {
  (void)arg;
  usleep(30 * 1000);
  FILE *f = fopen(stop_file, "w");
  CHECK(f != NULL);
  fclose(f);
  return NULL;
}

/* Destroy needs the barrier: it waits until the OS gives it (here: until a stop file ends the
   plan), then finishes. */
TEST(membarrier_refused_destroy_waits) {
  if (_sf_use_fence) {
    printf("    skip: membarrier unavailable here (fence mode: no barrier to refuse)\n");
    return;
  }
  segfit_heap_t *h = th_heap("destroy", -1);
  void *p = segfit_alloc(h, 100);
  CHECK(p != NULL);
  snprintf(stop_file, sizeof stop_file, "/tmp/segfit-fault-stop-%d", (int)getpid());
  unlink(stop_file);
  sf_fault_plan_t pl;
  CHECK_EQ(_sf_fault_parse("membarrier=every:1,stop=/nowhere", &pl), 0);
  snprintf(pl.stop, sizeof pl.stop, "%s", stop_file);
  _sf_fault_plan(&pl);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, create_stop_file, NULL), 0);
  CHECK_EQ(segfit_heap_destroy(h), 0);
  CHECK_EQ(access(stop_file, F_OK), 0);   /* it did not finish before the barrier worked */
  CHECK_EQ(pthread_join(t, NULL), 0);
  uint64_t calls[SF_FAULT_COUNT], faults[SF_FAULT_COUNT];
  _sf_fault_counts(calls, faults);
  CHECK(faults[SF_FAULT_MEMBARRIER] >= 1);
  total_faults[SF_FAULT_MEMBARRIER] += faults[SF_FAULT_MEMBARRIER];
  _sf_fault_plan(NULL);
  unlink(stop_file);
  CHECK(segfit_alloc(h, 10) == NULL && segfit_last_error() == SEGFIT_E_CLOSED);
}

/* --- the plan's syntax ------------------------------------------------------------------------ */
TEST(plan_syntax) {
  sf_fault_plan_t p;
  CHECK_EQ(_sf_fault_parse("mmap=every:5,all=rate:0.25,munmap=every:3,seed=9,stop=/x/y", &p), 0);
  CHECK(p.every[SF_FAULT_MMAP] == 0 && p.per_million[SF_FAULT_MMAP] == 250000);
  CHECK(p.every[SF_FAULT_MUNMAP] == 3 && p.seed == 9 && strcmp(p.stop, "/x/y") == 0);
  static const char *bad[] = {"mmap", "mmap=5", "mmap=every:0", "mmap=rate:2", "brk=every:2",
                              "seed=x", "mmap=every:3,", "mmap=every:3x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_EQ(_sf_fault_parse(bad[i], &p), -1);
}

/* --- the realloc driver under faults ------------------------------------------------------ */
typedef struct { uint8_t *p; size_t size; uint64_t seed; } rblock_t;

static size_t rsize(th_rng_t *r) {
  switch (th_below(r, 4)) {
    case 0: return 1 + th_below(r, 1024);
    case 1: return 1024 + th_below(r, 64 << 10);
    case 2: return (64 << 10) + th_below(r, 1 << 20);
    default: return (1 << 20) + th_below(r, 6 << 20);   /* large: mremap */
  }
}

/* Checks a block's pattern at both ends and in the middle (large blocks are not read whole). */
static int rintact(const rblock_t *b) {
  size_t n = b->size < 4096 ? b->size : 4096;
  if (!th_intact(b->p, n, b->seed)) return 0;
  if (b->size > n) {
    const uint8_t *t = b->p + b->size - 4096;
    for (size_t i = 0; i < 4096; i++)
      if (t[i] != th_pattern(b->seed, b->size - 4096 + i)) return 0;
  }
  return 1;
}

static void rfill(rblock_t *b) {
  size_t n = b->size < 4096 ? b->size : 4096;
  th_fill(b->p, n, b->seed);
  if (b->size > n)
    for (size_t i = b->size - 4096; i < b->size; i++) b->p[i] = th_pattern(b->seed, i);
}

typedef struct { segfit_heap_t *heap; uint64_t seed; long ops, refused, moved; } rarg_t;

static void *realloc_driver(void *argp) {
  rarg_t *a = argp;
  th_rng_t r = {a->seed};
  rblock_t b[24];
  memset(b, 0, sizeof b);
  for (long op = 0; op < a->ops; op++) {
    rblock_t *x = &b[th_below(&r, 24)];
    size_t ns = rsize(&r);
    uint64_t faults = _sf_fault_thread_faults();
    errno = 0;
    uint8_t *q = x->p == NULL && th_below(&r, 2) ? segfit_alloc_zeroed(a->heap, ns)
                                                   : segfit_realloc(a->heap, x->p, ns);
    if (q == NULL) {
      /* Refused: OUT_OF_MEMORY because of an injected fault, and the block as it was. */
      CHECK_EQ(segfit_last_error(), SEGFIT_E_OUT_OF_MEMORY);
      CHECK_EQ(errno, ENOMEM);
      CHECK(_sf_fault_thread_faults() > faults);
      if (x->p != NULL) {
        CHECK(rintact(x));
        CHECK(segfit_usable_size(a->heap, x->p) >= (int64_t)x->size);
      }
      a->refused++;
      continue;
    }
    if (x->p != NULL) {
      size_t kept = x->size < ns ? x->size : ns;
      size_t n = kept < 4096 ? kept : 4096;
      CHECK(th_intact(q, n, x->seed));
      a->moved += q != x->p;
    }
    CHECK(segfit_usable_size(a->heap, q) >= (int64_t)ns);
    x->p = q;
    x->size = ns;
    x->seed = th_next(&r);
    rfill(x);
    if (th_below(&r, 8) == 0) {
      CHECK(rintact(x));
      CHECK_EQ(segfit_free(a->heap, x->p), 0);
      x->p = NULL;
    }
  }
  for (int i = 0; i < 24; i++)
    if (b[i].p != NULL) {
      CHECK(rintact(&b[i]));
      CHECK_EQ(segfit_free(a->heap, b[i].p), 0);
    }
  return NULL;
}

static void realloc_under(const char *spec) {
  sf_fault_plan_t pl;
  CHECK_EQ(_sf_fault_parse(spec, &pl), 0);
  segfit_heap_t *h = th_heap("realloc", -1), *h0 = th_heap("realloc-0", 0);
  rarg_t a[3] = {{h, 11, 0, 0, 0}, {h, 12, 0, 0, 0}, {h0, 13, 0, 0, 0}};
  long ops = th_scaled(6000);
  _sf_fault_plan(&pl);
  pthread_t t[3];
  for (int i = 0; i < 3; i++) {
    a[i].ops = ops;
    CHECK_EQ(pthread_create(&t[i], NULL, realloc_driver, &a[i]), 0);
  }
  for (int i = 0; i < 3; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
  uint64_t calls[SF_FAULT_COUNT], faults[SF_FAULT_COUNT];
  _sf_fault_counts(calls, faults);
  _sf_fault_plan(NULL);
  for (unsigned i = 0; i < SF_FAULT_COUNT; i++) total_faults[i] += faults[i];
  /* The faults stopped: everything freed goes back. */
  CHECK_EQ(segfit_trim(NULL), 0);
  for (int i = 0; i < 2; i++) {
    segfit_stats_t st = stats(i == 0 ? h : h0);
    CHECK_EQ(st.live_blocks, 0);
    CHECK_EQ(st.live_bytes, 0);
    CHECK_EQ(st.committed_bytes, 0);
  }
  CHECK_EQ(pending(NULL), 0);
  printf("    %s: %ld reallocations, %ld refused (OUT_OF_MEMORY, block intact), %ld moved; "
         "injected mmap %llu/%llu mremap %llu/%llu munmap %llu/%llu madvise %llu/%llu\n",
         spec, 3 * ops, a[0].refused + a[1].refused + a[2].refused,
         a[0].moved + a[1].moved + a[2].moved,
         (unsigned long long)faults[SF_FAULT_MMAP], (unsigned long long)calls[SF_FAULT_MMAP],
         (unsigned long long)faults[SF_FAULT_MREMAP], (unsigned long long)calls[SF_FAULT_MREMAP],
         (unsigned long long)faults[SF_FAULT_MUNMAP], (unsigned long long)calls[SF_FAULT_MUNMAP],
         (unsigned long long)faults[SF_FAULT_MADVISE], (unsigned long long)calls[SF_FAULT_MADVISE]);
  CHECK(faults[SF_FAULT_MREMAP] > 0 && faults[SF_FAULT_MMAP] > 0);
  CHECK(a[0].refused + a[1].refused + a[2].refused > 0);
  CHECK_EQ(segfit_heap_destroy(h), 0);
  CHECK_EQ(segfit_heap_destroy(h0), 0);
}

TEST(realloc_driver_every) {
  realloc_under("mmap=every:4,mremap=every:3,munmap=every:3,madvise=every:2,membarrier=every:2");
}
TEST(realloc_driver_random) { realloc_under("all=rate:0.2,seed=99"); }

/* --- RLIMIT_AS, real (forked children) ----------------------------------------------------- */
/* Leaves `room` bytes of address space (the hard limit stays, so it can be raised again);
   exits 77 where the limit is not enforced (qemu-user). */
static void limit_as(size_t room) {
  struct rlimit rl;
  CHECK_EQ(getrlimit(RLIMIT_AS, &rl), 0);
  rl.rlim_cur = th_vm_size() + room;
  CHECK_EQ(setrlimit(RLIMIT_AS, &rl), 0);
  void *probe = mmap(NULL, room + ((size_t)1 << 30), PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (probe != MAP_FAILED) {
    printf("    skip: RLIMIT_AS is not enforced here\n");
    fflush(stdout);
    _exit(77);
  }
}

static void unlimit_as(void) {
  struct rlimit rl;
  CHECK_EQ(getrlimit(RLIMIT_AS, &rl), 0);
  rl.rlim_cur = rl.rlim_max;
  CHECK_EQ(setrlimit(RLIMIT_AS, &rl), 0);
}

static void run_child(void (*fn)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    fn();
    fflush(stdout);
    _exit(0);
  }
  int status;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77));
}

/* A block grown by realloc (mremap) until the address space runs out: each refusal leaves the
   block as it was, and after it shrinks and is freed, the room is back. */
static void mremap_growth_child(void) {
  segfit_heap_t *h = th_heap("rlimit-mremap", 0);
  size_t size = 8 * MiB;
  uint8_t *p = segfit_alloc(h, size);
  CHECK(p != NULL);
  th_fill(p, size, 3);
  limit_as(96 * MiB);
  int grown = 0;
  for (;;) {
    size_t next = size * 2;
    errno = 0;
    uint8_t *q = segfit_realloc(h, p, next);
    if (q == NULL) {
      expect_refused(q);
      CHECK_EQ(segfit_usable_size(h, p), (int64_t)size);
      CHECK(th_intact(p, 8 * MiB, 3));
      CHECK_EQ(stats(h).committed_bytes, size);
      break;
    }
    CHECK(th_intact(q, 8 * MiB, 3));
    memset(q + size, 0x77, next - size);   /* the new part is usable */
    p = q;
    size = next;
    grown++;
    CHECK(grown < 20);
  }
  printf("    RLIMIT_AS: grown %d times by mremap to %zu MiB, then refused; block intact\n",
         grown, size / MiB);
  uint8_t *q = segfit_realloc(h, p, 8 * MiB);   /* shrinking needs no new room */
  CHECK(q != NULL && th_intact(q, 8 * MiB, 3));
  CHECK_EQ(segfit_free(h, q), 0);
  CHECK_EQ(segfit_trim(h), 0);
  segfit_stats_t st = stats(h);
  CHECK_EQ(st.live_blocks, 0);
  CHECK_EQ(st.committed_bytes, 0);
  uint8_t *again = segfit_alloc(h, 64 * MiB);   /* the room is back */
  CHECK(again != NULL);
  memset(again, 1, 64 * MiB);
  CHECK_EQ(segfit_free(h, again), 0);
  CHECK_EQ(segfit_heap_destroy(h), 0);
}

TEST(rlimit_as_mremap_growth) {
  if (SANITIZED) {
    printf("    skip: sanitizer runtimes reserve terabytes of address space\n");
    return;
  }
  run_child(mremap_growth_child);
}

/* A thread's first allocation with no address space left: its record, its thread heap and a
   segment are all mappings. Run first, in a child of a process that has not allocated yet, so
   that the 64 threads holding records and thread heaps use up whole pool chunks (thread.c
   maps records 64 at a time, heap.c thread heaps 16 at a time): the new thread's record is
   refused (it falls back to the shared one), then its thread heap. The call must fail with
   OUT_OF_MEMORY; once the limit is raised, the same thread allocates, frees and exits. */
#define HOLDERS 64
static segfit_heap_t *first_heap;
static _Atomic(int) holders_ready;
static void *holder(void *arg) {
  (void)arg;
  void *p = segfit_alloc(first_heap, 64);
  CHECK(p != NULL);
  atomic_fetch_add(&holders_ready, 1);
  mb_wait(3);
  CHECK_EQ(segfit_free(first_heap, p), 0);
  return NULL;
}

static void *first_call(void *arg) {
  segfit_heap_t *fresh = arg;
  mb_wait(1);   /* the limit is set */
  errno = 0;
  expect_refused(segfit_alloc(fresh, 100));
  expect_refused(segfit_alloc(fresh, 2 * MiB));
  int local;
  CHECK_EQ(segfit_free(fresh, &local), SEGFIT_E_NOT_A_BLOCK);
  mb_set(2);
  mb_wait(3);   /* the limit is raised */
  uint8_t *p = segfit_alloc(fresh, 100), *q = segfit_alloc(fresh, 2 * MiB);
  CHECK(p != NULL && q != NULL);
  memset(p, 1, 100);
  memset(q, 2, 2 * MiB);
  CHECK_EQ(segfit_free(fresh, p), 0);
  CHECK_EQ(segfit_free(fresh, q), 0);
  return NULL;
}

static void first_alloc_child(void) {
  first_heap = th_heap("rlimit-holders", -1);
  segfit_heap_t *fresh = th_heap("rlimit-first", -1);   /* no segment yet */
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 128 << 10);
  pthread_t hold[HOLDERS], t;
  mb_stage = 0;
  for (int i = 0; i < HOLDERS; i++) CHECK_EQ(pthread_create(&hold[i], &attr, holder, NULL), 0);
  CHECK_EQ(pthread_create(&t, &attr, first_call, fresh), 0);
  while (atomic_load(&holders_ready) < HOLDERS) usleep(1000);
  limit_as(0);
  mb_set(1);
  mb_wait(2);
  unlimit_as();
  mb_set(3);
  CHECK_EQ(pthread_join(t, NULL), 0);
  for (int i = 0; i < HOLDERS; i++) CHECK_EQ(pthread_join(hold[i], NULL), 0);
  CHECK_EQ(segfit_trim(NULL), 0);
  segfit_stats_t st = stats(NULL);
  CHECK_EQ(st.live_blocks, 0);
  CHECK_EQ(st.committed_bytes, 0);
  printf("    RLIMIT_AS: a thread's first allocation refused (OUT_OF_MEMORY), then served\n");
}

TEST(rlimit_as_first_allocation_of_a_thread) {
  if (SANITIZED) {
    printf("    skip: sanitizer runtimes reserve terabytes of address space\n");
    return;
  }
  run_child(first_alloc_child);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("faults-paths (page size %zu)\n", segfit_page_size());
  RUN(rlimit_as_first_allocation_of_a_thread);   /* first: see there */
  RUN(plan_syntax);
  RUN(munmap_refused_large_block);
  RUN(munmap_refused_segment);
  RUN(madvise_refused_keeps_slab_committed);
  RUN(mremap_refused_realloc_unchanged);
  RUN(mremap_refused_kept_mapping_unmapped);
  RUN(mmap_refused_slab_and_large);
  RUN(mmap_refused_large_table);
  RUN(mmap_refused_heap_and_thread_heap);
  RUN(mmap_refused_debug_quarantine);
  RUN(membarrier_refused_purge_leaves_records);
  RUN(membarrier_refused_destroy_waits);
  RUN(membarrier_refused_slab_barrier_says_so);
  RUN(realloc_driver_every);
  RUN(realloc_driver_random);
  RUN(rlimit_as_mremap_growth);
  printf("faults-paths: injected");
  for (unsigned op = 0; op < SF_FAULT_COUNT; op++)
    printf(" %s %llu", _sf_fault_name(op), (unsigned long long)total_faults[op]);
  printf("\nfaults-paths: ok\n");
  return 0;
}
