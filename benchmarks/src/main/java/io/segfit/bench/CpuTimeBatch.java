// SPDX-License-Identifier: Apache-2.0
/*
 * Not JMH: the Batch workload (SizeMix: 10,000 mixed sizes, freed in shuffled order) timed in
 * the calling thread's CPU time, best of many runs, as CpuTimeRoundTrip does for round trips:
 * for A/B comparisons on a machine that other work keeps busy. Figures are per buffer
 * (allocate + touch + free). Usage:
 *   java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/benchmarks.jar \
 *        io.segfit.bench.CpuTimeBatch [rounds=3]
 */
package io.segfit.bench;

import io.segfit.Heap;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.lwjgl.system.MemoryUtil;
import org.lwjgl.system.jemalloc.JEmalloc;
import org.lwjgl.system.rpmalloc.RPmalloc;

public final class CpuTimeBatch {
  private static final SizeMix MIX = new SizeMix();
  private static final ByteBuffer[] BUFFERS = new ByteBuffer[SizeMix.COUNT];
  private static final long[] ADDRESSES = new long[SizeMix.COUNT];
  private static final int BATCHES = 200;

  private CpuTimeBatch() {}

  private interface Alloc {
    ByteBuffer allocate(int size);
  }

  private interface Free {
    void free(ByteBuffer b);
  }

  private interface AllocAddress {
    long allocate(long size);
  }

  private interface FreeAddress {
    void free(long a);
  }

  private static long buffers(Alloc alloc, Free free) {
    int[] sizes = MIX.sizes;
    for (int i = 0; i < sizes.length; i++) {
      ByteBuffer b = alloc.allocate(sizes[i]);
      b.put(0, (byte) 1);
      BUFFERS[i] = b;
    }
    for (int i : MIX.freeOrder) {
      free.free(BUFFERS[i]);
      BUFFERS[i] = null;
    }
    return sizes.length;
  }

  private static long addresses(AllocAddress alloc, FreeAddress free) {
    int[] sizes = MIX.sizes;
    for (int i = 0; i < sizes.length; i++) {
      long a = alloc.allocate(sizes[i]);
      MemoryUtil.memPutByte(a, (byte) 1);
      ADDRESSES[i] = a;
    }
    for (int i : MIX.freeOrder) free.free(ADDRESSES[i]);
    return sizes.length;
  }

  public static void main(String[] args) throws Exception {
    int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 3;
    Heap heap = Heap.defaultHeap();
    RPmalloc.rpmalloc_initialize();
    RPmalloc.rpmalloc_thread_initialize();
    Map<String, CpuTimeRoundTrip.Op> cases = new LinkedHashMap<>();
    cases.put("segfit buffer", () -> buffers(heap::allocate, heap::free));
    cases.put("segfit address", () -> addresses(heap::allocateAddress, heap::freeAddress));
    cases.put("rpmalloc buffer", () -> buffers(RPmalloc::rpmalloc, RPmalloc::rpfree));
    cases.put("jemalloc buffer", () -> buffers(JEmalloc::je_malloc, JEmalloc::je_free));
    cases.put("memAlloc buffer", () -> buffers(MemoryUtil::memAlloc, MemoryUtil::memFree));
    cases.put("rpmalloc address", () -> addresses(RPmalloc::nrpmalloc, RPmalloc::nrpfree));
    String[] names = cases.keySet().toArray(new String[0]);
    double[] best = new double[names.length];
    java.util.Arrays.fill(best, Double.MAX_VALUE);
    for (int r = 0; r < rounds; r++) {
      for (int i = 0; i < names.length; i++) {
        best[i] = Math.min(best[i],
            CpuTimeRoundTrip.measure(cases.get(names[i]), BATCHES, SizeMix.COUNT));
      }
    }
    System.out.printf("batch of %d mixed sizes, Java %s, CPU ns per buffer, best of %d x %d runs%n",
        SizeMix.COUNT, Runtime.version(), rounds, CpuTimeRoundTrip.RUNS);
    for (int i = 0; i < names.length; i++) System.out.printf("%-18s %6.2f%n", names[i], best[i]);
    System.out.println("load average " + Files.readString(Path.of("/proc/loadavg")).trim());
  }
}
