/* gguf/write.c: the GGUF writer. Metadata is kept serialized (each value's bytes exactly as they
 * will be written), in insertion order; setting a key again replaces its value where it stands.
 * Tensors are borrowed until gguf_writer_write, which writes version 3: header, metadata,
 * tensor infos, padding to the alignment, then each tensor's data padded to the alignment (as
 * ggml does, the last one too). The file is streamed with write() into a temporary file beside
 * the target, fsynced and renamed, so a model of gigabytes never sits in memory and readers see
 * the old file or the whole new one. Thread: any; one writer per thread. */
#include "gguf/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "nn/nn.h"

typedef struct {
    char *key;
    uint32_t type;
    core_buf_t val;
} wkv_t;

typedef struct {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    const void *data;
    size_t size;
} wtensor_t;

struct gguf_writer {
    wkv_t *kv;
    size_t n_kv, cap_kv;
    wtensor_t *t;
    size_t n_t, cap_t;
};

gguf_writer_t *gguf_writer_new(void)
{
    return calloc(1, sizeof(gguf_writer_t));
}

void gguf_writer_free(gguf_writer_t **wp)
{
    if (!wp || !*wp)
        return;
    gguf_writer_t *w = *wp;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        core_buf_destroy(&w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
    *wp = NULL;
}

/* ==================================================================================== */
/* metadata                                                                             */
/* ==================================================================================== */

/* The slot of key, emptied for a new value: the existing one (replaced in place) or a new one at
 * the end. NULL for a bad key. */
static wkv_t *slot(gguf_writer_t *w, const char *key, uint32_t type)
{
    if (!w || !key || !*key || strlen(key) > GGUF_MAX_STRING)
        return NULL;
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            core_buf_reset(&w->kv[i].val);
            w->kv[i].type = type;
            return &w->kv[i];
        }
    if (w->n_kv == w->cap_kv) {
        w->cap_kv = w->cap_kv ? 2 * w->cap_kv : 16;
        w->kv = xrealloc(w->kv, w->cap_kv * sizeof *w->kv);
    }
    wkv_t *kv = &w->kv[w->n_kv++];
    kv->key = xstrdup(key);
    kv->type = type;
    core_buf_init(&kv->val);
    return kv;
}

static int set_scalar(gguf_writer_t *w, const char *key, uint32_t type, const void *v)
{
    wkv_t *kv = slot(w, key, type);
    if (!kv)
        return -1;
    core_buf_append(&kv->val, v, gguf__scalar_size(type));
    return 0;
}

int gguf_writer_set_u32(gguf_writer_t *w, const char *key, uint32_t v)
{
    /* a bad alignment would make the file unreadable: refuse it here, where the caller is */
    if (key && !strcmp(key, "general.alignment") &&
        (v == 0 || (v & (v - 1)) || v > GGUF_MAX_ALIGNMENT))
        return -1;
    return set_scalar(w, key, GGUF_UINT32, &v);
}

int gguf_writer_set_val(gguf_writer_t *w, const char *key, gguf_vtype_t type, const void *v)
{
    if (!gguf__scalar_size(type) || !v || (type == GGUF_BOOL && *(const uint8_t *)v > 1))
        return -1;
    if (type == GGUF_UINT32) {
        uint32_t u;
        memcpy(&u, v, 4);
        return gguf_writer_set_u32(w, key, u);
    }
    return set_scalar(w, key, type, v);
}

int gguf_writer_set_i32(gguf_writer_t *w, const char *key, int32_t v)
{
    return set_scalar(w, key, GGUF_INT32, &v);
}

int gguf_writer_set_u64(gguf_writer_t *w, const char *key, uint64_t v)
{
    return set_scalar(w, key, GGUF_UINT64, &v);
}

int gguf_writer_set_f32(gguf_writer_t *w, const char *key, float v)
{
    return set_scalar(w, key, GGUF_FLOAT32, &v);
}

int gguf_writer_set_bool(gguf_writer_t *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, GGUF_BOOL, &b);
}

static void put_u32(core_buf_t *b, uint32_t v)
{
    core_buf_append(b, &v, 4);
}

static void put_u64(core_buf_t *b, uint64_t v)
{
    core_buf_append(b, &v, 8);
}

static void put_str(core_buf_t *b, const char *s, size_t len)
{
    put_u64(b, len);
    core_buf_append(b, s, len);
}

int gguf_writer_set_str(gguf_writer_t *w, const char *key, const char *s, size_t len)
{
    if ((!s && len) || len > GGUF_MAX_STRING)
        return -1;
    wkv_t *kv = slot(w, key, GGUF_STRING);
    if (!kv)
        return -1;
    put_str(&kv->val, s, len);
    return 0;
}

int gguf_writer_set_arr(gguf_writer_t *w, const char *key, gguf_vtype_t elem_type, const void *data,
                        size_t n)
{
    size_t esz = gguf__scalar_size(elem_type), bytes;
    if (!esz || (!data && n) || __builtin_mul_overflow(n, esz, &bytes))
        return -1;
    if (elem_type == GGUF_BOOL)
        for (size_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return -1;
    wkv_t *kv = slot(w, key, GGUF_ARRAY);
    if (!kv)
        return -1;
    put_u32(&kv->val, elem_type);
    put_u64(&kv->val, n);
    core_buf_append(&kv->val, data, bytes);
    return 0;
}

int gguf_writer_set_arr_str(gguf_writer_t *w, const char *key, const char *const *strs,
                            const size_t *lens, size_t n)
{
    if (!strs && n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
        if ((!strs[i] && len) || len > GGUF_MAX_STRING)
            return -1;
    }
    wkv_t *kv = slot(w, key, GGUF_ARRAY);
    if (!kv)
        return -1;
    put_u32(&kv->val, GGUF_STRING);
    put_u64(&kv->val, n);
    for (size_t i = 0; i < n; i++)
        put_str(&kv->val, strs[i], lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0));
    return 0;
}

