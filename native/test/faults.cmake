# SPDX-License-Identifier: Apache-2.0
# The operating system's failures (issue 12). The real limits first: vm.max_map_count reached
# by half-freed large blocks (sys-max-map-count; not under qemu-user, whose own mappings differ).
# Then the fault tests (fault-*): the drivers again, built on the fault-injecting core
# (SEGFIT_FAULTS: os.c's mmap, munmap, mremap, madvise and membarrier fail on a schedule), each
# under a plan in SEGFIT_TEST_FAULTS (syntax in native/src/faults.h): every Nth call of each
# operation, and a seeded random one. The drivers retry what the OS refused (faulttest.h), stop
# the faults before their leak checks, and print the figures.
if(NOT CMAKE_CROSSCOMPILING)
  add_executable(test-maps test-maps.c)
  target_link_libraries(test-maps PRIVATE segfit_static)
  target_compile_options(test-maps PRIVATE ${SEGFIT_WARNINGS})
  add_test(NAME sys-max-map-count COMMAND test-maps)
  set_tests_properties(sys-max-map-count PROPERTIES TIMEOUT 300)
endif()

if(NOT SEGFIT_FAULTS)
  return()
endif()

foreach(driver test-stress test-churn fuzz-diff)
  add_executable(${driver}-faults ${driver}.c)
  target_link_libraries(${driver}-faults PRIVATE segfit_faults_static)
  target_compile_options(${driver}-faults PRIVATE ${SEGFIT_WARNINGS})
endforeach()
add_executable(test-faults test-faults.c)
target_link_libraries(test-faults PRIVATE segfit_faults_static)
target_compile_options(test-faults PRIVATE ${SEGFIT_WARNINGS})

# Every Nth call: N prime and different per operation, so failures meet every path in turn.
set(SEGFIT_FAULTS_EVERY
  "mmap=every:5,munmap=every:3,mremap=every:4,madvise=every:3,membarrier=every:2")
set(SEGFIT_FAULTS_RANDOM "all=rate:0.15,seed=20261121")

# Each refusal on its own, the realloc driver under faults, RLIMIT_AS in forked children.
add_test(NAME fault-paths COMMAND test-faults)
set_tests_properties(fault-paths PROPERTIES TIMEOUT 300 ENVIRONMENT "${SEGFIT_CORE_ENV}")
add_test(NAME fault-stress-every COMMAND test-stress-faults)
add_test(NAME fault-stress-random COMMAND test-stress-faults)
add_test(NAME fault-churn COMMAND test-churn-faults)
add_test(NAME fault-fuzz-every COMMAND fuzz-diff-faults --random 7 200)
add_test(NAME fault-fuzz-random COMMAND fuzz-diff-faults --random 11 200)
set_tests_properties(fault-stress-every PROPERTIES TIMEOUT 300
  ENVIRONMENT "${SEGFIT_CORE_ENV};SEGFIT_TEST_FAULTS=${SEGFIT_FAULTS_EVERY}")
set_tests_properties(fault-stress-random PROPERTIES TIMEOUT 300
  ENVIRONMENT "${SEGFIT_CORE_ENV};SEGFIT_TEST_FAULTS=${SEGFIT_FAULTS_RANDOM}")
set_tests_properties(fault-churn PROPERTIES TIMEOUT 300
  ENVIRONMENT "${SEGFIT_SYS_ENV};SEGFIT_TEST_FAULTS=${SEGFIT_FAULTS_EVERY}")
set_tests_properties(fault-fuzz-every PROPERTIES TIMEOUT 300
  ENVIRONMENT "${SEGFIT_SYS_ENV};SEGFIT_TEST_FAULTS=${SEGFIT_FAULTS_EVERY}")
set_tests_properties(fault-fuzz-random PROPERTIES TIMEOUT 300
  ENVIRONMENT "${SEGFIT_SYS_ENV};SEGFIT_TEST_FAULTS=${SEGFIT_FAULTS_RANDOM}")
