/* SPDX-License-Identifier: Apache-2.0 */
/* segfit: jni.c, the JNI glue of io.segfit.internal.NativeHeap.
 *
 * It only translates: each export calls one segfit_* function (freeBuffer and reallocateBuffer
 * also read the buffer's address field) and never allocates on its own, never throws, and never
 * calls back into Java on a hot path. Addresses travel as positive jlongs; a failed allocation
 * returns the negative SEGFIT_E_* code from the same call, so an allocation is one JNI call. The
 * statistics, like the error codes, travel as the lists of segfit.h: their table, then their
 * values in list order.
 */
#include <jni.h>
#include <stdint.h>

#include "segfit.h"
#include "io_segfit_internal_NativeHeap.h"

/* java.nio.Buffer.address, cached once: JNI field access ignores module encapsulation, so the
 * facade needs neither Unsafe nor --add-opens to learn which block a buffer views. */
static jfieldID buffer_address;

/* The code of the call that just failed on this thread, never 0. */
static jlong failure(void) {
  int code = segfit_last_error();
  return code < 0 ? (jlong)code : (jlong)SEGFIT_E_OUT_OF_MEMORY;
}

static jlong address_or_failure(void *p) {
  return p != NULL ? (jlong)(intptr_t)p : failure();
}

static segfit_heap_t *heap_of(jlong heap) {
  return (segfit_heap_t *)(intptr_t)heap;
}

static void *pointer_of(jlong address) {
  return (void *)(intptr_t)address;
}

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
  JNIEnv *env;
  if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
  jclass buffer = (*env)->FindClass(env, "java/nio/Buffer");
  if (buffer == NULL) return JNI_ERR;
  buffer_address = (*env)->GetFieldID(env, buffer, "address", "J");
  (*env)->DeleteLocalRef(env, buffer);
  if (buffer_address == NULL) return JNI_ERR;
  return JNI_VERSION_1_8;
}

/* ---------------------------------------------------------------------------------------------
 * Constants of segfit.h
 * ------------------------------------------------------------------------------------------- */

/* Class: io.segfit.internal.NativeHeap  Method: version  Signature: ()I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_version(JNIEnv *env, jclass cls) {
  return SEGFIT_VERSION_MAJOR << 16 | SEGFIT_VERSION_MINOR << 8 | SEGFIT_VERSION_PATCH;
}

/* Class: io.segfit.internal.NativeHeap  Method: regionShift  Signature: ()I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_regionShift(JNIEnv *env, jclass cls) {
  return SEGFIT_REGION_SHIFT;
}

/* Class: io.segfit.internal.NativeHeap  Method: maxSize  Signature: ()J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_maxSize(JNIEnv *env, jclass cls) {
  return (jlong)SEGFIT_MAX_SIZE;
}

/* Class: io.segfit.internal.NativeHeap  Method: maxAlignment  Signature: ()J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_maxAlignment(JNIEnv *env, jclass cls) {
  return (jlong)SEGFIT_MAX_ALIGNMENT;
}

/* Class: io.segfit.internal.NativeHeap  Method: maxClasses  Signature: ()I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_maxClasses(JNIEnv *env, jclass cls) {
  return SEGFIT_MAX_CLASSES;
}

/* Class: io.segfit.internal.NativeHeap  Method: maxNameLength  Signature: ()I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_maxNameLength(JNIEnv *env, jclass cls) {
  return SEGFIT_MAX_NAME_LENGTH;
}

/* Class: io.segfit.internal.NativeHeap  Method: defaultPurgeDelayMs  Signature: ()J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_defaultPurgeDelayMs(JNIEnv *env,
                                                                             jclass cls) {
  return SEGFIT_DEFAULT_PURGE_DELAY_MS;
}

/* Class: io.segfit.internal.NativeHeap  Method: lendSlabMin  Signature: ()J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_lendSlabMin(JNIEnv *env, jclass cls) {
  return SEGFIT_LEND_SLAB_MIN;
}

/* Class: io.segfit.internal.NativeHeap  Method: lendSlabSize  Signature: (J)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_lendSlabSize(JNIEnv *env, jclass cls,
                                                                       jlong block_size) {
  return block_size > 0 ? (jlong)segfit_slab_lend_size((size_t)block_size) : 0;
}

/* Class: io.segfit.internal.NativeHeap  Method: lendMax  Signature: ()J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_lendMax(JNIEnv *env, jclass cls) {
  return SEGFIT_LEND_MAX_BLOCK;
}

/* Class: io.segfit.internal.NativeHeap  Method: smallMax  Signature: ()J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_smallMax(JNIEnv *env, jclass cls) {
  return (jlong)segfit_small_max();
}

/* Class: io.segfit.internal.NativeHeap  Method: pageSize  Signature: ()J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_pageSize(JNIEnv *env, jclass cls) {
  return (jlong)segfit_page_size();
}

/* ---------------------------------------------------------------------------------------------
 * Error codes: the SEGFIT_ERRORS X-macro as a table, so Java never retypes a value
 * ------------------------------------------------------------------------------------------- */

