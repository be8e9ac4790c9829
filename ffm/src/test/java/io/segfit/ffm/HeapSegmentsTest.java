// SPDX-License-Identifier: Apache-2.0
package io.segfit.ffm;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.segfit.Heap;
import io.segfit.HeapOutOfMemoryError;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The heap's block operations over segments: bounds, contents, and every refusal. */
class HeapSegmentsTest {
  private Heap heap;

  @BeforeEach
  void open() {
    heap = Heap.builder().name("segments-test").jmx(false).build();
  }

  @AfterEach
  void close() {
    if (!heap.isClosed()) heap.close();
  }

  @Test
  void allocateReallocateFreeKeepContentsWithinBounds() {
    MemorySegment s = HeapSegments.allocate(heap, 100);
    assertEquals(100, s.byteSize());
    assertThrows(IndexOutOfBoundsException.class, () -> s.get(JAVA_BYTE, 100));
    for (int i = 0; i < 100; i++) s.set(JAVA_BYTE, i, (byte) i);
    MemorySegment grown = HeapSegments.reallocate(heap, s, 3 << 20); // into a large block
    assertEquals(3 << 20, grown.byteSize());
    for (int i = 0; i < 100; i++) assertEquals((byte) i, grown.get(JAVA_BYTE, i));
    grown.set(JAVA_LONG, (3 << 20) - 8, 7);
    MemorySegment shrunk = HeapSegments.reallocate(heap, grown, 50);
    for (int i = 0; i < 50; i++) assertEquals((byte) i, shrunk.get(JAVA_BYTE, i));
    HeapSegments.free(heap, shrunk);
    assertEquals(0, heap.stats().liveBlocks());

    MemorySegment z = HeapSegments.allocateZeroed(heap, 5000);
    for (long i = 0; i < 5000; i += 8) assertEquals(0, z.get(JAVA_LONG, i));
    MemorySegment a = HeapSegments.allocateAligned(heap, 10, 4096);
    assertEquals(0, a.address() % 4096);
    assertEquals(10, a.byteSize());
    HeapSegments.free(heap, z.asSlice(0, 16).asReadOnly()); // a view at the start: the block
    HeapSegments.free(heap, a);
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void everyMisuseIsRefusedAndLosesNothing() {
    MemorySegment s = HeapSegments.allocate(heap, 64);
    s.set(JAVA_LONG, 0, 42);
    assertThrows(NullPointerException.class, () -> HeapSegments.free(heap, null));
    assertThrows(NullPointerException.class, () -> HeapSegments.free(null, s));
    assertThrows(IllegalArgumentException.class,
        () -> HeapSegments.free(heap, MemorySegment.ofArray(new byte[64])));
    assertThrows(IllegalArgumentException.class, () -> HeapSegments.free(heap, s.asSlice(16)));
    assertThrows(IllegalArgumentException.class,
        () -> HeapSegments.free(heap, s.reinterpret(1 << 20)), "larger than the block");
    try (Arena arena = HeapArena.ofConfined(heap)) {
      MemorySegment ofArena = arena.allocate(64);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> HeapSegments.free(heap, ofArena));
      assertTrue(e.getMessage().contains("arena"), e::getMessage);
    }
    try (Arena jdk = Arena.ofConfined()) {
      assertThrows(IllegalArgumentException.class,
          () -> HeapSegments.free(heap, jdk.allocate(64)));
    }
    try (Heap other = Heap.builder().name("segments-other").jmx(false).build()) {
      MemorySegment foreign = HeapSegments.allocate(other, 64);
      assertThrows(IllegalArgumentException.class, () -> HeapSegments.free(heap, foreign));
      assertThrows(IllegalArgumentException.class, () -> HeapSegments.reallocate(heap, foreign, 8));
    }
    assertThrows(IllegalArgumentException.class, () -> HeapSegments.allocate(heap, -1));
    assertThrows(IllegalArgumentException.class, () -> HeapSegments.allocateAligned(heap, 8, 3));
    assertThrows(IllegalArgumentException.class, () -> HeapSegments.reallocate(heap, s, -1));
    assertEquals(42, s.get(JAVA_LONG, 0), "the block is untouched");
    HeapSegments.free(heap, s);
    assertThrows(IllegalStateException.class, () -> HeapSegments.free(heap, s), "double free");
    assertThrows(IllegalStateException.class, () -> HeapSegments.reallocate(heap, s, 8));
    heap.close();
    assertThrows(IllegalStateException.class, () -> HeapSegments.allocate(heap, 8));
    assertThrows(IllegalStateException.class, () -> HeapSegments.free(heap, s));
  }

  @Test
  void theLimitIsAnOutOfMemoryErrorAndTheBlockStaysLive() {
    try (Heap small = Heap.builder().name("segments-limit").maxBytes(8 << 20).jmx(false)
        .build()) {
      MemorySegment s = HeapSegments.allocate(small, 1 << 20);
      s.set(JAVA_LONG, 0, 42);
      assertThrows(HeapOutOfMemoryError.class, () -> HeapSegments.allocate(small, 16 << 20));
      assertThrows(HeapOutOfMemoryError.class, () -> HeapSegments.reallocate(small, s, 16 << 20));
      assertEquals(42, s.get(JAVA_LONG, 0));
      HeapSegments.free(small, s);
    }
  }
}
