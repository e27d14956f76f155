/* asr lm: a personal vocabulary language model for one account. From the account's own texts it
 * counts word trigrams (text normalized by asr_lm_normalize), estimates an interpolated
 * Witten-Bell trigram model (asr_ngram_*), mixes it into the general English model and writes
 * the result where personad looks for it (<data_dir>/lm/<account_id>/):
 *   lm.bin         the general en-us model plus the account's words it lacks, each a unigram of
 *                  probability weight * P_personal(w) (sphinxbase binary format, 27 MB)
 *   dict           the general cmudict plus a pronunciation for each word it lacks (asr_g2p)
 *   personal.arpa  the account's own trigram model in ARPA form (exact Witten-Bell back-off)
 * lm.bin and dict load with asr_model_new(NULL, "<dir>/lm.bin", "<dir>/dict", ...).
 *
 * Why only unigrams go into the mixture: asr_model_new takes one LM file, and pocketsphinx
 * 5prealpha interpolates only at run time (ngram_model_set_init + ps_set_lm), which ps_init's
 * options cannot ask for (-lmctl sets select one model, they do not mix). A static mixture of
 * whole trigram models needs the general model's n-grams listed, and this sphinxbase neither
 * exports its n-gram iterators nor can dump en-us.lm.bin as ARPA (ngram_model_trie_write_arpa
 * aborts on an assertion in its bigram section). What it can do is add words to a loaded model
 * (ngram_model_add_word) and write it as binary, so the mixture is exact for the unigrams of new
 * words and leaves every general probability as it is; personal.arpa keeps the account's
 * contexts for a run-time set (ngram_model_set_init with weights {1 - weight, weight}) once the
 * recognizer's decoder setup takes two models.
 *
 * Bounds: texts at most ASR_LM_MAX_TEXT_BYTES in all, ASR_LM_MAX_VOCAB distinct words,
 * ASR_LM_MAX_NGRAMS distinct n-grams of all orders (later ones are not counted).
 * Threads: no global state except sphinxbase's logging; one build per thread. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/logmath.h>
#include <sphinxbase/ngram_model.h>

#include "asr/asr.h"

/* ---- normalization ---- */

static bool is_word_byte(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '\''; }

int asr_lm_normalize(const char *text, size_t len, core_buf_t *out)
{
    if (!text || !out)
        return -EINVAL;
    size_t words_in_line = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        if (is_word_byte(c)) {
            size_t s = i;
            while (i < len && is_word_byte((unsigned char)text[i]))
                i++;
            /* apostrophes only inside a word: "'tis'" -> "tis" */
            size_t a = s, b = i;
            while (a < b && text[a] == '\'')
                a++;
            while (b > a && text[b - 1] == '\'')
                b--;
            if (b > a && b - a <= ASR_LM_MAX_WORD) {
                if (words_in_line)
                    core_buf_append(out, " ", 1);
                for (size_t k = a; k < b; k++) {
                    char l = text[k];
                    if (l >= 'A' && l <= 'Z')
                        l = (char)(l - 'A' + 'a');
                    core_buf_append(out, &l, 1);
                }
                words_in_line++;
            }
            continue;
        }
        if ((c == '.' || c == '!' || c == '?' || c == '\n' || c == ';') && words_in_line) {
            core_buf_append(out, "\n", 1);
            words_in_line = 0;
        }
        i++;
    }
    if (words_in_line)
        core_buf_append(out, "\n", 1);
    return 0;
}

/* ---- hash tables ---- */

typedef struct vocab {
    char **words;   /* id -> word; 0 is <s>, 1 is </s> */
    size_t n, cap;
    int32_t *slots; /* open addressing, -1 empty */
    size_t n_slots;
} vocab_t;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int32_t vocab_find(const vocab_t *v, const char *w)
{
    size_t m = v->n_slots - 1;
    for (size_t i = hash_str(w) & m;; i = (i + 1) & m) {
        int32_t id = v->slots[i];
        if (id < 0 || strcmp(v->words[id], w) == 0)
            return id;
    }
}

