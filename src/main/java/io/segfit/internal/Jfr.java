// SPDX-License-Identifier: Apache-2.0
/*
 * JDK Flight Recorder events of segfit, kept apart so that jdk.jfr stays optional: this class
 * only touches jfr.JfrEvents (which links against jdk.jfr) when the jdk.jfr module is present, and
 * every entry point is a cheap check when it is not, or when no recording enables the event.
 * Events: io.segfit.LargeAllocation, io.segfit.LimitHit, io.segfit.Trim, io.segfit.Leak, and
 * the periodic io.segfit.HeapStatistics (one per open heap, which carries the purge counters of
 * the core's background purging).
 */
package io.segfit.internal;

import io.segfit.internal.jfr.JfrEvents;
import java.util.Collections;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

public final class Jfr {
  private Jfr() {}

  /** Whether jdk.jfr is in the runtime; false in images built without it. */
  public static final boolean AVAILABLE = detect();

  /** Allocations of at least this many bytes emit io.segfit.LargeAllocation. */
  public static final long LARGE_ALLOCATION_THRESHOLD = largeThreshold();

  /** Open heaps by handle, for the periodic statistics event. */
  private static final Map<Long, Registered> HEAPS = new ConcurrentHashMap<>();

  /** A heap's name and its thread caches, whose counts the core's statistics lack (or null). */
  public static final class Registered {
    public final String name;
    public final SlabCache cache;

    Registered(String name, SlabCache cache) {
      this.name = name;
      this.cache = cache;
    }
  }

  private static boolean detect() {
    Module self = Jfr.class.getModule();
    ModuleLayer layer = self.getLayer() != null ? self.getLayer() : ModuleLayer.boot();
    return layer.findModule("jdk.jfr").isPresent()
        || ModuleLayer.boot().findModule("jdk.jfr").isPresent();
  }

  private static long largeThreshold() {
    try {
      return Option.JFR_LARGE_ALLOCATION.bytesValue();
    } catch (IllegalArgumentException e) {
      // An event threshold is no reason to make the allocator unusable: keep the default.
      return Option.parseBytes(Option.JFR_LARGE_ALLOCATION.defaultValue());
    }
  }

  /** The open heaps by handle, for io.segfit.HeapStatistics. */
  public static Map<Long, Registered> heaps() {
    return Collections.unmodifiableMap(HEAPS);
  }

  /** Registers an open heap for io.segfit.HeapStatistics. */
  public static void addHeap(long handle, String name, SlabCache cache) {
    if (!AVAILABLE) return;
    HEAPS.put(handle, new Registered(name, cache));
    JfrEvents.registerPeriodic();
  }

  public static void removeHeap(long handle) {
    if (AVAILABLE) HEAPS.remove(handle);
  }

  public static void largeAllocation(String heap, long address, long size, long alignment) {
    if (AVAILABLE) JfrEvents.largeAllocation(heap, address, size, alignment);
  }

  public static void limitHit(String heap, long requested, long limit, long live) {
    if (AVAILABLE) JfrEvents.limitHit(heap, requested, limit, live);
  }

  public static void leak(String heap, long address, long size, String stack) {
    if (AVAILABLE) JfrEvents.leak(heap, address, size, stack);
  }

  /** Runs a trim, emitting io.segfit.Trim around it: segfit_trim's result. */
  public static int trim(String heap, long handle) {
    return AVAILABLE ? JfrEvents.trim(heap, handle) : NativeHeap.trim(handle);
  }
}
