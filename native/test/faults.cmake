# SPDX-License-Identifier: Apache-2.0
# The operating system's failures (label faults). The real limits first: vm.max_map_count
# reached by half-freed large blocks (max-map-count; not under qemu-user, whose own mappings
# differ). Then the fault tests (faults-*): the drivers again, built on the fault-injecting core
# (SEGFIT_FAULTS: os.c's mmap, munmap, mremap, madvise and membarrier fail on a schedule), each
# under a plan in SEGFIT_TEST_FAULTS (syntax in native/src/faults.h): every Nth call of each
# operation, and a seeded random one. The drivers retry what the OS refused (testhelper.h), stop
# the faults before their leak checks, and print the figures.
if(NOT CMAKE_CROSSCOMPILING)
  segfit_test_program(test-maps test-maps.c)
  segfit_test(max-map-count LABELS faults COMMAND test-maps)
endif()

if(NOT SEGFIT_FAULTS)
  return()
endif()

segfit_test_program(test-threads-faults test-threads.c segfit_faults_static)
segfit_test_program(fuzz-diff-faults fuzz-diff.c segfit_faults_static)
segfit_test_program(test-faults test-faults.c segfit_faults_static)

# Every Nth call: N prime and different per operation, so failures meet every path in turn.
set(SEGFIT_FAULTS_EVERY
  "SEGFIT_TEST_FAULTS=mmap=every:5,munmap=every:3,mremap=every:4,madvise=every:3,membarrier=every:2")
set(SEGFIT_FAULTS_RANDOM "SEGFIT_TEST_FAULTS=all=rate:0.15,seed=20261121")

# Each refusal on its own, the realloc driver under faults, RLIMIT_AS in forked children.
segfit_test(faults-paths LABELS faults COMMAND test-faults)
segfit_test(faults-threads-stress-every LABELS faults stress COMMAND test-threads-faults stress
  ENVIRONMENT ${SEGFIT_FAULTS_EVERY})
segfit_test(faults-threads-stress-random LABELS faults stress COMMAND test-threads-faults stress
  ENVIRONMENT ${SEGFIT_FAULTS_RANDOM})
segfit_test(faults-threads-churn LABELS faults stress COMMAND test-threads-faults churn
  ENVIRONMENT ${SEGFIT_FAULTS_EVERY})
segfit_test(faults-fuzz-every LABELS faults COMMAND fuzz-diff-faults --random 7 200
  ENVIRONMENT ${SEGFIT_FAULTS_EVERY})
segfit_test(faults-fuzz-random LABELS faults COMMAND fuzz-diff-faults --random 11 200
  ENVIRONMENT ${SEGFIT_FAULTS_RANDOM})
