// SPDX-License-Identifier: Apache-2.0
/**
 * segfit for JDK 22+ users of the Foreign Function and Memory API: {@code Arena}s backed by a
 * segfit heap, and the heap's block operations over bounds-checked {@code MemorySegment}s. Makes
 * segments from addresses ({@code MemorySegment.reinterpret}, a restricted method): run with
 * {@code --enable-native-access=io.segfit,io.segfit.ffm}.
 */
module io.segfit.ffm {
  requires transitive io.segfit;

  exports io.segfit.ffm;
}
