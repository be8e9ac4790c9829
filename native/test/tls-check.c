/* SPDX-License-Identifier: Apache-2.0 */
/* tls-static, tls-dynamic: the JNI library dlopen()ed, as the JVM loads it, allocating and
 * freeing from several threads. The fast paths read the thread's record at a fixed offset from
 * the thread pointer when the library's TLS turned out static at init, and through the TLS
 * descriptor otherwise (thread.c, sf_tls_probe). Run once as loaded (glibc gives a late library
 * static TLS from its surplus) and once with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=0,
 * where the library's TLS is dynamic: a wrong verdict there would have every thread but the
 * first read another thread's memory for its record. Each run first checks that the TLS is
 * where it says, since a library with initial-exec TLS anywhere in it (the malloc shim's
 * guard) gets static TLS whatever the tunables say, and the dynamic run would then prove
 * nothing: a dynamic block is one the descriptor's call allocated for each thread
 * (dlinfo RTLD_DI_TLS_DATA finds it, each thread's elsewhere from its thread pointer); a
 * static one lies at the same offset from every thread's pointer. Calls the C API through
 * dlsym.
 * Usage: tls-check <libsegfit.so> static|dynamic
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* dlinfo */
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *(*alloc_fn)(void *, size_t);
typedef int (*free_fn)(void *, void *);
typedef int64_t (*usable_fn)(void *, const void *);
static void *lib;
static alloc_fn lib_alloc;
static free_fn lib_free;
static usable_fn lib_usable;

#define THREADS 8
#define BLOCKS 64

/* Where each thread found the library's TLS block: its offset from the thread pointer. */
static bool has_block[THREADS];
static intptr_t block_offset[THREADS];

static void fail(const char *what, long thread) {
  fprintf(stderr, "tls-check: thread %ld: %s\n", thread, what);
  exit(1);
}

static void *worker(void *arg) {
  long id = (long)(intptr_t)arg;
  uint8_t *mine[BLOCKS];
  for (int round = 0; round < 2000; round++) {
    for (int i = 0; i < BLOCKS; i++) {
      size_t size = 16 + (size_t)((i * 37 + round) % 1000);
      mine[i] = lib_alloc(NULL, size);
      if (mine[i] == NULL || lib_usable(NULL, mine[i]) < (int64_t)size) fail("alloc", id);
      memset(mine[i], (int)(id + i), size);
    }
    if (round == 0) {   /* the thread's record exists: the library touched its TLS */
      void *block = NULL;
      if (dlinfo(lib, RTLD_DI_TLS_DATA, &block) != 0) fail(dlerror(), id);
      has_block[id] = block != NULL;
      block_offset[id] = (intptr_t)((uintptr_t)block - (uintptr_t)__builtin_thread_pointer());
    }
    for (int i = 0; i < BLOCKS; i++) {
      if (mine[i][0] != (uint8_t)(id + i)) fail("a block changed under its owner", id);
      if (lib_free(NULL, mine[i]) != 0) fail("free", id);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  bool dynamic = argc == 3 && strcmp(argv[2], "dynamic") == 0;
  if (argc != 3 || (!dynamic && strcmp(argv[2], "static") != 0)) {
    fprintf(stderr, "usage: %s <libsegfit.so> static|dynamic\n", argv[0]);
    return 2;
  }
  lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "tls-check: dlopen: %s\n", dlerror());
    return 1;
  }
  lib_alloc = (alloc_fn)(uintptr_t)dlsym(lib, "segfit_alloc");
  lib_free = (free_fn)(uintptr_t)dlsym(lib, "segfit_free");
  lib_usable = (usable_fn)(uintptr_t)dlsym(lib, "segfit_usable_size");
  if (lib_alloc == NULL || lib_free == NULL || lib_usable == NULL) {
    fprintf(stderr, "tls-check: the C API is missing from %s\n", argv[1]);
    return 1;
  }
  pthread_t t[THREADS];
  for (long i = 1; i < THREADS; i++)
    if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) != 0) fail("pthread_create", 0);
  worker((void *)(intptr_t)0);
  for (long i = 1; i < THREADS; i++) pthread_join(t[i], NULL);

  /* A thread older than the dlopen() may show no static block (glibc fills its entry lazily). */
  int blocks = 0, first = -1;
  bool same_offset = true;
  for (int i = 0; i < THREADS; i++) {
    if (!has_block[i]) continue;
    blocks++;
    if (first < 0) first = i;
    same_offset &= block_offset[i] == block_offset[first];
  }
  bool is_dynamic = blocks == THREADS && !same_offset;
  bool is_static = same_offset;
  if (dynamic ? !is_dynamic : !is_static) {
    fprintf(stderr, "tls-check: the library's TLS is not %s here (%d of %d threads have a block, "
            "%s offset from the thread pointer): this run tests nothing\n", argv[2], blocks,
            THREADS, same_offset ? "at one" : "not at one");
    return 1;
  }
  printf("tls-check: %d threads, ok, %s TLS (%s)\n", THREADS, argv[2],
         getenv("GLIBC_TUNABLES") != NULL ? getenv("GLIBC_TUNABLES") : "as loaded");
  return 0;
}
