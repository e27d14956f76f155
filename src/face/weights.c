/* weights.c: the tfjs weights-manifest loader. A manifest (<prefix>-weights_manifest.json) is a
 * JSON array of groups {paths: [shard files], weights: [{name, shape, dtype, quantization?}]};
 * each group's tensors lie back to back in the concatenation of its shards. Tensors are decoded to
 * float32 once, into one block: float32 and int32 as stored (little-endian), uint8/uint16
 * quantized ones as q * scale + min (int32 rounded, as tfjs does), float16-quantized ones as halves.
 *
 * Bounds: the manifest at most 1 MiB, all shards together at most 64 MiB, at most 4096 tensors of
 * at most 6 dimensions. Errors: -ENOENT (a file missing, with its path), CORE_EBADMEDIA (anything
 * malformed: JSON, dtype, sizes; the reason names the tensor or the file), -ENOMEM. Read-only after
 * loading except for the networks' own folding of batch norms. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "core/core.h"
#include "face/internal.h"

enum {
    MANIFEST_MAX = 1 << 20,
    SHARDS_MAX = 64 << 20,
    TENSORS_MAX = 4096,
    DIMS_MAX = 6,
};

typedef struct face_wentry {
    char *name;
    int n_dims;
    int shape[DIMS_MAX];
    size_t n;
    float *d; /* into face_weights.block */
} face_wentry_t;

struct face_weights {
    int n;
    face_wentry_t *e;
    float *block;
};

void face__weights_free(face_weights_t **pw)
{
    if (!pw || !*pw)
        return;
    face_weights_t *w = *pw;
    for (int i = 0; i < w->n; i++)
        free(w->e[i].name);
    free(w->e);
    free(w->block);
    free(w);
    *pw = NULL;
}

/* Reads a whole file of at most max bytes (NUL-terminated for the JSON parser). 0, -ENOENT,
 * CORE_EBADMEDIA (not a regular file, too large, short read), -ENOMEM, -errno. */
static int read_file(const char *path, size_t max, unsigned char **out, size_t *len, char *err,
                     size_t errcap)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errcap, "cannot open %s: %s", path, strerror(e));
        return e == ENOENT ? -ENOENT : -e;
    }
    int rc = 0;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "%s is not a regular file", path);
        rc = CORE_EBADMEDIA;
        goto out;
    }
    if ((unsigned long long)st.st_size > max) {
        snprintf(err, errcap, "%s is too large (%lld bytes, at most %zu)", path,
                 (long long)st.st_size, max);
        rc = CORE_EBADMEDIA;
        goto out;
    }
    *out = malloc((size_t)st.st_size + 1);
    if (!*out) {
        rc = -ENOMEM;
        goto out;
    }
    *len = fread(*out, 1, (size_t)st.st_size, f);
    if (*len != (size_t)st.st_size) {
        snprintf(err, errcap, "cannot read %s", path);
        rc = CORE_EBADMEDIA;
        goto out;
    }
    (*out)[*len] = 0;
out:
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    fclose(f);
    return rc;
}

typedef enum { DT_F32, DT_I32, DT_U8, DT_U16, DT_F16, DT_BOOL } dtype_t;

static int dtype_parse(const char *s, dtype_t *out)
{
    static const struct {
        const char *name;
        dtype_t t;
    } tab[] = {{"float32", DT_F32}, {"int32", DT_I32}, {"uint8", DT_U8},
               {"uint16", DT_U16},  {"float16", DT_F16}, {"bool", DT_BOOL}};
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (s && strcmp(s, tab[i].name) == 0) {
            *out = tab[i].t;
            return 0;
        }
    return -1;
}

static size_t dtype_bytes(dtype_t t)
{
    switch (t) {
    case DT_F32:
    case DT_I32:
        return 4;
    case DT_U16:
    case DT_F16:
        return 2;
    default:
        return 1;
    }
}

static float half_to_float(uint16_t h)
{
    return nn_f16_to_f32(h);
}

/* One tensor's description, checked. stored: the dtype of the bytes in the shard. */
typedef struct tdesc {
    const char *name;
    int n_dims;
    int shape[DIMS_MAX];
    size_t n;
    dtype_t dtype, stored;
    double scale, min;
    bool quantized;
} tdesc_t;

