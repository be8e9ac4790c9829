# SPDX-License-Identifier: Apache-2.0
# Cross-compiles for Linux aarch64 on an x86_64 host with Debian's gcc-aarch64-linux-gnu.
# ctest runs the test binaries through qemu-user; SEGFIT_QEMU_PAGE_SIZE (e.g. 65536) makes
# qemu report a larger page size so the 16 KiB and 64 KiB page paths are exercised.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Only running aarch64 code needs qemu, building never does: scripts/demo builds the jar on a
# machine without it (scripts/test checks that case). Then the emulator is a script that fails
# every test with the reason, so ctest cannot pass by running nothing. A NOTFOUND result is
# searched again at the next configure, so installing qemu later is enough.
find_program(QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64
  DOC "qemu-user for aarch64, runs the C tests (OFF: none, the tests fail saying so)")
set(SEGFIT_QEMU_PAGE_SIZE "" CACHE STRING "Page size qemu reports to the tests (empty: 4096)")
if(NOT QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${CMAKE_CURRENT_LIST_DIR}/no-aarch64-emulator")
elseif(SEGFIT_QEMU_PAGE_SIZE)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${QEMU_AARCH64};-L;/usr/aarch64-linux-gnu;-p;${SEGFIT_QEMU_PAGE_SIZE}")
else()
  set(CMAKE_CROSSCOMPILING_EMULATOR "${QEMU_AARCH64};-L;/usr/aarch64-linux-gnu")
endif()
