/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — checked free, remote free and usable size.
 *
 * A pointer is accepted only if it is the start of a live block of the heap named in the call: its
 * segment (from the map) belongs to that heap, its offset is an exact multiple of the block size
 * (multiplication by a reciprocal, no division), and its state byte says LIVE. Otherwise the call
 * returns NOT_A_BLOCK (foreign, interior, other heap, never handed out) or ALREADY_FREE, and
 * nothing is written. The owner's fast path flips the state byte with a relaxed store and pushes on
 * the allocation list (sf_push_own); every other path flips it with a CAS (so of two racing frees,
 * or a free racing a realloc, one loses) and another thread pushes on the slab's thread_free stack
 * (from the fast path in chains: the outbox below); if the owner had parked the slab as full it
 * also leaves a hint byte in the owner's thread heap. The fast path (a thread with a record, a
 * non-debug heap) does both without re-entering: the owner's free inline, another thread's as a
 * tail call; anything it cannot accept goes to _sf_free_slow, which finds the exact error (from
 * _sf_free_else, the malloc shim's entry, to the shim's own slow function, which calls it).
 * Limitation: the owner's fast-path store is not a CAS, so a double free racing between the owner's
 * plain free and another thread is not caught.
 */
#include "internal.h"

int _sf_block_check(sf_heap_t *heap, const void *p, sf_slab_t **slabp, uint32_t *idxp) {
  sf_segment_t *seg = _sf_segment_of(p);
  if (seg == NULL) {
    *slabp = NULL;
    int64_t r = _sf_large_usable(heap, p);
    return r < 0 ? (int)r : 0;
  }
  if (atomic_load_explicit(&seg->heap, memory_order_relaxed) != heap) return SEGFIT_E_NOT_A_BLOCK;
  sf_slab_t *slab = _sf_segment_slab(seg, p);
  bool exact;
  uint32_t idx = _sf_slab_index(slab, p, &exact);
  if (!exact) return SEGFIT_E_NOT_A_BLOCK;
  uint8_t st = atomic_load_explicit(&slab->state[idx], memory_order_relaxed);
  if (st != SF_BLOCK_LIVE) return st == SF_BLOCK_FREE ? SEGFIT_E_ALREADY_FREE : SEGFIT_E_NOT_A_BLOCK;
  *slabp = slab;
  *idxp = idx;
  return 0;
}

/* The owner's free of block b of its slab: onto the allocation list, so that the class's next
   allocation takes it back while its lines are in cache (the Java thread cache's stacks and
   glibc's and jemalloc's thread caches reuse the last freed block too; a stale free of it is
   then caught only until that allocation). Onto local_free instead while the allocation list
   holds untouched memory (free_fresh: a zeroed allocation from it skips the memset). */
SF_INLINE void sf_push_own(sf_slab_t *slab, sf_block_t *b) {
  if (sf_likely(!slab->free_fresh)) {
    b->next = slab->free;
    slab->free = b;
  } else {
    b->next = slab->local_free;
    slab->local_free = b;
  }
}

/* Slow paths always CAS, the owner's included, so a realloc or checked free racing with a
   free from another thread has exactly one winner. */
int _sf_free_claim(sf_op_t *op, sf_slab_t *slab, uint32_t idx) {
  (void)op;
  uint8_t live = SF_BLOCK_LIVE;
  if (!atomic_compare_exchange_strong_explicit(&slab->state[idx], &live, SF_BLOCK_FREE,
                                               memory_order_acq_rel, memory_order_relaxed))
    return SEGFIT_E_ALREADY_FREE;
  return 0;
}

/* The owner's slow cases after a local free, when `used` fell to the slab's floor
   (_sf_slab_floor): the slab became empty, or was parked full. */
static SF_NOINLINE void sf_free_local_slow(sf_theap_t *th, sf_slab_t *slab) {
  if (slab->used == 0) _sf_theap_slab_emptied(th, slab);
  else if (slab->in_full) _sf_theap_unfull(th, slab);
}

