/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — allocation: the fast paths, the generic slow path, aligned, zeroed and realloc.
 *
 * Fast path (segfit_alloc): the TLS word, the handshake stores/loads, the thread heap from a
 * direct-mapped cache, the class from a table (bit arithmetic above 1 KiB), a pop from the
 * current slab's free list (or its list of our own frees), one state-byte store and one
 * counter add; no lock, no atomic read-modify-write, no call. A class with no block left is
 * refilled from there, still inside the operation; segfit_alloc_aligned takes the same path with
 * the first class whose blocks all have the alignment. Anything else (first call of the thread, a
 * debug heap, a large size, a closed heap, the purger holding our record) goes to
 * _sf_alloc_slow, which re-enters from scratch (from _sf_alloc_else, the malloc shim's entry,
 * to the shim's own slow function instead). Zeroed memory skips the memset when the block
 * comes from never-touched (fresh or purged) memory.
 */
#include <string.h>

#include "internal.h"

size_t _sf_block_usable(const sf_heap_t *heap, const sf_slab_t *slab) {
  return _sf_slab_bsize(slab) - (heap->debug ? SF_CANARY_SIZE : 0);
}

#if SF_DEBUG >= 3
/* free_fresh's promise: untouched memory, so zero but for the link the pop just read. */
static bool sf_is_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return false;
  return true;
}
#endif

/* Pops a block of `slab`, which has one. Owner only. */
SF_INLINE void *sf_pop(sf_theap_t *th, sf_slab_t *slab, unsigned cls) {
  sf_block_t *b = slab->free;
  slab->free = b->next;
  /* The next pop loads that block's link: a list rebuilt from frees in random order is a
     pointer chase through memory, so start the load now. */
  __builtin_prefetch(b->next, 1);
  slab->used++;
  /* The owner's slab keeps its class: the reciprocal cached in the record, no table. */
  uint64_t idx = ((uint64_t)((uint8_t *)b - slab->start) * slab->recip) >> SF_RECIP_SHIFT;
  /* A block on a free list is never LIVE, and lies below `reserved`; used <= reserved. */
  sf_assert(_sf_slab_class(slab) == cls && idx < slab->reserved && slab->used <= slab->reserved);
  sf_assert(atomic_load_explicit(&slab->state[idx], memory_order_relaxed) != SF_BLOCK_LIVE);
  atomic_store_explicit(&slab->state[idx], SF_BLOCK_LIVE, memory_order_relaxed);
  _sf_count_inc(&th->allocs[cls]);
  return b;
}

void *_sf_alloc_in(sf_theap_t *th, size_t size, size_t alignment, bool zero, int *err) {
  sf_heap_t *heap = th->heap;
  size_t need = size + (heap->debug ? SF_CANARY_SIZE : 0);
  unsigned cls = SF_CLASSES;
  if (need <= SF_SMALL_MAX)
    cls = alignment <= SF_MIN_BLOCK ? _sf_size_class(need) : _sf_class_for_aligned(need, alignment);
  if (cls >= SF_CLASSES) return _sf_large_alloc(th, size, alignment, zero, err);
  sf_slab_t *slab = th->cur[cls];
  if (slab->free == NULL) {
    slab = _sf_theap_refill(th, cls, err);
    if (slab == NULL) return NULL;
  }
  bool fresh = slab->free_fresh;
  uint8_t prior = heap->debug ? _sf_debug_next_state(slab, cls) : SF_BLOCK_NEVER;
  uint8_t *p = sf_pop(th, slab, cls);
  sf_assert_expensive(heap->debug || !fresh ||
                      sf_is_zero(p + sizeof(sf_block_t), slab->bsize - sizeof(sf_block_t)));
  if (heap->debug) _sf_debug_on_alloc(heap, slab, p, prior, zero);
  else if (zero && fresh) ((sf_block_t *)p)->next = NULL;   /* only the link was written */
  else if (zero) memset(p, 0, _sf_block_usable(heap, slab));
  return p;
}

static sf_heap_t *sf_resolve(sf_heap_t *heap) {
  return heap != NULL ? heap : _sf_heap_default();
}

SF_NOINLINE void *_sf_alloc_slow(sf_heap_t *heap, size_t size, size_t alignment, bool zero) {
  heap = sf_resolve(heap);
  if (heap == NULL) return _sf_fail_ptr(SEGFIT_E_OUT_OF_MEMORY);
  if (size > SEGFIT_MAX_SIZE) return _sf_fail_ptr(SEGFIT_E_INVALID_SIZE);
  sf_op_t op;
  int err = _sf_thread_begin(&op, heap);
  if (err != 0) return _sf_fail_ptr(err);
  void *p = NULL;
  sf_theap_t *th = _sf_theap_get(&op, true);
  if (th == NULL) err = _sf_theap_missing(heap);
  else p = _sf_alloc_in(th, size, alignment, zero, &err);
  _sf_thread_end(&op);
  if (p == NULL) return _sf_fail_ptr(err);
  _sf_purge_start();   /* no lock held here: safe even if pthread_create mallocs through us */
  return p;
}

