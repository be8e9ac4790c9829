// SPDX-License-Identifier: Apache-2.0
/*
 * One JMH state per allocator, so a fork initialises only the allocator its benchmark uses (each
 * benchmark method runs in its own fork). Every peer gets the configuration its users would pick
 * for speed: Netty pooled with thread caches for all threads, Netty adaptive with thread-local
 * magazines, LWJGL's MemoryUtil on the system (libc) allocator, jemalloc and rpmalloc through their
 * LWJGL bindings (which wrap with memByteBuffer). Allocators shared by threads (segfit's default
 * heap, Netty) are Scope.Benchmark; rpmalloc needs every thread initialised, so it is Scope.Thread
 * (JMH runs a thread-scoped @Setup on the benchmark thread itself).
 */
package io.segfit.bench;

import io.netty.buffer.AdaptiveByteBufAllocator;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import io.segfit.Heap;
import io.segfit.netty.SegfitByteBufAllocator;
import org.lwjgl.system.Configuration;
import org.lwjgl.system.MemoryUtil;
import org.lwjgl.system.rpmalloc.RPmalloc;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

public final class Peers {
  private Peers() {}

  /** segfit's default heap, as a user gets it without configuration. */
  @State(Scope.Benchmark)
  public static class Segfit {
    public Heap heap;

    @Setup(Level.Trial)
    public void setup() {
      heap = Heap.defaultHeap();
    }
  }

  /** segfit's Netty allocator (io.segfit.netty) over the default heap, leak detection disabled. */
  @State(Scope.Benchmark)
  public static class SegfitNetty {
    public ByteBufAllocator alloc;

    @Setup(Level.Trial)
    public void setup() {
      ResourceLeakDetector.setLevel(leakLevel());
      alloc = new SegfitByteBufAllocator(Heap.defaultHeap());
    }

    ResourceLeakDetector.Level leakLevel() {
      return ResourceLeakDetector.Level.DISABLED;
    }
  }

  /** segfit's Netty allocator with Netty's default leak detection (SIMPLE, 1 in 128). */
  @State(Scope.Benchmark)
  public static class SegfitNettyLeakDefault extends SegfitNetty {
    @Override
    ResourceLeakDetector.Level leakLevel() {
      return ResourceLeakDetector.getLevel();
    }
  }

  /** Netty's PooledByteBufAllocator, leak detection disabled. */
  @State(Scope.Benchmark)
  public static class NettyPooled {
    public ByteBufAllocator alloc;

    @Setup(Level.Trial)
    public void setup() {
      ResourceLeakDetector.setLevel(leakLevel());
      alloc = new PooledByteBufAllocator(true,
          PooledByteBufAllocator.defaultNumHeapArena(),
          PooledByteBufAllocator.defaultNumDirectArena(),
          PooledByteBufAllocator.defaultPageSize(),
          PooledByteBufAllocator.defaultMaxOrder(),
          PooledByteBufAllocator.defaultSmallCacheSize(),
          PooledByteBufAllocator.defaultNormalCacheSize(),
          true);
    }

    ResourceLeakDetector.Level leakLevel() {
      return ResourceLeakDetector.Level.DISABLED;
    }
  }

  /** Netty pooled with Netty's default leak detection (SIMPLE, sampling 1 in 128). */
  @State(Scope.Benchmark)
  public static class NettyPooledLeakDefault extends NettyPooled {
    @Override
    ResourceLeakDetector.Level leakLevel() {
      return ResourceLeakDetector.getLevel();
    }
  }

  /** Netty's AdaptiveByteBufAllocator (the 4.2 default), leak detection disabled. */
  @State(Scope.Benchmark)
  public static class NettyAdaptive {
    public ByteBufAllocator alloc;

    @Setup(Level.Trial)
    public void setup() {
      ResourceLeakDetector.setLevel(leakLevel());
      alloc = new AdaptiveByteBufAllocator(true, true);
    }

    ResourceLeakDetector.Level leakLevel() {
      return ResourceLeakDetector.Level.DISABLED;
    }
  }

  /** Netty adaptive with Netty's default leak detection. */
  @State(Scope.Benchmark)
  public static class NettyAdaptiveLeakDefault extends NettyAdaptive {
    @Override
    ResourceLeakDetector.Level leakLevel() {
      return ResourceLeakDetector.getLevel();
    }
  }

  /**
   * LWJGL's MemoryUtil on the system allocator (libc malloc). With lwjgl-jemalloc on the class
   * path LWJGL 3.3.6 would pick jemalloc, so the choice is made explicit before MemoryUtil loads.
   * jemalloc (je_malloc) is called directly and needs nothing else.
   */
  @State(Scope.Benchmark)
  public static class Lwjgl {
    static {
      Configuration.MEMORY_ALLOCATOR.set("system");
    }

    @Setup(Level.Trial)
    public void setup() {
      String allocator = MemoryUtil.getAllocator().getClass().getName();
      if (!allocator.endsWith("StdlibAllocator")) {
        throw new IllegalStateException("LWJGL picked " + allocator + ", not the system allocator");
      }
    }
  }

  /** rpmalloc through LWJGL: initialised once per JVM and once per benchmark thread. */
  @State(Scope.Thread)
  public static class Rpmalloc {
    private static boolean initialised;

    @Setup(Level.Trial)
    public void setup() {
      synchronized (Rpmalloc.class) {
        if (!initialised) {
          check(RPmalloc.nrpmalloc_initialize(), "rpmalloc_initialize");
          initialised = true;
        }
      }
      RPmalloc.rpmalloc_thread_initialize();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      RPmalloc.rpmalloc_thread_finalize(true);
    }

    private static void check(int rc, String what) {
      if (rc != 0) {
        throw new IllegalStateException(what + " failed: " + rc);
      }
    }
  }
}
