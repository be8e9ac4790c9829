// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.segfit.internal.NativeHeap;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Allocation, reallocation, alignment, zeroing and statistics through the ByteBuffer API. */
class HeapTest {
  private Heap heap;

  @BeforeEach
  void open() {
    heap = Heap.builder().name("heap-test").build();
  }

  @AfterEach
  void close() {
    if (!heap.isClosed()) heap.close();
  }

  @Test
  void buffersHaveTheDocumentedShape() {
    for (int size : new int[] {0, 1, 15, 16, 64, 1000, 4096, 65536, 1 << 20, 3 << 20}) {
      ByteBuffer b = heap.allocate(size);
      assertTrue(b.isDirect());
      assertEquals(0, b.position());
      assertEquals(size, b.limit());
      assertEquals(size, b.capacity());
      assertSame(ByteOrder.nativeOrder(), b.order());
      heap.free(b);
    }
  }

  @Test
  void blocksDoNotOverlapAndKeepTheirContents() {
    int n = TestSupport.scaled(2000);
    List<ByteBuffer> live = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      ByteBuffer b = heap.allocate(1 + (i * 37) % 3000);
      for (int j = 0; j < b.capacity(); j++) b.put(j, (byte) i);
      live.add(b);
    }
    for (int i = 0; i < n; i++) {
      ByteBuffer b = live.get(i);
      for (int j = 0; j < b.capacity(); j++) assertEquals((byte) i, b.get(j), "block " + i);
      heap.free(b);
    }
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void zeroedBlocksAreZeroEvenWhenMemoryIsReused() {
    for (int size : new int[] {16, 100, 4096, 100_000, 2 << 20}) {
      ByteBuffer dirty = heap.allocate(size);
      for (int j = 0; j < size; j++) dirty.put(j, (byte) 0xA5);
      heap.free(dirty);
      ByteBuffer z = heap.allocateZeroed(size);
      for (int j = 0; j < size; j++) assertEquals(0, z.get(j), "size " + size + " byte " + j);
      heap.free(z);
    }
  }

  @Test
  void alignedBlocksAreAligned() {
    for (int alignment = 1; alignment <= (1 << 22); alignment <<= 1) {
      for (int size : new int[] {1, 100, 5000}) {
        ByteBuffer b = heap.allocateAligned(size, alignment);
        assertEquals(size, b.capacity());
        long address = NativeHeap.address(b);
        assertEquals(0, address % alignment, "alignment " + alignment + ", size " + size);
        b.put(size - 1, (byte) 7);
        heap.free(b);
      }
    }
    long page = Segfit.pageSize();
    for (long alignment = 1; alignment <= (1L << 24); alignment <<= 1) {
      long a = heap.allocateAlignedAddress(page + 1, alignment);
      assertEquals(0, a % alignment, "alignment " + alignment);
      assertEquals(0, a % 16, "16-byte minimum");
      heap.freeAddress(a);
    }
  }

  @Test
  void reallocateKeepsContentsInPlaceMovedAndRemapped() {
    HeapStats before = heap.stats();
    // in place: same size class
    ByteBuffer b = heap.allocate(40);
    fill(b, 1);
    ByteBuffer same = heap.reallocate(b, 48);
    assertEquals(48, same.capacity());
    check(same, 40, 1);
    // moved: across classes, growing and shrinking
    ByteBuffer grown = heap.reallocate(same, 10_000);
    assertEquals(10_000, grown.capacity());
    check(grown, 40, 1);
    fill(grown, 2);
    ByteBuffer shrunk = heap.reallocate(grown, 100);
    check(shrunk, 100, 2);
    // large: remapped without copying
    long smallMax = Segfit.smallMax();
    ByteBuffer large = heap.reallocate(shrunk, (int) smallMax * 4);
    check(large, 100, 2);
    fill(large, 3);
    ByteBuffer larger = heap.reallocate(large, (int) smallMax * 16);
    check(larger, (int) smallMax * 4, 3);
    heap.free(larger);
    HeapStats after = heap.stats();
    assertTrue(after.reallocationsInPlace() > before.reallocationsInPlace(), after::toString);
    assertTrue(after.reallocationsMoved() > before.reallocationsMoved(), after::toString);
    assertEquals(0, after.liveBlocks(), after::toString);
  }

