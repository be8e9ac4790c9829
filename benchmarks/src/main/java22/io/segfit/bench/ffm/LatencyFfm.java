// SPDX-License-Identifier: Apache-2.0
/* Latency (SampleTime) of the FFM buffer round trips; see io.segfit.bench.Latency. */
package io.segfit.bench.ffm;

import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;

@BenchmarkMode(Mode.SampleTime)
public class LatencyFfm extends RoundTripBufferFfm {}
