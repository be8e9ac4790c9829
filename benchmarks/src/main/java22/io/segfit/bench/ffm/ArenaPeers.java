// SPDX-License-Identifier: Apache-2.0
/*
 * The arena peers of ArenaRoundTrip and ArenaBatch: one arena of each kind per invocation,
 * segfit's heap arenas (segfit-ffm's HeapArena, over the default heap) against the JDK's own,
 * each filled by the workload's use(Arena) and closed. JMH runs these inherited benchmarks under
 * each subclass's name, so the report sees one workload per subclass.
 */
package io.segfit.bench.ffm;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import io.segfit.Heap;
import io.segfit.ffm.HeapArena;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

@State(Scope.Thread)
public abstract class ArenaPeers {
  private Heap heap;

  @Setup(Level.Trial)
  public void setup() {
    heap = Heap.defaultHeap();
  }

  /** Allocates in the arena; the result keeps the JIT from dropping the work. */
  abstract long use(Arena arena);

  /** Writes one byte, as every allocation benchmark does. */
  static long touch(MemorySegment s) {
    s.set(JAVA_BYTE, 0, (byte) 1);
    return s.address();
  }

  @Benchmark
  public long segfitConfinedArena() {
    try (Arena arena = HeapArena.ofConfined(heap)) {
      return use(arena);
    }
  }

  @Benchmark
  public long segfitSharedArena() {
    try (Arena arena = HeapArena.ofShared(heap)) {
      return use(arena);
    }
  }

  @Benchmark
  public long ffmConfinedArena() {
    try (Arena arena = Arena.ofConfined()) {
      return use(arena);
    }
  }

  @Benchmark
  public long ffmSharedArena() {
    try (Arena arena = Arena.ofShared()) {
      return use(arena);
    }
  }
}
