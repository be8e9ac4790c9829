/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — the operating system saying no, on a schedule: fault injection for test builds.
 *
 * Only builds configured with SEGFIT_FAULTS (CMake: the segfit_faults_* targets and
 * libsegfit-faults.so) compile faults.c and the hooks in os.c; the release library has neither.
 * Each of os.c's calls to mmap, munmap, mremap, madvise and membarrier first asks _sf_fault()
 * whether to fail; a failed call sets errno to ENOMEM (what the kernel says when a mapping would
 * pass RLIMIT_AS, or a munmap/mremap would have to split a mapping beyond vm.max_map_count).
 * A plan fails every Nth call of an operation, or each call with a seeded probability, until
 * it is replaced or a stop file appears. Configured by _sf_fault_plan() or, at process start,
 * by the SEGFIT_FAULTS environment variable (syntax at _sf_fault_parse).
 */
#ifndef SF_FAULTS_H
#define SF_FAULTS_H

#include <stdbool.h>
#include <stdint.h>

#define SF_FAULT_OPS(X) X(MMAP, "mmap") X(MUNMAP, "munmap") X(MREMAP, "mremap") \
  X(MADVISE, "madvise") X(MEMBARRIER, "membarrier")
#define SF_FAULT_ENUM_(name, text) SF_FAULT_##name,
enum { SF_FAULT_OPS(SF_FAULT_ENUM_) SF_FAULT_COUNT };
#undef SF_FAULT_ENUM_

typedef struct sf_fault_plan_s {
  uint32_t every[SF_FAULT_COUNT];        /* fail calls N, 2N, 3N... of the operation; 0: none */
  uint32_t per_million[SF_FAULT_COUNT];  /* else fail each call with this probability */
  uint64_t seed;                         /* of the probabilistic schedule */
  char stop[256];                        /* once this file exists, inject no more ("": never) */
} sf_fault_plan_t;

/* Installs a plan (counters restart at zero); NULL stops injecting. Not while os.c calls run
   on other threads if the schedule must be exactly reproducible; safe either way. */
void _sf_fault_plan(const sf_fault_plan_t *plan);
/* Parses "op=every:N", "op=rate:P" (P a probability, 0..1), "seed=S" and "stop=PATH", separated
   by commas; op is one of mmap, munmap, mremap, madvise, membarrier or all. 0 or -1. */
int _sf_fault_parse(const char *spec, sf_fault_plan_t *plan);
/* os.c: whether this call of `op` fails. Counts the call (and the fault). */
bool _sf_fault(unsigned op);
/* Calls seen and faults injected per operation since the plan was installed. */
void _sf_fault_counts(uint64_t calls[SF_FAULT_COUNT], uint64_t faults[SF_FAULT_COUNT]);
/* Faults injected on the calling thread, ever: a test brackets a call with it to tell an
   injected refusal from any other. */
uint64_t _sf_fault_thread_faults(void);
const char *_sf_fault_name(unsigned op);
/* os.c, at process init: installs the plan of SEGFIT_FAULTS if set (and reports the figures on
   stderr at exit). */
void _sf_fault_init_env(void);

#endif /* SF_FAULTS_H */
