// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;

/**
 * What the tests share: the tags that choose a subset, how much work to do under emulation,
 * per-block content patterns and raw bytes, the process's resident set size, heap checks, and
 * child JVMs (their mains: ChildMain's modes, and CallPathTest.Cases, which runs the same calls
 * on either call path).
 *
 * <p>Workloads shrink under emulation (segfit.test.emulated=true: the suite also runs on an
 * aarch64 JVM under qemu-user, about ten times slower). Patterns are a function of (seed,
 * offset), so a block's expected contents are one long, never a copy: the model of a test is
 * cheap however large its blocks are. Nothing here measures time.
 */
final class TestSupport {
  private TestSupport() {}

  /**
   * Tag of the tests that take seconds on the host (and many more under qemu). The default
   * suite runs them; {@code -DexcludedGroups=slow} leaves them out.
   */
  @Target({ElementType.TYPE, ElementType.METHOD})
  @Retention(RetentionPolicy.RUNTIME)
  @Tag("slow")
  @interface Slow {}

  /**
   * Tag of the tests that start a child JVM (ChildMain). The default suite runs them;
   * {@code -DexcludedGroups=child-jvm} leaves them out, {@code -Dgroups=child-jvm} runs only them.
   */
  @Target({ElementType.TYPE, ElementType.METHOD})
  @Retention(RetentionPolicy.RUNTIME)
  @Tag("child-jvm")
  @interface ChildJvm {}

  /** True under qemu (the qemu-aarch64 profile sets segfit.test.emulated=true): scale down. */
  static final boolean EMULATED = Boolean.getBoolean("segfit.test.emulated");

  static {
    // Under qemu-user the JVM's default launch mechanism execs jspawnhelper, an aarch64 binary
    // the host kernel cannot run; FORK execs the child command (the qemu wrapper) directly.
    if (EMULATED && System.getProperty("jdk.lang.Process.launchMechanism") == null) {
      System.setProperty("jdk.lang.Process.launchMechanism", "FORK");
    }
  }

  /** n, or n / divisor (at least 1) under emulation. */
  static int scaled(int n, int divisor) {
    return EMULATED ? Math.max(1, n / divisor) : n;
  }

  /** n, or n / 10 (at least 1) under emulation. */
  static int scaled(int n) {
    return scaled(n, 10);
  }

  /** Asserts that heap still allocates, writes, reads and frees after a rejected call. */
  static void assertStillWorks(Heap heap) {
    ByteBuffer b = heap.allocate(48);
    b.putLong(0, 0x1122334455667788L);
    assertEquals(0x1122334455667788L, b.getLong(0));
    heap.free(b);
    long a = heap.allocateAddress(100);
    assertTrue(heap.usableSizeAddress(a) >= 100);
    heap.freeAddress(a);
  }

  /** Result of a child JVM. */
  record Child(int exitCode, String stdout, String stderr) {
    @Override
    public String toString() {
      return "exit " + exitCode + "\n--- stdout\n" + stdout + "--- stderr\n" + stderr;
    }
  }

