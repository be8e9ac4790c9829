// SPDX-License-Identifier: Apache-2.0
/*
 * The buffers a heap handed out lately, by block: so that a block allocated again with the same
 * size gets its buffer object back instead of a new one (a slice's constructor chain, the
 * larger part of a small round trip's Java work), and so that freeing a buffer this memo
 * handed out needs no native call to learn its address.
 *
 * Slots are found from the low 30 bits of the block's address, which a buffer also gives in
 * pure Java (ByteBuffer.alignmentOffset(0, 2^30)). Those bits alone never identify a block (a
 * buffer of another heap, region or allocator may share them), so a buffer's address is taken
 * from a slot only when the slot holds that very buffer object: a buffer's address never
 * changes, so the slot's address is the buffer's. A duplicate, a slice, or a buffer pushed out
 * of its slot is not found, and the caller reads its address the usual way.
 *
 * Thread-safety: slots are read and written by any thread without locks. An entry is one
 * immutable object (its fields final), so a racy read sees a whole entry or none; it is the one
 * Java allocation besides a new buffer, and only when the buffer is new. A buffer is
 * reused only by the allocation that owns its block: the core hands a block to one caller at
 * a time, and the buffer of a freed block belongs to nobody (a reference kept past free is a
 * use after free; it now may be the same object as the block's next buffer).
 */
package io.segfit.internal;

import java.nio.ByteBuffer;

public final class BufferMemo {
  /** 4096 slots: a slab of the smallest blocks cycles through about as many addresses. */
  private static final int SLOT_BITS = 12;
  /** Largest unit ByteBuffer.alignmentOffset accepts: the low 30 bits of an address. */
  private static final int LOW_UNIT = 1 << 30;

  private static final class Entry {
    final long address;
    final ByteBuffer buffer;

    Entry(long address, ByteBuffer buffer) {
      this.address = address;
      this.buffer = buffer;
    }
  }

  private final Entry[] slots = new Entry[1 << SLOT_BITS];

  private static int slot(long low) {
    return (int) (low * 0x9E3779B9L) >>> (32 - SLOT_BITS);
  }

  /**
   * The buffer of a block that was just allocated: position 0, limit = capacity = size, native
   * order; the block's previous buffer when it had this size, else a new view.
   */
  public ByteBuffer view(long address, int size) {
    int i = slot(address & (LOW_UNIT - 1));
    Entry e = slots[i];
    if (e != null && e.address == address && e.buffer.capacity() == size) {
      e.buffer.clear().order(Regions.ORDER);
      return e.buffer;
    }
    ByteBuffer b = Regions.view(address, size);
    slots[i] = new Entry(address, b);
    return b;
  }

  /** The address of buffer if this memo handed it out and still holds it, else 0. */
  public long address(ByteBuffer buffer) {
    Entry e = slots[slot(buffer.alignmentOffset(0, LOW_UNIT))];
    return e != null && e.buffer == buffer ? e.address : 0;
  }
}
