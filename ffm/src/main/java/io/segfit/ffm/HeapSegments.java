// SPDX-License-Identifier: Apache-2.0
package io.segfit.ffm;

import io.segfit.Heap;
import io.segfit.HeapOutOfMemoryError;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * The block operations of a {@link Heap} over {@link MemorySegment}s instead of raw addresses:
 * every access through a returned segment is bounds-checked against the size asked for.
 *
 * <p>These segments have the global scope, like {@code MemorySegment.ofAddress(a)
 * .reinterpret(n)}: they are always alive, so a segment used after its block was freed (or its
 * heap closed) is not detected, as with the heap's buffers and addresses. For segments that
 * throw instead, allocate from a {@link HeapArena}.
 *
 * <p>The segment handed to {@link #reallocate} or {@link #free} must be one these methods
 * returned, or a view of one that starts at its first byte and is no larger; each method checks,
 * in the heap's order: {@code null} ({@link NullPointerException}), the heap being open
 * ({@link IllegalStateException}), the segment: on-heap (Java array) memory, a segment of an
 * arena (whose close frees it), an address that is not the start of a live block of this heap,
 * a segment larger than the block ({@link IllegalArgumentException}), the block being live
 * ({@link IllegalStateException}), memory being available ({@link HeapOutOfMemoryError}).
 * A method that throws leaves the heap and the block as they were. Thread-safe, as the heap.
 */
public final class HeapSegments {
  private HeapSegments() {}

  /** The scope of segments made from an address, shared by every such segment. */
  private static final MemorySegment.Scope GLOBAL = MemorySegment.NULL.scope();

  /**
   * Allocates a block of {@code size} bytes, not initialized ({@link Heap#allocateAddress}).
   *
   * @param heap the heap
   * @param size the size in bytes, at most 2<sup>46</sup>
   * @return a segment of {@code size} bytes over the block
   * @throws NullPointerException if heap is null
   * @throws IllegalStateException if the heap is closed
   * @throws IllegalArgumentException if size is negative or too large
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public static MemorySegment allocate(Heap heap, long size) {
    return segment(heap.allocateAddress(size), size);
  }

  /**
   * Allocates a zeroed block of {@code size} bytes ({@link Heap#allocateZeroedAddress}: fresh
   * pages are not written).
   *
   * @param heap the heap
   * @param size the size in bytes, at most 2<sup>46</sup>
   * @return a segment of {@code size} zero bytes over the block
   * @throws NullPointerException if heap is null
   * @throws IllegalStateException if the heap is closed
   * @throws IllegalArgumentException if size is negative or too large
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public static MemorySegment allocateZeroed(Heap heap, long size) {
    return segment(heap.allocateZeroedAddress(size), size);
  }

  /**
   * Allocates a block of {@code size} bytes, not initialized, at an address that is a multiple
   * of {@code alignment} ({@link Heap#allocateAlignedAddress}).
   *
   * @param heap the heap
   * @param size the size in bytes, at most 2<sup>46</sup>
   * @param alignment a power of two, at most 2<sup>30</sup>
   * @return a segment of {@code size} bytes over the block
   * @throws NullPointerException if heap is null
   * @throws IllegalStateException if the heap is closed
   * @throws IllegalArgumentException if size is negative or too large, or alignment is not a
   *     power of two in range
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public static MemorySegment allocateAligned(Heap heap, long size, long alignment) {
    return segment(heap.allocateAlignedAddress(size, alignment), size);
  }

  /**
   * Resizes the block of {@code segment}, keeping its first {@code min(byteSize, newSize)}
   * bytes ({@link Heap#reallocateAddress}). The returned segment replaces {@code segment},
   * which must not be used any more; on failure {@code segment} is unchanged and still live.
   *
   * @param heap the heap the block belongs to
   * @param segment a segment these methods returned, not yet freed
   * @param newSize the new size in bytes, at most 2<sup>46</sup>
   * @return a segment of {@code newSize} bytes over the resized block
   * @throws NullPointerException if heap or segment is null
   * @throws IllegalStateException if the heap is closed, or the block was already freed
   * @throws IllegalArgumentException if segment is not a live block of this heap as the class
   *     description says, or newSize is negative or too large
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public static MemorySegment reallocate(Heap heap, MemorySegment segment, long newSize) {
    long address = block(heap, segment, "reallocate");
    return segment(heap.reallocateAddress(address, newSize), newSize);
  }

  /**
   * Frees the block of {@code segment} ({@link Heap#freeAddress}). The segment, and every view
   * of it, must not be used afterwards.
   *
   * @param heap the heap the block belongs to
   * @param segment a segment these methods returned, not yet freed
   * @throws NullPointerException if heap or segment is null
   * @throws IllegalStateException if the heap is closed, or the block was already freed (as
   *     long as its slab still holds it, see {@link Heap#freeAddress})
   * @throws IllegalArgumentException if segment is not a live block of this heap as the class
   *     description says
   */
  public static void free(Heap heap, MemorySegment segment) {
    heap.freeAddress(block(heap, segment, "free"));
  }

  private static MemorySegment segment(long address, long size) {
    return MemorySegment.ofAddress(address).reinterpret(size);
  }

  /** The address of the block segment designates, after the checks of the class description. */
  private static long block(Heap heap, MemorySegment segment, String operation) {
    Objects.requireNonNull(heap, "heap");
    Objects.requireNonNull(segment, "segment");
    if (heap.isClosed()) throw new IllegalStateException("heap '" + heap.name() + "' is closed");
    if (!segment.isNative()) {
      throw new IllegalArgumentException(operation + ": a segment of Java heap memory is not a "
          + "block of any heap: " + segment);
    }
    if (!segment.scope().equals(GLOBAL)) {
      throw new IllegalArgumentException(operation + ": " + segment + " belongs to an arena, "
          + "whose close frees it");
    }
    long address = segment.address();
    long usable = heap.usableSizeAddress(address); // rejects a non-block and a freed block
    if (segment.byteSize() > usable) {
      throw new IllegalArgumentException(operation + ": " + segment + " is larger than the block "
          + "of " + usable + " bytes at 0x" + Long.toHexString(address));
    }
    return address;
  }
}
