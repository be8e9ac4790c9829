// SPDX-License-Identifier: Apache-2.0
package io.segfit.ffm;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.function.LongPredicate;

/**
 * The addresses of the blocks one {@link HeapArena} handed out, for its close() to free.
 *
 * <p>Slot 0 is a field, so that an arena of one allocation makes no array (and the JIT can
 * scalar-replace the whole arena). Slots from 1 on live in chunks that never move or grow, each
 * twice the size of the one before and linked to it: recording n blocks allocates about n longs
 * and copies none, and a writer holding a slot never races a resize.
 *
 * <p>Confined arenas use {@link #add} (one thread, plain accesses). Shared arenas use
 * {@link #claim} and {@link #close}, lock-free, at one compare-and-set per block: {@code count}
 * both numbers the slots and, once its sign bit is set, says the record is closed. A writer
 * claims slot i only in the chunk it read as current and that holds i (a full chunk is first
 * replaced by the next), so once claimed nothing can fail before the address is stored;
 * close() sets the sign bit, which fixes how many slots were claimed, and waits for each of
 * them to be filled: every recorded block is freed by close() and every block refused by a
 * closed record by its writer, each exactly once.
 */
final class BlockRecord {
  /** Slots of the first chunk; each next one doubles. */
  private static final int FIRST_CHUNK = 16;
  private static final long CLOSED = Long.MIN_VALUE;

  private static final VarHandle COUNT;
  private static final VarHandle FIRST;
  private static final VarHandle CURRENT;
  private static final VarHandle SLOT = MethodHandles.arrayElementVarHandle(long[].class);

  static {
    try {
      MethodHandles.Lookup lookup = MethodHandles.lookup();
      COUNT = lookup.findVarHandle(BlockRecord.class, "count", long.class);
      FIRST = lookup.findVarHandle(BlockRecord.class, "first", long.class);
      CURRENT = lookup.findVarHandle(BlockRecord.class, "current", Chunk.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  /** Slots base to base + slots.length - 1. */
  private static final class Chunk {
    final long base;
    final long[] slots;
    final Chunk previous;

    Chunk(Chunk previous) {
      this.previous = previous;
      this.base = previous == null ? 1 : previous.end();
      this.slots = new long[previous == null ? FIRST_CHUNK : previous.slots.length * 2];
    }

    long end() {
      return base + slots.length;
    }
  }

  /** Slots claimed, with CLOSED set once a shared record is closed. */
  private long count;
  /** Slot 0. */
  private long first;
  /** The chunk of the newest slots; null before slot 1. */
  private Chunk current;

  /** Confined: records address. */
  void add(long address) {
    long i = count;
    if (i == 0) {
      first = address;
    } else {
      Chunk c = current;
      if (c == null || i == c.end()) current = c = new Chunk(c);
      c.slots[(int) (i - c.base)] = address;
    }
    count = i + 1;
  }

  /**
   * Shared: records address, unless the record is closed.
   *
   * @return false if closed: the caller still owns the block
   * @throws OutOfMemoryError if a new chunk could not be made (nothing recorded)
   */
  boolean claim(long address) {
    for (;;) {
      long i = (long) COUNT.getVolatile(this);
      if (i < 0) return false;
      if (i == 0) {
        if (COUNT.compareAndSet(this, 0L, 1L)) {
          FIRST.setRelease(this, address);
          return true;
        }
        continue;
      }
      // Read after i, c holds at least slot i - 1 (its writer read c as current first).
      Chunk c = (Chunk) CURRENT.getAcquire(this);
      if (c == null || i == c.end()) {
        CURRENT.compareAndSet(this, c, new Chunk(c)); // lost: another writer made it
      } else if (i >= c.base && COUNT.compareAndSet(this, i, i + 1)) {
        SLOT.setRelease(c.slots, (int) (i - c.base), address);
        return true;
      }
      // else: i was taken, or c is newer than i (then so is the count): read both again
    }
  }

  /** Shared: closes the record; returns how many blocks it holds, which no writer adds to. */
  long close() {
    return (long) COUNT.getAndBitwiseOr(this, CLOSED);
  }

  /** Confined: the number of blocks recorded. */
  long size() {
    return count;
  }

  /**
   * Hands the first n addresses to action (slot 0, then the chunks newest first) until it
   * returns false; then drops the chunks, so that a closed arena kept reachable holds no memory
   * for them (a shared writer that read the count before close() finds it closed when it tries
   * to claim, and never stores).
   */
  void drain(long n, LongPredicate action) {
    if (n == 0 || !action.test(firstSlot())) {
      CURRENT.setRelease(this, (Chunk) null);
      return;
    }
    Chunk c = (Chunk) CURRENT.getAcquire(this);
    CURRENT.setRelease(this, (Chunk) null);
    for (; c != null; c = c.previous) {
      int end = (int) Math.min(c.slots.length, n - c.base);
      for (int j = 0; j < end; j++) {
        if (!action.test(slot(c.slots, j))) return;
      }
    }
  }

  /*
   * A shared writer may have claimed a slot and not stored it yet: a few instructions that
   * cannot fail, so the two readers below wait for them.
   */

  private long firstSlot() {
    long a;
    for (int spins = 0; (a = (long) FIRST.getAcquire(this)) == 0; spins++) pause(spins);
    return a;
  }

  private static long slot(long[] slots, int j) {
    long a;
    for (int spins = 0; (a = (long) SLOT.getAcquire(slots, j)) == 0; spins++) pause(spins);
    return a;
  }

  /** The writer is between its claim and its store: running, unless descheduled. */
  private static void pause(int spins) {
    if (spins < 100) Thread.onSpinWait();
    else Thread.yield();
  }
}
