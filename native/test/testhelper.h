/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — helpers shared by the core tests (core-*): named checks that report file, line and
 * the failed expression, a deterministic random generator, and invariant walks over the
 * calling thread's slabs and a heap's segments (through internal.h).
 */
#ifndef SEGFIT_TESTHELPER_H
#define SEGFIT_TESTHELPER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faulttest.h"
#include "internal.h"
#include "segfit.h"

static const char *th_current = "";

#define CHECK(cond)                                                                           \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      fprintf(stderr, "%s:%d: [%s] check failed: %s\n", __FILE__, __LINE__, th_current,       \
              #cond);                                                                         \
      exit(1);                                                                                \
    }                                                                                         \
  } while (0)

#define CHECK_EQ(a, b)                                                                        \
  do {                                                                                        \
    long long a_ = (long long)(a), b_ = (long long)(b);                                       \
    if (a_ != b_) {                                                                           \
      fprintf(stderr, "%s:%d: [%s] check failed: %s == %s (%lld vs %lld)\n", __FILE__,        \
              __LINE__, th_current, #a, #b, a_, b_);                                          \
      exit(1);                                                                                \
    }                                                                                         \
  } while (0)

#define TEST(name) static void name(void)
#define RUN(name)                                                                             \
  do {                                                                                        \
    th_current = #name;                                                                       \
    name();                                                                                   \
    printf("  ok  %s\n", #name);                                                              \
    fflush(stdout);                                                                           \
  } while (0)

/* xorshift64*: deterministic per seed. */
typedef struct { uint64_t s; } th_rng_t;
static inline uint64_t th_next(th_rng_t *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545F4914F6CDD1Dull;
}
static inline uint64_t th_below(th_rng_t *r, uint64_t n) { return th_next(r) % n; }

static inline segfit_heap_t *th_heap(const char *name, int64_t purge_delay_ms) {
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = name;
  o.purge_delay_ms = purge_delay_ms;
  segfit_heap_t *h = NULL;
  CHECK(FT_RETRY_RC(segfit_heap_create(&o, &h)) == 0 && h != NULL);
  return h;
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

static inline void th_fill(void *p, size_t n, uint64_t seed) {
  uint8_t *b = p;
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(seed + i * 131);
}
static inline int th_filled(const void *p, size_t n, uint64_t seed) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (uint8_t)(seed + i * 131)) return 0;
  return 1;
}

#endif /* SEGFIT_TESTHELPER_H */
