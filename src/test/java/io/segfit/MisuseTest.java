// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static io.segfit.TestSupport.assertStillWorks;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.segfit.internal.NativeHeap;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The misuse matrix: every wrong call gets its documented exception, the heap keeps working,
 * and no live block is lost.
 */
class MisuseTest {
  private Heap heap;
  private Heap other;
  /** A live block that must survive every rejected call. */
  private ByteBuffer witness;

  @BeforeEach
  void open() {
    heap = Heap.builder().name("misuse").build();
    other = Heap.builder().name("misuse-other").build();
    witness = heap.allocate(200);
    for (int i = 0; i < 200; i++) witness.put(i, (byte) i);
  }

  @AfterEach
  void close() {
    if (!heap.isClosed()) {
      for (int i = 0; i < 200; i++) assertEquals((byte) i, witness.get(i), "witness byte " + i);
      assertEquals(1, heap.stats().liveBlocks(), "only the witness is live");
      heap.close();
    }
    other.close();
  }

  private <T extends Throwable> T rejected(Class<T> type, Executable call, String... words) {
    T e = assertThrows(type, call);
    for (String w : words) {
      assertTrue(e.getMessage().contains(w), "message '" + e.getMessage() + "' lacks '" + w + "'");
    }
    assertStillWorks(heap);
    return e;
  }

  @Test
  void negativeSizes() {
    rejected(IllegalArgumentException.class, () -> heap.allocate(-1), "-1", "negative");
    rejected(IllegalArgumentException.class, () -> heap.allocateZeroed(-5), "-5");
    rejected(IllegalArgumentException.class, () -> heap.allocateAligned(-1, 64), "-1");
    rejected(IllegalArgumentException.class, () -> heap.allocate(Integer.MIN_VALUE));
    rejected(IllegalArgumentException.class, () -> heap.allocateAddress(-1));
    rejected(IllegalArgumentException.class, () -> heap.allocateZeroedAddress(Long.MIN_VALUE));
    rejected(IllegalArgumentException.class, () -> heap.allocateAlignedAddress(-1, 16));
    ByteBuffer b = heap.allocate(10);
    rejected(IllegalArgumentException.class, () -> heap.reallocate(b, -1), "-1");
    assertEquals(10, b.capacity());
    heap.free(b);
    long a = heap.allocateAddress(10);
    rejected(IllegalArgumentException.class, () -> heap.reallocateAddress(a, -7), "-7");
    heap.freeAddress(a);
  }

  @Test
  void tooLargeSizes() {
    rejected(IllegalArgumentException.class, () -> heap.allocateAddress(Long.MAX_VALUE),
        "larger than the maximum");
    rejected(IllegalArgumentException.class, () -> heap.allocateAddress((1L << 46) + 1));
    rejected(IllegalArgumentException.class, () -> heap.allocateAlignedAddress(1L << 62, 64));
    long a = heap.allocateAddress(10);
    rejected(IllegalArgumentException.class, () -> heap.reallocateAddress(a, Long.MAX_VALUE));
    assertEquals(10, heap.usableSizeAddress(a) >= 10 ? 10 : -1);
    heap.freeAddress(a);
  }

  @Test
  void badAlignments() {
    for (long alignment : new long[] {0, 3, 24, 1000, -16, Long.MIN_VALUE, 1L << 31, 1L << 40}) {
      rejected(IllegalArgumentException.class, () -> heap.allocateAlignedAddress(64, alignment),
          "alignment");
    }
    for (int alignment : new int[] {0, 3, -64, Integer.MIN_VALUE, 48}) {
      rejected(IllegalArgumentException.class, () -> heap.allocateAligned(64, alignment),
          "alignment " + alignment);
    }
  }

  @Test
  void nulls() {
    rejected(NullPointerException.class, () -> heap.free(null));
    rejected(NullPointerException.class, () -> heap.reallocate(null, 10));
    assertThrows(NullPointerException.class, () -> Heap.builder().name(null));
    assertThrows(NullPointerException.class, () -> Heap.builder().purgeDelay(null));
    assertThrows(NullPointerException.class, () -> Heap.builder().leakDetection(null));
  }