#define SF_JNI_ERROR_ENTRY_(name, value, message) {#name, value},
static const struct {
  const char *name;
  int value;
} sf_jni_errors[] = {SEGFIT_ERRORS(SF_JNI_ERROR_ENTRY_)};
#undef SF_JNI_ERROR_ENTRY_
#define SF_JNI_ERROR_COUNT ((jint)(sizeof(sf_jni_errors) / sizeof(sf_jni_errors[0])))

/* Class: io.segfit.internal.NativeHeap  Method: errorCount  Signature: ()I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_errorCount(JNIEnv *env, jclass cls) {
  return SF_JNI_ERROR_COUNT;
}

/* Class: io.segfit.internal.NativeHeap  Method: errorName  Signature: (I)Ljava/lang/String; */
JNIEXPORT jstring JNICALL Java_io_segfit_internal_NativeHeap_errorName(JNIEnv *env, jclass cls,
                                                                      jint index) {
  if (index < 0 || index >= SF_JNI_ERROR_COUNT) return NULL;
  return (*env)->NewStringUTF(env, sf_jni_errors[index].name);
}

/* Class: io.segfit.internal.NativeHeap  Method: errorValue  Signature: (I)I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_errorValue(JNIEnv *env, jclass cls,
                                                                    jint index) {
  if (index < 0 || index >= SF_JNI_ERROR_COUNT) return 0;
  return sf_jni_errors[index].value;
}

/* Class: io.segfit.internal.NativeHeap  Method: errorMessage  Signature: (I)Ljava/lang/String; */
JNIEXPORT jstring JNICALL Java_io_segfit_internal_NativeHeap_errorMessage(JNIEnv *env, jclass cls,
                                                                         jint code) {
  const char *message = segfit_strerror(code);
  return message != NULL ? (*env)->NewStringUTF(env, message) : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Heaps
 * ------------------------------------------------------------------------------------------- */

/* Class: io.segfit.internal.NativeHeap  Method: create  Signature: ([BJJZZJZ)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_create(
    JNIEnv *env, jclass cls, jbyteArray name, jlong max_bytes, jlong reserve_bytes,
    jboolean pre_touch, jboolean huge_pages, jlong purge_delay_ms, jboolean debug) {
  /* The name is copied into this frame (segfit_heap_create copies it again): no allocation. */
  char name_buf[SEGFIT_MAX_NAME_LENGTH + 1];
  segfit_options_t options;
  segfit_options_init(&options);
  if (name != NULL) {
    jsize length = (*env)->GetArrayLength(env, name);
    if (length < 1 || length > SEGFIT_MAX_NAME_LENGTH + 1) {
      return SEGFIT_E_INVALID_OPTION;
    }
    (*env)->GetByteArrayRegion(env, name, 0, length, (jbyte *)name_buf);
    name_buf[length - 1] = '\0';
    options.name = name_buf;
  }
  options.max_bytes = (uint64_t)max_bytes;
  options.reserve_bytes = (uint64_t)reserve_bytes;
  options.pre_touch = pre_touch ? 1 : 0;
  options.huge_pages = huge_pages ? 1 : 0;
  options.purge_delay_ms = purge_delay_ms;
  options.debug = debug ? 1 : 0;
  segfit_heap_t *heap = NULL;
  int rc = segfit_heap_create(&options, &heap);
  return rc == 0 ? (jlong)(intptr_t)heap : (jlong)rc;
}

