// SPDX-License-Identifier: Apache-2.0
/*
 * The one sun.misc.Unsafe handle of the benchmarks. Peers need it (allocateDirect is freed with
 * invokeCleaner; Unsafe.allocateMemory is itself a peer) and the raw-address benchmarks touch
 * memory with putByte so that every address peer pays the same for the touch. The library never
 * uses Unsafe; only this module does.
 */
package io.segfit.bench;

import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import sun.misc.Unsafe;

public final class Unsafes {
  public static final Unsafe UNSAFE = load();

  private Unsafes() {}

  /** Frees an allocateDirect buffer now instead of when the GC finds it. */
  public static void clean(ByteBuffer direct) {
    UNSAFE.invokeCleaner(direct);
  }

  private static Unsafe load() {
    try {
      Field f = Unsafe.class.getDeclaredField("theUnsafe");
      f.setAccessible(true);
      return (Unsafe) f.get(null);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
