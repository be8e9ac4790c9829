// SPDX-License-Identifier: Apache-2.0
package io.segfit.ffm;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.function.LongPredicate;

/**
 * The addresses of the blocks one {@link HeapArena} handed out, for its close() to free.
 *
 * <p>Slot 0 is a field, so that an arena of one allocation makes no array (and the JIT can
 * scalar-replace the whole arena). Slots from 1 on live in chunks that never move or grow:
 * chunk k holds {@code FIRST_CHUNK << k} slots, so recording n blocks allocates about n longs
 * and copies none, and a writer holding a slot never races a resize.
 *
 * <p>Confined arenas use {@link #add} (one thread, plain accesses). Shared arenas use
 * {@link #claim} and {@link #close}, lock-free, at one compare-and-set per block: {@code count}
 * both numbers the slots and, once its sign bit is set, says the record is closed. A writer
 * makes sure its slot's chunk exists before it claims the slot, so once claimed nothing can
 * fail before the address is stored; close() sets the sign bit, which fixes how many slots
 * were claimed, and waits for each of them to be filled: every recorded block is freed by
 * close() and every block refused by a closed record by its writer, each exactly once.
 */
final class BlockRecord {
  /** Slots of chunk 0; chunk k holds FIRST_CHUNK << k. */
  private static final int FIRST_CHUNK = 16;
  /** Enough chunks for 2^31 slots. */
  private static final int CHUNKS = 28;
  private static final long CLOSED = Long.MIN_VALUE;

  private static final VarHandle COUNT;
  private static final VarHandle FIRST;
  private static final VarHandle CHUNK = MethodHandles.arrayElementVarHandle(long[][].class);
  private static final VarHandle SLOT = MethodHandles.arrayElementVarHandle(long[].class);

  static {
    try {
      MethodHandles.Lookup lookup = MethodHandles.lookup();
      COUNT = lookup.findVarHandle(BlockRecord.class, "count", long.class);
      FIRST = lookup.findVarHandle(BlockRecord.class, "first", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  /** Slots claimed, with CLOSED set once a shared record is closed. */
  private long count;
  /** Slot 0. */
  private long first;
  /**
   * Slots 1 and on. Confined: made at the second block. Shared: made here, so that it is
   * published with the arena's final field and never changes.
   */
  private long[][] chunks;
  /** Confined: the chunk being filled (EMPTY before the first), and its next free slot. */
  private long[] tail = EMPTY;
  private int tailUsed;
  private int tailChunk = -1;

  private static final long[] EMPTY = new long[0];

  BlockRecord(boolean shared) {
    if (shared) chunks = new long[CHUNKS][];
  }

  /** The chunk of slot i (i >= 1): the floor of log2 of its 1-based position in chunk units. */
  private static int chunkOf(long i) {
    return 63 - Long.numberOfLeadingZeros((i - 1) / FIRST_CHUNK + 1);
  }

  private static int offsetIn(long i, int chunk) {
    return (int) (i - 1 - (long) FIRST_CHUNK * ((1L << chunk) - 1));
  }

  /** Confined: records address. */
  void add(long address) {
    if (count == 0) {
      first = address;
    } else {
      if (tailUsed == tail.length) nextChunk();
      tail[tailUsed++] = address;
    }
    count++;
  }

  private void nextChunk() {
    if (chunks == null) chunks = new long[CHUNKS][];
    tailChunk++;
    chunks[tailChunk] = tail = new long[FIRST_CHUNK << tailChunk];
    tailUsed = 0;
  }

  /**
   * Shared: records address, unless the record is closed.
   *
   * @return false if closed: the caller still owns the block
   * @throws OutOfMemoryError if a new chunk could not be made (nothing recorded)
   */
  boolean claim(long address) {
    long i;
    do {
      i = (long) COUNT.getVolatile(this);
      if (i < 0) return false;
      if (i > 0) ensureChunk(chunkOf(i));
    } while (!COUNT.compareAndSet(this, i, i + 1));
    if (i == 0) {
      FIRST.setRelease(this, address);
    } else {
      int k = chunkOf(i);
      SLOT.setRelease((long[]) CHUNK.getAcquire(chunks, k), offsetIn(i, k), address);
    }
    return true;
  }

  private void ensureChunk(int k) {
    if (CHUNK.getAcquire(chunks, k) == null) {
      CHUNK.compareAndSet(chunks, k, null, new long[FIRST_CHUNK << k]);
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
   * Hands the first n addresses to action, in order, until it returns false; then, confined,
   * drops the chunks (a closed arena kept reachable holds no memory for them; a shared record
   * keeps them, as a writer that read the count before close() may still look at them).
   */
  void drain(long n, LongPredicate action) {
    try {
      if (n == 0 || !action.test(firstSlot())) return;
      long start = 1;
      for (int k = 0; start < n; k++) {
        long[] chunk = (long[]) CHUNK.getAcquire(chunks, k);
        int end = (int) Math.min(chunk.length, n - start);
        for (int j = 0; j < end; j++) {
          if (!action.test(slot(chunk, j))) return;
        }
        start += chunk.length;
      }
    } finally {
      if (tailChunk >= 0) {
        chunks = null;
        tail = EMPTY;
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

  private static long slot(long[] chunk, int j) {
    long a;
    for (int spins = 0; (a = (long) SLOT.getAcquire(chunk, j)) == 0; spins++) pause(spins);
    return a;
  }

  /** The writer is between its claim and its store: running, unless descheduled. */
  private static void pause(int spins) {
    if (spins < 100) Thread.onSpinWait();
    else Thread.yield();
  }
}
