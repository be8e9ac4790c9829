// SPDX-License-Identifier: Apache-2.0
/*
 * One platform thread's blocks of one heap (see SlabCache): per size class the current lent
 * slab, the other slabs it holds, the counters that statistics add up (allocations and the
 * thread's own frees are counted in the slabs, LentSlab.allocs). Everything here is
 * written by the owning thread only; statistics read the counters racily (a long is read
 * whole), a sweep takes a dead owner's slabs over, and any thread's sweep may take a parked
 * slab (not current: LentSlab.PARKED) once all its blocks are free, LentSlab.take deciding
 * between them, or a held one (its current slabs) with no live block, by LentSlab's
 * handshake: the owner drops such a stolen slab from its lists when it next meets it.
 */
package io.segfit.internal;

import java.util.ArrayList;
import java.util.Arrays;

final class ThreadCache {
  /**
   * Bytes of emptied slabs a cache keeps besides its current ones, so that a thread that frees
   * a batch and allocates it again needs no native call; the rest go back at once, and kept ones
   * once they waited the purge delay (SlabCache's sweep, busy owner or not). Larger than the
   * core's thread heaps' budget (SF_THEAP_KEEP_BYTES), which a busy owner holds for good: here
   * it holds them for the purge delay only, and a slab that goes back and is lent again costs
   * its arrays and its blocks' buffer objects anew (the Batch benchmark's 11 MiB of small
   * blocks lost 17% to that with 8 MiB: docs/hot-path.md).
   */
  static final long KEEP_BYTES = 32 << 20;

  final Thread thread;
  final SlabCache heap;
  final LentSlab[] cur;
  /**
   * Every slab of the class the cache holds, the current one included, in no order. A slab
   * knows its index here and in avail (LentSlab.place, availPlace), so that one leaves both
   * in constant time: a burst may return thousands of slabs of a class.
   */
  final ArrayList<LentSlab>[] slabs;
  /** Slabs other than the current one that have free blocks (LentSlab.inAvail), a stack; it
      may hold slabs a sweep took, which own() drops. */
  final ArrayList<LentSlab>[] avail;
  /** Set by another thread's free that found a slab's remote stack empty: look at all. */
  final byte[] hint;
  /** Frees this thread made of other threads' blocks (its own are counted in the slabs). */
  final long[] remoteFrees;
  long reallocsInPlace;
  long reallocsMoved;
  /** Bytes of the slabs this cache keeps empty (LentSlab.counted), maybe taken by a sweep
      since. */
  long keptBytes;
  /**
   * The owner's last free of an address, held back from its slab's stack, so that the next
   * allocation of its class returns that address without waiting on the loads the free made
   * to find and check the block (docs/hot-path.md, "The round trip's chain"). Invariant: when
   * lastFreedClass is a class c (not -1), block lastFreedIndex of cur[c], at lastFreed, is
   * FREE (counted in the slab's frees) and on neither of its stacks; flush() pushes it before
   * anything else looks at cur[c]'s blocks or replaces cur[c].
   */
  long lastFreed;
  int lastFreedIndex;
  int lastFreedClass = -1;

  @SuppressWarnings("unchecked")
  ThreadCache(Thread thread, SlabCache heap, int classes) {
    this.thread = thread;
    this.heap = heap;
    this.cur = new LentSlab[classes];
    Arrays.fill(cur, LentSlab.EMPTY);
    this.slabs = new ArrayList[classes];
    this.avail = new ArrayList[classes];
    for (int c = 0; c < classes; c++) {
      slabs[c] = new ArrayList<>();
      avail[c] = new ArrayList<>();
    }
    this.hint = new byte[classes];
    this.remoteFrees = new long[classes];
  }

  /**
   * A slab of cls with a free block, made current: the current one's remote frees if they are
   * an eighth of it or more, the slabs other threads freed into (when hinted), another slab with
   * free blocks, the current one's remote frees however few, then a new slab from the core. Null
   * when the core refuses one (the caller then takes the native path, which gives the precise
   * error or a block of its own). Taking a handful of remote frees at a time, while another
   * thread keeps freeing into the slab, put the two threads on the remote stack's line and the
   * blocks' state lines every few blocks: half the forks of the producer/consumer benchmark
   * then ran three times slower throughout (docs/hot-path.md, "Cross-thread frees and cache
   * lines").
   */
  LentSlab refill(int cls) {
    if (lastFreedClass == cls) {   // a buffer's allocation, which does not take it
      flush();
      return cur[cls];
    }
    LentSlab s = cur[cls];
    if (s.remoteCount() >= s.capacity / 8 && s.collect() > 0) return s;
    if ((byte) SlabCache.HINT.getAndSet(hint, cls, (byte) 0) != (byte) 0) {
      ArrayList<LentSlab> all = slabs[cls];
      // Backwards: own and freedInto may remove the slab at k, and put the last one (seen)
      // there.
      for (int k = all.size() - 1; k >= 0; k--) {
        LentSlab a = all.get(k);
        if (a == s || a.remoteCount() == 0 || !own(a)) continue;
        a.collect();
        if (park(a)) freedInto(a);
      }
    }
    ArrayList<LentSlab> av = avail[cls];
    while (!av.isEmpty()) {
      LentSlab a = av.remove(av.size() - 1);
      a.inAvail = false;
      if (!own(a)) continue;   // a sweep took it back to the core
      if (a.top > 0 || a.collect() > 0) return current(a);
      park(a);   // full: freedInto files it again once a block comes back
    }
    if (s.collect() > 0) return s;
    LentSlab lent = heap.lend(this, cls);
    if (lent == null) return null;
    lent.place = slabs[cls].size();
    slabs[cls].add(lent);
    return current(lent);
  }

