/* SPDX-License-Identifier: Apache-2.0 */
/* tls-static, tls-dynamic: the core dlopen()ed, as the JVM loads it, allocating and
 * freeing from several threads. The fast paths read the thread's record at a fixed offset from
 * the thread pointer when the library's TLS turned out static at init, and through the TLS
 * descriptor otherwise (thread.c, sf_tls_probe). Run once as loaded (glibc gives a late library
 * static TLS from its surplus) and once with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=0,
 * where the library's TLS is dynamic: a wrong verdict there would have every thread but the
 * first read another thread's memory for its record. Calls the malloc shim's malloc and free
 * through dlsym (RTLD_LOCAL: they replace nothing in this process).
 * Usage: tls-check <libsegfit-malloc.so>
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef size_t (*usable_fn)(void *);
static malloc_fn lib_malloc;
static free_fn lib_free;
static usable_fn lib_usable;

#define THREADS 8
#define BLOCKS 64

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
      mine[i] = lib_malloc(size);
      if (mine[i] == NULL || lib_usable(mine[i]) < size) fail("malloc", id);
      memset(mine[i], (int)(id + i), size);
    }
    for (int i = 0; i < BLOCKS; i++) {
      if (mine[i][0] != (uint8_t)(id + i)) fail("a block changed under its owner", id);
      lib_free(mine[i]);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <libsegfit-malloc.so>\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "tls-check: dlopen: %s\n", dlerror());
    return 1;
  }
  lib_malloc = (malloc_fn)(uintptr_t)dlsym(lib, "malloc");
  lib_free = (free_fn)(uintptr_t)dlsym(lib, "free");
  lib_usable = (usable_fn)(uintptr_t)dlsym(lib, "malloc_usable_size");
  if (lib_malloc == NULL || lib_free == NULL || lib_usable == NULL) {
    fprintf(stderr, "tls-check: the shim's malloc family is missing\n");
    return 1;
  }
  pthread_t t[THREADS];
  for (long i = 1; i < THREADS; i++)
    if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) != 0) fail("pthread_create", 0);
  worker((void *)(intptr_t)0);
  for (long i = 1; i < THREADS; i++) pthread_join(t[i], NULL);
  printf("tls-check: %d threads, ok (%s)\n", THREADS,
         getenv("GLIBC_TUNABLES") != NULL ? getenv("GLIBC_TUNABLES") : "as loaded");
  return 0;
}
