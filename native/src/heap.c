/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — heaps, thread heaps, size classes and slab hand-over between threads.
 *
 * Owns the size-class table (the one definition; segfit_class_size and the Java facade read
 * it), heap creation and destruction, and everything a thread heap does with its slabs on the
 * slow path: refilling a class (collect, extend, park full slabs, follow remote-free hints,
 * adopt abandoned slabs, take a fresh slab), retiring empty slabs (keeping the current ones
 * and a budget of others for the thread's next round), abandoning all slabs at thread exit,
 * the heap's byte limit (its committed bytes, which slab.c, lend.c and large.c count through
 * it) and the reclaim of every unused byte of a heap when a request would cross that limit.
 * A thread heap's lists are touched only by its owner or by whoever took the owner's record
 * over (thread.c); the heap's pools and abandoned lists only under its lock.
 * Lock order: global lock, then a heap's lock, then its large-block lock.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* --- size classes ----------------------------------------------------------------------- */
/* Class i: 16 * (i + 1) for i < 8, then (5 + j) << (k + 5) for i = 8 + 4k + j. */
#define SF_CS(i) ((i) < 8 ? ((i) + 1) * 16u : (5u + ((i) - 8) % 4) << (((i) - 8) / 4 + 5))
#define SF_RECIP(i) ((((uint64_t)1 << SF_RECIP_SHIFT) + SF_CS(i) - 1) / SF_CS(i))
#define SF_CAP(i)                                                                              \
  ((SF_CS(i) <= SF_KIND0_MAX ? ((size_t)64 << 10)                                              \
                             : SF_CS(i) <= SF_KIND1_MAX ? ((size_t)512 << 10) : ((size_t)4 << 20)) / \
   SF_CS(i))
#define SF_SLABMASK(i)                                                                         \
  (uint32_t)((SF_CS(i) <= SF_KIND0_MAX ? ((size_t)64 << 10)                                    \
              : SF_CS(i) <= SF_KIND1_MAX ? ((size_t)512 << 10) : ((size_t)4 << 20)) - 1)
#define SF_T4(M, i) M(i), M(i + 1), M(i + 2), M(i + 3)
#define SF_T20(M, i) SF_T4(M, i), SF_T4(M, i + 4), SF_T4(M, i + 8), SF_T4(M, i + 12), SF_T4(M, i + 16)
#define SF_TABLE(M) {SF_T20(M, 0), SF_T20(M, 20), SF_T20(M, 40)}
/* A chain in an outbox (free.c) holds at most a quarter of its slab. */
_Static_assert(SF_CAP(SF_OUTBOX_CLASSES - 1) >= 4 * SF_OUTBOX_BLOCKS &&
                   SF_CAP(SF_OUTBOX_CLASSES) < 4 * SF_OUTBOX_BLOCKS,
               "the outbox serves the classes whose slabs hold 4 chains or more");
const uint32_t _sf_class_size[SF_CLASSES] = SF_TABLE(SF_CS);
/* Derived from the sizes, for division-free block arithmetic. */
const uint64_t _sf_class_recip[SF_CLASSES] = SF_TABLE(SF_RECIP);
const uint32_t _sf_class_capacity[SF_CLASSES] = SF_TABLE(SF_CAP);
const uint32_t _sf_class_slab_mask[SF_CLASSES] = SF_TABLE(SF_SLABMASK);
/* _sf_size_class up to 1 KiB, by (size + 15) / 16 = i: the class of size 16 i (sizes 16 i - 15
   .. 16 i share it: class boundaries up to 1 KiB are multiples of 16). test-api checks every
   size against a slow reference. */
#define SF_SMALL_T(i) ((i) >= 512 ? 9u : (i) >= 256 ? 8u : 7u)   /* log2(i), i in 128..1023 */
#define SF_SMALL_B(t) (8u + (SF_SMALL_T(t) - 7u) * 4u + (((t) >> (SF_SMALL_T(t) - 2u)) & 3u))
#define SF_SC16(i) ((i) <= 8 ? ((i) == 0 ? 0u : (unsigned)(i) - 1u) : SF_SMALL_B(16u * (i) - 1u))
#define SF_S8(i) SF_SC16(i), SF_SC16(i + 1), SF_SC16(i + 2), SF_SC16(i + 3), SF_SC16(i + 4), \
                 SF_SC16(i + 5), SF_SC16(i + 6), SF_SC16(i + 7)
