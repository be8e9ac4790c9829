// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.segfit.internal.Errors;
import io.segfit.internal.NativeHeap;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Small blocks served from slabs the core lends to each thread (SlabCache): that they really
 * bypass the core, that every check still holds on them, and that thread exit, trim, close,
 * reallocation and statistics see them.
 */
class ThreadCacheTest {
  private static final int SLAB = 64 << 10;

  private static long handle(Heap heap) throws ReflectiveOperationException {
    Field f = Heap.class.getDeclaredField("handle");
    f.setAccessible(true);
    return f.getLong(heap);
  }

  /**
   * A heap whose thread caches no sweep touches within a test (a purge delay of an hour): under
   * qemu a test's own steps can outlast the default delay, and a sweep would then take back a
   * slab the test expects its thread to keep (with its blocks' buffer objects).
   */
  private static Heap cached(String name) {
    return Heap.builder().name(name).purgeDelay(Duration.ofHours(1)).build();
  }

  @Test
  void smallBlocksComeFromLentSlabs() throws Exception {
    try (Heap heap = cached("lent")) {
      long a = heap.allocateAddress(64);
      ByteBuffer b = heap.allocate(1000);
      ByteBuffer big = heap.allocate(80 << 10);
      // The core does not know lent blocks: it must never be asked about them.
      assertEquals(Errors.NOT_A_BLOCK, NativeHeap.usableSize(handle(heap), a));
      assertEquals(Errors.NOT_A_BLOCK, NativeHeap.usableSize(handle(heap),
          NativeHeap.address(b)));
      assertEquals(80 << 10, NativeHeap.usableSize(handle(heap), NativeHeap.address(big)),
          "above SEGFIT_LEND_MAX_BLOCK: the core's");
      assertEquals(64, heap.usableSizeAddress(a));
      assertEquals(1024, heap.usableSizeAddress(NativeHeap.address(b)));
      HeapStats s = heap.stats();
      assertEquals(3, s.liveBlocks());
      assertEquals(64 + 1024 + (80 << 10), s.liveBytes());
      assertEquals(3, s.allocations());
      heap.freeAddress(a);
      heap.free(b);
      heap.free(big);
      s = heap.stats();
      assertEquals(0, s.liveBlocks());
      assertEquals(3, s.frees());
    }
  }

  @Test
  void aBlockGetsItsBufferObjectBack() {
    try (Heap heap = cached("same-object")) {
      ByteBuffer b = heap.allocate(100);
      b.position(7).limit(9).order(java.nio.ByteOrder.BIG_ENDIAN);
      heap.free(b);
      ByteBuffer again = heap.allocate(100);
      assertSame(b, again, "the block's buffer is reused");
      assertEquals(0, again.position());
      assertEquals(100, again.limit());
      assertEquals(java.nio.ByteOrder.nativeOrder(), again.order());
      heap.free(again);

      // The same block for another size of its class: a buffer of that capacity, and that
      // one is what the next allocation of the size gets back.
      ByteBuffer other = heap.allocate(110);
      assertEquals(110, other.capacity());
      assertEquals(other.alignmentOffset(0, 1 << 20), b.alignmentOffset(0, 1 << 20),
          "the same block");
      heap.free(other);
      assertSame(other, heap.allocate(110));
      // In place: the reallocated buffer replaces the block's, for its free and its reuse.
      ByteBuffer grown = heap.reallocate(other, 105);
      assertEquals(105, grown.capacity());
      heap.free(grown);
      assertSame(grown, heap.allocate(105));
      heap.free(grown);
      ByteBuffer hundred = heap.allocate(100);
      assertEquals(100, hundred.capacity());
      assertNotSame(b, hundred, "only the block's latest buffer is reused");
      heap.free(hundred);
      assertEquals(0, heap.stats().liveBlocks());
    }
  }

  @Test
  void everyCheckHoldsOnLentBlocks() {
    try (Heap heap = cached("checks"); Heap other = cached("checks-other")) {
      long a = heap.allocateAddress(48);
      IllegalArgumentException interior =
          assertThrows(IllegalArgumentException.class, () -> heap.freeAddress(a + 16));
      assertTrue(interior.getMessage().contains("not the start"), interior.getMessage());
      assertThrows(IllegalArgumentException.class, () -> other.freeAddress(a));
      assertThrows(IllegalArgumentException.class, () -> heap.freeAddress(a + 48 * 7),
          "a block never handed out");
      heap.freeAddress(a);
      IllegalStateException twice =
          assertThrows(IllegalStateException.class, () -> heap.freeAddress(a));
      assertTrue(twice.getMessage().contains("already freed"), twice.getMessage());
      assertThrows(IllegalStateException.class, () -> heap.usableSizeAddress(a));
      assertThrows(IllegalStateException.class, () -> heap.reallocateAddress(a, 10));

      ByteBuffer b = heap.allocate(3000);
      ByteBuffer view = b.slice(0, 16);
      IllegalArgumentException capacity =
          assertThrows(IllegalArgumentException.class, () -> heap.free(view));
      assertTrue(capacity.getMessage().contains("capacity"), capacity.getMessage());
      assertThrows(IllegalArgumentException.class, () -> other.free(b));
      heap.free(b.duplicate());   // a duplicate designates the block: it frees it
      assertThrows(IllegalStateException.class, () -> heap.free(b));
    }
  }

