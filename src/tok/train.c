/* tok/train.c: byte-level BPE training. The texts are pre-tokenized with GPT-2's splitter and
 * counted as unique words; every word starts as its bytes. Then, until the vocabulary is full or
 * no pair is left: take the adjacent pair with the highest count over all words (ties: the pair
 * whose left token's bytes sort first, then the right one's), record it as the next merge, and
 * rewrite only the words that contain it, updating pair counts incrementally (each affected
 * word's pairs are subtracted, the word merged, its pairs added back). The best pair comes from a
 * max-heap whose stale entries are skipped, so a step costs the words it touches, not the whole
 * corpus. A merge whose bytes already form a token reuses it (two different merges can spell the
 * same bytes), so the vocabulary never holds one text twice.
 *
 * Ids: 0..255 the bytes, then merged tokens, then <|endoftext|>, <|im_start|>, <|im_end|> as
 * control tokens. Deterministic: nothing depends on hash order or thread timing. */
#include "tok/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char *const SPECIALS[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

typedef struct {
    int32_t a, b;
    int64_t count;
    int32_t *words; /* words that contain (or once contained) the pair */
    uint32_t n_words, cap_words;
    uint32_t stamp; /* step that last touched it */
} pair_t;

typedef struct {
    int64_t count;
    int32_t pair;
} hent_t;

typedef struct {
    /* tokens: bytes in arena */
    tok__buf_t arena;
    uint32_t *off, *len;
    int n_tok;
    size_t cap_off, cap_len;
    tok__u64map_t tok_by_hash; /* hash(bytes) -> id */
    /* words */
    int32_t *sym;      /* every word's symbols, word w at sym_off[w] */
    uint64_t *sym_off;
    uint32_t *wlen;
    int64_t *freq;
    uint32_t *wstamp;
    size_t n_words;
    /* pairs */
    pair_t *pairs;
    size_t n_pairs, cap_pairs;
    tok__u64map_t pair_idx; /* (a << 32 | b) -> index */
    hent_t *heap;
    size_t n_heap, cap_heap;
    int32_t *touched;
    size_t n_touched, cap_touched;
} trainer_t;

__attribute__((format(printf, 3, 4))) static int terr(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* ==================================================================================== */
/* tokens                                                                               */
/* ==================================================================================== */

static int add_token(trainer_t *tr, const uint8_t *s, size_t n)
{
    size_t need = (size_t)tr->n_tok + 1;
    if (tok__grow(&tr->off, &tr->cap_off, need, sizeof *tr->off) < 0 ||
        tok__grow(&tr->len, &tr->cap_len, need, sizeof *tr->len) < 0 ||
        tr->arena.len + n > UINT32_MAX)
        return -ENOMEM;
    tr->off[tr->n_tok] = (uint32_t)tr->arena.len;
    tr->len[tr->n_tok] = (uint32_t)n;
    if (tok__buf_add(&tr->arena, s, n) < 0)
        return -ENOMEM;
    if (tok__u64map_put(&tr->tok_by_hash, tok__hash(s, n) >> 1, (uint64_t)tr->n_tok) < 0)
        return -ENOMEM;
    return tr->n_tok++;
}

static int find_token(const trainer_t *tr, const uint8_t *s, size_t n)
{
    uint64_t v;
    if (!tok__u64map_get(&tr->tok_by_hash, tok__hash(s, n) >> 1, &v))
        return -1;
    /* a 64-bit hash collision would only cost a duplicate-free reuse check: verify */
    if (tr->len[v] != n || memcmp(tr->arena.data + tr->off[v], s, n))
        return -1;
    return (int)v;
}

/* Order of pairs on equal counts: left token's bytes, then right token's. */
static int cmp_bytes(const trainer_t *tr, int32_t x, int32_t y)
{
    size_t lx = tr->len[x], ly = tr->len[y];
    int c = memcmp(tr->arena.data + tr->off[x], tr->arena.data + tr->off[y], lx < ly ? lx : ly);
    if (c)
        return c;
    return lx < ly ? -1 : lx > ly;
}

static bool hent_better(const trainer_t *tr, const hent_t *p, const hent_t *q)
{
    if (p->count != q->count)
        return p->count > q->count;
    const pair_t *x = &tr->pairs[p->pair], *y = &tr->pairs[q->pair];
    int c = cmp_bytes(tr, x->a, y->a);
    if (!c)
        c = cmp_bytes(tr, x->b, y->b);
    return c < 0;
}

static int heap_push(trainer_t *tr, int32_t pair)
{
    if (tok__grow(&tr->heap, &tr->cap_heap, tr->n_heap + 1, sizeof *tr->heap) < 0)
        return -ENOMEM;
    hent_t e = {.count = tr->pairs[pair].count, .pair = pair};
    size_t i = tr->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hent_better(tr, &e, &tr->heap[p]))
            break;
        tr->heap[i] = tr->heap[p];
        i = p;
    }
    tr->heap[i] = e;
    return 0;
}

