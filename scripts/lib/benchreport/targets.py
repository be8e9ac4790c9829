# SPDX-License-Identifier: Apache-2.0
"""What segfit must meet against its peers, as one table (TARGETS), and the checks of a run.

Each row names a workload, its sizes, the segfit benchmark, the peers it is judged against and
the threshold. Every benchmark a row names must have been measured on every JDK of the run: a
missing workload, size or peer is an error naming the row, never a row that quietly drops out of
the report. A peer measured only on some JDKs says so in MEASURED_ONLY_ON; on the other JDKs the
rows that need it are not checked (and rows over a set of peers do without it).
"""
from collections import namedtuple

from .parse import is_segfit, ratio
from .text import fmt_num, fmt_size, label

# The segfit column of a row that takes segfit's fastest variant (segfit, segfitAddress...).
FASTEST_SEGFIT = "fastest segfit variant"
# The peers of a row judged against every peer measured for the workload (at least one).
EVERY_PEER = "every peer"

# Peers not measured on every JDK, on purpose: the JDKs each one runs on.
_FFM = ("25",)  # FFM benchmarks need JDK 22+; scripts/bench runs them on JDK 25 only
MEASURED_ONLY_ON = {
    "ffmConfinedArena": _FFM, "ffmSharedArena": _FFM, "ffmCriticalMalloc": _FFM,
    "segfitConfinedArena": _FFM, "segfitSharedArena": _FFM, "segfitJni": _FFM,
}

# name: the row's text ({size}: the size, {at_size}: " " and the size, or nothing for a workload
# without sizes; {limit}: the threshold); sizes: None for a workload
# without a size parameter; measure: "score" (the median time) or a percentile ("99.9");
# faster: the row is met when peer/segfit >= limit (a speed-up), else when segfit/peer <= limit.
Target = namedtuple("Target", "name shape sizes segfit peers limit measure faster")


def target(name, shape, sizes, segfit, peers, limit, measure="score", faster=False):
    return Target(name, shape, sizes, segfit, peers, limit, measure, faster)


ROUND_TRIP_SIZES = (64, 1024)
NETTY = ("nettyPooled", "nettyAdaptive")
NETTY_LEAK = ("nettyPooledLeakDefault", "nettyAdaptiveLeakDefault")


def _netty_rows():
    """Each segfit row <= 0.7x the faster of Netty's pooled and adaptive allocators at the same
    leak detection setting."""
    rows = []
    for shape, sizes in (("NettyRoundTrip", (64, 1024, 16384, 1 << 20)), ("NettyGrowth", (None,)),
                         ("NettyTwoThreads", (64,)), ("NettyProducerConsumer", (None,))):
        for segfit, rivals in (("segfit", NETTY), ("segfitLeakDefault", NETTY_LEAK)):
            rows.append(target(shape + "{at_size}, " + label(segfit) + " ≤ {limit:.1f}x the faster Netty "
                               "allocator", shape, sizes, segfit, rivals, 0.7))
    return rows


TARGETS = [
    target("DirectByteBuffer round trip {size} ≤ {limit:.1f}x LWJGL's fastest", "RoundTripBuffer",
           ROUND_TRIP_SIZES, "segfit", ("lwjglMemAlloc", "lwjglJemalloc", "lwjglRpmalloc"), 1.0),
    target("DirectByteBuffer round trip {size} ≤ {limit:.1f}x Netty pooled", "RoundTripBuffer",
           ROUND_TRIP_SIZES, "segfit", ("nettyPooled", "nettyPooledLeakDefault"), 0.5),
    target("DirectByteBuffer round trip {size} ≤ {limit:.1f}x allocateDirect + clean", "RoundTripBuffer",
           ROUND_TRIP_SIZES, "segfit", ("allocateDirect",), 0.5),
    target("DirectByteBuffer round trip {size} ≤ {limit:.1f}x FFM confined arena", "RoundTripBuffer",
           ROUND_TRIP_SIZES, "segfit", ("ffmConfinedArena",), 0.7),
    target("address round trip {size} ≤ {limit:.1f}x LWJGL rpmalloc", "RoundTripAddress",
           ROUND_TRIP_SIZES, "segfit", ("lwjglRpmalloc",), 1.0),
    target("address round trip {size} ≤ {limit:.1f}x LWJGL memAlloc", "RoundTripAddress",
           ROUND_TRIP_SIZES, "segfit", ("lwjglMemAlloc",), 0.8),
    target("arena per allocation {size} ≤ {limit:.1f}x Arena.ofConfined()", "ArenaRoundTrip",
           ROUND_TRIP_SIZES, "segfitConfinedArena", ("ffmConfinedArena",), 0.3),
    target("arena per batch {size} ≤ {limit:.1f}x Arena.ofConfined()", "ArenaBatch",
           ROUND_TRIP_SIZES, "segfitConfinedArena", ("ffmConfinedArena",), 0.3),
    target("batch ≤ {limit:.1f}x best peer", "Batch", (None,), FASTEST_SEGFIT, EVERY_PEER, 0.8),
    # Peers that grow by allocate + copy + free (no realloc of their own).
    target("realloc growth ≥ {limit:.0f}x faster than copying peers", "ReallocGrowth", (None,), "segfit",
           ("allocateDirect", "nettyPooled", "nettyAdaptive", "ffmConfinedArena"), 20, faster=True),
    # Tails from InterleavedLatency (every peer in one loop, taking turns), where a stall of the
    # machine is as likely to hit any peer; JMH's Latency, which runs them one after another,
    # is reported but judges nothing.
    target("p99.9 of round trip {size} ≤ best peer", "InterleavedLatency", ROUND_TRIP_SIZES, "segfit",
           EVERY_PEER, 1.0, measure="99.9"),
] + _netty_rows() + [
    # The hot-path issue's bar: no row slower than the fastest peer measured beside it (on JDK 25
    # that includes libc's malloc and free as critical FFM downcalls), tails included.
    target("DirectByteBuffer round trip {size} ≤ {limit:.1f}x the fastest peer", "RoundTripBuffer",
           ROUND_TRIP_SIZES, "segfit", EVERY_PEER, 1.0),
    target("address round trip {size} ≤ {limit:.1f}x the fastest peer", "RoundTripAddress",
           ROUND_TRIP_SIZES, "segfit", EVERY_PEER, 1.0),
    target("round trips on two threads {size} ≤ {limit:.1f}x the fastest peer", "TwoThreads", (64,),
           "segfit", EVERY_PEER, 1.0),
    target("batch through buffers ≤ {limit:.1f}x the fastest peer", "Batch", (None,), "segfit",
           EVERY_PEER, 1.0),
    target("batch through addresses ≤ {limit:.1f}x the fastest peer", "Batch", (None,), "segfitAddress",
           EVERY_PEER, 1.0),
    target("producer/consumer ≤ {limit:.1f}x the fastest peer", "ProducerConsumer", (None,), "segfit",
           EVERY_PEER, 1.0),
    target("p99.99 of round trip {size} ≤ best peer", "InterleavedLatency", ROUND_TRIP_SIZES, "segfit",
           EVERY_PEER, 1.0, measure="99.99"),
]


