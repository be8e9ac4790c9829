// SPDX-License-Identifier: Apache-2.0
/*
 * Producer/consumer: one thread allocates 64-byte buffers, writes a byte and hands them over a
 * bounded SPSC ring (1024 slots); the other thread takes them and frees them, so every free is a
 * cross-thread free. JMH runs the two methods of each group at once, one thread each; the group
 * score is the mean time per operation of the two threads, and each side is reported on its own.
 * A side that finds the ring full (or empty) spins, then yields, until the other side catches up
 * or the iteration ends; leftovers are freed at the end of each iteration.
 */
package io.segfit.bench;

import io.netty.buffer.ByteBuf;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.lwjgl.system.MemoryUtil;
import org.lwjgl.system.jemalloc.JEmalloc;
import org.lwjgl.system.rpmalloc.RPmalloc;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Control;

@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class ProducerConsumer {
  public static final int SIZE = 64;

  /** The ring between the two threads of one group, and how to free what is left in it. */
  @State(Scope.Group)
  public static class Ring {
    private final SpscRing<Object> ring = new SpscRing<>(1024);
    /** Frees one leftover buffer; set once by the producer (a lambda made per call would be
     * garbage that -prof gc charges to the allocator). */
    public Consumer<Object> leftovers;

    /** Producer side: waits while the ring is full; false if the run ended first. */
    public boolean handOver(Object buffer, Control c) {
      for (int spins = 0; !ring.offer(buffer); spins++) {
        if (c.stopMeasurement) {
          return false;
        }
        backOff(spins);
      }
      return true;
    }

    /** Producer side: hands the buffer over, or frees it with leftovers if the run ended first. */
    public void handOverOrFree(Object buffer, Control c) {
      if (!handOver(buffer, c)) {
        leftovers.accept(buffer);
      }
    }

    /** Consumer side: the next buffer, or null once the run has ended with the ring empty. */
    public Object take(Control c) {
      Object b;
      for (int spins = 0; (b = ring.poll()) == null; spins++) {
        if (c.stopMeasurement) {
          return null;
        }
        backOff(spins);
      }
      return b;
    }

    /** Spin a little, then yield: with two cores shared, the other side may need this one. */
    private static void backOff(int spins) {
      if (spins < 64) {
        Thread.onSpinWait();
      } else {
        Thread.yield();
      }
    }

    @TearDown(Level.Iteration)
    public void drain() {
      for (Object b; (b = ring.poll()) != null; ) {
        leftovers.accept(b);
      }
    }
  }

  // --- segfit -------------------------------------------------------------------------------

  @Benchmark @Group("segfit") @GroupThreads(1)
  public void segfitProduce(Ring q, Control c, Peers.Segfit p) {
    ByteBuffer b = p.heap.allocate(SIZE);
    b.put(0, (byte) 1);
    if (q.leftovers == null) {
      q.leftovers = o -> p.heap.free((ByteBuffer) o);
    }
    q.handOverOrFree(b, c);
  }

  @Benchmark @Group("segfit") @GroupThreads(1)
  public void segfitConsume(Ring q, Control c, Peers.Segfit p) {
    Object b = q.take(c);
    if (b != null) {
      p.heap.free((ByteBuffer) b);
    }
  }

  // --- allocateDirect + invokeCleaner ---------------------------------------------------------

  @Benchmark @Group("allocateDirect") @GroupThreads(1)
  public void allocateDirectProduce(Ring q, Control c) {
    ByteBuffer b = ByteBuffer.allocateDirect(SIZE);
    b.put(0, (byte) 1);
    if (q.leftovers == null) {
      q.leftovers = o -> Unsafes.clean((ByteBuffer) o);
    }
    q.handOverOrFree(b, c);
  }

  @Benchmark @Group("allocateDirect") @GroupThreads(1)
  public void allocateDirectConsume(Ring q, Control c) {
    Object b = q.take(c);
    if (b != null) {
      Unsafes.clean((ByteBuffer) b);
    }
  }

  // --- Netty ------------------------------------------------------------------------------------

  @Benchmark @Group("nettyPooled") @GroupThreads(1)
  public void nettyPooledProduce(Ring q, Control c, Peers.NettyPooled p) {
    ByteBuf b = p.alloc.directBuffer(SIZE);
    b.setByte(0, 1);
    if (q.leftovers == null) {
      q.leftovers = o -> ((ByteBuf) o).release();
    }
    q.handOverOrFree(b, c);
  }

  @Benchmark @Group("nettyPooled") @GroupThreads(1)
  public void nettyPooledConsume(Ring q, Control c, Peers.NettyPooled p) {
    Object b = q.take(c);
    if (b != null) {
      ((ByteBuf) b).release();
    }
  }

  @Benchmark @Group("nettyAdaptive") @GroupThreads(1)
  public void nettyAdaptiveProduce(Ring q, Control c, Peers.NettyAdaptive p) {
    ByteBuf b = p.alloc.directBuffer(SIZE);
    b.setByte(0, 1);
    if (q.leftovers == null) {
      q.leftovers = o -> ((ByteBuf) o).release();
    }
    q.handOverOrFree(b, c);
  }

  @Benchmark @Group("nettyAdaptive") @GroupThreads(1)
  public void nettyAdaptiveConsume(Ring q, Control c, Peers.NettyAdaptive p) {
    Object b = q.take(c);
    if (b != null) {
      ((ByteBuf) b).release();
    }
  }

  // --- LWJGL --------------------------------------------------------------------------------------

  @Benchmark @Group("lwjglMemAlloc") @GroupThreads(1)
  public void lwjglMemAllocProduce(Ring q, Control c, Peers.Lwjgl p) {
    ByteBuffer b = MemoryUtil.memAlloc(SIZE);
    b.put(0, (byte) 1);
    if (q.leftovers == null) {
      q.leftovers = o -> MemoryUtil.memFree((ByteBuffer) o);
    }
    q.handOverOrFree(b, c);
  }

  @Benchmark @Group("lwjglMemAlloc") @GroupThreads(1)
  public void lwjglMemAllocConsume(Ring q, Control c, Peers.Lwjgl p) {
    Object b = q.take(c);
    if (b != null) {
      MemoryUtil.memFree((ByteBuffer) b);
    }
  }

  @Benchmark @Group("lwjglJemalloc") @GroupThreads(1)
  public void lwjglJemallocProduce(Ring q, Control c, Peers.Lwjgl p) {
    ByteBuffer b = JEmalloc.je_malloc(SIZE);
    b.put(0, (byte) 1);
    if (q.leftovers == null) {
      q.leftovers = o -> JEmalloc.je_free((ByteBuffer) o);
    }
    q.handOverOrFree(b, c);
  }

  @Benchmark @Group("lwjglJemalloc") @GroupThreads(1)
  public void lwjglJemallocConsume(Ring q, Control c, Peers.Lwjgl p) {
    Object b = q.take(c);
    if (b != null) {
      JEmalloc.je_free((ByteBuffer) b);
    }
  }

  @Benchmark @Group("lwjglRpmalloc") @GroupThreads(1)
  public void lwjglRpmallocProduce(Ring q, Control c, Peers.Lwjgl p, Peers.Rpmalloc r) {
    ByteBuffer b = RPmalloc.rpmalloc(SIZE);
    b.put(0, (byte) 1);
    if (q.leftovers == null) {
      q.leftovers = o -> RPmalloc.rpfree((ByteBuffer) o);
    }
    q.handOverOrFree(b, c);
  }

  @Benchmark @Group("lwjglRpmalloc") @GroupThreads(1)
  public void lwjglRpmallocConsume(Ring q, Control c, Peers.Lwjgl p, Peers.Rpmalloc r) {
    Object b = q.take(c);
    if (b != null) {
      RPmalloc.rpfree((ByteBuffer) b);
    }
  }
}
