// SPDX-License-Identifier: Apache-2.0
/*
 * The batch workload: 10,000 sizes drawn with a fixed seed (70% 16-256 B, 25% 257 B-8 KiB,
 * 5% 8 KiB-256 KiB) and a free order that is a fixed-seed shuffle of the allocation order.
 * Every peer sees exactly the same sequence, in every fork and on every JDK.
 */
package io.segfit.bench;

import java.util.SplittableRandom;

public final class SizeMix {
  public static final int COUNT = 10_000;
  private static final long SEED = 0x5e6f17L;

  /** Size of the i-th allocation. */
  public final int[] sizes = new int[COUNT];
  /** Index of the buffer freed at step i: a permutation of 0..COUNT-1. */
  public final int[] freeOrder = new int[COUNT];

  public SizeMix() {
    SplittableRandom r = new SplittableRandom(SEED);
    for (int i = 0; i < COUNT; i++) {
      int p = r.nextInt(100);
      if (p < 70) {
        sizes[i] = r.nextInt(16, 257);
      } else if (p < 95) {
        sizes[i] = r.nextInt(257, 8 * 1024 + 1);
      } else {
        sizes[i] = r.nextInt(8 * 1024 + 1, 256 * 1024 + 1);
      }
      freeOrder[i] = i;
    }
    for (int i = COUNT - 1; i > 0; i--) {
      int j = r.nextInt(i + 1);
      int t = freeOrder[i];
      freeOrder[i] = freeOrder[j];
      freeOrder[j] = t;
    }
  }
}
