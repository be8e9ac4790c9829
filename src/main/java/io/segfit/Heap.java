// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import io.segfit.internal.AllocationSites;
import io.segfit.internal.Blocks;
import io.segfit.internal.BufferMemo;
import io.segfit.internal.CorruptionReport;
import io.segfit.internal.Errors;
import io.segfit.internal.Jfr;
import io.segfit.internal.LeakDetector;
import io.segfit.internal.MXBeans;
import io.segfit.internal.NativeHeap;
import io.segfit.internal.NativeLibrary;
import io.segfit.internal.OpenHeaps;
import io.segfit.internal.Option;
import io.segfit.internal.Regions;
import io.segfit.internal.SlabCache;
import io.segfit.internal.Stats;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * An off-heap memory allocator: allocates, reallocates and frees blocks of native memory,
 * handed out as direct {@link ByteBuffer}s or as raw {@code long} addresses.
 *
 * <p>Memory comes from segfit's native segregated-fit slab allocator, which maps it from the
 * operating system with {@code mmap} and gives it back (after a configurable delay, or at once
 * with {@link #trim()}) when slabs become empty. Nothing is freed by the garbage collector: each
 * block lives until it is freed explicitly or the heap is closed.
 *
 * <h2>Kinds of heaps</h2>
 * <table class="striped">
 * <caption>Heaps</caption>
 * <thead><tr><th>Heap</th><th>Made by</th><th>Closeable</th><th>Configured by</th></tr></thead>
 * <tbody>
 * <tr><td>default</td><td>{@link #defaultHeap()}</td><td>no: lives as long as the JVM</td>
 * <td>{@code segfit.*} system properties</td></tr>
 * <tr><td>own</td><td>{@link #builder()}</td><td>yes: {@link #close()} frees all its memory at
 * once</td><td>{@link Builder}</td></tr>
 * </tbody>
 * </table>
 * Each heap has its own limit, statistics, MXBean and leak detection.
 *
 * <h2>Ownership</h2>
 * A block belongs to the heap that allocated it until it is freed, through the same heap, by
 * {@link #free(ByteBuffer)}, {@link #freeAddress(long)}, a reallocation, or {@link #close()}.
 * Buffers are views: position 0, limit and capacity equal to the requested size, byte order
 * {@link ByteOrder#nativeOrder()} (little-endian on both supported platforms). A buffer handed to
 * {@code free} or {@code reallocate} is identified by its address and capacity, so a
 * {@code duplicate()} or read-only view of it designates the same block, while a slice at an
 * interior offset, a buffer of another heap, {@link ByteBuffer#allocateDirect} memory or a heap
 * buffer is rejected with {@link IllegalArgumentException}. The position and limit of the buffer
 * do not matter. A buffer object belongs to its block: when the block is allocated again with
 * the same size, the same object may come back (reset to position 0 and native order), as Netty
 * recycles its buffer objects; without leak detection, which follows each object.
 *
 * <h2>Safety and thread-safety</h2>
 * A heap is thread-safe: any thread may allocate, and any thread may free or reallocate any
 * block, including blocks allocated by other threads and threads that have exited. The allocator
 * checks every block handed back: a pointer that is not the start of a live block of this heap,
 * or a block already freed, is rejected with an exception and the heap stays usable; misuse
 * through these methods cannot crash the JVM. What no allocator can check is the use of memory
 * after it is freed: reading or writing a buffer (or address) after its block was freed, its heap
 * closed, or beyond its capacity through an address, is undefined behaviour and may crash the
 * JVM when the memory has been returned to the operating system. A freed block is detected as
 * such ({@link IllegalStateException}) only until the allocator reuses it: a later free of the
 * same address may then free the new block.
 *
 * <h2>Exceptions</h2>
 * Methods check, in this order: {@code null} arguments ({@link NullPointerException}); the heap
 * being open ({@link IllegalStateException}); the arguments: negative or too large sizes, bad
 * alignments, buffers or addresses that are not live blocks of this heap
 * ({@link IllegalArgumentException}); the block being live ({@link IllegalStateException} for a
 * block already freed); memory being available ({@link HeapOutOfMemoryError}, naming the heap's
 * limit or the operating system's refusal). A method that throws leaves the heap and the blocks
 * passed to it as they were.
 *
 * <p>Example:
 * <pre>{@code
 * try (Heap heap = Heap.builder().name("cache").maxBytes(1L << 30).build()) {
 *   ByteBuffer b = heap.allocate(1024);
 *   b.putLong(0, 42);
 *   b = heap.reallocate(b, 4096);   // keeps the first 1024 bytes
 *   heap.free(b);
 * }                                 // close() frees whatever is left
 * }</pre>
 */
public final class Heap implements AutoCloseable {
  private static final Object DEFAULT_LOCK = new Object();
  private static volatile Heap defaultHeap;
  private static final long LARGE = Jfr.LARGE_ALLOCATION_THRESHOLD;
  /** Debug heaps: freed blocks whose allocation site is kept, a few times the core's quarantine
      (SEGFIT_QUARANTINE_BLOCKS), so a block damaged after its free is still reported with it. */
  private static final int FREED_SITES = 4096;

  private final long handle;
  private final String name;
  private final boolean isDefault;
  /** Null when leak detection is disabled. */
  private final LeakDetector leaks;
  /** Debug heaps only, else null. */
  private final AllocationSites sites;
  private final LeakDetection level;
  /** Buffers handed out lately, reused for their blocks; null with leak detection, which
      follows each buffer object. */
  private final BufferMemo memo;
  /** Small blocks served in Java from slabs lent to each thread; null where it does not apply
      (see SlabCache). Every block operation asks it first. */
  private final SlabCache cache;
  private final AtomicBoolean closing = new AtomicBoolean();
  private volatile boolean closed;
  private volatile String mxbeanName;

  private Heap(long handle, String name, boolean isDefault, LeakDetection level, int interval,
      boolean debug, boolean cached, long purgeDelayMs) {
    this.handle = handle;
    this.name = name;
    this.isDefault = isDefault;
    this.level = level;
    this.leaks = level == LeakDetection.DISABLED ? null : new LeakDetector(name, interval);
    this.sites = debug ? new AllocationSites(name, FREED_SITES) : null;
    this.memo = leaks == null ? new BufferMemo() : null;
    this.cache = cached && leaks == null && !debug ? new SlabCache(handle, purgeDelayMs) : null;
  }

  /**
   * The process-wide default heap, created on first use and configured by the {@code segfit.*}
   * system properties read at that moment ({@code segfit.maxBytes}, {@code segfit.reserveBytes},
   * {@code segfit.preTouch}, {@code segfit.hugePages}, {@code segfit.purgeDelayMs},
   * {@code segfit.debug}, {@code segfit.leakDetection}...). It is named {@code "default"} and is
   * never closed: {@link #close()} throws {@link UnsupportedOperationException}.
   *
   * @return the default heap
   * @throws UnsatisfiedLinkError if the native library cannot be loaded on this platform
   *     ({@link Segfit#unavailabilityCause()} says why)
   * @throws IllegalArgumentException if a {@code segfit.*} property has an invalid value
   */
  public static Heap defaultHeap() {
    Heap heap = defaultHeap;
    if (heap != null) return heap;
    synchronized (DEFAULT_LOCK) {
      if (defaultHeap == null) {
        NativeLibrary.ensureLoaded();
        Builder b = builder().name("default")
            .maxBytes(Option.MAX_BYTES.bytesValue())
            .reserveBytes(Option.RESERVE_BYTES.bytesValue())
            .preTouch(Option.PRE_TOUCH.booleanValue())
            .hugePages(Option.HUGE_PAGES.booleanValue())
            .debug(Option.DEBUG.booleanValue());
        Duration purge = Option.PURGE_DELAY_MS.millisValue();
        if (purge != null) b.purgeDelay(purge);
        defaultHeap = b.build(true);
      }
      return defaultHeap;
    }
  }

  /**
   * A builder of a new heap. Its defaults: no name (the core names it {@code heap-<n>}), no
   * limit, no reservation, no pre-touch, no huge pages, the core's purge delay, no debug mode,
   * leak detection and JMX as the {@code segfit.leakDetection} and {@code segfit.jmx}
   * properties say.
   *
   * @return a new builder
   */
  public static Builder builder() {
    return new Builder();
  }

  // -----------------------------------------------------------------------------------------
  // ByteBuffer API
  // -----------------------------------------------------------------------------------------

  /**
   * Allocates a block of {@code size} bytes, not initialized, as a direct buffer.
   *
   * @param size the size in bytes; 0 gives a unique minimal block
   * @return a direct buffer over the block: position 0, limit = capacity = size, native order
   * @throws IllegalStateException if the heap is closed
   * @throws IllegalArgumentException if size is negative
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public ByteBuffer allocate(int size) {
    if (cache != null) {   // after close() it finds nothing (SlabCache.close)
      ByteBuffer b = cache.allocate(size);
      if (b != null) return b;
    }
    if (closed) throw Errors.closed(name);
    long address = Blocks.allocate(handle, size);
    if (address <= 0) throw Errors.allocation(address, name, handle, size, 0);
    return buffer(address, size, 0);
  }

  /**
   * Allocates a block of {@code size} bytes set to zero, as a direct buffer. Fresh pages from
   * the operating system are known to be zero and are not written.
   *
   * @param size the size in bytes
   * @return a direct buffer over the zeroed block: position 0, limit = capacity = size
   * @throws IllegalStateException if the heap is closed
   * @throws IllegalArgumentException if size is negative
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public ByteBuffer allocateZeroed(int size) {
    if (closed) throw Errors.closed(name);
    long address = Blocks.allocateZeroed(handle, size);
    if (address <= 0) throw Errors.allocation(address, name, handle, size, 0);
    return buffer(address, size, 0);
  }

  /**
   * Allocates a block of {@code size} bytes whose address is a multiple of {@code alignment},
   * as a direct buffer (for example page-aligned for {@code O_DIRECT} I/O). Every block is at
   * least 16-byte aligned anyway.
   *
   * @param size the size in bytes
   * @param alignment a power of two, at most 2<sup>30</sup>
   * @return a direct buffer over the block: position 0, limit = capacity = size
   * @throws IllegalStateException if the heap is closed
   * @throws IllegalArgumentException if size is negative or alignment is not a power of two in
   *     range
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public ByteBuffer allocateAligned(int size, int alignment) {
    if (closed) throw Errors.closed(name);
    long address = Blocks.allocateAligned(handle, size, alignment);
    if (address <= 0) throw Errors.allocation(address, name, handle, size, alignment);
    return buffer(address, size, alignment);
  }

  /**
   * Resizes the block of {@code buffer}, keeping its first {@code min(capacity, newSize)}
   * bytes: in place when the size class does not change, by {@code mremap} (no copy) for large
   * blocks, else by copying. The returned buffer replaces {@code buffer}, which must not be used
   * any more (even when the address did not change); its position and limit are not carried
   * over. On failure {@code buffer} is unchanged and still live.
   *
   * @param buffer a buffer this heap returned (or a duplicate of one), not yet freed
   * @param newSize the new size in bytes
   * @return a direct buffer over the resized block: position 0, limit = capacity = newSize
   * @throws NullPointerException if buffer is null
   * @throws IllegalStateException if the heap is closed, or the block was already freed
   * @throws IllegalArgumentException if buffer is not direct, is not a live block of this heap
   *     (another heap's, {@code allocateDirect}'s, an interior slice, a larger view), or newSize
   *     is negative
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public ByteBuffer reallocate(ByteBuffer buffer, int newSize) {
    checkDirect(buffer, "reallocate");
    if (cache != null) {   // after close() it finds nothing (SlabCache.close)
      long address = Blocks.address(buffer);
      long r = cache.reallocate(address, buffer.capacity(), newSize);
      if (r != SlabCache.NOT_MINE) {
        if (r <= 0) throw Errors.reallocation(r, name, handle, address, newSize);
        ByteBuffer view = cache.view(r, newSize);
        return view != null ? view : buffer(r, newSize, 0);
      }
    }
    if (closed) throw Errors.closed(name);
    long old = leaks != null || sites != null ? Blocks.address(buffer) : 0;
    long address = Blocks.reallocateBuffer(handle, buffer, buffer.capacity(), newSize);
    if (address <= 0) {
      throw closedOr(Errors.reallocation(address, name, handle, Blocks.address(buffer), newSize));
    }
    if (leaks != null) leaks.untrack(old);
    if (sites != null) sites.freed(old);
    return buffer(address, newSize, 0);
  }

  /**
   * Frees the block of {@code buffer}. The buffer (and every view of it) must not be used
   * afterwards.
   *
   * @param buffer a buffer this heap returned (or a duplicate of one), not yet freed
   * @throws NullPointerException if buffer is null
   * @throws IllegalStateException if the heap is closed, or the block was already freed (as
   *     long as its slab still holds it: once a later allocation reused the memory, a stale free
   *     frees the new block; once the empty slab went back to the OS, it is rejected with
   *     IllegalArgumentException)
   * @throws IllegalArgumentException if buffer is not direct or is not a live block of this heap
   *     with that capacity: another heap's buffer, {@code allocateDirect}'s, a slice at an
   *     interior offset, or a view at the block's start whose capacity could not have produced
   *     the block (a capacity in another size class, unless the block's alignment explains it,
   *     as for {@link #allocateAligned}; such an accepted view frees the whole block)
   */
  public void free(ByteBuffer buffer) {
    checkDirect(buffer, "free");
    if (cache != null) {   // after close() it finds nothing (SlabCache.close)
      int rc = cache.free(buffer);   // a buffer the cache made, by its identity
      // Not one: a view of a lent block is known by its address only (and memo exists whenever
      // the cache does; its buffers are the core's).
      if (rc == SlabCache.NOT_MINE && memo.address(buffer) == 0) {
        rc = cache.free(Blocks.address(buffer), buffer.capacity());
      }
      if (rc != SlabCache.NOT_MINE) {
        if (rc != 0) throw freeFailure(rc, Blocks.address(buffer));
        return;
      }
    }
    if (closed) throw Errors.closed(name);
    // Where reading the address is a native call, a buffer from the memo needs none.
    long known = memo == null || Blocks.addressInJava() ? 0 : memo.address(buffer);
    if (known != 0) {
      int rc = Blocks.freeSized(handle, known, buffer.capacity());
      if (rc != 0) throw freeFailure(rc, known);
      if (sites != null) sites.freed(known);
      return;
    }
    long result = Blocks.freeBuffer(handle, buffer, buffer.capacity());
    if (result <= 0) throw freeFailure(result, result == 0 ? 0 : Blocks.address(buffer));
    if (leaks != null) leaks.untrack(result);
    if (sites != null) sites.freed(result);
  }

  // -----------------------------------------------------------------------------------------
  // Address API
  // -----------------------------------------------------------------------------------------

  /**
   * Allocates a block of {@code size} bytes, not initialized, and returns its address. Sizes
   * above 2 GiB are allowed. The memory may be accessed through FFM ({@code MemorySegment
   * .ofAddress(address).reinterpret(size)}), through {@link #sliceAddress(long, long, int)},
   * or through native code.
   *
   * @param size the size in bytes, at most 2<sup>46</sup>
   * @return the address of the block, 16-byte aligned at least; never 0
   * @throws IllegalStateException if the heap is closed
   * @throws IllegalArgumentException if size is negative or too large
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public long allocateAddress(long size) {
    if (cache != null) {   // after close() it finds nothing (SlabCache.close)
      long a = cache.allocateAddress(size);
      if (a != 0) return a;
    }
    if (closed) throw Errors.closed(name);
    long address = Blocks.allocate(handle, size);
    if (address <= 0) throw Errors.allocation(address, name, handle, size, 0);
    addressAllocated(address, size, 0);
    return address;
  }

  /**
   * As {@link #allocateAddress(long)}, with the memory set to zero.
   *
   * @param size the size in bytes, at most 2<sup>46</sup>
   * @return the address of the zeroed block
   * @throws IllegalStateException if the heap is closed
   * @throws IllegalArgumentException if size is negative or too large
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public long allocateZeroedAddress(long size) {
    if (closed) throw Errors.closed(name);
    long address = Blocks.allocateZeroed(handle, size);
    if (address <= 0) throw Errors.allocation(address, name, handle, size, 0);
    addressAllocated(address, size, 0);
    return address;
  }

  /**
   * As {@link #allocateAddress(long)}, at an address that is a multiple of {@code alignment}.
   *
   * @param size the size in bytes, at most 2<sup>46</sup>
   * @param alignment a power of two, at most 2<sup>30</sup>
   * @return the address of the block
   * @throws IllegalStateException if the heap is closed
   * @throws IllegalArgumentException if size is negative or too large, or alignment is not a
   *     power of two in range
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   */
  public long allocateAlignedAddress(long size, long alignment) {
    if (closed) throw Errors.closed(name);
    long address = Blocks.allocateAligned(handle, size, alignment);
    if (address <= 0) throw Errors.allocation(address, name, handle, size, alignment);
    addressAllocated(address, size, alignment);
    return address;
  }

  /**
   * Resizes the block at {@code address} as {@link #reallocate(ByteBuffer, int)} does, and
   * returns its new address; the old address must not be used any more. Like
   * {@code Unsafe.reallocateMemory}, address 0 allocates a new block.
   *
   * @param address the address of a live block of this heap, or 0
   * @param newSize the new size in bytes, at most 2<sup>46</sup>
   * @return the new address of the block
   * @throws IllegalStateException if the heap is closed, or the block was already freed
   * @throws IllegalArgumentException if address is not the start of a live block of this heap,
   *     or newSize is negative or too large
   * @throws HeapOutOfMemoryError if the heap's limit or the operating system refuses the memory
   *     (the block at address is then unchanged and still live)
   */
  public long reallocateAddress(long address, long newSize) {
    if (cache != null) {   // after close() it finds nothing (SlabCache.close)
      long r = cache.reallocate(address, 0, newSize);
      if (r != SlabCache.NOT_MINE) {
        if (r <= 0) throw Errors.reallocation(r, name, handle, address, newSize);
        return r;
      }
    }
    if (closed) throw Errors.closed(name);
    long result = Blocks.reallocate(handle, address, newSize);
    if (result <= 0) throw closedOr(Errors.reallocation(result, name, handle, address, newSize));
    if (leaks != null && address != 0) leaks.untrack(address);
    if (sites != null && address != 0) sites.freed(address);
    addressAllocated(result, newSize, 0);
    return result;
  }

  /**
   * Frees the block at {@code address}. Like {@code free(NULL)} in C and
   * {@code Unsafe.freeMemory(0)}, address 0 does nothing.
   *
   * @param address the address of a live block of this heap, or 0
   * @throws IllegalStateException if the heap is closed, or the block was already freed (as
   *     long as its slab still holds it: once a later allocation reused the memory, a stale free
   *     frees the new block; once the empty slab went back to the OS, it is rejected with
   *     IllegalArgumentException)
   * @throws IllegalArgumentException if address is not the start of a live block of this heap
   */
  public void freeAddress(long address) {
    if (cache != null) {   // after close() it finds nothing (SlabCache.close)
      int rc = cache.free(address, -1);
      if (rc != SlabCache.NOT_MINE) {
        if (rc != 0) throw freeFailure(rc, address);
        return;
      }
    }
    if (closed) throw Errors.closed(name);
    int rc = Blocks.free(handle, address);
    if (rc != 0) throw freeFailure(rc, address);
    if (leaks != null) leaks.untrack(address);
    if (sites != null) sites.freed(address);
  }

  /**
   * The usable size of the live block at {@code address}: at least the size it was allocated
   * or last reallocated with; every byte of it may be used.
   *
   * @param address the address of a live block of this heap
   * @return the usable size in bytes
   * @throws IllegalStateException if the heap is closed, or the block was already freed
   * @throws IllegalArgumentException if address is not the start of a live block of this heap
   */
  public long usableSizeAddress(long address) {
    if (cache != null) {   // after close() it finds nothing (SlabCache.close)
      long size = cache.usableSize(address);
      if (size != SlabCache.NOT_MINE) {
        if (size < 0) throw Errors.block(size, name, "usableSizeAddress", address);
        return size;
      }
    }
    if (closed) throw Errors.closed(name);
    long size = Blocks.usableSize(handle, address);
    if (size < 0) throw closedOr(Errors.block(size, name, "usableSizeAddress", address));
    return size;
  }

  /**
   * A direct buffer over {@code length} bytes at {@code offset} within the live block at
   * {@code address}: the way to reach any part of a block larger than 2 GiB through the
   * ByteBuffer API. The buffer is a view (native order, position 0, limit = capacity = length);
   * it does not own the block and is valid only while the block is live. Pass the address, not
   * this view, to {@link #freeAddress(long)}.
   *
   * @param address the address of a live block of this heap
   * @param offset the offset of the view within the block
   * @param length the length of the view
   * @return the view
   * @throws IllegalStateException if the heap is closed, or the block was already freed
   * @throws IllegalArgumentException if address is not the start of a live block of this heap
   * @throws IndexOutOfBoundsException if offset or length is negative, or the view would go
   *     past the block's usable size
   */
  public ByteBuffer sliceAddress(long address, long offset, int length) {
    long usable = usableSizeAddress(address);
    if (offset < 0 || length < 0 || offset > usable - length) {
      throw new IndexOutOfBoundsException("view of " + length + " bytes at offset " + offset
          + " does not fit the block of " + usable + " bytes at 0x" + Long.toHexString(address));
    }
    return Regions.view(address + offset, length);
  }

  // -----------------------------------------------------------------------------------------
  // The heap
  // -----------------------------------------------------------------------------------------

  /**
   * Takes a snapshot of the heap's figures.
   *
   * @return the snapshot
   * @throws IllegalStateException if the heap is closed
   */
  public HeapStats stats() {
    if (closed) throw Errors.closed(name);
    long[] raw = Stats.array();
    int rc = NativeHeap.stats(handle, raw);
    if (rc != 0) throw Errors.block(rc, name, "stats", 0);
    if (cache != null) cache.addTo(raw);
    return new HeapStats(name, raw, leaks == null ? 0 : leaks.reported());
  }

  /**
   * Returns the memory of empty slabs and cached segments to the operating system now, instead
   * of after the purge delay. Emits the JFR event {@code io.segfit.Trim}. In debug mode, first
   * checks every freed block still in quarantine for writes after free.
   *
   * @throws IllegalStateException if the heap is closed, or (debug mode) a check failed: the
   *     message names each damaged block, the cause is the first one's allocation stack; the
   *     trim was done anyway
   */
  public void trim() {
    if (closed) throw Errors.closed(name);
    if (cache != null) cache.trim();
    int rc = Jfr.trim(name, handle);
    if (rc == Errors.CORRUPTED) throw CorruptionReport.drain(handle, name, sites, "trim", 0);
    if (rc != 0) throw Errors.block(rc, name, "trim", 0);
  }

  /** The heap's name: the builder's, {@code "default"}, or {@code heap-<n>} chosen by the core. */
  public String name() {
    return name;
  }

  /** Whether {@link #close()} has been called. */
  public boolean isClosed() {
    return closed;
  }

  /** The leak detection of this heap. */
  public LeakDetection leakDetection() {
    return level;
  }

  /**
   * The name under which the heap's {@link HeapMXBean} is registered with the platform MBean
   * server, such as {@code io.segfit:type=Heap,name=cache}, or null if it is not (JMX off, the
   * registration failed, or the heap is closed). A String, so that segfit's API needs no
   * {@code java.management}: {@code ObjectName.getInstance(heap.mxbeanName())} makes the JMX
   * name.
   */
  public String mxbeanName() {
    return mxbeanName;
  }

  /**
   * Closes the heap and releases all its memory at once, live blocks included: every buffer
   * and address it handed out becomes invalid. Other threads may be inside calls on this heap:
   * those calls either complete before the memory is released or fail with
   * {@link IllegalStateException}; later calls fail with {@link IllegalStateException}.
   *
   * <p>Like FFM's {@code Arena.close()}, closing twice is an error rather than a no-op,
   * because a second close usually reveals two owners of one heap.
   *
   * @throws IllegalStateException if the heap is already closed
   * @throws UnsupportedOperationException if this is the {@linkplain #defaultHeap() default
   *     heap}
   */
  @Override
  public void close() {
    if (isDefault) {
      throw new UnsupportedOperationException("the default heap cannot be closed");
    }
    if (!closing.compareAndSet(false, true)) throw Errors.closed(name);
    closed = true;
    OpenHeaps.closed(this);
    String mxbean = mxbeanName;
    if (mxbean != null) {
      mxbeanName = null;
      MXBeans.unregister(name, mxbean);
    }
    Jfr.removeHeap(handle);
    if (leaks != null) leaks.close();
    if (cache != null) cache.close();
    int rc = NativeHeap.destroy(handle);
    if (rc != 0) throw Errors.block(rc, name, "close", 0);
  }

  @Override
  public String toString() {
    return "Heap[" + name + (closed ? ", closed]" : "]");
  }

  // -----------------------------------------------------------------------------------------

  private static void checkDirect(ByteBuffer buffer, String operation) {
    Objects.requireNonNull(buffer, "buffer");
    if (!buffer.isDirect()) {
      throw new IllegalArgumentException(operation + ": not a direct buffer, so not a block of "
          + "any heap: " + buffer);
    }
  }

  /**
   * The exception for a failed free. A debug-mode corruption report still freed the block, so
   * its leak tracker and allocation site go too.
   */
  private RuntimeException freeFailure(long code, long address) {
    if (code != Errors.CORRUPTED) return closedOr(Errors.block(code, name, "free", address));
    if (leaks != null) leaks.untrack(address);
    RuntimeException e = CorruptionReport.drain(handle, name, sites, "free", address);
    if (sites != null) sites.freed(address);
    return e;
  }

  /**
   * What a call that reached the core throws when the core refused it: that the heap is closed,
   * once it is. A call racing close() may reach the core after close() emptied the thread
   * cache's tables and before the core's heap went, and the core does not know the blocks the
   * cache held (NOT_A_BLOCK).
   */
  private RuntimeException closedOr(RuntimeException failure) {
    return closed ? Errors.closed(name) : failure;
  }

  private ByteBuffer buffer(long address, int size, long alignment) {
    ByteBuffer b = memo != null ? memo.view(address, size) : Regions.view(address, size);
    if (leaks != null && leaks.sample()) leaks.track(b, address, size);
    if (sites != null) sites.allocated(address, size);
    if (size >= LARGE) Jfr.largeAllocation(name, address, size, alignment);
    return b;
  }

  private void addressAllocated(long address, long size, long alignment) {
    if (sites != null) sites.allocated(address, size);
    if (size >= LARGE) Jfr.largeAllocation(name, address, size, alignment);
  }

  /**
   * Builds a {@link Heap}. A builder is not thread-safe; it may build several heaps.
   */
  public static final class Builder {
    private String name;
    private long maxBytes;
    private long reserveBytes;
    private boolean preTouch;
    private boolean hugePages;
    private long purgeDelayMs = -1;
    private boolean debug;
    private LeakDetection leakDetection;
    private int leakSamplingInterval;
    private Boolean jmx;

    private Builder() {}

    /**
     * The heap's name, for statistics, messages and its MXBean.
     *
     * @param name 1 to 63 UTF-8 bytes (the core's {@code SEGFIT_MAX_NAME_LENGTH}, checked by
     *     {@link #build()}), without NUL characters
     * @return this builder
     * @throws NullPointerException if name is null
     * @throws IllegalArgumentException if name is empty or contains NUL
     */
    public Builder name(String name) {
      Objects.requireNonNull(name, "name");
      if (name.isEmpty() || name.indexOf('\0') >= 0) {
        throw new IllegalArgumentException("heap name must not be empty nor contain NUL: '"
            + name + "'");
      }
      this.name = name;
      return this;
    }

    /**
     * The heap's limit on committed slab bytes plus large-block bytes; an allocation that would
     * exceed it throws {@link HeapOutOfMemoryError}.
     *
     * @param maxBytes the limit in bytes, 0 for none (the default)
     * @return this builder
     * @throws IllegalArgumentException if maxBytes is negative
     */
    public Builder maxBytes(long maxBytes) {
      this.maxBytes = nonNegative(maxBytes, "maxBytes");
      return this;
    }

    /**
     * Address space to reserve for slabs when the heap is created, so that steady-state
     * allocation makes no system call.
     *
     * @param reserveBytes bytes to reserve, 0 to grow on demand (the default)
     * @return this builder
     * @throws IllegalArgumentException if reserveBytes is negative
     */
    public Builder reserveBytes(long reserveBytes) {
      this.reserveBytes = nonNegative(reserveBytes, "reserveBytes");
      return this;
    }

    /**
     * Whether to pre-fault the reservation ({@code MAP_POPULATE}) at creation.
     *
     * @param preTouch true to pre-fault; default false
     * @return this builder
     */
    public Builder preTouch(boolean preTouch) {
      this.preTouch = preTouch;
      return this;
    }

    /**
     * Whether to ask for transparent huge pages ({@code MADV_HUGEPAGE}).
     *
     * @param hugePages true to ask; default false
     * @return this builder
     */
    public Builder hugePages(boolean hugePages) {
      this.hugePages = hugePages;
      return this;
    }

    /**
     * How long an empty slab waits before its memory goes back to the operating system
     * (whether or not the owning thread calls again).
     *
     * @param delay the delay, {@link Duration#ZERO} for at once; millisecond precision
     * @return this builder
     * @throws NullPointerException if delay is null
     * @throws IllegalArgumentException if delay is negative
     */
    public Builder purgeDelay(Duration delay) {
      Objects.requireNonNull(delay, "delay");
      if (delay.isNegative()) throw new IllegalArgumentException("negative purge delay " + delay);
      this.purgeDelayMs = delay.toMillis();
      return this;
    }

    /**
     * Debug mode, for finding memory misuse: slower and larger, not for production.
     * <ul>
     * <li>A canary after each slab block: an overrun past the usable size is reported when the
     * block is freed or reallocated.
     * <li>Freed blocks are filled with a pattern and held in a quarantine before reuse: a write
     * after free is reported by the free or trim that finds the pattern damaged (or, when the
     * block is found damaged as it is handed out again, by the next free or trim).
     * <li>Large blocks get a guard page on each side: an access to one stops the process with
     * a report on standard error naming the heap, the block and the offset.
     * <li>Every allocation records its stack; a report's cause is the damaged block's stack.
     * </ul>
     * A report is an {@link IllegalStateException}; the block being freed is freed anyway.
     *
     * @param debug true for debug mode; default false
     * @return this builder
     */
    public Builder debug(boolean debug) {
      this.debug = debug;
      return this;
    }

    /**
     * The heap's leak detection (default: the {@code segfit.leakDetection} property).
     *
     * @param level the level
     * @return this builder
     * @throws NullPointerException if level is null
     */
    public Builder leakDetection(LeakDetection level) {
      this.leakDetection = Objects.requireNonNull(level, "level");
      return this;
    }

    /**
     * With {@link LeakDetection#SAMPLED}, track one ByteBuffer allocation in this many
     * (default: the {@code segfit.leakDetection.samplingInterval} property, 128).
     *
     * @param interval at least 1
     * @return this builder
     * @throws IllegalArgumentException if interval is less than 1
     */
    public Builder leakSamplingInterval(int interval) {
      if (interval < 1) {
        throw new IllegalArgumentException("sampling interval " + interval + " < 1");
      }
      this.leakSamplingInterval = interval;
      return this;
    }

    /**
     * Whether to register the heap's {@link HeapMXBean} (default: the {@code segfit.jmx}
     * property, true).
     *
     * @param jmx true to register
     * @return this builder
     */
    public Builder jmx(boolean jmx) {
      this.jmx = jmx;
      return this;
    }

    /**
     * Creates the heap.
     *
     * @return the new heap, open
     * @throws UnsatisfiedLinkError if the native library cannot be loaded on this platform
     * @throws IllegalArgumentException if the name is longer than the core allows, an option is
     *     out of the core's range, or a
     *     {@code segfit.*} property this builder falls back to is invalid
     * @throws HeapOutOfMemoryError if the reservation cannot be mapped
     */
    public Heap build() {
      return build(false);
    }

    private Heap build(boolean isDefault) {
      NativeLibrary.ensureLoaded();
      LeakDetection level = leakDetection != null ? leakDetection : leakDetectionProperty();
      int interval = level == LeakDetection.PARANOID ? 1
          : leakSamplingInterval > 0 ? leakSamplingInterval
          : Option.LEAK_SAMPLING_INTERVAL.intValue(1);
      boolean withJmx = jmx != null ? jmx : Option.JMX.booleanValue();
      byte[] nameBytes = null;
      if (name != null) {
        byte[] utf8 = name.getBytes(StandardCharsets.UTF_8);
        if (utf8.length > NativeHeap.MAX_NAME_BYTES) {
          throw new IllegalArgumentException("heap name must have at most "
              + NativeHeap.MAX_NAME_BYTES + " UTF-8 bytes: '" + name + "'");
        }
        nameBytes = Arrays.copyOf(utf8, utf8.length + 1);
      }
      long handle = NativeHeap.create(nameBytes, maxBytes, reserveBytes, preTouch, hugePages,
          purgeDelayMs, debug);
      if (handle <= 0) {
        throw Errors.creation(handle, name, reserveBytes, maxBytes, toString());
      }
      String actualName = NativeHeap.name(handle);
      boolean cached = maxBytes == 0 && purgeDelayMs != 0 && Option.THREAD_CACHE.booleanValue();
      Heap heap = new Heap(handle, actualName, isDefault, level, interval, debug, cached,
          purgeDelayMs);
      if (withJmx) heap.mxbeanName = MXBeans.register(actualName, new HeapMXBeanImpl(heap));
      Jfr.addHeap(handle, actualName, heap.cache);
      OpenHeaps.opened(heap);
      return heap;
    }

    private static LeakDetection leakDetectionProperty() {
      String v = Option.LEAK_DETECTION.value().toUpperCase(java.util.Locale.ROOT);
      for (LeakDetection l : LeakDetection.values()) {
        if (l.name().equals(v)) return l;
      }
      throw Option.LEAK_DETECTION.invalid("disabled, sampled or paranoid");
    }

    private static long nonNegative(long value, String what) {
      if (value < 0) throw new IllegalArgumentException(what + " " + value + " is negative");
      return value;
    }

    @Override
    public String toString() {
      return "Heap.Builder[name=" + name + ", maxBytes=" + maxBytes + ", reserveBytes="
          + reserveBytes + ", preTouch=" + preTouch + ", hugePages=" + hugePages
          + ", purgeDelayMs=" + (purgeDelayMs < 0 ? "default" : purgeDelayMs) + ", debug="
          + debug + "]";
    }
  }
}
