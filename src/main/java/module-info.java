// SPDX-License-Identifier: Apache-2.0
/**
 * segfit: an off-heap allocator with explicit free over a native slab allocator. Exports
 * {@code io.segfit}; the natives and their loader live in the unexported
 * {@code io.segfit.internal}. JDK Flight Recorder is optional at run time, and so is Micrometer
 * (for {@code io.segfit.micrometer} only). On JDK 22+ run with
 * {@code --enable-native-access=io.segfit}.
 */
module io.segfit {
  requires transitive java.management;
  requires static jdk.jfr;
  requires static micrometer.core;

  exports io.segfit;
  exports io.segfit.micrometer;
  // JFR instruments and instantiates the event classes, which live in the internal package.
  exports io.segfit.internal to jdk.jfr;
}
