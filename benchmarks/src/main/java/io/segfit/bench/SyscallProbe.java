// SPDX-License-Identifier: Apache-2.0
/*
 * A plain program (not JMH) for scripts/bench's syscall count: it warms up segfit's round trip,
 * pauses, makes as many round trips again after the pause (between a "resume" and a "begin"
 * marker), then N more round trips (64 B and 1 KiB alternately; DirectByteBuffer or raw-address
 * path) before an "end" marker, and exits. Run under `strace -f -c` with N = 0 and
 * N = 1,000,000, the difference is what a million steady-state round trips cost in syscalls; run
 * under `strace -f` the markers let the script count the calls of the probing thread alone.
 * Run it with a heap that never collects (Epsilon, pre-touched) so the GC adds no syscalls of
 * its own.
 */
package io.segfit.bench;

import io.segfit.Heap;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

public final class SyscallProbe {
  /** Round trips per call of the loops: the loops get compiled as methods, not only by OSR. */
  private static final int CHUNK = 10_000;
  private static final int WARMUP_CHUNKS = 300;

  private SyscallProbe() {}

  public static void main(String[] args) throws IOException, InterruptedException {
    if (args.length != 2 || !(args[1].equals("buffer") || args[1].equals("address"))
        || Long.parseLong(args[0]) % CHUNK != 0) {
      System.err.println("usage: SyscallProbe <roundTrips, a multiple of " + CHUNK + "> buffer|address");
      System.exit(2);
    }
    long chunks = Long.parseLong(args[0]) / CHUNK;
    boolean buffers = args[1].equals("buffer");
    Heap heap = Heap.defaultHeap();
    FileOutputStream out = new FileOutputStream(FileDescriptor.out);
    long sink = 0;
    // Both paths are warmed in every run, so runs with and without the measured loop compile the
    // same code, and the pause lets the compiler threads finish; the measured loop then only
    // repeats compiled code.
    for (int i = 0; i < WARMUP_CHUNKS; i++) {
      sink += buffers(heap, CHUNK);
      sink += addresses(heap, CHUNK);
    }
    // What follows a pause is reported on its own: a thread that went idle had its slabs
    // taken back, and a heap that went idle may have handed memory back to the OS; both are
    // taken again here. The first such return on each path also takes branches its
    // compiled loop never saw, and the JIT compiles it again, which the resumed chunks (as
    // many as the warm-up's) leave time for: the measured loop then only repeats compiled code.
    Thread.sleep(500);
    out.write("segfit-probe: resume\n".getBytes(StandardCharsets.US_ASCII));
    for (int i = 0; i < WARMUP_CHUNKS; i++) {
      sink += buffers ? buffers(heap, CHUNK) : addresses(heap, CHUNK);
    }
    out.write("segfit-probe: begin\n".getBytes(StandardCharsets.US_ASCII));
    for (long i = 0; i < chunks; i++) {
      sink += buffers ? buffers(heap, CHUNK) : addresses(heap, CHUNK);
    }
    out.write("segfit-probe: end\n".getBytes(StandardCharsets.US_ASCII));
    out.write(("segfit-probe: sink " + (sink & 1) + "\n").getBytes(StandardCharsets.US_ASCII));
  }

  private static long buffers(Heap heap, long n) {
    long sink = 0;
    for (long i = 0; i < n; i++) {
      ByteBuffer b = heap.allocate((i & 1) == 0 ? 64 : 1024);
      b.put(0, (byte) i);
      sink += b.capacity();
      heap.free(b);
    }
    return sink;
  }

  private static long addresses(Heap heap, long n) {
    long sink = 0;
    for (long i = 0; i < n; i++) {
      long a = heap.allocateAddress((i & 1) == 0 ? 64 : 1024);
      Unsafes.UNSAFE.putByte(a, (byte) i);
      sink += a;
      heap.freeAddress(a);
    }
    return sink;
  }
}
