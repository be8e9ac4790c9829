/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — internal types, constants and cross-file prototypes of the C core.
 *
 * Glossary. A *segment* is a 32 MiB mapping aligned to 32 MiB, owned by one heap and cut into
 * equal *slabs* of one kind (64 KiB, 512 KiB or 4 MiB); a slab holds blocks of one size class.
 * Segment and slab metadata (sf_segment_t, sf_slab_t, one state byte per block) live in a
 * separate metadata mapping, never in user memory. A global *segment map* (one pointer per
 * 32 MiB of address space, reserved with MAP_NORESERVE) finds a block's segment in one load.
 * A *thread record* (sf_tld_t) is the only TLS word; it owns one *thread heap* (sf_theap_t) per
 * heap it allocated from. *Large* blocks (> 1 MiB) have mappings of their own, found through a
 * per-heap table. "OS page" always means the run-time page size (segfit_page_size()).
 *
 * Debug tiers (mimalloc style): SF_DEBUG 0 none, 1 cheap assertions, 2 internal invariants,
 * 3 expensive walks. Default: 1 without NDEBUG, else 0.
 */
#ifndef SF_INTERNAL_H
#define SF_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segfit.h"

/* Everything declared below is internal to the library: hidden, so globals are reached
   PC-relative rather than through the GOT. */
#pragma GCC visibility push(hidden)

#ifndef SF_DEBUG
#ifdef NDEBUG
#define SF_DEBUG 0
#else
#define SF_DEBUG 1
#endif
#endif

#define sf_likely(x) __builtin_expect(!!(x), 1)
#define sf_unlikely(x) __builtin_expect(!!(x), 0)
#define SF_NOINLINE __attribute__((noinline))
#define SF_INLINE static inline __attribute__((always_inline))

void _sf_assert_fail(const char *expr, const char *file, int line);
#define SF_ASSERT_(c) ((c) ? (void)0 : _sf_assert_fail(#c, __FILE__, __LINE__))
#if SF_DEBUG >= 1
#define sf_assert(c) SF_ASSERT_(c)
#else
#define sf_assert(c) ((void)0)
#endif
#if SF_DEBUG >= 2
#define sf_assert_internal(c) SF_ASSERT_(c)
#else
#define sf_assert_internal(c) ((void)0)
#endif
#if SF_DEBUG >= 3
#define sf_assert_expensive(c) SF_ASSERT_(c)
#else
#define sf_assert_expensive(c) ((void)0)
#endif

/* ThreadSanitizer does not understand membarrier(): under it the owner side of the handshake
 * uses sequentially consistent atomics, which TSan models. */
#if defined(__SANITIZE_THREAD__)
#define SF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SF_TSAN 1
#endif
#endif
#ifndef SF_TSAN
#define SF_TSAN 0
#endif

/* ------------------------------------------------------------------------------------------
   Constants
   ------------------------------------------------------------------------------------------ */
#define SF_SEGMENT_SHIFT 25                       /* 32 MiB segments */
#define SF_SEGMENT_SIZE ((size_t)1 << SF_SEGMENT_SHIFT)
#define SF_VA_BITS 48                             /* the segment map covers this much */
#define SF_MAP_ENTRIES ((size_t)1 << (SF_VA_BITS - SF_SEGMENT_SHIFT))

#define SF_KINDS 3                                /* slab kinds: 64 KiB, 512 KiB, 4 MiB */
#define SF_KIND0_MAX ((size_t)8 << 10)            /* blocks <= 8 KiB in 64 KiB slabs */
#define SF_KIND1_MAX ((size_t)64 << 10)           /* blocks <= 64 KiB in 512 KiB slabs */
#define SF_MAX_OS_PAGE ((size_t)64 << 10)         /* the smallest slab; larger OS pages fail init */

#define SF_SMALL_MAX ((size_t)1 << 20)            /* largest slab block */
#define SF_CLASSES 60                             /* 8 x 16 B steps + 4 per doubling to 1 MiB */
#define SF_MIN_BLOCK 16
#define SF_RECIP_SHIFT 42                         /* exact division: offset * d < 2^42 */
#define SF_CANARY_SIZE 16                         /* debug heaps: canary after each block */

