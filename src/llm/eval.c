/* llm evaluation: the KV cache of one sequence and the forward pass over a batch of tokens.
 *
 * One forward function serves both paths: a single token uses nn_matvec, a batch of n > 1 rows
 * uses nn_matmul over all rows at once and attends for all (query, head) pairs in one pool run.
 * A long batch is cut into micro-batches of at most LLM_UBATCH rows so that scratch stays
 * bounded; all of it is allocated once in llm_ctx_new (nothing is allocated per token).
 *
 * KV cache: F32. Values per layer [T][KD] (row p holds position p). Keys per layer transposed,
 * [K][S][T] (rows padded, see kt), so that the scores of one query against all positions are S
 * contiguous multiply-adds over T (vectorized without any horizontal sum); keys are stored after
 * rotation.
 *
 * Invariants: 0 <= pos <= n_ctx; rows [0, pos) of every layer's cache are valid. An llm_ctx_t
 * is used by one thread at a time (the pool's threads work inside one llm_eval call). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm/internal.h"

#define LLM_UBATCH 256

struct llm_ctx {
    const llm_model_t *m;
    int n_ctx; /* T */
    size_t kt; /* floats from one row of the transposed keys to the next: T rounded up to 16,
                * plus 16, so that rows 4 KiB apart do not all fall in the same L1 sets */
    int pos;
    int n_ub; /* rows of batch scratch */
    float *k_cache;           /* [L][K][S][T] */
    float *v_cache;           /* [L][T][KD] */
    float *kb;                /* [n_ub][KD] new keys before they are transposed into the cache */
    float *qkv;               /* [n_ub][D + 2 KD] q, k, v rows from one fused product */
    float *x;                 /* [n_ub][D] residual stream */
    float *xb, *xb2;          /* [n_ub][D] */
    float *q;                 /* [n_ub][D] */
    float *hb;                /* [n_ub][2 F] gate (| up, when fused) */
    float *hb2;               /* [n_ub][F] up, then silu(gate) * up */
    float *freq;              /* [S/2] rotation frequency of each pair */
    float *rcos, *rsin;       /* [n_ub][S/2] */
    float *scores;            /* [n_scores][T] attention scores, a row per pool thread */
    int n_scores;
};

int llm_ctx_new(const llm_model_t *m, int n_ctx, llm_ctx_t **out)
{
    const llm_config_t *c = &m->c;
    *out = NULL;
    if (n_ctx <= 0)
        n_ctx = c->n_ctx;
    if (n_ctx > (1 << 20))
        return -1;
    llm_ctx_t *x = xcalloc(1, sizeof *x);
    size_t d = (size_t)c->dim, f = (size_t)c->ffn_dim, s = d / (size_t)c->n_heads;
    size_t kd = s * (size_t)c->n_kv_heads;
    x->m = m;
    x->n_ctx = n_ctx;
    x->n_ub = n_ctx < LLM_UBATCH ? n_ctx : LLM_UBATCH;
    x->kt = ((size_t)n_ctx + 15) / 16 * 16 + 16;
    size_t ub = (size_t)x->n_ub, cache = (size_t)c->n_layers * (size_t)n_ctx * kd;
    /* The cache and batch scratch are sized by the model and context: errors, not aborts. The
     * key cache has 64 floats more at its end: score blocks of 64 may read past the last row. */
    x->k_cache = calloc((size_t)c->n_layers * kd * x->kt + 64, sizeof(float));
    x->v_cache = malloc(cache * sizeof(float));
    x->x = malloc(ub * d * sizeof(float));
    x->xb = malloc(ub * d * sizeof(float));
    x->xb2 = malloc(ub * d * sizeof(float));
    x->q = malloc(ub * d * sizeof(float));
    x->kb = malloc(ub * kd * sizeof(float));
    x->hb = malloc(ub * 2 * f * sizeof(float));
    x->qkv = malloc(ub * (d + 2 * kd) * sizeof(float));
    x->hb2 = malloc(ub * f * sizeof(float));
    x->freq = malloc(s / 2 * sizeof(float));
    x->rcos = malloc(ub * s / 2 * sizeof(float));
    x->rsin = malloc(ub * s / 2 * sizeof(float));
    x->n_scores = 2;
    x->scores = malloc((size_t)x->n_scores * (size_t)n_ctx * sizeof(float));
    if (!x->k_cache || !x->v_cache || !x->x || !x->xb || !x->xb2 || !x->q || !x->kb || !x->qkv || !x->hb || !x->hb2 ||
        !x->freq || !x->rcos || !x->rsin || !x->scores) {
        llm_ctx_free(&x);
        return -1;
    }
    for (size_t i = 0; i < s / 2; i++)
        x->freq[i] = powf(c->rope_base, -(float)(2 * i) / (float)s);
    *out = x;
    return 0;
}

