// SPDX-License-Identifier: Apache-2.0
/*
 * One slab the core lent to a thread's cache (native/src/lend.c): its blocks' states, its free
 * blocks and the buffer objects made for them, all in Java arrays, so that allocating and
 * freeing its blocks reads no native memory and makes no native call.
 *
 * Owner-only fields (free, top, inAvail, place, availPlace, counted) are written by the owning
 * thread alone, or by a sweep once the owner has died (Thread.isAlive() false: everything it
 * did happens-before the sweep); sweeps also read top (below). Other threads touch only what
 * a free needs: a block's state, read LIVE and then written FREE, its link, claimed with a
 * compare-and-set (claim), and the remote stack. The remote stack is a stack of block indices
 * linked through remoteNext: anyone pushes, only the holder of the slab takes the whole stack
 * at once, so there is no ABA.
 * Invariant (owner's view): the blocks not on the free stack, capacity - top, are the LIVE
 * ones, those on the remote stack, those a reallocation claimed and has not pushed yet and,
 * for the current slab of its class, the owner's last freed block (ThreadCache.lastFreed).
 *
 * A slab that is not its class's current one is PARKED: the owner takes it back with a
 * compare-and-set before it allocates from it or collects its remote stack, and a sweep may
 * take it instead (STOLEN) once every block is on one of its stacks, so that slabs other
 * threads emptied go back to the core while their owner is idle. While PARKED the owner still
 * frees its own LIVE blocks into it, pushing before it flips the state, with a release store
 * of top: a sweep that reads top and the remote stack's count (acquire) and finds them adding
 * up to capacity has seen every free's writes, and no block left that a free could still
 * push. Each park adds a version to the word, so a sweep that read the word before the owner
 * took the slab, used it and parked it again cannot take it.
 *
 * A sweep may also take a slab the owner holds (OWNED: its current ones), which the owner
 * allocates from with plain stores and loads. Its handshake is an asymmetric Dekker, as the
 * core's (native/src/thread.c): before the owner hands out a block it stores the slab's
 * allocation count and then loads the keep word (countAllocation), both opaque so that the
 * JIT keeps them in order (HotSpot puts its CPU-order barriers around every opaque access);
 * the sweep moves the word from OWNED to PENDING, makes every running thread pass a full
 * barrier (segfit_slab_barrier), and reads the count again. Either the owner's load saw
 * PENDING, and it hands out nothing and waits, or the sweep sees the count move and gives the
 * slab back to its owner. The sweep takes the slab (STOLEN) only if its counts showed no live
 * block (allocations - frees - collected - remoteCount(), read in that order, so that a race
 * can only make the figure too high, but for allocations, which the second read checks) and
 * the count did not move. The owner's counts keep going into the slab it may have lost, which
 * is why a slab taken from its owner leaves the statistics when the owner forgets it
 * (SlabCache.forgotten), not when it goes back to the core.
 */
package io.segfit.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.Arrays;

abstract class LentSlab extends LentSlabPad {
  /** Block states, this class's own (the core never reads them): never handed out, live, freed. */
  static final int NEVER = 0;
  static final int LIVE = 1;
  static final int FREE = 2;
  /**
   * A state word (16 bits, as short[] keeps the array small in cache): the state in its low
   * bits, above them 1 + how far the capacity of the block's buffer is below the block size
   * (0: no buffer yet), so that allocation knows whether the buffer fits without reading the
   * buffer object, which is cold in a batch. A buffer's capacity is in the block's class, so the
   * distance is below the class spacing (at most SEGFIT_LEND_MAX_BLOCK / 8).
   */
  private static final int STATE_BITS = 2;
  private static final int STATE_MASK = (1 << STATE_BITS) - 1;
  private static final int WORD_MASK = 0xFFFF;

  static {
    if ((NativeHeap.lendMax() / 8 + 1) << STATE_BITS > WORD_MASK) {
      throw new ExceptionInInitializerError("SEGFIT_LEND_MAX_BLOCK does not fit a state word");
    }
  }

