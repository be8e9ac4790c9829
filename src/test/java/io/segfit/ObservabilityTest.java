package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import javax.management.JMX;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;

/** The MXBean, the JFR events and leak detection. */
class ObservabilityTest {

  @Test
  void mxbeanIsRegisteredReadableAndUnregistered() throws Exception {
    MBeanServer server = ManagementFactory.getPlatformMBeanServer();
    ObjectName name = new ObjectName("io.segfit:type=Heap,name=jmx-test");
    try (Heap heap = Heap.builder().name("jmx-test").maxBytes(64 << 20).build()) {
      assertEquals(name, heap.mxbeanName());
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
        assertEquals(new ObjectName("io.segfit:type=Heap,name=jmx-test#2"), twin.mxbeanName());
      }
      try (Heap odd = Heap.builder().name("a,b=c:d").build()) {
        assertTrue(server.isRegistered(odd.mxbeanName()), odd.mxbeanName()::toString);
        assertEquals("a,b=c:d", server.getAttribute(odd.mxbeanName(), "Name"));
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
      recording.enable("io.segfit.HeapStatistics").withPeriod(java.time.Duration.ofMillis(100));
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
        Thread.sleep(300); // lets at least one periodic statistics event fire
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
    assertTrue(seen.contains("io.segfit.HeapStatistics"), () -> "HeapStatistics missing: " + seen);
  }

  @Test
  void leakDetectionReportsADroppedBufferWithItsAllocationSite() throws Exception {
    Logger logger = Logger.getLogger("io.segfit.leak");
    List<LogRecord> records = new CopyOnWriteArrayList<>();
    Handler handler = new Handler() {
      @Override public void publish(LogRecord r) { records.add(r); }
      @Override public void flush() {}
      @Override public void close() {}
    };
    logger.addHandler(handler);
    try (Heap heap = Heap.builder().name("leaky").leakDetection(LeakDetection.PARANOID).build()) {
      assertEquals(LeakDetection.PARANOID, heap.leakDetection());
      ByteBuffer kept = heap.allocate(128);
      heap.free(heap.allocate(64));                          // freed: never reported
      heap.free(heap.reallocate(heap.allocate(32), 4000));   // reallocated then freed
      allocateAndDrop(heap);                                 // leaked
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (records.isEmpty() && System.nanoTime() < deadline) {
        System.gc();
        Thread.sleep(50);
      }
      assertEquals(1, records.size(), () -> "reports: " + records);
      LogRecord r = records.get(0);
      assertTrue(r.getMessage().contains("LEAK") && r.getMessage().contains("leaky")
          && r.getMessage().contains("77 bytes"), r.getMessage());
      Throwable site = r.getThrown();
      assertNotNull(site);
      boolean fromHere = false;
      for (StackTraceElement e : site.getStackTrace()) fromHere |= e.getMethodName().equals("allocateAndDrop");
      assertTrue(fromHere, "the allocation stack names the allocating method");
      assertEquals(1, heap.stats().leaksReported());
      assertEquals(2, heap.stats().liveBlocks(), "the leaked block stays allocated");
      heap.free(kept);
    } finally {
      logger.removeHandler(handler);
    }
  }

  private static void allocateAndDrop(Heap heap) {
    heap.allocate(77).put(0, (byte) 1);
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