/* Class: io.segfit.internal.NativeHeap  Method: destroy  Signature: (J)I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_destroy(JNIEnv *env, jclass cls,
                                                                 jlong heap) {
  return segfit_heap_destroy(heap_of(heap));
}

/* Class: io.segfit.internal.NativeHeap  Method: name  Signature: (J)Ljava/lang/String; */
JNIEXPORT jstring JNICALL Java_io_segfit_internal_NativeHeap_name(JNIEnv *env, jclass cls,
                                                                 jlong heap) {
  const char *name = segfit_heap_name(heap_of(heap));
  return name != NULL ? (*env)->NewStringUTF(env, name) : NULL;
}

/* Class: io.segfit.internal.NativeHeap  Method: trim  Signature: (J)I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_trim(JNIEnv *env, jclass cls,
                                                              jlong heap) {
  return segfit_trim(heap_of(heap));
}

/* Class: io.segfit.internal.NativeHeap  Method: corruption  Signature: (J[J)Ljava/lang/String; */
JNIEXPORT jstring JNICALL Java_io_segfit_internal_NativeHeap_corruption(JNIEnv *env, jclass cls,
                                                                       jlong heap,
                                                                       jlongArray block) {
  segfit_corruption_t r;
  if (segfit_debug_corruption(heap_of(heap), &r) != 1) return NULL;
  jlong address = (jlong)r.block;
  (*env)->SetLongArrayRegion(env, block, 0, 1, &address);
  char text[256];
  segfit_corruption_describe(&r, text, sizeof text);
  return (*env)->NewStringUTF(env, text);
}

/* ---------------------------------------------------------------------------------------------
 * Statistics: the SEGFIT_STATS and SEGFIT_CLASS_STATS lists as tables, and a snapshot's values
 * ------------------------------------------------------------------------------------------- */

