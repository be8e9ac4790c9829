// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.segfit.internal.Figure;
import io.segfit.internal.Stats;
import io.segfit.micrometer.SegfitMetrics;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Method;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.junit.jupiter.api.Test;

/**
 * The statistics are defined once, in segfit.h's SEGFIT_STATS and SEGFIT_CLASS_STATS lists: every
 * figure of them reaches the user through a typed getter, an MXBean attribute and a meter.
 */
class FiguresTest {

  private static String capitalised(String name) {
    return Character.toUpperCase(name.charAt(0)) + name.substring(1);
  }

  private static Method method(Class<?> type, String name) {
    try {
      Method m = type.getMethod(name);
      return m.getReturnType() == long.class ? m : null;
    } catch (NoSuchMethodException e) {
      return null;
    }
  }

  /** What the Java surface lacks for the figures of the lists, one line each. */
  private static List<String> missing() {
    List<String> missing = new ArrayList<>();
    for (Figure f : Stats.FIGURES) {
      if (method(HeapStats.class, f.accessor()) == null) {
        missing.add("figure " + f.field() + " lacks its getter: long HeapStats." + f.accessor()
            + "()");
      }
      if (method(HeapMXBean.class, "get" + capitalised(f.accessor())) == null) {
        missing.add("figure " + f.field() + " lacks its MXBean attribute: long HeapMXBean.get"
            + capitalised(f.accessor()) + "()");
      }
    }
    for (Figure f : Stats.CLASS_FIGURES) {
      if (method(SizeClassStats.class, f.accessor()) == null) {
        missing.add("size-class figure " + f.field() + " lacks its getter: long SizeClassStats."
            + f.accessor() + "()");
      }
    }
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    try (Heap heap = Heap.builder().name("figures-meters").jmx(false).build();
        SegfitMetrics metrics = new SegfitMetrics()) {
      metrics.bindTo(registry);
      for (Figure f : Stats.FIGURES) {
        Meter m = registry.find(SegfitMetrics.PREFIX + f.metric())
            .tag(SegfitMetrics.HEAP_TAG, "figures-meters").tags(f.tags().toArray(new String[0]))
            .meter();
        if (m == null) {
          missing.add("figure " + f.field() + " lacks its meter " + SegfitMetrics.PREFIX
              + f.metric() + f.tags());
        }
      }
    } catch (RuntimeException | LinkageError e) {
      missing.add("SegfitMetrics registers no meter: " + (e.getCause() != null ? e.getCause() : e));
    }
    return missing;
  }

  @Test
  void everyFigureHasItsGetterItsMxbeanAttributeAndItsMeter() {
    List<String> missing = missing();
    assertTrue(missing.isEmpty(), () -> String.join("\n", missing));
    assertFalse(Stats.FIGURES.isEmpty());
    assertFalse(Stats.CLASS_FIGURES.isEmpty());
  }

  @Test
  void everyGetterReadsItsOwnFigure() {
    // Distinct values in every slot: a getter that reads another figure's slot is caught.
    long[] raw = Stats.array();
    for (int i = 0; i < raw.length; i++) raw[i] = 1_000_000 + i;
    int classes = 3;
    raw[Stats.CLASS_COUNT] = classes;
    HeapStats stats = new HeapStats("synthetic", raw, 77);
    for (Figure f : Stats.FIGURES) {
      long expected = f.index() == Stats.LEAKS_REPORTED ? 77 : raw[f.index()];
      assertEquals(expected, invoke(HeapStats.class, f.accessor(), stats), f.field());
    }
    assertEquals(classes, stats.sizeClasses().size());
    for (int c = 0; c <= classes; c++) {
      SizeClassStats cs = c < classes ? stats.sizeClasses().get(c) : stats.large();
      for (Figure f : Stats.CLASS_FIGURES) {
        assertEquals(raw[Stats.record(c) + f.index()], invoke(SizeClassStats.class, f.accessor(),
            cs), "class " + c + " " + f.field());
      }
    }
  }

  /** Every figure of a snapshot, in the order of Stats.FIGURES. */
  private static long[] figures(HeapStats stats) {
    long[] all = new long[Stats.FIGURES.size()];
    for (int k = 0; k < all.length; k++) {
      all[k] = invoke(HeapStats.class, Stats.FIGURES.get(k).accessor(), stats);
    }
    return all;
  }

  private static long invoke(Class<?> type, String accessor, Object target) {
    try {
      return (long) type.getMethod(accessor).invoke(target);
    } catch (ReflectiveOperationException e) {
      throw new AssertionError(type.getSimpleName() + "." + accessor, e);
    }
  }

  @Test
  void everyMxbeanAttributeIsItsFigureOfASnapshot() throws Exception {
    MBeanServer server = ManagementFactory.getPlatformMBeanServer();
    try (Heap heap = Heap.builder().name("figures-jmx").purgeDelay(Duration.ofMinutes(10))
        .maxBytes(64 << 20).build()) {
      long a = heap.allocateAddress(100);
      a = heap.reallocateAddress(a, 5000);
      heap.freeAddress(heap.allocateAddress(1 << 20));
      ObjectName name = ObjectName.getInstance(heap.mxbeanName());
      // The purger may still act on this thread's idle record (slow under qemu, where the
      // MBean server takes a while): compare only attributes read while the figures held still.
      for (int attempt = 1; ; attempt++) {
        long[] before = figures(heap.stats());
        Object[] values = new Object[before.length];
        for (int k = 0; k < values.length; k++) {
          values[k] = server.getAttribute(name, capitalised(Stats.FIGURES.get(k).accessor()));
        }
        if (java.util.Arrays.equals(before, figures(heap.stats()))) {
          for (int k = 0; k < values.length; k++) {
            assertEquals(before[k], values[k], Stats.FIGURES.get(k).field());
          }
          break;
        }
        assertTrue(attempt < 20, "the heap's figures never held still for 20 reads");
      }
      heap.freeAddress(a);
    }
  }

  @Test
  void aFigureTheListLacksFailsLoudly() {
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> Stats.index("no_such_figure"));
    assertTrue(e.getMessage().contains("no_such_figure"), e.getMessage());
    assertThrows(IllegalStateException.class, () -> Stats.classIndex("no_such_figure"));
    assertEquals("live_bytes", Stats.FIGURES.get(Stats.LIVE_BYTES).field());
  }
}
