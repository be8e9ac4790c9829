// SPDX-License-Identifier: Apache-2.0
package io.segfit.micrometer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.segfit.Heap;
import io.segfit.HeapStats;
import io.segfit.internal.Figure;
import io.segfit.internal.Stats;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** SegfitMetrics against a SimpleMeterRegistry: every figure, heaps coming and going, failures. */
class SegfitMetricsTest {

  /** A heap that purges nothing on its own while a test reads it. */
  private static Heap heap(String name) {
    return Heap.builder().name(name).purgeDelay(Duration.ofMinutes(10)).jmx(false).build();
  }

  private static List<Meter> metersOf(MeterRegistry registry, String heapTag) {
    return registry.getMeters().stream()
        .filter(m -> heapTag.equals(m.getId().getTag(SegfitMetrics.HEAP_TAG)))
        .collect(Collectors.toList());
  }

  private static double value(Meter m) {
    if (m instanceof Gauge) return ((Gauge) m).value();
    return ((FunctionCounter) m).count();
  }

  private static Meter meter(MeterRegistry registry, String heapTag, String name, String... tags) {
    return registry.find(SegfitMetrics.PREFIX + name).tag(SegfitMetrics.HEAP_TAG, heapTag)
        .tags(tags).meter();
  }

  @Test
  void everyFigureOfHeapStatsIsAMeterWithItsValue() throws Exception {
    // A public long accessor of HeapStats that is no figure would be missing from every registry.
    Set<String> accessors =
        Stats.FIGURES.stream().map(Figure::accessor).collect(Collectors.toSet());
    for (Method m : HeapStats.class.getMethods()) {
      if (m.getReturnType() == long.class && m.getParameterCount() == 0) {
        assertTrue(accessors.contains(m.getName()), "HeapStats." + m.getName() + " is no figure");
      }
    }
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    try (Heap heap = heap("mm-figures"); SegfitMetrics metrics = new SegfitMetrics()) {
      metrics.bindTo(registry);
      long[] blocks = new long[10];
      for (int i = 0; i < blocks.length; i++) blocks[i] = heap.allocateAddress(100 << i);
      heap.freeAddress(blocks[0]);
      HeapStats stats = heap.stats();
      assertEquals(Stats.FIGURES.size(), metersOf(registry, "mm-figures").size());
      for (Figure f : Stats.FIGURES) {
        Meter m = meter(registry, "mm-figures", f.metric(), f.tags().toArray(new String[0]));
        assertNotNull(m, f.metric());
        assertEquals(f.kind() == Figure.Kind.COUNTER ? Meter.Type.COUNTER : Meter.Type.GAUGE,
            m.getId().getType(), f.metric());
        assertEquals(f.unit().isEmpty() ? null : f.unit(), m.getId().getBaseUnit(), f.metric());
        assertTrue(m.getId().getDescription().contains(f.description()), f.metric());
        Method accessor = HeapStats.class.getMethod(f.accessor());
        assertEquals((double) (long) accessor.invoke(stats), value(m), f.metric());
      }
      assertEquals(10, value(meter(registry, "mm-figures", "allocations")));
      assertEquals(9, value(meter(registry, "mm-figures", "live.blocks")));
      heap.freeAddress(blocks[1]);
      assertEquals(1 + 1, value(meter(registry, "mm-figures", "frees")));
      assertEquals(heap.stats().liveBytes(), value(meter(registry, "mm-figures", "live")));
    }
  }

  @Test
  void followsHeapsOpenedAndClosed() {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    int perHeap = Stats.FIGURES.size();
    try (Heap before = heap("mm-before")) {
      SegfitMetrics metrics = new SegfitMetrics(Tags.of("service", "cache"));
      metrics.bindTo(registry);
      assertEquals(perHeap, metersOf(registry, "mm-before").size());
      assertEquals("cache", meter(registry, "mm-before", "live").getId().getTag("service"));
      Heap later = heap("mm-later");
      assertEquals(perHeap, metersOf(registry, "mm-later").size());
      later.allocateAddress(64);
      assertEquals(1, value(meter(registry, "mm-later", "allocations")));
      assertEquals(0, value(meter(registry, "mm-before", "allocations")));
      later.close();
      assertTrue(metersOf(registry, "mm-later").isEmpty(), "a closed heap's meters are removed");
      assertEquals(perHeap, metersOf(registry, "mm-before").size());

      metrics.close();
      assertTrue(metersOf(registry, "mm-before").isEmpty(), "close() removes every meter");
      try (Heap after = heap("mm-after")) {
        assertTrue(metersOf(registry, "mm-after").isEmpty(), "a closed binder follows no heap");
      }
      metrics.close(); // again: nothing
      assertThrows(IllegalStateException.class, () -> metrics.bindTo(registry));
    }
  }

  @Test
  void heapsOfTheSameNameGetTagsOfTheirOwn() {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    try (SegfitMetrics metrics = new SegfitMetrics(); Heap first = heap("mm-twin")) {
      metrics.bindTo(registry);
      Heap second = heap("mm-twin");
      second.allocateAddress(32);
      assertEquals(0, value(meter(registry, "mm-twin", "allocations")));
      assertEquals(1, value(meter(registry, "mm-twin#2", "allocations")));
      Heap third = heap("mm-twin");
      assertFalse(metersOf(registry, "mm-twin#3").isEmpty());
      third.close();
      second.close();
      assertTrue(metersOf(registry, "mm-twin#2").isEmpty());
      assertEquals(0, value(meter(registry, "mm-twin", "allocations")));
    }
  }

