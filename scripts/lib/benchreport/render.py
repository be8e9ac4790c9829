# SPDX-License-Identifier: Apache-2.0
"""The JMH section of docs/benchmarks.md, between <!-- jmh:begin --> and <!-- jmh:end -->: how
it was measured, the targets, a summary of ratios, a table and a chart per workload, latency
percentiles and syscall counts. Every figure comes from the run's files; nothing is typed in."""
import os
import re

from .charts import charts
from .parse import PCTS, PCT_LABELS, best_peer, is_segfit, load, index, ratio, unit_of
from .syscalls import MEMORY_SYSCALLS
from .targets import NETTY, NETTY_LEAK, evaluate, fmt_calls
from .text import LATENCY_SHAPES, SEGFIT_VARIANTS, SHAPES, fmt_num, fmt_size, label

BEGIN, END = "<!-- jmh:begin -->", "<!-- jmh:end -->"
NATIVE_BEGIN, NATIVE_END = "<!-- native-bench:begin -->", "<!-- native-bench:end -->"
# A Netty row's rivals in the summary are Netty's allocators at the same leak setting, as in its
# target rows.
NETTY_RIVALS = {"segfit": set(NETTY), "segfitLeakDefault": set(NETTY_LEAK)}


def rivals(shape, seg):
    """The peers a segfit row is divided by, None for all: a Netty row's are Netty's allocators
    at the same leak setting (as in its target check); a shared heap arena's is the JDK's
    shared arena, whose close is the same handshake with every thread."""
    if shape.startswith("Netty"):
        return NETTY_RIVALS.get(seg)
    if seg == "segfitSharedArena":
        return {"ffmSharedArena"}
    return None


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
            cells.append(fmt_num(rec["score"]) if rec else "–")
        rec0 = table[keys[0]].get(p)
        alloc = fmt_num(rec0["allocNorm"]) if rec0 and rec0["allocNorm"] is not None else "–"
        name = label(p)
        out.append("| %s | %s | %s |" % ("**%s**" % name if is_segfit(p) else name,
                                         " | ".join(cells), alloc))
    for seg in [p for p in order if is_segfit(p)]:
        cells = []
        for k in keys:
            b = best_peer(table[k], only=rivals(shape, seg))
            if seg in table[k] and b:
                cells.append("**%.2fx** (%s)" % (ratio(table[k][seg]["score"], b[0]), label(b[1])))
            else:
                cells.append("–")
        out.append("| %s ÷ best peer | %s | |" % (label(seg), " | ".join(cells)))
    return out


def latency_table(table, shape, what):
    keys = sorted([k for k in table if k[0] == shape], key=lambda k: k[1] or 0)
    out = []
    for key in keys:
        peers = table[key]
        out.append("")
        out.append("Round trip %s, ns (%s):" % (fmt_size(key[1]), what))
        out.append("")
        out.append("| peer | " + " | ".join(PCT_LABELS) + " | p99.9 pooled |")
        out.append("|---|" + "---:|" * (len(PCTS) + 1))
        for p in sorted(peers, key=lambda p: (not is_segfit(p), peers[p]["percentiles"].get("99.9", 0))):
            name = label(p)
            cells = [fmt_num(peers[p]["percentiles"].get(q)) for q in PCTS]
            cells.append(fmt_num(peers[p]["pooled"].get("99.9")))
            out.append("| %s | %s |" % ("**%s**" % name if is_segfit(p) else name, " | ".join(cells)))
    return out


def peer_versions():
    """The versions benchmarks/pom.xml pins (the jar that ran was built from it)."""
    pom = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "benchmarks", "pom.xml")
    try:
        text = open(pom).read()
    except OSError:
        return {}
    return dict(re.findall(r"<((?:netty|lwjgl|jmh)\.version)>([^<]+)</", text))