#define SF_THEAP_CACHE 32                         /* direct-mapped heap->theap cache per thread */
#define SF_THEAP_KEEP_BYTES ((size_t)8 << 20)      /* emptied slabs a thread heap may keep */

/* Per-block state bytes. NEVER: not handed out since the slab got its class. */
enum { SF_BLOCK_NEVER = 0, SF_BLOCK_LIVE = 1, SF_BLOCK_FREE = 2 };

/* Where a slab is. */
enum {
  SF_SLAB_CLEAN = 0, SF_SLAB_DIRTY, SF_SLAB_PURGING, SF_SLAB_OWNED, SF_SLAB_ABANDONED,
  SF_SLAB_LENT   /* managed by a borrower (lend.c): in no list, its state bytes all NEVER */
};

typedef struct sf_block_s { struct sf_block_s *next; } sf_block_t;
typedef struct sf_slab_s sf_slab_t;
typedef struct sf_segment_s sf_segment_t;
typedef struct sf_theap_s sf_theap_t;
typedef struct sf_tld_s sf_tld_t;
typedef struct sf_large_table_s sf_large_table_t;
typedef struct segfit_heap_s sf_heap_t;

/* A doubly linked list of slabs. */
typedef struct sf_slab_list_s { sf_slab_t *head, *tail; } sf_slab_list_t;

/* ------------------------------------------------------------------------------------------
   Slabs (slab.c). Fields marked "owner" are touched only by the owning thread (or by whoever
   took the owner's thread record over, see thread.c); "lock" fields under the heap's lock.
   ------------------------------------------------------------------------------------------ */
struct sf_slab_s {
  /* Line 0: what the owner writes on its fast paths (and the lock's bookkeeping). No other
     thread reads it on a fast path, so the owner's stores never wait for another core. */
  sf_block_t *free;                 /* owner: allocation list */
  uint32_t used;                    /* owner: blocks handed out and not yet collected back */
  uint8_t in_full;                  /* owner: in the theap's full list */
  uint8_t free_fresh;               /* owner: every block on `free` is untouched (zero) memory */
  uint8_t kept;                     /* owner: empty, kept by its thread heap (keep_budget) */
  uint8_t where;                    /* SF_SLAB_* (lock or owner) */
  sf_block_t *local_free;           /* owner: frees by the owner, not yet allocatable */
  uint32_t reserved;                /* owner: blocks put on a free list so far (lazy init) */
  uint32_t touched;                 /* bytes from start counted as committed (page multiple) */
  uint64_t stamp_ms;                /* owned: empty since (0: not seen empty by a collection
                                       since it was last seen in use); dirty: freed at (0:
                                       purge at the next pass) */
  sf_slab_t *next, *prev;           /* list links: theap lists, segment pools, abandoned */
  uint8_t mem_fresh;                /* blocks beyond `reserved` are zero (fresh or purged) */
  /* Line 1: read by every free, the owner's and other threads'; written only when the slab
     changes class or owner. */
  _Atomic(uint8_t) cls __attribute__((aligned(64)));   /* size class; always one of the
                                       slab's kind. Checked frees from any thread derive the
                                       geometry from it alone */
  uint8_t kind;                     /* 0, 1, 2 */
  uint32_t bsize;                   /* owner/lock: _sf_class_size[cls], set with the class */
  uint8_t *start;                   /* first block (== slab address); owner/lock only */
  _Atomic(uint8_t) *state;          /* one state byte per block; fixed for the metadata's life */
  sf_segment_t *segment;            /* offset 88, which no fast path loads (SF_TLD_IN_OP_OFFSET) */
  uint64_t recip;                   /* owner/lock: _sf_class_recip[cls], set with the class */
  _Atomic(sf_tld_t *) owner_tld;    /* thread record owning the slab, NULL if none */
  _Atomic(sf_theap_t *) owner;      /* its thread heap (remote frees read it for hints) */
  uint64_t recip64;                 /* owner/lock: recip << (64 - SF_RECIP_SHIFT), set with it
                                       (_sf_owner_index) */
  /* Line 2: what other threads write (remote frees). */
  _Atomic(uintptr_t) thread_free __attribute__((aligned(64)));   /* frees by other threads
                                       (lock-free stack) */
  _Atomic(uint8_t) full;            /* owner sets when it parks the slab in its full list */
  /* Line 3: unused, so that records are a power of two apart (shift-indexed). */
  uint8_t unused_[64] __attribute__((aligned(64)));
} __attribute__((aligned(64)));
_Static_assert(sizeof(sf_slab_t) == 256, "slab records are indexed by shift");
_Static_assert(__builtin_offsetof(sf_slab_t, recip64) < 128, "read by every owner's free");
_Static_assert(__builtin_offsetof(sf_slab_t, cls) == 64 &&
                   __builtin_offsetof(sf_slab_t, segment) == 88 &&
                   __builtin_offsetof(sf_slab_t, thread_free) == 128,
               "the owner's line, the readers' line, the remote writers' line");