/* The current slab of cls with a block on its allocation list, or NULL: the class needs a
   refill. Owner only. */
SF_INLINE sf_slab_t *sf_cur_slab(sf_theap_t *th, unsigned cls) {
  sf_slab_t *slab = th->cur[cls];
  if (sf_unlikely(slab->free == NULL)) {
    if (slab->local_free == NULL) return NULL;
    /* Our own frees are the next allocation list: take them without a call. */
    slab->free = slab->local_free;
    slab->local_free = NULL;
    slab->free_fresh = 0;
  }
  return slab;
}

/* The fast path's tail, the call entered and a block at hand: pop it and leave. */
SF_INLINE void *sf_alloc_pop(sf_tld_t *tld, sf_theap_t *th, sf_slab_t *slab, unsigned cls,
                             bool zero) {
  bool fresh = zero && slab->free_fresh;
  void *p = sf_pop(th, slab, cls);
  sf_assert_expensive(!fresh || sf_is_zero((uint8_t *)p + sizeof(sf_block_t),
                                           slab->bsize - sizeof(sf_block_t)));
  if (zero) {   /* before leaving: a heap destroy may unmap the block after that */
    if (fresh) ((sf_block_t *)p)->next = NULL;
    else memset(p, 0, slab->bsize);
  }
  _sf_leave(tld);
  return p;
}

/* The class has no block left: refill it without leaving the operation (the slow path would
   re-enter from scratch to do the same). */
static SF_NOINLINE void *sf_alloc_refill(sf_tld_t *tld, sf_theap_t *th, unsigned cls,
                                         bool zero) {
  int err = 0;
  sf_slab_t *slab = _sf_theap_refill(th, cls, &err);
  if (slab == NULL) {
    _sf_leave(tld);
    return _sf_fail_ptr(err);
  }
  return sf_alloc_pop(tld, th, slab, cls, zero);
}

/* Where a fast path that cannot finish goes: the slow path, which re-enters from scratch, or the
   caller's `els` (_sf_alloc_else's; NULL everywhere else). */
SF_INLINE void *sf_alloc_fallback(sf_heap_t *heap, size_t size, bool zero, sf_alloc_else_fn els) {
  return els != NULL ? els(size) : _sf_alloc_slow(heap, size, 0, zero);
}

/* A block of class cls from the caller's thread heap, the call entered: pop it, refilling the
   class first if it has none, and leave. */
SF_INLINE void *sf_alloc_class(sf_tld_t *tld, sf_theap_t *th, unsigned cls, bool zero) {
  sf_slab_t *slab = sf_cur_slab(th, cls);
  if (sf_unlikely(slab == NULL)) return sf_alloc_refill(tld, th, cls, zero);
  return sf_alloc_pop(tld, th, slab, cls, zero);
}

/* The fast path once entered. Its rare branches are tail calls, so the common one saves and
   restores no register. */
SF_INLINE void *sf_alloc_entered(sf_tld_t *tld, sf_heap_t *heap, size_t size, bool zero,
                                 sf_alloc_else_fn els) {
  sf_theap_t *th = tld->cache[heap->slot];
  /* The size is tested here, not before entering: the common sizes then cost one compare
     (the table's bound), large ones leave from here. */
  if (sf_likely(_sf_theap_key(th) == heap) &&
      (sf_likely(size <= SF_SMALL_TABLE_MAX) || sf_likely(size <= SF_SMALL_MAX))) {
    return sf_alloc_class(tld, th, _sf_size_class(size), zero);
  }
  _sf_leave(tld);
  return sf_alloc_fallback(heap, size, zero, els);
}

/* Entered with non-zero flags (a purger request, a closed heap, or fence mode). */
static SF_NOINLINE void *sf_alloc_recheck(sf_tld_t *tld, sf_heap_t *heap, size_t size,
                                          bool zero, sf_alloc_else_fn els) {
  if (_sf_enter_recheck(tld, heap) == 0) return sf_alloc_entered(tld, heap, size, zero, els);
  _sf_leave(tld);
  return sf_alloc_fallback(heap, size, zero, els);
}