int _sf_free_finish(sf_op_t *op, sf_slab_t *slab, void *p) {
  if (op->heap->debug) return _sf_debug_quarantine(op, slab, p);
  _sf_free_release(op, slab, p);
  return 0;
}

/* Counts a free of another thread's block in a counter only the freeing thread writes (a
   locked add to one that every freeing thread shares cost as much as the free's other
   atomics): its thread heap's for the heap or, for a thread that only frees (the JVM's
   Cleaner, a worker releasing what an event loop allocated: it gets no thread heap), its
   record's, which count for one heap at a time (statistics read them; thread exit folds them
   into the heap, heap destroy drops them, and either frees them for another heap). Anything
   else goes to the heap's shared counter. */
static void sf_count_remote(sf_op_t *op, unsigned cls) {
  sf_heap_t *heap = op->heap;
  sf_tld_t *t = op->tld;
  sf_theap_t *self = t->cache[heap->slot];
  if (sf_likely(self->heap == heap)) {
    _sf_count_inc(&self->remote_frees[cls]);
    return;
  }
  sf_heap_t *f = atomic_load_explicit(&t->freeing, memory_order_relaxed);
  if (f == NULL) {
    /* The counts were zeroed before `freeing` was cleared (release), by whoever cleared it. */
    atomic_thread_fence(memory_order_acquire);
    atomic_store_explicit(&t->freeing, heap, memory_order_relaxed);
    f = heap;
  }
  if (f == heap) _sf_count_inc(&t->freeing_counts[cls]);
  else atomic_fetch_add_explicit(&heap->body->remote_frees[cls], 1, memory_order_relaxed);
}

static void sf_push_remote(sf_slab_t *slab, unsigned cls, sf_block_t *head, sf_block_t *tail,
                           uint32_t n);

void _sf_free_release(sf_op_t *op, sf_slab_t *slab, void *p) {
  sf_block_t *b = p;
  if (atomic_load_explicit(&slab->owner_tld, memory_order_relaxed) == op->tld) {
    sf_theap_t *th = atomic_load_explicit(&slab->owner, memory_order_relaxed);
    sf_assert(th != NULL && th->tld == op->tld && slab->used > 0);
    sf_push_own(slab, b);
    _sf_count_inc(&th->frees[_sf_slab_class(slab)]);
    sf_assert(slab->floor == _sf_slab_floor(th, slab));
    if ((int32_t)--slab->used <= slab->floor) sf_free_local_slow(th, slab);
    return;
  }
  /* Remote: count, push on the slab's stack, and tell a parked-full owner. The class is read
     (and counted) before the push: once the block is on the stack the owner may collect it,
     hand the empty slab back and give it another class. */
  unsigned cls = _sf_slab_class(slab);
  sf_count_remote(op, cls);
  b->next = NULL;
  sf_push_remote(slab, cls, b, b, 1);
}

/* Pushes the chain head..tail of n claimed blocks of slab (class cls) onto its stack, and tells
   a parked-full owner. */
static void sf_push_remote(sf_slab_t *slab, unsigned cls, sf_block_t *head, sf_block_t *tail,
                           uint32_t n) {
  /* (n is not checked against `used`: that is the owner's field.) */
  sf_assert(((uintptr_t)head & ~SF_TFREE_TOP_MASK) == 0 && n > 0);
  uintptr_t old = atomic_load_explicit(&slab->thread_free, memory_order_relaxed);
  do {
    tail->next = (sf_block_t *)(old & SF_TFREE_TOP_MASK);
  } while (!atomic_compare_exchange_weak_explicit(
      &slab->thread_free, &old,
      ((old & ~SF_TFREE_TOP_MASK) + n * SF_TFREE_ONE) | (uintptr_t)head, memory_order_seq_cst,
      memory_order_relaxed));
  /* Thread heaps are pooled, never unmapped: a stale owner only costs a useless scan. */
  sf_theap_t *owner = atomic_load_explicit(&slab->owner, memory_order_relaxed);
  if (owner != NULL) {
    if (atomic_load_explicit(&slab->full, memory_order_seq_cst))
      atomic_store_explicit(&owner->hint[cls], 1, memory_order_release);
    if (!atomic_load_explicit(&owner->pending, memory_order_relaxed))
      atomic_store_explicit(&owner->pending, 1, memory_order_release);
  }
}

