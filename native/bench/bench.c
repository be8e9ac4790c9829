/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — C benchmark workloads, one allocator per binary (not a test; never run by ctest).
 *
 * The same source is compiled once per allocator (BENCH_SEGFIT: the core's API on the default
 * heap; BENCH_MIMALLOC: mi_*; otherwise the process malloc, i.e. glibc, jemalloc when linked
 * with -ljemalloc, or the segfit shim under LD_PRELOAD). Each shape prints one line
 * "shape<TAB>value<TAB>unit" on stdout; bench-driver runs every binary and builds the table.
 * Timed shapes report the best of --reps repetitions, so a noisy neighbour inflates nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* CPU affinity (prodcons) */
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(BENCH_SEGFIT)
#include "segfit.h"
static segfit_heap_t *g_heap;
#define B_INIT() (g_heap = segfit_default_heap())
#define B_MALLOC(n) segfit_alloc(g_heap, (n))
#define B_FREE(p) ((void)segfit_free(g_heap, (p)))
#define B_REALLOC(p, n) segfit_realloc(g_heap, (p), (n))
#elif defined(BENCH_MIMALLOC)
#include <mimalloc.h>
#define B_INIT() ((void)0)
#define B_MALLOC(n) mi_malloc(n)
#define B_FREE(p) mi_free(p)
#define B_REALLOC(p, n) mi_realloc((p), (n))
#else
#define B_INIT() ((void)0)
#define B_MALLOC(n) malloc(n)
#define B_FREE(p) free(p)
#define B_REALLOC(p, n) realloc((p), (n))
#endif

/* Keeps the compiler from pairing up and deleting a malloc and its free. */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

static double g_scale = 1.0;
static int g_reps = 5;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long scaled(long n) {
  long v = (long)((double)n * g_scale);
  return v < 1 ? 1 : v;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {   /* xorshift64*, fixed seed: every allocator sees the same sizes */
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * 2685821657736338717ull;
}

static void *must(void *p) {
  if (p == NULL) {
    fprintf(stderr, "bench: allocation failed\n");
    exit(2);
  }
  return p;
}

/* Memory the harness needs for itself comes from mmap, so it is never in the measured heap. */
static void *scratch(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(2);
  }
  return p;
}

static double rss_mib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f == NULL || fscanf(f, "%ld %ld", &size, &resident) != 2) {
    fprintf(stderr, "bench: cannot read /proc/self/statm\n");
    exit(2);
  }
  fclose(f);
  return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static void report(const char *shape, double value, const char *unit) {
  printf("%s\t%.3f\t%s\n", shape, value, unit);
  fflush(stdout);
}

/* ---------------------------------------------------------------------------------------------
 * hot-N: malloc(N) immediately followed by free, the fast path and nothing else.
 * ------------------------------------------------------------------------------------------- */
static void shape_hot(size_t size) {
  long iters = scaled(10 * 1000 * 1000);
  double best = 1e300;
  for (int r = 0; r < g_reps; r++) {
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
      void *p = B_MALLOC(size);
      ESCAPE(p);
      B_FREE(p);
    }
    double ns = (now_ns() - t0) / (double)iters;
    if (ns < best) best = ns;
  }
  char name[32];
  snprintf(name, sizeof name, "hot-%zu", size);
  report(name, best, "ns/pair");
}

/* ---------------------------------------------------------------------------------------------
 * batch: 10,000 blocks of mixed sizes (16 B - 4 KiB, mostly <= 1 KiB), first byte written,
 * then freed in a shuffled order. Sizes and order are fixed by the seed.
 * ------------------------------------------------------------------------------------------- */
