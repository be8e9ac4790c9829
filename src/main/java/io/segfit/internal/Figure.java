// SPDX-License-Identifier: Apache-2.0
/*
 * What a figure of HeapStats is, for reporters that export every figure (io.segfit.micrometer):
 * each public long accessor of HeapStats carries one, so a figure added there is exported with
 * its kind and unit without a second list to keep in step (SegfitMetricsTest checks that none
 * lacks it). Names and units follow the dotted, unit-last convention of metrics libraries.
 */
package io.segfit.internal;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface Figure {
  /** Whether a figure only grows over a heap's life or describes the moment. */
  enum Kind { COUNTER, GAUGE }

  Kind kind();

  /** The dotted name after the reporter's prefix ({@code segfit.heap.}), e.g. {@code live}. */
  String name();

  /** The base unit ({@code bytes}, {@code blocks}...), empty for a plain count of events. */
  String unit() default "";

  /**
   * Tags, as key-value pairs, telling apart figures that share a name (the kinds of
   * reallocation).
   */
  String[] tags() default {};

  /** One line for the metric's description. */
  String description();
}
