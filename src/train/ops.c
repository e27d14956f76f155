/* train ops: the forward/backward kernels of every op the trainer uses (embedding, RMSNorm,
 * matmul through nn_sgemm, rope, causal GQA attention, SwiGLU, cross-entropy) and AdamW.
 * They never allocate; callers pass every buffer. Each item (row, column, (sequence, kv head))
 * is computed by one thread in a fixed order, so results do not depend on the thread count.
 *
 * The hot loops are written so that the compiler vectorizes them without -ffast-math and with a
 * fixed order: along a dimension that is not a reduction, or reducing into fixed lanes. They are
 * compiled for AVX-512, AVX2 and a baseline with function clones picked by CPU features at load
 * time (so results are fixed for a given machine). */
#include <math.h>
#include <string.h>

#include "train/internal.h"

#if defined(__OPTIMIZE__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#if defined(__x86_64__) && !defined(__clang__)
#define TRAIN__HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TRAIN__HOT
#endif

/* exp for the hot loops: branch-free and inlined so that loops over it vectorize (libm's expf is
 * an opaque call). x = n ln2 + r, |r| <= ln2/2, e^r by its Taylor polynomial to r^7 (relative
 * error ~1e-7, like expf), 2^n through the exponent bits. Inputs are clamped to [-87, 88]. */
