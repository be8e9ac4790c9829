/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — debug heaps: canaries, fill patterns, the quarantine, the corruption log and the
 * guard-page report.
 *
 * A debug heap never takes the fast paths (its handle is tagged in theap and segment keys).
 * Each slab block is followed by a canary, checked when the block is freed or reallocated.
 * A freed block is filled with SF_FILL_FREE and held in a per-heap FIFO quarantine before it
 * goes back on a free list, so a write through a stale pointer lands in the pattern instead of
 * in the next owner's data; the fill is checked when the block leaves the quarantine (pushed
 * out by later frees, or on trim) and once more when it is handed out again. Every failed check
 * becomes a record in the heap's corruption log. A large block has PROT_NONE pages on both
 * sides; the guard registry lets the SIGSEGV hook name the block whose guard page was hit.
 * Invariant: a quarantined block is claimed (state FREE) and still counted in its slab's
 * `used`, so its slab can be neither emptied nor recycled while it is held.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define SF_FILL_ALLOC 0xA5
#define SF_FILL_FREE 0xDF
#define SF_CANARY_BYTE 0xCA

void _sf_debug_init(sf_heap_body_t *b) { pthread_mutex_init(&b->debug.lock, NULL); }

void _sf_debug_fini(sf_heap_body_t *b) {
  _sf_os_meta_free(b->debug.ring, SEGFIT_QUARANTINE_BLOCKS * sizeof(sf_quarantined_t));
  pthread_mutex_destroy(&b->debug.lock);
}

/* Offset of the first byte in [from, to) of p that is not `pattern`, or `to`. */
static size_t sf_first_bad(const uint8_t *p, size_t from, size_t to, uint8_t pattern) {
  for (size_t i = from; i < to; i++)
    if (p[i] != pattern) return i;
  return to;
}

static void sf_log(sf_debug_t *d, int kind, const uint8_t *p, size_t usable, size_t offset,
                   bool deferred) {
  pthread_mutex_lock(&d->lock);
  uint32_t at = (d->log_first + d->log_count) % SEGFIT_CORRUPTION_LOG;
  if (d->log_count == SEGFIT_CORRUPTION_LOG) d->log_first = (d->log_first + 1) % SEGFIT_CORRUPTION_LOG;
  else d->log_count++;
  d->log[at] = (segfit_corruption_t){(uintptr_t)p, usable, offset, kind};
  if (deferred) d->deferred++;
  pthread_mutex_unlock(&d->lock);
}

uint8_t _sf_debug_next_state(const sf_slab_t *slab, unsigned cls) {
  bool exact;
  uint32_t idx = _sf_class_index(cls, slab->free, &exact);
  return atomic_load_explicit(&slab->state[idx], memory_order_relaxed);
}

void _sf_debug_on_alloc(sf_heap_t *heap, sf_slab_t *slab, uint8_t *p, uint8_t prior, bool zero) {
  size_t usable = _sf_block_usable(heap, slab);
  /* A block freed before went through the quarantine: all fill but the free-list link. */
  if (prior == SF_BLOCK_FREE) {
    size_t bad = sf_first_bad(p, sizeof(sf_block_t), usable, SF_FILL_FREE);
    if (bad < usable) sf_log(&heap->body->debug, SEGFIT_CORRUPTION_WRITE_AFTER_FREE, p, usable, bad, true);
  }
  memset(p + usable, SF_CANARY_BYTE, SF_CANARY_SIZE);
  memset(p, zero ? 0 : SF_FILL_ALLOC, usable);
}

int _sf_debug_check_canary(sf_heap_t *heap, const sf_slab_t *slab, const uint8_t *p,
                           bool deferred) {
  size_t usable = _sf_block_usable(heap, slab);
  size_t bad = sf_first_bad(p, usable, usable + SF_CANARY_SIZE, SF_CANARY_BYTE);
  if (bad == usable + SF_CANARY_SIZE) return 0;
  sf_log(&heap->body->debug, SEGFIT_CORRUPTION_OVERRUN, p, usable, bad, deferred);
  return SEGFIT_E_CORRUPTED;
}

/* A block leaving the quarantine: its whole usable part must still be fill. */
static int sf_release_checked(sf_op_t *op, const sf_quarantined_t *q) {
  size_t usable = _sf_block_usable(op->heap, q->slab);
  size_t bad = sf_first_bad(q->p, 0, usable, SF_FILL_FREE);
  int rc = 0;
  if (bad < usable) {
    sf_log(&op->heap->body->debug, SEGFIT_CORRUPTION_WRITE_AFTER_FREE, q->p, usable, bad, false);
    rc = SEGFIT_E_CORRUPTED;
  }
  _sf_free_release(op, q->slab, q->p);
  return rc;
}

