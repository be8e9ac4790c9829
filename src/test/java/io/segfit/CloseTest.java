// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Everything on a closed heap, closing twice, the default heap, and close racing with use. */
class CloseTest {

  @Test
  void everyCallOnAClosedHeapThrowsIllegalStateException() {
    Heap heap = Heap.builder().name("to-close").build();
    ByteBuffer live = heap.allocate(64);
    long address = heap.allocateAddress(64);
    heap.close();
    assertTrue(heap.isClosed());
    assertNull(heap.mxbeanName());
    List<Executable> calls = List.of(
        () -> heap.allocate(1), () -> heap.allocateZeroed(1), () -> heap.allocateAligned(1, 64),
        () -> heap.reallocate(live, 10), () -> heap.free(live),
        () -> heap.allocateAddress(1), () -> heap.allocateZeroedAddress(1),
        () -> heap.allocateAlignedAddress(1, 64), () -> heap.reallocateAddress(address, 10),
        () -> heap.freeAddress(address), () -> heap.usableSizeAddress(address),
        () -> heap.sliceAddress(address, 0, 1), heap::stats, heap::trim, heap::close,
        () -> heap.allocate(-1), () -> heap.freeAddress(12345));
    for (Executable call : calls) {
      IllegalStateException e = assertThrows(IllegalStateException.class, call);
      assertTrue(e.getMessage().contains("to-close") && e.getMessage().contains("closed"),
          e.getMessage());
    }
    // other heaps are unaffected
    try (Heap next = Heap.builder().build()) {
      TestSupport.assertStillWorks(next);
    }
  }

  @Test
  void closeReleasesEverything() {
    Heap heap = Heap.builder().name("bulk").build();
    for (int i = 0; i < TestSupport.scaled(10_000); i++) heap.allocate(64 + i % 500);
    heap.allocateAddress(Segfit.smallMax() * 2);
    assertEquals(TestSupport.scaled(10_000) + 1, heap.stats().liveBlocks());
    heap.close();
    assertThrows(IllegalStateException.class, heap::stats);
  }


  /**
   * The thread cache's fast paths do not read the closed flag: close() empties the tables they
   * read. A thread that cached blocks before the close, and still holds them, sees it closed.
   */
  @Test
  void threadsThatCachedBlocksSeeTheHeapClosed() throws Exception {
    Heap heap = Heap.builder().name("cached-then-closed").build();
    CountDownLatch cached = new CountDownLatch(1);
    CountDownLatch closed = new CountDownLatch(1);
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Thread other = new Thread(() -> {
      try {
        ByteBuffer b = heap.allocate(64);
        heap.free(b);
        b = heap.allocate(64);   // the cache's buffer object, reused
        long a = heap.allocateAddress(64);
        heap.freeAddress(heap.allocateAddress(48));   // held back by the cache
        cached.countDown();
        closed.await();
        ByteBuffer live = b;
        for (Executable call : List.<Executable>of(() -> heap.allocate(64),
            () -> heap.allocateAddress(64), () -> heap.allocateAddress(48),
            () -> heap.free(live), () -> heap.freeAddress(a), () -> heap.allocate(70_000))) {
          IllegalStateException e = assertThrows(IllegalStateException.class, call);
          assertTrue(e.getMessage().contains("cached-then-closed"), e.getMessage());
        }
      } catch (Throwable t) {
        failure.set(t);
      }
    });
    other.start();
    cached.await();
    ByteBuffer mine = heap.allocate(64);
    heap.close();
    closed.countDown();
    other.join();
    if (failure.get() != null) throw new AssertionError(failure.get());
    assertThrows(IllegalStateException.class, () -> heap.free(mine));
    assertThrows(IllegalStateException.class, () -> heap.allocateAddress(16));
  }

