#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turns the output of scripts/bench into docs: JMH JSON -> ratio tables, charts, target checks.

Subcommands (scripts/bench calls all of them; each can be rerun by hand on saved output):
  merge OUT.json IN.json...        concatenate JMH JSON result files
  summary JMH.json                 print a small segfit-versus-peers ratio table (scripts/bench --demo)
  syscalls OUT.json DIR            reduce the strace output of SyscallProbe runs to counts
  report --bench DIR --doc FILE    fill FILE between <!-- jmh:begin --> and <!-- jmh:end --> from
                                   DIR/jmh-jdk17.json, jmh-jdk25.json, syscalls.json, run.json,
                                   and draw DIR/*.png

Every figure written comes from those files; nothing is typed in. Names: a benchmark
io.segfit.bench[.ffm].<Shape>[Ffm].<peer> is the workload <Shape> for allocator <peer>; the
FFM classes (JDK 22+) add peers to the same workloads. Peers whose name starts with "segfit"
are segfit; all others are the peers segfit is compared with.
"""
import glob
import json
import os
import re
import sys

BEGIN, END = "<!-- jmh:begin -->", "<!-- jmh:end -->"
NATIVE_BEGIN, NATIVE_END = "<!-- native-bench:begin -->", "<!-- native-bench:end -->"

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
# The Netty shapes' target: each segfit row <= NETTY_TARGET x the faster of Netty's pooled and
# adaptive allocators at the same leak detection setting.
NETTY_SHAPES = ("NettyRoundTrip", "NettyGrowth", "NettyTwoThreads", "NettyProducerConsumer")
NETTY_TARGET = 0.7
NETTY_RIVALS = {"segfit": {"nettyPooled", "nettyAdaptive"},
                "segfitLeakDefault": {"nettyPooledLeakDefault", "nettyAdaptiveLeakDefault"}}
# How the summary names segfit's rows other than "segfit".
SEGFIT_VARIANTS = {"segfitAddress": "address API", "segfitJni": "JNI path",
                   "segfitCore": "core path, no thread cache",
                   "segfitLeakDefault": "default leak detection"}
# Peers that grow by allocate + copy + free (no realloc of their own).
COPYING = {"allocateDirect", "nettyPooled", "nettyAdaptive", "ffmConfinedArena"}
PCTS = ["50.0", "90.0", "99.0", "99.9", "99.99"]
PCT_LABELS = ["p50", "p90", "p99", "p99.9", "p99.99"]
MEMORY_SYSCALLS = {"mmap", "munmap", "mremap", "madvise", "brk", "mprotect", "mlock", "munlock"}


# --- reading JMH output --------------------------------------------------------------------------

def load(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        text = f.read().strip()
    return json.loads(text) if text else []


def median(values):
    """The median of a non-empty list of numbers."""
    vals = sorted(values)
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def hist_percentile(hist, q):
    """The q-th percentile (0..100) of one iteration's JMH histogram [[value, count], ...]."""
    total = sum(c for _, c in hist)
    need, seen = q / 100.0 * total, 0
    for value, count in sorted(hist):
        seen += count
        if seen >= need:
            return value
    return None


def iteration_percentiles(pm):
    """{percentile: median over the measurement iterations of that iteration's percentile}.
    JMH pools every iteration's samples, so one iteration disturbed by the machine (a JIT or GC
    thread, another VM on the host) decides the pooled tail of a short run; the median of the
    iterations' own tails does not, and treats every peer the same way."""
    iters = [it for fork in (pm.get("rawDataHistogram") or []) for it in fork if it]
    if not iters:
        return {}
    out = {}
    for q in PCTS:
        vals = [v for v in (hist_percentile(it, float(q)) for it in iters) if v is not None]
        if vals:
            out[q] = median(vals)
    return out


def parse(result):
    """(shape, peer, size or None, record) of one JMH result."""
    parts = result["benchmark"].split(".")
    cls, peer = parts[-2], parts[-1]
    shape = cls[:-3] if cls.endswith("Ffm") else cls
    params = result.get("params") or {}
    size = int(params["size"]) if "size" in params else None
    pm = result["primaryMetric"]
    sec = result.get("secondaryMetrics") or {}
    norm = None
    for key, val in sec.items():
        if key.endswith("gc.alloc.rate.norm"):
            norm = val["score"]
    # The median of the measurement iterations (all forks) is the score: on a shared 2-core
    # machine one disturbed iteration moves the mean far more than the median. JMH's own mean
    # and error stay in the JSON.
    iters = sorted(x for fork in (pm.get("rawData") or []) for x in fork)
    if iters:
        score, lo, hi = median(iters), iters[0], iters[-1]
    else:
        score, lo, hi = pm["score"], None, None
    return shape, peer, size, {
        "score": score, "min": lo, "max": hi, "unit": pm["scoreUnit"].replace("us/", "µs/"),
        "percentiles": iteration_percentiles(pm) or pm.get("scorePercentiles") or {},
        "pooled": pm.get("scorePercentiles") or {}, "allocNorm": norm,
        "mode": result["mode"], "threads": result.get("threads"),
        "jdk": result.get("jdkVersion"), "vm": result.get("vmName"),
        "secondary": {k: v["score"] for k, v in sec.items() if not k.startswith("gc.")
                      and not k.startswith("·")},
    }


def index(results):
    """{(shape, size): {peer: record}} for one JDK."""
    table = {}
    for r in results:
        shape, peer, size, rec = parse(r)
        table.setdefault((shape, size), {})[peer] = rec
    return table


def is_segfit(peer):
    return peer.startswith("segfit")


def best_peer(peers, exclude_segfit=True, only=None):
    cands = [(rec["score"], p) for p, rec in peers.items()
             if (not exclude_segfit or not is_segfit(p)) and (only is None or p in only)]
    return min(cands) if cands else None


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


def fmt_score(rec):
    return fmt_num(rec["score"])


def ratio(a, b):
    return a / b if b else float("inf")


def unit_of(peers):
    for rec in peers.values():
        return rec["unit"]
    return ""


# --- subcommands ---------------------------------------------------------------------------------

def cmd_merge(out, inputs):
    merged = []
    for p in inputs:
        merged.extend(load(p))
    with open(out, "w") as f:  # one result per line: small, and diffs stay readable
        f.write("[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in merged) + "\n]\n")


def cmd_summary(path):
    table = index(load(path))
    rows = []
    for (shape, size), peers in sorted(table.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        seg = peers.get("segfit")
        if seg is None:
            continue
        others = sorted((p for p in peers if not is_segfit(p)), key=lambda p: peers[p]["score"])
        for p in others:
            rows.append((shape, fmt_size(size), LABELS.get(p, p), peers[p]["score"], seg["score"],
                         ratio(seg["score"], peers[p]["score"])))
    print()
    print("%-17s %-7s %-32s %10s %10s %8s" % ("workload", "size", "peer", "peer ns", "segfit ns",
                                             "segfit/peer"))
    for r in rows:
        print("%-17s %-7s %-32s %10.1f %10.1f %8.2fx" % r)
    print("\n(ratio < 1: segfit is faster; JMH JSON: %s)" % path)


def parse_strace_summary(path):
    counts = {}
    with open(path) as f:
        for line in f:
            tok = line.split()
            if len(tok) < 5 or not re.match(r"^[\d.]+$", tok[0]) or tok[-1] == "total":
                continue
            name = tok[-1]
            nums = tok[:-1]
            # columns: % time, seconds, usecs/call, calls[, errors]
            calls = int(nums[3])
            counts[name] = counts.get(name, 0) + calls
    return counts


def trace_events(lines):
    """(tid, time, body) of every line of `strace -f -ttt` output."""
    for line in lines:
        tok = line.split(None, 2)
        if len(tok) == 3 and tok[0].isdigit():
            yield tok[0], float(tok[1]), tok[2]


def thread_names(lines):
    """{tid: name} from PR_SET_NAME (a thread naming itself) and writes to /proc/self/task/<tid>/comm
    (pthread_setname_np naming another thread, as segfit does for its purge thread)."""
    names, pending = {}, {}
    for tid, _, body in trace_events(lines):
        m = re.match(r'prctl\(PR_SET_NAME, "([^"]*)"', body)
        if m:
            names[tid] = m.group(1)
        m = re.match(r'openat\([^,]*, "/proc/self/task/(\d+)/comm"', body)
        if m:
            pending[tid] = m.group(1)
        m = re.match(r'write\(\d+, "([^"]*)"', body)
        if m and tid in pending:
            names[pending.pop(tid)] = m.group(1)
    return names


def window(lines, begin, end):
    """Syscalls between two probe markers: {thread: {syscall: count}} and the seconds between them.
    Threads are "probing thread", or their name (segfit names its threads "segfit-...")."""
    names = thread_names(lines)
    events = list(trace_events(lines))
    tid = None
    for i, (t, ts, body) in enumerate(events):
        if "segfit-probe: " + begin in body and body.startswith("write("):
            tid, t0, start = t, ts, i
            break
    if tid is None:
        raise SystemExit("bench-report: no '%s' marker in the strace output" % begin)
    calls = {}
    for t, ts, body in events[start + 1:]:
        if t == tid and "segfit-probe: " + end in body:
            return calls, ts - t0
        if body.startswith("---") or body.startswith("+++") or body.startswith("<..."):
            continue  # signals, exits, and the second half of an interrupted call
        m = re.match(r"([a-z_0-9]+)\(", body)
        if m:
            who = "probing thread" if t == tid else names.get(t, "thread %s" % t)
            per = calls.setdefault(who, {})
            per[m.group(1)] = per.get(m.group(1), 0) + 1
    raise SystemExit("bench-report: no '%s' marker in the strace output" % end)


def cmd_syscalls(out, directory):
    result = {}
    for summary0 in sorted(glob.glob(os.path.join(directory, "*-0.summary"))):
        base = os.path.basename(summary0)[:-len("-0.summary")]  # jdk17-buffer
        jdk, path = base.split("-")
        c0 = parse_strace_summary(summary0)
        c1 = parse_strace_summary(os.path.join(directory, base + "-1000000.summary"))
        names = sorted(set(c0) | set(c1))
        delta = {n: c1.get(n, 0) - c0.get(n, 0) for n in names if c1.get(n, 0) != c0.get(n, 0)}
        lines = open(os.path.join(directory, base + "-trace.txt"), errors="replace").read().splitlines()
        calls, seconds = window(lines, "begin", "end")
        resume, _ = window(lines, "resume", "begin")
        segfit_threads = {t: c for t, c in calls.items() if t.startswith("segfit")}
        result.setdefault(jdk, {})[path] = {
            "calls0": sum(c0.values()), "calls1M": sum(c1.values()),
            "delta": delta, "deltaTotal": sum(c1.values()) - sum(c0.values()),
            "windowSeconds": seconds, "window": calls,
            "probingThreadCalls": sum(calls.get("probing thread", {}).values()),
            "segfitThreadCalls": sum(sum(c.values()) for c in segfit_threads.values()),
            "memoryCalls": sum(v for c in calls.values() for n, v in c.items() if n in MEMORY_SYSCALLS),
            "resume": resume.get("probing thread", {}),
        }
    with open(out, "w") as f:
        json.dump(result, f, indent=2)


# --- charts --------------------------------------------------------------------------------------

def charts(bench_dir, tables):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    made = {}
    for jdk, table in tables.items():
        for shape, _, _ in SHAPES:
            keys = sorted([k for k in table if k[0] == shape], key=lambda k: k[1] or 0)
            if not keys:
                continue
            fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys) + 1.5, 0.32 * max(
                len(table[k]) for k in keys) + 1.6), squeeze=False)
            for ax, key in zip(axes[0], keys):
                peers = table[key]
                order = sorted(peers, key=lambda p: peers[p]["score"], reverse=True)
                vals = [peers[p]["score"] for p in order]
                errs = [[v - (peers[p]["min"] if peers[p]["min"] is not None else v) for p, v in zip(order, vals)],
                        [(peers[p]["max"] if peers[p]["max"] is not None else v) - v for p, v in zip(order, vals)]]
                colors = ["#d62728" if is_segfit(p) else "#7f7f7f" for p in order]
                ax.barh(range(len(order)), vals, xerr=errs, color=colors)
                ax.set_yticks(range(len(order)))
                ax.set_yticklabels([LABELS.get(p, p) for p in order] if ax is axes[0][0]
                                   else [LABELS.get(p, p) for p in order], fontsize=7)
                log = max(vals) > 30 * min(vals)  # linear unless the bars span orders of magnitude
                if log:
                    ax.set_xscale("log")
                    ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap
                ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: fmt_num(x)))
                ax.set_xlabel(unit_of(peers) + (" (log scale)" if log else "") + ", lower is better",
                              fontsize=8)
                ax.set_title(fmt_size(key[1]) or shape, fontsize=9)
                ax.tick_params(axis="x", labelsize=7)
            fig.suptitle("%s, JDK %s" % (shape, jdk), fontsize=10)
            fig.tight_layout()
            name = "%s-jdk%s.png" % (shape, jdk)
            fig.savefig(os.path.join(bench_dir, name), dpi=90)
            plt.close(fig)
            made[(shape, jdk)] = name
        keys = sorted([k for k in table if k[0] == "Latency"], key=lambda k: k[1] or 0)
        if keys:
            fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.2), squeeze=False)
            for ax, key in zip(axes[0], keys):
                peers = table[key]
                tab10 = plt.get_cmap("tab10").colors
                palette = iter([c for i, c in enumerate(tab10) if i != 3] * 3)  # red is segfit's
                for p in sorted(peers, key=lambda p: (not is_segfit(p), p)):
                    pct = peers[p]["percentiles"]
                    ys = [pct.get(q) for q in PCTS]
                    ax.plot(range(len(PCTS)), ys, marker="o", label=LABELS.get(p, p),
                            linewidth=2.5 if is_segfit(p) else 1,
                            color="#d62728" if is_segfit(p) else next(palette),
                            linestyle="-" if is_segfit(p) or len(ax.lines) < 9 else "--")
                ax.set_xticks(range(len(PCTS)))
                ax.set_xticklabels(PCT_LABELS)
                ax.set_yscale("log")
                ax.yaxis.set_minor_formatter(NullFormatter())
                ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: fmt_num(y)))
                ax.set_ylabel("ns per round trip (log)")
                ax.set_title("round trip %s, JDK %s" % (fmt_size(key[1]), jdk), fontsize=9)
                ax.legend(fontsize=6)
                ax.grid(True, which="both", alpha=0.3)
            fig.tight_layout()
            name = "Latency-jdk%s.png" % jdk
            fig.savefig(os.path.join(bench_dir, name), dpi=90)
            plt.close(fig)
            made[("Latency", jdk)] = name
    return made


# --- report --------------------------------------------------------------------------------------

def shape_table(table, shape):
    """Markdown: rows = peers, columns = sizes; a last row with segfit / best peer."""
    keys = sorted([k for k in table if k[0] == shape], key=lambda k: k[1] or 0)
    if not keys:
        return []
    peers = set()
    for k in keys:
        peers |= set(table[k])
    order = sorted(peers, key=lambda p: (not is_segfit(p),
                                         min(table[k][p]["score"] for k in keys if p in table[k])))
    unit = unit_of(table[keys[0]])
    cols = [fmt_size(k[1]) or "score" for k in keys]
    alloc_col = "B/op (Java, %s)" % cols[0] if keys[0][1] is not None else "B/op (Java)"
    out = ["| %s | %s | %s |" % ("peer (" + unit + ")", " | ".join(cols), alloc_col),
           "|---|" + "---:|" * len(cols) + "---:|"]
    for p in order:
        cells = []
        for k in keys:
            rec = table[k].get(p)
            cells.append(fmt_score(rec) if rec else "–")
        rec0 = table[keys[0]].get(p)
        alloc = fmt_num(rec0["allocNorm"]) if rec0 and rec0["allocNorm"] is not None else "–"
        name = LABELS.get(p, p)
        out.append("| %s | %s | %s |" % ("**%s**" % name if is_segfit(p) else name,
                                         " | ".join(cells), alloc))
    for seg in [p for p in order if is_segfit(p)]:
        cells = []
        for k in keys:
            b = best_peer(table[k])
            if seg in table[k] and b:
                cells.append("**%.2fx** (%s)" % (ratio(table[k][seg]["score"], b[0]), LABELS.get(b[1], b[1])))
            else:
                cells.append("–")
        out.append("| %s ÷ best peer | %s | |" % (LABELS.get(seg, seg), " | ".join(cells)))
    return out


def latency_table(table):
    keys = sorted([k for k in table if k[0] == "Latency"], key=lambda k: k[1] or 0)
    out = []
    for key in keys:
        peers = table[key]
        out.append("")
        out.append("Round trip %s, ns (SampleTime percentiles, each the median over the measurement "
                   "iterations of that iteration's percentile; JMH's pooled p99.9 beside them; "
                   "all include the timer's own cost):" % fmt_size(key[1]))
        out.append("")
        out.append("| peer | " + " | ".join(PCT_LABELS) + " | p99.9 pooled |")
        out.append("|---|" + "---:|" * (len(PCTS) + 1))
        for p in sorted(peers, key=lambda p: (not is_segfit(p), peers[p]["percentiles"].get("99.9", 0))):
            name = LABELS.get(p, p)
            cells = [fmt_num(peers[p]["percentiles"].get(q)) for q in PCTS]
            cells.append(fmt_num(peers[p]["pooled"].get("99.9")))
            out.append("| %s | %s |" % ("**%s**" % name if is_segfit(p) else name, " | ".join(cells)))
    return out


def fmt_calls(by_thread):
    """"thread: syscall n, ..." for {thread: {syscall: n}}; "none" when empty."""
    parts = []
    for t, c in sorted(by_thread.items()):
        parts.append("%s: %s" % (t, ", ".join("%s %d" % kv for kv in sorted(c.items()))))
    return "; ".join(parts) or "none"


def targets(tables, syscalls):
    """[(target, jdk, detail, met)] computed from the measurements."""
    rows = []

    def add(name, jdk, detail, ok):
        rows.append((name, jdk, detail, ok))

    for jdk, t in sorted(tables.items()):
        for size in (64, 1024):
            s = fmt_size(size)
            buf = t.get(("RoundTripBuffer", size), {})
            seg = buf.get("segfit")
            if seg:
                lw = best_peer(buf, only={"lwjglMemAlloc", "lwjglJemalloc", "lwjglRpmalloc"})
                checks = [("LWJGL's fastest", lw, 1.0),
                          ("Netty pooled", best_peer(buf, only={"nettyPooled", "nettyPooledLeakDefault"}), 0.5),
                          ("allocateDirect + clean", best_peer(buf, only={"allocateDirect"}), 0.5),
                          ("FFM confined arena", best_peer(buf, only={"ffmConfinedArena"}), 0.7)]
                for what, b, limit in checks:
                    if b is None:
                        continue
                    r = ratio(seg["score"], b[0])
                    add("DirectByteBuffer round trip %s ≤ %.1fx %s" % (s, limit, what), jdk,
                        "%.2fx (segfit %s ns, %s %s ns)" % (r, fmt_num(seg["score"]), LABELS.get(b[1], b[1]),
                                                           fmt_num(b[0])), r <= limit)
            addr = t.get(("RoundTripAddress", size), {})
            seg = addr.get("segfit")
            if seg:
                for what, only, limit in (("LWJGL rpmalloc", {"lwjglRpmalloc"}, 1.0),
                                          ("LWJGL memAlloc", {"lwjglMemAlloc"}, 0.8)):
                    b = best_peer(addr, only=only)
                    if b is None:
                        continue
                    r = ratio(seg["score"], b[0])
                    add("address round trip %s ≤ %.1fx %s" % (s, limit, what), jdk,
                        "%.2fx (segfit %s ns, %s ns)" % (r, fmt_num(seg["score"]), fmt_num(b[0])), r <= limit)
        for shape, what in (("ArenaRoundTrip", "arena per allocation"), ("ArenaBatch", "arena per batch")):
            for size in (64, 1024):
                rows_ = t.get((shape, size), {})
                seg, jdk_arena = rows_.get("segfitConfinedArena"), rows_.get("ffmConfinedArena")
                if seg and jdk_arena:
                    r = ratio(seg["score"], jdk_arena["score"])
                    add("%s %s ≤ 0.3x Arena.ofConfined()" % (what, fmt_size(size)), jdk,
                        "%.2fx (HeapArena.ofConfined %s ns, Arena.ofConfined %s ns)" % (
                            r, fmt_num(seg["score"]), fmt_num(jdk_arena["score"])), r <= 0.3)
        batch = t.get(("Batch", None), {})
        segs = [(rec["score"], p) for p, rec in batch.items() if is_segfit(p)]
        b = best_peer(batch)
        if segs and b:
            sbest = min(segs)
            r = ratio(sbest[0], b[0])
            add("batch ≤ 0.8x best peer", jdk, "%.2fx (%s %s ns, %s %s ns per buffer)" % (
                r, LABELS.get(sbest[1], sbest[1]), fmt_num(sbest[0]), LABELS.get(b[1], b[1]), fmt_num(b[0])), r <= 0.8)
        grow = t.get(("ReallocGrowth", None), {})
        seg = grow.get("segfit")
        b = best_peer(grow, only=COPYING)
        if seg and b:
            speedup = ratio(b[0], seg["score"])
            add("realloc growth ≥ 20x faster than copying peers", jdk, "%.1fx (segfit %s µs, %s %s µs)" % (
                speedup, fmt_num(seg["score"]), LABELS.get(b[1], b[1]), fmt_num(b[0])), speedup >= 20)
        for size in (64, 1024):
            lat = t.get(("Latency", size), {})
            seg = lat.get("segfit")
            if not seg:
                continue
            cands = [(rec["percentiles"].get("99.9"), p) for p, rec in lat.items() if not is_segfit(p)]
            cands = [c for c in cands if c[0] is not None]
            if cands:
                b = min(cands)
                sv = seg["percentiles"].get("99.9")
                add("p99.9 of round trip %s ≤ best peer" % fmt_size(size), jdk, "segfit %s ns, %s %s ns" % (
                    fmt_num(sv), LABELS.get(b[1], b[1]), fmt_num(b[0])), sv <= b[0])
        for shape in NETTY_SHAPES:
            for key in sorted([k for k in t if k[0] == shape], key=lambda k: k[1] or 0):
                for seg, rivals in sorted(NETTY_RIVALS.items()):
                    rec, b = t[key].get(seg), best_peer(t[key], only=rivals)
                    if rec is None or b is None:
                        continue
                    r = ratio(rec["score"], b[0])
                    add("%s%s, %s ≤ %.1fx the faster Netty allocator" % (
                        shape, " " + fmt_size(key[1]) if key[1] else "", LABELS.get(seg, seg), NETTY_TARGET),
                        jdk, "%.2fx (segfit %s %s, %s %s)" % (r, fmt_num(rec["score"]), rec["unit"],
                                                           LABELS.get(b[1], b[1]), fmt_num(b[0])),
                        r <= NETTY_TARGET)
    if not syscalls:
        add("zero syscalls per 1M steady-state round trips", "–",
            "not measured: no syscalls.json (the strace runs failed or were not made)", False)
    for jdk, paths in sorted((syscalls or {}).items()):
        for path, s in sorted(paths.items()):
            detail = ("probing thread: %d syscalls in %.0f ms; memory-management syscalls of all threads: %d; "
                      "segfit's own threads: %d (%s)") % (
                s["probingThreadCalls"], 1000 * s["windowSeconds"], s["memoryCalls"], s["segfitThreadCalls"],
                fmt_calls({t: c for t, c in s["window"].items() if t.startswith("segfit")}))
            add("zero syscalls per 1M steady-state round trips (%s)" % path, jdk.replace("jdk", ""),
                detail, s["probingThreadCalls"] == 0 and s["memoryCalls"] == 0)
    return rows


def peer_versions():
    """The versions benchmarks/pom.xml pins (the jar that ran was built from it)."""
    pom = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks", "pom.xml")
    try:
        text = open(pom).read()
    except OSError:
        return {}
    return dict(re.findall(r"<((?:netty|lwjgl|jmh)\.version)>([^<]+)</", text))


def cmd_report(bench_dir, doc):
    tables = {}
    for jdk in ("17", "25"):
        res = load(os.path.join(bench_dir, "jmh-jdk%s.json" % jdk))
        if res:
            tables[jdk] = index(res)
    if not tables:
        raise SystemExit("bench-report: no JMH results in " + bench_dir)
    run = load(os.path.join(bench_dir, "run.json")) or {}
    sysc = load(os.path.join(bench_dir, "syscalls.json")) or {}
    made = charts(bench_dir, tables)
    rel = os.path.relpath(bench_dir, os.path.dirname(os.path.abspath(doc)))

    L = [BEGIN, "## JVM allocators (JMH)", "",
         "<!-- generated by scripts/bench-report.py from %s/*.json; do not edit by hand -->" % rel, ""]
    L.append("### How this was measured")
    L.append("")
    L.append("- Command: `%s` (mode %s, %s s wall time including builds), started %s." % (
        run.get("command", "?"), run.get("mode", "?"), run.get("durationSeconds", "?"), run.get("started", "?")))
    L.append("- Machine: %s, %s cores, %s RAM, %s, kernel %s; load average %s before the run, %s after." % (
        run.get("cpu", "?"), run.get("cores", "?"), run.get("memory", "?"), run.get("os", "?"),
        run.get("kernel", "?"), run.get("loadBefore", "?"), " ".join(run.get("loadAfter", []) or ["?"])))
    L.append("- JDKs: %s; %s." % (run.get("jdk17", "?"), run.get("jdk25") or "no JDK 25 run"))
    v = peer_versions()
    L.append("- Peers: Netty %s (netty-buffer), LWJGL %s (lwjgl, lwjgl-jemalloc, lwjgl-rpmalloc with their "
             "natives-linux jars), the JDKs' own allocateDirect, Unsafe and FFM; JMH %s." % (
                 v.get("netty.version", "?"), v.get("lwjgl.version", "?"), v.get("jmh.version", "?")))
    L.append("- Source: commit %s%s." % (run.get("gitCommit", "?"), " plus uncommitted changes" if run.get("gitDirty") else ""))
    timing = run.get("timing", "?")
    lat = run.get("latencyTiming", timing)
    L.append("- JMH options `%s -prof gc`%s; fork JVM flags on JDK 17 `%s`, on JDK 25 `%s` (for the peers: "
             "Netty and LWJGL use Unsafe and the private DirectByteBuffer constructor when allowed; "
             "segfit needs none of them)." % (
                 timing, "" if lat == timing else " (latency runs: `%s`)" % lat,
                 run.get("jvmArgs17", "?"), run.get("jvmArgs25", "?")))
    L.append("- Scores are the median of JMH's measurement iterations over all forks (JMH's mean and "
             "error are in the JSON; the charts' whiskers span the fastest to the slowest iteration); "
             "lower is better. B/op is Java heap allocation per operation from `-prof gc`. "
             "Ratios are segfit's score divided by the best peer's: below 1 means segfit is faster. "
             "Latency percentiles are, likewise, the median over the iterations of each iteration's "
             "percentile (JMH's pooled percentiles are in the JSON, and the pooled p99.9 is in the "
             "latency tables).")
    L.append("- Raw JMH JSON: [%s/jmh-jdk17.json](%s/jmh-jdk17.json), [%s/jmh-jdk25.json](%s/jmh-jdk25.json); "
             "syscall counts: [%s/syscalls.json](%s/syscalls.json)." % (rel, rel, rel, rel, rel, rel))
    L.append("")

    L.append("### Targets")
    L.append("")
    L.append("| target | JDK | measured | met |")
    L.append("|---|---|---|---|")
    rows = targets(tables, sysc)
    for name, jdk, detail, ok in rows:
        L.append("| %s | %s | %s | %s |" % (name, jdk, detail, "yes" if ok else "**no**"))
    met = sum(1 for r in rows if r[3])
    L.append("")
    L.append("%d of %d target checks met." % (met, len(rows)))
    L.append("")
    L.append("The syscall target counts, under `strace -f`, the calls made between the probe's markers "
             "around 1M round trips after warm-up: it is met when the thread doing the round trips makes "
             "none and no thread makes a memory-management call (%s). Calls of other threads in that window, "
             "by thread (segfit names its background threads `segfit-...`), and the whole-process "
             "`strace -f -c` totals of runs with 0 and with 1M round trips are in the syscall table below."
             % ", ".join(sorted(MEMORY_SYSCALLS)))
    L.append("")

    L.append("### Summary: segfit ÷ best peer")
    L.append("")
    L.append("| workload | size | JDK | segfit | best peer | ratio |")
    L.append("|---|---|---|---:|---|---:|")
    for shape, _, _ in SHAPES:
        for jdk, t in sorted(tables.items()):
            for key in sorted([k for k in t if k[0] == shape], key=lambda k: k[1] or 0):
                peers = t[key]
                for seg in sorted(p for p in peers if is_segfit(p)):
                    # A Netty row's rivals are Netty's allocators at the same leak setting, as
                    # in its target check.
                    b = best_peer(peers, only=NETTY_RIVALS.get(seg) if shape.startswith("Netty") else None)
                    if b:
                        L.append("| %s | %s | %s | %s %s | %s (%s) | **%.2fx** |" % (
                            shape if seg == "segfit" else "%s (%s)" % (shape, SEGFIT_VARIANTS.get(seg, LABELS.get(seg, seg))),
                            fmt_size(key[1]), jdk,
                            fmt_num(peers[seg]["score"]), peers[seg]["unit"], LABELS.get(b[1], b[1]),
                            fmt_num(b[0]), ratio(peers[seg]["score"], b[0])))
    L.append("")

    for shape, title, what in SHAPES:
        L.append("### %s" % title)
        L.append("")
        L.append(what[0].upper() + what[1:])
        for jdk, t in sorted(tables.items()):
            tab = shape_table(t, shape)
            if not tab:
                continue
            L.append("")
            L.append("JDK %s:" % jdk)
            L.append("")
            L.extend(tab)
            if (shape, jdk) in made:
                L.append("")
                L.append("![%s, JDK %s](%s/%s)" % (shape, jdk, rel, made[(shape, jdk)]))
        L.append("")

    L.append("### Latency percentiles of the round trip")
    for jdk, t in sorted(tables.items()):
        lt = latency_table(t)
        if lt:
            L.append("")
            L.append("JDK %s:" % jdk)
            L.extend(lt)
            if ("Latency", jdk) in made:
                L.append("")
                L.append("![Latency, JDK %s](%s/%s)" % (jdk, rel, made[("Latency", jdk)]))
    L.append("")

    if sysc:
        L.append("### Syscalls of steady-state round trips")
        L.append("")
        L.append("| JDK | path | `strace -f -c`, 0 round trips | `strace -f -c`, 1M | difference by syscall | "
                 "calls during the 1M round trips, by thread | probing thread, first 10,000 round trips "
                 "after 500 ms idle |")
        L.append("|---|---|---:|---:|---|---|---|")
        for jdk, paths in sorted(sysc.items()):
            for path, s in sorted(paths.items()):
                d = ", ".join("%s %+d" % kv for kv in sorted(s["delta"].items())) or "none"
                L.append("| %s | %s | %d | %d | %s | %.0f ms: %s | %s |" % (
                    jdk.replace("jdk", ""), path, s["calls0"], s["calls1M"], d, 1000 * s["windowSeconds"],
                    fmt_calls(s["window"]), fmt_calls({"probing thread": s["resume"]} if s["resume"] else {})))
        L.append("")
    L.append(END)
    block = "\n".join(L) + "\n"

    if os.path.exists(doc):
        text = open(doc).read()
    else:
        text = "# Benchmarks\n\n%s\n%s\n\n" % (NATIVE_BEGIN, NATIVE_END)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block
    with open(doc, "w") as f:
        f.write(text)
    print("bench-report: %s updated (%d of %d target checks met)" % (doc, met, len(rows)))


def main(argv):
    if len(argv) >= 2 and argv[0] == "merge":
        cmd_merge(argv[1], argv[2:])
    elif len(argv) == 2 and argv[0] == "summary":
        cmd_summary(argv[1])
    elif len(argv) == 3 and argv[0] == "syscalls":
        cmd_syscalls(argv[1], argv[2])
    elif len(argv) == 5 and argv[0] == "report" and argv[1] == "--bench" and argv[3] == "--doc":
        cmd_report(argv[2], argv[4])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
