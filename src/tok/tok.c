/* tok/tok.c: the tokenizer object — building it from token texts (trained or read from GGUF's
 * tokenizer.ggml.* keys, every key checked), writing it back to GGUF, lookups, and encode/decode:
 * special tokens are split out of the text first, then each raw fragment goes to the kind's
 * encoder (bpe.c: GPT-2 pre-tokenizer + merges by rank; spm.c: SentencePiece-style bigrams by
 * score with byte fallback). A tok_t is immutable once built; any thread may use it. */
#include "tok/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char CHATML_TEMPLATE[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

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

void tok_free(tok_t **tp)
{
    if (!tp || !*tp)
        return;
    tok_t *t = *tp;
    free(t->arena);
    free(t->text_off);
    free(t->text_len);
    free(t->piece_off);
    free(t->piece_len);
    free(t->type);
    free(t->score);
    tok__strmap_free(&t->text_map);
    tok__u64map_free(&t->merges);
    free(t->merge_pair);
    free(t->special);
    free(t->pre);
    free(t->chat_template);
    free(t);
    *tp = NULL;
}

int tok__ids_push(tok__ids_t *v, int32_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return 0;
}

/* ==================================================================================== */
/* building                                                                             */
/* ==================================================================================== */

/* Token texts come from a GGUF file or from training: (pointer, length) pairs, borrowed. */
typedef struct {
    const char *const *texts;
    const size_t *lens;
    size_t n;
    const int32_t *types; /* NULL: all normal (SPM: <0xXX> texts are bytes) */
    const float *scores;  /* SPM; NULL: all 0 */
} vocab_src_t;

/* SPM byte tokens are written <0xXX>: the byte, or -1. */
static int spm_byte_value(const uint8_t *s, size_t len)
{
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const tok_t *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->text_len[x] != t->text_len[y])
        return t->text_len[x] > t->text_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Fills texts, pieces, types, scores, the text map, byte tokens and specials. */
