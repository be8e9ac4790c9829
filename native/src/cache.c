/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — the native side of the Java facade's thread cache.
 *
 * The Java facade (io.segfit.internal.ThreadCache) keeps, per thread and heap, one magazine
 * per class up to 16 KiB: a stack of free blocks in Java arrays, each entry a block, the
 * address of its state byte, its segment and its slab record (with the class). It pops an entry to allocate (state FREE -> LIVE) and checks a
 * block exactly as _sf_block_check does before pushing it on free (LIVE -> FREE: a plain
 * store in a slab the thread owns, else a compare-and-set), reading the core's metadata
 * through one direct buffer over the shared metadata area, which is never unmapped (os.c).
 * Here: refilling a magazine from the class's slabs, taking entries back, the barrier of the
 * Java handshake (ThreadCache's owners against trim and close), and the layout Java reads.
 *
 * Invariants: an entry is a block of its heap in state FREE that is on no free list; its slab
 * counts it in `used`, so a slab with blocks in magazines is never empty, purged or released,
 * and its state bytes stay where the entries point. Neither refill nor release counts an
 * allocation or a free: the Java facade counts what it hands out and takes back, and adds its
 * counts to the core's statistics. Heap destroy runs only after the facade has stopped every
 * magazine of the heap (Heap.close), so no Java write reaches metadata the heap gave back.
 */
#include <string.h>

#include "internal.h"

/* Pops one block of `slab` (which has one) as an entry. Owner only. */
SF_INLINE void sf_take_block(sf_slab_t *slab, unsigned cls, uint64_t *entry) {
  sf_block_t *b = slab->free;
  slab->free = b->next;
  slab->used++;
  bool exact;
  uint32_t idx = _sf_owner_index(slab, b, &exact);
  sf_assert(exact);
  atomic_store_explicit(&slab->state[idx], SF_BLOCK_FREE, memory_order_relaxed);
  entry[0] = (uint64_t)(uintptr_t)b;
  entry[1] = (uint64_t)(uintptr_t)&slab->state[idx];
  entry[2] = (uint64_t)(uintptr_t)slab->segment;
  entry[3] = (uint64_t)(uintptr_t)slab | cls;   /* records are 64-aligned: cls fits below */
}

/* Takes up to max blocks of cls from th's slabs, as the fast path would pop them. */
static int sf_refill(sf_theap_t *th, unsigned cls, uint64_t *entries, int max, int *err) {
  int n = 0;
  while (n < max) {
    sf_slab_t *slab = th->cur[cls];
    if (slab->free == NULL) {
      if (slab->local_free != NULL) {
        slab->free = slab->local_free;
        slab->local_free = NULL;
        slab->free_fresh = 0;
      } else {
        slab = _sf_theap_refill(th, cls, err);
        if (slab == NULL) break;
      }
    }
    sf_take_block(slab, cls, &entries[SEGFIT_CACHE_ENTRY_WORDS * n++]);
  }
  return n;
}

_Static_assert(SF_CLASSES <= 64 && _Alignof(sf_slab_t) >= 64, "an entry packs cls with its slab");

int segfit_cache_refill(segfit_heap_t *heap, int cls, uint64_t *entries, int max) {
  if (heap == NULL || cls < 0 || cls >= SF_MAG_CLASSES || entries == NULL || max <= 0)
    return SEGFIT_E_INVALID_OPTION;
  if ((unsigned)max > _sf_mag_cap((unsigned)cls)) max = (int)_sf_mag_cap((unsigned)cls);
  sf_op_t op;
  int err = _sf_thread_begin(&op, heap);
  if (err != 0) return err;
  int n = 0;
  /* Debug heaps check every block, and torn-down threads share the fallback record: neither
     has magazines. */
  if (!heap->debug && !op.fallback) {
    err = SEGFIT_E_OUT_OF_MEMORY;
    sf_theap_t *th = _sf_thread_theap(&op, true);
    if (th != NULL) n = sf_refill(th, (unsigned)cls, entries, max, &err);
    if (n == 0) n = err;
  }
  _sf_thread_end(&op);
  if (n > 0) _sf_purge_start();
  return n;
}

int segfit_cache_release(segfit_heap_t *heap, const uint64_t *entries, int n) {
  if (heap == NULL || (entries == NULL && n > 0)) return SEGFIT_E_INVALID_OPTION;
  sf_op_t op;
  int rc = _sf_thread_begin(&op, heap);
  if (rc != 0) return rc;
  for (int i = 0; i < n; i++) {
    void *p = (void *)(uintptr_t)entries[SEGFIT_CACHE_ENTRY_WORDS * i];
    sf_segment_t *seg = _sf_segment_of(p);
    bool exact = false;
    sf_slab_t *slab = NULL;
    uint32_t idx = 0;
    if (seg != NULL && atomic_load_explicit(&seg->heap, memory_order_relaxed) == heap) {
      slab = _sf_segment_slab(seg, p);
      idx = _sf_slab_index(slab, p, &exact);
    }
    /* What the facade gives back is what it took: anything else is a bug there, and is
       refused rather than put on a list. */
    if (!exact || atomic_load_explicit(&slab->state[idx], memory_order_relaxed) != SF_BLOCK_FREE) {
      sf_assert(!"a magazine entry that is not a free block of its heap");
      rc = SEGFIT_E_NOT_A_BLOCK;
      continue;
    }
    _sf_free_release_uncounted(&op, slab, p);
  }
  _sf_thread_end(&op);
  return rc;
}

void *segfit_thread_record(void) {
  return _sf_thread_tld();
}

void segfit_cache_barrier(void) {
  _sf_init();
  _sf_thread_asym_barrier();
}

#define SF_OFF(type, field) ((int64_t)offsetof(type, field))

int segfit_cache_layout(segfit_cache_layout_t *out) {
  if (out == NULL) return SEGFIT_E_INVALID_OPTION;
  _sf_init();
  memset(out, 0, sizeof *out);
  out->shared_base = (int64_t)(uintptr_t)_sf_os_shared_base();
  out->shared_size = out->shared_base != 0 ? (int64_t)SF_SHARED_AREA_SIZE : 0;
  out->segment_map = (int64_t)(uintptr_t)_sf_segment_map;
  out->segment_shift = SF_SEGMENT_SHIFT;
  out->va_bits = SF_VA_BITS;
  out->recip_shift = SF_RECIP_SHIFT;
  out->block_live = SF_BLOCK_LIVE;
  out->block_free = SF_BLOCK_FREE;
  out->use_fence = _sf_use_fence;
  out->segment_heap_key = SF_OFF(sf_segment_t, heap_key);
  out->segment_slab_shift = SF_OFF(sf_segment_t, slab_shift);
  out->segment_slabs = SF_OFF(sf_segment_t, slabs);
  out->slab_size = sizeof(sf_slab_t);
  out->slab_cls = SF_OFF(sf_slab_t, cls);
  out->slab_state = SF_OFF(sf_slab_t, state);
  out->slab_owner_tld = SF_OFF(sf_slab_t, owner_tld);
  out->mag_classes = SF_MAG_CLASSES;
  out->class_count = SF_CLASSES;
  out->entry_words = SEGFIT_CACHE_ENTRY_WORDS;
  for (unsigned c = 0; c < SF_CLASSES; c++) {
    out->class_size[c] = _sf_class_size[c];
    out->class_recip[c] = (int64_t)_sf_class_recip[c];
    out->class_capacity[c] = _sf_class_capacity[c];
    out->class_slab_mask[c] = _sf_class_slab_mask[c];
    out->class_mag_cap[c] = c < SF_MAG_CLASSES ? _sf_mag_cap(c) : 0;
  }
  return 0;
}
