// SPDX-License-Identifier: Apache-2.0
package io.segfit.netty;

import io.netty.util.ResourceLeakDetector;
import io.segfit.Heap;
import io.segfit.LeakDetection;

/** Helpers of the Netty tests: a private heap per test class, and leak levels restored. */
final class NettyTestSupport {
  private NettyTestSupport() {}

  /** A heap of its own (no JMX, no segfit leak tracking: Netty's detector is under test). */
  static Heap heap(String name, long maxBytes) {
    return Heap.builder().name(name).maxBytes(maxBytes).jmx(false)
        .leakDetection(LeakDetection.DISABLED).build();
  }

  /** Runs body at a ResourceLeakDetector level, then restores the previous one. */
  static void atLeakLevel(ResourceLeakDetector.Level level, Runnable body) {
    ResourceLeakDetector.Level before = ResourceLeakDetector.getLevel();
    ResourceLeakDetector.setLevel(level);
    try {
      body.run();
    } finally {
      ResourceLeakDetector.setLevel(before);
    }
  }
}
