// SPDX-License-Identifier: Apache-2.0
/*
 * The hot block calls of Heap, JDK 22+ version (META-INF/versions/22 of the multi-release jar):
 * the same API as src/main/java/io/segfit/internal/Blocks.java, through FFM.
 *
 * Each call is one critical downcall (Linker.Option.critical: no thread-state transition, no
 * JNIEnv, no handle for the buffer) straight to the segfit_* function of segfit.h, found in
 * libsegfit.so by SymbolLookup.loaderLookup() (NativeLibrary System.load-ed it from this class
 * loader). Where the JNI path reads Buffer.address with GetLongField inside its call, this one
 * reads it with MemorySegment.ofBuffer(buffer).address() minus the buffer's position (the
 * segment starts at the position; a block is identified by the buffer's element 0, as on JDK 17).
 * Pointers and size_t travel as JAVA_LONG (64-bit on both supported platforms), so no call makes
 * a MemorySegment; the ofBuffer segment does not escape and is scalar-replaced.
 *
 * Invariants: results keep NativeHeap's conventions exactly (an address > 0 or a negative
 * SEGFIT_E_* code; 0 from the buffer calls when the buffer has no address), so Heap and Errors
 * see the same codes on both paths; segfit.h reports a failed pointer-returning call by NULL
 * plus segfit_last_error() (thread-local, read at once on the same thread, as jni.c does).
 * Critical downcalls hold off safepoints for the length of the call, so they are kept for calls
 * whose cost does not grow with the block: allocations and sized frees of slab blocks (at most
 * segfit_small_max() bytes). Larger allocations, sized frees and every realloc (a copy of up to
 * a slab block, an mremap, or a munmap of the old mapping) take an ordinary downcall, which lets
 * a safepoint proceed while the core maps, copies or unmaps. An unsized free cannot tell before
 * the call: like Unsafe.freeMemory (which frees in the VM state), it is critical even when the
 * block is large and its munmap takes a while.
 *
 * The JNI path stays: when segfit.ffm=false (kill switch, A/B), when this JDK would print a
 * native-access warning that JNI did not (JDK 22-23 without --enable-native-access; from JDK 24
 * loading the library already went through the same once-per-module check), or when the linker
 * does not support this platform. FFM is a static final decision, so the JIT folds the branch.
 */
package io.segfit.internal;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;

public final class Blocks {
  private Blocks() {}

  /** Null when the FFM path is used, else why not. */
  private static final String JNI_REASON;
  private static final boolean FFM;
  /** Larger sizes go through the ordinary (non-critical) handles. */
  private static final long SMALL_MAX;
  private static final MethodHandle ALLOC;
  private static final MethodHandle ALLOC_ZEROED;
  private static final MethodHandle ALLOC_ALIGNED;
  private static final MethodHandle REALLOC;
  private static final MethodHandle FREE;
  private static final MethodHandle FREE_SIZED;
  private static final MethodHandle USABLE_SIZE;
  private static final MethodHandle LAST_ERROR;
  private static final MethodHandle ALLOC_LARGE;
  private static final MethodHandle ALLOC_ZEROED_LARGE;
  private static final MethodHandle ALLOC_ALIGNED_LARGE;
  private static final MethodHandle FREE_SIZED_LARGE;

  static {
    String reason = reasonForJni();
    MethodHandle[] h = null;
    if (reason == null) {
      try {
        h = downcalls();
      } catch (UnsupportedOperationException e) {
        reason = "the FFM linker does not support this platform: " + e.getMessage();
      }
    }
    JNI_REASON = reason;
    FFM = h != null;
    SMALL_MAX = FFM ? NativeHeap.smallMax() : 0; // FFM: the library is loaded
    if (h == null) h = new MethodHandle[12];
    ALLOC = h[0];
    ALLOC_ZEROED = h[1];
    ALLOC_ALIGNED = h[2];
    REALLOC = h[3];
    FREE = h[4];
    FREE_SIZED = h[5];
    USABLE_SIZE = h[6];
    LAST_ERROR = h[7];
    ALLOC_LARGE = h[8];
    ALLOC_ZEROED_LARGE = h[9];
    ALLOC_ALIGNED_LARGE = h[10];
    FREE_SIZED_LARGE = h[11];
  }

