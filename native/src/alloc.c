/* segfit — allocation: the fast paths, the generic slow path, aligned, zeroed and realloc.
 *
 * Fast path (segfit_alloc): the TLS word, the handshake stores/loads, the thread heap from a
 * direct-mapped cache, the class by bit arithmetic, a pop from the current slab's free list and
 * one state-byte store; no lock, no atomic read-modify-write, no call. Anything else (first
 * call of the thread, a debug heap, an empty list, a large size, a closed heap, the purger
 * holding our record) goes to _sf_alloc_slow, which re-enters from scratch. Zeroed memory
 * skips the memset when the block comes from never-touched (fresh or purged) memory.
 */
#include <string.h>

#include "internal.h"

#define SF_FILL_ALLOC 0xA5
#define SF_FILL_FREE 0xDF
#define SF_CANARY_BYTE 0xCA

size_t _sf_block_usable(const sf_heap_t *heap, const sf_slab_t *slab) {
  return _sf_slab_bsize(slab) - (heap->debug ? SF_CANARY_SIZE : 0);
}

/* Pops a block of `slab`, which has one. Owner only. */
SF_INLINE void *sf_pop(sf_theap_t *th, sf_slab_t *slab, unsigned cls) {
  sf_block_t *b = slab->free;
  slab->free = b->next;
  slab->used++;
  /* The owner knows the class and the slab's address: no geometry from the slab record. */
  uint64_t idx = ((uint64_t)((uint8_t *)b - slab->start) * _sf_class_recip[cls]) >> SF_RECIP_SHIFT;
  atomic_store_explicit(&slab->state[idx], SF_BLOCK_LIVE, memory_order_relaxed);
  _sf_count_inc(&th->count[cls].allocs);
  return b;
}

void *_sf_alloc_in(sf_theap_t *th, size_t size, size_t alignment, bool zero, int *err) {
  sf_heap_t *heap = th->heap;
  size_t need = size + (heap->debug ? SF_CANARY_SIZE : 0);
  unsigned cls = SF_CLASSES;
  if (need <= SF_SMALL_MAX)
    cls = alignment <= SF_MIN_BLOCK ? _sf_size_class(need) : _sf_class_for_aligned(need, alignment);
  if (cls >= SF_CLASSES) return _sf_large_alloc(heap, size, alignment, err);
  sf_slab_t *slab = th->cur[cls];
  if (slab->free == NULL) {
    slab = _sf_theap_refill(th, cls, err);
    if (slab == NULL) return NULL;
  }
  bool fresh = slab->free_fresh;
  uint8_t *p = sf_pop(th, slab, cls);
  size_t usable = _sf_block_usable(heap, slab);
  if (heap->debug) {
    memset(p + usable, SF_CANARY_BYTE, SF_CANARY_SIZE);
    if (!zero) memset(p, SF_FILL_ALLOC, usable);
  }
  if (zero) {
    if (fresh && !heap->debug) ((sf_block_t *)p)->next = NULL;   /* only the link was written */
    else memset(p, 0, usable);
  }
  return p;
}

/* Debug heaps: the canary after a block; true when intact. */
bool _sf_debug_check_canary(const sf_heap_t *heap, const sf_slab_t *slab, const uint8_t *p) {
  const uint8_t *c = p + _sf_block_usable(heap, slab);
  for (int i = 0; i < SF_CANARY_SIZE; i++)
    if (c[i] != SF_CANARY_BYTE) return false;
  return true;
}

void _sf_debug_fill_freed(const sf_heap_t *heap, const sf_slab_t *slab, uint8_t *p) {
  size_t usable = _sf_block_usable(heap, slab);
  if (usable > sizeof(sf_block_t))
    memset(p + sizeof(sf_block_t), SF_FILL_FREE, usable - sizeof(sf_block_t));
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
  sf_theap_t *th = _sf_thread_theap(&op, true);
  if (th == NULL) err = SEGFIT_E_OUT_OF_MEMORY;
  else p = _sf_alloc_in(th, size, alignment, zero, &err);
  _sf_thread_end(&op);
  if (p == NULL) return _sf_fail_ptr(err);
  _sf_purge_start();   /* no lock held here: safe even if pthread_create mallocs through us */
  return p;
}

/* The shared fast path; `zero` is a constant at each call site. */
SF_INLINE void *sf_alloc_fast(sf_heap_t *heap, size_t size, bool zero) {
  sf_tld_t *tld = _sf_tls;
  if (sf_likely(tld > SF_TLD_DEAD && heap != NULL && size <= SF_SMALL_MAX)) {
    _sf_enter(tld, heap);
    if (sf_likely(!_sf_enter_blocked(tld, heap))) {
      sf_theap_t *th = tld->cache[heap->slot];
      if (sf_likely(th->key == heap)) {
        unsigned cls = _sf_size_class(size);
        sf_slab_t *slab = th->cur[cls];
        if (sf_unlikely(slab->free == NULL) && slab->local_free != NULL) {
          /* Our own frees are the next allocation list: take them without the slow path
             (blocks as large as an OS page are extended one at a time). */
          slab->free = slab->local_free;
          slab->local_free = NULL;
          slab->free_fresh = 0;
        }
        if (sf_likely(slab->free != NULL)) {
          bool fresh = zero && slab->free_fresh;
          void *p = sf_pop(th, slab, cls);
          if (zero) {   /* before leaving: a heap destroy may unmap the block after that */
            if (fresh) ((sf_block_t *)p)->next = NULL;
            else memset(p, 0, _sf_class_size[cls]);
          }
          _sf_leave(tld);
          return p;
        }
      }
    }
    _sf_leave(tld);
  }
  return _sf_alloc_slow(heap, size, 0, zero);
}

void *segfit_alloc(segfit_heap_t *heap, size_t size) { return sf_alloc_fast(heap, size, false); }

void *segfit_alloc_zeroed(segfit_heap_t *heap, size_t size) {
  return sf_alloc_fast(heap, size, true);
}

void *segfit_alloc_aligned(segfit_heap_t *heap, size_t size, size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > SEGFIT_MAX_ALIGNMENT)
    return _sf_fail_ptr(SEGFIT_E_INVALID_ALIGNMENT);
  if (alignment <= SF_MIN_BLOCK) return sf_alloc_fast(heap, size, false);
  return _sf_alloc_slow(heap, size, alignment, false);
}

/* --- realloc ------------------------------------------------------------------------------ */
void *segfit_realloc(segfit_heap_t *heap, void *p, size_t new_size) {
  if (p == NULL) return segfit_alloc(heap, new_size);
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
  sf_theap_t *th = err == 0 ? _sf_thread_theap(&op, true) : NULL;
  if (err == 0 && th == NULL) err = SEGFIT_E_OUT_OF_MEMORY;
  if (err != 0) goto done;
  if (slab != NULL) {
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
    _sf_free_finish(&op, slab, p);
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
