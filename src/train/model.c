/* train model: the trainable llama-family transformer — one block of F32 weights (and one each
 * for gradients and the AdamW moments) laid out tensor by tensor in GGUF order, activations
 * saved for the backward pass, and one forward(+backward) over a batch of B x T tokens.
 * Everything is allocated once in train__model_init; a step allocates nothing.
 *
 * Layout of the parameter block (legend in internal.h):
 *   token_embd V x D; per layer: attn_norm D, attn_q D x D, attn_k GE x D, attn_v GE x D,
 *   attn_output D x D, ffn_norm D, ffn_gate F x D, ffn_up F x D, ffn_down D x F;
 *   output_norm D; output V x D (absent when tied: the head is token_embd). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "train/internal.h"

uint64_t train__rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t add_tensor(train__model_t *mdl, int il, const char *what, size_t rows, size_t cols,
                         bool matrix, size_t *off)
{
    train__tensor_t *t = &mdl->tensors[mdl->n_tensors++];
    llm_tensor_name(t->name, sizeof t->name, il, what);
    t->rows = rows;
    t->cols = cols;
    t->off = *off;
    t->matrix = matrix;
    *off += rows * cols;
    return t->off;
}

/* calloc for buffers sized by the model and batch: an error, not an abort, when too big. A dry
 * pass only adds up the bytes (so an impossible size is refused before anything is touched). */
static float *alloc_f(size_t n, size_t *total, bool *fail, bool dry)
{
    if (n == 0)
        n = 1;
    *total += n * sizeof(float);
    if (*fail || dry)
        return NULL;
    float *p = calloc(n, sizeof(float));
    if (!p)
        *fail = true;
    return p;
}

/* The most a run may ask for: 80% of physical memory (calloc would succeed lazily far beyond it
 * and the process be killed mid-run). */
static size_t memory_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0)
        return SIZE_MAX;
    return (size_t)((double)pages * (double)psz * 0.8);
}

