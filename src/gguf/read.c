/* gguf/read.c: the GGUF reader. gguf_open maps a file read-only (gguf_open_memory borrows bytes)
 * and validates every byte the accessors will ever look at before it returns, so accessors are
 * plain lookups that cannot read out of bounds:
 *   1. magic "GGUF", version 2 or 3 (1 had 32-bit counts; a big-endian file shows a byte-swapped
 *      version and is refused as such);
 *   2. counts bounded (GGUF_MAX_KV, GGUF_MAX_TENSORS) and every string (<= GGUF_MAX_STRING) and
 *      array (elements that fit in the bytes left) inside the file; no nested arrays (ggml has
 *      none either), bools 0 or 1, keys and tensor names non-empty, without NUL, unique;
 *   3. general.alignment, when present, a u32 power of two;
 *   4. tensors: 1..4 dims, each > 0, element count without overflow, a type src/nn knows with rows
 *      of whole blocks, data aligned, inside the file, and no two tensors overlapping.
 * A gguf_t is immutable after open, so threads may share it. Thread: any. */
#include "gguf/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "nn/nn.h"

typedef struct {
    char *key;
    uint32_t type;
    const uint8_t *val; /* the value's bytes as stored (arrays: from the element type on) */
    size_t val_len;
    /* arrays */
    uint32_t elem_type;
    uint64_t n;
    const uint8_t *elems;       /* numeric arrays: packed elements */
    const uint8_t **str_elems;  /* string arrays: each element's length prefix */
    /* strings */
    const uint8_t *str;
    uint64_t str_len;
} gguf__kv_t;

struct gguf {
    const uint8_t *base;
    size_t size;
    void *map; /* gguf_open's mapping, NULL for gguf_open_memory */
    size_t map_len;
    uint32_t version;
    size_t alignment;
    size_t n_kv;
    gguf__kv_t *kv;
    size_t *kv_sorted; /* kv indices sorted by key, for lookups */
    size_t n_tensors;
    gguf_tensor_t *tensors;
    size_t *t_sorted; /* tensor indices sorted by name */
};

/* ==================================================================================== */
/* a bounds-checked cursor                                                              */
/* ==================================================================================== */

typedef struct {
    const uint8_t *p;
    size_t size;
    size_t pos;
    char *err;
    size_t errlen;
} cur_t;

__attribute__((format(printf, 2, 3))) static int fail(cur_t *c, const char *fmt, ...)
{
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static size_t left(const cur_t *c)
{
    return c->size - c->pos;
}

static int rd_u32(cur_t *c, uint32_t *v, const char *what)
{
    if (left(c) < 4)
        return fail(c, "truncated at byte %zu reading %s", c->pos, what);
    *v = gguf__ld32(c->p + c->pos);
    c->pos += 4;
    return 0;
}

static int rd_u64(cur_t *c, uint64_t *v, const char *what)
{
    if (left(c) < 8)
        return fail(c, "truncated at byte %zu reading %s", c->pos, what);
    *v = gguf__ld64(c->p + c->pos);
    c->pos += 8;
    return 0;
}

static int rd_str(cur_t *c, const uint8_t **s, uint64_t *len, const char *what)
{
    size_t at = c->pos;
    int rc = rd_u64(c, len, what);
    if (rc < 0)
        return rc;
    if (*len > GGUF_MAX_STRING)
        return fail(c, "%s at byte %zu: string length %llu over the limit", what, at,
                    (unsigned long long)*len);
    if (*len > left(c))
        return fail(c, "%s at byte %zu: string of %llu bytes runs past the end of the file", what,
                    at, (unsigned long long)*len);
    *s = c->p + c->pos;
    c->pos += (size_t)*len;
    return 0;
}

/* A key or tensor name: non-empty, no NUL (we hand out C strings), copied. */
static int rd_name(cur_t *c, char **out, const char *what, uint64_t max)
{
    const uint8_t *s;
    uint64_t len;
    size_t at = c->pos;
    int rc = rd_str(c, &s, &len, what);
    if (rc < 0)
        return rc;
    if (len == 0)
        return fail(c, "%s at byte %zu is empty", what, at);
    if (len > max)
        return fail(c, "%s at byte %zu is %llu bytes long (at most %llu)", what, at,
                    (unsigned long long)len, (unsigned long long)max);
    if (memchr(s, 0, (size_t)len))
        return fail(c, "%s at byte %zu contains a NUL byte", what, at);
    *out = malloc((size_t)len + 1);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, s, (size_t)len);
    (*out)[len] = '\0';
    return 0;
}

/* ==================================================================================== */
/* metadata                                                                             */
/* ==================================================================================== */