#define BATCH 10000
static void shape_batch(void) {
  size_t *sizes = scratch(BATCH * sizeof *sizes);
  int *order = scratch(BATCH * sizeof *order);
  void **blocks = scratch(BATCH * sizeof *blocks);
  for (int i = 0; i < BATCH; i++) {
    sizes[i] = (rnd() % 8 == 0) ? 1024 + rnd() % 3073 : 16 * (1 + rnd() % 64);
    order[i] = i;
  }
  for (int i = BATCH - 1; i > 0; i--) {
    int j = (int)(rnd() % (uint64_t)(i + 1)), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  long rounds = scaled(200);
  double best = 1e300;
  for (int r = 0; r < g_reps; r++) {
    double t0 = now_ns();
    for (long k = 0; k < rounds; k++) {
      for (int i = 0; i < BATCH; i++) {
        char *p = must(B_MALLOC(sizes[i]));
        p[0] = (char)i;
        blocks[i] = p;
      }
      for (int i = 0; i < BATCH; i++) B_FREE(blocks[order[i]]);
    }
    double ns = (now_ns() - t0) / ((double)rounds * BATCH);
    if (ns < best) best = ns;
  }
  report("batch", best, "ns/pair");
}

/* ---------------------------------------------------------------------------------------------
 * realloc growth: 4 KiB to 64 MiB by doubling, every byte written as the buffer grows. Only the
 * resizes are timed (microseconds per whole 4 KiB -> 64 MiB sequence). "realloc" uses the
 * allocator's realloc; "copy" is the baseline without it (malloc the new size, memcpy, free the
 * old); "realloc-mixed" allocates a small block between resizes, as a real program would.
 * ------------------------------------------------------------------------------------------- */
#define GROW_MIN ((size_t)4 << 10)
#define GROW_MAX ((size_t)64 << 20)

static void check_kept(const unsigned char *p, size_t old) {
  for (size_t off = 0; off < old; off += 4093)
    if (p[off] != (unsigned char)(off * 131 >> 12)) {
      fprintf(stderr, "bench: realloc lost contents at offset %zu\n", off);
      exit(3);
    }
}

static void fill(unsigned char *p, size_t from, size_t to) {
  memset(p + from, 0x5a, to - from);
  for (size_t off = (from + 4092) / 4093 * 4093; off < to; off += 4093)
    p[off] = (unsigned char)(off * 131 >> 12);
}

/* mode 0: realloc; 1: malloc+memcpy+free; 2: realloc with a small block allocated (and kept)
 * after each step, so that the growing block is never the last thing in the heap (glibc grows a
 * block at the top of its brk heap in place, which mode 0 lets it do every time). */
static void shape_grow(int mode) {
  static const char *names[] = {"grow-realloc", "grow-copy", "grow-realloc-mixed"};
  long seqs = scaled(8);
  double best = 1e300;
  void *pins[64];
  for (int r = 0; r < g_reps; r++) {
    double timed = 0;
    for (long k = 0; k < seqs; k++) {
      size_t size = GROW_MIN;
      int npins = 0;
      unsigned char *p = must(B_MALLOC(size));
      fill(p, 0, size);
      while (size < GROW_MAX) {
        size_t bigger = size * 2;
        double t0 = now_ns();
        unsigned char *q;
        if (mode == 1) {
          q = must(B_MALLOC(bigger));
          memcpy(q, p, size);
          B_FREE(p);
        } else {
          q = must(B_REALLOC(p, bigger));
        }
        timed += now_ns() - t0;
        if (mode == 2) pins[npins++] = must(B_MALLOC(64));
        check_kept(q, size);
        fill(q, size, bigger);
        p = q;
        size = bigger;
      }
      B_FREE(p);
      for (int i = 0; i < npins; i++) B_FREE(pins[i]);
    }
    double us = timed / 1e3 / (double)seqs;
    if (us < best) best = us;
  }
  report(names[mode], best, "us/seq");
}

/* ---------------------------------------------------------------------------------------------
 * grow-small: a string builder. A block grows by half from 16 B to 2 KiB with realloc, the bytes
 * appended written and the last kept one checked, a 32 B block allocated (and kept) after each
 * resize so that the growing block is never at the top of glibc's heap (see shape_grow); then
 * all are freed. Nanoseconds per whole sequence, writes included.
 * ------------------------------------------------------------------------------------------- */
static void shape_grow_small(void) {
  long seqs = scaled(200 * 1000);
  double best = 1e300;
  void *pins[16];
  for (int r = 0; r < g_reps; r++) {
    double t0 = now_ns();
    for (long k = 0; k < seqs; k++) {
      unsigned char mark = (unsigned char)k;
      size_t len = 16;
      int npins = 0;
      unsigned char *p = must(B_MALLOC(len));
      memset(p, mark, len);
      for (size_t cap = len * 3 / 2; cap <= 2048; cap = cap * 3 / 2) {
        p = must(B_REALLOC(p, cap));
        if (p[len - 1] != mark) {
          fprintf(stderr, "bench: realloc lost contents at offset %zu\n", len - 1);
          exit(3);
        }
        memset(p + len, mark, cap - len);
        len = cap;
        pins[npins++] = must(B_MALLOC(32));
      }
      B_FREE(p);
      for (int i = 0; i < npins; i++) B_FREE(pins[i]);
    }
    double ns = (now_ns() - t0) / (double)seqs;
    if (ns < best) best = ns;
  }
  report("grow-small", best, "ns/seq");
}

/* ---------------------------------------------------------------------------------------------
 * producer/consumer: one thread allocates 64-256 B blocks and hands them through a ring to a
 * second thread that frees them (every free is a cross-thread free). Each thread is pinned, so
 * that the scheduler does not decide the figure: `prodcons` puts them on two CPUs (every block
 * and ring line crosses between cores, the case the shape is for), `prodcons-1cpu` on one, where
 * they take turns through the ring and no line moves between caches: what is left is the
 * allocator's own work for a block freed by another thread. Left to the scheduler, the two
 * threads shared a core in some runs and not in others, and the row's best figure came from
 * whichever allocator was lucky (mimalloc: 14.6 ns or 70-290).
 * ------------------------------------------------------------------------------------------- */
#define RING 4096
typedef struct ring_s {
  _Alignas(64) atomic_size_t head;   /* written by the producer */
  _Alignas(64) atomic_size_t tail;   /* written by the consumer */
  _Alignas(64) void *slot[RING];
  long count;
  int consumer_cpu;
} ring_t;

static void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  if (rc != 0) {
    fprintf(stderr, "bench: cannot pin a thread to CPU %d: %s\n", cpu, strerror(rc));
    exit(2);
  }
}

