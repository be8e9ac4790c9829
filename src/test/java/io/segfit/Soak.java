// SPDX-License-Identifier: Apache-2.0
/*
 * The soak: a multi-threaded mixed workload on one segfit heap for a given time, checking the
 * contents of every block it frees, reallocates or receives from another thread, and logging
 * once a second RSS (VmRSS), the heap's committed and live bytes to a CSV file.
 *
 * Workload: WORKERS threads each keep a live set (mostly small blocks, some up to 64 KiB, a few
 * large up to 4 MiB, buffers and raw addresses), and each step allocates, reallocates, frees,
 * hands a block to another thread (so frees cross threads) or trims. Every ~10 s one worker
 * makes a burst (64 MiB allocated then freed) so that memory must go back to the OS, and every
 * ~2 s one worker exits and is replaced (thread churn; its blocks go to the others). Block
 * contents follow a per-block seed (see fill/check): a mismatch is a checksum error.
 *
 * Verdict (exit status 1 on failure): no checksum error and no unexpected exception; after the
 * run everything freed, the heap reports nothing live; and RSS is bounded: the largest RSS of
 * the last third of the run is at most the largest of the first third plus a margin
 * (max(64 MiB, 25%)). Run by scripts/soak, from the test class path: it is not in the jar.
 * Usage: Soak <seconds> <csv file>
 */
package io.segfit;

import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicReferenceArray;

public final class Soak {
  static final int WORKERS = 3;
  static final int MAX_LIVE_PER_WORKER = 3000;
  /** Hand-offs stop while this many blocks wait (a retiring worker may leave more). */
  static final int MAX_HANDOFF = 2000;
  static final long BURST = 64L << 20;

  private final Heap heap;
  private final long deadlineNanos;
  private final AtomicLong checksumErrors = new AtomicLong();
  private final AtomicLong ops = new AtomicLong();
  private final AtomicLong seeds = new AtomicLong(1);
  private final AtomicReference<Throwable> unexpected = new AtomicReference<>();
  /** Blocks handed from one worker to another (and left by exiting workers). */
  private final ConcurrentLinkedQueue<Block> handoff = new ConcurrentLinkedQueue<>();
  private final AtomicInteger handoffSize = new AtomicInteger();
  private volatile boolean stop;

  private Soak(Heap heap, long seconds) {
    this.heap = heap;
    this.deadlineNanos = System.nanoTime() + seconds * 1_000_000_000L;
  }

  /** A live block: a buffer, or a raw address read and written as FFM/Unsafe users do. */
  static final class Block {
    final ByteBuffer buffer; // null for address blocks
    final long address;
    final int size;
    final long seed;
    final TestSupport.Bytes bytes;

    Block(ByteBuffer buffer, long address, int size, long seed) {
      this.buffer = buffer;
      this.address = address;
      this.size = size;
      this.seed = seed;
      this.bytes = buffer != null ? TestSupport.Bytes.of(buffer) : TestSupport.Bytes.at(address);
    }
  }

  /** Fills a block: every byte of small blocks, a stride of larger ones (RSS stays honest). */
  static void fill(TestSupport.Bytes b, int n, long seed) {
    int step = n <= 4096 ? 1 : 509;
    for (int i = 0; i < n; i += step) {
      b.put(i, TestSupport.patternByte(seed, i));
    }
    if (n > 0) {
      b.put(n - 1, TestSupport.patternByte(seed, n - 1));
    }
  }

  /** Checks the first n bytes of a block of size bytes filled by fill; false on a mismatch. */
  static boolean check(TestSupport.Bytes b, int size, long seed, int n) {
    int step = size <= 4096 ? 1 : 509;
    for (int i = 0; i < n; i += step) {
      if (b.get(i) != TestSupport.patternByte(seed, i)) {
        return false;
      }
    }
    return n == size && n > 0 ? b.get(n - 1) == TestSupport.patternByte(seed, n - 1) : true;
  }

  private void verify(Block k, String when) {
    if (!check(k.bytes, k.size, k.seed, k.size)) {
      long n = checksumErrors.incrementAndGet();
      if (n <= 20) {
        System.err.printf("CHECKSUM ERROR %s: %d-byte %s block, seed %d%n", when, k.size,
            k.buffer == null ? "address" : "buffer", k.seed);
      }
    }
  }

