/* SPDX-License-Identifier: Apache-2.0 */
/* segfit: a segregated-fit slab allocator on Linux mmap/mremap/madvise.
 *
 * This header is the whole public C API and the only symbols the shared libraries export
 * (besides the JNI entry points). Every function is thread-safe. Functions that return a
 * pointer report failure with NULL, errno (EINVAL or ENOMEM) and segfit_last_error();
 * functions that return int or int64_t report failure with a negative SEGFIT_E_* code.
 * The error codes, like everything here, are defined once: the Java facade reads them from
 * this header through the JNI glue, never from a copy.
 */
#ifndef SEGFIT_H
#define SEGFIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEGFIT_VERSION_MAJOR 0
#define SEGFIT_VERSION_MINOR 1
#define SEGFIT_VERSION_PATCH 0

#if defined(SEGFIT_BUILD)
#define SEGFIT_API __attribute__((visibility("default")))
#else
#define SEGFIT_API
#endif

/* Error codes: X(name, value, message). 0 is success; every failure is negative and distinct.
 * The Java facade maps each name to one exception type (see io.segfit.internal.Errors). */
#define SEGFIT_ERRORS(X)                                                                           \
  X(OK,                 0, "success")                                                              \
  X(INVALID_SIZE,      -1, "size is negative or larger than the maximum block size")              \
  X(INVALID_ALIGNMENT, -2, "alignment is not a power of two or is larger than the maximum")        \
  X(NOT_A_BLOCK,       -3, "pointer is not the start of a block of this heap")                     \
  X(ALREADY_FREE,      -4, "block was already freed")                                              \
  X(SIZE_MISMATCH,     -5, "size does not match the block's size class")                          \
  X(LIMIT,             -6, "the heap's byte limit would be exceeded")                              \
  X(OUT_OF_MEMORY,     -7, "the operating system refused memory")                                  \
  X(CLOSED,            -8, "the heap is destroyed")                                                \
  X(INVALID_OPTION,    -9, "an option value is out of range")                                      \
  X(CORRUPTED,        -10, "debug check failed: a canary or fill pattern was overwritten")

#define SEGFIT_ENUM_ENTRY_(name, value, message) SEGFIT_E_##name = value,
typedef enum segfit_error_e { SEGFIT_ERRORS(SEGFIT_ENUM_ENTRY_) } segfit_error_t;
#undef SEGFIT_ENUM_ENTRY_

/* Largest size accepted by any allocation call (PTRDIFF_MAX rounded down to a page). */
#define SEGFIT_MAX_SIZE ((size_t)1 << 46)
/* Largest alignment accepted by segfit_alloc_aligned. */
#define SEGFIT_MAX_ALIGNMENT ((size_t)1 << 30)
/* Blocks of at most segfit_small_max() bytes are slab blocks. A slab block never crosses a
 * 2^SEGFIT_REGION_SHIFT-aligned boundary, so a caller may view every slab block as a slice of
 * one buffer per region (the Java facade does). Larger blocks have mappings of their own. */
#define SEGFIT_REGION_SHIFT 30
/* Upper bound on the number of size classes, for fixed-size statistics arrays. */
#define SEGFIT_MAX_CLASSES 128
/* Longest heap name, in bytes (UTF-8), not counting the terminating NUL. */
#define SEGFIT_MAX_NAME_LENGTH 63

typedef struct segfit_heap_s segfit_heap_t;

/* Options of one heap. Start from segfit_options_init(); zero means "default" for each field. */
typedef struct segfit_options_s {
  const char *name;        /* for statistics and messages; copied; NULL means "heap-<n>" */
  uint64_t max_bytes;      /* limit on committed slab bytes + large-block bytes; 0 = none */
  uint64_t reserve_bytes;  /* address space reserved at creation for slabs; 0 = grow on demand */
  int pre_touch;           /* non-zero: pre-fault the reservation (MAP_POPULATE) */
  int huge_pages;          /* non-zero: ask for transparent huge pages (MADV_HUGEPAGE) */
  int64_t purge_delay_ms;  /* empty slabs are returned to the OS after this delay; <0 = default
                              (SEGFIT_DEFAULT_PURGE_DELAY_MS), 0 = at once */
  int debug;               /* non-zero: canaries, fill patterns, guard pages around large blocks */
} segfit_options_t;

