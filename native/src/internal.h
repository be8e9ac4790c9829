/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — the C core's cross-file prototypes and globals, then its inline fast-path helpers.
 *
 * The first part lists what each file of native/src defines for the others, under the file's
 * name, bottom layer first (os.c makes the system calls, init.c starts the process, thread.c
 * is the per-thread layer; segments, slabs, heaps and purging above them; the entry points
 * last). The second part holds what the fast paths inline: the size-class arithmetic, the
 * slab and segment-map arithmetic, and the entry checks of the operation handshake, each
 * headed with the file whose data it reads. Types, constants and the debug tiers: types.h.
 */
#ifndef SF_INTERNAL_H
#define SF_INTERNAL_H

#include "types.h"

/* Everything declared below is internal to the library: hidden, so globals are reached
   PC-relative rather than through the GOT. */
#pragma GCC visibility push(hidden)

/* ------------------------------------------------------------------------------------------
   Prototypes and globals, by the file that defines them
   ------------------------------------------------------------------------------------------ */
/* os.c: the only file that makes system calls */
extern size_t _sf_page_size;
void _sf_os_init(void);
void *_sf_os_reserve(size_t size, size_t align, bool populate, bool huge);
void _sf_os_unmap(void *p, size_t size);   /* never fails: a refused range is kept, retried */
/* As _sf_os_unmap, in one munmap: for a reservation, mostly never touched and maybe terabytes,
   which pieces would cost a call per 2 MiB. */
void _sf_os_unreserve(void *p, size_t size);
void _sf_os_unmap_retry(void);             /* unmaps what the OS refused before, if it agrees */
/* Ranges refused by munmap and not yet unmapped (count, and *bytes); *lost_bytes: ranges that
   did not fit the table and stay mapped, released (0 unless something is badly wrong). */
size_t _sf_os_unmap_pending(size_t *bytes, uint64_t *lost_bytes);
void _sf_os_fork_lock(void);
void _sf_os_fork_unlock(void);
void *_sf_os_remap(void *p, size_t old_size, size_t new_size); /* MREMAP_MAYMOVE; NULL fail */
bool _sf_os_purge(void *p, size_t size);                        /* MADV_DONTNEED; false: kept */
void _sf_os_huge(void *p, size_t size);                         /* MADV_HUGEPAGE */
bool _sf_os_protect_none(void *p, size_t size);
void *_sf_os_meta_alloc(size_t size);                           /* zeroed, page-rounded */
void _sf_os_meta_free(void *p, size_t size);
uint64_t _sf_os_now_ms(void);
/* Calls fn(fault address, is_write) on every SIGSEGV before the handler that was installed
   before it (or the default action). Once per process; false if sigaction failed. */
bool _sf_os_on_segv(void (*fn)(uintptr_t addr, int is_write));
void _sf_os_write_err(const char *s, size_t n);      /* async-signal-safe */
bool _sf_os_membarrier_register(void);
bool _sf_os_membarrier(void);   /* false: the OS refused; the owners may not be fenced */
void _sf_os_yield(void);
void _sf_os_sleep_ms(uint64_t ms);

/* options.c: options, error messages and codes, the per-thread last error */
int _sf_options_check(const segfit_options_t *o);
void _sf_set_error(int code);                        /* sets last error (and nothing else) */
int _sf_errno_of(int code);
void *_sf_fail_ptr(int code);                        /* sets error + errno, returns NULL */

/* init.c: process start-up, thread tear-down, fork */
extern pthread_mutex_t _sf_global_lock;   /* heaps list, thread registry */
extern _Atomic(uint64_t) _sf_clock_ms;    /* coarse clock, advanced by slow paths and the purger */
void _sf_init(void);                                 /* process init, idempotent */
void _sf_init_thread(sf_tld_t *tld);                 /* tld's thread will tear it down at exit */

/* thread.c: thread records, the TLS word, the operation handshake */
extern _Thread_local sf_tld_t *_sf_tls;   /* the one TLS word */
/* x86-64 and aarch64: the TLS word's offset from the thread pointer when it is in static TLS
   (then the same in every thread), found at init (thread.c); 0: unknown, the fast paths use
   the TLS descriptor's call. Elsewhere always 0. */