  /**
   * Calls on blocks the thread cache lent, racing close(): close() empties the cache's tables
   * before the core's heap goes, so a call that found its block gone from them reached the core
   * while the core's heap was still open, which does not know lent blocks (NOT_A_BLOCK). Every
   * such call must say the heap is closed instead.
   */
  @Test
  void callsOnLentBlocksRacingCloseSeeTheHeapClosed() throws Exception {
    int rounds = TestSupport.scaled(300, 30);
    for (int round = 0; round < rounds; round++) {
      Heap heap = Heap.builder().name("lent-close-" + round).jmx(false).build();
      CountDownLatch started = new CountDownLatch(1);
      AtomicReference<Throwable> outcome = new AtomicReference<>();
      Thread worker = new Thread(() -> {
        try {
          ByteBuffer b = heap.allocate(100);
          long a = heap.allocateAddress(100);
          started.countDown();
          for (int i = 0; ; i++) {
            b = heap.reallocate(b, 96 + (i & 7));   // same class: in place, in the cache
            a = heap.reallocateAddress(a, 96 + (i & 7));
            heap.usableSizeAddress(a);
          }
        } catch (Throwable t) {
          outcome.set(t);
        } finally {
          started.countDown();
        }
      });
      worker.start();
      started.await();
      if (round % 2 == 0) Thread.sleep(0, 1000 * (round % 50));
      heap.close();
      worker.join();
      Throwable t = outcome.get();
      if (!(t instanceof IllegalStateException) || !t.getMessage().contains("closed")) {
        throw new AssertionError("round " + round + ": a call on a lent block racing close()"
            + " threw " + t, t);
      }
    }
  }

  @Test
  void defaultHeapCannotBeClosed() {
    Heap d = Heap.defaultHeap();
    assertEquals("default", d.name());
    assertThrows(UnsupportedOperationException.class, d::close);
    assertFalse(d.isClosed());
    TestSupport.assertStillWorks(d);
    assertTrue(d == Heap.defaultHeap());
  }

