// SPDX-License-Identifier: Apache-2.0
/*
 * The native methods of segfit, one per C entry point, implemented in native/src/jni.c.
 *
 * Invariants: every method is a plain translation of one segfit_* call (jni.c never allocates
 * on its own). Calls that produce an address return it as a positive long, or a negative
 * SEGFIT_E_* code on failure, so an allocation is one JNI call. Nothing here checks arguments:
 * the C core checks every size, alignment and pointer, and Errors turns its codes into
 * exceptions. Callers must have called NativeLibrary.ensureLoaded() first. Constants that jni.c
 * shares reach it through the javac -h header.
 */
package io.segfit.internal;

import java.nio.ByteBuffer;

public final class NativeHeap {
  private NativeHeap() {}

  /** Longest heap name in UTF-8 bytes (SEGFIT_MAX_NAME_LENGTH). */
  public static final int MAX_NAME_BYTES = maxNameLength();

  // --- constants of segfit.h --------------------------------------------------------------
  /** {@code SEGFIT_VERSION_MAJOR << 16 | MINOR << 8 | PATCH}. */
  public static native int version();
  /** SEGFIT_REGION_SHIFT. */
  public static native int regionShift();
  /** SEGFIT_MAX_SIZE. */
  public static native long maxSize();
  /** SEGFIT_MAX_ALIGNMENT. */
  public static native long maxAlignment();
  /** SEGFIT_MAX_CLASSES. */
  public static native int maxClasses();
  /** SEGFIT_MAX_NAME_LENGTH. */
  public static native int maxNameLength();
  /** segfit_small_max(). */
  public static native long smallMax();
  /** SEGFIT_DEFAULT_PURGE_DELAY_MS. */
  public static native long defaultPurgeDelayMs();
  /** SEGFIT_LEND_SLAB_MIN: the smallest lent slab's size; every lent slab is aligned to it. */
  public static native long lendSlabMin();
  /** segfit_slab_lend_size: the size (and alignment) of the slabs lent for blockSize, or 0. */
  public static native long lendSlabSize(long blockSize);
  /** SEGFIT_LEND_MAX_BLOCK: the largest block size of a lent slab. */
  public static native long lendMax();
  /** segfit_page_size(). */
  public static native long pageSize();

  // --- error codes (the SEGFIT_ERRORS X-macro) ----------------------------------------------
  /** Number of entries of SEGFIT_ERRORS. */
  public static native int errorCount();
  /** Name (without SEGFIT_E_) of entry index of SEGFIT_ERRORS. */
  public static native String errorName(int index);
  /** Value of entry index of SEGFIT_ERRORS. */
  public static native int errorValue(int index);
  /** segfit_strerror(code). */
  public static native String errorMessage(int code);

  // --- statistics (the SEGFIT_STATS and SEGFIT_CLASS_STATS X-macros; Stats reads them) -------
  /** The columns of statColumn, in the order of the X-macros' parameters. */
  public static final int STAT_FIELD = 0;
  public static final int STAT_ACCESSOR = 1;
  public static final int STAT_METRIC = 2;
  public static final int STAT_KIND = 3;
  public static final int STAT_UNIT = 4;
  public static final int STAT_DESCRIPTION = 5;
  public static final int STAT_COLUMNS = 6;

  /** Number of entries of SEGFIT_CLASS_STATS (perClass) or SEGFIT_STATS. */
  public static native int statCount(boolean perClass);
  /** Column of entry index of SEGFIT_CLASS_STATS (perClass) or SEGFIT_STATS; null if none. */
  public static native String statColumn(boolean perClass, int index, int column);

  // --- heaps ---------------------------------------------------------------------------------
  /**
   * segfit_heap_create. name: NUL-terminated UTF-8 of at most MAX_NAME_BYTES bytes, or null;
   * {@code purgeDelayMs < 0} means the default. Returns the heap pointer or a negative code.
   */
  public static native long create(byte[] name, long maxBytes, long reserveBytes,
      boolean preTouch, boolean hugePages, long purgeDelayMs, boolean debug);
  /** segfit_heap_destroy: 0 or a negative code. */
  public static native int destroy(long heap);
  /** segfit_heap_name. */
  public static native String name(long heap);
  /** segfit_trim: 0 or a negative code (CORRUPTED: see corruption). */
  public static native int trim(long heap);
  /**
   * segfit_debug_corruption: the description of the oldest logged corruption record of a debug
   * heap, its block's address in block[0]; null when there is none.
   */
  public static native String corruption(long heap, long[] block);
  /** segfit_stats into out (layout and length: see Stats): 0 or a negative code. */
  public static native int stats(long heap, long[] out);

  // --- blocks by address: results are addresses (> 0) or negative codes ----------------------
  public static native long allocate(long heap, long size);
  public static native long allocateZeroed(long heap, long size);
  public static native long allocateAligned(long heap, long size, long alignment);
  public static native long reallocate(long heap, long address, long newSize);
  /** segfit_free: 0 or a negative code. */
  public static native int free(long heap, long address);
  /** segfit_free_sized: 0 or a negative code. */
  public static native int freeSized(long heap, long address, long size);
  /** segfit_usable_size: the size or a negative code. */
  public static native long usableSize(long heap, long address);

  // --- slabs lent to SlabCache ---------------------------------------------------------------
  /**
   * segfit_slab_lend: the slab's start (aligned to lendSlabMin()) ORed with the count of blocks
   * handed out before (reserved, below that size), or a negative code.
   */
  public static native long lendSlab(long heap, long blockSize);
  /** segfit_slab_return: 0 or a negative code. */
  public static native int returnSlab(long heap, long start, int handedOut);
  /** segfit_slab_barrier: whether every running thread passed a full memory barrier. */
  public static native boolean slabBarrier();
  /** segfit_copy (memmove inside a call on the heap): 0 or a negative code. */
  public static native int copy(long heap, long dst, long src, long size);

  // --- blocks by buffer: the address is read from the buffer inside the call -----------------
  /**
   * segfit_free_sized(buffer's address, capacity). Returns the address freed (> 0), or a
   * negative code; 0 when the buffer's address is 0 (not a block). buffer must be direct.
   */
  public static native long freeBuffer(long heap, ByteBuffer buffer, int capacity);
  /**
   * segfit_realloc of the block the buffer starts, after checking with segfit_usable_size that
   * it is a live block at least capacity bytes long. Returns the new address or a negative
   * code (0 when the buffer's address is 0). buffer must be direct.
   */
  public static native long reallocateBuffer(long heap, ByteBuffer buffer, int capacity,
      long newSize);
  /** The address of a direct buffer (java.nio.Buffer.address). */
  public static native long address(ByteBuffer buffer);
  /** JNI NewDirectByteBuffer: an up-call, used once per region and for straddling blocks. */
  public static native ByteBuffer wrap(long address, long capacity);
}