const uint8_t _sf_class_small[SF_SMALL_TABLE_MAX / 16 + 1] = {
    SF_S8(0), SF_S8(8), SF_S8(16), SF_S8(24), SF_S8(32), SF_S8(40), SF_S8(48), SF_S8(56),
    SF_SC16(64)};
_Static_assert(SF_SMALL_TABLE_MAX / 16 + 1 == 65, "the table's initialiser has 65 entries");
_Static_assert(SF_CS(SF_CLASSES - 1) == SF_SMALL_MAX, "the last class is the small maximum");
_Static_assert(SF_CLASSES <= SEGFIT_MAX_CLASSES, "statistics arrays are large enough");

unsigned _sf_class_for_aligned(size_t size, size_t alignment) {
  unsigned c = _sf_size_class(size);
  for (; c < SF_CLASSES; c++) {
    size_t bs = _sf_class_size[c];
    /* Blocks start at slab + i * bs, and slabs are aligned to their size. */
    if ((bs & (alignment - 1)) == 0 && alignment <= _sf_kind_slab_size(_sf_class_kind(c)))
      return c;
  }
  return SF_CLASSES;
}

int segfit_class_count(void) { return SF_CLASSES; }
size_t segfit_class_size(int index) {
  return index >= 0 && index < SF_CLASSES ? _sf_class_size[index] : 0;
}
size_t segfit_small_max(void) { return SF_SMALL_MAX; }
size_t segfit_page_size(void) {
  _sf_init();
  return _sf_page_size;
}

/* --- thread heap records (pool under the global lock) ------------------------------------ */
#define SF_THEAP_CHUNK 16
static sf_theap_t *sf_theap_pool;
sf_theap_t _sf_theap_none;   /* all zero: its key and heap match no heap */

sf_theap_t *_sf_theap_new(sf_heap_t *heap, sf_tld_t *tld) {
  if (sf_theap_pool == NULL) {
    sf_theap_t *chunk = _sf_os_meta_alloc(SF_THEAP_CHUNK * sizeof(sf_theap_t));
    if (chunk == NULL) return NULL;
    for (int i = SF_THEAP_CHUNK - 1; i >= 0; i--) {
      chunk[i].next = sf_theap_pool;
      sf_theap_pool = &chunk[i];
    }
  }
  sf_theap_t *th = sf_theap_pool;
  sf_theap_pool = th->next;
  /* A remote free that read this record as a slab's owner before it was pooled may still set
     its hint[] or pending (harmless: a useless scan), so those two are reset atomically. */
  memset(th, 0, offsetof(sf_theap_t, hint));
  for (unsigned c = 0; c < SF_CLASSES; c++)
    atomic_store_explicit(&th->hint[c], 0, memory_order_relaxed);
  atomic_store_explicit(&th->pending, 0, memory_order_relaxed);
  memset(&th->allocs, 0, sizeof *th - offsetof(sf_theap_t, allocs));
  atomic_store_explicit(&th->key, (sf_heap_t *)((uintptr_t)heap | (heap->debug ? 1u : 0u)),
                        memory_order_relaxed);
  th->heap = heap;
  th->tld = tld;
  for (unsigned c = 0; c < SF_CLASSES; c++) th->cur[c] = &_sf_slab_empty;
  th->retain_empty = heap->purge_delay_ms != 0;
  th->keep_budget = th->retain_empty && heap->body->opt.max_bytes == 0 ? SF_THEAP_KEEP_BYTES : 0;
  return th;
}

void _sf_theap_free_record(sf_theap_t *th) {   /* pre: global lock */
  atomic_store_explicit(&th->key, NULL, memory_order_relaxed);
  th->heap = NULL;
  th->next = sf_theap_pool;
  sf_theap_pool = th;
}

/* --- the thread heap of a record for a heap ------------------------------------------------ */
sf_theap_t *_sf_theap_get(sf_op_t *op, bool create) {
  sf_tld_t *t = op->tld;
  sf_heap_t *heap = op->heap;
  sf_theap_t *th = t->cache[heap->slot];
  if (th->heap == heap) {
    sf_assert(th->tld == t);
    return th;
  }
  /* The list changes only under the global lock, so statistics readers can walk it. */
  pthread_mutex_lock(&_sf_global_lock);
  sf_theap_t **pp = &t->theaps, *found = NULL;
  while (*pp != NULL) {
    th = *pp;
    if (atomic_load_explicit(&th->heap->closed, memory_order_acquire)) {
      /* The heap was destroyed: its slabs are gone; drop the record without touching them. */
      *pp = th->next;
      if (t->cache[th->heap->slot] == th) t->cache[th->heap->slot] = &_sf_theap_none;
      _sf_theap_free_record(th);
      continue;
    }
    if (th->heap == heap) found = th;
    pp = &th->next;
  }
  /* None for a closed heap: destroy cleared the keys of those that exist (under this lock),
     and a new one would carry a key past its barrier. */
  if (found == NULL && create && !atomic_load_explicit(&heap->closed, memory_order_relaxed)) {
    found = _sf_theap_new(heap, t);
    if (found != NULL) {
      found->next = t->theaps;
      t->theaps = found;
    }
  }
  pthread_mutex_unlock(&_sf_global_lock);
  if (found != NULL) t->cache[heap->slot] = found;
  return found;
}

