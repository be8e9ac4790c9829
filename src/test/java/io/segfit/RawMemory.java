// SPDX-License-Identifier: Apache-2.0
/*
 * Reads and writes memory at raw addresses the way the users of segfit's address API do: with
 * FFM (MemorySegment) on JDK 22 and later, with sun.misc.Unsafe before. Both are reached
 * reflectively so the tests compile with --release 17; neither prints a warning (Unsafe's
 * memory-access methods warn from JDK 24 on, which is why FFM is used there, and FFM's restricted
 * reinterpret is allowed by --enable-native-access, which the build passes).
 *
 * For tests only: nothing checks that an address is mapped, exactly as in user code.
 */
package io.segfit;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;

final class RawMemory {
  private static volatile RawMemory instance;

  private final MethodHandle getByte; // (long)byte
  private final MethodHandle putByte; // (long, byte)void
  private final MethodHandle addressOf; // (ByteBuffer)long
  final String via;

  private RawMemory(MethodHandle getByte, MethodHandle putByte, MethodHandle addressOf,
      String via) {
    this.getByte = getByte;
    this.putByte = putByte;
    this.addressOf = addressOf;
    this.via = via;
  }

  /** The address of a direct buffer's first byte, as FFM (or Unsafe) reports it. */
  long addressOf(ByteBuffer buffer) {
    try {
      return (long) addressOf.invokeExact(buffer);
    } catch (Throwable t) {
      throw new AssertionError(t);
    }
  }

  static RawMemory get() {
    RawMemory r = instance;
    if (r == null) {
      try {
        r = Runtime.version().feature() >= 22 ? ffm() : unsafe();
      } catch (ReflectiveOperationException e) {
        throw new AssertionError("no raw memory access on this JDK", e);
      }
      instance = r;
    }
    return r;
  }

  byte get(long address) {
    try {
      return (byte) getByte.invokeExact(address);
    } catch (Throwable t) {
      throw new AssertionError(t);
    }
  }

  void put(long address, byte value) {
    try {
      putByte.invokeExact(address, value);
    } catch (Throwable t) {
      throw new AssertionError(t);
    }
  }

  private static RawMemory ffm() throws ReflectiveOperationException {
    MethodHandles.Lookup lookup = MethodHandles.publicLookup();
    Class<?> segment = Class.forName("java.lang.foreign.MemorySegment");
    Class<?> ofByte = Class.forName("java.lang.foreign.ValueLayout$OfByte");
    Class<?> valueLayout = Class.forName("java.lang.foreign.ValueLayout");
    Object nul = segment.getField("NULL").get(null);
    Object all = segment.getMethod("reinterpret", long.class).invoke(nul, Long.MAX_VALUE);
    Object javaByte = valueLayout.getField("JAVA_BYTE").get(null);
    MethodHandle get = lookup.findVirtual(segment, "get",
        MethodType.methodType(byte.class, ofByte, long.class));
    MethodHandle set = lookup.findVirtual(segment, "set",
        MethodType.methodType(void.class, ofByte, long.class, byte.class));
    get = MethodHandles.insertArguments(get, 0, all, javaByte);
    set = MethodHandles.insertArguments(set, 0, all, javaByte);
    MethodHandle ofBuffer = lookup.findStatic(segment, "ofBuffer",
        MethodType.methodType(segment, java.nio.Buffer.class));
    MethodHandle address = lookup.findVirtual(segment, "address", MethodType.methodType(long.class));
    MethodHandle addressOf = MethodHandles.filterReturnValue(ofBuffer, address)
        .asType(MethodType.methodType(long.class, ByteBuffer.class));
    return new RawMemory(get, set, addressOf, "FFM MemorySegment");
  }

  private static RawMemory unsafe() throws ReflectiveOperationException {
    Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
    Field f = unsafeClass.getDeclaredField("theUnsafe");
    f.setAccessible(true);
    Object unsafe = f.get(null);
    MethodHandles.Lookup lookup = MethodHandles.publicLookup();
    MethodHandle get = lookup.findVirtual(unsafeClass, "getByte",
        MethodType.methodType(byte.class, long.class)).bindTo(unsafe);
    MethodHandle put = lookup.findVirtual(unsafeClass, "putByte",
        MethodType.methodType(void.class, long.class, byte.class)).bindTo(unsafe);
    long offset = (long) unsafeClass.getMethod("objectFieldOffset", Field.class)
        .invoke(unsafe, java.nio.Buffer.class.getDeclaredField("address"));
    MethodHandle getLong = lookup.findVirtual(unsafeClass, "getLong",
        MethodType.methodType(long.class, Object.class, long.class)).bindTo(unsafe);
    MethodHandle addressOf = MethodHandles.insertArguments(getLong, 1, offset)
        .asType(MethodType.methodType(long.class, ByteBuffer.class));
    return new RawMemory(get, put, addressOf, "sun.misc.Unsafe");
  }
}
