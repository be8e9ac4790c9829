// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Helpers shared by the tests: scaling under emulation, heap checks, child JVMs. */
final class TestSupport {
  private TestSupport() {}

  /** True under qemu (the qemu-aarch64 profile sets segfit.test.emulated=true): scale down. */
  static final boolean EMULATED = Boolean.getBoolean("segfit.test.emulated");

  static {
    // Under qemu-user the JVM's default launch mechanism execs jspawnhelper, an aarch64 binary
    // the host kernel cannot run; FORK execs the child command (the qemu wrapper) directly.
    if (EMULATED && System.getProperty("jdk.lang.Process.launchMechanism") == null) {
      System.setProperty("jdk.lang.Process.launchMechanism", "FORK");
    }
  }

  /** n, or n / 10 (at least 1) under emulation. */
  static int scaled(int n) {
    return EMULATED ? Math.max(1, n / 10) : n;
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

  /** The class path of this JVM, module path included, for a child on the class path. */
  static String classPath() {
    List<String> parts = new ArrayList<>();
    for (String p : new String[] {System.getProperty("java.class.path", ""),
        System.getProperty("jdk.module.path", "")}) {
      for (String e : p.split(File.pathSeparator)) if (!e.isEmpty()) parts.add(e);
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
}
