// SPDX-License-Identifier: Apache-2.0
/*
 * Property-based tests (jqwik): random scripts of allocate / allocateZeroed / allocateAligned /
 * reallocate / free / trim, over buffers and over raw addresses, run by one to three threads
 * at once with a hand-off queue between them, checked against a model; mixed in, misuse that
 * must be rejected without effect (double free, foreign buffers, interior addresses and slices).
 *
 * The model: every live block has a seed, and its bytes [0, size) must hold the seed's pattern
 * (TestSupport.patternByte). Each action checks what it touches: a new block has the requested
 * size and alignment (and zeros, for allocateZeroed); a reallocation keeps min(old, new) bytes;
 * a block is checked in full before it is freed, reallocated or handed over. When the threads
 * are done (the heap is quiescent) the heap's live blocks, live bytes (the sum of the blocks'
 * usable sizes) and allocations - frees must equal the model's, and after freeing everything
 * nothing may be live. Scripts shrink action by action,
 * sizes toward 0, so a failure ends as a short script. Work per try shrinks under emulation.
 */
package io.segfit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.ShrinkingMode;
import net.jqwik.api.Tuple;

class HeapModelPropertyTest {
  /** Largest block a script asks for: above segfit's small-object maximum, so large blocks too. */
  static final int MAX_SIZE = TestSupport.EMULATED ? 300_000 : 1_500_000;
  static final int MAX_ACTIONS = TestSupport.EMULATED ? 40 : 150;

  enum Kind { ALLOC, ZEROED, ALIGNED, ALLOC_ADDRESS, REALLOC, REALLOC_ADDRESS, FREE, FREE_ADDRESS,
    TRIM, HANDOFF, ADOPT, STATS, DOUBLE_FREE, BAD_FREE }

  /** One step of a script. pick chooses among the thread's live blocks (modulo their number). */
  record Action(Kind kind, int size, int alignShift, int pick) {
    @Override
    public String toString() {
      switch (kind) {
        case ALIGNED: return "ALIGNED(" + size + ", 1<<" + alignShift + ")";
        case ALLOC: case ZEROED: case ALLOC_ADDRESS: return kind + "(" + size + ")";
        case REALLOC: case REALLOC_ADDRESS: return kind + "(#" + pick + ", " + size + ")";
        case FREE: case FREE_ADDRESS: case HANDOFF: case DOUBLE_FREE: case BAD_FREE:
          return kind + "(#" + pick + ")";
        default: return kind.toString();
      }
    }
  }

  @Provide
  Arbitrary<List<Action>> script() {
    Arbitrary<Kind> kind = Arbitraries.frequencyOf(
        Tuple.of(6, Arbitraries.just(Kind.ALLOC)),
        Tuple.of(2, Arbitraries.just(Kind.ZEROED)),
        Tuple.of(2, Arbitraries.just(Kind.ALIGNED)),
        Tuple.of(3, Arbitraries.just(Kind.ALLOC_ADDRESS)),
        Tuple.of(3, Arbitraries.just(Kind.REALLOC)),
        Tuple.of(2, Arbitraries.just(Kind.REALLOC_ADDRESS)),
        Tuple.of(6, Arbitraries.just(Kind.FREE)),
        Tuple.of(3, Arbitraries.just(Kind.FREE_ADDRESS)),
        Tuple.of(1, Arbitraries.just(Kind.TRIM)),
        Tuple.of(2, Arbitraries.just(Kind.HANDOFF)),
        Tuple.of(2, Arbitraries.just(Kind.ADOPT)),
        Tuple.of(1, Arbitraries.just(Kind.STATS)),
        Tuple.of(1, Arbitraries.just(Kind.DOUBLE_FREE)),
        Tuple.of(1, Arbitraries.just(Kind.BAD_FREE)));
    Arbitrary<Integer> size = Arbitraries.frequencyOf(
        Tuple.of(6, Arbitraries.integers().between(0, 512)),
        Tuple.of(3, Arbitraries.integers().between(0, 70_000)),
        Tuple.of(1, Arbitraries.integers().between(0, MAX_SIZE)));
    Arbitrary<Integer> alignShift = Arbitraries.integers().between(0, 16);
    Arbitrary<Integer> pick = Arbitraries.integers().between(0, 1000);
    return Combinators.combine(kind, size, alignShift, pick).as(Action::new)
        .list().ofMaxSize(MAX_ACTIONS);
  }

  @Provide
  Arbitrary<List<List<Action>>> threads() {
    return script().list().ofMinSize(2).ofMaxSize(3);
  }

  @Property(tries = 80)
  void oneThreadMatchesModel(@ForAll("script") List<Action> script, @ForAll boolean debug,
      @ForAll boolean eagerPurge) throws Exception {
    run(List.of(script), debug, eagerPurge);
  }

  @Property(tries = 25, shrinking = ShrinkingMode.BOUNDED)
  void threadsWithHandOffMatchModel(@ForAll("threads") List<List<Action>> scripts,
      @ForAll boolean debug, @ForAll boolean eagerPurge) throws Exception {
    run(scripts, debug, eagerPurge);
  }

  // --- the model -----------------------------------------------------------------------------