  /** Blocks of 8 KiB - 64 KiB come in 512 KiB slabs, which span several slots of the tables
      that find a block's slab: every block of such a slab is found, by address and by buffer. */
  @Test
  void blocksUpTo64KiBComeFromLargerLentSlabs() throws Exception {
    try (Heap heap = cached("lent-512k")) {
      int size = 16 << 10;
      List<ByteBuffer> buffers = new ArrayList<>();
      List<Long> addresses = new ArrayList<>();
      for (int i = 0; i < 40; i++) {   // more than a slab's 32 blocks
        buffers.add(heap.allocate(size));
        addresses.add(heap.allocateAddress(size + 1));
      }
      for (ByteBuffer b : buffers) {
        assertEquals(Errors.NOT_A_BLOCK, NativeHeap.usableSize(handle(heap),
            NativeHeap.address(b)));
      }
      long last = addresses.get(39);
      assertEquals(20 << 10, heap.usableSizeAddress(last));
      assertThrows(IllegalArgumentException.class, () -> heap.freeAddress(last + 4096));
      assertEquals(80, heap.stats().liveBlocks());
      // Half freed by another thread, by buffer and by address, the rest here.
      Thread t = new Thread(() -> {
        for (int i = 0; i < 40; i += 2) {
          heap.free(buffers.get(i));
          heap.freeAddress(addresses.get(i));
        }
      });
      t.start();
      t.join();
      for (int i = 1; i < 40; i += 2) {
        heap.free(buffers.get(i));
        heap.freeAddress(addresses.get(i));
      }
      assertThrows(IllegalStateException.class, () -> heap.free(buffers.get(31)));
      assertThrows(IllegalStateException.class, () -> heap.freeAddress(last));
      assertEquals(0, heap.stats().liveBlocks());

      // A buffer of the top class, 8 KiB below its block size, is reused as it is.
      ByteBuffer low = heap.allocate((56 << 10) + 1);
      heap.free(low);
      assertSame(low, heap.allocate((56 << 10) + 1));
      heap.free(low);
      ByteBuffer full = heap.allocate(64 << 10);
      assertEquals(64 << 10, full.capacity());
      assertNotSame(low, full);
      full.putLong((64 << 10) - 8, -1L);
      heap.free(full);
      assertEquals(0, heap.stats().liveBlocks());
    }
  }

  @Test
  void reallocationKeepsTheBytes() {
    try (Heap heap = cached("realloc")) {
      long a = heap.allocateAddress(40);
      ByteBuffer v = heap.sliceAddress(a, 0, 40);
      for (int i = 0; i < 40; i++) v.put(i, (byte) i);
      assertEquals(a, heap.reallocateAddress(a, 48), "same class: in place");
      long moved = heap.reallocateAddress(a, 5000);
      assertNotEquals(a, moved);
      assertThrows(IllegalStateException.class, () -> heap.freeAddress(a), "the old block went");
      long large = heap.reallocateAddress(moved, 100_000);
      ByteBuffer w = heap.sliceAddress(large, 0, 40);
      for (int i = 0; i < 40; i++) assertEquals((byte) i, w.get(i));
      long back = heap.reallocateAddress(large, 32);
      ByteBuffer x = heap.sliceAddress(back, 0, 32);
      for (int i = 0; i < 32; i++) assertEquals((byte) i, x.get(i));
      heap.freeAddress(back);

      ByteBuffer b = heap.allocate(100);
      b.putLong(0, 0x0123456789abcdefL);
      ByteBuffer c = heap.reallocate(b, 2000);
      assertEquals(2000, c.capacity());
      assertEquals(0x0123456789abcdefL, c.getLong(0));
      heap.free(c);
      HeapStats s = heap.stats();
      assertEquals(0, s.liveBlocks());
      assertEquals(1, s.reallocationsInPlace());
      assertTrue(s.reallocationsMoved() >= 4, s.toString());
    }
  }

  @Test
  void otherThreadsFreeAndTheOwnerReusesTheirBlocks() throws Exception {
    try (Heap heap = cached("remote")) {
      int n = 3 * SLAB / 64;   // three slabs' worth
      List<Long> blocks = new ArrayList<>();
      for (int i = 0; i < n; i++) blocks.add(heap.allocateAddress(64));
      AtomicReference<Throwable> error = new AtomicReference<>();
      Thread t = new Thread(() -> {
        try {
          for (long a : blocks) heap.freeAddress(a);
          IllegalStateException twice =
              assertThrows(IllegalStateException.class, () -> heap.freeAddress(blocks.get(5)));
          assertTrue(twice.getMessage().contains("already freed"));
        } catch (Throwable e) {
          error.set(e);
        }
      });
      t.start();
      t.join();
      if (error.get() != null) throw new AssertionError(error.get());
      HeapStats s = heap.stats();
      assertEquals(0, s.liveBlocks());
      assertEquals(n, s.remoteFrees());
      long slabs = s.slabs();
      // The owner takes the blocks back instead of borrowing more slabs.
      for (int i = 0; i < n; i++) blocks.set(i, heap.allocateAddress(64));
      assertEquals(slabs, heap.stats().slabs());
      for (long a : blocks) heap.freeAddress(a);
    }
  }

  /**
   * A current slab another thread freed only a few blocks into is collected after the owner's
   * other slabs (so that an owner and a freeing thread do not trade the slab's lines every few
   * blocks), but still before a new slab is borrowed.
   */
  @Test
  void aFewBlocksOtherThreadsFreedComeBackAfterOtherSlabsBeforeANewOne() throws Exception {
    try (Heap heap = cached("remote-few")) {
      int perSlab = SLAB / 64;
      long[] first = new long[perSlab];   // a whole slab, parked once the next is current
      long[] current = new long[perSlab];   // the whole current slab
      for (int i = 0; i < perSlab; i++) first[i] = heap.allocateAddress(64);
      for (int i = 0; i < perSlab; i++) current[i] = heap.allocateAddress(64);
      Thread t = new Thread(() -> {
        for (long a : first) heap.freeAddress(a);
        for (int i = 0; i < 3; i++) heap.freeAddress(current[i]);
      });
      t.start();
      t.join();
      long slabs = heap.stats().slabs();
      Set<Long> firstSet = new HashSet<>();
      for (long a : first) firstSet.add(a);
      // The slab the other thread emptied serves first, not the three blocks of the current one.
      for (int i = 0; i < perSlab; i++) {
        assertTrue(firstSet.remove(heap.allocateAddress(64)), "a block of the emptied slab");
      }
      // Then the three, with no other slab left: still no new slab.
      Set<Long> again = new HashSet<>();
      for (int i = 0; i < 3; i++) again.add(heap.allocateAddress(64));
      assertEquals(Set.of(current[0], current[1], current[2]), again);
      assertEquals(slabs, heap.stats().slabs());
      for (long a : first) heap.freeAddress(a);
      for (long a : current) heap.freeAddress(a);
      assertEquals(0, heap.stats().liveBlocks());
    }
  }

