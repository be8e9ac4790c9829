// SPDX-License-Identifier: Apache-2.0
/*
 * The direct ByteBuf of SegfitByteBufAllocator: one segfit block, held by its raw address.
 *
 * The block is allocated, resized and freed through the Heap's address API: capacity(n) is a
 * Heap.reallocateAddress (in place within a size class, mremap for large blocks), and the last
 * release() frees the block at once. The reference count is a field of the buffer, changed by
 * compare-and-set as Netty's own counts are: a second release() or any use after the last one
 * throws IllegalReferenceCountException before the block is touched, so the core never sees a
 * double free. (Netty 4.2's AbstractReferenceCountedByteBuf would add a RefCnt object of its own
 * to every buffer: a quarter more to allocate, for nothing a buffer never recycled needs.)
 * Buffer objects are not recycled: a released object stays released for good, so a stale
 * reference can never release or read the block of a later owner.
 *
 * Memory access follows Netty's own direct buffers: where Netty has Unsafe
 * (PlatformDependent.hasUnsafe()), reads and writes go through the address; without it (Netty's
 * default from JDK 24 on) they go through the buffer of the block's region at the block's offset,
 * shared by every block there, so that a buffer costs no view of its own (VarHandles fix the byte
 * order). memoryAddress() is offered where Netty's own direct buffers offer one. Views that leave
 * this class (nioBuffer, internalNioBuffer) are slices of segfit's region buffers, made on
 * demand: no up-call, no Unsafe.
 */
package io.segfit.netty;

import io.netty.buffer.AbstractByteBuf;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.util.IllegalReferenceCountException;
import io.netty.util.internal.CleanableDirectBuffer;
import io.netty.util.internal.ObjectUtil;
import io.netty.util.internal.PlatformDependent;
import io.segfit.Heap;
import io.segfit.internal.Regions;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ScatteringByteChannel;

final class SegfitDirectByteBuf extends AbstractByteBuf {
  /** Whether memory is reached through its address, as Netty's unsafe direct buffers do. */
  static final boolean UNSAFE = PlatformDependent.hasUnsafe();
  /** Whether memoryAddress() is offered: where Netty's own direct buffers offer it (with Unsafe,
      and on JDK 22+ without it, where Netty 4.2 allocates direct memory through FFM). */
  static final boolean MEMORY_ADDRESS = UNSAFE || nettyDirectBuffersHaveAddress();
  /** Unsafe reads and writes in native order; ByteBuf's default order is big-endian. */
  private static final boolean SWAP = !PlatformDependent.BIG_ENDIAN_NATIVE_ORDER;
  /** Streams are copied through a bounded temporary array. */
  private static final int STREAM_CHUNK = 8192;

