// SPDX-License-Identifier: Apache-2.0
package io.segfit;

/**
 * Figures of one size class of a heap, or of its large blocks (those above the largest size
 * class, each with a mapping of its own): part of an immutable {@link HeapStats} snapshot.
 * Instances are immutable and thread-safe.
 */
public final class SizeClassStats {
  private final long blockSize;
  private final long liveBlocks;
  private final long liveBytes;
  private final long allocations;
  private final long frees;
  private final long slabs;

  SizeClassStats(long blockSize, long liveBlocks, long liveBytes, long allocations, long frees,
      long slabs) {
    this.blockSize = blockSize;
    this.liveBlocks = liveBlocks;
    this.liveBytes = liveBytes;
    this.allocations = allocations;
    this.frees = frees;
    this.slabs = slabs;
  }

  /** True for the large-block figures (no size class; {@link #blockSize()} is 0). */
  public boolean isLarge() {
    return blockSize == 0;
  }

  /**
   * The size of each block of the class, in bytes (in debug mode the usable size plus the
   * canary); 0 for large blocks.
   */
  public long blockSize() {
    return blockSize;
  }

  /** Blocks allocated and not yet freed. */
  public long liveBlocks() {
    return liveBlocks;
  }

  /** Usable bytes of the live blocks (for large blocks: their mapped sizes). */
  public long liveBytes() {
    return liveBytes;
  }

  /** Allocations so far, including those made by reallocation. */
  public long allocations() {
    return allocations;
  }

  /** Frees so far, including those made by reallocation. */
  public long frees() {
    return frees;
  }

  /** Slabs currently holding blocks of this class (0 for large blocks). */
  public long slabs() {
    return slabs;
  }

  @Override
  public String toString() {
    return (isLarge() ? "large" : blockSize + " B") + ": live " + liveBlocks + " blocks / "
        + liveBytes + " B, allocations " + allocations + ", frees " + frees + ", slabs " + slabs;
  }
}
