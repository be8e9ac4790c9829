// SPDX-License-Identifier: Apache-2.0
/*
 * Runs Server with one allocator in a child JVM and drives it on the loopback interface: a
 * burst (a fixed number of keep-alive connections, each sending its next GET /bytes as soon as
 * the previous answer is read: the load is bounded by the connection count), then an idle
 * phase with no request. Body sizes are drawn with a fixed seed: 60% 1-16 KiB, 30% 16-256 KiB,
 * 10% 1-8 MiB. Every answer's length and first bytes are checked.
 *
 * A sampler reads the server's RSS (/proc/<pid>/status) and its allocator's metric() (GET
 * /stats on a connection of its own; for segfit also its heap's committed bytes) every 100 ms
 * through both phases, from the moment the server listens, before the first request. Writes <out>.csv (one
 * row per sample) and <out>.json (requests per second, latency percentiles, peak RSS, RSS 10 s
 * after the burst...).
 * Usage: LoadGenerator <allocator> <out prefix> <burst s> <idle s> <connections> <java> <jvm
 * option>... -- the server JVM's options, class path included.
 */
package nettyserver;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;

public final class LoadGenerator {
  private static final double RSS_AFTER_S = 10.0;
  private static final long SAMPLE_MS = 100;

  private LoadGenerator() {}

  public static void main(String[] args) throws Exception {
    String allocator = args[0];
    Path out = Path.of(args[1]);
    double burstSeconds = Double.parseDouble(args[2]);
    double idleSeconds = Double.parseDouble(args[3]);
    int connections = Integer.parseInt(args[4]);
    List<String> command = new ArrayList<>(Arrays.asList(args).subList(5, args.length));
    int port = freePort();
    command.addAll(List.of("nettyserver.Server", allocator, "" + port));

    Process server = new ProcessBuilder(command).redirectErrorStream(true).start();
    try {
      awaitListening(server);
      run(allocator, server.pid(), port, out, burstSeconds, idleSeconds, connections);
    } finally {
      server.destroy();
      server.waitFor();
    }
  }

  private static void run(String allocator, long pid, int port, Path out, double burstSeconds,
      double idleSeconds, int connections) throws Exception {
    long start = System.nanoTime();
    long burstEnd = start + (long) (burstSeconds * 1e9);
    long end = burstEnd + (long) (idleSeconds * 1e9);
    List<String> samples = new ArrayList<>();
    AtomicLong peakRss = new AtomicLong();
    double[] rssAfter = {-1};
    double[] rssStart = {-1};
    Thread sampler = new Thread(() -> {
      try (Socket stats = new Socket(InetAddress.getLoopbackAddress(), port)) {
        InputStream in = new BufferedInputStream(stats.getInputStream());
        byte[] scratch = new byte[256];
        for (long next = start; ; next += SAMPLE_MS * 1_000_000) {
          long now = System.nanoTime();
          if (now >= end) break;
          if (next > now) Thread.sleep((next - now) / 1_000_000);
          long rss = rssBytes(pid);
          String[] used = get(stats, in, "/stats", scratch).split(" ");
          long usedDirect = Long.parseLong(used[0]);
          long committed = Long.parseLong(used[2]);
          double t = (System.nanoTime() - start) / 1e9;
          peakRss.accumulateAndGet(rss, Math::max);
          if (rssStart[0] < 0) rssStart[0] = rss;
          if (rssAfter[0] < 0 && t >= burstSeconds + RSS_AFTER_S) rssAfter[0] = rss;
          samples.add(String.format(Locale.ROOT, "%s,%.2f,%s,%.1f,%.1f,%s", allocator, t,
              t < burstSeconds ? "burst" : "idle", rss / 1048576.0, usedDirect / 1048576.0,
              committed < 0 ? "" : String.format(Locale.ROOT, "%.1f", committed / 1048576.0)));
        }
      } catch (Exception e) {
        throw new IllegalStateException("sampler: " + e, e);
      }
    }, "sampler");
    sampler.start();

    Worker[] workers = new Worker[connections];
    for (int i = 0; i < connections; i++) {
      workers[i] = new Worker(port, burstEnd, 1000 + i);
      workers[i].start();
    }
    long requests = 0;
    long bytes = 0;
    long[] latencies = new long[0];
    for (Worker w : workers) {
      w.join();
      if (w.failure != null) throw new IllegalStateException("connection failed", w.failure);
      requests += w.count;
      bytes += w.bytes;
      int at = latencies.length;
      latencies = Arrays.copyOf(latencies, at + w.count);
      System.arraycopy(w.latencies, 0, latencies, at, w.count);
    }
    double seconds = (Math.max(System.nanoTime(), burstEnd) - start) / 1e9;
    sampler.join();
    Arrays.sort(latencies);
    try (PrintWriter csv = new PrintWriter(Files.newBufferedWriter(Path.of(out + ".csv")))) {
      csv.println("allocator,seconds,phase,rss_mib,used_direct_mib,segfit_committed_mib");
      samples.forEach(csv::println);
    }
    String json = String.format(Locale.ROOT, "{\"allocator\": \"%s\", \"connections\": %d, "
        + "\"burstSeconds\": %.1f, \"idleSeconds\": %.1f, \"requests\": %d, "
        + "\"requestsPerSecond\": %.1f, \"mibPerSecond\": %.1f, \"p50Ms\": %.3f, \"p99Ms\": %.3f, "
        + "\"p999Ms\": %.3f, \"rssStartMib\": %.1f, \"peakRssMib\": %.1f, "
        + "\"rssAfterBurstMib\": %.1f, \"rssAfterSeconds\": %.0f}%n",
        allocator, connections, burstSeconds, idleSeconds, requests, requests / seconds,
        bytes / 1048576.0 / seconds, pct(latencies, 50) / 1e6, pct(latencies, 99) / 1e6,
        pct(latencies, 99.9) / 1e6, rssStart[0] / 1048576.0, peakRss.get() / 1048576.0,
        rssAfter[0] / 1048576.0,
        RSS_AFTER_S);
    Files.writeString(Path.of(out + ".json"), json);
    System.out.print(json);
  }

