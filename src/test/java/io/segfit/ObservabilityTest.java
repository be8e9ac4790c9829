// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.management.JMX;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import jdk.jfr.consumer.RecordingStream;
import org.junit.jupiter.api.Test;

/** The MXBean, the JFR events and leak detection. */
class ObservabilityTest {

  /** Stands in for heaps that took every name of the form "full", "full#2"... */
  public interface NameHolderMXBean {
    String getName();
  }

  public static final class NameHolder implements NameHolderMXBean {
    @Override
    public String getName() {
      return "full";
    }
  }

  @Test
  void aHeapWhoseNamesAreAllTakenWorksWithoutMXBean() throws Exception {
    MBeanServer server = ManagementFactory.getPlatformMBeanServer();
    List<ObjectName> taken = new ArrayList<>();
    try {
      for (int n = 1; n < 1000; n++) {
        ObjectName name = new ObjectName("io.segfit:type=Heap,name=full" + (n == 1 ? "" : "#" + n));
        server.registerMBean(new NameHolder(), name);
        taken.add(name);
      }
      try (Heap heap = Heap.builder().name("full").build()) {
        assertEquals(null, heap.mxbeanName());
        heap.free(heap.allocate(64));
      }
    } finally {
      for (ObjectName name : taken) server.unregisterMBean(name);
    }
  }

  @Test
  void mxbeanIsRegisteredReadableAndUnregistered() throws Exception {
    MBeanServer server = ManagementFactory.getPlatformMBeanServer();
    ObjectName name = new ObjectName("io.segfit:type=Heap,name=jmx-test");
    try (Heap heap = Heap.builder().name("jmx-test").maxBytes(64 << 20).build()) {
      assertEquals(name, ObjectName.getInstance(heap.mxbeanName()));
      assertEquals("io.segfit:type=Heap,name=jmx-test", heap.mxbeanName());
      assertTrue(server.isRegistered(name));
      ByteBuffer b = heap.allocate(1000);
      assertEquals("jmx-test", server.getAttribute(name, "Name"));
      assertEquals(1L, server.getAttribute(name, "LiveBlocks"));
      assertTrue((Long) server.getAttribute(name, "LiveBytes") >= 1000);
      assertEquals((long) (64 << 20), server.getAttribute(name, "MaxBytes"));
      HeapMXBean proxy = JMX.newMXBeanProxy(server, name, HeapMXBean.class);
      assertEquals(1, proxy.getAllocations());
      assertTrue(proxy.getSummary().contains("jmx-test"));
      heap.free(b);
      assertEquals(1, proxy.getFrees());
      server.invoke(name, "trim", null, null);
      // a second heap with the same name gets a suffix
      try (Heap twin = Heap.builder().name("jmx-test").build()) {
        assertEquals("io.segfit:type=Heap,name=jmx-test#2", twin.mxbeanName());
      }
      try (Heap odd = Heap.builder().name("a,b=c:d").build()) {
        ObjectName oddName = ObjectName.getInstance(odd.mxbeanName());
        assertTrue(server.isRegistered(oddName), odd.mxbeanName());
        assertEquals("a,b=c:d", server.getAttribute(oddName, "Name"));
      }
    }
    assertFalse(server.isRegistered(name));
    try (Heap quiet = Heap.builder().name("no-jmx").jmx(false).build()) {
      assertEquals(null, quiet.mxbeanName());
    }
  }

  @Test
  void jfrEvents() throws Exception {
    Path file = Files.createTempFile("segfit", ".jfr");
    try (Recording recording = new Recording()) {
      recording.enable("io.segfit.LargeAllocation");
      recording.enable("io.segfit.LimitHit");
      recording.enable("io.segfit.Trim");
      recording.start();
      try (Heap heap = Heap.builder().name("jfr-test").maxBytes(16 << 20).build()) {
        ByteBuffer big = heap.allocate(2 << 20);
        try {
          heap.allocateAddress(32 << 20);
        } catch (HeapOutOfMemoryError expected) {
          // emits LimitHit
        }
        heap.free(big);
        heap.trim();
      }
      recording.stop();
      recording.dump(file);
    }
    List<String> seen = new ArrayList<>();
    boolean largeOk = false;
    boolean limitOk = false;
    for (RecordedEvent e : RecordingFile.readAllEvents(file)) {
      String type = e.getEventType().getName();
      seen.add(type);
      if (type.equals("io.segfit.LargeAllocation") && e.getString("heap").equals("jfr-test")) {
        largeOk |= e.getLong("size") == (2 << 20);
      }
      if (type.equals("io.segfit.LimitHit")) {
        limitOk |= e.getLong("requested") == (32 << 20) && e.getLong("limit") == (16 << 20);
      }
    }
    Files.deleteIfExists(file);
    assertTrue(largeOk, () -> "LargeAllocation missing: " + seen);
    assertTrue(limitOk, () -> "LimitHit missing: " + seen);
    assertTrue(seen.contains("io.segfit.Trim"), () -> "Trim missing: " + seen);
  }

