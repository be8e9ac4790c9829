// SPDX-License-Identifier: Apache-2.0
/*
 * Not JMH: round trips timed in the calling thread's CPU time, best of many runs, for a machine
 * that other work keeps busy (JMH's wall-clock scores then measure the scheduler). Every case
 * pays the same interface call per operation, so compare the cases of one run, not the figures
 * with JMH's. Cases: segfit's address and buffer round trips (run once more with
 * -Dsegfit.threadCache=false for the core path), LWJGL's rpmalloc, jemalloc and memAlloc, and on
 * JDK 22+ libc malloc/free as critical FFM downcalls (ffm/Libc). Usage:
 *   java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/benchmarks.jar \
 *        io.segfit.bench.CpuTimeRoundTrip [size=64] [rounds=3]
 */
package io.segfit.bench;

import io.segfit.Heap;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.lwjgl.system.MemoryUtil;
import org.lwjgl.system.jemalloc.JEmalloc;
import org.lwjgl.system.rpmalloc.RPmalloc;

public final class CpuTimeRoundTrip {
  private static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();
  private static final int OPS = 2_000_000;
  /** Runs per measure(); public for the other CPU-time drivers (ffm.CpuTimeArenas). */
  public static final int RUNS = 5;
  private static long sink;
  /* libc malloc and free through ffm/Libc's critical downcalls, JDK 22+ only (that class is
     compiled with release 22); static final, so the JIT inlines them as it inlines a direct
     call. Null on older JDKs. */
  private static final MethodHandle LIBC_MALLOC = libc("malloc", long.class, long.class);
  private static final MethodHandle LIBC_FREE = libc("free", void.class, long.class);

  /** One timed operation; its result keeps the JIT from dropping the work. */
  public interface Op {
    long run();
  }

  private record Case(String name, Op op) {}

  private CpuTimeRoundTrip() {}

  private static MethodHandle libc(String name, Class<?> ret, Class<?> arg) {
    if (Runtime.version().feature() < 22) {
      return null;
    }
    try {
      return MethodHandles.publicLookup().findStatic(Class.forName("io.segfit.bench.ffm.Libc"),
          name, MethodType.methodType(ret, arg));
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("ffm/Libc missing from a JDK 22+ build", e);
    }
  }

  /** Best CPU time per operation over RUNS runs of OPS operations. */
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
    RPmalloc.rpmalloc_initialize();
    RPmalloc.rpmalloc_thread_initialize();
    List<Case> list = new ArrayList<>(List.of(
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
      })));
    if (LIBC_MALLOC != null) {
      list.add(new Case("malloc critical", () -> {
        try {
          long a = (long) LIBC_MALLOC.invokeExact((long) size);
          MemoryUtil.memPutByte(a, (byte) 1);
          LIBC_FREE.invokeExact(a);
          return a;
        } catch (Throwable t) {
          throw new IllegalStateException(t);
        }
      }));
    }
    Case[] cases = list.toArray(new Case[0]);
    double[] best = new double[cases.length];
    java.util.Arrays.fill(best, Double.MAX_VALUE);
    for (int r = 0; r < rounds; r++) {
      for (int i = 0; i < cases.length; i++) best[i] = Math.min(best[i], measure(cases[i].op()));
    }
    System.out.printf("size %d, Java %s, CPU ns per round trip, best of %d x %d runs%n", size,
        Runtime.version(), rounds, RUNS);
    for (int i = 0; i < cases.length; i++) System.out.printf("%-18s %6.2f%n", cases[i].name(), best[i]);
    System.out.println("load average " + Files.readString(Path.of("/proc/loadavg")).trim());
    if (sink == 42) System.out.println();
  }
}
