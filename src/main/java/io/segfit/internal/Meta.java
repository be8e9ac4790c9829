// SPDX-License-Identifier: Apache-2.0
/*
 * The core's shared metadata area (native/src/os.c) as the thread cache reads and writes it:
 * offsets from its base (ThreadCache.base()), native byte order. One direct buffer over the
 * whole area, made once with NewDirectByteBuffer; the area is never unmapped, so every offset
 * inside stays readable. Used only when ThreadCache found the area.
 *
 * This is the JDK 17-21 version. On JDK 22+ src/main/java22/io/segfit/internal/Meta.java
 * replaces it with a MemorySegment over the same area, whose base and bound the JIT folds into
 * each access (a ByteBuffer's fields are loaded again at every access).
 */
package io.segfit.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

final class Meta {
  private Meta() {}

  private static final VarHandle INT =
      MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());
  private static final ByteBuffer AREA =
      NativeHeap.wrap(ThreadCache.base(), ThreadCache.size()).order(ByteOrder.nativeOrder());

  static long getLong(long offset) {
    return AREA.getLong((int) offset);
  }

  static int getInt(long offset) {
    return AREA.getInt((int) offset);
  }

  static byte get(long offset) {
    return AREA.get((int) offset);
  }

  static void put(long offset, byte value) {
    AREA.put((int) offset, value);
  }

  static int getIntVolatile(long offset) {
    return (int) INT.getVolatile(AREA, (int) offset);
  }

  static boolean compareAndSetInt(long offset, int expected, int value) {
    return INT.compareAndSet(AREA, (int) offset, expected, value);
  }
}
