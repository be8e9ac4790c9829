// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import io.segfit.internal.Figure;
import io.segfit.internal.Figure.Kind;
import io.segfit.internal.NativeHeap;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * An immutable snapshot of a heap's figures, taken by {@link Heap#stats()}. Counters only grow
 * over a heap's life; gauges describe the moment of the snapshot. Sizes are in bytes. Figures
 * are read without stopping other threads, so a snapshot taken while they allocate is
 * consistent per counter, not across counters. Instances are thread-safe.
 */
public final class HeapStats {
  private final String heapName;
  private final long[] v;
  private final List<SizeClassStats> sizeClasses;
  private final SizeClassStats large;
  private final long leaksReported;

  HeapStats(String heapName, long[] raw, long leaksReported) {
    this.heapName = heapName;
    this.v = raw.clone();
    this.leaksReported = leaksReported;
    int count = (int) raw[NativeHeap.STAT_CLASS_COUNT];
    List<SizeClassStats> classes = new ArrayList<>(count);
    for (int i = 0; i < count; i++) classes.add(record(raw, i));
    this.sizeClasses = Collections.unmodifiableList(classes);
    this.large = record(raw, count);
  }

  private static SizeClassStats record(long[] raw, int index) {
    int at = NativeHeap.STAT_HEADER + index * NativeHeap.CLASS_FIELDS;
    return new SizeClassStats(raw[at + NativeHeap.CLASS_BLOCK_SIZE],
        raw[at + NativeHeap.CLASS_LIVE_BLOCKS], raw[at + NativeHeap.CLASS_LIVE_BYTES],
        raw[at + NativeHeap.CLASS_ALLOCS], raw[at + NativeHeap.CLASS_FREES],
        raw[at + NativeHeap.CLASS_SLABS]);
  }

  /** The heap's name. */
  public String heapName() {
    return heapName;
  }

  /**
   * Gauge: bytes of the blocks allocated and not yet freed, each counted at its size class's
   * block size (at least the requested size; in debug mode the canary is included).
   */
  @Figure(kind = Kind.GAUGE, name = "live", unit = "bytes",
      description = "bytes of the live blocks, each at its size class's block size")
  public long liveBytes() {
    return v[NativeHeap.STAT_LIVE_BYTES];
  }

  /** Gauge: blocks allocated and not yet freed. */
  @Figure(kind = Kind.GAUGE, name = "live.blocks", unit = "blocks",
      description = "blocks allocated and not yet freed")
  public long liveBlocks() {
    return v[NativeHeap.STAT_LIVE_BLOCKS];
  }

  /** Counter: allocations, including those made by reallocation. */
  @Figure(kind = Kind.COUNTER, name = "allocations",
      description = "allocations, including those made by reallocation")
  public long allocations() {
    return v[NativeHeap.STAT_ALLOCS];
  }

  /** Counter: frees, including those made by reallocation. */
  @Figure(kind = Kind.COUNTER, name = "frees",
      description = "frees, including those made by reallocation")
  public long frees() {
    return v[NativeHeap.STAT_FREES];
  }

  /** Counter: reallocations that kept the block where it was (same size class). */
  @Figure(kind = Kind.COUNTER, name = "reallocations", tags = {"kind", "in_place"},
      description = "reallocations, by kind: in_place, moved (copied), remapped (mremap)")
  public long reallocationsInPlace() {
    return v[NativeHeap.STAT_REALLOCS_IN_PLACE];
  }

  /** Counter: reallocations that moved the block by copying it. */
  @Figure(kind = Kind.COUNTER, name = "reallocations", tags = {"kind", "moved"},
      description = "reallocations, by kind: in_place, moved (copied), remapped (mremap)")
  public long reallocationsMoved() {
    return v[NativeHeap.STAT_REALLOCS_MOVED];
  }

  /** Counter: reallocations of large blocks done by {@code mremap}, without copying. */
  @Figure(kind = Kind.COUNTER, name = "reallocations", tags = {"kind", "remapped"},
      description = "reallocations, by kind: in_place, moved (copied), remapped (mremap)")
  public long reallocationsRemapped() {
    return v[NativeHeap.STAT_REALLOCS_REMAPPED];
  }

  /** Counter: frees made by a thread other than the one owning the block's slab. */
  @Figure(kind = Kind.COUNTER, name = "remote.frees",
      description = "frees made by a thread other than the one owning the block's slab")
  public long remoteFrees() {
    return v[NativeHeap.STAT_REMOTE_FREES];
  }

  /** Gauge: address space reserved by the heap. */
  @Figure(kind = Kind.GAUGE, name = "reserved", unit = "bytes",
      description = "address space reserved by the heap")
  public long reservedBytes() {
    return v[NativeHeap.STAT_RESERVED_BYTES];
  }

  /** Gauge: memory backing the reserved address space (what counts against the limit). */
  @Figure(kind = Kind.GAUGE, name = "committed", unit = "bytes",
      description = "memory backing the reserved address space (what counts against the limit)")
  public long committedBytes() {
    return v[NativeHeap.STAT_COMMITTED_BYTES];
  }

  /** Gauge: segments the heap holds. */
  @Figure(kind = Kind.GAUGE, name = "segments", unit = "segments",
      description = "segments the heap holds")
  public long segments() {
    return v[NativeHeap.STAT_SEGMENTS];
  }

  /** Gauge: slabs the heap holds. */
  @Figure(kind = Kind.GAUGE, name = "slabs", unit = "slabs", description = "slabs the heap holds")
  public long slabs() {
    return v[NativeHeap.STAT_SLABS];
  }