static inline float fexp(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* round to nearest by the 1.5 * 2^23 trick (floorf is a call without -ffast-math) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

float train__exp(float x)
{
    return fexp(x);
}

/* sqrt for the AdamW loop, x >= 0: libm's sqrtf keeps an errno branch that stops the loop from
 * vectorizing (the build has no -fno-math-errno), so 1/sqrt by the bit-trick estimate and three
 * Newton steps (error at float rounding), times x. Exact 0 for x = 0. */
static inline float adam_sqrt(float x)
{
    int32_t i;
    memcpy(&i, &x, sizeof i);
    i = 0x5f3759df - (i >> 1);
    float y;
    memcpy(&y, &i, sizeof y);
    float h = 0.5f * x;
    y = y * (1.5f - h * y * y);
    y = y * (1.5f - h * y * y);
    y = y * (1.5f - h * y * y);
    return x * y;
}

float train__sqrt(float x)
{
    return adam_sqrt(x);
}

/* Row reductions in 16 fixed lanes (one AVX-512 vector; lane j takes elements j, j+16, ...), then
 * the lanes in order and the tail: vectorizable without -ffast-math, and the same order on every
 * run and thread. Max is exact in any order. */
enum { LANES = 16 };

static inline float row_max(const float *restrict p, int n)
{
    float m[LANES];
    for (int j = 0; j < LANES; j++)
        m[j] = p[0];
    int s = 0;
    for (; s + LANES <= n; s += LANES)
        for (int j = 0; j < LANES; j++)
            m[j] = p[s + j] > m[j] ? p[s + j] : m[j];
    float r = p[0];
    for (int j = 0; j < LANES; j++)
        r = m[j] > r ? m[j] : r;
    for (; s < n; s++)
        r = p[s] > r ? p[s] : r;
    return r;
}

static inline float row_sum(const float *restrict p, int n)
{
    float a[LANES] = {0};
    int s = 0;
    for (; s + LANES <= n; s += LANES)
        for (int j = 0; j < LANES; j++)
            a[j] += p[s + j];
    float r = 0;
    for (int j = 0; j < LANES; j++)
        r += a[j];
    for (; s < n; s++)
        r += p[s];
    return r;
}

/* sum of p[s] * q[s] */
static inline float row_dot(const float *restrict p, const float *restrict q, int n)
{
    float a[LANES] = {0};
    int s = 0;
    for (; s + LANES <= n; s += LANES)
        for (int j = 0; j < LANES; j++)
            a[j] += p[s + j] * q[s + j];
    float r = 0;
    for (int j = 0; j < LANES; j++)
        r += a[j];
    for (; s < n; s++)
        r += p[s] * q[s];
    return r;
}

/* sum of x * y * z in double (norm statistics, where rows are long and values spread). */
static inline double row_dot3d(const float *restrict x, const float *restrict y,
                               const float *restrict z, int n)
{
    double a[8] = {0};
    int s = 0;
    for (; s + 8 <= n; s += 8)
        for (int j = 0; j < 8; j++)
            a[j] += (double)x[s + j] * y[s + j] * z[s + j];
    double r = 0;
    for (int j = 0; j < 8; j++)
        r += a[j];
    for (; s < n; s++)
        r += (double)x[s] * y[s] * z[s];
    return r;
}

static inline double row_sumsq_d(const float *restrict x, int n)
{
    double a[8] = {0};
    int s = 0;
    for (; s + 8 <= n; s += 8)
        for (int j = 0; j < 8; j++)
            a[j] += (double)x[s + j] * x[s + j];
    double r = 0;
    for (int j = 0; j < 8; j++)
        r += a[j];
    for (; s < n; s++)
        r += (double)x[s] * x[s];
    return r;
}

/* ==== parallel for ==== */

typedef struct {
    size_t n;
    train__range_fn fn;
    void *ctx;
} par_t;

static void par_task(void *ctx, int ti, int nt)
{
    const par_t *p = ctx;
    size_t chunk = (p->n + (size_t)nt - 1) / (size_t)nt;
    size_t i0 = (size_t)ti * chunk, i1 = i0 + chunk;
    if (i1 > p->n)
        i1 = p->n;
    if (i0 < i1)
        p->fn(p->ctx, i0, i1);
}

void train__parallel(nn_pool_t *pool, size_t n, train__range_fn fn, void *ctx)
{
    if (n == 0)
        return;
    if (!pool || nn_pool_threads(pool) <= 1 || n == 1) {
        fn(ctx, 0, n);
        return;
    }
    par_t p = {n, fn, ctx};
    nn_pool_run(pool, par_task, &p);
}

/* ==== embedding ==== */

void train__embed_fwd(const float *E, const int32_t *ids, int N, int D, float *x)
{
    for (int i = 0; i < N; i++)
        memcpy(x + (size_t)i * D, E + (size_t)ids[i] * D, sizeof(float) * (size_t)D);
}

TRAIN__HOT void train__embed_bwd(float *dE, const int32_t *ids, int N, int D, const float *dx)
{
    for (int i = 0; i < N; i++) {
        float *restrict d = dE + (size_t)ids[i] * D;
        const float *restrict s = dx + (size_t)i * D;
        for (int j = 0; j < D; j++)
            d[j] += s[j];
    }
}

/* ==== RMSNorm ==== */

typedef struct {
    const float *x, *w, *rstd, *dy;
    float *y, *out_rstd, *dx, *dw;
    int D;
    float eps;
} norm_ctx_t;

TRAIN__HOT static void norm_fwd_rows(void *vc, size_t i0, size_t i1)
{
    const norm_ctx_t *c = vc;
    int D = c->D;
    for (size_t i = i0; i < i1; i++) {
        const float *restrict x = c->x + i * D;
        float *restrict y = c->y + i * D;
        double ss = row_sumsq_d(x, D);
        float r = (float)(1.0 / sqrt(ss / D + c->eps));
        c->out_rstd[i] = r;
        for (int j = 0; j < D; j++)
            y[j] = x[j] * r * c->w[j];
    }
}

void train__rmsnorm_fwd(nn_pool_t *pool, const float *x, const float *w, int N, int D, float eps,
                        float *y, float *rstd)
{
    norm_ctx_t c = {.x = x, .w = w, .y = y, .out_rstd = rstd, .D = D, .eps = eps};
    train__parallel(pool, (size_t)N, norm_fwd_rows, &c);
}

/* dx = r * (dy*w) - x * r^3 / D * sum(dy*w*x) */
TRAIN__HOT static void norm_bwd_rows(void *vc, size_t i0, size_t i1)
{
    const norm_ctx_t *c = vc;
    int D = c->D;
    for (size_t i = i0; i < i1; i++) {
        const float *restrict x = c->x + i * D;
        const float *restrict dy = c->dy + i * D;
        const float *restrict w = c->w;
        float *restrict dx = c->dx + i * D;
        float r = c->rstd[i];
        double dot = row_dot3d(dy, w, x, D);
        float k = (float)(dot * r * r * r / D);
        for (int j = 0; j < D; j++)
            dx[j] += r * dy[j] * w[j] - k * x[j];
    }
}

/* dw[j] += sum over rows of dy*x*r: split by columns so every column sums its rows in order. */
typedef struct {
    const norm_ctx_t *c;
    int N;
} norm_dw_ctx_t;

TRAIN__HOT static void norm_bwd_cols(void *vc, size_t j0, size_t j1)
{
    const norm_dw_ctx_t *cc = vc;
    const norm_ctx_t *c = cc->c;
    int D = c->D;
    float *restrict dw = c->dw;
    for (int i = 0; i < cc->N; i++) {
        const float *restrict x = c->x + (size_t)i * D;
        const float *restrict dy = c->dy + (size_t)i * D;
        float r = c->rstd[i];
        for (size_t j = j0; j < j1; j++)
            dw[j] += dy[j] * x[j] * r;
    }
}

void train__rmsnorm_bwd(nn_pool_t *pool, const float *x, const float *w, const float *rstd,
                        const float *dy, int N, int D, float *dx, float *dw)
{
    norm_ctx_t c = {.x = x, .w = w, .rstd = rstd, .dy = dy, .dx = dx, .dw = dw, .D = D};
    train__parallel(pool, (size_t)N, norm_bwd_rows, &c);
    norm_dw_ctx_t cc = {&c, N};
    train__parallel(pool, (size_t)D, norm_bwd_cols, &cc);
}

/* ==== matmul ==== */

void train__matmul_fwd(nn_pool_t *pool, const float *X, const float *W, int N, int in, int out,
                       bool accumulate, float *Y)
{
    nn_sgemm(pool, false, true, N, out, in, 1.0f, X, in, W, in, accumulate ? 1.0f : 0.0f, Y, out);
}

void train__matmul_bwd(nn_pool_t *pool, const float *X, const float *W, const float *dY, int N,
                       int in, int out, float *dX, bool dx_accumulate, float *dW,
                       bool dw_accumulate)
{
    if (dX)
        nn_sgemm(pool, false, false, N, in, out, 1.0f, dY, out, W, in, dx_accumulate ? 1.0f : 0.0f,
                 dX, in);
    nn_sgemm(pool, true, false, out, in, N, 1.0f, dY, out, X, in, dw_accumulate ? 1.0f : 0.0f, dW,
             in);
}

/* ==== rope ==== */

void train__rope_table(int T, int E, float base, float *cs, float *sn)
{
    int half = E / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            /* same expression as inference (src/llm) so trained weights see the same angles */
            float theta = (float)t * powf(base, -2.0f * (float)i / (float)E);
            cs[(size_t)t * half + i] = cosf(theta);
            sn[(size_t)t * half + i] = sinf(theta);
        }
}

