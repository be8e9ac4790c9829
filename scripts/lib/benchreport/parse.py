# SPDX-License-Identifier: Apache-2.0
"""Reading JMH's JSON output: one record per (workload, size, peer), scored by the median of the
measurement iterations. Names: a benchmark io.segfit.bench[.ffm].<Shape>[Ffm].<peer> is the
workload <Shape> for allocator <peer>; the FFM classes (JDK 22+) add peers to the same workloads.
Peers whose name starts with "segfit" are segfit; all others are the peers it is compared with."""
import json
import os

PCTS = ["50.0", "90.0", "99.0", "99.9", "99.99"]
PCT_LABELS = ["p50", "p90", "p99", "p99.9", "p99.99"]


def load(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        text = f.read().strip()
    return json.loads(text) if text else []


def combine(results):
    """JMH results with the runs of one benchmark (the same benchmark, mode and parameters) made
    one: their forks side by side, as if one run had made them all. scripts/bench runs noisy
    groups in passes, each pass one fork of every benchmark of the group, so that a slow stretch
    of the machine falls on every peer of a row alike; this puts the passes back together. The
    score becomes the mean of all iterations, JMH's error (which a merged run does not have)
    NaN, and each secondary metric's score the mean of the runs'. Order: first appearance."""
    merged, order = {}, []
    for r in results:
        key = (r["benchmark"], r.get("mode"), json.dumps(r.get("params") or {}, sort_keys=True))
        if key not in merged:
            merged[key] = json.loads(json.dumps(r))   # a copy: the inputs stay as they were
            merged[key]["_runs"] = [r]
            order.append(key)
        else:
            merged[key]["_runs"].append(r)
    out = []
    for key in order:
        m = merged[key]
        runs = m.pop("_runs")
        if len(runs) > 1:
            pm = m["primaryMetric"]
            for field in ("rawData", "rawDataHistogram"):
                if field in pm:
                    pm[field] = [fork for r in runs for fork in r["primaryMetric"].get(field) or []]
            iters = [x for fork in pm.get("rawData") or [] for x in fork]
            if iters:
                pm["score"] = sum(iters) / len(iters)
            pm["scoreError"] = "NaN"
            pm.pop("scoreConfidence", None)
            m["forks"] = sum(r.get("forks", 1) for r in runs)
            for name, sec in (m.get("secondaryMetrics") or {}).items():
                scores = [r["secondaryMetrics"][name]["score"] for r in runs
                          if name in (r.get("secondaryMetrics") or {})]
                scores = [x for x in scores if isinstance(x, (int, float))]
                if scores:
                    sec["score"] = sum(scores) / len(scores)
                sec["scoreError"] = "NaN"
                sec.pop("rawData", None)
        out.append(m)
    return out


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


def ratio(a, b):
    return a / b if b else float("inf")


def unit_of(peers):
    for rec in peers.values():
        return rec["unit"]
    return ""
