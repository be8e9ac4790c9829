/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — differential fuzz target: random operation sequences checked against a model.
 *
 * The input bytes are decoded into operations (alloc, zeroed, aligned, realloc, free, sized free,
 * double free, interior and foreign free, usable size, trim, heap create/destroy, invalid
 * arguments). A model keeps every live block's heap, requested size, alignment and fill seed, and
 * recently freed pointers. After each operation the result is compared with what the model
 * expects: pointer or NULL, the exact error code from segfit_last_error() or the return value,
 * errno, alignment, usable size, no overlap with any other live block, zeroed memory, contents
 * kept across realloc and failed calls, and per-heap statistics equal to the model's count.
 *
 * Built twice: as a libFuzzer target (SEGFIT_LIBFUZZER, clang -fsanitize=fuzzer), and as a plain
 * program that ctest runs in every build:
 *   fuzz-diff FILE|DIR...            replay inputs (a corpus directory, crash files)
 *   fuzz-diff --random SEED COUNT    COUNT random inputs from SEED
 * A stale pointer whose slab may have been reused or released can legitimately be reported as
 * ALREADY_FREE or NOT_A_BLOCK; right after its free, for a slab block of a heap with a long
 * purge delay, only ALREADY_FREE is accepted. Built a second time on the fault-injecting core
 * (testhelper.h, --random only): then a call the OS refused must fail with OUT_OF_MEMORY and
 * change nothing (the model stays as it was: a failed realloc's block keeps its contents and
 * usable size).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testhelper.h"
#include "segfit.h"

#define SLOTS 48
#define STALE 16
#define HEAPS 3
#define DEAD_HANDLES 8
#define MAX_OPS 2000
#define SAMPLE 512   /* bytes checked at each end of a block (everything if smaller) */

/* The core and the model disagree (the check family aborts: libFuzzer records the input, the
   replay driver dies with it). */
#define MISMATCH(what, detail) FAIL("model mismatch: %s: %s", what, detail)
#define EXPECT_CODE(got, want) CHECK_MSG((got) == (want), "%s", segfit_strerror(got))

typedef struct block_s {
  unsigned char *ptr;
  size_t size;       /* requested */
  size_t usable;
  size_t align;
  int heap;
  uint8_t seed;
} block_t;

typedef struct stale_s {
  void *ptr;
  int heap;
  int small;         /* a slab block (a freed large block's mapping may be gone) */
  int fresh;         /* nothing that can release or reuse memory has run since its free */
} stale_t;

typedef struct model_s {
  segfit_heap_t *heap[HEAPS];    /* NULL: not created */
  int64_t purge_delay[HEAPS];
  uint64_t limit[HEAPS];
  segfit_heap_t *dead[DEAD_HANDLES];
  int ndead, creations;
  block_t slot[SLOTS];
  stale_t stale[STALE];
  int nstale;
} model_t;

typedef struct input_s {
  const uint8_t *p;
  size_t n;
} input_t;

static uint32_t take(input_t *in, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; i++) {
    v = v << 8;
    if (in->n > 0) {
      v |= *in->p++;
      in->n--;
    }
  }
  return v;
}

/* --- contents ------------------------------------------------------------------------------ */
static unsigned char pattern(uint8_t seed, size_t i) { return (unsigned char)(seed + i * 31 + (i >> 8)); }

/* Blocks up to 2*SAMPLE bytes are written and checked whole; larger ones at both ends and at
 * every multiple of 65521 (a prime: one byte per 64 KiB) in between. "layout" is the size the
 * block was filled for. */
static size_t next_sampled(size_t layout, size_t i) {
  if (layout <= 2 * SAMPLE || i < SAMPLE || i >= layout - SAMPLE) return i;
  size_t m = (i + 65520) / 65521 * 65521;
  return m < layout - SAMPLE ? m : layout - SAMPLE;
}

