// SPDX-License-Identifier: Apache-2.0
package io.segfit.ffm;

import io.segfit.Heap;
import io.segfit.HeapOutOfMemoryError;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.function.LongPredicate;

/**
 * An {@link Arena} whose memory comes from a segfit {@link Heap}: {@code allocate} takes a block
 * of the heap, {@code close()} frees every block the arena handed out, at once.
 *
 * <table class="striped">
 * <caption>Kinds of heap arenas</caption>
 * <thead><tr><th>Kind</th><th>Bounded lifetime</th><th>Explicitly closeable</th>
 * <th>Accessible from multiple threads</th></tr></thead>
 * <tbody>
 * <tr><td>{@link #ofConfined(Heap)}</td><td>yes</td><td>yes</td><td>no</td></tr>
 * <tr><td>{@link #ofShared(Heap)}</td><td>yes</td><td>yes</td><td>yes</td></tr>
 * </tbody>
 * </table>
 *
 * <h2>Safety and thread-confinement</h2>
 * The arena's scope is the scope of a JDK arena of the same kind ({@link Arena#ofConfined()} or
 * {@link Arena#ofShared()}) that it creates and closes, and every segment it allocates is bound
 * to that scope: segments are bounds-checked, a segment used after {@code close()} throws
 * {@link IllegalStateException}, and a segment of a confined arena used by another thread
 * throws {@link WrongThreadException}, exactly as with the JDK's own arenas. The blocks go back
 * to the heap only after that scope is closed, so closing a shared arena while other threads
 * access its segments is safe: the JDK's close makes those accesses fail first.
 *
 * <p>What the arena cannot guard is its heap: closing the {@link Heap} releases its memory,
 * this arena's blocks included, while the arena's segments are still alive; close every arena
 * of a heap before the heap. Closing an arena after its heap has nothing left to free.
 *
 * <p>{@code allocate} checks, in the order of the JDK's arenas: the size and alignment
 * ({@link IllegalArgumentException}: a negative size, an alignment that is not a positive power
 * of two; segfit also refuses sizes above 2<sup>46</sup> bytes and alignments above
 * 2<sup>30</sup>), the arena being open ({@link IllegalStateException}) and used by its owner
 * thread ({@link WrongThreadException}, confined arenas), then memory being available
 * ({@link HeapOutOfMemoryError} from the heap's limit or the operating system). Memory is
 * zeroed, as the JDK's arenas promise; fresh pages from the operating system are known to be
 * zero and are not written.
 *
 * <p>Example:
 * <pre>{@code
 * try (Arena arena = HeapArena.ofConfined(heap)) {
 *   MemorySegment s = arena.allocate(ValueLayout.JAVA_LONG, 16);   // 128 zeroed bytes
 *   s.setAtIndex(ValueLayout.JAVA_LONG, 15, 42);
 *   s.setAtIndex(ValueLayout.JAVA_LONG, 16, 1);                    // IndexOutOfBoundsException
 * }                                                                // frees every block
 * }</pre>
 */
public final class HeapArena implements Arena {
  /**
   * Alignments up to this first try a plain zeroed block, which the core leaves unwritten when
   * its pages are fresh, and which is often aligned well beyond the 16 bytes segfit.h promises
   * (a block of a class that is a multiple of the alignment always is); a block that is not
   * aligned enough is given back. Above it, a miss would waste a mapping: the block is taken
   * aligned at once, and zeroed here.
   */
  private static final long ZEROED_FIRST_MAX = 4096;

  private final Heap heap;
  /** The JDK arena whose scope the segments share: confinement and the close handshake. */
  private final Arena scope;
  /** Null for a shared arena. */
  private final Thread owner;
  /** Final: a shared arena's record is published with the arena, however the arena is. */
  private final BlockRecord record;

  private HeapArena(Heap heap, boolean shared) {
    this.heap = Objects.requireNonNull(heap, "heap");
    if (heap.isClosed()) throw new IllegalStateException("heap '" + heap.name() + "' is closed");
    this.scope = shared ? Arena.ofShared() : Arena.ofConfined();
    this.owner = shared ? null : Thread.currentThread();
    this.record = new BlockRecord();
  }

  /**
   * A confined arena over {@code heap}: only the calling thread may allocate, access its
   * segments and close it.
   *
   * @param heap the heap the blocks come from
   * @return a new open arena
   * @throws NullPointerException if heap is null
   * @throws IllegalStateException if heap is closed
   */
  public static Arena ofConfined(Heap heap) {
    return new HeapArena(heap, false);
  }