  /** A live block: a buffer or an address, its requested size and the seed of its contents. */
  static final class Block {
    final ByteBuffer buffer; // null for an address block
    final long address;
    final int size;
    final long seed;

    Block(ByteBuffer buffer, long address, int size, long seed) {
      this.buffer = buffer;
      this.address = address;
      this.size = size;
      this.seed = seed;
    }

    TestSupport.Bytes bytes() {
      return buffer != null ? TestSupport.Bytes.of(buffer) : TestSupport.Bytes.at(address);
    }

    void check(String when) {
      long bad = TestSupport.firstMismatch(bytes(), seed, 0, size);
      assertEquals(-1, bad, when + ": byte " + bad + " of a " + size + "-byte "
          + (buffer != null ? "buffer" : "address") + " block changed");
    }

    @Override
    public String toString() {
      return (buffer != null ? "buffer" : "address") + "[" + size + "]";
    }
  }

  private static final AtomicLong SEEDS = new AtomicLong(1);

  private static void run(List<List<Action>> scripts, boolean debug, boolean eagerPurge)
      throws Exception {
    Heap.Builder builder = Heap.builder().name("model").debug(debug);
    if (eagerPurge) {
      builder.purgeDelay(Duration.ZERO);
    }
    try (Heap heap = builder.build()) {
      Queue<Block> handoff = new ConcurrentLinkedQueue<>();
      List<List<Block>> lives = new ArrayList<>();
      AtomicLong allocations = new AtomicLong();
      AtomicReference<Throwable> failure = new AtomicReference<>();
      CyclicBarrier start = new CyclicBarrier(scripts.size());
      List<Thread> threads = new ArrayList<>();
      for (List<Action> script : scripts) {
        List<Block> live = new ArrayList<>();
        lives.add(live);
        Thread t = new Thread(() -> {
          try {
            start.await();
            for (Action a : script) {
              step(heap, a, live, handoff, allocations, scripts.size() == 1);
            }
          } catch (Throwable e) {
            failure.compareAndSet(null, e);
          }
        }, "model-" + threads.size());
        threads.add(t);
      }
      for (Thread t : threads) {
        t.start();
      }
      for (Thread t : threads) {
        t.join();
      }
      if (failure.get() != null) {
        if (failure.get() instanceof Exception e) {
          throw e;
        }
        throw new AssertionError(failure.get());
      }

      // Quiescent: the heap's figures are the model's.
      List<Block> all = new ArrayList<>(handoff);
      lives.forEach(all::addAll);
      HeapStats s = heap.stats();
      assertEquals(all.size(), s.liveBlocks(), "live blocks, model " + all + ": " + s);
      long usable = 0;
      for (Block b : all) {
        long address = b.buffer != null ? RawMemory.get().addressOf(b.buffer) : b.address;
        usable += heap.usableSizeAddress(address);
      }
      if (debug) {
        // Debug heaps count each block's canary in live bytes too (segfit.h says "usable").
        assertTrue(s.liveBytes() >= usable, "live bytes " + s.liveBytes() + " < the usable sizes "
            + usable + " of " + all + ": " + s);
      } else {
        assertEquals(usable, s.liveBytes(), "live bytes vs the usable sizes of " + all + ": " + s);
      }
      assertTrue(s.allocations() >= allocations.get(), "allocs " + s.allocations() + " < " + allocations);
      assertEquals(s.allocations() - s.frees(), s.liveBlocks(), "allocs - frees != live: " + s);

      for (Block b : all) {
        free(heap, b, "final free");
      }
      HeapStats end = heap.stats();
      assertEquals(0, end.liveBlocks(), "live blocks after freeing all: " + end);
      assertEquals(0, end.liveBytes(), "live bytes after freeing all: " + end);
      assertEquals(end.allocations(), end.frees(), "allocs != frees after freeing all: " + end);
    }
  }

