# SPDX-License-Identifier: Apache-2.0
# System tests (issue 3): memory returns, thread churn, free-only threads, the differential fuzz
# driver, and the LD_PRELOAD malloc shim (sys-shim, sys-preload-programs, sys-preload-jvm), also
# dlopen()ed (sys-tls-static, sys-tls-dynamic).
# Test names start with "sys-". SEGFIT_TEST_SCALE shrinks the workloads under qemu and the
# sanitizers.
set(SEGFIT_SYS_ENV "")
if(CMAKE_CROSSCOMPILING)
  set(SEGFIT_SYS_ENV "SEGFIT_TEST_SCALE=0.1;SEGFIT_TEST_SLACK_MS=3000;SEGFIT_TEST_RSS=0")
  if(SEGFIT_QEMU_PAGE_SIZE)
    # qemu -p passes the host's statm through (4 KiB units) while sysconf says 64 KiB: watch
    # the heap's committed bytes instead of RSS.
    list(APPEND SEGFIT_SYS_ENV "SEGFIT_TEST_PURGE_BY_STATS=1")
  endif()
elseif(SEGFIT_SANITIZE STREQUAL "address")
  # ASan's malloc quarantine holds the libc memory of exited threads (pthread stacks' TLS and
  # the like), which the RSS checks would count against segfit; segfit's own memory is mmap'ed
  # and not quarantined either way.
  set(SEGFIT_SYS_ENV "SEGFIT_TEST_SCALE=0.25;SEGFIT_TEST_SLACK_MS=1500"
      "ASAN_OPTIONS=quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
elseif(NOT SEGFIT_SANITIZE STREQUAL "")
  set(SEGFIT_SYS_ENV "SEGFIT_TEST_SCALE=0.25;SEGFIT_TEST_SLACK_MS=1500")
endif()

foreach(name purge churn free-only)
  add_executable(test-${name} test-${name}.c)
  target_link_libraries(test-${name} PRIVATE segfit_static)
  target_compile_options(test-${name} PRIVATE ${SEGFIT_WARNINGS})
  add_test(NAME sys-${name} COMMAND test-${name})
  set_tests_properties(sys-${name} PROPERTIES TIMEOUT 300 ENVIRONMENT "${SEGFIT_SYS_ENV}")
endforeach()
# sys-purge measures RSS against a deadline: never alongside the other tests.
set_tests_properties(sys-purge PROPERTIES RUN_SERIAL TRUE)

# The differential fuzz target as a plain program: replays the corpus (seeds and every crash
# scripts/fuzz found) and runs seeded random inputs.
add_executable(fuzz-diff fuzz-diff.c)
target_link_libraries(fuzz-diff PRIVATE segfit_static)
target_compile_options(fuzz-diff PRIVATE ${SEGFIT_WARNINGS})
add_test(NAME sys-fuzz-replay COMMAND fuzz-diff ${CMAKE_CURRENT_SOURCE_DIR}/corpus)
add_test(NAME sys-fuzz-random COMMAND fuzz-diff --random 20261121 2000)
set_tests_properties(sys-fuzz-replay sys-fuzz-random PROPERTIES TIMEOUT 300 ENVIRONMENT "${SEGFIT_SYS_ENV}")

# The libFuzzer target (scripts/fuzz): needs clang. The core is compiled into it so that
# libFuzzer sees coverage of the allocator, not only of the driver.
if(SEGFIT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SEGFIT_FUZZ needs clang: configure with -DCMAKE_C_COMPILER=clang-14")
  endif()
  list(TRANSFORM SEGFIT_CORE_SOURCES PREPEND "${PROJECT_SOURCE_DIR}/" OUTPUT_VARIABLE SEGFIT_FUZZ_CORE)
  add_executable(fuzz-diff-libfuzzer fuzz-diff.c ${SEGFIT_FUZZ_CORE})
  target_include_directories(fuzz-diff-libfuzzer PRIVATE ${PROJECT_SOURCE_DIR}/native/include
    ${PROJECT_SOURCE_DIR}/native/src)
  target_compile_definitions(fuzz-diff-libfuzzer PRIVATE SEGFIT_LIBFUZZER _GNU_SOURCE)
  target_compile_options(fuzz-diff-libfuzzer PRIVATE -fsanitize=fuzzer ${SEGFIT_TLS_FLAGS})
  target_link_options(fuzz-diff-libfuzzer PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz-diff-libfuzzer PRIVATE Threads::Threads)
endif()

# The malloc shim under LD_PRELOAD: not under the sanitizers (their runtimes own malloc).
if(TARGET segfit-malloc AND SEGFIT_SANITIZE STREQUAL "")
  add_executable(shim-check shim-check.c)
  target_link_libraries(shim-check PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
  add_dependencies(shim-check segfit-malloc)
  if(CMAKE_CROSSCOMPILING)
    set(SEGFIT_SHIM_FORKS 5)
  else()
    set(SEGFIT_SHIM_FORKS 50)
  endif()
  add_test(NAME sys-shim COMMAND shim-check)
  add_test(NAME sys-shim-fork COMMAND shim-check fork ${SEGFIT_SHIM_FORKS})
  set_tests_properties(sys-shim sys-shim-fork PROPERTIES TIMEOUT 300
    ENVIRONMENT "LD_PRELOAD=$<TARGET_FILE:segfit-malloc>;SEGFIT_SHIM_STRICT=1")
  # The core dlopen()ed (as the JVM loads it): the TLS word read at a fixed offset from the
  # thread pointer (static TLS, as loaded) and through its descriptor (dynamic TLS, forced).
  add_executable(tls-check tls-check.c)
  target_link_libraries(tls-check PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
  target_compile_options(tls-check PRIVATE ${SEGFIT_WARNINGS})
  add_dependencies(tls-check segfit-malloc)
  add_test(NAME sys-tls-static COMMAND tls-check $<TARGET_FILE:segfit-malloc>)
  add_test(NAME sys-tls-dynamic COMMAND tls-check $<TARGET_FILE:segfit-malloc>)
  set_tests_properties(sys-tls-static sys-tls-dynamic PROPERTIES TIMEOUT 300)
  set_tests_properties(sys-tls-dynamic PROPERTIES
    ENVIRONMENT "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=0")
  if(NOT CMAKE_CROSSCOMPILING)
    add_test(NAME sys-preload-programs
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/preload-programs.sh $<TARGET_FILE:segfit-malloc>
              ${CMAKE_CURRENT_BINARY_DIR}/preload-work)
    set_tests_properties(sys-preload-programs PROPERTIES TIMEOUT 600)
    # The JVM on the shim (issue 12): javac on the project's sources, then a multi-threaded
    # workload using segfit through JNI. Needs the JNI build and its JDK (JNI_INCLUDE_DIR/..).
    if(TARGET segfit AND EXISTS "${JNI_INCLUDE_DIR}/../bin/javac")
      get_filename_component(SEGFIT_TEST_JDK "${JNI_INCLUDE_DIR}/.." ABSOLUTE)
      add_test(NAME sys-preload-jvm
        COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/preload-programs.sh $<TARGET_FILE:segfit-malloc>
                ${CMAKE_CURRENT_BINARY_DIR}/preload-jvm-work --jvm ${SEGFIT_TEST_JDK}
                $<TARGET_FILE:segfit>)
      set_tests_properties(sys-preload-jvm PROPERTIES TIMEOUT 600)
    endif()
  endif()
endif()

# hostile tests (issue 6) ---------------------------------------------------------------------
# Out of memory (the heap's limit, and RLIMIT_AS in a forked child) and debug-mode guard pages.
add_executable(test-oom test-oom.c)
target_link_libraries(test-oom PRIVATE segfit_static)
add_test(NAME hostile-oom COMMAND test-oom)
set_tests_properties(hostile-oom PROPERTIES TIMEOUT 300)

# A heap filled to its limit and emptied allocates again through every entry point (issue 12).
add_executable(test-limit test-limit.c)
target_link_libraries(test-limit PRIVATE segfit_static)
target_compile_options(test-limit PRIVATE ${SEGFIT_WARNINGS})
add_test(NAME hostile-limit COMMAND test-limit)
set_tests_properties(hostile-limit PROPERTIES TIMEOUT 300 ENVIRONMENT "${SEGFIT_SYS_ENV}")
