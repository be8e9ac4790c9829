// SPDX-License-Identifier: Apache-2.0
/*
 * The thread that gives thread caches' slabs back to the core once all their blocks are free
 * and their owner left them alone for the heap's purge delay, whatever the heap's threads do:
 * threads that went idle after a burst would otherwise keep their emptied slabs (up to
 * ThreadCache.KEEP_BYTES a thread), the slabs other threads emptied for them and their current
 * slabs resident for good.
 *
 * One daemon thread, segfit-sweep, for every heap, started when a slab is first lent. A heap
 * is queued once (SlabCache.sweepPending) and swept once per purge delay while one of its
 * parked slabs is queued or one of its threads holds a current slab, as the core's purger
 * ticks while threads have records; with no heap queued the thread waits without a timeout.
 */
package io.segfit.internal;

import java.util.concurrent.DelayQueue;
import java.util.concurrent.Delayed;
import java.util.concurrent.TimeUnit;

final class Sweeper {
  private static final DelayQueue<Due> QUEUE = new DelayQueue<>();
  /** Guarded by Sweeper.class. */
  private static Thread thread;

  private Sweeper() {}

  /** A heap's next sweep, at System.nanoTime() value at. */
  private static final class Due implements Delayed {
    final SlabCache cache;
    final long at;

    Due(SlabCache cache, long at) {
      this.cache = cache;
      this.at = at;
    }

    @Override
    public long getDelay(TimeUnit unit) {
      return unit.convert(at - System.nanoTime(), TimeUnit.NANOSECONDS);
    }

    @Override
    public int compareTo(Delayed o) {
      return Long.compare(at, ((Due) o).at);
    }
  }

  /** Sweeps cache at System.nanoTime() value at. The caller holds cache's one pending entry. */
  static void schedule(SlabCache cache, long at) {
    QUEUE.add(new Due(cache, at));
    synchronized (Sweeper.class) {
      if (thread == null) {
        thread = new Thread(Sweeper::run, "segfit-sweep");
        thread.setDaemon(true);
        thread.start();
      }
    }
  }

  private static void run() {
    while (true) {
      Due due;
      try {
        due = QUEUE.take();
      } catch (InterruptedException e) {
        continue;   // nothing interrupts it on purpose; the queue still needs sweeping
      }
      long next;
      try {
        next = due.cache.sweepSlabs();
      } catch (Throwable e) {
        // The core refused a slab back (a bug), or the JVM ran out of memory: reported, and
        // neither this heap's later sweeps nor other heaps' end with it (a dead sweeper would
        // leave every idle thread's slabs lent for good).
        Thread t = Thread.currentThread();
        t.getUncaughtExceptionHandler().uncaughtException(t, e);
        next = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
      }
      if (next != Long.MIN_VALUE) QUEUE.add(new Due(due.cache, next));
    }
  }
}