  @Test
  void statsAgreeWithOperations() {
    HeapStats s0 = heap.stats();
    assertEquals("heap-test", s0.heapName());
    ByteBuffer[] bs = new ByteBuffer[10];
    for (int i = 0; i < bs.length; i++) bs[i] = heap.allocate(64);
    long big = heap.allocateAddress(Segfit.smallMax() * 2);
    HeapStats s1 = heap.stats();
    assertEquals(s0.allocations() + 11, s1.allocations());
    assertEquals(s0.liveBlocks() + 11, s1.liveBlocks());
    assertTrue(s1.liveBytes() >= 10 * 64 + Segfit.smallMax() * 2, s1::toString);
    assertEquals(1, s1.largeBlocks(), s1::toString);
    assertTrue(s1.largeBytes() >= Segfit.smallMax() * 2, s1::toString);
    assertTrue(s1.committedBytes() >= s1.liveBytes() - s1.largeBytes(), s1::toString);
    long live64 = s1.sizeClasses().stream().filter(c -> c.blockSize() == 64)
        .mapToLong(SizeClassStats::liveBlocks).sum();
    assertEquals(10, live64, s1::toString);
    assertEquals(1, s1.large().liveBlocks(), s1::toString);
    assertTrue(s1.large().isLarge());
    for (ByteBuffer b : bs) heap.free(b);
    heap.freeAddress(big);
    HeapStats s2 = heap.stats();
    assertEquals(s0.frees() + 11, s2.frees());
    assertEquals(0, s2.liveBlocks());
    assertEquals(0, s2.liveBytes());
    assertTrue(s2.toString().contains("heap-test"));
    assertTrue(s2.sizeClasses().size() > 8, "size classes listed");
    long previous = 0;
    for (SizeClassStats c : s2.sizeClasses()) {
      assertTrue(c.blockSize() > previous, "classes ascend");
      previous = c.blockSize();
    }
    assertTrue(previous <= Segfit.smallMax());
  }

  @Test
  void trimReturnsMemoryAndCounts() {
    List<ByteBuffer> burst = new ArrayList<>();
    for (int i = 0; i < TestSupport.scaled(5000); i++) burst.add(heap.allocate(1024));
    long committed = heap.stats().committedBytes();
    for (ByteBuffer b : burst) heap.free(b);
    heap.trim();
    HeapStats s = heap.stats();
    assertTrue(s.committedBytes() < committed, s::toString);
    assertTrue(s.purges() > 0, s::toString);
    TestSupport.assertStillWorks(heap);
  }

  @Test
  void limitGivesHeapOutOfMemoryErrorAndTheHeapRecovers() {
    try (Heap limited = Heap.builder().name("limited").maxBytes(8 << 20).build()) {
      List<Long> blocks = new ArrayList<>();
      HeapOutOfMemoryError e = null;
      try {
        for (int i = 0; i < 1000; i++) blocks.add(limited.allocateAddress(1 << 20));
      } catch (HeapOutOfMemoryError expected) {
        e = expected;
      }
      assertTrue(e != null, "the limit was never hit");
      assertTrue(e.isLimitReached());
      assertEquals("limited", e.heapName());
      assertEquals(8 << 20, e.maxBytes());
      assertEquals(1 << 20, e.requestedBytes());
      assertTrue(e.getMessage().contains("limited") && e.getMessage().contains("limit of "
          + (8 << 20)) && e.getMessage().contains("live"), e.getMessage());
      assertTrue(e.liveBytes() > 0, e.getMessage());
      assertTrue(limited.stats().limitHits() >= 1);
      for (long a : blocks) limited.freeAddress(a);
      TestSupport.assertStillWorks(limited);
      long again = limited.allocateAddress(1 << 20);
      limited.freeAddress(again);
      assertEquals(8 << 20, limited.stats().maxBytes());
    }
  }

  @Test
  void buffersFromManyRegionsAndLargeBlocksWork() {
    ByteBuffer big = heap.allocate(64 << 20);
    big.put(0, (byte) 1).put(big.capacity() - 1, (byte) 2);
    assertEquals(1, big.get(0));
    assertEquals(2, big.get(big.capacity() - 1));
    heap.free(big);
    ByteBuffer a = heap.allocate(32);
    ByteBuffer b = heap.allocate(32);
    assertNotEquals(a, null);
    heap.free(a);
    heap.free(b);
  }

  private static void fill(ByteBuffer b, int seed) {
    for (int i = 0; i < b.capacity(); i++) b.put(i, (byte) (seed * 31 + i));
  }

  private static void check(ByteBuffer b, int length, int seed) {
    for (int i = 0; i < length; i++) {
      if (b.get(i) != (byte) (seed * 31 + i)) {
        throw new AssertionError("byte " + i + " lost: " + b.get(i));
      }
    }
  }
}
