// SPDX-License-Identifier: Apache-2.0
/*
 * The segfit.* system properties: the one place that names them, gives their defaults and says
 * what they mean. Heap.Builder takes its defaults from here, the default heap is configured from
 * here, and the README's property table is printed from here (main) and checked against it by a
 * test, so the three cannot drift apart.
 */
package io.segfit.internal;

import java.time.Duration;
import java.util.Locale;

public enum Option {
  LIBRARY_PATH("segfit.library.path", "",
      "Path of a `libsegfit.so` to load instead of the one bundled in the jar (no fallback)."),
  TMPDIR("segfit.tmpdir", "",
      "Directory the bundled library is extracted to (empty: `java.io.tmpdir`); it must not be "
          + "mounted `noexec`. The file is deleted right after loading."),
  FFM("segfit.ffm", "true",
      "JDK 22+: reach the native library through FFM critical downcalls, the faster path (on "
          + "JDK 22-23 only with `--enable-native-access`); `false` keeps JNI, as on JDK 17-21. "
          + "Read once, at the first block operation."),
  MAX_BYTES("segfit.maxBytes", "0",
      "Limit of the default heap in bytes (suffix k, m, g or t allowed); 0 means no limit."),
  RESERVE_BYTES("segfit.reserveBytes", "0",
      "Address space the default heap reserves for slabs at creation; 0 grows on demand."),
  PRE_TOUCH("segfit.preTouch", "false",
      "Pre-fault the default heap's reservation (`MAP_POPULATE`) so steady state makes no "
          + "syscall; needs `segfit.reserveBytes`."),
  HUGE_PAGES("segfit.hugePages", "false",
      "Ask for transparent huge pages (`MADV_HUGEPAGE`) for the default heap."),
  PURGE_DELAY_MS("segfit.purgeDelayMs", "",
      "Milliseconds an empty slab of the default heap waits before its memory goes back to the "
          + "OS; 0 at once; empty: the core's default (`SEGFIT_DEFAULT_PURGE_DELAY_MS`)."),
  DEBUG("segfit.debug", "false",
      "Debug mode for the default heap: canaries, fill patterns, guard pages around large blocks."),
  LEAK_DETECTION("segfit.leakDetection", "disabled",
      "Leak detection of every heap whose builder does not choose: `disabled`, `sampled` or "
          + "`paranoid` (every buffer)."),
  LEAK_SAMPLING_INTERVAL("segfit.leakDetection.samplingInterval", "128",
      "With sampled leak detection, one ByteBuffer allocation in this many is tracked."),
  THREAD_CACHE("segfit.threadCache", "true",
      "Serve blocks up to 64 KiB from slabs lent to each platform thread, in Java, with no native "
          + "call (not for debug heaps, leak detection, heaps with a limit or a purge delay of 0); "
          + "`false` makes every call reach the core. Read when a heap is built."),
  JMX("segfit.jmx", "true",
      "Register an MXBean `io.segfit:type=Heap,name=<heap name>` for each heap while it is "
          + "open."),
  JFR_LARGE_ALLOCATION("segfit.jfr.largeAllocationThreshold", "1m",
      "Allocations of at least this many bytes emit the JFR event `io.segfit.LargeAllocation`.");

  private final String key;
  private final String defaultValue;
  private final String description;

  Option(String key, String defaultValue, String description) {
    this.key = key;
    this.defaultValue = defaultValue;
    this.description = description;
  }

  public String key() {
    return key;
  }

  public String defaultValue() {
    return defaultValue;
  }

  public String description() {
    return description;
  }

  public boolean isSet() {
    String v = System.getProperty(key);
    return v != null && !v.trim().isEmpty();
  }

  /** The property's value, trimmed, or the default. */
  public String value() {
    String v = System.getProperty(key);
    return v == null || v.trim().isEmpty() ? defaultValue : v.trim();
  }

  public boolean booleanValue() {
    String v = value().toLowerCase(Locale.ROOT);
    if (v.equals("true")) return true;
    if (v.equals("false")) return false;
    throw invalid("true or false");
  }

  /** A byte count: digits with an optional k, m, g or t suffix (powers of 1024). */
  public long bytesValue() {
    long bytes = parseBytes(value());
    if (bytes < 0) throw invalid("a byte count such as 0, 65536, 512m or 4g");
    return bytes;
  }

  public int intValue(int min) {
    try {
      int v = Integer.parseInt(value());
      if (v >= min) return v;
    } catch (NumberFormatException ignored) {
      // reported below
    }
    throw invalid("an integer of at least " + min);
  }

  /** A duration in milliseconds, or null when the property is not set and has no default. */
  public Duration millisValue() {
    String v = value();
    if (v.isEmpty()) return null;
    try {
      long ms = Long.parseLong(v);
      if (ms >= 0) return Duration.ofMillis(ms);
    } catch (NumberFormatException ignored) {
      // reported below
    }
    throw invalid("a number of milliseconds >= 0");
  }

  public IllegalArgumentException invalid(String expected) {
    return new IllegalArgumentException("system property " + key + "=" + System.getProperty(key)
        + " is invalid: expected " + expected);
  }

  /** Parses "4096", "64k", "512m", "4g", "1t"; -1 if malformed or overflowing. */
  static long parseBytes(String text) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    if (t.isEmpty()) return -1;
    int shift = 0;
    char last = t.charAt(t.length() - 1);
    int suffix = "kmgt".indexOf(last);
    if (suffix >= 0) {
      shift = 10 * (suffix + 1);
      t = t.substring(0, t.length() - 1);
    }
    try {
      long v = Long.parseLong(t);
      if (v < 0 || v > (Long.MAX_VALUE >> shift)) return -1;
      return v << shift;
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /** The property table in Markdown, as the README shows it. */
  public static String markdownTable() {
    StringBuilder sb = new StringBuilder();
    sb.append("| Property | Default | Meaning |\n|---|---|---|\n");
    for (Option o : values()) {
      sb.append("| `").append(o.key).append("` | ")
          .append(o.defaultValue.isEmpty() ? "(empty)" : "`" + o.defaultValue + "`")
          .append(" | ").append(o.description).append(" |\n");
    }
    return sb.toString();
  }

  /** Prints the Markdown property table (used to regenerate the README's table). */
  public static void main(String[] args) {
    System.out.print(markdownTable());
  }
}
