/* SPDX-License-Identifier: Apache-2.0 */
/* out-of-memory: running out of memory, and guard pages in debug mode.
 *
 * Out of memory comes in two kinds and both must leave the heap consistent and usable:
 * the heap's own limit (max_bytes: NULL, ENOMEM, SEGFIT_E_LIMIT) and the operating system
 * refusing address space (RLIMIT_AS in a forked child: NULL, ENOMEM, SEGFIT_E_OUT_OF_MEMORY).
 * In both, every block held keeps its contents, the statistics count exactly the blocks held,
 * a failed reallocation leaves its block live and unchanged, and after frees allocation works
 * again. A child whose address space is too small for even the segment map must get clean
 * failures (no heap, NOT_A_BLOCK for foreign frees), not a crash. The guard-page test runs an
 * overrun of a large debug-mode block in a forked child and checks the child died on the page
 * right after the block, not somewhere later, with segfit's report on stderr first.
 * Uses only the public API. Exit status 0 = pass; 77 is never used: skips are printed.
 */
#include "segfit.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testhelper.h"

static segfit_stats_t stats_of(segfit_heap_t *heap) {
  static segfit_stats_t s; /* large (per-class array); one thread */
  memset(&s, 0, sizeof s);
  CHECK_MSG(segfit_stats(heap, &s) == 0, "segfit_stats failed");
  return s;
}

/* A failed allocation: NULL, errno ENOMEM, and the expected last error. */
static void check_refused(void *p, int expected, const char *what) {
  int err = errno, last = segfit_last_error();
  CHECK_MSG(p == NULL, "%s: expected NULL", what);
  CHECK_MSG(err == ENOMEM, "%s: errno %d (%s), expected ENOMEM", what, err, strerror(err));
  CHECK_MSG(last == expected, "%s: last error %d (%s), expected %d (%s)", what, last,
            segfit_strerror(last), expected, segfit_strerror(expected));
}

/* ---------------------------------------------------------------------------------------------
 * The heap's own limit.
 * ------------------------------------------------------------------------------------------- */

