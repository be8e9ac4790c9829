// SPDX-License-Identifier: Apache-2.0
/*
 * One platform thread's blocks of one heap (see SlabCache): per size class the current lent
 * slab, the other slabs it holds, the counters that statistics add up. Everything here is
 * written by the owning thread only; statistics read the counters racily (a long is read
 * whole), and a sweep takes a dead owner's slabs over.
 */
package io.segfit.internal;

import java.util.ArrayList;

final class ThreadCache {
  /** Emptied slabs a cache keeps besides its current ones, so that a thread that frees a
      batch and allocates it again needs no native call; the rest go back at once. */
  static final int KEEP_EMPTY = 16;

  final Thread thread;
  final SlabCache heap;
  final LentSlab[] cur;
  /** Every slab of the class the cache holds, the current one included. */
  final ArrayList<LentSlab>[] slabs;
  /** Slabs other than the current one that have free blocks (may hold stale entries). */
  final ArrayList<LentSlab>[] avail;
  /** Set by another thread's free that found a slab's remote stack empty: look at all. */
  final byte[] hint;
  final long[] allocs;
  final long[] frees;
  /** Frees this thread made of other threads' blocks (also counted as frees). */
  final long[] remoteFrees;
  long reallocsInPlace;
  long reallocsMoved;
  int keptEmpty;

  @SuppressWarnings("unchecked")
  ThreadCache(Thread thread, SlabCache heap, int classes) {
    this.thread = thread;
    this.heap = heap;
    this.cur = new LentSlab[classes];
    java.util.Arrays.fill(cur, LentSlab.EMPTY);
    this.slabs = new ArrayList[classes];
    this.avail = new ArrayList[classes];
    for (int c = 0; c < classes; c++) {
      slabs[c] = new ArrayList<>();
      avail[c] = new ArrayList<>();
    }
    this.hint = new byte[classes];
    this.allocs = new long[classes];
    this.frees = new long[classes];
    this.remoteFrees = new long[classes];
  }

  /**
   * A slab of cls with a free block, made current: the current one's remote frees, the slabs
   * other threads freed into (when hinted), another slab with free blocks, then a new slab from
   * the core. Null when the core refuses one (the caller then takes the native path, which
   * gives the precise error or a block of its own).
   */
  LentSlab refill(int cls) {
    LentSlab s = cur[cls];
    if (s.collect() > 0) return s;
    if ((byte) SlabCache.HINT.getAndSet(hint, cls, (byte) 0) != (byte) 0) {
      ArrayList<LentSlab> all = slabs[cls];
      for (int k = all.size() - 1; k >= 0; k--) {   // backwards: freedInto may remove one
        LentSlab a = all.get(k);
        if (a != s && a.collect() > 0) freedInto(a);
      }
    }
    ArrayList<LentSlab> av = avail[cls];
    while (!av.isEmpty()) {
      LentSlab a = av.remove(av.size() - 1);
      a.inAvail = false;
      if (a.top > 0 || a.collect() > 0) return current(a);
    }
    LentSlab lent = heap.lend(this, cls);
    if (lent == null) return null;
    slabs[cls].add(lent);
    return current(lent);
  }

  private LentSlab current(LentSlab s) {
    unkeep(s);
    cur[s.cls] = s;
    return s;
  }

  private void unkeep(LentSlab s) {
    if (s.kept) {
      s.kept = false;
      keptEmpty--;
    }
  }

  /**
   * Owner: s, not the current slab, has free blocks now. An emptied slab is kept within the
   * budget, else goes back to the core.
   */
  void freedInto(LentSlab s) {
    if (s.used == 0 && !s.kept) {
      if (keptEmpty >= KEEP_EMPTY) {
        giveBack(s);
        return;
      }
      s.kept = true;
      keptEmpty++;
    }
    if (!s.inAvail) {
      s.inAvail = true;
      avail[s.cls].add(s);
    }
  }

  /** Owner or sweep: returns an empty slab to the core. */
  void giveBack(LentSlab s) {
    unkeep(s);
    slabs[s.cls].remove(s);
    if (s.inAvail) {
      avail[s.cls].remove(s);
      s.inAvail = false;
    }
    if (cur[s.cls] == s) cur[s.cls] = LentSlab.EMPTY;
    heap.giveBack(s);
  }

  /**
   * Owner (trim) or sweep (dead owner): collects every slab's remote frees and returns the
   * empty ones; the others stay (owner) or become orphans (sweep). Returns the slabs kept.
   */
  ArrayList<LentSlab> returnEmpty() {
    ArrayList<LentSlab> kept = new ArrayList<>();
    for (int c = 0; c < slabs.length; c++) {
      for (LentSlab s : new ArrayList<>(slabs[c])) {
        s.collect();
        if (s.used == 0) giveBack(s);
        else kept.add(s);
      }
    }
    return kept;
  }
}
