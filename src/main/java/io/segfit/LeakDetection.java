// SPDX-License-Identifier: Apache-2.0
package io.segfit;

/**
 * How a heap watches for {@link java.nio.ByteBuffer}s that become unreachable without being
 * freed.
 *
 * <p>A tracked buffer records the stack of its allocation. If the garbage collector finds the
 * buffer unreachable before {@link Heap#free(java.nio.ByteBuffer)} or
 * {@link Heap#reallocate(java.nio.ByteBuffer, int)} was called on it, the stack is logged
 * through {@link System.Logger} {@code "io.segfit.leak"} at {@code WARNING} and the JFR event
 * {@code io.segfit.Leak} is emitted. The block itself stays allocated until the heap is closed,
 * since another view of it may still be in use.
 *
 * <p>Tracking follows the buffer object the heap returned: keep that object (not only a
 * {@code duplicate()} or {@code slice()} of it) until you free it, or it is reported. Raw
 * addresses ({@link Heap#allocateAddress(long)}) are never tracked. The default for heaps whose
 * builder does not choose is the system property {@code segfit.leakDetection}.
 */
public enum LeakDetection {
  /** No tracking; allocation pays nothing. The default. */
  DISABLED,
  /**
   * One ByteBuffer allocation in {@link Heap.Builder#leakSamplingInterval(int)} (default 128,
   * or {@code segfit.leakDetection.samplingInterval}) is tracked; the others pay one
   * thread-local random draw.
   */
  SAMPLED,
  /** Every ByteBuffer allocation is tracked: for tests and debugging, slow. */
  PARANOID
}
