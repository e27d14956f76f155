/* gguf/internal.h: what the reader (read.c) and the writer (write.c) share — the format's
 * constants and limits, value sizes, and little-endian loads. The host is little-endian (x86-64,
 * aarch64), as GGUF is, so values are copied byte for byte; the build refuses a big-endian host
 * rather than write wrong files. */
#ifndef PERSONA_GGUF_INTERNAL_H
#define PERSONA_GGUF_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "gguf/gguf.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf: little-endian host required"
#endif

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
/* Limits a file may not exceed (docs/formats.md): they bound what a damaged or hostile file can
 * make us allocate, long before the file's own size would. */
#define GGUF_MAX_KV ((uint64_t)1 << 20)
#define GGUF_MAX_TENSORS ((uint64_t)1 << 20)
#define GGUF_MAX_STRING ((uint64_t)1 << 30)
#define GGUF_MAX_ALIGNMENT ((uint64_t)1 << 30)
/* ggml keeps tensor names in char[64] and refuses longer ones; so do we, both ways. */
#define GGUF_MAX_NAME 63

/* Bytes of one scalar of type t; 0 for STRING, ARRAY and unknown types. */
static inline size_t gguf__scalar_size(uint32_t t)
{
    switch (t) {
    case GGUF_UINT8:
    case GGUF_INT8:
    case GGUF_BOOL:
        return 1;
    case GGUF_UINT16:
    case GGUF_INT16:
        return 2;
    case GGUF_UINT32:
    case GGUF_INT32:
    case GGUF_FLOAT32:
        return 4;
    case GGUF_UINT64:
    case GGUF_INT64:
    case GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

static inline uint32_t gguf__ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t gguf__ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t gguf__pad(uint64_t off, uint64_t align)
{
    return (off + align - 1) / align * align;
}

/* read.c, for gguf_writer_copy_kv: value i's type and its bytes as stored (arrays from the
 * element type on), inside the file. */
const uint8_t *gguf__kv_raw(const gguf_t *g, size_t i, uint32_t *type, size_t *len);

#endif
