// SPDX-License-Identifier: Apache-2.0
package io.segfit.ffm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The record's protocol alone, without a heap in between, so that writers claim as fast as they
 * can: they race each other for slots and for making the next chunk, and race the close.
 */
class BlockRecordTest {
  @Test
  void aConfinedRecordDrainsWhatItWasGivenOnce() {
    for (int n : new int[] {0, 1, 2, 16, 17, 18, 48, 49, 50, 5000}) {
      BlockRecord record = new BlockRecord();
      for (long a = 1; a <= n; a++) record.add(a);
      assertEquals(n, record.size());
      Set<Long> drained = new HashSet<>();
      record.drain(record.size(), a -> {
        assertTrue(drained.add(a), "twice: " + a);
        return true;
      });
      assertEquals(n, drained.size());
      for (long a = 1; a <= n; a++) assertTrue(drained.contains(a));
    }
  }

  @Test
  void drainStopsWhenTheActionSaysSo() {
    BlockRecord record = new BlockRecord();
    for (long a = 1; a <= 100; a++) record.add(a);
    AtomicLong seen = new AtomicLong();
    record.drain(100, a -> seen.incrementAndGet() < 40);
    assertEquals(40, seen.get());
  }

  /** Claims a writer makes at most: keeps a round short when the close is slow to come. */
  private static final long PER_WRITER = 200_000;

  @Test
  void claimsRacingCloseAreEachDrainedOrRefusedExactlyOnce() throws Exception {
    int threads = 3;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      for (int round = 0; round < 40; round++) {
        BlockRecord record = new BlockRecord();
        AtomicLong claimed = new AtomicLong();
        CountDownLatch started = new CountDownLatch(threads);
        List<Future<long[]>> writers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
          long tag = (long) (t + 1) << 40; // addresses never 0, distinct per thread
          writers.add(pool.submit(() -> {
            started.countDown();
            for (long k = 1; k <= PER_WRITER; k++) {
              if (!record.claim(tag | k)) return new long[] {tag, k}; // k: refused
              claimed.incrementAndGet();
            }
            return new long[] {tag, PER_WRITER + 1}; // none refused: the close came later

          }));
        }
        started.await();
        long target = (round % 5) * 700L; // 0 to 2800: the close lands in different chunks
        while (claimed.get() < target) Thread.onSpinWait();
        long n = record.close();
        assertTrue(n >= target);
        assertFalse(record.claim(1), "closed");
        Set<Long> drained = new HashSet<>();
        record.drain(n, a -> {
          assertTrue(drained.add(a), "drained twice: " + a);
          return true;
        });
        assertEquals(n, drained.size(), "round " + round);
        long accepted = 0;
        for (Future<long[]> f : writers) {
          long tag = f.get()[0];
          long refused = f.get()[1];
          accepted += refused - 1;
          for (long k = 1; k < refused; k++) {
            assertTrue(drained.contains(tag | k), "round " + round + ": lost " + (tag | k));
          }
          assertFalse(drained.contains(tag | refused), "refused and drained");
        }
        assertEquals(n, accepted, "round " + round);
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
