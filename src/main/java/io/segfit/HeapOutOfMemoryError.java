// SPDX-License-Identifier: Apache-2.0
package io.segfit;

/**
 * Thrown when a {@link Heap} cannot provide memory: either its byte limit
 * ({@link Heap.Builder#maxBytes(long)}) would be exceeded, or the operating system refused to
 * map more memory. The message names the heap, the request, the limit and the live bytes, and
 * says which of the two happened ({@link #isLimitReached()}).
 *
 * <p>Before the limit refuses a request, the heap gives back to the operating system all the
 * memory it holds without using it (empty slabs of every thread, freed large blocks kept for
 * reuse) and tries once more. What it still holds beyond the live bytes, it could not reclaim:
 * free blocks in slabs that also hold live blocks, or the empty slabs of threads that were
 * inside a call on the heap at that moment. The message gives those bytes apart
 * ({@link #heldBytes()}), so a refusal of a heap with few live bytes reads as what it is.
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
  private final long heldBytes;
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
    this(heapName, requestedBytes, maxBytes, liveBytes, -1, limitReached);
  }

  /**
   * Creates the error.
   *
   * @param heapName the heap's name
   * @param requestedBytes the size asked for
   * @param maxBytes the heap's limit, 0 for none, -1 if unknown
   * @param liveBytes the heap's live bytes at the time, -1 if unknown
   * @param heldBytes the bytes the heap held committed beyond its live bytes, -1 if unknown
   * @param limitReached true if the heap's limit refused the request, false if the OS did
   */
  public HeapOutOfMemoryError(String heapName, long requestedBytes, long maxBytes, long liveBytes,
      long heldBytes, boolean limitReached) {
    super(message(heapName, requestedBytes, maxBytes, liveBytes, heldBytes, limitReached));
    this.heapName = heapName;
    this.requestedBytes = requestedBytes;
    this.maxBytes = maxBytes;
    this.liveBytes = liveBytes;
    this.heldBytes = heldBytes;
    this.limitReached = limitReached;
  }

  private static String message(String heap, long requested, long max, long live, long held,
      boolean limitReached) {
    String limit = max == 0 ? "none" : max < 0 ? "unknown" : max + " bytes";
    String liveText = live < 0 ? "unknown" : live + " bytes";
    if (limitReached) {
      String heldText = held < 0 ? ""
          : held == 0 ? ", nothing else held"
          : ", and " + held + " bytes free that could not be reclaimed: free blocks of slabs in "
              + "use, empty slabs of threads that were inside a call";
      return "heap '" + heap + "': allocating " + requested + " bytes would exceed its limit of "
          + limit + " (live " + liveText + heldText + ")";
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

  /**
   * The bytes the heap held committed beyond its live bytes when the request failed: memory it
   * had no use for but could not reclaim (see above); -1 if unknown.
   */
  public long heldBytes() {
    return heldBytes;
  }

  /** True if the heap's own limit refused the request, false if the operating system did. */
  public boolean isLimitReached() {
    return limitReached;
  }
}
