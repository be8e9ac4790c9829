# SPDX-License-Identifier: Apache-2.0
"""Putting the passes of one benchmark back together (combine): forks side by side, the
median over all of them as the score, the other results untouched.
Run: python3 -m unittest discover -s scripts/lib -t scripts/lib"""
import unittest

from .parse import combine, parse


def run(peer, size, forks, norm):
    return {"benchmark": "io.segfit.bench.NettyRoundTrip." + peer, "mode": "avgt", "forks": len(forks),
            "params": {"size": str(size)},
            "primaryMetric": {"score": sum(map(sum, forks)) / sum(map(len, forks)), "scoreError": 1.0,
                              "scoreUnit": "ns/op", "rawData": forks},
            "secondaryMetrics": {"gc.alloc.rate.norm": {"score": norm, "scoreError": 0.0,
                                                        "scoreUnit": "B/op", "rawData": [[norm]]}}}


class CombineTest(unittest.TestCase):
    def test_passes_of_one_benchmark_become_one_run(self):
        passes = [run("segfit", 64, [[10.0, 12.0]], 64.0), run("nettyPooled", 64, [[50.0]], 0.0),
                  run("segfit", 64, [[30.0, 31.0]], 64.0), run("segfit", 1024, [[20.0]], 64.0),
                  run("segfit", 64, [[11.0, 13.0]], 62.0)]
        out = combine(passes)
        self.assertEqual([(r["benchmark"].split(".")[-1], r["params"]["size"]) for r in out],
                         [("segfit", "64"), ("nettyPooled", "64"), ("segfit", "1024")])
        seg = out[0]
        self.assertEqual(seg["primaryMetric"]["rawData"], [[10.0, 12.0], [30.0, 31.0], [11.0, 13.0]])
        self.assertEqual(seg["forks"], 3)
        self.assertAlmostEqual(seg["primaryMetric"]["score"], 107.0 / 6)
        self.assertEqual(seg["primaryMetric"]["scoreError"], "NaN")
        self.assertAlmostEqual(seg["secondaryMetrics"]["gc.alloc.rate.norm"]["score"], 190.0 / 3)
        # The report scores the median of every iteration of every pass.
        self.assertEqual(parse(seg)[3]["score"], 12.5)
        self.assertEqual(out[1], passes[1])
        self.assertEqual(passes[0]["primaryMetric"]["rawData"], [[10.0, 12.0]], "inputs unchanged")

    def test_histograms_of_sampled_runs_are_kept_per_fork(self):
        a, b = run("segfit", 64, [[1.0]], 0.0), run("segfit", 64, [[2.0]], 0.0)
        a["primaryMetric"]["rawDataHistogram"] = [[[[10.0, 5]]]]
        b["primaryMetric"]["rawDataHistogram"] = [[[[20.0, 5]]]]
        out = combine([a, b])
        self.assertEqual(out[0]["primaryMetric"]["rawDataHistogram"], [[[[10.0, 5]]], [[[20.0, 5]]]])


if __name__ == "__main__":
    unittest.main()