/* Takes the oldest entry if `all` or the quarantine is over its bounds. pre: d->lock. */
static bool sf_evict_locked(sf_debug_t *d, bool all, sf_quarantined_t *out) {
  if (d->count == 0) return false;
  if (!all && d->count < SEGFIT_QUARANTINE_BLOCKS && d->bytes <= SEGFIT_QUARANTINE_BYTES) return false;
  *out = d->ring[d->first];
  d->first = (d->first + 1) % SEGFIT_QUARANTINE_BLOCKS;
  d->count--;
  d->bytes -= _sf_slab_bsize(out->slab);
  d->by_class[_sf_slab_class(out->slab)]--;
  return true;
}

int _sf_debug_quarantine(sf_op_t *op, sf_slab_t *slab, uint8_t *p) {
  sf_debug_t *d = &op->heap->body->debug;
  memset(p, SF_FILL_FREE, _sf_block_usable(op->heap, slab));
  int rc = 0;
  pthread_mutex_lock(&d->lock);
  if (d->ring == NULL) d->ring = _sf_os_meta_alloc(SEGFIT_QUARANTINE_BLOCKS * sizeof(sf_quarantined_t));
  if (d->ring == NULL) {   /* no quarantine without memory for it: release at once */
    pthread_mutex_unlock(&d->lock);
    _sf_free_release(op, slab, p);
    return 0;
  }
  sf_quarantined_t out;
  bool evicted = d->count == SEGFIT_QUARANTINE_BLOCKS && sf_evict_locked(d, true, &out);
  d->ring[(d->first + d->count) % SEGFIT_QUARANTINE_BLOCKS] = (sf_quarantined_t){p, slab};
  d->count++;
  d->bytes += _sf_slab_bsize(slab);
  d->by_class[_sf_slab_class(slab)]++;
  pthread_mutex_unlock(&d->lock);
  /* Releasing may take the heap lock (an emptied slab): never under d->lock. */
  if (evicted && sf_release_checked(op, &out) != 0) rc = SEGFIT_E_CORRUPTED;
  for (;;) {
    pthread_mutex_lock(&d->lock);
    evicted = sf_evict_locked(d, false, &out);
    pthread_mutex_unlock(&d->lock);
    if (!evicted) break;
    if (sf_release_checked(op, &out) != 0) rc = SEGFIT_E_CORRUPTED;
  }
  return rc;
}

int _sf_debug_flush(sf_op_t *op) {
  sf_debug_t *d = &op->heap->body->debug;
  int rc = 0;
  for (;;) {
    sf_quarantined_t out;
    pthread_mutex_lock(&d->lock);
    bool evicted = sf_evict_locked(d, true, &out);
    pthread_mutex_unlock(&d->lock);
    if (!evicted) break;
    if (sf_release_checked(op, &out) != 0) rc = SEGFIT_E_CORRUPTED;
  }
  return rc;
}

int _sf_debug_result(sf_heap_t *heap, int rc) {
  sf_debug_t *d = &heap->body->debug;
  pthread_mutex_lock(&d->lock);
  if (d->deferred > 0 && (rc == 0 || rc == SEGFIT_E_CORRUPTED)) {
    d->deferred = 0;
    rc = SEGFIT_E_CORRUPTED;
  }
  pthread_mutex_unlock(&d->lock);
  return rc;
}

void _sf_debug_defer(sf_heap_t *heap) {
  sf_debug_t *d = &heap->body->debug;
  pthread_mutex_lock(&d->lock);
  d->deferred++;
  pthread_mutex_unlock(&d->lock);
}

void _sf_debug_stats(sf_heap_body_t *b, segfit_stats_t *st) {
  pthread_mutex_lock(&b->debug.lock);
  for (unsigned c = 0; c < SF_CLASSES; c++) st->classes[c].frees += b->debug.by_class[c];
  pthread_mutex_unlock(&b->debug.lock);
}

int segfit_debug_corruption(segfit_heap_t *heap, segfit_corruption_t *out) {
  if (heap == NULL) heap = _sf_heap_default();
  if (heap == NULL || out == NULL) return 0;
  sf_op_t op;
  int rc = _sf_thread_begin(&op, heap);
  if (rc != 0) return rc;
  sf_debug_t *d = &heap->body->debug;
  pthread_mutex_lock(&d->lock);
  if (d->log_count > 0) {
    *out = d->log[d->log_first];
    d->log_first = (d->log_first + 1) % SEGFIT_CORRUPTION_LOG;
    d->log_count--;
    rc = 1;
  }
  pthread_mutex_unlock(&d->lock);
  _sf_thread_end(&op);
  return rc;
}

#define SF_KIND_MESSAGE_(name, value, message) case value: return message;
static const char *sf_kind_message(int kind) {
  switch (kind) {
    SEGFIT_CORRUPTION_KINDS(SF_KIND_MESSAGE_)
    default: return "damaged";
  }
}
#undef SF_KIND_MESSAGE_

