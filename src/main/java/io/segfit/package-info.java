// SPDX-License-Identifier: Apache-2.0
/**
 * segfit: an off-heap allocator for latency-sensitive services, with explicit free, over a
 * native segregated-fit slab allocator on Linux {@code mmap}/{@code mremap}/{@code madvise}.
 *
 * <p>Start with {@link io.segfit.Heap#defaultHeap()} or {@link io.segfit.Heap#builder()};
 * {@link io.segfit.Segfit#isAvailable()} tells whether the platform is supported. Figures come
 * as {@link io.segfit.HeapStats} snapshots and through a {@link io.segfit.HeapMXBean} per heap;
 * {@link io.segfit.LeakDetection} reports buffers dropped without being freed.
 */
package io.segfit;