  private Block newBlock(SplittableRandom rnd) {
    int size = size(rnd);
    long seed = seeds.getAndIncrement();
    Block k;
    switch (rnd.nextInt(8)) {
      case 0 -> k = new Block(heap.allocateZeroed(size), 0, size, seed);
      case 1 -> k = new Block(heap.allocateAligned(size, 1 << (4 + rnd.nextInt(9))), 0, size, seed);
      case 2 -> k = new Block(null, heap.allocateAddress(size), size, seed);
      default -> k = new Block(heap.allocate(size), 0, size, seed);
    }
    fill(k.bytes, size, seed);
    return k;
  }

  private static int size(SplittableRandom rnd) {
    int r = rnd.nextInt(1000);
    if (r < 800) {
      return rnd.nextInt(1, 1024);
    } else if (r < 990) {
      return rnd.nextInt(1024, 65536);
    }
    return rnd.nextInt(65536, 4 << 20);
  }

  private void free(Block k, String when) {
    verify(k, when);
    if (k.buffer == null) {
      heap.freeAddress(k.address);
    } else {
      heap.free(k.buffer);
    }
  }

  private Block reallocate(Block k, SplittableRandom rnd) {
    verify(k, "before reallocate");
    int size = size(rnd);
    Block moved = k.buffer == null
        ? new Block(null, heap.reallocateAddress(k.address, size), size, k.seed)
        : new Block(heap.reallocate(k.buffer, size), 0, size, k.seed);
    // The bytes kept, min(old, new), were checked with the old block's stride.
    int kept = Math.min(size, k.size);
    int step = k.size <= 4096 ? 1 : 509;
    for (int i = 0; i < kept; i += step) {
      if (moved.bytes.get(i) != TestSupport.patternByte(k.seed, i)) {
        checksumErrors.incrementAndGet();
        System.err.printf("CHECKSUM ERROR after reallocate %d -> %d bytes at %d%n", k.size, size,
            i);
        break;
      }
    }
    Block refilled = new Block(moved.buffer, moved.address, size, seeds.getAndIncrement());
    fill(refilled.bytes, size, refilled.seed);
    return refilled;
  }

  /** One worker; returns when told to stop or (churn) after its lifetime of steps. */
  private void work(long seed, long steps) {
    SplittableRandom rnd = new SplittableRandom(seed);
    List<Block> live = new ArrayList<>();
    try {
      for (long s = 0; s < steps && !stop && !Thread.currentThread().isInterrupted(); s++) {
        int r = rnd.nextInt(100);
        if (r < 40 && live.size() < MAX_LIVE_PER_WORKER) {
          live.add(newBlock(rnd));
        } else if (r < 75 && !live.isEmpty()) {
          free(live.remove(rnd.nextInt(live.size())), "before free");
        } else if (r < 85 && !live.isEmpty()) {
          int i = rnd.nextInt(live.size());
          live.set(i, reallocate(live.get(i), rnd));
        } else if (r < 90) {
          if (!live.isEmpty() && handoffSize.get() < MAX_HANDOFF) {
            Block b = live.remove(rnd.nextInt(live.size()));
            verify(b, "before hand-off");
            handoffSize.incrementAndGet();
            handoff.add(b);
          }
        } else if (r < 95) {
          Block b = handoff.poll();
          if (b != null) {
            handoffSize.decrementAndGet();
            verify(b, "received from another thread");
            if (live.size() < MAX_LIVE_PER_WORKER) {
              live.add(b);
            } else {
              free(b, "received from another thread"); // a remote free
            }
          }
        } else if (r < 96) {
          heap.trim();
        } else if (live.size() >= MAX_LIVE_PER_WORKER) {
          free(live.remove(0), "before free");
        }
        ops.incrementAndGet();
      }
    } catch (Throwable t) {
      unexpected.compareAndSet(null, t);
    } finally {
      handoffSize.addAndGet(live.size());
      handoff.addAll(live); // an exiting thread leaves its blocks to the others
    }
  }

  private void burst(SplittableRandom rnd) {
    List<Block> held = new ArrayList<>();
    for (long n = 0; n < BURST; ) {
      int size = rnd.nextInt(16, 256 * 1024);
      Block k = new Block(heap.allocate(size), 0, size, seeds.getAndIncrement());
      fill(k.bytes, size, k.seed);
      held.add(k);
      n += size;
    }
    for (Block k : held) {
      free(k, "in a burst");
    }
  }