/* --- the outbox ---------------------------------------------------------------------------
   A remote free makes two compare-and-sets: the claim of the block's state (which makes a
   racing double free fail, and stays) and the push onto the slab's stack, whose line the
   owner takes back whenever it collects. The fast path claims at once and keeps the block in
   the freeing thread's record, chained to the blocks of the same class it freed before if
   they are of the same slab, and pushes a chain with one compare-and-set when it is
   SF_OUTBOX_BLOCKS long or a block of another slab of its class comes (snmalloc batches its
   remote frees in the same spirit). Only classes whose slabs hold four chains or more. The
   blocks are FREE and on no list meanwhile: a second free of one fails as it should, the
   owner cannot hand one out, and its slab keeps them in `used`, so it is not emptied under
   the chain. Chains go at the thread's exit, at its first call on their heap after each
   purger tick (_sf_enter_recheck), and when the purger takes its record over (idle for a
   tick; segfit_trim() and a limit's reclaim take busy records between calls too): a thread
   busy with other heaps only keeps them (at most one slab per class). Statistics count each
   free when it is made. */
static void sf_outbox_push(sf_tld_t *t, unsigned cls) {
  sf_slab_t *slab = t->out[cls].slab;
  sf_push_remote(slab, cls, t->out[cls].head, t->out[cls].tail, t->out[cls].count);
  t->out[cls].slab = NULL;
  t->out_used &= ~(1u << cls);
}

void _sf_outbox_flush(sf_tld_t *t) {
  while (t->out_used != 0) sf_outbox_push(t, (unsigned)__builtin_ctz(t->out_used));
  atomic_store_explicit(&t->out_heap, NULL, memory_order_relaxed);
}

void _sf_outbox_drop(sf_tld_t *t) {
  for (unsigned c = 0; c < SF_OUTBOX_CLASSES; c++) t->out[c].slab = NULL;
  t->out_used = 0;
  atomic_store_explicit(&t->out_heap, NULL, memory_order_release);
}

void _sf_outbox_exit(sf_tld_t *t) {
  sf_heap_t *heap = atomic_load_explicit(&t->out_heap, memory_order_relaxed);
  if (heap == NULL) return;
  if (_sf_thread_enter(t, heap) == 0) {
    _sf_outbox_flush(t);
    _sf_leave(t);
    return;
  }
  pthread_mutex_lock(&_sf_global_lock);   /* closed: heap destroy may be dropping it too */
  if (atomic_load_explicit(&t->out_heap, memory_order_relaxed) == heap) _sf_outbox_drop(t);
  pthread_mutex_unlock(&_sf_global_lock);
}

/* A claimed block of another thread's slab, from the fast path, inside a call on op->heap. */
static void sf_outbox_add(sf_op_t *op, sf_slab_t *slab, unsigned cls, sf_block_t *b) {
  sf_tld_t *t = op->tld;
  sf_count_remote(op, cls);
  if (cls < SF_OUTBOX_CLASSES && sf_likely(t->out[cls].slab == slab)) {
    b->next = t->out[cls].head;
    t->out[cls].head = b;
    if (++t->out[cls].count == SF_OUTBOX_BLOCKS) sf_outbox_push(t, cls);
    return;
  }
  sf_heap_t *h = atomic_load_explicit(&t->out_heap, memory_order_relaxed);
  if (cls >= SF_OUTBOX_CLASSES || (h != NULL && h != op->heap)) {
    /* A class with small slabs, or the outbox holds another heap's blocks (pushed only inside
       a call on that heap): pushed alone. */
    b->next = NULL;
    sf_push_remote(slab, cls, b, b, 1);
    return;
  }
  if (h == NULL) {
    /* Empty: heap destroy (_sf_outbox_drop) cleared it with a release store. */
    atomic_thread_fence(memory_order_acquire);
    atomic_store_explicit(&t->out_heap, op->heap, memory_order_relaxed);
  } else if (t->out[cls].slab != NULL) {
    sf_outbox_push(t, cls);   /* the chain of another slab of the class */
  }
  b->next = NULL;
  t->out[cls].slab = slab;
  t->out[cls].head = t->out[cls].tail = b;
  t->out[cls].count = 1;
  t->out_used |= 1u << cls;
}

