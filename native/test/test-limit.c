/* SPDX-License-Identifier: Apache-2.0 */
/* segfit hostile tests (issue 12): a heap filled to its limit and emptied allocates again.
 *
 * The limit (max_bytes) counts committed bytes, and an emptied heap still holds committed
 * memory that is not live: empty slabs kept by thread heaps (the owner's current slabs, slabs
 * whose blocks other threads freed and nobody collected yet), the dirty pools, cached large
 * mappings, a debug heap's quarantine. A request that would cross the limit must reclaim all of
 * that before it fails. The heaps here have a purge delay of a minute, so the background purger
 * cannot give the memory back in time and hide a missing reclaim.
 *
 * The matrix: heaps of 32 MiB filled to the limit with blocks of 64 B .. 3 MiB, emptied, then
 * asked for memory within the limit through each entry point; in three set-ups: one thread
 * does everything; thread A fills and empties the heap and stays alive and idle while thread B
 * asks; thread A fills, B frees A's blocks (remote frees nobody collected) and asks. Then:
 * statistics count the reclaims and a refusal that remains is a true one; a debug heap's
 * quarantine; threads racing at the limit (no deadlock, nothing lost). Public API only.
 */
#include "segfit.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                     \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)
#define REQUIRE(cond, ...)                                                                         \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: requirement failed: %s: ", __FILE__, __LINE__, #cond);               \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

#define MIB ((size_t)1 << 20)
#define LIMIT (32 * MIB)
#define LONG_DELAY_MS 60000

static segfit_heap_t *new_heap(const char *name, uint64_t limit, int debug) {
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = name;
  o.max_bytes = limit;
  o.purge_delay_ms = LONG_DELAY_MS;
  o.debug = debug;
  segfit_heap_t *heap;
  REQUIRE(segfit_heap_create(&o, &heap) == 0, "create %s", name);
  return heap;
}

static segfit_stats_t stats_of(segfit_heap_t *heap) {
  segfit_stats_t s;
  REQUIRE(segfit_stats(heap, &s) == 0, "segfit_stats");
  return s;
}

static unsigned char pattern_byte(size_t seed, size_t offset) {
  return (unsigned char)((seed * 131u + offset * 7u + 1u) & 0xff);
}
static void fill(unsigned char *p, size_t n, size_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = pattern_byte(seed, i);
}
static int intact(const unsigned char *p, size_t n, size_t seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern_byte(seed, i)) return 0;
  return 1;
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
  f->cap = LIMIT / f->block + 16;
  f->held = calloc(f->cap, sizeof *f->held);
  REQUIRE(f->held != NULL, "calloc");
  f->n = 0;
  for (;;) {
    unsigned char *p = segfit_alloc(f->heap, f->block);
    if (p == NULL) {
      f->refusal = segfit_last_error();
      break;
    }
    REQUIRE(f->n < f->cap, "%zu blocks of %zu bytes fit under %zu bytes", f->n, f->block,
            (size_t)LIMIT);
    p[0] = 1;
    p[f->block - 1] = 2;
    f->held[f->n++] = p;
  }
}

static void empty_all(fill_t *f) {
  for (size_t i = 0; i < f->n; i++) CHECK(segfit_free(f->heap, f->held[i]) == 0, "free");
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
    "alloc 1000 B", "alloc 300 KiB", "alloc 16 MiB", "aligned 1 MiB@1 MiB", "zeroed 8 MiB",
    "realloc 1000 B->8 MiB", "realloc 2 MiB->16 MiB"};

/* The block a realloc request starts from, allocated before the fill (live through it). */
static size_t request_source_size(request_t r) {
  return r == REQ_REALLOC_MOVED ? 1000 : r == REQ_REALLOC_REMAPPED ? 2 * MIB : 0;
}

/* Makes the request; on success checks and frees the block and returns 1, else sets *err. */
static int do_request(segfit_heap_t *heap, request_t r, void *source, int *err) {
  size_t size = 0;
  unsigned char *p = NULL;
  errno = 0;
  switch (r) {
    case REQ_SMALL: p = segfit_alloc(heap, size = 1000); break;
    case REQ_MEDIUM: p = segfit_alloc(heap, size = 300 << 10); break;
    case REQ_LARGE: p = segfit_alloc(heap, size = 16 * MIB); break;
    case REQ_ALIGNED: p = segfit_alloc_aligned(heap, size = MIB, MIB); break;
    case REQ_ZEROED: p = segfit_alloc_zeroed(heap, size = 8 * MIB); break;
    case REQ_REALLOC_MOVED: p = segfit_realloc(heap, source, size = 8 * MIB); break;
    case REQ_REALLOC_REMAPPED: p = segfit_realloc(heap, source, size = 16 * MIB); break;
    default: break;
  }
  if (p == NULL) {
    *err = segfit_last_error();
    CHECK(errno == ENOMEM, "%s: errno %d", request_names[r], errno);
    return 0;
  }
  if (r == REQ_ALIGNED) CHECK(((uintptr_t)p & (MIB - 1)) == 0, "aligned: %p", (void *)p);
  if (r == REQ_ZEROED) {
    for (size_t i = 0; i < size; i += 4096) CHECK(p[i] == 0, "zeroed: byte %zu", i);
  }
  size_t kept = request_source_size(r);
  if (kept != 0) CHECK(intact(p, kept, 77), "%s: contents lost", request_names[r]);
  fill(p, size, 5);   /* every page of it is usable */
  CHECK(intact(p, size, 5), "%s: block does not hold its bytes", request_names[r]);
  CHECK(segfit_free(heap, p) == 0, "%s: free", request_names[r]);
  return 1;
}