int _sf_theap_missing(sf_heap_t *heap) {
  return atomic_load_explicit(&heap->closed, memory_order_acquire) ? SEGFIT_E_CLOSED
                                                                   : SEGFIT_E_OUT_OF_MEMORY;
}

/* A thread exits (its record's destructor, init.c): each thread heap hands its slabs over inside
   a call on its heap (none for a destroyed heap: nothing to hand over). */
void _sf_theap_abandon_all(sf_tld_t *t) {
  for (sf_theap_t *th = t->theaps; th != NULL; th = th->next) {
    if (_sf_thread_enter(t, th->heap) != 0) continue;
    _sf_theap_abandon(th);
    _sf_leave(t);
  }
}

void _sf_theap_free_all(sf_tld_t *t) {   /* pre: global lock */
  while (t->theaps != NULL) {
    sf_theap_t *th = t->theaps;
    t->theaps = th->next;
    /* Under the global lock, so a statistics reader sees the counters exactly once. */
    if (!atomic_load_explicit(&th->heap->closed, memory_order_acquire)) _sf_stats_fold(th);
    _sf_theap_free_record(th);
  }
}

/* --- slab lists of a thread heap --------------------------------------------------------- */
/* An emptied slab the thread keeps besides its current ones (see _sf_theap_slab_emptied)
   stops counting against the budget once it is current again or released. */
static void sf_unkeep(sf_theap_t *th, sf_slab_t *slab) {
  if (!slab->kept) return;
  sf_assert(th->kept_bytes >= _sf_kind_slab_size(slab->kind));
  slab->kept = 0;
  th->kept_bytes -= _sf_kind_slab_size(slab->kind);
}

/* Sets slab->floor again from what it depends on (_sf_slab_floor): after every change of
   in_full or of the class's current slab, for each slab the change concerns. */
static void sf_refloor(sf_theap_t *th, sf_slab_t *slab) {
  if (slab != &_sf_slab_empty) slab->floor = _sf_slab_floor(th, slab);
}

/* The class's current slab becomes `slab` (both slabs ours). */
static void sf_cur_set(sf_theap_t *th, unsigned cls, sf_slab_t *slab) {
  sf_slab_t *old = th->cur[cls];
  th->cur[cls] = slab;
  sf_refloor(th, old);
  sf_refloor(th, slab);
}

static void sf_set_cur(sf_theap_t *th, unsigned cls) {
  sf_slab_t *h = th->avail[cls].head;
  if (h != NULL) sf_unkeep(th, h);
  sf_cur_set(th, cls, h != NULL ? h : &_sf_slab_empty);
}

static void sf_take(sf_theap_t *th, sf_slab_t *slab) {
  sf_assert(slab->where == SF_SLAB_OWNED && th->heap == atomic_load(&slab->segment->heap));
  atomic_store_explicit(&slab->owner, th, memory_order_relaxed);
  atomic_store_explicit(&slab->owner_tld, th->tld, memory_order_release);
  slab->in_full = 0;
  atomic_store_explicit(&slab->full, 0, memory_order_relaxed);
  sf_refloor(th, slab);
}

void _sf_theap_unfull(sf_theap_t *th, sf_slab_t *slab) {
  unsigned cls = _sf_slab_class(slab);
  sf_assert(slab->in_full);
  _sf_list_remove(&th->fulls[cls], slab);
  slab->in_full = 0;
  atomic_store_explicit(&slab->full, 0, memory_order_relaxed);
  _sf_list_append(&th->avail[cls], slab);
  sf_set_cur(th, cls);
  sf_refloor(th, slab);
}

/* Gives an empty slab back to the heap's pool; returns the bytes uncommitted (purge delay 0:
   purged at once). */