typedef struct {
    float *x;
    const float *cs, *sn;
    int T, n_heads, E;
    float sgn;
} rope_ctx_t;

TRAIN__HOT static void rope_rows(void *vc, size_t r0, size_t r1)
{
    const rope_ctx_t *k = vc;
    int half = k->E / 2;
    for (size_t r = r0; r < r1; r++) {
        const float *restrict c = k->cs + (r % (size_t)k->T) * half;
        const float *restrict s = k->sn + (r % (size_t)k->T) * half;
        float *row = k->x + r * k->n_heads * k->E;
        for (int h = 0; h < k->n_heads; h++) {
            float *restrict p = row + (size_t)h * k->E;
            for (int i = 0; i < half; i++) {
                float a = p[2 * i], b = p[2 * i + 1], si = k->sgn * s[i];
                p[2 * i] = a * c[i] - b * si;
                p[2 * i + 1] = a * si + b * c[i];
            }
        }
    }
}

void train__rope(nn_pool_t *pool, float *x, int N, int T, int n_heads, int E, const float *cs,
                 const float *sn, bool inverse)
{
    rope_ctx_t k = {x, cs, sn, T, n_heads, E, inverse ? -1.0f : 1.0f};
    train__parallel(pool, (size_t)N, rope_rows, &k);
}

/* ==== attention ==== */
/* Per task (sequence b, kv head g) on one thread: the heads of the group, so that the dk/dv rows
 * of (b, g) have one writer. The products are single-threaded GEMMs (nn_sgemm without a pool)
 * on the strided head slices — no transposes copied out; the causal mask is applied to the
 * probabilities (zero above the diagonal), so the backward products need no mask. */

size_t train__attn_scratch(int T, int E)
{
    (void)E;
    return (size_t)T * T;
}

typedef struct {
    const float *q, *k, *v, *att, *dout;
    float *att_out, *out, *dq, *dk, *dv, *scratch;
    int B, T, H, G, E;
    bool backward;
} attn_ctx_t;

/* Row-wise masked softmax of the T x T scores in place. */
TRAIN__HOT static void causal_softmax(float *S, int T)
{
    for (int t = 0; t < T; t++) {
        float *restrict p = S + (size_t)t * T;
        int n = t + 1;
        float mx = row_max(p, n);
        for (int s = 0; s < n; s++)
            p[s] = fexp(p[s] - mx);
        float sum = row_sum(p, n);
        float inv = 1.0f / sum;
        for (int s = 0; s < n; s++)
            p[s] *= inv;
        for (int s = n; s < T; s++)
            p[s] = 0;
    }
}

