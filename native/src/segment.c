/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — segments, their slab pools, purging, and the global segment map.
 *
 * A segment is SF_SEGMENT_SIZE (32 MiB) of address space aligned to its size, owned by one
 * heap, holding slabs of one kind. Its metadata (header, slab records, block state bytes) is a
 * separate mapping from a per-kind pool that is never unmapped, so a stale lookup reads
 * harmless memory. The segment map has one entry per 32 MiB of the low 2^48 bytes (reserved
 * with MAP_NORESERVE, touched sparsely). Free slabs sit in the heap's pools: `dirty` per class
 * (still backed by memory, head = most recently freed; taken back for the same class, a slab
 * keeps its free lists and state bytes, so a heap that cycles through the same sizes neither
 * re-initialises nor re-touches it) and `clean` per kind (purged or never touched).
 * A purge (when, purge.c decides) hands dirty slabs older than the heap's purge delay back
 * with MADV_DONTNEED (a run the OS refuses to purge stays dirty and committed, for a later
 * pass); a segment whose slabs are all clean is unmapped unless it is part of the heap's
 * reservation. Slabs change pools only under the heap lock; madvise and munmap run outside it.
 */
#include <string.h>

#include "internal.h"

_Atomic(uintptr_t) *_sf_segment_map;

static pthread_mutex_t sf_meta_lock = PTHREAD_MUTEX_INITIALIZER;
static sf_segment_t *sf_meta_pool[SF_KINDS];

/* Without the map (the OS refused its address space) no heap can be created, so no call ever
   looks a pointer up in it: lookups take a heap, and the default heap fails to appear too. */
void _sf_segment_map_init(void) {
  _sf_segment_map = _sf_os_meta_alloc(SF_MAP_ENTRIES * sizeof(_sf_segment_map[0]));
}

static bool sf_map_ok(void) { return _sf_segment_map != NULL && _sf_page_size <= SF_MAX_OS_PAGE; }

static unsigned sf_kind_first_class(unsigned kind) {
  unsigned c = 0;
  while (_sf_class_kind(c) != kind) c++;
  return c;
}

/* State bytes per slab: the blocks of the smallest class of a kind (the most a slab of that
   kind can hold) and one spare, rounded up to a cache line. The spare is never LIVE; the
   owner's free indexes it for an exact offset past a class's last whole block
   (_sf_owner_index). The rounding keeps two slabs' states off one line: slabs of large blocks
   have a few dozen states, and two threads using neighbouring slabs would otherwise write one
   line on every call (two threads' 16 KiB round trips took 4x one thread's). */
static size_t sf_kind_state_bytes(unsigned kind) {
  return (_sf_class_capacity[sf_kind_first_class(kind)] + 1 + 63) & ~(size_t)63;
}

static size_t sf_meta_size(unsigned kind) {
  size_t n = SF_SEGMENT_SIZE / _sf_kind_slab_size(kind);
  return sizeof(sf_segment_t) + n * sizeof(sf_slab_t) + n * sf_kind_state_bytes(kind);
}

/* Metadata for a segment of `kind`; *fresh when newly mapped (all zero). */
static sf_segment_t *sf_meta_get(unsigned kind, bool *fresh) {
  pthread_mutex_lock(&sf_meta_lock);
  sf_segment_t *m = sf_meta_pool[kind];
  if (m != NULL) sf_meta_pool[kind] = m->next;
  pthread_mutex_unlock(&sf_meta_lock);
  *fresh = m == NULL;
  if (m == NULL) {
    size_t size = sf_meta_size(kind);
    m = _sf_os_meta_alloc(size);
    if (m == NULL) return NULL;
    m->meta_size = size;
    m->kind = (uint8_t)kind;
  }
  return m;
}

