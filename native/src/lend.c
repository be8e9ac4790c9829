/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — slabs lent to a caller that manages their blocks itself (the Java facade's thread
 * caches, io.segfit.internal.SlabCache), so that its allocations and frees need no call here.
 *
 * A lent slab is taken from the heap's pools as any refill would take one, fully committed,
 * and then held by no list: no core path allocates from it, thread exit does not abandon it,
 * the purger and trim do not see it. Its state bytes stay NEVER while it is lent, so every
 * native check rejects its blocks with NOT_A_BLOCK; the borrower keeps their states and must
 * find its blocks before asking the core about an address. Committed bytes, slab counts and
 * destroy treat it as a slab in use. Given back, it becomes what an emptied slab of a thread
 * heap becomes: a dirty slab of its class whose free list holds every block handed out so far
 * (those blocks FREE, so a stale free of one still says ALREADY_FREE), the rest untouched.
 */
#include <string.h>

#include "internal.h"

_Static_assert(SEGFIT_LEND_MAX_BLOCK == SF_KIND1_MAX, "lent slabs are of the two smaller kinds");
_Static_assert(SEGFIT_LEND_SLAB_MIN == (size_t)64 << 10, "_sf_kind_slab_size(0)");

static sf_heap_t *sf_lend_heap(segfit_heap_t *heap) {
  return heap != NULL ? heap : _sf_heap_default();
}

/* The class whose blocks are exactly block_size and may be lent, or SF_CLASSES. */
static unsigned sf_lend_class(size_t block_size) {
  if (block_size == 0 || block_size > SEGFIT_LEND_MAX_BLOCK) return SF_CLASSES;
  unsigned cls = _sf_size_class(block_size);
  return _sf_class_size[cls] == block_size ? cls : SF_CLASSES;
}

size_t segfit_slab_lend_size(size_t block_size) {
  unsigned cls = sf_lend_class(block_size);
  return cls < SF_CLASSES ? _sf_kind_slab_size(_sf_class_kind(cls)) : 0;
}

void *segfit_slab_lend(segfit_heap_t *heap, size_t block_size, uint32_t *reserved) {
  heap = sf_lend_heap(heap);
  if (heap == NULL) return _sf_fail_ptr(SEGFIT_E_OUT_OF_MEMORY);
  unsigned cls = sf_lend_class(block_size);
  if (cls >= SF_CLASSES || reserved == NULL) return _sf_fail_ptr(SEGFIT_E_INVALID_SIZE);
  sf_op_t op;
  int err = _sf_thread_begin(&op, heap);
  if (err != 0) return _sf_fail_ptr(err);
  /* A debug heap checks every block in the core: nothing of it may be managed elsewhere. */
  sf_slab_t *slab = NULL;
  if (heap->debug) err = SEGFIT_E_INVALID_OPTION;
  else slab = _sf_segment_acquire_slab(heap, cls, &err);
  if (slab != NULL) {
    sf_heap_body_t *b = heap->body;
    size_t size = _sf_kind_slab_size(slab->kind);
    /* The borrower may hand out any block without asking: count the whole slab now. */
    if (slab->touched < size && !slab->segment->precommitted &&
        !_sf_heap_commit(b, size - slab->touched)) {
      uint64_t now = atomic_load_explicit(&_sf_clock_ms, memory_order_relaxed);
      pthread_mutex_lock(&b->lock);
      _sf_segment_release_slab_locked(b, slab, now);
      pthread_mutex_unlock(&b->lock);
      slab = NULL;
      err = SEGFIT_E_LIMIT;
    } else {
      slab->touched = (uint32_t)size;
      _sf_slab_collect(slab);   /* a dirty slab of the class comes with its lists: all free */
      sf_assert(slab->used == 0);
      *reserved = slab->reserved;
      slab->free = slab->local_free = NULL;
      slab->used = slab->reserved = _sf_slab_capacity(slab);
      _sf_slab_reset_states(slab);
      slab->where = SF_SLAB_LENT;
      /* Lent: in no list, nothing on its lists, every block counted and every state NEVER. */
      sf_assert_internal(slab->next == NULL && slab->prev == NULL &&
                         atomic_load_explicit(&slab->thread_free, memory_order_relaxed) == 0);
    }
  }
  _sf_thread_end(&op);
  return slab != NULL ? slab->start : _sf_fail_ptr(err);
}

int segfit_slab_return(segfit_heap_t *heap, void *start, uint32_t handed_out) {
  heap = sf_lend_heap(heap);
  if (heap == NULL) return SEGFIT_E_NOT_A_BLOCK;
  sf_op_t op;
  int err = _sf_thread_begin(&op, heap);
  if (err != 0) return err;
  sf_segment_t *seg = _sf_segment_of(start);
  sf_slab_t *slab = seg != NULL && atomic_load_explicit(&seg->heap, memory_order_relaxed) == heap
                        ? _sf_segment_slab(seg, start)
                        : NULL;
  if (slab == NULL || slab->start != start || slab->where != SF_SLAB_LENT) {
    err = SEGFIT_E_NOT_A_BLOCK;
  } else if (handed_out > _sf_slab_capacity(slab)) {
    err = SEGFIT_E_INVALID_SIZE;
  } else {
    /* Blocks past handed_out were never written: they keep what mem_fresh says of them. */
    size_t bs = _sf_slab_bsize(slab);
    sf_block_t *list = NULL;
    for (uint32_t i = handed_out; i-- > 0;) {
      sf_block_t *blk = (sf_block_t *)(slab->start + (size_t)i * bs);
      blk->next = list;
      list = blk;
      atomic_store_explicit(&slab->state[i], SF_BLOCK_FREE, memory_order_relaxed);
    }
    slab->free = list;
    slab->local_free = NULL;
    slab->free_fresh = 0;
    slab->reserved = handed_out;
    slab->used = 0;
    slab->where = SF_SLAB_OWNED;
    sf_assert_expensive(_sf_slab_is_valid(slab));
    uint64_t now = atomic_load_explicit(&_sf_clock_ms, memory_order_relaxed);
    pthread_mutex_lock(&heap->body->lock);
    _sf_segment_release_slab_locked(heap->body, slab, now);
    pthread_mutex_unlock(&heap->body->lock);
    _sf_purge_released(heap, now);
  }
  _sf_thread_end(&op);
  if (err != 0) _sf_set_error(err);
  return err;
}

int segfit_copy(segfit_heap_t *heap, void *dst, const void *src, size_t size) {
  heap = sf_lend_heap(heap);
  if (heap == NULL) return SEGFIT_E_NOT_A_BLOCK;
  sf_op_t op;
  int err = _sf_thread_begin(&op, heap);
  if (err != 0) return err;
  memmove(dst, src, size);
  _sf_thread_end(&op);
  return 0;
}

int segfit_slab_barrier(void) {
  _sf_init();
  /* In fence mode the core's own callers fence themselves; a borrower's do not. */
  if (_sf_use_fence) return 0;
  return _sf_os_membarrier() ? 1 : 0;
}