int segfit_corruption_describe(const segfit_corruption_t *r, char *buf, size_t size) {
  if (r == NULL) return snprintf(buf, size, "no record");
  const char *where = r->offset >= r->size ? " past its end" : "";
  uint64_t at = r->offset >= r->size ? r->offset - r->size : r->offset;
  return snprintf(buf, size, "block 0x%llx of %llu usable bytes was %s; first damaged byte at "
                  "offset %llu%s", (unsigned long long)r->block, (unsigned long long)r->size,
                  sf_kind_message(r->kind), (unsigned long long)at, where);
}

/* --- guard pages ------------------------------------------------------------------------ */
/* A fixed registry the signal hook can scan without locks. Writers claim a slot by CAS on
   `block` and publish `usable` last; the hook ignores slots whose usable is 0. A block that
   finds the registry full keeps its guard pages, only without a named report. */
#define SF_GUARDS 4096
typedef struct sf_guard_s {
  _Atomic(uintptr_t) block;
  _Atomic(size_t) usable;
  _Atomic(const sf_heap_t *) heap;
} sf_guard_t;
static sf_guard_t sf_guards[SF_GUARDS];
static _Atomic(uint32_t) sf_guard_count;
static pthread_once_t sf_guard_once = PTHREAD_ONCE_INIT;

/* Async-signal-safe formatting into a fixed buffer. */
typedef struct sf_out_s { char buf[512]; size_t n; } sf_out_t;
static void sf_put(sf_out_t *o, const char *s) {
  while (*s != '\0' && o->n < sizeof o->buf) o->buf[o->n++] = *s++;
}
static void sf_put_num(sf_out_t *o, uint64_t v, unsigned base) {
  char tmp[24];
  int i = 0;
  do {
    tmp[i++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  if (base == 16) sf_put(o, "0x");
  while (i > 0 && o->n < sizeof o->buf) o->buf[o->n++] = tmp[--i];
}

static void sf_guard_hit(uintptr_t addr, int is_write) {
  if (atomic_load_explicit(&sf_guard_count, memory_order_acquire) == 0) return;
  size_t ps = _sf_page_size;
  for (size_t i = 0; i < SF_GUARDS; i++) {
    uintptr_t block = atomic_load_explicit(&sf_guards[i].block, memory_order_acquire);
    size_t usable = atomic_load_explicit(&sf_guards[i].usable, memory_order_acquire);
    if (block == 0 || usable == 0) continue;
    bool after = addr >= block + usable && addr < block + usable + ps;
    bool before = addr < block && addr >= block - ps;
    if (!after && !before) continue;
    const sf_heap_t *heap = atomic_load_explicit(&sf_guards[i].heap, memory_order_relaxed);
    sf_out_t o = {.n = 0};
    sf_put(&o, "segfit: heap '");
    sf_put(&o, heap != NULL ? heap->name : "?");
    sf_put(&o, is_write == 1 ? "': write " : is_write == 0 ? "': read " : "': access ");
    if (after) {
      sf_put(&o, "at offset ");
      sf_put_num(&o, addr - block, 10);
      sf_put(&o, " of the large block ");
    } else {
      sf_put_num(&o, block - addr, 10);
      sf_put(&o, " bytes before the large block ");
    }
    sf_put_num(&o, block, 16);
    sf_put(&o, " (");
    sf_put_num(&o, usable, 10);
    sf_put(&o, after ? " usable bytes), past its end: " : " usable bytes): ");
    sf_put(&o, "stopped by a guard page at ");
    sf_put_num(&o, addr, 16);
    sf_put(&o, "\n");
    _sf_os_write_err(o.buf, o.n);
    return;
  }
}

static void sf_guard_install(void) { _sf_os_on_segv(sf_guard_hit); }

void _sf_debug_guard_add(const sf_heap_t *heap, const uint8_t *block, size_t usable) {
  pthread_once(&sf_guard_once, sf_guard_install);
  for (size_t i = 0; i < SF_GUARDS; i++) {
    uintptr_t expected = 0;
    if (atomic_compare_exchange_strong_explicit(&sf_guards[i].block, &expected, (uintptr_t)block,
                                                memory_order_acq_rel, memory_order_relaxed)) {
      atomic_store_explicit(&sf_guards[i].heap, heap, memory_order_relaxed);
      atomic_store_explicit(&sf_guards[i].usable, usable, memory_order_release);
      atomic_fetch_add_explicit(&sf_guard_count, 1, memory_order_release);
      return;
    }
  }
}

void _sf_debug_guard_remove(const uint8_t *block) {
  for (size_t i = 0; i < SF_GUARDS; i++) {
    if (atomic_load_explicit(&sf_guards[i].block, memory_order_relaxed) == (uintptr_t)block) {
      atomic_store_explicit(&sf_guards[i].usable, 0, memory_order_release);
      atomic_store_explicit(&sf_guards[i].block, 0, memory_order_release);
      atomic_fetch_sub_explicit(&sf_guard_count, 1, memory_order_release);
      return;
    }
  }
}
