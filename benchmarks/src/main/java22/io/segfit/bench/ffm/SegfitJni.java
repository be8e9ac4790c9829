// SPDX-License-Identifier: Apache-2.0
/*
 * The default heap for the FFM classes' segfitJni benchmarks (which fork with
 * -Dsegfit.ffm=false), as io.segfit.bench.Peers.Segfit gives it to the others. A state of this
 * package, not Peers.Segfit: JMH generates a helper class per state used, and one generated here
 * for Peers' state would be compiled for JDK 22 over the JDK 17 one.
 */
package io.segfit.bench.ffm;

import io.segfit.Heap;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

@State(Scope.Benchmark)
public class SegfitJni {
  public Heap heap;

  @Setup(Level.Trial)
  public void setup() {
    heap = Heap.defaultHeap();
  }
}
