// SPDX-License-Identifier: Apache-2.0
/*
 * A design model, not segfit's code: what a round trip would cost if the blocks of a thread's
 * current slabs were managed in Java (docs/hot-path.md, "Next: slabs lent to Java"). The core
 * would lend a whole slab to one thread's cache; every per-block fact the checked free needs
 * (start, class, state) then lives in Java arrays, so that the fast path reads no native memory
 * and makes no native call. The model keeps every step such a path must take:
 *   - the thread's cache found by thread identity in a small table (no ThreadLocal);
 *   - the handshake that trim, close and the limit's reclaim would use (an opaque store of busy,
 *     an opaque load of a request word, a release store on leaving);
 *   - the class from a table; a pop from the slab's stack of free indices; the state byte;
 *     the counters that statistics would add up;
 *   - on free of an address, the slab found through an open-addressing table keyed by the
 *     address's 64 KiB granule, the index by a reciprocal multiplication, checked exact, and
 *     the state checked LIVE; on free of a buffer, its address's low 30 bits (alignmentOffset,
 *     pure Java) and the identity of the buffer object the slab made for that block.
 * What it leaves out (the cost of rare paths): refill and return of slabs, remote frees,
 * registration of threads. Memory: one 64 MiB LWJGL allocation carved into 64 KiB slabs.
 * Run beside the real paths:
 *   java -jar benchmarks/target/benchmarks.jar 'JavaSlabModel|RoundTripAddress\.(segfit|lwjglRpmalloc)|RoundTripBuffer\.(segfit|lwjglJemalloc)' -p size=64
 */
package io.segfit.bench;

