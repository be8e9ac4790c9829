// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The raw-address API, including blocks above 2 GiB. */
class AddressApiTest {
  private static final long GIB = 1L << 30;
  private Heap heap;

  @BeforeEach
  void open() {
    heap = Heap.builder().name("address").build();
  }

  @AfterEach
  void close() {
    heap.close();
  }

  @Test
  void blocksAboveTwoGibibytes() {
    long size = 3 * GIB;
    long a = heap.allocateAddress(size);
    assertNotEquals(0, a);
    assertTrue(heap.usableSizeAddress(a) >= size);
    long page = Segfit.pageSize();
    // touch only the first and last pages: the rest is never committed
    ByteBuffer first = heap.sliceAddress(a, 0, (int) page);
    ByteBuffer last = heap.sliceAddress(a, size - page, (int) page);
    first.putLong(0, 0xC0FFEEL);
    last.putLong((int) page - 8, 0xBEEFL);
    ByteBuffer acrossTwoGib = heap.sliceAddress(a, 2 * GIB - 8, 16);
    acrossTwoGib.putLong(0, 1).putLong(8, 2);
    HeapStats s = heap.stats();
    assertEquals(1, s.largeBlocks(), s::toString);
    assertTrue(s.largeBytes() >= size, s::toString);

    long grown = heap.reallocateAddress(a, size + GIB / 2);
    assertTrue(heap.usableSizeAddress(grown) >= size + GIB / 2);
    assertEquals(0xC0FFEEL, heap.sliceAddress(grown, 0, 8).getLong(0));
    assertEquals(0xBEEFL, heap.sliceAddress(grown, size - 8, 8).getLong(0));
    assertEquals(1, heap.sliceAddress(grown, 2 * GIB - 8, 8).getLong(0));
    assertEquals(2, heap.sliceAddress(grown, 2 * GIB, 8).getLong(0));
    assertTrue(heap.stats().reallocationsRemapped() >= 1, heap.stats()::toString);

    long shrunk = heap.reallocateAddress(grown, 4096);
    assertEquals(0xC0FFEEL, heap.sliceAddress(shrunk, 0, 8).getLong(0));
    heap.freeAddress(shrunk);
    assertEquals(0, heap.stats().liveBlocks());
  }

  @Test
  void zeroedAndReallocatedAddresses() {
    long a = heap.allocateZeroedAddress(10_000);
    ByteBuffer view = heap.sliceAddress(a, 0, 10_000);
    for (int i = 0; i < 10_000; i++) assertEquals(0, view.get(i));
    view.putInt(9996, 77);
    long b = heap.reallocateAddress(a, 50_000);
    assertEquals(77, heap.sliceAddress(b, 9996, 4).getInt(0));
    long c = heap.reallocateAddress(0, 100); // like Unsafe.reallocateMemory(0, n)
    assertTrue(heap.usableSizeAddress(c) >= 100);
    heap.freeAddress(b);
    heap.freeAddress(c);
  }

  @Test
  void zeroSizeBlocksAreUnique() {
    long a = heap.allocateAddress(0);
    long b = heap.allocateAddress(0);
    assertNotEquals(a, b);
    assertNotEquals(0, a);
    ByteBuffer z = heap.allocate(0);
    assertEquals(0, z.capacity());
    heap.free(z);
    heap.freeAddress(a);
    heap.freeAddress(b);
  }

  @Test
  void alignedAddressesAboveRegionSize() {
    long a = heap.allocateAlignedAddress(GIB + 16, 1L << 30);
    assertEquals(0, a & (GIB - 1));
    // a window straddling the 1 GiB region boundary: the one case that needs a buffer of its own
    ByteBuffer straddling = heap.sliceAddress(a, GIB - 8, 16);
    straddling.putLong(0, 0x0102030405060708L).putLong(8, 0x1112131415161718L);
    assertEquals(0x0102030405060708L, heap.sliceAddress(a, GIB - 8, 8).getLong(0));
    assertEquals(0x1112131415161718L, heap.sliceAddress(a, GIB, 8).getLong(0));
    heap.freeAddress(a);
  }
}
