// SPDX-License-Identifier: Apache-2.0
/*
 * Debug mode's guard pages, seen from Java: a child JVM overruns a large block of a debug heap
 * through its raw address. It must not survive the overrun, and its crash report must name the
 * first page after the block as the faulting address (si_addr, SEGV_ACCERR): the overrun is
 * stopped at its first byte outside the block's pages instead of corrupting whatever follows.
 * Before the JVM's crash handling, segfit's SIGSEGV hook must print its own report naming the
 * heap, the block and the offset. This is also the limit the README ("Safety") states: such
 * misuse ends the JVM; debug mode makes the crash point at the culprit.
 */
package io.segfit.hostile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

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

class GuardPageTest {
  @Test
  void overrunOfALargeDebugBlockStopsAtTheGuardPage(@TempDir Path dir) throws Exception {
    // Under qemu-user java.home is the aarch64 JRE, which only the qemu wrapper can start; the
    // C test hostile-oom checks the guard page there (4 and 64 KiB pages).
    assumeFalse(Hostile.EMULATED, "no child JVM under qemu-user");
    int size = (2 << 20) + 100; // large (own mapping), not a multiple of any page size
    Path hsErr = dir.resolve("hs_err.log");
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(List.of("-Xmx64m", "-XX:+UseSerialGC", "-XX:-CreateCoredumpOnCrash",
        "-XX:ErrorFile=" + hsErr, "--enable-native-access=ALL-UNNAMED"));
    cmd.addAll(Hostile.segfitProperties());
    cmd.addAll(List.of("-cp", OsOutOfMemoryTest.childClassPath(), GuardPageChild.class.getName(),
        Integer.toString(size)));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(dir.resolve("out.log").toFile()).start();
    boolean ended = p.waitFor(5, TimeUnit.MINUTES);
    if (!ended) {
      p.destroyForcibly().waitFor();
    }
    String out = Files.readString(dir.resolve("out.log"), StandardCharsets.UTF_8);
    assertTrue(ended, "child hung:\n" + out);
    assertFalse(out.contains("SURVIVED"), "two pages of overrun went unnoticed:\n" + out);
    Matcher block = Pattern.compile("BLOCK (\\d+) (\\d+)").matcher(out);
    assertTrue(block.find(), "child did not get to the overrun:\n" + out);
    long address = Long.parseLong(block.group(1));
    assertEquals(size, Long.parseLong(block.group(2)));
    assertTrue(p.exitValue() != 0, "child exit status 0:\n" + out);
    assertTrue(Files.exists(hsErr), "child died without a crash report:\n" + out);
    String report = Files.readString(hsErr, StandardCharsets.ISO_8859_1);
    Matcher si = Pattern.compile("si_signo: 11 \\(SIGSEGV\\), si_code: \\d+ \\((\\w+)\\), "
        + "si_addr: 0x([0-9a-f]+)").matcher(report);
    assertTrue(si.find(), "no SIGSEGV in the crash report:\n"
        + report.substring(0, Math.min(3000, report.length())));
    long faultAt = Long.parseUnsignedLong(si.group(2), 16);
    long end = address + size;
    System.out.printf("guard page: block 0x%x + %d bytes, fault at 0x%x (%s)%n", address, size,
        faultAt, si.group(1));
    assertEquals("SEGV_ACCERR", si.group(1), "the fault is not on a protected guard page");
    // The first byte of the first page after the block's last page (4 KiB to 64 KiB pages).
    assertTrue(faultAt > end && faultAt <= end + 65536 && faultAt % 4096 == 0,
        String.format("fault at 0x%x, block ends at 0x%x", faultAt, end));
    // segfit's own report, printed by its SIGSEGV hook before the JVM's crash handling.
    String expected = String.format("segfit: heap 'guarded': write at offset %d of the large "
        + "block 0x%x (", faultAt - address, address);
    int at = out.indexOf(expected);
    assertTrue(at >= 0, "no segfit guard-page report '" + expected + "...' in:\n" + out);
    String line = out.substring(at, out.indexOf('\n', at));
    System.out.println(line);
    assertTrue(line.contains("past its end") && line.contains(String.format("0x%x", faultAt)),
        line);
  }
}