  private static void step(Heap heap, Action a, List<Block> live, Queue<Block> handoff,
      AtomicLong allocations, boolean alone) {
    switch (a.kind()) {
      case ALLOC: {
        ByteBuffer b = heap.allocate(a.size());
        checkShape(b, a.size());
        live.add(filled(b, 0, a.size()));
        allocations.incrementAndGet();
        break;
      }
      case ZEROED: {
        ByteBuffer b = heap.allocateZeroed(a.size());
        checkShape(b, a.size());
        long nz = TestSupport.firstNonZero(TestSupport.Bytes.of(b), a.size());
        assertEquals(-1, nz, "allocateZeroed(" + a.size() + "): byte " + nz + " not zero");
        live.add(filled(b, 0, a.size()));
        allocations.incrementAndGet();
        break;
      }
      case ALIGNED: {
        int alignment = 1 << a.alignShift();
        ByteBuffer b = heap.allocateAligned(a.size(), alignment);
        checkShape(b, a.size());
        assertEquals(0, b.alignmentOffset(0, alignment), a + ": misaligned");
        live.add(filled(b, 0, a.size()));
        allocations.incrementAndGet();
        break;
      }
      case ALLOC_ADDRESS: {
        long addr = heap.allocateAddress(a.size());
        assertTrue(addr != 0 && (addr & 15) == 0, a + ": address " + Long.toHexString(addr));
        assertTrue(heap.usableSizeAddress(addr) >= a.size(), a + ": usable size " + heap.usableSizeAddress(addr));
        live.add(filled(null, addr, a.size()));
        allocations.incrementAndGet();
        break;
      }
      case REALLOC:
      case REALLOC_ADDRESS: {
        boolean wantBuffer = a.kind() == Kind.REALLOC;
        int i = pick(live, a.pick(), wantBuffer);
        if (i < 0) {
          break;
        }
        Block old = live.get(i);
        old.check("before " + a);
        Block moved;
        if (wantBuffer) {
          ByteBuffer b = heap.reallocate(old.buffer, a.size());
          checkShape(b, a.size());
          moved = new Block(b, 0, a.size(), old.seed);
        } else {
          long addr = heap.reallocateAddress(old.address, a.size());
          assertTrue(addr != 0 && heap.usableSizeAddress(addr) >= a.size(), a + ": usable size");
          moved = new Block(null, addr, a.size(), old.seed);
        }
        long bad = TestSupport.firstMismatch(moved.bytes(), old.seed, 0,
            Math.min(old.size, a.size()));
        assertEquals(-1, bad, a + " from " + old.size + " bytes: byte " + bad + " not kept");
        live.set(i, filled(moved.buffer, moved.address, a.size()));
        break;
      }
      case FREE:
      case FREE_ADDRESS: {
        int i = pick(live, a.pick(), a.kind() == Kind.FREE);
        if (i >= 0) {
          free(heap, live.remove(i), a.toString());
        }
        break;
      }
      case DOUBLE_FREE: {
        // Only alone: another thread could get the freed address before the second free.
        if (alone && !live.isEmpty()) {
          Block b = live.remove(a.pick() % live.size());
          free(heap, b, a.toString());
          // Rejected without effect. IllegalStateException ("already freed") is what the
          // Javadoc promises; once the emptied slab has been purged (at once with a zero purge
          // delay) the core no longer knows the block and says IllegalArgumentException.
          RuntimeException e = assertThrows(RuntimeException.class, () -> {
            if (b.buffer != null) {
              heap.free(b.buffer);
            } else {
              heap.freeAddress(b.address);
            }
          }, a.toString());
          assertTrue(e instanceof IllegalStateException || e instanceof IllegalArgumentException,
              a + ": " + e);
        }
        break;
      }
      case BAD_FREE: {
        // Things that are not blocks of this heap: rejected, and nothing changes.
        assertThrows(IllegalArgumentException.class, () -> heap.free(ByteBuffer.allocateDirect(16)));
        assertThrows(IllegalArgumentException.class, () -> heap.free(ByteBuffer.allocate(16)));
        if (!live.isEmpty()) {
          Block b = live.get(a.pick() % live.size());
          long start = b.buffer != null ? RawMemory.get().addressOf(b.buffer) : b.address;
          if (heap.usableSizeAddress(start) >= 32) { // start + 16 is inside this block, no block's start
            assertThrows(IllegalArgumentException.class, () -> heap.freeAddress(start + 16));
            if (b.buffer != null && b.size >= 16) {
              assertThrows(IllegalArgumentException.class,
                  () -> heap.free(b.buffer.slice(16, b.size - 16)));
            }
          }
          b.check("after " + a);
        }
        break;
      }
      case TRIM:
        heap.trim();
        break;
      case HANDOFF:
        if (!live.isEmpty()) {
          Block b = live.remove(a.pick() % live.size());
          b.check("before hand-off");
          handoff.add(b);
        }
        break;
      case ADOPT: {
        Block b = handoff.poll();
        if (b != null) {
          b.check("adopted from another thread");
          live.add(b);
        }
        break;
      }
      case STATS: {
        HeapStats s = heap.stats();
        if (alone) {
          assertEquals(live.size() + handoff.size(), s.liveBlocks(), "live blocks: " + s);
        }
        break;
      }
      default:
        throw new AssertionError(a);
    }
  }

  /** Index of a live block of the wanted kind chosen by pick, or -1 if there is none. */
  private static int pick(List<Block> live, int pick, boolean buffer) {
    for (int k = 0; k < live.size(); k++) {
      int i = (pick + k) % live.size();
      if ((live.get(i).buffer != null) == buffer) {
        return i;
      }
    }
    return -1;
  }

  private static Block filled(ByteBuffer b, long address, int size) {
    Block block = new Block(b, address, size, SEEDS.getAndIncrement());
    TestSupport.fill(block.bytes(), block.seed, 0, size);
    return block;
  }

  private static void checkShape(ByteBuffer b, int size) {
    assertTrue(b.isDirect(), "not a direct buffer");
    assertEquals(0, b.position(), "position");
    assertEquals(size, b.limit(), "limit");
    assertEquals(size, b.capacity(), "capacity");
  }

  private static void free(Heap heap, Block b, String when) {
    b.check("before " + when);
    if (b.buffer != null) {
      heap.free(b.buffer);
    } else {
      heap.freeAddress(b.address);
    }
  }
}
