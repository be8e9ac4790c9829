/* SPDX-License-Identifier: Apache-2.0 */
/* limit-reclaim: a heap filled to its limit and emptied allocates again.
 *
 * The limit (max_bytes) counts committed bytes, and an emptied heap still holds committed
 * memory that is not live: empty slabs kept by thread heaps (the owner's current slabs, slabs
 * whose blocks other threads freed and nobody collected yet), the dirty pools, cached large
 * mappings, a debug heap's quarantine. A request that would cross the limit must reclaim all of
 * that before it fails. The heaps here have a purge delay of a minute, so the background purger
 * cannot give the memory back in time and hide a missing reclaim.
 *
 * The matrix: heaps of 32 MiB filled to the limit with blocks of 64 B .. 3 MiB, emptied, then
 * asked for memory within the limit through each entry point; in four set-ups: one thread
 * does everything; thread A fills and empties the heap and stays alive and idle while thread B
 * asks; thread A fills, B frees A's blocks (remote frees nobody collected) and asks; A fills
 * and exits, B frees A's (abandoned) blocks and asks. Then:
 * statistics count the reclaims and a refusal that remains is a true one; a debug heap's
 * quarantine; threads racing at the limit (no deadlock, nothing lost). Public API only.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "testhelper.h"

#define LONG_DELAY_MS 60000
/* The heaps' limit: 32 MiB, or 8 MiB when SEGFIT_TEST_SCALE shrinks the work (sanitizers,
   qemu). Every request size below is a fraction of it. */
static size_t heap_limit;

static segfit_heap_t *new_heap(const char *name, uint64_t limit, int debug) {
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = name;
  o.max_bytes = limit;
  o.purge_delay_ms = LONG_DELAY_MS;
  o.debug = debug;
  segfit_heap_t *heap;
  CHECK_MSG(segfit_heap_create(&o, &heap) == 0, "create %s", name);
  return heap;
}

static segfit_stats_t stats_of(segfit_heap_t *heap) {
  segfit_stats_t s;
  th_stats(heap, &s);
  return s;
}

/* --- filling and emptying ------------------------------------------------------------------ */
typedef struct {
  segfit_heap_t *heap;
  size_t block;
  void **held;
  size_t n, cap;
  int refusal;   /* last error of the allocation that ended the fill */
} fill_t;

/* Allocates blocks until the limit refuses one. Each block's first and last byte are written,
   so every block really is backed by memory. */
static void fill_to_limit(fill_t *f) {
  f->cap = heap_limit / f->block + 16;
  f->held = calloc(f->cap, sizeof *f->held);
  CHECK_MSG(f->held != NULL, "calloc");
  f->n = 0;
  for (;;) {
    unsigned char *p = segfit_alloc(f->heap, f->block);
    if (p == NULL) {
      f->refusal = segfit_last_error();
      break;
    }
    CHECK_MSG(f->n < f->cap, "%zu blocks of %zu bytes fit under %zu bytes", f->n, f->block,
              (size_t)heap_limit);
    p[0] = 1;
    p[f->block - 1] = 2;
    f->held[f->n++] = p;
  }
}

static void empty_all(fill_t *f) {
  for (size_t i = 0; i < f->n; i++) CHECK_MSG(segfit_free(f->heap, f->held[i]) == 0, "free");
  free(f->held);
  f->held = NULL;
}

/* --- the requests: every entry point that can need new memory ------------------------------- */
typedef enum {
  REQ_SMALL,            /* segfit_alloc of a 64 KiB-slab class */
  REQ_MEDIUM,           /* segfit_alloc of a 4 MiB-slab class */
  REQ_LARGE,            /* segfit_alloc above the small maximum: a mapping of its own */
  REQ_ALIGNED,          /* segfit_alloc_aligned: a slab class chosen for its alignment */
  REQ_ZEROED,           /* segfit_alloc_zeroed, large (never from a kept mapping) */
  REQ_REALLOC_MOVED,    /* segfit_realloc of a slab block into a new large block */
  REQ_REALLOC_REMAPPED, /* segfit_realloc of a large block, grown by mremap */
  REQ_COUNT
} request_t;