extern _Atomic(intptr_t) _sf_tls_off;
/* The verdict of thread.c's probe from what the descriptor's call showed: the offset, or 0. */
intptr_t _sf_tls_static_offset(uintptr_t desc, uintptr_t off, uintptr_t desc_arg);
extern int _sf_use_fence;                 /* membarrier unavailable: owner fences */
extern sf_tld_t *_sf_tlds;                /* live thread records (global lock) */
void _sf_thread_process_init(void);                  /* pre: os.c ready; once, from _sf_init */
sf_tld_t *_sf_thread_tld(void);                     /* NULL after teardown or on OOM */
int _sf_thread_begin(sf_op_t *op, sf_heap_t *heap);  /* 0 or CLOSED/OUT_OF_MEMORY */
void _sf_thread_end(sf_op_t *op);
/* Enters a call on heap with the record tld: 0, or CLOSED (then not entered). Waits while the
   purger holds the record. Leave with _sf_leave. */
int _sf_thread_enter(sf_tld_t *tld, sf_heap_t *heap);
bool _sf_thread_asym_barrier(void);                  /* the rare side's full barrier; false:
                                                       refused, the handshake must not go on */
void _sf_thread_release(sf_tld_t *tld);             /* the purger is done with a record */
void _sf_thread_wait_heap_idle(sf_heap_t *heap);     /* waits until no call is inside heap */
/* The calling thread's record, its thread heaps gone, back to the pool; the thread's later
   calls use the fallback record. pre: global lock. */
void _sf_thread_exit_locked(sf_tld_t *tld);
void _sf_thread_fork_lock(void);                     /* the first lock fork() takes */
void _sf_thread_fork_unlock(void);
void _sf_thread_fork_child(void);                    /* after the unlocks, in the child */
/* After non-zero flags (thread.c): the fence if the record needs it, then the purger's
   request and the heap's closed flag again. Non-zero: take the slow entry. */
int _sf_enter_recheck(sf_tld_t *tld, sf_heap_t *heap);

/* segment.c: segments, their slab pools, the segment map */
extern _Atomic(uintptr_t) *_sf_segment_map;   /* see _sf_segment_entry */
void _sf_segment_map_init(void);
/* A slab of `cls` for `th`: a dirty one of that class as it was left (its free lists intact),
   a dirty one of another class of the kind, a clean one, or from a new segment (these three
   re-initialised for cls). pre: heap lock NOT held. Returns NULL and sets *err (LIMIT or
   OUT_OF_MEMORY). */
sf_slab_t *_sf_segment_acquire_slab(sf_heap_t *heap, unsigned cls, int *err);
/* Gives an empty slab back to its segment (dirty pool). pre: heap lock held. */
void _sf_segment_release_slab_locked(sf_heap_body_t *b, sf_slab_t *slab, uint64_t now);
/* Purges dirty slabs due (_sf_purge_due) and unmaps segments left empty. Returns the bytes
   uncommitted. Called by purge.c, which decides when. */
uint64_t _sf_segment_purge(sf_heap_t *heap, uint64_t now, bool force);
int _sf_segment_reserve(sf_heap_t *heap);   /* at heap creation: no map, or the reservation */
void _sf_segment_destroy_all(sf_heap_t *heap);       /* unmaps everything of the heap */
bool _sf_segment_is_valid(const sf_segment_t *seg);
void _sf_segment_fork_lock(void);
void _sf_segment_fork_unlock(void);

/* slab.c: slabs, their free lists, slab lists */
extern sf_slab_t _sf_slab_empty;          /* a slab with no free block: fast paths miss */
void _sf_slab_init(sf_slab_t *slab, unsigned cls);
void _sf_slab_reset_states(sf_slab_t *slab);
/* Puts up to one OS page of never-used blocks on the free list. False (err = LIMIT) when
   committing the pages would pass the heap's max_bytes. */
bool _sf_slab_extend(sf_slab_t *slab, sf_heap_body_t *b, int *err);
uint32_t _sf_slab_collect(sf_slab_t *slab);          /* returns remote blocks collected */
bool _sf_slab_is_valid(const sf_slab_t *slab);
void _sf_list_push(sf_slab_list_t *l, sf_slab_t *s);        /* at head */
void _sf_list_append(sf_slab_list_t *l, sf_slab_t *s);      /* at tail */
void _sf_list_remove(sf_slab_list_t *l, sf_slab_t *s);

