// SPDX-License-Identifier: Apache-2.0
package demo;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.segfit.Heap;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntUnaryOperator;

/**
 * Bursts of buffers on worker threads that stay alive, as a server's do, each burst freed: does
 * the process's RSS fall back near what is still live? A service sees more than one burst, so
 * there are two. Each allocator runs in its own child JVM, which samples its own RSS and what the
 * allocator counts as its own; the parent prints a line per allocator and writes the samples as
 * CSV (drawn by rss-chart.py).
 *
 * <p>Usage: {@code MemoryReturn <csv>}; {@code MemoryReturn child <allocator>} is one child.
 */
public final class MemoryReturn {
    private static final int MIB = 1 << 20;
    private static final int THREADS = 4;
    private static final long LIVE_BYTES = 16L * MIB;       // kept for the whole run
    private static final long BURST_BYTES = 512L * MIB;     // allocated, touched, then freed
    private static final int BURSTS = 2;
    private static final int[] SIZES = {1024, 4096, 16 * 1024, 64 * 1024};
    private static final long HOLD_MS = 500;                 // a burst stays live this long
    private static final long PAUSE_MS = 1000;               // between the bursts
    private static final long WATCH_MS = 2000;               // after the last one
    private static final long SAMPLE_MS = 20;
    private static final String SAMPLE = ChildJvm.RESULT + "sample ";

    /** A buffer allocator as the bursts use it. */
    private interface Allocator {
        /** A buffer of {@code size} bytes, every page of it written. */
        Object allocate(int size);

        void free(Object buffer);

        /** The bytes the allocator counts as its own (its metrics), freed or not. */
        long ownBytes();
    }

    enum Kind {
        SEGFIT("segfit", "segfit's committed bytes"),
        NETTY("Netty pooled", "Netty's chunks (usedDirectMemory)");

        final String label;
        final String own;