int gguf_writer_copy_kv(gguf_writer_t *w, const gguf_t *g, bool (*skip)(const char *key))
{
    if (!w || !g)
        return -1;
    for (size_t i = 0; i < gguf_kv_count(g); i++) {
        const char *key = gguf_kv_key(g, i);
        if (skip && skip(key))
            continue;
        uint32_t type;
        size_t len;
        const uint8_t *raw = gguf__kv_raw(g, i, &type, &len);
        wkv_t *kv = slot(w, key, type);
        if (!kv)
            return -1;
        core_buf_append(&kv->val, raw, len); /* validated at open: written back as it was */
    }
    return 0;
}

/* ==================================================================================== */
/* tensors                                                                              */
/* ==================================================================================== */

int gguf_writer_add_tensor(gguf_writer_t *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data)
{
    if (!w || !name || !*name || strlen(name) > GGUF_MAX_NAME || !nn_type_valid(type) ||
        n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne || !data)
        return -1;
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return -1;
    wtensor_t t = {.type = type, .n_dims = n_dims, .data = data};
    uint64_t rows = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] == 0 || t.ne[d] > INT64_MAX)
            return -1;
        if (d > 0 && __builtin_mul_overflow(rows, t.ne[d], &rows))
            return -1;
    }
    size_t row = nn_row_bytes((nn_type_t)type, (size_t)t.ne[0]);
    uint64_t size;
    if (row == 0 || __builtin_mul_overflow((uint64_t)row, rows, &size) || size > SIZE_MAX / 2)
        return -1;
    t.size = (size_t)size;
    if (w->n_t == w->cap_t) {
        w->cap_t = w->cap_t ? 2 * w->cap_t : 16;
        w->t = xrealloc(w->t, w->cap_t * sizeof *w->t);
    }
    t.name = xstrdup(name);
    w->t[w->n_t++] = t;
    return 0;
}

/* ==================================================================================== */
/* writing                                                                              */
/* ==================================================================================== */

static int write_zeros(int fd, size_t n)
{
    static const uint8_t zeros[4096];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        int rc = core_write_all(fd, zeros, k);
        if (rc < 0)
            return rc;
        n -= k;
    }
    return 0;
}

__attribute__((format(printf, 3, 4))) static int werr(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int gguf_writer_write(gguf_writer_t *w, const char *path, char *err, size_t errlen)
{
    int rc = -1, fd = -1;
    char *tmp = NULL, *dir = NULL;
    core_buf_t hdr;
    core_buf_init(&hdr);
    if (err && errlen)
        err[0] = '\0';
    if (!w || !path || !*path)
        return werr(err, errlen, "bad arguments");

    uint64_t align = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, "general.alignment")) {
            uint32_t a = 0;
            if (w->kv[i].type == GGUF_UINT32)
                memcpy(&a, w->kv[i].val.data, 4);
            if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT) {
                rc = werr(err, errlen, "general.alignment must be a u32 power of two");
                goto out;
            }
            align = a;
        }

    core_buf_append(&hdr, GGUF_MAGIC, 4);
    put_u32(&hdr, 3);
    put_u64(&hdr, w->n_t);
    put_u64(&hdr, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&hdr, w->kv[i].key, strlen(w->kv[i].key));
        put_u32(&hdr, w->kv[i].type);
        core_buf_append(&hdr, w->kv[i].val.data, w->kv[i].val.len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor_t *t = &w->t[i];
        put_str(&hdr, t->name, strlen(t->name));
        put_u32(&hdr, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(&hdr, t->ne[d]);
        put_u32(&hdr, t->type);
        put_u64(&hdr, off);
        off = gguf__pad(off + t->size, align);
    }
    size_t hdr_len = hdr.len;
    size_t hdr_pad = (size_t)(gguf__pad(hdr_len, align) - hdr_len);

    dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    tmp = xasprintf("%s.tmp-XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        rc = werr(err, errlen, "%s: %s", tmp, strerror(errno));
        xfree(&tmp);
        goto out;
    }
    int e = 0;
    if (fchmod(fd, 0644) < 0)
        e = -errno;
    if (!e)
        e = core_write_all(fd, hdr.data, hdr_len);
    if (!e)
        e = write_zeros(fd, hdr_pad);
    for (size_t i = 0; i < w->n_t && !e; i++) {
        e = core_write_all(fd, w->t[i].data, w->t[i].size);
        if (!e)
            e = write_zeros(fd, (size_t)(gguf__pad(w->t[i].size, align) - w->t[i].size));
    }
    if (!e && fsync(fd) < 0)
        e = -errno;
    if (!e) {
        e = close(fd) < 0 ? -errno : 0;
        fd = -1;
    }
    if (!e && rename(tmp, path) < 0)
        e = -errno;
    if (e) {
        rc = werr(err, errlen, "%s: %s", path, strerror(-e));
        goto out;
    }
    xfree(&tmp); /* renamed: nothing left to remove */
    (void)core_fsync_dir(dir);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    core_buf_destroy(&hdr);
    return rc;
}
