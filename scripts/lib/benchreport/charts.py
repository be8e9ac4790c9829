# SPDX-License-Identifier: Apache-2.0
"""The report's charts: a bar chart per workload and JDK (whiskers from the fastest to the slowest
iteration), and the latency percentiles per latency workload and JDK. Needs matplotlib (Debian's
python3-matplotlib)."""
import os

from .parse import PCTS, PCT_LABELS, is_segfit, unit_of
from .text import LATENCY_SHAPES, SHAPES, fmt_num, fmt_size, label


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
                ax.set_yticklabels([label(p) for p in order] if ax is axes[0][0]
                                   else [label(p) for p in order], fontsize=7)
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
        for shape, _ in LATENCY_SHAPES:
            keys = sorted([k for k in table if k[0] == shape], key=lambda k: k[1] or 0)
            if not keys:
                continue
            fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.2), squeeze=False)
            for ax, key in zip(axes[0], keys):
                peers = table[key]
                tab10 = plt.get_cmap("tab10").colors
                palette = iter([c for i, c in enumerate(tab10) if i != 3] * 3)  # red is segfit's
                for p in sorted(peers, key=lambda p: (not is_segfit(p), p)):
                    pct = peers[p]["percentiles"]
                    ys = [pct.get(q) for q in PCTS]
                    ax.plot(range(len(PCTS)), ys, marker="o", label=label(p),
                            linewidth=2.5 if is_segfit(p) else 1,
                            color="#d62728" if is_segfit(p) else next(palette),
                            linestyle="-" if is_segfit(p) or len(ax.lines) < 9 else "--")
                ax.set_xticks(range(len(PCTS)))
                ax.set_xticklabels(PCT_LABELS)
                ax.set_yscale("log")
                ax.yaxis.set_minor_formatter(NullFormatter())
                ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: fmt_num(y)))
                ax.set_ylabel("ns per round trip (log)")
                ax.set_title("%s, round trip %s, JDK %s" % (shape, fmt_size(key[1]), jdk),
                             fontsize=9)
                ax.legend(fontsize=6)
                ax.grid(True, which="both", alpha=0.3)
            fig.tight_layout()
            name = "%s-jdk%s.png" % (shape, jdk)
            fig.savefig(os.path.join(bench_dir, name), dpi=90)
            plt.close(fig)
            made[(shape, jdk)] = name
    return made
