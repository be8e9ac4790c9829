// SPDX-License-Identifier: Apache-2.0
/*
 * A heap's thread caches: blocks up to SEGFIT_LEND_MAX_BLOCK allocated and freed in
 * Java, with no native call, from slabs the core lends to each platform thread
 * (native/src/lend.c). docs/hot-path.md tells how a block travels and why each misuse is still
 * caught; in short:
 *
 * - A lent slab's blocks are known only here: the core rejects them. So every entry point
 *   that takes a block (free, reallocate, usable size) asks this cache first, by address
 *   (a table of slab slots, direct-mapped over 4 GiB) or, for a buffer whose address
 *   Java cannot read, by the identity of the buffer object the slab made for the block (found
 *   from the address's low 30 bits, which alignmentOffset gives).
 * - Checks are the core's: the address is a block's start (exact division), its state is
 *   LIVE, a buffer's capacity is in the block's class. A free by the owning thread flips the
 *   state with a plain store; any other thread's with a compare-and-set, so of two racing
 *   frees from other threads one loses (as in the core, the owner's plain store does not
 *   catch a double free racing with another thread).
 * - The fast path touches no native memory, so a call racing with close() cannot fault. A
 *   reallocation's copy is the one exception: it runs inside a core call (segfit_copy).
 *   Nor does it read the heap's closed flag: close() empties the tables it reads (threads'
 *   caches, slabs by address), so that a call made after close() finds nothing here and goes
 *   on to Heap's closed check.
 * - A thread's emptied slabs go back to the core beyond a small budget. Its other slabs but
 *   the current one of each class are parked: sweeps (Sweeper's thread, and trim()) return a
 *   parked slab once all its blocks are free, by its owner or by other threads, and its owner
 *   left it alone for the purge delay, busy or idle; trim() also returns the caller's empty
 *   ones, and a dead thread's slabs are all parked. Sweeps take current slabs with no live
 *   block too, from owners that left them alone for the purge delay (trim(): from any owner),
 *   by the handshake of LentSlab.countAllocation.
 *
 * Not used for debug heaps and leak detection (both follow each block in the core or the
 * facade), heaps with a byte limit or a purge delay of 0 (their reclaim and purge reach only
 * the core's slabs), and virtual threads (a cache per virtual thread would hold slabs for
 * threads that may number millions).
 */
package io.segfit.internal;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLongArray;

public final class SlabCache {
  /** Returned by the entry points for a block that is not in a lent slab: ask the core. */
  public static final int NOT_MINE = 1;

  static final VarHandle HINT = MethodHandles.arrayElementVarHandle(byte[].class);
  private static final VarHandle BY_THREAD =
      MethodHandles.arrayElementVarHandle(ThreadCache[].class);
  private static final int MAX = (int) NativeHeap.lendMax();
  private static final long MAX_SIZE = NativeHeap.maxSize();
  private static final int LOW_BITS = NativeHeap.regionShift();
  private static final int LOW_UNIT = 1 << LOW_BITS;
  private static final int UNITS_PER_REGION = 1 << (LOW_BITS - LentSlab.UNIT_SHIFT);
  /** Slots of the address table, by the LentSlab.UNIT units of an address: 2^16 units
      direct-mapped. */
  private static final int SLOTS = 1 << 16;
  private static final int THREAD_SLOTS = 256;
  private static final MethodHandle IS_VIRTUAL = isVirtualHandle();

  private final long handle;
  private final long purgeDelayNanos;
  /** Parked slabs that are empty or that other threads freed into, for sweeps to return once
      all their blocks are free and their owner left them alone for the purge delay. */
  private final ConcurrentLinkedQueue<LentSlab> parkedSlabs = new ConcurrentLinkedQueue<>();
  private volatile boolean closed;
  /** Held while a sweep (the sweeper's or trim's) returns slabs, so that trim() returns only
      once a sweep running meanwhile gave back what it took. Never taken under this. */
  private final Object sweeping = new Object();
  /** Slabs lent so far, so that a sweep that stops sees one lent while it looked. Under this. */
  private volatile long lends;
  /** 1 while the sweeper (Sweeper) has this cache queued: one entry at a time. */
  @SuppressWarnings("unused")
  private volatile int sweepPending;
  private static final VarHandle SWEEP_PENDING;