static void sf_meta_put(sf_segment_t *m) {
  /* Drop the state bytes' memory (zero when read again); keep the header and slab records,
     which a stale lookup may still read, and which keep their kind-fixed layout. */
  uint8_t *states = (uint8_t *)&m->slabs[m->nslabs];
  size_t ps = _sf_page_size;
  uintptr_t from = ((uintptr_t)states + ps - 1) & ~(uintptr_t)(ps - 1);
  uintptr_t to = ((uintptr_t)m + m->meta_size) & ~(uintptr_t)(ps - 1);
  /* State bytes on the partial pages at the ends stay; _sf_slab_init resets a slab's bytes
     (those of its current class) before giving it a new class anyway. */
  if (to > from) _sf_os_purge((void *)from, to - from);   /* refused: resident, none LIVE */
  unsigned kind = m->kind;
  pthread_mutex_lock(&sf_meta_lock);
  m->next = sf_meta_pool[kind];
  sf_meta_pool[kind] = m;
  pthread_mutex_unlock(&sf_meta_lock);
}

/* A new segment of `kind`, its slabs all in the clean pool. pre: heap lock. */
static sf_segment_t *sf_segment_new(sf_heap_t *heap, unsigned kind) {
  sf_heap_body_t *b = heap->body;
  uint8_t *base = NULL;
  bool in_reservation = false;
  if (b->region.base != NULL && b->region.used + SF_SEGMENT_SIZE <= b->region.size) {
    base = b->region.base + b->region.used;
    b->region.used += SF_SEGMENT_SIZE;
    in_reservation = true;
  } else {
    base = _sf_os_reserve(SF_SEGMENT_SIZE, SF_SEGMENT_SIZE, false, b->opt.huge_pages != 0);
    if (base == NULL) return NULL;
  }
  bool fresh;
  sf_segment_t *seg = sf_meta_get(kind, &fresh);
  if (seg == NULL) {
    if (!in_reservation) _sf_os_unmap(base, SF_SEGMENT_SIZE);
    else b->region.used -= SF_SEGMENT_SIZE;
    return NULL;
  }
  uint32_t nslabs = (uint32_t)(SF_SEGMENT_SIZE / _sf_kind_slab_size(kind));
  size_t nstates = sf_kind_state_bytes(kind);
  /* No memset: a stale lookup may be reading the atomic fields of reused metadata. */
  seg->base = base;
  atomic_store_explicit(&seg->heap, heap, memory_order_relaxed);
  atomic_store_explicit(&seg->heap_key, (sf_heap_t *)((uintptr_t)heap | (heap->debug ? 1u : 0u)),
                        memory_order_relaxed);
  seg->nslabs = nslabs;
  seg->in_reservation = in_reservation;
  seg->precommitted = in_reservation && b->opt.pre_touch;
  seg->free_slabs = seg->clean_slabs = nslabs;
  _Atomic(uint8_t) *states = (_Atomic(uint8_t) *)(void *)&seg->slabs[nslabs];
  /* Fields fixed for the metadata's life (a stale lookup may read them) are written once. */
  if (fresh) seg->slab_shift = _sf_kind_slab_shift(kind);
  for (uint32_t i = 0; i < nslabs; i++) {
    sf_slab_t *s = &seg->slabs[i];
    if (fresh) {
      s->state = states + i * nstates;
      s->kind = (uint8_t)kind;
      s->segment = seg;
      unsigned cls = sf_kind_first_class(kind);
      atomic_store_explicit(&s->cls, (uint8_t)cls, memory_order_relaxed);
      s->recip = _sf_class_recip[cls];
      s->recip64 = s->recip << (64 - SF_RECIP_SHIFT);
      s->bsize = _sf_class_size[cls];
    }
    s->start = base + ((size_t)i << seg->slab_shift);
    s->free = s->local_free = NULL;
    s->used = s->reserved = s->touched = 0;
    atomic_store_explicit(&s->owner_tld, NULL, memory_order_relaxed);
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    atomic_store_explicit(&s->thread_free, 0, memory_order_relaxed);
    atomic_store_explicit(&s->full, 0, memory_order_relaxed);
    s->in_full = s->free_fresh = s->kept = 0;
    s->where = SF_SLAB_CLEAN;
    s->mem_fresh = 1;
    s->stamp_ms = 0;
    _sf_list_append(&b->clean[kind], s);
  }
  seg->next = b->segments;
  seg->prev = NULL;
  if (b->segments != NULL) b->segments->prev = seg;
  b->segments = seg;
  b->segment_count++;
  if (!in_reservation) b->reserved += SF_SEGMENT_SIZE;
  atomic_store_explicit(&_sf_segment_map[(uintptr_t)base >> SF_SEGMENT_SHIFT],
                        _sf_segment_make_entry(seg), memory_order_release);
  sf_assert_expensive(_sf_segment_is_valid(seg));
  return seg;
}

