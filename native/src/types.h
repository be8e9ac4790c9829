/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — the C core's types, constants and memory layout, shared by every file of the core.
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
 * Debug tiers (mimalloc style): SF_DEBUG, from -DSF_DEBUG=n (CMake: -DSEGFIT_DEBUG=n).
 *   0  none; the default with NDEBUG (release builds): every assertion compiles to nothing
 *   1  sf_assert: cheap checks of what a call holds; the default without NDEBUG
 *   2  sf_assert_internal: invariants that cost loads or a short walk, on slow paths
 *   3  sf_assert_expensive: walks of whole structures (_sf_slab_is_valid, _sf_segment_is_valid)
 * Each section names the file that owns its types; the prototypes are in internal.h.
 */
#ifndef SF_TYPES_H
#define SF_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segfit.h"
/* Everything declared here is internal to the library: hidden (see internal.h). */
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
/* The fast paths' entry points start on a cache line: where the linker happened to put them
   moved the malloc shim's 1 KiB malloc+free pair between 7.1 and 10.3 ns (docs/hot-path.md). */
#define SF_HOT __attribute__((aligned(64)))

void _sf_assert_fail(const char *expr, const char *file, int line);   /* os.c: reports, aborts */
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
#define SF_SMALL_TABLE_MAX 1024                   /* classes up to here from a table (heap.c) */

#define SF_THEAP_CACHE 32                         /* direct-mapped heap->theap cache per thread */
#define SF_OUTBOX_BLOCKS 16                       /* remote frees pushed together (free.c) */
#define SF_OUTBOX_CLASSES 20                      /* classes with >= 64 blocks a slab (heap.c) */
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
  sf_block_t *local_free;           /* owner: its frees while `free` is fresh (free_fresh) */
  uint32_t reserved;                /* owner: blocks put on a free list so far (lazy init) */
  uint32_t touched;                 /* bytes from start counted as committed (page multiple) */
  uint64_t stamp_ms;                /* owned: empty since (0: not seen empty by a collection
                                       since it was last seen in use); dirty: freed at (0:
                                       purge at the next pass) */
  sf_slab_t *next, *prev;           /* list links: theap lists, segment pools, abandoned */
  uint8_t mem_fresh;                /* blocks beyond `reserved` are zero (fresh or purged) */
  int32_t floor;                    /* owner: its free leaves the fast path when `used`
                                       falls to this or below: _sf_slab_floor */
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
                                       (lock-free stack): SF_TFREE_* */
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

/* A slab's thread_free word: the top block's address, and above it how many blocks the stack
   holds, so that the owner learns how many it took back from the exchange alone, without
   walking the stack (a walk that missed the cache on every block: the blocks were last written
   by the freeing threads). Block addresses are below 2^SF_VA_BITS (os.c maps no segment above
   the segment map's reach), and a slab holds fewer than 2^(64 - SF_VA_BITS) blocks. 0: empty. */
#define SF_TFREE_COUNT_SHIFT SF_VA_BITS
#define SF_TFREE_ONE ((uintptr_t)1 << SF_TFREE_COUNT_SHIFT)
#define SF_TFREE_TOP_MASK (SF_TFREE_ONE - 1)
_Static_assert(((size_t)64 << 10) / SF_MIN_BLOCK < ((size_t)1 << (64 - SF_VA_BITS)),
               "the smallest class's slabs hold the most blocks; their count fits above the top");

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

/* A segment map entry (segment.c) is the segment's metadata address (page-aligned) | the log2
   of its slab size (fixed for the metadata's life), or 0: the owner's checked free finds a
   block's slab record from the entry alone, one dependent load fewer than through the segment
   header. */
#define SF_MAP_SHIFT_BITS ((uintptr_t)63)

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
     fast paths address a counter with one scaled index. remote_frees: blocks of other threads'
     slabs this thread freed (a locked add on a counter every freeing thread shares cost a
     remote free as much as its other two atomics) */
  _Atomic(uint64_t) allocs[SF_CLASSES] __attribute__((aligned(64))), frees[SF_CLASSES];
  _Atomic(uint64_t) remote_frees[SF_CLASSES];
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
  /* Remote frees by a thread with no thread heap for the heap, for one heap at a time
     (free.c, sf_count_remote): the owner sets `freeing` when it is NULL and counts (owner
     only, _sf_count_inc); the counts are zero while it is NULL. Cleared, under the global
     lock, by thread exit (folded into the heap) and heap destroy (dropped). */
  _Atomic(sf_heap_t *) freeing;
  _Atomic(uint64_t) freeing_counts[SF_CLASSES];
  /* The outbox (free.c): for each of the first SF_OUTBOX_CLASSES classes, up to
     SF_OUTBOX_BLOCKS blocks of one slab of `out_heap` that this thread freed and does not own,
     claimed (FREE) and chained through their links, not yet pushed onto the slab's
     thread_free; `out_used` has a bit per class with a chain. Touched only inside a call on
     out_heap (by the owner, by thread exit) or by the purger holding the record; heap destroy,
     once no call is in the heap, empties it without touching the blocks. The blocks still
     count in their slab's `used`, so the slab is neither emptied nor recycled under them. */
  _Atomic(sf_heap_t *) out_heap;    /* NULL: every chain empty */
  uint32_t out_used;
  struct { sf_slab_t *slab; sf_block_t *head, *tail; uint32_t count; } out[SF_OUTBOX_CLASSES];
} __attribute__((aligned(128)));
_Static_assert(__builtin_offsetof(sf_tld_t, in_op) == SF_TLD_IN_OP_OFFSET, "see above");

#define SF_TLD_DEAD ((sf_tld_t *)1)       /* after the thread's destructor ran */

/* An operation in progress from a slow path: the thread record (possibly the shared fallback
   record of torn-down threads, then under its lock) and the heap. */
typedef struct sf_op_s {
  sf_tld_t *tld;
  sf_heap_t *heap;
  int fallback;
} sf_op_t;

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
  uint64_t origin;                  /* as sf_large_entry_t's */
} sf_large_cached_t;


/* A live large block (large.c): its entry in the heap's table. */
typedef struct sf_large_entry_s {
  uintptr_t addr;                   /* the block (0: empty table slot) */
  size_t usable;                    /* page multiple */
  uint8_t *map;                     /* the mapping (guard pages included) */
  size_t map_size;
  uint64_t origin;                  /* names the mapping it was cut from: ranges of one origin
                                       that touch lie in one kernel mapping (large.c) */
} sf_large_entry_t;
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
  /* counters updated with atomics; remote_frees: folded from threads' counts, and of threads
     that could not count in their own (free.c, sf_count_remote) */
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

#pragma GCC visibility pop

#endif /* SF_TYPES_H */
