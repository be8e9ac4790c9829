/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — the per-thread layer: thread records, the one TLS word and the operation handshake.
 *
 * Every call runs inside an "operation" of its thread record: the owner stores the heap in
 * in_op (a plain store), then loads req and the heap's closed flag, with only a compiler
 * barrier between. The rare side (the purger taking a record over, heap destroy) stores its
 * flag, issues membarrier(PRIVATE_EXPEDITED) -- a full barrier on every running thread -- and
 * then loads in_op: either the owner sees the flag, or the rare side sees the owner inside a
 * call (asymmetric Dekker). The fast paths load no closed flag: their second load is the key of
 * the thread heap they found for the heap, which heap destroy clears (under the global lock,
 * where no thread heap of a closed heap is made) before its barrier; a key that names the heap
 * is then as good as an open flag. Paths without a thread heap in hand (slow entries, a free of
 * another thread's block) load the closed flag itself. Without membarrier the owner issues a
 * seq_cst fence instead, decided once at init: a fixed bit of the record's req word
 * (SF_REQ_FENCE), so the fast paths pay no extra test for it and the fence runs out of line
 * (_sf_enter_recheck). TSan builds use seq_cst atomics on both sides. A record taken over by
 * the purger (SF_REQ_TAKE set, in_op seen NULL) belongs to the purger until it clears the bit;
 * its owner waits at the entry of its next call (spinning briefly, then yielding). Activity:
 * each tick the purger sets SF_REQ_IDLE in records it saw busy, and the next call of the owner
 * clears it (out of line, once per tick at most); a record whose bit is still set at the next
 * tick made no call for a whole tick. Only such records are taken over, so a busy thread never
 * waits. Threads whose destructor already ran share a fallback record under a mutex. Records
 * and thread heaps are pooled and never unmapped, so a stale pointer to one is always safe to
 * read. The thread heaps a record holds are heap.c's; process start-up, the destructor that
 * ends a thread's record, and fork are init.c's.
 */
#include "internal.h"

_Thread_local sf_tld_t *_sf_tls;   /* global-dynamic TLS (the build passes the model) */
_Atomic(intptr_t) _sf_tls_off;
int _sf_use_fence;
sf_tld_t *_sf_tlds;

static sf_tld_t sf_fallback;                     /* shared by torn-down threads */
static pthread_mutex_t sf_fallback_lock = PTHREAD_MUTEX_INITIALIZER;

/* Record pool: chunks of records, never unmapped; destroy walks every record ever made. */
#define SF_TLD_CHUNK 64
#define SF_TLD_CHUNKS_MAX 8192
static sf_tld_t *sf_tld_chunks[SF_TLD_CHUNKS_MAX];
static _Atomic(size_t) sf_tld_chunk_count;
static sf_tld_t *sf_tld_pool;                     /* global lock */

static void sf_tld_init(sf_tld_t *t) {
  atomic_store_explicit(&t->in_op, NULL, memory_order_relaxed);
  atomic_store_explicit(&t->req, _sf_use_fence ? SF_REQ_FENCE : 0, memory_order_relaxed);
  t->last_error = 0;
  t->idle_since_ms = 0;
  t->purged_idle = false;
  for (int i = 0; i < SF_THEAP_CACHE; i++) t->cache[i] = &_sf_theap_none;
  t->theaps = NULL;
  t->next = t->prev = t->pool_next = NULL;
  sf_assert(atomic_load_explicit(&t->freeing, memory_order_relaxed) == NULL &&
            atomic_load_explicit(&t->out_heap, memory_order_relaxed) == NULL);   /* at exit */
}

static void sf_registry_add(sf_tld_t *t) {   /* pre: global lock */
  sf_assert(!atomic_load_explicit(&t->live, memory_order_relaxed));
  t->prev = NULL;
  t->next = _sf_tlds;
  if (_sf_tlds != NULL) _sf_tlds->prev = t;
  _sf_tlds = t;
  atomic_store_explicit(&t->live, 1, memory_order_relaxed);
}

static void sf_registry_remove(sf_tld_t *t) {   /* pre: global lock */
  sf_assert(atomic_load_explicit(&t->live, memory_order_relaxed));
  sf_assert_internal(t->prev != NULL ? t->prev->next == t : _sf_tlds == t);
  if (t->prev != NULL) t->prev->next = t->next;
  else _sf_tlds = t->next;
  if (t->next != NULL) t->next->prev = t->prev;
  t->next = t->prev = NULL;
  atomic_store_explicit(&t->live, 0, memory_order_relaxed);
}

/* fork() (init.c takes every lock in lock order): the fallback record's lock comes first, since
   a call on that record takes the others. The child also forgets the other threads' calls in
   progress and outboxes: they never finish there. */
void _sf_thread_fork_lock(void) { pthread_mutex_lock(&sf_fallback_lock); }
void _sf_thread_fork_unlock(void) { pthread_mutex_unlock(&sf_fallback_lock); }

void _sf_thread_fork_child(void) {
  for (sf_tld_t *t = _sf_tlds; t != NULL; t = t->next) {
    if (t == _sf_tls) continue;
    atomic_store_explicit(&t->in_op, NULL, memory_order_relaxed);
    /* Maybe caught halfway through an update: its blocks stay where they are (counted in
       their slabs' `used`), as the slabs the thread owned do. */
    _sf_outbox_drop(t);
  }
}

/* The TLS word's offset from the thread pointer, if it is in static TLS. The library is
   dlopen()ed, so its TLS model is global-dynamic (initial-exec could make dlopen fail), and
   every access is a call through its TLS descriptor; but glibc (and musl) give a late-loaded
   library static TLS while their surplus lasts, and then the descriptor's function only returns
   the descriptor's argument: an offset that every thread shares. The proof that it is so here:
   the call returned its descriptor's own argument, on the side of the thread pointer where
   static TLS lies (SF_TLS_STATIC_ABOVE). A dynamic descriptor's function computes its result
   from the thread's own TLS blocks, and its argument is a pointer to its resolver's data: on
   x86-64 that pointer is never negative; on aarch64 both are positive, and the result would
   have to equal the pointer to the byte. In an executable the linker has rewritten the sequence
   into a constant, the offset in static TLS by construction: the "descriptor address" is then
   the result itself. desc_arg is read only when desc is a descriptor. */
intptr_t _sf_tls_static_offset(uintptr_t desc, uintptr_t off, uintptr_t desc_arg) {
  if (SF_TLS_STATIC_ABOVE ? (intptr_t)off <= 0 : (intptr_t)off >= 0) return 0;
  if (desc == off) return (intptr_t)off;
  return desc_arg == off ? (intptr_t)off : 0;
}

/* Runs the descriptor's call as the compiler would, keeping the descriptor's address, and sets
   _sf_tls_off when the TLS word is static. The sequences are the ABIs' own, so that the linker
   rewrites them in an executable as it rewrites the compiler's. */
static void sf_tls_probe(void) {
#if SF_TLS_OFF
  uintptr_t desc, off;
#if defined(__x86_64__)
  __asm__ volatile("sub $128, %%rsp\n\t"   /* the call's return address: below the red zone */
                   "lea _sf_tls@TLSDESC(%%rip), %%rax\n\t"
                   "mov %%rax, %0\n\t"
                   "call *_sf_tls@TLSCALL(%%rax)\n\t"
                   "add $128, %%rsp"
                   : "=&r"(desc), "=a"(off)
                   :
                   : "memory", "cc");
  uintptr_t tp;
  __asm__("mov %%fs:0, %0" : "=r"(tp));
#else
  /* The descriptor's function may change only x0, x30 and the flags; the linker's rewrite
     writes x0 from the adrp and the ldr and drops the add and the blr. */
  __asm__ volatile("adrp x0, :tlsdesc:_sf_tls\n\t"
                   "ldr x1, [x0, #:tlsdesc_lo12:_sf_tls]\n\t"
                   "add x0, x0, #:tlsdesc_lo12:_sf_tls\n\t"
                   "mov %0, x0\n\t"
                   ".tlsdesccall _sf_tls\n\t"
                   "blr x1\n\t"
                   "mov %1, x0"
                   : "=&r"(desc), "=r"(off)
                   :
                   : "x0", "x1", "x30", "memory", "cc");
  uintptr_t tp = (uintptr_t)__builtin_thread_pointer();
#endif
  intptr_t s = _sf_tls_static_offset(desc, off, desc == off ? 0 : ((const uintptr_t *)desc)[1]);
  if (s != 0 && tp + (uintptr_t)s == (uintptr_t)&_sf_tls)
    atomic_store_explicit(&_sf_tls_off, s, memory_order_relaxed);
#endif
}

void _sf_thread_process_init(void) {
  sf_tls_probe();
  _sf_use_fence = !_sf_os_membarrier_register();
  sf_tld_init(&sf_fallback);
  pthread_mutex_lock(&_sf_global_lock);
  sf_registry_add(&sf_fallback);
  pthread_mutex_unlock(&_sf_global_lock);
}

static sf_tld_t *sf_tld_alloc(void) {   /* pre: global lock */
  if (sf_tld_pool == NULL) {
    size_t n = atomic_load_explicit(&sf_tld_chunk_count, memory_order_relaxed);
    if (n >= SF_TLD_CHUNKS_MAX) return NULL;
    sf_tld_t *chunk = _sf_os_meta_alloc(SF_TLD_CHUNK * sizeof(sf_tld_t));
    if (chunk == NULL) return NULL;
    for (int i = SF_TLD_CHUNK - 1; i >= 0; i--) {
      chunk[i].pool_next = sf_tld_pool;
      sf_tld_pool = &chunk[i];
    }
    sf_tld_chunks[n] = chunk;
    atomic_store_explicit(&sf_tld_chunk_count, n + 1, memory_order_release);
  }
  sf_tld_t *t = sf_tld_pool;
  sf_tld_pool = t->pool_next;
  return t;
}

sf_tld_t *_sf_thread_tld(void) {
  sf_tld_t *t = _sf_tls;
  if (sf_likely(t > SF_TLD_DEAD)) return t;
  if (t == SF_TLD_DEAD) return NULL;
  _sf_init();
  pthread_mutex_lock(&_sf_global_lock);
  t = sf_tld_alloc();
  if (t != NULL) {
    sf_tld_init(t);
    sf_registry_add(t);
  }
  pthread_mutex_unlock(&_sf_global_lock);
  if (t == NULL) return NULL;
  _sf_tls = t;   /* first: pthread_setspecific may malloc, and malloc may be us (the shim) */
  /* Once per thread, a check that costs nothing: the fast paths' read must find the record
     just stored; if it ever did not, they would keep to the descriptor from then on. */
  sf_tld_t *seen;
  if (_sf_tls_fast(&seen) && seen != t)
    atomic_store_explicit(&_sf_tls_off, 0, memory_order_relaxed);
  _sf_init_thread(t);
  return t;
}

SF_NOINLINE int _sf_enter_recheck(sf_tld_t *t, sf_heap_t *heap) {
  int req = atomic_load_explicit(&t->req, memory_order_relaxed);
  /* A call after a purger tick: busy again. Only bookkeeping, so no ordering; an RMW, since
     the purger sets bits of the same word. */
  if (req & SF_REQ_IDLE) atomic_fetch_and_explicit(&t->req, ~SF_REQ_IDLE, memory_order_relaxed);
  if (req & SF_REQ_FENCE) atomic_thread_fence(memory_order_seq_cst);   /* in_op before loads */
  int blocked = (atomic_load_explicit(&t->req, memory_order_seq_cst) & SF_REQ_TAKE) |
                atomic_load_explicit(&heap->closed, memory_order_seq_cst);
  /* Once a tick, a busy thread's outbox goes too (free.c): the record is ours (the purger
     would have seen us inside the call), and the call is on the outbox's heap. */
  if (blocked == 0 && (req & SF_REQ_IDLE) &&
      atomic_load_explicit(&t->out_heap, memory_order_relaxed) == heap)
    _sf_outbox_flush(t);
  return blocked;
}

int _sf_thread_enter(sf_tld_t *t, sf_heap_t *heap) {
  /* One call at a time per record: in_op is NULL between calls. */
  sf_assert(atomic_load_explicit(&t->in_op, memory_order_relaxed) == NULL);
  for (;;) {
    _sf_enter(t, heap);
    if (!_sf_enter_blocked(t, heap)) return 0;
    if (atomic_load_explicit(&heap->closed, memory_order_acquire)) {
      _sf_leave(t);
      return SEGFIT_E_CLOSED;
    }
    /* The purger holds the record for microseconds: spin a little before yielding. */
    for (int spins = 0; atomic_load_explicit(&t->req, memory_order_acquire) & SF_REQ_TAKE;
         spins++) {
      if (spins < 2000) _sf_cpu_relax();
      else _sf_os_yield();
    }
  }
}

int _sf_thread_begin(sf_op_t *op, sf_heap_t *heap) {
  sf_tld_t *t = _sf_thread_tld();
  op->heap = heap;
  op->fallback = 0;
  if (t == NULL) {
    _sf_init();
    pthread_mutex_lock(&sf_fallback_lock);
    op->fallback = 1;
    t = &sf_fallback;
  }
  op->tld = t;
  int rc = _sf_thread_enter(t, heap);
  if (rc != 0) {
    if (op->fallback) pthread_mutex_unlock(&sf_fallback_lock);
    return rc;
  }
  return 0;
}

void _sf_thread_end(sf_op_t *op) {
  sf_assert(atomic_load_explicit(&op->tld->in_op, memory_order_relaxed) == op->heap);
  _sf_leave(op->tld);
  if (op->fallback) pthread_mutex_unlock(&sf_fallback_lock);
}

void _sf_thread_exit_locked(sf_tld_t *t) {
  sf_assert(t->theaps == NULL && t == _sf_tls);
  for (int i = 0; i < SF_THEAP_CACHE; i++) t->cache[i] = &_sf_theap_none;
  sf_registry_remove(t);
  t->pool_next = sf_tld_pool;
  sf_tld_pool = t;
  _sf_tls = SF_TLD_DEAD;   /* later calls on this thread use the fallback record */
}

bool _sf_thread_asym_barrier(void) {
  return _sf_os_membarrier();
}

void _sf_thread_release(sf_tld_t *t) {
  int req = atomic_fetch_and_explicit(&t->req, ~SF_REQ_TAKE, memory_order_release);
  sf_assert(req & SF_REQ_TAKE);   /* only the purger's pass takes a record, once */
  (void)req;
}

static void sf_wait_not_in(sf_tld_t *t, sf_heap_t *heap) {
  while (atomic_load_explicit(&t->in_op, memory_order_acquire) == heap) _sf_os_yield();
}

void _sf_thread_wait_heap_idle(sf_heap_t *heap) {
  /* pre: heap->closed was set (seq_cst); the barrier orders it before our loads of in_op.
     Destroy cannot go on without it: a refused barrier (ENOMEM, transient) is tried again. */
  while (!_sf_thread_asym_barrier()) _sf_os_sleep_ms(1);
  sf_wait_not_in(&sf_fallback, heap);
  size_t n = atomic_load_explicit(&sf_tld_chunk_count, memory_order_acquire);
  for (size_t c = 0; c < n; c++)
    for (int i = 0; i < SF_TLD_CHUNK; i++) sf_wait_not_in(&sf_tld_chunks[c][i], heap);
}
