// SPDX-License-Identifier: Apache-2.0
/*
 * The core's shared metadata area, JDK 22+ version (META-INF/versions/22): the same API as
 * src/main/java/io/segfit/internal/Meta.java. Where the FFM path runs (Blocks: native access
 * granted, no warning), a MemorySegment over the area (MemorySegment.ofAddress + reinterpret,
 * restricted like the downcalls), whose base and bound the JIT folds into each access;
 * elsewhere the same direct buffer as on JDK 17.
 */
package io.segfit.internal;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

final class Meta {
  private Meta() {}

  private static final boolean SEGMENT = Blocks.addressInJava();
  private static final MemorySegment AREA = SEGMENT
      ? MemorySegment.ofAddress(ThreadCache.base()).reinterpret(ThreadCache.size()) : null;
  private static final ByteBuffer BUFFER = SEGMENT ? null
      : NativeHeap.wrap(ThreadCache.base(), ThreadCache.size()).order(ByteOrder.nativeOrder());
  private static final VarHandle INT = JAVA_INT.varHandle();
  private static final VarHandle BUFFER_INT =
      MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());

  static long getLong(long offset) {
    return SEGMENT ? AREA.get(JAVA_LONG_UNALIGNED, offset) : BUFFER.getLong((int) offset);
  }

  static int getInt(long offset) {
    return SEGMENT ? AREA.get(JAVA_INT_UNALIGNED, offset) : BUFFER.getInt((int) offset);
  }

  static byte get(long offset) {
    return SEGMENT ? AREA.get(JAVA_BYTE, offset) : BUFFER.get((int) offset);
  }

  static void put(long offset, byte value) {
    if (SEGMENT) AREA.set(JAVA_BYTE, offset, value);
    else BUFFER.put((int) offset, value);
  }

  static int getIntVolatile(long offset) {
    return SEGMENT ? (int) INT.getVolatile(AREA, offset)
        : (int) BUFFER_INT.getVolatile(BUFFER, (int) offset);
  }

  static boolean compareAndSetInt(long offset, int expected, int value) {
    return SEGMENT ? INT.compareAndSet(AREA, offset, expected, value)
        : BUFFER_INT.compareAndSet(BUFFER, (int) offset, expected, value);
  }
}