/* dS = P * (dP - rowsum(P * dP)) * scale, in place on dP. */
TRAIN__HOT static void softmax_bwd(const float *P, float *dP, int T, float scale)
{
    for (int t = 0; t < T; t++) {
        const float *restrict p = P + (size_t)t * T;
        float *restrict d = dP + (size_t)t * T;
        int n = t + 1;
        float sum = row_dot(p, d, n);
        for (int s = 0; s < n; s++)
            d[s] = p[s] * (d[s] - sum) * scale;
        for (int s = n; s < T; s++)
            d[s] = 0;
    }
}

/* Rows are taken in blocks of train__attn_block: block [r0, r1) needs keys [0, r1) only, and a key
 * block [c0, c1) gets gradient from rows [c0, T) only — the products skip the upper triangle
 * (25% of the work at T = 2 blocks, 44% at 8). */
int train__attn_block = 64;

static void attn_fwd_task(const attn_ctx_t *c, int b, int g)
{
    int T = c->T, H = c->H, G = c->G, E = c->E, D = H * E, KD = G * E, hpg = H / G;
    int bs = train__attn_block > 0 ? train__attn_block : T;
    float scale = 1.0f / sqrtf((float)E);
    const float *kb = c->k + (size_t)b * T * KD + (size_t)g * E;
    const float *vb = c->v + (size_t)b * T * KD + (size_t)g * E;
    for (int hh = 0; hh < hpg; hh++) {
        int h = g * hpg + hh;
        const float *qb = c->q + (size_t)b * T * D + (size_t)h * E;
        float *P = c->att_out + ((size_t)b * H + h) * T * T;
        float *ob = c->out + (size_t)b * T * D + (size_t)h * E;
        for (int r0 = 0; r0 < T; r0 += bs) {
            int r1 = r0 + bs < T ? r0 + bs : T;
            nn_sgemm(NULL, false, true, r1 - r0, r1, E, scale, qb + (size_t)r0 * D, D, kb, KD, 0.0f,
                     P + (size_t)r0 * T, T);
        }
        causal_softmax(P, T); /* zeroes everything above the diagonal, computed or not */
        for (int r0 = 0; r0 < T; r0 += bs) {
            int r1 = r0 + bs < T ? r0 + bs : T;
            nn_sgemm(NULL, false, false, r1 - r0, E, r1, 1.0f, P + (size_t)r0 * T, T, vb, KD, 0.0f,
                     ob + (size_t)r0 * D, D);
        }
    }
}

static void attn_bwd_task(const attn_ctx_t *c, int b, int g, float *dS)
{
    int T = c->T, H = c->H, G = c->G, E = c->E, D = H * E, KD = G * E, hpg = H / G;
    int bs = train__attn_block > 0 ? train__attn_block : T;
    float scale = 1.0f / sqrtf((float)E);
    const float *kb = c->k + (size_t)b * T * KD + (size_t)g * E;
    const float *vb = c->v + (size_t)b * T * KD + (size_t)g * E;
    float *dkb = c->dk + (size_t)b * T * KD + (size_t)g * E;
    float *dvb = c->dv + (size_t)b * T * KD + (size_t)g * E;
    for (int hh = 0; hh < hpg; hh++) {
        int h = g * hpg + hh;
        const float *P = c->att + ((size_t)b * H + h) * T * T;
        const float *dob = c->dout + (size_t)b * T * D + (size_t)h * E;
        const float *qb = c->q + (size_t)b * T * D + (size_t)h * E;
        float *dqb = c->dq + (size_t)b * T * D + (size_t)h * E;
        float beta = hh == 0 ? 0.0f : 1.0f;  /* the group's first head initializes dk, dv */
        for (int r0 = 0; r0 < T; r0 += bs) { /* dP = dO V^T, lower part */
            int r1 = r0 + bs < T ? r0 + bs : T;
            nn_sgemm(NULL, false, true, r1 - r0, r1, E, 1.0f, dob + (size_t)r0 * D, D, vb, KD, 0.0f,
                     dS + (size_t)r0 * T, T);
        }
        for (int c0 = 0; c0 < T; c0 += bs) { /* dV = P^T dO */
            int c1 = c0 + bs < T ? c0 + bs : T;
            nn_sgemm(NULL, true, false, c1 - c0, E, T - c0, 1.0f, P + (size_t)c0 * T + c0, T,
                     dob + (size_t)c0 * D, D, beta, dvb + (size_t)c0 * KD, KD);
        }
        softmax_bwd(P, dS, T, scale);
        for (int r0 = 0; r0 < T; r0 += bs) { /* dQ = dS K */
            int r1 = r0 + bs < T ? r0 + bs : T;
            nn_sgemm(NULL, false, false, r1 - r0, E, r1, 1.0f, dS + (size_t)r0 * T, T, kb, KD, 0.0f,
                     dqb + (size_t)r0 * D, D);
        }
        for (int c0 = 0; c0 < T; c0 += bs) { /* dK = dS^T Q */
            int c1 = c0 + bs < T ? c0 + bs : T;
            nn_sgemm(NULL, true, false, c1 - c0, E, T - c0, 1.0f, dS + (size_t)c0 * T + c0, T,
                     qb + (size_t)c0 * D, D, beta, dkb + (size_t)c0 * KD, KD);
        }
    }
}