static int build_vocab(tok_t *t, const vocab_src_t *v, char *err, size_t errlen)
{
    size_t n = v->n;
    tok__buf_t arena = {0};
    int rc = -ENOMEM;
    t->n_vocab = (int)n;
    t->text_off = malloc(n * sizeof *t->text_off);
    t->text_len = malloc(n * sizeof *t->text_len);
    t->piece_off = malloc(n * sizeof *t->piece_off);
    t->piece_len = malloc(n * sizeof *t->piece_len);
    t->type = malloc(n * sizeof *t->type);
    t->score = calloc(n, sizeof *t->score);
    if (!t->text_off || !t->text_len || !t->piece_off || !t->piece_len || !t->type || !t->score)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int32_t ty = v->types ? v->types[i] : TOK__NORMAL;
        if (ty < TOK__UNDEFINED || ty > TOK__BYTE) {
            rc = terr(err, errlen, "token %zu has unknown type %d", i, ty);
            goto out;
        }
        if (!v->types && t->kind == TOK_KIND_SPM &&
            spm_byte_value((const uint8_t *)v->texts[i], v->lens[i]) >= 0)
            ty = TOK__BYTE;
        t->type[i] = ty;
        if (v->scores)
            t->score[i] = v->scores[i];
        if (arena.len + 2 * (size_t)v->lens[i] + 8 > UINT32_MAX) {
            rc = terr(err, errlen, "token texts too large");
            goto out;
        }
        t->text_off[i] = (uint32_t)arena.len;
        t->text_len[i] = (uint32_t)v->lens[i];
        if (tok__buf_add(&arena, v->texts[i], v->lens[i]) < 0)
            goto out;
    }
    /* pieces: the bytes each token decodes to */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = arena.data + t->text_off[i];
        size_t len = t->text_len[i], start = arena.len;
        int32_t ty = t->type[i];
        uint8_t tmp[8];
        if (ty == TOK__CONTROL || ty == TOK__USER_DEFINED || ty == TOK__UNKNOWN) {
            /* s points into the arena, which may move as it grows: copy by offset */
            if (tok__grow(&arena.data, &arena.cap, arena.len + len + 1, 1) < 0)
                goto out;
            memcpy(arena.data + arena.len, arena.data + t->text_off[i], len);
            arena.len += len;
        } else if (t->kind == TOK_KIND_SPM && ty == TOK__BYTE) {
            int b = spm_byte_value(s, len);
            if (b < 0) {
                rc = terr(err, errlen, "byte token %zu is not <0xXX>", i);
                goto out;
            }
            tmp[0] = (uint8_t)b;
            if (tok__buf_add(&arena, tmp, 1) < 0)
                goto out;
        } else {
            for (size_t p = 0; p < len;) {
                /* the piece is at most as long as the text: make room once, so s stays put */
                if (p == 0 && tok__grow(&arena.data, &arena.cap, arena.len + len + 1, 1) < 0)
                    goto out;
                s = arena.data + t->text_off[i];
                uint32_t cp;
                size_t cl = tok__utf8_next(s + p, len - p, &cp);
                if (t->kind == TOK_KIND_SPM) {
                    if (cp == 0x2581) {
                        tmp[0] = ' ';
                        (void)tok__buf_add(&arena, tmp, 1); /* room made above */
                    } else {
                        (void)tok__buf_add(&arena, s + p, cl);
                    }
                } else {
                    int b = cl == 1 && cp == 0xFFFD ? -1 : tok__cp_byte(cp);
                    if (b >= 0) {
                        tmp[0] = (uint8_t)b;
                        (void)tok__buf_add(&arena, tmp, 1); /* room made above */
                    } else {
                        /* not a byte-level text: the token stands for its own bytes */
                        (void)tok__buf_add(&arena, s + p, cl);
                    }
                }
                p += cl;
            }
        }
        t->piece_off[i] = (uint32_t)start;
        t->piece_len[i] = (uint32_t)(arena.len - start);
    }
    t->arena = arena.data ? arena.data : calloc(1, 1);
    arena.data = NULL;
    if (!t->arena)
        goto out;
    if ((rc = tok__strmap_build(&t->text_map, t->arena, t->text_off, t->text_len, n)) < 0)
        goto out;

    /* every byte needs a token, or some byte strings could not be encoded */
    for (int b = 0; b < 256; b++) {
        uint8_t name[8];
        size_t len;
        if (t->kind == TOK_KIND_SPM)
            len = (size_t)snprintf((char *)name, sizeof name, "<0x%02X>", b);
        else
            len = tok__utf8_put(tok__byte_cp((uint8_t)b), name);
        int32_t id = tok__strmap_get(&t->text_map, name, len);
        if (id < 0 && t->kind == TOK_KIND_SPM) { /* some files write <0xab> */
            len = (size_t)snprintf((char *)name, sizeof name, "<0x%02x>", b);
            id = tok__strmap_get(&t->text_map, name, len);
        }
        if (id < 0 || t->piece_len[id] != 1 || t->arena[t->piece_off[id]] != b) {
            rc = terr(err, errlen, "vocabulary lacks a token for byte 0x%02X", b);
            goto out;
        }
        t->byte_tok[b] = id;
    }

    /* specials: control and user-defined tokens with a text, longest first */
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!t->special) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if ((t->type[i] == TOK__CONTROL || t->type[i] == TOK__USER_DEFINED) && t->text_len[i])
            t->special[t->n_special++] = (int32_t)i;
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special, cmp_special, t);
    rc = 0;
out:
    free(arena.data);
    if (rc == -ENOMEM)
        terr(err, errlen, "out of memory");
    return rc;
}

