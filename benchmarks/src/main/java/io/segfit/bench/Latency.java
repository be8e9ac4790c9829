// SPDX-License-Identifier: Apache-2.0
/*
 * Latency of the buffer round trip: the RoundTripBuffer bodies in SampleTime mode, so JMH
 * reports percentiles (p50 ... p99.99) of single calls. Samples include the timer's own cost
 * (a System.nanoTime pair, about 20-25 ns here), the same for every peer.
 */
package io.segfit.bench;

import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;

@BenchmarkMode(Mode.SampleTime)
public class Latency extends RoundTripBuffer {}