int train__model_init(train__model_t *mdl, const llm_config_t *c, int B, int T, bool with_adam,
                      nn_pool_t *pool, char *err, size_t errlen)
{
    memset(mdl, 0, sizeof *mdl);
    if (llm_config_check(c, err, errlen) != 0)
        return -1;
    if (c->n_layers > 512) {
        snprintf(err, errlen, "too many layers (%d, at most 512)", c->n_layers);
        return -1;
    }
    mdl->c = *c;
    mdl->B = B;
    mdl->T = T;
    mdl->pool = pool;
    size_t V = (size_t)c->n_vocab, D = (size_t)c->dim, F = (size_t)c->ffn_dim,
           L = (size_t)c->n_layers;
    size_t E = D / (size_t)c->n_heads, KD = E * (size_t)c->n_kv_heads, N = (size_t)B * T;

    mdl->tensors = xcalloc(4 + 9 * L, sizeof *mdl->tensors);
    mdl->layers = xcalloc(L, sizeof *mdl->layers);
    size_t off = 0;
    mdl->off_embd = add_tensor(mdl, -1, "token_embd", V, D, true, &off);
    for (size_t l = 0; l < L; l++) {
        train__layer_t *ly = &mdl->layers[l];
        int il = (int)l;
        ly->attn_norm = add_tensor(mdl, il, "attn_norm", 1, D, false, &off);
        ly->wq = add_tensor(mdl, il, "attn_q", D, D, true, &off);
        ly->wk = add_tensor(mdl, il, "attn_k", KD, D, true, &off);
        ly->wv = add_tensor(mdl, il, "attn_v", KD, D, true, &off);
        ly->wo = add_tensor(mdl, il, "attn_output", D, D, true, &off);
        ly->ffn_norm = add_tensor(mdl, il, "ffn_norm", 1, D, false, &off);
        ly->wg = add_tensor(mdl, il, "ffn_gate", F, D, true, &off);
        ly->wu = add_tensor(mdl, il, "ffn_up", F, D, true, &off);
        ly->wd = add_tensor(mdl, il, "ffn_down", D, F, true, &off);
    }
    mdl->off_out_norm = add_tensor(mdl, -1, "output_norm", 1, D, false, &off);
    mdl->off_out = c->tied_output ? mdl->off_embd : add_tensor(mdl, -1, "output", V, D, true, &off);
    mdl->n_params = off;

    size_t total = 0;
    bool fail = false;
    for (int pass = 0; pass < 2 && !fail; pass++) {
        bool dry = pass == 0;
        total = 0;
        mdl->w = alloc_f(off, &total, &fail, dry);
        mdl->g = alloc_f(off, &total, &fail, dry);
        if (with_adam) {
            mdl->m = alloc_f(off, &total, &fail, dry);
            mdl->v = alloc_f(off, &total, &fail, dry);
        }
        mdl->resid = alloc_f((L + 1) * N * D, &total, &fail, dry);
        mdl->xn1 = alloc_f(L * N * D, &total, &fail, dry);
        mdl->rstd1 = alloc_f(L * N, &total, &fail, dry);
        mdl->q = alloc_f(L * N * D, &total, &fail, dry);
        mdl->k = alloc_f(L * N * KD, &total, &fail, dry);
        mdl->v_act = alloc_f(L * N * KD, &total, &fail, dry);
        mdl->att = alloc_f(L * (size_t)B * c->n_heads * T * T, &total, &fail, dry);
        mdl->ao = alloc_f(L * N * D, &total, &fail, dry);
        mdl->xmid = alloc_f(L * N * D, &total, &fail, dry);
        mdl->xn2 = alloc_f(L * N * D, &total, &fail, dry);
        mdl->rstd2 = alloc_f(L * N, &total, &fail, dry);
        mdl->gate = alloc_f(L * N * F, &total, &fail, dry);
        mdl->up = alloc_f(L * N * F, &total, &fail, dry);
        mdl->hh = alloc_f(L * N * F, &total, &fail, dry);
        mdl->xnf = alloc_f(N * D, &total, &fail, dry);
        mdl->rstdf = alloc_f(N, &total, &fail, dry);
        mdl->logits = alloc_f(N * V, &total, &fail, dry);
        mdl->losses = alloc_f(N, &total, &fail, dry);
        mdl->dres = alloc_f(N * D, &total, &fail, dry);
        mdl->dxn = alloc_f(N * D, &total, &fail, dry);
        mdl->dq = alloc_f(N * D, &total, &fail, dry);
        mdl->dk = alloc_f(N * KD, &total, &fail, dry);
        mdl->dv = alloc_f(N * KD, &total, &fail, dry);
        mdl->dao = alloc_f(N * D, &total, &fail, dry);
        mdl->dg = alloc_f(N * F, &total, &fail, dry);
        mdl->du = alloc_f(N * F, &total, &fail, dry);
        mdl->dhh = alloc_f(N * F, &total, &fail, dry);
        mdl->cs = alloc_f((size_t)T * E / 2, &total, &fail, dry);
        mdl->sn = alloc_f((size_t)T * E / 2, &total, &fail, dry);
        mdl->attn_scratch = alloc_f((size_t)nn_pool_threads(pool) * train__attn_scratch(T, (int)E),
                                    &total, &fail, dry);
        if (dry && total > memory_limit()) {
            snprintf(err, errlen,
                     "the model and its activations need %.1f GiB, more than this machine has "
                     "(smaller batch_size or seq_len?)",
                     (double)total / (1 << 30));
            train__model_destroy(mdl);
            return -1;
        }
    }
    if (fail) {
        snprintf(err, errlen, "out of memory: the model and its activations need %.1f MiB",
                 (double)total / (1 << 20));
        train__model_destroy(mdl);
        return -1;
    }
    train__rope_table(T, (int)E, c->rope_base, mdl->cs, mdl->sn);
    return 0;
}

