// SPDX-License-Identifier: Apache-2.0
/*
 * A bounded single-producer single-consumer ring for the producer/consumer benchmark: one thread
 * allocates and offers, the other polls and frees. Indexes are published with release stores
 * (lazySet semantics through VarHandle) and read with acquire loads; the slots need no fences of
 * their own because each slot is written before the index that publishes it. It never allocates
 * after construction, so -prof gc shows the allocators' garbage only.
 */
package io.segfit.bench;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

public final class SpscRing<T> {
  private static final VarHandle HEAD;
  private static final VarHandle TAIL;

  static {
    try {
      MethodHandles.Lookup l = MethodHandles.lookup();
      HEAD = l.findVarHandle(SpscRing.class, "head", long.class);
      TAIL = l.findVarHandle(SpscRing.class, "tail", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private final Object[] slots;
  private final int mask;
  // head: next slot to poll (consumer); tail: next slot to fill (producer). Padding keeps the two
  // on different cache lines so the threads do not false-share.
  private long p0, p1, p2, p3, p4, p5, p6, p7;
  private volatile long head;
  private long q0, q1, q2, q3, q4, q5, q6, q7;
  private volatile long tail;
  private long r0, r1, r2, r3, r4, r5, r6, r7;

  public SpscRing(int capacityPowerOfTwo) {
    if (Integer.bitCount(capacityPowerOfTwo) != 1) {
      throw new IllegalArgumentException("capacity must be a power of two: " + capacityPowerOfTwo);
    }
    slots = new Object[capacityPowerOfTwo];
    mask = capacityPowerOfTwo - 1;
  }

  /** Producer only. Returns false when the ring is full. */
  public boolean offer(T value) {
    long t = (long) TAIL.getOpaque(this);
    if (t - (long) HEAD.getAcquire(this) == slots.length) {
      return false;
    }
    slots[(int) t & mask] = value;
    TAIL.setRelease(this, t + 1);
    return true;
  }

  /** Consumer only. Returns null when the ring is empty. */
  @SuppressWarnings("unchecked")
  public T poll() {
    long h = (long) HEAD.getOpaque(this);
    if (h == (long) TAIL.getAcquire(this)) {
      return null;
    }
    int i = (int) h & mask;
    T value = (T) slots[i];
    slots[i] = null;
    HEAD.setRelease(this, h + 1);
    return value;
  }
}