  private static final VarHandle SHORT_BE = view(short[].class, ByteOrder.BIG_ENDIAN);
  private static final VarHandle SHORT_LE = view(short[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle INT_BE = view(int[].class, ByteOrder.BIG_ENDIAN);
  private static final VarHandle INT_LE = view(int[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle LONG_BE = view(long[].class, ByteOrder.BIG_ENDIAN);
  private static final VarHandle LONG_LE = view(long[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle REF_CNT;

  static {
    try {
      REF_CNT = MethodHandles.lookup().findVarHandle(SegfitDirectByteBuf.class, "refCnt",
          int.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  // Eight fields and AbstractByteBuf's five indices: 64 bytes with compressed class pointers,
  // one cache line and a fifth less than the buffer and RefCnt Netty's base class would make.
  private final SegfitByteBufAllocator alloc;
  /** The allocating thread's share of alloc's used direct memory. */
  private final ThreadCounts.Record counted;
  private long address;
  private int capacity;
  /** The references held; 0 once released, for good. After the constructor, read and changed
      through REF_CNT only. */
  private int refCnt;
  /** Without Unsafe: the buffer the block is read and written through, by absolute index from
      base: its region's buffer, shared and never handed out, or, for a block that straddles two
      regions, a view of its own. Null with Unsafe. */
  private ByteBuffer memory;
  private int base;

  /**
   * Allocates the block.
   *
   * @throws io.segfit.HeapOutOfMemoryError if the heap's limit or the OS refuses the memory
   */
  SegfitDirectByteBuf(SegfitByteBufAllocator alloc, int initialCapacity, int maxCapacity) {
    super(maxCapacity);
    this.alloc = alloc;
    this.address = alloc.heap.allocateAddress(initialCapacity);
    this.capacity = initialCapacity;
    // Plain: a buffer reaches another thread only through a publication that orders it.
    refCnt = 1;
    if (!UNSAFE) reach(address, initialCapacity);
    counted = alloc.directBytes.record();
    alloc.directBytes.add(counted, initialCapacity);
  }

  /** Points memory and base at the block (without Unsafe). */
  private void reach(long address, int size) {
    ByteBuffer region = Regions.spanning(address, size);
    if (region != null) {
      memory = region;
      base = Regions.offset(address);
    } else {
      memory = Regions.view(address, size);
      base = 0;
    }
  }

  private static boolean nettyDirectBuffersHaveAddress() {
    try {
      CleanableDirectBuffer probe = PlatformDependent.allocateDirect(1);
      try {
        return probe.hasMemoryAddress();
      } finally {
        probe.clean();
      }
    } catch (RuntimeException | LinkageError e) {
      return false;   // Netty cannot allocate direct memory itself: no address to match
    }
  }

  private static VarHandle view(Class<?> arrayType, ByteOrder order) {
    return MethodHandles.byteBufferViewVarHandle(arrayType, order);
  }

  // --- the block --------------------------------------------------------------------------------

  @Override
  public int capacity() {
    return capacity;
  }

  /**
   * Resizes the block with {@link Heap#reallocateAddress}: the contents up to the smaller of the
   * two capacities are kept; a large block is remapped, not copied. On failure the buffer is
   * unchanged.
   */
  @Override
  public ByteBuf capacity(int newCapacity) {
    checkNewCapacity(newCapacity);
    int old = capacity;
    if (newCapacity == old) return this;
    address = alloc.heap.reallocateAddress(address, newCapacity);
    capacity = newCapacity;
    if (!UNSAFE) reach(address, newCapacity);
    if (newCapacity < old) trimIndicesToCapacity(newCapacity);
    alloc.directBytes.add(counted, newCapacity - old);
    return this;
  }

  private void deallocate() {
    // Counted first: the block is gone from Netty's view even if the heap refuses the free (a
    // closed heap already released all its memory).
    alloc.directBytes.add(counted, -capacity);
    memory = null;
    alloc.heap.freeAddress(address);
  }

  // --- reference counting -----------------------------------------------------------------------

  @Override
  public int refCnt() {
    return (int) REF_CNT.getVolatile(this);
  }

  @Override
  public ByteBuf retain() {
    return retain0(1);
  }

  @Override
  public ByteBuf retain(int increment) {
    return retain0(ObjectUtil.checkPositive(increment, "increment"));
  }

  private ByteBuf retain0(int increment) {
    int count;
    do {
      count = (int) REF_CNT.getVolatile(this);
      if (count == 0 || count + increment < count) {   // released, or the count would overflow
        throw new IllegalReferenceCountException(count, increment);
      }
    } while (!REF_CNT.weakCompareAndSet(this, count, count + increment));
    return this;
  }

  @Override
  public boolean release() {
    return release0(1);
  }

  @Override
  public boolean release(int decrement) {
    return release0(ObjectUtil.checkPositive(decrement, "decrement"));
  }

  private boolean release0(int decrement) {
    int count;
    do {
      count = (int) REF_CNT.getVolatile(this);
      if (count < decrement) throw new IllegalReferenceCountException(count, -decrement);
    } while (!REF_CNT.weakCompareAndSet(this, count, count - decrement));
    if (count != decrement) return false;
    deallocate();
    return true;
  }

  @Override
  public ByteBuf touch() {
    return this;
  }

  @Override
  public ByteBuf touch(Object hint) {
    return this;
  }

  @Override
  public ByteBufAllocator alloc() {
    return alloc;
  }

  @Deprecated   // as ByteBuf.order(): the buffer is big-endian, the LE accessors are the API
  @Override
  public ByteOrder order() {
    return ByteOrder.BIG_ENDIAN;
  }

  @Override
  public ByteBuf unwrap() {
    return null;
  }

  @Override
  public boolean isDirect() {
    return true;
  }

  @Override
  public boolean isContiguous() {
    return true;
  }

  @Override
  public boolean hasArray() {
    return false;
  }

  @Override
  public byte[] array() {
    throw new UnsupportedOperationException("direct buffer");
  }

  @Override
  public int arrayOffset() {
    throw new UnsupportedOperationException("direct buffer");
  }

  @Override
  public boolean hasMemoryAddress() {
    return MEMORY_ADDRESS;
  }

  @Override
  public long memoryAddress() {
    ensureAccessible();
    if (!MEMORY_ADDRESS) {
      throw new UnsupportedOperationException("no memory address where Netty's own direct "
          + "buffers have none (no sun.misc.Unsafe before JDK 22)");
    }
    return address;
  }

  // --- primitive accessors (indices checked by AbstractByteBuf) ---------------------------------

  @Override
  protected byte _getByte(int index) {
    return UNSAFE ? PlatformDependent.getByte(address + index) : memory.get(base + index);
  }

  @Override
  protected short _getShort(int index) {
    if (!UNSAFE) return (short) SHORT_BE.get(memory, base + index);
    short v = PlatformDependent.getShort(address + index);
    return SWAP ? Short.reverseBytes(v) : v;
  }

  @Override
  protected short _getShortLE(int index) {
    if (!UNSAFE) return (short) SHORT_LE.get(memory, base + index);
    short v = PlatformDependent.getShort(address + index);
    return SWAP ? v : Short.reverseBytes(v);
  }

  @Override
  protected int _getUnsignedMedium(int index) {
    return (_getByte(index) & 0xff) << 16 | _getShort(index + 1) & 0xffff;
  }

  @Override
  protected int _getUnsignedMediumLE(int index) {
    return _getByte(index) & 0xff | (_getShortLE(index + 1) & 0xffff) << 8;
  }

  @Override
  protected int _getInt(int index) {
    if (!UNSAFE) return (int) INT_BE.get(memory, base + index);
    int v = PlatformDependent.getInt(address + index);
    return SWAP ? Integer.reverseBytes(v) : v;
  }

  @Override
  protected int _getIntLE(int index) {
    if (!UNSAFE) return (int) INT_LE.get(memory, base + index);
    int v = PlatformDependent.getInt(address + index);
    return SWAP ? v : Integer.reverseBytes(v);
  }

  @Override
  protected long _getLong(int index) {
    if (!UNSAFE) return (long) LONG_BE.get(memory, base + index);
    long v = PlatformDependent.getLong(address + index);
    return SWAP ? Long.reverseBytes(v) : v;
  }

  @Override
  protected long _getLongLE(int index) {
    if (!UNSAFE) return (long) LONG_LE.get(memory, base + index);
    long v = PlatformDependent.getLong(address + index);
    return SWAP ? v : Long.reverseBytes(v);
  }

  @Override
  protected void _setByte(int index, int value) {
    if (UNSAFE) PlatformDependent.putByte(address + index, (byte) value);
    else memory.put(base + index, (byte) value);
  }

  @Override
  protected void _setShort(int index, int value) {
    if (!UNSAFE) SHORT_BE.set(memory, base + index, (short) value);
    else PlatformDependent.putShort(address + index,
        SWAP ? Short.reverseBytes((short) value) : (short) value);
  }

  @Override
  protected void _setShortLE(int index, int value) {
    if (!UNSAFE) SHORT_LE.set(memory, base + index, (short) value);
    else PlatformDependent.putShort(address + index,
        SWAP ? (short) value : Short.reverseBytes((short) value));
  }

  @Override
  protected void _setMedium(int index, int value) {
    _setByte(index, value >>> 16);
    _setShort(index + 1, value);
  }

  @Override
  protected void _setMediumLE(int index, int value) {
    _setByte(index, value);
    _setShortLE(index + 1, value >>> 8);
  }

  @Override
  protected void _setInt(int index, int value) {
    if (!UNSAFE) INT_BE.set(memory, base + index, value);
    else PlatformDependent.putInt(address + index, SWAP ? Integer.reverseBytes(value) : value);
  }

  @Override
  protected void _setIntLE(int index, int value) {
    if (!UNSAFE) INT_LE.set(memory, base + index, value);
    else PlatformDependent.putInt(address + index, SWAP ? value : Integer.reverseBytes(value));
  }

  @Override
  protected void _setLong(int index, long value) {
    if (!UNSAFE) LONG_BE.set(memory, base + index, value);
    else PlatformDependent.putLong(address + index, SWAP ? Long.reverseBytes(value) : value);
  }

  @Override
  protected void _setLongLE(int index, long value) {
    if (!UNSAFE) LONG_LE.set(memory, base + index, value);
    else PlatformDependent.putLong(address + index, SWAP ? value : Long.reverseBytes(value));
  }

  @Override
  public ByteBuf setZero(int index, int length) {
    if (!UNSAFE) return super.setZero(index, length);
    checkIndex(index, length);
    PlatformDependent.setMemory(address + index, length, (byte) 0);
    return this;
  }

  // --- bulk transfers ---------------------------------------------------------------------------

  @Override
  public ByteBuf getBytes(int index, ByteBuf dst, int dstIndex, int length) {
    checkDstIndex(index, length, dstIndex, dst.capacity());
    if (UNSAFE && dst.hasMemoryAddress()) {
      PlatformDependent.copyMemory(address + index, dst.memoryAddress() + dstIndex, length);
    } else if (dst.hasArray()) {
      getBytes(index, dst.array(), dst.arrayOffset() + dstIndex, length);
    } else if (dst.nioBufferCount() > 0) {
      for (ByteBuffer part : dst.nioBuffers(dstIndex, length)) {
        int n = part.remaining();
        getBytes(index, part);
        index += n;
      }
    } else {
      dst.setBytes(dstIndex, this, index, length);
    }
    return this;
  }

  @Override
  public ByteBuf getBytes(int index, byte[] dst, int dstIndex, int length) {
    checkDstIndex(index, length, dstIndex, dst.length);
    if (UNSAFE) PlatformDependent.copyMemory(address + index, dst, dstIndex, length);
    else memory.get(base + index, dst, dstIndex, length);
    return this;
  }

  @Override
  public ByteBuf getBytes(int index, ByteBuffer dst) {
    int length = dst.remaining();
    checkIndex(index, length);
    int position = dst.position();
    if (UNSAFE && dst.isDirect() && !dst.isReadOnly()) {
      PlatformDependent.copyMemory(address + index,
          PlatformDependent.directBufferAddress(dst) + position, length);
    } else if (UNSAFE && dst.hasArray()) {
      PlatformDependent.copyMemory(address + index, dst.array(), dst.arrayOffset() + position,
          length);
    } else {
      if (UNSAFE) dst.put(position, Regions.view(address + index, length), 0, length);
      else dst.put(position, memory, base + index, length);
    }
    dst.position(position + length);
    return this;
  }

  @Override
  public ByteBuf getBytes(int index, OutputStream out, int length) throws IOException {
    checkIndex(index, length);
    byte[] chunk = new byte[Math.min(length, STREAM_CHUNK)];
    while (length > 0) {
      int n = Math.min(length, chunk.length);
      getBytes(index, chunk, 0, n);
      out.write(chunk, 0, n);
      index += n;
      length -= n;
    }
    return this;
  }

  @Override
  public int getBytes(int index, GatheringByteChannel out, int length) throws IOException {
    checkIndex(index, length);
    return length == 0 ? 0 : out.write(internalNioBuffer(index, length));
  }

  @Override
  public int getBytes(int index, FileChannel out, long position, int length) throws IOException {
    checkIndex(index, length);
    return length == 0 ? 0 : out.write(internalNioBuffer(index, length), position);
  }

  @Override
  public ByteBuf setBytes(int index, ByteBuf src, int srcIndex, int length) {
    checkSrcIndex(index, length, srcIndex, src.capacity());
    if (UNSAFE && src.hasMemoryAddress()) {
      PlatformDependent.copyMemory(src.memoryAddress() + srcIndex, address + index, length);
    } else if (src.hasArray()) {
      setBytes(index, src.array(), src.arrayOffset() + srcIndex, length);
    } else {
      src.getBytes(srcIndex, this, index, length);
    }
    return this;
  }

  @Override
  public ByteBuf setBytes(int index, byte[] src, int srcIndex, int length) {
    checkSrcIndex(index, length, srcIndex, src.length);
    if (UNSAFE) PlatformDependent.copyMemory(src, srcIndex, address + index, length);
    else memory.put(base + index, src, srcIndex, length);
    return this;
  }

  @Override
  public ByteBuf setBytes(int index, ByteBuffer src) {
    int length = src.remaining();
    checkIndex(index, length);
    int position = src.position();
    if (UNSAFE && src.isDirect()) {
      PlatformDependent.copyMemory(PlatformDependent.directBufferAddress(src) + position,
          address + index, length);
    } else if (UNSAFE && src.hasArray()) {
      PlatformDependent.copyMemory(src.array(), src.arrayOffset() + position, address + index,
          length);
    } else {
      if (UNSAFE) Regions.view(address + index, length).put(0, src, position, length);
      else memory.put(base + index, src, position, length);
    }
    src.position(position + length);
    return this;
  }

  /**
   * What one read of the stream gives, up to length, as Netty's direct buffers (which read into
   * an array of the whole length): here through a bounded array, read again while the stream
   * has bytes at hand, so that no later read waits where Netty's one read would have returned.
   */
  @Override
  public int setBytes(int index, InputStream in, int length) throws IOException {
    checkIndex(index, length);
    byte[] chunk = new byte[Math.min(length, STREAM_CHUNK)];
    int total = 0;
    do {
      int n = in.read(chunk, 0, Math.min(length - total, chunk.length));
      if (n <= 0) return total > 0 ? total : n;
      setBytes(index + total, chunk, 0, n);
      total += n;
    } while (total < length && in.available() > 0);
    return total;
  }

  @Override
  public int setBytes(int index, ScatteringByteChannel in, int length) throws IOException {
    checkIndex(index, length);
    try {
      return in.read(internalNioBuffer(index, length));
    } catch (ClosedChannelException e) {
      return -1;   // Netty's contract: -1 when the channel is closed
    }
  }

  @Override
  public int setBytes(int index, FileChannel in, long position, int length) throws IOException {
    checkIndex(index, length);
    try {
      return in.read(internalNioBuffer(index, length), position);
    } catch (ClosedChannelException e) {
      return -1;
    }
  }

  @Override
  public ByteBuf copy(int index, int length) {
    checkIndex(index, length);
    ByteBuf copy = alloc.directBuffer(length, maxCapacity());
    return copy.writeBytes(this, index, length);
  }

  // --- NIO views --------------------------------------------------------------------------------

  @Override
  public int nioBufferCount() {
    return 1;
  }

  /** An independent big-endian view of the bytes, as Netty's direct buffers return. */
  @Override
  public ByteBuffer nioBuffer(int index, int length) {
    checkIndex(index, length);
    return Regions.view(address + index, length).order(ByteOrder.BIG_ENDIAN);
  }

  @Override
  public ByteBuffer[] nioBuffers(int index, int length) {
    return new ByteBuffer[] {nioBuffer(index, length)};
  }

  /** A view of the block, position index and limit index + length, that the caller may move.
      A new one each time: a view costs one small object, less than a field in every buffer to
      keep one in. */
  @Override
  public ByteBuffer internalNioBuffer(int index, int length) {
    checkIndex(index, length);
    return Regions.view(address, capacity).order(ByteOrder.BIG_ENDIAN)
        .limit(index + length).position(index);
  }
}
