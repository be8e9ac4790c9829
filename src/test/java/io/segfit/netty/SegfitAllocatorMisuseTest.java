// SPDX-License-Identifier: Apache-2.0
package io.segfit.netty;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.util.IllegalReferenceCountException;
import io.netty.util.ResourceLeakDetector;
import io.segfit.Heap;
import io.segfit.HeapOutOfMemoryError;
import io.segfit.HeapStats;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Reference counting and misuse: double release, use after release, releases from other
 * threads, the heap's limit, a closed heap; and the figures metric() reports.
 */
class SegfitAllocatorMisuseTest {
  private static final long LIMIT = 32L << 20;
  private Heap heap;
  private SegfitByteBufAllocator alloc;
  private ResourceLeakDetector.Level levelBefore;

  @BeforeEach
  void open() {
    levelBefore = ResourceLeakDetector.getLevel();
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.DISABLED);
    heap = NettyTestSupport.heap("netty-misuse", LIMIT);
    alloc = new SegfitByteBufAllocator(heap);
  }

  @AfterEach
  void close() {
    if (!heap.isClosed()) heap.close();
    ResourceLeakDetector.setLevel(levelBefore);
  }

  @Test
  void referenceCounting() {
    ByteBuf b = alloc.directBuffer(64);
    assertEquals(1, b.refCnt());
    b.retain();
    b.retain(3);
    assertEquals(5, b.refCnt());
    assertFalse(b.release(4));
    assertEquals(1, heap.stats().liveBlocks());
    assertThrows(IllegalReferenceCountException.class, () -> b.release(2),
        "releasing more than is held");
    assertEquals(1, b.refCnt(), "a refused release changes nothing");
    assertThrows(IllegalArgumentException.class, () -> b.release(0));
    assertThrows(IllegalArgumentException.class, () -> b.retain(-1));
    assertTrue(b.release());
    assertEquals(0, b.refCnt());
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void aCountThatWouldOverflowIsRefused() {
    ByteBuf b = alloc.directBuffer(64);
    b.retain(Integer.MAX_VALUE - 1);
    assertEquals(Integer.MAX_VALUE, b.refCnt());
    assertThrows(IllegalReferenceCountException.class, b::retain);
    assertThrows(IllegalReferenceCountException.class, () -> b.retain(Integer.MAX_VALUE));
    assertEquals(Integer.MAX_VALUE, b.refCnt(), "a refused retain changes nothing");
    assertFalse(b.release(Integer.MAX_VALUE - 1));
    assertTrue(b.release());
    assertEquals(0, heap.stats().liveBlocks());
  }

  /** Threads that retain and release one buffer at once: exactly one release frees it. */
  @Test
  void racingRetainsAndReleasesFreeOnce() throws Exception {
    int threads = 3;
    long freesBefore = heap.stats().frees();
    for (int trial = 0; trial < 50; trial++) {
      ByteBuf b = alloc.directBuffer(64);
      b.retain(threads);   // one reference for each thread's last release
      CyclicBarrier start = new CyclicBarrier(threads + 1);
      AtomicInteger freed = new AtomicInteger();
      AtomicReference<Throwable> failure = new AtomicReference<>();
      List<Thread> racers = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        Thread racer = new Thread(() -> {
          try {
            start.await();
            for (int i = 0; i < 2_000; i++) {
              b.retain();
              b.setByte(i & 63, i);
              if (b.release()) throw new AssertionError("freed while a reference was held");
            }
            if (b.release()) freed.incrementAndGet();
          } catch (Throwable e) {
            failure.set(e);
          }
        }, "netty-racer-" + t);
        racer.start();
        racers.add(racer);
      }
      start.await();
      if (b.release()) freed.incrementAndGet();
      for (Thread racer : racers) racer.join();
      if (failure.get() != null) throw new AssertionError(failure.get());
      assertEquals(1, freed.get(), "trial " + trial);
      assertEquals(0, b.refCnt());
      assertThrows(IllegalReferenceCountException.class, b::release);
    }
    assertEquals(freesBefore + 50, heap.stats().frees());
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void doubleReleaseNeverReachesTheHeap() {
    ByteBuf b = alloc.directBuffer(64);
    b.writeLong(1);
    assertTrue(b.release());
    HeapStats after = heap.stats();
    assertThrows(IllegalReferenceCountException.class, b::release);
    assertThrows(IllegalReferenceCountException.class, () -> b.release(1));
    assertThrows(IllegalReferenceCountException.class, b::retain);
    assertEquals(after.frees(), heap.stats().frees(), "no second free");
    assertEquals(0, heap.stats().liveBlocks());
    // A derived buffer shares the count: its release after the last one is refused too.
    ByteBuf c = alloc.directBuffer(64);
    ByteBuf slice = c.slice();
    ByteBuf dup = c.duplicate();
    c.release();
    assertThrows(IllegalReferenceCountException.class, slice::release);
    assertThrows(IllegalReferenceCountException.class, dup::release);
    assertEquals(after.frees() + 1, heap.stats().frees());
  }

  @Test
  void useAfterReleaseIsRefused() {
    ByteBuf b = alloc.directBuffer(64);
    b.writeInt(7);
    ByteBuf slice = b.slice(0, 8);
    ByteBuf dup = b.duplicate();
    b.release();
    List<Runnable> uses = List.of(
        () -> b.getByte(0), () -> b.getInt(0), () -> b.setLong(0, 1), () -> b.readInt(),
        () -> b.writeByte(1), () -> b.getBytes(0, new byte[4]), () -> b.setBytes(0, new byte[4]),
        () -> b.nioBuffer(), () -> b.nioBuffers(), () -> b.internalNioBuffer(0, 4),
        () -> b.capacity(128), () -> b.ensureWritable(1000), () -> b.copy(),
        () -> b.memoryAddress(), () -> slice.getByte(0), () -> dup.getInt(0),
        () -> b.setZero(0, 8), () -> b.retainedSlice());
    for (Runnable use : uses) {
      assertThrows(IllegalReferenceCountException.class, use::run);
    }
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void releaseFromAnotherThread() throws Exception {
    BlockingQueue<ByteBuf> queue = new ArrayBlockingQueue<>(64);
    AtomicReference<Throwable> failure = new AtomicReference<>();
    int count = 20_000;
    Thread consumer = new Thread(() -> {
      try {
        for (int i = 0; i < count; i++) {
          ByteBuf b = queue.take();
          if (b.getInt(0) != i) throw new AssertionError("buffer " + i + " holds " + b.getInt(0));
          if (!b.release()) throw new AssertionError("not released");
        }
      } catch (Throwable t) {
        failure.set(t);
      }
    }, "netty-consumer");
    consumer.start();
    Random r = new Random(3);
    for (int i = 0; i < count && failure.get() == null; i++) {
      ByteBuf b = alloc.directBuffer(4 + r.nextInt(r.nextInt(10) == 0 ? 100_000 : 2000));
      b.writeInt(i);
      queue.put(b);
    }
    consumer.join();
    if (failure.get() != null) throw new AssertionError(failure.get());
    assertEquals(0, heap.stats().liveBlocks());
    assertEquals(0, alloc.metric().usedDirectMemory());
    assertTrue(heap.stats().remoteFrees() > 0, "frees from the other thread: " + heap.stats());
  }

  @Test
  void limitIsAnOutOfMemoryErrorWithFigures() {
    ByteBuf held = alloc.directBuffer(8 << 20);
    OutOfMemoryError e = assertThrows(OutOfMemoryError.class, () -> alloc.directBuffer(40 << 20));
    HeapOutOfMemoryError h = assertInstanceOf(HeapOutOfMemoryError.class, e);
    assertTrue(h.isLimitReached());
    assertEquals(40 << 20, h.requestedBytes());
    assertEquals(LIMIT, h.maxBytes());
    assertTrue(e.getMessage().contains("netty-misuse") && e.getMessage().contains("" + LIMIT),
        e.getMessage());
    assertEquals(8 << 20, alloc.metric().usedDirectMemory(), "nothing counted for the refusal");

    // A growth the limit refuses leaves the buffer as it was.
    byte[] data = new byte[8 << 20];
    new Random(5).nextBytes(data);
    held.writeBytes(data);
    assertThrows(HeapOutOfMemoryError.class, () -> held.capacity(48 << 20));
    assertThrows(HeapOutOfMemoryError.class, () -> held.writeBytes(new byte[30 << 20]));
    assertEquals(8 << 20, held.capacity());
    assertEquals(8 << 20, held.writerIndex());
    byte[] back = new byte[8 << 20];
    held.getBytes(0, back);
    assertArrayEquals(data, back);
    assertEquals(8 << 20, alloc.metric().usedDirectMemory());
    held.release();
    ByteBuf again = alloc.directBuffer(24 << 20);   // the memory is back
    again.release();
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void closedHeap() {
    ByteBuf live = alloc.directBuffer(64);
    heap.close();
    assertThrows(IllegalStateException.class, () -> alloc.directBuffer(64));
    assertThrows(IllegalStateException.class, live::release,
        "the heap already released every block");
    assertEquals(0, live.refCnt());
    assertEquals(0, alloc.metric().usedDirectMemory());
    assertThrows(IllegalReferenceCountException.class, live::release);
  }

  @Test
  void metricCountsLiveCapacities() {
    SegfitByteBufAllocatorMetric m = alloc.metric();
    assertEquals(0, m.usedDirectMemory());
    assertEquals(0, m.usedHeapMemory());
    ByteBuf a = alloc.directBuffer(100);
    ByteBuf b = alloc.directBuffer(1000, 5000);
    ByteBuf h = alloc.heapBuffer(50);
    assertEquals(1100, m.usedDirectMemory());
    assertEquals(50, m.usedHeapMemory());
    b.capacity(3000);
    h.capacity(70);
    assertEquals(3100, m.usedDirectMemory());
    assertEquals(70, m.usedHeapMemory());
    ByteBuf slice = a.retainedSlice();   // derived buffers are no new memory
    assertEquals(3100, m.usedDirectMemory());
    HeapStats stats = m.heapStats();
    assertEquals(2, stats.liveBlocks());
    assertTrue(stats.liveBytes() >= 3100, stats.toString());
    a.release();
    assertEquals(3100, m.usedDirectMemory(), "still held by the slice");
    slice.release();
    b.release();
    h.release();
    assertEquals(0, m.usedDirectMemory());
    assertEquals(0, m.usedHeapMemory());
    assertTrue(m.toString().contains("usedDirectMemory: 0"), m.toString());
    assertEquals(0, m.heapStats().liveBlocks());
  }

  @Test
  void metricKeepsWhatDeadThreadsAllocated() throws Exception {
    List<ByteBuf> left = new ArrayList<>();
    for (int t = 0; t < 100; t++) {   // threads that come and go, each leaving a buffer live
      int capacity = 100 + t;
      Thread thread = new Thread(() -> {
        alloc.directBuffer(7).release();
        left.add(alloc.directBuffer(capacity));
      });
      thread.start();
      thread.join();
    }
    long expected = 0;
    for (ByteBuf b : left) expected += b.capacity();
    assertEquals(expected, alloc.metric().usedDirectMemory());
    ByteBuf grown = left.get(0);
    grown.capacity(5000);            // resized and released here, allocated by a dead thread
    assertEquals(expected - 100 + 5000, alloc.metric().usedDirectMemory());
    left.forEach(ByteBuf::release);
    assertEquals(0, alloc.metric().usedDirectMemory());
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void metricUnderConcurrency() throws Exception {
    List<Thread> threads = new ArrayList<>();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    for (int t = 0; t < 4; t++) {
      int seed = t;
      threads.add(new Thread(() -> {
        try {
          Random r = new Random(seed);
          List<ByteBuf> held = new ArrayList<>();
          for (int i = 0; i < 20_000; i++) {
            if (held.size() < 50 && r.nextBoolean()) {
              ByteBuf b = r.nextBoolean() ? alloc.directBuffer(r.nextInt(5000))
                  : alloc.heapBuffer(r.nextInt(500));
              if (r.nextInt(8) == 0) b.ensureWritable(r.nextInt(20_000));
              held.add(b);
            } else if (!held.isEmpty()) {
              held.remove(r.nextInt(held.size())).release();
            }
          }
          held.forEach(ByteBuf::release);
        } catch (Throwable e) {
          failure.set(e);
        }
      }));
    }
    threads.forEach(Thread::start);
    for (Thread t : threads) t.join();
    if (failure.get() != null) throw new AssertionError(failure.get());
    assertEquals(0, alloc.metric().usedDirectMemory());
    assertEquals(0, alloc.metric().usedHeapMemory());
    assertEquals(0, heap.stats().liveBlocks());
  }
}