/* ------------------------------------------------------------------------------------------
   Segments (segment.c)
   ------------------------------------------------------------------------------------------ */
/* Lookups from any thread (checked free, usable_size) read only the atomic fields, the layout
   that follows from the kind, and the block address itself: a lookup racing with the segment
   being unmapped and its metadata reused (same kind, same layout) reads consistent values. */
struct sf_segment_s {
  _Atomic(sf_heap_t *) heap_key;    /* the heap's handle, | 1 for debug heaps (fast-path check) */
  _Atomic(sf_heap_t *) heap;
  uint8_t *base;                    /* SF_SEGMENT_SIZE aligned */
  uint32_t slab_shift;              /* log2 of the slab size; fixed for the metadata's life */
  uint32_t nslabs;
  uint8_t kind;                     /* fixed for the metadata's life (pools are per kind) */
  uint8_t in_reservation;           /* carved from the heap's reservation: never unmapped alone */
  uint8_t precommitted;             /* pre-touched reservation: never purged */
  uint32_t free_slabs, clean_slabs; /* lock */
  sf_segment_t *next, *prev;        /* lock: the heap's segments */
  size_t meta_size;                 /* bytes of this metadata mapping */
  sf_slab_t slabs[];                /* then the state bytes */
};
_Static_assert(__builtin_offsetof(sf_segment_t, slabs) == 128, "see SF_TLD_IN_OP_OFFSET");

/* ------------------------------------------------------------------------------------------
   Thread heaps and thread records (heap.c, thread.c)
   ------------------------------------------------------------------------------------------ */
struct sf_theap_s {
  _Atomic(sf_heap_t *) key;         /* heap handle; | 1 for debug heaps so the fast path misses;
                                       NULL once the heap is closed (see thread.c) */
  sf_heap_t *heap;
  sf_tld_t *tld;
  sf_theap_t *next;                 /* in the thread record's list */
  uint8_t retain_empty;             /* purge delay != 0: keep an emptied current slab */
  /* The slow paths' lists before the fast paths' array (see SF_TLD_IN_OP_OFFSET). */
  sf_slab_list_t avail[SF_CLASSES]; /* slabs with free (or not yet counted) blocks */
  sf_slab_list_t fulls[SF_CLASSES]; /* slabs with no free block at the last look */
  sf_slab_t *cur[SF_CLASSES];       /* head of avail[c] or &_sf_slab_empty: fast-path slab */
  /* What other threads write, on a line of its own: a remote free reads `pending` each time,
     and beside the counters the owner bumps on every call it missed every time. */
  _Atomic(uint8_t) hint[SF_CLASSES] __attribute__((aligned(64)));   /* remote threads: "a block
                                       came back to a full slab" */
  _Atomic(uint8_t) pending;         /* remote threads: "a block came back" (for the purger) */
  /* statistics, written by the owner only (_sf_count_inc), read by anyone; two arrays, so the
     fast paths address a counter with one scaled index */
  _Atomic(uint64_t) allocs[SF_CLASSES] __attribute__((aligned(64))), frees[SF_CLASSES];
  _Atomic(uint64_t) reallocs_in_place, reallocs_moved, reallocs_remapped;
  size_t keep_budget, kept_bytes;   /* other emptied slabs kept (heap.c), bytes of slabs */
};
_Static_assert(__builtin_offsetof(sf_theap_t, hint) < __builtin_offsetof(sf_theap_t, pending) &&
                   __builtin_offsetof(sf_theap_t, pending) < __builtin_offsetof(sf_theap_t, allocs),
               "_sf_theap_new resets the remote threads' words between two memsets");
