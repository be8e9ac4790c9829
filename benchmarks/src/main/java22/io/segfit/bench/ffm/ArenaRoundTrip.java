// SPDX-License-Identifier: Apache-2.0
/*
 * An arena per allocation: open an arena, allocate one zeroed segment, write a byte through it,
 * close the arena; the FFM way to free one block. segfit's heap arenas (segfit-ffm's HeapArena,
 * over the default heap) against the JDK's own arenas of the same kind. A shared arena's close
 * waits for a handshake with every thread, so the shared rows measure that more than memory.
 */
package io.segfit.bench.ffm;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import io.segfit.Heap;
import io.segfit.ffm.HeapArena;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
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
public class ArenaRoundTrip {
  @Param({"64", "1024", "16384"})
  public int size;

  private Heap heap;

  @Setup(Level.Trial)
  public void setup() {
    heap = Heap.defaultHeap();
  }

  @Benchmark
  public long segfitConfinedArena() {
    try (Arena arena = HeapArena.ofConfined(heap)) {
      return touch(arena.allocate(size, 8));
    }
  }

  @Benchmark
  public long segfitSharedArena() {
    try (Arena arena = HeapArena.ofShared(heap)) {
      return touch(arena.allocate(size, 8));
    }
  }

  @Benchmark
  public long ffmConfinedArena() {
    try (Arena arena = Arena.ofConfined()) {
      return touch(arena.allocate(size, 8));
    }
  }

  @Benchmark
  public long ffmSharedArena() {
    try (Arena arena = Arena.ofShared()) {
      return touch(arena.allocate(size, 8));
    }
  }

  static long touch(MemorySegment s) {
    s.set(JAVA_BYTE, 0, (byte) 1);
    return s.address();
  }
}
