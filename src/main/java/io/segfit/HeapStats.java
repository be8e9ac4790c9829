// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import io.segfit.internal.Stats;
import java.util.ArrayList;
import java.util.Arrays;
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

  /** raw: as NativeHeap.stats filled it (see Stats); the facade's figures are put in here. */
  HeapStats(String heapName, long[] raw, long leaksReported) {
    this.heapName = heapName;
    this.v = Arrays.copyOf(raw, Stats.LENGTH);
    v[Stats.LEAKS_REPORTED] = leaksReported;
    int count = (int) v[Stats.CLASS_COUNT];
    List<SizeClassStats> classes = new ArrayList<>(count);
    for (int i = 0; i < count; i++) classes.add(new SizeClassStats(v, Stats.record(i)));
    this.sizeClasses = Collections.unmodifiableList(classes);
    this.large = new SizeClassStats(v, Stats.record(count));
  }

  /** The figure of segfit.h's SEGFIT_STATS (or of the facade) named field. */
  private long get(String field) {
    return v[Stats.index(field)];
  }

  /** The heap's name. */
  public String heapName() {
    return heapName;
  }

  /**
   * Gauge: bytes of the blocks allocated and not yet freed, each counted at its size class's
   * block size (at least the requested size; in debug mode the canary is included).
   */
  public long liveBytes() {
    return get("live_bytes");
  }

  /** Gauge: blocks allocated and not yet freed. */
  public long liveBlocks() {
    return get("live_blocks");
  }

  /** Counter: allocations, including those made by reallocation. */
  public long allocations() {
    return get("allocs");
  }

  /** Counter: frees, including those made by reallocation. */
  public long frees() {
    return get("frees");
  }

  /**
   * Counter: reallocations that kept the block where it was (same size class, or a large block
   * grown into kept memory after it).
   */
  public long reallocationsInPlace() {
    return get("reallocs_in_place");
  }

  /** Counter: reallocations that moved the block by copying it. */
  public long reallocationsMoved() {
    return get("reallocs_moved");
  }

  /** Counter: reallocations of large blocks done by {@code mremap}, without copying. */
  public long reallocationsRemapped() {
    return get("reallocs_remapped");
  }

  /** Counter: frees made by a thread other than the one owning the block's slab. */
  public long remoteFrees() {
    return get("remote_frees");
  }

  /** Gauge: address space reserved by the heap. */
  public long reservedBytes() {
    return get("reserved_bytes");
  }

  /** Gauge: memory backing the reserved address space (what counts against the limit). */
  public long committedBytes() {
    return get("committed_bytes");
  }

  /** Gauge: segments the heap holds. */
  public long segments() {
    return get("segments");
  }

  /** Gauge: slabs the heap holds. */
  public long slabs() {
    return get("slabs");
  }

  /** Gauge: live large blocks. */
  public long largeBlocks() {
    return get("large_blocks");
  }

  /** Gauge: bytes of live large blocks, each rounded up to whole pages. */
  public long largeBytes() {
    return get("large_bytes");
  }

  /** Counter: purges, each returning the memory of empty slabs to the OS. */
  public long purges() {
    return get("purges");
  }

  /** Counter: bytes returned to the OS by purges. */
  public long purgedBytes() {
    return get("purged_bytes");
  }

  /** Counter: slabs abandoned by exiting threads. */
  public long abandonedSlabs() {
    return get("abandoned_slabs");
  }

  /** Counter: abandoned slabs adopted by other threads. */
  public long adoptedSlabs() {
    return get("adopted_slabs");
  }

  /** Counter: allocations refused because of the heap's limit. */
  public long limitHits() {
    return get("limit_hits");
  }

  /**
   * Counter: requests that would have crossed the heap's limit and first gave the memory the
   * heap held unused (empty slabs of every thread, freed large mappings kept for reuse) back to
   * the operating system. Each is followed by one more try: a success, or a {@link #limitHits()
   * limit hit}.
   */
  public long limitReclaims() {
    return get("limit_reclaims");
  }

  /** Counter: committed bytes those {@link #limitReclaims() reclaims} returned. */
  public long limitReclaimedBytes() {
    return get("limit_reclaimed_bytes");
  }

  /** The heap's limit, 0 when it has none. */
  public long maxBytes() {
    return get("max_bytes");
  }

  /** Counter: leaks reported by the heap's leak detection (see {@link LeakDetection}). */
  public long leaksReported() {
    return get("leaks_reported");
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
        .append("; leaks reported ").append(leaksReported()).append('\n');
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
