// SPDX-License-Identifier: Apache-2.0
/*
 * Not JMH: ArenaFloor's rows (ArenaRoundTrip's and ArenaBatch's workloads, and their floors)
 * timed in the calling thread's CPU time, best of many runs, for a machine that other work keeps
 * busy (JMH's wall-clock scores then measure the scheduler; see io.segfit.bench.CpuTimeRoundTrip,
 * whose timing loop this uses). Every case pays the same interface call per invocation; compare
 * the cases of one run, as ratios. Batch rows are per segment. Usage:
 *   java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/benchmarks.jar \
 *        io.segfit.bench.ffm.CpuTimeArenas [size=64] [rounds=3] [only: cases whose name has it]
 */
package io.segfit.bench.ffm;

import io.segfit.bench.CpuTimeRoundTrip;
import io.segfit.bench.CpuTimeRoundTrip.Op;
import java.nio.file.Files;
import java.nio.file.Path;

public final class CpuTimeArenas {
  /** Segments per timed run, whatever the case. */
  private static final int SEGMENTS = 2_000_000;

  /** perInvocation: segments one call of op allocates. */
  private record Case(String name, int perInvocation, Op op) {}

  private CpuTimeArenas() {}

  public static void main(String[] args) throws Exception {
    int size = args.length > 0 ? Integer.parseInt(args[0]) : 64;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    String only = args.length > 2 ? args[2] : "";
    ArenaFloor f = new ArenaFloor();
    f.size = size;
    f.setup();
    int n = ArenaBatch.COUNT;
    Case[] cases = {
      new Case("round trip: HeapArena.ofConfined", 1, f::heapArena),
      new Case("round trip: Arena.ofConfined", 1, f::jdkArena),
      new Case("round trip floor: heap zeroed block", 1, f::heapZeroedBlock),
      new Case("round trip floor: scope and segment", 1, f::scopeAndSegment),
      new Case("batch: HeapArena.ofConfined", n, f::heapArenaBatch),
      new Case("batch: Arena.ofConfined", n, f::jdkArenaBatch),
      new Case("batch: HeapArena.ofShared", n, f::heapSharedArenaBatch),
      new Case("batch: Arena.ofShared", n, f::jdkSharedArenaBatch),
      new Case("batch floor: heap zeroed blocks", n, f::heapZeroedBatch),
    };
    double[] best = new double[cases.length];
    java.util.Arrays.fill(best, Double.NaN);
    for (int r = 0; r < rounds; r++) {
      for (int i = 0; i < cases.length; i++) {
        Case c = cases[i];
        if (!c.name().contains(only)) continue;
        if (r == 0) best[i] = Double.MAX_VALUE;
        best[i] = Math.min(best[i],
            CpuTimeRoundTrip.measure(c.op(), SEGMENTS / c.perInvocation(), c.perInvocation()));
      }
    }
    f.tearDown();
    System.out.printf("size %d, Java %s, CPU ns per segment, best of %d x %d runs%n", size,
        Runtime.version(), rounds, CpuTimeRoundTrip.RUNS);
    for (int i = 0; i < cases.length; i++) {
      if (!Double.isNaN(best[i])) System.out.printf("%-38s %7.2f%n", cases[i].name(), best[i]);
    }
    System.out.printf("HeapArena.ofConfined / Arena.ofConfined: round trip %.2fx, batch %.2fx; "
        + "HeapArena.ofShared batch / Arena.ofConfined %.2fx, / Arena.ofShared %.2fx%n",
        best[0] / best[1], best[4] / best[5], best[6] / best[5], best[6] / best[7]);
    System.out.println("load average " + Files.readString(Path.of("/proc/loadavg")).trim());
  }
}