sf_slab_t *_sf_segment_acquire_slab(sf_heap_t *heap, unsigned cls, int *err) {
  sf_heap_body_t *b = heap->body;
  unsigned kind = _sf_class_kind(cls);
  if (!sf_map_ok()) {
    *err = SEGFIT_E_OUT_OF_MEMORY;
    return NULL;
  }
  sf_slab_t *slab = NULL;
  bool same = false;
  pthread_mutex_lock(&b->lock);
  /* A dirty slab of the class comes back as it was left: no state reset, no list rebuilt, no
     page of it touched. Otherwise a dirty one of the kind (memory still committed), the most
     recent of the first class that has one, then a clean one. */
  if ((slab = b->dirty[cls].head) != NULL) {
    same = true;
  } else {
    for (unsigned c = 0; c < SF_CLASSES && slab == NULL; c++)
      if (_sf_class_kind(c) == kind) slab = b->dirty[c].head;
  }
  if (slab != NULL) {
    sf_assert(slab->where == SF_SLAB_DIRTY && slab->used == 0);
    _sf_list_remove(&b->dirty[_sf_slab_class(slab)], slab);
    slab->mem_fresh = 0;
  } else {
    slab = b->clean[kind].head;
    if (slab == NULL) {
      if (sf_segment_new(heap, kind) == NULL) {
        pthread_mutex_unlock(&b->lock);
        *err = SEGFIT_E_OUT_OF_MEMORY;
        return NULL;
      }
      slab = b->clean[kind].head;
    }
    sf_assert(slab->where == SF_SLAB_CLEAN && slab->segment->clean_slabs > 0);
    _sf_list_remove(&b->clean[kind], slab);
    slab->segment->clean_slabs--;
  }
  sf_assert(slab->kind == kind && slab->segment->free_slabs > slab->segment->clean_slabs);
  slab->segment->free_slabs--;
  slab->where = SF_SLAB_OWNED;
  b->slab_count++;
  b->slabs_by_class[cls]++;
  pthread_mutex_unlock(&b->lock);
  if (same) slab->stamp_ms = 0;   /* owned: not seen empty yet */
  else _sf_slab_init(slab, cls);
  return slab;
}

void _sf_segment_release_slab_locked(sf_heap_body_t *b, sf_slab_t *slab, uint64_t now) {
  sf_assert(slab->where == SF_SLAB_OWNED || slab->where == SF_SLAB_ABANDONED);
  /* Empty: every block came back (a debug heap's quarantined ones still count in used). */
  sf_assert(slab->used == 0 && slab->segment->free_slabs < slab->segment->nslabs);
  atomic_store_explicit(&slab->owner_tld, NULL, memory_order_relaxed);
  atomic_store_explicit(&slab->owner, NULL, memory_order_relaxed);
  slab->where = SF_SLAB_DIRTY;
  slab->stamp_ms = now;
  slab->in_full = 0;
  slab->kept = 0;
  _sf_list_push(&b->dirty[_sf_slab_class(slab)], slab);
  slab->segment->free_slabs++;
  b->slab_count--;
  b->slabs_by_class[_sf_slab_class(slab)]--;
}