/* The shared fast path from the TLS word on. */
SF_INLINE void *sf_alloc_tld(sf_tld_t *tld, sf_heap_t *heap, size_t size, bool zero,
                             sf_alloc_else_fn els) {
  if (sf_likely(tld > SF_TLD_DEAD) && sf_likely(heap != NULL)) {
    _sf_enter(tld, heap);
    if (sf_likely(_sf_enter_flags(tld) == 0))
      return sf_alloc_entered(tld, heap, size, zero, els);
    return sf_alloc_recheck(tld, heap, size, zero, els);
  }
  return sf_alloc_fallback(heap, size, zero, els);
}

/* The TLS word's offset is unknown (_sf_tls_fast): through the TLS descriptor. */
static SF_NOINLINE void *sf_alloc_desc(sf_heap_t *heap, size_t size, bool zero) {
  return sf_alloc_tld(_sf_tls, heap, size, zero, NULL);
}

/* The shared fast path; `zero` is a constant at each call site, so is `els` but for
   _sf_alloc_else (which takes no descriptor call: the descriptor may allocate). */
SF_INLINE void *sf_alloc_fast(sf_heap_t *heap, size_t size, bool zero, sf_alloc_else_fn els) {
  sf_tld_t *tld;
  if (sf_unlikely(!_sf_tls_fast(&tld)))
    return els != NULL ? els(size) : sf_alloc_desc(heap, size, zero);
  return sf_alloc_tld(tld, heap, size, zero, els);
}

SF_HOT void *segfit_alloc(segfit_heap_t *heap, size_t size) {
  return sf_alloc_fast(heap, size, false, NULL);
}

SF_HOT void *segfit_alloc_zeroed(segfit_heap_t *heap, size_t size) {
  return sf_alloc_fast(heap, size, true, NULL);
}

SF_HOT void *_sf_alloc_else(sf_heap_t *heap, size_t size, sf_alloc_else_fn els) {
  sf_assert(els != NULL);
  return sf_alloc_fast(heap, size, false, els);
}

SF_HOT void *_sf_alloc_zeroed_else(sf_heap_t *heap, size_t size, sf_alloc_else_fn els) {
  sf_assert(els != NULL);
  return sf_alloc_fast(heap, size, true, els);
}

void *segfit_alloc_aligned(segfit_heap_t *heap, size_t size, size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > SEGFIT_MAX_ALIGNMENT)
    return _sf_fail_ptr(SEGFIT_E_INVALID_ALIGNMENT);
  if (alignment <= SF_MIN_BLOCK) return sf_alloc_fast(heap, size, false, NULL);
  /* The first class whose blocks all have the alignment (slabs are aligned to their size), then
     the fast path as for any size. */
  unsigned cls = size <= SF_SMALL_MAX ? _sf_class_for_aligned(size, alignment) : SF_CLASSES;
  sf_tld_t *tld;
  if (cls < SF_CLASSES && _sf_tls_fast(&tld) && tld > SF_TLD_DEAD && heap != NULL) {
    _sf_enter(tld, heap);
    sf_theap_t *th = tld->cache[heap->slot];
    if (_sf_enter_blocked(tld, heap) == 0 && _sf_theap_key(th) == heap)
      return sf_alloc_class(tld, th, cls, false);
    _sf_leave(tld);
  }
  return _sf_alloc_slow(heap, size, alignment, false);
}

/* --- realloc ------------------------------------------------------------------------------ */
/* A small block of the caller's own slab to a small size, the call entered (the free fast
   path's checks, then the allocation fast path's pop): `*q` the block, 0, or an error with p
   untouched; SF_REALLOC_SLOW where the slow path must decide (not the owner's live block, a
   large size). As the slow path, the old block is claimed with a compare-and-set before its
   copy, so that a racing free from another thread fails instead of its memory going. */
