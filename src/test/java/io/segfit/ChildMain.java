// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static io.segfit.TestSupport.check;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The one entry point of the child JVMs the tests start (TestSupport.runChild and the tests
 * that need a JVM of their own make): the first argument names the mode, the rest are its.
 */
public final class ChildMain {
  private ChildMain() {}

  public static void main(String[] args) {
    switch (args[0]) {
      case "probe":
        probe();
        break;
      case "default-heap":
        defaultHeap();
        break;
      case "leak":
        leak();
        break;
      case "race":
        race();
        break;
      case "guard-page":
        GuardPage.main(Arrays.copyOfRange(args, 1, args.length));
        break;
      case "os-out-of-memory":
        OsOutOfMemory.main(Arrays.copyOfRange(args, 1, args.length));
        break;
      case "faults":
        Faults.main(Arrays.copyOfRange(args, 1, args.length));
        break;
      default:
        throw new IllegalArgumentException(args[0]);
    }
  }

  private static void probe() {
    System.out.println("available=" + Segfit.isAvailable());
    Throwable cause = Segfit.unavailabilityCause();
    if (cause == null) {
      try (Heap heap = Heap.builder().build()) {
        ByteBuffer b = heap.allocate(64);
        b.putLong(0, 1);
        heap.free(b);
        heap.free(heap.allocate(2 << 20)); // a LargeAllocation event, when JFR is present
        heap.trim();                       // a Trim event
        heap.stats();
      }
      System.out.println("source=" + Segfit.nativeSource());
      System.out.println("version=" + Segfit.nativeVersion());
      System.out.println("commit=" + Segfit.nativeCommit());
      return;
    }
    System.out.println("cause=" + cause.getMessage());
    // every use fails the same way, with the original error as cause, without poisoning
    for (int i = 0; i < 2; i++) {
      try {
        Heap.builder().build();
        System.out.println("build=succeeded?!");
      } catch (UnsatisfiedLinkError e) {
        System.out.println("build" + i + "=" + e.getMessage());
        System.out.println("buildCause" + i + "=" + (e.getCause() == null ? null
            : e.getCause().getClass().getName()));
      }
    }
    try {
      Heap.defaultHeap();
    } catch (UnsatisfiedLinkError e) {
      System.out.println("default=" + e.getMessage());
    }
  }

  /** Allocates a 77-byte buffer and drops it without freeing it. */
  static void allocateAndDrop(Heap heap) {
    heap.allocate(77).put(0, (byte) 1);
  }

  private static void leak() {
    try (Heap heap = Heap.builder().name("leak-child").leakDetection(LeakDetection.PARANOID)
        .build()) {
      allocateAndDrop(heap);
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (heap.stats().leaksReported() == 0 && System.nanoTime() < deadline) {
        System.gc();
        try {
          Thread.sleep(50);
        } catch (InterruptedException e) {
          throw new AssertionError(e);
        }
      }
      System.out.println("reported=" + heap.stats().leaksReported());
    }
  }

