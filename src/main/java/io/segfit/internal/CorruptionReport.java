// SPDX-License-Identifier: Apache-2.0
/*
 * Assembles the exception for a debug check that failed (SEGFIT_E_CORRUPTED): the core logs one
 * record per damaged block; the report names them all, and attaches each block's allocation
 * site when the heap keeps sites (the first as the cause, the others as suppressed exceptions),
 * so a write after free or an overrun points at the code that owned the block. Reading the
 * records drains the core's log, so each damage is reported once.
 */
package io.segfit.internal;

import java.util.ArrayList;
import java.util.List;

public final class CorruptionReport {
  private CorruptionReport() {}

  /**
   * The report of the check that failed during operation (free of address, or trim when
   * address is 0) on the heap of that handle and name; sites may be null.
   */
  public static IllegalStateException drain(long handle, String heap, AllocationSites sites,
      String operation, long address) {
    StringBuilder message = new StringBuilder();
    Throwable cause = null;
    List<Throwable> more = new ArrayList<>();
    long[] block = new long[1];
    for (String record; (record = NativeHeap.corruption(handle, block)) != null; ) {
      message.append(message.length() == 0 ? "" : "; ").append(record);
      Throwable site = sites == null ? null : sites.site(block[0]);
      if (site == null) continue;
      if (cause == null) cause = site;
      else more.add(site);
    }
    IllegalStateException e = Errors.corrupted(heap, operation, address, message.toString());
    if (cause != null) e.initCause(cause);
    more.forEach(e::addSuppressed);
    return e;
  }
}