static void fill(block_t *b) {
  for (size_t i = 0; i < b->size; i = next_sampled(b->size, i + 1)) b->ptr[i] = pattern(b->seed, i);
}

/* Checks the first n bytes of a block filled for layout bytes. */
static void verify_layout(const block_t *b, size_t layout, size_t n) {
  for (size_t i = next_sampled(layout, 0); i < n; i = next_sampled(layout, i + 1)) {
    if (b->ptr[i] != pattern(b->seed, i)) {
      char detail[96];
      snprintf(detail, sizeof detail, "block %p size %zu byte %zu", (void *)b->ptr, b->size, i);
      MISMATCH("contents kept", detail);
    }
  }
}

static void verify(const block_t *b, size_t n) { verify_layout(b, b->size, n); }

/* --- model helpers --------------------------------------------------------------------------- */
static size_t small_max;

static size_t pick_size(input_t *in) {
  uint32_t k = take(in, 1), v = take(in, 2);
  if (k < 150) return v % 1025;
  if (k < 215) return v * 7 % (small_max + 1);
  if (k < 245) return small_max + 1 + (size_t)v * 61 % (4u << 20);
  int classes = segfit_class_count();
  switch (k % 4) {
    case 0: return 0;
    case 1: return small_max;
    case 2: return small_max + 1;
    default: return segfit_class_size((int)(v % (uint32_t)classes)) + (v >> 15);
  }
}

static void check_placement(const model_t *m, const block_t *b) {
  CHECK(((uintptr_t)b->ptr & 15) == 0);
  CHECK(((uintptr_t)b->ptr & (b->align - 1)) == 0);
  CHECK(b->usable >= b->size);
  for (int i = 0; i < SLOTS; i++) {
    const block_t *o = &m->slot[i];
    if (o->ptr == NULL || o == b) continue;
    int apart = o->ptr + o->usable <= b->ptr || b->ptr + b->usable <= o->ptr;
    if (!apart) FAIL("model mismatch: live blocks overlap");
  }
}

static void forget_stale(model_t *m, const void *p) {
  for (int i = 0; i < m->nstale; i++)
    if (m->stale[i].ptr == p) m->stale[i] = m->stale[--m->nstale];
}

static void remember_stale(model_t *m, void *p, int heap, int small) {
  forget_stale(m, p);
  if (m->nstale == STALE) m->stale[0] = m->stale[--m->nstale];
  m->stale[m->nstale++] = (stale_t){p, heap, small, 1};
}

/* Memory may have been released or reused: stale pointers are no longer "fresh". */
static void age_stale(model_t *m) {
  for (int i = 0; i < m->nstale; i++) m->stale[i].fresh = 0;
}

static void expect_failure(void *p, int code) {
  CHECK(p == NULL);
  EXPECT_CODE(segfit_last_error(), code);
  int want_errno = code == SEGFIT_E_INVALID_SIZE || code == SEGFIT_E_INVALID_ALIGNMENT ||
                   code == SEGFIT_E_CLOSED ? EINVAL : ENOMEM;
  if (code != SEGFIT_E_CLOSED) CHECK(errno == want_errno);
}

static void drop_slot(model_t *m, int s) { memset(&m->slot[s], 0, sizeof m->slot[s]); }

static void free_slot(model_t *m, int s) {
  block_t *b = &m->slot[s];
  verify(b, b->size);
  int rc = segfit_free(m->heap[b->heap], b->ptr);
  EXPECT_CODE(rc, SEGFIT_E_OK);
  remember_stale(m, b->ptr, b->heap, b->usable <= small_max);
  drop_slot(m, s);
}

