// SPDX-License-Identifier: Apache-2.0
/*
 * Where the blocks of a debug heap were allocated, for its corruption reports.
 *
 * The core reports damage to a block when it checks it: a canary on free or reallocate, the
 * fill of a freed block when it leaves the quarantine, on trim, or when it is handed out again.
 * By then the block may have been freed, so a freed block keeps its site while the core may
 * still report it: the most recent freed sites are kept, twice as many as the quarantine holds.
 * Each allocation walks the stack: debug mode only. Thread-safe.
 */
package io.segfit.internal;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

public final class AllocationSites {
  private final String heap;
  private final int keepFreed;
  private final ConcurrentHashMap<Long, Site> live = new ConcurrentHashMap<>();
  private final LinkedHashMap<Long, Site> freed;

  /** Sites for the heap named heap, keeping the sites of the last keepFreed freed blocks. */
  public AllocationSites(String heap, int keepFreed) {
    this.heap = heap;
    this.keepFreed = keepFreed;
    this.freed = new LinkedHashMap<>(16, 0.75f, false) {
      private static final long serialVersionUID = 1L;

      @Override
      protected boolean removeEldestEntry(Map.Entry<Long, Site> eldest) {
        return size() > AllocationSites.this.keepFreed;
      }
    };
  }

  /** A block of size bytes was allocated at address by the calling thread, just now. */
  public void allocated(long address, long size) {
    live.put(address, new Site(heap, address, size));
  }

  /** The block at address was freed (or moved away from address by a reallocation). */
  public void freed(long address) {
    Site site = live.remove(address);
    if (site == null) return;
    synchronized (freed) {
      freed.put(address, site);
    }
  }

  /** The allocation site of the live or recently freed block at address, or null. */
  public Throwable site(long address) {
    Site site = live.get(address);
    if (site != null) return site;
    synchronized (freed) {
      return freed.get(address);
    }
  }

  /** The stack of the allocation, starting at the caller's call into segfit. */
  static final class Site extends Throwable {
    private static final long serialVersionUID = 1L;

    Site(String heap, long address, long size) {
      super("allocation site of the " + size + "-byte block 0x" + Long.toHexString(address)
          + " of heap '" + heap + "'");
      setStackTrace(fromCaller(getStackTrace()));
    }
  }

  /** stack without segfit's own frames above the caller's call into Heap. */
  static StackTraceElement[] fromCaller(StackTraceElement[] stack) {
    int first = 0;
    while (first < stack.length - 1 && isOurs(stack[first]) && isOurs(stack[first + 1])) first++;
    return java.util.Arrays.copyOfRange(stack, first, stack.length);
  }

  private static boolean isOurs(StackTraceElement e) {
    return e.getClassName().startsWith("io.segfit.internal.")
        || e.getClassName().equals("io.segfit.Heap");
  }
}