int _sf_free_block(sf_op_t *op, sf_slab_t *slab, void *p, uint32_t idx) {
  int rc = _sf_free_claim(op, slab, idx);
  if (rc != 0) return rc;
  /* The block is ours now: check its canary before the quarantine fills it. */
  if (op->heap->debug) rc = _sf_debug_check_canary(op->heap, slab, p, false);
  int q = _sf_free_finish(op, slab, p);
  return rc != 0 ? rc : q;
}

/* Does `size` describe the block? Its class, or a class an aligned allocation of `size` at an
   alignment the block has would have chosen. */
static bool sf_size_matches(const sf_heap_t *heap, const sf_slab_t *slab, const void *p,
                            size_t size) {
  size_t need = size + (heap->debug ? SF_CANARY_SIZE : 0);
  if (need > SF_SMALL_MAX) return false;
  if (_sf_size_class(need) == _sf_slab_class(slab)) return true;
  uintptr_t a = (uintptr_t)p;
  for (size_t al = 2 * SF_MIN_BLOCK; al <= _sf_kind_slab_size(slab->kind) && (a & (al - 1)) == 0;
       al <<= 1)
    if (_sf_class_for_aligned(need, al) == _sf_slab_class(slab)) return true;
  return false;
}

SF_NOINLINE int _sf_free_slow(sf_heap_t *heap, void *p, size_t size, bool sized) {
  if (p == NULL) return 0;
  if (heap == NULL) heap = _sf_heap_default();
  if (heap == NULL) return SEGFIT_E_NOT_A_BLOCK;
  sf_op_t op;
  int rc = _sf_thread_begin(&op, heap);
  if (rc != 0) {
    _sf_set_error(rc);
    return rc;
  }
  sf_slab_t *slab = NULL;
  uint32_t idx = 0;
  rc = _sf_block_check(heap, p, &slab, &idx);
  if (rc == 0 && slab == NULL) {   /* large */
    if (sized) {
      int64_t usable = _sf_large_usable(heap, p);
      size_t ps = _sf_page_size;
      /* Page-rounded size; small sizes are possible for blocks made large by their alignment. */
      size_t want = ((size == 0 ? 1 : size) + ps - 1) & ~(ps - 1);
      if (usable >= 0 && want != (size_t)usable)
        rc = SEGFIT_E_SIZE_MISMATCH;
    }
    if (rc == 0) rc = _sf_large_free(heap, p);
  } else if (rc == 0) {
    if (sized && !sf_size_matches(heap, slab, p, size)) rc = SEGFIT_E_SIZE_MISMATCH;
    else rc = _sf_free_block(&op, slab, p, idx);
  }
  if (heap->debug) rc = _sf_debug_result(heap, rc);
  _sf_thread_end(&op);
  if (rc != 0) _sf_set_error(rc);
  return rc;
}

/* Where a fast path that cannot finish goes: the slow path, which re-enters from scratch and
   finds the exact error, or the caller's `els` (_sf_free_else's; NULL everywhere else). */
SF_INLINE int sf_free_fallback(sf_heap_t *heap, void *p, size_t size, bool sized,
                               sf_free_else_fn els) {
  return els != NULL ? els(p) : _sf_free_slow(heap, p, size, sized);
}

/* Is `size` (a sized free's) in class cls? The common sizes with one compare and a table byte. */
SF_INLINE bool sf_size_is_class(size_t size, unsigned cls) {
  if (sf_likely(size <= SF_SMALL_TABLE_MAX)) return _sf_class_small[(size + 15) >> 4] == cls;
  return size <= SF_SMALL_MAX && _sf_size_class(size) == cls;
}