#define SEGFIT_DEFAULT_PURGE_DELAY_MS 100

/* The statistics, defined once: X(field, accessor, metric, kind, unit, description).
 *   field        the member of segfit_stats_t (of segfit_class_stats_t in SEGFIT_CLASS_STATS)
 *   accessor     the Java facade's method of io.segfit.HeapStats (SizeClassStats) that returns
 *                it; capitalised after "get", the attribute of io.segfit.HeapMXBean
 *   metric       its dotted name in metric libraries (io.segfit.micrometer: segfit.heap.<metric>);
 *                "{tag=value}" tells apart figures that share a name
 *   kind         COUNTER only grows over a heap's life; GAUGE describes the moment
 *   unit         the base unit, "" for a count of events
 * The structs below, their sum over heaps, the JNI export and the Java facade's figures (its
 * meters and the checks that HeapStats and HeapMXBean have them) all come from these lists. */
#define SEGFIT_STATS(X)                                                                            \
  X(live_bytes, liveBytes, "live", GAUGE, "bytes",                                                 \
    "bytes of the live blocks, each at its size class's block size")                               \
  X(live_blocks, liveBlocks, "live.blocks", GAUGE, "blocks", "blocks allocated and not yet freed") \
  X(allocs, allocations, "allocations", COUNTER, "",                                               \
    "allocations, including those made by reallocation")                                           \
  X(frees, frees, "frees", COUNTER, "", "frees, including those made by reallocation")             \
  X(reallocs_in_place, reallocationsInPlace, "reallocations{kind=in_place}", COUNTER, "",          \
    "reallocations that kept the block where it was (same size class, or a large block grown "     \
    "into kept memory after it)")                                                                  \
  X(reallocs_moved, reallocationsMoved, "reallocations{kind=moved}", COUNTER, "",                  \
    "reallocations that moved the block by copying it")                                            \
  X(reallocs_remapped, reallocationsRemapped, "reallocations{kind=remapped}", COUNTER, "",         \
    "reallocations of large blocks done by mremap, without copying")                               \
  X(remote_frees, remoteFrees, "remote.frees", COUNTER, "",                                        \
    "frees made by a thread other than the one owning the block's slab")                           \
  X(reserved_bytes, reservedBytes, "reserved", GAUGE, "bytes",                                     \
    "address space reserved by the heap")                                                          \
  X(committed_bytes, committedBytes, "committed", GAUGE, "bytes",                                  \
    "memory backing the reserved address space (what counts against the limit)")                   \
  X(segments, segments, "segments", GAUGE, "segments", "segments the heap holds")                  \
  X(slabs, slabs, "slabs", GAUGE, "slabs", "slabs the heap holds")                                 \
  X(large_blocks, largeBlocks, "large.blocks", GAUGE, "blocks",                                    \
    "live large blocks (each with a mapping of its own)")                                          \
  X(large_bytes, largeBytes, "large", GAUGE, "bytes",                                              \
    "bytes of live large blocks, each rounded up to whole pages")                                  \
  X(purges, purges, "purges", COUNTER, "",                                                         \
    "purges, each returning the memory of empty slabs to the OS")                                  \
  X(purged_bytes, purgedBytes, "purged", COUNTER, "bytes", "bytes returned to the OS by purges")   \
  X(abandoned_slabs, abandonedSlabs, "abandoned.slabs", COUNTER, "slabs",                          \
    "slabs abandoned by exiting threads")                                                          \
  X(adopted_slabs, adoptedSlabs, "adopted.slabs", COUNTER, "slabs",                                \
    "abandoned slabs adopted by other threads")                                                    \
  X(limit_hits, limitHits, "limit.hits", COUNTER, "",                                              \
    "allocations refused because of the heap's limit")                                             \
  X(limit_reclaims, limitReclaims, "limit.reclaims", COUNTER, "",                                  \
    "requests at the limit that first returned the heap's unused memory to the OS")                \
  X(limit_reclaimed_bytes, limitReclaimedBytes, "limit.reclaimed", COUNTER, "bytes",               \
    "committed bytes returned by limit reclaims")                                                  \
  X(max_bytes, maxBytes, "limit", GAUGE, "bytes", "the heap's limit, 0 when it has none")

