// SPDX-License-Identifier: Apache-2.0
package demo;

import io.segfit.Heap;
import io.segfit.HeapOutOfMemoryError;
import io.segfit.HeapStats;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A heap with a hard limit: a request over it, then buffers until the limit refuses one. Each
 * refusal is a {@link HeapOutOfMemoryError} carrying the heap's figures; the process lives on,
 * and once buffers are freed the heap allocates buffers of that size again.
 */
public final class Limits {
    private static final long MIB = 1 << 20;
    private static final long LIMIT = 64 * MIB;
    private static final int SIZE = 64 * 1024;

    public static void main(String[] args) {
        try (Heap heap = Heap.builder().name("limited").maxBytes(LIMIT).build()) {
            System.out.printf("heap 'limited', maxBytes %d MiB%n", LIMIT / MIB);

            System.out.printf("one block of %d MiB:%n", 2 * LIMIT / MIB);
            try {
                heap.allocateAddress(2 * LIMIT);
                System.out.println("  allocated: the limit did not hold");
            } catch (HeapOutOfMemoryError e) {
                report(e);
            }

            System.out.printf("buffers of %d KiB until the limit refuses one:%n", SIZE / 1024);
            List<ByteBuffer> held = new ArrayList<>();
            HeapOutOfMemoryError refusal = fill(heap, held);
            System.out.printf("  %d buffers allocated, %d MiB live; then%n", held.size(),
                    heap.stats().liveBytes() / MIB);
            report(refusal);

            int freed = held.size() / 2;
            for (ByteBuffer buffer : held.subList(held.size() - freed, held.size())) heap.free(buffer);
            held.subList(held.size() - freed, held.size()).clear();
            System.out.printf("the process goes on: %d buffers freed (%d MiB live now), and buffers of %d KiB"
                    + " again:%n", freed, heap.stats().liveBytes() / MIB, SIZE / 1024);
            int before = held.size();
            refusal = fill(heap, held);
            System.out.printf("  %d more buffers allocated before the limit refused one%s%n",
                    held.size() - before, refusal == null ? "" : " (" + refusal.getMessage() + ")");
            HeapStats stats = heap.stats();
            System.out.printf("  the heap's figures now: %d MiB live in %d blocks, %d MiB committed%n",
                    stats.liveBytes() / MIB, stats.liveBlocks(), stats.committedBytes() / MIB);
            for (ByteBuffer buffer : held) heap.free(buffer);
        }
    }

    /** Allocates buffers of SIZE into {@code held} until the heap refuses one; returns the refusal. */
    private static HeapOutOfMemoryError fill(Heap heap, List<ByteBuffer> held) {
        try {
            while (true) {
                ByteBuffer buffer = heap.allocate(SIZE);
                buffer.putLong(0, held.size());
                held.add(buffer);
            }
        } catch (HeapOutOfMemoryError e) {
            return e;
        }
    }

    private static void report(HeapOutOfMemoryError e) {
        System.out.println("  " + e.getClass().getSimpleName() + ": " + e.getMessage());
        System.out.printf("    (an OutOfMemoryError; requestedBytes %d, maxBytes %d, liveBytes %d,"
                + " isLimitReached %b)%n", e.requestedBytes(), e.maxBytes(), e.liveBytes(), e.isLimitReached());
    }
}
