// SPDX-License-Identifier: Apache-2.0
/*
 * Debug mode (Heap.Builder.debug(true)) against the misuse no allocator can prevent but a debug
 * allocator can report: writing past the end of a block (into the canary after it) through a
 * raw address, as an FFM or Unsafe user would. The report comes when the block is freed, names
 * the block, and the block is freed anyway; the heap stays usable. Through the ByteBuffer API
 * the same overrun cannot happen at all: the buffer's bounds stop it.
 *
 * Guard pages, seen from Java: a child JVM overruns a large block of a debug heap through its
 * raw address. It must not survive the overrun, and its crash report must name the first page
 * after the block as the faulting address (si_addr, SEGV_ACCERR): the overrun is stopped at its
 * first byte outside the block's pages instead of corrupting whatever follows. Before the JVM's
 * crash handling, segfit's SIGSEGV hook must print its own report naming the heap, the block and
 * the offset. This is also the limit the README ("Safety") states: such misuse ends the JVM;
 * debug mode makes the crash point at the culprit.
 */
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
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
      TestSupport.fill(TestSupport.Bytes.at(ok), 1, 0, usable);
      heap.freeAddress(ok);

      // One byte past it lands in the canary: reported on free, naming the block.
      long bad = heap.allocateAddress(size);
      long badUsable = heap.usableSizeAddress(bad);
      TestSupport.fill(TestSupport.Bytes.at(bad), 2, 0, badUsable);
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
      TestSupport.fill(TestSupport.Bytes.at(again), 3, 0, size);
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

  @Test
  @TestSupport.ChildJvm
  void overrunOfALargeDebugBlockStopsAtTheGuardPage(@TempDir Path dir) throws Exception {
    // Under qemu-user java.home is the aarch64 JRE, which only the qemu wrapper can start; the
    // C test out-of-memory checks the guard page there (4 and 64 KiB pages).
    assumeFalse(TestSupport.EMULATED, "no child JVM under qemu-user");
    int size = (2 << 20) + 100; // large (own mapping), not a multiple of any page size
    Path hsErr = dir.resolve("hs_err.log");
    TestSupport.Child child = TestSupport.runOwnChild(dir,
        List.of("-Xmx64m", "-XX:+UseSerialGC", "-XX:-CreateCoredumpOnCrash",
            "--enable-native-access=ALL-UNNAMED"), Map.of(), 5, "guard-page",
        Integer.toString(size));
    String out = child.stdout();
    assertFalse(out.contains("SURVIVED"), "two pages of overrun went unnoticed:\n" + out);
    Matcher block = Pattern.compile("BLOCK (\\d+) (\\d+)").matcher(out);
    assertTrue(block.find(), "child did not get to the overrun:\n" + out);
    long address = Long.parseLong(block.group(1));
    assertEquals(size, Long.parseLong(block.group(2)));
    assertTrue(child.exitCode() != 0, "child exit status 0:\n" + out);
    assertTrue(Files.exists(hsErr), "child died without a crash report:\n" + out);
    String report = Files.readString(hsErr, StandardCharsets.ISO_8859_1);
    Matcher si = Pattern.compile("si_signo: 11 \\(SIGSEGV\\), si_code: \\d+ \\((\\w+)\\), "
        + "si_addr: 0x([0-9a-f]+)").matcher(report);
    assertTrue(si.find(), "no SIGSEGV in the crash report:\n"
        + report.substring(0, Math.min(3000, report.length())));
    long faultAt = Long.parseUnsignedLong(si.group(2), 16);
    long end = address + size;
    System.out.printf("guard page: block 0x%x + %d bytes, fault at 0x%x (%s)%n", address, size,
        faultAt, si.group(1));
    assertEquals("SEGV_ACCERR", si.group(1), "the fault is not on a protected guard page");
    // The first byte of the first page after the block's last page (4 KiB to 64 KiB pages).
    assertTrue(faultAt > end && faultAt <= end + 65536 && faultAt % 4096 == 0,
        String.format("fault at 0x%x, block ends at 0x%x", faultAt, end));
    // segfit's own report, printed by its SIGSEGV hook before the JVM's crash handling.
    String expected = String.format("segfit: heap 'guarded': write at offset %d of the large "
        + "block 0x%x (", faultAt - address, address);
    int at = out.indexOf(expected);
    assertTrue(at >= 0, "no segfit guard-page report '" + expected + "...' in:\n" + out);
    String line = out.substring(at, out.indexOf('\n', at));
    System.out.println(line);
    assertTrue(line.contains("past its end") && line.contains(String.format("0x%x", faultAt)),
        line);
  }
}