/* A kind that is neither COUNTER nor GAUGE does not compile. */
#define SF_JNI_KIND_COUNTER "COUNTER"
#define SF_JNI_KIND_GAUGE "GAUGE"
#define SF_JNI_STAT_ROW_(field, accessor, metric, kind, unit, description) \
  {#field, #accessor, metric, SF_JNI_KIND_##kind, unit, description},
typedef const char *sf_jni_stat_row_t[io_segfit_internal_NativeHeap_STAT_COLUMNS];
static const sf_jni_stat_row_t sf_jni_stats[] = {SEGFIT_STATS(SF_JNI_STAT_ROW_)};
static const sf_jni_stat_row_t sf_jni_class_stats[] = {SEGFIT_CLASS_STATS(SF_JNI_STAT_ROW_)};
#undef SF_JNI_STAT_ROW_
#define SF_JNI_COUNT_(rows) ((jint)(sizeof(rows) / sizeof(rows[0])))
#define SF_JNI_STAT_COUNT SF_JNI_COUNT_(sf_jni_stats)
#define SF_JNI_CLASS_STAT_COUNT SF_JNI_COUNT_(sf_jni_class_stats)

/* Class: io.segfit.internal.NativeHeap  Method: statCount  Signature: (Z)I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_statCount(JNIEnv *env, jclass cls,
                                                                   jboolean per_class) {
  return per_class ? SF_JNI_CLASS_STAT_COUNT : SF_JNI_STAT_COUNT;
}

/* Class: io.segfit.internal.NativeHeap  Method: statColumn
 * Signature: (ZII)Ljava/lang/String; */
JNIEXPORT jstring JNICALL Java_io_segfit_internal_NativeHeap_statColumn(JNIEnv *env, jclass cls,
                                                                       jboolean per_class,
                                                                       jint index, jint column) {
  jint count = per_class ? SF_JNI_CLASS_STAT_COUNT : SF_JNI_STAT_COUNT;
  if (index < 0 || index >= count) return NULL;
  if (column < 0 || column >= io_segfit_internal_NativeHeap_STAT_COLUMNS) return NULL;
  const sf_jni_stat_row_t *rows = per_class ? sf_jni_class_stats : sf_jni_stats;
  return (*env)->NewStringUTF(env, rows[index][column]);
}

#define SF_JNI_STAT_VALUE_(field, accessor, metric, kind, unit, description) \
  *out++ = (jlong)from->field;

static jlong *put_class(jlong *out, const segfit_class_stats_t *from) {
  SEGFIT_CLASS_STATS(SF_JNI_STAT_VALUE_)
  return out;
}

/* The snapshot's layout: the SEGFIT_STATS values, class_count, then a record of the
 * SEGFIT_CLASS_STATS values for each class and one for the large blocks. */
#define SF_JNI_STATS_LENGTH \
  (SF_JNI_STAT_COUNT + 1 + (SEGFIT_MAX_CLASSES + 1) * SF_JNI_CLASS_STAT_COUNT)

/* Class: io.segfit.internal.NativeHeap  Method: stats  Signature: (J[J)I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_stats(JNIEnv *env, jclass cls,
                                                               jlong heap, jlongArray out_array) {
  segfit_stats_t s;
  jlong v[SF_JNI_STATS_LENGTH];
  if ((*env)->GetArrayLength(env, out_array) < SF_JNI_STATS_LENGTH) {
    return SEGFIT_E_INVALID_OPTION;
  }
  int rc = segfit_stats(heap_of(heap), &s);
  if (rc != 0) return rc;
  jlong *out = v;
  const segfit_stats_t *from = &s;
  SEGFIT_STATS(SF_JNI_STAT_VALUE_)
  uint32_t count = s.class_count <= SEGFIT_MAX_CLASSES ? s.class_count : SEGFIT_MAX_CLASSES;
  *out++ = (jlong)count;
  for (uint32_t i = 0; i < count; i++) out = put_class(out, &s.classes[i]);
  out = put_class(out, &s.large);
  (*env)->SetLongArrayRegion(env, out_array, 0, (jsize)(out - v), v);
  return 0;
}
#undef SF_JNI_STAT_VALUE_

/* ---------------------------------------------------------------------------------------------
 * Blocks by address
 * ------------------------------------------------------------------------------------------- */

/* Class: io.segfit.internal.NativeHeap  Method: allocate  Signature: (JJ)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_allocate(JNIEnv *env, jclass cls,
                                                                   jlong heap, jlong size) {
  return address_or_failure(segfit_alloc(heap_of(heap), (size_t)size));
}

/* Class: io.segfit.internal.NativeHeap  Method: allocateZeroed  Signature: (JJ)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_allocateZeroed(JNIEnv *env, jclass cls,
                                                                         jlong heap,
                                                                         jlong size) {
  return address_or_failure(segfit_alloc_zeroed(heap_of(heap), (size_t)size));
}

/* Class: io.segfit.internal.NativeHeap  Method: allocateAligned  Signature: (JJJ)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_allocateAligned(
    JNIEnv *env, jclass cls, jlong heap, jlong size, jlong alignment) {
  return address_or_failure(segfit_alloc_aligned(heap_of(heap), (size_t)size, (size_t)alignment));
}

/* Class: io.segfit.internal.NativeHeap  Method: reallocate  Signature: (JJJ)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_reallocate(JNIEnv *env, jclass cls,
                                                                     jlong heap, jlong address,
                                                                     jlong new_size) {
  return address_or_failure(segfit_realloc(heap_of(heap), pointer_of(address), (size_t)new_size));
}

/* Class: io.segfit.internal.NativeHeap  Method: free  Signature: (JJ)I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_free(JNIEnv *env, jclass cls,
                                                              jlong heap, jlong address) {
  return segfit_free(heap_of(heap), pointer_of(address));
}

/* Class: io.segfit.internal.NativeHeap  Method: freeSized  Signature: (JJJ)I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_freeSized(JNIEnv *env, jclass cls,
                                                                   jlong heap, jlong address,
                                                                   jlong size) {
  return segfit_free_sized(heap_of(heap), pointer_of(address), (size_t)size);
}

/* Class: io.segfit.internal.NativeHeap  Method: usableSize  Signature: (JJ)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_usableSize(JNIEnv *env, jclass cls,
                                                                     jlong heap, jlong address) {
  return (jlong)segfit_usable_size(heap_of(heap), pointer_of(address));
}

/* ---------------------------------------------------------------------------------------------
 * Slabs lent to the facade's thread caches
 * ------------------------------------------------------------------------------------------- */

/* Class: io.segfit.internal.NativeHeap  Method: lendSlab  Signature: (JJ)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_lendSlab(JNIEnv *env, jclass cls,
                                                                   jlong heap, jlong block_size) {
  uint32_t reserved = 0;
  void *start = segfit_slab_lend(heap_of(heap), (size_t)block_size, &reserved);
  /* The slab is SEGFIT_LEND_SLAB_MIN aligned and reserved below that: one value carries both. */
  return start != NULL ? (jlong)((uintptr_t)start | reserved) : failure();
}