class MissingResult(Exception):
    """A row of TARGETS names a benchmark the run has no result for."""


def _measured(peer, jdk):
    return jdk in MEASURED_ONLY_ON.get(peer, (jdk,))


def _value(name, t, rec, peer, where):
    v = rec["score"] if t.measure == "score" else rec["percentiles"].get(t.measure)
    if v is None:
        raise MissingResult("target '%s': %s has no p%s%s" % (name, peer, t.measure, where))
    return v


def check(t, jdk, table):
    """[(name, detail, met)] of row t on one JDK's results, one per size; [] where the row's
    segfit benchmark or every one of its peers is not measured on that JDK, on purpose."""
    out = []
    for size in t.sizes:
        name = t.name.format(size=fmt_size(size), at_size=" " + fmt_size(size) if size else "",
                             limit=t.limit)
        where = " (JDK %s, workload %s%s)" % (jdk, t.shape, ", size %s" % fmt_size(size) if size else "")
        if t.segfit != FASTEST_SEGFIT and not _measured(t.segfit, jdk):
            continue
        peers = None if t.peers == EVERY_PEER else [p for p in t.peers if _measured(p, jdk)]
        if peers == []:
            continue
        results = table.get((t.shape, size))
        if results is None:
            raise MissingResult("target '%s': no results%s" % (name, where))
        missing = [p for p in peers or () if p not in results]
        if t.segfit != FASTEST_SEGFIT and t.segfit not in results:
            missing.insert(0, t.segfit)
        if missing:
            raise MissingResult("target '%s': no result for %s%s" % (name, ", ".join(missing), where))
        segs = [p for p in results if is_segfit(p)] if t.segfit == FASTEST_SEGFIT else [t.segfit]
        rivals = [p for p in results if not is_segfit(p)] if peers is None else peers
        if not segs or not rivals:
            raise MissingResult("target '%s': no %s measured%s" % (
                name, "segfit benchmark" if not segs else "peer", where))
        value = {p: _value(name, t, results[p], p, where) for p in segs + rivals}
        seg, peer = min(segs, key=value.get), min(rivals, key=value.get)
        sv, pv = value[seg], value[peer]
        unit = results[seg]["unit"]
        figures = "%s %s %s, %s %s %s" % (label(seg), fmt_num(sv), unit, label(peer), fmt_num(pv), unit)
        if t.faster:
            r = ratio(pv, sv)
            out.append((name, "%.1fx faster (%s)" % (r, figures), r >= t.limit))
        else:
            r = ratio(sv, pv)
            out.append((name, "%.2fx (%s)" % (r, figures), r <= t.limit))
    return out


def fmt_calls(by_thread):
    """"thread: syscall n, ..." for {thread: {syscall: n}}; "none" when empty."""
    parts = []
    for t, c in sorted(by_thread.items()):
        parts.append("%s: %s" % (t, ", ".join("%s %d" % kv for kv in sorted(c.items()))))
    return "; ".join(parts) or "none"


def evaluate(tables, syscalls):
    """[(target, jdk, detail, met)] of every row of TARGETS on every JDK measured, then the
    syscall target. Raises MissingResult when a row's benchmark was not measured."""
    rows = []
    for jdk, table in sorted(tables.items()):
        for t in TARGETS:
            rows.extend((name, jdk, detail, met) for name, detail, met in check(t, jdk, table))
    if not syscalls:
        rows.append(("zero syscalls per 1M steady-state round trips", "–",
                     "not measured: no syscalls.json (the strace runs failed or were not made)", False))
    for jdk, paths in sorted((syscalls or {}).items()):
        for path, s in sorted(paths.items()):
            detail = ("probing thread: %d syscalls in %.0f ms; memory-management syscalls of all threads: %d; "
                      "segfit's own threads: %d (%s)") % (
                s["probingThreadCalls"], 1000 * s["windowSeconds"], s["memoryCalls"], s["segfitThreadCalls"],
                fmt_calls({t: c for t, c in s["window"].items() if t.startswith("segfit")}))
            rows.append(("zero syscalls per 1M steady-state round trips (%s)" % path, jdk.replace("jdk", ""),
                         detail, s["probingThreadCalls"] == 0 and s["memoryCalls"] == 0))
    return rows
