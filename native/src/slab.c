/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — slabs: their free lists, lazy initialisation, collection and invariants.
 *
 * A slab has three free lists: `free` (the allocation list, onto which the owner frees),
 * `local_free` (the owner's frees while `free` holds untouched memory, whose zero a used block
 * would break) and `thread_free` (a lock-free stack of frees by other threads, taken
 * whole with one exchange). Blocks beyond `reserved` were never put on a list: the free list
 * is extended by at most one OS page of blocks at a time, so untouched memory stays
 * untouched. Invariant (owner's view): reserved == used + |free| + |local_free|, where `used`
 * still counts blocks sitting on thread_free; every block on a list is not LIVE, every block
 * at or beyond `reserved` is NEVER.
 */
#include <string.h>

#include <stdio.h>

#include "internal.h"

/* A slab with no free block: a thread heap's current slab of a class it has none of, so that the
   fast paths miss without a test of their own. */
sf_slab_t _sf_slab_empty = {.where = SF_SLAB_OWNED};

#define SF_INVALID(why) (fprintf(stderr, "segfit: invalid slab %p: %s\n", (void *)slab, why), false)

/* Only the bytes of blocks handed out under the current class can be non-zero: reset them
   (before a class change, or when a destroyed heap's segment metadata goes back to the pool).
   A stale checked free racing with this then sees no LIVE block whatever geometry it reads.
   TSan builds store byte by byte so it sees atomic accesses on both sides. */
void _sf_slab_reset_states(sf_slab_t *slab) {
  uint32_t cap = _sf_slab_capacity(slab);
#if SF_TSAN
  for (uint32_t i = 0; i < cap; i++)
    atomic_store_explicit(&slab->state[i], SF_BLOCK_NEVER, memory_order_relaxed);
#else
  memset((void *)slab->state, SF_BLOCK_NEVER, cap);
#endif
}

void _sf_slab_init(sf_slab_t *slab, unsigned cls) {
  sf_assert(_sf_class_kind(cls) == slab->kind);
  slab->free = NULL;
  slab->local_free = NULL;
  atomic_store_explicit(&slab->thread_free, 0, memory_order_relaxed);
  atomic_store_explicit(&slab->full, 0, memory_order_relaxed);
  slab->used = 0;
  slab->reserved = 0;
  slab->in_full = 0;
  slab->free_fresh = 0;
  slab->stamp_ms = 0;
  _sf_slab_reset_states(slab);
  atomic_store_explicit(&slab->cls, (uint8_t)cls, memory_order_relaxed);
  slab->recip = _sf_class_recip[cls];
  slab->recip64 = slab->recip << (64 - SF_RECIP_SHIFT);
  slab->bsize = _sf_class_size[cls];
  sf_assert_internal(slab->where == SF_SLAB_OWNED);   /* re-classed only by its taker */
}

bool _sf_slab_extend(sf_slab_t *slab, sf_heap_body_t *b, int *err) {
  uint32_t cap = _sf_slab_capacity(slab);
  sf_assert(slab->free == NULL && slab->reserved < cap);
  size_t bs = _sf_slab_bsize(slab);
  size_t n = _sf_page_size / bs;
  if (n == 0) n = 1;
  if (n > cap - slab->reserved) n = cap - slab->reserved;
  /* Committed bytes grow with the touched prefix of the slab, not with the slab. */
  size_t end = ((size_t)(slab->reserved + n) * bs + _sf_page_size - 1) & ~(_sf_page_size - 1);
  if (end > slab->touched && !slab->segment->precommitted) {
    if (!_sf_heap_commit(b, end - slab->touched)) {   /* counted as a hit if the reclaim fails */
      *err = SEGFIT_E_LIMIT;
      return false;
    }
  }
  if (end > slab->touched) slab->touched = (uint32_t)end;
  uint8_t *first = slab->start + (size_t)slab->reserved * bs;
  uint8_t *p = first;
  for (size_t i = 1; i < n; i++, p += bs) ((sf_block_t *)p)->next = (sf_block_t *)(p + bs);
  ((sf_block_t *)p)->next = NULL;
  slab->free = (sf_block_t *)first;
  slab->reserved += (uint32_t)n;
  slab->free_fresh = slab->mem_fresh;
  sf_assert_internal(slab->reserved <= cap && slab->touched <= _sf_kind_slab_size(slab->kind));
  return true;
}

/* Puts the chain starting at list in front of the allocation list. */
static void sf_prepend(sf_slab_t *slab, sf_block_t *list) {
  if (slab->free != NULL) {
    sf_block_t *t = list;
    while (t->next != NULL) t = t->next;
    t->next = slab->free;
  }
  slab->free = list;
  slab->free_fresh = 0;
}

uint32_t _sf_slab_collect(sf_slab_t *slab) {
  /* The other threads' frees first: onto an empty allocation list (what a refill finds) they
     go as they are, no block touched. */
  uintptr_t w = atomic_load_explicit(&slab->thread_free, memory_order_relaxed);
  uint32_t n = 0;
  if (w != 0) {
    w = atomic_exchange_explicit(&slab->thread_free, 0, memory_order_acquire);
    n = (uint32_t)(w >> SF_TFREE_COUNT_SHIFT);
    sf_assert((w & SF_TFREE_TOP_MASK) != 0 && n > 0 && slab->used >= n);
    sf_prepend(slab, (sf_block_t *)(w & SF_TFREE_TOP_MASK));
    slab->used -= n;
  }
  if (slab->local_free != NULL) {
    sf_prepend(slab, slab->local_free);
    slab->local_free = NULL;
  }
  /* Not for a slab whose owner's lists alone changed: a forked child collects slabs of threads
     that were inside a call at the fork, whose own fields it may find half updated. */
  if (n != 0) sf_assert_expensive(_sf_slab_is_valid(slab));
  return n;
}

/* --- slab lists ------------------------------------------------------------------------- */
void _sf_list_push(sf_slab_list_t *l, sf_slab_t *s) {
  s->prev = NULL;
  s->next = l->head;
  if (l->head != NULL) l->head->prev = s;
  else l->tail = s;
  l->head = s;
}

void _sf_list_append(sf_slab_list_t *l, sf_slab_t *s) {
  s->next = NULL;
  s->prev = l->tail;
  if (l->tail != NULL) l->tail->next = s;
  else l->head = s;
  l->tail = s;
}

void _sf_list_remove(sf_slab_list_t *l, sf_slab_t *s) {
  /* s is in l: its neighbours, or the list's ends, point at it. */
  sf_assert_internal(s->prev != NULL ? s->prev->next == s : l->head == s);
  sf_assert_internal(s->next != NULL ? s->next->prev == s : l->tail == s);
  if (s->prev != NULL) s->prev->next = s->next;
  else l->head = s->next;
  if (s->next != NULL) s->next->prev = s->prev;
  else l->tail = s->prev;
  s->next = s->prev = NULL;
}

/* --- invariants ------------------------------------------------------------------------- */
static bool sf_list_is_valid(const sf_slab_t *slab, const sf_block_t *b, uint32_t *count) {
  for (; b != NULL; b = b->next) {
    bool exact;
    if ((const uint8_t *)b < slab->start) return false;
    uint32_t idx = _sf_slab_index(slab, b, &exact);
    if (!exact || idx >= slab->reserved) return false;
    if (atomic_load_explicit(&slab->state[idx], memory_order_relaxed) == SF_BLOCK_LIVE)
      return false;
    if (++*count > _sf_slab_capacity(slab)) return false;   /* a cycle */
  }
  return true;
}

/* Checks the owner's view of a slab. pre: called by the owner (or with the slab quiescent). */
bool _sf_slab_is_valid(const sf_slab_t *slab) {
  if (slab == &_sf_slab_empty) return true;
  unsigned cls = _sf_slab_class(slab);
  uint32_t cap = _sf_slab_capacity(slab);
  if (slab->segment == NULL || _sf_class_kind(cls) != slab->kind) return SF_INVALID("class");
  if (cap != _sf_kind_slab_size(slab->kind) / _sf_class_size[cls]) return SF_INVALID("capacity");
  if (slab->reserved > cap || slab->used > slab->reserved)
    return SF_INVALID("counts");
  if (_sf_segment_slab(slab->segment, slab->start) != slab) return SF_INVALID("segment");
  uint32_t listed = 0;
  if (!sf_list_is_valid(slab, slab->free, &listed)) return SF_INVALID("free list");
  if (!sf_list_is_valid(slab, slab->local_free, &listed)) return SF_INVALID("local free list");
  if (slab->used + listed != slab->reserved) return SF_INVALID("used + listed != reserved");
  uint32_t live = 0;
  for (uint32_t i = 0; i < cap; i++) {
    uint8_t st = atomic_load_explicit(&slab->state[i], memory_order_relaxed);
    if (i >= slab->reserved && st != SF_BLOCK_NEVER) return SF_INVALID("state beyond reserved");
    if (st == SF_BLOCK_LIVE) live++;
  }
  return live <= slab->used ? true : SF_INVALID("more live blocks than used");
}
