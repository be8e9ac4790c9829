// SPDX-License-Identifier: Apache-2.0
/*
 * A heap's limit (maxBytes). First the refusal: every entry point fails with
 * HeapOutOfMemoryError naming the heap, its limit and its live bytes; nothing held is lost or
 * changed; the statistics count exactly what is held; and after frees the heap allocates again.
 *
 * Then the reclaim: a heap filled to its limit and emptied allocates again. The limit counts
 * committed memory, and an emptied heap still holds committed memory it does not use: empty
 * slabs kept by thread heaps (the owner's current slabs, slabs whose blocks another thread
 * freed), the dirty pools, freed large mappings kept for reuse. A request that would cross the
 * limit reclaims all of that before it fails. The heaps have a purge delay of a minute, so the
 * background purger cannot give the memory back in time and hide a missing reclaim.
 *
 * The matrix: heaps filled to the limit with blocks of 64 B .. 3 MiB, emptied, then asked for
 * memory within the limit through every entry point that can need memory (small, medium, large,
 * aligned, zeroed, reallocate moved and remapped), through buffers and through addresses, from
 * the thread that filled the heap and from another one while the filler is alive and idle
 * (having freed its blocks, or having had them freed by the asking thread). Then: the
 * statistics count the reclaim, and a refusal that remains tells live bytes from free bytes the
 * heap could not reclaim.
 */
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.management.ObjectName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

class LimitTest {
  private static final int MIB = 1 << 20;
  /** 32 MiB; 8 MiB under emulation. Request sizes are fractions of it. */
  private static final int LIMIT = TestSupport.EMULATED ? 8 * MIB : 32 * MIB;
  private static final Duration LONG_DELAY = Duration.ofMinutes(1);
  private static final int[] FILL_SIZES = {64, 4096, 65536, MIB, 3 * MIB};

  /** The limit of the refusal test. */
  private static final long REFUSAL_LIMIT = 8L << 20;

