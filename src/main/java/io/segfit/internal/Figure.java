// SPDX-License-Identifier: Apache-2.0
/*
 * One figure of a heap's statistics, as an entry of segfit.h's SEGFIT_STATS or
 * SEGFIT_CLASS_STATS list describes it (see Stats, which reads the lists), or one the facade
 * adds. Reporters that export every figure (io.segfit.micrometer) go over these, so a figure
 * added to a list is exported with its kind and unit without a second list to keep in step.
 * Names and units follow the dotted, unit-last convention of metrics libraries.
 */
package io.segfit.internal;

import java.util.ArrayList;
import java.util.List;

public final class Figure {
  /** Whether a figure only grows over a heap's life or describes the moment. */
  public enum Kind { COUNTER, GAUGE }

  private final String field;
  private final String accessor;
  private final String metric;
  private final List<String> tags;
  private final Kind kind;
  private final String unit;
  private final String description;
  private final int index;

  /**
   * metric: the dotted name, then optionally "{key=value,...}"; index: in the statistics array
   * (see Stats), or in a record of a size class.
   */
  Figure(String field, String accessor, String metric, String kind, String unit,
      String description, int index) {
    this.field = field;
    this.accessor = accessor;
    int brace = metric.indexOf('{');
    this.metric = brace < 0 ? metric : metric.substring(0, brace);
    this.tags = brace < 0 ? List.of() : tags(field, metric.substring(brace));
    this.kind = Kind.valueOf(kind);
    this.unit = unit;
    this.description = description;
    this.index = index;
  }

  private static List<String> tags(String field, String braced) {
    List<String> out = new ArrayList<>();
    boolean ok = braced.length() > 2 && braced.endsWith("}");
    for (String pair : ok ? braced.substring(1, braced.length() - 1).split(",", -1)
        : new String[0]) {
      int eq = pair.indexOf('=');
      ok &= eq > 0 && eq < pair.length() - 1;
      if (!ok) break;
      out.add(pair.substring(0, eq));
      out.add(pair.substring(eq + 1));
    }
    if (!ok) {
      throw new IllegalStateException("segfit.h: the metric of figure " + field + " ends in '"
          + braced + "', not in {key=value,...}");
    }
    return List.copyOf(out);
  }

  /** The member of segfit_stats_t (segfit_class_stats_t), e.g. {@code live_bytes}. */
  public String field() {
    return field;
  }

  /**
   * The no-argument method of io.segfit.HeapStats (SizeClassStats) that returns the figure;
   * capitalised after "get", the attribute of io.segfit.HeapMXBean.
   */
  public String accessor() {
    return accessor;
  }

  /** The dotted name after a reporter's prefix, e.g. {@code live}. */
  public String metric() {
    return metric;
  }

  /** Tags as key-value pairs, telling apart figures that share a metric name. */
  public List<String> tags() {
    return tags;
  }

  public Kind kind() {
    return kind;
  }

  /** The base unit ({@code bytes}, {@code blocks}...), empty for a plain count of events. */
  public String unit() {
    return unit;
  }

  /** One line that says what the figure counts. */
  public String description() {
    return description;
  }

  /** The figure's place in the statistics array, or in a size class's record of it. */
  public int index() {
    return index;
  }

  @Override
  public String toString() {
    return field;
  }
}
