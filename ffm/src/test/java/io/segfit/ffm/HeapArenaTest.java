// SPDX-License-Identifier: Apache-2.0
package io.segfit.ffm;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.segfit.Heap;
import io.segfit.HeapOutOfMemoryError;
import io.segfit.HeapStats;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** HeapArena held to the JDK arenas' contract, side by side with them where they are alike. */
class HeapArenaTest {
  private Heap heap;

  @BeforeEach
  void open() {
    heap = Heap.builder().name("arena-test").jmx(false).build();
  }

  @AfterEach
  void close() {
    if (!heap.isClosed()) heap.close();
  }

  private Function<Heap, Arena> kind(String kind) {
    return "shared".equals(kind) ? HeapArena::ofShared : HeapArena::ofConfined;
  }

  @ParameterizedTest
  @ValueSource(strings = {"confined", "shared"})
  void allocatesZeroedAlignedBoundedSegmentsAndFreesThemOnClose(String kind) {
    long liveBefore = heap.stats().liveBlocks();
    Arena arena = kind(kind).apply(heap);
    List<MemorySegment> segments = new ArrayList<>();
    for (long alignment = 1; alignment <= 1 << 20; alignment <<= 1) {
      for (long size : new long[] {0, 1, 24, 4000, (1 << 20) + 3}) {
        MemorySegment s = arena.allocate(size, alignment);
        assertEquals(size, s.byteSize());
        assertEquals(0, s.address() % alignment, "alignment " + alignment);
        assertEquals(arena.scope(), s.scope());
        assertTrue(s.isNative());
        for (long i = 0; i < size; i += 997) assertEquals(0, s.get(JAVA_BYTE, i));
        if (size > 0) assertEquals(0, s.get(JAVA_BYTE, size - 1));
        assertThrows(IndexOutOfBoundsException.class, () -> s.get(JAVA_BYTE, size));
        s.fill((byte) 0x5A);
        segments.add(s);
      }
    }
    assertEquals(liveBefore + segments.size(), heap.stats().liveBlocks());
    // SegmentAllocator's defaults go through allocate(size, alignment)
    MemorySegment text = arena.allocateFrom("segfit");
    assertEquals("segfit", text.getString(0));
    assertEquals(7, text.byteSize());
    arena.close();
    assertEquals(liveBefore, heap.stats().liveBlocks(), "close() freed every block");
    assertFalse(arena.scope().isAlive());
    for (MemorySegment s : segments) {
      assertFalse(s.scope().isAlive());
      if (s.byteSize() > 0) {
        assertThrows(IllegalStateException.class, () -> s.get(JAVA_BYTE, 0), "never a fault");
      }
    }
    assertThrows(IllegalStateException.class, () -> arena.allocate(8, 1));
    assertThrows(IllegalStateException.class, arena::close, "closing twice is an error");
  }