  /** Gauge: live large blocks. */
  @Figure(kind = Kind.GAUGE, name = "large.blocks", unit = "blocks",
      description = "live large blocks (each with a mapping of its own)")
  public long largeBlocks() {
    return v[NativeHeap.STAT_LARGE_BLOCKS];
  }

  /** Gauge: bytes mapped for live large blocks. */
  @Figure(kind = Kind.GAUGE, name = "large", unit = "bytes",
      description = "bytes mapped for live large blocks")
  public long largeBytes() {
    return v[NativeHeap.STAT_LARGE_BYTES];
  }

  /** Counter: purges, each returning the memory of empty slabs to the OS. */
  @Figure(kind = Kind.COUNTER, name = "purges",
      description = "purges, each returning the memory of empty slabs to the OS")
  public long purges() {
    return v[NativeHeap.STAT_PURGES];
  }

  /** Counter: bytes returned to the OS by purges. */
  @Figure(kind = Kind.COUNTER, name = "purged", unit = "bytes",
      description = "bytes returned to the OS by purges")
  public long purgedBytes() {
    return v[NativeHeap.STAT_PURGED_BYTES];
  }

  /** Counter: slabs abandoned by exiting threads. */
  @Figure(kind = Kind.COUNTER, name = "abandoned.slabs", unit = "slabs",
      description = "slabs abandoned by exiting threads")
  public long abandonedSlabs() {
    return v[NativeHeap.STAT_ABANDONED_SLABS];
  }

  /** Counter: abandoned slabs adopted by other threads. */
  @Figure(kind = Kind.COUNTER, name = "adopted.slabs", unit = "slabs",
      description = "abandoned slabs adopted by other threads")
  public long adoptedSlabs() {
    return v[NativeHeap.STAT_ADOPTED_SLABS];
  }

  /** Counter: allocations refused because of the heap's limit. */
  @Figure(kind = Kind.COUNTER, name = "limit.hits",
      description = "allocations refused because of the heap's limit")
  public long limitHits() {
    return v[NativeHeap.STAT_LIMIT_HITS];
  }

  /**
   * Counter: requests that would have crossed the heap's limit and first gave the memory the
   * heap held unused (empty slabs of every thread, freed large mappings kept for reuse) back to
   * the operating system. Each is followed by one more try: a success, or a {@link #limitHits()
   * limit hit}.
   */
  @Figure(kind = Kind.COUNTER, name = "limit.reclaims",
      description = "requests at the limit that first returned the heap's unused memory to the OS")
  public long limitReclaims() {
    return v[NativeHeap.STAT_LIMIT_RECLAIMS];
  }

  /** Counter: committed bytes those {@link #limitReclaims() reclaims} returned. */
  @Figure(kind = Kind.COUNTER, name = "limit.reclaimed", unit = "bytes",
      description = "committed bytes returned by limit reclaims")
  public long limitReclaimedBytes() {
    return v[NativeHeap.STAT_LIMIT_RECLAIMED_BYTES];
  }

  /** The heap's limit, 0 when it has none. */
  @Figure(kind = Kind.GAUGE, name = "limit", unit = "bytes",
      description = "the heap's limit, 0 when it has none")
  public long maxBytes() {
    return v[NativeHeap.STAT_MAX_BYTES];
  }

  /** Counter: leaks reported by the heap's leak detection (see {@link LeakDetection}). */
  @Figure(kind = Kind.COUNTER, name = "leaks",
      description = "leaks reported by the heap's leak detection")
  public long leaksReported() {
    return leaksReported;
  }

  /** Per-size-class figures, smallest class first (unmodifiable). */
  public List<SizeClassStats> sizeClasses() {
    return sizeClasses;
  }

  /** Figures of the large blocks. */
  public SizeClassStats large() {
    return large;
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder();
    sb.append("HeapStats[").append(heapName).append("]\n")
        .append("  live        ").append(bytes(liveBytes())).append(" in ").append(liveBlocks())
        .append(" blocks (large: ").append(largeBlocks()).append(" blocks, ")
        .append(bytes(largeBytes())).append(")\n")
        .append("  memory      committed ").append(bytes(committedBytes())).append(", reserved ")
        .append(bytes(reservedBytes())).append(", limit ")
        .append(maxBytes() == 0 ? "none" : bytes(maxBytes())).append(", ").append(segments())
        .append(" segments, ").append(slabs()).append(" slabs\n")
        .append("  operations  ").append(allocations()).append(" allocations, ").append(frees())
        .append(" frees (").append(remoteFrees()).append(" remote), reallocations ")
        .append(reallocationsInPlace()).append(" in place / ").append(reallocationsMoved())
        .append(" moved / ").append(reallocationsRemapped()).append(" remapped\n")
        .append("  returned    ").append(purges()).append(" purges, ").append(bytes(purgedBytes()))
        .append("; slabs abandoned ").append(abandonedSlabs()).append(", adopted ")
        .append(adoptedSlabs()).append("; limit hits ").append(limitHits())
        .append(", reclaims ").append(limitReclaims()).append(" (")
        .append(bytes(limitReclaimedBytes())).append(")")
        .append("; leaks reported ").append(leaksReported).append('\n');
    for (SizeClassStats c : sizeClasses) {
      if (c.allocations() != 0 || c.liveBlocks() != 0) sb.append("  class ").append(c).append('\n');
    }
    if (large.allocations() != 0 || large.liveBlocks() != 0) {
      sb.append("  class ").append(large).append('\n');
    }
    return sb.toString();
  }

  private static String bytes(long n) {
    if (n < 1024) return n + " B";
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double d = n;
    int u = -1;
    while (d >= 1024 && u < units.length - 1) {
      d /= 1024;
      u++;
    }
    return String.format(java.util.Locale.ROOT, "%.1f %s", d, units[u]);
  }
}