/* Class: io.segfit.internal.NativeHeap  Method: returnSlab  Signature: (JJI)I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_returnSlab(JNIEnv *env, jclass cls,
                                                                    jlong heap, jlong start,
                                                                    jint handed_out) {
  if (handed_out < 0) return SEGFIT_E_INVALID_SIZE;
  return segfit_slab_return(heap_of(heap), pointer_of(start), (uint32_t)handed_out);
}

/* Class: io.segfit.internal.NativeHeap  Method: slabBarrier  Signature: ()Z */
JNIEXPORT jboolean JNICALL Java_io_segfit_internal_NativeHeap_slabBarrier(JNIEnv *env,
                                                                        jclass cls) {
  return segfit_slab_barrier() ? JNI_TRUE : JNI_FALSE;
}

/* Class: io.segfit.internal.NativeHeap  Method: copy  Signature: (JJJJ)I */
JNIEXPORT jint JNICALL Java_io_segfit_internal_NativeHeap_copy(JNIEnv *env, jclass cls, jlong heap,
                                                              jlong dst, jlong src, jlong size) {
  return segfit_copy(heap_of(heap), pointer_of(dst), pointer_of(src), (size_t)size);
}

/* ---------------------------------------------------------------------------------------------
 * Blocks by buffer
 * ------------------------------------------------------------------------------------------- */

/* Class: io.segfit.internal.NativeHeap  Method: freeBuffer
 * Signature: (JLjava/nio/ByteBuffer;I)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_freeBuffer(JNIEnv *env, jclass cls,
                                                                     jlong heap, jobject buffer,
                                                                     jint capacity) {
  jlong address = (*env)->GetLongField(env, buffer, buffer_address);
  if (address == 0) return 0; /* segfit_free_sized(NULL) would succeed: not a block */
  int rc = segfit_free_sized(heap_of(heap), pointer_of(address), (size_t)capacity);
  return rc == 0 ? address : (jlong)rc;
}

/* Class: io.segfit.internal.NativeHeap  Method: reallocateBuffer
 * Signature: (JLjava/nio/ByteBuffer;IJ)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_reallocateBuffer(
    JNIEnv *env, jclass cls, jlong heap, jobject buffer, jint capacity, jlong new_size) {
  jlong address = (*env)->GetLongField(env, buffer, buffer_address);
  if (address == 0) return 0; /* segfit_realloc(NULL) would allocate: not a block */
  int64_t usable = segfit_usable_size(heap_of(heap), pointer_of(address));
  if (usable < 0) return (jlong)usable;
  if ((int64_t)capacity > usable) return SEGFIT_E_SIZE_MISMATCH;
  return address_or_failure(segfit_realloc(heap_of(heap), pointer_of(address), (size_t)new_size));
}

/* Class: io.segfit.internal.NativeHeap  Method: address  Signature: (Ljava/nio/ByteBuffer;)J */
JNIEXPORT jlong JNICALL Java_io_segfit_internal_NativeHeap_address(JNIEnv *env, jclass cls,
                                                                  jobject buffer) {
  return (*env)->GetLongField(env, buffer, buffer_address);
}

/* Class: io.segfit.internal.NativeHeap  Method: wrap  Signature: (JJ)Ljava/nio/ByteBuffer; */
JNIEXPORT jobject JNICALL Java_io_segfit_internal_NativeHeap_wrap(JNIEnv *env, jclass cls,
                                                                 jlong address, jlong capacity) {
  return (*env)->NewDirectByteBuffer(env, pointer_of(address), capacity);
}
