#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Draws MemoryReturn's CSV as a PNG, a panel per allocator: RSS over time (solid), what the
allocator counts as its own (dotted), a dashed line where each burst is freed. Usage: rss-chart.py <csv> <png>"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    runs = {}
    with open(src, newline="") as f:
        for row in csv.DictReader(f):
            runs.setdefault(row["allocator"], []).append(row)
    if not runs:
        sys.exit(f"{src}: no samples")
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 4), sharey=True, squeeze=False)
    for ax, (name, rows) in zip(axes[0], runs.items()):
        t = [float(r["seconds"]) for r in rows]
        ax.plot(t, [float(r["rss_mib"]) for r in rows], color="C0", label="RSS")
        ax.plot(t, [float(r["own_mib"]) for r in rows], color="C1", linestyle=":",
                label="the allocator's own count")
        # a dashed line where each burst's frees begin
        for k, r in enumerate(rows):
            if r["phase"].startswith("freeing") and (k == 0 or rows[k - 1]["phase"] != r["phase"]):
                ax.axvline(t[k], color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(name)
        ax.set_xlabel("seconds (dashed: a burst is freed)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("MiB above the JVM's RSS at start")
    axes[0][0].legend(loc="center right", fontsize="small")
    fig.suptitle("Memory back to the OS after bursts of buffers")
    fig.tight_layout()
    fig.savefig(dst, dpi=100)

if __name__ == "__main__":
    main(*sys.argv[1:])
