// SPDX-License-Identifier: Apache-2.0
/*
 * Batch: allocate 10,000 buffers of the fixed-seed SizeMix (70% 16-256 B, 25% to 8 KiB, 5% to
 * 256 KiB; about 80 MiB live at the peak), write one byte into each, then free them in a
 * shuffled order. Scores are per buffer (allocate + touch + free), so they compare directly with
 * the round trips; unlike those, blocks of many classes are live at once and are freed out of
 * order, which exercises each allocator's slab and free-list bookkeeping.
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
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
@OperationsPerInvocation(SizeMix.COUNT)
public class Batch {
  private final SizeMix mix = new SizeMix();
  private final ByteBuffer[] buffers = new ByteBuffer[SizeMix.COUNT];
  private final ByteBuf[] bufs = new ByteBuf[SizeMix.COUNT];
  private final long[] addresses = new long[SizeMix.COUNT];

  @Benchmark
  public int segfit(Peers.Segfit p) {
    int[] sizes = mix.sizes;
    for (int i = 0; i < sizes.length; i++) {
      ByteBuffer b = p.heap.allocate(sizes[i]);
      b.put(0, (byte) 1);
      buffers[i] = b;
    }
    for (int i : mix.freeOrder) {
      p.heap.free(buffers[i]);
      buffers[i] = null;
    }
    return sizes.length;
  }

  @Benchmark
  public int segfitAddress(Peers.Segfit p) {
    int[] sizes = mix.sizes;
    for (int i = 0; i < sizes.length; i++) {
      long a = p.heap.allocateAddress(sizes[i]);
      UNSAFE.putByte(a, (byte) 1);
      addresses[i] = a;
    }
    for (int i : mix.freeOrder) {
      p.heap.freeAddress(addresses[i]);
    }
    return sizes.length;
  }

  @Benchmark
  public int allocateDirect() {
    int[] sizes = mix.sizes;
    for (int i = 0; i < sizes.length; i++) {
      ByteBuffer b = ByteBuffer.allocateDirect(sizes[i]);
      b.put(0, (byte) 1);
      buffers[i] = b;
    }
    for (int i : mix.freeOrder) {
      Unsafes.clean(buffers[i]);
      buffers[i] = null;
    }
    return sizes.length;
  }

  @Benchmark
  public int unsafe() {
    int[] sizes = mix.sizes;
    for (int i = 0; i < sizes.length; i++) {
      long a = UNSAFE.allocateMemory(sizes[i]);
      UNSAFE.putByte(a, (byte) 1);
      addresses[i] = a;
    }
    for (int i : mix.freeOrder) {
      UNSAFE.freeMemory(addresses[i]);
    }
    return sizes.length;
  }

  @Benchmark
  public int nettyPooled(Peers.NettyPooled p) {
    return netty(p.alloc);
  }

  @Benchmark
  public int nettyAdaptive(Peers.NettyAdaptive p) {
    return netty(p.alloc);
  }

  private int netty(ByteBufAllocator alloc) {
    int[] sizes = mix.sizes;
    for (int i = 0; i < sizes.length; i++) {
      ByteBuf b = alloc.directBuffer(sizes[i]);
      b.setByte(0, 1);
      bufs[i] = b;
    }
    for (int i : mix.freeOrder) {
      bufs[i].release();
      bufs[i] = null;
    }
    return sizes.length;
  }

  @Benchmark
  public int lwjglMemAlloc(Peers.Lwjgl p) {
    int[] sizes = mix.sizes;
    for (int i = 0; i < sizes.length; i++) {
      ByteBuffer b = MemoryUtil.memAlloc(sizes[i]);
      b.put(0, (byte) 1);
      buffers[i] = b;
    }
    for (int i : mix.freeOrder) {
      MemoryUtil.memFree(buffers[i]);
      buffers[i] = null;
    }
    return sizes.length;
  }

  @Benchmark
  public int lwjglJemalloc(Peers.Lwjgl p) {
    int[] sizes = mix.sizes;
    for (int i = 0; i < sizes.length; i++) {
      ByteBuffer b = JEmalloc.je_malloc(sizes[i]);
      b.put(0, (byte) 1);
      buffers[i] = b;
    }
    for (int i : mix.freeOrder) {
      JEmalloc.je_free(buffers[i]);
      buffers[i] = null;
    }
    return sizes.length;
  }

  @Benchmark
  public int lwjglRpmalloc(Peers.Lwjgl p, Peers.Rpmalloc r) {
    int[] sizes = mix.sizes;
    for (int i = 0; i < sizes.length; i++) {
      ByteBuffer b = RPmalloc.rpmalloc(sizes[i]);
      b.put(0, (byte) 1);
      buffers[i] = b;
    }
    for (int i : mix.freeOrder) {
      RPmalloc.rpfree(buffers[i]);
      buffers[i] = null;
    }
    return sizes.length;
  }
}