static int32_t vocab_add(vocab_t *v, const char *w)
{
    int32_t id = vocab_find(v, w);
    if (id >= 0)
        return id;
    if (v->n >= ASR_LM_MAX_VOCAB + 2)
        return -1;
    if ((v->n + 1) * 2 > v->n_slots) {
        size_t ns = v->n_slots * 2;
        int32_t *s = xmalloc(ns * sizeof *s);
        memset(s, 0xff, ns * sizeof *s);
        for (size_t k = 0; k < v->n; k++)
            for (size_t i = hash_str(v->words[k]) & (ns - 1);; i = (i + 1) & (ns - 1))
                if (s[i] < 0) {
                    s[i] = (int32_t)k;
                    break;
                }
        free(v->slots);
        v->slots = s;
        v->n_slots = ns;
    }
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->words = xrealloc(v->words, v->cap * sizeof *v->words);
    }
    id = (int32_t)v->n++;
    v->words[id] = xstrdup(w);
    size_t m = v->n_slots - 1;
    for (size_t i = hash_str(w) & m;; i = (i + 1) & m)
        if (v->slots[i] < 0) {
            v->slots[i] = id;
            break;
        }
    return id;
}

/* An n-gram table: key (a, b, c) with -1 for unused leading slots (a bigram is (-1, b, c)). For
 * contexts the same table holds count = c(h) and types = distinct successors. */
typedef struct gkey {
    int32_t w[3];
} gkey_t;
typedef struct gent {
    gkey_t k;
    uint32_t count, types;
    bool used;
} gent_t;
typedef struct gtab {
    gent_t *e;
    size_t n, n_slots;
} gtab_t;

static uint64_t hash_key(const gkey_t *k)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 3; i++)
        h = (h ^ (uint32_t)k->w[i]) * 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}

static gent_t *gtab_get(gtab_t *t, const gkey_t *k, bool add)
{
    if (add && (t->n + 1) * 2 > t->n_slots) {
        if (t->n >= ASR_LM_MAX_NGRAMS)
            add = false;
        else {
            size_t ns = t->n_slots ? t->n_slots * 2 : 1024;
            gent_t *e = xcalloc(ns, sizeof *e);
            for (size_t j = 0; j < t->n_slots; j++)
                if (t->e[j].used)
                    for (size_t i = hash_key(&t->e[j].k) & (ns - 1);; i = (i + 1) & (ns - 1))
                        if (!e[i].used) {
                            e[i] = t->e[j];
                            break;
                        }
            free(t->e);
            t->e = e;
            t->n_slots = ns;
        }
    }
    if (!t->n_slots)
        return NULL;
    size_t m = t->n_slots - 1;
    for (size_t i = hash_key(k) & m;; i = (i + 1) & m) {
        gent_t *e = &t->e[i];
        if (!e->used) {
            if (!add)
                return NULL;
            e->used = true;
            e->k = *k;
            t->n++;
            return e;
        }
        if (memcmp(&e->k, k, sizeof *k) == 0)
            return e;
    }
}

static gent_t *gtab_find(const gtab_t *t, int32_t a, int32_t b, int32_t c)
{
    gkey_t k = {{a, b, c}};
    return gtab_get((gtab_t *)t, &k, false);
}

/* ---- the Witten-Bell model ---- */

struct asr_ngram {
    vocab_t voc;
    gtab_t grams; /* n-grams of orders 1..3 with their counts */
    gtab_t ctx;   /* contexts: (-1,-1,-2) the empty one, (-1,-1,b) and (-1,a,b); count, types */
    size_t n_pred; /* words that can be predicted: the vocabulary less <s> */
};

static void count_gram(asr_ngram_t *m, int32_t a, int32_t b, int32_t c)
{
    gkey_t k = {{a, b, c}};
    gent_t *g = gtab_get(&m->grams, &k, true);
    if (!g)
        return;
    bool fresh = g->count == 0;
    g->count++;
    gkey_t h = {{-1, a, b}}; /* the context: drop c, shift right */
    if (b == -1)
        h.w[2] = -2;
    gent_t *e = gtab_get(&m->ctx, &h, true);
    if (!e)
        return;
    e->count++;
    if (fresh)
        e->types++;
}

