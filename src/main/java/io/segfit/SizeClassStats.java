// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import io.segfit.internal.Stats;

/**
 * Figures of one size class of a heap, or of its large blocks (those above the largest size
 * class, each with a mapping of its own): part of an immutable {@link HeapStats} snapshot.
 * Instances are immutable and thread-safe.
 */
public final class SizeClassStats {
  private final long[] v;
  private final int at;

  /** The record at index at of a snapshot's array, which nobody writes any more. */
  SizeClassStats(long[] snapshot, int at) {
    this.v = snapshot;
    this.at = at;
  }

  /** The figure of segfit.h's SEGFIT_CLASS_STATS named field. */
  private long get(String field) {
    return v[at + Stats.classIndex(field)];
  }

  /** True for the large-block figures (no size class; {@link #blockSize()} is 0). */
  public boolean isLarge() {
    return blockSize() == 0;
  }

  /**
   * The size of each block of the class, in bytes (in debug mode the usable size plus the
   * canary); 0 for large blocks.
   */
  public long blockSize() {
    return get("block_size");
  }

  /** Blocks allocated and not yet freed. */
  public long liveBlocks() {
    return get("live_blocks");
  }

  /** Usable bytes of the live blocks (for large blocks: their mapped sizes). */
  public long liveBytes() {
    return get("live_bytes");
  }

  /** Allocations so far, including those made by reallocation. */
  public long allocations() {
    return get("allocs");
  }

  /** Frees so far, including those made by reallocation. */
  public long frees() {
    return get("frees");
  }

  /** Slabs currently holding blocks of this class (0 for large blocks). */
  public long slabs() {
    return get("slabs");
  }

  @Override
  public String toString() {
    return (isLarge() ? "large" : blockSize() + " B") + ": live " + liveBlocks() + " blocks / "
        + liveBytes() + " B, allocations " + allocations() + ", frees " + frees() + ", slabs "
        + slabs();
  }
}
