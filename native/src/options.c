/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — heap options and error reporting.
 *
 * Owns the defaults and the validation of segfit_options_t, the message of every error code
 * (from the SEGFIT_ERRORS table in segfit.h, never a copy), the per-thread last error and the
 * errno mapping of pointer-returning calls: LIMIT and OUT_OF_MEMORY are ENOMEM, every other
 * failure EINVAL.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define SF_MAX_PURGE_DELAY_MS ((int64_t)24 * 3600 * 1000)

void segfit_options_init(segfit_options_t *o) {
  if (o == NULL) return;
  memset(o, 0, sizeof *o);
  o->purge_delay_ms = -1;
}

int _sf_options_check(const segfit_options_t *o) {
  if (o->max_bytes > SEGFIT_MAX_SIZE) return SEGFIT_E_INVALID_OPTION;
  if (o->reserve_bytes > SEGFIT_MAX_SIZE) return SEGFIT_E_INVALID_OPTION;
  if (o->max_bytes != 0 && o->reserve_bytes > o->max_bytes) return SEGFIT_E_INVALID_OPTION;
  if (o->pre_touch && o->reserve_bytes == 0) return SEGFIT_E_INVALID_OPTION;
  if (o->purge_delay_ms > SF_MAX_PURGE_DELAY_MS) return SEGFIT_E_INVALID_OPTION;
  if (o->name != NULL && strlen(o->name) > SEGFIT_MAX_NAME_LENGTH) return SEGFIT_E_INVALID_OPTION;
  return SEGFIT_E_OK;
}

const char *segfit_strerror(int code) {
#define SF_MSG_(name, value, message) \
  case value:                         \
    return message;
  switch (code) { SEGFIT_ERRORS(SF_MSG_) }
#undef SF_MSG_
  return "unknown segfit error code";
}

int _sf_errno_of(int code) {
  return code == SEGFIT_E_LIMIT || code == SEGFIT_E_OUT_OF_MEMORY ? ENOMEM : EINVAL;
}

void *_sf_fail_ptr(int code) {
  _sf_set_error(code);
  errno = _sf_errno_of(code);
  return NULL;
}

/* --- the per-thread last error (in the thread record; one word for threads without one) --- */
static _Atomic(int) sf_orphan_error;

void _sf_set_error(int code) {
  sf_tld_t *t = _sf_tls;
  if (t > SF_TLD_DEAD) t->last_error = code;
  else atomic_store_explicit(&sf_orphan_error, code, memory_order_relaxed);
}

int segfit_last_error(void) {
  sf_tld_t *t = _sf_tls;
  if (t > SF_TLD_DEAD) return t->last_error;
  return atomic_load_explicit(&sf_orphan_error, memory_order_relaxed);
}
