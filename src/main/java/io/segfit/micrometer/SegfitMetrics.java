// SPDX-License-Identifier: Apache-2.0
package io.segfit.micrometer;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.binder.MeterBinder;
import io.segfit.Heap;
import io.segfit.HeapStats;
import io.segfit.internal.Figure;
import io.segfit.internal.OpenHeaps;
import io.segfit.internal.Stats;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.stream.Collectors;

/**
 * Micrometer meters for every open segfit {@link Heap}: the heaps open when it is bound, and
 * each heap opened later until {@link #close()}; a heap's meters are removed from the registry
 * when the heap closes.
 *
 * <p>Every figure of {@link HeapStats} is a meter named {@code segfit.heap.<figure>}, tagged
 * {@code heap=<heap name>} (a second open heap of the same name gets {@code <name>#2}, as its
 * MXBean does) plus the tags given to the constructor: a {@link FunctionCounter} for a figure
 * that only grows, a {@link Gauge} for the others, with the figure's base unit. For example
 * {@code segfit.heap.live} (gauge, bytes), {@code segfit.heap.live.blocks} (gauge, blocks),
 * {@code segfit.heap.allocations} (counter), {@code segfit.heap.reallocations} (counter, tag
 * {@code kind}: {@code in_place}, {@code moved} or {@code remapped}). The README lists them all.
 * Each reading takes a fresh {@link Heap#stats()} snapshot (a native call that copies the heap's
 * counters, no lock on the allocation path); a meter read in the instant its heap closes reports
 * the last snapshot it took.
 *
 * <p>Micrometer is an optional dependency of segfit: add {@code io.micrometer:micrometer-core}
 * to use this package. Example: {@code new SegfitMetrics().bindTo(registry)}, or declare it as a
 * bean where a framework binds every {@code MeterBinder}. Bind one {@code SegfitMetrics} per
 * registry (a second one would share the first one's meters). Thread-safe.
 */
public final class SegfitMetrics implements MeterBinder, AutoCloseable {
  /** The prefix of every meter's name. */
  public static final String PREFIX = "segfit.heap.";
  /** The tag that names the heap. */
  public static final String HEAP_TAG = "heap";

  private final Tags tags;
  private final List<Binding> bindings = new ArrayList<>();
  private boolean closed;

  /** Meters tagged with the heap's name only. */
  public SegfitMetrics() {
    this(Tags.empty());
  }

  /**
   * Meters tagged with the heap's name and {@code tags}.
   *
   * @param tags tags added to every meter
   * @throws NullPointerException if tags is null
   */
  public SegfitMetrics(Iterable<Tag> tags) {
    this.tags = Tags.of(Objects.requireNonNull(tags, "tags"));
  }

  /**
   * Registers the meters of every open heap in {@code registry}, and of each heap opened later
   * until {@link #close()}.
   *
   * @param registry the registry
   * @throws NullPointerException if registry is null
   * @throws IllegalStateException if this binder is closed
   */
  @Override
  public synchronized void bindTo(MeterRegistry registry) {
    Objects.requireNonNull(registry, "registry");
    if (closed) throw new IllegalStateException("SegfitMetrics is closed");
    Binding binding = new Binding(registry);
    binding.unsubscribe = OpenHeaps.subscribe(binding);
    bindings.add(binding);
  }

  /**
   * Stops following heaps and removes every meter this binder registered. Closing again does
   * nothing.
   */
  @Override
  public synchronized void close() {
    if (closed) return;
    closed = true;
    for (Binding b : bindings) b.close();
    bindings.clear();
  }

  /**
   * Every figure of a heap (segfit.h's SEGFIT_STATS list, then the facade's) with its accessor,
   * in a stable order. Figures that share a metric name share their meters' description.
   */
  private static List<Exported> figures() {
    Map<String, List<Figure>> byMetric = new LinkedHashMap<>();
    for (Figure f : Stats.FIGURES) {
      byMetric.computeIfAbsent(f.metric(), k -> new ArrayList<>()).add(f);
    }
    List<Exported> out = new ArrayList<>();
    MethodHandles.Lookup lookup = MethodHandles.publicLookup();
    for (List<Figure> group : byMetric.values()) {
      String description = group.size() == 1 ? group.get(0).description()
          : group.stream().map(f -> tagValues(f) + ": " + f.description())
              .collect(Collectors.joining("; "));
      for (Figure f : group) {
        try {
          out.add(new Exported(f, description, lookup.findVirtual(HeapStats.class, f.accessor(),
              MethodType.methodType(long.class))));
        } catch (NoSuchMethodException | IllegalAccessException e) {
          throw new IllegalStateException("segfit: figure " + f.field() + " has no accessor "
              + "HeapStats." + f.accessor() + "()", e);
        }
      }
    }
    out.sort(Comparator.comparing((Exported e) -> e.figure.metric())
        .thenComparing(e -> String.join(",", e.figure.tags())));
    return List.copyOf(out);
  }