  /** The smallest lent slab's size (SEGFIT_LEND_SLAB_MIN): every lent slab is aligned to it
      and spans a whole number of such units. */
  static final int UNIT = (int) NativeHeap.lendSlabMin();
  static final int UNIT_SHIFT = Integer.numberOfTrailingZeros(UNIT);
  /** Exact division by multiplication: offset * recip stays below 2^63 for offset < size. */
  private static final int RECIP_SHIFT = 42;
  private static final long RECIP_MASK = (1L << RECIP_SHIFT) - 1;

  private static final VarHandle STATE = MethodHandles.arrayElementVarHandle(short[].class);
  private static final VarHandle LINK = MethodHandles.arrayElementVarHandle(int[].class);
  /** The remote stack's head word: the top's index + 1 in the low bits, the count above. */
  private static final int LINK_BITS = 16;
  private static final int LINK_MASK = (1 << LINK_BITS) - 1;
  /** A block's link while no thread but the owner freed it (LIVE, or on the free stack)... */
  private static final int UNCLAIMED = -1;
  /** ...and from another thread's claim until its push links it (an index + 1, or 0). */
  private static final int CLAIMED = -2;

  /** Owner: the next allocation takes free[top - 1]. Sweeps read it (allStacked). */
  int top;
  /** Owner: blocks it took back from the remote stack (collect), for a sweep's count of the
      live blocks (liveForSweep). */
  long collected;
  /** Owner: on the cache's stack of slabs with free blocks. */
  boolean inAvail;
  /** Owner: the slab's index in its cache's list of the class's slabs (ThreadCache.slabs) and,
      while inAvail, in the stack of those with free blocks (ThreadCache.avail). */
  int place;
  int availPlace;
  /** Owner: the cache's current slab of its class (ThreadCache.cur), known without a lookup. */
  boolean current;
  /**
   * Owner: the blocks it allocated from this slab and freed back into it, counted here so that
   * the fast path writes no other object; statistics add up the lent slabs' counts, and a slab
   * going back to the core leaves its counts to its heap (SlabCache.addTo, giveBack).
   */
  long allocs;
  long frees;
  /**
   * The keep word: a version above, a mode in the low bits. OWNED while the owner may use the
   * slab freely (always, for a current slab); PARKED while it is not current, when the owner
   * (to use it again) or a sweep (to return it to the core, as STOLEN) may take it, with a
   * compare-and-set.
   */
  static final int OWNED = 0;
  static final int PARKED = 1;
  static final int STOLEN = 2;
  /** A sweep is deciding whether to take an OWNED slab: the owner waits (settle). */
  static final int PENDING = 3;
  private static final int MODE_MASK = 3;
  private static final int VERSION = MODE_MASK + 1;
  private static final VarHandle KEEP;
  private static final VarHandle QUEUED;
  private static final VarHandle TOP;
  private static final VarHandle ALLOCS;
  private static final VarHandle FREES;
  private static final VarHandle COLLECTED;
  /** Spins before settle yields: a sweep's decision takes one system call. */
  private static final int SETTLE_SPINS = 1 << 10;

