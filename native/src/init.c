/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — process start-up, thread tear-down, fork, and the process-wide globals.
 *
 * The first call that needs the core (any allocation, heap creation, a statistics read) runs
 * _sf_init once: each layer's start-up, bottom up (os.c, the segment map, thread.c's TLS probe,
 * fence mode and fallback record), the coarse clock, the pthread key whose destructor tears a
 * thread's record down, and the fork handlers. Nothing is ever torn down at process exit: the
 * library is never unloaded (-z nodelete) and other threads may still be inside calls. A
 * thread's exit hands its thread heaps' slabs over to their heaps (heap.c), then gives its
 * record back (thread.c). fork() takes every lock of the core in lock order, so that the child
 * starts with none held by a thread that does not exist there; the child has no background
 * purger (starting threads in the child of a multi-threaded process is best avoided), and its
 * slow paths and segfit_trim() still purge.
 */
#include "internal.h"

pthread_mutex_t _sf_global_lock = PTHREAD_MUTEX_INITIALIZER;
_Atomic(uint64_t) _sf_clock_ms;

static pthread_once_t sf_once = PTHREAD_ONCE_INIT;
static pthread_key_t sf_key;

/* --- fork ------------------------------------------------------------------------------------ */
static void sf_fork_prepare(void) {
  _sf_thread_fork_lock();
  pthread_mutex_lock(&_sf_global_lock);
  _sf_heap_fork_lock_all();
  _sf_segment_fork_lock();
  _sf_os_fork_lock();
}

static void sf_fork_parent(void) {
  _sf_os_fork_unlock();
  _sf_segment_fork_unlock();
  _sf_heap_fork_unlock_all();
  pthread_mutex_unlock(&_sf_global_lock);
  _sf_thread_fork_unlock();
}

static void sf_fork_child(void) {
  sf_fork_parent();
  _sf_thread_fork_child();
}

/* --- threads --------------------------------------------------------------------------------- */
/* The pthread key's destructor: the remote frees it holds go to their slabs, the thread heaps'
   slabs to their heaps (abandoned, or back to the pools when empty), then, in one hold of the
   global lock, the thread heaps' counters and records, the record's own counters and the
   record itself. */
static void sf_thread_done(void *arg) {
  sf_tld_t *t = arg;
  _sf_outbox_exit(t);
  _sf_theap_abandon_all(t);
  pthread_mutex_lock(&_sf_global_lock);
  _sf_theap_free_all(t);
  _sf_stats_fold_freeing(t);
  _sf_thread_exit_locked(t);
  pthread_mutex_unlock(&_sf_global_lock);
}

void _sf_init_thread(sf_tld_t *tld) { pthread_setspecific(sf_key, tld); }

/* --- the process ----------------------------------------------------------------------------- */
static void sf_init_once(void) {
  _sf_os_init();
  _sf_segment_map_init();
  _sf_thread_process_init();
  atomic_store(&_sf_clock_ms, _sf_os_now_ms());
  pthread_key_create(&sf_key, sf_thread_done);
  pthread_atfork(sf_fork_prepare, sf_fork_parent, sf_fork_child);
}

void _sf_init(void) { pthread_once(&sf_once, sf_init_once); }
