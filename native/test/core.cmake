# SPDX-License-Identifier: Apache-2.0
# Core tests (core-*): the C API and the multi-threaded stress test of the allocator core.
# Both link the static core and may call internals (internal.h) such as _sf_slab_is_valid.
# SEGFIT_TEST_SCALE shrinks the stress work under qemu and the sanitizers.
set(SEGFIT_CORE_ENV "")
if(CMAKE_CROSSCOMPILING)
  set(SEGFIT_CORE_ENV "SEGFIT_TEST_SCALE=0.1")
elseif(NOT SEGFIT_SANITIZE STREQUAL "")
  set(SEGFIT_CORE_ENV "SEGFIT_TEST_SCALE=0.3")
endif()
foreach(t api stress)
  add_executable(test-${t} ${CMAKE_CURRENT_SOURCE_DIR}/test-${t}.c)
  target_link_libraries(test-${t} PRIVATE segfit_static)
  target_compile_options(test-${t} PRIVATE ${SEGFIT_WARNINGS})
  add_test(NAME core-${t} COMMAND test-${t})
  set_tests_properties(core-${t} PROPERTIES TIMEOUT 300 ENVIRONMENT "${SEGFIT_CORE_ENV}")
endforeach()