int asr_ngram_new(const char *const *texts, size_t n, asr_ngram_t **out)
{
    if (!out || (n && !texts))
        return -EINVAL;
    *out = NULL;
    asr_ngram_t *m = xcalloc(1, sizeof *m);
    m->voc.n_slots = 64;
    m->voc.slots = xmalloc(64 * sizeof *m->voc.slots);
    memset(m->voc.slots, 0xff, 64 * sizeof *m->voc.slots);
    vocab_add(&m->voc, "<s>");
    vocab_add(&m->voc, "</s>");
    size_t total = 0;
    core_buf_t norm;
    core_buf_init(&norm);
    for (size_t t = 0; t < n; t++) {
        if (!texts[t])
            continue;
        size_t len = strlen(texts[t]);
        if (total + len > ASR_LM_MAX_TEXT_BYTES)
            len = ASR_LM_MAX_TEXT_BYTES - total;
        total += len;
        core_buf_reset(&norm);
        asr_lm_normalize(texts[t], len, &norm);
        core_buf_append(&norm, "", 1);
        char *save = NULL;
        for (char *line = strtok_r(norm.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            int32_t p2 = -1, p1 = 0; /* <s> */
            char *ws = NULL;
            for (char *w = strtok_r(line, " ", &ws);; w = strtok_r(NULL, " ", &ws)) {
                int32_t id = w ? vocab_add(&m->voc, w) : 1;
                if (id < 0)
                    break; /* vocabulary full: the rest of the sentence is dropped */
                count_gram(m, -1, -1, id);
                count_gram(m, -1, p1, id);
                if (p2 >= 0)
                    count_gram(m, p2, p1, id);
                p2 = p1;
                p1 = id;
                if (!w)
                    break;
            }
        }
        if (total >= ASR_LM_MAX_TEXT_BYTES)
            break;
    }
    core_buf_destroy(&norm);
    m->n_pred = m->voc.n - 1;
    *out = m;
    return 0;
}

void asr_ngram_free(asr_ngram_t **m)
{
    if (!m || !*m)
        return;
    for (size_t i = 0; i < (*m)->voc.n; i++)
        free((*m)->voc.words[i]);
    free((*m)->voc.words);
    free((*m)->voc.slots);
    free((*m)->grams.e);
    free((*m)->ctx.e);
    free(*m);
    *m = NULL;
}

size_t asr_ngram_vocab_size(const asr_ngram_t *m) { return m->voc.n; }
const char *asr_ngram_word(const asr_ngram_t *m, size_t id) { return id < m->voc.n ? m->voc.words[id] : NULL; }
int32_t asr_ngram_id(const asr_ngram_t *m, const char *w) { return w ? vocab_find(&m->voc, w) : -1; }

static double wb_prob(const asr_ngram_t *m, int32_t a, int32_t b, int32_t w)
{
    /* order 0: uniform over the predictable words; then each order mixes its ML estimate with
     * the lower order by Witten-Bell: (c(h,w) + T(h) P_lower) / (c(h) + T(h)). */
    if (w <= 0)
        return 0; /* <s> is never predicted */
    double p = 1.0 / (double)m->n_pred;
    int32_t hs[3][2] = {{-1, -2}, {-1, b}, {a, b}};
    int orders = b < 0 ? 1 : (a < 0 ? 2 : 3);
    for (int o = 0; o < orders; o++) {
        const gent_t *h = gtab_find(&m->ctx, -1, hs[o][0], hs[o][1]);
        if (!h || !h->count)
            continue;
        const gent_t *g = o == 0 ? gtab_find(&m->grams, -1, -1, w)
                                 : gtab_find(&m->grams, o == 1 ? -1 : a, b, w);
        double c = g ? g->count : 0;
        p = (c + h->types * p) / ((double)h->count + h->types);
    }
    return p;
}

double asr_ngram_prob(const asr_ngram_t *m, const char *w, const char *h1, const char *h2)
{
    int32_t wid = asr_ngram_id(m, w);
    int32_t b = h1 ? asr_ngram_id(m, h1) : -1;
    int32_t a = (h1 && h2) ? asr_ngram_id(m, h2) : -1;
    if (wid < 0)
        return 0;
    if (h1 && b < 0)
        b = -1, a = -1; /* unknown history: back off to the unigram */
    if (h2 && a < 0)
        a = -1;
    return wb_prob(m, a, b, wid);
}

/* ---- output ---- */

void asr_lm_options_defaults(asr_lm_options_t *o)
{
    o->weight = 0.5;
    o->general_lm = ASR_DEFAULT_LM;
    o->general_dict = ASR_DEFAULT_DICT;
}

static double lg(double p) { return p > 1e-99 ? log10(p) : -99.0; }

static int order_of(const gkey_t *k) { return k->w[0] >= 0 ? 3 : (k->w[1] >= 0 ? 2 : 1); }

/* Witten-Bell in back-off form: an explicit n-gram keeps its interpolated probability, and an
 * unseen word after history h gets T(h) / (c(h) + T(h)) times its lower-order probability, so
 * bow(h) = T(h) / (c(h) + T(h)) exactly (1 for a history never seen as a context). */
static double wb_bow(const asr_ngram_t *m, int32_t a, int32_t b)
{
    const gent_t *h = gtab_find(&m->ctx, -1, a, b);
    return h && h->count ? (double)h->types / ((double)h->count + h->types) : 1.0;
}

int asr_ngram_write_arpa(const asr_ngram_t *m, const char *path)
{
    if (!m || !path)
        return -EINVAL;
    size_t cnt[3] = {m->voc.n, 0, 0};
    for (size_t i = 0; i < m->grams.n_slots; i++)
        if (m->grams.e[i].used && order_of(&m->grams.e[i].k) > 1)
            cnt[order_of(&m->grams.e[i].k) - 1]++;
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f, "\\data\\\nngram 1=%zu\nngram 2=%zu\nngram 3=%zu\n\n\\1-grams:\n", cnt[0], cnt[1],
            cnt[2]);
    for (size_t i = 0; i < m->voc.n; i++)
        fprintf(f, "%.6f %s %.6f\n", i == 0 ? -99.0 : lg(wb_prob(m, -1, -1, (int32_t)i)),
                m->voc.words[i], lg(wb_bow(m, -1, (int32_t)i)));
    for (int o = 2; o <= 3; o++) {
        fprintf(f, "\n\\%d-grams:\n", o);
        for (size_t i = 0; i < m->grams.n_slots; i++) {
            const gent_t *e = &m->grams.e[i];
            if (!e->used || order_of(&e->k) != o)
                continue;
            fprintf(f, "%.6f", lg(wb_prob(m, e->k.w[0], e->k.w[1], e->k.w[2])));
            for (int k = 3 - o; k < 3; k++)
                fprintf(f, " %s", m->voc.words[e->k.w[k]]);
            if (o == 2)
                fprintf(f, " %.6f", lg(wb_bow(m, e->k.w[1], e->k.w[2])));
            fputc('\n', f);
        }
    }
    fputs("\n\\end\\\n", f);
    if (fclose(f) != 0)
        return -EIO;
    return 0;
}

