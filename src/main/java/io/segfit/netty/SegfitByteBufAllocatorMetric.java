// SPDX-License-Identifier: Apache-2.0
package io.segfit.netty;

import io.netty.buffer.ByteBufAllocatorMetric;
import io.segfit.HeapStats;

/**
 * The figures of a {@link SegfitByteBufAllocator}, read when asked: Netty's two (the capacities
 * of the live buffers the allocator handed out, as Netty's own allocators count them) and the
 * heap's statistics.
 */
@SuppressWarnings("exports")   // Netty's types, from a module io.segfit requires static only
public final class SegfitByteBufAllocatorMetric implements ByteBufAllocatorMetric {
  private final SegfitByteBufAllocator allocator;

  SegfitByteBufAllocatorMetric(SegfitByteBufAllocator allocator) {
    this.allocator = allocator;
  }

  /** The sum of the capacities of the live direct buffers of this allocator. */
  @Override
  public long usedDirectMemory() {
    return allocator.usedDirectMemory();
  }

  /** The sum of the capacities of the live heap buffers of this allocator. */
  @Override
  public long usedHeapMemory() {
    return allocator.usedHeapMemory();
  }

  /**
   * A snapshot of the heap's own figures ({@link io.segfit.Heap#stats()}): live and committed
   * bytes of every user of the heap, memory given back to the OS, limit hits.
   *
   * @return the snapshot
   * @throws IllegalStateException if the heap is closed
   */
  public HeapStats heapStats() {
    return allocator.heap.stats();
  }

  @Override
  public String toString() {
    return "SegfitByteBufAllocatorMetric(usedDirectMemory: " + usedDirectMemory()
        + "; usedHeapMemory: " + usedHeapMemory() + "; heap: " + allocator.heap.name() + ")";
  }
}