static int rd_value(cur_t *c, gguf__kv_t *kv)
{
    size_t start = c->pos;
    int rc;
    size_t sz = gguf__scalar_size(kv->type);
    if (sz) {
        if (left(c) < sz)
            return fail(c, "truncated at byte %zu reading the value of '%s'", c->pos, kv->key);
        if (kv->type == GGUF_BOOL && c->p[c->pos] > 1)
            return fail(c, "bool '%s' has value %u", kv->key, c->p[c->pos]);
        c->pos += sz;
    } else if (kv->type == GGUF_STRING) {
        if ((rc = rd_str(c, &kv->str, &kv->str_len, kv->key)) < 0)
            return rc;
    } else if (kv->type == GGUF_ARRAY) {
        if ((rc = rd_u32(c, &kv->elem_type, "an array's element type")) < 0 ||
            (rc = rd_u64(c, &kv->n, "an array's length")) < 0)
            return rc;
        size_t esz = gguf__scalar_size(kv->elem_type);
        if (esz) {
            if (kv->n > left(c) / esz)
                return fail(c, "array '%s' of %llu elements runs past the end of the file",
                            kv->key, (unsigned long long)kv->n);
            kv->elems = c->p + c->pos;
            if (kv->elem_type == GGUF_BOOL)
                for (uint64_t i = 0; i < kv->n; i++)
                    if (kv->elems[i] > 1)
                        return fail(c, "bool array '%s' has value %u at %llu", kv->key,
                                    kv->elems[i], (unsigned long long)i);
            c->pos += (size_t)kv->n * esz;
        } else if (kv->elem_type == GGUF_STRING) {
            /* each element takes at least its 8-byte length */
            if (kv->n > left(c) / 8)
                return fail(c, "string array '%s' of %llu elements runs past the end of the file",
                            kv->key, (unsigned long long)kv->n);
            kv->str_elems = malloc((size_t)(kv->n ? kv->n : 1) * sizeof *kv->str_elems);
            if (!kv->str_elems)
                return -ENOMEM;
            for (uint64_t i = 0; i < kv->n; i++) {
                const uint8_t *s;
                uint64_t len;
                kv->str_elems[i] = c->p + c->pos;
                if ((rc = rd_str(c, &s, &len, kv->key)) < 0)
                    return rc;
            }
        } else if (kv->elem_type == GGUF_ARRAY) {
            return fail(c, "array '%s' holds arrays (nested arrays are not supported)", kv->key);
        } else {
            return fail(c, "array '%s' has unknown element type %u", kv->key, kv->elem_type);
        }
    } else {
        return fail(c, "key '%s' has unknown value type %u", kv->key, kv->type);
    }
    kv->val = c->p + start;
    kv->val_len = c->pos - start;
    return 0;
}

/* qsort has no context argument; opens may run on several threads at once */
static _Thread_local const gguf_t *sort_g;

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(sort_g->kv[*(const size_t *)a].key, sort_g->kv[*(const size_t *)b].key);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(sort_g->tensors[*(const size_t *)a].name,
                  sort_g->tensors[*(const size_t *)b].name);
}

static int cmp_tensor_off(const void *a, const void *b)
{
    const gguf_tensor_t *x = &sort_g->tensors[*(const size_t *)a];
    const gguf_tensor_t *y = &sort_g->tensors[*(const size_t *)b];
    return x->data < y->data ? -1 : x->data > y->data;
}

static size_t *sorted_index(gguf_t *g, size_t n, int (*cmp)(const void *, const void *))
{
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    sort_g = g;
    qsort(idx, n, sizeof *idx, cmp);
    sort_g = NULL;
    return idx;
}

/* ==================================================================================== */
/* open                                                                                 */
/* ==================================================================================== */

