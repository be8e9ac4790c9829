// SPDX-License-Identifier: Apache-2.0
/*
 * Where a round trip's time goes, part by part, on whichever path this JDK takes (JNI on 17-21,
 * FFM critical downcalls on 22+ unless -Dsegfit.ffm=false): an empty native call, the core's
 * allocate + free of an address without the facade, a buffer view of a block, reading a
 * buffer's address, and the facade's round trips for comparison. Not a peer comparison: it
 * calls segfit's internal classes (the jar is on the class path), to explain the RoundTrip rows
 * (docs/hot-path.md).
 */
package io.segfit.bench;

import io.segfit.Heap;
import io.segfit.internal.Blocks;
import io.segfit.internal.NativeHeap;
import io.segfit.internal.Regions;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class HotPathParts {
  @Param({"64"})
  public int size;

  private Heap heap;
  private long handle;
  /** A live block and a buffer over it, for the parts that need one. */
  private long block;
  private ByteBuffer buffer;

  @Setup(Level.Trial)
  public void setup() throws ReflectiveOperationException {
    heap = Heap.defaultHeap();
    Field f = Heap.class.getDeclaredField("handle"); // the benchmark's own reflection, no --add-opens
    f.setAccessible(true);
    handle = f.getLong(heap);
    block = heap.allocateAddress(size);
    buffer = Regions.view(block, size);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    heap.freeAddress(block);
  }

  /** One native call that does nothing: the transition alone (JNI here, always). */
  @Benchmark
  public int nativeCallEmpty() {
    return NativeHeap.version();
  }

  /** The core's allocate and free of an address through the path Heap uses (Blocks). */
  @Benchmark
  public long coreAddressRoundTrip() {
    long a = Blocks.allocate(handle, size);
    Blocks.free(handle, a);
    return a;
  }

  /** The core's allocate, a buffer view, and the buffer's free through the path Heap uses. */
  @Benchmark
  public long coreBufferRoundTrip() {
    long a = Blocks.allocate(handle, size);
    ByteBuffer b = Regions.view(a, size);
    return Blocks.freeBuffer(handle, b, size);
  }

  /** Making the buffer a caller gets for a block (a slice of the block's region buffer). */
  @Benchmark
  public ByteBuffer bufferView() {
    return Regions.view(block, size);
  }

  /** Reading a buffer's address: a JNI call with an object on JDK 17-21, Java on the FFM path. */
  @Benchmark
  public long bufferAddress() {
    return Blocks.address(buffer);
  }

  /** The facade's address round trip (RoundTripAddress.segfit without the write). */
  @Benchmark
  public long heapAddressRoundTrip() {
    long a = heap.allocateAddress(size);
    heap.freeAddress(a);
    return a;
  }

  /** The facade's buffer round trip (RoundTripBuffer.segfit without the write). */
  @Benchmark
  public ByteBuffer heapBufferRoundTrip() {
    ByteBuffer b = heap.allocate(size);
    heap.free(b);
    return b;
  }
}
