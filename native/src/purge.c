/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — the background purger: memory goes back to the OS whether or not its owner calls.
 *
 * One detached thread, started on the first slab allocation, wakes every quarter purge delay
 * (clamped to 2..100 ms, the smallest delay of all heaps). Each tick it takes over thread
 * records whose owner made no call since the last tick and is between calls (segfit_trim:
 * busy ones too), pushes the remote frees they hold back (free.c's outbox), collects their
 * remote frees and hands back their empty slabs (an idle owner's
 * current slabs too); collects abandoned slabs; then purges dirty slabs older than the delay
 * (MADV_DONTNEED) and unmaps empty segments. Memory freed at T is back by about
 * T + delay + 2 ticks = 1.5 x delay, and by T + 1 tick when its owner has been idle for the
 * delay already (the common "allocate, hand over, sleep" case). The whole tick runs under the
 * global lock, so a heap cannot be destroyed under it. segfit_trim() runs the same pass at once
 * with `force`, and a request refused by a heap's limit runs it for that heap from inside its
 * call (the reclaim, heap.c) before it gives up. This file decides when memory goes back, in
 * those passes and for heaps with no purge delay (_sf_purge_released, right after a slab is
 * handed back), and states the delay's rule once (_sf_purge_due); segment.c and large.c do
 * the purging.
 */
#include <signal.h>
#include <string.h>

#include "internal.h"

static _Atomic(int) sf_purger_started;

static uint64_t sf_tick_ms(void) {   /* pre: global lock */
  uint64_t tick = 100;
  for (sf_heap_t *h = _sf_heaps; h != NULL; h = h->next)
    if (h->purge_delay_ms / 4 < tick) tick = h->purge_delay_ms / 4;
  return tick < 2 ? 2 : tick;
}

/* The record's outbox holds blocks of an open heap (`only`, if given). */
static bool sf_outbox_wanted(sf_tld_t *t, sf_heap_t *only) {
  sf_heap_t *h = atomic_load_explicit(&t->out_heap, memory_order_relaxed);
  return h != NULL && (only == NULL || h == only) && !atomic_load(&h->closed);
}

static bool sf_tld_wanted(sf_tld_t *t, sf_heap_t *only) {
  if (sf_outbox_wanted(t, only)) return true;
  for (sf_theap_t *th = t->theaps; th != NULL; th = th->next)
    if ((only == NULL || th->heap == only) && !atomic_load(&th->heap->closed)) return true;
  return false;
}

/* Did remote frees come back to the record's slabs since we last collected? */
static bool sf_tld_pending(sf_tld_t *t) {
  for (sf_theap_t *th = t->theaps; th != NULL; th = th->next)
    if (atomic_load_explicit(&th->pending, memory_order_relaxed)) return true;
  return false;
}

/* What a pass does with the thread records. TICK: the periodic pass, which takes over only
   records idle for a tick and keeps the activity bookkeeping. TRIM: busy records too, and
   everything empty goes back at once. RECLAIM: as TRIM, from inside a call that the heap's
   limit refused (_sf_heap_reclaim_for_limit): it skips the caller's own record (in that call,
   it would only be seen busy) and leaves the activity bookkeeping to the purger. */
typedef enum { SF_PASS_TICK, SF_PASS_TRIM, SF_PASS_RECLAIM } sf_pass_t;

/* One pass over the records and heaps; returns the bytes it uncommitted in `only` (0 when
   `only` is NULL). It never waits for a record: one inside a call is skipped, so a caller that
   is itself inside a call (RECLAIM) cannot wait for itself, nor for a thread that waits for the
   global lock it holds. */
static uint64_t sf_pass(uint64_t now, sf_pass_t mode, sf_heap_t *only, sf_tld_t *self) {
  bool force = mode != SF_PASS_TICK;
  uint64_t bytes = 0;
  pthread_mutex_lock(&_sf_global_lock);
  if (only != NULL && atomic_load(&only->closed)) {
    pthread_mutex_unlock(&_sf_global_lock);
    return 0;
  }
  uint64_t tick = sf_tick_ms();
  /* Activity: we set SF_REQ_IDLE in a record each tick; its owner's next call clears it. A
     record whose bit stayed set since our last look has made no call since then. An idle record is
     taken over once after it went idle, and again only when remote frees came back to it:
     no barrier (membarrier interrupts every running thread) when there is nothing to do.
     Ask every candidate at once, then one barrier for all of them. The tick leaves records
     active since its last look to their owners (a busy owner collects for itself on its slow
     paths); trim and reclaim take them too: they want the memory now. */
  bool any = false;
  for (sf_tld_t *t = _sf_tlds; t != NULL; t = t->next) {
    if (t == self) continue;
    if (mode != SF_PASS_RECLAIM &&
        !(atomic_load_explicit(&t->req, memory_order_relaxed) & SF_REQ_IDLE)) {
      atomic_fetch_or_explicit(&t->req, SF_REQ_IDLE, memory_order_relaxed);
      t->idle_since_ms = now;
      t->purged_idle = false;
      if (!force) continue;
    }
    if (!sf_tld_wanted(t, only)) continue;
    if (!force && t->purged_idle && !sf_tld_pending(t) && !sf_outbox_wanted(t, only)) continue;
    atomic_fetch_or_explicit(&t->req, SF_REQ_TAKE, memory_order_seq_cst);
    any = true;
  }
  if (any) {
    /* Refused (ENOMEM): in_op proves nothing, so every record is handed back untouched. */
    bool fenced = _sf_thread_asym_barrier();
    for (sf_tld_t *t = _sf_tlds; t != NULL; t = t->next) {
      if (t == self || !(atomic_load_explicit(&t->req, memory_order_relaxed) & SF_REQ_TAKE))
        continue;
      if (fenced && atomic_load_explicit(&t->in_op, memory_order_seq_cst) == NULL) {
        uint64_t idle = now - t->idle_since_ms;   /* no call for at least this long */
        /* Its current slabs go back below. */
        if (mode != SF_PASS_RECLAIM && idle >= tick) t->purged_idle = true;
        /* First: its blocks may be all that keeps a slab below from being empty. */
        if (sf_outbox_wanted(t, only)) _sf_outbox_flush(t);
        for (sf_theap_t *th = t->theaps; th != NULL; th = th->next) {
          if (atomic_load(&th->heap->closed) || (only != NULL && th->heap != only)) continue;
          atomic_exchange_explicit(&th->pending, 0, memory_order_acquire);
          /* Idle for a tick: the owner is not cycling through its current slabs, release
             them too. Idle for the purge delay: its empty slabs are not about to be reused
             by it, purge them in this pass. */
          bool idle_delay = idle >= th->heap->purge_delay_ms;
          uint64_t b = _sf_theap_collect(th, now, force || idle_delay ? 0 : now,
                                         force || idle >= tick, force);
          if (th->heap == only) bytes += b;
        }
      }
      _sf_thread_release(t);
    }
  }
  for (sf_heap_t *h = _sf_heaps; h != NULL; h = h->next) {
    if (only != NULL && h != only) continue;
    _sf_heap_collect_abandoned(h, now);
    uint64_t b = _sf_purge_heap(h, now, force);
    if (h == only) bytes += b;
  }
  _sf_os_unmap_retry();
  pthread_mutex_unlock(&_sf_global_lock);
  return bytes;
}

/* --- what goes back, and when, outside the passes --------------------------------------------
   The purging itself is segment.c's (dirty slabs, empty segments) and large.c's (kept
   mappings); the rule of the delay is _sf_purge_due. */
uint64_t _sf_purge_heap(sf_heap_t *heap, uint64_t now, bool force) {
  uint64_t bytes = _sf_large_cache_purge(heap, now, force);   /* they age as dirty slabs do */
  return bytes + _sf_segment_purge(heap, now, force);
}

uint64_t _sf_purge_released(sf_heap_t *heap, uint64_t now) {
  /* A heap without a delay keeps nothing: what its thread heaps hand back goes at once. */
  return heap->purge_delay_ms == 0 ? _sf_purge_heap(heap, now, true) : 0;
}

/* --- the passes ---------------------------------------------------------------------------- */
void _sf_purge_tick(uint64_t now, bool force, sf_heap_t *only) {
  sf_pass(now, force ? SF_PASS_TRIM : SF_PASS_TICK, only, NULL);
}

uint64_t _sf_purge_reclaim(sf_heap_t *heap, sf_tld_t *self, uint64_t now) {
  return sf_pass(now, SF_PASS_RECLAIM, heap, self);
}

static void *sf_purger(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  for (;;) {
    pthread_mutex_lock(&_sf_global_lock);
    uint64_t tick = sf_tick_ms();
    pthread_mutex_unlock(&_sf_global_lock);
    _sf_os_sleep_ms(tick);
    uint64_t now = _sf_os_now_ms();
    atomic_store_explicit(&_sf_clock_ms, now, memory_order_relaxed);
    _sf_purge_tick(now, false, NULL);
  }
  return NULL;
}

void _sf_purge_start(void) {
  if (atomic_load_explicit(&sf_purger_started, memory_order_relaxed)) return;
  if (atomic_exchange(&sf_purger_started, 1)) return;
  pthread_attr_t attr;
  pthread_t t;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  if (pthread_create(&t, &attr, sf_purger, NULL) == 0) pthread_setname_np(t, "segfit-purge");
  /* If it cannot start, slow paths and segfit_trim() still purge; we do not retry. */
  pthread_attr_destroy(&attr);
}

