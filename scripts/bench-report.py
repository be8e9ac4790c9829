#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turns the output of scripts/bench into docs: JMH JSON -> ratio tables, charts, target checks.

Subcommands (scripts/bench calls all of them; each can be rerun by hand on saved output):
  merge OUT.json IN.json...        concatenate JMH JSON result files; several runs of one
                                   benchmark (scripts/bench's passes) become one, their forks
                                   side by side
  summary JMH.json                 print a small segfit-versus-peers ratio table (scripts/bench --demo)
  syscalls OUT.json DIR            reduce the strace output of SyscallProbe runs to counts
  report --bench DIR --doc FILE    fill FILE between <!-- jmh:begin --> and <!-- jmh:end --> from
                                   DIR/jmh-jdk17.json, jmh-jdk25.json, syscalls.json, run.json,
                                   and draw DIR/*.png; fails, writing nothing, when a target of
                                   scripts/lib/benchreport/targets.py lacks a result

Every figure written comes from those files; nothing is typed in. The parts live in
scripts/lib/benchreport/: parse (JMH output), syscalls (strace output), targets (the targets, as
a table), text (labels and number formats), render (the Markdown section), charts.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from benchreport import render, syscalls  # noqa: E402
from benchreport.parse import combine, load  # noqa: E402
from benchreport.targets import MissingResult  # noqa: E402


def cmd_merge(out, inputs):
    merged = []
    for p in inputs:
        merged.extend(load(p))
    merged = combine(merged)
    with open(out, "w") as f:  # one result per line: small, and diffs stay readable
        f.write("[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in merged) + "\n]\n")


def cmd_syscalls(out, directory):
    with open(out, "w") as f:
        json.dump(syscalls.reduce(directory), f, indent=2)


def cmd_report(bench_dir, doc):
    try:
        met, total = render.report(bench_dir, doc)
    except MissingResult as e:
        raise SystemExit("bench-report: %s; %s left as it was" % (e, doc))
    print("bench-report: %s updated (%d of %d target checks met)" % (doc, met, total))


def main(argv):
    if len(argv) >= 2 and argv[0] == "merge":
        cmd_merge(argv[1], argv[2:])
    elif len(argv) == 2 and argv[0] == "summary":
        render.summary(argv[1])
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
