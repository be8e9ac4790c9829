// SPDX-License-Identifier: Apache-2.0
package demo;

import io.segfit.Heap;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.lwjgl.system.Configuration;
import org.lwjgl.system.MemoryUtil;

/**
 * The same mistakes through segfit and through allocators that do not check them. segfit's run
 * in this JVM: each mistake is an exception, and the JVM goes on allocating. LWJGL's (with
 * jemalloc) and {@code Unsafe.freeMemory} (glibc's malloc) each run in a child JVM per mistake,
 * because the mistake may kill it; a child that survives writes and checks blocks afterwards, so
 * corruption that nothing reported is found by a checksum.
 *
 * <p>Usage: {@code Safety <work dir>}; {@code Safety child <peer> <mistake>} is one child.
 */
public final class Safety {
    private static final int SIZE = 64;
    private static final int BLOCKS = 1000;

    enum Mistake {
        DOUBLE_FREE("double free"),
        FOREIGN("foreign block (another allocator's)"),
        INTERIOR("interior address"),
        AFTER_CLOSE("free after close");

        final String label;

        Mistake(String label) {
            this.label = label;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("child")) {
            child(Peer.valueOf(args[1]), Mistake.valueOf(args[2]));
            return;
        }
        Path work = Path.of(args[0]);
        System.out.println("The same mistakes through segfit, in this JVM, and through allocators that"
                + " do not check them, in a child JVM each:");
        for (Peer peer : Peer.values()) System.out.printf("  %-8s %s%n", peer.label, peer.title());
        int segfitBlocks = 0;
        int segfitDamaged = 0;
        try (Heap heap = Heap.builder().name("safety").build()) {
            for (Mistake mistake : Mistake.values()) {
                System.out.println();
                System.out.println(mistake.label);
                row("segfit", segfit(heap, mistake));
                for (Peer peer : Peer.values()) {
                    if (mistake == Mistake.AFTER_CLOSE) {
                        row(peer.label, "(no heap to close)");
                        continue;
                    }
                    ChildJvm.Result result = ChildJvm.run(work, List.of("-Xmx64m", "-XX:+UseSerialGC"),
                            Map.of(), Safety.class, "child", peer.name(), mistake.name());
                    row(peer.label, peerOutcome(result));
                }
                // This JVM goes on after each mistake: blocks written and read back.
                segfitDamaged += checksumRun(heap);
                segfitBlocks += BLOCKS;
            }
        }
        System.out.println();
        System.out.println("segfit: this JVM went on after every mistake; " + segfitBlocks
                + " blocks written and checked since, " + segfitDamaged + " damaged");
    }

    private static void row(String who, String what) {
        System.out.printf("  %-8s %s%n", who, what);
    }

    /** The mistake through segfit: the exception it throws, in one line. */
    private static String segfit(Heap heap, Mistake mistake) {
        try {
            switch (mistake) {
                case DOUBLE_FREE -> {
                    ByteBuffer buffer = heap.allocate(SIZE);
                    heap.free(buffer);
                    heap.free(buffer);
                }
                case FOREIGN -> heap.free(ByteBuffer.allocateDirect(SIZE));
                case INTERIOR -> {
                    long address = heap.allocateAddress(SIZE);
                    try {
                        heap.freeAddress(address + 16);
                    } finally {
                        heap.freeAddress(address);
                    }
                }
                case AFTER_CLOSE -> {
                    Heap other = Heap.builder().name("closed").build();
                    ByteBuffer buffer = other.allocate(SIZE);
                    other.close();
                    other.free(buffer);
                }
            }
            return "no exception: segfit missed it";
        } catch (RuntimeException e) {
            return e.getClass().getSimpleName() + ": " + e.getMessage();
        }
    }

    /** Writes BLOCKS buffers with distinct contents, reads them back; returns how many differ. */
    private static int checksumRun(Heap heap) {
        List<ByteBuffer> buffers = new ArrayList<>();
        for (int i = 0; i < BLOCKS; i++) {
            ByteBuffer buffer = heap.allocate(SIZE);
            for (int offset = 0; offset < SIZE; offset += 8) buffer.putLong(offset, pattern(i, offset));
            buffers.add(buffer);
        }
        int damaged = 0;
        for (int i = 0; i < BLOCKS; i++) {
            for (int offset = 0; offset < SIZE; offset += 8) {
                if (buffers.get(i).getLong(offset) != pattern(i, offset)) {
                    damaged++;
                    break;
                }
            }
            heap.free(buffers.get(i));
        }
        return damaged;
    }

    private static long pattern(long block, long offset) {
        return (block * 0x9E3779B97F4A7C15L) ^ (offset * 0xC2B2AE3D27D4EB4FL) ^ 0x5E6F17L;
    }