  /**
   * Threads racing to free the same blocks of another thread: each block is freed exactly once,
   * the other frees get "already freed", and the owner hands each block out once again.
   */
  @Test
  void threadsRacingToFreeABlockLetExactlyOneWin() throws Exception {
    try (Heap heap = cached("remote-race")) {
      int n = 2 * SLAB / 64;
      List<Long> blocks = new ArrayList<>();
      for (int i = 0; i < n; i++) blocks.add(heap.allocateAddress(64));
      AtomicIntegerArray wins = new AtomicIntegerArray(n);
      CyclicBarrier start = new CyclicBarrier(3);
      AtomicReference<Throwable> error = new AtomicReference<>();
      List<Thread> threads = new ArrayList<>();
      for (int k = 0; k < 3; k++) {
        Thread t = new Thread(() -> {
          try {
            start.await();
            for (int i = 0; i < n; i++) {
              try {
                heap.freeAddress(blocks.get(i));
                wins.incrementAndGet(i);
              } catch (IllegalStateException e) {
                assertTrue(e.getMessage().contains("already freed"), e.getMessage());
              }
            }
          } catch (Throwable e) {
            error.set(e);
          }
        });
        threads.add(t);
        t.start();
      }
      for (Thread t : threads) t.join();
      if (error.get() != null) throw new AssertionError(error.get());
      for (int i = 0; i < n; i++) assertEquals(1, wins.get(i), "frees of block " + i);
      assertEquals(0, heap.stats().liveBlocks());
      assertEquals(n, heap.stats().remoteFrees());
      Set<Long> again = new HashSet<>();
      for (int i = 0; i < n; i++) again.add(heap.allocateAddress(64));
      assertEquals(new HashSet<>(blocks), again, "each block handed out once");
      for (long a : again) heap.freeAddress(a);
    }
  }

  /**
   * A block its owner moved by reallocation (a claim by the owner itself, which puts it on the
   * free stack) is already freed for other threads, and theirs to free once handed out again.
   */
  @Test
  void aBlockItsOwnerMovedIsAnotherThreadsToFreeOnceAllocatedAgain() throws Exception {
    try (Heap heap = cached("owner-claim")) {
      long a = heap.allocateAddress(64);
      long moved = heap.reallocateAddress(a, 5000);
      assertNotEquals(a, moved);
      onAnotherThread(() -> assertThrows(IllegalStateException.class, () -> heap.freeAddress(a)));
      assertEquals(a, heap.allocateAddress(64), "the moved block is the next one of its class");
      onAnotherThread(() -> heap.freeAddress(a));
      onAnotherThread(() -> assertThrows(IllegalStateException.class, () -> heap.freeAddress(a)));
      heap.freeAddress(moved);
      assertEquals(0, heap.stats().liveBlocks());
    }
  }

  private static void onAnotherThread(Runnable r) throws InterruptedException {
    AtomicReference<Throwable> error = new AtomicReference<>();
    Thread t = new Thread(() -> {
      try {
        r.run();
      } catch (Throwable e) {
        error.set(e);
      }
    });
    t.start();
    t.join();
    if (error.get() != null) throw new AssertionError(error.get());
  }

  /**
   * A lent slab's fields that every freeing thread reads start a cache line after the object
   * begins, and the fields its owner writes on every call are a line away from them and from
   * the object's end: the collector may put anything beside a slab, another thread's slab or
   * the slab's own arrays. HotSpot puts a subclass's field in a gap a superclass left, which
   * once put the owner's top among the shared fields. Field offsets need sun.misc.Unsafe,
   * which warns from JDK 24 on: checked on the JDKs before (the layout rules are the same in 25).
   */
  @Test
  void aLentSlabsOwnerFieldsAreACacheLineFromWhatOtherThreadsRead() throws Exception {
    Assumptions.assumeTrue(Runtime.version().feature() < 24, "sun.misc.Unsafe warns");
    Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
    Field theUnsafe = unsafeClass.getDeclaredField("theUnsafe");
    theUnsafe.setAccessible(true);
    Object unsafe = theUnsafe.get(null);
    Method offsetOf = unsafeClass.getMethod("objectFieldOffset", Field.class);
    int reference = (int) unsafeClass.getMethod("arrayIndexScale", Class.class)
        .invoke(unsafe, Object[].class);
    Class<?> slab = Class.forName("io.segfit.internal.LentSlab");
    Class<?> tail = Class.forName("io.segfit.internal.LentSlab$Tail");
    long sharedFrom = Long.MAX_VALUE;
    long sharedTo = 0;
    long ownFrom = Long.MAX_VALUE;
    long ownTo = 0;
    long end = 0;
    for (Class<?> c = tail; c != Object.class; c = c.getSuperclass()) {
      for (Field f : c.getDeclaredFields()) {
        if (Modifier.isStatic(f.getModifiers())) continue;
        long at = (long) offsetOf.invoke(unsafe, f);
        Class<?> t = f.getType();
        long to = at + (!t.isPrimitive() ? reference : t == long.class || t == double.class ? 8
            : t == int.class || t == float.class ? 4 : t == short.class || t == char.class ? 2 : 1);
        end = Math.max(end, to);
        if (c.getSimpleName().equals("LentSlabFinals")) {
          sharedFrom = Math.min(sharedFrom, at);
          sharedTo = Math.max(sharedTo, to);
        } else if (c == slab) {
          ownFrom = Math.min(ownFrom, at);
          ownTo = Math.max(ownTo, to);
        }
      }
    }
    assertTrue(sharedFrom >= 64, "shared fields from offset " + sharedFrom);
    assertTrue(ownFrom >= sharedTo + 64,
        "owner's fields from offset " + ownFrom + ", shared fields end at " + sharedTo);
    assertTrue(end >= ownTo + 64, "owner's fields end at " + ownTo + ", the object at " + end);
  }

