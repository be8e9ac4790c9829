// SPDX-License-Identifier: Apache-2.0
/**
 * Internals of segfit, not exported: the native methods and their loader, the error mapping,
 * the region buffers behind every ByteBuffer, leak detection, JMX registration, JFR glue (the
 * event classes are in {@code io.segfit.internal.jfr}, the one package exported, to
 * {@code jdk.jfr} only) and the system properties. Nothing here is API.
 */
package io.segfit.internal;
