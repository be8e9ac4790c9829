// SPDX-License-Identifier: Apache-2.0
/*
 * libc malloc/free as FFM downcalls with Linker.Option.critical(false): no thread-state
 * transition, the cheapest way a JDK 22+ program calls malloc. Addresses travel as long (size_t
 * and pointers are 64-bit on every platform segfit supports), so the raw path makes no segment.
 */
package io.segfit.bench.ffm;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;

public final class Libc {
  private static final Linker LINKER = Linker.nativeLinker();
  private static final MethodHandle MALLOC = LINKER.downcallHandle(
      LINKER.defaultLookup().find("malloc").orElseThrow(),
      FunctionDescriptor.of(JAVA_LONG, JAVA_LONG), Linker.Option.critical(false));
  private static final MethodHandle REALLOC = LINKER.downcallHandle(
      LINKER.defaultLookup().find("realloc").orElseThrow(),
      FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG), Linker.Option.critical(false));
  private static final MethodHandle FREE = LINKER.downcallHandle(
      LINKER.defaultLookup().find("free").orElseThrow(),
      FunctionDescriptor.ofVoid(JAVA_LONG), Linker.Option.critical(false));

  private Libc() {}

  public static long malloc(long size) {
    try {
      long a = (long) MALLOC.invokeExact(size);
      if (a == 0) {
        throw new OutOfMemoryError("malloc(" + size + ") returned NULL");
      }
      return a;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static long realloc(long address, long size) {
    try {
      long a = (long) REALLOC.invokeExact(address, size);
      if (a == 0) {
        throw new OutOfMemoryError("realloc(" + size + ") returned NULL");
      }
      return a;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static void free(long address) {
    try {
      FREE.invokeExact(address);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** A DirectByteBuffer over malloc'd memory, the way JDK 22+ code wraps foreign memory. */
  public static ByteBuffer wrap(long address, int size) {
    return MemorySegment.ofAddress(address).reinterpret(size).asByteBuffer();
  }

  /** The address behind a buffer made by {@link #wrap}. */
  public static long address(ByteBuffer buffer) {
    return MemorySegment.ofBuffer(buffer).address();
  }

  private static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException r) {
      throw r;
    }
    if (t instanceof Error e) {
      throw e;
    }
    throw new IllegalStateException(t);
  }
}
