// SPDX-License-Identifier: Apache-2.0
/*
 * Out of memory from the operating system: a child JVM caps its own address space (prlimit)
 * and allocates until mmap fails (OsOutOfMemoryChild does the work and checks; this test starts
 * it and judges how it ended). The child must end by itself with "RESULT ok": a JVM crash, a
 * hang or any other exception type fails the test. Skipped under qemu-user, which accepts
 * RLIMIT_AS but does not enforce it.
 */
package io.segfit.hostile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.segfit.Heap;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OsOutOfMemoryTest {
  @Test
  void childJvmOutOfAddressSpace(@TempDir Path dir) throws Exception {
    assumeFalse(Hostile.EMULATED, "qemu-user does not enforce RLIMIT_AS");
    assumeTrue(new File("/usr/bin/prlimit").canExecute(), "prlimit (util-linux) missing");
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(List.of("-Xint", "-Xmx48m", "-Xms48m", "-XX:+UseSerialGC",
        "-XX:ReservedCodeCacheSize=16m", "-XX:CompressedClassSpaceSize=32m",
        "-XX:MaxMetaspaceSize=64m", "-Xss512k", "-XX:ErrorFile=" + dir.resolve("hs_err.log"),
        "--enable-native-access=ALL-UNNAMED"));
    cmd.addAll(Hostile.segfitProperties());
    cmd.addAll(List.of("-cp", childClassPath(), OsOutOfMemoryChild.class.getName()));
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

  /**
   * A class path for the child: where segfit's and these tests' classes come from, plus this
   * JVM's class path and module path (surefire runs the tests patched into the io.segfit module,
   * the child runs everything from the class path).
   */
  static String childClassPath() throws Exception {
    Set<String> parts = new LinkedHashSet<>();
    parts.add(Path.of(Heap.class.getProtectionDomain().getCodeSource().getLocation().toURI())
        .toString());
    parts.add(Path.of(OsOutOfMemoryChild.class.getProtectionDomain().getCodeSource().getLocation()
        .toURI()).toString());
    for (String key : new String[] {"jdk.module.path", "java.class.path"}) {
      String v = System.getProperty(key);
      if (v != null && !v.isEmpty()) {
        parts.addAll(Arrays.asList(v.split(File.pathSeparator)));
      }
    }
    return String.join(File.pathSeparator, parts);
  }
}
