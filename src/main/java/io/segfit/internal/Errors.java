// SPDX-License-Identifier: Apache-2.0
/*
 * Turns the C core's SEGFIT_E_* codes into Java exceptions: the only place that does.
 *
 * The values are read from the SEGFIT_ERRORS X-macro through the JNI glue, never retyped here;
 * a name this class needs that the header lacks fails class initialization with a clear message.
 * Mapping: bad size or alignment, and a pointer or buffer that is not a live block of the heap
 * -> IllegalArgumentException; a block already freed, a closed heap, a debug-check failure ->
 * IllegalStateException; the heap's limit or the OS refusing memory -> HeapOutOfMemoryError.
 * Methods that build an exception return it (or throw the Error themselves) so that call sites
 * read "throw Errors.x(...)" and stay small enough to inline.
 */
package io.segfit.internal;

import io.segfit.HeapOutOfMemoryError;
import java.util.LinkedHashMap;
import java.util.Map;

public final class Errors {
  private Errors() {}

  private static final Map<String, Integer> CODES = readCodes();

  public static final int INVALID_SIZE = code("INVALID_SIZE");
  public static final int INVALID_ALIGNMENT = code("INVALID_ALIGNMENT");
  public static final int NOT_A_BLOCK = code("NOT_A_BLOCK");
  public static final int ALREADY_FREE = code("ALREADY_FREE");
  public static final int SIZE_MISMATCH = code("SIZE_MISMATCH");
  public static final int LIMIT = code("LIMIT");
  public static final int OUT_OF_MEMORY = code("OUT_OF_MEMORY");
  public static final int CLOSED = code("CLOSED");
  public static final int INVALID_OPTION = code("INVALID_OPTION");
  public static final int CORRUPTED = code("CORRUPTED");

  private static Map<String, Integer> readCodes() {
    Map<String, Integer> codes = new LinkedHashMap<>();
    int count = NativeHeap.errorCount();
    for (int i = 0; i < count; i++) codes.put(NativeHeap.errorName(i), NativeHeap.errorValue(i));
    return codes;
  }

  private static int code(String name) {
    Integer value = CODES.get(name);
    if (value == null) {
      throw new IllegalStateException("segfit.h defines no SEGFIT_E_" + name + " (it defines "
          + CODES.keySet() + "): the Java facade and the native library do not match");
    }
    return value;
  }

  /** The names and values of SEGFIT_ERRORS, in header order. */
  public static Map<String, Integer> codes() {
    return java.util.Collections.unmodifiableMap(CODES);
  }

  /** "SEGFIT_E_NAME (message)" for a code. */
  public static String describe(long code) {
    for (Map.Entry<String, Integer> e : CODES.entrySet()) {
      if (e.getValue() == code) {
        return "SEGFIT_E_" + e.getKey() + " (" + NativeHeap.errorMessage((int) code) + ")";
      }
    }
    return "unknown segfit error " + code;
  }

  /**
   * The exception for a failed segfit_heap_create: heap is the name asked for (null when the core
   * was to choose one), reserveBytes and maxBytes the options, options the builder's description.
   * Throws HeapOutOfMemoryError itself when the reservation cannot be mapped.
   */
  public static RuntimeException creation(long code, String heap, long reserveBytes,
      long maxBytes, String options) {
    String what = heap == null ? "a heap" : "heap '" + heap + "'";
    if (code == INVALID_OPTION) {
      return new IllegalArgumentException("cannot create " + what + ": an option is out of the "
          + "core's range (" + options + ")");
    }
    if (code == OUT_OF_MEMORY || code == LIMIT) {
      throw new HeapOutOfMemoryError(heap == null ? "?" : heap, reserveBytes, maxBytes, 0, false);
    }
    return new IllegalStateException("cannot create " + what + ": " + describe(code));
  }

  public static IllegalStateException closed(String heap) {
    return new IllegalStateException("heap '" + heap + "' is closed");
  }

  /**
   * The exception for a failed allocation or reallocation of size bytes (alignment 0 when none
   * was asked). Throws HeapOutOfMemoryError itself for LIMIT and OUT_OF_MEMORY.
   */
  public static RuntimeException allocation(long code, String heap, long handle, long size,
      long alignment) {
    if (code == INVALID_SIZE) {
      return new IllegalArgumentException("heap '" + heap + "': size " + size
          + (size < 0 ? " is negative" : " is larger than the maximum block size "
              + NativeHeap.maxSize()));
    }
    if (code == INVALID_ALIGNMENT) {
      return new IllegalArgumentException("heap '" + heap + "': alignment " + alignment
          + " is not a power of two between 1 and " + NativeHeap.maxAlignment());
    }
    if (code == LIMIT || code == OUT_OF_MEMORY) {
      long[] stats = Stats.array();
      boolean known = NativeHeap.stats(handle, stats) == 0;
      long limit = known ? stats[Stats.MAX_BYTES] : -1;
      long live = known ? stats[Stats.LIVE_BYTES] : -1;
      // Committed but not live: what the heap's reclaim could not give back. The two figures are
      // read without stopping other threads, so clamp a momentary inversion.
      long held = known ? Math.max(0, stats[Stats.COMMITTED_BYTES] - live) : -1;
      boolean limitHit = code == LIMIT;
      if (limitHit) Jfr.limitHit(heap, size, limit, live);
      throw new HeapOutOfMemoryError(heap, size, limit, live, held, limitHit);
    }
    return other(code, heap, "allocation of " + size + " bytes", 0);
  }

  /** The exception for a failed reallocation of the block at address to newSize bytes. */
  public static RuntimeException reallocation(long code, String heap, long handle, long address,
      long newSize) {
    if (code == INVALID_SIZE || code == LIMIT || code == OUT_OF_MEMORY) {
      return allocation(code, heap, handle, newSize, 0);
    }
    return other(code, heap, "reallocate", address);
  }

  /** The exception for a failed free or usableSizeAddress of the block at address. */
  public static RuntimeException block(long code, String heap, String operation, long address) {
    return other(code, heap, operation, address);
  }

  /**
   * A debug check failed during operation (free of address, or trim when address is 0);
   * records: the core's description of each damaged block.
   */
  public static IllegalStateException corrupted(String heap, String operation, long address,
      String records) {
    String at = address == 0 ? "" : " of 0x" + Long.toHexString(address);
    String freed = address == 0 ? "" : " (the block was freed anyway)";
    return new IllegalStateException("heap '" + heap + "': " + operation + at + ": debug check "
        + "failed, memory was corrupted" + freed + (records.isEmpty() ? "" : ": " + records));
  }

  private static RuntimeException other(long code, String heap, String operation, long address) {
    String at = address == 0 ? "" : " of 0x" + Long.toHexString(address);
    String prefix = "heap '" + heap + "': " + operation + at + " failed: ";
    if (code == CLOSED) return closed(heap);
    if (code == NOT_A_BLOCK || code == 0) {
      return new IllegalArgumentException(prefix + "not the start of a live block of this heap");
    }
    if (code == SIZE_MISMATCH) {
      return new IllegalArgumentException(prefix + "the buffer's capacity does not match the "
          + "block's size (a view smaller or larger than the block)");
    }
    if (code == ALREADY_FREE) {
      return new IllegalStateException(prefix + "the block was already freed");
    }
    if (code == CORRUPTED) return corrupted(heap, operation, address, "");
    if (code == INVALID_SIZE) {
      return new IllegalArgumentException(prefix + describe(code));
    }
    return new IllegalStateException(prefix + describe(code));
  }
}
