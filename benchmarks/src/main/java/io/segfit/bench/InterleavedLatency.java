// SPDX-License-Identifier: Apache-2.0
/*
 * Tail latency of the buffer round trip with every peer in one loop, one timed operation each
 * in turn (a plain main, not JMH). JMH runs the peers one after another, so a stretch in which
 * the machine stalls (another guest, a kernel thread) lands on whichever peer ran then, and on
 * a 2-core VM such stretches decide p99.9 and p99.99 (docs/benchmarks.md). Here the peers take
 * turns operation by operation, the turn order rotating each round so that no peer always
 * follows the same one: a stall is as likely to hit any of them, and what still separates their
 * tails is their own work. Every operation is timed with a System.nanoTime pair (its cost is in
 * every figure alike) into a histogram per peer; the loop itself allocates nothing while
 * measuring (the buffer objects some peers make are theirs).
 *
 *   java -XX:CompileCommand=quiet -XX:CompileCommand=dontinline,io.segfit.bench.RoundTripBuffer::* \
 *       -cp benchmarks.jar io.segfit.bench.InterleavedLatency [size=64] [seconds=20] [warmup=5]
 * (with the JVM flags scripts/bench gives the peers: --add-opens=java.base/java.nio=ALL-UNNAMED
 * -Dio.netty.tryReflectionSetAccessible=true, and on JDK 22+ --enable-native-access=ALL-UNNAMED
 * --sun-misc-unsafe-memory-access=allow).
 */
package io.segfit.bench;

public final class InterleavedLatency {
  private static final String[] PEERS = {
    "segfit", "LWJGL rpmalloc", "LWJGL jemalloc", "LWJGL memAlloc (libc)", "Netty adaptive",
    "Netty pooled"
  };
  private static final double[] QUANTILES = {0.5, 0.9, 0.99, 0.999, 0.9999};

  /** The round trips are RoundTripBuffer's own bodies, on the peers' own JMH states. */
  private final RoundTripBuffer bodies = new RoundTripBuffer();
  private final Peers.Segfit segfit = new Peers.Segfit();
  private final Peers.Lwjgl lwjgl = new Peers.Lwjgl();
  private final Peers.Rpmalloc rpmalloc = new Peers.Rpmalloc();
  private final Peers.NettyAdaptive adaptive = new Peers.NettyAdaptive();
  private final Peers.NettyPooled pooled = new Peers.NettyPooled();
  private long sink;

  private InterleavedLatency(int size) {
    bodies.size = size;
    segfit.setup();
    lwjgl.setup();
    rpmalloc.setup();
    adaptive.setup();
    pooled.setup();
  }

  /**
   * One round trip of peer. The command line keeps the bodies out of this method (dontinline),
   * so that each is compiled on its own as in a JMH benchmark, not inside one method that
   * inlines all six.
   */
  private void roundTrip(int peer) {
    switch (peer) {
      case 0 -> sink += bodies.segfit(segfit).capacity();
      case 1 -> sink += bodies.lwjglRpmalloc(lwjgl, rpmalloc).capacity();
      case 2 -> sink += bodies.lwjglJemalloc(lwjgl).capacity();
      case 3 -> sink += bodies.lwjglMemAlloc(lwjgl).capacity();
      case 4 -> sink += bodies.nettyAdaptive(adaptive).capacity();
      default -> sink += bodies.nettyPooled(pooled).capacity();
    }
  }

  /** Runs rounds for the given time; records into histograms unless they are null. */
  private void run(long nanos, Histogram[] histograms) {
    int n = PEERS.length;
    long end = System.nanoTime() + nanos;
    for (int round = 0; ; round++) {
      for (int k = 0; k < n; k++) {
        int peer = (k + round) % n;
        long t0 = System.nanoTime();
        roundTrip(peer);
        long t1 = System.nanoTime();
        if (histograms != null) histograms[peer].record(t1 - t0);
      }
      if ((round & 1023) == 0 && System.nanoTime() > end) return;
    }
  }

  public static void main(String[] args) {
    int size = args.length > 0 ? Integer.parseInt(args[0]) : 64;
    int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 20;
    int warmup = args.length > 2 ? Integer.parseInt(args[2]) : 5;
    InterleavedLatency bench = new InterleavedLatency(size);
    bench.run(warmup * 1_000_000_000L, null);
    Histogram[] h = new Histogram[PEERS.length];
    for (int i = 0; i < h.length; i++) h[i] = new Histogram();
    bench.run(seconds * 1_000_000_000L, h);

    System.out.printf("Round trip %d B, ns, every peer in one loop taking turns (%d s, %,d samples"
        + " each, System.nanoTime pair included; Java %s)%n%n", size, seconds, h[0].total,
        System.getProperty("java.version"));
    System.out.println("| peer | p50 | p90 | p99 | p99.9 | p99.99 | max |");
    System.out.println("|---|---:|---:|---:|---:|---:|---:|");
    for (int i = 0; i < PEERS.length; i++) {
      StringBuilder row = new StringBuilder("| " + PEERS[i]);
      for (double q : QUANTILES) row.append(" | ").append(h[i].quantile(q));
      System.out.println(row.append(" | ").append(h[i].max).append(" |"));
    }
    System.out.println();
    for (double q : new double[] {0.999, 0.9999}) {
      int best = 1;
      for (int i = 2; i < PEERS.length; i++) {
        if (h[i].quantile(q) < h[best].quantile(q)) best = i;
      }
      System.out.printf("p%s: segfit %d ns, best peer %s %d ns: %.2fx%n", 100 * q,
          h[0].quantile(q), PEERS[best], h[best].quantile(q),
          (double) h[0].quantile(q) / h[best].quantile(q));
    }
    if (bench.sink == 42) System.out.println();   // keeps the round trips' results live
  }

  /**
   * Counts of nanosecond values: exact below 128, then 64 buckets per power of two (within
   * 1.6% of the value). A quantile is the upper bound of its bucket.
   */
  static final class Histogram {
    private static final int SUB = 64;
    private final long[] counts = new long[128 + 58 * SUB];
    long total;
    long max;

    void record(long v) {
      if (v < 0) v = 0;
      counts[bucket(v)]++;
      total++;
      if (v > max) max = v;
    }

    static int bucket(long v) {
      if (v < 128) return (int) v;
      int exp = 63 - Long.numberOfLeadingZeros(v);   // >= 7
      int sub = (int) (v >>> (exp - 6)) & (SUB - 1);
      return 128 + (exp - 7) * SUB + sub;
    }

    static long upper(int b) {
      if (b < 128) return b;
      int exp = (b - 128) / SUB + 7;
      long sub = (b - 128) % SUB;
      return ((SUB + sub + 1) << (exp - 6)) - 1;
    }

    long quantile(double q) {
      long rank = (long) Math.ceil(q * total);
      long seen = 0;
      for (int b = 0; b < counts.length; b++) {
        seen += counts[b];
        if (seen >= rank && counts[b] > 0) return Math.min(upper(b), max);
      }
      return max;
    }
  }
}