void llm_ctx_free(llm_ctx_t **pc)
{
    llm_ctx_t *c = pc ? *pc : NULL;
    if (!c)
        return;
    free(c->k_cache);
    free(c->v_cache);
    free(c->x);
    free(c->xb);
    free(c->xb2);
    free(c->q);
    free(c->kb);
    free(c->qkv);
    free(c->hb);
    free(c->hb2);
    free(c->freq);
    free(c->rcos);
    free(c->rsin);
    free(c->scores);
    free(c);
    *pc = NULL;
}

void llm_ctx_reset(llm_ctx_t *c) { c->pos = 0; }
int llm_ctx_pos(const llm_ctx_t *c) { return c->pos; }
int llm_ctx_size(const llm_ctx_t *c) { return c->n_ctx; }

/* ================================ pieces of the forward pass ================================ */

static void llm_run(nn_pool_t *pool, nn_task_fn fn, void *arg)
{
    if (pool)
        nn_pool_run(pool, fn, arg);
    else
        fn(arg, 0, 1);
}

/* Y[n][rows] = X[n][cols] . W^T */
static void llm_mul(nn_pool_t *pool, const llm__mat_t *w, size_t rows, size_t cols, const float *X,
                    size_t n, float *Y)
{
    if (n == 1)
        nn_matvec(pool, w->type, w->data, rows, cols, X, Y);
    else
        nn_matmul(pool, w->type, w->data, rows, cols, X, n, Y);
}

static void llm_rmsnorm(float *out, const float *x, const float *w, size_t d, float eps)
{
    double ss = 0.0;
    for (size_t i = 0; i < d; i++)
        ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)d + (double)eps));
    for (size_t i = 0; i < d; i++)
        out[i] = x[i] * scale * w[i];
}

/* Rotates the pairs (v[2i], v[2i+1]) of each of n_heads heads of s elements. */
static void llm_rope(float *v, int n_heads, size_t s, const float *cs, const float *sn)
{
    for (int h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * s;
        for (size_t i = 0; i < s / 2; i++) {
            float a = p[2 * i], b = p[2 * i + 1];
            p[2 * i] = a * cs[i] - b * sn[i];
            p[2 * i + 1] = a * sn[i] + b * cs[i];
        }
    }
}

/* Hot loops of attention and SwiGLU: compiled for AVX-512, AVX2 and plain x86-64 and picked at
 * load time, so the exp and dot loops below are vectorized on whatever CPU runs them. */
#define LLM_HOT                                                                                    \
    __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3", "fp-contract=fast")))

/* exp(x) for x <= 0 (softmax after subtracting the maximum, silu of -|x|), relative error
 * < 2e-7: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n through the exponent
 * bits. Branch-free so that loops over it vectorize. */
static inline float llm_exp_neg(float x)
{
    x = x > -87.0f ? x : -87.0f; /* NaN too: the int conversion below must stay in range */
    /* Round to nearest by adding and removing 1.5 * 2^23 (|x * log2 e| < 2^22). */
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145752f - n * 1.42860677e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666418f +
                                     r * (0.00833336077f + r * 0.00138925458f)))));
    int32_t bits;
    memcpy(&bits, &p, sizeof bits);
    bits += (int32_t)n * (1 << 23);
    memcpy(&p, &bits, sizeof p);
    return p;
}

/* 16 floats as one value: GCC lowers it to one AVX-512 register, two AVX2 or four SSE ones. */
typedef float llm_v16 __attribute__((vector_size(64)));

