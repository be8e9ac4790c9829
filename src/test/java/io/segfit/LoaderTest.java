// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.segfit.internal.NativeLibrary;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Loading the native library, each case in a child JVM so that a failed load cannot poison
 * this one: bad override paths keep the JVM's own error in the message, unsupported platforms
 * name os.name, os.arch and the resource, and a good load prints no warning.
 */
class LoaderTest {

  private static List<String> options(String... extra) {
    List<String> o = new ArrayList<>(TestSupport.nativeAccess());
    o.addAll(List.of(extra));
    return o;
  }

  private static String line(TestSupport.Child child, String key) {
    for (String l : child.stdout().split("\n")) {
      if (l.startsWith(key + "=")) return l.substring(key.length() + 1);
    }
    throw new AssertionError("no " + key + " in " + child);
  }

  @Test
  void thisJvmLoadsAndKnowsWhatItLoaded() {
    assertTrue(Segfit.isAvailable(), () -> String.valueOf(Segfit.unavailabilityCause()));
    assertEquals(null, Segfit.unavailabilityCause());
    assertTrue(Segfit.nativeVersion().matches("\\d+\\.\\d+\\.\\d+"));
    assertTrue(Segfit.pageSize() >= 4096);
    assertFalse(Segfit.nativeSource().isEmpty());
  }

  @Test
  @TestSupport.ChildJvm
  void goodLoadPrintsNothingOnStderr() throws Exception {
    List<String> o = options();
    o.addAll(TestSupport.libraryOptions());
    TestSupport.Child child = TestSupport.runChild(o, ChildMain.class.getName(), "probe");
    assertEquals(0, child.exitCode(), child::toString);
    assertEquals("true", line(child, "available"), child::toString);
    assertEquals("", child.stderr(), child::toString);
  }

  @Test
  @TestSupport.ChildJvm
  void nativeAccessWarningNamesOurModuleNotAHelper() throws Exception {
    assumeTrue(Runtime.version().feature() >= 24, "JNI warnings start with JDK 24 (JEP 472)");
    List<String> noFlag = new ArrayList<>(TestSupport.libraryOptions());
    TestSupport.Child child = TestSupport.runChild(noFlag, ChildMain.class.getName(), "probe");
    assertEquals(0, child.exitCode(), child::toString);
    assertTrue(child.stderr().contains(NativeLibrary.class.getName()), child::toString);
    assertFalse(child.stderr().contains("scijava"), child::toString);
  }

  @Test
  @TestSupport.ChildJvm
  void overridePathToATextFileKeepsTheRealCause() throws Exception {
    Path text = Files.createTempFile("not-a-library", ".so");
    try {
      Files.writeString(text, "this is not an ELF file\n");
      TestSupport.Child child = TestSupport.runChild(
          options("-Dsegfit.library.path=" + text), ChildMain.class.getName(), "probe");
      assertEquals(0, child.exitCode(), child::toString);
      assertEquals("false", line(child, "available"));
      String cause = line(child, "cause");
      assertTrue(cause.contains(text.toString()) && cause.contains("segfit.library.path"), cause);
      assertTrue(cause.contains("ELF") || cause.contains("too short"), "the loader's own error: " + cause);
      assertEquals(line(child, "build0"), line(child, "build1"), "same error on every use");
      assertEquals(UnsatisfiedLinkError.class.getName(), line(child, "buildCause0"));
      assertTrue(line(child, "default").contains(text.toString()));
    } finally {
      Files.deleteIfExists(text);
    }
  }

  @Test
  @TestSupport.ChildJvm
  void overridePathToAMissingFile() throws Exception {
    TestSupport.Child child = TestSupport.runChild(
        options("-Dsegfit.library.path=/nonexistent/libsegfit.so"), ChildMain.class.getName(),
        "probe");
    assertEquals("false", line(child, "available"), child::toString);
    assertTrue(line(child, "cause").contains("/nonexistent/libsegfit.so"), child::toString);
  }

