// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
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
}
