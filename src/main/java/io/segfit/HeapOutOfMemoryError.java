// SPDX-License-Identifier: Apache-2.0
package io.segfit;

/**
 * Thrown when a {@link Heap} cannot provide memory: either its byte limit
 * ({@link Heap.Builder#maxBytes(long)}) would be exceeded, or the operating system refused to
 * map more memory. The message names the heap, the request, the limit and the live bytes, and
 * says which of the two happened ({@link #isLimitReached()}).
 *
 * <p>The heap is unchanged by the failed call and stays usable: freeing memory, or a larger
 * limit on a new heap, lets later allocations succeed. A failed {@code reallocate} leaves the
 * original block live and its contents intact.
 */
public class HeapOutOfMemoryError extends OutOfMemoryError {
  private static final long serialVersionUID = 1L;

  private final String heapName;
  private final long requestedBytes;
  private final long maxBytes;
  private final long liveBytes;
  private final boolean limitReached;

  /**
   * Creates the error.
   *
   * @param heapName the heap's name
   * @param requestedBytes the size asked for
   * @param maxBytes the heap's limit, 0 for none, -1 if unknown
   * @param liveBytes the heap's live bytes at the time, -1 if unknown
   * @param limitReached true if the heap's limit refused the request, false if the OS did
   */
  public HeapOutOfMemoryError(String heapName, long requestedBytes, long maxBytes, long liveBytes,
      boolean limitReached) {
    super(message(heapName, requestedBytes, maxBytes, liveBytes, limitReached));
    this.heapName = heapName;
    this.requestedBytes = requestedBytes;
    this.maxBytes = maxBytes;
    this.liveBytes = liveBytes;
    this.limitReached = limitReached;
  }

  private static String message(String heap, long requested, long max, long live,
      boolean limitReached) {
    String limit = max == 0 ? "none" : max < 0 ? "unknown" : max + " bytes";
    String liveText = live < 0 ? "unknown" : live + " bytes";
    if (limitReached) {
      return "heap '" + heap + "': allocating " + requested + " bytes would exceed its limit of "
          + limit + " (live " + liveText + ")";
    }
    return "heap '" + heap + "': the operating system refused memory for " + requested
        + " bytes (live " + liveText + ", limit " + limit + ")";
  }

  /** The name of the heap that failed. */
  public String heapName() {
    return heapName;
  }

  /** The size that was asked for, in bytes. */
  public long requestedBytes() {
    return requestedBytes;
  }

  /** The heap's limit in bytes, 0 when it has none, -1 if unknown. */
  public long maxBytes() {
    return maxBytes;
  }

  /** The heap's live bytes when the request failed, -1 if unknown. */
  public long liveBytes() {
    return liveBytes;
  }

  /** True if the heap's own limit refused the request, false if the operating system did. */
  public boolean isLimitReached() {
    return limitReached;
  }
}
