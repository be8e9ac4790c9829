// SPDX-License-Identifier: Apache-2.0
/*
 * Producer/consumer (see io.segfit.bench.ProducerConsumer) for the FFM peers. A confined arena
 * cannot be closed by another thread, so the FFM way to free across threads is a shared arena
 * per buffer (close() handshakes with every thread); the critical malloc/free downcalls wrap
 * buffers as DirectByteBuffers and the consumer recovers the address with
 * MemorySegment.ofBuffer.
 */
package io.segfit.bench.ffm;

import io.segfit.bench.ProducerConsumer;
import io.segfit.bench.ProducerConsumer.Ring;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Control;

@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ProducerConsumerFfm {
  private static final int SIZE = ProducerConsumer.SIZE;

  /**
   * The ring of ProducerConsumer under a state class of this source set: JMH generates helper
   * classes for every state a benchmark uses, and if this release-22 pass generated them for
   * ProducerConsumer.Ring itself, they would replace the release-17 ones that JDK 17 loads.
   */
  @State(Scope.Group)
  public static class FfmRing extends Ring {}

  @Benchmark @Group("ffmSharedArena") @GroupThreads(1)
  public void sharedArenaProduce(FfmRing q, Control c) {
    Arena arena = Arena.ofShared();
    arena.allocate(SIZE).asByteBuffer().put(0, (byte) 1);
    if (q.leftovers == null) {
      q.leftovers = o -> ((Arena) o).close();
    }
    q.handOverOrFree(arena, c);
  }

  @Benchmark @Group("ffmSharedArena") @GroupThreads(1)
  public void sharedArenaConsume(FfmRing q, Control c) {
    Object a = q.take(c);
    if (a != null) {
      ((Arena) a).close();
    }
  }

  @Benchmark @Group("ffmCriticalMalloc") @GroupThreads(1)
  public void criticalMallocProduce(FfmRing q, Control c) {
    long a = Libc.malloc(SIZE);
    ByteBuffer b = Libc.wrap(a, SIZE);
    b.put(0, (byte) 1);
    if (q.leftovers == null) {
      q.leftovers = o -> Libc.free(Libc.address((ByteBuffer) o));
    }
    q.handOverOrFree(b, c);
  }

  @Benchmark @Group("ffmCriticalMalloc") @GroupThreads(1)
  public void criticalMallocConsume(FfmRing q, Control c) {
    Object b = q.take(c);
    if (b != null) {
      Libc.free(Libc.address((ByteBuffer) b));
    }
  }
}
