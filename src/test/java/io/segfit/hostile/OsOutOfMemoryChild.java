// SPDX-License-Identifier: Apache-2.0
/*
 * The child JVM of OsOutOfMemoryTest. It warms up (loads every class the failure paths need),
 * then caps its own address space with prlimit(1) at its current size plus a margin, and
 * allocates until the OS refuses: slab blocks, then large blocks (own mappings). Each refusal
 * must be a HeapOutOfMemoryError saying the OS refused; the blocks held must keep their
 * contents and be counted exactly; after freeing everything and trim a 64 MiB block fits again. It prints "RESULT ok"
 * and exits 0, or prints what went wrong and exits 1. Runs interpreted (-Xint, set by the
 * parent) so that no JIT compilation needs native memory at the limit.
 */
package io.segfit.hostile;

import static io.segfit.hostile.Hostile.check;

import io.segfit.Heap;
import io.segfit.HeapOutOfMemoryError;
import io.segfit.HeapStats;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

public final class OsOutOfMemoryChild {
  private OsOutOfMemoryChild() {}

  static final long MARGIN = 192L << 20;
  static final int LARGE = (2 << 20) + 100; // above the 1 MiB slab maximum: a mapping of its own
  static final int SMALL = 16384;
  static final int TOUCH = 64;

  public static void main(String[] args) {
    Hostile.childMain(OsOutOfMemoryChild::run);
  }

  private static void run() throws Exception {
    Heap heap = Heap.builder().name("os-oom").purgeDelay(Duration.ZERO).build();
    List<ByteBuffer> held = new ArrayList<>(200_000);
    // Warm-up: every path the test takes, including a refusal (through a tiny limited heap).
    for (int i = 0; i < 50; i++) {
      ByteBuffer a = heap.allocate(LARGE), b = heap.allocate(SMALL);
      Hostile.fill(Hostile.Bytes.of(b), i, 0, TOUCH);
      check(Hostile.firstMismatch(Hostile.Bytes.of(b), i, 0, TOUCH) == -1, "warm-up pattern");
      heap.free(a);
      heap.free(b);
    }
    try (Heap tiny = Heap.builder().name("warm-up").maxBytes(1 << 20).build()) {
      tiny.allocate(2 << 20);
      check(false, "the warm-up heap's limit did not bite");
    } catch (HeapOutOfMemoryError expected) {
      check(expected.getMessage() != null, "message");
    }
    heap.trim();
    heap.stats().toString();

    long vm = Hostile.statusKib("VmSize:") * 1024;
    long limit = vm + MARGIN;
    long pid = ProcessHandle.current().pid();
    Process p = new ProcessBuilder("prlimit", "--pid", Long.toString(pid), "--as=" + limit)
        .inheritIO().start();
    check(p.waitFor() == 0, "prlimit failed");
    String limits = Files.readString(Path.of("/proc/self/limits"));
    check(limits.matches("(?s).*Max address space\\s+" + limit + "\\s.*"),
        "limit not applied: " + limits);
    System.out.println("address space limited to " + limit + " bytes (VmSize " + vm + ")");

    // Slab blocks first (a new segment now and then), then large blocks (a mapping each) in
    // the address space too small for another segment; after that neither fits.
    int small = fill(heap, held, SMALL);
    int large = fill(heap, held, LARGE);
    System.out.println("refused after " + small + " slab and " + large + " large blocks");
    check(small > 0, "not one slab block fitted in " + MARGIN + " bytes");
    for (int size : new int[] {SMALL, LARGE}) {
      try {
        heap.allocateZeroed(size);
        check(false, "allocateZeroed(" + size + ") fitted after the refusals");
      } catch (HeapOutOfMemoryError expected) {
        check(!expected.isLimitReached(), "the OS refused, not the limit: " + expected);
      }
    }
    try {
      heap.allocateAddress(LARGE);
      check(false, "allocateAddress fitted after the refusals");
    } catch (HeapOutOfMemoryError expected) {
      check(expected.getMessage().contains("operating system"), expected.getMessage());
    }
    HeapStats s = heap.stats();
    check(s.liveBlocks() == held.size(), "live blocks " + s.liveBlocks() + ", held " + held.size());
    // A failed reallocation keeps the block.
    ByteBuffer first = held.get(0);
    try {
      heap.reallocate(first, 1 << 30);
      check(false, "a 1 GiB reallocation fitted in the capped address space");
    } catch (HeapOutOfMemoryError expected) {
      check(expected.getMessage().contains("os-oom"), "message lacks the heap's name: "
          + expected.getMessage());
    }
    check(Hostile.firstMismatch(Hostile.Bytes.of(first), 0, 0, TOUCH) == -1,
        "a failed reallocation changed the block");
    check(heap.stats().liveBlocks() == held.size(), "a failed reallocation changed live blocks");

    for (int i = 0; i < held.size(); i++) {
      check(Hostile.firstMismatch(Hostile.Bytes.of(held.get(i)), i, 0, TOUCH) == -1,
          "block " + i + " changed");
      heap.free(held.get(i));
    }
    held.clear();
    s = heap.stats();
    check(s.liveBlocks() == 0 && s.liveBytes() == 0, "live after freeing all: " + s);
    heap.trim();
    ByteBuffer big = heap.allocate(64 << 20); // a new mapping, where nothing fitted before
    for (int i = 0; i < big.capacity(); i += 4096) {
      big.put(i, (byte) (i >>> 12));
    }
    for (int i = 0; i < big.capacity(); i += 4096) {
      check(big.get(i) == (byte) (i >>> 12), "big block");
    }
    heap.free(big);
    ByteBuffer again = heap.allocate(SMALL);
    heap.free(again);
    heap.close();
  }

  /** Allocates blocks of size until the OS refuses; returns how many fitted. */
  private static int fill(Heap heap, List<ByteBuffer> held, int size) {
    int n = 0;
    while (true) {
      ByteBuffer b;
      try {
        b = heap.allocate(size);
      } catch (HeapOutOfMemoryError e) {
        check(e.getMessage().contains("os-oom"), "message lacks the heap's name: " + e);
        return n;
      }
      check(b.capacity() == size, "capacity");
      Hostile.fill(Hostile.Bytes.of(b), held.size(), 0, TOUCH);
      held.add(b);
      n++;
      check(held.size() < 300_000, "the OS never refused");
    }
  }
}