#define SF_REALLOC_SLOW 1
static int sf_realloc_entered(sf_tld_t *tld, sf_heap_t *heap, void *p, size_t new_size,
                              void **q) {
  sf_theap_t *th = tld->cache[heap->slot];
  uintptr_t e = _sf_segment_entry(p);
  if (e == 0 || _sf_theap_key(th) != heap || new_size > SF_SMALL_MAX) return SF_REALLOC_SLOW;
  sf_slab_t *old = _sf_entry_slab(e, p);
  if (atomic_load_explicit(&old->owner, memory_order_relaxed) != th) return SF_REALLOC_SLOW;
  bool exact;
  uint32_t idx = _sf_owner_index(old, p, &exact);
  if (!exact || atomic_load_explicit(&old->state[idx], memory_order_relaxed) != SF_BLOCK_LIVE)
    return SF_REALLOC_SLOW;
  unsigned cls = _sf_size_class(new_size);
  if (cls == _sf_slab_class(old)) {   /* so a later sized free of new_size matches */
    _sf_count_inc(&th->reallocs_in_place);
    *q = p;
    return 0;
  }
  sf_slab_t *slab = sf_cur_slab(th, cls);
  if (slab == NULL) {
    int err = 0;
    slab = _sf_theap_refill(th, cls, &err);
    if (slab == NULL) return err;
  }
  sf_op_t op = {tld, heap, 0};
  if (_sf_free_claim(&op, old, idx) != 0) return SF_REALLOC_SLOW;   /* freed meanwhile */
  void *block = sf_pop(th, slab, cls);
  size_t usable = _sf_slab_bsize(old);
  memcpy(block, p, usable < new_size ? usable : new_size);
  _sf_free_release(&op, old, p);
  _sf_count_inc(&th->reallocs_moved);
  *q = block;
  return 0;
}

void *segfit_realloc(segfit_heap_t *heap, void *p, size_t new_size) {
  if (p == NULL) return segfit_alloc(heap, new_size);
  sf_tld_t *tld;
  if (!_sf_tls_fast(&tld)) tld = _sf_tls;
  if (tld > SF_TLD_DEAD && heap != NULL) {
    _sf_enter(tld, heap);
    void *q = NULL;
    int rc = _sf_enter_blocked(tld, heap) == 0 ? sf_realloc_entered(tld, heap, p, new_size, &q)
                                                : SF_REALLOC_SLOW;
    _sf_leave(tld);
    if (rc == 0) return q;
    if (rc != SF_REALLOC_SLOW) return _sf_fail_ptr(rc);
  }
  heap = sf_resolve(heap);
  if (heap == NULL) return _sf_fail_ptr(SEGFIT_E_OUT_OF_MEMORY);
  if (new_size > SEGFIT_MAX_SIZE) return _sf_fail_ptr(SEGFIT_E_INVALID_SIZE);
  sf_op_t op;
  int err = _sf_thread_begin(&op, heap);
  if (err != 0) return _sf_fail_ptr(err);
  sf_slab_t *slab = NULL;
  uint32_t idx = 0;
  void *q = NULL;
  err = _sf_block_check(heap, p, &slab, &idx);
  sf_theap_t *th = err == 0 ? _sf_theap_get(&op, true) : NULL;
  if (err == 0 && th == NULL) err = _sf_theap_missing(heap);
  if (err != 0) goto done;
  if (slab != NULL) {
    if (heap->debug) _sf_debug_check_canary(heap, slab, p, true);
    size_t usable = _sf_block_usable(heap, slab);
    size_t need = new_size + (heap->debug ? SF_CANARY_SIZE : 0);
    /* In place within the class (so a later sized free of new_size matches the block). */
    if (need <= SF_SMALL_MAX && _sf_size_class(need) == _sf_slab_class(slab)) {
      _sf_count_inc(&th->reallocs_in_place);
      q = p;
      goto done;
    }
    q = _sf_alloc_in(th, new_size, 0, false, &err);
    if (q == NULL) goto done;
    /* Claim the old block before copying: a racing free of it then fails instead of the slab
       being handed back (and maybe unmapped) under our memcpy. */
    err = _sf_free_claim(&op, slab, idx);
    if (err != 0) {
      sf_slab_t *qs;
      uint32_t qi;
      if (_sf_block_check(heap, q, &qs, &qi) == 0) {
        if (qs != NULL) _sf_free_block(&op, qs, q, qi);
        else _sf_large_free(heap, q);
      }
      q = NULL;
      goto done;
    }
    memcpy(q, p, usable < new_size ? usable : new_size);
    if (_sf_free_finish(&op, slab, p) != 0) _sf_debug_defer(heap);
    _sf_count_inc(&th->reallocs_moved);
    goto done;
  }
  /* A large block. */
  if (new_size > SF_SMALL_MAX && !heap->debug) {
    q = _sf_large_realloc(&op, p, new_size, &err);
    goto done;
  }
  {
    sf_large_entry_t e;
    err = _sf_large_take(heap, p, &e);
    if (err != 0) goto done;
    q = _sf_alloc_in(th, new_size, 0, false, &err);
    if (q == NULL) {
      _sf_large_restore(heap, &e);
      goto done;
    }
    memcpy(q, p, e.usable < new_size ? e.usable : new_size);
    _sf_large_release(heap, &e);
    _sf_count_inc(&th->reallocs_moved);
  }
done:
  _sf_thread_end(&op);
  if (q == NULL) return _sf_fail_ptr(err);
  return q;
}
