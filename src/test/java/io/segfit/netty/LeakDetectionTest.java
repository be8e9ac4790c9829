// SPDX-License-Identifier: Apache-2.0
package io.segfit.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.util.ResourceLeakDetector;
import io.segfit.Heap;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Filter;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Netty's ResourceLeakDetector at every level: buffers are wrapped as Netty's own allocators
 * wrap theirs, behave the same wrapped, and PARANOID reports a buffer dropped unreleased.
 */
class LeakDetectionTest {
  static {
    // Surefire patches the tests into io.segfit, which does not read java.logging (segfit logs
    // through System.Logger); Netty does, and the leak report is read from it here.
    LeakDetectionTest.class.getModule()
        .addReads(ModuleLayer.boot().findModule("java.logging").orElseThrow());
  }

  private static Heap heap;
  private static SegfitByteBufAllocator alloc;

  @BeforeAll
  static void open() {
    heap = NettyTestSupport.heap("netty-leaks", 0);
    alloc = new SegfitByteBufAllocator(heap);
  }

  @AfterAll
  static void close() {
    heap.close();   // frees the leaked block too
  }

  @ParameterizedTest
  @EnumSource(ResourceLeakDetector.Level.class)
  void everyLevelWrapsAsNettyDoes(ResourceLeakDetector.Level level) {
    NettyTestSupport.atLeakLevel(level, () -> {
      int n = level == ResourceLeakDetector.Level.PARANOID ? 200 : 5000;
      int wrapped = 0;
      List<ByteBuf> held = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        ByteBuf b = alloc.directBuffer(32);
        if (b instanceof SegfitDirectByteBuf) {
          assertEquals(null, b.unwrap());
        } else {
          wrapped++;
          assertTrue(b.getClass().getSimpleName().contains("LeakAware"), b.getClass().getName());
          assertTrue(b.unwrap() instanceof SegfitDirectByteBuf, b.unwrap().getClass().getName());
        }
        b.writeLong(i).writeInt(i);
        ByteBuf slice = b.retainedSlice(0, 8);
        assertEquals(i, slice.readLong());
        slice.release();
        b.touch("hint " + i);
        held.add(b);
      }
      switch (level) {
        case DISABLED -> assertEquals(0, wrapped);
        case PARANOID -> assertEquals(n, wrapped);
        // SIMPLE and ADVANCED sample one buffer in 128 (Netty's default interval)
        default -> assertTrue(wrapped > 0 && wrapped < n, wrapped + " of " + n);
      }
      for (int i = 0; i < n; i++) {
        assertEquals(i, held.get(i).getInt(8));
        assertTrue(held.get(i).release());
      }
      assertEquals(0, heap.stats().liveBlocks());
      assertEquals(0, alloc.metric().usedDirectMemory());
    });
  }

  @Test
  void paranoidReportsALeakedBuffer() throws InterruptedException {
    // Netty logs through JDK logging here (no other logging library is readable on the path).
    Logger logger = Logger.getLogger(ResourceLeakDetector.class.getName());
    List<String> reports = new ArrayList<>();
    // A filter, not a Handler subclass: a class extending a java.logging class could not even
    // be loaded before the reads edge above exists. It keeps the expected report off stderr.
    Filter before = logger.getFilter();
    logger.setFilter(record -> {
      synchronized (reports) {
        reports.add(record.getMessage());
      }
      return false;
    });
    // a heap of its own: the leaked block stays live in it until it is closed
    Heap leaky = NettyTestSupport.heap("netty-leaked", 0);
    SegfitByteBufAllocator leakyAlloc = new SegfitByteBufAllocator(leaky);
    try {
      NettyTestSupport.atLeakLevel(ResourceLeakDetector.Level.PARANOID, () -> {
        leak(leakyAlloc);
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (System.nanoTime() < deadline && !reported(reports)) {
          System.gc();
          // the detector looks for collected buffers when it tracks a new one
          leakyAlloc.directBuffer(8).release();
          try {
            Thread.sleep(20);
          } catch (InterruptedException e) {
            throw new AssertionError(e);
          }
        }
      });
      assertTrue(reported(reports), "no leak reported: " + reports);
      assertEquals(1, leaky.stats().liveBlocks(), "the leaked block stays until the heap closes");
      assertEquals(128, leakyAlloc.metric().usedDirectMemory());
    } finally {
      logger.setFilter(before);
      leaky.close();
    }
  }

  private static boolean reported(List<String> reports) {
    synchronized (reports) {
      return reports.stream().anyMatch(r -> r.contains("LEAK") && r.contains("leakedHere"));
    }
  }

  private static void leak(SegfitByteBufAllocator allocator) {
    ByteBuf b = allocator.directBuffer(128);
    b.touch("leakedHere");
    b.writeInt(1);
    assertSame(allocator, b.alloc());
  }
}