    /** What the parent prints about a child: how it ended, and what its checksums found. */
    private static String peerOutcome(ChildJvm.Result result) {
        List<String> checked = result.lines(ChildJvm.RESULT + "checked ");
        if (result.exitCode() == 0 && !checked.isEmpty()) {
            String[] counts = checked.get(0).split(" ");   // "<blocks> <damaged> <shared>"
            long damaged = Long.parseLong(counts[1]);
            long shared = Long.parseLong(counts[2]);
            if (damaged == 0) {
                return "no error, and " + counts[0] + " blocks written afterwards read back intact:"
                        + " the mistake went unnoticed";
            }
            return "no error, the JVM ran on; then a checksum found " + damaged + " of " + counts[0]
                    + " blocks overwritten" + (shared > 0 ? " (" + shared
                    + " handed out while still in use)" : "") + ": silent corruption";
        }
        List<String> reached = result.lines(ChildJvm.RESULT + "survived ");
        return (reached.isEmpty() ? "the mistake itself: " : "later, while writing blocks: ")
                + result.ending();
    }

    // --- one child: a peer and a mistake ---------------------------------------------------------

    /** The allocators that do not check: addresses in, addresses out. */
    enum Peer {
        LWJGL("LWJGL") {
            @Override
            long allocate(long size) {
                return MemoryUtil.nmemAlloc(size);
            }

            @Override
            void free(long address) {
                MemoryUtil.nmemFree(address);
            }

            @Override
            long foreignBlock() {   // a block of ByteBuffer.allocateDirect, so glibc's (lwjgl #775)
                return MemoryUtil.memAddress(ByteBuffer.allocateDirect(SIZE));
            }

            @Override
            String title() {
                return "LWJGL " + org.lwjgl.Version.getVersion().split(" ")[0]
                        + " MemoryUtil.nmemAlloc/nmemFree, with jemalloc";
            }
        },
        UNSAFE("Unsafe") {
            @Override
            long allocate(long size) {
                try {
                    return (long) UnsafeMemory.ALLOCATE.invokeExact(size);
                } catch (Throwable e) {
                    throw new IllegalStateException(e);
                }
            }

            @Override
            void free(long address) {
                try {
                    UnsafeMemory.FREE.invokeExact(address);
                } catch (Throwable e) {
                    throw new IllegalStateException(e);
                }
            }

            @Override
            long foreignBlock() {   // a block of LWJGL's jemalloc
                return LWJGL.allocate(SIZE);
            }

            @Override
            String title() {
                return "sun.misc.Unsafe.allocateMemory/freeMemory (glibc's malloc)";
            }
        };

        final String label;

        Peer(String label) {
            this.label = label;
        }

        abstract long allocate(long size);

        abstract void free(long address);

        abstract long foreignBlock();

        abstract String title();
    }

    private static void child(Peer peer, Mistake mistake) {
        Configuration.MEMORY_ALLOCATOR.set("jemalloc");
        // Blocks the program holds and must find intact at the end.
        List<Long> held = new ArrayList<>();
        long victim = peer.allocate(SIZE);
        held.add(victim);
        switch (mistake) {
            case DOUBLE_FREE -> {
                long address = peer.allocate(SIZE);
                peer.free(address);
                peer.free(address);
            }
            case FOREIGN -> peer.free(peer.foreignBlock());
            case INTERIOR -> {
                long address = peer.allocate(SIZE);
                held.add(address);                 // the program still holds it
                peer.free(address + 16);
            }
            case AFTER_CLOSE -> throw new IllegalArgumentException("no heap to close");
        }
        System.out.println(ChildJvm.RESULT + "survived " + mistake.label);
        System.out.flush();
        // The program goes on: new blocks of the same size, each with its own contents.
        for (int i = 0; i < BLOCKS; i++) held.add(peer.allocate(SIZE));
        for (int i = 0; i < held.size(); i++) {
            for (int offset = 0; offset < SIZE; offset += 8) {
                MemoryUtil.memPutLong(held.get(i) + offset, pattern(i, offset));
            }
        }
        int damaged = 0;
        for (int i = 0; i < held.size(); i++) {
            for (int offset = 0; offset < SIZE; offset += 8) {
                if (MemoryUtil.memGetLong(held.get(i) + offset) != pattern(i, offset)) {
                    damaged++;
                    break;
                }
            }
        }
        // Blocks overlapping another held block: the allocator handed out memory in use.
        Set<Long> slots = new HashSet<>();
        int shared = 0;
        for (long address : held) {
            boolean overlaps = false;
            for (long d = -SIZE + 1; d < SIZE; d++) overlaps |= slots.contains(address + d);
            if (overlaps) shared++;
            slots.add(address);
        }
        System.out.println(ChildJvm.RESULT + "checked " + held.size() + " " + damaged + " " + shared);
    }

    /**
     * {@code sun.misc.Unsafe.allocateMemory/freeMemory}, looked up at run time: the code a
     * hand-rolled off-heap store calls (javac warns about every mention of Unsafe by name).
     */
    private static final class UnsafeMemory {
        static final MethodHandle ALLOCATE;
        static final MethodHandle FREE;

        static {
            try {
                Class<?> type = Class.forName("sun.misc.Unsafe");
                Field field = type.getDeclaredField("theUnsafe");
                field.setAccessible(true);
                Object unsafe = field.get(null);
                MethodHandles.Lookup lookup = MethodHandles.lookup();
                ALLOCATE = lookup.findVirtual(type, "allocateMemory", MethodType.methodType(long.class, long.class))
                        .bindTo(unsafe);
                FREE = lookup.findVirtual(type, "freeMemory", MethodType.methodType(void.class, long.class))
                        .bindTo(unsafe);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }
    }
}