static const char *const request_names[REQ_COUNT] = {
    "alloc 1000 B", "alloc 300 KiB", "alloc limit/2", "aligned 1 MiB@1 MiB", "zeroed limit/4",
    "realloc 1000 B->limit/4", "realloc 2 MiB->limit/2"};

/* The block a realloc request starts from, allocated before the fill (live through it). */
static size_t request_source_size(request_t r) {
  return r == REQ_REALLOC_MOVED ? 1000 : r == REQ_REALLOC_REMAPPED ? 2 * MiB : 0;
}

/* Makes the request; on success checks and frees the block and returns 1, else sets *err. */
static int do_request(segfit_heap_t *heap, request_t r, void *source, int *err) {
  size_t size = 0;
  unsigned char *p = NULL;
  errno = 0;
  switch (r) {
    case REQ_SMALL: p = segfit_alloc(heap, size = 1000); break;
    case REQ_MEDIUM: p = segfit_alloc(heap, size = 300 << 10); break;
    case REQ_LARGE: p = segfit_alloc(heap, size = heap_limit / 2); break;
    case REQ_ALIGNED: p = segfit_alloc_aligned(heap, size = MiB, MiB); break;
    case REQ_ZEROED: p = segfit_alloc_zeroed(heap, size = heap_limit / 4); break;
    case REQ_REALLOC_MOVED: p = segfit_realloc(heap, source, size = heap_limit / 4); break;
    case REQ_REALLOC_REMAPPED: p = segfit_realloc(heap, source, size = heap_limit / 2); break;
    default: break;
  }
  if (p == NULL) {
    *err = segfit_last_error();
    CHECK_MSG(errno == ENOMEM, "%s: errno %d", request_names[r], errno);
    return 0;
  }
  if (r == REQ_ALIGNED) CHECK_MSG(((uintptr_t)p & (MiB - 1)) == 0, "aligned: %p", (void *)p);
  if (r == REQ_ZEROED) {
    for (size_t i = 0; i < size; i += 4096) CHECK_MSG(p[i] == 0, "zeroed: byte %zu", i);
  }
  size_t kept = request_source_size(r);
  if (kept != 0) CHECK_MSG(th_intact(p, kept, 77), "%s: contents lost", request_names[r]);
  th_fill(p, size, 5);   /* every page of it is usable */
  CHECK_MSG(th_intact(p, size, 5), "%s: block does not hold its bytes", request_names[r]);
  CHECK_MSG(segfit_free(heap, p) == 0, "%s: free", request_names[r]);
  return 1;
}

/* --- set-ups ------------------------------------------------------------------------------ */
typedef enum {
  SETUP_OWNER,        /* one thread fills, empties and asks */
  SETUP_IDLE_OWNER,   /* A fills and empties, stays alive and idle; B asks */
  SETUP_REMOTE_FREE,  /* A fills and stays alive and idle; B frees A's blocks and asks */
  SETUP_EXITED_OWNER, /* A fills and exits (its slabs abandoned); B frees A's blocks and asks */
  SETUP_COUNT
} setup_t;

static const char *const setup_names[SETUP_COUNT] = {"owner", "idle owner", "remote frees",
                                                     "exited owner"};

/* Thread A of the two-thread set-ups: fills (and empties, unless B does), then waits idle,
   with its thread heap alive, until B is done, or exits at once. */
typedef struct {
  fill_t *fill;
  int empty, exit;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int filled, done;
} owner_t;

static void *owner_main(void *arg) {
  owner_t *o = arg;
  fill_to_limit(o->fill);
  if (o->empty) empty_all(o->fill);
  if (o->exit) return NULL;
  pthread_mutex_lock(&o->lock);
  o->filled = 1;
  pthread_cond_broadcast(&o->cond);
  while (!o->done) pthread_cond_wait(&o->cond, &o->lock);
  pthread_mutex_unlock(&o->lock);
  return NULL;
}

