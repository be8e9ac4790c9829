// SPDX-License-Identifier: Apache-2.0
/*
 * The batch workload (see io.segfit.bench.Batch) for the FFM peers: one confined arena per
 * buffer, closed in the shuffled order (an arena is FFM's unit of free), and critical
 * malloc/free downcalls with each buffer wrapped as a DirectByteBuffer.
 */
package io.segfit.bench.ffm;

import io.segfit.bench.SizeMix;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
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
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(SizeMix.COUNT)
public class BatchFfm {
  private final SizeMix mix = new SizeMix();
  private final Arena[] arenas = new Arena[SizeMix.COUNT];
  private final long[] addresses = new long[SizeMix.COUNT];

  @Benchmark
  public int ffmConfinedArena() {
    int[] sizes = mix.sizes;
    for (int i = 0; i < sizes.length; i++) {
      Arena arena = Arena.ofConfined();
      ByteBuffer b = arena.allocate(sizes[i]).asByteBuffer();
      b.put(0, (byte) 1);
      arenas[i] = arena;
    }
    for (int i : mix.freeOrder) {
      arenas[i].close();
      arenas[i] = null;
    }
    return sizes.length;
  }

  @Benchmark
  public int ffmCriticalMalloc() {
    int[] sizes = mix.sizes;
    for (int i = 0; i < sizes.length; i++) {
      long a = Libc.malloc(sizes[i]);
      ByteBuffer b = Libc.wrap(a, sizes[i]);
      b.put(0, (byte) 1);
      addresses[i] = a;
    }
    for (int i : mix.freeOrder) {
      Libc.free(addresses[i]);
    }
    return sizes.length;
  }
}