static int parse_entry(json_t *jw, tdesc_t *d, const char *mpath, char *err, size_t errcap)
{
    memset(d, 0, sizeof *d);
    d->name = json_string_value(json_object_get(jw, "name"));
    if (!d->name || !*d->name) {
        snprintf(err, errcap, "%s: a weight without a name", mpath);
        return CORE_EBADMEDIA;
    }
    json_t *js = json_object_get(jw, "shape");
    if (!json_is_array(js) || json_array_size(js) > DIMS_MAX) {
        snprintf(err, errcap, "%s: tensor %s: bad shape", mpath, d->name);
        return CORE_EBADMEDIA;
    }
    d->n_dims = (int)json_array_size(js);
    d->n = 1;
    for (int i = 0; i < d->n_dims; i++) {
        json_t *v = json_array_get(js, (size_t)i);
        json_int_t k = json_is_integer(v) ? json_integer_value(v) : -1;
        if (k < 0 || k > SHARDS_MAX) {
            snprintf(err, errcap, "%s: tensor %s: bad shape", mpath, d->name);
            return CORE_EBADMEDIA;
        }
        d->shape[i] = (int)k;
        d->n *= (size_t)k;
        if (d->n > SHARDS_MAX) {
            snprintf(err, errcap, "%s: tensor %s is too large", mpath, d->name);
            return CORE_EBADMEDIA;
        }
    }
    if (dtype_parse(json_string_value(json_object_get(jw, "dtype")), &d->dtype) != 0 ||
        !(d->dtype == DT_F32 || d->dtype == DT_I32 || d->dtype == DT_BOOL)) {
        snprintf(err, errcap, "%s: tensor %s: unsupported dtype", mpath, d->name);
        return CORE_EBADMEDIA;
    }
    d->stored = d->dtype;
    json_t *q = json_object_get(jw, "quantization");
    if (q) {
        if (!json_is_object(q) ||
            dtype_parse(json_string_value(json_object_get(q, "dtype")), &d->stored) != 0 ||
            !(d->stored == DT_U8 || d->stored == DT_U16 || d->stored == DT_F16)) {
            snprintf(err, errcap, "%s: tensor %s: unsupported quantization", mpath, d->name);
            return CORE_EBADMEDIA;
        }
        d->quantized = true;
        if (d->stored != DT_F16) {
            json_t *s = json_object_get(q, "scale"), *m = json_object_get(q, "min");
            if (!json_is_number(s) || !json_is_number(m) || !isfinite(json_number_value(s)) ||
                !isfinite(json_number_value(m))) {
                snprintf(err, errcap, "%s: tensor %s: quantization without scale/min", mpath,
                         d->name);
                return CORE_EBADMEDIA;
            }
            d->scale = json_number_value(s);
            d->min = json_number_value(m);
        }
    }
    return 0;
}

static void decode(const tdesc_t *d, const unsigned char *p, float *out)
{
    for (size_t i = 0; i < d->n; i++) {
        float v;
        switch (d->stored) {
        case DT_F32: {
            memcpy(&v, p + 4 * i, 4);
            break;
        }
        case DT_I32: {
            int32_t k;
            memcpy(&k, p + 4 * i, 4);
            v = (float)k;
            break;
        }
        case DT_BOOL:
            v = p[i] ? 1.0f : 0.0f;
            break;
        case DT_U8:
        case DT_U16: {
            unsigned q = d->stored == DT_U8 ? p[i] : (unsigned)(p[2 * i] | p[2 * i + 1] << 8);
            /* tfjs computes the value in float32 arithmetic on float64 scale/min; float32 result */
            double x = q * d->scale + d->min;
            v = d->dtype == DT_I32 ? (float)round(x) : (float)x;
            break;
        }
        case DT_F16: {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            v = half_to_float(h);
            break;
        }
        default:
            v = 0;
        }
        out[i] = v;
    }
}

/* Reads a group's shards into one buffer. */
static int read_group(const char *dir, json_t *paths, const char *mpath, size_t *budget,
                      unsigned char **out, size_t *len, char *err, size_t errcap)
{
    *out = NULL;
    *len = 0;
    if (!json_is_array(paths) || json_array_size(paths) == 0) {
        snprintf(err, errcap, "%s: a group without paths", mpath);
        return CORE_EBADMEDIA;
    }
    int rc = 0;
    unsigned char *buf = NULL;
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(paths); i++) {
        const char *p = json_string_value(json_array_get(paths, i));
        if (!p || !*p || strstr(p, "..") || p[0] == '/') {
            snprintf(err, errcap, "%s: bad shard path", mpath);
            rc = CORE_EBADMEDIA;
            goto out;
        }
        char *full = xasprintf("%s/%s", dir, p);
        unsigned char *part;
        size_t plen;
        rc = read_file(full, *budget, &part, &plen, err, errcap);
        free(full);
        if (rc < 0)
            goto out;
        unsigned char *nb = realloc(buf, n + plen + 1);
        if (!nb) {
            free(part);
            rc = -ENOMEM;
            goto out;
        }
        buf = nb;
        memcpy(buf + n, part, plen);
        n += plen;
        *budget -= plen;
        free(part);
    }
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    return rc;
}