_Static_assert(__builtin_offsetof(sf_theap_t, pending) / 64 ==
                   __builtin_offsetof(sf_theap_t, hint) / 64,
               "the remote threads' words share one line, and no owner's word shares it");

/* Where in_op sits in a thread record. The owner stores it twice per call, and a load whose
   address has the same low 12 bits as a store still in flight waits for that store (4K
   aliasing). Records are 128-aligned in page-aligned chunks, so in_op's page offset is always
   88 mod 128: in slab records (256 apart, from 128 past a page-aligned segment header: record
   offsets 88 and 216, `segment` and the unused line) and segment headers a field no fast path
   loads, in blocks (16-aligned) never their link, in heap handles (64 or
   128 apart from a page boundary) never `closed` or `slot`, and in the first thread heap of a
   chunk (page-aligned) a cold list head. */
#define SF_TLD_IN_OP_OFFSET 88
/* Bits of a record's `req` word, the one word besides the heap's closed flag that an entered
   call tests: any bit set sends it out of line (_sf_enter_recheck). */
enum {
  SF_REQ_TAKE = 1,    /* the purger wants the record: "I want your heaps; wait" */
  SF_REQ_IDLE = 2,    /* the purger saw no call since its last look; the next call clears it */
  SF_REQ_FENCE = 4,   /* fence mode (_sf_use_fence): every call fences, out of line; fixed */
};
struct sf_tld_s {
  /* the handshake words (see thread.c): written by the owner, read by the purger/destroyer */
  _Atomic(int) req;                 /* SF_REQ_*: set and cleared with atomic read-modify-writes
                                       (the purger's, and the owner's out of line) */
  int last_error;
  uint64_t idle_since_ms;           /* purger (global lock): when it last saw the record busy */
  sf_theap_t *theaps;               /* all thread heaps of this record */
  sf_tld_t *next, *prev;            /* registry (global lock) */
  sf_tld_t *pool_next;              /* free pool */
  _Atomic(int) live;
  bool purged_idle;                 /* purger: collected since the owner went idle */
  uint8_t pad_[SF_TLD_IN_OP_OFFSET - 53];   /* 53: the end of purged_idle */
  _Atomic(sf_heap_t *) in_op;       /* heap of the call in progress, NULL between calls */
  sf_theap_t *cache[SF_THEAP_CACHE];/* by heap->slot; &_sf_theap_none when empty */
} __attribute__((aligned(128)));
_Static_assert(__builtin_offsetof(sf_tld_t, in_op) == SF_TLD_IN_OP_OFFSET, "see above");

/* ------------------------------------------------------------------------------------------
   Heaps (heap.c)
   ------------------------------------------------------------------------------------------ */
typedef struct sf_region_s {        /* a reservation: reserve_bytes of slab address space */
  uint8_t *base;
  size_t size, used;
} sf_region_t;

/* A debug heap's quarantine of freed slab blocks and its corruption log (debug.c). */
typedef struct sf_quarantined_s { uint8_t *p; sf_slab_t *slab; } sf_quarantined_t;
typedef struct sf_debug_s {
  pthread_mutex_t lock;             /* a leaf: nothing else is locked while it is held */
  sf_quarantined_t *ring;           /* SEGFIT_QUARANTINE_BLOCKS entries, mapped on first use */
  uint32_t first, count;            /* the oldest entry, entries in use */
  uint64_t bytes;                   /* block bytes in quarantine */
  uint64_t by_class[SF_CLASSES];    /* blocks in quarantine: freed for the statistics */
  segfit_corruption_t log[SEGFIT_CORRUPTION_LOG];
  uint32_t log_first, log_count;
  uint32_t deferred;                /* records found by calls that could not return CORRUPTED */
} sf_debug_t;

/* A freed large mapping kept for reuse (large.c). */
#define SF_LARGE_CACHE 32
typedef struct sf_large_cached_s {
  uint8_t *map;                     /* page-aligned; NULL: unused */
  size_t size;
  uint64_t stamp_ms;                /* freed at */
} sf_large_cached_t;