/* Figures of one size class, or of the large blocks (block_size 0); the same columns. */
#define SEGFIT_CLASS_STATS(X)                                                                      \
  X(block_size, blockSize, "block.size", GAUGE, "bytes",                                           \
    "size of each block of the class (debug heaps: usable size + canary), 0 for large blocks")     \
  X(live_blocks, liveBlocks, "live.blocks", GAUGE, "blocks", "blocks allocated and not yet freed") \
  X(live_bytes, liveBytes, "live", GAUGE, "bytes",                                                 \
    "live_blocks * block_size (large blocks: the sum of their mapped sizes)")                      \
  X(allocs, allocations, "allocations", COUNTER, "",                                               \
    "allocations, including those made by reallocation")                                           \
  X(frees, frees, "frees", COUNTER, "", "frees, including those made by reallocation")             \
  X(slabs, slabs, "slabs", GAUGE, "slabs", "slabs currently holding blocks of the class")

#define SEGFIT_STATS_FIELD_(field, accessor, metric, kind, unit, description) uint64_t field;
typedef struct segfit_class_stats_s {
  SEGFIT_CLASS_STATS(SEGFIT_STATS_FIELD_)
} segfit_class_stats_t;

/* A snapshot of a heap (or of all heaps: the sum of their figures). Sizes count the blocks'
 * classes (and the large mappings), canaries included. */
typedef struct segfit_stats_s {
  SEGFIT_STATS(SEGFIT_STATS_FIELD_)
  uint32_t class_count;                           /* entries used in classes[] */
  segfit_class_stats_t classes[SEGFIT_MAX_CLASSES];
  segfit_class_stats_t large;
} segfit_stats_t;
#undef SEGFIT_STATS_FIELD_

SEGFIT_API void segfit_options_init(segfit_options_t *options);

/* Creates a heap. Returns 0 and sets *heap, or a negative code (INVALID_OPTION, OUT_OF_MEMORY). */
SEGFIT_API int segfit_heap_create(const segfit_options_t *options, segfit_heap_t **heap);
/* Releases all memory of the heap at once, live blocks included. Safe while other threads are
 * inside calls on the same heap: those calls finish first or fail with SEGFIT_E_CLOSED.
 * Returns 0, or CLOSED when already destroyed. The default heap cannot be destroyed. */
SEGFIT_API int segfit_heap_destroy(segfit_heap_t *heap);
/* The process-wide heap, created on first use, configured from segfit_options_init(). */
SEGFIT_API segfit_heap_t *segfit_default_heap(void);
/* The heap's name as given at creation (valid until the heap is destroyed). */
SEGFIT_API const char *segfit_heap_name(const segfit_heap_t *heap);

/* Allocation. size 0 gives a unique minimum-size block. 16-byte alignment at least. */
SEGFIT_API void *segfit_alloc(segfit_heap_t *heap, size_t size);
/* Same, with the memory zeroed (fresh pages are not written). */
SEGFIT_API void *segfit_alloc_zeroed(segfit_heap_t *heap, size_t size);
/* alignment: any power of two up to SEGFIT_MAX_ALIGNMENT. */
SEGFIT_API void *segfit_alloc_aligned(segfit_heap_t *heap, size_t size, size_t alignment);
/* Resizes a block, keeping min(old, new) bytes: in place within a class, by mremap for large
 * blocks, else by copying. ptr NULL allocates. On failure returns NULL and the block is
 * unchanged and still live. */
