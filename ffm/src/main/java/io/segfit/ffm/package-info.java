// SPDX-License-Identifier: Apache-2.0
/**
 * segfit through the Foreign Function and Memory API (JDK 22+): {@link io.segfit.ffm.HeapArena}
 * makes a {@link java.lang.foreign.Arena} over a {@link io.segfit.Heap}, whose segments throw
 * instead of faulting once the arena is closed; {@link io.segfit.ffm.HeapSegments} hands out
 * bounds-checked segments without an arena.
 */
package io.segfit.ffm;