typedef struct sf_heap_body_s {
  pthread_mutex_t lock;             /* segments, pools, abandoned lists, counters below */
  segfit_options_t opt;               /* opt.name points to the handle's name */
  sf_segment_t *segments;
  sf_slab_list_t dirty[SF_CLASSES]; /* free slabs by class, not yet purged: head = most recent;
                                       they keep their blocks' lists for the next owner */
  sf_slab_list_t clean[SF_KINDS];   /* free slabs, purged or never touched */
  sf_slab_list_t abandoned[SF_CLASSES];
  sf_region_t region;
  _Atomic(uint64_t) committed;      /* slab + large bytes backed by memory (limit check) */
  /* counters (lock) */
  uint64_t reserved, segment_count, slab_count;
  uint64_t slabs_by_class[SF_CLASSES];
  uint64_t purges, purged_bytes, abandoned_slabs, adopted_slabs;
  /* folded counters of exited threads (lock) */
  uint64_t allocs[SF_CLASSES], frees[SF_CLASSES];
  uint64_t reallocs_in_place, reallocs_moved, reallocs_remapped;
  /* counters updated with atomics */
  _Atomic(uint64_t) remote_frees[SF_CLASSES];
  _Atomic(uint64_t) limit_hits;
  _Atomic(uint64_t) limit_reclaims, limit_reclaimed_bytes;   /* _sf_heap_reclaim_for_limit */
  /* large blocks */
  pthread_mutex_t large_lock;
  sf_large_table_t *large;
  uint64_t large_count, large_bytes, large_allocs, large_frees; /* large_lock */
  uintptr_t large_recent[16];        /* recently freed large blocks (ALREADY_FREE) */
  unsigned large_recent_next;
  sf_large_cached_t large_cache[SF_LARGE_CACHE]; /* large_lock: freed mappings (large.c) */
  uint64_t large_cached_bytes;       /* large_lock; committed, not live */
  sf_debug_t debug;                  /* debug heaps only */
} sf_heap_body_t;

/* The public handle. Never unmapped: a destroyed heap's handle stays valid and says CLOSED. */
struct __attribute__((aligned(64))) segfit_heap_s {   /* aligned: see SF_TLD_IN_OP_OFFSET */
  _Atomic(int) closed;
  uint32_t slot;                    /* index into sf_tld_t.cache */
  sf_heap_body_t *body;             /* NULL once destroyed */
  sf_heap_t *next;                  /* global list of live heaps (global lock) */
  uint64_t purge_delay_ms;
  uint8_t debug, is_default;
  char name[SEGFIT_MAX_NAME_LENGTH + 1];
};

/* ------------------------------------------------------------------------------------------
   Size classes (heap.c holds the table; the arithmetic is here for the fast path)
   ------------------------------------------------------------------------------------------ */
/* Class of a size in 1 .. SF_SMALL_MAX (0 maps to class 0): 16-byte steps up to 128 B, then
   four classes per power of two. Up to 1 KiB one byte of a table (the fast paths' sizes),
   beyond it bit arithmetic; no loop. */
#define SF_SMALL_TABLE_MAX 1024
extern const uint8_t _sf_class_small[SF_SMALL_TABLE_MAX / 16 + 1];   /* by (size + 15) / 16 */
SF_INLINE unsigned _sf_size_class(size_t size) {
  if (size <= SF_SMALL_TABLE_MAX) return _sf_class_small[(size + 15) >> 4];
  size_t s = size - 1;
  unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)s);  /* >= 10 */
  return 8u + ((b - 7u) << 2) + (unsigned)((s >> (b - 2u)) & 3u);
}
extern const uint32_t _sf_class_size[SF_CLASSES];
extern const uint64_t _sf_class_recip[SF_CLASSES];     /* ceil(2^SF_RECIP_SHIFT / size) */
extern const uint32_t _sf_class_capacity[SF_CLASSES];  /* blocks per slab */
extern const uint32_t _sf_class_slab_mask[SF_CLASSES]; /* slab size - 1 */
SF_INLINE unsigned _sf_class_kind(unsigned cls) {
  size_t bs = _sf_class_size[cls];
  return bs <= SF_KIND0_MAX ? 0u : bs <= SF_KIND1_MAX ? 1u : 2u;
}
SF_INLINE size_t _sf_kind_slab_size(unsigned kind) { return (size_t)64 << (10 + 3 * kind); }
SF_INLINE unsigned _sf_kind_slab_shift(unsigned kind) { return 16 + 3 * kind; }
/* Smallest class whose blocks are all aligned to `alignment` (a power of two) and hold `size`;
   SF_CLASSES if none. */