  @Test
  void reallocationsAreCountedByKind() {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    try (SegfitMetrics metrics = new SegfitMetrics(); Heap heap = heap("mm-realloc")) {
      metrics.bindTo(registry);
      long a = heap.allocateAddress(100);
      a = heap.reallocateAddress(a, 100 + 1);      // same size class: in place
      a = heap.reallocateAddress(a, 10_000);       // another class: moved
      a = heap.reallocateAddress(a, 4 << 20);      // moved into a large block
      a = heap.reallocateAddress(a, 16 << 20);     // large to large: mremap
      heap.freeAddress(a);
      HeapStats s = heap.stats();
      assertEquals(s.reallocationsInPlace(),
          value(meter(registry, "mm-realloc", "reallocations", "kind", "in_place")));
      assertEquals(s.reallocationsMoved(),
          value(meter(registry, "mm-realloc", "reallocations", "kind", "moved")));
      assertEquals(s.reallocationsRemapped(),
          value(meter(registry, "mm-realloc", "reallocations", "kind", "remapped")));
      assertEquals(1, s.reallocationsInPlace());
      assertEquals(2, s.reallocationsMoved());
      assertEquals(1, s.reallocationsRemapped());
      assertEquals(3, registry.find("segfit.heap.reallocations").tag("heap", "mm-realloc")
          .functionCounters().size());
    }
  }

  @Test
  void aMeterReadAsItsHeapClosesReportsTheLastSnapshot() {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    try (SegfitMetrics metrics = new SegfitMetrics()) {
      metrics.bindTo(registry);
      Heap heap = heap("mm-closing");
      heap.allocateAddress(1000);
      Meter live = meter(registry, "mm-closing", "live");
      Meter frees = meter(registry, "mm-closing", "frees");
      double before = value(live);
      assertTrue(before >= 1000);
      heap.close();
      assertEquals(before, value(live), "the last snapshot, not an exception");
      assertEquals(0, value(frees), "the same snapshot");
      Heap unread = heap("mm-unread");
      Meter never = meter(registry, "mm-unread", "live");
      unread.close();
      assertTrue(Double.isNaN(value(never)), "never read before the close: no figure");
    }
  }

  @Test
  void aFailingRegistryNeverFailsAHeap() {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    registry.config().meterFilter(refusing("mm-refused", "refused by the registry"));
    try (SegfitMetrics metrics = new SegfitMetrics()) {
      metrics.bindTo(registry);
      try (Heap refused = heap("mm-refused")) {      // built although its meters failed
        heap("mm-fine").close();                     // later heaps are still followed
        refused.freeAddress(refused.allocateAddress(64));
        assertTrue(metersOf(registry, "mm-refused").isEmpty());
      }                                              // and it closes

      try (Heap refused = heap("mm-refused"); Heap other = heap("mm-other")) {
        // Binding while such a heap is open fails, and leaves no meter behind.
        SimpleMeterRegistry second = new SimpleMeterRegistry();
        second.config().meterFilter(refusing("mm-refused", "refused by the second registry"));
        SegfitMetrics failing = new SegfitMetrics();
        IllegalStateException e = assertThrows(IllegalStateException.class,
            () -> failing.bindTo(second));
        assertEquals("refused by the second registry", e.getMessage());
        assertTrue(second.getMeters().isEmpty(), second.getMeters()::toString);
        try (Heap next = heap("mm-next")) {
          assertTrue(second.getMeters().isEmpty(), "a failed binding follows no heap");
        }
        failing.close();
      }
    }
    assertThrows(NullPointerException.class, () -> new SegfitMetrics().bindTo(null));
    assertThrows(NullPointerException.class, () -> new SegfitMetrics(null));
  }

  /** A filter that throws on the meters of the heaps tagged heapTag. */
  private static MeterFilter refusing(String heapTag, String message) {
    return new MeterFilter() {
      @Override
      public Meter.Id map(Meter.Id id) {
        if (heapTag.equals(id.getTag(SegfitMetrics.HEAP_TAG))) {
          throw new IllegalStateException(message);
        }
        return id;
      }
    };
  }

  @Test
  void readmeListsEveryMeter() throws Exception {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    String table;
    try (SegfitMetrics metrics = new SegfitMetrics(); Heap heap = heap("mm-readme")) {
      metrics.bindTo(registry);
      table = markdownTable(metersOf(registry, "mm-readme"));
    }
    String readme = Files.readString(Paths.get("README.md"), StandardCharsets.UTF_8);
    assertTrue(readme.contains(table), "README.md must contain the meter table:\n" + table);
  }

  /** The README's table of meters, made from the meters themselves. */
  private static String markdownTable(List<Meter> meters) {
    StringBuilder sb = new StringBuilder(
        "| meter | type | base unit | tags besides `heap` | description |\n|---|---|---|---|---|\n");
    Set<String> seen = new HashSet<>();
    meters.sort(Comparator.comparing((Meter m) -> m.getId().getName())
        .thenComparing(m -> m.getId().getTags().toString()));
    for (Meter m : meters) {
      Meter.Id id = m.getId();
      String tags = id.getTags().stream().filter(t -> !t.getKey().equals(SegfitMetrics.HEAP_TAG))
          .map(Tag::getKey).distinct().map(k -> "`" + k + "`: " + meters.stream()
              .filter(o -> o.getId().getName().equals(id.getName()))
              .map(o -> "`" + o.getId().getTag(k) + "`").collect(Collectors.joining(", ")))
          .collect(Collectors.joining("; "));
      if (!seen.add(id.getName())) continue; // one row per name, its tag values listed
      sb.append("| `").append(id.getName()).append("` | ")
          .append(id.getType() == Meter.Type.COUNTER ? "counter" : "gauge").append(" | ")
          .append(id.getBaseUnit() == null ? "" : id.getBaseUnit()).append(" | ")
          .append(tags).append(" | ").append(id.getDescription()).append(" |\n");
    }
    return sb.toString();
  }
}