/* One case: a fresh heap, filled with `block`-byte blocks, emptied, then the request.
   Returns 1 if the request succeeded. */
static int run_case(size_t block, request_t r, setup_t setup) {
  char name[64];
  snprintf(name, sizeof name, "limit-%zu-%d-%d", block, (int)r, (int)setup);
  segfit_heap_t *heap = new_heap(name, heap_limit, 0);
  void *source = NULL;
  size_t source_size = request_source_size(r);
  if (source_size != 0) {
    source = segfit_alloc(heap, source_size);
    CHECK_MSG(source != NULL, "source block");
    th_fill(source, source_size, 77);
  }
  fill_t f = {heap, block, NULL, 0, 0, 0};
  owner_t o = {&f, setup == SETUP_IDLE_OWNER, setup == SETUP_EXITED_OWNER,
               PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  pthread_t a;
  if (setup == SETUP_OWNER) {
    fill_to_limit(&f);
    empty_all(&f);
  } else if (setup == SETUP_EXITED_OWNER) {
    CHECK_MSG(pthread_create(&a, NULL, owner_main, &o) == 0, "pthread_create");
    pthread_join(a, NULL);
    empty_all(&f);
  } else {
    CHECK_MSG(pthread_create(&a, NULL, owner_main, &o) == 0, "pthread_create");
    pthread_mutex_lock(&o.lock);
    while (!o.filled) pthread_cond_wait(&o.cond, &o.lock);
    pthread_mutex_unlock(&o.lock);
    if (setup == SETUP_REMOTE_FREE) empty_all(&f);
  }
  CHECK_MSG(f.refusal == SEGFIT_E_LIMIT, "fill with %zu B ended with %d, not the limit", block,
            f.refusal);
  segfit_stats_t before = stats_of(heap);
  CHECK_MSG(before.live_blocks == (source != NULL), "emptied heap has %llu live blocks",
            (unsigned long long)before.live_blocks);
  CHECK_MSG(before.limit_hits == 1, "the fill's refusal counts %llu limit hits",
            (unsigned long long)before.limit_hits);
  CHECK_MSG(before.limit_reclaims >= 1, "the fill's refusal reclaimed nothing first");
  int err = 0;
  int ok = do_request(heap, r, source, &err);
  if (ok) {
    source = NULL;   /* the request freed the reallocated block */
    segfit_stats_t after = stats_of(heap);
    CHECK_MSG(after.limit_hits == before.limit_hits, "%s succeeded but counts as a limit hit",
              request_names[r]);
  } else {
    printf("    FAILED: %-12s filled with %7zu B blocks, %-22s -> error %d (%s)\n",
           setup_names[setup], block, request_names[r], err, segfit_strerror(err));
  }
  if (setup == SETUP_IDLE_OWNER || setup == SETUP_REMOTE_FREE) {
    pthread_mutex_lock(&o.lock);
    o.done = 1;
    pthread_cond_broadcast(&o.cond);
    pthread_mutex_unlock(&o.lock);
    pthread_join(a, NULL);
  }
  if (source != NULL) {
    CHECK_MSG(th_intact(source, source_size, 77), "a failed realloc changed its block");
    CHECK_MSG(segfit_free(heap, source) == 0, "free source");
  }
  segfit_stats_t end = stats_of(heap);
  CHECK_MSG(end.live_blocks == 0 && end.live_bytes == 0, "live at the end: %llu blocks",
            (unsigned long long)end.live_blocks);
  CHECK_MSG(segfit_heap_destroy(heap) == 0, "destroy");
  return ok;
}

static const size_t fill_sizes[] = {64, 4096, 65536, 1 << 20, 3 << 20};
#define FILL_SIZES (sizeof fill_sizes / sizeof fill_sizes[0])

/* Every set-up runs to the end, so that a failure shows the whole matrix. */
static void test_matrix(void) {
  int total = 0;
  for (int setup = 0; setup < SETUP_COUNT; setup++) {
    int failed = 0, cases = 0;
    for (size_t i = 0; i < FILL_SIZES; i++) {
      for (int r = 0; r < REQ_COUNT; r++) {
        cases++;
        if (!run_case(fill_sizes[i], (request_t)r, (setup_t)setup)) failed++;
      }
    }
    printf("  matrix, %s: %d of %d cases failed\n", setup_names[setup], failed, cases);
    total += failed;
  }
  CHECK_MSG(total == 0, "%d requests within the limit refused", total);
}

/* The statistics count the reclaim and the bytes it returned; a reallocation within the
   block's class needs no memory, so it neither reclaims nor fails at the limit. */
static void test_statistics(void) {
  segfit_heap_t *heap = new_heap("limit-stats", heap_limit, 0);
  fill_t f = {heap, 64 << 10, NULL, 0, 0, 0};
  fill_to_limit(&f);
  segfit_stats_t full = stats_of(heap);
  void *q = segfit_realloc(heap, f.held[0], (64 << 10) - 100);
  CHECK_MSG(q == f.held[0], "in place at the limit: %p, error %d", q, segfit_last_error());
  segfit_stats_t in_place = stats_of(heap);
  CHECK_MSG(in_place.limit_reclaims == full.limit_reclaims &&
                in_place.limit_hits == full.limit_hits,
            "an in-place reallocation reclaimed or hit the limit");
  CHECK_MSG(in_place.reallocs_in_place == full.reallocs_in_place + 1, "in place not counted");
  empty_all(&f);
  segfit_stats_t emptied = stats_of(heap);
  CHECK_MSG(emptied.committed_bytes + heap_limit / 2 > heap_limit,
            "the emptied heap holds only %llu committed bytes: the test proves nothing",
            (unsigned long long)emptied.committed_bytes);
  void *p = segfit_alloc(heap, heap_limit / 2);
  CHECK_MSG(p != NULL, "limit/2 after emptying: error %d", segfit_last_error());
  segfit_stats_t after = stats_of(heap);
  CHECK_MSG(after.limit_reclaims == emptied.limit_reclaims + 1, "reclaims %llu -> %llu",
            (unsigned long long)emptied.limit_reclaims, (unsigned long long)after.limit_reclaims);
  uint64_t needed = emptied.committed_bytes + heap_limit / 2 - heap_limit;
  CHECK_MSG(after.limit_reclaimed_bytes - emptied.limit_reclaimed_bytes >= needed,
            "reclaimed %llu bytes, the request needed %llu",
            (unsigned long long)(after.limit_reclaimed_bytes - emptied.limit_reclaimed_bytes),
            (unsigned long long)needed);
  CHECK_MSG(after.limit_hits == emptied.limit_hits, "a reclaimed request counts as a limit hit");
  CHECK_MSG(after.purged_bytes > emptied.purged_bytes, "the reclaim purged nothing");
  CHECK_MSG(segfit_free(heap, p) == 0, "free");
  CHECK_MSG(segfit_heap_destroy(heap) == 0, "destroy");
}

/* A refusal that remains is a true one: every slab keeps one live block, so nothing can be
   reclaimed; the request fails with LIMIT (counted once), the live blocks keep their bytes,
   and once they are freed the same request succeeds. */
static void test_true_refusal(void) {
  segfit_heap_t *heap = new_heap("limit-true", heap_limit, 0);
  size_t block = 64 << 10, per_slab = (512 << 10) / block;
  fill_t f = {heap, block, NULL, 0, 0, 0};
  fill_to_limit(&f);
  size_t kept = 0;
  for (size_t i = 0; i < f.n; i++) {
    if (i % per_slab == 0) {
      th_fill(f.held[i], block, i);
      kept++;
    } else {
      CHECK_MSG(segfit_free(heap, f.held[i]) == 0, "free");
      f.held[i] = NULL;
    }
  }
  segfit_stats_t held = stats_of(heap);
  CHECK_MSG(held.live_blocks == kept, "live blocks %llu, kept %zu",
            (unsigned long long)held.live_blocks, kept);
  errno = 0;
  void *p = segfit_alloc(heap, heap_limit / 2);
  CHECK_MSG(p == NULL && errno == ENOMEM && segfit_last_error() == SEGFIT_E_LIMIT,
            "limit/2 with one live block in every slab: %p, error %d", p, segfit_last_error());
  segfit_stats_t refused = stats_of(heap);
  CHECK_MSG(refused.limit_hits == held.limit_hits + 1, "limit hits %llu -> %llu",
            (unsigned long long)held.limit_hits, (unsigned long long)refused.limit_hits);
  CHECK_MSG(refused.limit_reclaims == held.limit_reclaims + 1, "the refusal did not reclaim first");
  CHECK_MSG(refused.committed_bytes > refused.live_bytes, "nothing held beside the live bytes");
  for (size_t i = 0; i < f.n; i++) {
    if (f.held[i] == NULL) continue;
    CHECK_MSG(th_intact(f.held[i], block, i), "block %zu changed", i);
    CHECK_MSG(segfit_free(heap, f.held[i]) == 0, "free");
  }
  free(f.held);
  p = segfit_alloc(heap, heap_limit / 2);
  CHECK_MSG(p != NULL, "limit/2 once everything is freed: error %d", segfit_last_error());
  CHECK_MSG(segfit_free(heap, p) == 0, "free");
  CHECK_MSG(segfit_heap_destroy(heap) == 0, "destroy");
}

/* A debug heap's quarantine holds freed blocks (and their slabs) back: the reclaim releases
   it. A block written after it was freed is found on the way, and since the allocation that
   reclaimed cannot say so, the next free does (CORRUPTED, the record in the log). */
static void test_debug_quarantine(void) {
  segfit_heap_t *heap = new_heap("limit-debug", heap_limit, 1);
  fill_t f = {heap, 4000, NULL, 0, 0, 0};
  fill_to_limit(&f);
  unsigned char *stale = f.held[f.n - 1];
  empty_all(&f);
  stale[100] = 0x5a;   /* write after free: the block sits in the quarantine */
  void *p = segfit_alloc(heap, heap_limit / 2);
  CHECK_MSG(p != NULL, "limit/2 after emptying a debug heap: error %d", segfit_last_error());
  CHECK_MSG(segfit_free(heap, p) == SEGFIT_E_CORRUPTED, "the damage found by the reclaim is lost");
  segfit_corruption_t rec;
  CHECK_MSG(segfit_debug_corruption(heap, &rec) == 1 && rec.block == (uintptr_t)stale &&
            rec.offset == 100 && rec.kind == SEGFIT_CORRUPTION_WRITE_AFTER_FREE,
            "corruption record of the stale write");
  CHECK_MSG(segfit_debug_corruption(heap, &rec) == 0, "more than one record");
  CHECK_MSG(segfit_heap_destroy(heap) == 0, "destroy");
}

/* Threads racing at the limit: each fills its share of the heap and more until refused, checks
   and frees its blocks, round after round, while the others reclaim; one thread stays idle
   holding empty slabs. No deadlock (the test finishes), no block lost or damaged, a thread
   refused allocates again (in later rounds, or once the others are done), nothing live at the
   end. */
#define RACERS 4
typedef struct {
  segfit_heap_t *heap;
  unsigned seed;
  long rounds;
  size_t refusals, after_refusal;   /* rounds with blocks after the first refusal */
} racer_t;

static void *racer_main(void *arg) {
  racer_t *r = arg;
  static const size_t sizes[] = {48, 700, 4096, 40 << 10, 300 << 10, 2 << 20};
  void *held[4096];
  size_t held_size[4096];
  uint64_t x = r->seed;
  for (long round = 0; round < r->rounds; round++) {
    size_t n = 0;
    while (n < 4096) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      size_t size = sizes[(x >> 33) % (sizeof sizes / sizeof sizes[0])];
      unsigned char *p = segfit_alloc(r->heap, size);
      if (p == NULL) {
        CHECK_MSG(segfit_last_error() == SEGFIT_E_LIMIT, "error %d", segfit_last_error());
        r->refusals++;
        break;
      }
      th_fill(p, size < 256 ? size : 256, n + r->seed);
      held[n] = p;
      held_size[n++] = size;
    }
    /* The others may hold the whole limit in live blocks for a moment: a round may get
       nothing. After a refusal, later rounds must get blocks again. */
    if (n > 0 && r->refusals > 0) r->after_refusal++;
    for (size_t i = 0; i < n; i++) {
      size_t len = held_size[i] < 256 ? held_size[i] : 256;
      CHECK_MSG(th_intact(held[i], len, i + r->seed), "racer %u: block %zu damaged",
                r->seed, i);
      CHECK_MSG(segfit_free(r->heap, held[i]) == 0, "free");
    }
  }
  return NULL;
}


