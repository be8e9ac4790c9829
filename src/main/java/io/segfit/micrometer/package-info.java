// SPDX-License-Identifier: Apache-2.0
/**
 * Micrometer meters for segfit's heaps: {@link io.segfit.micrometer.SegfitMetrics}. Micrometer
 * is an optional dependency of segfit: this package needs {@code io.micrometer:micrometer-core}
 * on the class path or module path; nothing else in segfit touches it.
 */
package io.segfit.micrometer;
