/* gguf: reading and writing GGUF files (version 3; version 2 is read too), the model file format
 * of llama.cpp and of persona's text engine.
 *
 * Reading: gguf_open maps the file read-only and validates all of it before returning — magic,
 * version, counts (bounded), every string and array inside the file, tensor types known to
 * src/nn, dimensions, and every tensor's data inside the file at the file's alignment — so that
 * nothing after open can read out of bounds, whatever the bytes. Damaged files get a one-line
 * reason in err.
 *
 * Writing: a gguf_writer_t collects metadata (in insertion order; setting a key again replaces
 * its value in place) and tensors (data borrowed until gguf_writer_write), then writes the file
 * atomically (temporary file, fsync, rename). Output follows the specification exactly:
 * little-endian, version 3, `general.alignment` honoured (default 32), tensor data padded.
 *
 * Strings in GGUF are length-prefixed and may contain any byte; accessors give pointer + length.
 * Pointers returned by a gguf_t live as long as it does. */
#ifndef PERSONA_GGUF_H
#define PERSONA_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GGUF_UINT8 = 0,
    GGUF_INT8 = 1,
    GGUF_UINT16 = 2,
    GGUF_INT16 = 3,
    GGUF_UINT32 = 4,
    GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6,
    GGUF_BOOL = 7,
    GGUF_STRING = 8,
    GGUF_ARRAY = 9,
    GGUF_UINT64 = 10,
    GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
} gguf_vtype_t;

#define GGUF_MAX_DIMS 4

typedef struct {
    const char *name;          /* NUL-terminated copy */
    uint32_t type;             /* an nn_type_t */
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] innermost (row length); unused dims are 1 */
    const void *data;          /* inside the mapping */
    size_t size;               /* bytes */
} gguf_tensor_t;

typedef struct gguf gguf_t;

int gguf_open(const char *path, gguf_t **out, char *err, size_t errlen);
/* The same from bytes already in memory (borrowed; used by fuzz tests). */
int gguf_open_memory(const void *data, size_t size, gguf_t **out, char *err, size_t errlen);
void gguf_close(gguf_t **g); /* NULL-safe */

uint32_t gguf_version(const gguf_t *g);
size_t gguf_alignment(const gguf_t *g);

/* ---- metadata ---- */
size_t gguf_kv_count(const gguf_t *g);
const char *gguf_kv_key(const gguf_t *g, size_t i);
gguf_vtype_t gguf_kv_type(const gguf_t *g, size_t i);
int gguf_find_key(const gguf_t *g, const char *key); /* index, or -1 */

/* Typed getters by key: true when the key exists and converts without loss (any integer type
 * whose value fits; FLOAT32/FLOAT64 for floats). */
bool gguf_get_u32(const gguf_t *g, const char *key, uint32_t *out);
bool gguf_get_i64(const gguf_t *g, const char *key, int64_t *out);
bool gguf_get_f32(const gguf_t *g, const char *key, float *out);
bool gguf_get_f64(const gguf_t *g, const char *key, double *out); /* FLOAT32 or FLOAT64 */
bool gguf_get_bool(const gguf_t *g, const char *key, bool *out);
bool gguf_get_str(const gguf_t *g, const char *key, const char **s, size_t *len);
/* Arrays of numbers: element type, count, and a pointer to the packed little-endian elements
 * (unaligned: copy with memcpy). */
bool gguf_get_arr(const gguf_t *g, const char *key, gguf_vtype_t *elem_type, size_t *n,
                  const void **data);
/* Arrays of strings: the count, then element i. */
bool gguf_get_arr_str_count(const gguf_t *g, const char *key, size_t *n);
bool gguf_get_arr_str(const gguf_t *g, const char *key, size_t i, const char **s, size_t *len);

/* ---- tensors ---- */
size_t gguf_tensor_count(const gguf_t *g);
const gguf_tensor_t *gguf_tensor(const gguf_t *g, size_t i);
const gguf_tensor_t *gguf_find_tensor(const gguf_t *g, const char *name); /* NULL if absent */

/* ---- writing ---- */
typedef struct gguf_writer gguf_writer_t;

gguf_writer_t *gguf_writer_new(void); /* NULL only when out of memory */
void gguf_writer_free(gguf_writer_t **w); /* NULL-safe */
/* Setters return 0 or -1 (out of memory, bad argument). Strings are copied. */
int gguf_writer_set_u32(gguf_writer_t *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer_t *w, const char *key, int32_t v);
int gguf_writer_set_u64(gguf_writer_t *w, const char *key, uint64_t v);
int gguf_writer_set_f32(gguf_writer_t *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer_t *w, const char *key, bool v);
/* Any scalar type (UINT8 ... FLOAT64, BOOL as one byte 0/1): v points to the value in host
 * (little-endian) layout, gguf__scalar_size bytes. */
int gguf_writer_set_val(gguf_writer_t *w, const char *key, gguf_vtype_t type, const void *v);
int gguf_writer_set_str(gguf_writer_t *w, const char *key, const char *s, size_t len);
int gguf_writer_set_arr(gguf_writer_t *w, const char *key, gguf_vtype_t elem_type, const void *data,
                        size_t n);
int gguf_writer_set_arr_str(gguf_writer_t *w, const char *key, const char *const *strs,
                            const size_t *lens, size_t n);
/* Copies every key of g except those for which skip(key) is true (skip may be NULL). */
int gguf_writer_copy_kv(gguf_writer_t *w, const gguf_t *g, bool (*skip)(const char *key));
/* Adds a tensor: ne[0] innermost; data of nn_row_bytes(type, ne[0]) * ne[1] * ne[2] * ne[3]
 * bytes, borrowed until gguf_writer_write. -1 for a duplicate name, bad type or shape. */
int gguf_writer_add_tensor(gguf_writer_t *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data);
/* Writes atomically; 0, or -1 with err set. */
int gguf_writer_write(gguf_writer_t *w, const char *path, char *err, size_t errlen);

#endif