static int parse(gguf_t *g, char *err, size_t errlen)
{
    cur_t c = {.p = g->base, .size = g->size, .err = err, .errlen = errlen};
    cur_t *cp = &c;
    int rc;
    uint64_t n_tensors = 0, n_kv = 0;
    size_t *by_off = NULL;

    if (g->size == 0)
        return fail(cp, "empty file");
    if (g->size < 4 || memcmp(g->base, GGUF_MAGIC, 4) != 0)
        return fail(cp, "not a GGUF file (bad magic)");
    c.pos = 4;
    if ((rc = rd_u32(cp, &g->version, "the version")) < 0)
        return rc;
    if (g->version == 0x02000000 || g->version == 0x03000000)
        return fail(cp, "big-endian GGUF files are not supported");
    if (g->version != 2 && g->version != 3)
        return fail(cp, "unsupported GGUF version %u (2 and 3 are read)", g->version);
    if ((rc = rd_u64(cp, &n_tensors, "the tensor count")) < 0 ||
        (rc = rd_u64(cp, &n_kv, "the metadata count")) < 0)
        return rc;
    if (n_tensors > GGUF_MAX_TENSORS)
        return fail(cp, "%llu tensors, over the limit of %llu", (unsigned long long)n_tensors,
                    (unsigned long long)GGUF_MAX_TENSORS);
    if (n_kv > GGUF_MAX_KV)
        return fail(cp, "%llu metadata keys, over the limit of %llu", (unsigned long long)n_kv,
                    (unsigned long long)GGUF_MAX_KV);
    /* a key takes >= 13 bytes, a tensor info >= 29: a count the file cannot hold is refused
     * before it sizes an allocation */
    if (n_kv > left(cp) / 13 || n_tensors > left(cp) / 29)
        return fail(cp, "counts (%llu keys, %llu tensors) larger than the file can hold",
                    (unsigned long long)n_kv, (unsigned long long)n_tensors);

    g->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors)
        return -ENOMEM;

    for (size_t i = 0; i < n_kv; i++) {
        gguf__kv_t *kv = &g->kv[i];
        if ((rc = rd_name(cp, &kv->key, "a metadata key", GGUF_MAX_STRING)) < 0)
            return rc;
        g->n_kv = i + 1; /* owns kv->key from here on */
        if ((rc = rd_u32(cp, &kv->type, "a value type")) < 0 || (rc = rd_value(cp, kv)) < 0)
            return rc;
    }
    if (!(g->kv_sorted = sorted_index(g, g->n_kv, cmp_kv)))
        return -ENOMEM;
    for (size_t i = 1; i < g->n_kv; i++)
        if (!strcmp(g->kv[g->kv_sorted[i - 1]].key, g->kv[g->kv_sorted[i]].key))
            return fail(cp, "duplicate key '%s'", g->kv[g->kv_sorted[i]].key);

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int ai = gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        const gguf__kv_t *kv = &g->kv[ai];
        uint32_t a = kv->type == GGUF_UINT32 ? gguf__ld32(kv->val) : 0;
        if (kv->type != GGUF_UINT32 || a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT)
            return fail(cp, "general.alignment must be a u32 power of two");
        g->alignment = a;
    }

    uint64_t *offs = NULL; /* relative offsets until the data section's start is known */
    offs = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *offs);
    if (!offs)
        return -ENOMEM;
    for (size_t i = 0; i < n_tensors; i++) {
        gguf_tensor_t *t = &g->tensors[i];
        char *name = NULL;
        if ((rc = rd_name(cp, &name, "a tensor name", GGUF_MAX_NAME)) < 0)
            goto out;
        t->name = name;
        g->n_tensors = i + 1;
        if ((rc = rd_u32(cp, &t->n_dims, "a tensor's dimension count")) < 0)
            goto out;
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
            rc = fail(cp, "tensor '%s' has %u dimensions (1 to %d)", name, t->n_dims,
                      GGUF_MAX_DIMS);
            goto out;
        }
        uint64_t nelem = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if ((uint32_t)d >= t->n_dims)
                continue;
            if ((rc = rd_u64(cp, &t->ne[d], "a tensor dimension")) < 0)
                goto out;
            /* each element takes at least 18/32 bytes, so no tensor in this file has more than
             * 2 * size elements: that bound keeps every product below from overflowing */
            if (t->ne[d] == 0 || t->ne[d] > (uint64_t)g->size * 2 ||
                __builtin_mul_overflow(nelem, t->ne[d], &nelem) || nelem > (uint64_t)g->size * 2) {
                rc = fail(cp, "tensor '%s' has dimension %d = %llu (zero, or more data than the "
                          "file holds)", name, d, (unsigned long long)t->ne[d]);
                goto out;
            }
        }
        if ((rc = rd_u32(cp, &t->type, "a tensor type")) < 0)
            goto out;
        if (!nn_type_valid(t->type)) {
            rc = fail(cp, "tensor '%s' has unsupported type %u", name, t->type);
            goto out;
        }
        size_t row = nn_row_bytes((nn_type_t)t->type, (size_t)t->ne[0]);
        if (row == 0) {
            rc = fail(cp, "tensor '%s': row of %llu elements is not whole blocks of %s", name,
                      (unsigned long long)t->ne[0], nn_type_name((nn_type_t)t->type));
            goto out;
        }
        uint64_t sz;
        if (__builtin_mul_overflow((uint64_t)row, t->ne[1] * t->ne[2] * t->ne[3], &sz) ||
            sz > g->size) {
            rc = fail(cp, "tensor '%s' is larger than the file", name);
            goto out;
        }
        t->size = (size_t)sz;
        if ((rc = rd_u64(cp, &offs[i], "a tensor offset")) < 0)
            goto out;
    }
    if (!(g->t_sorted = sorted_index(g, g->n_tensors, cmp_tensor_name))) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 1; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[g->t_sorted[i - 1]].name, g->tensors[g->t_sorted[i]].name)) {
            rc = fail(cp, "duplicate tensor '%s'", g->tensors[g->t_sorted[i]].name);
            goto out;
        }

    uint64_t data_start = gguf__pad(c.pos, g->alignment);
    for (size_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor_t *t = &g->tensors[i];
        if (offs[i] % g->alignment) {
            rc = fail(cp, "tensor '%s' data offset %llu is not a multiple of the alignment %zu",
                      t->name, (unsigned long long)offs[i], g->alignment);
            goto out;
        }
        if (data_start > g->size || offs[i] > g->size - data_start ||
            t->size > g->size - data_start - offs[i]) {
            rc = fail(cp, "tensor '%s' data (offset %llu, %zu bytes) runs past the end of the "
                      "file", t->name, (unsigned long long)offs[i], t->size);
            goto out;
        }
        t->data = g->base + data_start + offs[i];
    }
    if (!(by_off = sorted_index(g, g->n_tensors, cmp_tensor_off))) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 1; i < g->n_tensors; i++) {
        const gguf_tensor_t *a = &g->tensors[by_off[i - 1]], *b = &g->tensors[by_off[i]];
        if ((const uint8_t *)a->data + a->size > (const uint8_t *)b->data) {
            rc = fail(cp, "tensors '%s' and '%s' overlap", a->name, b->name);
            goto out;
        }
    }
    rc = 0;