/* Copies the general dictionary and appends a pronunciation for each personal word it lacks. */
static int write_dict(const asr_ngram_t *p, const char *general, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    int rc = core_read_file(general, 64u << 20, &text, &len);
    if (rc < 0)
        return rc;
    vocab_t known = {0};
    known.n_slots = 1u << 19;
    known.slots = xmalloc(known.n_slots * sizeof *known.slots);
    memset(known.slots, 0xff, known.n_slots * sizeof *known.slots);
    core_buf_t extra;
    core_buf_init(&extra);
    char word[ASR_LM_MAX_WORD + 8];
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && text[e] != ' ' && text[e] != '\t' && text[e] != '\n' && text[e] != '(')
            e++;
        if (e > i && e - i < sizeof word) {
            memcpy(word, text + i, e - i);
            word[e - i] = 0;
            vocab_add(&known, word);
        }
        while (e < len && text[e] != '\n')
            e++;
        i = e + 1;
    }
    char ph[512];
    for (size_t i = 2; i < p->voc.n; i++)
        if (vocab_find(&known, p->voc.words[i]) < 0 && asr_g2p(p->voc.words[i], ph, sizeof ph) == 0)
            core_buf_printf(&extra, "%s %s\n", p->voc.words[i], ph);
    bool nl = len && text[len - 1] != '\n';
    core_chunk_t chunks[3] = {{text, len}, {"\n", nl ? 1 : 0}, {extra.data, extra.len}};
    rc = core_write_file_atomic(path, chunks, 3, 0644);
    for (size_t i = 0; i < known.n; i++)
        free(known.words[i]);
    free(known.words);
    free(known.slots);
    core_buf_destroy(&extra);
    free(text);
    return rc;
}

