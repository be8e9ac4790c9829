// SPDX-License-Identifier: Apache-2.0
/*
 * A heap's thread cache: per thread, one magazine per size class up to 16 KiB, a stack of free
 * blocks in Java arrays, so that most allocate and free calls make no native call.
 * native/src/cache.c owns the core's side and states the invariants of an entry (a block of the
 * heap in state FREE, on no free list, counted as used by its slab); docs/hot-path.md tells how
 * a block travels and why every misuse is still caught.
 *
 * Allocate pops an entry and flips its state byte to LIVE. Free checks the block exactly as the
 * core's checked free does (segment of this heap, block start, state LIVE), through Meta, one
 * direct buffer over the core's shared metadata area (made once with NewDirectByteBuffer; the
 * area is never unmapped), then flips the byte to FREE - a plain store in a slab the thread's
 * native record owns, else a compare-and-set of the aligned 32-bit word that holds it, so that
 * of two racing frees one wins - and pushes the block. Anything unexpected (not a block of this
 * heap, not live, a size of another class, no magazine for this thread) returns "not taken"
 * with nothing changed, and the caller makes the native call, which finds the precise error.
 * No Unsafe, no --add-opens.
 *
 * A magazine belongs to its thread. Trim and close reach other threads' magazines with the
 * core's asymmetric handshake (thread.c), on Java fields: the owner stores busy, then loads
 * req and stopped (opaque accesses, which HotSpot brackets with compiler barriers that no
 * memory access crosses; without membarrier the owner also fences); the other side stores its
 * flag, issues segfit_cache_barrier() (membarrier: a full barrier on every running thread) and
 * then loads busy. Either the owner sees the flag and takes the native path, or the other side
 * sees the owner busy: close waits for it, trim leaves that magazine alone. Close stops every
 * magazine before the core destroys the heap, so no Java write reaches metadata given back.
 * Magazines of threads that died are emptied when the next thread registers, and by trim and
 * stats. Counts of what the magazines hand out and take back are added to the core's
 * statistics by stats().
 */
package io.segfit.internal;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

public final class ThreadCache {
  private static final VarHandle BUSY;
  private static final VarHandle REQ;
  private static final VarHandle STOPPED;

  /** Whether thread caches may run in this JVM (Meta views the area). */
  private static final boolean ON;
  private static final long BASE;
  private static final long SIZE;
  private static final boolean USE_FENCE;
  private static final int MAP;
  private static final int SEGMENT_SHIFT, VA_BITS, RECIP_SHIFT;
  private static final long SEGMENT_MASK;
  private static final int SEG_HEAP_KEY, SEG_SLAB_SHIFT, SEG_SLABS;
  private static final int SLAB_SIZE, SLAB_CLS, SLAB_STATE, SLAB_OWNER_TLD;
  private static final byte LIVE, FREE;
  private static final int CLASSES;
  /** Words per entry (SEGFIT_CACHE_ENTRY_WORDS): block, state byte, segment, slab | class. */
  private static final int W;
  /** Entries of the memo of blocks handed out (a power of two). */
  private static final int MEMO = 64;
  /** Largest size with a magazine. */
  private static final long MAX_CACHED;
  /** Entries a magazine has room for, in every class (the largest per-class capacity). */
  private static final int ROOM;
  /** Class of sizes up to MAX_CACHED by (size + 15) / 16: class boundaries there are
      multiples of 16. Derived from the core's class sizes. */
  private static final byte[] CLASS_BY_16;
  private static final long[] CLASS_SIZE, CLASS_RECIP, CLASS_CAPACITY, CLASS_SLAB_MASK;
  private static final int[] CAPACITY;
  /** Null on JDK 17-20 (no virtual threads). */
  private static final MethodHandle IS_VIRTUAL;