static uint64_t sf_release(sf_theap_t *th, sf_slab_t *slab, uint64_t now) {
  sf_heap_t *heap = th->heap;
  unsigned cls = _sf_slab_class(slab);
  sf_assert(slab->used == 0 && atomic_load_explicit(&slab->owner, memory_order_relaxed) == th);
  sf_unkeep(th, slab);
  if (slab->in_full) _sf_list_remove(&th->fulls[cls], slab);
  else _sf_list_remove(&th->avail[cls], slab);
  sf_set_cur(th, cls);
  pthread_mutex_lock(&heap->body->lock);
  _sf_segment_release_slab_locked(heap->body, slab, now);
  pthread_mutex_unlock(&heap->body->lock);
  return _sf_purge_released(heap, now);
}

void _sf_theap_slab_emptied(sf_theap_t *th, sf_slab_t *slab) {
  uint64_t now = atomic_load_explicit(&_sf_clock_ms, memory_order_relaxed);
  if (slab->in_full) _sf_theap_unfull(th, slab);
  /* Keep the class's current slab (no thrash on alloc/free of one block); it is returned
     after the purge delay by the purger or the next collection. */
  if (th->retain_empty && slab == th->avail[_sf_slab_class(slab)].head) {
    slab->stamp_ms = 0;   /* "just emptied": the next collection starts its clock */
    return;
  }
  /* Keep a few more, up to keep_budget bytes: a thread that frees a batch and allocates the
     same sizes again finds them in its lists, without the heap lock (twice per slab) and the
     pool. The purger's collection (the owner idle for a tick) or trim releases them; a busy
     owner holds at most the budget. Not in heaps with a limit: there an empty slab may be
     what another class needs. */
  size_t bytes = _sf_kind_slab_size(slab->kind);
  if (!slab->kept && th->kept_bytes + bytes <= th->keep_budget) {
    slab->kept = 1;
    th->kept_bytes += bytes;
    slab->stamp_ms = 0;
    return;
  }
  sf_release(th, slab, now);
}

/* Moves a slab to the head of its class's available list and makes it current. */
static sf_slab_t *sf_make_current(sf_theap_t *th, sf_slab_t *slab) {
  sf_slab_list_t *av = &th->avail[_sf_slab_class(slab)];
  if (av->head != slab) {
    _sf_list_remove(av, slab);
    _sf_list_push(av, slab);
  }
  sf_cur_set(th, _sf_slab_class(slab), slab);
  sf_unkeep(th, slab);
  sf_assert(slab->free != NULL && !slab->in_full);
  sf_assert_expensive(_sf_slab_is_valid(slab));
  return slab;
}

/* Parks a slab with no free block in the full list, unless a remote free raced in.
   Dekker with the remote side: we store full then load thread_free; a remote free pushes
   then loads full. Either we see the block or it sees `full` and leaves a hint. */
static bool sf_park_full(sf_theap_t *th, sf_slab_t *slab) {
  atomic_store_explicit(&slab->full, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&slab->thread_free, memory_order_seq_cst) != 0) {
    atomic_store_explicit(&slab->full, 0, memory_order_relaxed);
    return false;
  }
  _sf_list_remove(&th->avail[_sf_slab_class(slab)], slab);
  slab->in_full = 1;
  sf_refloor(th, slab);
  _sf_list_append(&th->fulls[_sf_slab_class(slab)], slab);
  return true;
}

