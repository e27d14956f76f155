/* tok/map.c: the two hash maps the tokenizer needs — token text -> id (built once, read by any
 * number of threads) and u64 -> u64 (merge pairs -> rank and result; pair counts in training).
 * Open addressing with linear probing, power-of-two tables at most half full. */
#include "tok/internal.h"

#include "core/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t tok__hash(const void *p, size_t n)
{
    /* FNV-1a, then a final mix so that linear probing sees well-spread low bits */
    uint64_t h = core_fnv1a(CORE_FNV1A_INIT, p, n);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static uint64_t hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

int tok__strmap_build(tok__strmap_t *m, const uint8_t *base, const uint32_t *key_off,
                      const uint32_t *key_len, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    memset(m, 0, sizeof *m);
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots)
        return -ENOMEM;
    memset(m->slots, 0xff, cap * sizeof *m->slots);
    m->base = base;
    m->key_off = key_off;
    m->key_len = key_len;
    m->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k = base + key_off[i];
        size_t j = tok__hash(k, key_len[i]) & m->mask;
        for (;; j = (j + 1) & m->mask) {
            int32_t id = m->slots[j];
            if (id < 0) {
                m->slots[j] = (int32_t)i;
                break;
            }
            if (key_len[id] == key_len[i] && !memcmp(base + key_off[id], k, key_len[i]))
                break; /* a duplicate text: the first id keeps it */
        }
    }
    return 0;
}

int32_t tok__strmap_get(const tok__strmap_t *m, const void *s, size_t len)
{
    if (!m->slots)
        return -1;
    for (size_t j = tok__hash(s, len) & m->mask;; j = (j + 1) & m->mask) {
        int32_t id = m->slots[j];
        if (id < 0)
            return -1;
        if (m->key_len[id] == len && !memcmp(m->base + m->key_off[id], s, len))
            return id;
    }
}

void tok__strmap_free(tok__strmap_t *m)
{
    free(m->slots);
    m->slots = NULL;
}

int tok__u64map_init(tok__u64map_t *m, size_t expected)
{
    size_t cap = 16;
    while (cap < 2 * expected)
        cap *= 2;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    m->mask = cap - 1;
    m->n = 0;
    if (!m->keys || !m->vals) {
        tok__u64map_free(m);
        return -ENOMEM;
    }
    return 0;
}

static int grow(tok__u64map_t *m)
{
    tok__u64map_t bigger;
    if (tok__u64map_init(&bigger, (m->mask + 1)) < 0)
        return -ENOMEM;
    for (size_t i = 0; i <= m->mask; i++)
        if (m->keys[i]) {
            size_t j = hash64(m->keys[i]) & bigger.mask;
            while (bigger.keys[j])
                j = (j + 1) & bigger.mask;
            bigger.keys[j] = m->keys[i];
            bigger.vals[j] = m->vals[i];
            bigger.n++;
        }
    tok__u64map_free(m);
    *m = bigger;
    return 0;
}

int tok__u64map_put(tok__u64map_t *m, uint64_t key, uint64_t val)
{
    if (2 * (m->n + 1) > m->mask + 1 && grow(m) < 0)
        return -ENOMEM;
    uint64_t k = key + 1;
    size_t j = hash64(k) & m->mask;
    while (m->keys[j] && m->keys[j] != k)
        j = (j + 1) & m->mask;
    if (!m->keys[j]) {
        m->keys[j] = k;
        m->n++;
    }
    m->vals[j] = val;
    return 0;
}

bool tok__u64map_get(const tok__u64map_t *m, uint64_t key, uint64_t *val)
{
    if (!m->keys)
        return false;
    uint64_t k = key + 1;
    for (size_t j = hash64(k) & m->mask; m->keys[j]; j = (j + 1) & m->mask)
        if (m->keys[j] == k) {
            *val = m->vals[j];
            return true;
        }
    return false;
}

void tok__u64map_free(tok__u64map_t *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->n = 0;
}

int tok__grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return -ENOMEM;
        c *= 2;
    }
    if (c > SIZE_MAX / elem)
        return -ENOMEM;
    void *q = realloc(*(void **)pp, c * elem);
    if (!q)
        return -ENOMEM;
    *(void **)pp = q;
    *cap = c;
    return 0;
}

int tok__buf_add(tok__buf_t *b, const void *p, size_t n)
{
    if (n > SIZE_MAX - b->len - 1 || tok__grow(&b->data, &b->cap, b->len + n + 1, 1) < 0)
        return -ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}
