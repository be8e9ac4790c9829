/* SPDX-License-Identifier: Apache-2.0 */
/* max-map-count: vm.max_map_count, the kernel's limit on a process's mappings (65,530 by
 * default), must neither refuse allocations nor leak mappings.
 *
 * 140,000 large blocks (one mapping each; neighbours merge into a few mappings), then every
 * other one freed: the survivors can no longer merge, the process reaches the limit, and each
 * further munmap, which must split a mapping, is refused (ENOMEM). segfit keeps those ranges
 * (released with MADV_DONTNEED, so they hold no memory) and unmaps them once the OS agrees.
 * Checks: no allocation refused, every free accepted, the blocks' contents kept; with the
 * survivors freed too and a trim, nothing live, nothing committed, no range left pending, and
 * the process back to about the mappings it had before. Before segfit kept refused ranges, the
 * test ended with some 4,500 leaked mappings of 1 MiB that its statistics did not show.
 * Uses internals (the pending table) through internal.h.
 */
#include <errno.h>
#include <string.h>

#include "testhelper.h"

static long max_map_count(void) {
  FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
  long v = -1;
  if (f != NULL) {
    if (fscanf(f, "%ld", &v) != 1) v = -1;
    fclose(f);
  }
  return v;
}

int main(void) {
  if (SANITIZED) {   /* their runtimes map memory of their own, and die at the limit */
    printf("skip: max-map-count runs the process out of mappings\n");
    return 0;
  }
  const long blocks = 140000;
  const size_t size = segfit_small_max() + 1;   /* the smallest large block: a page more */
  long limit = max_map_count();
  segfit_options_t o;
  segfit_options_init(&o);
  o.name = "max-map-count";
  segfit_heap_t *heap;
  CHECK(segfit_heap_create(&o, &heap) == 0);
  long maps_before = th_maps();
  CHECK(maps_before > 0);
  unsigned char **p = calloc((size_t)blocks, sizeof *p);
  CHECK(p != NULL);
  for (long i = 0; i < blocks; i++) {
    p[i] = segfit_alloc(heap, size);
    CHECK_MSG(p[i] != NULL, "block %ld of %ld refused: %s", i, blocks,
              segfit_strerror(segfit_last_error()));
    p[i][0] = (unsigned char)i;   /* one page each: 140,000 pages of memory, not 140 GiB */
  }
  long maps_full = th_maps();
  for (long i = 0; i < blocks; i += 2) CHECK_MSG(segfit_free(heap, p[i]) == 0, "free %ld", i);
  long maps_split = th_maps();
  size_t pending_bytes;
  uint64_t lost;
  size_t pending = _sf_os_unmap_pending(&pending_bytes, &lost);
  printf("vm.max_map_count %ld: %ld mappings before, %ld with %ld blocks, %ld with every other "
         "freed; %zu ranges (%.0f MiB) refused by munmap and kept\n",
         limit, maps_before, maps_full, blocks, maps_split, pending,
         (double)pending_bytes / MiB);
  CHECK_MSG(lost == 0, "%llu bytes of refused ranges not kept", (unsigned long long)lost);
  /* At the default limit the half-freed blocks need more mappings than allowed: the refusals
     are real here, not injected. */
  if (limit > 0 && limit < blocks / 2) CHECK_MSG(pending > 0, "no munmap was refused");
  segfit_stats_t st;
  th_stats(heap, &st);
  CHECK(st.live_blocks == (uint64_t)blocks / 2);
  for (long i = 1; i < blocks; i += 2) {
    CHECK_MSG(p[i][0] == (unsigned char)i, "block %ld changed", i);
    CHECK_MSG(segfit_free(heap, p[i]) == 0, "free %ld", i);
  }
  segfit_trim(heap);
  th_stats(heap, &st);
  pending = _sf_os_unmap_pending(&pending_bytes, &lost);
  long maps_after = th_maps();
  printf("all freed and trimmed: live %llu, committed %llu, pending %zu, %ld mappings\n",
         (unsigned long long)st.live_blocks, (unsigned long long)st.committed_bytes, pending,
         maps_after);
  CHECK(st.live_blocks == 0 && st.live_bytes == 0 && st.large_blocks == 0);
  CHECK(st.committed_bytes == 0);
  CHECK_MSG(pending == 0 && lost == 0, "%zu ranges still pending, %llu bytes lost", pending,
            (unsigned long long)lost);
  /* A few more than before at most: the large-block table's mapping and the like. */
  CHECK_MSG(maps_after <= maps_before + 8, "%ld mappings left, %ld before", maps_after,
            maps_before);
  CHECK(segfit_heap_destroy(heap) == 0);
  free(p);
  printf("max-map-count: ok\n");
  return 0;
}
