#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Draws a soak CSV (scripts/soak) as a PNG: RSS, committed and live bytes over time, with the
running count of operations on a second axis. Usage: soak-plot.py <csv> <png>"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    cols = {}
    with open(src, newline="") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                cols.setdefault(k, []).append(float(v))
    if not cols:
        sys.exit(f"{src}: no samples")
    t = cols["seconds"]
    mib = lambda k: [v / 2**20 for v in cols[k]]  # noqa: E731
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.plot(t, mib("rss_bytes"), label="RSS (VmRSS)")
    ax.plot(t, mib("committed_bytes"), label="segfit committed")
    ax.plot(t, mib("live_bytes"), label="segfit live")
    ax.set_xlabel("seconds")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ops = ax.twinx()
    ops.plot(t, [v / 1e6 for v in cols["ops"]], color="grey", linestyle=":", label="operations")
    ops.set_ylabel("operations (millions)")
    ops.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    more = ops.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left")
    errors = int(cols["checksum_errors"][-1])
    ax.set_title(f"segfit soak: {len(t)} samples, {errors} checksum errors")
    fig.tight_layout()
    fig.savefig(dst, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: soak-plot.py <csv> <png>")
    main(sys.argv[1], sys.argv[2])