unsigned _sf_class_for_aligned(size_t size, size_t alignment);

/* ------------------------------------------------------------------------------------------
   Globals (thread.c)
   ------------------------------------------------------------------------------------------ */
extern _Thread_local sf_tld_t *_sf_tls;   /* the one TLS word */
/* x86-64: the TLS word's offset from the thread pointer when it is in static TLS (then the
   same in every thread), found at init (thread.c); 0: unknown, the fast paths use the TLS
   descriptor's call. Elsewhere always 0. */
extern _Atomic(intptr_t) _sf_tls_off;
/* The verdict of thread.c's probe from what the descriptor's call showed: the offset, or 0. */
intptr_t _sf_tls_static_offset(uintptr_t desc, uintptr_t off, uintptr_t desc_arg);
#if defined(__x86_64__) && defined(__GNUC__)
#define SF_TLS_OFF 1
#else
#define SF_TLS_OFF 0
#endif
/* The fast paths' read of the TLS word: one load from %fs when the offset is known, no call.
   False: unknown, the caller takes a variant of itself that reads _sf_tls (a tail call, so
   that the descriptor's call, which needs a frame, is not in the fast path's function). */
SF_INLINE bool _sf_tls_fast(sf_tld_t **t) {
#if SF_TLS_OFF
  intptr_t off = atomic_load_explicit(&_sf_tls_off, memory_order_relaxed);
  if (sf_unlikely(off == 0)) return false;
  __asm__("mov %%fs:(%1), %0" : "=r"(*t) : "r"(off));
#else
  *t = _sf_tls;
#endif
  return true;
}
#define SF_TLD_DEAD ((sf_tld_t *)1)       /* after the thread's destructor ran */
extern sf_slab_t _sf_slab_empty;          /* a slab with no free block: fast paths miss */
extern int _sf_use_fence;                 /* membarrier unavailable: owner fences */
extern _Atomic(uint64_t) _sf_clock_ms;    /* coarse clock, advanced by slow paths and the purger */
extern _Atomic(uintptr_t) *_sf_segment_map;   /* see _sf_segment_entry */
extern pthread_mutex_t _sf_global_lock;   /* heaps list, thread registry */
extern sf_tld_t *_sf_tlds;                /* live thread records (global lock) */

/* ------------------------------------------------------------------------------------------
   The operation handshake (thread.c). Owner side: plain stores and loads, compiler barrier
   only; the rare side issues membarrier(). See thread.c for the protocol. Every caller follows
   _sf_enter with _sf_enter_blocked (or _sf_enter_flags, then _sf_enter_recheck when non-zero),
   which holds the owner's fence when there is one.
   ------------------------------------------------------------------------------------------ */
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
/* After non-zero flags (thread.c): the fence if the record needs it, then the purger's
   request and the heap's closed flag again. Non-zero: take the slow entry. */
int _sf_enter_recheck(sf_tld_t *tld, sf_heap_t *heap);
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

/* An operation in progress from a slow path: the thread record (possibly the shared fallback
   record of torn-down threads, then under its lock) and the heap. */
typedef struct sf_op_s {
  sf_tld_t *tld;
  sf_heap_t *heap;
  int fallback;
} sf_op_t;

/* init.c */
void _sf_init(void);                                 /* process init, idempotent */
void _sf_init_thread(sf_tld_t *tld);                 /* tld's thread will tear it down at exit */

/* thread.c */
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

/* os.c: the only file that makes system calls */
extern size_t _sf_page_size;
void _sf_os_init(void);
void *_sf_os_reserve(size_t size, size_t align, bool populate, bool huge);
void _sf_os_unmap(void *p, size_t size);   /* never fails: a refused range is kept, retried */
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