  /** Many threads make the first use at once: the library loads once, every heap works. */
  private static void race() {
    int threads = 8;
    java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.atomic.AtomicInteger ok = new java.util.concurrent.atomic.AtomicInteger();
    java.util.List<Thread> all = new java.util.ArrayList<>();
    for (int t = 0; t < threads; t++) {
      Thread th = new Thread(() -> {
        try {
          go.await();
          Heap heap = (ok.get() & 1) == 0 ? Heap.defaultHeap() : Heap.builder().jmx(false).build();
          heap.free(heap.allocate(64));
          ok.incrementAndGet();
        } catch (Throwable e) {
          e.printStackTrace();
        }
      });
      all.add(th);
      th.start();
    }
    go.countDown();
    for (Thread th : all) {
      try {
        th.join();
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
    }
    System.out.println("ok=" + ok.get() + "/" + threads);
  }

  private static void defaultHeap() {
    Heap heap;
    try {
      heap = Heap.defaultHeap();
    } catch (IllegalArgumentException e) {
      System.out.println("invalid=" + e.getMessage());
      return;
    }
    System.out.println("name=" + heap.name());
    System.out.println("maxBytes=" + heap.stats().maxBytes());
    System.out.println("leakDetection=" + heap.leakDetection());
    System.out.println("mxbean=" + heap.mxbeanName());
    try {
      heap.allocateAddress(heap.stats().maxBytes() + 1);
      System.out.println("limit=not enforced");
    } catch (HeapOutOfMemoryError e) {
      System.out.println("limit=" + e.isLimitReached());
    }
  }

  /**
   * Mode guard-page (DebugModeTest): allocates a large block on a debug heap, prints its address
   * and size, then writes byte after byte past its end through the raw address (as an FFM or
   * Unsafe user with an off-by-N bug would) for two pages. The guard page must stop it: reaching
   * the end of the loop prints SURVIVED.
   */
  static final class GuardPage {
    private GuardPage() {}

    static void main(String[] args) {
      int size = Integer.parseInt(args[0]);
      Heap heap = Heap.builder().name("guarded").debug(true).build();
      long address = heap.allocateAddress(size);
      RawMemory raw = RawMemory.get();
      TestSupport.fill(TestSupport.Bytes.at(address), 1, 0, size); // in bounds: fine
      System.out.println("BLOCK " + address + " " + size);
      System.out.flush();
      for (long off = size; off < size + 2 * 65536L; off++) {
        raw.put(address + off, (byte) 0xEE);
      }
      System.out.println("SURVIVED");
    }
  }

  /**
   * Mode os-out-of-memory (OsFaultsTest). It warms up (loads every class the failure paths need),
   * then caps its own address space with prlimit(1) at its current size plus a margin, and
   * allocates until the OS refuses: slab blocks, then large blocks (own mappings). Each refusal
   * must be a HeapOutOfMemoryError saying the OS refused; the blocks held must keep their
   * contents and be counted exactly; after freeing everything and trim a 64 MiB block fits
   * again. It prints "RESULT ok" and exits 0, or prints what went wrong and exits 1. Runs
   * interpreted (-Xint, set by the parent) so that no JIT compilation needs native memory at the
   * limit.
   */
  static final class OsOutOfMemory {
    private OsOutOfMemory() {}

    static final long MARGIN = 192L << 20;
    static final int LARGE = (2 << 20) + 100; // above the 1 MiB slab maximum: a mapping of its own
    static final int SMALL = 16384;
    static final int TOUCH = 64;

    static void main(String[] args) {
      TestSupport.childMain(OsOutOfMemory::run);
    }

    private static void run() throws Exception {
      Heap heap = Heap.builder().name("os-oom").purgeDelay(Duration.ZERO).build();
      List<ByteBuffer> held = new ArrayList<>(200_000);
      // Warm-up: every path the test takes, including a refusal (through a tiny limited heap).
      for (int i = 0; i < 50; i++) {
        ByteBuffer a = heap.allocate(LARGE), b = heap.allocate(SMALL);
        TestSupport.fill(TestSupport.Bytes.of(b), i, 0, TOUCH);
        check(TestSupport.firstMismatch(TestSupport.Bytes.of(b), i, 0, TOUCH) == -1,
            "warm-up pattern");
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

      long vm = TestSupport.statusKib("VmSize:") * 1024;
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
      check(s.liveBlocks() == held.size(),
          "live blocks " + s.liveBlocks() + ", held " + held.size());
      // A failed reallocation keeps the block.
      ByteBuffer first = held.get(0);
      try {
        heap.reallocate(first, 1 << 30);
        check(false, "a 1 GiB reallocation fitted in the capped address space");
      } catch (HeapOutOfMemoryError expected) {
        check(expected.getMessage().contains("os-oom"), "message lacks the heap's name: "
            + expected.getMessage());
      }
      check(TestSupport.firstMismatch(TestSupport.Bytes.of(first), 0, 0, TOUCH) == -1,
          "a failed reallocation changed the block");
      check(heap.stats().liveBlocks() == held.size(), "a failed reallocation changed live blocks");

      for (int i = 0; i < held.size(); i++) {
        check(TestSupport.firstMismatch(TestSupport.Bytes.of(held.get(i)), i, 0, TOUCH) == -1,
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
        TestSupport.fill(TestSupport.Bytes.of(b), held.size(), 0, TOUCH);
        held.add(b);
        n++;
        check(held.size() < 300_000, "the OS never refused");
      }
    }
  }

  /**
   * Mode faults (OsFaultsTest), running on libsegfit-faults.so: the core's mmap, munmap, mremap,
   * madvise and membarrier calls fail on the schedule in SEGFIT_FAULTS until the stop file
   * (args[0]) exists.
   *
   * <p>Phase 1, faults on: four threads allocate (buffers and addresses; plain, zeroed, aligned),
   * reallocate (within a class, across classes, large blocks by mremap) and free blocks of 1 B to
   * 6 MiB on two heaps (the default purge delay, and none: every emptied slab and segment goes
   * back at once), and hand some to each other to free. Every block carries a pattern at both
   * ends. The only failure allowed is HeapOutOfMemoryError saying the operating system refused
   * (never the limit: the heaps have none); a failed reallocation must leave its block as it
   * was. Phase 2, faults off: every block still held keeps its pattern and is freed; after trim
   * nothing is live or committed; 64 MiB, a growth by mremap and 20,000 small blocks work. Prints
   * "RESULT ok" with its figures and exits 0, or prints what went wrong and exits 1.
   */
  static final class Faults {
    private Faults() {}

    static final int THREADS = 4;
    static final int OPS = TestSupport.scaled(4000, 10);
    static final int SLOTS = 32;
    static final int EDGE = 64; // bytes checked at each end of a block

    static final AtomicLong REFUSED = new AtomicLong();
    static final AtomicLong OPERATIONS = new AtomicLong();
    static final AtomicLong CHECKED = new AtomicLong();

    static void main(String[] args) {
      TestSupport.childMain(() -> run(Path.of(args[0])));
    }

    /** A live block: a buffer or an address, its size and the seed of its pattern. */
    static final class Block {
      final Heap heap;
      ByteBuffer buffer;
      long address;
      long size;
      long seed;

      Block(Heap heap) {
        this.heap = heap;
      }

      TestSupport.Bytes bytes() {
        return buffer != null ? TestSupport.Bytes.of(buffer) : TestSupport.Bytes.at(address);
      }

      void fill() {
        TestSupport.Bytes b = bytes();
        TestSupport.fill(b, seed, 0, Math.min(size, EDGE));
        TestSupport.fill(b, seed, Math.max(EDGE, size - EDGE), size);
      }

      /** The pattern at both ends of the first n bytes. */
      void verify(long n, String when) {
        TestSupport.Bytes b = bytes();
        long at = TestSupport.firstMismatch(b, seed, 0, Math.min(n, EDGE));
        if (at < 0 && n > EDGE) {
          at = TestSupport.firstMismatch(b, seed, Math.max(EDGE, size - EDGE), Math.min(n, size));
        }
        check(at < 0, when + ": block of " + size + " bytes changed at " + at);
        CHECKED.incrementAndGet();
      }

      void free() {
        verify(size, "free");
        if (buffer != null) {
          heap.free(buffer);
        } else {
          heap.freeAddress(address);
        }
      }
    }

    static long size(SplittableRandom r) {
      switch (r.nextInt(4)) {
        case 0:
          return 1 + r.nextInt(1024);
        case 1:
          return 1024 + r.nextInt(64 << 10);
        case 2:
          return (64 << 10) + r.nextInt(1 << 20);
        default:
          return (1 << 20) + r.nextInt(6 << 20); // large: a mapping of its own
      }
    }

    /** A refusal must be the operating system's, through the heap's own error type. */
    static void refused(HeapOutOfMemoryError e, Heap heap) {
      check(!e.isLimitReached(), "the limit, not the OS, refused: " + e.getMessage());
      check(e.getMessage().contains("operating system") && e.getMessage().contains(heap.name()),
          "message: " + e.getMessage());
      REFUSED.incrementAndGet();
    }

    static Block allocate(Heap heap, SplittableRandom r) {
      Block x = new Block(heap);
      x.size = size(r);
      x.seed = r.nextLong();
      int how = r.nextInt(5);
      try {
        switch (how) {
          case 0:
            x.buffer = heap.allocate((int) x.size);
            break;
          case 1:
            x.buffer = heap.allocateZeroed((int) x.size);
            break;
          case 2:
            x.buffer = heap.allocateAligned((int) x.size, 4096);
            break;
          case 3:
            x.address = heap.allocateAddress(x.size);
            check(heap.usableSizeAddress(x.address) >= x.size, "usable size");
            break;
          default:
            x.address = heap.allocateZeroedAddress(x.size);
            break;
        }
      } catch (HeapOutOfMemoryError e) {
        refused(e, heap);
        return null;
      }
      if (how == 1 || how == 4) {
        check(TestSupport.firstNonZero(x.bytes(), Math.min(x.size, 4096)) < 0, "zeroed block");
      }
      x.fill();
      return x;
    }

    static void reallocate(Block x, SplittableRandom r) {
      long newSize = size(r);
      try {
        if (x.buffer != null) {
          x.buffer = x.heap.reallocate(x.buffer, (int) newSize);
        } else {
          x.address = x.heap.reallocateAddress(x.address, newSize);
        }
      } catch (HeapOutOfMemoryError e) {
        refused(e, x.heap);
        x.verify(x.size, "after a refused reallocation"); // unchanged, still live
        return;
      }
      long kept = Math.min(x.size, newSize);
      long oldSize = x.size;
      x.size = newSize;
      TestSupport.Bytes b = x.bytes();
      check(TestSupport.firstMismatch(b, x.seed, 0, Math.min(kept, EDGE)) < 0,
          "reallocation " + oldSize + " -> " + newSize + " lost the first bytes");
      x.seed = r.nextLong();
      x.fill();
    }

    static void work(Heap[] heaps, List<ConcurrentLinkedQueue<Block>> inbox, int id) {
      SplittableRandom r = new SplittableRandom(0x5E6F17L * (id + 1));
      Block[] slot = new Block[SLOTS];
      for (int op = 0; op < OPS; op++) {
        OPERATIONS.incrementAndGet();
        Block remote = inbox.get(id).poll();
        if (remote != null) {
          remote.free(); // a block another thread allocated: a remote free
        }
        int i = r.nextInt(SLOTS);
        if (slot[i] == null) {
          slot[i] = allocate(heaps[r.nextInt(heaps.length)], r);
          continue;
        }
        int what = r.nextInt(20);
        if (what < 12) {
          reallocate(slot[i], r);
        } else if (what < 17) {
          slot[i].free();
          slot[i] = null;
        } else {
          inbox.get((id + 1 + r.nextInt(THREADS - 1)) % THREADS).add(slot[i]);
          slot[i] = null;
        }
      }
      for (Block x : slot) {
        if (x != null) {
          inbox.get(id).add(x); // freed in phase 2, with the faults off
        }
      }
    }

    static void run(Path stop) throws Exception {
      check(System.getenv("SEGFIT_FAULTS") != null, "SEGFIT_FAULTS is not set");
      Heap lazy = Heap.builder().name("faults-delay").build();
      Heap eager = Heap.builder().name("faults-eager").purgeDelay(Duration.ZERO).build();
      Heap[] heaps = {lazy, eager};
      List<ConcurrentLinkedQueue<Block>> inbox = new ArrayList<>();
      for (int i = 0; i < THREADS; i++) {
        inbox.add(new ConcurrentLinkedQueue<>());
      }
      Throwable[] failure = new Throwable[THREADS];
      Thread[] threads = new Thread[THREADS];
      for (int t = 0; t < THREADS; t++) {
        int id = t;
        threads[t] = new Thread(() -> {
          try {
            work(heaps, inbox, id);
          } catch (Throwable e) {
            failure[id] = e;
          }
        }, "faults-" + t);
        threads[t].start();
      }
      for (Thread t : threads) {
        t.join();
      }
      for (Throwable e : failure) {
        if (e != null) {
          throw new AssertionError("a worker failed under faults", e);
        }
      }
      System.out.println("phase 1: " + OPERATIONS.get() + " operations, " + REFUSED.get()
          + " refused with HeapOutOfMemoryError (the OS), " + CHECKED.get() + " blocks checked");
      check(REFUSED.get() > 0, "no call was refused: the faults never reached Java");

      Files.createFile(stop); // no fault after this: the core looks for the file at every call
      int held = 0;
      for (ConcurrentLinkedQueue<Block> q : inbox) {
        for (Block x; (x = q.poll()) != null; held++) {
          x.free();
        }
      }
      for (Heap h : heaps) {
        h.trim();
        HeapStats s = h.stats();
        System.out.println("phase 2: " + h.name() + " after freeing " + held + " held blocks and "
            + "trim: live " + s.liveBytes() + " B in " + s.liveBlocks() + " blocks, committed "
            + s.committedBytes() + " B");
        check(s.liveBlocks() == 0 && s.liveBytes() == 0, "live after freeing all: " + s);
        check(s.committedBytes() == 0, "committed after freeing all and trim: " + s);
      }
      // Fully working again: a large block grown by mremap, and many small ones.
      for (Heap h : heaps) {
        long big = h.allocateAddress(64L << 20);
        TestSupport.Bytes b = TestSupport.Bytes.at(big);
        TestSupport.fill(b, 1, 0, 4096);
        big = h.reallocateAddress(big, 128L << 20);
        check(TestSupport.firstMismatch(TestSupport.Bytes.at(big), 1, 0, 4096) < 0, "grown block");
        h.freeAddress(big);
        List<ByteBuffer> small = new ArrayList<>();
        for (int i = 0; i < 20_000; i++) {
          small.add(h.allocate(16 + i % 2000));
        }
        for (ByteBuffer x : small) {
          h.free(x);
        }
        h.trim();
        check(h.stats().committedBytes() == 0, "committed after the last round: " + h.stats());
        h.close();
      }
      System.out.println("phase 2: the heaps work again (64 MiB grown to 128 MiB, 20000 blocks)");
    }
  }
}