void train__model_destroy(train__model_t *mdl)
{
    float **bufs[] = {&mdl->w,      &mdl->g,      &mdl->m,    &mdl->v,           &mdl->resid,
                      &mdl->xn1,    &mdl->rstd1,  &mdl->q,    &mdl->k,           &mdl->v_act,
                      &mdl->att,    &mdl->ao,     &mdl->xmid, &mdl->xn2,         &mdl->rstd2,
                      &mdl->gate,   &mdl->up,     &mdl->hh,   &mdl->xnf,         &mdl->rstdf,
                      &mdl->logits, &mdl->losses, &mdl->dres, &mdl->dxn,         &mdl->dq,
                      &mdl->dk,     &mdl->dv,     &mdl->dao,  &mdl->dg,          &mdl->du,
                      &mdl->dhh,    &mdl->cs,     &mdl->sn,   &mdl->attn_scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
    xfree(&mdl->tensors);
    xfree(&mdl->layers);
    mdl->n_tensors = 0;
}

/* Box-Muller on two 53-bit uniforms in (0, 1]: a pair of normals per draw. */
static void rng_normal2(uint64_t *s, float out[2])
{
    double u1 = ((double)(train__rng_next(s) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(train__rng_next(s) >> 11) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
    out[0] = (float)(r * cos(a));
    out[1] = (float)(r * sin(a));
}

void train__model_init_weights(train__model_t *mdl, uint64_t seed)
{
    uint64_t s = seed ^ 0x5eedc0ffee123457ULL;
    float resid_std = 0.02f / sqrtf(2.0f * (float)mdl->c.n_layers);
    for (int i = 0; i < mdl->n_tensors; i++) {
        const train__tensor_t *t = &mdl->tensors[i];
        float *p = mdl->w + t->off;
        size_t n = t->rows * t->cols;
        if (!t->matrix) {
            for (size_t j = 0; j < n; j++)
                p[j] = 1.0f;
            continue;
        }
        bool resid = strstr(t->name, "attn_output") || strstr(t->name, "ffn_down");
        float std = resid ? resid_std : 0.02f;
        for (size_t j = 0; j < n; j += 2) {
            float z[2];
            rng_normal2(&s, z);
            p[j] = std * z[0];
            if (j + 1 < n)
                p[j + 1] = std * z[1];
        }
    }
}

double train__step_flops(const llm_config_t *c, int B, int T)
{
    double D = c->dim, F = c->ffn_dim, L = c->n_layers, V = c->n_vocab;
    double E = D / c->n_heads, KD = E * c->n_kv_heads;
    double pmat = L * (2 * D * D + 2 * KD * D + 3 * D * F) + V * D;
    double tokens = (double)B * T;
    double pairs = (double)B * T * (T + 1) / 2;
    return 6 * pmat * tokens + 12 * D * L * pairs;
}

double train__model_step(train__model_t *mdl, const int32_t *ids, const int32_t *targets, int nb,
                         bool backward)
{
    const llm_config_t *c = &mdl->c;
    nn_pool_t *pool = mdl->pool;
    int T = mdl->T, N = nb * T, D = c->dim, F = c->ffn_dim, V = c->n_vocab, H = c->n_heads,
        G = c->n_kv_heads, E = D / H, KD = E * G;
    size_t NB = (size_t)mdl->B * T; /* per-layer stride of saved activations */
    float *w = mdl->w, *gr = mdl->g;

    /* ---- forward ---- */
    train__embed_fwd(w + mdl->off_embd, ids, N, D, mdl->resid);
    for (int l = 0; l < c->n_layers; l++) {
        const train__layer_t *ly = &mdl->layers[l];
        float *x = mdl->resid + (size_t)l * NB * D, *xo = x + NB * D;
        float *xn1 = mdl->xn1 + (size_t)l * NB * D, *q = mdl->q + (size_t)l * NB * D;
        float *k = mdl->k + (size_t)l * NB * KD, *v = mdl->v_act + (size_t)l * NB * KD;
        float *att = mdl->att + (size_t)l * mdl->B * H * T * T;
        float *ao = mdl->ao + (size_t)l * NB * D, *xmid = mdl->xmid + (size_t)l * NB * D;
        float *xn2 = mdl->xn2 + (size_t)l * NB * D;
        float *gate = mdl->gate + (size_t)l * NB * F, *up = mdl->up + (size_t)l * NB * F;
        float *hh = mdl->hh + (size_t)l * NB * F;

        train__rmsnorm_fwd(pool, x, w + ly->attn_norm, N, D, c->norm_eps, xn1,
                           mdl->rstd1 + (size_t)l * NB);
        train__matmul_fwd(pool, xn1, w + ly->wq, N, D, D, false, q);
        train__matmul_fwd(pool, xn1, w + ly->wk, N, D, KD, false, k);
        train__matmul_fwd(pool, xn1, w + ly->wv, N, D, KD, false, v);
        train__rope(pool, q, N, T, H, E, mdl->cs, mdl->sn, false);
        train__rope(pool, k, N, T, G, E, mdl->cs, mdl->sn, false);
        train__attn_fwd(pool, q, k, v, nb, T, H, G, E, att, ao, mdl->attn_scratch);
        memcpy(xmid, x, sizeof(float) * (size_t)N * D);
        train__matmul_fwd(pool, ao, w + ly->wo, N, D, D, true, xmid);
        train__rmsnorm_fwd(pool, xmid, w + ly->ffn_norm, N, D, c->norm_eps, xn2,
                           mdl->rstd2 + (size_t)l * NB);
        train__matmul_fwd(pool, xn2, w + ly->wg, N, D, F, false, gate);
        train__matmul_fwd(pool, xn2, w + ly->wu, N, D, F, false, up);
        train__swiglu_fwd(pool, gate, up, (size_t)N * F, hh);
        memcpy(xo, xmid, sizeof(float) * (size_t)N * D);
        train__matmul_fwd(pool, hh, w + ly->wd, N, F, D, true, xo);
    }
    float *xL = mdl->resid + (size_t)c->n_layers * NB * D;
    train__rmsnorm_fwd(pool, xL, w + mdl->off_out_norm, N, D, c->norm_eps, mdl->xnf, mdl->rstdf);
    train__matmul_fwd(pool, mdl->xnf, w + mdl->off_out, N, D, V, false, mdl->logits);
    int counted = 0; /* rows with a target (the others are context: see train__xent) */
    for (int i = 0; i < N; i++)
        counted += targets[i] >= 0;
    double loss = train__xent(pool, mdl->logits, targets, N, V, 1.0f / (float)(counted ? counted : 1),
                              mdl->losses);
    if (!backward)
        return loss;

    /* ---- backward: every matrix gradient is written once (beta 0), so only the sums — the
     * norms and an untied embedding — are zeroed; a tied embedding gets the head's gradient
     * first and the lookups' on top ---- */
    float *dres = mdl->dres, *dxn = mdl->dxn;
    for (int i = 0; i < mdl->n_tensors; i++) {
        const train__tensor_t *t = &mdl->tensors[i];
        if (!t->matrix || (t->off == mdl->off_embd && !c->tied_output))
            memset(gr + t->off, 0, t->rows * t->cols * sizeof(float));
    }
    train__matmul_bwd(pool, mdl->xnf, w + mdl->off_out, mdl->logits, N, D, V, dxn, false,
                      gr + mdl->off_out, false);
    memset(dres, 0, sizeof(float) * (size_t)N * D);
    train__rmsnorm_bwd(pool, xL, w + mdl->off_out_norm, mdl->rstdf, dxn, N, D, dres,
                       gr + mdl->off_out_norm);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        const train__layer_t *ly = &mdl->layers[l];
        float *x = mdl->resid + (size_t)l * NB * D;
        float *xn1 = mdl->xn1 + (size_t)l * NB * D, *q = mdl->q + (size_t)l * NB * D;
        float *k = mdl->k + (size_t)l * NB * KD, *v = mdl->v_act + (size_t)l * NB * KD;
        float *att = mdl->att + (size_t)l * mdl->B * H * T * T;
        float *ao = mdl->ao + (size_t)l * NB * D, *xmid = mdl->xmid + (size_t)l * NB * D;
        float *xn2 = mdl->xn2 + (size_t)l * NB * D;
        float *gate = mdl->gate + (size_t)l * NB * F, *up = mdl->up + (size_t)l * NB * F;
        float *hh = mdl->hh + (size_t)l * NB * F;

        /* x_out = xmid + hh Wd^T */
        train__matmul_bwd(pool, hh, w + ly->wd, dres, N, F, D, mdl->dhh, false, gr + ly->wd, false);
        train__swiglu_bwd(pool, gate, up, mdl->dhh, (size_t)N * F, mdl->dg, mdl->du);
        train__matmul_bwd(pool, xn2, w + ly->wg, mdl->dg, N, D, F, dxn, false, gr + ly->wg, false);
        train__matmul_bwd(pool, xn2, w + ly->wu, mdl->du, N, D, F, dxn, true, gr + ly->wu, false);
        train__rmsnorm_bwd(pool, xmid, w + ly->ffn_norm, mdl->rstd2 + (size_t)l * NB, dxn, N, D,
                           dres, gr + ly->ffn_norm);
        /* xmid = x + ao Wo^T */
        train__matmul_bwd(pool, ao, w + ly->wo, dres, N, D, D, mdl->dao, false, gr + ly->wo, false);
        train__attn_bwd(pool, q, k, v, att, mdl->dao, nb, T, H, G, E, mdl->dq, mdl->dk, mdl->dv,
                        mdl->attn_scratch);
        train__rope(pool, mdl->dq, N, T, H, E, mdl->cs, mdl->sn, true);
        train__rope(pool, mdl->dk, N, T, G, E, mdl->cs, mdl->sn, true);
        train__matmul_bwd(pool, xn1, w + ly->wq, mdl->dq, N, D, D, dxn, false, gr + ly->wq, false);
        train__matmul_bwd(pool, xn1, w + ly->wk, mdl->dk, N, D, KD, dxn, true, gr + ly->wk, false);
        train__matmul_bwd(pool, xn1, w + ly->wv, mdl->dv, N, D, KD, dxn, true, gr + ly->wv, false);
        train__rmsnorm_bwd(pool, x, w + ly->attn_norm, mdl->rstd1 + (size_t)l * NB, dxn, N, D, dres,
                           gr + ly->attn_norm);
    }
    train__embed_bwd(gr + mdl->off_embd, ids, N, D, dres);
    return loss;
}