/* Merges given as token id pairs in rank order; each must have its concatenation as a token. */
static int build_merges(tok_t *t, const int32_t *pairs, int n_merges, char *err, size_t errlen)
{
    if (tok__u64map_init(&t->merges, (size_t)n_merges) < 0)
        return terr(err, errlen, "out of memory");
    t->merge_pair = malloc(((size_t)n_merges * 2 + 1) * sizeof *t->merge_pair);
    if (!t->merge_pair)
        return terr(err, errlen, "out of memory");
    tok__buf_t cat = {0};
    int rc = 0;
    for (int r = 0; r < n_merges; r++) {
        int32_t a = pairs[2 * r], b = pairs[2 * r + 1];
        size_t la, lb;
        const uint8_t *sa = tok__text(t, a, &la), *sb = tok__text(t, b, &lb);
        cat.len = 0;
        if (tok__buf_add(&cat, sa, la) < 0 || tok__buf_add(&cat, sb, lb) < 0) {
            rc = terr(err, errlen, "out of memory");
            break;
        }
        int32_t c = tok__strmap_get(&t->text_map, cat.data, cat.len);
        if (c < 0) {
            rc = terr(err, errlen, "merge %d joins into no token", r);
            break;
        }
        /* decoding gives back what encoding consumed only if the joined token stands for the
         * bytes of its two parts (a file could pair texts that are not byte-level) */
        size_t pa = t->piece_len[a], pb = t->piece_len[b];
        if (t->piece_len[c] != pa + pb ||
            memcmp(t->arena + t->piece_off[c], t->arena + t->piece_off[a], pa) ||
            memcmp(t->arena + t->piece_off[c] + pa, t->arena + t->piece_off[b], pb)) {
            rc = terr(err, errlen, "merge %d: the joined token is not the bytes of its parts", r);
            break;
        }
        uint64_t key = (uint64_t)a << 32 | (uint32_t)b, old;
        if (!tok__u64map_get(&t->merges, key, &old) &&
            tok__u64map_put(&t->merges, key, (uint64_t)r << 32 | (uint32_t)c) < 0) {
            rc = terr(err, errlen, "out of memory");
            break;
        }
        t->merge_pair[2 * r] = a;
        t->merge_pair[2 * r + 1] = b;
        t->n_merges = r + 1;
    }
    free(cat.data);
    return rc;
}

/* tok_train's way in (train.c): byte-level texts, types, merges as id pairs. */
int tok__new_trained(const char *const *texts, const size_t *lens, const int32_t *types, int n,
                     const int32_t *pairs, int n_merges, tok_t **out, char *err, size_t errlen)
{
    tok_t *t = calloc(1, sizeof *t);
    if (!t)
        return terr(err, errlen, "out of memory");
    t->kind = TOK_KIND_GPT2;
    t->bos = t->eos = t->unk = -1;
    vocab_src_t v = {.texts = texts, .lens = lens, .n = (size_t)n, .types = types};
    int rc = build_vocab(t, &v, err, errlen);
    if (rc == 0)
        rc = build_merges(t, pairs, n_merges, err, errlen);
    if (rc == 0) {
        t->bos = t->eos = tok_find(t, "<|endoftext|>");
        t->add_bos = true;
        t->pre = xstrdup("gpt-2");
        t->pre_len = 5;
        t->chat_template = xstrdup(CHATML_TEMPLATE);
        t->chat_template_len = strlen(CHATML_TEMPLATE);
    }
    if (rc < 0)
        tok_free(&t);
    *out = t;
    return rc;
}

/* ==================================================================================== */
/* GGUF                                                                                 */
/* ==================================================================================== */

/* An optional token id key: absent is fine (-1), anything else must be an id in range. */
static int opt_id(const gguf_t *g, const char *key, int n, int *out, char *err, size_t errlen)
{
    *out = -1;
    if (gguf_find_key(g, key) < 0)
        return 0;
    uint32_t v;
    if (!gguf_get_u32(g, key, &v))
        return terr(err, errlen, "%s is not an unsigned integer", key);
    if (v >= (uint32_t)n)
        return terr(err, errlen, "%s = %u is out of range (vocabulary of %d)", key, v, n);
    *out = (int)v;
    return 0;
}

static int opt_bool(const gguf_t *g, const char *key, bool dflt, bool *out, char *err,
                    size_t errlen)
{
    *out = dflt;
    if (gguf_find_key(g, key) < 0)
        return 0;
    if (!gguf_get_bool(g, key, out))
        return terr(err, errlen, "%s is not a bool", key);
    return 0;
}

static int opt_str(const gguf_t *g, const char *key, char **out, size_t *len, char *err,
                   size_t errlen)
{
    const char *s;
    *out = NULL;
    *len = 0;
    if (gguf_find_key(g, key) < 0)
        return 0;
    if (!gguf_get_str(g, key, &s, len))
        return terr(err, errlen, "%s is not a string", key);
    *out = malloc(*len + 1);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, s, *len);
    (*out)[*len] = '\0';
    return 0;
}