  private int run(Path csv) throws Exception {
    AtomicReferenceArray<Thread> workers = new AtomicReferenceArray<>(WORKERS);
    AtomicLong generation = new AtomicLong();
    for (int w = 0; w < WORKERS; w++) {
      workers.set(w, startWorker(w, generation.incrementAndGet()));
    }
    List<long[]> samples = new ArrayList<>();
    long start = System.nanoTime();
    SplittableRandom rnd = new SplittableRandom(42);
    try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(csv))) {
      out.println("seconds,rss_bytes,committed_bytes,live_bytes,live_blocks,ops,checksum_errors");
      for (int second = 0; System.nanoTime() < deadlineNanos; second++) {
        Thread.sleep(1000);
        if (second % 10 == 9) {
          burst(rnd);
        }
        if (second % 2 == 1) { // churn: a worker retires, a fresh thread takes its place
          int w = rnd.nextInt(WORKERS);
          Thread old = workers.get(w);
          old.interrupt();
          workers.set(w, startWorker(w, generation.incrementAndGet()));
        }
        HeapStats s = heap.stats();
        long rss = TestSupport.rss();
        long t = (System.nanoTime() - start) / 1_000_000_000L;
        samples.add(new long[] {t, rss});
        out.printf("%d,%d,%d,%d,%d,%d,%d%n", t, rss, s.committedBytes(), s.liveBytes(),
            s.liveBlocks(), ops.get(), checksumErrors.get());
        out.flush();
        if (unexpected.get() != null) {
          break;
        }
      }
    }
    stop = true;
    for (int w = 0; w < WORKERS; w++) {
      workers.get(w).join();
    }
    for (Thread t : retired) {
      t.join();
    }
    for (Block b; (b = handoff.poll()) != null; ) {
      free(b, "at the end");
    }
    HeapStats end = heap.stats();
    heap.close();

    boolean ok = true;
    if (unexpected.get() != null) {
      System.err.println("FAIL: unexpected exception");
      unexpected.get().printStackTrace();
      ok = false;
    }
    if (checksumErrors.get() != 0) {
      System.err.println("FAIL: " + checksumErrors.get() + " checksum errors");
      ok = false;
    }
    if (end.liveBlocks() != 0 || end.liveBytes() != 0) {
      System.err.println("FAIL: live after freeing everything: " + end);
      ok = false;
    }
    int third = samples.size() / 3;
    if (third < 2) {
      System.err.println("FAIL: too few samples (" + samples.size() + ") to judge RSS");
      ok = false;
    } else {
      long firstMax = 0, lastMax = 0;
      for (int i = 0; i < third; i++) {
        firstMax = Math.max(firstMax, samples.get(i)[1]);
      }
      for (int i = samples.size() - third; i < samples.size(); i++) {
        lastMax = Math.max(lastMax, samples.get(i)[1]);
      }
      long margin = Math.max(64L << 20, firstMax / 4);
      System.out.printf("RSS: first third max %d MiB, last third max %d MiB (margin %d MiB)%n",
          firstMax >> 20, lastMax >> 20, margin >> 20);
      if (lastMax > firstMax + margin) {
        System.err.println("FAIL: RSS grew without bound");
        ok = false;
      }
    }
    System.out.printf("soak: %d ops, %d checksum errors, %d samples, %s%n", ops.get(),
        checksumErrors.get(), samples.size(), ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
  }

  private final List<Thread> retired = new ArrayList<>();

  private Thread startWorker(int slot, long generation) {
    Thread t = new Thread(() -> {
      // A worker lives until interrupted by the churn (or the end), then leaves its blocks.
      work(generation * 1_000_003L + slot, Long.MAX_VALUE);
    }, "soak-worker-" + slot + "-" + generation);
    t.setDaemon(true);
    synchronized (retired) {
      retired.add(t);
    }
    t.start();
    return t;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: Soak <seconds> <csv file>");
      System.exit(2);
    }
    long seconds = Long.parseLong(args[0]);
    System.out.println("soak: " + seconds + " s, " + WORKERS + " workers, raw memory through "
        + RawMemory.get().via);
    Path csv = Path.of(args[1]);
    Heap heap = Heap.builder().name("soak").build();
    System.exit(new Soak(heap, seconds).run(csv));
  }
}