/* The owner's free after the block went back on its slab: the slab emptied or was parked full.
   Then leave. A tail call from the fast path, so that one saves and restores no register. */
static SF_NOINLINE int sf_free_local_slow_leave(sf_tld_t *tld, sf_theap_t *th, sf_slab_t *slab) {
  sf_free_local_slow(th, slab);
  _sf_leave(tld);
  return 0;
}

/* A block of a slab that the thread heap in the caller's cache slot does not own (another
   thread's, or of another heap), the call entered: if the block's segment is of this
   (non-debug) heap, claim it and hand it over, still inside the operation, as _sf_free_block
   would. A failed check or claim changed nothing: the slow path then finds the exact error
   (ALREADY_FREE, or NOT_A_BLOCK for a block never handed out or of another heap). */
static SF_NOINLINE int sf_free_remote(sf_tld_t *tld, sf_heap_t *heap, void *p, size_t size,
                                      bool sized, sf_free_else_fn els) {
  /* Six arguments at most: a tail call from the fast path, which then needs no frame. The map
     entry is read again rather than passed. */
  uintptr_t e = _sf_segment_entry(p);
  sf_segment_t *seg = (sf_segment_t *)(e & ~SF_MAP_SHIFT_BITS);
  sf_slab_t *slab = _sf_entry_slab(e, p);
  /* No thread heap key proves the heap open here: its closed flag does (the handshake's load,
     before the block's memory is touched). */
  if (atomic_load_explicit(&heap->closed, SF_ENTER_ORDER) == 0 &&
      atomic_load_explicit(&seg->heap_key, memory_order_relaxed) == heap) {
    unsigned cls = _sf_slab_class(slab);   /* another thread's slab: geometry from the class */
    bool exact;
    uint32_t idx = _sf_class_index(cls, p, &exact);
    sf_op_t op = {tld, heap, 0};
    if (exact && (!sized || sf_size_is_class(size, cls)) && _sf_free_claim(&op, slab, idx) == 0) {
      /* Ours after all when the cache slot holds another heap's thread heap (a shared slot):
         the owner's free, out of line. */
      if (atomic_load_explicit(&slab->owner_tld, memory_order_relaxed) == tld)
        _sf_free_release(&op, slab, p);
      else
        sf_outbox_add(&op, slab, cls, p);
      _sf_leave(tld);
      return 0;
    }
  }
  _sf_leave(tld);
  return sf_free_fallback(heap, p, size, sized, els);
}

/* The fast path once entered. The slab record comes from the map entry; the slab's owner
   being the thread heap cached for this heap proves, with that thread heap's key, both that
   the caller owns the slab and that the block's heap is the one named (no load of the
   segment header, and the owner's counters without a further load). */
SF_INLINE int sf_free_entered(sf_tld_t *tld, sf_heap_t *heap, void *p, size_t size, bool sized,
                              sf_free_else_fn els) {
  sf_theap_t *th = tld->cache[heap->slot];
  uintptr_t e = _sf_segment_entry(p);
  if (sf_likely(e != 0)) {
    sf_slab_t *slab = _sf_entry_slab(e, p);
    __asm__("" : "+r"(slab));   /* one base register for all its fields (fewer registers) */
    unsigned cls = _sf_slab_class(slab);
    if (sf_unlikely(atomic_load_explicit(&slab->owner, memory_order_relaxed) != th))
      return sf_free_remote(tld, heap, p, size, sized, els);
    if (sf_likely(_sf_theap_key(th) == heap && (!sized || sf_size_is_class(size, cls)))) {
      /* The owner test and the key together prove what the checked free checks: the caller's
         record owns the slab, and the block's heap is the one named. */
      sf_assert_internal(atomic_load_explicit(&slab->owner_tld, memory_order_relaxed) == tld &&
                         atomic_load_explicit(&slab->segment->heap, memory_order_relaxed) == heap);
      bool exact;
      uint32_t idx = _sf_owner_index(slab, p, &exact);
      if (sf_likely(exact && atomic_load_explicit(&slab->state[idx], memory_order_relaxed) ==
                                 SF_BLOCK_LIVE)) {
        sf_assert(slab->used > 0 && idx < _sf_slab_capacity(slab));
        atomic_store_explicit(&slab->state[idx], SF_BLOCK_FREE, memory_order_relaxed);
        sf_push_own(slab, p);
        _sf_count_inc(&th->frees[cls]);
        uint32_t used = --slab->used;   /* tested in a register: no reload of a fresh store */
        sf_assert(slab->floor == _sf_slab_floor(th, slab));
        if (sf_unlikely((int32_t)used <= slab->floor))
          return sf_free_local_slow_leave(tld, th, slab);
        _sf_leave(tld);
        return 0;
      }
    }
  }
  _sf_leave(tld);
  return sf_free_fallback(heap, p, size, sized, els);
}