  @ParameterizedTest(name = "blocks of {0} bytes")
  @ValueSource(ints = {64, 4096, 65536, 1 << 20, (2 << 20) + 100})
  void limitRefusesCleanlyAndRecovers(int size) {
    String name = "limit-" + size;
    try (Heap heap = Heap.builder().name(name).maxBytes(REFUSAL_LIMIT).purgeDelay(Duration.ZERO)
        .build()) {
      List<ByteBuffer> held = new ArrayList<>();
      HeapOutOfMemoryError refused = null;
      while (refused == null) {
        try {
          ByteBuffer b = heap.allocate(size);
          TestSupport.fill(TestSupport.Bytes.of(b), held.size(), 0, size);
          held.add(b);
          assertTrue(held.size() <= 2 * REFUSAL_LIMIT / size + 16, "the limit never bit");
        } catch (HeapOutOfMemoryError e) {
          refused = e;
        }
      }
      assertTrue(!held.isEmpty(), "not one block under the limit");
      HeapStats atLimit = heap.stats();
      assertMessage(refused, name, atLimit.liveBytes());
      assertEquals(held.size(), atLimit.liveBlocks(), "live blocks at the limit");
      assertTrue(atLimit.liveBytes() <= REFUSAL_LIMIT, "live bytes above the limit: " + atLimit);
      assertTrue(atLimit.committedBytes() <= REFUSAL_LIMIT,
          "committed bytes above the limit: " + atLimit);

      // Every entry point refuses alike, and refusals change nothing.
      assertMessage(assertThrows(HeapOutOfMemoryError.class, () -> heap.allocateZeroed(size)),
          name, atLimit.liveBytes());
      assertMessage(assertThrows(HeapOutOfMemoryError.class,
          () -> heap.allocateAligned(size, 4096)), name, atLimit.liveBytes());
      assertMessage(assertThrows(HeapOutOfMemoryError.class,
          () -> heap.allocateAddress(size)), name, atLimit.liveBytes());
      assertMessage(assertThrows(HeapOutOfMemoryError.class,
          () -> heap.allocate((int) REFUSAL_LIMIT + 1)), name, atLimit.liveBytes());
      ByteBuffer first = held.get(0);
      assertMessage(assertThrows(HeapOutOfMemoryError.class,
          () -> heap.reallocate(first, (int) REFUSAL_LIMIT)), name, atLimit.liveBytes());
      HeapStats after = heap.stats();
      assertEquals(atLimit.liveBlocks(), after.liveBlocks(), "refusals changed live blocks");
      assertEquals(atLimit.liveBytes(), after.liveBytes(), "refusals changed live bytes");

      // Free every other block (contents intact), then the same number fits again.
      int freed = 0;
      for (int i = 0; i < held.size(); i += 2) {
        assertEquals(-1, TestSupport.firstMismatch(TestSupport.Bytes.of(held.get(i)), i, 0, size),
            "block " + i + " changed");
        heap.free(held.get(i));
        held.set(i, null);
        freed++;
      }
      heap.trim();
      for (int i = 0; i < held.size() && freed > 0; i += 2, freed--) {
        ByteBuffer b = heap.allocate(size);
        TestSupport.fill(TestSupport.Bytes.of(b), i, 0, size);
        held.set(i, b);
      }
      for (int i = 0; i < held.size(); i++) {
        if (held.get(i) != null) {
          assertEquals(-1, TestSupport.firstMismatch(TestSupport.Bytes.of(held.get(i)), i, 0, size),
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
  private static void assertMessage(HeapOutOfMemoryError e, String name, long liveBytes) {
    assertTrue(e.isLimitReached(), "the limit refused, not the OS: " + e);
    assertEquals(name, e.heapName());
    assertEquals(REFUSAL_LIMIT, e.maxBytes());
    String m = e.getMessage();
    assertTrue(m != null && m.contains(name), "message lacks the heap's name: " + m);
    assertTrue(m.contains(Long.toString(REFUSAL_LIMIT)),
        "message lacks the limit " + REFUSAL_LIMIT + ": " + m);
    assertTrue(m.contains(Long.toString(liveBytes)),
        "message lacks the live bytes " + liveBytes + ": " + m);
  }

  /** Blocks seen through one of the two APIs: a ByteBuffer, or a raw address (a Long). */
  enum Api {
    BUFFERS {
      @Override Object allocate(Heap h, int size) { return h.allocate(size); }
      @Override Object allocateZeroed(Heap h, int size) { return h.allocateZeroed(size); }
      @Override Object allocateAligned(Heap h, int size, int alignment) {
        return h.allocateAligned(size, alignment);
      }
      @Override Object reallocate(Heap h, Object block, int size) {
        return h.reallocate((ByteBuffer) block, size);
      }
      @Override void free(Heap h, Object block) { h.free((ByteBuffer) block); }
      @Override TestSupport.Bytes bytes(Object block) {
        return TestSupport.Bytes.of((ByteBuffer) block);
      }
      @Override long misalignment(Object block, int alignment) {
        return ((ByteBuffer) block).alignmentOffset(0, alignment);
      }
    },
    ADDRESSES {
      @Override Object allocate(Heap h, int size) { return h.allocateAddress(size); }
      @Override Object allocateZeroed(Heap h, int size) { return h.allocateZeroedAddress(size); }
      @Override Object allocateAligned(Heap h, int size, int alignment) {
        return h.allocateAlignedAddress(size, alignment);
      }
      @Override Object reallocate(Heap h, Object block, int size) {
        return h.reallocateAddress((Long) block, size);
      }
      @Override void free(Heap h, Object block) { h.freeAddress((Long) block); }
      @Override TestSupport.Bytes bytes(Object block) { return TestSupport.Bytes.at((Long) block); }
      @Override long misalignment(Object block, int alignment) {
        return (Long) block & (alignment - 1);
      }
    };

    abstract Object allocate(Heap h, int size);
    abstract Object allocateZeroed(Heap h, int size);
    abstract Object allocateAligned(Heap h, int size, int alignment);
    abstract Object reallocate(Heap h, Object block, int size);
    abstract void free(Heap h, Object block);
    abstract TestSupport.Bytes bytes(Object block);
    abstract long misalignment(Object block, int alignment);
  }

  /** Every entry point that can need memory; `source` is the block a reallocation starts from. */
  enum Request {
    SMALL(1000, 0),
    MEDIUM(300 << 10, 0),
    LARGE(LIMIT / 2, 0),
    ALIGNED(MIB, 0),
    ZEROED(LIMIT / 4, 0),
    REALLOCATE_MOVED(LIMIT / 4, 1000),
    REALLOCATE_REMAPPED(LIMIT / 2, 2 * MIB);

    final int size, source;

    Request(int size, int source) {
      this.size = size;
      this.source = source;
    }

    /** Makes the request, checks the block and frees it. */
    void run(Api api, Heap heap, Object sourceBlock) {
      Object b;
      if (this == ALIGNED) b = api.allocateAligned(heap, size, MIB);
      else if (this == ZEROED) b = api.allocateZeroed(heap, size);
      else if (source != 0) b = api.reallocate(heap, sourceBlock, size);
      else b = api.allocate(heap, size);
      TestSupport.Bytes bytes = api.bytes(b);
      if (this == ALIGNED) assertEquals(0, api.misalignment(b, MIB), "misaligned");
      if (this == ZEROED) assertEquals(-1, TestSupport.firstNonZero(bytes, size), "not zeroed");
      if (source != 0) {
        assertEquals(-1, TestSupport.firstMismatch(bytes, 77, 0, source), "contents lost");
      }
      int tail = Math.max(source, size - 4096);   // the far end is usable too
      TestSupport.fill(bytes, 5, tail, size);
      assertEquals(-1, TestSupport.firstMismatch(bytes, 5, tail, size));
      api.free(heap, b);
    }
  }

  /** Who fills, who empties, who asks. */
  enum Setup {
    OWNER,         // one thread does everything
    IDLE_OWNER,    // A fills and empties, stays alive and idle; this thread asks
    REMOTE_FREES   // A fills and stays alive and idle; this thread frees A's blocks and asks
  }

  static Stream<Arguments> matrix() {
    List<Arguments> cases = new ArrayList<>();
    for (int size : FILL_SIZES) {
      for (Request r : Request.values()) cases.add(Arguments.of(size, r));
    }
    return cases.stream();
  }

  private static Heap newHeap(String name) {
    return Heap.builder().name(name).maxBytes(LIMIT).purgeDelay(LONG_DELAY).jmx(false).build();
  }

  /** Allocates blocks of `size` until the limit refuses one; each is touched at both ends. */
  private static List<Object> fillToLimit(Api api, Heap heap, int size) {
    List<Object> held = new ArrayList<>();
    for (;;) {
      Object b;
      try {
        b = api.allocate(heap, size);
      } catch (HeapOutOfMemoryError e) {
        assertTrue(e.isLimitReached(), e::toString);
        return held;
      }
      TestSupport.Bytes bytes = api.bytes(b);
      bytes.put(0, (byte) 1);
      bytes.put(size - 1, (byte) 2);
      held.add(b);
      assertTrue(held.size() <= LIMIT / size + 16, "the limit never bit");
    }
  }

  private static void freeAll(Api api, Heap heap, List<Object> held) {
    for (Object b : held) api.free(heap, b);
    held.clear();
  }

  /** Fills and (unless REMOTE_FREES) empties the heap as setup says, asks, then tidies up. */
  private static void runCase(Api api, Setup setup, int fillSize, Request request)
      throws Exception {
    String name = "reclaim-" + api + "-" + setup + "-" + fillSize + "-" + request;
    try (Heap heap = newHeap(name)) {
      Object source = null;
      if (request.source != 0) {
        source = api.allocate(heap, request.source);
        TestSupport.fill(api.bytes(source), 77, 0, request.source);
      }
      CountDownLatch filled = new CountDownLatch(1);
      CountDownLatch done = new CountDownLatch(1);
      Thread owner = null;
      if (setup == Setup.OWNER) {
        freeAll(api, heap, fillToLimit(api, heap, fillSize));
      } else {
        // Thread A; the latches order its list before our reads, its failure before our join.
        List<Object> blocks = new ArrayList<>();
        Throwable[] failed = new Throwable[1];
        owner = new Thread(() -> {
          try {
            blocks.addAll(fillToLimit(api, heap, fillSize));
            if (setup == Setup.IDLE_OWNER) freeAll(api, heap, blocks);
          } catch (Throwable t) {
            failed[0] = t;
          }
          filled.countDown();
          try {
            done.await();   // alive and idle, its thread heap still holding its slabs
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }, name);
        owner.start();
        assertTrue(filled.await(1, TimeUnit.MINUTES), "the filling thread hangs");
        if (failed[0] != null) throw new AssertionError("the filling thread failed", failed[0]);
        if (setup == Setup.REMOTE_FREES) freeAll(api, heap, blocks);
      }
      try {
        HeapStats emptied = heap.stats();
        assertEquals(request.source == 0 ? 0 : 1, emptied.liveBlocks(), emptied::toString);
        try {
          request.run(api, heap, source);
        } catch (HeapOutOfMemoryError e) {   // JUnit would abort the whole run on an Error
          throw new AssertionError("refused within the limit: " + e.getMessage(), e);
        }
        source = null;   // a reallocation freed it
        HeapStats after = heap.stats();
        assertEquals(emptied.limitHits(), after.limitHits(), "a reclaimed request counts as a hit");
      } finally {
        done.countDown();
        if (owner != null) owner.join(TimeUnit.MINUTES.toMillis(1));
        if (source != null) api.free(heap, source);
      }
      assertEquals(0, heap.stats().liveBlocks());
    }
  }

  @TestSupport.Slow
  @ParameterizedTest(name = "buffers, owner thread: {0} B blocks, then {1}")
  @MethodSource("matrix")
  void buffersFromTheOwnerThread(int fillSize, Request request) throws Exception {
    runCase(Api.BUFFERS, Setup.OWNER, fillSize, request);
  }

  @TestSupport.Slow
  @ParameterizedTest(name = "addresses, owner thread: {0} B blocks, then {1}")
  @MethodSource("matrix")
  void addressesFromTheOwnerThread(int fillSize, Request request) throws Exception {
    runCase(Api.ADDRESSES, Setup.OWNER, fillSize, request);
  }

  @TestSupport.Slow
  @ParameterizedTest(name = "buffers, another thread, idle owner: {0} B blocks, then {1}")
  @MethodSource("matrix")
  void buffersFromAnotherThreadWhileTheOwnerIdles(int fillSize, Request request)
      throws Exception {
    runCase(Api.BUFFERS, Setup.IDLE_OWNER, fillSize, request);
  }

  @TestSupport.Slow
  @ParameterizedTest(name = "addresses, another thread freed the owner's blocks: {0} B, then {1}")
  @MethodSource("matrix")
  void addressesFromAnotherThreadThatFreedTheBlocks(int fillSize, Request request)
      throws Exception {
    runCase(Api.ADDRESSES, Setup.REMOTE_FREES, fillSize, request);
  }

  /** A reallocation within the block's class needs no memory: at the limit it neither fails
      nor reclaims. */
  @Test
  void reallocateInPlaceAtTheLimit() {
    try (Heap heap = newHeap("reclaim-in-place")) {
      List<Object> held = fillToLimit(Api.BUFFERS, heap, 65536);
      HeapStats full = heap.stats();
      ByteBuffer first = (ByteBuffer) held.get(0);
      ByteBuffer same = heap.reallocate(first, 65536 - 100);
      assertEquals(65536 - 100, same.capacity());
      HeapStats after = heap.stats();
      assertEquals(full.reallocationsInPlace() + 1, after.reallocationsInPlace());
      assertEquals(full.limitReclaims(), after.limitReclaims(), "in place reclaimed");
      assertEquals(full.limitHits(), after.limitHits(), "in place hit the limit");
      held.set(0, same);
      freeAll(Api.BUFFERS, heap, held);
    }
  }

  /** The statistics, the MXBean and toString count the reclaim and the bytes it returned. */
  @Test
  void statisticsCountTheReclaim() throws Exception {
    try (Heap heap = Heap.builder().name("reclaim-stats").maxBytes(LIMIT).purgeDelay(LONG_DELAY)
        .build()) {
      List<Object> held = fillToLimit(Api.BUFFERS, heap, 65536);
      freeAll(Api.BUFFERS, heap, held);
      HeapStats emptied = heap.stats();
      assertTrue(emptied.committedBytes() + LIMIT / 2 > LIMIT,
          "the emptied heap holds too little to prove anything: " + emptied);
      ByteBuffer big = heap.allocate(LIMIT / 2);
      HeapStats after = heap.stats();
      assertEquals(emptied.limitReclaims() + 1, after.limitReclaims(), after::toString);
      long needed = emptied.committedBytes() + LIMIT / 2 - LIMIT;
      assertTrue(after.limitReclaimedBytes() - emptied.limitReclaimedBytes() >= needed,
          "reclaimed less than the request needed (" + needed + "): " + after);
      assertEquals(emptied.limitHits(), after.limitHits());
      assertTrue(after.toString().contains("reclaims " + after.limitReclaims()), after::toString);
      ObjectName bean = ObjectName.getInstance(heap.mxbeanName());
      Object viaJmx = ManagementFactory.getPlatformMBeanServer()
          .getAttribute(bean, "LimitReclaims");
      assertEquals(after.limitReclaims(), viaJmx);
      assertTrue((Long) ManagementFactory.getPlatformMBeanServer()
          .getAttribute(bean, "LimitReclaimedBytes") >= needed);
      heap.free(big);
    }
  }

  /**
   * A refusal that remains is a true one, and its message tells the live bytes from the free
   * bytes the heap could not reclaim: here one live block in every slab keeps every slab.
   */
  @Test
  void aTrueRefusalTellsLiveFromHeldBytes() {
    try (Heap heap = newHeap("reclaim-true")) {
      List<Object> held = fillToLimit(Api.BUFFERS, heap, 65536);
      List<Object> kept = new ArrayList<>();
      for (int i = 0; i < held.size(); i++) {
        if (i % 8 == 0) kept.add(held.get(i));   // 8 blocks of 64 KiB per 512 KiB slab
        else heap.free((ByteBuffer) held.get(i));
      }
      HeapStats before = heap.stats();
      HeapOutOfMemoryError e =
          assertThrows(HeapOutOfMemoryError.class, () -> heap.allocate(LIMIT / 2));
      HeapStats after = heap.stats();
      assertTrue(e.isLimitReached(), e::toString);
      assertEquals(before.limitReclaims() + 1, after.limitReclaims(), "no reclaim first");
      assertEquals(before.limitHits() + 1, after.limitHits());
      assertEquals(after.liveBytes(), e.liveBytes());
      assertEquals(after.committedBytes() - after.liveBytes(), e.heldBytes(), after::toString);
      assertTrue(e.heldBytes() > 0, e::getMessage);
      String m = e.getMessage();
      assertTrue(m.contains("live " + e.liveBytes() + " bytes, and " + e.heldBytes()
          + " bytes free that could not be reclaimed"), m);
      freeAll(Api.BUFFERS, heap, kept);
      heap.free(heap.allocate(LIMIT / 2));   // and once they are freed, it fits
    }
  }

  /** A heap whose every committed byte is live says so: nothing else held. */
  @Test
  void aFullHeapHoldsNothingElse() {
    try (Heap heap = newHeap("reclaim-full")) {
      List<Object> held = fillToLimit(Api.ADDRESSES, heap, MIB);
      HeapOutOfMemoryError e =
          assertThrows(HeapOutOfMemoryError.class, () -> heap.allocateAddress(1));
      assertEquals((long) held.size() * MIB, e.liveBytes(), e::getMessage);
      assertEquals(0, e.heldBytes(), e::getMessage);
      assertTrue(e.getMessage().contains("(live " + e.liveBytes() + " bytes, nothing else held)"),
          e::getMessage);
      freeAll(Api.ADDRESSES, heap, held);
    }
  }
}
