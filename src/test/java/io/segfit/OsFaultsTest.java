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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
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
    runFaultsChild(dir,
        "mmap=every:7,munmap=every:3,mremap=every:3,madvise=every:2,membarrier=every:2");
  }

  @Test
  void randomCallsRefused(@TempDir Path dir) throws Exception {
    runFaultsChild(dir, "all=rate:0.1,seed=20261121");
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

  static void runFaultsChild(Path dir, String plan) throws Exception {
    // Under qemu-user java.home is the aarch64 JRE, which only the qemu wrapper can start; the
    // C fault tests (faults-*) run there instead, with 4 and 64 KiB pages.
    assumeFalse(TestSupport.EMULATED, "no child JVM under qemu-user");
    Path stop = dir.resolve("stop");
    TestSupport.Child child = TestSupport.runOwnChild(dir,
        List.of("-Xmx256m", "--enable-native-access=ALL-UNNAMED",
            "-Dsegfit.library.path=" + faultsLibrary()),
        Map.of("SEGFIT_FAULTS", plan + ",stop=" + stop), 10, "faults", stop.toString());
    String out = child.stdout();
    System.out.println("[child " + plan + "] " + out.replace("\n", "\n[child] "));
    assertEndedWell(dir, child);
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
    TestSupport.Child child = TestSupport.runOwnChild(dir,
        List.of("-Xint", "-Xmx48m", "-Xms48m", "-XX:+UseSerialGC",
            "-XX:ReservedCodeCacheSize=16m", "-XX:CompressedClassSpaceSize=32m",
            "-XX:MaxMetaspaceSize=64m", "-Xss512k", "--enable-native-access=ALL-UNNAMED"),
        Map.of("MALLOC_ARENA_MAX", "2"), 10, "os-out-of-memory");
    System.out.println("[child] " + child.stdout().replace("\n", "\n[child] "));
    assertEndedWell(dir, child);
  }

  /** The child ended by itself, without a JVM crash, saying "RESULT ok" with exit status 0. */
  private static void assertEndedWell(Path dir, TestSupport.Child child) throws Exception {
    Path hsErr = dir.resolve("hs_err.log");
    String out = child.stdout();
    assertTrue(!Files.exists(hsErr), "child JVM crashed:\n" + out + "\n"
        + (Files.exists(hsErr) ? Files.readString(hsErr) : ""));
    assertTrue(out.contains("RESULT ok"), "child failed:\n" + out);
    assertEquals(0, child.exitCode(), "child exit status:\n" + out);
  }
}