SEGFIT_API void *segfit_realloc(segfit_heap_t *heap, void *ptr, size_t new_size);

/* Checked free: 0, or NOT_A_BLOCK (foreign, interior, other heap), ALREADY_FREE, CLOSED,
 * CORRUPTED (debug mode; the block is still freed). NULL is a no-op returning 0. A block of a
 * slab another thread owns is free at once (a second free fails) but may wait in the freeing
 * thread's batch, at most 16 blocks per size class up to 1 KiB, before its slab can reuse it:
 * the batch goes back when full, at the thread's exit, at its first call on the heap after
 * each purger tick, or when the purger or segfit_trim() finds the thread between calls. */
SEGFIT_API int segfit_free(segfit_heap_t *heap, void *ptr);
/* As segfit_free, also checking that size is what the block was allocated with (same class). */
SEGFIT_API int segfit_free_sized(segfit_heap_t *heap, void *ptr, size_t size);
/* Usable size of a live block (>= the requested size), or a negative code. */
SEGFIT_API int64_t segfit_usable_size(segfit_heap_t *heap, const void *ptr);

/* Slab lending, for a caller that manages a slab's blocks itself (the Java facade's thread
 * caches). segfit_slab_lend takes an empty slab for blocks of exactly block_size (a class size
 * of at most SEGFIT_LEND_MAX_BLOCK), counts all of it as committed, and returns its start:
 * block i is at start + i * block_size, for i below segfit_slab_lend_size(block_size) /
 * block_size. The slab is aligned to its size, a multiple of SEGFIT_LEND_SLAB_MIN. Blocks below
 * *reserved were handed out before (their memory was written), the others never since the slab
 * was last purged. While lent, every native call rejects its blocks (NOT_A_BLOCK); the borrower
 * must tell its own blocks from the core's. Returns NULL and sets the last error: INVALID_SIZE,
 * INVALID_OPTION (a debug heap), LIMIT, OUT_OF_MEMORY, CLOSED. segfit_slab_return gives back a
 * slab whose blocks are all free; handed_out: blocks below it may have been written (at least
 * the *reserved it was lent with). Returns 0, NOT_A_BLOCK (not a lent slab of the heap),
 * INVALID_SIZE or CLOSED. */
#define SEGFIT_LEND_MAX_BLOCK 65536
#define SEGFIT_LEND_SLAB_MIN 65536   /* the smallest lent slab's size */
/* The size of the slabs lent for block_size, or 0 if such blocks are not lent. */
SEGFIT_API size_t segfit_slab_lend_size(size_t block_size);
SEGFIT_API void *segfit_slab_lend(segfit_heap_t *heap, size_t block_size, uint32_t *reserved);
SEGFIT_API int segfit_slab_return(segfit_heap_t *heap, void *start, uint32_t handed_out);
/* A process-wide memory barrier for a borrower that hands its blocks out with plain stores and
 * loads (the thread caches' handshake with their sweeps, io.segfit.internal.LentSlab): when it
 * returns 1, every thread of the process that was running passed a full barrier between the
 * call's start and its return (Linux membarrier, private expedited). 0: the system offers
 * none now (no membarrier, or it failed); the caller must not rely on one. */
SEGFIT_API int segfit_slab_barrier(void);
/* memmove between blocks of the heap inside a call on it, so that a concurrent
 * segfit_heap_destroy waits for the copy (the borrower's reallocation). 0 or CLOSED. */
SEGFIT_API int segfit_copy(segfit_heap_t *heap, void *dst, const void *src, size_t size);

