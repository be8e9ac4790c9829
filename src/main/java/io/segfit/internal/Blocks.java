// SPDX-License-Identifier: Apache-2.0
/*
 * The hot block calls of Heap (allocate, reallocate, free, usable size, a buffer's address):
 * the one seam between the facade and the way it reaches the C core.
 *
 * This is the JDK 17-21 version: every call is NativeHeap's JNI method. The jar is
 * multi-release: on JDK 22+ src/main/java22/io/segfit/internal/Blocks.java replaces this class
 * with one of the same API that makes critical FFM downcalls straight to segfit_* (unless
 * segfit.ffm=false). Both versions keep NativeHeap's conventions exactly: an address (> 0) or a
 * negative SEGFIT_E_* code, so Heap and Errors cannot tell which path ran.
 */
package io.segfit.internal;

import java.nio.ByteBuffer;

public final class Blocks {
  private Blocks() {}

  /** How this JVM reaches the core: "jni (why)" here; the JDK 22+ version may say "ffm". */
  public static String path() {
    int feature = Runtime.version().feature();
    if (feature < 22) return "jni (JDK " + feature + " has no FFM critical downcalls)";
    // A JDK 22+ loads this class only where the multi-release jar's versions are not applied.
    return "jni (the JDK 22+ classes in META-INF/versions/22 were not loaded: classes from a "
        + "directory, or a repackaged jar without Multi-Release: true)";
  }

  /** segfit_alloc: the address or a negative code. */
  public static long allocate(long heap, long size) {
    return NativeHeap.allocate(heap, size);
  }

  /** segfit_alloc_zeroed: the address or a negative code. */
  public static long allocateZeroed(long heap, long size) {
    return NativeHeap.allocateZeroed(heap, size);
  }

  /** segfit_alloc_aligned: the address or a negative code. */
  public static long allocateAligned(long heap, long size, long alignment) {
    return NativeHeap.allocateAligned(heap, size, alignment);
  }

  /** segfit_realloc: the new address or a negative code. */
  public static long reallocate(long heap, long address, long newSize) {
    return NativeHeap.reallocate(heap, address, newSize);
  }

  /** segfit_free: 0 or a negative code. */
  public static int free(long heap, long address) {
    return NativeHeap.free(heap, address);
  }

  /** segfit_free_sized: 0 or a negative code. */
  public static int freeSized(long heap, long address, long size) {
    return NativeHeap.freeSized(heap, address, size);
  }

  /** segfit_usable_size: the size or a negative code. */
  public static long usableSize(long heap, long address) {
    return NativeHeap.usableSize(heap, address);
  }

  /** As {@link NativeHeap#freeBuffer}: the address freed, a negative code, or 0 (no address). */
  public static long freeBuffer(long heap, ByteBuffer buffer, int capacity) {
    return NativeHeap.freeBuffer(heap, buffer, capacity);
  }

  /** As {@link NativeHeap#reallocateBuffer}: the new address, a negative code, or 0. */
  public static long reallocateBuffer(long heap, ByteBuffer buffer, int capacity, long newSize) {
    return NativeHeap.reallocateBuffer(heap, buffer, capacity, newSize);
  }

  /** Whether {@link #address} runs in Java, with no native call. Here it is a JNI call. */
  public static boolean addressInJava() {
    return false;
  }

  /** The address of a direct buffer's first element (position 0), 0 if it has none. */
  public static long address(ByteBuffer buffer) {
    return NativeHeap.address(buffer);
  }
}
