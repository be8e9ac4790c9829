// SPDX-License-Identifier: Apache-2.0
package io.segfit;

/**
 * The management interface of one open {@link Heap}, registered with the platform MBean server
 * as {@code io.segfit:type=Heap,name=<heap name>} when the heap is built (unless
 * {@link Heap.Builder#jmx(boolean)} or {@code segfit.jmx} says no) and unregistered when it is
 * closed. If a name is taken, {@code #2}, {@code #3}... is appended. Every attribute is read
 * from a fresh {@link HeapStats} snapshot; see there for their meaning. Thread-safe.
 */
public interface HeapMXBean {
  /** The heap's name. */
  String getName();

  long getLiveBytes();

  long getLiveBlocks();

  long getCommittedBytes();

  long getReservedBytes();

  /** The heap's limit, 0 for none. */
  long getMaxBytes();

  long getAllocations();

  long getFrees();

  long getReallocationsInPlace();

  long getReallocationsMoved();

  long getReallocationsRemapped();

  long getRemoteFrees();

  long getSegments();

  long getSlabs();

  long getLargeBlocks();

  long getLargeBytes();

  long getPurges();

  long getPurgedBytes();

  long getAbandonedSlabs();

  long getAdoptedSlabs();

  long getLimitHits();

  long getLimitReclaims();

  long getLimitReclaimedBytes();

  long getLeaksReported();

  /** The whole snapshot, as {@link HeapStats#toString()} prints it. */
  String getSummary();

  /** Returns empty slabs and cached segments to the OS now ({@link Heap#trim()}). */
  void trim();
}