/* The splitter that tokenizer.ggml.pre names, as llama.cpp maps the names; GPT-2's for the rest
 * (docs/formats.md lists what that means for other files). */
static int pre_kind(const char *pre, size_t len)
{
    static const struct {
        const char *name;
        int kind;
    } names[] = {{"llama-bpe", TOK__PRE_LLAMA3}, {"llama3", TOK__PRE_LLAMA3},
                 {"llama-v3", TOK__PRE_LLAMA3},  {"qwen2", TOK__PRE_QWEN2}};
    for (size_t i = 0; pre && i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && !memcmp(names[i].name, pre, len))
            return names[i].kind;
    return TOK__PRE_GPT2;
}

int tok_from_gguf(const gguf_t *g, tok_t **out, char *err, size_t errlen)
{
    int rc = -EINVAL;
    tok_t *t = NULL;
    const char **texts = NULL;
    size_t *lens = NULL;
    int32_t *types = NULL, *pairs = NULL;
    float *scores = NULL;
    const char *model;
    size_t model_len, n = 0;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';

    if (!gguf_get_str(g, "tokenizer.ggml.model", &model, &model_len)) {
        rc = terr(err, errlen, "tokenizer.ggml.model is missing or not a string");
        goto out;
    }
    tok_kind_t kind;
    if (model_len == 4 && !memcmp(model, "gpt2", 4))
        kind = TOK_KIND_GPT2;
    else if (model_len == 5 && !memcmp(model, "llama", 5))
        kind = TOK_KIND_SPM;
    else {
        rc = terr(err, errlen, "unsupported tokenizer model '%.*s' (gpt2 and llama are read)",
                  (int)(model_len > 40 ? 40 : model_len), model);
        goto out;
    }
    if (!gguf_get_arr_str_count(g, "tokenizer.ggml.tokens", &n)) {
        rc = terr(err, errlen, "tokenizer.ggml.tokens is missing or not an array of strings");
        goto out;
    }
    if (n < 1 || n > TOK__MAX_VOCAB) {
        rc = terr(err, errlen, "vocabulary of %zu tokens (1 to %d)", n, TOK__MAX_VOCAB);
        goto out;
    }
    texts = malloc(n * sizeof *texts);
    lens = malloc(n * sizeof *lens);
    if (!texts || !lens) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &texts[i], &lens[i]);

    if (gguf_find_key(g, "tokenizer.ggml.token_type") >= 0) {
        gguf_vtype_t et;
        size_t cnt;
        const void *data;
        if (!gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &cnt, &data) || et != GGUF_INT32 ||
            cnt != n) {
            rc = terr(err, errlen, "tokenizer.ggml.token_type must be %zu int32s", n);
            goto out;
        }
        if (!(types = malloc(n * sizeof *types))) {
            rc = -ENOMEM;
            goto out;
        }
        memcpy(types, data, n * sizeof *types);
    }
    if (kind == TOK_KIND_SPM && gguf_find_key(g, "tokenizer.ggml.scores") >= 0) {
        gguf_vtype_t et;
        size_t cnt;
        const void *data;
        if (!gguf_get_arr(g, "tokenizer.ggml.scores", &et, &cnt, &data) || et != GGUF_FLOAT32 ||
            cnt != n) {
            rc = terr(err, errlen, "tokenizer.ggml.scores must be %zu float32s", n);
            goto out;
        }
        if (!(scores = malloc(n * sizeof *scores))) {
            rc = -ENOMEM;
            goto out;
        }
        memcpy(scores, data, n * sizeof *scores);
    }

    if (!(t = calloc(1, sizeof *t))) {
        rc = -ENOMEM;
        goto out;
    }
    t->kind = kind;
    vocab_src_t v = {.texts = texts, .lens = lens, .n = n, .types = types, .scores = scores};
    if ((rc = build_vocab(t, &v, err, errlen)) < 0)
        goto out;

    if (kind == TOK_KIND_GPT2) {
        size_t nm;
        if (!gguf_get_arr_str_count(g, "tokenizer.ggml.merges", &nm)) {
            rc = terr(err, errlen, "tokenizer.ggml.merges is missing or not an array of strings");
            goto out;
        }
        if (nm > TOK__MAX_VOCAB) {
            rc = terr(err, errlen, "%zu merges, over the limit", nm);
            goto out;
        }
        if (!(pairs = malloc((2 * nm + 1) * sizeof *pairs))) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t r = 0; r < nm; r++) {
            const char *s;
            size_t len;
            gguf_get_arr_str(g, "tokenizer.ggml.merges", r, &s, &len);
            /* "left right": split at the first space after the first byte, as llama.cpp does */
            const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
            int32_t a = sp ? tok__strmap_get(&t->text_map, s, (size_t)(sp - s)) : -1;
            int32_t b = sp ? tok__strmap_get(&t->text_map, sp + 1, len - (size_t)(sp - s) - 1) : -1;
            if (a < 0 || b < 0) {
                rc = terr(err, errlen, "merge %zu ('%.*s') names an unknown token", r,
                          (int)(len > 40 ? 40 : len), s);
                goto out;
            }
            pairs[2 * r] = a;
            pairs[2 * r + 1] = b;
        }
        if ((rc = build_merges(t, pairs, (int)nm, err, errlen)) < 0)
            goto out;
    }
    if ((rc = opt_id(g, "tokenizer.ggml.bos_token_id", (int)n, &t->bos, err, errlen)) < 0 ||
        (rc = opt_id(g, "tokenizer.ggml.eos_token_id", (int)n, &t->eos, err, errlen)) < 0 ||
        (rc = opt_id(g, "tokenizer.ggml.unknown_token_id", (int)n, &t->unk, err, errlen)) < 0 ||
        (rc = opt_bool(g, "tokenizer.ggml.add_bos_token", kind == TOK_KIND_SPM, &t->add_bos, err,
                       errlen)) < 0 ||
        (rc = opt_bool(g, "tokenizer.ggml.add_space_prefix", true, &t->add_space_prefix, err,
                       errlen)) < 0 ||
        (rc = opt_str(g, "tokenizer.ggml.pre", &t->pre, &t->pre_len, err, errlen)) < 0 ||
        (rc = opt_str(g, "tokenizer.chat_template", &t->chat_template, &t->chat_template_len, err,
                      errlen)) < 0)
        goto out;
    if (kind == TOK_KIND_GPT2)
        t->add_space_prefix = false;
    t->pre_kind = pre_kind(t->pre, t->pre_len);
    rc = 0;
