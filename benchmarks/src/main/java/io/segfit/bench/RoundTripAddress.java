// SPDX-License-Identifier: Apache-2.0
/*
 * Round trip over raw addresses (no buffer object): allocate `size` bytes, write one byte with
 * Unsafe.putByte (the same touch for every peer), free. For users who hold memory as a long.
 */
package io.segfit.bench;

import static io.segfit.bench.Unsafes.UNSAFE;

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
public class RoundTripAddress {
  @Param({"64", "1024", "16384", "1048576"})
  public int size;

  @Benchmark
  public long segfit(Peers.Segfit p) {
    long a = p.heap.allocateAddress(size);
    UNSAFE.putByte(a, (byte) 1);
    p.heap.freeAddress(a);
    return a;
  }

  /** The previous path, side by side: every call reaches the core (no thread cache). */
  @Benchmark
  @Fork(value = 1, jvmArgsPrepend = "-Dsegfit.threadCache=false")
  public long segfitCore(Peers.Segfit p) {
    long a = p.heap.allocateAddress(size);
    UNSAFE.putByte(a, (byte) 1);
    p.heap.freeAddress(a);
    return a;
  }

  @Benchmark
  public long unsafe() {
    long a = UNSAFE.allocateMemory(size);
    UNSAFE.putByte(a, (byte) 1);
    UNSAFE.freeMemory(a);
    return a;
  }

  @Benchmark
  public long lwjglMemAlloc(Peers.Lwjgl p) {
    long a = MemoryUtil.nmemAlloc(size);
    UNSAFE.putByte(a, (byte) 1);
    MemoryUtil.nmemFree(a);
    return a;
  }

  @Benchmark
  public long lwjglJemalloc(Peers.Lwjgl p) {
    long a = JEmalloc.nje_malloc(size);
    UNSAFE.putByte(a, (byte) 1);
    JEmalloc.nje_free(a);
    return a;
  }

  @Benchmark
  public long lwjglRpmalloc(Peers.Lwjgl p, Peers.Rpmalloc r) {
    long a = RPmalloc.nrpmalloc(size);
    UNSAFE.putByte(a, (byte) 1);
    RPmalloc.nrpfree(a);
    return a;
  }
}
