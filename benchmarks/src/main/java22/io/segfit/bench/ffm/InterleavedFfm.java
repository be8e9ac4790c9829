// SPDX-License-Identifier: Apache-2.0
/*
 * The FFM peers of JDK 22+ in io.segfit.bench.InterleavedLatency's loop: RoundTripBufferFfm's
 * own bodies (a critical malloc/free downcall pair, a confined arena per buffer), so that the
 * tails are judged against the same peers as the JMH latency run on this JDK.
 */
package io.segfit.bench.ffm;

import io.segfit.bench.InterleavedLatency;

public final class InterleavedFfm extends InterleavedLatency.More {
  private final RoundTripBufferFfm bodies = new RoundTripBufferFfm();

  public InterleavedFfm(int size) {
    bodies.size = size;
  }

  @Override
  protected String[] names() {
    return new String[] {"ffmCriticalMalloc", "ffmConfinedArena"};
  }

  @Override
  protected int roundTrip(int which) {
    return which == 0 ? bodies.ffmCriticalMalloc().capacity()
        : bodies.ffmConfinedArena().capacity();
  }
}