static void test_limit(size_t block, const char *kind) {
  const uint64_t limit = 8u << 20;
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = "oom-limit";
  o.max_bytes = limit;
  o.purge_delay_ms = 0;
  segfit_heap_t *heap;
  CHECK_MSG(segfit_heap_create(&o, &heap) == 0, "create");

  size_t cap = (size_t)(2 * limit / (block < 16 ? 16 : block)) + 16;
  unsigned char **held = calloc(cap, sizeof *held);
  CHECK_MSG(held != NULL, "calloc");
  size_t n = 0;
  void *p;
  for (;;) {
    errno = 0;
    p = segfit_alloc(heap, block);
    if (p == NULL) break;
    CHECK_MSG(n < cap, "%s: %zu blocks of %zu bytes fit under a limit of %llu bytes", kind, n,
              block, (unsigned long long)limit);
    th_fill(p, block, n);
    held[n++] = p;
  }
  check_refused(p, SEGFIT_E_LIMIT, kind);
  CHECK_MSG(n > 0, "%s: not one block of %zu bytes under a %llu-byte limit", kind, block,
            (unsigned long long)limit);

  /* Every entry point refuses alike, and a failed reallocation keeps its block. */
  errno = 0;
  check_refused(segfit_alloc_zeroed(heap, block), SEGFIT_E_LIMIT, "alloc_zeroed at the limit");
  errno = 0;
  check_refused(segfit_alloc_aligned(heap, block, 4096), SEGFIT_E_LIMIT, "alloc_aligned at limit");
  errno = 0;
  check_refused(segfit_alloc(heap, (size_t)limit + 1), SEGFIT_E_LIMIT, "alloc above the limit");
  if (n > 0) {
    errno = 0;
    check_refused(segfit_realloc(heap, held[0], (size_t)limit), SEGFIT_E_LIMIT,
                  "realloc at the limit");
    CHECK_MSG(segfit_usable_size(heap, held[0]) >= (int64_t)block,
              "block lost by a failed realloc");
  }

  segfit_stats_t s = stats_of(heap);
  CHECK_MSG(s.live_blocks == n, "%s: live_blocks %llu, held %zu", kind,
            (unsigned long long)s.live_blocks, n);
  CHECK_MSG(s.live_bytes >= n * block && s.live_bytes <= limit,
            "%s: live_bytes %llu (held %zu x %zu)", kind, (unsigned long long)s.live_bytes, n,
            block);
  CHECK_MSG(s.committed_bytes <= limit, "%s: committed %llu above the limit %llu", kind,
            (unsigned long long)s.committed_bytes, (unsigned long long)limit);
  CHECK_MSG(s.limit_hits >= 5, "%s: limit_hits %llu, expected >= 5", kind,
            (unsigned long long)s.limit_hits);
  CHECK_MSG(s.max_bytes == limit, "%s: stats max_bytes %llu", kind,
            (unsigned long long)s.max_bytes);

  /* Free every other block: contents intact, then allocation works again. */
  size_t freed = 0;
  for (size_t i = 0; i < n; i += 2) {
    CHECK_MSG(th_intact(held[i], block, i), "%s: block %zu overwritten", kind, i);
    CHECK_MSG(segfit_free(heap, held[i]) == 0, "%s: free %zu", kind, i);
    held[i] = NULL;
    freed++;
  }
  segfit_trim(heap);
  for (size_t i = 0; i < n && freed > 0; i += 2, freed--) {
    held[i] = segfit_alloc(heap, block);
    CHECK_MSG(held[i] != NULL, "%s: allocation %zu after frees refused: %s", kind, i,
              segfit_strerror(segfit_last_error()));
    if (held[i]) th_fill(held[i], block, i);
  }
  for (size_t i = 0; i < n; i++) {
    if (!held[i]) continue;
    CHECK_MSG(th_intact(held[i], block, i), "%s: block %zu overwritten", kind, i);
    CHECK_MSG(segfit_free(heap, held[i]) == 0, "%s: free", kind);
  }
  s = stats_of(heap);
  CHECK_MSG(s.live_blocks == 0 && s.live_bytes == 0,
            "%s: %llu blocks / %llu bytes live after freeing all", kind,
            (unsigned long long)s.live_blocks, (unsigned long long)s.live_bytes);
  free(held);
  CHECK_MSG(segfit_heap_destroy(heap) == 0, "destroy");
  printf("limit (%s, %zu-byte blocks): %zu blocks fit under %llu bytes\n", kind, block, n,
         (unsigned long long)limit);
}

/* ---------------------------------------------------------------------------------------------
 * The OS out of address space: RLIMIT_AS in a forked child.
 * ------------------------------------------------------------------------------------------- */

enum { CHILD_SKIP = 42 };

/* In a child: leaves `room` bytes of address space above what is mapped now (RLIMIT_AS), or
   exits with CHILD_SKIP where the limit is not enforced (qemu-user accepts it, ignores it). */
