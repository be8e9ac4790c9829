/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — a test's view of its own process: whether a sanitizer runtime is in it (then the
 * address space and the mappings are not the allocator's alone: sanitizers reserve terabytes
 * and map memory of their own at any time), how many mappings it has (/proc/self/maps) and
 * how much address space (VmSize). Public API only; any test may include it.
 */
#ifndef SEGFIT_PROCINFO_H
#define SEGFIT_PROCINFO_H

#include <stddef.h>
#include <stdio.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Mappings of the process (lines of /proc/self/maps), -1 if unreadable. */
static inline long procinfo_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL) return -1;
  long n = 0;
  int c;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

/* Address space of the process in bytes (VmSize), 0 if unreadable. */
static inline size_t procinfo_vm_size(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t kib = 0;
  while (f != NULL && fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %zu kB", &kib) == 1) break;
  if (f != NULL) fclose(f);
  return kib * 1024;
}

#endif /* SEGFIT_PROCINFO_H */
