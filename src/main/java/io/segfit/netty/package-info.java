// SPDX-License-Identifier: Apache-2.0
/**
 * Netty integration: {@link io.segfit.netty.SegfitByteBufAllocator}, a Netty 4.2
 * {@code ByteBufAllocator} whose direct buffers are blocks of a segfit heap. Netty
 * ({@code io.netty:netty-buffer}) is an optional dependency of segfit: this package needs it on
 * the class or module path, the rest of segfit does not.
 */
package io.segfit.netty;
