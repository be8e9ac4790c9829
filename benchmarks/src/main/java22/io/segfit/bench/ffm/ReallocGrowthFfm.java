// SPDX-License-Identifier: Apache-2.0
/*
 * Realloc growth (see io.segfit.bench.ReallocGrowth) for the FFM peers: with confined arenas a
 * block grows by allocating a new arena's segment, copying, and closing the old arena (FFM has
 * no realloc; the new segment is zeroed first); with critical downcalls, libc realloc.
 */
package io.segfit.bench.ffm;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import io.segfit.bench.ReallocGrowth;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ReallocGrowthFfm {
  private static final byte MARK = 0x5a;

  @Benchmark
  public long ffmConfinedArena() {
    Arena arena = Arena.ofConfined();
    MemorySegment s = arena.allocate(ReallocGrowth.START);
    s.set(JAVA_BYTE, 0, MARK);
    for (long n = ReallocGrowth.START * 2; n <= ReallocGrowth.END; n <<= 1) {
      Arena grownArena = Arena.ofConfined();
      MemorySegment grown = grownArena.allocate(n);
      MemorySegment.copy(s, 0, grown, 0, s.byteSize());
      arena.close();
      arena = grownArena;
      s = grown;
      s.set(JAVA_BYTE, n - 1, (byte) 1);
    }
    check(s.get(JAVA_BYTE, 0));
    long size = s.byteSize();
    arena.close();
    return size;
  }

  @Benchmark
  public int ffmCriticalMalloc() {
    long a = Libc.malloc(ReallocGrowth.START);
    ByteBuffer b = Libc.wrap(a, ReallocGrowth.START);
    b.put(0, MARK);
    for (int n = ReallocGrowth.START * 2; n <= ReallocGrowth.END; n <<= 1) {
      a = Libc.realloc(a, n);
      b = Libc.wrap(a, n);
      b.put(n - 1, (byte) 1);
    }
    check(b.get(0));
    Libc.free(a);
    return b.capacity();
  }

  private static void check(byte first) {
    if (first != MARK) {
      throw new AssertionError("realloc lost the contents: first byte " + first);
    }
  }
}
