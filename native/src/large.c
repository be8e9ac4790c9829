/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — large blocks: one mapping each, found through a per-heap hash table.
 *
 * Blocks above segfit_small_max() (or aligned beyond what a slab class offers) get their own
 * page-rounded mapping; debug heaps put a PROT_NONE guard page on each side. The table
 * (open addressing, linear probing, backward-shift deletion) maps block address -> mapping and
 * is only touched under the heap's large lock. realloc between large sizes grows in place
 * into kept memory right after the block's mapping (sf_grow_in_place), else is mremap
 * (MREMAP_MAYMOVE, no copy) done while holding that lock, and the entry is replaced in the
 * same critical section, so a free or usable_size racing on the old address from another
 * thread sees either the old block (before) or no block (after) -- never a half-moved one.
 * A small ring of recently freed addresses lets a double free say ALREADY_FREE. Freed mappings
 * of non-debug heaps are kept for up to the purge delay and reused (see "freed mappings").
 * A request the heap's limit would refuse first reclaims what the heap holds unused (heap.c).
 */
#include <string.h>

#include "internal.h"

struct sf_large_table_s {
  size_t cap, count;                 /* cap: power of two */
  sf_large_entry_t e[];
};

static size_t sf_hash(uintptr_t a, size_t cap) {
  return (size_t)(((a >> 12) * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static size_t sf_table_bytes(size_t cap) {
  return sizeof(sf_large_table_t) + cap * sizeof(sf_large_entry_t);
}

static sf_large_entry_t *sf_find(sf_large_table_t *t, uintptr_t a) {
  if (t == NULL) return NULL;
  for (size_t i = sf_hash(a, t->cap);; i = (i + 1) & (t->cap - 1)) {
    if (t->e[i].addr == a) return &t->e[i];
    if (t->e[i].addr == 0) return NULL;
  }
}

static void sf_insert_raw(sf_large_table_t *t, const sf_large_entry_t *e) {
  sf_assert(e->addr != 0 && (t->count + 1) * 2 <= t->cap);   /* at most half full: probes end */
  size_t i = sf_hash(e->addr, t->cap);
  while (t->e[i].addr != 0) i = (i + 1) & (t->cap - 1);
  t->e[i] = *e;
  t->count++;
}

static bool sf_insert(sf_heap_body_t *b, const sf_large_entry_t *e) {   /* pre: large lock */
  sf_large_table_t *t = b->large;
  if (t == NULL || (t->count + 1) * 2 > t->cap) {
    size_t cap = t == NULL ? 64 : t->cap * 2;
    sf_large_table_t *n = _sf_os_meta_alloc(sf_table_bytes(cap));
    if (n == NULL) return false;
    n->cap = cap;
    if (t != NULL) {
      for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].addr != 0) sf_insert_raw(n, &t->e[i]);
      _sf_os_meta_free(t, sf_table_bytes(t->cap));
    }
    b->large = t = n;
  }
  sf_insert_raw(t, e);
  for (unsigned i = 0; i < 16; i++)
    if (b->large_recent[i] == e->addr) b->large_recent[i] = 0;
  return true;
}

static void sf_remove(sf_heap_body_t *b, sf_large_entry_t *slot) {   /* pre: large lock */
  sf_large_table_t *t = b->large;
  size_t i = (size_t)(slot - t->e);
  t->e[i].addr = 0;
  t->count--;
  /* Backward-shift the cluster after the hole. */
  for (size_t j = (i + 1) & (t->cap - 1); t->e[j].addr != 0; j = (j + 1) & (t->cap - 1)) {
    size_t h = sf_hash(t->e[j].addr, t->cap);
    bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
    if (movable) {
      t->e[i] = t->e[j];
      t->e[j].addr = 0;
      i = j;
    }
  }
}

static int sf_missing(sf_heap_body_t *b, uintptr_t a) {   /* pre: large lock */
  for (unsigned i = 0; i < 16; i++)
    if (a != 0 && b->large_recent[i] == a) return SEGFIT_E_ALREADY_FREE;
  return SEGFIT_E_NOT_A_BLOCK;
}

static size_t sf_round_page(size_t n) { return (n + _sf_page_size - 1) & ~(_sf_page_size - 1); }

/* A new name for the ranges of a mapping made by mmap or moved by mremap. Two ranges of one
   origin that touch were never apart, so they lie in one kernel mapping, which mremap needs of
   the range it resizes; the address would not do (a new mapping may start where an unmapped
   part of an older one did, next to a range still kept of it). */
static uint64_t sf_new_origin(void) {
  static _Atomic(uint64_t) next = 1;
  return atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
}

/* --- freed mappings kept for reuse ----------------------------------------------------------
   A non-debug heap with a purge delay keeps freed large mappings (still committed, pages still
   faulted) for up to the delay, at most SF_LARGE_CACHE of them and SF_LARGE_CACHE_BYTES in
   all (the oldest make room); then the purger, trim or the heap's limit (its reclaim) unmaps
   them. A large allocation takes the smallest one that fits: whole if it is at most twice the
   block (a heap without a byte limit), else its front, the rest staying kept; if none fits,
   the largest grows by mremap, keeping the pages it has. This is for growth by realloc, whose
   copy of a block that outgrows the small maximum would otherwise go into a fresh mapping and
   fault every page inside the call, and for servers that allocate and free bodies of several
   MiB at a high rate (a fresh mapping costs a page fault per 4 KiB). Taking a mapping whole
   keeps it whole for the next block: cut into fronts and rests, kept mappings end up too small
   for the next large request, which then grows one (a fault per new page: a Netty server's mix
   of 1-8 MiB bodies faulted about a seventh of its pages so). The unused tail stays committed
   with its block and counts as its mapping's (map_size > usable); a heap with a limit never
   takes more than the block, so that its reclaim can still release every unused byte.
   Zeroed and over-aligned requests never reuse a mapping. All under the large lock. */
#define SF_LARGE_CACHE_BYTES ((uint64_t)256 << 20)

/* Bytes of a block's mapping that are committed: all of it, but the guard pages of debug
   heaps' blocks. */
static size_t sf_committed(const sf_heap_t *heap, const sf_large_entry_t *e) {
  return heap->debug ? e->usable : e->map_size;
}

static bool sf_cache_on(const sf_heap_t *heap) {
  return !heap->debug && heap->purge_delay_ms != 0;
}

/* The smallest kept mapping that holds size bytes: whole if it is at most twice size and
   may_waste, else its front (the rest stays kept); *taken is the bytes taken. If none holds
   it, the largest kept mapping, taken whole into *whole, for the caller to grow: its pages are
   already faulted, which saves that many page faults. */
static uint8_t *sf_cache_take(sf_heap_body_t *b, size_t size, bool may_waste, size_t *taken,
                              uint64_t *origin, sf_large_cached_t *whole) {
  sf_large_cached_t *best = NULL, *largest = NULL;
  for (unsigned i = 0; i < SF_LARGE_CACHE; i++) {
    sf_large_cached_t *c = &b->large_cache[i];
    if (c->map == NULL) continue;
    if (c->size >= size && (best == NULL || c->size < best->size)) best = c;
    if (largest == NULL || c->size > largest->size) largest = c;
  }
  if (best == NULL) {
    if (largest != NULL) {
      *whole = *largest;
      b->large_cached_bytes -= largest->size;
      largest->map = NULL;
      largest->size = 0;
    }
    return NULL;
  }
  uint8_t *p = best->map;
  *origin = best->origin;
  *taken = may_waste && best->size / 2 <= size ? best->size : size;
  best->map = best->size == *taken ? NULL : best->map + *taken;
  best->size -= *taken;
  b->large_cached_bytes -= *taken;
  return p;
}

/* Keeps a freed mapping; false if it is too large to keep. Entries evicted to make room go to
   out[] (at most SF_LARGE_CACHE), for the caller to unmap after the lock. */
static bool sf_cache_put(sf_heap_body_t *b, const sf_large_entry_t *e, uint64_t now,
                         sf_large_cached_t *out, unsigned *nout) {
  uint8_t *map = e->map;
  size_t size = e->map_size;
  if (size > SF_LARGE_CACHE_BYTES) return false;
  for (;;) {
    sf_large_cached_t *slot = NULL, *oldest = NULL;
    for (unsigned i = 0; i < SF_LARGE_CACHE; i++) {
      sf_large_cached_t *c = &b->large_cache[i];
      if (c->map == NULL) {
        if (slot == NULL) slot = c;
      } else if (oldest == NULL || c->stamp_ms < oldest->stamp_ms) {
        oldest = c;
      }
    }
    if (slot != NULL && b->large_cached_bytes + size <= SF_LARGE_CACHE_BYTES) {
      *slot = (sf_large_cached_t){map, size, now, e->origin};
      b->large_cached_bytes += size;
      return true;
    }
    /* Full, or over the bytes (then something is kept, since size alone fits). */
    out[(*nout)++] = *oldest;
    b->large_cached_bytes -= oldest->size;
    oldest->map = NULL;
    oldest->size = 0;
  }
}

#if SF_DEBUG >= 2
/* large_cached_bytes is the sum of the kept mappings' sizes. pre: large lock. */
static bool sf_cache_is_valid(const sf_heap_body_t *b) {
  uint64_t sum = 0;
  for (unsigned i = 0; i < SF_LARGE_CACHE; i++) {
    if (b->large_cache[i].map == NULL && b->large_cache[i].size != 0) return false;
    sum += b->large_cache[i].size;
  }
  return sum == b->large_cached_bytes && sum <= SF_LARGE_CACHE_BYTES;
}
#endif

static uint64_t sf_cache_unmap(sf_heap_body_t *b, const sf_large_cached_t *gone, unsigned n) {
  uint64_t bytes = 0;
  for (unsigned i = 0; i < n; i++) {
    _sf_os_unmap(gone[i].map, gone[i].size);
    bytes += gone[i].size;
  }
  if (bytes != 0) _sf_heap_uncommit(b, bytes);
  return bytes;
}

uint64_t _sf_large_cache_purge(sf_heap_t *heap, uint64_t now, bool force) {
  sf_heap_body_t *b = heap->body;
  sf_large_cached_t gone[SF_LARGE_CACHE];
  unsigned n = 0;
  pthread_mutex_lock(&b->large_lock);
  for (unsigned i = 0; i < SF_LARGE_CACHE && b->large_cached_bytes != 0; i++) {
    sf_large_cached_t *c = &b->large_cache[i];
    if (c->map == NULL || !_sf_purge_due(heap, c->stamp_ms, now, force)) continue;
    gone[n++] = *c;
    b->large_cached_bytes -= c->size;
    c->map = NULL;
    c->size = 0;
  }
  pthread_mutex_unlock(&b->large_lock);
  return sf_cache_unmap(b, gone, n);
}

/* Enters a new block, its mapping committed, in the table; false if the table has no room
   (the caller then unmaps it). */
static bool sf_large_record(sf_heap_body_t *b, const sf_large_entry_t *e) {
  pthread_mutex_lock(&b->large_lock);
  bool ok = sf_insert(b, e);
  if (ok) {
    b->large_count++;
    b->large_bytes += e->usable;
    b->large_allocs++;
  }
  pthread_mutex_unlock(&b->large_lock);
  return ok;
}

/* A block of `usable` bytes from a kept mapping, entered in the table; NULL if none holds it
   and none could grow to it. */
static void *sf_large_from_cache(sf_heap_t *heap, size_t usable) {
  sf_heap_body_t *b = heap->body;
  sf_large_cached_t whole = {NULL, 0, 0, 0};
  size_t taken = usable;
  uint64_t origin = 0;
  pthread_mutex_lock(&b->large_lock);
  uint8_t *p = sf_cache_take(b, usable, b->opt.max_bytes == 0, &taken, &origin, &whole);
  sf_assert_internal(sf_cache_is_valid(b));
  pthread_mutex_unlock(&b->large_lock);
  if (p == NULL && whole.map != NULL) {
    /* Grow the largest kept mapping: mremap keeps its faulted pages. Without the budget for
       the difference, or if the kernel refuses, the mapping goes back to the OS. */
    if (_sf_heap_commit(b, usable - whole.size)) {
      p = _sf_os_remap(whole.map, whole.size, usable);
      origin = sf_new_origin();
      if (p == NULL) _sf_heap_uncommit(b, usable - whole.size);
    }
    if (p == NULL) {
      _sf_os_unmap(whole.map, whole.size);
      _sf_heap_uncommit(b, whole.size);
      return NULL;
    }
  }
  sf_large_entry_t e = {(uintptr_t)p, usable, p, taken, origin};
  if (p != NULL && !sf_large_record(b, &e)) {
    /* No room in the table: the bytes were committed while kept. */
    _sf_os_unmap(p, taken);
    _sf_heap_uncommit(b, taken);
    p = NULL;
  }
  return p;
}

void *_sf_large_alloc(sf_theap_t *th, size_t size, size_t alignment, bool zero, int *err) {
  sf_heap_t *heap = th->heap;
  sf_heap_body_t *b = heap->body;
  size_t ps = _sf_page_size;
  size_t usable = sf_round_page(size == 0 ? 1 : size);
  size_t align = alignment > ps ? alignment : ps;
  if (!zero && align == ps && sf_cache_on(heap) && usable >= size) {
    void *p = sf_large_from_cache(heap, usable);   /* committed while kept */
    if (p != NULL) return p;
  }
  size_t front = heap->debug ? align : 0;    /* guard page just below the block */
  size_t back = heap->debug ? ps : 0;
  size_t map_size = front + usable + back;
  if (map_size < usable) {
    *err = SEGFIT_E_INVALID_SIZE;
    return NULL;
  }
  if (!_sf_heap_commit(b, usable)) {
    /* Kept mappings, empty slabs may hold the budget: reclaim them, then once more. */
    _sf_heap_reclaim_for_limit(th);
    if (!_sf_heap_commit(b, usable)) {
      atomic_fetch_add_explicit(&b->limit_hits, 1, memory_order_relaxed);
      *err = SEGFIT_E_LIMIT;
      return NULL;
    }
  }
  uint8_t *map = _sf_os_reserve(map_size, align, false, b->opt.huge_pages != 0);
  if (map == NULL) {
    _sf_heap_uncommit(b, usable);
    *err = SEGFIT_E_OUT_OF_MEMORY;
    return NULL;
  }
  uint8_t *p = map + front;
  if (heap->debug) {
    _sf_os_protect_none(p - ps, ps);
    _sf_os_protect_none(p + usable, ps);
  }
  sf_large_entry_t e = {(uintptr_t)p, usable, map, map_size, sf_new_origin()};
  if (!sf_large_record(b, &e)) {
    _sf_os_unmap(map, map_size);
    _sf_heap_uncommit(b, usable);
    *err = SEGFIT_E_OUT_OF_MEMORY;
    return NULL;
  }
  if (heap->debug) _sf_debug_guard_add(heap, p, usable);
  return p;
}

int _sf_large_take(sf_heap_t *heap, const void *p, sf_large_entry_t *out) {
  sf_heap_body_t *b = heap->body;
  pthread_mutex_lock(&b->large_lock);
  sf_large_entry_t *e = sf_find(b->large, (uintptr_t)p);
  int rc = 0;
  if (e == NULL) {
    rc = sf_missing(b, (uintptr_t)p);
  } else {
    *out = *e;
    sf_remove(b, e);
    b->large_recent[b->large_recent_next++ % 16] = (uintptr_t)p;
  }
  pthread_mutex_unlock(&b->large_lock);
  return rc;
}

void _sf_large_restore(sf_heap_t *heap, const sf_large_entry_t *e) {
  sf_heap_body_t *b = heap->body;
  pthread_mutex_lock(&b->large_lock);
  bool ok = sf_insert(b, e);
  pthread_mutex_unlock(&b->large_lock);
  sf_assert(ok);   /* the table had room for it a moment ago and only grows */
  (void)ok;
}

void _sf_large_release(sf_heap_t *heap, const sf_large_entry_t *e) {
  sf_heap_body_t *b = heap->body;
  sf_large_cached_t evicted[SF_LARGE_CACHE];
  unsigned nev = 0;
  bool kept = false;
  uint64_t now = atomic_load_explicit(&_sf_clock_ms, memory_order_relaxed);
  pthread_mutex_lock(&b->large_lock);
  sf_assert(b->large_count > 0 && b->large_bytes >= e->usable);
  b->large_count--;
  b->large_bytes -= e->usable;
  b->large_frees++;
  /* Non-debug: the mapping starts at the block and is all committed (map_size >= usable). */
  if (sf_cache_on(heap)) kept = sf_cache_put(b, e, now, evicted, &nev);
  sf_assert_internal(sf_cache_is_valid(b));
  pthread_mutex_unlock(&b->large_lock);
  if (heap->debug) _sf_debug_guard_remove((const uint8_t *)e->addr);
  if (!kept) {
    _sf_os_unmap(e->map, e->map_size);
    _sf_heap_uncommit(b, sf_committed(heap, e));
  }
  sf_cache_unmap(b, evicted, nev);
}

int _sf_large_free(sf_heap_t *heap, void *p) {
  sf_large_entry_t e;
  int rc = _sf_large_take(heap, p, &e);
  if (rc == 0) _sf_large_release(heap, &e);
  return rc;
}

int64_t _sf_large_usable(sf_heap_t *heap, const void *p) {
  sf_heap_body_t *b = heap->body;
  pthread_mutex_lock(&b->large_lock);
  sf_large_entry_t *e = sf_find(b->large, (uintptr_t)p);
  int64_t r = e != NULL ? (int64_t)e->usable : sf_missing(b, (uintptr_t)p);
  pthread_mutex_unlock(&b->large_lock);
  return r;
}

/* Grows block e (non-debug: its mapping starts at it) to usable bytes, past its mapping's end,
   without a system call: into the front of the kept range right after the mapping, if that
   range is of the same origin (then the two are one kernel mapping, and the bytes, committed
   while kept, stay committed). A block cut from the front of a kept mapping, as the copy of a
   block outgrowing the small maximum often is, so grows through the rest of that mapping with
   its pages already faulted. False if there is no such range or it is too small; a block that
   fits its mapping is not grown here either: the mremap trims the tail it does not use. pre:
   large lock. */
static bool sf_grow_in_place(sf_heap_body_t *b, sf_large_entry_t *e, size_t usable) {
  sf_assert(e->map == (uint8_t *)e->addr && usable > e->usable);
  if (usable <= e->map_size) return false;
  size_t need = usable - e->map_size;
  sf_large_cached_t *c = NULL;
  for (unsigned i = 0; i < SF_LARGE_CACHE && c == NULL; i++) {
    sf_large_cached_t *k = &b->large_cache[i];
    if (k->map == e->map + e->map_size && k->origin == e->origin && k->size >= need) c = k;
  }
  if (c == NULL) return false;
  c->map = c->size == need ? NULL : c->map + need;
  c->size -= need;
  b->large_cached_bytes -= need;
  sf_assert_internal(sf_cache_is_valid(b));
  b->large_bytes += usable - e->usable;
  e->usable = e->map_size = usable;
  return true;
}

/* may_reclaim: at the limit, reclaim what the heap holds unused and try once more. */
static void *sf_large_realloc(sf_op_t *op, void *p, size_t new_size, int *err,
                              bool may_reclaim) {
  sf_heap_t *heap = op->heap;
  sf_heap_body_t *b = heap->body;
  size_t usable = sf_round_page(new_size);
  sf_theap_t *th = _sf_theap_get(op, true);
  pthread_mutex_lock(&b->large_lock);
  sf_large_entry_t *e = sf_find(b->large, (uintptr_t)p);
  if (e == NULL) {
    *err = sf_missing(b, (uintptr_t)p);
    pthread_mutex_unlock(&b->large_lock);
    return NULL;
  }
  sf_large_entry_t old = *e;
  size_t had = sf_committed(heap, &old);
  if (usable == old.usable || (usable > old.usable && sf_grow_in_place(b, e, usable))) {
    pthread_mutex_unlock(&b->large_lock);
    if (th != NULL) _sf_count_inc(&th->reallocs_in_place);
    return p;
  }
  if (usable > had && !_sf_heap_commit(b, usable - had)) {
    pthread_mutex_unlock(&b->large_lock);
    if (may_reclaim && th != NULL) {   /* never under the large lock: the reclaim takes it */
      _sf_heap_reclaim_for_limit(th);
      return sf_large_realloc(op, p, new_size, err, false);   /* from scratch */
    }
    atomic_fetch_add_explicit(&b->limit_hits, 1, memory_order_relaxed);
    *err = SEGFIT_E_LIMIT;
    return NULL;
  }
  /* The mapping starts at the block (no guard pages outside debug heaps); it becomes exactly
     the new block. */
  uint8_t *q = _sf_os_remap(old.map, old.map_size, usable);
  if (q == NULL) {
    pthread_mutex_unlock(&b->large_lock);
    if (usable > had) _sf_heap_uncommit(b, usable - had);
    *err = SEGFIT_E_OUT_OF_MEMORY;
    return NULL;
  }
  if (usable < had) _sf_heap_uncommit(b, had - usable);
  else if (b->opt.huge_pages) _sf_os_huge(q, usable);
  sf_remove(b, e);
  sf_large_entry_t ne = {(uintptr_t)q, usable, q, usable, sf_new_origin()};
  bool ok = sf_insert(b, &ne);   /* the table just lost an entry: there is room */
  sf_assert(ok);
  (void)ok;
  b->large_bytes = b->large_bytes - old.usable + usable;
  pthread_mutex_unlock(&b->large_lock);
  if (th != NULL) _sf_count_inc(&th->reallocs_remapped);
  return q;
}

void *_sf_large_realloc(sf_op_t *op, void *p, size_t new_size, int *err) {
  return sf_large_realloc(op, p, new_size, err, true);
}

void _sf_large_destroy_all(sf_heap_t *heap) {
  sf_heap_body_t *b = heap->body;
  _sf_large_cache_purge(heap, 0, true);
  sf_large_table_t *t = b->large;
  if (t == NULL) return;
  for (size_t i = 0; i < t->cap; i++) {
    if (t->e[i].addr == 0) continue;
    if (heap->debug) _sf_debug_guard_remove((const uint8_t *)t->e[i].addr);
    _sf_os_unmap(t->e[i].map, t->e[i].map_size);
  }
  _sf_os_meta_free(t, sf_table_bytes(t->cap));
  b->large = NULL;
}
