// SPDX-License-Identifier: Apache-2.0
/*
 * Where ArenaRoundTrip's time goes, and the floor under it (by hand only, not in scripts/bench's
 * report). A segment that throws after close() needs a scope that close() can end, and the only
 * such scopes are the JDK's arenas' (MemorySegment.Scope has no public implementation), so an
 * arena per allocation built on segfit pays at least: a JDK arena opened and closed (scopeOnly),
 * a segment bound to its scope (scopeAndSegment, over a block allocated once), and segfit's own
 * zeroed round trip (heapZeroedBlock). scopeOnly lets the JIT scalar-replace the arena, as it does
 * in ArenaRoundTrip; scopeEscaping does not (the arena is handed to a Blackhole). jdkArena is
 * ArenaRoundTrip.ffmConfinedArena, here to give every row its ratio in the same run; heapArena is
 * ArenaRoundTrip.segfitConfinedArena. The *Batch rows are ArenaBatch's workload (score per
 * segment): heapZeroedBatch is the heap's part of it, the same blocks kept in a long[] and freed.
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
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ArenaFloor {
  @Param({"64", "1024"})
  public int size;

  private Heap heap;
  /** scopeAndSegment's block, allocated once: that row measures no allocator. */
  private long block;
  private final long[] batch = new long[ArenaBatch.COUNT];

  @Setup(Level.Trial)
  public void setup() {
    heap = Heap.defaultHeap();
    block = heap.allocateZeroedAddress(size);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    heap.freeAddress(block);
  }

  @Benchmark
  public boolean scopeOnly() {
    Arena arena = Arena.ofConfined();
    arena.close();
    return arena.scope().isAlive();
  }

  @Benchmark
  public void scopeEscaping(Blackhole bh) {
    Arena arena = Arena.ofConfined();
    bh.consume(arena);
    arena.close();
  }

  @Benchmark
  public long scopeAndSegment() {
    try (Arena arena = Arena.ofConfined()) {
      return ArenaPeers.touch(MemorySegment.ofAddress(block).reinterpret(size, arena, null));
    }
  }

  @Benchmark
  public long heapZeroedBlock() {
    long a = heap.allocateZeroedAddress(size);
    MemorySegment.ofAddress(a).reinterpret(size).set(JAVA_BYTE, 0, (byte) 1);
    heap.freeAddress(a);
    return a;
  }

  @Benchmark
  public long jdkArena() {
    try (Arena arena = Arena.ofConfined()) {
      return ArenaPeers.touch(arena.allocate(size, 8));
    }
  }

  @Benchmark
  public long heapArena() {
    try (Arena arena = HeapArena.ofConfined(heap)) {
      return ArenaPeers.touch(arena.allocate(size, 8));
    }
  }

  @Benchmark
  @OperationsPerInvocation(ArenaBatch.COUNT)
  public long heapZeroedBatch() {
    long sum = 0;
    for (int i = 0; i < batch.length; i++) {
      long a = heap.allocateZeroedAddress(size);
      MemorySegment.ofAddress(a).reinterpret(size).set(JAVA_BYTE, 0, (byte) 1);
      batch[i] = a;
      sum += a;
    }
    for (long a : batch) heap.freeAddress(a);
    return sum;
  }

  @Benchmark
  @OperationsPerInvocation(ArenaBatch.COUNT)
  public long jdkArenaBatch() {
    try (Arena arena = Arena.ofConfined()) {
      return fill(arena);
    }
  }

  @Benchmark
  @OperationsPerInvocation(ArenaBatch.COUNT)
  public long heapArenaBatch() {
    try (Arena arena = HeapArena.ofConfined(heap)) {
      return fill(arena);
    }
  }

  /** A shared arena's close is a handshake with every thread: here spread over the batch. */
  @Benchmark
  @OperationsPerInvocation(ArenaBatch.COUNT)
  public long jdkSharedArenaBatch() {
    try (Arena arena = Arena.ofShared()) {
      return fill(arena);
    }
  }

  @Benchmark
  @OperationsPerInvocation(ArenaBatch.COUNT)
  public long heapSharedArenaBatch() {
    try (Arena arena = HeapArena.ofShared(heap)) {
      return fill(arena);
    }
  }

  /** ArenaBatch's workload; inlined into each caller, so each sees one arena class. */
  private long fill(Arena arena) {
    long sum = 0;
    for (int i = 0; i < ArenaBatch.COUNT; i++) sum += ArenaPeers.touch(arena.allocate(size, 8));
    return sum;
  }
}