/* A new block in slot s of heap h (the slot is empty). kind: 0 alloc, 1 zeroed, 2 aligned. */
static void do_alloc(model_t *m, int s, int h, int kind, size_t size, size_t align) {
  errno = 0;
  uint64_t faults = ft_thread_faults();
  void *p = kind == 0 ? segfit_alloc(m->heap[h], size)
            : kind == 1 ? segfit_alloc_zeroed(m->heap[h], size)
                        : segfit_alloc_aligned(m->heap[h], size, align);
  if (p == NULL) {
    int code = segfit_last_error();
    if (ft_refused(code, faults)) {
      CHECK(errno == ENOMEM);
      return;
    }
    if (code == SEGFIT_E_LIMIT && m->limit[h] != 0) {
      segfit_stats_t st;
      EXPECT_CODE(segfit_stats(m->heap[h], &st), SEGFIT_E_OK);
      CHECK(st.limit_hits > 0);
      CHECK(st.committed_bytes + st.large_bytes <= m->limit[h] || st.committed_bytes <= m->limit[h]);
      CHECK(errno == ENOMEM);
      return;
    }
    MISMATCH("allocation of a valid size failed", segfit_strerror(code));
  }
  block_t *b = &m->slot[s];
  *b = (block_t){p, size, 0, kind == 2 && align > 16 ? align : 16, h, (uint8_t)(size * 13 + s)};
  int64_t usable = segfit_usable_size(m->heap[h], p);
  CHECK(usable >= 0);
  b->usable = (size_t)usable;
  check_placement(m, b);
  forget_stale(m, p);
  if (kind == 1) {
    size_t n = size < 65536 ? size : 65536;
    for (size_t i = 0; i < n; i++) CHECK(b->ptr[i] == 0);
    for (size_t i = n; i < size; i += 65521) CHECK(b->ptr[i] == 0);
  }
  fill(b);
}

static void check_stats(model_t *m, int h) {
  segfit_stats_t st;
  EXPECT_CODE(segfit_stats(m->heap[h], &st), SEGFIT_E_OK);
  uint64_t blocks = 0, requested = 0;
  for (int i = 0; i < SLOTS; i++)
    if (m->slot[i].ptr != NULL && m->slot[i].heap == h) {
      blocks++;
      requested += m->slot[i].size;
    }
  CHECK(st.live_blocks == blocks);
  CHECK(st.live_bytes >= requested);
  CHECK(st.allocs - st.frees == st.live_blocks);
  uint64_t per_class = st.large.live_blocks;
  for (uint32_t c = 0; c < st.class_count; c++) per_class += st.classes[c].live_blocks;
  CHECK(per_class == st.live_blocks);
  CHECK(m->limit[h] == 0 || st.max_bytes == m->limit[h]);
}

static int create_heap(model_t *m, int h, uint32_t how) {
  static const int64_t delays[] = {0, -1, 60000};
  segfit_options_t opt;
  segfit_options_init(&opt);
  opt.purge_delay_ms = delays[how % 3];
  opt.max_bytes = (how & 4) ? (uint64_t)(1 + how % 7) << 20 : 0;
  opt.debug = (how & 8) != 0;
  opt.name = "fuzz";
  uint64_t faults = ft_thread_faults();
  int rc = segfit_heap_create(&opt, &m->heap[h]);
  if (rc != SEGFIT_E_OK && ft_refused(rc, faults)) {
    CHECK(m->heap[h] == NULL);
    m->creations++;
    return rc;
  }
  EXPECT_CODE(rc, SEGFIT_E_OK);
  m->purge_delay[h] = opt.purge_delay_ms;
  m->limit[h] = opt.max_bytes;
  m->creations++;
  return rc;
}

static void destroy_heap(model_t *m, int h) {
  EXPECT_CODE(segfit_heap_destroy(m->heap[h]), SEGFIT_E_OK);
  for (int i = 0; i < SLOTS; i++)
    if (m->slot[i].ptr != NULL && m->slot[i].heap == h) drop_slot(m, i);
  for (int i = 0; i < m->nstale;)
    if (m->stale[i].heap == h) m->stale[i] = m->stale[--m->nstale];
    else i++;
  if (m->ndead < DEAD_HANDLES) m->dead[m->ndead++] = m->heap[h];
  m->heap[h] = NULL;
  age_stale(m);
}

