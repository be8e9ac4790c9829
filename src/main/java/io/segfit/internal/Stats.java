// SPDX-License-Identifier: Apache-2.0
/*
 * The figures of a heap's statistics and the layout of the long[] that holds a snapshot of them.
 *
 * The figures are read from segfit.h's SEGFIT_STATS and SEGFIT_CLASS_STATS lists through the JNI
 * glue, never retyped here, as Errors reads the error codes; the facade adds its own after them
 * (FACADE). A figure the facade computes with is looked up by its field name below: a name the
 * header lacks fails class initialization with a clear message. Layout, as jni.c writes it: the
 * SEGFIT_STATS values in list order, the number of size classes, then one record of the
 * SEGFIT_CLASS_STATS values per size class and one for the large blocks; the facade's figures
 * follow, at NATIVE_LENGTH and on.
 */
package io.segfit.internal;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

public final class Stats {
  private Stats() {}

  static {
    NativeLibrary.ensureLoaded(); // the lists come from the library: usable before any heap
  }

  private static final List<Figure> NATIVE = read(false);
  /** SEGFIT_CLASS_STATS: the figures of a size class's record, in record order. */
  public static final List<Figure> CLASS_FIGURES = read(true);

  /** Index of the number of size classes. */
  public static final int CLASS_COUNT = NATIVE.size();
  /** Index of the first size class's record. */
  public static final int HEADER = CLASS_COUNT + 1;
  /** Length of a size class's record. */
  public static final int CLASS_FIELDS = CLASS_FIGURES.size();
  /** Length of the part that NativeHeap.stats fills. */
  public static final int NATIVE_LENGTH = HEADER + (NativeHeap.maxClasses() + 1) * CLASS_FIELDS;

  /** The facade's own figures, counted in Java; the caller of stats() puts them in. */
  private static final List<Figure> FACADE = List.of(Figure.of("leaks_reported", "leaksReported",
      "leaks", "COUNTER", "", "leaks reported by the heap's leak detection", NATIVE_LENGTH));

  /** Every figure of a heap, the core's (SEGFIT_STATS) then the facade's. */
  public static final List<Figure> FIGURES = concat(NATIVE, FACADE);
  /** Length of a snapshot array. */
  public static final int LENGTH = NATIVE_LENGTH + FACADE.size();

  private static final Map<String, Figure> BY_FIELD = byField(FIGURES);
  private static final Map<String, Figure> CLASS_BY_FIELD = byField(CLASS_FIGURES);

  // --- the figures the facade computes with ---------------------------------------------------
  public static final int LIVE_BYTES = index("live_bytes");
  public static final int LIVE_BLOCKS = index("live_blocks");
  public static final int ALLOCS = index("allocs");
  public static final int FREES = index("frees");
  public static final int REALLOCS_IN_PLACE = index("reallocs_in_place");
  public static final int REALLOCS_MOVED = index("reallocs_moved");
  public static final int REMOTE_FREES = index("remote_frees");
  public static final int RESERVED_BYTES = index("reserved_bytes");
  public static final int COMMITTED_BYTES = index("committed_bytes");
  public static final int PURGES = index("purges");
  public static final int PURGED_BYTES = index("purged_bytes");
  public static final int LIMIT_HITS = index("limit_hits");
  public static final int LIMIT_RECLAIMS = index("limit_reclaims");
  public static final int LIMIT_RECLAIMED_BYTES = index("limit_reclaimed_bytes");
  public static final int MAX_BYTES = index("max_bytes");
  public static final int LEAKS_REPORTED = index("leaks_reported");

  public static final int CLASS_BLOCK_SIZE = classIndex("block_size");
  public static final int CLASS_LIVE_BLOCKS = classIndex("live_blocks");
  public static final int CLASS_LIVE_BYTES = classIndex("live_bytes");
  public static final int CLASS_ALLOCS = classIndex("allocs");
  public static final int CLASS_FREES = classIndex("frees");

  private static List<Figure> read(boolean perClass) {
    int count = NativeHeap.statCount(perClass);
    List<Figure> out = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      String[] c = new String[NativeHeap.STAT_COLUMNS];
      for (int k = 0; k < c.length; k++) c[k] = NativeHeap.statColumn(perClass, i, k);
      out.add(Figure.of(c[NativeHeap.STAT_FIELD], c[NativeHeap.STAT_ACCESSOR],
          c[NativeHeap.STAT_METRIC], c[NativeHeap.STAT_KIND], c[NativeHeap.STAT_UNIT],
          c[NativeHeap.STAT_DESCRIPTION], i));
    }
    return Collections.unmodifiableList(out);
  }

  private static List<Figure> concat(List<Figure> a, List<Figure> b) {
    List<Figure> out = new ArrayList<>(a);
    out.addAll(b);
    return Collections.unmodifiableList(out);
  }

  private static Map<String, Figure> byField(List<Figure> figures) {
    Map<String, Figure> out = new HashMap<>();
    for (Figure f : figures) {
      if (out.put(f.field(), f) != null) {
        throw new IllegalStateException("segfit: two figures are named " + f.field());
      }
    }
    return out;
  }

  private static Figure find(Map<String, Figure> figures, String field, String list) {
    Figure f = figures.get(field);
    if (f == null) {
      throw new IllegalStateException(list + " has no figure " + field + " (it has "
          + figures.keySet() + "): the Java facade and the native library do not match");
    }
    return f;
  }

  /** Index in a snapshot array of the heap figure named field (see SEGFIT_STATS). */
  public static int index(String field) {
    return find(BY_FIELD, field, "SEGFIT_STATS").index();
  }

  /** Index in a size class's record of the figure named field (see SEGFIT_CLASS_STATS). */
  public static int classIndex(String field) {
    return find(CLASS_BY_FIELD, field, "SEGFIT_CLASS_STATS").index();
  }

  /** Index in a snapshot array of the record of size class cls (count: the large blocks). */
  public static int record(int cls) {
    return HEADER + cls * CLASS_FIELDS;
  }

  /** An array for a snapshot, to pass to NativeHeap.stats. */
  public static long[] array() {
    return new long[LENGTH];
  }
}
