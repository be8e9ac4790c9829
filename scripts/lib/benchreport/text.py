# SPDX-License-Identifier: Apache-2.0
"""How benchmarks and numbers are written in the report: peer labels, workload titles, sizes."""

LABELS = {
    "segfit": "segfit",
    "segfitAddress": "segfit (address API)",
    "segfitJni": "segfit, JNI path (segfit.ffm=false)",
    "segfitCore": "segfit, core path (segfit.threadCache=false)",
    "segfitLeakDefault": "segfit (SegfitByteBufAllocator), default leak detection",
    "allocateDirect": "allocateDirect + invokeCleaner",
    "unsafe": "Unsafe.allocateMemory",
    "nettyPooled": "Netty pooled",
    "nettyPooledLeakDefault": "Netty pooled, default leak detection",
    "nettyAdaptive": "Netty adaptive",
    "nettyAdaptiveLeakDefault": "Netty adaptive, default leak detection",
    "lwjglMemAlloc": "LWJGL memAlloc (libc)",
    "lwjglMemRealloc": "LWJGL memRealloc (libc)",
    "lwjglJemalloc": "LWJGL jemalloc",
    "lwjglRpmalloc": "LWJGL rpmalloc",
    "ffmConfinedArena": "FFM confined arena",
    "ffmSharedArena": "FFM shared arena",
    "ffmCriticalMalloc": "FFM critical malloc/free",
    "segfitConfinedArena": "segfit HeapArena.ofConfined",
    "segfitSharedArena": "segfit HeapArena.ofShared",
}

# The latency workloads, in the report's order, and what their tables say: InterleavedLatency,
# which runs every peer in one loop taking turns (the tail targets' source), and JMH's SampleTime
# run of each peer alone.
LATENCY_SHAPES = (
    ("InterleavedLatency", "every peer in one loop taking turns, one timed round trip each, so "
     "that a stall of the machine is as likely to hit any of them (`InterleavedLatency`, "
     "`docs/hot-path.md` \"Tails\"); each percentile the median over the run's slices and "
     "passes of that slice's percentile; the pooled p99.9 beside them; all include a "
     "`System.nanoTime` pair. The tail targets are judged on these"),
    ("Latency", "JMH SampleTime, each peer in a run of its own; each percentile the median over "
     "the measurement iterations of that iteration's percentile; JMH's pooled p99.9 beside them; "
     "all include the timer's own cost"),
)

# (shape, title, what is measured), in the report's order.
SHAPES = [
    ("RoundTripBuffer", "Round trip, DirectByteBuffer (Netty: its direct ByteBuf)",
     "allocate, write one byte, free; same thread, back to back."),
    ("RoundTripAddress", "Round trip, raw address",
     "allocate, write one byte with Unsafe.putByte (FFM arena: through its segment), free."),
    ("Batch", "Batch of 10,000 mixed sizes, freed in shuffled order",
     "fixed-seed sizes: 70% 16-256 B, 25% to 8 KiB, 5% to 256 KiB; score per buffer."),
    ("ReallocGrowth", "Realloc growth 4 KiB to 64 MiB by doubling, contents kept",
     "peers without realloc allocate, copy and free; score per whole growth."),
    ("TwoThreads", "Round trip on two threads at once (@Threads(2)), 64 B", "score per round trip per thread."),
    ("ProducerConsumer", "Producer/consumer, 64 B: one thread allocates, the other frees",
     "bounded SPSC ring; group score = mean time per operation of the two threads."),
    ("NettyRoundTrip", "Netty ByteBuf round trip: SegfitByteBufAllocator against Netty's allocators",
     "directBuffer(size), writeLong and writeByte, release; same thread, back to back."),
    ("NettyGrowth", "Netty ByteBuf capacity growth 4 KiB to 64 MiB by doubling, contents kept",
     "capacity(n) as each allocator does it (segfit reallocates, Netty allocates and copies); score per "
     "whole growth."),
    ("NettyTwoThreads", "Netty ByteBuf round trip on two threads at once (@Threads(2)), 64 B",
     "score per round trip per thread."),
    ("NettyProducerConsumer", "Netty ByteBuf producer/consumer, 64 B: one thread allocates, the other "
     "releases", "bounded SPSC ring; group score = mean time per operation of the two threads."),
    ("ArenaRoundTrip", "Arena per allocation (JDK 25): open, allocate one zeroed segment, close",
     "HeapArena (segfit-ffm) over the default heap against the JDK's arenas of the same kind; "
     "a shared arena's close is a handshake with every thread."),
    ("ArenaBatch", "Arena per batch (JDK 25): 1,000 zeroed segments of one size, then close",
     "score per segment; HeapArena (segfit-ffm) against the JDK's arenas of the same kind."),
]

# How the summary names segfit's rows other than "segfit".
SEGFIT_VARIANTS = {"segfitAddress": "address API", "segfitJni": "JNI path",
                   "segfitCore": "core path, no thread cache",
                   "segfitLeakDefault": "default leak detection"}


def label(peer):
    return LABELS.get(peer, peer)


def fmt_size(size):
    if size is None:
        return ""
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return "%d MiB" % (size >> 20)
    if size >= 1024 and size % 1024 == 0:
        return "%d KiB" % (size >> 10)
    return "%d B" % size


def fmt_num(x):
    if x is None:
        return "–"
    if x >= 1000:
        return "{:,.0f}".format(x)
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x