static hent_t heap_pop(trainer_t *tr)
{
    hent_t *h = tr->heap, top = h[0], last = h[--tr->n_heap];
    size_t i = 0, n = tr->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const hent_t *best = &last;
        if (l < n && hent_better(tr, &h[l], best))
            best = &h[l], m = l;
        if (l + 1 < n && hent_better(tr, &h[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    if (n)
        h[i] = last;
    return top;
}

/* ==================================================================================== */
/* pairs                                                                                */
/* ==================================================================================== */

static int32_t pair_get(trainer_t *tr, int32_t a, int32_t b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b, v;
    if (tok__u64map_get(&tr->pair_idx, key, &v))
        return (int32_t)v;
    if (tr->n_pairs >= INT32_MAX ||
        tok__grow(&tr->pairs, &tr->cap_pairs, tr->n_pairs + 1, sizeof *tr->pairs) < 0)
        return -1;
    int32_t i = (int32_t)tr->n_pairs++;
    tr->pairs[i] = (pair_t){.a = a, .b = b};
    if (tok__u64map_put(&tr->pair_idx, key, (uint64_t)i) < 0)
        return -1;
    return i;
}

static int pair_add_word(pair_t *p, int32_t w)
{
    if (p->n_words && p->words[p->n_words - 1] == w)
        return 0;
    size_t cap = p->cap_words;
    if (p->n_words == UINT32_MAX || tok__grow(&p->words, &cap, (size_t)p->n_words + 1,
                                              sizeof *p->words) < 0 || cap > UINT32_MAX)
        return -ENOMEM;
    p->cap_words = (uint32_t)cap;
    p->words[p->n_words++] = w;
    return 0;
}

static int touch(trainer_t *tr, int32_t pi, uint32_t step)
{
    if (tr->pairs[pi].stamp == step)
        return 0;
    tr->pairs[pi].stamp = step;
    if (tok__grow(&tr->touched, &tr->cap_touched, tr->n_touched + 1, sizeof *tr->touched) < 0)
        return -ENOMEM;
    tr->touched[tr->n_touched++] = pi;
    return 0;
}

/* Adds sign * freq to every adjacent pair of word w; with record, notes w in each pair's list. */
static int count_word(trainer_t *tr, size_t w, int sign, bool record, uint32_t step)
{
    const int32_t *s = tr->sym + tr->sym_off[w];
    for (uint32_t i = 0; i + 1 < tr->wlen[w]; i++) {
        int32_t pi = pair_get(tr, s[i], s[i + 1]);
        if (pi < 0)
            return -ENOMEM;
        tr->pairs[pi].count += sign * tr->freq[w];
        if ((record && pair_add_word(&tr->pairs[pi], (int32_t)w) < 0) ||
            (step && touch(tr, pi, step) < 0))
            return -ENOMEM;
    }
    return 0;
}

/* ==================================================================================== */
/* word counting                                                                        */
/* ==================================================================================== */

typedef struct {
    tok__buf_t bytes;
    uint64_t *woff;
    uint32_t *wl;
    int64_t *cnt;
    size_t n, cap_off, cap_wl, cap_cnt;
    int32_t *slots;
    size_t mask;
} words_t;

static int words_rehash(words_t *ws, size_t cap)
{
    if (ws->n >= INT32_MAX)
        return -ENOMEM;
    free(ws->slots);
    if (!(ws->slots = malloc(cap * sizeof *ws->slots)))
        return -ENOMEM;
    memset(ws->slots, 0xff, cap * sizeof *ws->slots);
    ws->mask = cap - 1;
    for (size_t i = 0; i < ws->n; i++) {
        size_t j = tok__hash(ws->bytes.data + ws->woff[i], ws->wl[i]) & ws->mask;
        while (ws->slots[j] >= 0)
            j = (j + 1) & ws->mask;
        ws->slots[j] = (int32_t)i;
    }
    return 0;
}

static int words_add(words_t *ws, const uint8_t *s, size_t n)
{
    size_t j = tok__hash(s, n) & ws->mask;
    for (; ws->slots[j] >= 0; j = (j + 1) & ws->mask) {
        int32_t i = ws->slots[j];
        if (ws->wl[i] == n && !memcmp(ws->bytes.data + ws->woff[i], s, n)) {
            ws->cnt[i]++;
            return 0;
        }
    }
    if (n > UINT32_MAX || tok__grow(&ws->woff, &ws->cap_off, ws->n + 1, sizeof *ws->woff) < 0 ||
        tok__grow(&ws->wl, &ws->cap_wl, ws->n + 1, sizeof *ws->wl) < 0 ||
        tok__grow(&ws->cnt, &ws->cap_cnt, ws->n + 1, sizeof *ws->cnt) < 0)
        return -ENOMEM;
    ws->woff[ws->n] = ws->bytes.len;
    ws->wl[ws->n] = (uint32_t)n;
    ws->cnt[ws->n] = 1;
    if (tok__buf_add(&ws->bytes, s, n) < 0)
        return -ENOMEM;
    ws->slots[j] = (int32_t)ws->n++;
    if (2 * ws->n > ws->mask + 1)
        return words_rehash(ws, (ws->mask + 1) * 2);
    return 0;
}

/* ==================================================================================== */
/* training                                                                             */
/* ==================================================================================== */

int tok_train(const char *const *texts, const size_t *lens, size_t n, int vocab_size, tok_t **out,
              char *err, size_t errlen)
{
    trainer_t tr = {0};
    words_t ws = {0};
    int rc = -ENOMEM;
    int32_t *merges = NULL;
    int n_merges = 0;
    const char **ttexts = NULL;
    size_t *tlens = NULL;
    int32_t *types = NULL;
    tok__buf_t texts_buf = {0}, cat = {0};
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (vocab_size < TOK__MIN_TRAIN_VOCAB || vocab_size > TOK__MAX_TRAIN_VOCAB)
        return terr(err, errlen, "vocab_size %d out of range (%d to %d)", vocab_size,
                    TOK__MIN_TRAIN_VOCAB, TOK__MAX_TRAIN_VOCAB);
    if (n && (!texts || !lens))
        return terr(err, errlen, "no texts");

    if (tok__u64map_init(&tr.tok_by_hash, (size_t)vocab_size) < 0 ||
        tok__u64map_init(&tr.pair_idx, 1 << 16) < 0)
        goto out;
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        if (add_token(&tr, &c, 1) < 0)
            goto out;
    }

    /* unique words and their counts */
    if (words_rehash(&ws, 4096) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = (const uint8_t *)texts[i];
        for (size_t pos = 0; pos < lens[i];) {
            size_t end = tok__pretok_next(s, lens[i], pos);
            /* one byte has no pair to merge */
            if (end - pos >= 2 && words_add(&ws, s + pos, end - pos) < 0)
                goto out;
            pos = end;
        }
    }
    tr.n_words = ws.n;
    tr.sym = malloc((ws.bytes.len ? ws.bytes.len : 1) * sizeof *tr.sym);
    tr.sym_off = malloc((ws.n ? ws.n : 1) * sizeof *tr.sym_off);
    tr.wlen = malloc((ws.n ? ws.n : 1) * sizeof *tr.wlen);
    tr.wstamp = calloc(ws.n ? ws.n : 1, sizeof *tr.wstamp);
    tr.freq = ws.cnt;
    ws.cnt = NULL;
    if (!tr.sym || !tr.sym_off || !tr.wlen || !tr.wstamp)
        goto out;
    for (size_t w = 0; w < ws.n; w++) {
        tr.sym_off[w] = ws.woff[w];
        tr.wlen[w] = ws.wl[w];
        for (uint32_t k = 0; k < ws.wl[w]; k++)
            tr.sym[ws.woff[w] + k] = (uint8_t)ws.bytes.data[ws.woff[w] + k];
        if (count_word(&tr, w, +1, true, 0) < 0)
            goto out;
    }
    for (size_t p = 0; p < tr.n_pairs; p++)
        if (heap_push(&tr, (int32_t)p) < 0)
            goto out;

    int target = vocab_size - 3; /* room for the specials */
    merges = malloc(2 * (size_t)TOK__MAX_TRAIN_VOCAB * 2 * sizeof *merges);
    if (!merges)
        goto out;
    uint32_t step = 0;
    while (tr.n_tok < target && tr.n_heap && n_merges < 2 * TOK__MAX_TRAIN_VOCAB) {
        hent_t top = heap_pop(&tr);
        pair_t *p = &tr.pairs[top.pair];
        if (top.count != p->count || p->count <= 0)
            continue; /* stale */
        step++;
        int32_t a = p->a, b = p->b;
        cat.len = 0;
        if (tok__buf_add(&cat, tr.arena.data + tr.off[a], tr.len[a]) < 0 ||
            tok__buf_add(&cat, tr.arena.data + tr.off[b], tr.len[b]) < 0)
            goto out;
        int c = find_token(&tr, cat.data, cat.len);
        if (c < 0 && (c = add_token(&tr, cat.data, cat.len)) < 0)
            goto out;
        merges[2 * n_merges] = a;
        merges[2 * n_merges + 1] = b;
        n_merges++;

        /* the word list is taken over: nothing adds to this pair's list while it runs, since
         * every new pair contains c */
        int32_t *list = p->words;
        uint32_t nl = p->n_words;
        p->words = NULL;
        p->n_words = p->cap_words = 0;
        tr.n_touched = 0;
        for (uint32_t k = 0; k < nl; k++) {
            int32_t w = list[k];
            if (tr.wstamp[w] == step)
                continue;
            tr.wstamp[w] = step;
            int32_t *s = tr.sym + tr.sym_off[w];
            uint32_t L = tr.wlen[w];
            bool has = false;
            for (uint32_t i = 0; i + 1 < L && !has; i++)
                has = s[i] == a && s[i + 1] == b;
            if (!has)
                continue; /* stale entry: an earlier merge took the pair out of this word */
            if (count_word(&tr, (size_t)w, -1, false, step) < 0) {
                free(list);
                goto out;
            }
            uint32_t o = 0;
            for (uint32_t i = 0; i < L;) {
                if (i + 1 < L && s[i] == a && s[i + 1] == b) {
                    s[o++] = c;
                    i += 2;
                } else {
                    s[o++] = s[i++];
                }
            }
            tr.wlen[w] = o;
            if (count_word(&tr, (size_t)w, +1, true, step) < 0) {
                free(list);
                goto out;
            }
        }
        free(list);
        for (size_t k = 0; k < tr.n_touched; k++)
            if (tr.pairs[tr.touched[k]].count > 0 && heap_push(&tr, tr.touched[k]) < 0)
                goto out;
    }

    /* the vocabulary as GGUF stores it: byte-level texts, then the specials */
    int nv = tr.n_tok + 3;
    ttexts = malloc((size_t)nv * sizeof *ttexts);
    tlens = malloc((size_t)nv * sizeof *tlens);
    types = malloc((size_t)nv * sizeof *types);
    uint64_t *toff = malloc((size_t)nv * sizeof *toff);
    if (!ttexts || !tlens || !types || !toff) {
        free(toff);
        goto out;
    }
    for (int i = 0; i < tr.n_tok; i++) {
        toff[i] = texts_buf.len;
        for (uint32_t k = 0; k < tr.len[i]; k++) {
            uint8_t u[4];
            size_t ul = tok__utf8_put(tok__byte_cp(tr.arena.data[tr.off[i] + k]), u);
            if (tok__buf_add(&texts_buf, u, ul) < 0) {
                free(toff);
                goto out;
            }
        }
        tlens[i] = texts_buf.len - toff[i];
        types[i] = TOK__NORMAL;
    }
    for (int k = 0; k < 3; k++) {
        int i = tr.n_tok + k;
        toff[i] = texts_buf.len;
        if (tok__buf_add(&texts_buf, SPECIALS[k], strlen(SPECIALS[k])) < 0) {
            free(toff);
            goto out;
        }
        tlens[i] = strlen(SPECIALS[k]);
        types[i] = TOK__CONTROL;
    }
    for (int i = 0; i < nv; i++)
        ttexts[i] = (const char *)texts_buf.data + toff[i];
    free(toff);
    rc = tok__new_trained(ttexts, tlens, types, nv, merges, n_merges, out, err, errlen);
out:
    if (rc == -ENOMEM)
        terr(err, errlen, "out of memory");
    free(tr.arena.data);
    free(tr.off);
    free(tr.len);
    tok__u64map_free(&tr.tok_by_hash);
    free(tr.sym);
    free(tr.sym_off);
    free(tr.wlen);
    free(tr.freq);
    free(tr.wstamp);
    for (size_t p = 0; p < tr.n_pairs; p++)
        free(tr.pairs[p].words);
    free(tr.pairs);
    tok__u64map_free(&tr.pair_idx);
    free(tr.heap);
    free(tr.touched);
    free(ws.bytes.data);
    free(ws.woff);
    free(ws.wl);
    free(ws.cnt);
    free(ws.slots);
    free(merges);
    free(ttexts);
    free(tlens);
    free(types);
    free(texts_buf.data);
    free(cat.data);
    return rc;
}