int asr_lm_build(const char *const *texts, size_t n, const char *out_dir,
                 const asr_lm_options_t *opts)
{
    asr_lm_options_t o;
    asr_lm_options_defaults(&o);
    if (opts)
        o = *opts;
    if (!out_dir || (n && !texts) || !(o.weight >= 0 && o.weight <= 1) || !o.general_lm ||
        !o.general_dict)
        return -EINVAL;
    if (access(o.general_lm, R_OK) != 0 || access(o.general_dict, R_OK) != 0)
        return -ENOENT;
    int rc = core_mkdirs(out_dir);
    if (rc < 0)
        return rc;
    size_t plen = strlen(out_dir) + 32;
    char *arpa = xmalloc(plen), *arpa_tmp = xmalloc(plen), *bin = xmalloc(plen),
         *bin_tmp = xmalloc(plen), *dict = xmalloc(plen);
    snprintf(arpa, plen, "%s/" ASR_LM_PERSONAL_FILE, out_dir);
    snprintf(arpa_tmp, plen, "%s/" ASR_LM_PERSONAL_FILE ".tmp", out_dir);
    snprintf(bin, plen, "%s/" ASR_LM_FILE, out_dir);
    snprintf(bin_tmp, plen, "%s/" ASR_LM_FILE ".tmp", out_dir);
    snprintf(dict, plen, "%s/" ASR_LM_DICT_FILE, out_dir);
    ngram_model_t *g = NULL;
    cmd_ln_t *cfg = cmd_ln_init(NULL, ps_args(), TRUE, NULL);
    logmath_t *lmath = logmath_init(1.0001, 0, 0);
    asr_ngram_t *pm = NULL;
    if ((rc = asr_ngram_new(texts, n, &pm)) < 0)
        goto out;
    if ((rc = asr_ngram_write_arpa(pm, arpa_tmp)) < 0)
        goto out;
    if (rename(arpa_tmp, arpa) != 0) {
        rc = -errno;
        goto out;
    }
    rc = CORE_EBADMEDIA;
    if (!cfg || !lmath || !(g = ngram_model_read(cfg, o.general_lm, NGRAM_AUTO, lmath)))
        goto out;
    /* ngram_model_add_word's weight is relative to the uniform distribution over the general
     * unigrams: weight = l * P_personal(w) * N gives the word P = l * P_personal(w). */
    double n_uni = ngram_model_get_counts(g)[0];
    for (size_t i = 2; i < pm->voc.n; i++) {
        const char *w = pm->voc.words[i];
        if (ngram_wid(g, w) != ngram_unknown_wid(g))
            continue;
        double wt = o.weight * wb_prob(pm, -1, -1, (int32_t)i) * n_uni;
        if (wt > 0 && ngram_model_add_word(g, w, (float32)wt) < 0)
            goto out;
    }
    if (ngram_model_write(g, bin_tmp, NGRAM_BIN) < 0)
        goto out;
    if (rename(bin_tmp, bin) != 0) {
        rc = -errno;
        goto out;
    }
    rc = write_dict(pm, o.general_dict, dict);
out:
    unlink(arpa_tmp);
    unlink(bin_tmp);
    ngram_model_free(g);
    asr_ngram_free(&pm);
    logmath_free(lmath);
    cmd_ln_free_r(cfg);
    free(arpa);
    free(arpa_tmp);
    free(bin);
    free(bin_tmp);
    free(dict);
    return rc;
}