/* heap.c: heaps, thread heaps, the size-class tables, the byte limit */
extern const uint8_t _sf_class_small[SF_SMALL_TABLE_MAX / 16 + 1];   /* by (size + 15) / 16 */
extern const uint32_t _sf_class_size[SF_CLASSES];
extern const uint64_t _sf_class_recip[SF_CLASSES];     /* ceil(2^SF_RECIP_SHIFT / size) */
extern const uint32_t _sf_class_capacity[SF_CLASSES];  /* blocks per slab */
extern const uint32_t _sf_class_slab_mask[SF_CLASSES]; /* slab size - 1 */
/* Smallest class whose blocks are all aligned to `alignment` (a power of two) and hold `size`;
   SF_CLASSES if none. */
unsigned _sf_class_for_aligned(size_t size, size_t alignment);

extern sf_heap_t *_sf_heaps;              /* live heaps (global lock) */
extern sf_theap_t _sf_theap_none;         /* a theap no heap matches */
sf_theap_t *_sf_theap_get(sf_op_t *op, bool create);   /* the caller's thread heap for op's
                                       heap; pre: begun; none made for a closed heap */
int _sf_theap_missing(sf_heap_t *heap);   /* the error when _sf_theap_get made none */
void _sf_theap_abandon_all(sf_tld_t *tld);           /* thread exit: slabs to the heaps */
void _sf_theap_free_all(sf_tld_t *tld);              /* then the records; pre: global lock */
sf_theap_t *_sf_theap_new(sf_heap_t *heap, sf_tld_t *tld);
void _sf_theap_abandon(sf_theap_t *th);              /* pre: op begun on th->heap */
void _sf_theap_free_record(sf_theap_t *th);
uint64_t _sf_theap_collect(sf_theap_t *th, uint64_t now, uint64_t stamp, bool force,
                           bool all_full);   /* returns the bytes uncommitted */
void _sf_theap_slab_emptied(sf_theap_t *th, sf_slab_t *slab);
void _sf_theap_unfull(sf_theap_t *th, sf_slab_t *slab);
/* A slab of cls with a free block, made current; at the limit after one reclaim, NULL and
   *err (LIMIT, counted as a limit hit, or OUT_OF_MEMORY). */
sf_slab_t *_sf_theap_refill(sf_theap_t *th, unsigned cls, int *err);
/* The byte limit: adds `add` bytes to the heap's committed bytes unless that passes
   max_bytes; subtracts bytes that went back to the OS. */
bool _sf_heap_commit(sf_heap_body_t *b, uint64_t add);
void _sf_heap_uncommit(sf_heap_body_t *b, uint64_t sub);
/* At the heap's limit, inside a call: gives back every unused committed byte the heap holds
   (see heap.c). Returns the bytes uncommitted. pre: inside a call on th->heap, no lock held. */
uint64_t _sf_heap_reclaim_for_limit(sf_theap_t *th);
void _sf_heap_collect_abandoned(sf_heap_t *heap, uint64_t now);
int _sf_heap_trim(sf_heap_t *heap);               /* 0, CLOSED or CORRUPTED */
sf_heap_t *_sf_heap_default(void);
void _sf_heap_fork_lock_all(void);                   /* pre: global lock */
void _sf_heap_fork_unlock_all(void);

/* purge.c: when memory goes back */
void _sf_purge_start(void);                          /* starts the background purger once */
void _sf_purge_tick(uint64_t now, bool force, sf_heap_t *only);
/* The pass of a trim of heap, run from inside a call of `self` (which it skips): for the
   limit's reclaim. Returns the bytes uncommitted. pre: no lock held. */
uint64_t _sf_purge_reclaim(sf_heap_t *heap, sf_tld_t *self, uint64_t now);
/* Purges what of heap is due (force: everything free), slabs and kept large mappings; returns
   the bytes uncommitted. pre: no heap lock. */
uint64_t _sf_purge_heap(sf_heap_t *heap, uint64_t now, bool force);
/* After a slab went back to the heap's pool: a heap with purge delay 0 purges at once. Returns
   the bytes uncommitted. pre: no heap lock. */
uint64_t _sf_purge_released(sf_heap_t *heap, uint64_t now);

