// SPDX-License-Identifier: Apache-2.0
/*
 * Sampled leak detection for the ByteBuffers of one heap.
 *
 * A sampled buffer gets a Tracker: its address, size and allocation stack, registered with a
 * Cleaner on the buffer object. Freeing the buffer (or reallocating it) marks the tracker freed
 * and cleans it; if the buffer becomes unreachable first, the Cleaner's thread reports the
 * allocation stack through System.Logger "io.segfit.leak" (WARNING) and the JFR event
 * io.segfit.Leak. The block itself stays allocated: some other view of it may still be in use.
 * Cost when a buffer is not sampled: a ThreadLocalRandom draw at allocation, and at free one
 * read of a counting filter indexed by a hash of the address (non-zero only for addresses that
 * may be tracked), so untracked frees never touch the map or box the address.
 */
package io.segfit.internal;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.LongAdder;

public final class LeakDetector {
  private static final System.Logger LOG = System.getLogger("io.segfit.leak");
  private static final Cleaner CLEANER = Cleaner.create(r -> {
    Thread t = new Thread(r, "segfit-leak-detector");
    t.setDaemon(true);
    return t;
  });
  private static final int FILTER_BITS = 12;

  private final String heap;
  private final int interval;
  private final ConcurrentHashMap<Long, Tracker> trackers = new ConcurrentHashMap<>();
  private final AtomicIntegerArray filter = new AtomicIntegerArray(1 << FILTER_BITS);
  private final LongAdder reported = new LongAdder();
  private volatile boolean closed;

  /**
   * A detector tracking one ByteBuffer allocation in interval (1: every one).
   */
  public LeakDetector(String heap, int interval) {
    if (interval < 1) throw new IllegalArgumentException("sampling interval " + interval + " < 1");
    this.heap = heap;
    this.interval = interval;
  }

  /** Whether the allocation being made should be tracked. */
  public boolean sample() {
    return interval == 1 || ThreadLocalRandom.current().nextInt(interval) == 0;
  }

  /** Tracks buffer, a view of the block of size bytes at address. */
  public void track(ByteBuffer buffer, long address, long size) {
    Tracker tracker = new Tracker(this, address, size, new LeakTrace(heap, address, size));
    filter.getAndIncrement(slot(address));
    Tracker previous = trackers.put(address, tracker);
    if (previous != null) previous.discard();
    tracker.cleanable = CLEANER.register(buffer, tracker);
    Reference.reachabilityFence(buffer);
  }

  /** The block at address was freed or moved: its tracker, if any, must not report. */
  public void untrack(long address) {
    if (filter.get(slot(address)) == 0) return;
    Tracker tracker = trackers.remove(address);
    if (tracker != null) tracker.discard();
  }

  /** The heap is closed: nothing it tracked can leak any more. */
  public void close() {
    closed = true;
    for (Long address : trackers.keySet()) untrack(address);
  }

  /** Leaks reported so far. */
  public long reported() {
    return reported.sum();
  }

  /** Buffers tracked now. */
  public int tracked() {
    return trackers.size();
  }

  private static int slot(long address) {
    return (int) (((address >>> 4) * 0x9E3779B97F4A7C15L) >>> (64 - FILTER_BITS));
  }

  /** Counts the leak last, so that a reader who sees the count also finds the report. */
  private void report(Tracker tracker) {
    LeakTrace trace = tracker.trace;
    LOG.log(System.Logger.Level.WARNING, trace.report(), trace);
    StringWriter stack = new StringWriter();
    trace.printStackTrace(new PrintWriter(stack));
    Jfr.leak(heap, tracker.address, tracker.size, stack.toString());
    reported.increment();
  }

  /** The cleaning action of one tracked buffer; holds no reference to the buffer. */
  private static final class Tracker implements Runnable {
    final LeakDetector detector;
    final long address;
    final long size;
    final LeakTrace trace;
    volatile boolean discarded;
    volatile Cleaner.Cleanable cleanable;

    Tracker(LeakDetector detector, long address, long size, LeakTrace trace) {
      this.detector = detector;
      this.address = address;
      this.size = size;
      this.trace = trace;
    }

    /** Freed, moved, or the heap closed: forget without reporting. */
    void discard() {
      if (discarded) return;
      discarded = true;
      detector.filter.getAndDecrement(slot(address));
      Cleaner.Cleanable c = cleanable;
      if (c != null) c.clean();
    }

    @Override
    public void run() {
      if (discarded) return;
      if (!detector.trackers.remove(address, this)) return;
      discarded = true;
      detector.filter.getAndDecrement(slot(address));
      if (!detector.closed) detector.report(this);
    }
  }

  /** The allocation stack of a tracked buffer, logged with a leak report. */
  static final class LeakTrace extends Throwable {
    private static final long serialVersionUID = 1L;
    private final String report;

    LeakTrace(String heap, long address, long size) {
      super("allocation site of the leaked buffer");
      this.report = "LEAK: a ByteBuffer of heap '" + heap + "' (" + size + " bytes at 0x"
          + Long.toHexString(address) + ") became unreachable without being freed; the memory "
          + "stays allocated until the heap is closed. It was allocated at the stack below.";
      setStackTrace(AllocationSites.fromCaller(getStackTrace()));
    }

    String report() {
      return report;
    }
  }
}