static void attn_run(void *vc, int ti, int nt)
{
    const attn_ctx_t *c = vc;
    int ntask = c->B * c->G;
    float *scr = c->scratch + (size_t)ti * train__attn_scratch(c->T, c->E);
    for (int j = ti; j < ntask; j += nt) {
        if (c->backward)
            attn_bwd_task(c, j / c->G, j % c->G, scr);
        else
            attn_fwd_task(c, j / c->G, j % c->G);
    }
}

static void attn_dispatch(nn_pool_t *pool, attn_ctx_t *c)
{
    if (!pool || nn_pool_threads(pool) <= 1)
        attn_run(c, 0, 1);
    else
        nn_pool_run(pool, attn_run, c);
}

void train__attn_fwd(nn_pool_t *pool, const float *q, const float *k, const float *v, int B, int T,
                     int H, int G, int E, float *att, float *out, float *scratch)
{
    attn_ctx_t c = {.q = q,
                    .k = k,
                    .v = v,
                    .att_out = att,
                    .out = out,
                    .scratch = scratch,
                    .B = B,
                    .T = T,
                    .H = H,
                    .G = G,
                    .E = E,
                    .backward = false};
    attn_dispatch(pool, &c);
}

void train__attn_bwd(nn_pool_t *pool, const float *q, const float *k, const float *v,
                     const float *att, const float *dout, int B, int T, int H, int G, int E,
                     float *dq, float *dk, float *dv, float *scratch)
{
    attn_ctx_t c = {.q = q,
                    .k = k,
                    .v = v,
                    .att = att,
                    .dout = dout,
                    .dq = dq,
                    .dk = dk,
                    .dv = dv,
                    .scratch = scratch,
                    .B = B,
                    .T = T,
                    .H = H,
                    .G = G,
                    .E = E,
                    .backward = true};
    attn_dispatch(pool, &c);
}

/* ==== SwiGLU ==== */

typedef struct {
    const float *g, *u, *dh;
    float *h, *dg, *du;
} swiglu_ctx_t;

TRAIN__HOT static void swiglu_fwd_range(void *vc, size_t i0, size_t i1)
{
    const swiglu_ctx_t *c = vc;
    for (size_t i = i0; i < i1; i++) {
        float g = c->g[i];
        c->h[i] = g / (1.0f + fexp(-g)) * c->u[i];
    }
}

TRAIN__HOT static void swiglu_bwd_range(void *vc, size_t i0, size_t i1)
{
    const swiglu_ctx_t *c = vc;
    for (size_t i = i0; i < i1; i++) {
        float g = c->g[i], sg = 1.0f / (1.0f + fexp(-g)), dh = c->dh[i];
        c->dg[i] = dh * c->u[i] * sg * (1.0f + g * (1.0f - sg));
        c->du[i] = dh * g * sg;
    }
}

void train__swiglu_fwd(nn_pool_t *pool, const float *g, const float *u, size_t n, float *h)
{
    swiglu_ctx_t c = {.g = g, .u = u, .h = h};
    train__parallel(pool, n, swiglu_fwd_range, &c);
}

void train__swiglu_bwd(nn_pool_t *pool, const float *g, const float *u, const float *dh, size_t n,
                       float *dg, float *du)
{
    swiglu_ctx_t c = {.g = g, .u = u, .dh = dh, .dg = dg, .du = du};
    train__parallel(pool, n, swiglu_bwd_range, &c);
}

/* ==== cross-entropy ==== */