  @Test
  void closeRacingWithAllocatingAndFreeingThreads() throws Exception {
    int rounds = TestSupport.scaled(20);
    for (int round = 0; round < rounds; round++) {
      Heap heap = Heap.builder().name("race-" + round).jmx(false).build();
      int threads = 4;
      CountDownLatch started = new CountDownLatch(threads);
      ConcurrentLinkedQueue<Throwable> unexpected = new ConcurrentLinkedQueue<>();
      AtomicLong rejected = new AtomicLong();
      List<Thread> workers = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        final int id = t;
        Thread w = new Thread(() -> {
          started.countDown();
          List<ByteBuffer> mine = new ArrayList<>();
          try {
            for (int i = 0; ; i++) {
              // never touch the memory: after close it is gone (documented)
              ByteBuffer b = heap.allocate(16 + (i * 7 + id) % 2000);
              mine.add(b);
              if (i % 3 == 0) heap.free(mine.remove(mine.size() - 1));
              if (i % 5 == 0 && !mine.isEmpty()) mine.set(0, heap.reallocate(mine.get(0), i % 4000));
              if (i % 7 == 0) heap.freeAddress(heap.allocateAddress(i % 100_000));
              if (mine.size() > 100) heap.free(mine.remove(0));
            }
          } catch (IllegalStateException e) {
            if (e.getMessage().contains("closed")) {
              rejected.incrementAndGet();
            } else {
              unexpected.add(e);
            }
          } catch (Throwable e) {
            unexpected.add(e);
          }
        });
        workers.add(w);
        w.start();
      }
      started.await();
      Thread.sleep(TestSupport.EMULATED ? 50 : 5 + round % 5);
      heap.close();
      for (Thread w : workers) w.join(60_000);
      assertTrue(unexpected.isEmpty(), () -> "unexpected: " + unexpected);
      assertEquals(threads, rejected.get(), "every worker saw the heap close");
      assertThrows(IllegalStateException.class, heap::close);
    }
  }

  // Closing under load, many rounds: each worker must end with IllegalStateException (the heap
  // is closed), never another exception type and never a crash; of two threads closing at once
  // exactly one succeeds and the other gets IllegalStateException, as does any later close; and
  // the heap's memory is released exactly once: after many rounds, each holding tens of MiB when
  // closed, the process's RSS is back near where it started. Workers reach block memory only
  // through heap calls (allocateZeroed's memset, reallocate's copy), never through a buffer: a
  // buffer used after its heap is closed is a use-after-free no allocator can catch (see the
  // README ("Safety")). Nothing here is timed: the closer waits until every worker has done some
  // work, by count.
  static final int ROUNDS = TestSupport.scaled(60, 6);
  static final int WORKERS = 3;
  /** Held by every round when it is closed: a heap never released would show in RSS at once. */
  static final int BALLAST = 32 << 20;

  @Test
  @TestSupport.Slow
  void closeUnderLoadReleasesOnceAndOthersSeeIllegalState() throws Exception {
    // A first round warms up the JIT and the native library, so the baseline is honest.
    round(-1);
    System.gc();
    long baseline = TestSupport.rss();
    long peak = 0;
    long released = 0;
    for (int r = 0; r < ROUNDS; r++) {
      released += round(r);
      peak = Math.max(peak, TestSupport.rss());
    }
    long end = TestSupport.rss();
    long leakedIfNeverFreed = (long) ROUNDS * BALLAST;
    System.out.printf("concurrent close: %d rounds, RSS baseline %d MiB, peak %d MiB, end %d MiB,"
        + " %d MiB released by the closes (%d MiB of ballast)%n", ROUNDS, baseline >> 20,
        peak >> 20, end >> 20, released >> 20, leakedIfNeverFreed >> 20);
    // Each close gave its ballast back to the OS...
    assertTrue(released >= leakedIfNeverFreed / 2, "closes released only " + released
        + " bytes of RSS; the rounds held " + leakedIfNeverFreed + " bytes when closed");
    // ...and nothing piled up across rounds.
    assertTrue(end - baseline < Math.min(leakedIfNeverFreed / 2, 512L << 20),
        "RSS grew from " + baseline + " to " + end + " bytes over " + ROUNDS + " rounds");
  }

  /** One round; returns how much RSS fell when the heap was closed. */
  private static long round(int r) throws Exception {
    Heap heap = Heap.builder().name("close-race-" + r).build();
    // Ballast: touched memory, still live when the heap is closed.
    List<ByteBuffer> ballast = new ArrayList<>();
    for (int n = 0; n < BALLAST; n += 1 << 20) {
      ballast.add(touched(heap.allocate(1 << 20)));
      for (int k = 0; k < 16; k++) {
        ballast.add(touched(heap.allocate(4096)));
      }
    }
    CountDownLatch working = new CountDownLatch(WORKERS);
    AtomicReference<Throwable> wrong = new AtomicReference<>();
    List<Thread> workers = new ArrayList<>();
    for (int w = 0; w < WORKERS; w++) {
      final int seed = r * 31 + w;
      Thread t = new Thread(() -> {
        boolean[] counted = {false};
        try {
          work(heap, new SplittableRandom(seed), working, counted);
          wrong.compareAndSet(null, new AssertionError("worker ended without an exception"));
        } catch (IllegalStateException expected) {
          if (!counted[0]) {
            wrong.compareAndSet(null, new AssertionError("IllegalStateException before close",
                expected));
          }
        } catch (Throwable t2) {
          wrong.compareAndSet(null, t2);
        } finally {
          if (!counted[0]) {
            working.countDown(); // never leave the closer waiting
          }
        }
      }, "close-race-" + r + "-" + w);
      workers.add(t);
      t.start();
    }
    working.await();
    long before = TestSupport.rss();
    // Two closers race: exactly one closes, the other gets IllegalStateException.
    CyclicBarrier both = new CyclicBarrier(2);
    AtomicReference<Throwable> otherOutcome = new AtomicReference<>();
    Thread other = new Thread(() -> otherOutcome.set(closeAfter(both, heap)), "closer-" + r);
    other.start();
    Throwable mine = closeAfter(both, heap);
    other.join();
    long released = before - TestSupport.rss();
    Throwable theirs = otherOutcome.get();
    boolean oneClosed = (mine == null) != (theirs == null);
    Throwable loser = mine != null ? mine : theirs;
    assertTrue(oneClosed && loser instanceof IllegalStateException,
        "two racing closes: " + mine + " / " + theirs);
    for (Thread t : workers) {
      t.join();
    }
    if (wrong.get() != null) {
      fail("round " + r + ": a worker saw something other than IllegalStateException",
          wrong.get());
    }
    assertThrows(IllegalStateException.class, heap::close, "second close");
    assertThrows(IllegalStateException.class, () -> heap.allocate(16), "allocate after close");
    assertThrows(IllegalStateException.class, () -> heap.free(ballast.get(0)),
        "free after close");
    assertThrows(IllegalStateException.class, () -> heap.allocateAddress(16),
        "allocateAddress after close");
    return released;
  }

  /** Closes the heap once both closers are ready; returns what it threw, or null. */
  private static Throwable closeAfter(CyclicBarrier barrier, Heap heap) {
    try {
      barrier.await();
      heap.close();
      return null;
    } catch (Throwable t) {
      return t;
    }
  }

  /** Writes one byte in every 4 KiB of the buffer, so that its pages are resident. */
  private static ByteBuffer touched(ByteBuffer b) {
    for (int i = 0; i < b.capacity(); i += 4096) {
      b.put(i, (byte) 1);
    }
    return b;
  }

  /** Allocates, reallocates and frees until the heap is closed (IllegalStateException). */
  private static void work(Heap heap, SplittableRandom rnd, CountDownLatch working,
      boolean[] counted) {
    List<ByteBuffer> buffers = new ArrayList<>();
    List<Long> addresses = new ArrayList<>();
    long ops = 0;
    while (true) {
      int size = rnd.nextInt(8) == 0 ? rnd.nextInt(2 << 20) : rnd.nextInt(4096);
      switch (rnd.nextInt(9)) {
        case 0, 1 -> buffers.add(heap.allocate(size));
        case 2 -> buffers.add(heap.allocateZeroed(size));
        case 3 -> addresses.add(heap.allocateAddress(size));
        case 4 -> {
          if (!buffers.isEmpty()) {
            int i = rnd.nextInt(buffers.size());
            buffers.set(i, heap.reallocate(buffers.get(i), size));
          }
        }
        case 5 -> {
          if (!addresses.isEmpty()) {
            int i = rnd.nextInt(addresses.size());
            addresses.set(i, heap.reallocateAddress(addresses.get(i), size));
          }
        }
        case 6 -> {
          if (!buffers.isEmpty()) {
            heap.free(buffers.remove(rnd.nextInt(buffers.size())));
          }
        }
        case 7 -> {
          if (!addresses.isEmpty()) {
            long a = addresses.remove(rnd.nextInt(addresses.size()));
            if (heap.usableSizeAddress(a) < 0) {
              throw new AssertionError("usableSizeAddress negative");
            }
            heap.freeAddress(a);
          }
        }
        default -> {
          if (rnd.nextInt(16) == 0) {
            heap.trim();
          } else {
            heap.stats();
          }
        }
      }
      if (buffers.size() + addresses.size() > 64) {
        if (!buffers.isEmpty()) {
          heap.free(buffers.remove(0));
        }
        if (!addresses.isEmpty()) {
          heap.freeAddress(addresses.remove(0));
        }
      }
      if (++ops == 200) {
        counted[0] = true;
        working.countDown();
      }
    }
  }
}