def report(bench_dir, doc):
    """Writes the JMH section of doc from the results in bench_dir, and its charts into
    bench_dir: (target checks met, target checks)."""
    tables = {}
    for jdk in ("17", "25"):
        res = load(os.path.join(bench_dir, "jmh-jdk%s.json" % jdk))
        if res:
            tables[jdk] = index(res)
    if not tables:
        raise SystemExit("bench-report: no JMH results in " + bench_dir)
    run = load(os.path.join(bench_dir, "run.json")) or {}
    sysc = load(os.path.join(bench_dir, "syscalls.json")) or {}
    rows = evaluate(tables, sysc)  # first: a missing result stops the report before it writes
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
    other = " (latency runs: `%s`)" % lat if lat != timing else ""
    inter = run.get("interleavedTiming")
    if inter:
        flags_i, _, passes_i = inter.partition(", ")
        other += "; InterleavedLatency `%s`%s per size" % (flags_i, ", " + passes_i if passes_i else "")
    flags, _, passes = timing.partition(", ")   # "<flags>, 3 passes": the passes said after
    L.append("- JMH options `%s -prof gc`%s%s; fork JVM flags on JDK 17 `%s`, on JDK 25 `%s` (for the peers: "
             "Netty and LWJGL use Unsafe and the private DirectByteBuffer constructor when allowed; "
             "segfit needs none of them)." % (
                 flags, ", " + passes if passes else "", other,
                 run.get("jvmArgs17", "?"), run.get("jvmArgs25", "?")))
    L.append("- Scores are the median of JMH's measurement iterations over all forks (JMH's mean and "
             "error are in the JSON; the charts' whiskers span the fastest to the slowest iteration); "
             "lower is better. B/op is Java heap allocation per operation from `-prof gc`. "
             "Ratios are segfit's score divided by the best peer's (for a Netty row, of Netty's allocators "
             "at the same leak setting; for a shared heap arena, the JDK's shared arena): below 1 "
             "means segfit is faster. "
             "Latency percentiles are, likewise, the median over the iterations of each iteration's "
             "percentile (JMH's pooled percentiles are in the JSON, and the pooled p99.9 is in the "
             "latency tables); the tail targets take them from InterleavedLatency, whose JSON has "
             "the same form (its iterations are slices of one run with every peer taking turns).")
    L.append("- Raw JMH JSON: [%s/jmh-jdk17.json](%s/jmh-jdk17.json), [%s/jmh-jdk25.json](%s/jmh-jdk25.json); "
             "syscall counts: [%s/syscalls.json](%s/syscalls.json)." % (rel, rel, rel, rel, rel, rel))
    L.append("")

    L.append("### Targets")
    L.append("")
    L.append("| target | JDK | measured | met |")
    L.append("|---|---|---|---|")
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
                    b = best_peer(peers, only=rivals(shape, seg))
                    if b:
                        L.append("| %s | %s | %s | %s %s | %s (%s) | **%.2fx** |" % (
                            shape if seg == "segfit" else "%s (%s)" % (shape, SEGFIT_VARIANTS.get(seg, label(seg))),
                            fmt_size(key[1]), jdk,
                            fmt_num(peers[seg]["score"]), peers[seg]["unit"], label(b[1]),
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
    for shape, what in LATENCY_SHAPES:
        for jdk, t in sorted(tables.items()):
            lt = latency_table(t, shape, what)
            if lt:
                L.append("")
                L.append("JDK %s, %s:" % (jdk, shape))
                L.extend(lt)
                if (shape, jdk) in made:
                    L.append("")
                    L.append("![%s, JDK %s](%s/%s)" % (shape, jdk, rel, made[(shape, jdk)]))
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
    return met, len(rows)


def summary(path):
    """Prints segfit against each peer, workload by workload, from one JMH JSON file."""
    table = index(load(path))
    rows = []
    for (shape, size), peers in sorted(table.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        seg = peers.get("segfit")
        if seg is None:
            continue
        others = sorted((p for p in peers if not is_segfit(p)), key=lambda p: peers[p]["score"])
        for p in others:
            rows.append((shape, fmt_size(size), label(p), peers[p]["score"], seg["score"],
                         ratio(seg["score"], peers[p]["score"])))
    print()
    print("%-17s %-7s %-32s %10s %10s %8s" % ("workload", "size", "peer", "peer ns", "segfit ns",
                                             "segfit/peer"))
    for r in rows:
        print("%-17s %-7s %-32s %10.1f %10.1f %8.2fx" % r)
    print("\n(ratio < 1: segfit is faster; JMH JSON: %s)" % path)
