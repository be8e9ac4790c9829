# SPDX-License-Identifier: Apache-2.0
# Core tests (label core): the C API, and the allocator core under concurrent use. Both link the
# static core and may call internals (internal.h) such as _sf_slab_is_valid.
segfit_test_program(test-api test-api.c)
segfit_test(api LABELS core COMMAND test-api)

# test-threads: its stress part here, its churn part with the system tests.
segfit_test_program(test-threads test-threads.c)
segfit_test(threads-stress LABELS core stress COMMAND test-threads stress)