/* Unlinks a segment whose slabs are all clean. pre: heap lock. */
static void sf_segment_detach(sf_heap_body_t *b, sf_segment_t *seg) {
  sf_assert(seg->clean_slabs == seg->nslabs && seg->free_slabs == seg->nslabs &&
            !seg->in_reservation);
  for (uint32_t i = 0; i < seg->nslabs; i++) _sf_list_remove(&b->clean[seg->kind], &seg->slabs[i]);
  if (seg->prev != NULL) seg->prev->next = seg->next;
  else b->segments = seg->next;
  if (seg->next != NULL) seg->next->prev = seg->prev;
  b->segment_count--;
  b->reserved -= SF_SEGMENT_SIZE;
  atomic_store_explicit(&_sf_segment_map[(uintptr_t)seg->base >> SF_SEGMENT_SHIFT], 0,
                        memory_order_release);
}

uint64_t _sf_segment_purge(sf_heap_t *heap, uint64_t now, bool force) {
  sf_heap_body_t *b = heap->body;
  sf_slab_t *batch = NULL;
  uint64_t uncommitted = 0;
  pthread_mutex_lock(&b->lock);
  for (unsigned c = 0; c < SF_CLASSES; c++) {
    sf_slab_t *s = b->dirty[c].tail;
    while (s != NULL && _sf_purge_due(heap, s->stamp_ms, now, force)) {
      sf_slab_t *prev = s->prev;
      _sf_list_remove(&b->dirty[c], s);
      if (s->segment->precommitted) {   /* pre-touched on request: keep it resident */
        s->where = SF_SLAB_CLEAN;
        s->mem_fresh = 0;
        s->segment->clean_slabs++;
        _sf_list_push(&b->clean[s->kind], s);
      } else {
        s->where = SF_SLAB_PURGING;
        s->next = batch;
        batch = s;
      }
      s = prev;
    }
  }
  pthread_mutex_unlock(&b->lock);
  if (batch == NULL) return uncommitted;
  uint64_t calls = 0, bytes = 0;
  sf_slab_t *kept = NULL;   /* runs the OS would not purge */
  for (sf_slab_t **link = &batch; *link != NULL;) {
    /* Coalesce runs of neighbouring slabs into one madvise. */
    sf_slab_t *s = *link;
    uint8_t *start = s->start;
    size_t len = _sf_kind_slab_size(s->kind);
    sf_slab_t *last = s;
    while (last->next != NULL && last->next->start == start + len &&
           last->next->kind == s->kind) {
      last = last->next;
      len += _sf_kind_slab_size(last->kind);
    }
    if (_sf_os_purge(start, len)) {
      calls++;
      bytes += len;
      link = &last->next;
    } else {   /* still committed: the run goes back to the dirty pool, for a later pass */
      *link = last->next;
      last->next = kept;
      kept = s;
    }
  }
  sf_segment_t *dead = NULL;
  pthread_mutex_lock(&b->lock);
  for (sf_slab_t *s = kept; s != NULL;) {
    sf_slab_t *next = s->next;
    s->where = SF_SLAB_DIRTY;
    _sf_list_append(&b->dirty[_sf_slab_class(s)], s);   /* the oldest end: purged first */
    s = next;
  }
  for (sf_slab_t *s = batch; s != NULL;) {
    sf_slab_t *next = s->next;
    sf_segment_t *seg = s->segment;
    sf_assert(s->where == SF_SLAB_PURGING && seg->clean_slabs < seg->free_slabs);
    s->where = SF_SLAB_CLEAN;
    s->mem_fresh = 1;
    seg->clean_slabs++;
    _sf_heap_uncommit(b, s->touched);
    uncommitted += s->touched;
    s->touched = 0;
    _sf_list_append(&b->clean[s->kind], s);
    if (seg->clean_slabs == seg->nslabs && !seg->in_reservation) {
      sf_segment_detach(b, seg);
      seg->next = dead;
      dead = seg;
    }
    s = next;
  }
  b->purges += calls;
  b->purged_bytes += bytes;
#if SF_DEBUG >= 3
  for (sf_segment_t *seg = b->segments; seg != NULL; seg = seg->next)
    sf_assert_expensive(_sf_segment_is_valid(seg));
#endif
  pthread_mutex_unlock(&b->lock);
  while (dead != NULL) {
    sf_segment_t *next = dead->next;
    _sf_os_unmap(dead->base, SF_SEGMENT_SIZE);
    sf_meta_put(dead);
    dead = next;
  }
  return uncommitted;
}