  @Test
  void deadThreadsSlabsGoBackOnceEmpty() throws Exception {
    try (Heap heap = Heap.builder().name("dead").purgeDelay(Duration.ofHours(1)).build()) {
      long baseline = heap.stats().slabs();
      ConcurrentLinkedQueue<Long> kept = new ConcurrentLinkedQueue<>();
      Thread t = new Thread(() -> {
        for (int i = 0; i < 4 * SLAB / 256; i++) {
          long a = heap.allocateAddress(256);
          if (i % 3 == 0) kept.add(a);
          else heap.freeAddress(a);
        }
      });
      t.start();
      t.join();
      assertTrue(heap.stats().slabs() > baseline);
      heap.trim();   // the dead thread's slabs are orphans now: still holding live blocks
      assertTrue(heap.stats().slabs() > baseline);
      assertEquals(kept.size(), heap.stats().liveBlocks());
      for (long a : kept) heap.freeAddress(a);
      heap.trim();
      HeapStats s = heap.stats();
      assertEquals(baseline, s.slabs(), s.toString());
      assertEquals(0, s.liveBlocks());
      assertEquals(s.allocations(), s.frees());
    }
  }

  @Test
  void anIdleThreadsKeptSlabsGoBackAfterThePurgeDelay() throws Exception {
    try (Heap heap = Heap.builder().name("idle").purgeDelay(Duration.ofMillis(50)).build()) {
      java.util.concurrent.CountDownLatch freed = new java.util.concurrent.CountDownLatch(1);
      java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
      Thread idle = new Thread(() -> {
        List<Long> blocks = new ArrayList<>();
        for (int i = 0; i < 4 * SLAB / 512; i++) blocks.add(heap.allocateAddress(512));
        for (long a : blocks) heap.freeAddress(a);   // three emptied slabs kept, one current
        freed.countDown();
        try {
          done.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
      idle.start();
      freed.await();
      long held = heap.stats().slabs();
      assertTrue(held >= 4, "slabs " + held);
      // No thread allocates any more: the sweeper returns the kept slabs once they waited
      // the delay, and the idle thread's current slab, empty, once it was left alone as long.
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (heap.stats().slabs() > 0 && System.nanoTime() < deadline) Thread.sleep(10);
      assertEquals(0, heap.stats().slabs(), "the kept slabs and the current one went back");
      done.countDown();
      idle.join();
      heap.trim();
      assertEquals(0, heap.stats().slabs());
    }
  }

  @Test
  void aSlabTakenBackFromItsOwnerIsNeverUsedByItAgain() throws Exception {
    try (Heap heap = Heap.builder().name("stolen").purgeDelay(Duration.ofMillis(20)).build()) {
      java.util.concurrent.CyclicBarrier step = new java.util.concurrent.CyclicBarrier(2);
      java.util.Set<Long> theirs = java.util.concurrent.ConcurrentHashMap.newKeySet();
      AtomicReference<Throwable> error = new AtomicReference<>();
      Thread owner = new Thread(() -> {
        try {
          List<Long> blocks = new ArrayList<>();
          for (int i = 0; i < 4 * SLAB / 512; i++) blocks.add(heap.allocateAddress(512));
          for (long a : blocks) heap.freeAddress(a);   // three emptied slabs kept
          step.await();   // the main thread's sweep takes them back to the core
          step.await();
          for (int i = 0; i < 4 * SLAB / 512; i++) theirs.add(heap.allocateAddress(512));
        } catch (Throwable e) {
          error.set(e);
        }
      });
      owner.start();
      step.await();
      Thread.sleep(100);
      heap.trim();   // takes every kept slab, as a later sweep would
      List<Long> mine = new ArrayList<>();
      for (int i = 0; i < 4 * SLAB / 512; i++) mine.add(heap.allocateAddress(512));
      step.await();
      owner.join();
      if (error.get() != null) throw new AssertionError(error.get());
      for (long a : mine) {
        assertTrue(!theirs.contains(a), "block 0x" + Long.toHexString(a) + " handed out twice");
      }
      assertEquals(mine.size() + theirs.size(), heap.stats().liveBlocks());
      for (long a : mine) heap.freeAddress(a);
      for (long a : theirs) heap.freeAddress(a);
      assertEquals(0, heap.stats().liveBlocks());
    }
  }

  /** Counts live in the lent slabs: a slab going back by any route must leave them behind. */
  @Test
  void countsStayExactAsSlabsGoBack() throws Exception {
    try (Heap heap = Heap.builder().name("counts").purgeDelay(Duration.ofMillis(20)).build()) {
      int n = 40 * (1 << 20) / 1024;   // 640 slabs: beyond the 32 MiB a cache keeps
      List<Long> blocks = new ArrayList<>();
      for (int i = 0; i < n; i++) blocks.add(heap.allocateAddress(1024));
      assertCounts(heap, n, 0);
      for (long a : blocks) heap.freeAddress(a);   // some go back at once, the rest are kept
      assertCounts(heap, n, n);
      // The sweeper returns the kept slabs, and the current one as this thread idles: with
      // its last freed block, held back.
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (heap.stats().slabs() > 0 && System.nanoTime() < deadline) Thread.sleep(10);
      assertEquals(0, heap.stats().slabs(), "every slab went back");
      assertCounts(heap, n, n);
      heap.freeAddress(heap.allocateAddress(1024));   // from a new slab
      heap.trim();
      assertEquals(0, heap.stats().slabs());
      assertCounts(heap, n + 1, n + 1);
    }
  }

  /**
   * A burst beyond the budget freed in random order: slabs leave the thread's lists from any
   * place (partly free ones from its stack of slabs with free blocks too), and every block
   * stays accounted for and is handed out once.
   */
  @Test
  void slabsLeaveTheListsFromAnyPlace() {
    try (Heap heap = Heap.builder().name("shuffled").purgeDelay(Duration.ofHours(1)).build()) {
      int n = 40 * (1 << 20) / 1024;   // 640 slabs: beyond the 32 MiB a cache keeps
      for (int round = 0; round < 3; round++) {
        List<Long> blocks = new ArrayList<>();
        for (int i = 0; i < n; i++) blocks.add(heap.allocateAddress(1024));
        assertEquals(n, new HashSet<>(blocks).size(), "a block handed out twice");
        Collections.shuffle(blocks, new Random(round));
        for (long a : blocks.subList(0, n / 2)) heap.freeAddress(a);
        Set<Long> live = new HashSet<>(blocks.subList(n / 2, n));
        List<Long> again = new ArrayList<>();
        for (int i = 0; i < n / 4; i++) {
          long a = heap.allocateAddress(1024);
          assertTrue(live.add(a), "a live block handed out again");
          again.add(a);
        }
        for (long a : blocks.subList(n / 2, n)) heap.freeAddress(a);
        for (long a : again) heap.freeAddress(a);
        assertEquals(0, heap.stats().liveBlocks());
        long stale = blocks.get(n - 1);
        assertThrows(IllegalStateException.class, () -> heap.freeAddress(stale));
      }
      heap.trim();
      assertEquals(0, heap.stats().slabs(), heap.stats().toString());
    }
  }

  private static void assertCounts(Heap heap, long allocations, long frees) {
    HeapStats s = heap.stats();
    assertEquals(allocations, s.allocations(), s.toString());
    assertEquals(frees, s.frees(), s.toString());
    SizeClassStats c = s.sizeClasses().stream().filter(k -> k.blockSize() == 1024).findFirst()
        .orElseThrow();
    assertEquals(allocations, c.allocations(), c.toString());
    assertEquals(frees, c.frees(), c.toString());
    assertEquals(allocations - frees, c.liveBlocks(), c.toString());
  }

  /**
   * The owner's last freed address waits outside its slab's stack for the next allocation of
   * its class (ThreadCache.lastFreed): it is still a freed block to every check, and refill,
   * trim and a dead thread's sweep put it back on its slab.
   */
  @Test
  void theLastFreedAddressIsHeldBackAndStillChecked() throws Exception {
    try (Heap heap = Heap.builder().name("held").purgeDelay(Duration.ofHours(1)).build()) {
      long a = heap.allocateAddress(64);
      heap.freeAddress(a);
      assertEquals(0, heap.stats().liveBlocks());
      assertEquals(heap.stats().allocations(), heap.stats().frees());
      IllegalStateException twice =
          assertThrows(IllegalStateException.class, () -> heap.freeAddress(a));
      assertTrue(twice.getMessage().contains("already freed"), twice.getMessage());
      assertThrows(IllegalStateException.class, () -> heap.usableSizeAddress(a));
      assertThrows(IllegalStateException.class, () -> heap.reallocateAddress(a, 10));
      AtomicReference<Throwable> remote = new AtomicReference<>();
      Thread other = new Thread(() -> {
        try {
          heap.freeAddress(a);
        } catch (Throwable e) {
          remote.set(e);
        }
      });
      other.start();
      other.join();
      assertTrue(remote.get() instanceof IllegalStateException, String.valueOf(remote.get()));
      assertEquals(a, heap.allocateAddress(64), "the held block is the next of its class");
      assertEquals(1, heap.stats().liveBlocks());

      // A buffer's allocation does not take the held block, but its refill does: fill the
      // current slab, free one block (held), and the buffer gets that block, not a new slab.
      List<Long> all = new ArrayList<>(List.of(a));
      long slabs = heap.stats().slabs();
      for (int i = 1; i < SLAB / 64; i++) all.add(heap.allocateAddress(64));
      assertEquals(slabs, heap.stats().slabs(), "one slab of 64-byte blocks, full");
      long x = all.remove(SLAB / 128);
      heap.freeAddress(x);
      ByteBuffer b = heap.allocate(64);
      assertEquals(x, NativeHeap.address(b));
      assertEquals(slabs, heap.stats().slabs());
      assertEquals(SLAB / 64, heap.stats().liveBlocks());
      heap.free(b);
      for (long y : all) heap.freeAddress(y);

      // Held at trim: the caller's slabs all go back.
      heap.trim();
      HeapStats s = heap.stats();
      assertEquals(0, s.slabs(), s.toString());
      assertEquals(0, s.liveBlocks());
      assertEquals(s.allocations(), s.frees());

      // Held when its thread dies: the sweep puts it back and the slab goes.
      Thread t = new Thread(() -> heap.freeAddress(heap.allocateAddress(256)));
      t.start();
      t.join();
      heap.trim();
      s = heap.stats();
      assertEquals(0, s.slabs(), s.toString());
      assertEquals(s.allocations(), s.frees());
    }
  }

  @Test
  void trimReturnsTheCallersEmptySlabs() {
    try (Heap heap = Heap.builder().name("trim").purgeDelay(Duration.ofHours(1)).build()) {
      long committed = heap.stats().committedBytes();
      List<ByteBuffer> blocks = new ArrayList<>();
      for (int i = 0; i < 40 * SLAB / 1024; i++) blocks.add(heap.allocate(1024));
      assertTrue(heap.stats().committedBytes() >= committed + 40L * SLAB);
      for (ByteBuffer b : blocks) heap.free(b);
      heap.trim();
      HeapStats s = heap.stats();
      assertTrue(s.committedBytes() <= committed, s.toString());
      assertEquals(0, s.slabs(), s.toString());
    }
  }

  @Test
  void aHeapClosedWithSlabsKeptIsSweptQuietly() throws Exception {
    AtomicReference<Throwable> reported = new AtomicReference<>();
    Thread.UncaughtExceptionHandler before = Thread.getDefaultUncaughtExceptionHandler();
    Thread.setDefaultUncaughtExceptionHandler((t, e) -> reported.set(e));
    try {
      Heap heap = Heap.builder().name("close-kept").purgeDelay(Duration.ofMillis(20)).build();
      List<Long> blocks = new ArrayList<>();
      for (int i = 0; i < 4 * SLAB / 512; i++) blocks.add(heap.allocateAddress(512));
      for (long a : blocks) heap.freeAddress(a);   // three kept: the sweeper is due in 20 ms
      heap.close();
      Thread.sleep(200);
      // A heap still open beside it is swept as before.
      try (Heap open = Heap.builder().name("open-kept").purgeDelay(Duration.ofMillis(20))
          .build()) {
        blocks.clear();
        for (int i = 0; i < 4 * SLAB / 512; i++) blocks.add(open.allocateAddress(512));
        for (long a : blocks) open.freeAddress(a);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (open.stats().slabs() > 0 && System.nanoTime() < deadline) Thread.sleep(10);
        assertEquals(0, open.stats().slabs(), "the kept slabs and the idle current one went back");
      }
    } finally {
      Thread.setDefaultUncaughtExceptionHandler(before);
    }
    assertEquals(null, reported.get(), "the sweeper reported a failure");
  }

  @Test
  void closeWithCachedBlocksAndLaterCalls() {
    Heap heap = cached("close");
    long a = heap.allocateAddress(64);
    ByteBuffer b = heap.allocate(64);
    heap.close();
    assertThrows(IllegalStateException.class, () -> heap.freeAddress(a));
    assertThrows(IllegalStateException.class, () -> heap.free(b));
    assertThrows(IllegalStateException.class, () -> heap.allocate(64));
  }

  @Test
  void whereTheCacheDoesNotApplyTheCoreServes() throws Exception {
    List<Heap> heaps = List.of(
        Heap.builder().name("uncached-debug").debug(true).build(),
        Heap.builder().name("uncached-leaks").leakDetection(LeakDetection.PARANOID).build(),
        Heap.builder().name("uncached-limit").maxBytes(8 << 20).build(),
        Heap.builder().name("uncached-purge").purgeDelay(Duration.ZERO).build());
    for (Heap heap : heaps) {
      try (heap) {
        long a = heap.allocateAddress(64);
        assertTrue(NativeHeap.usableSize(handle(heap), a) > 0, heap.name());
        heap.freeAddress(a);
      }
    }
  }

  /**
   * The event-loop pattern: one thread allocates, another frees everything, the first goes
   * idle. Its parked slabs go back to the core without its help once the purge delay passed;
   * the slab that is current stays. When it allocates again it finds its lists changed under
   * it and hands out every block once.
   */
  @Test
  void slabsOtherThreadsEmptiedGoBackWhileTheirOwnerIdles() throws Exception {
    try (Heap heap = Heap.builder().name("emptied").purgeDelay(Duration.ofMillis(20)).build()) {
      int n = 8 * SLAB / 1024;
      java.util.concurrent.SynchronousQueue<List<Long>> handOff =
          new java.util.concurrent.SynchronousQueue<>();
      java.util.concurrent.CountDownLatch again = new java.util.concurrent.CountDownLatch(1);
      AtomicReference<Throwable> error = new AtomicReference<>();
      Thread owner = new Thread(() -> {
        try {
          List<Long> blocks = new ArrayList<>();
          for (int i = 0; i < n; i++) blocks.add(heap.allocateAddress(1000));
          handOff.put(blocks);
          again.await();   // idle: no call at all until the slabs went back
          List<Long> more = new ArrayList<>();
          for (int i = 0; i < n; i++) {
            long a = heap.allocateAddress(1000);
            heap.sliceAddress(a, 0, 8).putLong(0, a);
            more.add(a);
          }
          handOff.put(more);
        } catch (Throwable e) {
          error.set(e);
        }
      });
      owner.start();
      List<Long> blocks = handOff.take();
      long held = heap.stats().slabs();
      assertTrue(held >= 8, "slabs " + held);
      for (long a : blocks) heap.freeAddress(a);
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (heap.stats().slabs() > 0 && System.nanoTime() < deadline) Thread.sleep(10);
      HeapStats s = heap.stats();
      assertEquals(0, s.slabs(), "every slab went back, the idle owner's current one too: " + s);
      assertEquals(n, s.allocations(), s.toString());
      assertEquals(n, s.frees(), s.toString());
      assertEquals(n, s.remoteFrees(), s.toString());
      again.countDown();
      List<Long> more = handOff.take();
      owner.join();
      if (error.get() != null) throw new AssertionError(error.get());
      assertEquals(n, new HashSet<>(more).size(), "every block handed out once");
      for (long a : more) free(heap, a);
      s = heap.stats();
      assertEquals(0, s.liveBlocks(), s.toString());
      assertEquals(2L * n, s.allocations(), s.toString());
      heap.trim();
      assertEquals(0, heap.stats().slabs());
    }
  }

  /**
   * Sweeps take parked slabs while their owner frees into them, reallocates in them and
   * collects other threads' frees from them: no block is lost or handed out twice, and the
   * counts stay exact.
   */
  @Test
  void sweepsRaceTheOwnerOnItsParkedSlabs() throws Exception {
    try (Heap heap = Heap.builder().name("race").purgeDelay(Duration.ofMillis(1)).build()) {
      ConcurrentLinkedQueue<Long> toFree = new ConcurrentLinkedQueue<>();
      ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
      java.util.concurrent.atomic.AtomicBoolean done =
          new java.util.concurrent.atomic.AtomicBoolean();
      Thread sweeper = new Thread(() -> {
        while (!done.get()) heap.trim();
      });
      Thread remote = new Thread(() -> {
        try {
          while (!done.get() || !toFree.isEmpty()) {
            Long a = toFree.poll();
            if (a != null) free(heap, a);
            else Thread.onSpinWait();
          }
        } catch (Throwable e) {
          errors.add(e);
        }
      });
      Thread owner = new Thread(() -> {
        try {
          ThreadLocalRandom rnd = ThreadLocalRandom.current();
          for (int r = 0; r < TestSupport.scaled(200); r++) {
            List<Long> mine = new ArrayList<>();
            for (int i = 0; i < 3 * SLAB / 512; i++) {
              long a = heap.allocateAddress(500);
              heap.sliceAddress(a, 0, 8).putLong(0, a);
              if (rnd.nextInt(3) == 0) toFree.add(a);
              else mine.add(a);
            }
            Collections.shuffle(mine);
            for (int i = 0; i < mine.size(); i++) {
              long a = mine.get(i);
              if (i % 7 == 0) {   // moves it to another class, freeing it in its slab
                long b = heap.reallocateAddress(a, 2000);
                assertEquals(a, heap.sliceAddress(b, 0, 8).getLong(0), "the bytes moved");
                heap.sliceAddress(b, 0, 8).putLong(0, b);
                a = b;
              }
              free(heap, a);
            }
          }
        } catch (Throwable e) {
          errors.add(e);
        }
      });
      sweeper.start();
      remote.start();
      owner.start();
      owner.join();
      done.set(true);
      remote.join();
      sweeper.join();
      if (!errors.isEmpty()) throw new AssertionError(errors.peek());
      HeapStats s = heap.stats();
      assertEquals(0, s.liveBlocks(), s.toString());
      assertEquals(s.allocations(), s.frees(), s.toString());
      // The sweeper thread may be returning a slab as this trim runs: then it goes on the next.
      long deadline = System.nanoTime() + 10_000_000_000L;
      do {
        heap.trim();
      } while (heap.stats().slabs() > 0 && System.nanoTime() < deadline && sleep(10));
      assertEquals(0, heap.stats().slabs(), "the dead owner's slabs went back");
    }
  }

  /**
   * A thread that used several classes through buffers, freed everything and went idle holds
   * no slab once the sweeps found its current ones empty and untouched; allocating again, it
   * gets blocks from new slabs, and the counts stay exact.
   */
  @Test
  void anIdleThreadsCurrentSlabsGoBackAndItAllocatesAgain() throws Exception {
    try (Heap heap = Heap.builder().name("idle-current").purgeDelay(Duration.ofMillis(20))
        .build()) {
      int[] sizes = {16, 64, 100, 1000, 4096, 20000};
      java.util.concurrent.CyclicBarrier step = new java.util.concurrent.CyclicBarrier(2);
      AtomicReference<Throwable> error = new AtomicReference<>();
      Thread owner = new Thread(() -> {
        try {
          for (int round = 0; round < 2; round++) {
            List<ByteBuffer> mine = new ArrayList<>();
            for (int size : sizes) {
              for (int i = 0; i < 50; i++) {
                ByteBuffer b = heap.allocate(size);
                b.putInt(0, size * 1000 + i);
                mine.add(b);
              }
            }
            for (int k = 0; k < mine.size(); k++) {
              ByteBuffer b = mine.get(k);
              assertEquals(b.capacity() * 1000 + k % 50, b.getInt(0));
              heap.free(b);
            }
            step.await();   // idle until the main thread saw every slab go back
            step.await();
          }
        } catch (Throwable e) {
          error.set(e);
          step.reset();
        }
      });
      owner.start();
      for (int round = 0; round < 2; round++) {
        step.await();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while ((heap.stats().slabs() > 0 || heap.stats().committedBytes() > 0)
            && System.nanoTime() < deadline) {
          Thread.sleep(10);   // the core purges the returned slabs after the delay too
        }
        HeapStats s = heap.stats();
        assertEquals(0, s.slabs(), "round " + round + ": " + s);
        assertEquals(0, s.committedBytes(), s.toString());
        assertEquals((round + 1) * 50L * sizes.length, s.allocations(), s.toString());
        assertEquals(s.allocations(), s.frees(), s.toString());
        step.await();
      }
      owner.join();
      if (error.get() != null) throw new AssertionError(error.get());
    }
  }

  /**
   * trim() takes other threads' current slabs whenever they hold no live block, busy or not,
   * while two owners allocate and free in a loop, through addresses (with the last freed one
   * held back) and buffers: every block keeps the stamp its owner wrote until its owner frees
   * it (a block handed out twice, or a slab given back while in use and lent again, would
   * show), and the counts stay exact.
   */
  @Test
  void sweepsRaceBusyOwnersOnTheirCurrentSlabs() throws Exception {
    try (Heap heap = Heap.builder().name("race-current").purgeDelay(Duration.ofMillis(1))
        .build()) {
      ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
      java.util.concurrent.atomic.AtomicBoolean done =
          new java.util.concurrent.atomic.AtomicBoolean();
      java.util.concurrent.atomic.AtomicLong trims = new java.util.concurrent.atomic.AtomicLong();
      Thread sweeper = new Thread(() -> {
        while (!done.get()) {
          heap.trim();
          trims.incrementAndGet();
        }
      });
      List<Thread> owners = new ArrayList<>();
      for (int o = 0; o < 2; o++) {
        long id = o + 1;
        owners.add(new Thread(() -> {
          try {
            ThreadLocalRandom rnd = ThreadLocalRandom.current();
            long seq = 0;
            for (int r = 0; r < TestSupport.scaled(20_000); r++) {
              int size = rnd.nextBoolean() ? 64 : 700;
              int n = 1 + rnd.nextInt(3);
              long[] addresses = new long[n];
              ByteBuffer[] buffers = new ByteBuffer[n];
              for (int i = 0; i < n; i++) {
                long stamp = id << 48 | ++seq;
                addresses[i] = heap.allocateAddress(size);
                heap.sliceAddress(addresses[i], 0, 8).putLong(0, stamp);
                buffers[i] = heap.allocate(size);
                buffers[i].putLong(0, ~stamp);
              }
              if (rnd.nextInt(8) == 0) Thread.yield();   // a moment of idleness
              for (int i = n - 1; i >= 0; i--) {
                long stamp = heap.sliceAddress(addresses[i], 0, 8).getLong(0);
                assertEquals(~stamp, buffers[i].getLong(0), "a block changed under its owner");
                assertEquals(id, stamp >>> 48, "a block changed under its owner");
                heap.freeAddress(addresses[i]);
                heap.free(buffers[i]);
              }
            }
          } catch (Throwable e) {
            errors.add(e);
          }
        }));
      }
      sweeper.start();
      owners.forEach(Thread::start);
      for (Thread t : owners) t.join();
      done.set(true);
      sweeper.join();
      if (!errors.isEmpty()) throw new AssertionError(errors.peek());
      assertTrue(trims.get() > 0);
      HeapStats s = heap.stats();
      assertEquals(0, s.liveBlocks(), s.toString());
      assertEquals(s.allocations(), s.frees(), s.toString());
      heap.trim();
      assertEquals(0, heap.stats().slabs(), "the dead owners' slabs went back");
    }
  }

  /*
   * A sweep that holds current slabs PENDING must decide them all before it waits on anything:
   * a thread registering with the heap folds dead threads' caches in under the heap's lock and
   * waits, as an owner, on their PENDING slabs. Dead threads' current slabs are idle, so every
   * sweep holds some; with 1 ms sweeps and threads exiting and starting without pause, a sweep
   * that gave a slab back (taking the lock) before deciding the next deadlocked within seconds.
   */
  @Test
  void threadsStartingWhileSweepsTakeDeadThreadsSlabsNeverWait() throws Exception {
    try (Heap heap = Heap.builder().name("churn-sweep").purgeDelay(Duration.ofMillis(1))
        .build()) {
      ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
      Thread churn = new Thread(() -> {
        try {
          for (int g = 0; g < TestSupport.scaled(400, 10); g++) {
            List<Thread> threads = new ArrayList<>();
            for (int k = 0; k < 4; k++) {
              Thread t = new Thread(() -> {
                try {
                  for (int size = 16; size <= 4096; size *= 2) {   // a current slab per class
                    heap.free(heap.allocate(size));
                    heap.freeAddress(heap.allocateAddress(size + 8));
                  }
                } catch (Throwable e) {
                  errors.add(e);
                }
              });
              threads.add(t);
              t.start();
            }
            for (Thread t : threads) t.join();
            if (g % 16 == 0) heap.trim();
          }
        } catch (Throwable e) {
          errors.add(e);
        }
      }, "churn-sweep");
      churn.start();
      churn.join(120_000);
      if (churn.isAlive()) {
        StringBuilder stacks = new StringBuilder();
        Thread.getAllStackTraces().forEach((t, frames) -> {
          stacks.append('\n').append(t.getName()).append(':');
          for (StackTraceElement f : frames) stacks.append("\n  at ").append(f);
        });
        throw new AssertionError("threads starting and sweeps deadlocked:" + stacks);
      }
      if (!errors.isEmpty()) throw new AssertionError(errors.peek());
      HeapStats s = heap.stats();
      assertEquals(0, s.liveBlocks(), s.toString());
      assertEquals(s.allocations(), s.frees(), s.toString());
    }
  }

  private static boolean sleep(long ms) throws InterruptedException {
    Thread.sleep(ms);
    return true;
  }

  @Test
  void manyThreadsWithCrossFreesAndExits() throws Exception {
    try (Heap heap = Heap.builder().name("stress").build()) {   // sweeps run meanwhile
      ConcurrentLinkedQueue<Long> shared = new ConcurrentLinkedQueue<>();
      ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
      int rounds = TestSupport.scaled(4);
      for (int r = 0; r < rounds; r++) {
        List<Thread> threads = new ArrayList<>();
        for (int k = 0; k < 4; k++) {
          Thread t = new Thread(() -> {
            try {
              ThreadLocalRandom rnd = ThreadLocalRandom.current();
              List<Long> mine = new ArrayList<>();
              for (int i = 0; i < TestSupport.scaled(20_000); i++) {
                int size = 1 + rnd.nextInt(9000);
                long a = heap.allocateAddress(size);
                heap.sliceAddress(a, 0, 8).putLong(0, a);
                if (rnd.nextBoolean()) shared.add(a);
                else mine.add(a);
                if (mine.size() > 100) free(heap, mine.remove(rnd.nextInt(mine.size())));
                Long other = rnd.nextInt(4) == 0 ? shared.poll() : null;
                if (other != null) free(heap, other);
              }
              for (long a : mine) free(heap, a);
            } catch (Throwable e) {
              errors.add(e);
            }
          });
          threads.add(t);
          t.start();
        }
        for (Thread t : threads) t.join();
      }
      for (Long a; (a = shared.poll()) != null; ) free(heap, a);
      if (!errors.isEmpty()) throw new AssertionError(errors.peek());
      heap.trim();
      HeapStats s = heap.stats();
      assertEquals(0, s.liveBlocks(), s.toString());
      assertEquals(s.allocations(), s.frees());
      assertTrue(s.remoteFrees() > 0);
    }
  }

  private static void free(Heap heap, long a) {
    long tag = heap.sliceAddress(a, 0, 8).getLong(0);
    if (tag != a) throw new AssertionError("block " + a + " holds " + tag);
    heap.freeAddress(a);
  }
}
