// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import java.nio.ByteBuffer;

/** Entry point of the child JVMs that LoaderTest and DefaultHeapPropertiesTest start. */
public final class ChildMain {
  private ChildMain() {}

  public static void main(String[] args) {
    switch (args[0]) {
      case "probe":
        probe();
        break;
      case "default-heap":
        defaultHeap();
        break;
      case "leak":
        leak();
        break;
      case "race":
        race();
        break;
      default:
        throw new IllegalArgumentException(args[0]);
    }
  }

  private static void probe() {
    System.out.println("available=" + Segfit.isAvailable());
    Throwable cause = Segfit.unavailabilityCause();
    if (cause == null) {
      try (Heap heap = Heap.builder().build()) {
        ByteBuffer b = heap.allocate(64);
        b.putLong(0, 1);
        heap.free(b);
        heap.free(heap.allocate(2 << 20)); // a LargeAllocation event, when JFR is present
        heap.trim();                       // a Trim event
        heap.stats();
      }
      System.out.println("source=" + Segfit.nativeSource());
      System.out.println("version=" + Segfit.nativeVersion());
      System.out.println("commit=" + Segfit.nativeCommit());
      return;
    }
    System.out.println("cause=" + cause.getMessage());
    // every use fails the same way, with the original error as cause, without poisoning
    for (int i = 0; i < 2; i++) {
      try {
        Heap.builder().build();
        System.out.println("build=succeeded?!");
      } catch (UnsatisfiedLinkError e) {
        System.out.println("build" + i + "=" + e.getMessage());
        System.out.println("buildCause" + i + "=" + (e.getCause() == null ? null
            : e.getCause().getClass().getName()));
      }
    }
    try {
      Heap.defaultHeap();
    } catch (UnsatisfiedLinkError e) {
      System.out.println("default=" + e.getMessage());
    }
  }

  /** Allocates a 77-byte buffer and drops it without freeing it. */
  static void allocateAndDrop(Heap heap) {
    heap.allocate(77).put(0, (byte) 1);
  }

  private static void leak() {
    try (Heap heap = Heap.builder().name("leak-child").leakDetection(LeakDetection.PARANOID)
        .build()) {
      allocateAndDrop(heap);
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (heap.stats().leaksReported() == 0 && System.nanoTime() < deadline) {
        System.gc();
        try {
          Thread.sleep(50);
        } catch (InterruptedException e) {
          throw new AssertionError(e);
        }
      }
      System.out.println("reported=" + heap.stats().leaksReported());
    }
  }

  /** Many threads make the first use at once: the library loads once, every heap works. */
  private static void race() {
    int threads = 8;
    java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.atomic.AtomicInteger ok = new java.util.concurrent.atomic.AtomicInteger();
    java.util.List<Thread> all = new java.util.ArrayList<>();
    for (int t = 0; t < threads; t++) {
      Thread th = new Thread(() -> {
        try {
          go.await();
          Heap heap = (ok.get() & 1) == 0 ? Heap.defaultHeap() : Heap.builder().jmx(false).build();
          heap.free(heap.allocate(64));
          ok.incrementAndGet();
        } catch (Throwable e) {
          e.printStackTrace();
        }
      });
      all.add(th);
      th.start();
    }
    go.countDown();
    for (Thread th : all) {
      try {
        th.join();
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
    }
    System.out.println("ok=" + ok.get() + "/" + threads);
  }

  private static void defaultHeap() {
    Heap heap;
    try {
      heap = Heap.defaultHeap();
    } catch (IllegalArgumentException e) {
      System.out.println("invalid=" + e.getMessage());
      return;
    }
    System.out.println("name=" + heap.name());
    System.out.println("maxBytes=" + heap.stats().maxBytes());
    System.out.println("leakDetection=" + heap.leakDetection());
    System.out.println("mxbean=" + heap.mxbeanName());
    try {
      heap.allocateAddress(heap.stats().maxBytes() + 1);
      System.out.println("limit=not enforced");
    } catch (HeapOutOfMemoryError e) {
      System.out.println("limit=" + e.isLimitReached());
    }
  }
}