out:
    if (rc == -ENOMEM)
        terr(err, errlen, "out of memory");
    if (rc < 0)
        tok_free(&t);
    *out = t;
    free(texts);
    free(lens);
    free(types);
    free(scores);
    free(pairs);
    return rc;
}

int tok_to_gguf(const tok_t *t, gguf_writer_t *w)
{
    int rc = -1, n = t->n_vocab;
    const char **texts = malloc((size_t)n * sizeof *texts);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    char **merges = NULL;
    if (!texts || !lens)
        goto out;
    for (int i = 0; i < n; i++)
        texts[i] = (const char *)tok__text(t, i, &lens[i]);
    bool spm = t->kind == TOK_KIND_SPM;
    if (gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2", spm ? 5 : 4) < 0)
        goto out;
    if (t->pre && gguf_writer_set_str(w, "tokenizer.ggml.pre", t->pre, t->pre_len) < 0)
        goto out;
    if (gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", texts, lens, (size_t)n) < 0)
        goto out;
    if (spm && gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, t->score,
                                   (size_t)n) < 0)
        goto out;
    if (gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, t->type, (size_t)n) < 0)
        goto out;
    if (!spm) {
        merges = calloc((size_t)t->n_merges + 1, sizeof *merges);
        if (!merges)
            goto out;
        for (int r = 0; r < t->n_merges; r++) {
            size_t la, lb;
            const uint8_t *a = tok__text(t, t->merge_pair[2 * r], &la);
            const uint8_t *b = tok__text(t, t->merge_pair[2 * r + 1], &lb);
            if (!(merges[r] = malloc(la + lb + 2)))
                goto out;
            memcpy(merges[r], a, la);
            merges[r][la] = ' ';
            memcpy(merges[r] + la + 1, b, lb);
            merges[r][la + lb + 1] = '\0';
        }
        if (gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, NULL,
                                    (size_t)t->n_merges) < 0)
            goto out;
    }
    if ((t->bos >= 0 && gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos) < 0) ||
        (t->eos >= 0 && gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos) < 0) ||
        (t->unk >= 0 &&
         gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk) < 0) ||
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos) < 0)
        goto out;
    if (spm && gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix) < 0)
        goto out;
    if (t->chat_template && gguf_writer_set_str(w, "tokenizer.chat_template", t->chat_template,
                                                t->chat_template_len) < 0)
        goto out;
    rc = 0;
