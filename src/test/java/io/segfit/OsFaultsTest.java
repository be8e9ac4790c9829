// SPDX-License-Identifier: Apache-2.0
/*
 * The operating system says no, under Java, in child JVMs (ChildMain does the work and the
 * checks; these tests start it and judge how it ended). A JVM crash, a hang, any exception other
 * than HeapOutOfMemoryError, a changed byte or memory left live or committed fails a test.
 *
 * Injected faults: the child loads libsegfit-faults.so (the core built with SEGFIT_FAULTS, from
 * the native build directory; never in the jar) through segfit.library.path, with SEGFIT_FAULTS
 * making the core's mmap, munmap, mremap, madvise and membarrier calls fail on a schedule until
 * a stop file appears; the faults injected are read from the core's own report
 * ("segfit-faults: stopped: ..."). Two schedules: every Nth call of each operation, and a
 * seeded random one.
 *
 * A real refusal: the child caps its own address space (prlimit) and allocates until mmap
 * fails. Skipped under qemu-user, which accepts RLIMIT_AS but does not enforce it.
 */
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@TestSupport.ChildJvm
class OsFaultsTest {
  static final Pattern REPORT = Pattern.compile("segfit-faults: stopped:((?: \\w+ \\d+/\\d+)+)");
  static final Pattern OP = Pattern.compile("(\\w+) (\\d+)/(\\d+)");

  @Test
  void everyNthCallRefused(@TempDir Path dir) throws Exception {
    runChild(dir, "mmap=every:7,munmap=every:3,mremap=every:3,madvise=every:2,membarrier=every:2");
  }

  @Test
  void randomCallsRefused(@TempDir Path dir) throws Exception {
    runChild(dir, "all=rate:0.1,seed=20261121");
  }

  /** The fault-injecting JNI library of this platform's native build directory. */
  static Path faultsLibrary() throws Exception {
    Path classes = Path.of(Heap.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    String build = System.getProperty("os.arch").equals("aarch64") ? "aarch64" : "x86_64";
    Path lib = classes.getParent().resolve("cmake-" + build).resolve("libsegfit-faults.so");
    assertTrue(Files.isRegularFile(lib), lib + " missing: the native build makes it when "
        + "SEGFIT_FAULTS is on (the default with the C tests)");
    return lib;
  }

  static void runChild(Path dir, String plan) throws Exception {
    // Under qemu-user java.home is the aarch64 JRE, which only the qemu wrapper can start; the
    // C fault tests (faults-*) run there instead, with 4 and 64 KiB pages.
    assumeFalse(TestSupport.EMULATED, "no child JVM under qemu-user");
    Path stop = dir.resolve("stop");
    List<String> cmd = new ArrayList<>(TestSupport.javaLauncher());
    cmd.addAll(List.of("-Xmx256m", "-XX:ErrorFile=" + dir.resolve("hs_err.log"),
        "--enable-native-access=ALL-UNNAMED"));
    for (String p : TestSupport.segfitProperties()) {
      if (!p.startsWith("-Dsegfit.library.path=")) {
        cmd.add(p);
      }
    }
    cmd.add("-Dsegfit.library.path=" + faultsLibrary());
    cmd.addAll(List.of("-cp", TestSupport.classPath(), ChildMain.class.getName(), "faults",
        stop.toString()));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(dir.resolve("out.log").toFile());
    pb.environment().put("SEGFIT_FAULTS", plan + ",stop=" + stop);
    Process p = pb.start();
    boolean ended = p.waitFor(10, TimeUnit.MINUTES);
    if (!ended) {
      p.destroyForcibly().waitFor();
    }
    String out = Files.readString(dir.resolve("out.log"), StandardCharsets.UTF_8);
    System.out.println("[child " + plan + "] " + out.replace("\n", "\n[child] "));
    assertTrue(ended, "child hung:\n" + out);
    assertTrue(!Files.exists(dir.resolve("hs_err.log")), "child JVM crashed:\n" + out);
    assertTrue(out.contains("RESULT ok"), "child failed:\n" + out);
    assertEquals(0, p.exitValue(), "child exit status:\n" + out);
    Matcher report = REPORT.matcher(out);
    assertTrue(report.find(), "the core never reported its faults:\n" + out);
    long faults = 0;
    for (Matcher op = OP.matcher(report.group(1)); op.find(); ) {
      faults += Long.parseLong(op.group(2));
    }
    assertTrue(faults > 0, "no fault was injected:\n" + out);
  }

  @Test
  void childJvmOutOfAddressSpace(@TempDir Path dir) throws Exception {
    assumeFalse(TestSupport.EMULATED, "qemu-user does not enforce RLIMIT_AS");
    assumeTrue(new File("/usr/bin/prlimit").canExecute(), "prlimit (util-linux) missing");
    List<String> cmd = new ArrayList<>(TestSupport.javaLauncher());
    cmd.addAll(List.of("-Xint", "-Xmx48m", "-Xms48m", "-XX:+UseSerialGC",
        "-XX:ReservedCodeCacheSize=16m", "-XX:CompressedClassSpaceSize=32m",
        "-XX:MaxMetaspaceSize=64m", "-Xss512k", "-XX:ErrorFile=" + dir.resolve("hs_err.log"),
        "--enable-native-access=ALL-UNNAMED"));
    cmd.addAll(TestSupport.segfitProperties());
    cmd.addAll(List.of("-cp", TestSupport.classPath(), ChildMain.class.getName(),
        "os-out-of-memory"));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(dir.resolve("out.log").toFile());
    pb.environment().put("MALLOC_ARENA_MAX", "2");
    Process p = pb.start();
    boolean ended = p.waitFor(10, TimeUnit.MINUTES);
    if (!ended) {
      p.destroyForcibly().waitFor();
    }
    String out = Files.readString(dir.resolve("out.log"), StandardCharsets.UTF_8);
    System.out.println("[child] " + out.replace("\n", "\n[child] "));
    assertTrue(ended, "child hung:\n" + out);
    assertTrue(!Files.exists(dir.resolve("hs_err.log")), "child JVM crashed:\n" + out + "\n"
        + (Files.exists(dir.resolve("hs_err.log")) ? Files.readString(dir.resolve("hs_err.log"))
            : ""));
    assertTrue(out.contains("RESULT ok"), "child failed:\n" + out);
    assertEquals(0, p.exitValue(), "child exit status:\n" + out);
  }
}