/* alloc.c */
size_t _sf_block_usable(const sf_heap_t *heap, const sf_slab_t *slab);
void *_sf_alloc_slow(sf_heap_t *heap, size_t size, size_t alignment, bool zero);
void *_sf_alloc_in(sf_theap_t *th, size_t size, size_t alignment, bool zero, int *err);
/* segfit_alloc's (segfit_alloc_zeroed's) fast path, and els(size) wherever that would take the
   slow path (a thread without a record or a known TLS offset, a purger request it cannot
   pass, a large size, another heap in the record's cache slot, a debug heap): for the malloc
   shim, which calls it without its re-entry guard, since the fast path calls nothing in libc
   but locks and memory-mapping calls. A failed refill returns NULL, its error set, without
   calling els. */
typedef void *(*sf_alloc_else_fn)(size_t size);
void *_sf_alloc_else(sf_heap_t *heap, size_t size, sf_alloc_else_fn els);
void *_sf_alloc_zeroed_else(sf_heap_t *heap, size_t size, sf_alloc_else_fn els);

/* free.c */
int _sf_free_slow(sf_heap_t *heap, void *p, size_t size, bool sized);
/* segfit_free's fast path, and els(p) wherever that would take the slow path (any error, a
   pointer in no segment, a block it cannot free by itself), having changed nothing: as
   _sf_alloc_else, for the malloc shim. Returns 0 or what els returns. */
typedef int (*sf_free_else_fn)(void *p);
int _sf_free_else(sf_heap_t *heap, void *p, sf_free_else_fn els);
/* Checks p is a live block of heap and returns its slab (NULL: large or error *err). */
int _sf_block_check(sf_heap_t *heap, const void *p, sf_slab_t **slab, uint32_t *idx);
int _sf_free_block(sf_op_t *op, sf_slab_t *slab, void *p, uint32_t idx);
/* The two halves of _sf_free_block: claim flips the state byte (0 or ALREADY_FREE); after it
   the block belongs to the caller until finish puts it on a free list (or, in a debug heap,
   in the quarantine: then finish may return CORRUPTED for a block pushed out of it). */
int _sf_free_claim(sf_op_t *op, sf_slab_t *slab, uint32_t idx);
int _sf_free_finish(sf_op_t *op, sf_slab_t *slab, void *p);
/* What _sf_free_finish does for blocks of a non-debug heap (and for blocks leaving a debug
   heap's quarantine): count the free and put the block on a free list. */
void _sf_free_release(sf_op_t *op, sf_slab_t *slab, void *p);
/* The record's outbox of remote frees goes onto its slab's stack. pre: inside a call of the
   record on out_heap, or the record taken over by the purger with out_heap open. */
void _sf_outbox_flush(sf_tld_t *tld);
/* Empties the outbox without touching its blocks: out_heap is closed and no call is in it.
   pre: global lock. */
void _sf_outbox_drop(sf_tld_t *tld);
/* Thread exit: flushes the outbox inside a call on its heap, or drops it if that is closed. */
void _sf_outbox_exit(sf_tld_t *tld);

/* large.c */
/* zero: the caller needs zeroed memory (then no cached mapping is reused). th: the caller's
   thread heap (the limit's reclaim starts from it). pre: inside a call on th->heap. */
void *_sf_large_alloc(sf_theap_t *th, size_t size, size_t alignment, bool zero, int *err);
int _sf_large_free(sf_heap_t *heap, void *p);
/* Removes a live large block from the table (so no other call can see it) and returns it. */
int _sf_large_take(sf_heap_t *heap, const void *p, sf_large_entry_t *out);
void _sf_large_restore(sf_heap_t *heap, const sf_large_entry_t *e);
void _sf_large_release(sf_heap_t *heap, const sf_large_entry_t *e);
int64_t _sf_large_usable(sf_heap_t *heap, const void *p);
void *_sf_large_realloc(sf_op_t *op, void *p, size_t new_size, int *err);
void _sf_large_destroy_all(sf_heap_t *heap);
/* Unmaps kept freed mappings due (_sf_purge_due); returns the bytes. Called by purge.c.
   pre: no heap lock. */
uint64_t _sf_large_cache_purge(sf_heap_t *heap, uint64_t now, bool force);

/* debug.c: debug heaps (heap->debug) */
void _sf_debug_init(sf_heap_body_t *b);
void _sf_debug_fini(sf_heap_body_t *b);
/* State of the block slab->free would hand out next (before the pop). */
uint8_t _sf_debug_next_state(const sf_slab_t *slab, unsigned cls);
/* A block about to be handed out: checks the fill of a block freed before (prior state FREE),
   then writes the canary and the allocation fill (unless zero). */