/* Entered with non-zero flags (a purger request, a closed heap, or fence mode). */
static SF_NOINLINE int sf_free_recheck(sf_tld_t *tld, sf_heap_t *heap, void *p, size_t size,
                                       bool sized, sf_free_else_fn els) {
  if (_sf_enter_recheck(tld, heap) == 0) return sf_free_entered(tld, heap, p, size, sized, els);
  _sf_leave(tld);
  return sf_free_fallback(heap, p, size, sized, els);
}

/* The owner's fast path from the TLS word on. */
SF_INLINE int sf_free_tld(sf_tld_t *tld, sf_heap_t *heap, void *p, size_t size, bool sized,
                          sf_free_else_fn els) {
  if (sf_likely(tld > SF_TLD_DEAD && heap != NULL)) {
    _sf_enter(tld, heap);
    if (sf_likely(_sf_enter_flags(tld) == 0))
      return sf_free_entered(tld, heap, p, size, sized, els);
    return sf_free_recheck(tld, heap, p, size, sized, els);
  }
  return sf_free_fallback(heap, p, size, sized, els);
}

/* The TLS word's offset is unknown (_sf_tls_fast): through the TLS descriptor. */
static SF_NOINLINE int sf_free_desc(sf_heap_t *heap, void *p, size_t size, bool sized) {
  return sf_free_tld(_sf_tls, heap, p, size, sized, NULL);
}

/* The owner's fast path; `sized` is a constant at each call site, so is `els` but for
   _sf_free_else (which takes no descriptor call: the descriptor may allocate). */
SF_INLINE int sf_free_fast(sf_heap_t *heap, void *p, size_t size, bool sized,
                           sf_free_else_fn els) {
  sf_tld_t *tld;
  if (sf_unlikely(!_sf_tls_fast(&tld)))
    return els != NULL ? els(p) : sf_free_desc(heap, p, size, sized);
  return sf_free_tld(tld, heap, p, size, sized, els);
}

SF_HOT int segfit_free(segfit_heap_t *heap, void *p) {
  return sf_free_fast(heap, p, 0, false, NULL);
}

SF_HOT int segfit_free_sized(segfit_heap_t *heap, void *p, size_t size) {
  return sf_free_fast(heap, p, size, true, NULL);
}

SF_HOT int _sf_free_else(sf_heap_t *heap, void *p, sf_free_else_fn els) {
  sf_assert(els != NULL);
  return sf_free_fast(heap, p, 0, false, els);
}

int64_t segfit_usable_size(segfit_heap_t *heap, const void *p) {
  if (heap == NULL) heap = _sf_heap_default();
  if (heap == NULL || p == NULL) return SEGFIT_E_NOT_A_BLOCK;
  sf_op_t op;
  int rc = _sf_thread_begin(&op, heap);
  if (rc != 0) {
    _sf_set_error(rc);
    return rc;
  }
  int64_t r;
  sf_slab_t *slab = NULL;
  uint32_t idx = 0;
  rc = _sf_block_check(heap, p, &slab, &idx);
  if (rc != 0) r = rc;
  else if (slab != NULL) r = (int64_t)_sf_block_usable(heap, slab);
  else r = _sf_large_usable(heap, p);
  _sf_thread_end(&op);
  if (r < 0) _sf_set_error((int)r);
  return r;
}