  static {
    try {
      SWEEP_PENDING = MethodHandles.lookup().findVarHandle(SlabCache.class, "sweepPending",
          int.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
  /** Class of a size by (size + 15) / 16, each class's block size (from the core) and the size
      of its lent slabs. */
  private final byte[] classBy16 = new byte[MAX / 16 + 1];
  private final int[] classSize;
  private final int[] slabSize;
  private final ThreadCache[] byThread = new ThreadCache[THREAD_SLOTS];
  private final ThreadLocal<ThreadCache> local = new ThreadLocal<>();
  /** Lent slabs by address: a slab in the slot of each of its units, or (a slot taken) in
      collided by the unit's address. Written under this, read without a lock: a thread that
      learned of a block learned after its slab's entries were written. */
  private final LentSlab[] bySlot = new LentSlab[SLOTS];
  private final ConcurrentHashMap<Long, LentSlab> collided = new ConcurrentHashMap<>();
  private int collisions;
  /** Lent slabs by the units of the low 30 bits of their address, for buffers (checked by
      identity). */
  private final LentSlab[] byLow = new LentSlab[UNITS_PER_REGION];
  /**
   * Under this: the registered caches, every lent slab (whose counts statistics add up), the
   * counts of slabs given back and the other counters of dead caches.
   */
  private final ArrayList<ThreadCache> caches = new ArrayList<>();
  private final Set<LentSlab> lent = Collections.newSetFromMap(new IdentityHashMap<>());
  private final long[] returnedAllocs;
  private final long[] returnedFrees;
  private final long[] deadRemoteFrees;
  private long deadReallocsInPlace;
  private long deadReallocsMoved;
  /** Frees of lent blocks by threads without a cache (virtual threads). */
  private final AtomicLongArray uncachedFrees;

  /**
   * A cache for the heap, whose size classes are read from its statistics (the core's one
   * table). The caller decides whether the heap may have one (see the class comment).
   * purgeDelayMs: the heap's, negative for the core's default.
   */
  public SlabCache(long handle, long purgeDelayMs) {
    this.handle = handle;
    long delay = purgeDelayMs >= 0 ? purgeDelayMs : NativeHeap.defaultPurgeDelayMs();
    this.purgeDelayNanos = delay * 1_000_000L;
    long[] raw = Stats.array();
    int rc = NativeHeap.stats(handle, raw);
    if (rc != 0) throw new IllegalStateException("segfit: stats of a new heap: " + rc);
    int classes = 0;
    while (classes < raw[Stats.CLASS_COUNT] && blockSize(raw, classes) <= MAX) {
      classes++;
    }
    classSize = new int[classes];
    slabSize = new int[classes];
    for (int c = 0, s = 0; c < classes; c++) {
      classSize[c] = (int) blockSize(raw, c);
      slabSize[c] = (int) NativeHeap.lendSlabSize(classSize[c]);
      for (; s * 16 <= classSize[c] && s < classBy16.length; s++) classBy16[s] = (byte) c;
    }
    returnedAllocs = new long[classes];
    returnedFrees = new long[classes];
    deadRemoteFrees = new long[classes];
    uncachedFrees = new AtomicLongArray(classes);
  }

  private static long blockSize(long[] raw, int cls) {
    return raw[Stats.record(cls) + Stats.CLASS_BLOCK_SIZE];
  }

  // --- allocation ----------------------------------------------------------------------------

  /** A block of size bytes as the slab's buffer for it (reset), or null: take the native path. */
  public ByteBuffer allocate(int size) {
    if (size > MAX || size < 0) return null;
    ThreadCache t = local();
    if (t == null) return null;
    int cls = classBy16[(size + 15) >>> 4];
    LentSlab s = t.cur[cls];
    int top = s.top - 1;
    int mode = s.countAllocation();
    // One branch for both rare cases, so that a compiled loop has one way off it to learn.
    if ((top | -mode) < 0) {
      s.uncount();
      return allocateAgain(t, s, cls, size);
    }
    int i = s.free[top];
    s.top = top;
    ByteBuffer b = s.handOut(i, size);
    if (b != null && b.capacity() == size) {   // the buffer's line is written next anyway
      b.clear();
      return b.order(Regions.ORDER);
    }
    return s.setBuffer(i, size, Regions.view(s.address(i), size));
  }

  /** A block of size bytes, or 0: take the native path. */
  public long allocateAddress(long size) {
    if (size > MAX || size < 0) return 0;
    ThreadCache t = local();
    if (t == null) return 0;
    int cls = classBy16[((int) size + 15) >>> 4];
    LentSlab s = t.cur[cls];
    // Read before the handshake (countAllocation), which the JIT moves no access across (1 ns
    // of the round trip's 7 on JDK 25, docs/hot-path.md); used only if the slab is still the
    // owner's after it.
    long a = t.lastFreed;
    int held = t.lastFreedClass;
    int heldIndex = t.lastFreedIndex;
    int top = s.top - 1;
    int mode = s.countAllocation();
    // The address freed last, of this class (see ThreadCache), while the slab is OWNED.
    if (held == (cls | mode << 16)) {
      t.lastFreedClass = -1;
      s.handOut(heldIndex);
      assert s.address(heldIndex) == a;
      return a;
    }
    if ((top | -mode) < 0) {
      s.uncount();
      return allocateAddressAgain(t, s, cls, size);
    }
    int i = s.free[top];
    s.top = top;
    s.handOut(i);
    return s.address(i);
  }

  /*
   * The current slab s of cls had no free block, or a sweep held or took it
   * (LentSlab.countAllocation): once the sweep decided, s is t's again, or forgotten (its
   * class then has none); a refill if needed, and allocate anew.
   */
  private ByteBuffer allocateAgain(ThreadCache t, LentSlab s, int cls, int size) {
    t.own(s);
    if (t.cur[cls].top == 0 && t.refill(cls) == null) return null;
    return allocate(size);
  }

  private long allocateAddressAgain(ThreadCache t, LentSlab s, int cls, long size) {
    t.own(s);
    if (t.cur[cls].top == 0 && t.lastFreedClass != cls && t.refill(cls) == null) return 0;
    return allocateAddress(size);
  }

  /**
   * The buffer for a live block of a lent slab that the caller just got by reallocation (so
   * that its free finds it by identity), or null when the block is not in a lent slab.
   */
  public ByteBuffer view(long address, int size) {
    LentSlab s = slabAt(address);
    if (s == null) return null;
    return s.rebuffer(s.index(address - s.start), size, Regions.view(address, size));
  }

  // --- free ----------------------------------------------------------------------------------

  /**
   * Frees the block of a buffer this cache made, found by identity: 0, a negative code, or
   * NOT_MINE when the buffer is not one of this cache's (a duplicate, a slice, another
   * allocator's): the caller then finds its address and calls {@link #free(long, long)}.
   */
  public int free(ByteBuffer buffer) {
    int low = buffer.alignmentOffset(0, LOW_UNIT);
    LentSlab s = byLow[low >>> LentSlab.UNIT_SHIFT];
    if (s == null) return NOT_MINE;
    int i = s.index(low - (s.start & (LOW_UNIT - 1)));
    if (i < 0 || s.buffers[i] != buffer) return NOT_MINE;
    return release(s, i, 0);
  }

  /**
   * Frees the block at address: 0, a negative code, or NOT_MINE. size: the caller's idea of
   * the block's size (a buffer's capacity), checked against the block's class; -1: unsized.
   */
  public int free(long address, long size) {
    LentSlab s = slabAt(address);
    if (s == null) return NOT_MINE;
    int i = s.index(address - s.start);
    if (i < 0) return Errors.NOT_A_BLOCK;
    if (size >= 0 && classOf(size) != s.cls) {
      return s.isLive(i) ? Errors.SIZE_MISMATCH : s.notLive(i);
    }
    return release(s, i, address);
  }

  /** Frees block i of s, at address (0: not at hand, a buffer's free). */
  private int release(LentSlab s, int i, long address) {
    if (s.ownerThread == Thread.currentThread()) {
      if (!s.isLive(i)) return s.notLive(i);
      ThreadCache t = s.owner;
      if (!s.current) {   // parked: see LentSlab.pushFreed
        s.pushFreed(i);
        s.release(i);
        t.freedInto(s);
        return 0;
      }
      s.release(i);
      s.frees++;
      if (address != 0 && t.lastFreedClass < 0) {   // held back (see ThreadCache)
        t.lastFreed = address;
        t.lastFreedIndex = i;
        t.lastFreedClass = s.cls;
        return 0;
      }
      s.free[s.top++] = i;
      return 0;
    }
    int rc = s.claim(i);
    if (rc != 0) return rc;
    releaseRemote(s, i);
    return 0;
  }

  /** A claimed block of another thread's slab (or a dead thread's) goes on its remote stack. */
  private void releaseRemote(LentSlab s, int i) {
    ThreadCache me = local();
    if (me != null) me.remoteFrees[s.cls]++;
    else uncachedFrees.incrementAndGet(s.cls);
    if (s.pushRemote(i)) {
      HINT.setRelease(s.owner.hint, s.cls, (byte) 1);
      // A parked slab may now empty while its owner is idle: sweeps look at it (the owner
      // queues it itself when it parks a slab with remote frees, LentSlab.park).
      if (LentSlab.mode(s.keepWord()) == LentSlab.PARKED) parked(s);
    }
  }

  /** A claimed block goes back to its slab, from whichever thread. */
  private void releaseClaimed(LentSlab s, int i) {
    if (s.ownerThread != Thread.currentThread()) {
      releaseRemote(s, i);
      return;
    }
    s.unclaim(i);
    s.pushFreed(i);
    if (!s.current) s.owner.freedInto(s);
  }

  // --- reallocation and usable size -----------------------------------------------------------

  /**
   * Reallocates the block at address: the new address, a negative code (the block unchanged
   * and live), or NOT_MINE. capacity: a buffer's capacity, which the block must hold; 0 for an
   * address. In place within the class; else a new block (from this cache when small), the
   * copy inside a core call, and the old block freed.
   */
  public long reallocate(long address, long capacity, long newSize) {
    LentSlab s = slabAt(address);
    if (s == null) return NOT_MINE;
    int i = s.index(address - s.start);
    if (i < 0 || !s.isLive(i)) return s.notLive(i);
    if (capacity > s.blockSize) return Errors.SIZE_MISMATCH;
    if (newSize < 0 || newSize > MAX_SIZE) return Errors.INVALID_SIZE;
    ThreadCache me = local();
    if (newSize <= MAX && classOf(newSize) == s.cls) {
      if (me != null) me.reallocsInPlace++;
      return address;
    }
    long q = allocateAddress(newSize);
    if (q == 0) q = Blocks.allocate(handle, newSize);
    if (q <= 0) return q;
    int claimed = s.claim(i);
    if (claimed != 0) {   // freed meanwhile by another thread
      freeNew(q);
      return claimed;
    }
    int rc = NativeHeap.copy(handle, q, address, Math.min(s.blockSize, newSize));
    if (rc != 0) return rc;   // closed meanwhile: every block went with the heap
    releaseClaimed(s, i);
    if (me != null) me.reallocsMoved++;
    return q;
  }

  private void freeNew(long q) {
    if (free(q, -1) == NOT_MINE) Blocks.free(handle, q);
  }

  /** The usable size of the live block at address, a negative code, or NOT_MINE. */
  public long usableSize(long address) {
    LentSlab s = slabAt(address);
    if (s == null) return NOT_MINE;
    int i = s.index(address - s.start);
    return i >= 0 && s.isLive(i) ? s.blockSize : s.notLive(i);
  }

  // --- threads, slabs and the tables -----------------------------------------------------------

  private ThreadCache local() {
    Thread t = Thread.currentThread();
    ThreadCache c = byThread[(int) t.getId() & (THREAD_SLOTS - 1)];
    if (c != null && c.thread == t) return c;
    return localSlow(t);
  }

  private ThreadCache localSlow(Thread t) {
    if (closed) return null;
    ThreadCache c = local.get();
    if (c == null) {
      c = register(t);
      local.set(c);
    }
    if (c.thread == null) return null;   // a virtual thread's marker
    int slot = (int) t.getId() & (THREAD_SLOTS - 1);
    ThreadCache there = byThread[slot];
    if (there == null || !there.thread.isAlive()) {
      // Volatile, as close()'s clearing: either close() clears this entry, or this sees closed.
      BY_THREAD.setVolatile(byThread, slot, c);
      if (closed) {
        BY_THREAD.compareAndSet(byThread, slot, c, null);
        return null;
      }
    }
    return c;
  }

  private synchronized ThreadCache register(Thread t) {
    if (isVirtual(t)) return new ThreadCache(null, this, 0);
    sweep();
    ThreadCache c = new ThreadCache(t, this, classSize.length);
    caches.add(c);
    return c;
  }

  LentSlab lend(ThreadCache owner, int cls) {
    long r = NativeHeap.lendSlab(handle, classSize[cls]);
    if (r < 0) return null;
    long start = r & -LentSlab.UNIT;
    LentSlab s = LentSlab.lent(owner, start, slabSize[cls], cls, classSize[cls],
        (int) (r & (LentSlab.UNIT - 1)));
    synchronized (this) {
      if (closed) return null;   // its memory went with the heap; close() emptied the tables
      for (long unit = start; unit - start < s.size; unit += LentSlab.UNIT) {
        int k = slot(unit);
        if (bySlot[k] == null) {
          bySlot[k] = s;
        } else {
          collided.put(unit, s);
          collisions++;
        }
        byLow[lowSlot(unit)] = s;
      }
      lent.add(s);
      lends++;
    }
    scheduleSweep();   // to return it once its owner leaves it idle and empty
    return s;
  }

  /** Has the sweeper come back in a purge delay, unless it is due already. */
  private void scheduleSweep() {
    if (sweepPending == 0 && SWEEP_PENDING.compareAndSet(this, 0, 1)) {
      Sweeper.schedule(this, System.nanoTime() + purgeDelayNanos);
    }
  }

  /** s is parked and may be, or become, returnable (empty, or freed into by other threads). */
  void parked(LentSlab s) {
    if (!s.enqueue()) return;
    parkedSlabs.add(s);
    // After the add: a sweeper that just found the queue empty cleared sweepPending first.
    scheduleSweep();
  }

  /**
   * The sweeper's call: returns the parked slabs that are returnable, and the current slabs
   * that idle owners left empty. Returns when to sweep again (System.nanoTime()), or
   * Long.MIN_VALUE when no parked slab is queued and no thread holds a current slab (or the
   * heap is closed), and then the next lent or parked slab schedules a sweep.
   */
  long sweepSlabs() {
    if (closed) return Long.MIN_VALUE;   // sweepPending stays set: no sweep is scheduled again
    long lendsSeen = lends;
    boolean left;
    synchronized (sweeping) {
      left = returnParked(false);
      left |= returnIdleCurrent(false, null);
    }
    if (left) return System.nanoTime() + purgeDelayNanos;
    sweepPending = 0;
    // Before the reads: an owner that queued or borrowed a slab since the walk then saw
    // sweepPending clear.
    if ((!parkedSlabs.isEmpty() || lends != lendsSeen)
        && SWEEP_PENDING.compareAndSet(this, 0, 1)) {
      return System.nanoTime() + purgeDelayNanos;
    }
    return Long.MIN_VALUE;
  }

  /**
   * The heap is closed: sweeps stop (its slabs went with it), and the tables the fast paths
   * read are emptied, so that a call made after this returned finds no thread cache and no
   * lent slab, and the caller reports the heap closed.
   */
  public void close() {
    closed = true;
    for (int i = 0; i < THREAD_SLOTS; i++) BY_THREAD.setVolatile(byThread, i, null);
    synchronized (this) {   // lend() publishes a slab under this, unless closed
      Arrays.fill(bySlot, null);
      Arrays.fill(byLow, null);
      collided.clear();
      collisions = 0;
    }
  }

  /** A sweep's candidate for taking a held slab: what it read before the barrier. */
  private record Held(LentSlab slab, int word, long allocs) {}

  /**
   * Sweeps: takes the current slabs with no live block whose owner left them alone since the
   * last sweep (all: busy or not) back to the core, by LentSlab's handshake, all with one
   * barrier. Not except's (trim's caller, whose own went back already). Returns whether any
   * cache still has a current slab not taken, which a later sweep may find idle.
   */
  private boolean returnIdleCurrent(boolean all, ThreadCache except) {
    ArrayList<ThreadCache> owners;
    synchronized (this) {   // not held for the walk: lend() takes it
      owners = new ArrayList<>(caches);
    }
    ArrayList<Held> candidates = new ArrayList<>();
    boolean any = false;
    for (ThreadCache c : owners) {
      if (c == except) continue;
      for (LentSlab s : c.cur) {   // read racily: the handshake decides, not this read
        int w = s.keepWord();
        if (s == LentSlab.EMPTY || LentSlab.mode(w) == LentSlab.STOLEN) continue;
        any = true;
        long a = s.allocations();
        long f = s.frees;
        boolean idle = a == s.sweptAllocs && f == s.sweptFrees;
        s.sweptAllocs = a;
        s.sweptFrees = f;
        if ((idle || all) && s.liveForSweep(a) == 0) candidates.add(new Held(s, w, a));
      }
    }
    int n = candidates.size();
    if (n == 0) return any;
    // From the first PENDING to the last decision nothing allocates, takes a lock or can fail,
    // so every slab made PENDING is decided: an owner waits out PENDING (settle), maybe while
    // it holds this cache's lock (register's sweep of dead threads), which giveBack takes.
    boolean[] pended = new boolean[n];
    boolean[] stolen = new boolean[n];
    boolean anyPended = false;
    for (int k = 0; k < n; k++) {
      Held h = candidates.get(k);
      anyPended |= pended[k] = h.slab.pend(h.word);
    }
    if (!anyPended) return any;
    boolean fenced = NativeHeap.slabBarrier();
    for (int k = 0; k < n; k++) {
      if (!pended[k]) continue;
      Held h = candidates.get(k);
      stolen[k] = fenced && h.slab.allocations() == h.allocs;
      h.slab.decide(h.word, stolen[k]);
    }
    for (int k = 0; k < n; k++) {
      if (stolen[k]) giveBack(candidates.get(k).slab, false);
    }
    return any;
  }

  /**
   * Returns the queued parked slabs whose blocks are all free (LentSlab.allStacked) to the
   * core: those whose owner left them alone since the last sweep (all: every one). Runs on
   * whichever thread sweeps; LentSlab.take decides against the owner. Returns whether any
   * slab is still queued.
   */
  private boolean returnParked(boolean all) {
    boolean left = false;
    for (Iterator<LentSlab> it = parkedSlabs.iterator(); it.hasNext(); ) {
      LentSlab s = it.next();
      int w = s.keepWord();
      if (LentSlab.mode(w) != LentSlab.PARKED) {
        s.dequeued();
        // After dequeued: an owner that parked it since and found it queued left it to us.
        if (LentSlab.mode(s.keepWord()) != LentSlab.PARKED || !s.enqueue()) {
          it.remove();
          continue;
        }
        w = s.keepWord();
      }
      if (s.allStacked() && (all || w == s.sweptWord) && s.take(w, LentSlab.STOLEN)) {
        it.remove();
        giveBack(s, true);
      } else {
        s.sweptWord = w;
        left = true;
      }
    }
    return left;
  }

  /**
   * Returns an empty slab to the core: no table finds it after this. fold: its counts go to
   * the heap's now, else when its owner forgets it (forgotten), because the owner may still
   * count into a slab a sweep took from it (LentSlab's handshake).
   */
  void giveBack(LentSlab s, boolean fold) {
    synchronized (this) {
      for (long unit = s.start; unit - s.start < s.size; unit += LentSlab.UNIT) {
        int k = slot(unit);
        if (bySlot[k] == s) {
          bySlot[k] = null;
        } else if (collided.remove(unit, s)) {
          collisions--;
        }
        if (byLow[lowSlot(unit)] == s) byLow[lowSlot(unit)] = null;
      }
      if (fold) forgotten(s);
    }
    int rc = NativeHeap.returnSlab(handle, s.start, s.handedOut());
    if (rc != 0 && rc != Errors.CLOSED) {
      throw new IllegalStateException("segfit: a lent slab was refused back: "
          + Errors.describe(rc));
    }
  }

  /** A slab that went back leaves the statistics, its counts added to the heap's; once. */
  synchronized void forgotten(LentSlab s) {
    if (!lent.remove(s)) return;
    returnedAllocs[s.cls] += s.allocs;
    returnedFrees[s.cls] += s.frees;
  }

  private static int slot(long address) {
    return (int) (address >>> LentSlab.UNIT_SHIFT) & (SLOTS - 1);
  }

  private static int lowSlot(long address) {
    return (int) (address >>> LentSlab.UNIT_SHIFT) & (UNITS_PER_REGION - 1);
  }

  /** The lent slab that holds address, or null. */
  private LentSlab slabAt(long address) {
    LentSlab s = bySlot[slot(address)];
    if (s != null && (address & s.mask) == s.start) return s;
    return collisions == 0 ? null : collided.get(address & -LentSlab.UNIT);
  }

  private int classOf(long size) {
    return size <= MAX ? classBy16[((int) size + 15) >>> 4] : -1;
  }

  // --- trim, dead threads, statistics ---------------------------------------------------------

  /**
   * Returns the calling thread's empty slabs, those of threads that died, and every parked
   * slab whose blocks are all free, to the core; a dead thread's other slabs are parked, for
   * a later sweep once other threads freed their blocks.
   */
  public void trim() {
    ThreadCache me = local.get();
    if (me != null && me.thread != null) me.returnEmpty(false);
    synchronized (this) {
      sweep();
    }
    synchronized (sweeping) {
      returnParked(true);
      returnIdleCurrent(true, me);
    }
  }

  /** Folds dead threads' caches in, their slabs parked. pre: this held. */
  private void sweep() {
    for (int k = caches.size() - 1; k >= 0; k--) {
      ThreadCache c = caches.get(k);
      if (c.thread.isAlive()) continue;
      c.returnEmpty(true);
      for (int cls = 0; cls < classSize.length; cls++) {
        deadRemoteFrees[cls] += c.remoteFrees[cls];
      }
      deadReallocsInPlace += c.reallocsInPlace;
      deadReallocsMoved += c.reallocsMoved;
      caches.remove(k);
      int slot = (int) c.thread.getId() & (THREAD_SLOTS - 1);
      if (byThread[slot] == c) byThread[slot] = null;
    }
  }

  /** Adds the caches' counts to a statistics array the core filled. */
  public synchronized void addTo(long[] raw) {
    long allocs = 0;
    long frees = 0;
    long remote = 0;
    long live = 0;
    long liveBytes = 0;
    long inPlace = deadReallocsInPlace;
    long moved = deadReallocsMoved;
    for (ThreadCache c : caches) {
      inPlace += c.reallocsInPlace;
      moved += c.reallocsMoved;
    }
    long[] slabAllocs = new long[classSize.length];
    long[] slabFrees = new long[classSize.length];
    for (LentSlab s : lent) {   // read racily, as the owners count on (a long is read whole)
      slabAllocs[s.cls] += s.allocs;
      slabFrees[s.cls] += s.frees;
    }
    for (int cls = 0; cls < classSize.length; cls++) {
      long a = returnedAllocs[cls] + slabAllocs[cls];
      long r = deadRemoteFrees[cls] + uncachedFrees.get(cls);
      long f = returnedFrees[cls] + slabFrees[cls] + r;
      for (ThreadCache c : caches) {
        f += c.remoteFrees[cls];
        r += c.remoteFrees[cls];
      }
      long l = Math.max(0, a - f);
      int at = Stats.record(cls);
      raw[at + Stats.CLASS_ALLOCS] += a;
      raw[at + Stats.CLASS_FREES] += f;
      raw[at + Stats.CLASS_LIVE_BLOCKS] += l;
      raw[at + Stats.CLASS_LIVE_BYTES] += l * classSize[cls];
      allocs += a;
      frees += f;
      remote += r;
      live += l;
      liveBytes += l * classSize[cls];
    }
    raw[Stats.ALLOCS] += allocs;
    raw[Stats.FREES] += frees;
    raw[Stats.REMOTE_FREES] += remote;
    raw[Stats.LIVE_BLOCKS] += live;
    raw[Stats.LIVE_BYTES] += liveBytes;
    raw[Stats.REALLOCS_IN_PLACE] += inPlace;
    raw[Stats.REALLOCS_MOVED] += moved;
  }

  // --- virtual threads ------------------------------------------------------------------------

  private static MethodHandle isVirtualHandle() {
    try {
      return MethodHandles.publicLookup().findVirtual(Thread.class, "isVirtual",
          MethodType.methodType(boolean.class));
    } catch (ReflectiveOperationException e) {
      return null;   // before JDK 21: every thread is a platform thread
    }
  }

  private static boolean isVirtual(Thread t) {
    if (IS_VIRTUAL == null) return false;
    try {
      return (boolean) IS_VIRTUAL.invokeExact(t);
    } catch (Throwable e) {
      throw new IllegalStateException(e);
    }
  }
}
