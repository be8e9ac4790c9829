// SPDX-License-Identifier: Apache-2.0
package io.segfit.netty;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * A sum that every allocating and releasing thread changes and metric() reads: the capacities
 * of the live buffers. Each thread adds to a record of its own with an opaque store and no
 * atomic instruction (an atomic add on a shared counter cost a buffer's round trip two of them);
 * sum() adds the records up. The record of a thread that died is folded into one total, once its
 * death is seen (Thread.isAlive() false: its last store happens-before).
 */
final class ThreadCounts {
  private static final VarHandle VALUE;

  static {
    try {
      VALUE = MethodHandles.lookup().findVarHandle(RecordValue.class, "value", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  /** Whose record it is: read by every thread that releases a buffer of that thread. */
  private static class RecordKey {
    final long threadId;
    final WeakReference<Thread> thread;

    RecordKey(Thread t) {
      threadId = t.getId();
      thread = new WeakReference<>(t);
    }
  }

  /** Keeps value off the line of RecordKey's fields (superclass fields come first), so that
      another thread's read of threadId does not take the line its owner writes on every
      allocation. */
  @SuppressWarnings("unused")
  private static class RecordPad extends RecordKey {
    long p0, p1, p2, p3, p4, p5, p6, p7;

    RecordPad(Thread t) {
      super(t);
    }
  }

  /** One thread's share of the sum. Written by that thread only. */
  private static class RecordValue extends RecordPad {
    long value;

    RecordValue(Thread t) {
      super(t);
    }
  }

  /**
   * Keeps value off the line of whatever object follows the record in memory. The collector
   * may copy the records one after another (it finds them in the list), and one thread's write
   * of value would then take, on every allocation, the line holding the next record's
   * threadId, which that record's owner reads on every release.
   */
  @SuppressWarnings("unused")
  static final class Record extends RecordValue {
    long q0, q1, q2, q3, q4, q5, q6, q7;

    Record(Thread t) {
      super(t);
    }
  }

  private final ThreadLocal<Record> mine = ThreadLocal.withInitial(this::register);
  /** Every live thread's record; guarded by itself, like retired. */
  private final List<Record> records = new ArrayList<>();
  private long retired;
  private int foldAt = 64;

  /** The calling thread's record. */
  Record record() {
    return mine.get();
  }

  /** Adds n to the sum through r when r is the calling thread's record (as a buffer's record
      is when it is released where it was allocated), else through the caller's own. */
  void add(Record r, long n) {
    if (r.threadId != Thread.currentThread().getId()) r = mine.get();
    VALUE.setOpaque(r, (long) VALUE.getOpaque(r) + n);
  }

  /** Adds n to the sum (the calling thread's record). */
  void add(long n) {
    Record r = mine.get();
    VALUE.setOpaque(r, (long) VALUE.getOpaque(r) + n);
  }

  /** The sum: exact once the threads that change it are quiet. */
  long sum() {
    synchronized (records) {
      fold();
      long s = retired;
      for (Record r : records) s += (long) VALUE.getOpaque(r);
      return s;
    }
  }

  /** Folds the records of dead threads into retired. Holds the lock. */
  private void fold() {
    for (Iterator<Record> it = records.iterator(); it.hasNext(); ) {
      Record r = it.next();
      Thread t = r.thread.get();
      if (t == null || !t.isAlive()) {
        retired += (long) VALUE.getOpaque(r);
        it.remove();
      }
    }
  }

  private Record register() {
    Record r = new Record(Thread.currentThread());
    synchronized (records) {
      // Threads that come and go would otherwise leave a record each until the next sum().
      if (records.size() >= foldAt) {
        fold();
        foldAt = Math.max(64, 2 * records.size());
      }
      records.add(r);
    }
    return r;
  }
}