out:
    if (merges)
        for (int r = 0; r < t->n_merges; r++)
            free(merges[r]);
    free(merges);
    free(texts);
    free(lens);
    return rc;
}

/* ==================================================================================== */
/* lookups                                                                              */
/* ==================================================================================== */

tok_kind_t tok_kind(const tok_t *t)
{
    return t->kind;
}

int tok_vocab_size(const tok_t *t)
{
    return t->n_vocab;
}

int tok_bos(const tok_t *t)
{
    return t->bos;
}

int tok_eos(const tok_t *t)
{
    return t->eos;
}

bool tok_add_bos(const tok_t *t)
{
    return t->add_bos && t->bos >= 0;
}

int tok_find(const tok_t *t, const char *s)
{
    return s ? tok__strmap_get(&t->text_map, s, strlen(s)) : -1;
}

bool tok_is_control(const tok_t *t, int id)
{
    return id >= 0 && id < t->n_vocab && t->type[id] == TOK__CONTROL;
}

const char *tok_piece(const tok_t *t, int id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return "";
    }
    *len = t->piece_len[id];
    return (const char *)t->arena + t->piece_off[id];
}

/* ==================================================================================== */
/* encode / decode                                                                      */
/* ==================================================================================== */

/* A per-call cache of word -> ids for long inputs (a training corpus says the same words again
 * and again): the tok_t stays immutable and shareable, and the cache dies with the call. Words
 * point into the caller's text, which outlives the call. */
#define WCACHE_MIN_INPUT 4096
#define WCACHE_MAX_WORD 64

typedef struct {
    const uint8_t *w; /* NULL: empty slot */
    uint32_t wlen, off, n;
} wc_ent_t;

typedef struct {
    wc_ent_t *slots;
    size_t mask, used;
    tok__ids_t ids;
} wcache_t;

static int wc_init(wcache_t *c)
{
    memset(c, 0, sizeof *c);
    c->slots = calloc(4096, sizeof *c->slots);
    c->mask = 4095;
    return c->slots ? 0 : -ENOMEM;
}

static void wc_free(wcache_t *c)
{
    free(c->slots);
    free(c->ids.ids);
}

static wc_ent_t *wc_find(wcache_t *c, const uint8_t *w, size_t n)
{
    for (size_t j = tok__hash(w, n) & c->mask;; j = (j + 1) & c->mask) {
        wc_ent_t *e = &c->slots[j];
        if (!e->w || (e->wlen == n && !memcmp(e->w, w, n)))
            return e;
    }
}

static int wc_grow(wcache_t *c)
{
    size_t cap = 2 * (c->mask + 1);
    wc_ent_t *old = c->slots, *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    size_t old_cap = c->mask + 1;
    c->slots = slots;
    c->mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].w)
            *wc_find(c, old[i].w, old[i].wlen) = old[i];
    free(old);
    return 0;
}

static int encode_raw(const tok_t *t, const uint8_t *s, size_t n, tok__ids_t *out, wcache_t *cache)
{
    if (n == 0)
        return 0;
    if (t->kind == TOK_KIND_SPM)
        return tok__spm_fragment(t, s, n, out);
    for (size_t pos = 0; pos < n;) {
        size_t end = tok__pretok_next_kind(t->pre_kind, s, n, pos), wl = end - pos;
        wc_ent_t *e = cache && wl >= 2 && wl <= WCACHE_MAX_WORD ? wc_find(cache, s + pos, wl) : NULL;
        if (e && e->w) {
            for (uint32_t k = 0; k < e->n; k++)
                if (tok__ids_push(out, cache->ids.ids[e->off + k]) < 0)
                    return -ENOMEM;
        } else {
            size_t before = out->n;
            int rc = tok__bpe_word(t, s + pos, wl, out);
            if (rc < 0)
                return rc;
            if (e && cache->ids.n + (out->n - before) < UINT32_MAX) {
                *e = (wc_ent_t){.w = s + pos, .wlen = (uint32_t)wl, .off = (uint32_t)cache->ids.n,
                                .n = (uint32_t)(out->n - before)};
                for (size_t k = before; k < out->n; k++)
                    if (tok__ids_push(&cache->ids, out->ids[k]) < 0)
                        return -ENOMEM;
                if (2 * ++cache->used > cache->mask + 1 && wc_grow(cache) < 0)
                    return -ENOMEM;
            }
        }
        pos = end;
    }
    return 0;
}

