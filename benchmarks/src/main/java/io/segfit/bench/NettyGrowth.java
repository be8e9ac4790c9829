// SPDX-License-Identifier: Apache-2.0
/*
 * ByteBuf capacity growth: a 4 KiB direct ByteBuf with a mark at offset 0, then capacity(n)
 * doubled 14 times up to 64 MiB, a byte written at the end after each step; the mark must
 * survive (checked). Each allocator grows the way ByteBuf.capacity(n) does there: segfit
 * reallocates the block (mremap for large blocks), Netty's allocators allocate anew and copy.
 * One operation = the whole 4 KiB -> 64 MiB growth and the release.
 */
package io.segfit.bench;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.util.concurrent.TimeUnit;
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
public class NettyGrowth {
  private static final byte MARK = 0x5a;

  @Benchmark
  public int segfit(Peers.SegfitNetty p) {
    return grow(p.alloc);
  }

  @Benchmark
  public int segfitLeakDefault(Peers.SegfitNettyLeakDefault p) {
    return grow(p.alloc);
  }

  @Benchmark
  public int nettyPooled(Peers.NettyPooled p) {
    return grow(p.alloc);
  }

  @Benchmark
  public int nettyPooledLeakDefault(Peers.NettyPooledLeakDefault p) {
    return grow(p.alloc);
  }

  @Benchmark
  public int nettyAdaptive(Peers.NettyAdaptive p) {
    return grow(p.alloc);
  }

  @Benchmark
  public int nettyAdaptiveLeakDefault(Peers.NettyAdaptiveLeakDefault p) {
    return grow(p.alloc);
  }

  private static int grow(ByteBufAllocator alloc) {
    ByteBuf b = alloc.directBuffer(ReallocGrowth.START, ReallocGrowth.END);
    b.setByte(0, MARK);
    for (int n = ReallocGrowth.START * 2; n <= ReallocGrowth.END; n <<= 1) {
      b.capacity(n);
      b.setByte(n - 1, 1);
    }
    byte mark = b.getByte(0);
    int capacity = b.capacity();
    b.release();
    if (mark != MARK) throw new IllegalStateException("growth lost the first byte: " + mark);
    return capacity;
  }
}
