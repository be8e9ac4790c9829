// SPDX-License-Identifier: Apache-2.0
/*
 * Shared by the hostile tests (issue 6): how much work to do, per-buffer content patterns, the
 * process's resident set size, and the system properties a child JVM needs.
 *
 * Workloads shrink under emulation (segfit.test.emulated=true: the suite also runs on an aarch64
 * JVM under qemu-user, about ten times slower). Patterns are a function of (seed, offset), so a
 * block's expected contents are one long, never a copy: the model of a test is cheap however
 * large its blocks are. Nothing here measures time.
 */
package io.segfit.hostile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

final class Hostile {
  private Hostile() {}

  static final boolean EMULATED = Boolean.getBoolean("segfit.test.emulated");

  /** n, or n / divisor (at least 1) under emulation. */
  static int scaled(int n, int divisor) {
    return EMULATED ? Math.max(1, n / divisor) : n;
  }

  /** The byte at offset of a block filled with seed. Never 0 for every offset of a seed. */
  static byte patternByte(long seed, long offset) {
    long x = seed + offset * 0x9E3779B97F4A7C15L;
    x ^= x >>> 29;
    x *= 0xBF58476D1CE4E5B9L;
    return (byte) (x >>> 56);
  }

  /** Bytes of one block, seen through a buffer or through its raw address. */
  interface Bytes {
    byte get(long offset);

    void put(long offset, byte value);

    static Bytes of(ByteBuffer b) {
      return new Bytes() {
        @Override
        public byte get(long offset) {
          return b.get(Math.toIntExact(offset));
        }

        @Override
        public void put(long offset, byte value) {
          b.put(Math.toIntExact(offset), value);
        }
      };
    }

    static Bytes at(long address) {
      RawMemory raw = RawMemory.get();
      return new Bytes() {
        @Override
        public byte get(long offset) {
          return raw.get(address + offset);
        }

        @Override
        public void put(long offset, byte value) {
          raw.put(address + offset, value);
        }
      };
    }
  }

  /** Fills bytes [from, to) with the pattern of seed. */
  static void fill(Bytes b, long seed, long from, long to) {
    for (long i = from; i < to; i++) {
      b.put(i, patternByte(seed, i));
    }
  }

  /** Index of the first byte in [from, to) that differs from the pattern of seed, or -1. */
  static long firstMismatch(Bytes b, long seed, long from, long to) {
    for (long i = from; i < to; i++) {
      if (b.get(i) != patternByte(seed, i)) {
        return i;
      }
    }
    return -1;
  }

  /** Index of the first non-zero byte in [0, to), or -1. */
  static long firstNonZero(Bytes b, long to) {
    for (long i = 0; i < to; i++) {
      if (b.get(i) != 0) {
        return i;
      }
    }
    return -1;
  }

  /** Resident set size of this process in bytes (VmRSS of /proc/self/status). */
  static long rss() {
    return statusKib("VmRSS:") * 1024;
  }

  /** A "Vm...:" line of /proc/self/status in KiB. */
  static long statusKib(String key) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith(key)) {
          return Long.parseLong(line.substring(key.length()).replace("kB", "").trim());
        }
      }
    } catch (IOException e) {
      throw new AssertionError("cannot read /proc/self/status", e);
    }
    throw new AssertionError(key + " missing from /proc/self/status");
  }

  /** The work of a child JVM's main. */
  interface ChildWork {
    void run() throws Exception;
  }

  /**
   * A child JVM's main: runs the work, prints "RESULT ok" and exits 0, or prints what went wrong
   * and exits 1 (the parent test reads both).
   */
  static void childMain(ChildWork work) {
    try {
      work.run();
      System.out.println("RESULT ok");
      System.exit(0);
    } catch (Throwable t) {
      System.out.println("RESULT failed: " + t);
      t.printStackTrace(System.out);
      System.exit(1);
    }
  }

  /** A child JVM's check: an AssertionError saying what, unless cond. */
  static void check(boolean cond, String what) {
    if (!cond) {
      throw new AssertionError(what);
    }
  }

  /** -D options that pass this JVM's segfit.* properties (library override etc.) to a child. */
  static List<String> segfitProperties() {
    List<String> out = new ArrayList<>();
    for (String name : System.getProperties().stringPropertyNames()) {
      if (name.startsWith("segfit.")) {
        out.add("-D" + name + "=" + System.getProperty(name));
      }
    }
    return out;
  }
}