  @Test
  void periodicHeapStatistics() throws Exception {
    try (Heap heap = Heap.builder().name("jfr-periodic").jmx(false).build();
        RecordingStream events = new RecordingStream()) {
      List<RecordedEvent> stats = new CopyOnWriteArrayList<>();
      events.enable("io.segfit.HeapStatistics").withPeriod(java.time.Duration.ofMillis(100));
      events.onEvent("io.segfit.HeapStatistics", e -> {
        if (e.getString("heap").equals("jfr-periodic")) stats.add(e);
      });
      ByteBuffer b = heap.allocate(5000);
      events.startAsync();
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (stats.isEmpty() && System.nanoTime() < deadline) Thread.sleep(50);
      assertTrue(!stats.isEmpty(), "no io.segfit.HeapStatistics event within 60 s");
      RecordedEvent e = stats.get(0);
      assertEquals(1, e.getLong("liveBlocks"));
      assertTrue(e.getLong("liveBytes") >= 5000, e::toString);
      assertTrue(e.getLong("committedBytes") >= e.getLong("liveBytes"), e::toString);
      heap.free(b);
    }
  }

  @Test
  void leakDetectionReportsADroppedBufferThroughJfrAndStats() throws Exception {
    AutoCloseable quiet = TestSupport.quietLogger("io.segfit.leak"); // a leak is provoked here
    try (Heap heap = Heap.builder().name("leaky").leakDetection(LeakDetection.PARANOID).build();
        RecordingStream events = new RecordingStream()) {
      List<RecordedEvent> leaks = new CopyOnWriteArrayList<>();
      events.enable("io.segfit.Leak");
      events.onEvent("io.segfit.Leak", leaks::add);
      events.startAsync();
      assertEquals(LeakDetection.PARANOID, heap.leakDetection());
      ByteBuffer kept = heap.allocate(128);
      heap.free(heap.allocate(64));                          // freed: never reported
      heap.free(heap.reallocate(heap.allocate(32), 4000));   // reallocated then freed
      ChildMain.allocateAndDrop(heap);                       // leaked
      long deadline = System.nanoTime() + 60_000_000_000L;
      while ((heap.stats().leaksReported() == 0 || leaks.isEmpty())
          && System.nanoTime() < deadline) {
        System.gc();
        Thread.sleep(100);
      }
      assertEquals(1, heap.stats().leaksReported());
      assertEquals(1, leaks.size(), () -> "events: " + leaks);
      RecordedEvent e = leaks.get(0);
      assertEquals("leaky", e.getString("heap"));
      assertEquals(77, e.getLong("size"));
      assertTrue(e.getString("allocationStack").contains("allocateAndDrop"), e::toString);
      assertEquals(2, heap.stats().liveBlocks(), "the leaked block stays allocated");
      heap.free(kept);
    } finally {
      quiet.close();
    }
  }

  @Test
  @TestSupport.ChildJvm
  void leakReportGoesToSystemLoggerWithTheAllocationStack() throws Exception {
    // In a child JVM on the class path, where System.Logger goes to java.util.logging's console.
    List<String> o = new ArrayList<>(TestSupport.nativeAccess());
    o.addAll(TestSupport.libraryOptions());
    TestSupport.Child c = TestSupport.runChild(o, ChildMain.class.getName(), "leak");
    assertEquals(0, c.exitCode(), c::toString);
    assertTrue(c.stdout().contains("reported=1"), c::toString);
    assertTrue(c.stderr().contains("WARNING: LEAK: a ByteBuffer of heap 'leak-child' (77 bytes"),
        c::toString);
    assertTrue(c.stderr().contains("at io.segfit.ChildMain.allocateAndDrop"), c::toString);
    assertFalse(c.stderr().contains("at io.segfit.internal.LeakDetector"), "stack starts at the caller");
  }

  @Test
  void sampledLeakDetectionTracksSomeBuffersOnly() {
    try (Heap heap = Heap.builder().name("sampled").leakDetection(LeakDetection.SAMPLED)
        .leakSamplingInterval(4).jmx(false).build()) {
      assertEquals(LeakDetection.SAMPLED, heap.leakDetection());
      List<ByteBuffer> bs = new ArrayList<>();
      for (int i = 0; i < 400; i++) bs.add(heap.allocate(16));
      for (ByteBuffer b : bs) heap.free(b);
      TestSupport.assertStillWorks(heap);
    }
    try (Heap heap = Heap.builder().jmx(false).build()) {
      assertEquals(LeakDetection.DISABLED, heap.leakDetection());
    }
  }
}
