/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — statistics: cheap counters, summed by the reader.
 *
 * Allocation and free counters per class live in each thread heap, written only by the owner
 * (_sf_count_inc: no locked read-modify-write); remote frees are counted per heap with a
 * relaxed fetch_add; slab, segment, purge and large-block figures sit in the heap body under
 * its locks. A reader holds the global lock, under which thread heaps appear, disappear and
 * fold their counters into the heap, so each event is counted exactly once. Gauges derived
 * from two counters (live = allocs - frees) can be momentarily off under concurrent calls.
 */
#include <string.h>

#include "internal.h"

static uint64_t sf_ld(_Atomic(uint64_t) *c) { return atomic_load_explicit(c, memory_order_relaxed); }

void _sf_stats_fold(sf_theap_t *th) {
  sf_heap_body_t *b = th->heap->body;
  pthread_mutex_lock(&b->lock);
  for (unsigned c = 0; c < SF_CLASSES; c++) {
    b->allocs[c] += sf_ld(&th->allocs[c]);
    b->frees[c] += sf_ld(&th->frees[c]);
  }
  b->reallocs_in_place += sf_ld(&th->reallocs_in_place);
  b->reallocs_moved += sf_ld(&th->reallocs_moved);
  b->reallocs_remapped += sf_ld(&th->reallocs_remapped);
  pthread_mutex_unlock(&b->lock);
}

/* Adds one heap into *st (class entries: allocs and frees only). pre: global lock. */
static void sf_stats_add(sf_heap_t *heap, segfit_stats_t *st) {
  sf_heap_body_t *b = heap->body;
  for (sf_tld_t *t = _sf_tlds; t != NULL; t = t->next) {
    for (sf_theap_t *th = t->theaps; th != NULL; th = th->next) {
      if (th->heap != heap) continue;
      for (unsigned c = 0; c < SF_CLASSES; c++) {
        st->classes[c].allocs += sf_ld(&th->allocs[c]);
        st->classes[c].frees += sf_ld(&th->frees[c]);
      }
      st->reallocs_in_place += sf_ld(&th->reallocs_in_place);
      st->reallocs_moved += sf_ld(&th->reallocs_moved);
      st->reallocs_remapped += sf_ld(&th->reallocs_remapped);
    }
  }
  pthread_mutex_lock(&b->lock);
  for (unsigned c = 0; c < SF_CLASSES; c++) {
    uint64_t remote = sf_ld(&b->remote_frees[c]);
    st->classes[c].allocs += b->allocs[c];
    st->classes[c].frees += b->frees[c] + remote;
    st->classes[c].slabs += b->slabs_by_class[c];
    st->remote_frees += remote;
  }
  if (heap->debug) _sf_debug_stats(b, st);
  st->reallocs_in_place += b->reallocs_in_place;
  st->reallocs_moved += b->reallocs_moved;
  st->reallocs_remapped += b->reallocs_remapped;
  st->reserved_bytes += b->reserved;
  st->committed_bytes += sf_ld(&b->committed);
  st->segments += b->segment_count;
  st->slabs += b->slab_count;
  st->purges += b->purges;
  st->purged_bytes += b->purged_bytes;
  st->abandoned_slabs += b->abandoned_slabs;
  st->adopted_slabs += b->adopted_slabs;
  pthread_mutex_unlock(&b->lock);
  st->limit_hits += sf_ld(&b->limit_hits);
  st->limit_reclaims += sf_ld(&b->limit_reclaims);
  st->limit_reclaimed_bytes += sf_ld(&b->limit_reclaimed_bytes);
  st->max_bytes += b->opt.max_bytes;
  pthread_mutex_lock(&b->large_lock);
  st->large_blocks += b->large_count;
  st->large_bytes += b->large_bytes;
  st->reserved_bytes += b->large_bytes + b->large_cached_bytes;   /* kept: still committed */
  st->large.allocs += b->large_allocs;
  st->large.frees += b->large_frees;
  st->large.live_blocks += b->large_count;
  st->large.live_bytes += b->large_bytes;
  pthread_mutex_unlock(&b->large_lock);
}

int segfit_stats(segfit_heap_t *heap, segfit_stats_t *st) {
  if (st == NULL) return SEGFIT_E_INVALID_OPTION;
  _sf_init();
  memset(st, 0, sizeof *st);
  pthread_mutex_lock(&_sf_global_lock);
  if (heap != NULL) {
    if (atomic_load_explicit(&heap->closed, memory_order_acquire)) {
      pthread_mutex_unlock(&_sf_global_lock);
      return SEGFIT_E_CLOSED;
    }
    sf_stats_add(heap, st);
  } else {
    for (sf_heap_t *h = _sf_heaps; h != NULL; h = h->next) sf_stats_add(h, st);
  }
  pthread_mutex_unlock(&_sf_global_lock);
  st->class_count = SF_CLASSES;
  for (unsigned c = 0; c < SF_CLASSES; c++) {
    segfit_class_stats_t *cs = &st->classes[c];
    cs->block_size = _sf_class_size[c];
    cs->live_blocks = cs->allocs > cs->frees ? cs->allocs - cs->frees : 0;
    cs->live_bytes = cs->live_blocks * cs->block_size;
    st->allocs += cs->allocs;
    st->frees += cs->frees;
    st->live_blocks += cs->live_blocks;
    st->live_bytes += cs->live_bytes;
  }
  st->large.block_size = 0;
  st->allocs += st->large.allocs;
  st->frees += st->large.frees;
  st->live_blocks += st->large.live_blocks;
  st->live_bytes += st->large.live_bytes;
  return 0;
}
