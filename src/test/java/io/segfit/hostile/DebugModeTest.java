// SPDX-License-Identifier: Apache-2.0
/*
 * Debug mode (Heap.Builder.debug(true)) against the misuse no allocator can prevent but a debug
 * allocator can report: writing past the end of a block (into the canary after it) through a
 * raw address, as an FFM or Unsafe user would. The report comes when the block is freed, names
 * the block, and the block is freed anyway; the heap stays usable. Through the ByteBuffer API
 * the same overrun cannot happen at all: the buffer's bounds stop it.
 */
package io.segfit.hostile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.segfit.Heap;
import io.segfit.HeapStats;
import io.segfit.LeakDetection;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DebugModeTest {
  private static Heap debugHeap(String name) {
    return Heap.builder().name(name).debug(true).build();
  }

  @ParameterizedTest(name = "{0}-byte block")
  @ValueSource(ints = {1, 24, 100, 4000, 70_000})
  void overrunThroughAnAddressIsReportedOnFree(int size) {
    RawMemory raw = RawMemory.get();
    try (Heap heap = debugHeap("debug-overrun")) {
      // Every byte of the usable size may be written: no report.
      long ok = heap.allocateAddress(size);
      long usable = heap.usableSizeAddress(ok);
      assertTrue(usable >= size, "usable " + usable);
      Hostile.fill(Hostile.Bytes.at(ok), 1, 0, usable);
      heap.freeAddress(ok);

      // One byte past it lands in the canary: reported on free, naming the block.
      long bad = heap.allocateAddress(size);
      long badUsable = heap.usableSizeAddress(bad);
      Hostile.fill(Hostile.Bytes.at(bad), 2, 0, badUsable);
      raw.put(bad + badUsable, (byte) ~raw.get(bad + badUsable));
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> heap.freeAddress(bad), "overrun of a " + size + "-byte block not reported");
      String m = e.getMessage();
      assertTrue(m.contains("canary") || m.contains("corrupt"), "not a corruption report: " + m);
      assertTrue(m.contains(Long.toHexString(bad)), "report does not name the block: " + m);
      assertTrue(m.contains("debug-overrun"), "report does not name the heap: " + m);

      // The block was freed anyway, and the heap goes on.
      HeapStats s = heap.stats();
      assertEquals(0, s.liveBlocks(), "live after the reported free: " + s);
      assertThrows(RuntimeException.class, () -> heap.freeAddress(bad), "second free");
      long again = heap.allocateAddress(size);
      Hostile.fill(Hostile.Bytes.at(again), 3, 0, size);
      heap.freeAddress(again);
      assertEquals(0, heap.stats().liveBlocks());
    }
  }

  @Test
  void theByteBufferApiCannotOverrun() {
    try (Heap heap = debugHeap("debug-bounds")) {
      ByteBuffer b = heap.allocate(24);
      assertThrows(IndexOutOfBoundsException.class, () -> b.put(24, (byte) 1));
      assertThrows(IndexOutOfBoundsException.class, () -> b.putLong(20, 1L));
      long a = heap.allocateAddress(24);
      long usable = heap.usableSizeAddress(a);
      assertThrows(IndexOutOfBoundsException.class,
          () -> heap.sliceAddress(a, 0, (int) usable + 1));
      assertThrows(IndexOutOfBoundsException.class, () -> heap.sliceAddress(a, 1, (int) usable));
      heap.free(b);
      heap.freeAddress(a);
      assertEquals(0, heap.stats().liveBlocks());
    }
  }

  /**
   * Debug mode records every allocation's stack (leak detection or not): the corruption report
   * of a buffer's block carries the stack that allocated it, as a leak report does.
   */
  @Test
  void corruptionReportCarriesTheAllocationStack() {
    RawMemory raw = RawMemory.get();
    try (Heap heap = Heap.builder().name("debug-stack").debug(true)
        .leakDetection(LeakDetection.DISABLED).build()) {
      ByteBuffer b = allocateTheBlockThatWillBeOverrun(heap);
      long address = raw.addressOf(b);
      long usable = heap.usableSizeAddress(address);
      raw.put(address + usable, (byte) ~raw.get(address + usable));
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> heap.free(b));
      assertTrue(e.getMessage().contains("past its end") && e.getMessage().contains(
          "offset 0 past its end"), "the report does not say where: " + e.getMessage());
      assertAllocatedAt(e, "allocateTheBlockThatWillBeOverrun");
    }
  }

  /**
   * A write through a buffer kept after free (a slab block: its memory stays mapped, so this is
   * silent corruption without debug mode). Debug mode fills freed blocks with a pattern; the
   * write must be reported before the block is handed out again (by trim, or by the allocation
   * that would reuse it), never passed on silently to the next owner.
   */
  @Test
  void writeAfterFreeIsReported() {
    try (Heap heap = debugHeap("debug-uaf")) {
      ByteBuffer kept = allocateTheBlockThatWillBeWrittenAfterFree(heap);
      long address = RawMemory.get().addressOf(kept);
      heap.free(kept);
      assertEquals(0, heap.stats().liveBlocks(), "a quarantined block counts as freed");
      kept.put(40, (byte) 0x42); // past the free-list link, inside the fill pattern
      RuntimeException report = null;
      try {
        heap.trim();
        for (int i = 0; i < 10_000 && report == null; i++) {
          ByteBuffer b = heap.allocate(64); // the same class: sooner or later the same block
          heap.free(b);
        }
      } catch (IllegalStateException e) {
        report = e;
      }
      assertTrue(report != null, "a write into a freed block was never reported");
      String m = report.getMessage();
      assertTrue(m.contains("debug-uaf") && m.contains("trim"), m);
      assertTrue(m.contains(Long.toHexString(address)) && m.contains("after it was freed")
          && m.contains("offset 40"), "the report does not name the block and offset: " + m);
      assertAllocatedAt(report, "allocateTheBlockThatWillBeWrittenAfterFree");
      // Reported once; the heap goes on.
      heap.trim();
      heap.free(heap.allocate(64));
      assertEquals(0, heap.stats().liveBlocks());
    }
  }

  /**
   * Without a trim: the quarantine is bounded, so the frees that push the damaged block out of
   * it report it, naming that block, not the one being freed.
   */
  @Test
  void writeAfterFreeIsReportedByTheFreeThatPushesItOut() {
    try (Heap heap = debugHeap("debug-uaf-push")) {
      long stale = allocateTheBlockThatWillBeWrittenAfterFreeByAddress(heap);
      heap.freeAddress(stale);
      RawMemory raw = RawMemory.get();
      raw.put(stale + 3, (byte) 1);
      IllegalStateException report = null;
      long reportedBy = 0;
      for (int i = 0; i < 5_000 && report == null; i++) {
        long other = heap.allocateAddress(300);
        try {
          heap.freeAddress(other);
        } catch (IllegalStateException e) {
          report = e;
          reportedBy = other;
        }
      }
      assertTrue(report != null, "the quarantine never checked the damaged block");
      String m = report.getMessage();
      assertTrue(m.contains("free of 0x" + Long.toHexString(reportedBy)), m);
      assertTrue(m.contains("block 0x" + Long.toHexString(stale)) && m.contains("offset 3"), m);
      assertAllocatedAt(report, "allocateTheBlockThatWillBeWrittenAfterFreeByAddress");
      // The free that reported freed its own block too.
      long freed = reportedBy;
      assertThrows(IllegalStateException.class, () -> heap.freeAddress(freed));
      assertEquals(0, heap.stats().liveBlocks());
    }
  }

  private static void assertAllocatedAt(Throwable report, String method) {
    StringBuilder all = new StringBuilder();
    for (Throwable c = report.getCause(); c != null; c = c.getCause()) {
      all.append(c).append('\n');
      for (StackTraceElement f : c.getStackTrace()) all.append(f).append('\n');
    }
    assertTrue(all.indexOf(method) >= 0, "the report lacks the block's allocation stack ("
        + method + "):\n" + report + "\n" + all);
  }

  private static ByteBuffer allocateTheBlockThatWillBeWrittenAfterFree(Heap heap) {
    return heap.allocate(64);
  }

  private static long allocateTheBlockThatWillBeWrittenAfterFreeByAddress(Heap heap) {
    return heap.allocateAddress(300);
  }

  private static ByteBuffer allocateTheBlockThatWillBeOverrun(Heap heap) {
    return heap.allocate(24);
  }
}