        Kind(String label, String own) {
            this.label = label;
            this.own = own;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 2 && args[0].equals("child")) {
            child(Kind.valueOf(args[1]));
            return;
        }
        Path csv = Path.of(args[0]);
        Files.createDirectories(csv.toAbsolutePath().getParent());
        System.out.printf("%d threads allocate %d MiB in buffers of %d B to %d KiB beside %d MiB kept live,"
                + " hold them %d ms and free them; %d such bursts, %d ms apart. RSS above the child JVM's own"
                + " at its start:%n", THREADS, BURST_BYTES / MIB, SIZES[0],
                SIZES[SIZES.length - 1] / 1024, LIVE_BYTES / MIB, HOLD_MS, BURSTS, PAUSE_MS);
        try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(csv))) {
            out.println("allocator,seconds,rss_mib,own_mib,phase");
            for (Kind kind : Kind.values()) {
                List<String> jvmOptions = List.of("-Xms64m", "-Xmx64m", "-XX:+AlwaysPreTouch",
                        "-XX:+UseSerialGC", "-XX:MaxDirectMemorySize=4g", "--enable-native-access=ALL-UNNAMED",
                        // Netty's fastest setup, as its users enable it (as scripts/bench does)
                        "--add-opens=java.base/java.nio=ALL-UNNAMED", "-Dio.netty.tryReflectionSetAccessible=true");
                ChildJvm.Result result = ChildJvm.run(csv.toAbsolutePath().getParent(), jvmOptions, Map.of(),
                        MemoryReturn.class, "child", kind.name());
                List<String> samples = result.lines(SAMPLE);
                if (result.exitCode() != 0 || samples.isEmpty()) {
                    throw new IllegalStateException(kind.label + ": the child failed, " + result.ending()
                            + ":\n" + String.join("\n", result.output()));
                }
                System.out.println(summary(kind, samples));
                for (String sample : samples) out.println(kind.label + "," + sample);
            }
        }
    }

    /** One line: the peak, then RSS and the allocator's own count at moments after the last frees. */
    private static String summary(Kind kind, List<String> samples) {
        double peak = 0;
        double freedAt = -1;
        List<double[]> after = new ArrayList<>();   // {seconds since the last frees, RSS, own}
        for (String sample : samples) {
            String[] f = sample.split(",");        // seconds,rss_mib,own_mib,phase
            double seconds = Double.parseDouble(f[0]);
            double rss = Double.parseDouble(f[1]);
            peak = Math.max(peak, rss);
            if (f[3].equals("freed")) {
                if (freedAt < 0) freedAt = seconds;
                after.add(new double[] {seconds - freedAt, rss, Double.parseDouble(f[2])});
            }
        }
        StringBuilder line = new StringBuilder(String.format("  %-13s peak %4.0f MiB; after the last frees",
                kind.label, peak));
        double[] last = after.get(after.size() - 1);
        for (double at : new double[] {0.25, 1.0}) {
            double[] sample = after.stream().filter(s -> s[0] >= at).findFirst().orElse(last);
            line.append(String.format(" %4.0f MiB at %.2f s,", sample[1], at));
        }
        line.append(String.format(" %4.0f MiB at %.2f s (live %d MiB; %s: %.0f MiB)", last[1], last[0],
                LIVE_BYTES / MIB, kind.own, last[2]));
        return line.toString();
    }

    // --- one child: one allocator ------------------------------------------------------------

    private static Allocator allocator(Kind kind) {
        switch (kind) {
            case SEGFIT: {
                Heap heap = Heap.builder().name("bursts").build();   // the default purge delay
                return new Allocator() {
                    @Override
                    public Object allocate(int size) {
                        ByteBuffer buffer = heap.allocate(size);
                        for (int i = 0; i < size; i += 4096) buffer.put(i, (byte) 1);
                        return buffer;
                    }

                    @Override
                    public void free(Object buffer) {
                        heap.free((ByteBuffer) buffer);
                    }

                    @Override
                    public long ownBytes() {
                        return heap.stats().committedBytes();
                    }
                };
            }
            case NETTY: {
                PooledByteBufAllocator netty = new PooledByteBufAllocator(true);
                return new Allocator() {
                    @Override
                    public Object allocate(int size) {
                        ByteBuf buffer = netty.directBuffer(size, size);
                        for (int i = 0; i < size; i += 4096) buffer.setByte(i, 1);
                        return buffer;
                    }

                    @Override
                    public void free(Object buffer) {
                        ((ByteBuf) buffer).release();
                    }

                    @Override
                    public long ownBytes() {
                        return netty.metric().usedDirectMemory();
                    }
                };
            }
            default:
                throw new IllegalArgumentException(kind.name());
        }
    }

    private static void child(Kind kind) throws Exception {
        Allocator allocator = allocator(kind);
        long start = System.nanoTime();
        double baseline = rssMib();
        AtomicReference<String> phase = new AtomicReference<>("before");
        Thread sampler = new Thread(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                System.out.printf("%s%.3f,%.1f,%.1f,%s%n", SAMPLE, (System.nanoTime() - start) / 1e9,
                        rssMib() - baseline, allocator.ownBytes() / (double) MIB, phase.get());
                try {
                    Thread.sleep(SAMPLE_MS);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        // Each worker allocates its share of the live set, then of each burst when the main thread
        // says so, and frees a burst when it says so; it stays alive until the end, as a server's
        // threads do. Every step is a barrier of the workers and the main thread.
        CyclicBarrier step = new CyclicBarrier(THREADS + 1);
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            Thread worker = new Thread(() -> {
                List<Object> live = fill(allocator, LIVE_BYTES / THREADS, i -> SIZES[1]);
                for (int b = 0; b < BURSTS; b++) {
                    await(step);                  // allocate the burst
                    List<Object> burst = fill(allocator, BURST_BYTES / THREADS, i -> SIZES[i % SIZES.length]);
                    await(step);                  // allocated
                    await(step);                  // free it
                    burst.forEach(allocator::free);
                    await(step);                  // freed
                }
                await(step);                      // the end
                live.forEach(allocator::free);
            });
            worker.start();
            workers.add(worker);
        }
        sampler.start();
        for (int b = 1; b <= BURSTS; b++) {
            phase.set("burst " + b);
            await(step);
            await(step);
            Thread.sleep(HOLD_MS);
            phase.set("freeing " + b);
            await(step);
            await(step);
            phase.set(b == BURSTS ? "freed" : "pause");
            Thread.sleep(b == BURSTS ? WATCH_MS : PAUSE_MS);
        }
        sampler.interrupt();
        sampler.join();
        await(step);
        for (Thread worker : workers) worker.join();
    }

    private static List<Object> fill(Allocator allocator, long bytes, IntUnaryOperator size) {
        List<Object> buffers = new ArrayList<>();
        long total = 0;
        for (int i = 0; total < bytes; i++) {
            int n = size.applyAsInt(i);
            buffers.add(allocator.allocate(n));
            total += n;
        }
        return buffers;
    }

    private static void await(CyclicBarrier barrier) {
        try {
            barrier.await();
        } catch (InterruptedException | BrokenBarrierException e) {
            throw new IllegalStateException(e);
        }
    }

    /** This process's resident set (VmRSS), in MiB. */
    private static double rssMib() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/self/status", e);
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }
}