/* A slab of cls with a free block, made current; NULL and *err when none can be had. */
static sf_slab_t *sf_refill(sf_theap_t *th, unsigned cls, int *err) {
  sf_slab_list_t *av = &th->avail[cls];
  sf_heap_t *heap = th->heap;
  sf_heap_body_t *b = heap->body;
  for (;;) {
    sf_slab_t *s = av->head;
    while (s != NULL) {
      sf_slab_t *next = s->next;
      if (s->free != NULL) return sf_make_current(th, s);
      _sf_slab_collect(s);
      if (s->free != NULL) return sf_make_current(th, s);
      if (s->reserved < _sf_slab_capacity(s)) {
        if (!_sf_slab_extend(s, b, err)) return NULL;
        return sf_make_current(th, s);
      }
      if (!sf_park_full(th, s)) {
        _sf_slab_collect(s);
        if (s->free != NULL) return sf_make_current(th, s);
      }
      s = next;
    }
    sf_set_cur(th, cls);
    /* Remote frees came back to full slabs: move those back. */
    /* Exchange, not load+store: a hint set meanwhile is never lost. Acquire pairs with the
       remote's release, so the blocks it pushed are visible to the scan. */
    if (atomic_load_explicit(&th->hint[cls], memory_order_relaxed) &&
        atomic_exchange_explicit(&th->hint[cls], 0, memory_order_acquire)) {
      bool any = false;
      for (sf_slab_t *f = th->fulls[cls].head; f != NULL;) {
        sf_slab_t *next = f->next;
        if (atomic_load_explicit(&f->thread_free, memory_order_acquire) != 0) {
          _sf_theap_unfull(th, f);
          any = true;
        }
        f = next;
      }
      if (any) continue;
    }
    /* Adopt a slab abandoned by an exited thread. */
    pthread_mutex_lock(&b->lock);
    sf_slab_t *a = b->abandoned[cls].head;
    if (a != NULL) {
      _sf_list_remove(&b->abandoned[cls], a);
      b->adopted_slabs++;
      a->where = SF_SLAB_OWNED;
      sf_take(th, a);
    }
    pthread_mutex_unlock(&b->lock);
    if (a != NULL) {
      _sf_list_push(av, a);
      continue;
    }
    /* A fresh slab from the heap's segments. */
    sf_slab_t *f = _sf_segment_acquire_slab(heap, cls, err);
    if (f == NULL) return NULL;
    sf_take(th, f);
    _sf_list_push(av, f);
    sf_cur_set(th, cls, f);
    _sf_slab_collect(f);   /* a dirty slab of this class comes with its lists */
    if (f->free == NULL && !_sf_slab_extend(f, b, err)) return NULL;   /* stays, empty */
    return f;
  }
}

sf_slab_t *_sf_theap_refill(sf_theap_t *th, unsigned cls, int *err) {
  sf_slab_t *s = sf_refill(th, cls, err);
  /* What the fast paths rely on: the class's current slab, with a free block. */
  sf_assert(s == NULL || (th->cur[cls] == s && s->free != NULL && _sf_slab_class(s) == cls));
  if (s != NULL || *err != SEGFIT_E_LIMIT) return s;
  /* At the limit: reclaim what the heap holds unused, then the whole refill once more (the
     reclaim may have handed back any empty slab of ours, the one being extended too). */
  _sf_heap_reclaim_for_limit(th);
  s = sf_refill(th, cls, err);
  if (s == NULL && *err == SEGFIT_E_LIMIT)
    atomic_fetch_add_explicit(&th->heap->body->limit_hits, 1, memory_order_relaxed);
  return s;
}

/* Collection by the owner or by the purger holding the owner's record: remote frees of all
   slabs, hinted (or all) full slabs back to available, empty slabs back to the heap once
   older than the purge delay (force: at once). Released slabs are stamped `stamp` in the
   dirty pool (0: purge at the next pass). Returns the bytes uncommitted on the way (purge
   delay 0: released slabs are purged at once). */
uint64_t _sf_theap_collect(sf_theap_t *th, uint64_t now, uint64_t stamp, bool force,
                           bool all_full) {
  uint64_t bytes = 0;
  for (unsigned cls = 0; cls < SF_CLASSES; cls++) {
    bool hinted = atomic_load_explicit(&th->hint[cls], memory_order_relaxed) &&
                  atomic_exchange_explicit(&th->hint[cls], 0, memory_order_acquire);
    if (all_full || hinted) {
      for (sf_slab_t *f = th->fulls[cls].head; f != NULL;) {
        sf_slab_t *next = f->next;
        if (atomic_load_explicit(&f->thread_free, memory_order_acquire) != 0)
          _sf_theap_unfull(th, f);
        f = next;
      }
    }
    for (sf_slab_t *s = th->avail[cls].head; s != NULL;) {
      sf_slab_t *next = s->next;
      uint32_t got = _sf_slab_collect(s);
      if (s->used == 0) {
        bool head = s == th->avail[cls].head;
        if (got > 0 || s->stamp_ms == 0) s->stamp_ms = now;   /* empty since, at the latest */
        if (!head || _sf_purge_due(th->heap, s->stamp_ms, now, force))
          bytes += sf_release(th, s, stamp);
      } else {
        s->stamp_ms = 0;   /* in use: the fast paths empty and refill it without a stamp */
      }
      s = next;
    }
  }
  return bytes;
}

