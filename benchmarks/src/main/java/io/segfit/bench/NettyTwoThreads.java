// SPDX-License-Identifier: Apache-2.0
/*
 * The Netty ByteBuf round trip on two threads at once, both on the same allocator (segfit's
 * default heap behind SegfitByteBufAllocator, one Netty pooled or adaptive allocator).
 */
package io.segfit.bench;

import org.openjdk.jmh.annotations.Threads;

@Threads(2)
public class NettyTwoThreads extends NettyRoundTrip {}
