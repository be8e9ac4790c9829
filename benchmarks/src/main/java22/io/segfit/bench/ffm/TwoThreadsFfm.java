// SPDX-License-Identifier: Apache-2.0
/* The FFM buffer round trips on two threads at once; see io.segfit.bench.TwoThreads. */
package io.segfit.bench.ffm;

import org.openjdk.jmh.annotations.Threads;

@Threads(2)
public class TwoThreadsFfm extends RoundTripBufferFfm {}
