// SPDX-License-Identifier: Apache-2.0
/*
 * Producer/consumer over Netty's ByteBufAllocator: one thread allocates 64-byte direct ByteBufs
 * and writes a byte, the other releases them, through ProducerConsumer's bounded SPSC ring; so
 * every release is a cross-thread free. The group score is the mean time per operation of the
 * two threads.
 */
package io.segfit.bench;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Control;

@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class NettyProducerConsumer {
  private static void produce(ProducerConsumer.Ring q, Control c, ByteBufAllocator alloc) {
    ByteBuf b = alloc.directBuffer(ProducerConsumer.SIZE);
    b.writeByte(1);
    if (q.leftovers == null) {
      q.leftovers = o -> ((ByteBuf) o).release();
    }
    q.handOverOrFree(b, c);
  }

  private static void consume(ProducerConsumer.Ring q, Control c) {
    Object b = q.take(c);
    if (b != null) {
      ((ByteBuf) b).release();
    }
  }

  @Benchmark @Group("segfit") @GroupThreads(1)
  public void segfitProduce(ProducerConsumer.Ring q, Control c, Peers.SegfitNetty p) {
    produce(q, c, p.alloc);
  }

  @Benchmark @Group("segfit") @GroupThreads(1)
  public void segfitConsume(ProducerConsumer.Ring q, Control c) {
    consume(q, c);
  }

  @Benchmark @Group("segfitLeakDefault") @GroupThreads(1)
  public void segfitLeakDefaultProduce(ProducerConsumer.Ring q, Control c,
      Peers.SegfitNettyLeakDefault p) {
    produce(q, c, p.alloc);
  }

  @Benchmark @Group("segfitLeakDefault") @GroupThreads(1)
  public void segfitLeakDefaultConsume(ProducerConsumer.Ring q, Control c) {
    consume(q, c);
  }

  @Benchmark @Group("nettyPooled") @GroupThreads(1)
  public void nettyPooledProduce(ProducerConsumer.Ring q, Control c, Peers.NettyPooled p) {
    produce(q, c, p.alloc);
  }

  @Benchmark @Group("nettyPooled") @GroupThreads(1)
  public void nettyPooledConsume(ProducerConsumer.Ring q, Control c) {
    consume(q, c);
  }

  @Benchmark @Group("nettyPooledLeakDefault") @GroupThreads(1)
  public void nettyPooledLeakDefaultProduce(ProducerConsumer.Ring q, Control c,
      Peers.NettyPooledLeakDefault p) {
    produce(q, c, p.alloc);
  }

  @Benchmark @Group("nettyPooledLeakDefault") @GroupThreads(1)
  public void nettyPooledLeakDefaultConsume(ProducerConsumer.Ring q, Control c) {
    consume(q, c);
  }

  @Benchmark @Group("nettyAdaptive") @GroupThreads(1)
  public void nettyAdaptiveProduce(ProducerConsumer.Ring q, Control c, Peers.NettyAdaptive p) {
    produce(q, c, p.alloc);
  }

  @Benchmark @Group("nettyAdaptive") @GroupThreads(1)
  public void nettyAdaptiveConsume(ProducerConsumer.Ring q, Control c) {
    consume(q, c);
  }

  @Benchmark @Group("nettyAdaptiveLeakDefault") @GroupThreads(1)
  public void nettyAdaptiveLeakDefaultProduce(ProducerConsumer.Ring q, Control c,
      Peers.NettyAdaptiveLeakDefault p) {
    produce(q, c, p.alloc);
  }

  @Benchmark @Group("nettyAdaptiveLeakDefault") @GroupThreads(1)
  public void nettyAdaptiveLeakDefaultConsume(ProducerConsumer.Ring q, Control c) {
    consume(q, c);
  }
}
