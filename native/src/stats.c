/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — statistics: cheap counters, summed by the reader.
 *
 * Allocation and free counters per class live in each thread heap, written only by the owner
 * (_sf_count_inc: no locked read-modify-write), remote frees in the freeing thread's, or in its
 * thread record's if it has no thread heap (free.c, sf_count_remote); slab, segment, purge and
 * large-block figures sit in the heap body under its locks. A reader holds the global lock,
 * under which thread heaps appear, disappear and fold their counters into the heap, so each
 * event is counted exactly once. Gauges derived
 * from two counters (live = allocs - frees) can be momentarily off under concurrent calls.
 * The figures are the SEGFIT_STATS and SEGFIT_CLASS_STATS lists of segfit.h: sf_stats_add says
 * where the core keeps each one; summing heaps goes over the lists, so it never misses a figure.
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
    atomic_fetch_add_explicit(&b->remote_frees[c], sf_ld(&th->remote_frees[c]),
                              memory_order_relaxed);
  }
  b->reallocs_in_place += sf_ld(&th->reallocs_in_place);
  b->reallocs_moved += sf_ld(&th->reallocs_moved);
  b->reallocs_remapped += sf_ld(&th->reallocs_remapped);
  pthread_mutex_unlock(&b->lock);
}

/* A thread record's counts of remote frees (free.c, sf_count_remote) go to their heap, if it is
   still open, and the record is free to count for another heap. pre: global lock, and no call
   of the record's thread counts into them (it is exiting, or the heap is closed and idle). */
void _sf_stats_fold_freeing(sf_tld_t *t) {
  sf_heap_t *heap = atomic_load_explicit(&t->freeing, memory_order_relaxed);
  if (heap == NULL) return;
  bool open = !atomic_load_explicit(&heap->closed, memory_order_acquire);
  for (unsigned c = 0; c < SF_CLASSES; c++) {
    if (open)
      atomic_fetch_add_explicit(&heap->body->remote_frees[c], sf_ld(&t->freeing_counts[c]),
                                memory_order_relaxed);
    atomic_store_explicit(&t->freeing_counts[c], 0, memory_order_relaxed);
  }
  atomic_store_explicit(&t->freeing, NULL, memory_order_release);
}

/* Reads the figures of one heap into a zeroed *st, from where the core keeps them: a figure
 * added to SEGFIT_STATS is read here. Class entries: allocs, frees and slabs, the rest comes
 * from them in sf_stats_finish. pre: global lock. */
static void sf_stats_add(sf_heap_t *heap, segfit_stats_t *st) {
  sf_heap_body_t *b = heap->body;
  for (sf_tld_t *t = _sf_tlds; t != NULL; t = t->next) {
    if (atomic_load_explicit(&t->freeing, memory_order_relaxed) == heap) {
      for (unsigned c = 0; c < SF_CLASSES; c++) {
        uint64_t remote = sf_ld(&t->freeing_counts[c]);
        st->classes[c].frees += remote;
        st->remote_frees += remote;
      }
    }
    for (sf_theap_t *th = t->theaps; th != NULL; th = th->next) {
      if (th->heap != heap) continue;
      for (unsigned c = 0; c < SF_CLASSES; c++) {
        st->classes[c].allocs += sf_ld(&th->allocs[c]);
        uint64_t remote = sf_ld(&th->remote_frees[c]);
        st->classes[c].frees += sf_ld(&th->frees[c]) + remote;
        st->remote_frees += remote;
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

/* The figures that come from the class entries. Live blocks are clamped per heap, where a
 * free counted before its allocation was folded can momentarily outnumber the allocations. */
static void sf_stats_finish(segfit_stats_t *st) {
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
}

#define SF_STATS_SUM_(field, accessor, metric, kind, unit, description) to->field += from->field;

static void sf_stats_class_sum(segfit_class_stats_t *to, const segfit_class_stats_t *from) {
  uint64_t block_size = from->block_size;   /* a size, the same in every heap: not summed */
  SEGFIT_CLASS_STATS(SF_STATS_SUM_)
  to->block_size = block_size;
}

/* Adds the figures of one heap to those of all heaps, every figure of the lists (the limits
 * too: their sum is what the heaps together may hold). */
static void sf_stats_sum(segfit_stats_t *to, const segfit_stats_t *from) {
  SEGFIT_STATS(SF_STATS_SUM_)
  for (unsigned c = 0; c < SF_CLASSES; c++) sf_stats_class_sum(&to->classes[c], &from->classes[c]);
  sf_stats_class_sum(&to->large, &from->large);
}
#undef SF_STATS_SUM_

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
    sf_stats_finish(st);
  } else {
    segfit_stats_t one;   /* a reader's call, off the allocation path: 6 KiB of stack is fine */
    sf_stats_finish(st);   /* the class sizes, also when there is no heap */
    for (sf_heap_t *h = _sf_heaps; h != NULL; h = h->next) {
      memset(&one, 0, sizeof one);
      sf_stats_add(h, &one);
      sf_stats_finish(&one);
      sf_stats_sum(st, &one);
    }
  }
  pthread_mutex_unlock(&_sf_global_lock);
  return 0;
}