  static {
    try {
      MethodHandles.Lookup lookup = MethodHandles.lookup();
      BUSY = lookup.findVarHandle(Magazine.class, "busy", int.class);
      REQ = lookup.findVarHandle(Magazine.class, "req", int.class);
      STOPPED = lookup.findVarHandle(ThreadCache.class, "stopped", int.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
    NativeLibrary.ensureLoaded();
    long[] l = new long[NativeHeap.LAYOUT_HEADER
        + NativeHeap.maxClasses() * NativeHeap.LAYOUT_CLASS_FIELDS];
    boolean ok = wanted() && NativeHeap.cacheLayout(l) == 0;
    long base = l[NativeHeap.LAYOUT_SHARED_BASE];
    long size = l[NativeHeap.LAYOUT_SHARED_SIZE];
    long map = l[NativeHeap.LAYOUT_SEGMENT_MAP] - base;
    // The word-wide compare-and-set assumes little-endian bytes in a word.
    ok &= base != 0 && size > 0 && size <= Integer.MAX_VALUE && map >= 0 && map < size
        && ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;
    BASE = base;
    SIZE = ok ? size : 0;
    ON = ok;
    USE_FENCE = l[NativeHeap.LAYOUT_USE_FENCE] != 0;
    MAP = (int) map;
    SEGMENT_SHIFT = (int) l[NativeHeap.LAYOUT_SEGMENT_SHIFT];
    SEGMENT_MASK = (1L << SEGMENT_SHIFT) - 1;
    VA_BITS = (int) l[NativeHeap.LAYOUT_VA_BITS];
    RECIP_SHIFT = (int) l[NativeHeap.LAYOUT_RECIP_SHIFT];
    SEG_HEAP_KEY = (int) l[NativeHeap.LAYOUT_SEGMENT_HEAP_KEY];
    SEG_SLAB_SHIFT = (int) l[NativeHeap.LAYOUT_SEGMENT_SLAB_SHIFT];
    SEG_SLABS = (int) l[NativeHeap.LAYOUT_SEGMENT_SLABS];
    SLAB_SIZE = (int) l[NativeHeap.LAYOUT_SLAB_SIZE];
    SLAB_CLS = (int) l[NativeHeap.LAYOUT_SLAB_CLS];
    SLAB_STATE = (int) l[NativeHeap.LAYOUT_SLAB_STATE];
    SLAB_OWNER_TLD = (int) l[NativeHeap.LAYOUT_SLAB_OWNER_TLD];
    LIVE = (byte) l[NativeHeap.LAYOUT_BLOCK_LIVE];
    FREE = (byte) l[NativeHeap.LAYOUT_BLOCK_FREE];
    CLASSES = ok ? (int) l[NativeHeap.LAYOUT_MAG_CLASSES] : 0;
    W = (int) l[NativeHeap.LAYOUT_ENTRY_WORDS];
    int classes = ok ? (int) l[NativeHeap.LAYOUT_CLASS_COUNT] : 0;
    CLASS_SIZE = new long[classes];
    CLASS_RECIP = new long[classes];
    CLASS_CAPACITY = new long[classes];
    CLASS_SLAB_MASK = new long[classes];
    CAPACITY = new int[classes];
    int room = 0;
    for (int c = 0; c < classes; c++) {
      int k = NativeHeap.LAYOUT_HEADER + c * NativeHeap.LAYOUT_CLASS_FIELDS;
      CLASS_SIZE[c] = l[k + NativeHeap.LAYOUT_CLASS_SIZE];
      CLASS_RECIP[c] = l[k + NativeHeap.LAYOUT_CLASS_RECIP];
      CLASS_CAPACITY[c] = l[k + NativeHeap.LAYOUT_CLASS_CAPACITY];
      CLASS_SLAB_MASK[c] = l[k + NativeHeap.LAYOUT_CLASS_SLAB_MASK];
      CAPACITY[c] = (int) l[k + NativeHeap.LAYOUT_CLASS_MAG_CAP];
      room = Math.max(room, CAPACITY[c]);
    }
    ROOM = room;
    MAX_CACHED = CLASSES > 0 ? CLASS_SIZE[CLASSES - 1] : 0;
    CLASS_BY_16 = new byte[CLASSES > 0 ? (int) (MAX_CACHED / 16) + 1 : 0];
    for (int i = 0, c = 0; i < CLASS_BY_16.length; i++) {
      while (CLASS_SIZE[c] < 16L * i) c++;
      CLASS_BY_16[i] = (byte) c;
    }
    MethodHandle isVirtual = null;
    try {
      isVirtual = MethodHandles.publicLookup().findVirtual(Thread.class, "isVirtual",
          MethodType.methodType(boolean.class));
    } catch (NoSuchMethodException | IllegalAccessException e) {
      // JDK 17-20: every thread is a platform thread
    }
    IS_VIRTUAL = isVirtual;
  }

  /** The shared metadata area's address and size (Meta views it). */
  static long base() {
    return BASE;
  }

  static long size() {
    return SIZE;
  }

  private static boolean wanted() {
    try {
      return Option.THREAD_CACHE.booleanValue();
    } catch (IllegalArgumentException e) {
      // A tuning switch: a bad value keeps every call native, and says so.
      System.getLogger("io.segfit").log(System.Logger.Level.WARNING,
          e.getMessage() + "; the thread cache is off");
      return false;
    }
  }

  /** One thread's magazines of one heap. Arrays and counters: the owner's, or (req set and the
      owner not busy) trim's; read racily by stats. */
  private static final class Magazine {
    final Thread owner;
    /** The owner's native record: a slab it owns takes the plain store. */
    final long tld;
    /** Entries of class c from W ROOM c: block, its state byte, its segment, slab | class. */
    final long[] entries = new long[W * ROOM * CLASSES];
    /** The entries of blocks handed out lately, direct-mapped by address (memoSlot): a free
        of one of them checks its block with independent loads instead of a chain of them. */
    final long[] memo = new long[W * MEMO];
    final int[] count = new int[CLASSES];
    final long[] allocs = new long[CLASSES];
    final long[] frees = new long[CLASSES];
    final long[] remoteFrees = new long[CLASSES];
    int busy;
    int req;

    Magazine(Thread owner, long tld) {
      this.owner = owner;
      this.tld = tld;
    }
  }

  private final long heap;
  private final Magazine[] byThread = new Magazine[256];
  /** Every magazine of live threads; the lock also serialises trim, close and sweeping. */
  private final List<Magazine> all = new ArrayList<>();
  /** Counts of magazines whose thread died (guarded by all). */
  private final long[] gone = new long[3 * CLASSES];
  private int stopped;

  private ThreadCache(long heap) {
    this.heap = heap;
  }

  /**
   * The thread cache of a heap, or null when its calls must all be native: thread caches off
   * (segfit.threadCache, or the platform), a heap whose handle or metadata lie outside the
   * shared area, a debug heap (every block is checked by the core), a purge delay of 0 (a
   * magazine would keep slabs from going back at once).
   */
  public static ThreadCache of(long heap, boolean debug, long purgeDelayMs) {
    if (!ON || debug || purgeDelayMs == 0) return null;
    return new ThreadCache(heap);
  }

  // -----------------------------------------------------------------------------------------
  // The fast paths
  // -----------------------------------------------------------------------------------------

  /**
   * A block of size bytes from the calling thread's magazine, or 0 when the native path must
   * allocate (too large, no magazine, refill failed: the native call then finds the error).
   */
  public long allocate(long size) {
    if (size < 0 || size > MAX_CACHED) return 0;
    Magazine m = magazine();
    if (m == null || !enter(m)) return 0;
    int cls = CLASS_BY_16[(int) (size + 15) >>> 4];
    int n = m.count[cls];
    if (n == 0 && (n = refill(m, cls)) <= 0) {
      leave(m);
      return 0;
    }
    int e = W * (ROOM * cls + n - 1);
    long block = m.entries[e];
    Meta.put((int) (m.entries[e + 1] - BASE), LIVE);
    System.arraycopy(m.entries, e, m.memo, W * memoSlot(block), W);
    m.count[cls] = n - 1;
    m.allocs[cls]++;
    leave(m);
    return block;
  }

  /**
   * Frees the block at address into the calling thread's magazine: true when done, false when
   * the native path must free it (nothing was changed). size: what the caller knows of the
   * block's size (a buffer's capacity), which must fall in the block's class; -1 if unknown.
   */
  public boolean free(long address, long size) {
    if (address <= 0 || (address >>> VA_BITS) != 0 || size > MAX_CACHED) return false;
    Magazine m = magazine();
    if (m == null || !enter(m)) return false;
    boolean done = push(m, address, size);
    leave(m);
    return done;
  }

  private boolean push(Magazine m, long address, long size) {
    int memo = W * memoSlot(address);
    long state;
    long seg;
    long slabWord;
    if (m.memo[memo] == address && remembered(m, memo, address)) {
      m.memo[memo] = 0;
      state = m.memo[memo + 1];
      seg = m.memo[memo + 2];
      slabWord = m.memo[memo + 3];
    } else {
      // The core's check (_sf_block_check): segment of this heap, block start.
      seg = Meta.getLong(MAP + (int) ((address >>> SEGMENT_SHIFT) << 3));
      long so = seg - BASE;
      if (so < 0 || so >= SIZE || Meta.getLong((int) so + SEG_HEAP_KEY) != heap) return false;
      int shift = Meta.getInt((int) so + SEG_SLAB_SHIFT);
      int slab = (int) so + SEG_SLABS + (int) ((address & SEGMENT_MASK) >>> shift) * SLAB_SIZE;
      int cls = Meta.get(slab + SLAB_CLS) & 0xff;
      if (cls >= CLASSES) return false;
      long offset = address & CLASS_SLAB_MASK[cls];
      long index = (offset * CLASS_RECIP[cls]) >>> RECIP_SHIFT;
      if (index * CLASS_SIZE[cls] != offset || index >= CLASS_CAPACITY[cls]) return false;
      state = Meta.getLong(slab + SLAB_STATE) + index;
      if (state - BASE < 0 || state - BASE >= SIZE) return false;
      slabWord = (BASE + slab) | cls;
    }
    int cls = (int) (slabWord & 63);
    int slab = (int) ((slabWord & ~63L) - BASE);
    if (size >= 0 && CLASS_BY_16[(int) (size + 15) >>> 4] != cls) return false;
    int at = (int) (state - BASE);
    int n = m.count[cls];
    if (n == CAPACITY[cls] && (n = drain(m, cls)) < 0) return false;
    if (Meta.getLong(slab + SLAB_OWNER_TLD) == m.tld) {
      if (Meta.get(at) != LIVE) return false;
      Meta.put(at, FREE);
    } else {
      if (!claim(at)) return false;
      m.remoteFrees[cls]++;
    }
    int e = W * (ROOM * cls + n);
    m.entries[e] = address;
    m.entries[e + 1] = state;
    m.entries[e + 2] = seg;
    m.entries[e + 3] = slabWord;
    m.count[cls] = n + 1;
    m.frees[cls]++;
    return true;
  }

  /**
   * Whether the memo's entry for address still describes its block: the segment map still
   * points at the same metadata (whose kind, hence slab layout, is fixed for its life), of this
   * heap, and the slab still has the class (hence the block index) it had. Independent loads.
   */
  private boolean remembered(Magazine m, int memo, long address) {
    long seg = m.memo[memo + 2];
    long slabWord = m.memo[memo + 3];
    return Meta.getLong(MAP + (int) ((address >>> SEGMENT_SHIFT) << 3)) == seg
        && Meta.getLong((int) (seg - BASE) + SEG_HEAP_KEY) == heap
        && (Meta.get((int) ((slabWord & ~63L) - BASE) + SLAB_CLS) & 0xff) == (slabWord & 63);
  }

  private static int memoSlot(long address) {
    return (int) ((address * 0x9E3779B97F4A7C15L) >>> (64 - Integer.numberOfTrailingZeros(MEMO)));
  }

  /** LIVE -> FREE in a slab of another thread: a CAS of the aligned word holding the byte. */
  private static boolean claim(int at) {
    int word = at & ~3;
    int shift = (at & 3) << 3;
    for (;;) {
      int w = Meta.getIntVolatile(word);
      if ((byte) (w >>> shift) != LIVE) return false;
      int updated = (w & ~(0xff << shift)) | ((FREE & 0xff) << shift);
      if (Meta.compareAndSetInt(word, w, updated)) return true;
    }
  }

  /** Fills the empty magazine of cls from the core (inside the handshake): the entries. */
  private int refill(Magazine m, int cls) {
    int base = W * ROOM * cls;
    int got = NativeHeap.cacheRefill(heap, cls, m.entries, base, CAPACITY[cls]);
    if (got <= 0) return got;
    for (int i = 0; i < got; i++) {
      // Metadata outside the shared area (it was used up): not for the fast paths.
      for (int w = 1; w < W; w++) {
        long off = m.entries[base + W * i + w] - BASE;
        if (off < 0 || off >= SIZE) {
          NativeHeap.cacheRelease(heap, m.entries, base, got);
          return 0;
        }
      }
    }
    m.count[cls] = got;
    return got;
  }

  /** Gives the older half of a full magazine back to the core: the entries left, or -1. */
  private int drain(Magazine m, int cls) {
    int n = m.count[cls];
    int k = (n + 1) / 2;
    int base = W * ROOM * cls;
    if (NativeHeap.cacheRelease(heap, m.entries, base, k) == Errors.CLOSED) return -1;
    System.arraycopy(m.entries, base + W * k, m.entries, base, W * (n - k));
    m.count[cls] = n - k;
    return n - k;
  }

  // -----------------------------------------------------------------------------------------
  // The handshake
  // -----------------------------------------------------------------------------------------

  private boolean enter(Magazine m) {
    BUSY.setOpaque(m, 1);
    if (USE_FENCE) VarHandle.fullFence();
    if (((int) REQ.getAcquire(m) | (int) STOPPED.getOpaque(this)) == 0) return true;
    BUSY.setRelease(m, 0);
    return false;
  }

  private static void leave(Magazine m) {
    BUSY.setRelease(m, 0);
  }

  // -----------------------------------------------------------------------------------------
  // Magazines of threads
  // -----------------------------------------------------------------------------------------

  private Magazine magazine() {
    Thread t = Thread.currentThread();
    Magazine m = byThread[(int) t.getId() & (byThread.length - 1)];
    if (m != null && m.owner == t) return m;
    return register(t);
  }

  private Magazine register(Thread t) {
    if (isVirtual(t)) return null; // its carrier, hence its native record, changes under it
    synchronized (all) {
      if (stopped != 0) return null;
      Magazine m = null;
      for (Magazine x : all) {
        if (x.owner == t) m = x; // pushed out of byThread by another thread of the same slot
      }
      if (m == null) {
        sweep();
        long tld = NativeHeap.threadRecord();
        if (tld == 0) return null;
        m = new Magazine(t, tld);
        all.add(m);
      }
      byThread[(int) t.getId() & (byThread.length - 1)] = m;
      return m;
    }
  }

  private static boolean isVirtual(Thread t) {
    if (IS_VIRTUAL == null) return false;
    try {
      return (boolean) IS_VIRTUAL.invokeExact(t);
    } catch (Throwable e) {
      return true; // cannot tell: the native path is right for every thread
    }
  }

  /** Empties the magazines of threads that died and folds their counts (guarded by all). */
  private void sweep() {
    for (int i = all.size() - 1; i >= 0; i--) {
      Magazine m = all.get(i);
      if (m.owner.isAlive()) continue; // a dead thread's writes happen-before isAlive() false
      release(m);
      for (int c = 0; c < CLASSES; c++) {
        gone[c] += m.allocs[c];
        gone[CLASSES + c] += m.frees[c];
        gone[2 * CLASSES + c] += m.remoteFrees[c];
      }
      all.remove(i);
      int slot = (int) m.owner.getId() & (byThread.length - 1);
      if (byThread[slot] == m) byThread[slot] = null;
    }
  }

  /** Gives every entry of m back to the core. m is stopped: its owner cannot touch it. */
  private void release(Magazine m) {
    for (int c = 0; c < CLASSES; c++) {
      if (m.count[c] == 0) continue;
      NativeHeap.cacheRelease(heap, m.entries, W * ROOM * c, m.count[c]);
      m.count[c] = 0;
    }
  }

  /**
   * Gives back what every magazine holds (trim): the calling thread's, those of threads that
   * died, and those of live threads not inside a call at this moment.
   */
  public void flush() {
    synchronized (all) {
      if (stopped != 0) return;
      sweep();
      Thread me = Thread.currentThread();
      for (Magazine m : all) {
        if (m.owner != me) REQ.setOpaque(m, 1);
      }
      NativeHeap.cacheBarrier();
      for (Magazine m : all) {
        if (m.owner == me || (int) BUSY.getAcquire(m) == 0) release(m);
        if (m.owner != me) REQ.setRelease(m, 0);
      }
    }
  }

  /**
   * Stops every magazine before the heap is destroyed: later calls take the native path (and
   * find the heap closed), calls inside a magazine now finish first.
   */
  public void stop() {
    synchronized (all) {
      STOPPED.setVolatile(this, 1);
      NativeHeap.cacheBarrier();
      for (Magazine m : all) {
        while ((int) BUSY.getAcquire(m) != 0) Thread.onSpinWait();
      }
    }
  }

  /** Adds what the magazines handed out and took back to a raw statistics array. */
  public void addTo(long[] raw) {
    long[] sums = new long[3 * CLASSES];
    synchronized (all) {
      sweep();
      System.arraycopy(gone, 0, sums, 0, sums.length);
      for (Magazine m : all) {
        for (int c = 0; c < CLASSES; c++) {
          sums[c] += m.allocs[c];
          sums[CLASSES + c] += m.frees[c];
          sums[2 * CLASSES + c] += m.remoteFrees[c];
        }
      }
    }
    for (int c = 0; c < CLASSES; c++) {
      int k = NativeHeap.STAT_HEADER + c * NativeHeap.CLASS_FIELDS;
      long allocs = raw[k + NativeHeap.CLASS_ALLOCS] + sums[c];
      long frees = raw[k + NativeHeap.CLASS_FREES] + sums[CLASSES + c];
      long live = Math.max(0, allocs - frees);
      long liveBefore = raw[k + NativeHeap.CLASS_LIVE_BLOCKS];
      raw[k + NativeHeap.CLASS_ALLOCS] = allocs;
      raw[k + NativeHeap.CLASS_FREES] = frees;
      raw[k + NativeHeap.CLASS_LIVE_BLOCKS] = live;
      raw[k + NativeHeap.CLASS_LIVE_BYTES] = live * CLASS_SIZE[c];
      raw[NativeHeap.STAT_ALLOCS] += sums[c];
      raw[NativeHeap.STAT_FREES] += sums[CLASSES + c];
      raw[NativeHeap.STAT_REMOTE_FREES] += sums[2 * CLASSES + c];
      raw[NativeHeap.STAT_LIVE_BLOCKS] += live - liveBefore;
      raw[NativeHeap.STAT_LIVE_BYTES] += (live - liveBefore) * CLASS_SIZE[c];
    }
  }

  /** Entries the calling thread's magazine of size's class holds (tests), -1 if it has none. */
  public int held(long size) {
    Magazine m = byThread[(int) Thread.currentThread().getId() & (byThread.length - 1)];
    if (m == null || m.owner != Thread.currentThread() || size < 0 || size > MAX_CACHED) {
      return -1;
    }
    return m.count[CLASS_BY_16[(int) (size + 15) >>> 4]];
  }
}
