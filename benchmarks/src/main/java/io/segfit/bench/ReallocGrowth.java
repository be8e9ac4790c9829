// SPDX-License-Identifier: Apache-2.0
/*
 * Realloc growth: start with 4 KiB, write a byte at offset 0, then double the block 14 times up
 * to 64 MiB, writing the last byte after each growth; the first byte must survive every step
 * (checked; a lost byte throws). Peers with a realloc call it (Unsafe.reallocateMemory and LWJGL
 * memRealloc are glibc realloc; je_realloc; rprealloc). Peers without one grow the way their
 * users must: allocate the new size, copy the old contents, free the old block (allocateDirect;
 * Netty's ByteBuf.capacity(n) does exactly that inside the allocator). One operation = the whole
 * 4 KiB -> 64 MiB growth and the final free.
 */
package io.segfit.bench;

import static io.segfit.bench.Unsafes.UNSAFE;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.lwjgl.system.MemoryUtil;
import org.lwjgl.system.jemalloc.JEmalloc;
import org.lwjgl.system.rpmalloc.RPmalloc;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class ReallocGrowth {
  public static final int START = 4 * 1024;
  public static final int END = 64 * 1024 * 1024;
  private static final byte MARK = 0x5a;

  @Benchmark
  public int segfit(Peers.Segfit p) {
    ByteBuffer b = p.heap.allocate(START);
    b.put(0, MARK);
    for (int n = START * 2; n <= END; n <<= 1) {
      b = p.heap.reallocate(b, n);
      b.put(n - 1, (byte) 1);
    }
    check(b.get(0));
    p.heap.free(b);
    return b.capacity();
  }

  @Benchmark
  public long segfitAddress(Peers.Segfit p) {
    long a = p.heap.allocateAddress(START);
    UNSAFE.putByte(a, MARK);
    for (long n = START * 2; n <= END; n <<= 1) {
      a = p.heap.reallocateAddress(a, n);
      UNSAFE.putByte(a + n - 1, (byte) 1);
    }
    check(UNSAFE.getByte(a));
    p.heap.freeAddress(a);
    return a;
  }

  @Benchmark
  public long unsafe() {
    long a = UNSAFE.allocateMemory(START);
    UNSAFE.putByte(a, MARK);
    for (long n = START * 2; n <= END; n <<= 1) {
      a = UNSAFE.reallocateMemory(a, n);
      UNSAFE.putByte(a + n - 1, (byte) 1);
    }
    check(UNSAFE.getByte(a));
    UNSAFE.freeMemory(a);
    return a;
  }

  @Benchmark
  public int lwjglMemRealloc(Peers.Lwjgl p) {
    ByteBuffer b = MemoryUtil.memAlloc(START);
    b.put(0, MARK);
    for (int n = START * 2; n <= END; n <<= 1) {
      b = MemoryUtil.memRealloc(b, n);
      b.put(n - 1, (byte) 1);
    }
    check(b.get(0));
    MemoryUtil.memFree(b);
    return b.capacity();
  }

  @Benchmark
  public int lwjglJemalloc(Peers.Lwjgl p) {
    ByteBuffer b = JEmalloc.je_malloc(START);
    b.put(0, MARK);
    for (int n = START * 2; n <= END; n <<= 1) {
      b = JEmalloc.je_realloc(b, n);
      b.put(n - 1, (byte) 1);
    }
    check(b.get(0));
    JEmalloc.je_free(b);
    return b.capacity();
  }

  @Benchmark
  public int lwjglRpmalloc(Peers.Lwjgl p, Peers.Rpmalloc r) {
    ByteBuffer b = RPmalloc.rpmalloc(START);
    b.put(0, MARK);
    for (int n = START * 2; n <= END; n <<= 1) {
      b = RPmalloc.rprealloc(b, n);
      b.put(n - 1, (byte) 1);
    }
    check(b.get(0));
    RPmalloc.rpfree(b);
    return b.capacity();
  }

  @Benchmark
  public int allocateDirect() {
    ByteBuffer b = ByteBuffer.allocateDirect(START);
    b.put(0, MARK);
    for (int n = START * 2; n <= END; n <<= 1) {
      ByteBuffer grown = ByteBuffer.allocateDirect(n);
      grown.put(0, b, 0, b.capacity());
      Unsafes.clean(b);
      b = grown;
      b.put(n - 1, (byte) 1);
    }
    check(b.get(0));
    Unsafes.clean(b);
    return b.capacity();
  }

  @Benchmark
  public int nettyPooled(Peers.NettyPooled p) {
    return netty(p.alloc);
  }

  @Benchmark
  public int nettyAdaptive(Peers.NettyAdaptive p) {
    return netty(p.alloc);
  }

  private static int netty(ByteBufAllocator alloc) {
    ByteBuf b = alloc.directBuffer(START);
    b.setByte(0, MARK);
    for (int n = START * 2; n <= END; n <<= 1) {
      b.capacity(n);
      b.setByte(n - 1, 1);
    }
    check(b.getByte(0));
    int capacity = b.capacity();
    b.release();
    return capacity;
  }

  static void check(byte first) {
    if (first != MARK) {
      throw new AssertionError("realloc lost the contents: first byte " + first);
    }
  }
}