/* --- set-ups ------------------------------------------------------------------------------ */
typedef enum {
  SETUP_OWNER,        /* one thread fills, empties and asks */
  SETUP_IDLE_OWNER,   /* A fills and empties, stays alive and idle; B asks */
  SETUP_REMOTE_FREE,  /* A fills and stays alive and idle; B frees A's blocks and asks */
  SETUP_COUNT
} setup_t;

static const char *const setup_names[SETUP_COUNT] = {"owner", "idle owner", "remote frees"};

/* Thread A of the two-thread set-ups: fills (and empties, unless B does), then waits idle,
   with its thread heap alive, until B is done. */
typedef struct {
  fill_t *fill;
  int empty;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int filled, done;
} owner_t;

static void *owner_main(void *arg) {
  owner_t *o = arg;
  fill_to_limit(o->fill);
  if (o->empty) empty_all(o->fill);
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
  segfit_heap_t *heap = new_heap(name, LIMIT, 0);
  void *source = NULL;
  size_t source_size = request_source_size(r);
  if (source_size != 0) {
    source = segfit_alloc(heap, source_size);
    REQUIRE(source != NULL, "source block");
    fill(source, source_size, 77);
  }
  fill_t f = {heap, block, NULL, 0, 0, 0};
  owner_t o = {&f, setup == SETUP_IDLE_OWNER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
               0, 0};
  pthread_t a;
  if (setup == SETUP_OWNER) {
    fill_to_limit(&f);
    empty_all(&f);
  } else {
    REQUIRE(pthread_create(&a, NULL, owner_main, &o) == 0, "pthread_create");
    pthread_mutex_lock(&o.lock);
    while (!o.filled) pthread_cond_wait(&o.cond, &o.lock);
    pthread_mutex_unlock(&o.lock);
    if (setup == SETUP_REMOTE_FREE) empty_all(&f);
  }
  CHECK(f.refusal == SEGFIT_E_LIMIT, "fill with %zu B ended with %d, not the limit", block,
        f.refusal);
  segfit_stats_t before = stats_of(heap);
  CHECK(before.live_blocks == (source != NULL), "emptied heap has %llu live blocks",
        (unsigned long long)before.live_blocks);
  int err = 0;
  int ok = do_request(heap, r, source, &err);
  if (ok) {
    source = NULL;   /* the request freed the reallocated block */
  } else {
    printf("    FAILED: %-12s filled with %7zu B blocks, %-22s -> error %d (%s)\n",
           setup_names[setup], block, request_names[r], err, segfit_strerror(err));
  }
  if (setup != SETUP_OWNER) {
    pthread_mutex_lock(&o.lock);
    o.done = 1;
    pthread_cond_broadcast(&o.cond);
    pthread_mutex_unlock(&o.lock);
    pthread_join(a, NULL);
  }
  if (source != NULL) {
    CHECK(intact(source, source_size, 77), "a failed realloc changed its block");
    CHECK(segfit_free(heap, source) == 0, "free source");
  }
  segfit_stats_t end = stats_of(heap);
  CHECK(end.live_blocks == 0 && end.live_bytes == 0, "live at the end: %llu blocks",
        (unsigned long long)end.live_blocks);
  CHECK(segfit_heap_destroy(heap) == 0, "destroy");
  return ok;
}

static const size_t fill_sizes[] = {64, 4096, 65536, 1 << 20, 3 << 20};
#define FILL_SIZES (sizeof fill_sizes / sizeof fill_sizes[0])

static void test_matrix(void) {
  for (int setup = 0; setup < SETUP_COUNT; setup++) {
    int failed = 0, cases = 0;
    for (size_t i = 0; i < FILL_SIZES; i++) {
      for (int r = 0; r < REQ_COUNT; r++) {
        cases++;
        if (!run_case(fill_sizes[i], (request_t)r, (setup_t)setup)) failed++;
      }
    }
    printf("  matrix, %s: %d of %d cases failed\n", setup_names[setup], failed, cases);
    CHECK(failed == 0, "%s: %d of %d requests within the limit refused", setup_names[setup],
          failed, cases);
  }
}

int main(void) {
  test_matrix();
  if (failures != 0) {
    fprintf(stderr, "test-limit: %d check(s) failed\n", failures);
    return 1;
  }
  printf("test-limit: all passed\n");
  return 0;
}