  private static String reasonForJni() {
    boolean wanted;
    try {
      wanted = Option.FFM.booleanValue();
    } catch (IllegalArgumentException e) {
      // A tuning switch: a bad value keeps the path every JDK has, and says so.
      System.getLogger("io.segfit").log(System.Logger.Level.WARNING,
          e.getMessage() + "; using the JNI path");
      return e.getMessage();
    }
    if (!wanted) return Option.FFM.key() + "=false";
    NativeLibrary.ensureLoaded();
    if (Runtime.version().feature() < 24 && !Blocks.class.getModule().isNativeAccessEnabled()) {
      return "native access is not enabled for " + Blocks.class.getModule()
          + " (JDK " + Runtime.version().feature() + " would warn for FFM, not for JNI)";
    }
    return null;
  }

  private static MethodHandle[] downcalls() {
    Linker linker = Linker.nativeLinker();
    SymbolLookup lookup = SymbolLookup.loaderLookup();
    FunctionDescriptor alloc = FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG);
    FunctionDescriptor aligned = FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG,
        JAVA_LONG);
    FunctionDescriptor freeSized = FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG,
        JAVA_LONG);
    return new MethodHandle[] {
        downcall(linker, lookup, "segfit_alloc", alloc, true),
        downcall(linker, lookup, "segfit_alloc_zeroed", alloc, true),
        downcall(linker, lookup, "segfit_alloc_aligned", aligned, true),
        downcall(linker, lookup, "segfit_realloc", aligned, false),
        downcall(linker, lookup, "segfit_free", FunctionDescriptor.of(JAVA_INT, JAVA_LONG,
            JAVA_LONG), true),
        downcall(linker, lookup, "segfit_free_sized", freeSized, true),
        downcall(linker, lookup, "segfit_usable_size", FunctionDescriptor.of(JAVA_LONG,
            JAVA_LONG, JAVA_LONG), true),
        downcall(linker, lookup, "segfit_last_error", FunctionDescriptor.of(JAVA_INT), true),
        downcall(linker, lookup, "segfit_alloc", alloc, false),
        downcall(linker, lookup, "segfit_alloc_zeroed", alloc, false),
        downcall(linker, lookup, "segfit_alloc_aligned", aligned, false),
        downcall(linker, lookup, "segfit_free_sized", freeSized, false),
    };
  }

  private static MethodHandle downcall(Linker linker, SymbolLookup lookup, String name,
      FunctionDescriptor descriptor, boolean critical) {
    MemorySegment symbol = lookup.find(name).orElseThrow(() -> new IllegalStateException(
        NativeLibrary.source() + " does not export " + name + " (segfit.h): the Java facade "
            + "and the native library do not match"));
    return critical
        ? linker.downcallHandle(symbol, descriptor, Linker.Option.critical(false))
        : linker.downcallHandle(symbol, descriptor);
  }

  /** How this JVM reaches the core: "ffm", or "jni (why)". */
  public static String path() {
    return FFM ? "ffm" : "jni (" + JNI_REASON + ")";
  }

  /** segfit_alloc: the address or a negative code. */
  public static long allocate(long heap, long size) {
    if (!FFM) return NativeHeap.allocate(heap, size);
    try {
      return addressOrFailure(size <= SMALL_MAX ? (long) ALLOC.invokeExact(heap, size)
          : (long) ALLOC_LARGE.invokeExact(heap, size));
    } catch (Throwable t) {
      throw unexpected(t);
    }
  }

  /** segfit_alloc_zeroed: the address or a negative code. */
  public static long allocateZeroed(long heap, long size) {
    if (!FFM) return NativeHeap.allocateZeroed(heap, size);
    try {
      return addressOrFailure(size <= SMALL_MAX ? (long) ALLOC_ZEROED.invokeExact(heap, size)
          : (long) ALLOC_ZEROED_LARGE.invokeExact(heap, size));
    } catch (Throwable t) {
      throw unexpected(t);
    }
  }

  /** segfit_alloc_aligned: the address or a negative code. */
  public static long allocateAligned(long heap, long size, long alignment) {
    if (!FFM) return NativeHeap.allocateAligned(heap, size, alignment);
    try {
      // Large alignments make large blocks (own mappings) whatever the size.
      return addressOrFailure(size <= SMALL_MAX && alignment <= SMALL_MAX
          ? (long) ALLOC_ALIGNED.invokeExact(heap, size, alignment)
          : (long) ALLOC_ALIGNED_LARGE.invokeExact(heap, size, alignment));
    } catch (Throwable t) {
      throw unexpected(t);
    }
  }

  /** segfit_realloc: the new address or a negative code. */
  public static long reallocate(long heap, long address, long newSize) {
    if (!FFM) return NativeHeap.reallocate(heap, address, newSize);
    try {
      return addressOrFailure((long) REALLOC.invokeExact(heap, address, newSize));
    } catch (Throwable t) {
      throw unexpected(t);
    }
  }

  /** segfit_free: 0 or a negative code. */
  public static int free(long heap, long address) {
    if (!FFM) return NativeHeap.free(heap, address);
    try {
      return (int) FREE.invokeExact(heap, address);
    } catch (Throwable t) {
      throw unexpected(t);
    }
  }

  /** segfit_free_sized: 0 or a negative code. */
  public static int freeSized(long heap, long address, long size) {
    if (!FFM) return NativeHeap.freeSized(heap, address, size);
    try {
      return size <= SMALL_MAX ? (int) FREE_SIZED.invokeExact(heap, address, size)
          : (int) FREE_SIZED_LARGE.invokeExact(heap, address, size);
    } catch (Throwable t) {
      throw unexpected(t);
    }
  }

  /** segfit_usable_size: the size or a negative code. */
  public static long usableSize(long heap, long address) {
    if (!FFM) return NativeHeap.usableSize(heap, address);
    try {
      return (long) USABLE_SIZE.invokeExact(heap, address);
    } catch (Throwable t) {
      throw unexpected(t);
    }
  }

  /** As {@link NativeHeap#freeBuffer}: the address freed, a negative code, or 0 (no address). */
  public static long freeBuffer(long heap, ByteBuffer buffer, int capacity) {
    if (!FFM) return NativeHeap.freeBuffer(heap, buffer, capacity);
    long address = address(buffer);
    if (address == 0) return 0; // segfit_free_sized(NULL) would succeed: not a block
    int rc = freeSized(heap, address, capacity);
    return rc == 0 ? address : rc;
  }

  /**
   * As {@link NativeHeap#reallocateBuffer}: the new address, a negative code, or 0. The checks
   * are jni.c's: a live block at the buffer's address, at least capacity bytes long.
   */
  public static long reallocateBuffer(long heap, ByteBuffer buffer, int capacity, long newSize) {
    if (!FFM) return NativeHeap.reallocateBuffer(heap, buffer, capacity, newSize);
    long address = address(buffer);
    if (address == 0) return 0; // segfit_realloc(NULL) would allocate: not a block
    long usable = usableSize(heap, address);
    if (usable < 0) return usable;
    if (capacity > usable) return Errors.SIZE_MISMATCH;
    return reallocate(heap, address, newSize);
  }

  /** Whether {@link #address} runs in Java, with no native call: on the FFM path it does. */
  public static boolean addressInJava() {
    return FFM;
  }

  /** The address of a direct buffer's first element (position 0), 0 if it has none. */
  public static long address(ByteBuffer buffer) {
    if (!FFM) return NativeHeap.address(buffer);
    return MemorySegment.ofBuffer(buffer).address() - buffer.position();
  }

  private static long addressOrFailure(long address) throws Throwable {
    if (address != 0) return address;
    int code = (int) LAST_ERROR.invokeExact();
    return code < 0 ? code : Errors.OUT_OF_MEMORY;
  }

  /** invokeExact declares Throwable; a downcall of these descriptors throws nothing itself. */
  private static RuntimeException unexpected(Throwable t) {
    if (t instanceof RuntimeException r) throw r;
    if (t instanceof Error e) throw e;
    throw new IllegalStateException(t);
  }
}
