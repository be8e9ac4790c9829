// SPDX-License-Identifier: Apache-2.0
package io.segfit.netty;

import io.netty.buffer.AbstractByteBufAllocator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetric;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.UnpooledHeapByteBuf;
import io.netty.buffer.UnpooledUnsafeHeapByteBuf;
import io.netty.util.internal.PlatformDependent;
import io.segfit.Heap;
import java.util.Objects;

/**
 * A Netty {@link io.netty.buffer.ByteBufAllocator} whose direct buffers are blocks of a segfit
 * {@link Heap}: memory goes back to the operating system after a burst, the heap's limit bounds
 * it, and the heap's statistics describe it.
 *
 * <pre>{@code
 * bootstrap.childOption(ChannelOption.ALLOCATOR, new SegfitByteBufAllocator(heap));
 * }</pre>
 *
 * <h2>Buffers</h2>
 * <ul>
 * <li>Direct buffers are blocks of the heap. The last {@code release()} frees the block at once;
 * {@code capacity(n)} (and so {@code ensureWritable} and the writes that grow a buffer) resizes it
 * with {@link Heap#reallocateAddress}: in place within a size class, by {@code mremap} for large
 * blocks (never copied). {@code memoryAddress()} is available where Netty's own direct buffers
 * have one (with {@code sun.misc.Unsafe}, and on JDK 22+ without it).
 * <li>Heap buffers are Netty's unpooled heap buffers, counted in {@link #metric()}.
 * <li>Buffers are wrapped for Netty's {@link io.netty.util.ResourceLeakDetector} according to its
 * level, as Netty's own allocators do.
 * </ul>
 *
 * <h2>Safety and thread-safety</h2>
 * The allocator is thread-safe, and any thread may release any buffer. A second
 * {@code release()} of a released buffer, or any access to it, throws Netty's
 * {@link io.netty.util.IllegalReferenceCountException} and never reaches the heap; buffer objects
 * are not recycled, so a stale reference cannot reach the block of a later owner. When the heap's
 * limit or the operating system refuses memory, allocation and growth throw
 * {@link io.segfit.HeapOutOfMemoryError}, an {@link OutOfMemoryError} (as Netty's own
 * {@code OutOfDirectMemoryError}) whose message names the heap, the request, the limit and the
 * live bytes; a failed growth leaves the buffer as it was. Closing the heap releases every block
 * at once: buffers still live must not be used afterwards, and allocating throws
 * {@link IllegalStateException}.
 */