static void limit_address_space(size_t room) {
  struct rlimit rl = {th_vm_size() + room, 0};
  CHECK_MSG(rl.rlim_cur > room, "VmSize unreadable");
  rl.rlim_max = rl.rlim_cur;
  CHECK_MSG(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit: %s", strerror(errno));
  void *probe = mmap(NULL, (size_t)1 << 30, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
  if (probe != MAP_FAILED) {
    munmap(probe, (size_t)1 << 30);
    printf("skip: RLIMIT_AS is not enforced here (qemu-user?)\n");
    fflush(stdout);
    _exit(CHILD_SKIP);
  }
}

static void oom_child(void) {
  const size_t small = segfit_small_max() / 2 > 16384 ? 16384 : segfit_small_max() / 2;
  const size_t large = segfit_small_max() * 2;
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = "oom-os";
  o.purge_delay_ms = 0;
  segfit_heap_t *heap;
  CHECK_MSG(segfit_heap_create(&o, &heap) == 0, "create");
  const size_t cap = (size_t)1 << 20; /* up to 16 GiB of 16 KiB blocks: the limit must bite first */
  unsigned char **held = calloc(cap, sizeof *held);
  CHECK_MSG(held != NULL, "calloc");
  /* Warm up every path once, then leave 160 MiB of address space (a segment mapping may be
   * over-reserved for alignment). */
  void *w = segfit_alloc(heap, small), *wl = segfit_alloc(heap, large);
  CHECK_MSG(w && wl, "warm-up allocation");
  segfit_free(heap, w);
  segfit_free(heap, wl);
  limit_address_space((size_t)160 << 20);

  /* Slab blocks first (a new segment now and then), then large blocks (a mapping each) in the
   * address space too small for another segment; after that neither fits. */
  size_t n = 0;
  void *p;
  for (;;) {
    errno = 0;
    p = segfit_alloc(heap, small);
    if (p == NULL) break;
    CHECK_MSG(n < cap, "RLIMIT_AS never refused (%zu blocks of %zu bytes)", n, small);
    th_fill(p, 64, n); /* touch one page of each, keep RSS modest */
    held[n++] = p;
  }
  check_refused(p, SEGFIT_E_OUT_OF_MEMORY, "small alloc out of address space");
  const size_t n_small = n;
  for (;;) {
    errno = 0;
    p = segfit_alloc(heap, large);
    if (p == NULL) break;
    CHECK_MSG(n < cap, "RLIMIT_AS never refused (%zu blocks of %zu bytes)", n, large);
    th_fill(p, 64, n);
    held[n++] = p;
  }
  check_refused(p, SEGFIT_E_OUT_OF_MEMORY, "large alloc out of address space");
  CHECK_MSG(n_small > 0, "no slab block in 160 MiB of address space");
  printf("rlimit: %zu slab + %zu large blocks before the OS refused\n", n_small, n - n_small);

  /* Repeated refusals, through every entry point, change nothing. */
  for (int i = 0; i < 3; i++) {
    errno = 0;
    check_refused(segfit_alloc(heap, small), SEGFIT_E_OUT_OF_MEMORY, "small alloc again");
    errno = 0;
    check_refused(segfit_alloc(heap, large), SEGFIT_E_OUT_OF_MEMORY, "large alloc again");
    errno = 0;
    check_refused(segfit_alloc_zeroed(heap, large), SEGFIT_E_OUT_OF_MEMORY, "large zeroed alloc");
    errno = 0;
    check_refused(segfit_alloc_aligned(heap, large, (size_t)1 << 20), SEGFIT_E_OUT_OF_MEMORY,
                  "aligned alloc");
  }
  errno = 0;
  check_refused(segfit_realloc(heap, held[0], large), SEGFIT_E_OUT_OF_MEMORY,
                "realloc of a slab block out of address space");
  CHECK_MSG(segfit_usable_size(heap, held[0]) >= (int64_t)small, "block lost by a failed realloc");
  CHECK_MSG(th_intact(held[0], 64, 0), "block changed by a failed realloc");
  if (n > n_small) {
    errno = 0;
    check_refused(segfit_realloc(heap, held[n - 1], (size_t)256 << 20), SEGFIT_E_OUT_OF_MEMORY,
                  "realloc of a large block out of address space");
    CHECK_MSG(segfit_usable_size(heap, held[n - 1]) >= (int64_t)large,
              "block lost by a failed realloc");
    CHECK_MSG(th_intact(held[n - 1], 64, n - 1), "block changed by a failed realloc");
  }

  segfit_stats_t s = stats_of(heap);
  CHECK_MSG(s.live_blocks == n, "live_blocks %llu, held %zu", (unsigned long long)s.live_blocks, n);
  CHECK_MSG(s.live_bytes >= n_small * small + (n - n_small) * large, "live_bytes %llu",
            (unsigned long long)s.live_bytes);

  /* Free half of the slab blocks: the room comes back at once. */
  size_t again = 0, freed = 0;
  for (size_t i = 0; i < n_small; i += 2) {
    CHECK_MSG(th_intact(held[i], 64, i), "block %zu overwritten", i);
    CHECK_MSG(segfit_free(heap, held[i]) == 0, "free %zu", i);
    held[i] = NULL;
    freed++;
  }
  for (size_t i = 0; i < n_small; i += 2) {
    held[i] = segfit_alloc(heap, small);
    if (!held[i]) break;
    th_fill(held[i], 64, i);
    again++;
  }
  CHECK_MSG(again == freed, "after freeing %zu blocks only %zu could be allocated again", freed,
            again);
  /* Free a large block: its address space comes back at once. */
  if (n > n_small) {
    CHECK_MSG(th_intact(held[n - 1], 64, n - 1), "block %zu overwritten", n - 1);
    CHECK_MSG(segfit_free(heap, held[n - 1]) == 0, "free large");
    held[n - 1] = segfit_alloc(heap, large);
    CHECK_MSG(held[n - 1] != NULL, "a large block after freeing one refused: %s",
              segfit_strerror(segfit_last_error()));
    if (held[n - 1]) th_fill(held[n - 1], 64, n - 1);
  }
  /* Free all and trim: empty segments go back, so even a new mapping fits again. */
  for (size_t i = 0; i < n; i++) {
    if (!held[i]) continue;
    CHECK_MSG(th_intact(held[i], 64, i), "block %zu overwritten", i);
    CHECK_MSG(segfit_free(heap, held[i]) == 0, "free %zu", i);
  }
  s = stats_of(heap);
  CHECK_MSG(s.live_blocks == 0 && s.live_bytes == 0,
            "%llu blocks / %llu bytes live after freeing all", (unsigned long long)s.live_blocks,
            (unsigned long long)s.live_bytes);
  segfit_trim(heap);
  void *big = segfit_alloc(heap, (size_t)64 << 20);
  CHECK_MSG(big != NULL, "64 MiB allocation after freeing all and trim refused: %s",
            segfit_strerror(segfit_last_error()));
  if (big) {
    memset(big, 0x5a, (size_t)64 << 20);
    CHECK_MSG(segfit_free(heap, big) == 0, "free big");
  }
  CHECK_MSG(segfit_heap_destroy(heap) == 0, "destroy");
  printf("rlimit: %zu of %zu slab blocks allocated again after frees; 64 MiB after trim\n", again,
         freed);
  fflush(stdout);
  _exit(0);
}

static int run_child(void (*fn)(void), const char *name) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  CHECK_MSG(pid >= 0, "fork");
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int status;
  CHECK_MSG(waitpid(pid, &status, 0) == pid, "waitpid");
  if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP) return 0;
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child %s %d", name,
            WIFSIGNALED(status) ? "killed by signal" : "exited with",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  return 1;
}