static void *consumer(void *arg) {
  ring_t *ring = arg;
  pin_self(ring->consumer_cpu);
  size_t tail = 0;
  for (long n = 0; n < ring->count;) {
    size_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
    if (head == tail) {
      sched_yield();
      continue;
    }
    for (; tail != head; tail++, n++) B_FREE(ring->slot[tail % RING]);
    atomic_store_explicit(&ring->tail, tail, memory_order_release);
  }
  return NULL;
}

static void shape_prodcons(int one_cpu) {
  /* The first two CPUs the process may use; the producer goes back to all of them after. */
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    perror("sched_getaffinity");
    exit(2);
  }
  int cpus[2], ncpus = 0;
  for (int c = 0; c < CPU_SETSIZE && ncpus < 2; c++)
    if (CPU_ISSET(c, &allowed)) cpus[ncpus++] = c;
  const char *name = one_cpu ? "prodcons-1cpu" : "prodcons";
  if (ncpus < (one_cpu ? 1 : 2)) {
    fprintf(stderr, "bench: %s needs %d CPUs, the process may use %d: not run\n", name,
            one_cpu ? 1 : 2, ncpus);
    return;
  }
  long count = scaled(4 * 1000 * 1000);
  double best = 1e300;
  ring_t *ring = scratch(sizeof *ring);
  ring->consumer_cpu = one_cpu ? cpus[0] : cpus[1];
  pin_self(cpus[0]);
  for (int r = 0; r < g_reps; r++) {
    atomic_store(&ring->head, 0);
    atomic_store(&ring->tail, 0);
    ring->count = count;
    pthread_t t;
    double t0 = now_ns();
    if (pthread_create(&t, NULL, consumer, ring) != 0) exit(2);
    size_t head = 0;
    for (long n = 0; n < count; n++) {
      while (head - atomic_load_explicit(&ring->tail, memory_order_acquire) == RING) sched_yield();
      char *p = must(B_MALLOC(64 + (size_t)(n & 3) * 64));
      p[0] = (char)n;
      ring->slot[head % RING] = p;
      head++;
      if ((head & 31) == 0 || n == count - 1)
        atomic_store_explicit(&ring->head, head, memory_order_release);
    }
    pthread_join(t, NULL);
    double ns = (now_ns() - t0) / (double)count;
    if (ns < best) best = ns;
  }
  if (sched_setaffinity(0, sizeof allowed, &allowed) != 0) {
    perror("sched_setaffinity");
    exit(2);
  }
  munmap(ring, sizeof *ring);
  report(name, best, "ns/block");
}