  static {
    try {
      MethodHandles.Lookup l = MethodHandles.lookup();
      KEEP = l.findVarHandle(LentSlab.class, "keep", int.class);
      QUEUED = l.findVarHandle(LentSlab.class, "queued", int.class);
      TOP = l.findVarHandle(LentSlab.class, "top", int.class);
      ALLOCS = l.findVarHandle(LentSlab.class, "allocs", long.class);
      FREES = l.findVarHandle(LentSlab.class, "frees", long.class);
      COLLECTED = l.findVarHandle(LentSlab.class, "collected", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  @SuppressWarnings("unused")
  private volatile int keep;
  /** 1 while the slab has an entry in its heap's queue of parked slabs: never two entries. */
  @SuppressWarnings("unused")
  private volatile int queued;
  /** Owner: the slab's bytes count in the cache's budget of emptied slabs (keptBytes). */
  boolean counted;
  /** Sweeps: the keep word the last sweep saw, so that only a slab left alone since is taken. */
  int sweptWord = -1;
  /** Sweeps: the counts the last sweep saw of a held slab, for the same purpose. */
  long sweptAllocs = -1;
  long sweptFrees = -1;
  /** A slab with no block, so that the fast path needs no null check; every thread counts
      into it (countAllocation, then uncount), and nothing reads its counts. */
  static final LentSlab EMPTY = new Tail(null, 0, UNIT, 0, 16, 0);

  /** The slab of size bytes at start, for owner; its first reserved blocks are not its own. */
  static LentSlab lent(ThreadCache owner, long start, int size, int cls, int blockSize,
      int reserved) {
    return new Tail(owner, start, size, cls, blockSize, reserved);
  }

  private LentSlab(ThreadCache owner, long start, int size, int cls, int blockSize,
      int reserved) {
    super(owner, start, size, cls, blockSize, ((1L << RECIP_SHIFT) + blockSize - 1) / blockSize);
    for (int i = 0; i < capacity; i++) free[i] = capacity - 1 - i;   // lowest address first
    Arrays.fill(remoteNext, 0, capacity, UNCLAIMED);
    this.top = capacity;
    assert capacity < 1 << LINK_BITS : capacity;
    for (int i = 0; i < reserved; i++) state[i] = FREE;
  }

  /**
   * The index of the block at offset off (0 <= off < size: the callers found the slab by the
   * address's unit) from start, or -1 if no block starts there. Exact division by
   * multiplication, as the core's _sf_owner_index: for off = q size + r, the low 42 bits of
   * off * recip are below recip exactly when r == 0. Bounded by state.length (= capacity), so
   * that the JIT drops the bounds check of the state read that follows.
   */
  int index(long off) {
    assert off >= 0 && off < size : off;
    long prod = off * recip;
    int i = (int) (prod >>> RECIP_SHIFT);
    return (prod & RECIP_MASK) < recip && i < state.length ? i : -1;
  }

  /** Blocks below it may have been written: what segfit_slab_return needs. Owner or sweep. */
  int handedOut() {
    int n = capacity;
    while (n > 0 && state(n - 1) == NEVER) n--;
    return n;
  }

  long address(int i) {
    return start + (long) i * blockSize;
  }

  /** Owner: blocks handed out and not collected back. */
  int used() {
    return capacity - top;
  }

  int keepWord() {
    return keep;
  }

  static int mode(int word) {
    return word & MODE_MASK;
  }

  /**
   * Owner, before it hands out a block of the slab (free[top], or its last freed one): counts
   * the allocation and returns the slab's mode, OWNED (0) when it is still the owner's (the
   * handshake in the class comment). Else a sweep holds it or took it: the caller undoes the
   * count (uncount), hands out nothing and settles with ThreadCache.own.
   */
  int countAllocation() {
    ALLOCS.setOpaque(this, allocs + 1);
    return (int) KEEP.getOpaque(this) & MODE_MASK;
  }

  /** Owner: takes back a countAllocation that handed nothing out. */
  void uncount() {
    allocs--;
  }

  /** Owner: the keep word once no sweep is deciding on the slab (not PENDING). */
  int settle() {
    int w;
    for (int spins = 0; mode(w = keep) == PENDING; spins++) {
      if (spins < SETTLE_SPINS) Thread.onSpinWait();
      else Thread.yield();
    }
    return w;
  }

  /**
   * Owner, holding the slab: it is no longer current, and a sweep may take it once all its
   * blocks are free. Returns -1 if a sweep took it first (the caller forgets it), else 1 when
   * it may already be returnable (blocks on its remote stack, or all free), so that the caller
   * queues it for the sweeps, and 0. A remote free queues it only when it finds the remote
   * stack empty, and this compare-and-set before the read of the stack makes sure that one of
   * the two sees the other.
   */
  int park() {
    int w;
    do {
      w = settle();
      if (mode(w) == STOLEN) return -1;
      assert mode(w) == OWNED : w;
    } while (!KEEP.compareAndSet(this, w, (w & ~MODE_MASK) + VERSION | PARKED));
    return remoteCount() > 0 || top == capacity ? 1 : 0;
  }

  /** Holder: takes the slab from the sweeps for good (STOLEN), to give it back itself. False: a
      sweep took it first. */
  boolean retire() {
    int w;
    do {
      w = settle();
      if (mode(w) == STOLEN) return false;
      assert mode(w) == OWNED : w;
    } while (!KEEP.compareAndSet(this, w, w & ~MODE_MASK | STOLEN));
    return true;
  }

  /**
   * Sweeps: from the word read (OWNED) to PENDING. False: the owner parked it since, or another
   * sweep is deciding. Until decide, the sweep takes no lock, allocates nothing and waits on
   * nothing: the owner waits on it (settle), maybe holding its heap's lock.
   */
  boolean pend(int word) {
    return mode(word) == OWNED && KEEP.compareAndSet(this, word, word | PENDING);
  }

  /** Sweeps, after pend(word): the slab is taken (STOLEN), or its owner's again (OWNED). */
  void decide(int word, boolean steal) {
    boolean ok = KEEP.compareAndSet(this, word | PENDING, steal ? word | STOLEN : word);
    assert ok : "only the sweep that made it PENDING changes the word";
  }

  /**
   * Sweeps: the allocations the owner counted in the slab (countAllocation's store). A second
   * read after segfit_slab_barrier sees every allocation whose handshake found the slab OWNED.
   */
  long allocations() {
    return (long) ALLOCS.getAcquire(this);
  }

  /**
   * Sweeps: the slab's live blocks as its counts tell, read in an order in which a race with
   * the owner or with other threads' frees only adds (a block being freed, a collect moving
   * blocks from the remote stack) except for allocations since allocs was read, which the
   * caller's second read of allocations() checks: 0 then means none.
   */
  long liveForSweep(long allocs) {
    long f = (long) FREES.getAcquire(this);
    long c = (long) COLLECTED.getAcquire(this);
    return allocs - f - c - remoteCount();
  }

  /** From the word read (PARKED) to mode, keeping its version. False: someone else took it. */
  boolean take(int word, int mode) {
    return mode(word) == PARKED && KEEP.compareAndSet(this, word, word & ~MODE_MASK | mode);
  }

  /**
   * Sweeps: every block is on one of the slab's stacks. Both only grow while the slab is
   * PARKED, so two reads at different times can only add up to capacity if it is true at the
   * later one.
   */
  boolean allStacked() {
    return (int) TOP.getAcquire(this) + remoteCount() == capacity;
  }

  /** Claims the slab's one entry in the queue of parked slabs: false if it has one already. */
  boolean enqueue() {
    return QUEUED.compareAndSet(this, 0, 1);
  }

  /** Before its entry leaves the queue: a later park or remote free queues it again. */
  void dequeued() {
    queued = 0;
  }

  int state(int i) {
    return state[i] & STATE_MASK;
  }

  boolean isLive(int i) {
    return (state[i] & STATE_MASK) == LIVE;
  }

  /** Owner: block i, just taken from the free stack, is LIVE from now on. */
  void handOut(int i) {
    state[i] = (short) (state[i] & ~STATE_MASK | LIVE);
  }

  /**
   * Owner: block i, just taken from the free stack, is LIVE from now on with its buffer if
   * the word says it has the capacity size (returned: the caller checks the capacity, which
   * a racing reallocation may have made stale), else with none (null): the caller makes one
   * and {@link #setBuffer}s it.
   */
  ByteBuffer handOut(int i, int size) {
    int w = state[i] & WORD_MASK;
    if (w >>> STATE_BITS == blockSize - size + 1) {
      state[i] = (short) (w & ~STATE_MASK | LIVE);
      return buffers[i];
    }
    state[i] = LIVE;
    return null;
  }

  /** Owner: b, of the capacity size, is the buffer of block i, LIVE and not yet given out. */
  ByteBuffer setBuffer(int i, int size, ByteBuffer b) {
    buffers[i] = b;
    state[i] = word(size);
    return b;
  }

  /**
   * Whoever holds LIVE block i (a reallocation in place, maybe by another thread than the
   * owner): b, of the capacity size, is its buffer from now on. A free racing with it keeps
   * the block FREE; the word's capacity may then be stale, which allocation's check of the
   * buffer it reuses catches.
   */
  ByteBuffer rebuffer(int i, int size, ByteBuffer b) {
    buffers[i] = b;
    short w = (short) STATE.getVolatile(state, i);
    if ((w & STATE_MASK) == LIVE) STATE.compareAndSet(state, i, w, word(size));
    return b;
  }

  /** The word of a LIVE block whose buffer has the capacity size (in the class). */
  private short word(int capacity) {
    return (short) ((blockSize - capacity + 1) << STATE_BITS | LIVE);
  }

  /** Owner: frees LIVE block i (checked by the caller). */
  void release(int i) {
    state[i] ^= LIVE ^ FREE;
  }

  /**
   * Owner: counts and pushes block i, which it frees, before it flips the block's state. On a
   * slab that is not current (PARKED, or taken by a sweep since) the release store of top
   * publishes both to a sweep (allStacked), which may take the slab from then on.
   */
  void pushFreed(int i) {
    frees++;
    int t = top;
    free[t] = i;
    if (current) top = t + 1;
    else TOP.setRelease(this, t + 1);
  }

  /** The error code of a block that is not LIVE (or was never a block). */
  int notLive(int i) {
    return i >= 0 && state(i) == FREE ? Errors.ALREADY_FREE : Errors.NOT_A_BLOCK;
  }

  /**
   * Any thread's free of LIVE block i but the owner's plain one: 0, and the caller pushes it,
   * or the error code. Of racing calls exactly one wins the compare-and-set of the block's link
   * (UNCLAIMED while no such free took it; the owner's collect or unclaim sets it back), and
   * that one writes the state FREE. The compare-and-set is not on the state word because the
   * owner writes the state of the blocks it hands out, and a neighbour's shares the line: with
   * a thread freeing what the owner allocated a moment before, a locked instruction on that
   * line cost the producer/consumer benchmark a factor of three (docs/hot-path.md, "Cross-thread
   * frees and cache lines"); the link's line is the freeing threads' until the owner collects.
   */
  int claim(int i) {
    short w = (short) STATE.getVolatile(state, i);
    if ((w & STATE_MASK) != LIVE) return notLive(i);
    if (!LINK.compareAndSet(remoteNext, i, UNCLAIMED, CLAIMED)) return Errors.ALREADY_FREE;
    STATE.setOpaque(state, i, (short) (w & ~STATE_MASK | FREE));
    return 0;
  }

  /** Owner: block i, which it claimed itself, goes on its free stack, not the remote one. */
  void unclaim(int i) {
    remoteNext[i] = UNCLAIMED;
  }

  /**
   * Another thread's free of a claimed block. Returns true if the stack was empty before. The
   * head word holds the top (index + 1, 0 when empty) in its low 16 bits and how many blocks
   * the stack holds above them.
   */
  boolean pushRemote(int i) {
    int top;
    do {
      top = (int) LINK.getVolatile(remoteNext, head);
      remoteNext[i] = top & LINK_MASK;
      // One more below, i on top.
    } while (!LINK.compareAndSet(remoteNext, head, top,
        ((top >>> LINK_BITS) + 1) << LINK_BITS | (i + 1)));
    return top == 0;
  }

  /** How many blocks the remote stack holds. */
  int remoteCount() {
    return (int) LINK.getAcquire(remoteNext, head) >>> LINK_BITS;
  }

  /**
   * The holder (owner, or sweep of a dead owner): takes the remote stack back onto the free
   * blocks. Counted in collected after the stack is taken, with a release store: a sweep that
   * reads collected (acquire) and then the stack counts no block twice.
   */
  int collect() {
    if ((int) LINK.getOpaque(remoteNext, head) == 0) return 0;
    int next = (int) LINK.getAndSet(remoteNext, head, 0) & LINK_MASK;
    int n = 0;
    while (next != 0) {
      int i = next - 1;
      next = remoteNext[i];
      remoteNext[i] = UNCLAIMED;
      free[top++] = i;
      n++;
    }
    COLLECTED.setRelease(this, collected + n);
    return n;
  }

  /**
   * A cache line after LentSlab's fields, which the owner writes on every call: whatever comes
   * next in memory is read by other threads too, at first the slab's state array (made right
   * after it), whose length every free reads.
   */
  @SuppressWarnings("unused")
  private static final class Tail extends LentSlab {
    long t0, t1, t2, t3, t4, t5, t6, t7;

    Tail(ThreadCache owner, long start, int size, int cls, int blockSize, int reserved) {
      super(owner, start, size, cls, blockSize, reserved);
    }
  }
}

/**
 * A cache line before LentSlabFinals' fields: the collector may put any object right before a
 * slab (it may copy the slabs a table holds, SlabCache's, one after another), and another
 * thread's writes of that object's last line would take the line this slab's readers need.
 */
@SuppressWarnings("unused")
abstract class LentSlabHead {
  int h;   // the gap after the object header, which a subclass's int would take otherwise
  long h0, h1, h2, h3, h4, h5, h6, h7;
}

/**
 * What every thread reads of a lent slab, set once; the owner's own fields (LentSlab's) come
 * after LentSlabPad's padding, a cache line further (a superclass's fields precede its
 * subclass's), so that a free from another thread never takes the line the owner writes on
 * every call.
 */
abstract class LentSlabFinals extends LentSlabHead {
  /** Ints around the remote stack's head with no other use: a cache line each side. */
  private static final int PAD = 16;

  final long start;
  /** The slab's size (segfit_slab_lend_size), also its alignment; mask = -size. */
  final int size;
  final long mask;
  final int cls;
  final int blockSize;
  final int capacity;
  /** For the exact division of LentSlab.index. */
  final long recip;
  final ThreadCache owner;
  /** owner.thread, one load nearer for the free path's "is it mine" test. */
  final Thread ownerThread;
  /** State words (see LentSlab.STATE_BITS); written by the owner while a block is not LIVE,
      flipped from LIVE to FREE by whichever thread frees it. */
  final short[] state;
  final ByteBuffer[] buffers;
  /** Owner: free block indices, below LentSlab.top. */
  final int[] free;
  /**
   * The remote stack: remoteNext[i] links block i, once pushed, to the one pushed before it
   * (index + 1, 0 at the bottom), and is otherwise LentSlab.UNCLAIMED, or CLAIMED between a
   * claim and its push; the top (index + 1, 0 when empty) is at head, padded off the links, so
   * that other threads' pushes never wait for the owner's lines, nor the owner for theirs.
   */
  final int[] remoteNext;
  final int head;

  LentSlabFinals(ThreadCache owner, long start, int size, int cls, int blockSize, long recip) {
    this.owner = owner;
    this.ownerThread = owner == null ? null : owner.thread;
    this.start = start;
    this.size = size;
    this.mask = -size;
    this.cls = cls;
    this.blockSize = blockSize;
    this.capacity = owner == null ? 0 : size / blockSize;
    this.recip = recip;
    this.state = new short[capacity];
    this.buffers = new ByteBuffer[capacity];
    this.free = new int[capacity];
    this.head = capacity + PAD;
    this.remoteNext = new int[capacity + 2 * PAD];
  }
}

/**
 * A cache line between LentSlabFinals' fields and LentSlab's. HotSpot (JDK 15 on) puts a
 * subclass's field in a gap a superclass left: LentSlabFinals' eleven 4-byte fields leave one
 * after its longs, and LentSlab's top, written on every allocation, went there, among the fields
 * every other thread's free reads. p fills it (ThreadCacheTest checks the layout); it cost the
 * producer/consumer benchmark a factor of three in most forks on JDK 17 (docs/hot-path.md).
 */
@SuppressWarnings("unused")
abstract class LentSlabPad extends LentSlabFinals {
  int p;
  long p0, p1, p2, p3, p4, p5, p6, p7;

  LentSlabPad(ThreadCache owner, long start, int size, int cls, int blockSize, long recip) {
    super(owner, start, size, cls, blockSize, recip);
  }
}
