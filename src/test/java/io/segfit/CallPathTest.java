// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.segfit.internal.Blocks;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * The path to the core: FFM critical downcalls on JDK 22+ (the jar's META-INF/versions/22
 * classes; the jdk25 profile tests over them), JNI on JDK 17-21 and with -Dsegfit.ffm=false.
 * Both paths must give the same results and the same exceptions, message for message.
 */
class CallPathTest {

  private static List<String> options(String... extra) {
    List<String> o = new ArrayList<>(TestSupport.nativeAccess());
    o.addAll(TestSupport.libraryOptions());
    o.addAll(List.of(extra));
    return o;
  }

  private static String pathLine(TestSupport.Child child) {
    for (String l : child.stdout().split("\n")) {
      if (l.startsWith("path=")) return l.substring(5);
    }
    throw new AssertionError("no path in " + child);
  }

  /** The child's output without its path line: one line per case. */
  private static String cases(TestSupport.Child child) {
    StringBuilder sb = new StringBuilder();
    for (String l : child.stdout().split("\n")) {
      if (!l.startsWith("path=")) sb.append(l).append('\n');
    }
    return sb.toString();
  }

  @Test
  void thisJvmTakesTheFastestPathItHas() {
    if (Runtime.version().feature() >= 22) {
      assertEquals("ffm", Blocks.path(), "JDK 22+ must run the multi-release FFM classes");
    } else {
      assertTrue(Blocks.path().startsWith("jni"), Blocks.path());
    }
  }

  @Test
  @TestSupport.ChildJvm
  void forcedJniGivesTheSameResultsAndExceptions() throws Exception {
    TestSupport.Child fast = TestSupport.runChild(options(), Cases.class.getName());
    TestSupport.Child jni = TestSupport.runChild(options("-Dsegfit.ffm=false"),
        Cases.class.getName());
    assertEquals(0, fast.exitCode(), fast::toString);
    assertEquals(0, jni.exitCode(), jni::toString);
    assertEquals("", fast.stderr(), fast::toString);
    assertEquals("", jni.stderr(), jni::toString);
    assertEquals(Runtime.version().feature() >= 22 ? "ffm" : Blocks.path(), pathLine(fast));
    assertEquals(Runtime.version().feature() >= 22 ? "jni (segfit.ffm=false)" : Blocks.path(),
        pathLine(jni));
    assertEquals(cases(jni), cases(fast), "JNI and FFM paths differ");
    assertTrue(cases(fast).contains("free(allocateDirect)=IllegalArgumentException"), fast::toString);
    assertTrue(cases(fast).contains("limit=HeapOutOfMemoryError"), fast::toString);
  }

  @Test
  @TestSupport.ChildJvm
  void invalidSwitchKeepsJniAndSaysSo() throws Exception {
    assumeTrue(Runtime.version().feature() >= 22, "the switch exists on JDK 22+");
    TestSupport.Child child = TestSupport.runChild(options("-Dsegfit.ffm=maybe"),
        Cases.class.getName());
    assertEquals(0, child.exitCode(), child::toString);
    assertTrue(pathLine(child).startsWith("jni (system property segfit.ffm=maybe is invalid"),
        child::toString);
    assertTrue(child.stderr().contains("segfit.ffm=maybe"), child::toString);
  }

  @Test
  @TestSupport.ChildJvm
  void withoutTheFlagJdk24WarnsOnceAndStillTakesFfm() throws Exception {
    assumeTrue(Runtime.version().feature() >= 24, "JNI warnings start with JDK 24 (JEP 472)");
    List<String> noFlag = new ArrayList<>(TestSupport.libraryOptions());
    TestSupport.Child child = TestSupport.runChild(noFlag, Cases.class.getName());
    assertEquals(0, child.exitCode(), child::toString);
    assertEquals("ffm", pathLine(child), child::toString);
    int warnings = child.stderr().split("WARNING: Use --enable-native-access", -1).length - 1;
    assertEquals(1, warnings, child::toString);
  }

  /** Child JVM: prints the path, then each case's result or exception (addresses masked). */
  public static final class Cases {
    private Cases() {}