@SuppressWarnings("exports")   // Netty's types, from a module io.segfit requires static only
public class SegfitByteBufAllocator extends AbstractByteBufAllocator
    implements ByteBufAllocatorMetricProvider {
  final Heap heap;
  private final boolean directByDefault;
  final ThreadCounts directBytes = new ThreadCounts();
  private final ThreadCounts heapBytes = new ThreadCounts();
  private final SegfitByteBufAllocatorMetric metric = new SegfitByteBufAllocatorMetric(this);

  /**
   * An allocator over {@code heap} whose {@code buffer()} and {@code ioBuffer()} are direct.
   *
   * @param heap the heap of the direct buffers
   * @throws NullPointerException if heap is null
   */
  public SegfitByteBufAllocator(Heap heap) {
    this(heap, true);
  }

  /**
   * An allocator over {@code heap}.
   *
   * @param heap the heap of the direct buffers
   * @param preferDirect whether {@code buffer()} and {@code compositeBuffer()} return direct
   *     buffers (heap buffers otherwise). Netty's own allocators prefer direct only where Netty
   *     can free direct memory reliably; segfit's blocks are always freed explicitly, so here it
   *     holds everywhere. {@code ioBuffer()} is always direct.
   * @throws NullPointerException if heap is null
   */
  public SegfitByteBufAllocator(Heap heap, boolean preferDirect) {
    super(preferDirect);
    this.heap = Objects.requireNonNull(heap, "heap");
    this.directByDefault = preferDirect;
  }

  /** The heap the direct buffers come from, for segfit's own view: {@code heap().stats()}. */
  public Heap heap() {
    return heap;
  }

  /**
   * The figures Netty's allocators report: the capacities of the live buffers, direct and heap.
   * {@link SegfitByteBufAllocatorMetric#heapStats()} adds the heap's own figures.
   */
  @Override
  public SegfitByteBufAllocatorMetric metric() {
    return metric;
  }

  /** True: released memory is kept by segfit for reuse (and given back to the OS later). */
  @Override
  public boolean isDirectBufferPooled() {
    return true;
  }

  @Override
  public ByteBuf buffer() {
    return directByDefault ? directBuffer() : heapBuffer();
  }

  @Override
  public ByteBuf buffer(int initialCapacity) {
    return directByDefault ? directBuffer(initialCapacity) : heapBuffer(initialCapacity);
  }

  @Override
  public ByteBuf buffer(int initialCapacity, int maxCapacity) {
    return directByDefault ? directBuffer(initialCapacity, maxCapacity)
        : heapBuffer(initialCapacity, maxCapacity);
  }

  @Override
  public CompositeByteBuf compositeBuffer() {
    return directByDefault ? compositeDirectBuffer() : compositeHeapBuffer();
  }

  @Override
  public CompositeByteBuf compositeBuffer(int maxNumComponents) {
    return directByDefault ? compositeDirectBuffer(maxNumComponents)
        : compositeHeapBuffer(maxNumComponents);
  }

  @Override
  protected ByteBuf newDirectBuffer(int initialCapacity, int maxCapacity) {
    return toLeakAwareBuffer(new SegfitDirectByteBuf(this, initialCapacity, maxCapacity));
  }

  @Override
  protected ByteBuf newHeapBuffer(int initialCapacity, int maxCapacity) {
    return toLeakAwareBuffer(PlatformDependent.hasUnsafe()
        ? new CountedUnsafeHeapByteBuf(this, initialCapacity, maxCapacity)
        : new CountedHeapByteBuf(this, initialCapacity, maxCapacity));
  }

  @Override
  public String toString() {
    return "SegfitByteBufAllocator[heap=" + heap.name() + ", directByDefault=" + directByDefault
        + "]";
  }

  long usedDirectMemory() {
    return directBytes.sum();
  }

  long usedHeapMemory() {
    return heapBytes.sum();
  }

  // Netty calls allocateArray from the superclass constructor, where alloc() is already set and
  // a field of these classes would not be: the count is reached through alloc(). Two classes, as
  // Netty's own unpooled allocator has: its heap buffers use Unsafe where they can.

  private static byte[] counted(ByteBufAllocator alloc, byte[] array, int sign) {
    ((SegfitByteBufAllocator) alloc).heapBytes.add(sign * (long) array.length);
    return array;
  }

  private static final class CountedHeapByteBuf extends UnpooledHeapByteBuf {
    CountedHeapByteBuf(SegfitByteBufAllocator alloc, int initialCapacity, int maxCapacity) {
      super(alloc, initialCapacity, maxCapacity);
    }

    @Override
    protected byte[] allocateArray(int length) {
      return counted(alloc(), super.allocateArray(length), 1);
    }

    @Override
    protected void freeArray(byte[] array) {
      super.freeArray(counted(alloc(), array, -1));
    }
  }

  private static final class CountedUnsafeHeapByteBuf extends UnpooledUnsafeHeapByteBuf {
    CountedUnsafeHeapByteBuf(SegfitByteBufAllocator alloc, int initialCapacity,
        int maxCapacity) {
      super(alloc, initialCapacity, maxCapacity);
    }

    @Override
    protected byte[] allocateArray(int length) {
      return counted(alloc(), super.allocateArray(length), 1);
    }

    @Override
    protected void freeArray(byte[] array) {
      super.freeArray(counted(alloc(), array, -1));
    }
  }
}
