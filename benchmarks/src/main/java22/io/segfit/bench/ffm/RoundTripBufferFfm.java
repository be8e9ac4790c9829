// SPDX-License-Identifier: Apache-2.0
/*
 * The buffer round trip (see io.segfit.bench.RoundTripBuffer) for the FFM peers of JDK 22+: a
 * confined arena per buffer (allocate, asByteBuffer, close; the arena zeroes), and a critical
 * malloc downcall wrapped as a DirectByteBuffer then freed with a critical free downcall; and
 * segfit with its FFM path switched off, so one run compares segfit's JNI and FFM paths.
 */
package io.segfit.bench.ffm;

import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
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
public class RoundTripBufferFfm {
  @Param({"64", "1024", "16384", "1048576"})
  public int size;

  /**
   * segfit with its JDK 22+ FFM path switched off (-Dsegfit.ffm=false): the JNI path JDK 17
   * runs, side by side with RoundTripBuffer.segfit, which takes the FFM path on this JDK.
   */
  @Benchmark
  @Fork(value = 1, jvmArgsPrepend = "-Dsegfit.ffm=false")
  public ByteBuffer segfitJni(SegfitJni p) {
    ByteBuffer b = p.heap.allocate(size);
    b.put(0, (byte) 1);
    p.heap.free(b);
    return b;
  }

  @Benchmark
  public ByteBuffer ffmConfinedArena() {
    try (Arena arena = Arena.ofConfined()) {
      ByteBuffer b = arena.allocate(size).asByteBuffer();
      b.put(0, (byte) 1);
      return b;
    }
  }

  @Benchmark
  public ByteBuffer ffmCriticalMalloc() {
    long a = Libc.malloc(size);
    ByteBuffer b = Libc.wrap(a, size);
    b.put(0, (byte) 1);
    Libc.free(a);
    return b;
  }
}
