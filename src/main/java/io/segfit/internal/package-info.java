// SPDX-License-Identifier: Apache-2.0
/**
 * Internals of segfit, not exported: the native methods and their loader, the error mapping,
 * the region buffers behind every ByteBuffer, leak detection, JFR events and the system
 * properties. Nothing here is API.
 */
package io.segfit.internal;