static void test_racing(void) {
  segfit_heap_t *heap = new_heap("limit-race", heap_limit, 0);
  /* An idle owner of empty slabs for the racers to reclaim. */
  fill_t f = {heap, 4096, NULL, 0, 0, 0};
  owner_t o = {&f, 1, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  pthread_t idle, t[RACERS];
  CHECK_MSG(pthread_create(&idle, NULL, owner_main, &o) == 0, "pthread_create");
  pthread_mutex_lock(&o.lock);
  while (!o.filled) pthread_cond_wait(&o.cond, &o.lock);
  pthread_mutex_unlock(&o.lock);
  racer_t r[RACERS];
  for (int i = 0; i < RACERS; i++) {
    r[i] = (racer_t){heap, 1000u + (unsigned)i, th_scaled(40), 0, 0};
    CHECK_MSG(pthread_create(&t[i], NULL, racer_main, &r[i]) == 0, "pthread_create");
  }
  size_t refusals = 0;
  for (int i = 0; i < RACERS; i++) {
    pthread_join(t[i], NULL);
    refusals += r[i].refusals;
  }
  /* A racer refused in its last rounds may have seen the others hold the limit until it ended
     (under emulation, scheduling can starve one thread that long): then the heap must serve it
     now that they are done. */
  for (int i = 0; i < RACERS; i++) {
    if (r[i].refusals > 0 && r[i].after_refusal == 0) {
      void *p = segfit_alloc(heap, 2 << 20);
      CHECK_MSG(p != NULL, "racer %u: still refused once the others were done", r[i].seed);
      CHECK_MSG(segfit_free(heap, p) == 0, "free");
    }
  }
  pthread_mutex_lock(&o.lock);
  o.done = 1;
  pthread_cond_broadcast(&o.cond);
  pthread_mutex_unlock(&o.lock);
  pthread_join(idle, NULL);
  segfit_stats_t s = stats_of(heap);
  CHECK_MSG(refusals > 0, "the racers never reached the limit");
  CHECK_MSG(s.live_blocks == 0, "live blocks at the end: %llu", (unsigned long long)s.live_blocks);
  CHECK_MSG(s.limit_hits == refusals + 1, "limit hits %llu, refusals %zu (+1 for the idle owner)",
            (unsigned long long)s.limit_hits, refusals);
  CHECK_MSG(s.limit_reclaims >= s.limit_hits, "reclaims %llu < hits %llu",
            (unsigned long long)s.limit_reclaims, (unsigned long long)s.limit_hits);
  CHECK_MSG(segfit_trim(heap) == 0, "trim");
  s = stats_of(heap);
  CHECK_MSG(s.committed_bytes == 0, "committed after trim: %llu",
            (unsigned long long)s.committed_bytes);
  CHECK_MSG(segfit_heap_destroy(heap) == 0, "destroy");
  printf("  racing: %zu refusals over %d threads\n", refusals, RACERS);
}

int main(void) {
  heap_limit = th_scale() < 1 ? 8 * MiB : 32 * MiB;
  printf("  limit %zu MiB\n", heap_limit >> 20);
  test_matrix();
  test_statistics();
  test_true_refusal();
  test_debug_quarantine();
  test_racing();
  printf("test-limit: all passed\n");
  return 0;
}
