// SPDX-License-Identifier: Apache-2.0
/*
 * Out of memory through the heap's own limit (maxBytes): every entry point fails with
 * HeapOutOfMemoryError naming the heap, its limit and its live bytes; nothing held is lost or
 * changed; the statistics count exactly what is held; and after frees the heap allocates again.
 */
package io.segfit.hostile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.segfit.Heap;
import io.segfit.HeapOutOfMemoryError;
import io.segfit.HeapStats;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class HeapLimitTest {
  private static final long LIMIT = 8L << 20;

  @ParameterizedTest(name = "blocks of {0} bytes")
  @ValueSource(ints = {64, 4096, 65536, 1 << 20, (2 << 20) + 100})
  void limitRefusesCleanlyAndRecovers(int size) {
    String name = "limit-" + size;
    try (Heap heap = Heap.builder().name(name).maxBytes(LIMIT).purgeDelay(Duration.ZERO).build()) {
      List<ByteBuffer> held = new ArrayList<>();
      HeapOutOfMemoryError refused = null;
      while (refused == null) {
        try {
          ByteBuffer b = heap.allocate(size);
          Hostile.fill(Hostile.Bytes.of(b), held.size(), 0, size);
          held.add(b);
          assertTrue(held.size() <= 2 * LIMIT / size + 16, "the limit never bit");
        } catch (HeapOutOfMemoryError e) {
          refused = e;
        }
      }
      assertTrue(!held.isEmpty(), "not one block under the limit");
      HeapStats atLimit = heap.stats();
      assertMessage(refused, name, atLimit.liveBytes());
      assertEquals(held.size(), atLimit.liveBlocks(), "live blocks at the limit");
      assertTrue(atLimit.liveBytes() <= LIMIT, "live bytes above the limit: " + atLimit);
      assertTrue(atLimit.committedBytes() <= LIMIT, "committed bytes above the limit: " + atLimit);

      // Every entry point refuses alike, and refusals change nothing.
      assertMessage(assertThrows(HeapOutOfMemoryError.class, () -> heap.allocateZeroed(size)),
          name, atLimit.liveBytes());
      assertMessage(assertThrows(HeapOutOfMemoryError.class,
          () -> heap.allocateAligned(size, 4096)), name, atLimit.liveBytes());
      assertMessage(assertThrows(HeapOutOfMemoryError.class,
          () -> heap.allocateAddress(size)), name, atLimit.liveBytes());
      assertMessage(assertThrows(HeapOutOfMemoryError.class,
          () -> heap.allocate((int) LIMIT + 1)), name, atLimit.liveBytes());
      ByteBuffer first = held.get(0);
      assertMessage(assertThrows(HeapOutOfMemoryError.class,
          () -> heap.reallocate(first, (int) LIMIT)), name, atLimit.liveBytes());
      HeapStats after = heap.stats();
      assertEquals(atLimit.liveBlocks(), after.liveBlocks(), "refusals changed live blocks");
      assertEquals(atLimit.liveBytes(), after.liveBytes(), "refusals changed live bytes");

      // Free every other block (contents intact), then the same number fits again.
      int freed = 0;
      for (int i = 0; i < held.size(); i += 2) {
        assertEquals(-1, Hostile.firstMismatch(Hostile.Bytes.of(held.get(i)), i, 0, size),
            "block " + i + " changed");
        heap.free(held.get(i));
        held.set(i, null);
        freed++;
      }
      heap.trim();
      for (int i = 0; i < held.size() && freed > 0; i += 2, freed--) {
        ByteBuffer b = heap.allocate(size);
        Hostile.fill(Hostile.Bytes.of(b), i, 0, size);
        held.set(i, b);
      }
      for (int i = 0; i < held.size(); i++) {
        if (held.get(i) != null) {
          assertEquals(-1, Hostile.firstMismatch(Hostile.Bytes.of(held.get(i)), i, 0, size),
              "block " + i + " changed");
          heap.free(held.get(i));
        }
      }
      HeapStats end = heap.stats();
      assertEquals(0, end.liveBlocks(), "live blocks after freeing all: " + end);
      assertEquals(0, end.liveBytes(), "live bytes after freeing all: " + end);
      assertTrue(end.limitHits() >= 6, "limit hits: " + end);
    }
  }

  /** The message names the heap, the limit and the live bytes (in bytes, as a plain number). */
  static void assertMessage(HeapOutOfMemoryError e, String name, long liveBytes) {
    assertTrue(e.isLimitReached(), "the limit refused, not the OS: " + e);
    assertEquals(name, e.heapName());
    assertEquals(LIMIT, e.maxBytes());
    String m = e.getMessage();
    assertTrue(m != null && m.contains(name), "message lacks the heap's name: " + m);
    assertTrue(m.contains(Long.toString(LIMIT)), "message lacks the limit " + LIMIT + ": " + m);
    assertTrue(m.contains(Long.toString(liveBytes)),
        "message lacks the live bytes " + liveBytes + ": " + m);
  }
}
