// SPDX-License-Identifier: Apache-2.0
/*
 * Not JMH: ArenaRoundTrip's and ArenaBatch's workloads, and ArenaFloor's parts, timed in the
 * calling thread's CPU time, best of many runs, for a machine that other work keeps busy (JMH's
 * wall-clock scores then measure the scheduler; see io.segfit.bench.CpuTimeRoundTrip). Every
 * case pays the same interface call per invocation (each written out, so that each allocate
 * sees one arena class, as in a JMH fork); compare the cases of one run, as ratios.
 * Batch cases are per segment (1,000 segments per arena). Usage:
 *   java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/benchmarks.jar \
 *        io.segfit.bench.ffm.CpuTimeArenas [size=64] [rounds=3]
 */
package io.segfit.bench.ffm;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import io.segfit.Heap;
import io.segfit.ffm.HeapArena;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;

public final class CpuTimeArenas {
  private static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();
  /** Segments per run, whatever the case. */
  private static final int SEGMENTS = 2_000_000;
  private static final int RUNS = 5;
  private static long sink;

  private interface Op {
    long run();
  }

  /** perInvocation: segments one run() allocates. */
  private record Case(String name, int perInvocation, Op op) {}

  private CpuTimeArenas() {}

  /** Best CPU time per segment over RUNS runs. */
  private static double measure(Case c) {
    int invocations = SEGMENTS / c.perInvocation();
    double best = Double.MAX_VALUE;
    for (int r = 0; r < RUNS; r++) {
      long t0 = MX.getCurrentThreadCpuTime();
      long s = 0;
      for (int i = 0; i < invocations; i++) s += c.op().run();
      long t1 = MX.getCurrentThreadCpuTime();
      sink += s;
      best = Math.min(best, (t1 - t0) / (double) SEGMENTS);
    }
    return best;
  }

  public static void main(String[] args) throws Exception {
    int size = args.length > 0 ? Integer.parseInt(args[0]) : 64;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    Heap heap = Heap.defaultHeap();
    long[] blocks = new long[ArenaBatch.COUNT];
    int n = ArenaBatch.COUNT;
    // Each case written out, so that each call site sees one arena class, as in JMH's forks.
    Case[] cases = {
      new Case("round trip: HeapArena.ofConfined", 1, () -> {
        try (Arena arena = HeapArena.ofConfined(heap)) {
          return ArenaPeers.touch(arena.allocate(size, 8));
        }
      }),
      new Case("round trip: Arena.ofConfined", 1, () -> {
        try (Arena arena = Arena.ofConfined()) {
          return ArenaPeers.touch(arena.allocate(size, 8));
        }
      }),
      new Case("round trip floor: heap zeroed block", 1, () -> {
        long a = heap.allocateZeroedAddress(size);
        MemorySegment.ofAddress(a).reinterpret(size).set(JAVA_BYTE, 0, (byte) 1);
        heap.freeAddress(a);
        return a;
      }),
      new Case("batch: HeapArena.ofConfined", n, () -> {
        try (Arena arena = HeapArena.ofConfined(heap)) {
          long sum = 0;
          for (int i = 0; i < n; i++) sum += ArenaPeers.touch(arena.allocate(size, 8));
          return sum;
        }
      }),
      new Case("batch: HeapArena.ofShared", n, () -> {
        try (Arena arena = HeapArena.ofShared(heap)) {
          long sum = 0;
          for (int i = 0; i < n; i++) sum += ArenaPeers.touch(arena.allocate(size, 8));
          return sum;
        }
      }),
      new Case("batch: Arena.ofConfined", n, () -> {
        try (Arena arena = Arena.ofConfined()) {
          long sum = 0;
          for (int i = 0; i < n; i++) sum += ArenaPeers.touch(arena.allocate(size, 8));
          return sum;
        }
      }),
      new Case("batch: Arena.ofShared", n, () -> {
        try (Arena arena = Arena.ofShared()) {
          long sum = 0;
          for (int i = 0; i < n; i++) sum += ArenaPeers.touch(arena.allocate(size, 8));
          return sum;
        }
      }),
      new Case("batch floor: heap zeroed blocks", n, () -> {
        long sum = 0;
        for (int i = 0; i < n; i++) {
          long a = heap.allocateZeroedAddress(size);
          MemorySegment.ofAddress(a).reinterpret(size).set(JAVA_BYTE, 0, (byte) 1);
          blocks[i] = a;
          sum += a;
        }
        for (long a : blocks) heap.freeAddress(a);
        return sum;
      }),
    };
    double[] best = new double[cases.length];
    java.util.Arrays.fill(best, Double.MAX_VALUE);
    for (int r = 0; r < rounds; r++) {
      for (int i = 0; i < cases.length; i++) best[i] = Math.min(best[i], measure(cases[i]));
    }
    System.out.printf("size %d, Java %s, CPU ns per segment, best of %d x %d runs%n", size,
        Runtime.version(), rounds, RUNS);
    for (int i = 0; i < cases.length; i++) {
      System.out.printf("%-38s %7.2f%n", cases[i].name(), best[i]);
    }
    System.out.printf("HeapArena.ofConfined / Arena.ofConfined: round trip %.2fx, batch %.2fx; "
        + "HeapArena.ofShared batch / Arena.ofConfined %.2fx, / Arena.ofShared %.2fx%n",
        best[0] / best[1], best[3] / best[5], best[4] / best[5], best[4] / best[6]);
    System.out.println("load average " + Files.readString(Path.of("/proc/loadavg")).trim());
    if (sink == 42) System.out.println();
  }
}
