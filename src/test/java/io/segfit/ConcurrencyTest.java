// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Blocks allocated by one thread and freed by another, producers that exit while their blocks
 * are still live, the default heap from many threads, thousands of short-lived threads, and
 * stats that add up at the end. Deterministic contents, no timing asserts.
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

  // Thread churn: 10,000 short-lived threads (1,000 under emulation), at most a few dozen alive
  // at a time, each allocating a handful of buffers, filling them and handing them to a pool
  // thread before it exits; the pool thread checks and frees them (remote frees into slabs whose
  // owner is gone). Committed memory must stay bounded by the live set, not grow with the number
  // of threads that ever lived (abandoned slabs are adopted and reused), the contents must arrive
  // intact, and when all is freed the statistics must say nothing is live.
  static final int THREADS = TestSupport.scaled(10_000, 10);
  static final int AT_ONCE = 32;
  static final int PER_THREAD = 6;
  /** Buffers in flight between the short-lived threads and the pool thread. */
  static final int QUEUE = 256;

  record Handed(ByteBuffer buffer, long seed) {}

  @Test
  @TestSupport.Slow
  void shortLivedThreadsLeaveNothingBehind() throws Exception {
    try (Heap heap = Heap.builder().name("churn").purgeDelay(Duration.ZERO).build()) {
      BlockingQueue<Handed> queue = new ArrayBlockingQueue<>(QUEUE);
      AtomicReference<Throwable> failure = new AtomicReference<>();
      AtomicLong freed = new AtomicLong();
      Handed poison = new Handed(null, 0);
      Thread pool = new Thread(() -> {
        try {
          for (Handed h; (h = queue.take()) != poison; ) {
            long bad = TestSupport.firstMismatch(TestSupport.Bytes.of(h.buffer), h.seed, 0,
                h.buffer.capacity());
            if (bad >= 0) {
              throw new AssertionError("byte " + bad + " of a " + h.buffer.capacity()
                  + "-byte buffer changed after its thread exited");
            }
            heap.free(h.buffer);
            freed.incrementAndGet();
          }
        } catch (Throwable t) {
          failure.compareAndSet(null, t);
        }
      }, "churn-pool");
      pool.start();

      long maxCommitted = 0;
      long handed = 0;
      Thread[] batch = new Thread[AT_ONCE];
      for (int started = 0; started < THREADS && failure.get() == null; ) {
        int n = Math.min(AT_ONCE, THREADS - started);
        for (int i = 0; i < n; i++) {
          final long id = started + i;
          batch[i] = new Thread(() -> {
            try {
              SplittableRandom rnd = new SplittableRandom(id);
              for (int k = 0; k < PER_THREAD; k++) {
                int size = rnd.nextInt(64) == 0 ? 100_000 + rnd.nextInt(400_000)
                    : rnd.nextInt(2048);
                ByteBuffer b = heap.allocate(size);
                long seed = id * PER_THREAD + k;
                TestSupport.fill(TestSupport.Bytes.of(b), seed, 0, size);
                // Every other buffer is freed by its own thread, the rest by the pool.
                if (k % 2 == 0) {
                  heap.free(b);
                } else {
                  queue.put(new Handed(b, seed));
                }
              }
            } catch (Throwable t) {
              failure.compareAndSet(null, t);
            }
          }, "churn-" + id);
          batch[i].start();
        }
        for (int i = 0; i < n; i++) {
          batch[i].join();
        }
        started += n;
        handed += (long) n * (PER_THREAD / 2);
        maxCommitted = Math.max(maxCommitted, heap.stats().committedBytes());
      }
      queue.put(poison);
      pool.join();
      if (failure.get() != null) {
        fail("a churn thread failed", failure.get());
      }
      assertEquals(handed, freed.get(), "buffers freed by the pool");

      HeapStats s = heap.stats();
      assertEquals(0, s.liveBlocks(), "live blocks after all threads: " + s);
      assertEquals(0, s.liveBytes(), "live bytes after all threads: " + s);
      assertEquals(s.allocations(), s.frees(), "allocs != frees: " + s);
      heap.trim();
      HeapStats trimmed = heap.stats();
      System.out.printf("thread churn: %d threads, committed at most %d KiB, %d KiB after trim;"
          + " remote frees %d, abandoned slabs %d, adopted %d%n", THREADS, maxCommitted >> 10,
          trimmed.committedBytes() >> 10, s.remoteFrees(), s.abandonedSlabs(),
          s.adoptedSlabs());
      // The live set is at most QUEUE + AT_ONCE * PER_THREAD buffers, one in 64 of them up to
      // 500 KB: a few MiB. One 64 KiB slab left behind per exited thread would be 64 MiB after
      // 1,000 threads (the emulated run) and 640 MiB after 10,000.
      long bound = 32L << 20;
      assertTrue(maxCommitted < bound, "committed bytes reached " + maxCommitted);
      assertTrue(trimmed.committedBytes() < (16L << 20),
          "committed after freeing all and trim: " + trimmed);
    }
  }
}
