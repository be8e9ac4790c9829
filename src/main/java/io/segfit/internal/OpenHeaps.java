// SPDX-License-Identifier: Apache-2.0
/*
 * The open heaps of this copy of segfit, for reporters that follow every heap
 * (io.segfit.micrometer): Heap adds itself once built and removes itself as it closes.
 *
 * Invariants: a subscriber gets every heap open when it subscribes, then each heap opened or
 * closed later, in order: never a heap twice, never a close before its open. One lock orders
 * subscriptions and events; heaps open and close rarely, and listeners run under the lock, so
 * they must be quick and must not open or close heaps. A listener that throws on an event is
 * logged and skipped: a metrics backend's failure must not make building or closing a heap fail.
 */
package io.segfit.internal;

import io.segfit.Heap;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.BiConsumer;

public final class OpenHeaps {
  private OpenHeaps() {}

  /** Told of heaps as they open and close. */
  public interface Listener {
    void opened(Heap heap);

    void closed(Heap heap);
  }

  private static final Object LOCK = new Object();
  private static final Set<Heap> OPEN = new LinkedHashSet<>();
  private static final List<Listener> LISTENERS = new ArrayList<>();

  /** Called by Heap once built. */
  public static void opened(Heap heap) {
    synchronized (LOCK) {
      OPEN.add(heap);
      tell(heap, "opened", Listener::opened);
    }
  }

  /** Called by Heap as it closes. */
  public static void closed(Heap heap) {
    synchronized (LOCK) {
      if (OPEN.remove(heap)) tell(heap, "closed", Listener::closed);
    }
  }

  private static void tell(Heap heap, String event, BiConsumer<Listener, Heap> call) {
    for (Listener l : LISTENERS) {
      try {
        call.accept(l, heap);
      } catch (RuntimeException e) {
        System.getLogger("io.segfit").log(System.Logger.Level.WARNING,
            "heap '" + heap.name() + "' " + event + ": a listener failed", e);
      }
    }
  }

  /**
   * Tells listener of every open heap now, then of each open and close until the returned
   * action runs. If the listener throws on an open heap now, it is not subscribed and the
   * exception propagates.
   */
  public static Runnable subscribe(Listener listener) {
    synchronized (LOCK) {
      List<Heap> told = new ArrayList<>();
      try {
        for (Heap heap : OPEN) {
          listener.opened(heap);
          told.add(heap);
        }
      } catch (RuntimeException e) {
        for (Heap heap : told) {
          try {
            listener.closed(heap);
          } catch (RuntimeException again) {
            e.addSuppressed(again);
          }
        }
        throw e;
      }
      LISTENERS.add(listener);
    }
    return () -> {
      synchronized (LOCK) {
        LISTENERS.remove(listener);
      }
    };
  }
}