int face__weights_load(const char *dir, const char *prefix, face_weights_t **out, char *err,
                       size_t errcap)
{
    *out = NULL;
    char *mpath = xasprintf("%s/%s-weights_manifest.json", dir, prefix);
    unsigned char *mtext = NULL, *shard = NULL;
    size_t mlen = 0, shard_len = 0;
    json_t *root = NULL;
    face_weights_t *w = NULL;
    tdesc_t *descs = NULL;
    size_t *group_of = NULL;
    int rc = read_file(mpath, MANIFEST_MAX, &mtext, &mlen, err, errcap);
    if (rc < 0)
        goto out;
    json_error_t je;
    root = json_loadb((const char *)mtext, mlen, 0, &je);
    if (!json_is_array(root) || json_array_size(root) == 0) {
        snprintf(err, errcap, "%s: not a weights manifest (%s)", mpath,
                 root ? "not a list of groups" : je.text);
        rc = CORE_EBADMEDIA;
        goto out;
    }
    /* first pass: describe every tensor and size the block */
    size_t n_t = 0, total = 0;
    for (size_t g = 0; g < json_array_size(root); g++) {
        json_t *ws = json_object_get(json_array_get(root, g), "weights");
        if (!json_is_array(ws)) {
            snprintf(err, errcap, "%s: a group without weights", mpath);
            rc = CORE_EBADMEDIA;
            goto out;
        }
        n_t += json_array_size(ws);
    }
    if (n_t == 0 || n_t > TENSORS_MAX) {
        snprintf(err, errcap, "%s: %zu tensors", mpath, n_t);
        rc = CORE_EBADMEDIA;
        goto out;
    }
    descs = calloc(n_t, sizeof *descs);
    group_of = calloc(n_t, sizeof *group_of);
    w = calloc(1, sizeof *w);
    if (!descs || !group_of || !w || !(w->e = calloc(n_t, sizeof *w->e))) {
        rc = -ENOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t g = 0; g < json_array_size(root); g++) {
        json_t *ws = json_object_get(json_array_get(root, g), "weights");
        for (size_t i = 0; i < json_array_size(ws); i++, k++) {
            rc = parse_entry(json_array_get(ws, i), &descs[k], mpath, err, errcap);
            if (rc < 0)
                goto out;
            group_of[k] = g;
            total += descs[k].n;
            if (total > SHARDS_MAX) {
                snprintf(err, errcap, "%s: more than %d values", mpath, SHARDS_MAX);
                rc = CORE_EBADMEDIA;
                goto out;
            }
        }
    }
    w->block = malloc((total ? total : 1) * sizeof(float));
    if (!w->block) {
        rc = -ENOMEM;
        goto out;
    }
    /* second pass: each group's shards, its tensors in order */
    size_t budget = SHARDS_MAX, at = 0, pos = 0;
    k = 0;
    for (size_t g = 0; g < json_array_size(root); g++) {
        free(shard);
        shard = NULL;
        rc = read_group(dir, json_object_get(json_array_get(root, g), "paths"), mpath, &budget,
                        &shard, &shard_len, err, errcap);
        if (rc < 0)
            goto out;
        pos = 0;
        for (; k < n_t && group_of[k] == g; k++) {
            const tdesc_t *d = &descs[k];
            size_t bytes = d->n * dtype_bytes(d->stored);
            if (shard_len - pos < bytes) {
                snprintf(err, errcap, "%s: tensor %s: the shards end before its data", mpath,
                         d->name);
                rc = CORE_EBADMEDIA;
                goto out;
            }
            face_wentry_t *e = &w->e[k];
            e->name = xstrdup(d->name);
            e->n_dims = d->n_dims;
            memcpy(e->shape, d->shape, sizeof e->shape);
            e->n = d->n;
            e->d = w->block + at;
            w->n = (int)k + 1;
            decode(d, shard + pos, e->d);
            pos += bytes;
            at += d->n;
        }
        if (pos != shard_len) {
            snprintf(err, errcap, "%s: %zu bytes of the shards are not described", mpath,
                     shard_len - pos);
            rc = CORE_EBADMEDIA;
            goto out;
        }
    }
    *out = w;
    w = NULL;
out:
    face__weights_free(&w);
    free(descs);
    free(group_of);
    free(shard);
    json_decref(root);
    free(mtext);
    free(mpath);
    return rc;
}

float *face__weights_get(face_weights_t *w, const char *name, int n_dims, const int *shape,
                         char *err, size_t errcap)
{
    for (int i = 0; i < w->n; i++) {
        face_wentry_t *e = &w->e[i];
        if (strcmp(e->name, name) != 0)
            continue;
        bool ok = e->n_dims == n_dims;
        for (int j = 0; ok && j < n_dims; j++)
            ok = shape[j] < 0 || shape[j] == e->shape[j];
        if (!ok) {
            char got[96] = "", want[96] = "";
            for (int j = 0; j < e->n_dims; j++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%d", j ? "," : "",
                         e->shape[j]);
            for (int j = 0; j < n_dims; j++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", j ? "," : "",
                         shape[j]);
            snprintf(err, errcap, "tensor %s has shape [%s], expected [%s]", name, got, want);
            return NULL;
        }
        return e->d;
    }
    snprintf(err, errcap, "tensor %s is missing", name);
    return NULL;
}