typedef struct {
    float *logits, *losses;
    const int32_t *targets;
    int V;
    float scale;
} xent_ctx_t;

TRAIN__HOT static void xent_rows(void *vc, size_t i0, size_t i1)
{
    const xent_ctx_t *c = vc;
    int V = c->V;
    for (size_t i = i0; i < i1; i++) {
        float *restrict l = c->logits + i * V;
        if (c->targets[i] < 0) { /* a context token (train_params_t.loss_from): no loss, no gradient */
            c->losses[i] = 0;
            memset(l, 0, sizeof(float) * (size_t)V);
            continue;
        }
        float mx = row_max(l, V);
        for (int j = 0; j < V; j++)
            l[j] = fexp(l[j] - mx);
        double sum = row_sum(l, V);
        int t = c->targets[i];
        c->losses[i] = (float)(log(sum) - log((double)l[t]));
        float k = (float)(c->scale / sum);
        for (int j = 0; j < V; j++)
            l[j] *= k;
        l[t] -= c->scale;
    }
}

double train__xent(nn_pool_t *pool, float *logits, const int32_t *targets, int N, int V,
                   float scale, float *losses)
{
    xent_ctx_t c = {logits, losses, targets, V, scale};
    train__parallel(pool, (size_t)N, xent_rows, &c);
    double s = 0;
    int counted = 0;
    for (int i = 0; i < N; i++) {
        s += losses[i];
        counted += targets[i] >= 0;
    }
    return counted ? s / counted : 0.0;
}

/* ==== AdamW, norms ==== */

typedef struct {
    float *p, *m, *v;
    const float *g;
    float lr, b1, b2, eps, wd, c1, c2, gs;
    double *partial;
    size_t chunk;
} adam_ctx_t;

TRAIN__HOT static void adam_range(void *vc, size_t i0, size_t i1)
{
    const adam_ctx_t *c = vc;
    float *restrict p = c->p, *restrict m = c->m, *restrict v = c->v;
    const float *restrict g = c->g;
    /* locals, so the stores through p, m, v cannot be thought to change them */
    const float gs = c->gs, b1 = c->b1, b2 = c->b2, c1 = c->c1, c2 = c->c2, lr = c->lr,
                eps = c->eps, wd = c->wd;
    for (size_t i = i0; i < i1; i++) {
        float gi = g[i] * gs;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (mi * c1 / (adam_sqrt(vi * c2) + eps) + wd * p[i]);
    }
}

void train__adamw(nn_pool_t *pool, float *p, const float *g, float gscale, float *m, float *v,
                  size_t n, float lr, float beta1, float beta2, float eps, float wd, int step)
{
    adam_ctx_t c = {.p = p,
                    .m = m,
                    .v = v,
                    .g = g,
                    .lr = lr,
                    .b1 = beta1,
                    .b2 = beta2,
                    .eps = eps,
                    .wd = wd,
                    .gs = gscale};
    c.c1 = (float)(1.0 / (1.0 - pow(beta1, step)));
    c.c2 = (float)(1.0 / (1.0 - pow(beta2, step)));
    train__parallel(pool, n, adam_range, &c);
}

/* Fixed chunks (independent of the thread count), summed in chunk order. */
enum { SUMSQ_CHUNK = 1 << 14 };

TRAIN__HOT static void sumsq_range(void *vc, size_t k0, size_t k1)
{
    const adam_ctx_t *c = vc;
    for (size_t k = k0; k < k1; k++) {
        size_t i0 = k * c->chunk, i1 = i0 + c->chunk;
        /* 8 running sums (lanes of one vector) in a fixed order; chunks are multiples of 8 */
        double acc[8] = {0};
        const float *restrict x = c->g;
        for (size_t i = i0; i < i1; i += 8)
            for (int j = 0; j < 8; j++)
                acc[j] += (double)x[i + j] * x[i + j];
        double s = 0;
        for (int j = 0; j < 8; j++)
            s += acc[j];
        c->partial[k] = s;
    }
}

double train__sumsq(nn_pool_t *pool, const float *x, size_t n)
{
    double partial[256];
    size_t chunk = SUMSQ_CHUNK;
    while ((n + chunk - 1) / chunk > 256)
        chunk *= 2;
    size_t nk = n / chunk;
    adam_ctx_t c = {.g = x, .partial = partial, .chunk = chunk};
    train__parallel(pool, nk, sumsq_range, &c);
    double s = 0;
    for (size_t k = 0; k < nk; k++)
        s += partial[k];
    for (size_t i = nk * chunk; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}