void _sf_debug_on_alloc(sf_heap_t *heap, sf_slab_t *slab, uint8_t *p, uint8_t prior, bool zero);
/* 0, or CORRUPTED (logged) when the canary after p is damaged. deferred: the caller cannot
   return CORRUPTED, so the next free or trim of the heap will. */
int _sf_debug_check_canary(sf_heap_t *heap, const sf_slab_t *slab, const uint8_t *p,
                           bool deferred);
/* A claimed block: fills it and quarantines it; blocks pushed out are checked and released.
   Returns 0, or CORRUPTED (logged) when a block leaving the quarantine was damaged. */
int _sf_debug_quarantine(sf_op_t *op, sf_slab_t *slab, uint8_t *p);
int _sf_debug_flush(sf_op_t *op);                    /* trim: checks and releases everything */
/* CORRUPTED if records were logged by calls that could not say so (then cleared), else rc. */
int _sf_debug_result(sf_heap_t *heap, int rc);
void _sf_debug_defer(sf_heap_t *heap);               /* a record the caller cannot report */
void _sf_debug_stats(sf_heap_body_t *b, segfit_stats_t *st);
/* Guard pages of large blocks, for the SIGSEGV report. */
void _sf_debug_guard_add(const sf_heap_t *heap, const uint8_t *block, size_t usable);
void _sf_debug_guard_remove(const uint8_t *block);

/* stats.c */
void _sf_stats_fold(sf_theap_t *th);                 /* pre: global lock */
void _sf_stats_fold_freeing(sf_tld_t *tld);          /* pre: global lock */

/* ------------------------------------------------------------------------------------------
   Inline helpers of the fast paths: size-class arithmetic, slab and segment-map lookups, and
   the entry checks of the operation handshake. Each is headed with the file that owns its
   data.
   ------------------------------------------------------------------------------------------ */

/* --- size classes (the arithmetic on heap.c's tables) -------------------------------------- */
/* Class of a size in 1 .. SF_SMALL_MAX (0 maps to class 0): 16-byte steps up to 128 B, then
   four classes per power of two. Up to 1 KiB one byte of a table (the fast paths' sizes),
   beyond it bit arithmetic; no loop. */
SF_INLINE unsigned _sf_size_class(size_t size) {
  if (size <= SF_SMALL_TABLE_MAX) return _sf_class_small[(size + 15) >> 4];
  size_t s = size - 1;
  unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)s);  /* >= 10 */
  return 8u + ((b - 7u) << 2) + (unsigned)((s >> (b - 2u)) & 3u);
}
SF_INLINE unsigned _sf_class_kind(unsigned cls) {
  size_t bs = _sf_class_size[cls];
  return bs <= SF_KIND0_MAX ? 0u : bs <= SF_KIND1_MAX ? 1u : 2u;
}
SF_INLINE size_t _sf_kind_slab_size(unsigned kind) { return (size_t)64 << (10 + 3 * kind); }
SF_INLINE unsigned _sf_kind_slab_shift(unsigned kind) { return 16 + 3 * kind; }
/* Block index of p in its slab of class cls; *exact when p is the start of a block. No
   division. */
SF_INLINE uint32_t _sf_class_index(unsigned cls, const void *p, bool *exact) {
  /* Slabs are aligned to their size: the offset needs no load of the slab's address. */
  uint64_t off = (uint64_t)((uintptr_t)p & _sf_class_slab_mask[cls]);
  uint64_t idx = (off * _sf_class_recip[cls]) >> SF_RECIP_SHIFT;
  *exact = idx * _sf_class_size[cls] == off && idx < _sf_class_capacity[cls];
  return (uint32_t)idx;
}