void _sf_theap_abandon(sf_theap_t *th) {
  sf_heap_body_t *b = th->heap->body;
  uint64_t now = atomic_load_explicit(&_sf_clock_ms, memory_order_relaxed);
  pthread_mutex_lock(&b->lock);
  for (unsigned cls = 0; cls < SF_CLASSES; cls++) {
    for (int which = 0; which < 2; which++) {
      sf_slab_list_t *l = which == 0 ? &th->avail[cls] : &th->fulls[cls];
      while (l->head != NULL) {
        sf_slab_t *s = l->head;
        _sf_list_remove(l, s);
        _sf_slab_collect(s);
        sf_assert_expensive(_sf_slab_is_valid(s));
        if (s->used == 0) {
          _sf_segment_release_slab_locked(b, s, now);
          continue;
        }
        s->in_full = 0;
        atomic_store_explicit(&s->full, 0, memory_order_relaxed);
        atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
        atomic_store_explicit(&s->owner_tld, NULL, memory_order_release);
        s->where = SF_SLAB_ABANDONED;
        _sf_list_append(&b->abandoned[cls], s);
        b->abandoned_slabs++;
      }
    }
    th->cur[cls] = &_sf_slab_empty;
  }
  th->kept_bytes = 0;   /* every kept slab was empty: released above, its flag cleared */
  pthread_mutex_unlock(&b->lock);
  _sf_purge_released(th->heap, now);
}

void _sf_heap_collect_abandoned(sf_heap_t *heap, uint64_t now) {
  sf_heap_body_t *b = heap->body;
  pthread_mutex_lock(&b->lock);
  for (unsigned cls = 0; cls < SF_CLASSES; cls++) {
    for (sf_slab_t *s = b->abandoned[cls].head; s != NULL;) {
      sf_slab_t *next = s->next;
      _sf_slab_collect(s);
      if (s->used == 0) {
        _sf_list_remove(&b->abandoned[cls], s);
        _sf_segment_release_slab_locked(b, s, now);
      }
      s = next;
    }
  }
  pthread_mutex_unlock(&b->lock);
}

/* --- heaps -------------------------------------------------------------------------------- */
sf_heap_t *_sf_heaps;

#define SF_HANDLE_CHUNK 64
static sf_heap_t *sf_handles;                  /* global lock: current chunk */
static size_t sf_handles_left;
static uint64_t sf_heap_counter;               /* global lock */

static sf_heap_t *sf_handle_alloc(void) {      /* pre: global lock; never freed */
  if (sf_handles_left == 0) {
    sf_handles = _sf_os_meta_alloc(SF_HANDLE_CHUNK * sizeof(sf_heap_t));
    if (sf_handles == NULL) return NULL;
    sf_handles_left = SF_HANDLE_CHUNK;
  }
  sf_handles_left--;
  return sf_handles++;
}

static int sf_heap_create(const segfit_options_t *options, bool is_default, sf_heap_t **out) {
  _sf_init();
  segfit_options_t opt;
  if (options != NULL) opt = *options;
  else segfit_options_init(&opt);
  int rc = _sf_options_check(&opt);
  if (rc != 0) return rc;
  sf_heap_body_t *b = _sf_os_meta_alloc(sizeof *b);
  if (b == NULL) return SEGFIT_E_OUT_OF_MEMORY;
  pthread_mutex_lock(&_sf_global_lock);
  sf_heap_t *h = sf_handle_alloc();
  uint64_t n = sf_heap_counter++;
  pthread_mutex_unlock(&_sf_global_lock);
  if (h == NULL) {
    _sf_os_meta_free(b, sizeof *b);
    return SEGFIT_E_OUT_OF_MEMORY;
  }
  pthread_mutex_init(&b->lock, NULL);
  pthread_mutex_init(&b->large_lock, NULL);
  _sf_debug_init(b);
  if (opt.name != NULL) snprintf(h->name, sizeof h->name, "%s", opt.name);
  else if (is_default) snprintf(h->name, sizeof h->name, "default");
  else snprintf(h->name, sizeof h->name, "heap-%llu", (unsigned long long)n);
  b->opt = opt;
  b->opt.name = h->name;
  h->body = b;
  h->slot = (uint32_t)(n % SF_THEAP_CACHE);
  h->purge_delay_ms =
      opt.purge_delay_ms < 0 ? SEGFIT_DEFAULT_PURGE_DELAY_MS : (uint64_t)opt.purge_delay_ms;
  h->debug = opt.debug != 0;
  h->is_default = is_default;
  atomic_store_explicit(&h->closed, 0, memory_order_relaxed);
  rc = _sf_segment_reserve(h);
  if (rc != 0) {
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->large_lock);
    _sf_debug_fini(b);
    _sf_os_meta_free(b, sizeof *b);
    h->body = NULL;
    atomic_store(&h->closed, 1);   /* the handle is burnt, never handed out */
    return rc;
  }
  pthread_mutex_lock(&_sf_global_lock);
  h->next = _sf_heaps;
  _sf_heaps = h;
  pthread_mutex_unlock(&_sf_global_lock);
  _sf_purge_start();
  *out = h;
  return 0;
}

