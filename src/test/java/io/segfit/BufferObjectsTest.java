// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The buffer objects a heap hands out: a block allocated again with the same size gets its
 * buffer object back, reset; a buffer is freed by its identity or, for views of it, by its
 * address; leak detection keeps one object per allocation.
 */
class BufferObjectsTest {
  private Heap heap;

  @BeforeEach
  void open() {
    heap = Heap.builder().name("buffer-objects").build();
  }

  @AfterEach
  void close() {
    if (!heap.isClosed()) heap.close();
  }

  /** Allocates and frees size bytes until a buffer object comes back; returns how many did. */
  private int roundTripsUntilReuse(int size, int rounds, Map<ByteBuffer, Long> seen) {
    int reused = 0;
    for (int i = 0; i < rounds; i++) {
      ByteBuffer b = heap.allocate(size);
      assertEquals(0, b.position());
      assertEquals(size, b.limit());
      assertEquals(size, b.capacity());
      assertSame(ByteOrder.nativeOrder(), b.order());
      long stamp = ((long) size << 32) | i;
      if (seen.containsKey(b)) reused++;
      seen.put(b, stamp);
      // Leave it in a state a reuse must undo.
      b.putLong(0, stamp).position(size / 2).order(ByteOrder.BIG_ENDIAN).mark();
      heap.free(b);
    }
    return reused;
  }

  @Test
  void aBlockAllocatedAgainWithItsSizeGetsItsBufferBackReset() {
    Map<ByteBuffer, Long> seen = new IdentityHashMap<>();
    int reused = roundTripsUntilReuse(64, TestSupport.scaled(5000), seen);
    assertTrue(reused > 0, "a round trip of one size cycles through a slab's blocks: some come "
        + "back with their buffer objects");
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void aDifferentSizeGetsANewBuffer() {
    List<ByteBuffer> old = new ArrayList<>();
    for (int i = 0; i < 64; i++) old.add(heap.allocate(48));
    old.forEach(heap::free);
    // 40 and 48 bytes share a class, so the same blocks come back, with a new capacity.
    for (int i = 0; i < 64; i++) {
      ByteBuffer b = heap.allocate(40);
      assertEquals(40, b.capacity());
      for (ByteBuffer o : old) assertNotSame(o, b);
      heap.free(b);
    }
  }

  @Test
  void freeingTwiceIsCaughtWhetherTheBufferIsKnownOrNot() {
    ByteBuffer b = heap.allocate(64);
    heap.free(b);
    assertThrows(IllegalStateException.class, () -> heap.free(b));
    ByteBuffer c = heap.allocate(64);
    ByteBuffer view = c.duplicate();
    heap.free(view);
    assertThrows(IllegalStateException.class, () -> heap.free(c));
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void anotherHeapsBufferIsRejectedEvenWhenItsLowAddressBitsMatch() {
    try (Heap other = Heap.builder().name("buffer-objects-other").build()) {
      // Both heaps' first slab blocks of a class sit at the same offsets of their segments.
      ByteBuffer ours = heap.allocate(64);
      ByteBuffer theirs = other.allocate(64);
      assertThrows(IllegalArgumentException.class, () -> heap.free(theirs));
      assertThrows(IllegalArgumentException.class, () -> other.free(ours));
      heap.free(ours);
      other.free(theirs);
      assertEquals(0, other.stats().liveBlocks());
    }
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void aReallocationToTheSameSizeHandsBackAUsableBuffer() {
    ByteBuffer b = heap.allocate(100);
    b.putInt(0, 7).position(9);
    ByteBuffer r = heap.reallocate(b, 100);
    assertEquals(0, r.position());
    assertEquals(100, r.capacity());
    assertEquals(7, r.getInt(0));
    heap.free(r);
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void buffersCrossThreads() throws Exception {
    ExecutorService other = Executors.newSingleThreadExecutor();
    try {
      for (int round = 0; round < 50; round++) {
        List<ByteBuffer> mine = new ArrayList<>();
        for (int i = 0; i < 100; i++) mine.add(heap.allocate(64).putInt(0, i));
        Future<?> freed = other.submit(() -> {
          for (int i = 0; i < mine.size(); i++) {
            assertEquals(i, mine.get(i).getInt(0));
            heap.free(mine.get(i));
          }
        });
        freed.get();
        List<ByteBuffer> theirs = other.submit(() -> {
          List<ByteBuffer> l = new ArrayList<>();
          for (int i = 0; i < 100; i++) l.add(heap.allocate(64).putInt(0, -i));
          return l;
        }).get();
        for (int i = 0; i < theirs.size(); i++) {
          assertEquals(-i, theirs.get(i).getInt(0));
          heap.free(theirs.get(i));
        }
      }
    } finally {
      other.shutdown();
    }
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void leakDetectionKeepsOneObjectPerAllocation() {
    try (Heap tracked = Heap.builder().name("buffer-objects-tracked")
        .leakDetection(LeakDetection.PARANOID).build()) {
      Map<ByteBuffer, Boolean> seen = new IdentityHashMap<>();
      for (int i = 0; i < 3000; i++) {
        ByteBuffer b = tracked.allocate(64);
        assertTrue(seen.put(b, Boolean.TRUE) == null, "a tracked buffer object came back");
        tracked.free(b);
      }
    }
  }
}
