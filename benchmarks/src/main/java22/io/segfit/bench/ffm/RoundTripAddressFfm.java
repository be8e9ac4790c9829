// SPDX-License-Identifier: Apache-2.0
/*
 * The raw-address round trip (see io.segfit.bench.RoundTripAddress) for the FFM peers: a
 * confined arena per block (the segment's address is what an address user keeps; the touch
 * goes through the segment, the FFM way), and critical malloc/free downcalls (touched with
 * Unsafe.putByte like every other raw-address peer); and segfit with its FFM path switched off,
 * so one run compares segfit's JNI and FFM paths.
 */
package io.segfit.bench.ffm;

import static io.segfit.bench.Unsafes.UNSAFE;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class RoundTripAddressFfm {
  @Param({"64", "1024", "16384", "1048576"})
  public int size;

  /**
   * segfit with its JDK 22+ FFM path switched off (-Dsegfit.ffm=false): the JNI path JDK 17
   * runs, side by side with RoundTripAddress.segfit, which takes the FFM path on this JDK.
   */
  @Benchmark
  @Fork(value = 1, jvmArgsPrepend = "-Dsegfit.ffm=false")
  public long segfitJni(SegfitJni p) {
    long a = p.heap.allocateAddress(size);
    UNSAFE.putByte(a, (byte) 1);
    p.heap.freeAddress(a);
    return a;
  }

  @Benchmark
  public long ffmConfinedArena() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment s = arena.allocate(size);
      s.set(JAVA_BYTE, 0, (byte) 1);
      return s.address();
    }
  }

  @Benchmark
  public long ffmCriticalMalloc() {
    long a = Libc.malloc(size);
    UNSAFE.putByte(a, (byte) 1);
    Libc.free(a);
    return a;
  }
}
