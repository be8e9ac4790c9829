// SPDX-License-Identifier: Apache-2.0
/*
 * Round trip over buffers: allocate `size` bytes as a DirectByteBuffer (Netty: its own direct
 * ByteBuf, which is what Netty users hold), write one byte, free it. Same thread, back to back:
 * the best case for every allocator, so the differences are the fixed costs of each path.
 * Latency and TwoThreads reuse these bodies with another mode or thread count.
 */
package io.segfit.bench;

import io.netty.buffer.ByteBuf;
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
public class RoundTripBuffer {
  @Param({"64", "1024", "16384", "1048576"})
  public int size;

  @Benchmark
  public ByteBuffer segfit(Peers.Segfit p) {
    ByteBuffer b = p.heap.allocate(size);
    b.put(0, (byte) 1);
    p.heap.free(b);
    return b;
  }

  /** The previous path, side by side: every call reaches the core (no thread cache). */
  @Benchmark
  @Fork(value = 1, jvmArgsPrepend = "-Dsegfit.threadCache=false")
  public ByteBuffer segfitCore(Peers.Segfit p) {
    ByteBuffer b = p.heap.allocate(size);
    b.put(0, (byte) 1);
    p.heap.free(b);
    return b;
  }

  @Benchmark
  public ByteBuffer allocateDirect() {
    ByteBuffer b = ByteBuffer.allocateDirect(size);
    b.put(0, (byte) 1);
    Unsafes.clean(b);
    return b;
  }

  @Benchmark
  public ByteBuf nettyPooled(Peers.NettyPooled p) {
    return nettyRoundTrip(p.alloc.directBuffer(size));
  }

  @Benchmark
  public ByteBuf nettyPooledLeakDefault(Peers.NettyPooledLeakDefault p) {
    return nettyRoundTrip(p.alloc.directBuffer(size));
  }

  @Benchmark
  public ByteBuf nettyAdaptive(Peers.NettyAdaptive p) {
    return nettyRoundTrip(p.alloc.directBuffer(size));
  }

  @Benchmark
  public ByteBuf nettyAdaptiveLeakDefault(Peers.NettyAdaptiveLeakDefault p) {
    return nettyRoundTrip(p.alloc.directBuffer(size));
  }

  private static ByteBuf nettyRoundTrip(ByteBuf b) {
    b.setByte(0, 1);
    b.release();
    return b;
  }

  @Benchmark
  public ByteBuffer lwjglMemAlloc(Peers.Lwjgl p) {
    ByteBuffer b = MemoryUtil.memAlloc(size);
    b.put(0, (byte) 1);
    MemoryUtil.memFree(b);
    return b;
  }

  @Benchmark
  public ByteBuffer lwjglJemalloc(Peers.Lwjgl p) {
    ByteBuffer b = JEmalloc.je_malloc(size);
    b.put(0, (byte) 1);
    JEmalloc.je_free(b);
    return b;
  }

  @Benchmark
  public ByteBuffer lwjglRpmalloc(Peers.Lwjgl p, Peers.Rpmalloc r) {
    ByteBuffer b = RPmalloc.rpmalloc(size);
    b.put(0, (byte) 1);
    RPmalloc.rpfree(b);
    return b;
  }
}
