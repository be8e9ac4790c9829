// SPDX-License-Identifier: Apache-2.0
package io.segfit.netty;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.util.ResourceLeakDetector;
import io.netty.util.internal.PlatformDependent;
import io.segfit.Heap;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ReadOnlyBufferException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The direct ByteBuf's behaviour as Netty documents it: indices, capacity, growth and shrink,
 * accessors in both byte orders, bulk transfers, NIO views, derived buffers. Leak detection is
 * off here (LeakDetectionTest covers every level), so the buffers are SegfitDirectByteBuf
 * themselves; every test releases what it allocated, and the heap must end empty. On JDK 17 Netty
 * has Unsafe and the buffers are read through their address; on JDK 25 (run without
 * --sun-misc-unsafe-memory-access=allow) it has not, and they are read through ByteBuffer views:
 * the two runs cover both paths.
 */
@SuppressWarnings({"deprecation", "try"})   // order() and a channel closed mid-test are tested
class SegfitByteBufTest {
  private static ResourceLeakDetector.Level levelBefore;
  private Heap heap;
  private SegfitByteBufAllocator alloc;

  @BeforeAll
  static void leakDetectionOff() {
    levelBefore = ResourceLeakDetector.getLevel();
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.DISABLED);
  }

  @AfterAll
  static void leakDetectionBack() {
    ResourceLeakDetector.setLevel(levelBefore);
  }

  @BeforeEach
  void open() {
    heap = NettyTestSupport.heap("netty-bytebuf", 0);
    alloc = new SegfitByteBufAllocator(heap);
  }

  @AfterEach
  void nothingLeft() {
    try {
      assertEquals(0, alloc.metric().usedDirectMemory(), "every direct buffer released");
      assertEquals(0, heap.stats().liveBlocks(), "every block freed");
    } finally {
      heap.close();
    }
  }

  @Test
  void directBufferIsASegfitBlock() {
    ByteBuf b = alloc.directBuffer(100, 1000);
    assertTrue(b instanceof SegfitDirectByteBuf, b.getClass().getName());
    assertTrue(b.isDirect());
    assertSame(alloc, b.alloc());
    assertEquals(ByteOrder.BIG_ENDIAN, b.order());
    assertEquals(100, b.capacity());
    assertEquals(1000, b.maxCapacity());
    assertEquals(0, b.readerIndex());
    assertEquals(0, b.writerIndex());
    assertTrue(b.isContiguous());
    assertNull(b.unwrap());
    assertFalse(b.hasArray());
    assertThrows(UnsupportedOperationException.class, b::array);
    assertThrows(UnsupportedOperationException.class, b::arrayOffset);
    assertEquals(1, heap.stats().liveBlocks());
    assertTrue(b.release());
    assertEquals(0, heap.stats().liveBlocks(), "the last release frees the block at once");
  }

  @Test
  void defaultsAndPreferences() {
    ByteBuf b = alloc.buffer();
    assertTrue(b.isDirect(), "preferDirect by default");
    assertEquals(Integer.MAX_VALUE, b.maxCapacity());
    b.release();
    ByteBuf io = alloc.ioBuffer(10);
    assertTrue(io.isDirect());
    io.release();
    SegfitByteBufAllocator heapFirst = new SegfitByteBufAllocator(heap, false);
    ByteBuf h = heapFirst.buffer(10);
    assertFalse(h.isDirect());
    assertTrue(h.hasArray());
    h.release();
    CompositeByteBuf c = alloc.compositeBuffer();
    c.addComponent(true, alloc.directBuffer(8).writeLong(7));
    assertTrue(c.isDirect());
    assertEquals(7, c.readLong());
    c.release();
    assertTrue(alloc.isDirectBufferPooled());
    assertTrue(alloc.toString().contains("netty-bytebuf"), alloc.toString());
    assertThrows(NullPointerException.class, () -> new SegfitByteBufAllocator(null));
    assertThrows(IllegalArgumentException.class, () -> alloc.directBuffer(-1));
    assertThrows(IllegalArgumentException.class, () -> alloc.directBuffer(10, 5));
  }

  @Test
  void emptyBufferNeedsNoBlock() {
    ByteBuf empty = alloc.directBuffer(0, 0);
    assertEquals(0, empty.capacity());
    assertEquals(0, heap.stats().liveBlocks(), "Netty's shared empty buffer, no block");
    empty.release();
    ByteBuf zero = alloc.directBuffer(0);   // may still grow: a block of its own
    zero.writeInt(5);
    assertEquals(5, zero.readInt());
    zero.release();
  }

  @Test
  void indicesAndMarks() {
    ByteBuf b = alloc.directBuffer(16, 16);
    b.writeInt(1).writeInt(2);
    assertEquals(8, b.writerIndex());
    assertEquals(8, b.readableBytes());
    assertEquals(8, b.writableBytes());
    assertEquals(8, b.maxWritableBytes());
    assertEquals(1, b.readInt());
    b.markReaderIndex();
    assertEquals(2, b.readInt());
    b.resetReaderIndex();
    assertEquals(4, b.readerIndex());
    b.markWriterIndex();
    b.writeLong(3);
    assertFalse(b.isWritable());
    assertThrows(IndexOutOfBoundsException.class, () -> b.writeByte(1), "past maxCapacity");
    b.resetWriterIndex();
    assertEquals(8, b.writerIndex());
    assertThrows(IndexOutOfBoundsException.class, () -> b.readerIndex(9));
    assertThrows(IndexOutOfBoundsException.class, () -> b.writerIndex(17));
    assertThrows(IndexOutOfBoundsException.class, () -> b.setIndex(5, 4));
    assertThrows(IndexOutOfBoundsException.class, () -> b.getInt(13));
    assertThrows(IndexOutOfBoundsException.class, () -> b.getByte(-1));
    assertThrows(IndexOutOfBoundsException.class, () -> b.setLong(9, 1));
    b.discardReadBytes();
    assertEquals(0, b.readerIndex());
    assertEquals(4, b.writerIndex());
    assertEquals(2, b.getInt(0));
    b.clear();
    assertEquals(0, b.readableBytes());
    b.release();
  }

  @Test
  void ensureWritableGrowsThroughReallocate() {
    ByteBuf b = alloc.directBuffer(16, 1 << 20);
    for (int i = 0; i < 1000; i++) b.writeInt(i);   // grows several times
    assertTrue(b.capacity() >= 4000 && b.capacity() <= 1 << 20, "capacity " + b.capacity());
    for (int i = 0; i < 1000; i++) assertEquals(i, b.readInt());
    assertEquals(1, heap.stats().liveBlocks(), "growth replaced the block, it did not add one");
    assertEquals(1, b.ensureWritable(1 << 21, false), "cannot reach it: nothing changes");
    int capacity = b.capacity();
    assertEquals(3, b.ensureWritable(1 << 21, true), "forced: grown to maxCapacity");
    assertEquals(1 << 20, b.capacity());
    assertNotEquals(capacity, b.capacity());
    assertThrows(IndexOutOfBoundsException.class, () -> b.ensureWritable(1 << 20));
    b.release();
  }

  @Test
  void growAndShrinkKeepContents() {
    long remappedBefore = heap.stats().reallocationsRemapped();
    ByteBuf b = alloc.directBuffer(4 << 20);
    Random r = new Random(14);
    byte[] data = new byte[4 << 20];
    r.nextBytes(data);
    b.writeBytes(data);
    b.capacity(64 << 20);   // a large block: remapped
    assertEquals(64 << 20, b.capacity());
    assertEquals(4 << 20, b.writerIndex());
    byte[] back = new byte[4 << 20];
    b.getBytes(0, back);
    assertArrayEquals(data, back);
    assertTrue(heap.stats().reallocationsRemapped() > remappedBefore,
        "a large block grows by mremap: " + heap.stats());
    assertEquals(64L << 20, alloc.metric().usedDirectMemory());
    b.setLong((64 << 20) - 8, 42);
    assertEquals(42, b.getLong((64 << 20) - 8));

    b.readerIndex(1000);
    b.capacity(500);   // shrink below both indices: they follow
    assertEquals(500, b.capacity());
    assertEquals(500, b.readerIndex());
    assertEquals(500, b.writerIndex());
    byte[] head = new byte[500];
    b.getBytes(0, head);
    for (int i = 0; i < 500; i++) assertEquals(data[i], head[i], "byte " + i);
    assertEquals(500, alloc.metric().usedDirectMemory());
    assertThrows(IllegalArgumentException.class, () -> b.capacity(-1));
    b.release();
    ByteBuf bounded = alloc.directBuffer(8, 16);
    assertThrows(IllegalArgumentException.class, () -> bounded.capacity(17));
    assertEquals(8, bounded.capacity(), "a refused capacity changes nothing");
    bounded.release();
  }

  @Test
  void accessorsMatchNettysHeapBuffer() {
    // Every accessor, both byte orders, against Netty's own heap buffer as the reference.
    ByteBuf b = alloc.directBuffer(64);
    ByteBuf ref = Unpooled.buffer(64);
    for (ByteBuf x : new ByteBuf[] {b, ref}) {
      x.writeByte(0x81).writeShort(0x8283).writeShortLE(0x8485).writeMedium(0x868788)
          .writeMediumLE(0x898a8b).writeInt(0x8c8d8e8f).writeIntLE(0x90919293)
          .writeLong(0x9495969798999a9bL).writeLongLE(0x9c9d9e9fa0a1a2a3L).writeChar('λ')
          .writeFloat(1.5f).writeDouble(-2.25).writeBoolean(true);
    }
    assertEquals(ByteBufUtil.hexDump(ref), ByteBufUtil.hexDump(b));
    assertEquals(ref, b);
    assertEquals(ref.hashCode(), b.hashCode());
    assertEquals(0, b.compareTo(ref));
    assertEquals((byte) 0x81, b.readByte());
    assertEquals((short) 0x8283, b.readShort());
    assertEquals((short) 0x8485, b.readShortLE());
    assertEquals(0xffff8687 << 8 | 0x88, b.readMedium());
    assertEquals(0xff898a8b, b.readMediumLE());
    assertEquals(0x8c8d8e8f, b.readInt());
    assertEquals(0x90919293, b.readIntLE());
    assertEquals(0x9495969798999a9bL, b.readLong());
    assertEquals(0x9c9d9e9fa0a1a2a3L, b.readLongLE());
    assertEquals('λ', b.readChar());
    assertEquals(1.5f, b.readFloat());
    assertEquals(-2.25, b.readDouble());
    assertTrue(b.readBoolean());
    assertEquals(0x8283, b.getUnsignedShort(1));
    assertEquals(0x8485, b.getUnsignedShortLE(3));
    assertEquals(0x868788, b.getUnsignedMedium(5));
    assertEquals(0x898a8b, b.getUnsignedMediumLE(8));
    assertEquals(0x8c8d8e8fL, b.getUnsignedInt(11));
    assertEquals(0x90919293L, b.getUnsignedIntLE(15));
    assertEquals(0x81, b.getUnsignedByte(0));
    // A little-endian view: Netty's SwappedByteBuf over the same memory.
    ByteBuf le = b.order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(ByteOrder.LITTLE_ENDIAN, le.order());
    assertEquals(b.getIntLE(11), le.getInt(11));
    le.setLong(0, 0x0102030405060708L);
    assertEquals(0x0807060504030201L, b.getLong(0));
    b.release();
    ref.release();
  }

  @Test
  void randomOperationsMatchNettysHeapBuffer() {
    Random r = new Random(4242);
    ByteBuf b = alloc.directBuffer(8, 4096);
    ByteBuf ref = Unpooled.buffer(8, 4096);
    for (int step = 0; step < 20_000; step++) {
      int op = r.nextInt(10);
      long v = r.nextLong();
      int room = ref.capacity();
      int i = room > 8 ? r.nextInt(room - 8) : 0;
      boolean fits = room >= 8;
      int written = ref.writerIndex() >= 8 ? r.nextInt(ref.writerIndex() - 7) : -1;
      switch (op) {
        case 0 -> { if (ref.maxWritableBytes() >= 8) { b.writeLong(v); ref.writeLong(v); } }
        case 1 -> { if (ref.maxWritableBytes() >= 3) { b.writeMediumLE((int) v); ref.writeMediumLE((int) v); } }
        case 2 -> { if (fits) { b.setIntLE(i, (int) v); ref.setIntLE(i, (int) v); } }
        case 3 -> { if (fits) { b.setShort(i, (int) v); ref.setShort(i, (int) v); } }
        // reads stay below writerIndex: bytes never written are not zero in a direct buffer
        case 4 -> { if (written >= 0) assertEquals(ref.getLong(written), b.getLong(written)); }
        case 5 -> { if (written >= 0) assertEquals(ref.getUnsignedMedium(written), b.getUnsignedMedium(written)); }
        case 6 -> { if (ref.isReadable(4)) assertEquals(ref.readIntLE(), b.readIntLE()); }
        case 7 -> {
          int n = r.nextInt(4096);
          if (n >= ref.writerIndex()) { b.capacity(n); ref.capacity(n); }
        }
        case 8 -> { b.discardSomeReadBytes(); ref.discardSomeReadBytes(); }
        default -> { if (fits) { b.setZero(i, 8); ref.setZero(i, 8); } }
      }
      String where = "step " + step + ", operation " + op;
      assertEquals(ref.readerIndex(), b.readerIndex(), where);
      assertEquals(ref.writerIndex(), b.writerIndex(), where);
      assertEquals(ref.capacity(), b.capacity(), where);
      if (step % 64 == 0 || op == 7 || op == 8) {   // contents: often, and after every move
        assertEquals(ByteBufUtil.hexDump(ref), ByteBufUtil.hexDump(b), where);
      }
    }
    assertEquals(ByteBufUtil.hexDump(ref), ByteBufUtil.hexDump(b));
    b.release();
    ref.release();
  }

  @Test
  void bulkTransfers(@TempDir Path dir) throws IOException {
    byte[] data = new byte[3000];
    new Random(7).nextBytes(data);
    ByteBuf b = alloc.directBuffer(4000);
    b.writeBytes(data);

    byte[] array = new byte[10];
    b.getBytes(5, array, 2, 8);
    for (int i = 0; i < 8; i++) assertEquals(data[5 + i], array[2 + i]);
    assertThrows(IndexOutOfBoundsException.class, () -> b.getBytes(3995, new byte[10]));

    for (ByteBuffer nio : new ByteBuffer[] {ByteBuffer.allocate(100), ByteBuffer.allocateDirect(100)}) {
      nio.position(10);
      b.getBytes(20, nio);   // fills 10..100
      assertEquals(100, nio.position());
      for (int i = 0; i < 90; i++) assertEquals(data[20 + i], nio.get(10 + i));
      nio.flip().position(10);
      b.setBytes(3000, nio);   // back, at 3000
      assertEquals(100, nio.position());
      for (int i = 0; i < 90; i++) assertEquals(data[20 + i], b.getByte(3000 + i));
    }
    assertThrows(ReadOnlyBufferException.class,
        () -> b.getBytes(0, ByteBuffer.allocateDirect(8).asReadOnlyBuffer()));
    ByteBuffer readOnlySource = ByteBuffer.wrap(data, 0, 16).asReadOnlyBuffer();
    b.setBytes(3500, readOnlySource);
    assertEquals(data[15], b.getByte(3515));

    // To and from ByteBufs of every kind: heap, Netty direct, segfit direct, composite.
    ByteBuf other = alloc.directBuffer(64);
    CompositeByteBuf composite = Unpooled.compositeBuffer();
    composite.addComponents(true, Unpooled.buffer(32).writeZero(32), Unpooled.directBuffer(32).writeZero(32));
    for (ByteBuf dst : new ByteBuf[] {Unpooled.buffer(64), Unpooled.directBuffer(64), other, composite}) {
      b.getBytes(100, dst, 0, 64);
      for (int i = 0; i < 64; i++) assertEquals(data[100 + i], dst.getByte(i), dst.toString());
      b.setBytes(3100, dst, 0, 64);
      for (int i = 0; i < 64; i++) assertEquals(data[100 + i], b.getByte(3100 + i), dst.toString());
      if (dst != other && dst != composite) dst.release();
    }
    other.release();
    composite.release();

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    b.getBytes(0, out, 3000);
    assertArrayEquals(data, out.toByteArray());
    ByteBuf fromStream = alloc.directBuffer(20000);
    byte[] big = new byte[20000];
    new Random(8).nextBytes(big);
    ByteArrayInputStream in = new ByteArrayInputStream(big);
    assertEquals(20000, fromStream.writeBytes(in, 20000), "all a read of the stream gives");
    assertEquals(-1, fromStream.setBytes(0, in, 10), "end of stream");
    assertEquals(0, fromStream.setBytes(0, new ByteArrayInputStream(big), 0));
    InputStream trickle = new ByteArrayInputStream(big) {
      @Override
      public synchronized int read(byte[] b, int off, int len) {
        return super.read(b, off, Math.min(len, 10));
      }

      @Override
      public synchronized int available() {
        return 0;   // as a socket with nothing more at hand: a second read would wait
      }
    };
    assertEquals(10, fromStream.setBytes(0, trickle, 100), "one read, never a second one");
    assertEquals(Unpooled.wrappedBuffer(big), fromStream);
    fromStream.release();

    Path file = dir.resolve("bytes");
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.READ)) {
      assertEquals(3000, b.getBytes(0, ch, 3000));
      assertEquals(100, b.getBytes(0, ch, 5000L, 100));
      ByteBuf back = alloc.directBuffer(3000);
      assertEquals(3000, back.writeBytes(ch, 0L, 3000));
      assertEquals(b.slice(0, 3000), back);
      back.clear();
      ch.position(0);
      assertEquals(100, back.writeBytes(ch, 100));
      assertEquals(b.slice(0, 100), back);
      back.release();
      ch.close();
      ByteBuf closed = alloc.directBuffer(10);
      assertEquals(-1, closed.setBytes(0, ch, 10), "closed channel: -1");
      assertEquals(-1, closed.setBytes(0, ch, 0L, 10));
      closed.release();
    }
    assertArrayEquals(data, Arrays.copyOf(Files.readAllBytes(file), 3000));

    b.setCharSequence(0, "héllo", StandardCharsets.UTF_8);
    assertEquals("héllo", b.getCharSequence(0, 6, StandardCharsets.UTF_8).toString());
    assertEquals("héllo", b.toString(0, 6, StandardCharsets.UTF_8));
    b.setZero(1, 4);
    assertEquals(0, b.getInt(1));
    b.release();
  }

  @Test
  void nioViews() {
    ByteBuf b = alloc.directBuffer(256);
    for (int i = 0; i < 200; i++) b.writeByte(i);
    b.readerIndex(10);
    assertEquals(1, b.nioBufferCount());
    ByteBuffer view = b.nioBuffer();
    assertTrue(view.isDirect());
    assertEquals(ByteOrder.BIG_ENDIAN, view.order());
    assertEquals(0, view.position());
    assertEquals(190, view.remaining(), "readable bytes only");
    assertEquals(10, view.get(0));
    view.put(0, (byte) 99);   // shares the memory
    assertEquals(99, b.getByte(10));
    view.order(ByteOrder.LITTLE_ENDIAN);   // the view's own order: the buffer's is unchanged
    assertEquals(ByteOrder.BIG_ENDIAN, b.order());
    assertEquals(0x630b0c0d, b.getInt(10));
    assertEquals(ByteOrder.BIG_ENDIAN, b.nioBuffer(0, 4).order());
    ByteBuffer[] views = b.nioBuffers(20, 30);
    assertEquals(1, views.length);
    assertEquals(30, views[0].remaining());
    assertEquals(20, views[0].get(0));
    assertThrows(IndexOutOfBoundsException.class, () -> b.nioBuffer(250, 10));

    ByteBuffer internal = b.internalNioBuffer(5, 10);
    assertEquals(5, internal.position());
    assertEquals(15, internal.limit());
    internal.position(15);   // a caller moves it: the buffer does not care
    assertEquals(5, b.getByte(5));
    ByteBuffer again = b.internalNioBuffer(100, 1);
    assertEquals(100, again.get());
    assertEquals(15, internal.position(), "each call's view is the caller's");
    if (PlatformDependent.hasUnsafe()) {
      assertEquals(b.memoryAddress() + 10, PlatformDependent.directBufferAddress(b.nioBuffer()));
    }
    b.capacity(1 << 21);   // the block moves: views are made anew
    assertEquals(5, b.internalNioBuffer(5, 1).get());
    b.release();
  }

  @Test
  void memoryAddressWhereNettyHasOne() {
    ByteBuf b = alloc.directBuffer(64);
    ByteBuf netty = Unpooled.directBuffer(64);
    assertEquals(netty.hasMemoryAddress(), b.hasMemoryAddress(),
        "as Netty's own direct buffers (hasUnsafe: " + PlatformDependent.hasUnsafe() + ")");
    if (b.hasMemoryAddress()) {
      b.setLong(8, 0x1122334455667788L);
      long a = b.memoryAddress();
      assertTrue(heap.usableSizeAddress(a) >= 64, "the address is the block's");
      assertEquals(0x1122334455667788L, heap.sliceAddress(a, 8, 8).order(ByteOrder.BIG_ENDIAN).getLong(0));
      assertEquals(a + 8, b.slice(8, 8).memoryAddress(), "slices see it too");
    } else {
      assertThrows(UnsupportedOperationException.class, b::memoryAddress);
    }
    netty.release();
    b.release();
  }

  @Test
  void derivedBuffers() {
    ByteBuf b = alloc.directBuffer(64);
    for (int i = 0; i < 64; i++) b.writeByte(i);
    ByteBuf slice = b.slice(8, 16);
    assertEquals(16, slice.capacity());
    assertEquals(8, slice.getByte(0));
    slice.setByte(0, 100);
    assertEquals(100, b.getByte(8), "a slice shares the memory");
    assertSame(b, slice.unwrap());
    assertEquals(1, b.refCnt());
    ByteBuf dup = b.duplicate();
    dup.readerIndex(30);
    assertEquals(0, b.readerIndex(), "a duplicate has its own indices");
    assertEquals(30, dup.readByte());

    ByteBuf retained = b.retainedSlice(4, 4);
    assertEquals(2, b.refCnt());
    ByteBuf retainedDup = b.retainedDuplicate();
    assertEquals(3, b.refCnt());
    ByteBuf readRetained = b.readRetainedSlice(2);
    assertEquals(4, b.refCnt());
    assertEquals(2, b.readerIndex());
    assertEquals(1, readRetained.getByte(1));
    ByteBuf readSlice = b.readSlice(2);
    assertEquals(3, readSlice.getByte(1));
    assertTrue(b.release() == false && retained.release() == false);
    assertFalse(retainedDup.release());
    assertEquals(1, heap.stats().liveBlocks(), "still held by the last retained slice");
    assertTrue(readRetained.release(), "the last reference frees the block");
    assertEquals(0, heap.stats().liveBlocks());
    assertEquals(0, slice.refCnt(), "derived buffers share the count");

    ByteBuf c = alloc.directBuffer(8).writeLong(5);
    ByteBuf copy = c.copy();
    assertTrue(copy.isDirect());
    assertEquals(5, copy.readLong());
    c.setLong(0, 6);
    assertEquals(5, copy.getLong(0), "a copy is independent");
    ByteBuf readOnly = c.asReadOnly();
    assertTrue(readOnly.isReadOnly());
    assertThrows(ReadOnlyBufferException.class, () -> readOnly.setByte(0, 1));
    assertEquals(6, readOnly.getLong(0));
    c.release();
    copy.release();
  }
}
