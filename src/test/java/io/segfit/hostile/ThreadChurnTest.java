// SPDX-License-Identifier: Apache-2.0
/*
 * Thread churn from Java: 10,000 short-lived threads (1,000 under emulation), at most a few
 * dozen alive at a time, each allocating a handful of buffers, filling them and handing them to
 * a pool thread before it exits; the pool thread checks and frees them (remote frees into slabs
 * whose owner is gone). Committed memory must stay bounded by the live set, not grow with the
 * number of threads that ever lived (abandoned slabs are adopted and reused), the contents must
 * arrive intact, and when all is freed the statistics must say nothing is live.
 */
package io.segfit.hostile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.segfit.Heap;
import io.segfit.HeapStats;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class ThreadChurnTest {
  static final int THREADS = Hostile.scaled(10_000, 10);
  static final int AT_ONCE = 32;
  static final int PER_THREAD = 6;
  /** Buffers in flight between the short-lived threads and the pool thread. */
  static final int QUEUE = 256;

  record Handed(ByteBuffer buffer, long seed) {}

  @Test
  void shortLivedThreadsLeaveNothingBehind() throws Exception {
    try (Heap heap = Heap.builder().name("churn").purgeDelay(Duration.ZERO).build()) {
      BlockingQueue<Handed> queue = new ArrayBlockingQueue<>(QUEUE);
      AtomicReference<Throwable> failure = new AtomicReference<>();
      AtomicLong freed = new AtomicLong();
      Handed poison = new Handed(null, 0);
      Thread pool = new Thread(() -> {
        try {
          for (Handed h; (h = queue.take()) != poison; ) {
            long bad = Hostile.firstMismatch(Hostile.Bytes.of(h.buffer), h.seed, 0,
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
                Hostile.fill(Hostile.Bytes.of(b), seed, 0, size);
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