/* The OS refuses even the segment map (64 MiB of address space, reserved at the first call):
 * segfit cannot allocate, but every call must fail cleanly -- a heap cannot be created, frees
 * of foreign pointers say NOT_A_BLOCK -- and nothing may read outside what was mapped. Runs
 * in a fresh child before segfit's first call. */
static void no_map_child(void) {
  limit_address_space((size_t)16 << 20);
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = "no-map";
  segfit_heap_t *heap = NULL;
  CHECK_MSG(segfit_heap_create(&o, &heap) == SEGFIT_E_OUT_OF_MEMORY && heap == NULL,
            "a heap was created without a segment map");
  int local = 0;
  void *foreign[] = {&local, &o, (void *)&no_map_child, (void *)((uintptr_t)1 << 46)};
  for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
    CHECK_MSG(segfit_free(NULL, foreign[i]) == SEGFIT_E_NOT_A_BLOCK, "free of a foreign pointer");
    CHECK_MSG(segfit_usable_size(NULL, foreign[i]) == SEGFIT_E_NOT_A_BLOCK, "usable size");
  }
  errno = 0;
  CHECK_MSG(segfit_alloc(NULL, 16) == NULL && errno == ENOMEM, "allocation without a map");
  printf("no segment map: heap creation refused, foreign frees rejected\n");
}

/* ---------------------------------------------------------------------------------------------
 * Debug mode: a guard page right after a large block.
 * ------------------------------------------------------------------------------------------- */

static int progress_fd = -1;

/* Writes bytes past the end of a large block, one stride at a time, reporting each offset to
 * the parent before writing it. The guard page must stop it, and segfit's SIGSEGV hook must
 * say so on stderr before the default action ends the child. */