/* --- one input ------------------------------------------------------------------------------ */
enum { OP_ALLOC, OP_ZEROED, OP_ALIGNED, OP_REALLOC, OP_FREE, OP_FREE_SIZED, OP_DOUBLE_FREE,
       OP_INTERIOR_FREE, OP_FOREIGN_FREE, OP_USABLE, OP_TRIM, OP_HEAP, OP_INVALID, OP_CHECK,
       OP_COUNT };

static void run_op(model_t *m, input_t *in) {
  uint32_t op = take(in, 1) % OP_COUNT;
  int s = (int)(take(in, 1) % SLOTS);
  int h = (int)(take(in, 1) % HEAPS);
  block_t *b = &m->slot[s];
  if (b->ptr != NULL) h = b->heap;
  if (m->heap[h] == NULL && op != OP_HEAP) return;
  static char foreign[256];
  switch (op) {
    case OP_ALLOC:
    case OP_ZEROED:
    case OP_ALIGNED: {
      size_t size = pick_size(in);
      size_t align = (size_t)1 << (take(in, 1) % 23);
      if (b->ptr != NULL) free_slot(m, s);
      do_alloc(m, s, h, (int)op, size, align);
      break;
    }
    case OP_REALLOC: {
      size_t size = pick_size(in);
      errno = 0;
      uint64_t faults = ft_thread_faults();
      void *p = segfit_realloc(m->heap[h], b->ptr, size);
      if (p == NULL) {
        int code = segfit_last_error();
        if (!ft_refused(code, faults))
          EXPECT_CODE(code, m->limit[h] ? SEGFIT_E_LIMIT : SEGFIT_E_OK);
        if (b->ptr != NULL) {   /* unchanged and still live */
          verify(b, b->size);
          CHECK(segfit_usable_size(m->heap[h], b->ptr) == (int64_t)b->usable);
        }
        break;
      }
      if (b->ptr == NULL) {
        *b = (block_t){p, size, 0, 16, h, (uint8_t)(size * 13 + s)};
        fill(b);
      } else {
        block_t old = *b;
        size_t kept = old.size < size ? old.size : size;
        b->ptr = p;
        verify_layout(b, old.size, kept);
        if (p != old.ptr) remember_stale(m, old.ptr, h, old.usable <= small_max);
        b->size = size;
        b->align = 16;
        fill(b);
      }
      int64_t usable = segfit_usable_size(m->heap[h], p);
      CHECK(usable >= 0);
      b->usable = (size_t)usable;
      forget_stale(m, p);
      check_placement(m, b);
      break;
    }
    case OP_FREE:
      if (b->ptr != NULL) free_slot(m, s);
      else EXPECT_CODE(segfit_free(m->heap[h], NULL), SEGFIT_E_OK);
      break;
    case OP_FREE_SIZED: {
      if (b->ptr == NULL) break;
      verify(b, b->size);
      uint32_t how = take(in, 1);
      if (how & 1) {
        /* More than the block holds must be refused, and the block must stay live. (A smaller
         * size may legitimately match: an aligned allocation of it can land in this class.) */
        EXPECT_CODE(segfit_free_sized(m->heap[h], b->ptr, b->usable + 1), SEGFIT_E_SIZE_MISMATCH);
        verify(b, b->size);
        break;
      }
      /* The size it was allocated (or last reallocated) with must be accepted. */
      int rc = segfit_free_sized(m->heap[h], b->ptr, b->size);
      if (rc != SEGFIT_E_OK) {
        char detail[160];
        snprintf(detail, sizeof detail, "%s; size %zu usable %zu align %zu", segfit_strerror(rc),
                 b->size, b->usable, b->align);
        MISMATCH("sized free of a live block", detail);
      }
      remember_stale(m, b->ptr, h, b->usable <= small_max);
      drop_slot(m, s);
      break;
    }
    case OP_DOUBLE_FREE: {
      if (m->nstale == 0) break;
      stale_t st = m->stale[take(in, 1) % (uint32_t)m->nstale];
      if (m->heap[st.heap] == NULL) break;
      int rc = segfit_free(m->heap[st.heap], st.ptr);
      if (st.fresh && st.small && m->purge_delay[st.heap] > 1000) EXPECT_CODE(rc, SEGFIT_E_ALREADY_FREE);
      else if (rc != SEGFIT_E_NOT_A_BLOCK) EXPECT_CODE(rc, SEGFIT_E_ALREADY_FREE);
      int64_t usable = segfit_usable_size(m->heap[st.heap], st.ptr);
      CHECK(usable == SEGFIT_E_ALREADY_FREE || usable == SEGFIT_E_NOT_A_BLOCK);
      break;
    }
    case OP_INTERIOR_FREE: {
      if (b->ptr == NULL || b->size < 2) break;
      size_t off = 1 + take(in, 2) % (b->size - 1);
      EXPECT_CODE(segfit_free(m->heap[h], b->ptr + off), SEGFIT_E_NOT_A_BLOCK);
      CHECK(segfit_usable_size(m->heap[h], b->ptr + off) == SEGFIT_E_NOT_A_BLOCK);
      verify(b, b->size);
      break;
    }
    case OP_FOREIGN_FREE: {
      int other = (h + 1 + (int)(take(in, 1) % (HEAPS - 1))) % HEAPS;
      if (b->ptr != NULL && m->heap[other] != NULL) {   /* a block of another heap */
        /* NOT_A_BLOCK; a large block's address may also be in the other heap's ring of
         * recently freed large blocks (the mapping was reused): ALREADY_FREE is fair then. */
        int rc = segfit_free(m->heap[other], b->ptr);
        if (rc != SEGFIT_E_ALREADY_FREE || b->usable % segfit_page_size() != 0)
          EXPECT_CODE(rc, SEGFIT_E_NOT_A_BLOCK);
        verify(b, b->size);
        CHECK(segfit_usable_size(m->heap[h], b->ptr) == (int64_t)b->usable);
      }
      char local[64];
      EXPECT_CODE(segfit_free(m->heap[h], foreign + 16 * (take(in, 1) % 16)), SEGFIT_E_NOT_A_BLOCK);
      EXPECT_CODE(segfit_free(m->heap[h], local + 16), SEGFIT_E_NOT_A_BLOCK);
      EXPECT_CODE(segfit_free(m->heap[h], (void *)(uintptr_t)4096), SEGFIT_E_NOT_A_BLOCK);
      break;
    }
    case OP_USABLE:
      if (b->ptr != NULL) CHECK(segfit_usable_size(m->heap[h], b->ptr) == (int64_t)b->usable);
      break;
    case OP_TRIM:
      segfit_trim((take(in, 1) & 1) ? NULL : m->heap[h]);
      age_stale(m);
      for (int i = 0; i < SLOTS; i++)
        if (m->slot[i].ptr != NULL) verify(&m->slot[i], m->slot[i].size);
      break;
    case OP_HEAP: {
      uint32_t how = take(in, 1);
      if (m->heap[h] == NULL) {
        if (m->creations < 8) create_heap(m, h, how);
        break;
      }
      if (h == 0) break;   /* heap 0 lives for the whole input */
      segfit_heap_t *old = m->heap[h];
      destroy_heap(m, h);
      /* A destroyed heap refuses everything with CLOSED. */
      EXPECT_CODE(segfit_heap_destroy(old), SEGFIT_E_CLOSED);
      errno = 0;
      expect_failure(segfit_alloc(old, 16), SEGFIT_E_CLOSED);
      segfit_stats_t st;
      EXPECT_CODE(segfit_stats(old, &st), SEGFIT_E_CLOSED);
      EXPECT_CODE(segfit_free(old, foreign), SEGFIT_E_CLOSED);
      break;
    }
    case OP_INVALID: {
      errno = 0;
      expect_failure(segfit_alloc(m->heap[h], SEGFIT_MAX_SIZE + 1 + take(in, 1)), SEGFIT_E_INVALID_SIZE);
      errno = 0;
      expect_failure(segfit_alloc_zeroed(m->heap[h], SIZE_MAX - take(in, 1)), SEGFIT_E_INVALID_SIZE);
      size_t bad = (size_t)3 << (take(in, 1) % 20);
      errno = 0;
      expect_failure(segfit_alloc_aligned(m->heap[h], 16, bad), SEGFIT_E_INVALID_ALIGNMENT);
      errno = 0;
      expect_failure(segfit_alloc_aligned(m->heap[h], 16, SEGFIT_MAX_ALIGNMENT * 2),
                     SEGFIT_E_INVALID_ALIGNMENT);
      if (b->ptr != NULL) {
        errno = 0;
        expect_failure(segfit_realloc(m->heap[h], b->ptr, SEGFIT_MAX_SIZE + 1), SEGFIT_E_INVALID_SIZE);
        verify(b, b->size);
        CHECK(segfit_usable_size(m->heap[h], b->ptr) == (int64_t)b->usable);
      }
      for (int i = 0; i < m->ndead; i++) {
        errno = 0;
        expect_failure(segfit_alloc(m->dead[i], 16), SEGFIT_E_CLOSED);
      }
      break;
    }
    case OP_CHECK:
      for (int i = 0; i < SLOTS; i++)
        if (m->slot[i].ptr != NULL) verify(&m->slot[i], m->slot[i].size);
      for (int i = 0; i < HEAPS; i++)
        if (m->heap[i] != NULL) check_stats(m, i);
      break;
  }
  if (op == OP_ALLOC || op == OP_ZEROED || op == OP_ALIGNED || op == OP_REALLOC) age_stale(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static model_t m;
  memset(&m, 0, sizeof m);
  small_max = segfit_small_max();
  input_t in = {data, size};
  create_heap(&m, 0, take(&in, 1));
  for (int ops = 0; in.n > 0 && ops < MAX_OPS; ops++) run_op(&m, &in);
  for (int i = 0; i < SLOTS; i++)
    if (m.slot[i].ptr != NULL) free_slot(&m, i);
  for (int h = 0; h < HEAPS; h++)
    if (m.heap[h] != NULL) {
      check_stats(&m, h);
      destroy_heap(&m, h);
    }
  return 0;
}

#ifndef SEGFIT_LIBFUZZER
/* --- the replay and random driver ----------------------------------------------------------- */
static long replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    exit(2);
  }
  static uint8_t buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  LLVMFuzzerTestOneInput(buf, n);
  return 1;
}

static long replay(const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) {
    perror(path);
    exit(2);
  }
  if (!S_ISDIR(sb.st_mode)) return replay_file(path);
  DIR *dir = opendir(path);
  if (dir == NULL) {
    perror(path);
    exit(2);
  }
  long count = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char child[4096];
    snprintf(child, sizeof child, "%s/%s", path, e->d_name);
    count += replay(child);
  }
  closedir(dir);
  return count;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--random") == 0) {
    uint64_t x = strtoull(argv[2], NULL, 0) | 1;
    long count = atol(argv[3]);
    count = th_scaled(count);
    static uint8_t buf[4096];
    ft_begin();
    for (long k = 0; k < count; k++) {
      size_t n = 64 + (size_t)(x % (sizeof buf - 64));
      for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
      }
      LLVMFuzzerTestOneInput(buf, n);
    }
    ft_end("fuzz-diff");
    printf("fuzz-diff: %ld random inputs ok\n", count);
    return 0;
  }
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|DIR... | --random SEED COUNT\n", argv[0]);
    return 2;
  }
  long count = 0;
  for (int i = 1; i < argc; i++) count += replay(argv[i]);
  printf("fuzz-diff: %ld inputs replayed ok\n", count);
  return 0;
}
#endif
