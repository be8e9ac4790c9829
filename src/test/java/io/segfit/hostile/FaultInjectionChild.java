// SPDX-License-Identifier: Apache-2.0
/*
 * The child JVM of FaultInjectionTest, running on libsegfit-faults.so: the core's mmap, munmap,
 * mremap, madvise and membarrier calls fail on the schedule in SEGFIT_FAULTS until the stop file
 * (args[0]) exists.
 *
 * Phase 1, faults on: four threads allocate (buffers and addresses; plain, zeroed, aligned),
 * reallocate (within a class, across classes, large blocks by mremap) and free blocks of 1 B to
 * 6 MiB on two heaps (the default purge delay, and none: every emptied slab and segment goes
 * back at once), and hand some to each other to free. Every block carries a pattern at both
 * ends. The only failure allowed is HeapOutOfMemoryError saying the operating system refused
 * (never the limit: the heaps have none); a failed reallocation must leave its block as it
 * was. Phase 2, faults off: every block still held keeps its pattern and is freed; after trim
 * nothing is live or committed; 64 MiB, a growth by mremap and 20,000 small blocks work. Prints
 * "RESULT ok" with its figures and exits 0, or prints what went wrong and exits 1.
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
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

public final class FaultInjectionChild {
  private FaultInjectionChild() {}

  static final int THREADS = 4;
  static final int OPS = Hostile.scaled(4000, 10);
  static final int SLOTS = 32;
  static final int EDGE = 64; // bytes checked at each end of a block

  static final AtomicLong REFUSED = new AtomicLong();
  static final AtomicLong OPERATIONS = new AtomicLong();
  static final AtomicLong CHECKED = new AtomicLong();

  public static void main(String[] args) {
    Hostile.childMain(() -> run(Path.of(args[0])));
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

    Hostile.Bytes bytes() {
      return buffer != null ? Hostile.Bytes.of(buffer) : Hostile.Bytes.at(address);
    }

    void fill() {
      Hostile.Bytes b = bytes();
      Hostile.fill(b, seed, 0, Math.min(size, EDGE));
      Hostile.fill(b, seed, Math.max(EDGE, size - EDGE), size);
    }

    /** The pattern at both ends of the first n bytes. */
    void verify(long n, String when) {
      Hostile.Bytes b = bytes();
      long at = Hostile.firstMismatch(b, seed, 0, Math.min(n, EDGE));
      if (at < 0 && n > EDGE) {
        at = Hostile.firstMismatch(b, seed, Math.max(EDGE, size - EDGE), Math.min(n, size));
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
      check(Hostile.firstNonZero(x.bytes(), Math.min(x.size, 4096)) < 0, "zeroed block");
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
    Hostile.Bytes b = x.bytes();
    check(Hostile.firstMismatch(b, x.seed, 0, Math.min(kept, EDGE)) < 0,
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
      Hostile.Bytes b = Hostile.Bytes.at(big);
      Hostile.fill(b, 1, 0, 4096);
      big = h.reallocateAddress(big, 128L << 20);
      check(Hostile.firstMismatch(Hostile.Bytes.at(big), 1, 0, 4096) < 0, "grown block");
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
