// SPDX-License-Identifier: Apache-2.0
/*
 * The child JVM of GuardPageTest: allocates a large block on a debug heap, prints its address
 * and size, then writes byte after byte past its end through the raw address (as an FFM or
 * Unsafe user with an off-by-N bug would) for two pages. The guard page must stop it: reaching
 * the end of the loop prints SURVIVED.
 */
package io.segfit.hostile;

import io.segfit.Heap;

public final class GuardPageChild {
  private GuardPageChild() {}

  public static void main(String[] args) {
    int size = Integer.parseInt(args[0]);
    Heap heap = Heap.builder().name("guarded").debug(true).build();
    long address = heap.allocateAddress(size);
    RawMemory raw = RawMemory.get();
    Hostile.fill(Hostile.Bytes.at(address), 1, 0, size); // in bounds: fine
    System.out.println("BLOCK " + address + " " + size);
    System.out.flush();
    for (long off = size; off < size + 2 * 65536L; off++) {
      raw.put(address + off, (byte) 0xEE);
    }
    System.out.println("SURVIVED");
  }
}
