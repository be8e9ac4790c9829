// SPDX-License-Identifier: Apache-2.0
/*
 * Netty's ByteBuf round trip, through ByteBufAllocator only: directBuffer(size), write a long
 * and a byte at the writer index, release. segfit's SegfitByteBufAllocator against Netty's
 * PooledByteBufAllocator and AdaptiveByteBufAllocator, each with leak detection off and at
 * Netty's default (SIMPLE, one buffer in 128 tracked). NettyTwoThreads runs the same bodies on
 * two threads at once.
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
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class NettyRoundTrip {
  @Param({"64", "1024", "16384", "1048576"})
  public int size;

  @Benchmark
  public ByteBuf segfit(Peers.SegfitNetty p) {
    return roundTrip(p.alloc);
  }

  @Benchmark
  public ByteBuf segfitLeakDefault(Peers.SegfitNettyLeakDefault p) {
    return roundTrip(p.alloc);
  }

  @Benchmark
  public ByteBuf nettyPooled(Peers.NettyPooled p) {
    return roundTrip(p.alloc);
  }

  @Benchmark
  public ByteBuf nettyPooledLeakDefault(Peers.NettyPooledLeakDefault p) {
    return roundTrip(p.alloc);
  }

  @Benchmark
  public ByteBuf nettyAdaptive(Peers.NettyAdaptive p) {
    return roundTrip(p.alloc);
  }

  @Benchmark
  public ByteBuf nettyAdaptiveLeakDefault(Peers.NettyAdaptiveLeakDefault p) {
    return roundTrip(p.alloc);
  }

  private ByteBuf roundTrip(ByteBufAllocator alloc) {
    ByteBuf b = alloc.directBuffer(size);
    b.writeLong(size).writeByte(1);
    b.release();
    return b;
  }
}
