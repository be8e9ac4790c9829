// SPDX-License-Identifier: Apache-2.0
/*
 * Tail latency of the buffer round trip with every peer in one loop, one timed operation each
 * in turn (a plain main, not JMH). JMH runs the peers one after another, so a stretch in which
 * the machine stalls (another guest, a kernel thread) lands on whichever peer ran then, and on
 * a 2-core VM such stretches decide p99.9 and p99.99 (docs/benchmarks.md). Here the peers take
 * turns operation by operation, the turn order rotating each round so that no peer always
 * follows the same one: a stall is as likely to hit any of them, and what still separates their
 * tails is their own work. Every operation is timed with a System.nanoTime pair (its cost is in
 * every figure alike) into a histogram per peer and measurement iteration; the loop itself
 * allocates nothing while measuring (the buffer objects some peers make are theirs). On JDK 22+
 * the FFM peers join (io.segfit.bench.ffm.InterleavedFfm).
 *
 *   java -XX:CompileCommand=quiet \
 *       -XX:CompileCommand=dontinline,io.segfit.bench.RoundTripBuffer::* \
 *       -XX:CompileCommand=dontinline,io.segfit.bench.ffm.RoundTripBufferFfm::* \
 *       -cp benchmarks.jar io.segfit.bench.InterleavedLatency \
 *       [--size 64] [--seconds 20] [--iterations 10] [--warmup 5] [--json FILE]
 * (with the JVM flags scripts/bench gives the peers: --add-opens=java.base/java.nio=ALL-UNNAMED
 * -Dio.netty.tryReflectionSetAccessible=true, and on JDK 22+ --enable-native-access=ALL-UNNAMED
 * --sun-misc-unsafe-memory-access=allow). --json writes the histograms as JMH's JSON does for
 * a SampleTime benchmark (io.segfit.bench.InterleavedLatency.<peer>, one fork, one histogram
 * per iteration), so that scripts/bench's report reads them as it reads JMH's.
 */
package io.segfit.bench;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

public final class InterleavedLatency {
  /** The peers' JMH method names (RoundTripBuffer's), which name them in the JSON. */
  private static final String[] PEERS = {
    "segfit", "lwjglRpmalloc", "lwjglJemalloc", "lwjglMemAlloc", "nettyAdaptive", "nettyPooled"
  };
  private static final double[] QUANTILES = {0.5, 0.9, 0.99, 0.999, 0.9999};
  private static final String[] QUANTILE_LABELS = {"50.0", "90.0", "99.0", "99.9", "99.99"};

  /**
   * Round trips only a newer JDK has: the class named MORE, compiled with release 22, gives
   * the FFM peers of RoundTripBufferFfm (constructed with the size).
   */
  public abstract static class More {
    protected abstract String[] names();

    /** Round trip number which of names(); returns the buffer's capacity. */
    protected abstract int roundTrip(int which);
  }

  private static final String MORE = "io.segfit.bench.ffm.InterleavedFfm";

  /** The round trips are RoundTripBuffer's own bodies, on the peers' own JMH states. */
  private final RoundTripBuffer bodies = new RoundTripBuffer();
  private final Peers.Segfit segfit = new Peers.Segfit();
  private final Peers.Lwjgl lwjgl = new Peers.Lwjgl();
  private final Peers.Rpmalloc rpmalloc = new Peers.Rpmalloc();
  private final Peers.NettyAdaptive adaptive = new Peers.NettyAdaptive();
  private final Peers.NettyPooled pooled = new Peers.NettyPooled();
  private final More more;
  private final String[] names;
  private long sink;

  private InterleavedLatency(int size, More more) {
    bodies.size = size;
    segfit.setup();
    lwjgl.setup();
    rpmalloc.setup();
    adaptive.setup();
    pooled.setup();
    this.more = more;
    List<String> all = new ArrayList<>(Arrays.asList(PEERS));
    if (more != null) all.addAll(Arrays.asList(more.names()));
    names = all.toArray(new String[0]);
  }

  /**
   * One round trip of peer. The command line keeps the bodies out of this method (dontinline),
   * so that each is compiled on its own as in a JMH benchmark, not inside one method that
   * inlines them all.
   */
  private void roundTrip(int peer) {
    switch (peer) {
      case 0 -> sink += bodies.segfit(segfit).capacity();
      case 1 -> sink += bodies.lwjglRpmalloc(lwjgl, rpmalloc).capacity();
      case 2 -> sink += bodies.lwjglJemalloc(lwjgl).capacity();
      case 3 -> sink += bodies.lwjglMemAlloc(lwjgl).capacity();
      case 4 -> sink += bodies.nettyAdaptive(adaptive).capacity();
      case 5 -> sink += bodies.nettyPooled(pooled).capacity();
      default -> sink += more.roundTrip(peer - PEERS.length);
    }
  }

