// SPDX-License-Identifier: Apache-2.0
/*
 * An arena for a batch: open an arena, allocate 1,000 zeroed segments of one size, write a byte
 * into each, close the arena (every block freed at once). Score per segment, so the arena's own
 * cost is spread over the batch. segfit's heap arenas (segfit-ffm's HeapArena, over the default
 * heap) against the JDK's arenas of the same kind.
 */
package io.segfit.bench.ffm;

import static io.segfit.bench.ffm.ArenaRoundTrip.touch;

import io.segfit.Heap;
import io.segfit.ffm.HeapArena;
import java.lang.foreign.Arena;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(ArenaBatch.COUNT)
public class ArenaBatch {
  static final int COUNT = 1000;

  @Param({"64", "1024"})
  public int size;

  private Heap heap;

  @Setup(Level.Trial)
  public void setup() {
    heap = Heap.defaultHeap();
  }

  @Benchmark
  public long segfitConfinedArena() {
    try (Arena arena = HeapArena.ofConfined(heap)) {
      return fill(arena);
    }
  }

  @Benchmark
  public long segfitSharedArena() {
    try (Arena arena = HeapArena.ofShared(heap)) {
      return fill(arena);
    }
  }

  @Benchmark
  public long ffmConfinedArena() {
    try (Arena arena = Arena.ofConfined()) {
      return fill(arena);
    }
  }

  @Benchmark
  public long ffmSharedArena() {
    try (Arena arena = Arena.ofShared()) {
      return fill(arena);
    }
  }

  private long fill(Arena arena) {
    long sum = 0;
    for (int i = 0; i < COUNT; i++) sum += touch(arena.allocate(size, 8));
    return sum;
  }
}
