// SPDX-License-Identifier: Apache-2.0
/*
 * An arena for a batch: open an arena, allocate 1,000 zeroed segments of one size, write a byte
 * into each, close the arena (every block freed at once). Score per segment, so the arena's own
 * cost is spread over the batch. The peers are ArenaPeers'.
 */
package io.segfit.bench.ffm;

import java.lang.foreign.Arena;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Warmup;

@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(ArenaBatch.COUNT)
public class ArenaBatch extends ArenaPeers {
  static final int COUNT = 1000;

  @Param({"64", "1024"})
  public int size;

  @Override
  long use(Arena arena) {
    long sum = 0;
    for (int i = 0; i < COUNT; i++) sum += touch(arena.allocate(size, 8));
    return sum;
  }
}
