// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Blocks allocated by one thread and freed by another, producers that exit while their blocks
 * are still live, and stats that add up at the end. Deterministic contents, no timing asserts.
 */
class ConcurrencyTest {

  @Test
  void crossThreadFreesWithExitingThreads() throws Exception {
    int generations = TestSupport.scaled(6);
    int perProducer = TestSupport.scaled(20_000);
    try (Heap heap = Heap.builder().name("concurrency").build()) {
      ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
      BlockingQueue<ByteBuffer> handoff = new ArrayBlockingQueue<>(4096);
      List<Thread> consumers = new ArrayList<>();
      ByteBuffer poison = ByteBuffer.allocate(0);
      for (int c = 0; c < 2; c++) {
        Thread consumer = new Thread(() -> {
          try {
            while (true) {
              ByteBuffer b = handoff.take();
              if (b == poison) return;
              int tag = b.getInt(0);
              for (int i = 64; i + 4 <= b.capacity(); i += 64) {
                if (b.getInt(i) != tag) throw new AssertionError("corrupted block " + tag);
              }
              if (tag % 4 == 0) b = heap.reallocate(b, b.capacity() * 2);
              heap.free(b);
            }
          } catch (Throwable t) {
            errors.add(t);
          }
        }, "consumer-" + c);
        consumers.add(consumer);
        consumer.start();
      }
      // generations of short-lived producers: each exits with blocks still in flight
      for (int g = 0; g < generations; g++) {
        List<Thread> producers = new ArrayList<>();
        for (int p = 0; p < 3; p++) {
          final int seed = g * 100 + p;
          Thread producer = new Thread(() -> {
            try {
              List<ByteBuffer> kept = new ArrayList<>();
              for (int i = 0; i < perProducer; i++) {
                int tag = seed * 1_000_000 + i;
                ByteBuffer b = heap.allocate(8 + (tag % 3000));
                for (int j = 0; j + 4 <= b.capacity(); j += 64) b.putInt(j, tag);
                if (i % 10 == 0) {
                  kept.add(b);          // freed by this thread later
                } else if (!handoff.offer(b, 10, TimeUnit.SECONDS)) {
                  throw new AssertionError("consumers stalled");
                }
              }
              for (ByteBuffer b : kept) heap.free(b);
            } catch (Throwable t) {
              errors.add(t);
            }
          }, "producer-" + seed);
          producers.add(producer);
          producer.start();
        }
        for (Thread p : producers) p.join();
      }
      for (int c = 0; c < consumers.size(); c++) {
        if (!handoff.offer(poison, 60, TimeUnit.SECONDS)) errors.add(new AssertionError("stuck"));
      }
      for (Thread c : consumers) c.join(60_000);
      assertTrue(errors.isEmpty(), () -> "errors: " + errors);
      HeapStats s = heap.stats();
      assertEquals(0, s.liveBlocks(), s::toString);
      assertEquals(s.allocations(), s.frees(), s::toString);
      assertTrue(s.remoteFrees() > 0, s::toString);
      TestSupport.assertStillWorks(heap);
    }
  }

  @Test
  void defaultHeapFromManyThreads() throws Exception {
    Heap heap = Heap.defaultHeap();
    long liveBefore = heap.stats().liveBlocks();
    List<Thread> threads = new ArrayList<>();
    ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
    for (int t = 0; t < 8; t++) {
      Thread th = new Thread(() -> {
        try {
          for (int i = 0; i < TestSupport.scaled(50_000); i++) {
            ByteBuffer b = heap.allocate(64);
            b.putLong(0, i);
            if (b.getLong(0) != i) throw new AssertionError();
            heap.free(b);
          }
        } catch (Throwable e) {
          errors.add(e);
        }
      });
      threads.add(th);
      th.start();
    }
    for (Thread th : threads) th.join();
    assertTrue(errors.isEmpty(), () -> "errors: " + errors);
    assertEquals(liveBefore, heap.stats().liveBlocks());
  }
}