out:
    free(offs);
    free(by_off);
    return rc;
}

static void destroy(gguf_t *g)
{
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str_elems);
    }
    for (size_t i = 0; i < g->n_tensors; i++)
        free((char *)g->tensors[i].name);
    free(g->kv);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->t_sorted);
    if (g->map)
        munmap(g->map, g->map_len);
    free(g);
}

static int open_bytes(const void *data, size_t size, void *map, gguf_t **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    gguf_t *g = calloc(1, sizeof *g);
    if (!g) {
        if (map)
            munmap(map, size);
        return -ENOMEM;
    }
    g->base = data;
    g->size = size;
    g->map = map;
    g->map_len = size;
    int rc = parse(g, err, errlen);
    if (rc == -ENOMEM && err && errlen)
        snprintf(err, errlen, "out of memory");
    if (rc < 0) {
        destroy(g);
        return rc;
    }
    *out = g;
    return 0;
}

int gguf_open_memory(const void *data, size_t size, gguf_t **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!data && size)
        return -EINVAL;
    return open_bytes(size ? data : "", size, NULL, out, err, errlen);
}

int gguf_open(const char *path, gguf_t **out, char *err, size_t errlen)
{
    int rc, fd = -1;
    struct stat st;
    void *map = NULL;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        if (err && errlen)
            snprintf(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size == 0) {
        rc = gguf_open_memory(NULL, 0, out, err, errlen);
        goto out;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = -errno;
        if (err && errlen)
            snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        goto out;
    }
    rc = open_bytes(map, (size_t)st.st_size, map, out, err, errlen); /* takes the mapping */
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

void gguf_close(gguf_t **g)
{
    if (g && *g) {
        destroy(*g);
        *g = NULL;
    }
}

/* ==================================================================================== */
/* accessors                                                                            */
/* ==================================================================================== */

uint32_t gguf_version(const gguf_t *g)
{
    return g->version;
}

size_t gguf_alignment(const gguf_t *g)
{
    return g->alignment;
}

size_t gguf_kv_count(const gguf_t *g)
{
    return g->n_kv;
}

const char *gguf_kv_key(const gguf_t *g, size_t i)
{
    return i < g->n_kv ? g->kv[i].key : NULL;
}

gguf_vtype_t gguf_kv_type(const gguf_t *g, size_t i)
{
    return i < g->n_kv ? (gguf_vtype_t)g->kv[i].type : (gguf_vtype_t)-1;
}

int gguf_find_key(const gguf_t *g, const char *key)
{
    size_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, g->kv[g->kv_sorted[mid]].key);
        if (c == 0)
            return (int)g->kv_sorted[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static const gguf__kv_t *find(const gguf_t *g, const char *key)
{
    int i = gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kv[i];
}

/* Reads an integer value of any integer type as signed 128 bits, so one range check serves all. */
static bool int_value(const gguf__kv_t *kv, __int128 *v)
{
    const uint8_t *p = kv->val;
    switch (kv->type) {
    case GGUF_UINT8: *v = p[0]; return true;
    case GGUF_INT8: *v = (int8_t)p[0]; return true;
    case GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); *v = x; return true; }
    case GGUF_INT16: { int16_t x; memcpy(&x, p, 2); *v = x; return true; }
    case GGUF_UINT32: *v = gguf__ld32(p); return true;
    case GGUF_INT32: *v = (int32_t)gguf__ld32(p); return true;
    case GGUF_UINT64: *v = gguf__ld64(p); return true;
    case GGUF_INT64: *v = (int64_t)gguf__ld64(p); return true;
    default: return false;
    }
}