  /**
   * A shared arena over {@code heap}: any thread may allocate, access its segments and close
   * it.
   *
   * @param heap the heap the blocks come from
   * @return a new open arena
   * @throws NullPointerException if heap is null
   * @throws IllegalStateException if heap is closed
   */
  public static Arena ofShared(Heap heap) {
    return new HeapArena(heap, true);
  }

  /**
   * Allocates a zeroed block of the heap, as a segment of {@code byteSize} bytes bound to this
   * arena's scope. See the class description for the checks and their order.
   *
   * @param byteSize the size in bytes
   * @param byteAlignment the alignment, a power of two
   * @return the segment: its address is a multiple of byteAlignment, its bytes are zero
   * @throws IllegalArgumentException if byteSize is negative or above 2<sup>46</sup>, or
   *     byteAlignment is not a power of two at most 2<sup>30</sup>
   * @throws IllegalStateException if this arena, or its heap, is closed
   * @throws WrongThreadException if this arena is confined and the caller is not its owner
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  @Override
  public MemorySegment allocate(long byteSize, long byteAlignment) {
    if (byteSize < 0) throw new IllegalArgumentException("Invalid allocation size : " + byteSize);
    if (byteAlignment <= 0 || (byteAlignment & (byteAlignment - 1)) != 0) {
      throw new IllegalArgumentException("Invalid alignment constraint : " + byteAlignment);
    }
    if (owner == null) return allocateShared(byteSize, byteAlignment);
    if (Thread.currentThread() != owner) {
      throw new WrongThreadException("Attempted access outside owning thread");
    }
    if (!scope.scope().isAlive()) throw new IllegalStateException("Already closed");
    long address = block(byteSize, byteAlignment);
    record.add(address);
    return MemorySegment.ofAddress(address).reinterpret(byteSize, scope, null);
  }

  /**
   * A shared arena's allocation: the block is taken first, then recorded unless close() has
   * already counted the blocks to free, in which case it goes back here. Recorded, it is freed
   * by close() even if that close won the race with the reinterpret below (which then throws).
   */
  private MemorySegment allocateShared(long byteSize, long byteAlignment) {
    if (!scope.scope().isAlive()) throw new IllegalStateException("Already closed");
    long address = block(byteSize, byteAlignment);
    boolean recorded = false;
    try {
      recorded = record.claim(address);
    } finally {
      if (!recorded) giveBack(address);
    }
    if (!recorded) throw new IllegalStateException("Already closed");
    return MemorySegment.ofAddress(address).reinterpret(byteSize, scope, null);
  }

  /** Frees a block no segment was made for; a closed heap has released it already. */
  private void giveBack(long address) {
    if (!heap.isClosed()) heap.freeAddress(address);
  }

  private long block(long byteSize, long byteAlignment) {
    if (byteAlignment <= ZEROED_FIRST_MAX) {
      long address = heap.allocateZeroedAddress(byteSize);
      if ((address & (byteAlignment - 1)) == 0) return address;
      heap.freeAddress(address);
    }
    long address = heap.allocateAlignedAddress(byteSize, byteAlignment);
    MemorySegment.ofAddress(address).reinterpret(byteSize).fill((byte) 0);
    return address;
  }

  @Override
  public MemorySegment.Scope scope() {
    return scope.scope();
  }

  /**
   * Closes the arena's scope, then frees every block the arena handed out. Like the JDK's
   * arenas, closing twice is an error.
   *
   * @throws IllegalStateException if the arena is already closed, or a segment of it is being
   *     accessed by a downcall (the arena then stays open); or, after the scope closed and every
   *     block was handed back, if the heap reported a block as damaged (debug mode)
   * @throws WrongThreadException if this arena is confined and the caller is not its owner
   */
  @Override
  public void close() {
    scope.close(); // the JDK's checks and, when shared, its handshake with accessing threads
    Frees frees = new Frees(heap);
    record.drain(owner == null ? record.close() : record.size(), frees);
    if (frees.failure != null) throw frees.failure;
  }

  /** close()'s frees: each block once, stopping when the heap's own close released them all. */
  private static final class Frees implements LongPredicate {
    private final Heap heap;
    private RuntimeException failure;

    Frees(Heap heap) {
      this.heap = heap;
    }

    @Override
    public boolean test(long address) {
      if (heap.isClosed()) return false;
      try {
        heap.freeAddress(address);
      } catch (RuntimeException e) {
        if (heap.isClosed()) return false;
        if (failure == null) failure = e;
        else failure.addSuppressed(e);
      }
      return true;
    }
  }

  /** The heap the blocks come from. */
  public Heap heap() {
    return heap;
  }

  @Override
  public String toString() {
    return "HeapArena[" + heap.name() + (owner == null ? ", shared" : ", confined")
        + (scope.scope().isAlive() ? "]" : ", closed]");
  }
}