typedef struct {
    llm_ctx_t *c;
    int layer;
    int n;    /* rows in the batch */
    int pos0; /* position of row 0 */
} llm_attn_job_t;

/* Causal attention of each (row, head) pair; pairs are dealt round-robin to the threads so the
 * triangle's long and short rows mix. Scores go to the thread's own row of c->scores. */
LLM_HOT static void llm_attn_task(void *arg, int ti, int nt)
{
    const llm_attn_job_t *j = arg;
    const llm_ctx_t *c = j->c;
    const llm_config_t *cf = &c->m->c;
    const size_t s = (size_t)(cf->dim / cf->n_heads), d = (size_t)cf->dim;
    const size_t kd = s * (size_t)cf->n_kv_heads;
    const int group = cf->n_heads / cf->n_kv_heads;
    const size_t T = (size_t)c->n_ctx, KT = c->kt;
    const float *kc = c->k_cache + (size_t)j->layer * KT * kd;
    const float *vc = c->v_cache + (size_t)j->layer * T * kd;
    const float scale = 1.0f / sqrtf((float)s);
    float *sc = c->scores + (size_t)ti * T;
    int total = j->n * cf->n_heads;
    for (int u = ti; u < total; u += nt) {
        int i = u / cf->n_heads, h = u % cf->n_heads;
        size_t np = (size_t)(j->pos0 + i) + 1;
        const float *q = c->q + (size_t)i * d + (size_t)h * s;
        float *o = c->xb2 + (size_t)i * d + (size_t)h * s;
        const float *kt = kc + (size_t)(h / group) * s * KT, *vh = vc + (size_t)(h / group) * s;
        /* Blocks of 64 positions stay in registers over the whole head dimension. The last block
         * may read past np (stale or zero cache entries, and the cache has 64 floats of padding
         * at its end); those lanes are never stored. */
        for (size_t t0 = 0; t0 < np; t0 += 64) {
            float acc[64] = {0};
            for (size_t e = 0; e < s; e++) {
                const float qe = q[e] * scale, *kr = kt + e * KT + t0;
                for (int l = 0; l < 64; l++)
                    acc[l] += qe * kr[l];
            }
            memcpy(sc + t0, acc, (np - t0 < 64 ? np - t0 : 64) * sizeof(float));
        }
        /* Lane-wise maxima first: a plain max reduction would not vectorize. */
        float m16[16], mx = -INFINITY;
        size_t t1 = 0;
        for (int l = 0; l < 16; l++)
            m16[l] = -INFINITY;
        for (; t1 + 16 <= np; t1 += 16)
            for (int l = 0; l < 16; l++)
                m16[l] = sc[t1 + (size_t)l] > m16[l] ? sc[t1 + (size_t)l] : m16[l];
        for (; t1 < np; t1++)
            mx = sc[t1] > mx ? sc[t1] : mx;
        for (int l = 0; l < 16; l++)
            mx = m16[l] > mx ? m16[l] : mx;
        for (size_t t = 0; t < np; t++)
            sc[t] = llm_exp_neg(sc[t] - mx);
        float sum = 0.0f;
        for (size_t t = 0; t < np; t++)
            sum += sc[t];
        float inv = 1.0f / sum;
        if (s % 16 == 0) {
            /* 16 output elements at a time in a vector, two accumulators to hide the latency. */
            for (size_t e0 = 0; e0 < s; e0 += 16) {
                llm_v16 a0 = {0}, a1 = {0}, x0, x1;
                size_t t = 0;
                for (; t + 2 <= np; t += 2) {
                    memcpy(&x0, vh + t * kd + e0, sizeof x0);
                    memcpy(&x1, vh + (t + 1) * kd + e0, sizeof x1);
                    a0 += sc[t] * x0;
                    a1 += sc[t + 1] * x1;
                }
                if (t < np) {
                    memcpy(&x0, vh + t * kd + e0, sizeof x0);
                    a0 += sc[t] * x0;
                }
                a0 = (a0 + a1) * inv;
                memcpy(o + e0, &a0, sizeof a0);
            }
        } else {
            for (size_t e = 0; e < s; e++)
                o[e] = 0.0f;
            for (size_t t = 0; t < np; t++) {
                const float *v = vh + t * kd;
                float w = sc[t] * inv;
                for (size_t e = 0; e < s; e++)
                    o[e] += w * v[e];
            }
        }
    }
}

