// SPDX-License-Identifier: Apache-2.0
/*
 * Not JMH: round trips timed in the calling thread's CPU time, best of many runs, for a machine
 * that other work keeps busy (JMH's wall-clock scores then measure the scheduler). Every case
 * pays the same interface call per operation, so compare the cases of one run, not the figures
 * with JMH's. Cases: segfit's address and buffer round trips, the JavaSlabModel design model's,
 * and LWJGL's rpmalloc, jemalloc and memAlloc. Usage:
 *   java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/benchmarks.jar \
 *        io.segfit.bench.CpuTimeRoundTrip [size=64] [rounds=3]
 */
package io.segfit.bench;

import io.segfit.Heap;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.lwjgl.system.MemoryUtil;
import org.lwjgl.system.jemalloc.JEmalloc;
import org.lwjgl.system.rpmalloc.RPmalloc;

public final class CpuTimeRoundTrip {
  private static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();
  private static final int OPS = 2_000_000;
  /** Runs per measure(); public for the other CPU-time drivers (ffm.CpuTimeArenas). */
  public static final int RUNS = 5;
  private static long sink;

  /** One timed operation; its result keeps the JIT from dropping the work. */
  public interface Op {
    long run();
  }

  private record Case(String name, Op op) {}

  private CpuTimeRoundTrip() {}

  private static double measure(Op op) {
    return measure(op, OPS, 1);
  }

  /**
   * Best CPU time per unit over RUNS runs of {@code ops} calls of op, each call doing
   * {@code unitsPerOp} units (segments of a batch, say).
   */
  public static double measure(Op op, int ops, int unitsPerOp) {
    double best = Double.MAX_VALUE;
    for (int r = 0; r < RUNS; r++) {
      long t0 = MX.getCurrentThreadCpuTime();
      long s = 0;
      for (int i = 0; i < ops; i++) s += op.run();
      long t1 = MX.getCurrentThreadCpuTime();
      sink += s;
      best = Math.min(best, (t1 - t0) / ((double) ops * unitsPerOp));
    }
    return best;
  }

  public static void main(String[] args) throws Exception {
    int size = args.length > 0 ? Integer.parseInt(args[0]) : 64;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    Heap heap = Heap.defaultHeap();
    JavaSlabModel model = new JavaSlabModel();
    model.size = size;
    model.setup();
    RPmalloc.rpmalloc_initialize();
    RPmalloc.rpmalloc_thread_initialize();
    Case[] cases = {
      new Case("segfit address", () -> {
        long a = heap.allocateAddress(size);
        MemoryUtil.memPutByte(a, (byte) 1);
        heap.freeAddress(a);
        return a;
      }),
      new Case("segfit buffer", () -> {
        ByteBuffer b = heap.allocate(size);
        b.put(0, (byte) 1);
        heap.free(b);
        return b.capacity();
      }),
      new Case("model address", model::address),
      new Case("model buffer", () -> model.buffer().capacity()),
      new Case("rpmalloc address", () -> {
        long a = RPmalloc.nrpmalloc(size);
        MemoryUtil.memPutByte(a, (byte) 1);
        RPmalloc.nrpfree(a);
        return a;
      }),
      new Case("rpmalloc buffer", () -> {
        ByteBuffer b = RPmalloc.rpmalloc(size);
        b.put(0, (byte) 1);
        RPmalloc.rpfree(b);
        return b.capacity();
      }),
      new Case("jemalloc buffer", () -> {
        ByteBuffer b = JEmalloc.je_malloc(size);
        b.put(0, (byte) 1);
        JEmalloc.je_free(b);
        return b.capacity();
      }),
      new Case("memAlloc address", () -> {
        long a = MemoryUtil.nmemAlloc(size);
        MemoryUtil.memPutByte(a, (byte) 1);
        MemoryUtil.nmemFree(a);
        return a;
      }),
    };
    double[] best = new double[cases.length];
    java.util.Arrays.fill(best, Double.MAX_VALUE);
    for (int r = 0; r < rounds; r++) {
      for (int i = 0; i < cases.length; i++) best[i] = Math.min(best[i], measure(cases[i].op()));
    }
    System.out.printf("size %d, Java %s, CPU ns per round trip, best of %d x %d runs%n", size,
        Runtime.version(), rounds, RUNS);
    for (int i = 0; i < cases.length; i++) System.out.printf("%-18s %6.2f%n", cases[i].name(), best[i]);
    System.out.println("load average " + Files.readString(Path.of("/proc/loadavg")).trim());
    model.tearDown();
    if (sink == 42) System.out.println();
  }
}