  @Test
  void nonDirectBuffers() {
    ByteBuffer onHeap = ByteBuffer.allocate(64);
    rejected(IllegalArgumentException.class, () -> heap.free(onHeap), "not a direct buffer");
    rejected(IllegalArgumentException.class, () -> heap.reallocate(onHeap, 10), "direct");
    ByteBuffer wrapped = ByteBuffer.wrap(new byte[16]);
    rejected(IllegalArgumentException.class, () -> heap.free(wrapped));
  }

  @Test
  void buffersOfOtherAllocators() {
    ByteBuffer jdk = ByteBuffer.allocateDirect(64);
    rejected(IllegalArgumentException.class, () -> heap.free(jdk), "not the start of a live block");
    rejected(IllegalArgumentException.class, () -> heap.reallocate(jdk, 128));
    ByteBuffer empty = ByteBuffer.allocateDirect(0);
    rejected(IllegalArgumentException.class, () -> heap.free(empty));
    ByteBuffer theirs = other.allocate(64);
    rejected(IllegalArgumentException.class, () -> heap.free(theirs), "not the start");
    rejected(IllegalArgumentException.class, () -> heap.reallocate(theirs, 10));
    other.free(theirs); // still live in its own heap
    long theirAddress = other.allocateAddress(64);
    rejected(IllegalArgumentException.class, () -> heap.freeAddress(theirAddress));
    rejected(IllegalArgumentException.class, () -> heap.usableSizeAddress(theirAddress));
    rejected(IllegalArgumentException.class, () -> heap.reallocateAddress(theirAddress, 100));
    other.freeAddress(theirAddress);
  }

  @Test
  void foreignAndInteriorAddresses() {
    long a = heap.allocateAddress(256);
    for (long bad : new long[] {a + 16, a + 1, a + 255, 8, 4096, -1, -4096, Long.MIN_VALUE,
        0x7fff_ffff_f000L, 1L << 47, Long.MAX_VALUE & ~15L}) {
      rejected(IllegalArgumentException.class, () -> heap.freeAddress(bad), "not the start");
      rejected(IllegalArgumentException.class, () -> heap.usableSizeAddress(bad));
      rejected(IllegalArgumentException.class, () -> heap.reallocateAddress(bad, 10));
      rejected(IllegalArgumentException.class, () -> heap.sliceAddress(bad, 0, 1));
    }
    heap.freeAddress(a);
    assertDoesNotThrow(() -> heap.freeAddress(0), "0 is a no-op, like free(NULL)");
  }

  @Test
  void slicesAndViews() {
    // 3000 bytes: a size class that is not a power of two, so no alignment explains a view
    ByteBuffer b = heap.allocate(3000);
    ByteBuffer interior = b.slice(16, 64);
    rejected(IllegalArgumentException.class, () -> heap.free(interior), "not the start");
    rejected(IllegalArgumentException.class, () -> heap.reallocate(interior, 10));
    ByteBuffer smaller = b.slice(0, 16);
    rejected(IllegalArgumentException.class, () -> heap.free(smaller), "capacity");
    // a view larger than the block (only JNI can make one): never accepted
    ByteBuffer larger = NativeHeap.wrap(NativeHeap.address(b), 1 << 20);
    rejected(IllegalArgumentException.class, () -> heap.free(larger), "capacity");
    rejected(IllegalArgumentException.class, () -> heap.reallocate(larger, 10), "capacity");
    ByteBuffer positioned = b.duplicate().position(100);
    ByteBuffer readOnly = b.asReadOnlyBuffer();
    // a duplicate or read-only view designates the same block: it frees it
    heap.free(readOnly);
    rejected(IllegalStateException.class, () -> heap.free(positioned), "already freed");
    rejected(IllegalStateException.class, () -> heap.free(b), "already freed");
  }

