// SPDX-License-Identifier: Apache-2.0
/*
 * The jdk.jfr event types of segfit. Only io.segfit.internal.Jfr refers to this class, and only
 * when jdk.jfr is present, so a runtime without jdk.jfr never loads it. The events live in a
 * package of their own because jdk.jfr must reach them: the module exports this package, and
 * nothing else of segfit's internals, to jdk.jfr.
 */
package io.segfit.internal.jfr;

import io.segfit.internal.Jfr;
import io.segfit.internal.NativeHeap;
import io.segfit.internal.SlabCache;
import io.segfit.internal.Stats;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.FlightRecorder;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.Period;
import jdk.jfr.StackTrace;

public final class JfrEvents {
  private JfrEvents() {}

  private static volatile boolean periodicRegistered;

  @Name("io.segfit.LargeAllocation")
  @Label("segfit Large Allocation")
  @Category("segfit")
  @Description("An allocation of at least segfit.jfr.largeAllocationThreshold bytes")
  static final class LargeAllocation extends Event {
    @Label("Heap") String heap;
    @Label("Address") long address;
    @Label("Size") @DataAmount long size;
    @Label("Alignment") @DataAmount long alignment;
  }

  @Name("io.segfit.LimitHit")
  @Label("segfit Limit Hit")
  @Category("segfit")
  @Description("An allocation refused because the heap's byte limit would be exceeded")
  static final class LimitHit extends Event {
    @Label("Heap") String heap;
    @Label("Requested") @DataAmount long requested;
    @Label("Limit") @DataAmount long limit;
    @Label("Live") @DataAmount long live;
  }

  @Name("io.segfit.Trim")
  @Label("segfit Trim")
  @Category("segfit")
  @Description("An explicit trim: empty slabs and cached segments returned to the OS")
  static final class Trim extends Event {
    @Label("Heap") String heap;
    @Label("Committed Before") @DataAmount long committedBefore;
    @Label("Committed After") @DataAmount long committedAfter;
  }

  @Name("io.segfit.Leak")
  @Label("segfit Leak")
  @Category("segfit")
  @Description("A tracked ByteBuffer became unreachable without being freed")
  @StackTrace(false)
  static final class Leak extends Event {
    @Label("Heap") String heap;
    @Label("Address") long address;
    @Label("Size") @DataAmount long size;
    @Label("Allocation Stack") String allocationStack;
  }

  @Name("io.segfit.HeapStatistics")
  @Label("segfit Heap Statistics")
  @Category("segfit")
  @Description("Figures of one open heap, including memory purged by background purging")
  @Period("1 s")
  @StackTrace(false)
  static final class HeapStatistics extends Event {
    @Label("Heap") String heap;
    @Label("Live") @DataAmount long liveBytes;
    @Label("Live Blocks") long liveBlocks;
    @Label("Committed") @DataAmount long committedBytes;
    @Label("Reserved") @DataAmount long reservedBytes;
    @Label("Allocations") long allocations;
    @Label("Frees") long frees;
    @Label("Purges") long purges;
    @Label("Purged") @DataAmount long purgedBytes;
    @Label("Limit Hits") long limitHits;
    @Label("Limit Reclaims") long limitReclaims;
    @Label("Limit Reclaimed") @DataAmount long limitReclaimedBytes;
  }

  public static void registerPeriodic() {
    if (periodicRegistered) return;
    synchronized (JfrEvents.class) {
      if (periodicRegistered) return;
      FlightRecorder.addPeriodicEvent(HeapStatistics.class, JfrEvents::emitStatistics);
      periodicRegistered = true;
    }
  }

  private static void emitStatistics() {
    long[] s = Stats.array();
    for (java.util.Map.Entry<Long, Jfr.Registered> heap : Jfr.heaps().entrySet()) {
      if (NativeHeap.stats(heap.getKey(), s) != 0) continue;
      SlabCache cache = heap.getValue().cache;
      if (cache != null) cache.addTo(s);
      HeapStatistics e = new HeapStatistics();
      e.heap = heap.getValue().name;
      e.liveBytes = s[Stats.LIVE_BYTES];
      e.liveBlocks = s[Stats.LIVE_BLOCKS];
      e.committedBytes = s[Stats.COMMITTED_BYTES];
      e.reservedBytes = s[Stats.RESERVED_BYTES];
      e.allocations = s[Stats.ALLOCS];
      e.frees = s[Stats.FREES];
      e.purges = s[Stats.PURGES];
      e.purgedBytes = s[Stats.PURGED_BYTES];
      e.limitHits = s[Stats.LIMIT_HITS];
      e.limitReclaims = s[Stats.LIMIT_RECLAIMS];
      e.limitReclaimedBytes = s[Stats.LIMIT_RECLAIMED_BYTES];
      e.commit();
    }
  }

  public static void largeAllocation(String heap, long address, long size, long alignment) {
    LargeAllocation e = new LargeAllocation();
    if (!e.shouldCommit()) return;
    e.heap = heap;
    e.address = address;
    e.size = size;
    e.alignment = alignment;
    e.commit();
  }

  public static void limitHit(String heap, long requested, long limit, long live) {
    LimitHit e = new LimitHit();
    if (!e.shouldCommit()) return;
    e.heap = heap;
    e.requested = requested;
    e.limit = limit;
    e.live = live;
    e.commit();
  }

  public static void leak(String heap, long address, long size, String stack) {
    Leak e = new Leak();
    if (!e.shouldCommit()) return;
    e.heap = heap;
    e.address = address;
    e.size = size;
    e.allocationStack = stack;
    e.commit();
  }

  public static int trim(String heap, long handle) {
    Trim e = new Trim();
    if (!e.isEnabled()) return NativeHeap.trim(handle);
    long[] s = Stats.array();
    e.begin();
    e.committedBefore = NativeHeap.stats(handle, s) == 0 ? s[Stats.COMMITTED_BYTES] : -1;
    int rc = NativeHeap.trim(handle);
    e.committedAfter = NativeHeap.stats(handle, s) == 0 ? s[Stats.COMMITTED_BYTES] : -1;
    e.end();
    e.heap = heap;
    if (e.shouldCommit()) e.commit();
    return rc;
  }
}