static void guard_child(void) {
  /* Sanitizer runtimes catch SIGSEGV themselves; the parent wants the plain signal. Reset it
     before the first debug block installs segfit's hook, which then chains to the default. */
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = "guarded";
  o.debug = 1;
  segfit_heap_t *heap;
  CHECK_MSG(segfit_heap_create(&o, &heap) == 0, "create");
  const size_t size = segfit_small_max() + 100; /* large, and not a multiple of a page */
  unsigned char *p = segfit_alloc(heap, size);
  CHECK_MSG(p != NULL, "alloc");
  int64_t usable = segfit_usable_size(heap, p);
  CHECK_MSG(usable >= (int64_t)size, "usable size %lld", (long long)usable);
  memset(p, 0x11, size); /* in bounds: fine */
  const size_t page = segfit_page_size();
  /* First record: where the block's last page ends, as an offset from the block. */
  const uintptr_t start = (uintptr_t)p;
  int64_t page_end = (int64_t)((start + size + page - 1) / page * page - start);
  if (write(progress_fd, &page_end, sizeof page_end) != sizeof page_end) _exit(3);
  const size_t end = (size_t)page_end + 2 * page;
  for (size_t off = size; off < end; off += 8) {
    int64_t rec = (int64_t)off;
    if (write(progress_fd, &rec, sizeof rec) != sizeof rec) _exit(3);
    ((volatile unsigned char *)p)[off] = 0xEE;
  }
  _exit(0); /* survived two pages of overrun: no guard page */
}

static void test_guard_page(void) {
  int fds[2], err[2];
  CHECK_MSG(pipe(fds) == 0 && pipe(err) == 0, "pipe");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  CHECK_MSG(pid >= 0, "fork");
  if (pid == 0) {
    close(fds[0]);
    close(err[0]);
    dup2(err[1], STDERR_FILENO);
    progress_fd = fds[1];
    guard_child();
  }
  close(fds[1]);
  close(err[1]);
  int64_t page_end = -1, last = -1, rec;
  if (read(fds[0], &page_end, sizeof page_end) == sizeof page_end)
    while (read(fds[0], &rec, sizeof rec) == sizeof rec) last = rec;
  close(fds[0]);
  char report[4096];
  size_t got = 0;
  for (ssize_t n; got < sizeof report - 1 && (n = read(err[0], report + got, sizeof report - 1 - got)) > 0;)
    got += (size_t)n;
  report[got] = '\0';
  close(err[0]);
  int status;
  CHECK_MSG(waitpid(pid, &status, 0) == pid, "waitpid");
  const size_t size = segfit_small_max() + 100, page = segfit_page_size();
  CHECK_MSG(WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS),
            "an overrun of a large debug block was not stopped (child %s %d, last offset %lld)",
            WIFSIGNALED(status) ? "killed by signal" : "exited with",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), (long long)last);
  /* The fault must come from the page right after the block: not inside it, not later. */
  CHECK_MSG(last >= (int64_t)size && last < page_end + (int64_t)page,
            "fault at offset %lld of a %zu-byte block (its pages end at offset %lld, page %zu)",
            (long long)last, size, (long long)page_end, page);
  /* segfit's own report: the heap, the offset of the faulting byte, "past its end". Only x86_64
     tells a write from a read in the signal context (elsewhere the report says "access"). */
  char want[128];
  snprintf(want, sizeof want, "segfit: heap 'guarded': %s at offset %lld of the large block",
#if defined(__x86_64__)
           "write",
#else
           "access",
#endif
           (long long)last);
  CHECK_MSG(strstr(report, want) != NULL && strstr(report, "past its end") != NULL,
            "no guard-page report \"%s...\" on the child's stderr:\n%s", want, report);
  printf("guard page: overrun of a %zu-byte block stopped at offset %lld by signal %d\n", size,
         (long long)last, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  printf("guard page report: %s", report);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (SANITIZED)
    printf("skip: no-map test (sanitizer runtimes reserve terabytes of address space)\n");
  else
    run_child(no_map_child, "no segment map");   /* first: before this process calls segfit */
  test_limit(64, "small");
  test_limit(16384 < segfit_small_max() ? 16384 : segfit_small_max(), "slab");
  test_limit(segfit_small_max() + 1, "large");
  if (SANITIZED)
    printf("skip: RLIMIT_AS test (sanitizer runtimes reserve terabytes of address space)\n");
  else
    run_child(oom_child, "rlimit");
  test_guard_page();
  printf("test-oom: all checks passed\n");
  return 0;
}
