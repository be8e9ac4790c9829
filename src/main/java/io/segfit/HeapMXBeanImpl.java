// SPDX-License-Identifier: Apache-2.0
package io.segfit;

/** The MXBean of one heap: every attribute reads a fresh snapshot. */
final class HeapMXBeanImpl implements HeapMXBean {
  private final Heap heap;

  HeapMXBeanImpl(Heap heap) {
    this.heap = heap;
  }

  private HeapStats s() {
    return heap.stats();
  }

  @Override public String getName() { return heap.name(); }
  @Override public long getLiveBytes() { return s().liveBytes(); }
  @Override public long getLiveBlocks() { return s().liveBlocks(); }
  @Override public long getCommittedBytes() { return s().committedBytes(); }
  @Override public long getReservedBytes() { return s().reservedBytes(); }
  @Override public long getMaxBytes() { return s().maxBytes(); }
  @Override public long getAllocations() { return s().allocations(); }
  @Override public long getFrees() { return s().frees(); }
  @Override public long getReallocationsInPlace() { return s().reallocationsInPlace(); }
  @Override public long getReallocationsMoved() { return s().reallocationsMoved(); }
  @Override public long getReallocationsRemapped() { return s().reallocationsRemapped(); }
  @Override public long getRemoteFrees() { return s().remoteFrees(); }
  @Override public long getSegments() { return s().segments(); }
  @Override public long getSlabs() { return s().slabs(); }
  @Override public long getLargeBlocks() { return s().largeBlocks(); }
  @Override public long getLargeBytes() { return s().largeBytes(); }
  @Override public long getPurges() { return s().purges(); }
  @Override public long getPurgedBytes() { return s().purgedBytes(); }
  @Override public long getAbandonedSlabs() { return s().abandonedSlabs(); }
  @Override public long getAdoptedSlabs() { return s().adoptedSlabs(); }
  @Override public long getLimitHits() { return s().limitHits(); }
  @Override public long getLimitReclaims() { return s().limitReclaims(); }
  @Override public long getLimitReclaimedBytes() { return s().limitReclaimedBytes(); }
  @Override public long getLeaksReported() { return s().leaksReported(); }
  @Override public String getSummary() { return s().toString(); }
  @Override public void trim() { heap.trim(); }
}