  @Test
  @TestSupport.ChildJvm
  void libraryOfTheOtherArchitectureGivesTheWrongElfClassError() throws Exception {
    String arch = System.getProperty("os.arch");
    String otherDir = arch.equals("aarch64") ? "linux_64" : "linux_arm64";
    Path copy = Files.createTempFile("libsegfit-other", ".so");
    try (InputStream in = getClass().getResourceAsStream("/natives/" + otherDir + "/libsegfit.so")) {
      assumeTrue(in != null, "no natives/" + otherDir + " on the class path (host-only build)");
      Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
      TestSupport.Child child = TestSupport.runChild(
          options("-Dsegfit.library.path=" + copy), ChildMain.class.getName(), "probe");
      assertEquals("false", line(child, "available"), child::toString);
      String cause = line(child, "cause");
      // glibc: "wrong ELF class", or HotSpot's hint "can't load AARCH64 .so on a AMD 64 platform"
      String lower = cause.toLowerCase(java.util.Locale.ROOT);
      assertTrue(lower.contains("elf") || lower.contains("can't load"), cause);
    } finally {
      Files.deleteIfExists(copy);
    }
  }

  @Test
  @TestSupport.ChildJvm
  void unsupportedPlatformNamesOsArchAndResource() throws Exception {
    TestSupport.Child child = TestSupport.runChild(options("-Dos.arch=sparcv9"),
        ChildMain.class.getName(), "probe");
    assertEquals("false", line(child, "available"), child::toString);
    String cause = line(child, "cause");
    assertTrue(cause.contains("os.arch=sparcv9") && cause.contains("os.name=Linux")
        && cause.contains("natives/linux_sparcv9/libsegfit.so"), cause);
  }

  @Test
  @TestSupport.ChildJvm
  void worksWithoutJdkJfr() throws Exception {
    // jdk.jfr is optional (requires static): a runtime without it still allocates and frees.
    List<String> o = options("--limit-modules", "java.base,java.management");
    o.addAll(TestSupport.libraryOptions());
    TestSupport.Child child = TestSupport.runChild(o, ChildMain.class.getName(), "probe");
    assertEquals(0, child.exitCode(), child::toString);
    assertEquals("true", line(child, "available"), child::toString);
    assertEquals("", child.stderr(), child::toString);
  }

  @Test
  @TestSupport.ChildJvm
  void concurrentFirstUseLoadsOnce() throws Exception {
    List<String> o = options();
    o.addAll(TestSupport.libraryOptions());
    TestSupport.Child child = TestSupport.runChild(o, ChildMain.class.getName(), "race");
    assertEquals(0, child.exitCode(), child::toString);
    assertEquals("8/8", line(child, "ok"), child::toString);
    assertEquals("", child.stderr(), child::toString);
  }

  @Test
  @TestSupport.ChildJvm
  void unusableExtractionDirectoryIsNamed() throws Exception {
    assumeTrue(System.getProperty("segfit.library.path") == null, "loads from a path here");
    Path file = Files.createTempFile("segfit-tmpdir", ".file");
    try {
      TestSupport.Child child = TestSupport.runChild(options("-Dsegfit.tmpdir=" + file),
          ChildMain.class.getName(), "probe");
      assertEquals("false", line(child, "available"), child::toString);
      String cause = line(child, "cause");
      assertTrue(cause.contains("segfit.tmpdir") && cause.contains(file.toString()), cause);
    } finally {
      Files.deleteIfExists(file);
    }
  }

  @Test
  void resourceNamesFollowNativeLibLoadersLayout() {
    assertEquals("natives/linux_64/libsegfit.so", NativeLibrary.resourceName("Linux", "amd64"));
    assertEquals("natives/linux_64/libsegfit.so", NativeLibrary.resourceName("Linux", "x86_64"));
    assertEquals("natives/linux_arm64/libsegfit.so", NativeLibrary.resourceName("Linux", "aarch64"));
    assertEquals(null, NativeLibrary.platformDirectory("Mac OS X", "aarch64"));
    // the same directory native-lib-loader computes for this JVM
    String ours = NativeLibrary.platformDirectory(System.getProperty("os.name"),
        System.getProperty("os.arch"));
    assertEquals("natives/" + ours + "/",
        org.scijava.nativelib.NativeLibraryUtil.getPlatformLibraryPath("natives/"));
  }
}
