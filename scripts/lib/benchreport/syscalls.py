# SPDX-License-Identifier: Apache-2.0
"""Reducing the strace output of SyscallProbe runs (scripts/bench) to counts: whole-process
totals of `strace -f -c`, and the calls made between the probe's markers, by thread."""
import glob
import os
import re

MEMORY_SYSCALLS = {"mmap", "munmap", "mremap", "madvise", "brk", "mprotect", "mlock", "munlock"}


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


def reduce(directory):
    """{jdk: {path: counts}} from the strace files of directory."""
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
    return result