  /** One keep-alive connection sending requests back to back until the end of the burst. */
  private static final class Worker extends Thread {
    private final int port;
    private final long deadline;
    private final Random random;
    long[] latencies = new long[1024];
    int count;
    long bytes;
    Throwable failure;

    Worker(int port, long deadline, long seed) {
      super("connection-" + seed);
      this.port = port;
      this.deadline = deadline;
      this.random = new Random(seed);
    }

    @Override
    public void run() {
      byte[] scratch = new byte[64 << 10];
      try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
        s.setTcpNoDelay(true);
        InputStream in = new BufferedInputStream(s.getInputStream(), 64 << 10);
        while (System.nanoTime() < deadline) {
          int size = size(random);
          long t0 = System.nanoTime();
          sendGet(s.getOutputStream(), "/bytes?n=" + size);
          long length = readHeaders(in, scratch);
          if (length != size) throw new IOException("asked " + size + " bytes, told " + length);
          readBody(in, scratch, length);
          long t1 = System.nanoTime();
          if (count == latencies.length) latencies = Arrays.copyOf(latencies, count * 2);
          latencies[count++] = t1 - t0;
          bytes += size;
        }
      } catch (Throwable t) {
        failure = t;
      }
    }

    private static int size(Random r) {
      int p = r.nextInt(100);
      if (p < 60) return 1024 + r.nextInt(15 << 10);
      if (p < 90) return (16 << 10) + r.nextInt(240 << 10);
      return (1 << 20) + r.nextInt(7 << 20);
    }
  }

  private static void sendGet(OutputStream out, String path) throws IOException {
    out.write(("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .getBytes(StandardCharsets.US_ASCII));
    out.flush();
  }

  /** Reads a response's status line and headers; returns its Content-Length. */
  private static long readHeaders(InputStream in, byte[] scratch) throws IOException {
    String status = line(in, scratch);
    if (!status.startsWith("HTTP/1.1 200")) throw new IOException("answer: " + status);
    long length = -1;
    for (String h; !(h = line(in, scratch)).isEmpty(); ) {
      int colon = h.indexOf(':');
      if (colon > 0 && h.substring(0, colon).trim().equalsIgnoreCase("content-length")) {
        length = Long.parseLong(h.substring(colon + 1).trim());
      }
    }
    if (length < 0) throw new IOException("no Content-Length");
    return length;
  }

  /** Reads the body; its first bytes must be the server's pattern. */
  private static void readBody(InputStream in, byte[] scratch, long length) throws IOException {
    long left = length;
    boolean first = true;
    while (left > 0) {
      int n = in.read(scratch, 0, (int) Math.min(scratch.length, left));
      if (n < 0) throw new IOException("connection closed with " + left + " bytes unread");
      if (first) {
        for (int i = 0; i < Math.min(n, 26); i++) {
          if (scratch[i] != Server.PATTERN[i]) throw new IOException("body byte " + i + " wrong");
        }
        first = false;
      }
      left -= n;
    }
  }

  private static String get(Socket s, InputStream in, String path, byte[] scratch)
      throws IOException {
    sendGet(s.getOutputStream(), path);
    long length = readHeaders(in, scratch);
    byte[] body = in.readNBytes((int) length);
    return new String(body, StandardCharsets.US_ASCII);
  }

  private static String line(InputStream in, byte[] scratch) throws IOException {
    int n = 0;
    for (int c; (c = in.read()) != '\n'; ) {
      if (c < 0) throw new IOException("connection closed in the headers");
      if (c != '\r' && n < scratch.length) scratch[n++] = (byte) c;
    }
    return new String(scratch, 0, n, StandardCharsets.US_ASCII);
  }

  private static long pct(long[] sorted, double q) {
    if (sorted.length == 0) return 0;
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(q / 100 * sorted.length) - 1)];
  }

  private static long rssBytes(long pid) throws IOException {
    for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (l.startsWith("VmRSS:")) return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
    }
    throw new IOException("no VmRSS for process " + pid);
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private static void awaitListening(Process server) throws IOException {
    InputStream out = server.getInputStream();
    StringBuilder seen = new StringBuilder();
    for (int c; (c = out.read()) >= 0; ) {
      seen.append((char) c);
      if (c == '\n' && seen.toString().contains("listening on")) {
        System.out.print("server: " + seen);
        Thread drain = new Thread(() -> {   // later output (errors) goes to ours
          try {
            out.transferTo(System.out);
          } catch (IOException ignored) {
            // the server ended
          }
        }, "server-output");
        drain.setDaemon(true);
        drain.start();
        return;
      }
    }
    throw new IOException("the server ended before listening: " + seen);
  }
}