typedef struct {
    const float *g;  /* gate rows, `stride` apart */
    const float *up; /* up rows, `stride` apart */
    float *out;      /* [rows][F] dense: silu(gate) * up (may be g itself when stride == F) */
    size_t rows, f, stride;
} llm_swiglu_job_t;

/* silu(g) * up, silu(v) = v / (1 + e^-v) computed from e^-|v| so the exp never overflows. The
 * rows x F elements are split evenly over the threads, rows or not. */
LLM_HOT static void llm_swiglu_task(void *arg, int ti, int nt)
{
    const llm_swiglu_job_t *j = arg;
    size_t total = j->rows * j->f, per = (total + (size_t)nt - 1) / (size_t)nt;
    size_t a = per * (size_t)ti, b = a + per > total ? total : a + per;
    while (a < b) {
        size_t r = a / j->f, e0 = a % j->f, e1 = b - r * j->f < j->f ? b - r * j->f : j->f;
        const float *g = j->g + r * j->stride, *up = j->up + r * j->stride;
        float *o = j->out + r * j->f;
        for (size_t e = e0; e < e1; e++) {
            float v = g[e];
            float x = llm_exp_neg(v < 0.0f ? v : -v);
            float sig = v < 0.0f ? x / (1.0f + x) : 1.0f / (1.0f + x);
            o[e] = v * sig * up[e];
        }
        a = r * j->f + e1;
    }
}

/* Runs n (<= n_ub) tokens at positions pos.. through every layer; x holds their hidden states
 * afterwards, and the cache their keys and values. */