/* Returns empty slabs and cached segments of the heap (NULL: of every heap) to the OS now,
 * with the batches of remote frees (segfit_free) of threads found between calls pushed back
 * first. A debug heap also checks and empties its quarantine of freed blocks first (NULL: the
 * quarantines of the heaps the calling thread has used). Returns 0,
 * CLOSED, or CORRUPTED when a debug check failed (see segfit_debug_corruption). */
SEGFIT_API int segfit_trim(segfit_heap_t *heap);
/* Fills *stats for the heap (NULL: the sum over all heaps). Returns 0 or CLOSED. */
SEGFIT_API int segfit_stats(segfit_heap_t *heap, segfit_stats_t *stats);

/* Debug heaps. A freed block is filled with a pattern and held in a quarantine (the most
 * recent SEGFIT_QUARANTINE_BLOCKS blocks, at most SEGFIT_QUARANTINE_BYTES) before it can be
 * reused. The checks: the canary after a
 * block, on its free and realloc; the fill of a freed block, when it leaves the quarantine, on
 * trim, and when it is handed out again. A failed check is logged (the most recent
 * SEGFIT_CORRUPTION_LOG records are kept) and makes the free or trim that found it return
 * CORRUPTED -- or, when an allocation or a realloc found it, the next free or trim of the heap.
 * Either way the freed block is freed. A large block of a debug heap has a PROT_NONE guard
 * page on each side: an access to one prints a report naming the heap, the block and the
 * offset on stderr, then the fault takes its course (the previous SIGSEGV handler runs). */
#define SEGFIT_QUARANTINE_BLOCKS 1024
#define SEGFIT_QUARANTINE_BYTES ((uint64_t)16 << 20)
#define SEGFIT_CORRUPTION_LOG 64
#define SEGFIT_CORRUPTION_KINDS(X)                                                                 \
  X(OVERRUN,          1, "written past its end (the canary after the block)")                     \
  X(WRITE_AFTER_FREE, 2, "written after it was freed (the fill pattern of the freed block)")

#define SEGFIT_CORRUPTION_ENTRY_(name, value, message) SEGFIT_CORRUPTION_##name = value,
typedef enum segfit_corruption_kind_e {
  SEGFIT_CORRUPTION_KINDS(SEGFIT_CORRUPTION_ENTRY_)
} segfit_corruption_kind_t;
#undef SEGFIT_CORRUPTION_ENTRY_

typedef struct segfit_corruption_s {
  uintptr_t block;       /* the block's address */
  uint64_t size;         /* its usable size */
  uint64_t offset;       /* first damaged byte, from the block's start (>= size: past its end) */
  int kind;              /* SEGFIT_CORRUPTION_* */
} segfit_corruption_t;

/* Takes the oldest logged record of a debug heap: returns 1 and fills *out, 0 if there is
 * none, or CLOSED. Thread-safe; each record is returned once. */
SEGFIT_API int segfit_debug_corruption(segfit_heap_t *heap, segfit_corruption_t *out);
/* Writes a one-line description of *record into buf (at most size bytes, NUL-terminated), as
 * snprintf does; returns the length it needed. */
SEGFIT_API int segfit_corruption_describe(const segfit_corruption_t *record, char *buf,
                                          size_t size);

/* The code of the last failed call on this thread (0 if none). */
SEGFIT_API int segfit_last_error(void);
/* A static message for a code, e.g. for SEGFIT_E_LIMIT. */
SEGFIT_API const char *segfit_strerror(int code);
/* Size classes: count, and the block size of class i (0 <= i < count). */
SEGFIT_API int segfit_class_count(void);
SEGFIT_API size_t segfit_class_size(int index);
/* The largest slab block size; above it blocks are large (own mapping). */
SEGFIT_API size_t segfit_small_max(void);
/* The OS page size the allocator runs with (sysconf at run time). */
SEGFIT_API size_t segfit_page_size(void);

#ifdef __cplusplus
}
#endif
#endif /* SEGFIT_H */