/* options.c */
int _sf_options_check(const segfit_options_t *o);
void _sf_set_error(int code);                        /* sets last error (and nothing else) */
int _sf_errno_of(int code);
void *_sf_fail_ptr(int code);                        /* sets error + errno, returns NULL */

/* segment.c */
void _sf_segment_map_init(void);
/* A map entry is the segment's metadata address (page-aligned) | the log2 of its slab size
   (fixed for the metadata's life), or 0: the owner's checked free finds a block's slab record
   from the entry alone, one dependent load fewer than through the segment header. */
#define SF_MAP_SHIFT_BITS ((uintptr_t)63)
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

/* slab.c */
void _sf_slab_init(sf_slab_t *slab, unsigned cls);
void _sf_slab_reset_states(sf_slab_t *slab);
/* Puts up to one OS page of never-used blocks on the free list. False (err = LIMIT) when
   committing the pages would pass the heap's max_bytes. */
bool _sf_slab_extend(sf_slab_t *slab, sf_heap_body_t *b, int *err);
uint32_t _sf_slab_collect(sf_slab_t *slab);          /* returns remote blocks collected */
bool _sf_slab_is_valid(const sf_slab_t *slab);
SF_INLINE unsigned _sf_slab_class(const sf_slab_t *slab) {
  return atomic_load_explicit(&((sf_slab_t *)slab)->cls, memory_order_relaxed);
}
SF_INLINE size_t _sf_slab_bsize(const sf_slab_t *slab) { return _sf_class_size[_sf_slab_class(slab)]; }
SF_INLINE uint32_t _sf_slab_capacity(const sf_slab_t *slab) {
  return _sf_class_capacity[_sf_slab_class(slab)];
}
/* Block index of p in its slab of class cls; *exact when p is the start of a block. No
   division. */
SF_INLINE uint32_t _sf_class_index(unsigned cls, const void *p, bool *exact) {
  /* Slabs are aligned to their size: the offset needs no load of the slab's address. */
  uint64_t off = (uint64_t)((uintptr_t)p & _sf_class_slab_mask[cls]);
  uint64_t idx = (off * _sf_class_recip[cls]) >> SF_RECIP_SHIFT;
  *exact = idx * _sf_class_size[cls] == off && idx < _sf_class_capacity[cls];
  return (uint32_t)idx;
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
void _sf_list_push(sf_slab_list_t *l, sf_slab_t *s);        /* at head */
void _sf_list_append(sf_slab_list_t *l, sf_slab_t *s);      /* at tail */
void _sf_list_remove(sf_slab_list_t *l, sf_slab_t *s);

/* heap.c */
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

/* alloc.c */
void *_sf_alloc_slow(sf_heap_t *heap, size_t size, size_t alignment, bool zero);
void *_sf_alloc_in(sf_theap_t *th, size_t size, size_t alignment, bool zero, int *err);

/* free.c */
int _sf_free_slow(sf_heap_t *heap, void *p, size_t size, bool sized);
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
size_t _sf_block_usable(const sf_heap_t *heap, const sf_slab_t *slab);

/* debug.c: debug heaps (heap->debug). */
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

/* large.c */
typedef struct sf_large_entry_s {
  uintptr_t addr;                   /* the block (0: empty table slot) */
  size_t usable;                    /* page multiple */
  uint8_t *map;                     /* the mapping (guard pages included) */
  size_t map_size;
} sf_large_entry_t;
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

/* stats.c */
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
void _sf_stats_fold(sf_theap_t *th);                 /* pre: heap lock */

/* purge.c */
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
/* The purge delay's rule: memory free since `stamp` (ms) goes back at `now` once the delay has
   passed, or at once when forced (trim, the limit's reclaim). Empty slabs leave their thread
   heap by the same rule (heap.c). */
SF_INLINE bool _sf_purge_due(const sf_heap_t *heap, uint64_t stamp, uint64_t now, bool force) {
  return force || stamp + heap->purge_delay_ms <= now;
}

#pragma GCC visibility pop

#endif /* SF_INTERNAL_H */
