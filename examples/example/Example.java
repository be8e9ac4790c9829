// SPDX-License-Identifier: Apache-2.0
package example;

import io.segfit.Heap;
import io.segfit.HeapStats;
import java.nio.ByteBuffer;

/** The README's example, runnable: allocate, use, grow and free off-heap buffers. */
public final class Example {
    public static void main(String[] args) {
        try (Heap heap = Heap.builder().name("example").maxBytes(4L << 30).build()) {
            ByteBuffer buffer = heap.allocate(64);                 // direct, position 0, limit 64
            buffer.putLong(0, 42L);
            buffer = heap.reallocate(buffer, 1 << 20);            // contents kept
            System.out.println("read back " + buffer.getLong(0) + " from a "
                    + buffer.capacity() + "-byte buffer");
            heap.free(buffer);                                    // explicit, immediate

            long address = heap.allocateAddress(3L << 30);        // raw addresses go past 2 GiB
            System.out.println("3 GiB block at 0x" + Long.toHexString(address)
                    + ", usable " + heap.usableSizeAddress(address));
            heap.freeAddress(address);

            HeapStats stats = heap.stats();
            System.out.println("live after frees: " + stats.liveBytes() + " bytes in "
                    + stats.liveBlocks() + " blocks; " + System.getProperty("os.arch")
                    + (Example.class.getModule().isNamed() ? ", module path" : ", class path"));
        }
    }
}