int _sf_segment_reserve(sf_heap_t *heap) {
  if (!sf_map_ok()) return SEGFIT_E_OUT_OF_MEMORY;
  sf_heap_body_t *b = heap->body;
  size_t size = (b->opt.reserve_bytes + SF_SEGMENT_SIZE - 1) & ~(SF_SEGMENT_SIZE - 1);
  if (size == 0) return 0;
  uint8_t *base = _sf_os_reserve(size, SF_SEGMENT_SIZE, b->opt.pre_touch != 0,
                                 b->opt.huge_pages != 0);
  if (base == NULL) return SEGFIT_E_OUT_OF_MEMORY;
  b->region.base = base;
  b->region.size = size;
  b->region.used = 0;
  b->reserved += size;
  if (b->opt.pre_touch) atomic_fetch_add_explicit(&b->committed, size, memory_order_relaxed);
  return 0;
}

void _sf_segment_destroy_all(sf_heap_t *heap) {
  sf_heap_body_t *b = heap->body;
  sf_segment_t *seg = b->segments;
  b->segments = NULL;
  while (seg != NULL) {
    sf_segment_t *next = seg->next;
    atomic_store_explicit(&_sf_segment_map[(uintptr_t)seg->base >> SF_SEGMENT_SHIFT], 0,
                          memory_order_release);
    if (!seg->in_reservation) _sf_os_unmap(seg->base, SF_SEGMENT_SIZE);
    /* Live blocks die with the heap: their state bytes must not survive into reused metadata. */
    for (uint32_t i = 0; i < seg->nslabs; i++)
      if (seg->slabs[i].where == SF_SLAB_OWNED || seg->slabs[i].where == SF_SLAB_ABANDONED)
        _sf_slab_reset_states(&seg->slabs[i]);
    sf_meta_put(seg);
    seg = next;
  }
  if (b->region.base != NULL) _sf_os_unreserve(b->region.base, b->region.size);
  b->region.base = NULL;
}

/* Checks a segment's bookkeeping. pre: heap lock held or heap quiescent. */
bool _sf_segment_is_valid(const sf_segment_t *seg) {
  if (((uintptr_t)seg->base & (SF_SEGMENT_SIZE - 1)) != 0) return false;
  if (_sf_segment_of(seg->base) != seg) return false;
  if (seg->nslabs != SF_SEGMENT_SIZE / _sf_kind_slab_size(seg->kind)) return false;
  uint32_t free_slabs = 0, clean = 0;
  for (uint32_t i = 0; i < seg->nslabs; i++) {
    const sf_slab_t *s = &seg->slabs[i];
    if (s->segment != seg || s->kind != seg->kind) return false;
    if (s->start != seg->base + ((size_t)i << seg->slab_shift)) return false;
    if (s->where == SF_SLAB_CLEAN) clean++;
    if (s->where == SF_SLAB_CLEAN || s->where == SF_SLAB_DIRTY || s->where == SF_SLAB_PURGING)
      free_slabs++;
  }
  return free_slabs == seg->free_slabs && clean == seg->clean_slabs;
}

void _sf_segment_fork_lock(void) { pthread_mutex_lock(&sf_meta_lock); }
void _sf_segment_fork_unlock(void) { pthread_mutex_unlock(&sf_meta_lock); }