bool gguf_get_u32(const gguf_t *g, const char *key, uint32_t *out)
{
    const gguf__kv_t *kv = find(g, key);
    __int128 v;
    if (!kv || !int_value(kv, &v) || v < 0 || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

bool gguf_get_i64(const gguf_t *g, const char *key, int64_t *out)
{
    const gguf__kv_t *kv = find(g, key);
    __int128 v;
    if (!kv || !int_value(kv, &v) || v < INT64_MIN || v > INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

bool gguf_get_f32(const gguf_t *g, const char *key, float *out)
{
    const gguf__kv_t *kv = find(g, key);
    if (kv && kv->type == GGUF_FLOAT32) {
        memcpy(out, kv->val, 4);
        return true;
    }
    if (kv && kv->type == GGUF_FLOAT64) {
        double d;
        memcpy(&d, kv->val, 8);
        *out = (float)d;
        return true;
    }
    return false;
}

bool gguf_get_f64(const gguf_t *g, const char *key, double *out)
{
    const gguf__kv_t *kv = find(g, key);
    float f;
    if (kv && kv->type == GGUF_FLOAT32) {
        memcpy(&f, kv->val, 4);
        *out = f;
        return true;
    }
    if (kv && kv->type == GGUF_FLOAT64) {
        memcpy(out, kv->val, 8);
        return true;
    }
    return false;
}

bool gguf_get_bool(const gguf_t *g, const char *key, bool *out)
{
    const gguf__kv_t *kv = find(g, key);
    if (!kv || kv->type != GGUF_BOOL)
        return false;
    *out = kv->val[0] != 0;
    return true;
}

bool gguf_get_str(const gguf_t *g, const char *key, const char **s, size_t *len)
{
    const gguf__kv_t *kv = find(g, key);
    if (!kv || kv->type != GGUF_STRING)
        return false;
    *s = (const char *)kv->str;
    *len = (size_t)kv->str_len;
    return true;
}

bool gguf_get_arr(const gguf_t *g, const char *key, gguf_vtype_t *elem_type, size_t *n,
                  const void **data)
{
    const gguf__kv_t *kv = find(g, key);
    if (!kv || kv->type != GGUF_ARRAY || !gguf__scalar_size(kv->elem_type))
        return false;
    *elem_type = (gguf_vtype_t)kv->elem_type;
    *n = (size_t)kv->n;
    *data = kv->elems;
    return true;
}

bool gguf_get_arr_str_count(const gguf_t *g, const char *key, size_t *n)
{
    const gguf__kv_t *kv = find(g, key);
    if (!kv || kv->type != GGUF_ARRAY || kv->elem_type != GGUF_STRING)
        return false;
    *n = (size_t)kv->n;
    return true;
}

bool gguf_get_arr_str(const gguf_t *g, const char *key, size_t i, const char **s, size_t *len)
{
    const gguf__kv_t *kv = find(g, key);
    if (!kv || kv->type != GGUF_ARRAY || kv->elem_type != GGUF_STRING || i >= kv->n)
        return false;
    *len = (size_t)gguf__ld64(kv->str_elems[i]);
    *s = (const char *)kv->str_elems[i] + 8;
    return true;
}

size_t gguf_tensor_count(const gguf_t *g)
{
    return g->n_tensors;
}

const gguf_tensor_t *gguf_tensor(const gguf_t *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const gguf_tensor_t *gguf_find_tensor(const gguf_t *g, const char *name)
{
    size_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, g->tensors[g->t_sorted[mid]].name);
        if (c == 0)
            return &g->tensors[g->t_sorted[mid]];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* For the writer's gguf_writer_copy_kv: the stored bytes of value i. */
const uint8_t *gguf__kv_raw(const gguf_t *g, size_t i, uint32_t *type, size_t *len)
{
    *type = g->kv[i].type;
    *len = g->kv[i].val_len;
    return g->kv[i].val;
}