int segfit_heap_create(const segfit_options_t *options, segfit_heap_t **heap) {
  if (heap == NULL) return SEGFIT_E_INVALID_OPTION;
  *heap = NULL;
  return sf_heap_create(options, false, heap);
}

static sf_heap_t *sf_default;
static pthread_once_t sf_default_once = PTHREAD_ONCE_INIT;
static void sf_default_init(void) {
  if (sf_heap_create(NULL, true, &sf_default) != 0) sf_default = NULL;
}

sf_heap_t *_sf_heap_default(void) {
  pthread_once(&sf_default_once, sf_default_init);
  return sf_default;
}

segfit_heap_t *segfit_default_heap(void) { return _sf_heap_default(); }

const char *segfit_heap_name(const segfit_heap_t *heap) {
  if (heap == NULL) heap = _sf_heap_default();
  return heap != NULL ? heap->name : NULL;
}

int segfit_heap_destroy(segfit_heap_t *heap) {
  if (heap == NULL || heap->is_default) return SEGFIT_E_INVALID_OPTION;
  pthread_mutex_lock(&_sf_global_lock);
  if (atomic_load_explicit(&heap->closed, memory_order_relaxed)) {
    pthread_mutex_unlock(&_sf_global_lock);
    return SEGFIT_E_CLOSED;
  }
  /* The fast paths test no closed flag: they go on only with a thread heap whose key names
     the heap. Cleared before the barrier of _sf_thread_wait_heap_idle, and none is made for a
     closed heap (_sf_theap_get, under this lock): a fast path either sees no key or is seen
     inside its call. Cleared before `closed` is set, too: a thread that saw the heap closed
     (a slow entry or another thread's block: an acquire load) then finds no key either, so
     once a call of a thread failed with CLOSED, every later one does. */
  for (sf_tld_t *t = _sf_tlds; t != NULL; t = t->next)
    for (sf_theap_t *th = t->theaps; th != NULL; th = th->next)
      if (th->heap == heap) atomic_store_explicit(&th->key, NULL, memory_order_seq_cst);
  atomic_store_explicit(&heap->closed, 1, memory_order_seq_cst);
  for (sf_heap_t **pp = &_sf_heaps; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == heap) {
      *pp = heap->next;
      break;
    }
  }
  pthread_mutex_unlock(&_sf_global_lock);
  /* Calls that entered before `closed` became visible finish; later ones see it. */
  _sf_thread_wait_heap_idle(heap);
  /* No call is in the heap now: threads' counts and outboxes for it go, untouched, so that
     they may serve another heap. */
  pthread_mutex_lock(&_sf_global_lock);
  for (sf_tld_t *t = _sf_tlds; t != NULL; t = t->next) {
    if (atomic_load_explicit(&t->freeing, memory_order_relaxed) == heap) _sf_stats_fold_freeing(t);
    if (atomic_load_explicit(&t->out_heap, memory_order_relaxed) == heap) _sf_outbox_drop(t);
  }
  pthread_mutex_unlock(&_sf_global_lock);
  sf_heap_body_t *b = heap->body;
  _sf_large_destroy_all(heap);
  _sf_segment_destroy_all(heap);
  pthread_mutex_destroy(&b->lock);
  pthread_mutex_destroy(&b->large_lock);
  _sf_debug_fini(b);
  heap->body = NULL;
  _sf_os_meta_free(b, sizeof *b);
  return 0;
}

/* --- the byte limit -------------------------------------------------------------------------
   committed counts the bytes of the heap backed by memory: the touched prefixes of its slabs
   (slab.c, lend.c; a pre-touched reservation counts whole from the start, segment.c) and its
   large mappings, kept ones included (large.c). Each adds before it touches memory and
   subtracts once the memory went back to the OS; a request that would take it past max_bytes
   is refused here, and then its caller reclaims (below) before it gives up. */
bool _sf_heap_commit(sf_heap_body_t *b, uint64_t add) {
  uint64_t max = b->opt.max_bytes;
  if (max == 0) {
    atomic_fetch_add_explicit(&b->committed, add, memory_order_relaxed);
    return true;
  }
  uint64_t cur = atomic_load_explicit(&b->committed, memory_order_relaxed);
  do {
    if (cur + add > max) return false;
  } while (!atomic_compare_exchange_weak_explicit(&b->committed, &cur, cur + add,
                                                  memory_order_relaxed, memory_order_relaxed));
  return true;
}