  /** The values of the figure's tags, e.g. "in_place" for kind=in_place. */
  private static String tagValues(Figure f) {
    List<String> values = new ArrayList<>();
    for (int i = 1; i < f.tags().size(); i += 2) values.add(f.tags().get(i));
    return String.join(",", values);
  }

  /**
   * The exported figures, made when the first heap is followed: a binder made where the native
   * library cannot load (no heap will open) does not need them.
   */
  private static final class Figures {
    static final List<Exported> ALL = figures();
  }

  /** One figure: its description, its meters' and its accessor, of type (HeapStats)long. */
  private static final class Exported {
    final Figure figure;
    final String description;
    final MethodHandle accessor;

    Exported(Figure figure, String description, MethodHandle accessor) {
      this.figure = figure;
      this.description = description;
      this.accessor = accessor;
    }

    double valueIn(HeapStats stats) {
      try {
        return (long) accessor.invokeExact(stats);
      } catch (RuntimeException | Error e) {
        throw e;
      } catch (Throwable t) {
        throw new IllegalStateException(t); // an accessor declares no checked exception
      }
    }
  }

  /** The snapshots behind one heap's meters. */
  private static final class Reader {
    final Heap heap;
    private volatile HeapStats last;

    Reader(Heap heap) {
      this.heap = heap;
    }

    double read(Exported figure) {
      HeapStats stats = last;
      if (!heap.isClosed()) {
        try {
          stats = heap.stats();
          last = stats;
        } catch (IllegalStateException closedMeanwhile) {
          stats = last;
        }
      }
      return stats == null ? Double.NaN : figure.valueIn(stats);
    }
  }

  /**
   * The meters of one registry. Events come under OpenHeaps' lock, one at a time; close() runs
   * after unsubscribing, when no event can come any more.
   */
  private final class Binding implements OpenHeaps.Listener {
    final MeterRegistry registry;
    Runnable unsubscribe;
    /** Each heap's meters and reader: FunctionCounter keeps only a weak reference to it. */
    final Map<Heap, List<Meter>> meters = new HashMap<>();
    final Map<Heap, Reader> readers = new HashMap<>();
    final Map<Heap, String> heapTags = new HashMap<>();

    Binding(MeterRegistry registry) {
      this.registry = registry;
    }

    @Override
    public void opened(Heap heap) {
      String tag = heap.name();
      for (int n = 2; heapTags.containsValue(tag); n++) tag = heap.name() + "#" + n;
      Reader reader = new Reader(heap);
      List<Meter> list = new ArrayList<>(Figures.ALL.size());
      try {
        for (Exported f : Figures.ALL) list.add(register(f, reader, tag));
      } catch (RuntimeException e) {
        list.forEach(registry::remove);
        throw e;
      }
      meters.put(heap, list);
      readers.put(heap, reader);
      heapTags.put(heap, tag);
    }

    @Override
    public void closed(Heap heap) {
      List<Meter> list = meters.remove(heap);
      readers.remove(heap);
      heapTags.remove(heap);
      if (list != null) list.forEach(registry::remove);
    }

    void close() {
      unsubscribe.run();
      meters.values().forEach(list -> list.forEach(registry::remove));
      meters.clear();
      readers.clear();
      heapTags.clear();
    }

    private Meter register(Exported f, Reader reader, String heapTag) {
      Figure figure = f.figure;
      String name = PREFIX + figure.metric();
      Tags all = tags.and(HEAP_TAG, heapTag).and(figure.tags().toArray(new String[0]));
      String unit = figure.unit().isEmpty() ? null : figure.unit();
      if (figure.kind() == Figure.Kind.COUNTER) {
        return FunctionCounter.builder(name, reader, r -> r.read(f)).tags(all).baseUnit(unit)
            .description(f.description).register(registry);
      }
      return Gauge.builder(name, reader, r -> r.read(f)).tags(all).baseUnit(unit)
          .description(f.description).strongReference(true).register(registry);
    }
  }
}