  @Test
  void doubleFreeAndUseAfterFree() {
    ByteBuffer b = heap.allocate(100);
    heap.free(b);
    rejected(IllegalStateException.class, () -> heap.free(b), "already freed");
    rejected(IllegalStateException.class, () -> heap.reallocate(b, 300), "already freed");
    long a = heap.allocateAddress(5000);
    heap.freeAddress(a);
    rejected(IllegalStateException.class, () -> heap.freeAddress(a), "already freed");
    rejected(IllegalStateException.class, () -> heap.reallocateAddress(a, 10));
    rejected(IllegalStateException.class, () -> heap.usableSizeAddress(a));
    long large = heap.allocateAddress(Segfit.smallMax() * 3);
    heap.freeAddress(large);
    // A large block's mapping is gone once freed: never a crash, always an exception.
    Throwable t = assertThrows(RuntimeException.class, () -> heap.freeAddress(large));
    assertTrue(t instanceof IllegalStateException || t instanceof IllegalArgumentException, t::toString);
    assertStillWorks(heap);
  }

  @Test
  void sliceAddressBounds() {
    long a = heap.allocateAddress(1000);
    long usable = heap.usableSizeAddress(a);
    rejected(IndexOutOfBoundsException.class, () -> heap.sliceAddress(a, -1, 10));
    rejected(IndexOutOfBoundsException.class, () -> heap.sliceAddress(a, 0, -1));
    rejected(IndexOutOfBoundsException.class, () -> heap.sliceAddress(a, usable - 9, 10));
    rejected(IndexOutOfBoundsException.class, () -> heap.sliceAddress(a, Long.MAX_VALUE, 1));
    ByteBuffer view = heap.sliceAddress(a, usable - 10, 10);
    view.put(9, (byte) 1);
    heap.freeAddress(a);
  }

  @Test
  void aReservationTheOsRefusesIsHeapOutOfMemory() {
    // qemu-user keeps its own map of every reserved guest page in host memory: 2^46-byte
    // reservations fill the host's memory (the OOM killer took qemu at 23 GiB) long before
    // the guest's address space runs out.
    assumeFalse(TestSupport.EMULATED, "qemu-user maps reservations in host memory");
    // Reservations of the largest size exhaust a 47- or 48-bit address space within a few.
    long most = NativeHeap.maxSize();
    List<Heap> held = new ArrayList<>();
    try {
      for (int n = 1; n <= 8; n++) {
        String name = "huge-" + n;
        try {
          held.add(Heap.builder().name(name).reserveBytes(most).jmx(false).build());
        } catch (HeapOutOfMemoryError e) {
          assertOsRefused(e, name, most);
          return;
        }
      }
      fail(held.size() + " reservations of " + most + " bytes all succeeded");
    } finally {
      held.forEach(Heap::close);
    }
  }

  private static void assertOsRefused(HeapOutOfMemoryError e, String heap, long reserve) {
    assertEquals(heap, e.heapName());
    assertEquals(reserve, e.requestedBytes());
    assertFalse(e.isLimitReached(), e.getMessage());
  }

  @Test
  void builderArguments() {
    assertThrows(IllegalArgumentException.class, () -> Heap.builder().maxBytes(-1));
    assertThrows(IllegalArgumentException.class, () -> Heap.builder().reserveBytes(-1));
    assertThrows(IllegalArgumentException.class, () -> Heap.builder().purgeDelay(Duration.ofMillis(-1)));
    assertThrows(IllegalArgumentException.class, () -> Heap.builder().name(""));
    assertThrows(IllegalArgumentException.class, () -> Heap.builder().name("a\0b"));
    assertThrows(IllegalArgumentException.class, () -> Heap.builder().name("x".repeat(64)).build());
    assertThrows(IllegalArgumentException.class, () -> Heap.builder().name("é".repeat(32)).build());
    assertThrows(IllegalArgumentException.class, () -> Heap.builder().leakSamplingInterval(0));
    // options the core rejects: pre-touch without a reservation, a reservation above the limit
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Heap.builder().name("bad").preTouch(true).build());
    assertTrue(e.getMessage().contains("preTouch=true"), e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> Heap.builder().maxBytes(1 << 20).reserveBytes(2 << 20).build());
    try (Heap h = Heap.builder().name("é".repeat(31)).jmx(false).build()) {
      assertEquals("é".repeat(31), h.name());
      assertStillWorks(h);
    }
  }
}
