/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — fault injection for test builds (SEGFIT_FAULTS only; see faults.h).
 *
 * A plan is immutable once published: installing one fills the next slot of a small ring and
 * publishes its address, so a call racing with the installation reads the old plan or the new
 * one, never a mix. Counters are per operation and restart with each plan. The probabilistic
 * schedule hashes (seed, operation, call number), so a single-threaded run is reproducible.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faults.h"
#include "internal.h"

#define SF_PLAN_RING 8
static sf_fault_plan_t sf_plans[SF_PLAN_RING];
static _Atomic(unsigned) sf_plan_next;
static _Atomic(const sf_fault_plan_t *) sf_plan;
static _Atomic(uint64_t) sf_calls[SF_FAULT_COUNT], sf_faults[SF_FAULT_COUNT];
static _Thread_local uint64_t sf_thread_faults;

#define SF_FAULT_NAME_(name, text) text,
static const char *const sf_names[SF_FAULT_COUNT] = {SF_FAULT_OPS(SF_FAULT_NAME_)};
#undef SF_FAULT_NAME_

const char *_sf_fault_name(unsigned op) { return op < SF_FAULT_COUNT ? sf_names[op] : "?"; }

void _sf_fault_plan(const sf_fault_plan_t *plan) {
  atomic_store_explicit(&sf_plan, NULL, memory_order_release);
  for (unsigned op = 0; op < SF_FAULT_COUNT; op++) {
    atomic_store_explicit(&sf_calls[op], 0, memory_order_relaxed);
    atomic_store_explicit(&sf_faults[op], 0, memory_order_relaxed);
  }
  if (plan == NULL) return;
  sf_fault_plan_t *slot = &sf_plans[atomic_fetch_add(&sf_plan_next, 1) % SF_PLAN_RING];
  *slot = *plan;
  slot->stop[sizeof slot->stop - 1] = '\0';
  atomic_store_explicit(&sf_plan, slot, memory_order_release);
}

static uint64_t sf_mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static void sf_report(const char *when) {
  uint64_t calls[SF_FAULT_COUNT], faults[SF_FAULT_COUNT];
  _sf_fault_counts(calls, faults);
  char line[512];
  int n = snprintf(line, sizeof line, "segfit-faults: %s:", when);
  for (unsigned op = 0; op < SF_FAULT_COUNT && n > 0 && (size_t)n < sizeof line; op++)
    n += snprintf(line + n, sizeof line - (size_t)n, " %s %llu/%llu", sf_names[op],
                  (unsigned long long)faults[op], (unsigned long long)calls[op]);
  if (n > 0 && (size_t)n < sizeof line - 1) {
    line[n++] = '\n';
    _sf_os_write_err(line, (size_t)n);
  }
}

bool _sf_fault(unsigned op) {
  const sf_fault_plan_t *plan = atomic_load_explicit(&sf_plan, memory_order_acquire);
  if (plan == NULL) return false;
  if (plan->stop[0] != '\0' && access(plan->stop, F_OK) == 0) {
    /* The figures of the faulty phase, for a parent process to read, then no more faults. */
    const sf_fault_plan_t *expected = plan;
    if (atomic_compare_exchange_strong(&sf_plan, &expected, NULL)) sf_report("stopped");
    return false;
  }
  uint64_t n = atomic_fetch_add_explicit(&sf_calls[op], 1, memory_order_relaxed) + 1;
  bool fail;
  if (plan->every[op] != 0) fail = n % plan->every[op] == 0;
  else fail = sf_mix(plan->seed ^ sf_mix(n * SF_FAULT_COUNT + op)) % 1000000u <
              plan->per_million[op];
  if (fail) {
    atomic_fetch_add_explicit(&sf_faults[op], 1, memory_order_relaxed);
    sf_thread_faults++;
  }
  return fail;
}

void _sf_fault_counts(uint64_t calls[SF_FAULT_COUNT], uint64_t faults[SF_FAULT_COUNT]) {
  for (unsigned op = 0; op < SF_FAULT_COUNT; op++) {
    calls[op] = atomic_load_explicit(&sf_calls[op], memory_order_relaxed);
    faults[op] = atomic_load_explicit(&sf_faults[op], memory_order_relaxed);
  }
}

uint64_t _sf_fault_thread_faults(void) { return sf_thread_faults; }

/* One "op=every:N" or "op=rate:P" term. */
static int sf_parse_op(const char *name, size_t len, const char *value, sf_fault_plan_t *plan) {
  unsigned from = 0, to = SF_FAULT_COUNT;
  if (!(len == 3 && strncmp(name, "all", 3) == 0)) {
    for (from = 0; from < SF_FAULT_COUNT; from++)
      if (strlen(sf_names[from]) == len && strncmp(name, sf_names[from], len) == 0) break;
    if (from == SF_FAULT_COUNT) return -1;
    to = from + 1;
  }
  char *end;
  uint32_t every = 0, ppm = 0;
  if (strncmp(value, "every:", 6) == 0) {
    unsigned long v = strtoul(value + 6, &end, 10);
    if (end == value + 6 || v == 0 || v > UINT32_MAX) return -1;
    every = (uint32_t)v;
  } else if (strncmp(value, "rate:", 5) == 0) {
    double p = strtod(value + 5, &end);
    if (end == value + 5 || !(p >= 0 && p <= 1)) return -1;
    ppm = (uint32_t)(p * 1e6 + 0.5);
  } else {
    return -1;
  }
  if (*end != ',' && *end != '\0') return -1;
  for (unsigned op = from; op < to; op++) {
    plan->every[op] = every;
    plan->per_million[op] = ppm;
  }
  return 0;
}

int _sf_fault_parse(const char *spec, sf_fault_plan_t *plan) {
  memset(plan, 0, sizeof *plan);
  for (const char *p = spec; *p != '\0';) {
    const char *eq = strchr(p, '=');
    if (eq == NULL) return -1;
    const char *value = eq + 1, *next = strchr(value, ',');
    size_t vlen = next != NULL ? (size_t)(next - value) : strlen(value);
    if (eq - p == 4 && strncmp(p, "seed", 4) == 0) {
      char *end;
      plan->seed = strtoull(value, &end, 0);
      if (end != value + vlen || vlen == 0) return -1;
    } else if (eq - p == 4 && strncmp(p, "stop", 4) == 0) {
      if (vlen == 0 || vlen >= sizeof plan->stop) return -1;
      memcpy(plan->stop, value, vlen);
      plan->stop[vlen] = '\0';
    } else if (sf_parse_op(p, (size_t)(eq - p), value, plan) != 0) {
      return -1;
    }
    if (next != NULL && next[1] == '\0') return -1;   /* an empty term */
    p = next != NULL ? next + 1 : value + vlen;
  }
  return 0;
}

static void sf_report_exit(void) {
  if (atomic_load_explicit(&sf_plan, memory_order_acquire) != NULL) sf_report("at exit");
}

void _sf_fault_init_env(void) {
  const char *spec = getenv("SEGFIT_FAULTS");
  if (spec == NULL || *spec == '\0') return;
  sf_fault_plan_t plan;
  if (_sf_fault_parse(spec, &plan) != 0) {
    fprintf(stderr, "segfit-faults: cannot parse SEGFIT_FAULTS=%s\n", spec);
    abort();   /* a test that meant to inject faults must not run without them */
  }
  _sf_fault_plan(&plan);
  atexit(sf_report_exit);
}
