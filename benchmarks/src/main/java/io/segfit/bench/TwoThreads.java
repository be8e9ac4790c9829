// SPDX-License-Identifier: Apache-2.0
/*
 * The buffer round trip on two threads at once, each allocating and freeing its own buffers
 * from the same allocator (segfit's default heap, one Netty allocator, ...): what contention and
 * per-thread caches cost when both cores are busy.
 */
package io.segfit.bench;

import org.openjdk.jmh.annotations.Threads;

@Threads(2)
public class TwoThreads extends RoundTripBuffer {}