static void llm_forward(llm_ctx_t *c, nn_pool_t *pool, const int32_t *tokens, int n)
{
    const llm_model_t *m = c->m;
    const llm_config_t *cf = &m->c;
    size_t d = (size_t)cf->dim, f = (size_t)cf->ffn_dim, s = d / (size_t)cf->n_heads;
    size_t kd = s * (size_t)cf->n_kv_heads, hs = s / 2;
    size_t erb = nn_row_bytes(m->tok_embd.type, d);
    for (int i = 0; i < n; i++) {
        const uint8_t *row = (const uint8_t *)m->tok_embd.data + (size_t)tokens[i] * erb;
        if (m->tok_embd.type == NN_F32)
            memcpy(c->x + (size_t)i * d, row, erb);
        else
            nn_dequantize_row(m->tok_embd.type, row, c->x + (size_t)i * d, d);
        float p = (float)(c->pos + i);
        for (size_t k = 0; k < hs; k++) {
            float th = p * c->freq[k];
            c->rcos[(size_t)i * hs + k] = cosf(th);
            c->rsin[(size_t)i * hs + k] = sinf(th);
        }
    }
    for (int l = 0; l < cf->n_layers; l++) {
        const llm__layer_t *L = &m->layers[l];
        size_t KT = c->kt;
        float *kc = c->k_cache + (size_t)l * KT * kd;
        float *vc = c->v_cache + ((size_t)l * (size_t)c->n_ctx + (size_t)c->pos) * kd;
        for (int i = 0; i < n; i++)
            llm_rmsnorm(c->xb + (size_t)i * d, c->x + (size_t)i * d, L->attn_norm, d, cf->norm_eps);
        /* V goes straight into the cache rows of its positions. */
        if (L->fused_qkv) {
            /* One product for q, k and v (one packing of the batch, one pool wake-up); its rows
             * [q | k | v] are then split. */
            size_t w = d + 2 * kd;
            llm_mul(pool, &L->attn_q, w, d, c->xb, (size_t)n, c->qkv);
            for (int i = 0; i < n; i++) {
                const float *r = c->qkv + (size_t)i * w;
                memcpy(c->q + (size_t)i * d, r, d * sizeof(float));
                memcpy(c->kb + (size_t)i * kd, r + d, kd * sizeof(float));
                memcpy(vc + (size_t)i * kd, r + d + kd, kd * sizeof(float));
            }
        } else {
            llm_mul(pool, &L->attn_q, d, d, c->xb, (size_t)n, c->q);
            llm_mul(pool, &L->attn_k, kd, d, c->xb, (size_t)n, c->kb);
            llm_mul(pool, &L->attn_v, kd, d, c->xb, (size_t)n, vc);
        }
        for (int i = 0; i < n; i++) {
            const float *cs = c->rcos + (size_t)i * hs, *sn = c->rsin + (size_t)i * hs;
            llm_rope(c->q + (size_t)i * d, cf->n_heads, s, cs, sn);
            llm_rope(c->kb + (size_t)i * kd, cf->n_kv_heads, s, cs, sn);
        }
        /* Transposed into the cache: contiguous writes, reads from the small kb. */
        for (size_t e = 0; e < kd; e++)
            for (int i = 0; i < n; i++)
                kc[e * KT + (size_t)(c->pos + i)] = c->kb[(size_t)i * kd + e];
        /* Waking the pool costs more than a short attention (one token early in the context). */
        llm_attn_job_t aj = {c, l, n, c->pos};
        double work = (double)n * cf->n_heads * (double)(c->pos + n) * (double)s;
        llm_run(work < 32768 ? NULL : pool, llm_attn_task, &aj);
        llm_mul(pool, &L->attn_output, d, d, c->xb2, (size_t)n, c->xb);
        for (size_t i = 0; i < (size_t)n * d; i++)
            c->x[i] += c->xb[i];
        for (int i = 0; i < n; i++)
            llm_rmsnorm(c->xb + (size_t)i * d, c->x + (size_t)i * d, L->ffn_norm, d, cf->norm_eps);
        llm_swiglu_job_t sj;
        if (L->fused_gate_up) {
            /* Rows [gate | up] of 2 F; the product goes dense into hb2. */
            llm_mul(pool, &L->ffn_gate, 2 * f, d, c->xb, (size_t)n, c->hb);
            sj = (llm_swiglu_job_t){c->hb, c->hb + f, c->hb2, (size_t)n, f, 2 * f};
        } else {
            llm_mul(pool, &L->ffn_gate, f, d, c->xb, (size_t)n, c->hb);
            llm_mul(pool, &L->ffn_up, f, d, c->xb, (size_t)n, c->hb2);
            sj = (llm_swiglu_job_t){c->hb, c->hb2, c->hb2, (size_t)n, f, f};
        }
        llm_run((size_t)n * f < 16384 ? NULL : pool, llm_swiglu_task, &sj);
        llm_mul(pool, &L->ffn_down, d, f, c->hb2, (size_t)n, c->xb);
        for (size_t i = 0; i < (size_t)n * d; i++)
            c->x[i] += c->xb[i];
    }
    c->pos += n;
}

int llm_eval(llm_ctx_t *c, nn_pool_t *pool, const int32_t *tokens, size_t n, float *logits)
{
    const llm_config_t *cf = &c->m->c;
    if (n == 0 || n > (size_t)(c->n_ctx - c->pos))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= cf->n_vocab)
            return -1;
    /* One row of attention scores per pool thread: grown the first time a bigger pool comes. */
    int nt = pool ? nn_pool_threads(pool) : 1;
    if (nt > c->n_scores) {
        float *sc = realloc(c->scores, (size_t)nt * (size_t)c->n_ctx * sizeof(float));
        if (!sc)
            return -1;
        c->scores = sc;
        c->n_scores = nt;
    }
    size_t done = 0, last = 0;
    while (done < n) {
        size_t k = n - done < (size_t)c->n_ub ? n - done : (size_t)c->n_ub;
        llm_forward(c, pool, tokens + done, (int)k);
        last = k - 1;
        done += k;
    }
    if (logits) {
        size_t d = (size_t)cf->dim;
        /* Only the last row needs the head. */
        llm_rmsnorm(c->xb, c->x + last * d, c->m->output_norm, d, cf->norm_eps);
        nn_matvec(pool, c->m->output.type, c->m->output.data, (size_t)cf->n_vocab, d, c->xb, logits);
    }
    return 0;
}