  @Test
  void reusedBlocksAreZeroedAgain() {
    for (int round = 0; round < 3; round++) {
      try (Arena arena = HeapArena.ofConfined(heap)) {
        for (int i = 0; i < 100; i++) {
          MemorySegment s = arena.allocate(48, 8);
          for (long j = 0; j < 48; j += 8) assertEquals(0, s.get(JAVA_LONG, j), "round " + round);
          s.fill((byte) -1);
          MemorySegment big = arena.allocate(5000, 64);
          assertEquals(0, big.get(JAVA_LONG, 4992));
          big.fill((byte) -1);
        }
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"confined", "shared"})
  void badSizesAndAlignmentsAreRejectedAsTheJdkArenasDo(String kind) {
    try (Arena jdk = "shared".equals(kind) ? Arena.ofShared() : Arena.ofConfined();
        Arena ours = kind(kind).apply(heap)) {
      long live = heap.stats().liveBlocks();
      for (long[] bad : new long[][] {{-1, 1}, {8, 0}, {8, -8}, {8, 3}, {8, 24}}) {
        assertThrows(IllegalArgumentException.class, () -> jdk.allocate(bad[0], bad[1]));
        IllegalArgumentException e =
            assertThrows(IllegalArgumentException.class, () -> ours.allocate(bad[0], bad[1]));
        assertTrue(e.getMessage().endsWith(" " + (bad[0] < 0 ? bad[0] : bad[1])), e::getMessage);
      }
      // segfit's own bounds: IllegalArgumentException too, from the heap
      assertThrows(IllegalArgumentException.class, () -> ours.allocate(8, 1L << 31));
      assertThrows(IllegalArgumentException.class, () -> ours.allocate(1L << 47, 1));
      assertEquals(live, heap.stats().liveBlocks(), "nothing allocated by a refused call");
    }
  }

  @Test
  void theHeapsLimitIsAnOutOfMemoryErrorAndTheArenaGoesOn() {
    try (Heap small = Heap.builder().name("arena-limit").maxBytes(8 << 20).jmx(false).build();
        Arena arena = HeapArena.ofConfined(small)) {
      MemorySegment kept = arena.allocate(1 << 20, 16);
      kept.set(JAVA_LONG, 0, 42);
      assertThrows(HeapOutOfMemoryError.class, () -> arena.allocate(16 << 20, 16));
      assertEquals(42, kept.get(JAVA_LONG, 0));
      assertEquals(0, arena.allocate(1 << 20, 4096).get(JAVA_LONG, 0));
    }
  }

  @Test
  void aConfinedArenaBelongsToItsThread() throws Exception {
    try (Arena arena = HeapArena.ofConfined(heap)) {
      MemorySegment s = arena.allocate(64, 8);
      ExecutorService other = Executors.newSingleThreadExecutor();
      try {
        for (Runnable misuse : new Runnable[] {
            () -> arena.allocate(8, 1), arena::close, () -> s.get(JAVA_BYTE, 0)}) {
          Future<?> f = other.submit(misuse);
          Throwable t = assertThrows(java.util.concurrent.ExecutionException.class, f::get)
              .getCause();
          assertTrue(t instanceof WrongThreadException, t::toString);
        }
      } finally {
        other.shutdown();
      }
      s.set(JAVA_BYTE, 63, (byte) 1); // still open, and still ours
      assertTrue(s.isAccessibleBy(Thread.currentThread()));
    }
  }

  @Test
  void aSharedArenaClosedWhileOtherThreadsUseItsSegments() throws Exception {
    int threads = 2;
    for (int round = 0; round < 20; round++) {
      long liveBefore = heap.stats().liveBlocks();
      Arena arena = HeapArena.ofShared(heap);
      MemorySegment shared = arena.allocate(1 << 20, 16); // a large block: unmapped when freed
      AtomicBoolean stop = new AtomicBoolean();
      AtomicLong refusals = new AtomicLong();
      CountDownLatch running = new CountDownLatch(threads);
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      List<Future<?>> work = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int id = t;
        work.add(pool.submit(() -> {
          running.countDown();
          long i = 0;
          while (!stop.get()) {
            try {
              if (id == 0) {
                shared.set(JAVA_LONG, (i++ * 8) % (1 << 20), i); // racing the close
              } else {
                arena.allocate(100 + i++ % 5000, 8).set(JAVA_BYTE, 0, (byte) 1);
              }
            } catch (IllegalStateException closed) {
              refusals.incrementAndGet();
              return null;
            }
          }
          return null;
        }));
      }
      running.await();
      Thread.sleep(round % 3);
      arena.close();
      for (Future<?> f : work) f.get();
      stop.set(true);
      pool.shutdown();
      assertEquals(threads, refusals.get(), "each thread saw the close as an exception");
      assertEquals(liveBefore, heap.stats().liveBlocks(), "every block went back");
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2, 16, 17, 18, 48, 49, 50, 1000, 5000})
  void everyBlockOfEveryChunkIsFreedOnce(int count) {
    for (String kind : new String[] {"confined", "shared"}) {
      HeapStats before = heap.stats();
      Arena arena = kind(kind).apply(heap);
      List<MemorySegment> segments = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        MemorySegment s = arena.allocate(8 + i % 300, 8);
        s.set(JAVA_LONG, 0, i);
        segments.add(s);
      }
      for (int i = 0; i < count; i++) assertEquals(i, segments.get(i).get(JAVA_LONG, 0), kind);
      assertEquals(before.liveBlocks() + count, heap.stats().liveBlocks(), kind);
      arena.close();
      HeapStats after = heap.stats();
      assertEquals(before.liveBlocks(), after.liveBlocks(), kind + ": none lost");
      assertEquals(before.liveBytes(), after.liveBytes(), kind);
      assertEquals(after.allocations() - before.allocations(), after.frees() - before.frees(),
          kind + ": each freed once");
      assertThrows(IllegalStateException.class, () -> segments.get(count - 1).get(JAVA_BYTE, 0));
    }
  }

  /**
   * Several threads allocate from one shared arena while another closes it, at a different
   * moment each round: no fault, every allocation either returns a segment that the close then
   * kills or throws IllegalStateException, and afterwards every block went back exactly once.
   */
  @Test
  void aSharedArenaClosedWhileThreadsAllocate() throws Exception {
    int threads = 3;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      for (int round = 0; round < 40; round++) {
        HeapStats before = heap.stats();
        Arena arena = HeapArena.ofShared(heap);
        AtomicLong allocated = new AtomicLong();
        CountDownLatch started = new CountDownLatch(threads);
        List<Future<List<MemorySegment>>> work = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
          int seed = round * threads + t;
          work.add(pool.submit(() -> {
            List<MemorySegment> mine = new ArrayList<>();
            started.countDown();
            for (int i = 0;; i++) {
              // small blocks, a large one now and then, and alignments that miss the
              // zeroed-first try: every path of allocate() races the close
              long size = i % 97 == 0 ? 300_000 : 1 + (seed * 31L + i * 7L) % 3000;
              long alignment = 1L << ((seed + i) % 9);
              MemorySegment s;
              try {
                s = arena.allocate(size, alignment);
              } catch (IllegalStateException closed) {
                return mine;
              }
              try {
                s.set(JAVA_BYTE, size - 1, (byte) 1); // may race the close: throws, never faults
              } catch (IllegalStateException closed) {
                mine.add(s);
                return mine;
              }
              mine.add(s);
              allocated.incrementAndGet();
            }
          }));
        }
        started.await();
        long target = (round % 4) * (round % 4) * 500L; // 0, 500, 2000, 4500
        while (allocated.get() < target) Thread.onSpinWait();
        arena.close();
        long segments = 0;
        for (Future<List<MemorySegment>> f : work) {
          for (MemorySegment s : f.get()) {
            segments++;
            assertFalse(s.scope().isAlive());
            assertThrows(IllegalStateException.class, () -> s.get(JAVA_BYTE, 0));
          }
        }
        assertTrue(segments >= target, segments + " < " + target);
        HeapStats after = heap.stats();
        assertEquals(before.liveBlocks(), after.liveBlocks(), "round " + round + ": none lost");
        assertEquals(before.liveBytes(), after.liveBytes(), "round " + round);
        assertEquals(after.allocations() - before.allocations(), after.frees() - before.frees(),
            "round " + round + ": each block freed once");
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /** Two threads closing one shared arena: one close wins, the other throws, blocks go once. */
  @Test
  void aSharedArenaClosedTwiceAtOnce() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      for (int round = 0; round < 50; round++) {
        long liveBefore = heap.stats().liveBlocks();
        Arena arena = HeapArena.ofShared(heap);
        for (int i = 0; i < 100; i++) arena.allocate(64, 8);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<Boolean>> closes = new ArrayList<>();
        for (int t = 0; t < 2; t++) {
          closes.add(pool.submit(() -> {
            go.await();
            try {
              arena.close();
              return true;
            } catch (IllegalStateException already) {
              return false;
            }
          }));
        }
        go.countDown();
        int won = 0;
        for (Future<Boolean> f : closes) won += f.get() ? 1 : 0;
        assertEquals(1, won, "round " + round);
        assertEquals(liveBefore, heap.stats().liveBlocks(), "round " + round);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aClosedHeapAndNullAreRefused() {
    assertThrows(NullPointerException.class, () -> HeapArena.ofConfined(null));
    assertThrows(NullPointerException.class, () -> HeapArena.ofShared(null));
    Arena arena = HeapArena.ofConfined(heap);
    MemorySegment s = arena.allocate(16, 1);
    assertNotNull(s);
    heap.close();
    // the heap's own close released the block; the arena has nothing left to free
    assertThrows(IllegalStateException.class, () -> arena.allocate(16, 1));
    arena.close();
    assertThrows(IllegalStateException.class, () -> s.get(JAVA_BYTE, 0));
    assertThrows(IllegalStateException.class, () -> HeapArena.ofConfined(heap));
    assertThrows(IllegalStateException.class, () -> HeapArena.ofShared(heap));
  }

  @Test
  void worksWhereTheHeapPurgesAtOnce() {
    // Blocks freed by close() go back to the OS at once; a new arena gets fresh, zero pages.
    try (Heap eager = Heap.builder().name("arena-eager").purgeDelay(Duration.ZERO).jmx(false)
        .build()) {
      for (int round = 0; round < 3; round++) {
        try (Arena arena = HeapArena.ofShared(eager)) {
          MemorySegment s = arena.allocate(3 << 20, 4096);
          assertEquals(0, s.get(JAVA_LONG, (3 << 20) - 8));
          s.fill((byte) 7);
        }
      }
      assertEquals(0, eager.stats().liveBlocks());
    }
  }
}