import static io.segfit.bench.Unsafes.UNSAFE;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import org.lwjgl.system.MemoryUtil;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class JavaSlabModel {
  @Param({"64", "1024"})
  public int size;

  static final int GRANULE_SHIFT = 16;
  static final int SLAB = 1 << GRANULE_SHIFT;
  static final int RECIP_SHIFT = 42;
  static final byte FREE = 0;
  static final byte LIVE = 1;
  static final int CLASSES = 65;
  /** Class by (size + 15) / 16 up to 1 KiB: 16-byte classes, as a model. */
  static final byte[] CLASS_BY_16 = new byte[CLASSES];

  static {
    for (int i = 0; i < CLASSES; i++) CLASS_BY_16[i] = (byte) Math.max(i, 1);
  }

  static final VarHandle BUSY;
  static final VarHandle REQ;

  static {
    try {
      BUSY = MethodHandles.lookup().findVarHandle(Cache.class, "busy", int.class);
      REQ = MethodHandles.lookup().findVarHandle(Cache.class, "req", int.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  static final class Slab {
    final long start;
    final int bsize;
    final long recip;
    final int capacity;
    final int[] free;
    int nfree;
    final byte[] state;
    final ByteBuffer[] buffers;
    int used;
    final Cache owner;

    Slab(Cache owner, long start, int bsize) {
      this.owner = owner;
      this.start = start;
      this.bsize = bsize;
      this.recip = ((1L << RECIP_SHIFT) + bsize - 1) / bsize;
      this.capacity = SLAB / bsize;
      this.free = new int[capacity];
      for (int i = 0; i < capacity; i++) free[i] = capacity - 1 - i;
      this.nfree = capacity;
      this.state = new byte[capacity];
      this.buffers = new ByteBuffer[capacity];
    }
  }

  static final class Cache {
    final Thread owner;
    final Slab[] cur = new Slab[CLASSES];
    final long[] allocs = new long[CLASSES];
    final long[] frees = new long[CLASSES];
    int busy;
    int req;

    Cache(Thread owner) {
      this.owner = owner;
    }
  }

  /** The heap's side: caches by thread id, slabs by granule. */
  static final class Model {
    final Cache[] byThread = new Cache[256];
    final long[] keys = new long[4096];
    final Slab[] slabs = new Slab[4096];
    volatile boolean closed;
    final long regionBase;
    final ByteBuffer region;

    Model(long base, ByteBuffer region) {
      this.regionBase = base;
      this.region = region;
    }

    /** The last thread's cache: one load beside the thread's identity, no table. */
    Cache last;

    Cache cache() {
      Thread t = Thread.currentThread();
      Cache c = last;
      if (c != null && c.owner == t) return c;
      c = byThread[(int) t.getId() & (byThread.length - 1)];
      if (c != null && c.owner == t) return c;
      throw new IllegalStateException("the model has no registration path");
    }

    void put(long granule, Slab s) {
      int i = slot(granule);
      while (keys[i] != 0) i = (i + 1) & (keys.length - 1);
      keys[i] = granule;
      slabs[i] = s;
    }

    static int slot(long granule) {
      return (int) ((granule * 0x9E3779B97F4A7C15L) >>> 52);
    }

    Slab slabOf(long address) {
      long g = address >>> GRANULE_SHIFT;
      int i = slot(g);
      long k;
      while ((k = keys[i]) != g) {
        if (k == 0) return null;
        i = (i + 1) & (keys.length - 1);
      }
      return slabs[i];
    }

    long allocateAddress(long size) {
      Slab s = pop(size);
      return s.start + (long) s.free[s.nfree] * s.bsize;
    }

    /** Pops a block of the class of size: its slab, the block's index at free[nfree]. */
    private Slab pop(long size) {
      if (closed) throw new IllegalStateException("closed");
      Cache c = cache();
      BUSY.setOpaque(c, 1);
      if ((int) REQ.getOpaque(c) != 0 || size > 1024 || size < 0) throw new IllegalStateException();
      int cls = CLASS_BY_16[(int) (size + 15) >>> 4];
      Slab s = c.cur[cls];
      int n = s.nfree - 1;
      if (n < 0) throw new IllegalStateException("the model has no refill path");
      int i = s.free[n];
      s.nfree = n;
      s.state[i] = LIVE;
      s.used++;
      c.allocs[cls]++;
      BUSY.setRelease(c, 0);
      return s;
    }

    void freeAddress(long address) {
      if (closed) throw new IllegalStateException("closed");
      Cache c = cache();
      BUSY.setOpaque(c, 1);
      if ((int) REQ.getOpaque(c) != 0) throw new IllegalStateException();
      Slab s = slabOf(address);
      if (s == null || s.owner != c) throw new IllegalArgumentException("not a block");
      long off = address - s.start;
      int i = (int) ((off * s.recip) >>> RECIP_SHIFT);
      if ((long) i * s.bsize != off || i >= s.capacity || s.state[i] != LIVE)
        throw new IllegalArgumentException("not a live block");
      release(c, s, i);
    }

    private static void release(Cache c, Slab s, int i) {
      s.state[i] = FREE;
      s.free[s.nfree++] = i;
      s.used--;
      c.frees[s.bsize >>> 4]++;
      BUSY.setRelease(c, 0);
    }

    ByteBuffer allocate(int size) {
      Slab s = pop(size);
      int i = s.free[s.nfree];
      long a = s.start + (long) i * s.bsize;
      ByteBuffer b = s.buffers[i];
      if (b == null || b.capacity() != size) {
        b = region.slice((int) (a - regionBase), size).order(ByteOrder.nativeOrder());
        s.buffers[i] = b;
        return b;
      }
      b.clear();
      return b.order(ByteOrder.nativeOrder());
    }

    void free(ByteBuffer b) {
      if (closed) throw new IllegalStateException("closed");
      Cache c = cache();
      BUSY.setOpaque(c, 1);
      if ((int) REQ.getOpaque(c) != 0) throw new IllegalStateException();
      // One region in the model: the low 30 bits name the block within it.
      long a = regionBase + b.alignmentOffset(0, 1 << 30) - (regionBase & ((1 << 30) - 1));
      Slab s = slabOf(a);
      if (s == null || s.owner != c) throw new IllegalArgumentException("not a block");
      long off = a - s.start;
      int i = (int) ((off * s.recip) >>> RECIP_SHIFT);
      if (i >= s.capacity || s.buffers[i] != b || s.state[i] != LIVE)
        throw new IllegalArgumentException("not a live block");
      release(c, s, i);
    }
  }

  private long memory;
  private Model model;

  @Setup(Level.Trial)
  public void setup() {
    long bytes = 64L << 20;
    memory = MemoryUtil.nmemAlignedAlloc(1 << 30, bytes);
    model = new Model(memory, MemoryUtil.memByteBuffer(memory, (int) bytes));
    Cache c = new Cache(Thread.currentThread());
    model.byThread[(int) Thread.currentThread().getId() & 255] = c;
    model.last = c;
    long next = memory;
    for (int cls = 1; cls < CLASSES; cls++) {
      Slab s = new Slab(c, next, cls * 16);
      c.cur[cls] = s;
      for (long g = next >>> GRANULE_SHIFT; g < (next + SLAB) >>> GRANULE_SHIFT; g++) model.put(g, s);
      next += SLAB;
    }
    // Other granules of the table, as a heap with many slabs would have.
    for (int k = 0; k < 1500; k++) {
      long g = (next >>> GRANULE_SHIFT) + 1 + k;
      model.put(g, new Slab(c, g << GRANULE_SHIFT, 4096));
    }
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    MemoryUtil.nmemAlignedFree(memory);
  }

  @Benchmark
  public long address() {
    long a = model.allocateAddress(size);
    UNSAFE.putByte(a, (byte) 1);
    model.freeAddress(a);
    return a;
  }

  @Benchmark
  public ByteBuffer buffer() {
    ByteBuffer b = model.allocate(size);
    b.put(0, (byte) 1);
    model.free(b);
    return b;
  }
}
