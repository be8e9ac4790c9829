# SPDX-License-Identifier: Apache-2.0
# System tests (label system): memory going back to the OS, threads that come and go, heaps at
# their limit and out of memory, the differential fuzz driver, and the LD_PRELOAD malloc shim,
# also dlopen()ed.
segfit_test(threads-churn LABELS system stress COMMAND test-threads churn)
segfit_test_program(test-free-only test-free-only.c)
segfit_test(threads-free-only LABELS system COMMAND test-free-only)

# purge measures RSS against a deadline: never alongside the other tests.
segfit_test_program(test-purge test-purge.c)
segfit_test(purge LABELS system COMMAND test-purge)
set_tests_properties(purge PROPERTIES RUN_SERIAL TRUE)

# A heap filled to its limit and emptied allocates again through every entry point.
segfit_test_program(test-limit test-limit.c)
segfit_test(limit-reclaim LABELS system slow COMMAND test-limit)
# Out of memory (the heap's limit, and RLIMIT_AS in a forked child) and debug-mode guard pages.
segfit_test_program(test-oom test-oom.c)
segfit_test(out-of-memory LABELS system COMMAND test-oom)

# The differential fuzz target as a plain program: replays the corpus (seeds and every crash
# scripts/fuzz found) and runs seeded random inputs.
segfit_test_program(fuzz-diff fuzz-diff.c)
segfit_test(fuzz-replay LABELS system COMMAND fuzz-diff ${CMAKE_CURRENT_SOURCE_DIR}/corpus)
segfit_test(fuzz-random LABELS system slow COMMAND fuzz-diff --random 20261121 2000)

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

# The core dlopen()ed, as the JVM loads it: the TLS word read at a fixed offset from the thread
# pointer (static TLS, as loaded) and through its descriptor (dynamic TLS, forced). On a shared
# library of the core alone, built as the JNI library is (which needs a JDK): not on the shim,
# whose initial-exec guard gives the whole library static TLS whatever the tunables say.
if(SEGFIT_SANITIZE STREQUAL "")
  add_library(segfit-dlopen SHARED $<TARGET_OBJECTS:segfit_core>)
  target_link_libraries(segfit-dlopen PRIVATE Threads::Threads)
  target_link_options(segfit-dlopen PRIVATE ${SEGFIT_SHARED_LINK_FLAGS}
    "-Wl,--version-script=${PROJECT_SOURCE_DIR}/native/segfit.map")
  add_executable(tls-check tls-check.c)
  target_link_libraries(tls-check PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
  target_compile_options(tls-check PRIVATE ${SEGFIT_WARNINGS})
  add_dependencies(tls-check segfit-dlopen)
  segfit_test(tls-static LABELS system COMMAND tls-check $<TARGET_FILE:segfit-dlopen> static)
  segfit_test(tls-dynamic LABELS system COMMAND tls-check $<TARGET_FILE:segfit-dlopen> dynamic
    ENVIRONMENT "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=0")
endif()

# The malloc shim under LD_PRELOAD: not under the sanitizers (their runtimes own malloc).
if(TARGET segfit-malloc AND SEGFIT_SANITIZE STREQUAL "")
  add_executable(shim-check shim-check.c)
  target_include_directories(shim-check PRIVATE ${PROJECT_SOURCE_DIR}/native/include
    ${PROJECT_SOURCE_DIR}/native/src)
  target_link_libraries(shim-check PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
  add_dependencies(shim-check segfit-malloc)
  if(CMAKE_CROSSCOMPILING)
    set(SEGFIT_SHIM_FORKS 5)
  else()
    set(SEGFIT_SHIM_FORKS 50)
  endif()
  set(SEGFIT_SHIM_ENV "LD_PRELOAD=$<TARGET_FILE:segfit-malloc>;SEGFIT_SHIM_STRICT=1")
  segfit_test(shim LABELS system COMMAND shim-check ENVIRONMENT ${SEGFIT_SHIM_ENV})
  segfit_test(shim-fork LABELS system COMMAND shim-check fork ${SEGFIT_SHIM_FORKS}
    ENVIRONMENT ${SEGFIT_SHIM_ENV})
  if(NOT CMAKE_CROSSCOMPILING)
    # Programs on the shim print the same as on glibc: python, sort, gcc, tar, git.
    segfit_test(shim-programs LABELS system slow TIMEOUT 600
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/preload-programs.sh $<TARGET_FILE:segfit-malloc>
              ${CMAKE_CURRENT_BINARY_DIR}/preload-work)
    # The JVM on the shim: javac on the project's sources, then a multi-threaded workload using
    # segfit through JNI. Needs the JNI build and its JDK (JNI_INCLUDE_DIR/..).
    if(TARGET segfit AND EXISTS "${JNI_INCLUDE_DIR}/../bin/javac")
      get_filename_component(SEGFIT_TEST_JDK "${JNI_INCLUDE_DIR}/.." ABSOLUTE)
      segfit_test(shim-jvm LABELS system slow TIMEOUT 600
        COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/preload-programs.sh $<TARGET_FILE:segfit-malloc>
                ${CMAKE_CURRENT_BINARY_DIR}/preload-jvm-work --jvm ${SEGFIT_TEST_JDK}
                $<TARGET_FILE:segfit>)
    endif()
  endif()
endif()