    public static void main(String[] args) {
      Heap other = Heap.builder().name("paths-other").jmx(false).build();
      try (Heap heap = Heap.builder().name("paths").jmx(false).build();
          Heap small = Heap.builder().name("paths-small").maxBytes(1 << 20).jmx(false).build()) {
        ByteBuffer keep = heap.allocate(64);
        System.out.println("path=" + Blocks.path());
        run("allocate(-1)", () -> heap.allocate(-1));
        run("allocateAddress(2^50)", () -> heap.allocateAddress(1L << 50));
        run("allocateAligned(64,3)", () -> heap.allocateAligned(64, 3));
        run("allocateAlignedAddress(64,4096)", () -> {
          long a = heap.allocateAlignedAddress(64, 4096);
          heap.freeAddress(a);
          return a % 4096 == 0;
        });
        run("allocateZeroed(4096)", () -> {
          ByteBuffer b = heap.allocateZeroed(4096);
          long sum = 0;
          for (int i = 0; i < 4096; i++) sum += b.get(i);
          heap.free(b);
          return sum;
        });
        run("free(heap buffer)", () -> free(heap, ByteBuffer.allocate(64)));
        run("free(allocateDirect)", () -> free(heap, ByteBuffer.allocateDirect(64)));
        run("free(other heap)", () -> free(heap, other.allocate(64)));
        run("free(interior slice)", () -> free(heap, keep.slice(16, 16)));
        run("free(smaller view)", () -> {
          // 3000 bytes: a class that is not a power of two, so no alignment explains the view
          ByteBuffer b = heap.allocate(3000);
          try {
            return free(heap, b.slice(0, 8));
          } finally {
            run("free(block of the smaller view)", () -> free(heap, b));
          }
        });
        run("free(moved position)", () -> {
          ByteBuffer b = heap.allocate(100);
          b.position(40).limit(60);
          return free(heap, b);
        });
        run("free(read-only duplicate)", () -> free(heap, heap.allocate(100).asReadOnlyBuffer()));
        run("double free", () -> {
          ByteBuffer b = heap.allocate(32);
          heap.free(b);
          return free(heap, b);
        });
        run("reallocate(moved position)", () -> {
          ByteBuffer b = heap.allocate(100);
          b.put(3, (byte) 7).position(50);
          ByteBuffer r = heap.reallocate(b, 5000);
          byte kept = r.get(3);
          heap.free(r);
          return kept;
        });
        run("reallocate(larger view)", () -> heap.reallocate(
            ByteBuffer.allocateDirect(8), 100));
        run("reallocate(freed)", () -> {
          ByteBuffer b = heap.allocate(32);
          heap.free(b);
          return heap.reallocate(b, 64);
        });
        run("reallocate(-1)", () -> heap.reallocate(keep, -1));
        run("freeAddress(0)", () -> {
          heap.freeAddress(0);
          return "ok";
        });
        run("freeAddress(foreign)", () -> {
          heap.freeAddress(0x12345670L);
          return "ok";
        });
        run("freeAddress twice", () -> {
          long a = heap.allocateAddress(48);
          heap.freeAddress(a);
          heap.freeAddress(a);
          return "ok";
        });
        run("reallocateAddress(0,100)", () -> {
          long a = heap.reallocateAddress(0, 100);
          long usable = heap.usableSizeAddress(a);
          heap.freeAddress(heap.reallocateAddress(a, 3 << 20));
          return usable >= 100;
        });
        run("usableSizeAddress(freed)", () -> {
          long a = heap.allocateAddress(48);
          heap.freeAddress(a);
          return heap.usableSizeAddress(a);
        });
        run("limit", () -> small.allocate(2 << 20));
        run("limitAddress", () -> small.allocateAddress(2 << 20));
        run("stats", () -> {
          HeapStats s = heap.stats();
          return s.liveBlocks() + " live, " + s.allocations() + " allocations, " + s.frees()
              + " frees";
        });
        heap.free(keep);
        other.close();
        run("closed", () -> other.allocate(8));
      }
    }

    private static String free(Heap heap, ByteBuffer b) {
      heap.free(b);
      return "freed";
    }

    private static void run(String name, Supplier<Object> action) {
      String result;
      try {
        result = String.valueOf(action.get());
      } catch (RuntimeException | OutOfMemoryError e) {
        result = e.getClass().getSimpleName() + ": " + e.getMessage();
      }
      System.out.println(name + "=" + result.replaceAll("0x[0-9a-f]+", "0x?"));
    }
  }
}
