// SPDX-License-Identifier: Apache-2.0
/**
 * segfit: an off-heap allocator with explicit free over a native slab allocator. Exports
 * {@code io.segfit}; the natives and their loader live in the unexported
 * {@code io.segfit.internal}. JDK Flight Recorder is optional at run time, and so are Netty and
 * Micrometer, which only {@code io.segfit.netty} and {@code io.segfit.micrometer} use. On JDK 22+
 * run with {@code --enable-native-access=io.segfit}.
 */
module io.segfit {
  // Not transitive: no type of segfit's API is a java.management one (a heap's MXBean name is
  // a String), so a user's module reads java.management only if it requires it itself.
  requires java.management;
  requires static jdk.jfr;
  // io.segfit.netty only: Netty is an optional dependency, needed by nothing else. Not
  // transitive, though that package's API is made of Netty types: "requires static transitive"
  // would make every module that requires io.segfit need Netty to compile. The same for
  // io.segfit.micrometer and Micrometer.
  requires static io.netty.buffer;
  requires static io.netty.common;
  requires static micrometer.core;

  exports io.segfit;
  exports io.segfit.micrometer;
  exports io.segfit.netty;
  // JFR instruments and instantiates the event classes: their package, and only it.
  exports io.segfit.internal.jfr to jdk.jfr;
}