void _sf_heap_uncommit(sf_heap_body_t *b, uint64_t sub) {
  uint64_t was = atomic_fetch_sub_explicit(&b->committed, sub, memory_order_relaxed);
  sf_assert(was >= sub);   /* only what was counted goes back */
  (void)was;
}

/* --- the limit's reclaim ------------------------------------------------------------------
   A request of the calling thread (th: its thread heap, inside the call) would cross the
   heap's limit. Before it fails, what the heap holds committed but unused goes back to the OS
   so that the request can be tried once more: a debug heap's quarantine (its blocks keep their
   slabs in use), every empty slab of our thread heap (current ones too), those of every other
   thread heap between calls (through the purger's take-over of their records: an owner that
   calls meanwhile waits at its call's entry), abandoned slabs whose blocks came back, the
   dirty pools and the kept large mappings. A thread heap inside a call is skipped, never waited
   for: that call may itself be waiting for the global lock the pass holds (its own reclaim, a
   new thread heap). Returns the bytes uncommitted. pre: inside a call on th->heap, no lock
   held (the pass takes the global lock, then heap locks: the usual order). */
uint64_t _sf_heap_reclaim_for_limit(sf_theap_t *th) {
  sf_heap_t *heap = th->heap;
  sf_heap_body_t *b = heap->body;
  uint64_t now = atomic_load_explicit(&_sf_clock_ms, memory_order_relaxed);
  if (heap->debug) {
    sf_op_t op = {th->tld, heap, 0};
    if (_sf_debug_flush(&op) != 0) _sf_debug_defer(heap);   /* the next free or trim says so */
  }
  uint64_t bytes = _sf_theap_collect(th, now, 0, true, true);
  bytes += _sf_purge_reclaim(heap, th->tld, now);
  atomic_fetch_add_explicit(&b->limit_reclaims, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&b->limit_reclaimed_bytes, bytes, memory_order_relaxed);
  return bytes;
}

/* Trim of one heap: a debug heap's quarantine, the caller's own thread heap, then everyone
   else's through the purger's path (idle records only), then the pools. */
int _sf_heap_trim(sf_heap_t *heap) {
  sf_op_t op;
  int rc = _sf_thread_begin(&op, heap);
  if (rc != 0) return rc;
  if (heap->debug) rc = _sf_debug_result(heap, _sf_debug_flush(&op));
  uint64_t now = _sf_os_now_ms();
  atomic_store_explicit(&_sf_clock_ms, now, memory_order_relaxed);
  sf_theap_t *th = _sf_theap_get(&op, false);
  if (th != NULL) _sf_theap_collect(th, now, 0, true, true);
  _sf_thread_end(&op);
  _sf_purge_tick(now, true, heap);
  return rc;
}

int segfit_trim(segfit_heap_t *heap) {
  _sf_init();
  if (heap != NULL) return _sf_heap_trim(heap);
  /* Every heap: our own thread heaps first, then the shared pass. */
  int rc = 0;
  sf_tld_t *t = _sf_thread_tld();
  if (t != NULL) {
    for (sf_theap_t *th = t->theaps; th != NULL; th = th->next) {
      sf_op_t op;
      if (_sf_thread_begin(&op, th->heap) != 0) continue;
      if (th->heap->debug && _sf_debug_result(th->heap, _sf_debug_flush(&op)) != 0)
        rc = SEGFIT_E_CORRUPTED;
      _sf_theap_collect(th, _sf_os_now_ms(), 0, true, true);
      _sf_thread_end(&op);
    }
  }
  uint64_t now = _sf_os_now_ms();
  atomic_store_explicit(&_sf_clock_ms, now, memory_order_relaxed);
  _sf_purge_tick(now, true, NULL);
  return rc;
}

/* fork(): every live heap's locks, in lock order (pre: global lock held). */
void _sf_heap_fork_lock_all(void) {
  for (sf_heap_t *h = _sf_heaps; h != NULL; h = h->next) {
    pthread_mutex_lock(&h->body->lock);
    pthread_mutex_lock(&h->body->large_lock);
    pthread_mutex_lock(&h->body->debug.lock);
  }
}

void _sf_heap_fork_unlock_all(void) {
  for (sf_heap_t *h = _sf_heaps; h != NULL; h = h->next) {
    pthread_mutex_unlock(&h->body->debug.lock);
    pthread_mutex_unlock(&h->body->large_lock);
    pthread_mutex_unlock(&h->body->lock);
  }
}