  /**
   * A class path for a child JVM: where segfit's and these tests' classes come from, plus this
   * JVM's module path and class path (surefire runs the tests patched into the io.segfit module,
   * the child runs everything from the class path).
   */
  static String classPath() {
    Set<String> parts = new LinkedHashSet<>();
    try {
      for (Class<?> c : new Class<?>[] {Heap.class, TestSupport.class}) {
        parts.add(Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI())
            .toString());
      }
    } catch (URISyntaxException e) {
      throw new AssertionError(e);
    }
    for (String key : new String[] {"jdk.module.path", "java.class.path"}) {
      for (String e : System.getProperty(key, "").split(File.pathSeparator)) {
        if (!e.isEmpty()) parts.add(e);
      }
    }
    return String.join(File.pathSeparator, parts);
  }

  /**
   * The java launcher of this JVM. Under qemu (the qemu-aarch64 profile) that is the project's
   * wrapper, which runs the aarch64 JVM under qemu-user with the AARCH64_SYSROOT it inherits.
   */
  static List<String> javaLauncher() {
    Path wrapper = Paths.get("scripts", "qemu-aarch64-jvm", "bin", "java");
    if (EMULATED && System.getenv("AARCH64_SYSROOT") != null && Files.isExecutable(wrapper)) {
      return List.of(wrapper.toAbsolutePath().toString());
    }
    return List.of(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
  }

  /**
   * Stops java.util.logging's console output of one logger until the result is closed (for a
   * test that provokes a report on purpose). Reflective, because the tests run inside module
   * io.segfit, which does not read java.logging.
   */
  static AutoCloseable quietLogger(String name) throws ReflectiveOperationException {
    Class<?> type = Class.forName("java.util.logging.Logger");
    Object logger = type.getMethod("getLogger", String.class).invoke(null, name);
    java.lang.reflect.Method parents = type.getMethod("setUseParentHandlers", boolean.class);
    parents.invoke(logger, false);
    return () -> parents.invoke(logger, true);
  }

  /** Runs mainClass in a child JVM on this JVM's class path, with extra JVM options. */
  static Child runChild(List<String> jvmOptions, String mainClass, String... args)
      throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(javaLauncher());
    cmd.addAll(jvmOptions);
    cmd.add("-cp");
    cmd.add(classPath());
    cmd.add(mainClass);
    cmd.addAll(Arrays.asList(args));
    Path out = Files.createTempFile("segfit-child", ".out");
    Path err = Files.createTempFile("segfit-child", ".err");
    try {
      Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile())
          .redirectError(err.toFile()).start();
      if (!p.waitFor(EMULATED ? 600 : 120, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new AssertionError("child JVM timed out: " + cmd);
      }
      return new Child(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
          Files.readString(err, StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(out);
      Files.deleteIfExists(err);
    }
  }

  /**
   * Runs a mode of ChildMain in a JVM of its own, in dir: its options, this JVM's segfit.*
   * properties (those the options do not set), a crash report in dir/hs_err.log, stdout and
   * stderr together in the result's stdout (in the order written), and env added to the
   * environment. Fails if the child does not end within the minutes given.
   */
  static Child runOwnChild(Path dir, List<String> jvmOptions, Map<String, String> env,
      int minutes, String... modeAndArgs) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(javaLauncher());
    cmd.add("-XX:ErrorFile=" + dir.resolve("hs_err.log"));
    cmd.addAll(jvmOptions);
    for (String p : segfitProperties()) {
      String name = p.substring(0, p.indexOf('=') + 1);
      if (jvmOptions.stream().noneMatch(o -> o.startsWith(name))) cmd.add(p);
    }
    cmd.addAll(List.of("-cp", classPath(), ChildMain.class.getName()));
    cmd.addAll(Arrays.asList(modeAndArgs));
    Path log = dir.resolve("out.log");
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(log.toFile());
    pb.environment().putAll(env);
    Process p = pb.start();
    boolean ended = p.waitFor(minutes, TimeUnit.MINUTES);
    if (!ended) {
      p.destroyForcibly().waitFor();
    }
    String out = Files.readString(log, StandardCharsets.UTF_8);
    assertTrue(ended, "child hung:\n" + out);
    return new Child(p.exitValue(), out, "");
  }

  /** Whether this JVM accepts --enable-native-access (JDK 17 does, as an incubator option). */
  static List<String> nativeAccess() {
    return List.of("--enable-native-access=ALL-UNNAMED");
  }

  /** JVM options that pass on how this JVM finds the library (segfit.library.path, if set). */
  static List<String> libraryOptions() {
    List<String> o = new ArrayList<>();
    String path = System.getProperty("segfit.library.path");
    if (path != null) o.add("-Dsegfit.library.path=" + path);
    return o;
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
