# SPDX-License-Identifier: Apache-2.0
"""The target checks against the results committed in docs/bench (no benchmark is run):
every row finds its results, a JDK that does not measure a peer on purpose skips the rows that
need it, and a missing workload, size or peer stops the report with the row's name.
Run: python3 -m unittest discover -s scripts/lib -t scripts/lib"""
import copy
import os
import unittest

from .parse import index, load
from .targets import TARGETS, MissingResult, evaluate

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "docs", "bench")


def committed():
    return {jdk: index(load(os.path.join(BENCH, "jmh-jdk%s.json" % jdk))) for jdk in ("17", "25")}


class TargetsTest(unittest.TestCase):
    def setUp(self):
        self.tables = committed()
        self.assertTrue(all(self.tables.values()), "no JMH results in " + BENCH)

    def test_every_row_is_checked_on_every_jdk_that_measures_it(self):
        rows = evaluate(self.tables, {})
        by_jdk = {jdk: [r for r in rows if r[1] == jdk] for jdk in ("17", "25")}
        names17 = {r[0] for r in by_jdk["17"]}
        # FFM peers run on JDK 25 only: their rows are there, and only there.
        self.assertIn("DirectByteBuffer round trip 64 B ≤ 0.7x FFM confined arena", {r[0] for r in by_jdk["25"]})
        self.assertNotIn("DirectByteBuffer round trip 64 B ≤ 0.7x FFM confined arena", names17)
        self.assertFalse(any(n.startswith("arena per") for n in names17))
        sizes = sum(len(t.sizes) for t in TARGETS)
        self.assertEqual(len(by_jdk["25"]), sizes)
        self.assertEqual(len(by_jdk["17"]), sizes - 2 * 3)  # the FFM round trip and two arena rows
        # no syscalls.json: one failed row says so
        self.assertEqual([r for r in rows if r[1] == "–"][0][3], False)

    def test_a_missing_peer_names_the_row(self):
        del self.tables["17"][("RoundTripBuffer", 1024)]["lwjglRpmalloc"]
        with self.assertRaises(MissingResult) as e:
            evaluate(self.tables, {})
        self.assertIn("'DirectByteBuffer round trip 1 KiB ≤ 1.0x LWJGL's fastest'", str(e.exception))
        self.assertIn("lwjglRpmalloc (JDK 17", str(e.exception))

    def test_a_missing_segfit_benchmark_names_the_row(self):
        del self.tables["25"][("NettyTwoThreads", 64)]["segfitLeakDefault"]
        with self.assertRaises(MissingResult) as e:
            evaluate(self.tables, {})
        self.assertIn("NettyTwoThreads 64 B, segfit (SegfitByteBufAllocator)", str(e.exception))

    def test_a_missing_workload_or_size_names_the_row(self):
        for key in (("NettyGrowth", None), ("InterleavedLatency", 64)):
            tables = copy.deepcopy(self.tables)
            del tables["25"][key]
            with self.assertRaises(MissingResult) as e:
                evaluate(tables, {})
            self.assertIn("workload " + key[0], str(e.exception))

    def test_a_missing_percentile_names_the_row(self):
        del self.tables["17"][("InterleavedLatency", 1024)]["segfit"]["percentiles"]["99.9"]
        with self.assertRaises(MissingResult) as e:
            evaluate(self.tables, {})
        self.assertIn("'p99.9 of round trip 1 KiB ≤ best peer'", str(e.exception))


if __name__ == "__main__":
    unittest.main()
