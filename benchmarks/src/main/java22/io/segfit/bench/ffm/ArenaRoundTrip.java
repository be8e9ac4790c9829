// SPDX-License-Identifier: Apache-2.0
/*
 * An arena per allocation: open an arena, allocate one zeroed segment, write a byte through it,
 * close the arena; the FFM way to free one block. The peers are ArenaPeers'. A shared arena's
 * close waits for a handshake with every thread, so the shared rows measure that more than
 * memory.
 */
package io.segfit.bench.ffm;

import java.lang.foreign.Arena;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Warmup;

@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ArenaRoundTrip extends ArenaPeers {
  @Param({"64", "1024", "16384"})
  public int size;

  @Override
  long use(Arena arena) {
    return touch(arena.allocate(size, 8));
  }
}