/* ---------------------------------------------------------------------------------------------
 * RSS after a freed burst: 64 MiB of long-lived blocks, then a 512 MiB burst of mixed small
 * blocks freed in shuffled order, then one second with no allocator calls and a few calls after
 * it (allocators that purge only when called get their chance). Reports RSS above the start and
 * the live bytes requested.
 * ------------------------------------------------------------------------------------------- */
static void shape_burst(void) {
  size_t live_target = (size_t)((double)(64u << 20) * g_scale);
  size_t burst_target = (size_t)((double)(512u << 20) * g_scale);
  double rss0 = rss_mib();
  void *live = NULL;
  size_t live_bytes = 0;
  while (live_bytes < live_target) {
    size_t n = 16 * (1 + rnd() % 64);
    void **p = must(B_MALLOC(n));
    memset(p, 1, n);
    *p = live;
    live = p;
    live_bytes += n;
  }
  size_t cap = burst_target / 16 + 1;
  void **blocks = scratch(cap * sizeof *blocks);
  size_t count = 0, burst_bytes = 0;
  while (burst_bytes < burst_target) {
    size_t n = 16 * (1 + rnd() % 64);
    char *p = must(B_MALLOC(n));
    memset(p, 2, n);
    blocks[count++] = p;
    burst_bytes += n;
  }
  double rss_peak = rss_mib();
  for (size_t i = count - 1; i > 0; i--) {
    size_t j = rnd() % (i + 1);
    void *t = blocks[i];
    blocks[i] = blocks[j];
    blocks[j] = t;
  }
  for (size_t i = 0; i < count; i++) B_FREE(blocks[i]);
  munmap(blocks, cap * sizeof *blocks);
  usleep(1000 * 1000);
  for (int i = 0; i < 1000; i++) {
    void *p = must(B_MALLOC(64));
    ESCAPE(p);
    B_FREE(p);
  }
  usleep(200 * 1000);
  double rss = rss_mib();
  report("burst-peak-rss", rss_peak - rss0, "MiB");
  report("burst-rss", rss - rss0, "MiB");
  report("burst-live", (double)live_bytes / (1024.0 * 1024.0), "MiB");
  while (live != NULL) {
    void *next = *(void **)live;
    B_FREE(live);
    live = next;
  }
}

int main(int argc, char **argv) {
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) g_scale = atof(argv[++i]);
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) g_reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--scale F] [--reps N] [--only hot,batch,grow,prodcons,burst]\n",
              argv[0]);
      return 1;
    }
  }
  if (g_scale <= 0 || g_reps < 1) {
    fprintf(stderr, "bench: --scale must be > 0 and --reps >= 1\n");
    return 1;
  }
  B_INIT();
#define WANT(s) (only == NULL || strstr(only, s) != NULL)
  if (WANT("burst")) shape_burst();   /* first: the heap is still fresh */
  if (WANT("hot")) {
    static const size_t sizes[] = {16, 64, 256, 1024};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) shape_hot(sizes[i]);
  }
  if (WANT("batch")) shape_batch();
  if (WANT("grow")) {
    shape_grow(0);
    shape_grow(1);
    shape_grow(2);
    shape_grow_small();
  }
  if (WANT("prodcons")) {
    shape_prodcons(0);
    shape_prodcons(1);
  }
  return 0;
}
