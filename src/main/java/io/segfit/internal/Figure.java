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

/**
 * @param field the member of segfit_stats_t (segfit_class_stats_t), e.g. {@code live_bytes}
 * @param accessor the no-argument method of io.segfit.HeapStats (SizeClassStats) that returns
 *     the figure; capitalised after "get", the attribute of io.segfit.HeapMXBean
 * @param metric the dotted name after a reporter's prefix, e.g. {@code live}
 * @param tags key-value pairs telling apart figures that share a metric name
 * @param kind whether the figure only grows over a heap's life or describes the moment
 * @param unit the base unit ({@code bytes}, {@code blocks}...), empty for a count of events
 * @param description one line that says what the figure counts
 * @param index the figure's place in the statistics array (see Stats), or in a size class's
 *     record of it
 */
public record Figure(String field, String accessor, String metric, List<String> tags, Kind kind,
    String unit, String description, int index) {
  public enum Kind { COUNTER, GAUGE }

  /** A figure from a list entry, whose metric is the dotted name then optionally "{k=v,...}". */
  static Figure of(String field, String accessor, String metric, String kind, String unit,
      String description, int index) {
    int brace = metric.indexOf('{');
    return new Figure(field, accessor, brace < 0 ? metric : metric.substring(0, brace),
        brace < 0 ? List.of() : tags(field, metric.substring(brace)), Kind.valueOf(kind), unit,
        description, index);
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

  @Override
  public String toString() {
    return field;
  }
}