/* --- slab geometry (slab.c's records) ------------------------------------------------------ */
SF_INLINE unsigned _sf_slab_class(const sf_slab_t *slab) {
  return atomic_load_explicit(&((sf_slab_t *)slab)->cls, memory_order_relaxed);
}
SF_INLINE size_t _sf_slab_bsize(const sf_slab_t *slab) { return _sf_class_size[_sf_slab_class(slab)]; }
SF_INLINE uint32_t _sf_slab_capacity(const sf_slab_t *slab) {
  return _sf_class_capacity[_sf_slab_class(slab)];
}
SF_INLINE uint32_t _sf_slab_index(const sf_slab_t *slab, const void *p, bool *exact) {
  return _sf_class_index(_sf_slab_class(slab), p, exact);
}
/* The owner's variant (its slab keeps its class while it owns it): the reciprocal cached in
   the record, no block size and no capacity check. With recip = ceil(2^42 / size) and
   off = q size + r, off * recip = q 2^42 + q e + r recip where e = recip size - 2^42 < size;
   q e < slab size <= 2^22 <= recip, so the low 42 bits are below recip exactly when r == 0
   (test owner_index_is_exact_division). Those low 42 bits shifted to the top are off times
   recip64 (recip << 22) modulo 2^64: a second multiplication, independent of the first,
   replaces the mask (a 64-bit constant in a register) and its AND. An exact offset past the
   last whole block indexes the spare state byte each slab has after its largest capacity
   (segment.c), never LIVE. */
SF_INLINE uint32_t _sf_owner_index(const sf_slab_t *slab, const void *p, bool *exact) {
  uint64_t off = (uint64_t)((const uint8_t *)p - slab->start);
  *exact = off * slab->recip64 < slab->recip64;
  return (uint32_t)((off * slab->recip) >> SF_RECIP_SHIFT);
}

/* --- the owner's free and its slab (heap.c keeps slab->floor) ------------------------------ */
/* The owner's free goes out of line when the slab needs looking at: at once when the slab is
   parked full (it goes back to the available list), when it empties unless it is its class's
   current slab in a thread heap that keeps that one when empty (an allocation and a free of
   one block in a loop then never leave the fast path), never otherwise. One signed compare of
   `used` against this floor, which the owner sets again wherever in_full or the current slab
   changes (heap.c). */
SF_INLINE int32_t _sf_slab_floor(const sf_theap_t *th, const sf_slab_t *slab) {
  if (slab->in_full) return INT32_MAX;
  return th->retain_empty && th->cur[_sf_slab_class(slab)] == slab ? -1 : 0;
}

/* --- segment map lookups (segment.c's map) ------------------------------------------------- */
SF_INLINE uintptr_t _sf_segment_entry(const void *p) {
  uintptr_t i = (uintptr_t)p >> SF_SEGMENT_SHIFT;   /* one shift for the bound and the index */
  if (sf_unlikely(i >= SF_MAP_ENTRIES)) return 0;
  return atomic_load_explicit(&_sf_segment_map[i], memory_order_relaxed);
}
SF_INLINE uintptr_t _sf_segment_make_entry(const sf_segment_t *seg) {
  sf_assert(((uintptr_t)seg & SF_MAP_SHIFT_BITS) == 0 && seg->slab_shift <= SF_MAP_SHIFT_BITS);
  return (uintptr_t)seg | seg->slab_shift;
}
SF_INLINE sf_segment_t *_sf_segment_of(const void *p) {
  return (sf_segment_t *)(_sf_segment_entry(p) & ~SF_MAP_SHIFT_BITS);
}
/* The slab record of p, from p's non-zero map entry. */
SF_INLINE sf_slab_t *_sf_entry_slab(uintptr_t e, const void *p) {
  sf_segment_t *seg = (sf_segment_t *)(e & ~SF_MAP_SHIFT_BITS);
  return &seg->slabs[((uintptr_t)p & (SF_SEGMENT_SIZE - 1)) >> (e & SF_MAP_SHIFT_BITS)];
}
SF_INLINE sf_slab_t *_sf_segment_slab(sf_segment_t *seg, const void *p) {
  return &seg->slabs[((uintptr_t)p & (SF_SEGMENT_SIZE - 1)) >> seg->slab_shift];
}

/* --- the TLS word and the entry checks (thread.c) ------------------------------------------- */
#if (defined(__x86_64__) || defined(__aarch64__)) && defined(__GNUC__)
#define SF_TLS_OFF 1
#else
#define SF_TLS_OFF 0
#endif
/* Where static TLS lies from the thread pointer: after the thread control block on aarch64
   (TLS variant I), below the thread pointer on x86-64 (variant II). */
#if defined(__aarch64__)
#define SF_TLS_STATIC_ABOVE 1
#else
#define SF_TLS_STATIC_ABOVE 0
#endif
/* The fast paths' read of the TLS word: one load from the thread pointer when the offset is
   known, no call. False: unknown, the caller takes a variant of itself that reads _sf_tls (a
   tail call, so that the descriptor's call, which needs a frame, is not in the fast path's
   function). */