  /** Runs rounds for the given time; records into histograms unless they are null. */
  private void run(long nanos, Histogram[] histograms) {
    int n = names.length;
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

  private static More more(int size) {
    if (Runtime.version().feature() < 22) return null;
    try {
      return (More) Class.forName(MORE).getDeclaredConstructor(int.class).newInstance(size);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException(MORE + " is missing: build the benchmarks on JDK 22+", e);
    }
  }

  public static void main(String[] args) throws IOException {
    int size = 64;
    int seconds = 20;
    int iterations = 10;
    int warmup = 5;
    Path json = null;
    for (int i = 0; i < args.length; i += 2) {
      if (i + 1 == args.length) throw new IllegalArgumentException(args[i] + " needs a value");
      String v = args[i + 1];
      switch (args[i]) {
        case "--size" -> size = Integer.parseInt(v);
        case "--seconds" -> seconds = Integer.parseInt(v);
        case "--iterations" -> iterations = Integer.parseInt(v);
        case "--warmup" -> warmup = Integer.parseInt(v);
        case "--json" -> json = Path.of(v);
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    if (size <= 0 || seconds <= 0 || iterations <= 0 || warmup < 0) {
      throw new IllegalArgumentException(
          "size, seconds and iterations must be positive, warmup >= 0");
    }
    InterleavedLatency bench = new InterleavedLatency(size, more(size));
    int n = bench.names.length;
    bench.run(warmup * 1_000_000_000L, null);
    Histogram[][] h = new Histogram[iterations][n];
    for (Histogram[] it : h) {
      for (int p = 0; p < n; p++) it[p] = new Histogram();
      bench.run(seconds * 1_000_000_000L / iterations, it);
    }
    Histogram[] all = new Histogram[n];
    for (int p = 0; p < n; p++) {
      all[p] = new Histogram();
      for (Histogram[] it : h) all[p].add(it[p]);
    }
    bench.print(size, seconds, all);
    if (json != null) bench.writeJson(json, size, seconds, h);
    if (bench.sink == 42) System.out.println();   // keeps the round trips' results live
  }

  private void print(int size, int seconds, Histogram[] h) {
    System.out.printf("Round trip %d B, ns, every peer in one loop taking turns (%d s, %,d samples"
        + " each, System.nanoTime pair included; Java %s)%n%n", size, seconds, h[0].total,
        System.getProperty("java.version"));
    System.out.println("| peer | p50 | p90 | p99 | p99.9 | p99.99 | max |");
    System.out.println("|---|---:|---:|---:|---:|---:|---:|");
    for (int i = 0; i < names.length; i++) {
      StringBuilder row = new StringBuilder("| " + names[i]);
      for (double q : QUANTILES) row.append(" | ").append(h[i].quantile(q));
      System.out.println(row.append(" | ").append(h[i].max).append(" |"));
    }
    System.out.println();
    for (double q : new double[] {0.999, 0.9999}) {
      int best = 1;
      for (int i = 2; i < names.length; i++) {
        if (h[i].quantile(q) < h[best].quantile(q)) best = i;
      }
      System.out.printf("p%s (pooled): segfit %d ns, best peer %s %d ns: %.2fx%n", 100 * q,
          h[0].quantile(q), names[best], h[best].quantile(q),
          (double) h[0].quantile(q) / h[best].quantile(q));
    }
  }

  /**
   * JMH's JSON for a SampleTime run of one fork: per peer, the iterations' histograms
   * (rawDataHistogram, [value, count] pairs with the bucket's upper bound as the value) and
   * their medians as rawData; the pooled percentiles as scorePercentiles.
   */
  private void writeJson(Path path, int size, int seconds, Histogram[][] h) throws IOException {
    try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(path))) {
      w.println("[");
      for (int p = 0; p < names.length; p++) {
        Histogram pooled = new Histogram();
        StringBuilder hist = new StringBuilder();
        StringBuilder medians = new StringBuilder();
        for (int i = 0; i < h.length; i++) {
          pooled.add(h[i][p]);
          hist.append(i == 0 ? "" : ",").append(h[i][p].json());
          medians.append(i == 0 ? "" : ",").append(h[i][p].quantile(0.5));
        }
        StringBuilder pct = new StringBuilder();
        for (int q = 0; q < QUANTILES.length; q++) {
          pct.append(q == 0 ? "" : ",").append('"').append(QUANTILE_LABELS[q]).append("\":")
              .append(pooled.quantile(QUANTILES[q]));
        }
        w.printf("{\"benchmark\":\"io.segfit.bench.InterleavedLatency.%s\",\"mode\":\"sample\","
            + "\"jvm\":\"%s\",\"jdkVersion\":\"%s\",\"forks\":1,\"measurementIterations\":%d,"
            + "\"measurementTime\":\"%d s\",\"params\":{\"size\":\"%d\"},"
            + "\"primaryMetric\":{\"score\":%d,\"scoreError\":\"NaN\",\"scoreUnit\":\"ns/op\","
            + "\"scorePercentiles\":{%s},\"rawData\":[[%s]],\"rawDataHistogram\":[[%s]]}}%s%n",
            names[p], jsonText(System.getProperty("java.home")), System.getProperty("java.version"),
            h.length, seconds, size, pooled.quantile(0.5), pct, medians, hist,
            p + 1 < names.length ? "," : "");
      }
      w.println("]");
    }
  }

  private static String jsonText(String s) {
    return s.replace("\\", "\\\\").replace("\"", "\\\"");
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

    void add(Histogram o) {
      for (int b = 0; b < counts.length; b++) counts[b] += o.counts[b];
      total += o.total;
      max = Math.max(max, o.max);
    }

    /** [[value, count], ...] of the non-empty buckets, the value its upper bound (max at most). */
    String json() {
      StringBuilder s = new StringBuilder("[");
      for (int b = 0; b < counts.length; b++) {
        if (counts[b] == 0) continue;
        if (s.length() > 1) s.append(',');
        s.append('[').append(Math.min(upper(b), max)).append(',').append(counts[b]).append(']');
      }
      return s.append(']').toString();
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
