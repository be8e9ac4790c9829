// SPDX-License-Identifier: Apache-2.0
/*
 * Makes the DirectByteBuffer a caller sees for a block, without a JNI up-call per block.
 *
 * The address space is cut into 2^SEGFIT_REGION_SHIFT-aligned regions (1 GiB). The first time
 * a region is seen, one DirectByteBuffer spanning it is made with JNI NewDirectByteBuffer (about
 * 0.1 us, once; it maps or touches nothing). A block that lies inside one region - every slab
 * block, by the core's guarantee, and most large ones - is then viewed as
 * region.slice(offset, size): a plain Java allocation of one buffer object, no permissions, no
 * Unsafe. Only a block that straddles a region boundary gets a NewDirectByteBuffer of its own.
 * Lookups go through a small direct-mapped table of immutable Region objects; a racy read is
 * harmless because a Region's fields are final and any Region in a slot is valid for its index.
 * Region buffers are shared by all heaps and live as long as the class. They give no access by
 * themselves: the only caller that holds one, Netty's direct buffer without Unsafe, reads and
 * writes its own block through it at offsets it has checked, and never hands it out.
 */
package io.segfit.internal;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.ConcurrentHashMap;

public final class Regions {
  private Regions() {}

  /** The byte order of every buffer the facade hands out. */
  public static final ByteOrder ORDER = ByteOrder.nativeOrder();

  private static final int SHIFT = checkedShift();
  private static final long SIZE = 1L << SHIFT;
  private static final long MASK = SIZE - 1;
  private static final int TABLE_MASK = 1023;

  private static final Region[] TABLE = new Region[TABLE_MASK + 1];
  private static final ConcurrentHashMap<Long, Region> ALL = new ConcurrentHashMap<>();

  private static final class Region {
    final long index;
    final ByteBuffer buffer;

    Region(long index, ByteBuffer buffer) {
      this.index = index;
      this.buffer = buffer;
    }
  }

  private static int checkedShift() {
    int shift = NativeHeap.regionShift();
    if (shift < 12 || shift > 30) {
      throw new IllegalStateException("SEGFIT_REGION_SHIFT " + shift + " is outside [12, 30]");
    }
    return shift;
  }

  /**
   * A buffer over size bytes at address: position 0, limit and capacity size, native order.
   * The caller guarantees the memory is a live block (or part of one) of at least size bytes.
   */
  public static ByteBuffer view(long address, int size) {
    ByteBuffer region = spanning(address, size);
    return region != null ? region.slice(offset(address), size).order(ORDER)
        : NativeHeap.wrap(address, size).order(ORDER);
  }

  /**
   * The region buffer that holds the size bytes at address, or null when they straddle two
   * regions. The block's first byte is at {@link #offset(long)} in it. The buffer spans the whole
   * region, other owners' blocks included: the caller must keep its accesses within its block
   * and must never hand the buffer out.
   */
  public static ByteBuffer spanning(long address, int size) {
    if ((address & MASK) + size > SIZE) return null;
    long index = address >>> SHIFT;
    Region region = TABLE[(int) index & TABLE_MASK];
    if (region == null || region.index != index) region = region(index);
    return region.buffer;
  }

  /** Where address lies in its region's buffer. */
  public static int offset(long address) {
    return (int) (address & MASK);
  }

  private static Region region(long index) {
    Region region = ALL.computeIfAbsent(index,
        i -> new Region(i, NativeHeap.wrap(i << SHIFT, SIZE)));
    TABLE[(int) index & TABLE_MASK] = region;
    return region;
  }

  /** Number of region buffers made so far (for tests). */
  public static int regionCount() {
    return ALL.size();
  }
}