SF_INLINE bool _sf_tls_fast(sf_tld_t **t) {
#if SF_TLS_OFF
  intptr_t off = atomic_load_explicit(&_sf_tls_off, memory_order_relaxed);
  if (sf_unlikely(off == 0)) return false;
#if defined(__x86_64__)
  __asm__("mov %%fs:(%1), %0" : "=r"(*t) : "r"(off));
#else
  *t = *(sf_tld_t *const *)((uintptr_t)__builtin_thread_pointer() + (uintptr_t)off);
#endif
#else
  *t = _sf_tls;
#endif
  return true;
}

/* The operation handshake (thread.c). Owner side: plain stores and loads, compiler barrier
   only; the rare side issues membarrier(). See thread.c for the protocol. Every caller follows
   _sf_enter with _sf_enter_blocked (or _sf_enter_flags, then _sf_enter_recheck when non-zero),
   which holds the owner's fence when there is one. */
SF_INLINE void _sf_enter(sf_tld_t *tld, sf_heap_t *heap) {
#if SF_TSAN
  atomic_store_explicit(&tld->in_op, heap, memory_order_seq_cst);
#else
  atomic_store_explicit(&tld->in_op, heap, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);   /* fence mode: see _sf_enter_blocked */
#endif
}
#if SF_TSAN
#define SF_ENTER_ORDER memory_order_seq_cst
#else
#define SF_ENTER_ORDER memory_order_relaxed
#endif
/* The flags a fast path tests once entered: zero means go on. The record's word carries the
   purger's request, its idle mark (the first call after a purger tick clears it, out of line:
   the busy record's bookkeeping costs the fast paths nothing) and fence mode (membarrier
   unavailable), so the fast paths pay one load and one branch for all of them;
   _sf_enter_recheck then does what the bits ask and loads the flags again. The heap's closed
   flag is not among them: a fast path goes on only with a thread heap whose key
   (_sf_theap_key) names the heap, and heap destroy clears the keys before its barrier. */
SF_INLINE int _sf_enter_flags(sf_tld_t *tld) {
  return atomic_load_explicit(&tld->req, SF_ENTER_ORDER);
}
/* A thread heap's key as a fast path reads it once entered (the handshake's second load). */
SF_INLINE sf_heap_t *_sf_theap_key(sf_theap_t *th) {
  return atomic_load_explicit(&th->key, SF_ENTER_ORDER);
}
/* Non-zero when the call must take the slow entry (purger request or heap closed): the slow
   entries, which have no thread heap in hand, test the heap's closed flag itself. */
SF_INLINE int _sf_enter_blocked(sf_tld_t *tld, sf_heap_t *heap) {
  int flags = _sf_enter_flags(tld) | atomic_load_explicit(&heap->closed, SF_ENTER_ORDER);
  return sf_likely(flags == 0) ? 0 : _sf_enter_recheck(tld, heap);
}
SF_INLINE void _sf_leave(sf_tld_t *tld) {
  atomic_store_explicit(&tld->in_op, NULL, memory_order_release);
}

SF_INLINE void _sf_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield" ::: "memory");
#else
  atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* --- statistics counters (stats.c) ---------------------------------------------------------- */
/* A counter with one writer (its owner) and readers anywhere. On x86-64 one non-locked add to
   memory: its store is a single aligned 8-byte write, so a reader sees the old or the new
   value, and with one writer no increment is lost (the compiler may not fuse an atomic load
   and store into it). Elsewhere, and under TSan (which must see atomics), a relaxed load and
   store. Never a locked read-modify-write. */
SF_INLINE void _sf_count_inc(_Atomic(uint64_t) *c) {
#if defined(__x86_64__) && !SF_TSAN
  __asm__("addq $1, %0" : "+m"(*(uint64_t *)c));
#else
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                        memory_order_relaxed);
#endif
}

/* --- the purge delay's rule (purge.c) ------------------------------------------------------- */
/* The purge delay's rule: memory free since `stamp` (ms) goes back at `now` once the delay has
   passed, or at once when forced (trim, the limit's reclaim). Empty slabs leave their thread
   heap by the same rule (heap.c). */
SF_INLINE bool _sf_purge_due(const sf_heap_t *heap, uint64_t stamp, uint64_t now, bool force) {
  return force || stamp + heap->purge_delay_ms <= now;
}

#pragma GCC visibility pop

#endif /* SF_INTERNAL_H */