  /**
   * s, held (OWNED), becomes the current slab of its class; the one before is parked, with the
   * class's hint set if other threads' frees wait on its remote stack (refill may leave a few
   * there), so that the next refill looks at it as at any slab other threads freed into.
   */
  private LentSlab current(LentSlab s) {
    LentSlab old = cur[s.cls];
    if (old != LentSlab.EMPTY) {   // EMPTY is every cache's: never current, never parked
      old.current = false;
      if (park(old) && old.remoteCount() > 0) SlabCache.HINT.setRelease(hint, s.cls, (byte) 1);
    }
    s.current = true;
    cur[s.cls] = s;
    return s;
  }

  /**
   * Owner or sweep of a dead owner: s, held and not current, is left for sweeps to take.
   * False: a sweep took it first, and it left the lists.
   */
  private boolean park(LentSlab s) {
    int r = s.park();
    if (r < 0) {
      forgetStolen(s);
      return false;
    }
    if (r > 0) heap.parked(s);
    return true;
  }

  /**
   * Owner (or sweep of a dead owner): whether s, met in the lists, is still the cache's, held
   * (OWNED) from now on. A parked slab is taken back, and out of the budget; one a sweep took
   * back to the core is forgotten. A sweep moves an OWNED slab only through PENDING, which
   * this waits out, and takes it only once the owner could not use it.
   */
  boolean own(LentSlab s) {
    int w = s.settle();
    if (LentSlab.mode(w) == LentSlab.OWNED) return true;
    if (s.counted) {
      s.counted = false;
      keptBytes -= s.size;
    }
    if (s.take(w, LentSlab.OWNED)) return true;
    forgetStolen(s);
    return false;
  }

  /** s was taken by a sweep: it leaves the cache and the counts. */
  private void forgetStolen(LentSlab s) {
    forget(s);
    heap.forgotten(s);
  }

  /** Owner or sweep: s leaves the lists and, if current, its class (a current one taken from
      an idle owner takes the last freed block with it). */
  private void forget(LentSlab s) {
    assert slabs[s.cls].get(s.place) == s;
    LentSlab moved = removeAt(slabs[s.cls], s.place);
    if (moved != null) moved.place = s.place;
    if (s.inAvail) {
      assert avail[s.cls].get(s.availPlace) == s;
      moved = removeAt(avail[s.cls], s.availPlace);
      if (moved != null) moved.availPlace = s.availPlace;
      s.inAvail = false;
    }
    if (s.current) {
      s.current = false;
      cur[s.cls] = LentSlab.EMPTY;
      if (lastFreedClass == s.cls) lastFreedClass = -1;
    }
  }

  /** Removes entry i in constant time: the last entry takes its place and is returned (null
      when it was entry i). */
  private static LentSlab removeAt(ArrayList<LentSlab> list, int i) {
    LentSlab last = list.remove(list.size() - 1);
    if (i == list.size()) return null;
    list.set(i, last);
    return last;
  }

  /** Owner (or sweep of a dead owner): the last freed block goes on its slab's stack. */
  void flush() {
    if (lastFreedClass < 0) return;
    LentSlab s = cur[lastFreedClass];
    assert s.current && s.state(lastFreedIndex) == LentSlab.FREE;
    s.free[s.top++] = lastFreedIndex;
    lastFreedClass = -1;
  }

  /**
   * Owner: s, parked (or taken by a sweep since), has free blocks now. An emptied slab is kept
   * within the budget, for sweeps to return once left alone for the purge delay, else goes
   * back to the core at once.
   */
  void freedInto(LentSlab s) {
    if (s.used() == 0) {   // a counted slab is empty: no free reaches it before own()
      assert !s.counted;
      if (keptBytes + s.size > KEEP_BYTES) {
        giveBack(s);
        return;
      }
      keptBytes += s.size;
      s.counted = true;
      heap.parked(s);
    }
    if (!s.inAvail) {
      s.inAvail = true;
      s.availPlace = avail[s.cls].size();
      avail[s.cls].add(s);
    }
  }

  /** Owner or sweep of a dead owner: returns an empty slab to the core, unless stolen. */
  void giveBack(LentSlab s) {
    assert lastFreedClass != s.cls || cur[s.cls] != s : "its last freed block is held back";
    if (!own(s)) return;
    if (!s.retire()) {
      forgetStolen(s);
      return;
    }
    forget(s);
    heap.giveBack(s, true);
  }

  /**
   * Owner (trim) or sweep (dead owner): collects every slab's remote frees and returns the
   * empty ones. The others stay, parked unless current; a dead owner's are all parked, for
   * sweeps to return once other threads freed their blocks.
   */
  void returnEmpty(boolean dead) {
    flush();
    for (int c = 0; c < slabs.length; c++) {
      for (LentSlab s : new ArrayList<>(slabs[c])) {
        if (!own(s)) continue;
        s.collect();
        if (s.used() == 0) {
          giveBack(s);
        } else if (dead || !s.current) {
          s.current = false;
          park(s);
        }
      }
    }
  }
}
