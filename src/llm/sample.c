/* llm sampling: picking the next token from logits.
 *
 * Order (llama.cpp's default chain): repetition penalty over the last repeat_last_n tokens
 * (each distinct token once: positive logits divided by the penalty, negative ones multiplied);
 * then temperature 0 = argmax (lowest id on ties); otherwise top-k, top-p (smallest prefix of
 * the sorted candidates whose probability reaches p), min-p (keep p_i >= min_p * p_max), with
 * probabilities from the untempered logits, then temperature on what remains, softmax, and a
 * draw from the seeded xoshiro256** stream. Candidates are ordered by logit, ties by id, so the
 * result depends only on the logits, the history and the seed.
 *
 * A sampler belongs to one generation (one thread at a time); its scratch is allocated once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm/internal.h"

typedef struct {
    float logit;
    int32_t id;
} llm_cand_t;

struct llm_sampler {
    llm_sampling_t p;
    int n_vocab;
    llm__rng_t rng;
    llm_cand_t *cand;  /* [V] */
    uint32_t *seen;    /* [V] stamp of the last penalty pass that touched the token */
    uint32_t stamp;
};

void llm_sampling_default(llm_sampling_t *s)
{
    s->temperature = 0.8f;
    s->top_k = 40;
    s->top_p = 0.95f;
    s->min_p = 0.05f;
    s->repeat_penalty = 1.1f;
    s->repeat_last_n = 64;
    s->seed = 0;
}

int llm_sampler_new(const llm_sampling_t *s, int n_vocab, llm_sampler_t **out)
{
    *out = NULL;
    if (n_vocab <= 0 || n_vocab > (1 << 24))
        return -1;
    llm_sampler_t *x = xcalloc(1, sizeof *x);
    x->p = *s;
    x->n_vocab = n_vocab;
    llm__rng_seed(&x->rng, s->seed);
    x->cand = malloc((size_t)n_vocab * sizeof *x->cand);
    x->seen = calloc((size_t)n_vocab, sizeof *x->seen);
    if (!x->cand || !x->seen) {
        llm_sampler_free(&x);
        return -1;
    }
    *out = x;
    return 0;
}

void llm_sampler_free(llm_sampler_t **ps)
{
    llm_sampler_t *s = ps ? *ps : NULL;
    if (!s)
        return;
    free(s->cand);
    free(s->seen);
    free(s);
    *ps = NULL;
}

/* Descending logit, ascending id: a total order, so qsort's instability cannot show. */
static int llm_cand_cmp(const void *a, const void *b)
{
    const llm_cand_t *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static bool llm_cand_before(const llm_cand_t *x, const llm_cand_t *y)
{
    return x->logit > y->logit || (x->logit == y->logit && x->id < y->id);
}

/* Whether any of 16 logits is above thr (NaN is not): one vector compare per block, so the
 * top-k scan skips blocks of the vocabulary that cannot enter. */
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3"))) static bool
llm_any_above(const float *l, float thr)
{
    int any = 0;
    for (int i = 0; i < 16; i++)
        any |= l[i] > thr;
    return any != 0;
}

int32_t llm_sample(llm_sampler_t *s, float *logits, const int32_t *history, size_t n_history)
{
    const llm_sampling_t *p = &s->p;
    int V = s->n_vocab;
    if (p->repeat_penalty != 1.0f && p->repeat_penalty > 0.0f && p->repeat_last_n != 0) {
        size_t last = p->repeat_last_n < 0 ? n_history : (size_t)p->repeat_last_n;
        if (last > n_history)
            last = n_history;
        if (++s->stamp == 0) {
            memset(s->seen, 0, (size_t)V * sizeof *s->seen);
            s->stamp = 1;
        }
        for (size_t i = n_history - last; i < n_history; i++) {
            int32_t t = history[i];
            if (t < 0 || t >= V || s->seen[t] == s->stamp)
                continue;
            s->seen[t] = s->stamp;
            if (logits[t] > 0.0f)
                logits[t] /= p->repeat_penalty;
            else
                logits[t] *= p->repeat_penalty;
        }
    }
    if (!(p->temperature > 0.0f)) {
        int32_t best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best])
                best = i;
        return best;
    }
    llm_cand_t *c = s->cand;
    size_t n = 0, k = p->top_k > 0 ? (size_t)p->top_k : 0;
    double sum = 0.0;
    float mx;
    if (k > 0 && k < (size_t)V) {
        /* Top-k in one pass over the vocabulary: c[0, n) stays sorted and a logit enters only
         * when it beats the k-th best so far (a few hundred times per 32000 for random order). */
        float thr = -INFINITY; /* the k-th best once there are k: equal logits lose (later id) */
        for (int i = 0; i < V; i++) {
            if (n == k && (i & 15) == 0 && i + 16 <= V && !llm_any_above(logits + i, thr)) {
                i += 15; /* nothing in these 16 beats the k-th best */
                continue;
            }
            if (!(logits[i] > thr) && (n == k || isnan(logits[i]) || logits[i] != thr))
                continue;
            llm_cand_t x = {logits[i], i};
            size_t j = n < k ? n++ : k - 1;
            for (; j > 0 && llm_cand_before(&x, &c[j - 1]); j--)
                c[j] = c[j - 1];
            c[j] = x;
            if (n == k)
                thr = c[k - 1].logit;
        }
        if (n == 0)
            return 0;
        mx = c[0].logit;
        for (size_t i = 0; i < n; i++)
            sum += exp((double)(c[i].logit - mx));
    } else {
        /* No top-k: probabilities over the whole vocabulary, but only what min-p can keep needs
         * sorting (the same set and order as sorting everything, without sorting 32000). */
        mx = -INFINITY;
        for (int i = 0; i < V; i++)
            if (logits[i] > mx)
                mx = logits[i];
        if (mx == -INFINITY) {
            for (int i = 0; i < V; i++)
                if (!isnan(logits[i]))
                    return i;
            return 0;
        }
        float cut = p->min_p > 0.0f ? mx + logf(p->min_p) : -INFINITY;
        for (int i = 0; i < V; i++) {
            if (isnan(logits[i]))
                continue;
            sum += exp((double)(logits[i] - mx));
            if (logits[i] >= cut)
                c[n++] = (llm_cand_t){logits[i], i};
        }
        qsort(c, n, sizeof *c, llm_cand_cmp);
    }
    if (!isfinite(mx))
        return c[0].id;
    /* Probabilities of the untempered logits for top-p and min-p. */
    if (p->top_p < 1.0f) {
        double cum = 0.0;
        size_t keep = n;
        for (size_t i = 0; i < n; i++) {
            cum += exp((double)(c[i].logit - mx)) / sum;
            if (cum >= (double)p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (p->min_p > 0.0f) {
        /* p_i >= min_p * p_max  <=>  logit_i >= max + log(min_p) */
        float cut = mx + logf(p->min_p);
        size_t keep = 1;
        while (keep < n && c[keep].logit >= cut)
            keep++;
        n = keep;
    }
    double tot = 0.0;
    for (size_t i = 0; i < n; i++)
        tot += exp((double)((c[i].logit - mx) / p->temperature));
    double r = (double)llm__rng_float(&s->rng) * tot, acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        acc += exp((double)((c[i].logit - mx) / p->temperature));
        if (r < acc)
            return c[i].id;
    }
    return c[n - 1].id;
}