/* The special token whose text starts at s (n bytes left), or -1. */
static int32_t special_at(const tok_t *t, const uint8_t *s, size_t n, bool parse_special)
{
    for (int i = 0; i < t->n_special; i++) {
        int32_t id = t->special[i];
        size_t len = t->text_len[id];
        if (len > n || (!parse_special && t->type[id] == TOK__CONTROL))
            continue;
        if (t->arena[t->text_off[id]] == s[0] && !memcmp(t->arena + t->text_off[id], s, len))
            return id;
    }
    return -1;
}

int tok_encode(const tok_t *t, const char *text, size_t len, bool parse_special, int32_t **ids_out,
               size_t *n_out)
{
    tok__ids_t out = {0};
    const uint8_t *s = (const uint8_t *)text;
    int rc = 0;
    wcache_t cache_store, *cache = NULL;
    if (t->kind == TOK_KIND_GPT2 && len >= WCACHE_MIN_INPUT) {
        if (wc_init(&cache_store) < 0) {
            wc_free(&cache_store);
            *ids_out = NULL;
            *n_out = 0;
            return -1;
        }
        cache = &cache_store;
    }
    /* first bytes of the specials, so most positions are skipped with one lookup */
    bool first[256] = {false};
    for (int i = 0; i < t->n_special; i++)
        first[t->arena[t->text_off[t->special[i]]]] = true;
    size_t frag = 0;
    for (size_t i = 0; i < len && t->n_special; i++) {
        if (!first[s[i]])
            continue;
        int32_t id = special_at(t, s + i, len - i, parse_special);
        if (id < 0)
            continue;
        if ((rc = encode_raw(t, s + frag, i - frag, &out, cache)) < 0 ||
            (rc = tok__ids_push(&out, id)) < 0)
            goto out;
        i += t->text_len[id] - 1;
        frag = i + 1;
    }
    rc = encode_raw(t, s + frag, len - frag, &out, cache);
out:
    if (cache)
        wc_free(cache);
    if (rc < 0) {
        free(out.ids);
        *ids_out = NULL;
        *n_out = 0;
        return -1;
    }
    if (!out.ids && !(out.ids = malloc(sizeof *out.ids))) {
        *ids_out = NULL;
        *n_out = 0;
        return -1;
    }
    *ids_out = out.ids;
    *n_out = out.n;
    return 0;
}

int tok_decode(const tok_t *t, const int32_t *ids, size_t n, bool skip_control, char **out,
               size_t *len)
{
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < t->n_vocab)
            total += t->piece_len[ids[i]];
    char *buf = malloc(total);
    if (!buf)
        return -1;
    size_t at = 0;
    /* SPM: encoding put a space before every raw fragment (at the start and after each special
     * token); the first piece of a fragment gives it back */
    bool strip = t->kind == TOK_KIND_SPM && t->add_space_prefix;
    bool fragment_start = true;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab)
            continue;
        int32_t ty = t->type[id];
        const char *p = (const char *)t->arena + t->piece_off[id];
        size_t pl = t->piece_len[id];
        if (ty == TOK__CONTROL || ty == TOK__USER_DEFINED) {
            fragment_start = true;
            if (ty == TOK__CONTROL && skip_control)
                continue;
        } else {
            if (strip && fragment_start && pl && p[0] == ' ')
                p++, pl--;
            fragment_start = false;
        }
        memcpy(buf + at, p, pl);
        at += pl;
    }
    buf[at] = '\0';
    *out = buf;
    *len = at;
    return 0;
}
