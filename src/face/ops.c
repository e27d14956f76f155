/* ops.c: the layers every face network is built from, on NHWC float tensors in the ctx's arena —
 * convolution (a direct kernel for short inner dimensions such as a first layer on RGB, else
 * im2col + nn_sgemm, 1x1 straight on the activation buffer), a convolution fused with the max pool
 * after it, depthwise convolution (direct), separable convolution, padding, pooling with tfjs'
 * rules, activations, fully connected layers, softmax. Padding follows TensorFlow: SAME gives
 * out = ceil(in / stride) with pad_total = max((out - 1) * stride + k - in, 0), pad_before =
 * pad_total / 2 and the odd pixel after; VALID gives out = ceil((in - k + 1) / stride).
 *
 * Kernels: AVX-512, AVX2 + FMA or scalar, by what the CPU has (face__ops_isa; PERSONA_NN_ISA caps
 * it); each path is tested against the same double-precision reference.
 *
 * Threads: ops split their output rows over ctx->pool (NULL: the calling thread) when the work is
 * large enough (face__run). Results do not depend on the thread count (each output element is
 * computed by one thread in a fixed order), except through nn_sgemm's own split. Nothing here
 * allocates except from the arena. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "face/internal.h"

/* ==================================================================================== */
/* shapes                                                                                */
/* ==================================================================================== */

/* Output side and padding before, for one dimension. */
static int out_side(int in, int k, int stride, face_pad_t pad, int *pad_before)
{
    int out;
    if (pad == FACE_PAD_SAME) {
        out = (in + stride - 1) / stride;
        int total = (out - 1) * stride + k - in;
        if (total < 0)
            total = 0;
        *pad_before = total / 2;
    } else {
        out = in >= k ? (in - k) / stride + 1 : 0;
        *pad_before = 0;
    }
    return out;
}

static inline float act1(float v, face_act_t act)
{
    switch (act) {
    case FACE_ACT_RELU:
        return v > 0 ? v : 0;
    case FACE_ACT_RELU6:
        return v > 0 ? (v < 6 ? v : 6) : 0;
    case FACE_ACT_LEAKY: {
        /* as tinyYolov2/leaky.ts: relu(x - 0.1x) + 0.1x, in float32 */
        float m = v * 0.10000000149011612f;
        float d = v - m;
        return (d > 0 ? d : 0) + m;
    }
    default:
        return v;
    }
}

/* Splits a task over the pool only when there is enough work to pay for waking the other
 * threads (a few microseconds idle, far more on a busy machine): work counts multiply-adds or
 * elements touched. The small layers of the 112-pixel face networks run on the calling thread. */
enum { FACE_SPLIT_MIN_WORK = 1 << 18 };

void face__run(face_ctx_t *ctx, nn_task_fn fn, void *job, double work)
{
    if (!ctx->pool || work < FACE_SPLIT_MIN_WORK)
        fn(job, 0, 1);
    else
        nn_pool_run(ctx->pool, fn, job);
}

/* Scalar bias + activation over rows x cols (bias NULL: none). */
static void bias_act_scalar(float *p, size_t rows, size_t cols, const float *bias, face_act_t act)
{
    for (size_t r = 0; r < rows; r++, p += cols)
        for (size_t c = 0; c < cols; c++)
            p[c] = act1(bias ? p[c] + bias[c] : p[c], act);
}

__attribute__((target("avx2,fma"))) static void
bias_act_avx2(float *p, size_t rows, size_t cols, const float *bias, face_act_t act)
{
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    const __m256 tenth = _mm256_set1_ps(0.10000000149011612f);
    for (size_t r = 0; r < rows; r++, p += cols) {
        size_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m256 v = _mm256_loadu_ps(p + c);
            if (bias)
                v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
            switch (act) {
            case FACE_ACT_RELU:
                v = _mm256_max_ps(v, zero);
                break;
            case FACE_ACT_RELU6:
                v = _mm256_min_ps(_mm256_max_ps(v, zero), six);
                break;
            case FACE_ACT_LEAKY: {
                __m256 m = _mm256_mul_ps(v, tenth);
                v = _mm256_add_ps(_mm256_max_ps(_mm256_sub_ps(v, m), zero), m);
                break;
            }
            default:
                break;
            }
            _mm256_storeu_ps(p + c, v);
        }
        for (; c < cols; c++)
            p[c] = act1(bias ? p[c] + bias[c] : p[c], act);
    }
}

/* The instruction set the ops use, chosen once: 0 scalar, 1 AVX2 + FMA, 2 AVX-512F as well.
 * PERSONA_NN_ISA=scalar|avx2 caps it, as for src/nn (the tests run each). */
static int g_isa;
static pthread_once_t g_isa_once = PTHREAD_ONCE_INIT;

static void isa_init(void)
{
    __builtin_cpu_init();
    int isa = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa && __builtin_cpu_supports("avx512f"))
        isa = 2;
    const char *force = getenv("PERSONA_NN_ISA");
    if (force && strcmp(force, "scalar") == 0)
        isa = 0;
    else if (force && strcmp(force, "avx2") == 0 && isa > 1)
        isa = 1;
    g_isa = isa;
}

int face__ops_isa(void)
{
    pthread_once(&g_isa_once, isa_init);
    return g_isa;
}

static int ops_isa(void)
{
    return face__ops_isa();
}

static void bias_act(float *p, size_t rows, size_t cols, const float *bias, face_act_t act)
{
    if (!bias && act == FACE_ACT_NONE)
        return;
    if (ops_isa())
        bias_act_avx2(p, rows, cols, bias, act);
    else
        bias_act_scalar(p, rows, cols, bias, act);
}

static void act_range(float *p, size_t n, face_act_t act)
{
    bias_act(p, 1, n, NULL, act);
}

void face__act_inplace(face_tensor_t *x, face_act_t act)
{
    ops_isa();
    act_range(x->d, (size_t)x->h * x->w * x->c, act);
}

__attribute__((target("avx2"))) static void add_avx2(float *x, const float *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        x[i] += y[i];
}

void face__add_inplace(face_tensor_t *x, const face_tensor_t *y, face_act_t act)
{
    size_t n = (size_t)x->h * x->w * x->c;
    if (ops_isa())
        add_avx2(x->d, y->d, n);
    else
        for (size_t i = 0; i < n; i++)
            x->d[i] += y->d[i];
    act_range(x->d, n, act);
}

/* ==================================================================================== */
/* convolution                                                                           */
/* ==================================================================================== */

typedef struct im2col_job {
    const face_tensor_t *x;
    int k, stride, pad_t, pad_l, oh, ow;
    float *col; /* [OH*OW][K*K*I] */
} im2col_job_t;

static void im2col_task(void *vctx, int ti, int nt)
{
    const im2col_job_t *j = vctx;
    const face_tensor_t *x = j->x;
    int I = x->c, K = j->k;
    size_t row = (size_t)K * K * I;
    int r0 = (int)((long)j->oh * ti / nt), r1 = (int)((long)j->oh * (ti + 1) / nt);
    for (int oy = r0; oy < r1; oy++) {
        for (int ox = 0; ox < j->ow; ox++) {
            float *dst = j->col + ((size_t)oy * j->ow + ox) * row;
            for (int ky = 0; ky < K; ky++) {
                int iy = oy * j->stride + ky - j->pad_t;
                for (int kx = 0; kx < K; kx++) {
                    int ix = ox * j->stride + kx - j->pad_l;
                    float *d = dst + ((size_t)ky * K + kx) * I;
                    if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w)
                        memset(d, 0, (size_t)I * sizeof(float));
                    else
                        memcpy(d, x->d + ((size_t)iy * x->w + ix) * I, (size_t)I * sizeof(float));
                }
            }
        }
    }
}

typedef struct act_job {
    float *p;
    size_t rows, cols;
    const float *bias;
    face_act_t act;
} act_job_t;

static void act_task(void *vctx, int ti, int nt)
{
    const act_job_t *j = vctx;
    size_t r0 = j->rows * ti / nt, r1 = j->rows * (ti + 1) / nt;
    bias_act(j->p + r0 * j->cols, r1 - r0, j->cols, j->bias, j->act);
}

/* y = the GEMM's result + bias, then act, over the pool. */
static void finish(face_ctx_t *ctx, float *p, size_t rows, size_t cols, const float *bias,
                   face_act_t act)
{
    ops_isa();
    act_job_t j = {p, rows, cols, bias, act};
    face__run(ctx, act_task, &j, (double)rows * cols);
}

/* Direct convolution for layers with a short inner dimension (K*K*I small, e.g. a network's
 * first layer on RGB): im2col + GEMM spends most of its time packing there. Each output pixel
 * keeps its outputs in registers, NA vectors of 8 at a time, over the valid taps. */
typedef struct direct_job {
    const face_tensor_t *x;
    const face_conv_t *l;
    int pad_t, pad_l;
    face_act_t act;
    face_tensor_t *y;
    int isa; /* ops_isa() */
} direct_job_t;

__attribute__((target("avx2,fma"))) static inline __m256 act_vec(__m256 v, face_act_t act)
{
    const __m256 zero = _mm256_setzero_ps();
    switch (act) {
    case FACE_ACT_RELU:
        return _mm256_max_ps(v, zero);
    case FACE_ACT_RELU6:
        return _mm256_min_ps(_mm256_max_ps(v, zero), _mm256_set1_ps(6.0f));
    case FACE_ACT_LEAKY: {
        __m256 m = _mm256_mul_ps(v, _mm256_set1_ps(0.10000000149011612f));
        return _mm256_add_ps(_mm256_max_ps(_mm256_sub_ps(v, m), zero), m);
    }
    default:
        return v;
    }
}

/* NP output pixels (NP > 1: adjacent ones, all with the same valid taps, input pixel step
 * `step` floats) x NA vectors of 8 output channels. */
#define DIRECT_KERNEL(NP, NA)                                                                     \
    __attribute__((target("avx2,fma"))) static void direct_##NP##_##NA(                          \
        const float *x, int xw, size_t step, int I, int O, const float *w, int K, int ky0,        \
        int ky1, int kx0, int kx1, const float *bias, face_act_t act, float *out)                 \
    {                                                                                             \
        __m256 acc[NP][NA];                                                                       \
        _Pragma("GCC unroll 8") for (int p = 0; p < NP; p++)                                      \
            _Pragma("GCC unroll 8") for (int a = 0; a < NA; a++)                                  \
                acc[p][a] = _mm256_loadu_ps(bias + 8 * a);                                        \
        for (int ky = ky0; ky < ky1; ky++)                                                        \
            for (int kx = kx0; kx < kx1; kx++) {                                                  \
                const float *px = x + ((ptrdiff_t)ky * xw + kx) * I;                              \
                const float *wk = w + ((size_t)ky * K + kx) * I * O;                              \
                for (int i = 0; i < I; i++, wk += O) {                                            \
                    __m256 wv[NA];                                                                \
                    _Pragma("GCC unroll 8") for (int a = 0; a < NA; a++)                          \
                        wv[a] = _mm256_loadu_ps(wk + 8 * a);                                      \
                    _Pragma("GCC unroll 8") for (int p = 0; p < NP; p++)                          \
                    {                                                                             \
                        __m256 v = _mm256_broadcast_ss(px + p * step + i);                        \
                        _Pragma("GCC unroll 8") for (int a = 0; a < NA; a++)                      \
                            acc[p][a] = _mm256_fmadd_ps(v, wv[a], acc[p][a]);                     \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
        _Pragma("GCC unroll 8") for (int p = 0; p < NP; p++)                                      \
            _Pragma("GCC unroll 8") for (int a = 0; a < NA; a++)                                  \
                _mm256_storeu_ps(out + (size_t)p * O + 8 * a, act_vec(acc[p][a], act));           \
    }
DIRECT_KERNEL(1, 1)
DIRECT_KERNEL(1, 2)
DIRECT_KERNEL(1, 4)
DIRECT_KERNEL(4, 1)
DIRECT_KERNEL(4, 2)
DIRECT_KERNEL(2, 4)

/* The same with AVX-512: NA vectors of 16 output channels. */
__attribute__((target("avx512f"))) static inline __m512 act_vec512(__m512 v, face_act_t act)
{
    const __m512 zero = _mm512_setzero_ps();
    switch (act) {
    case FACE_ACT_RELU:
        return _mm512_max_ps(v, zero);
    case FACE_ACT_RELU6:
        return _mm512_min_ps(_mm512_max_ps(v, zero), _mm512_set1_ps(6.0f));
    case FACE_ACT_LEAKY: {
        __m512 m = _mm512_mul_ps(v, _mm512_set1_ps(0.10000000149011612f));
        return _mm512_add_ps(_mm512_max_ps(_mm512_sub_ps(v, m), zero), m);
    }
    default:
        return v;
    }
}

#define DIRECT_KERNEL512(NP, NA)                                                                  \
    __attribute__((target("avx512f"))) static void direct512_##NP##_##NA(                        \
        const float *x, int xw, size_t step, int I, int O, const float *w, int K, int ky0,        \
        int ky1, int kx0, int kx1, const float *bias, face_act_t act, float *out)                 \
    {                                                                                             \
        __m512 acc[NP][NA];                                                                       \
        _Pragma("GCC unroll 8") for (int p = 0; p < NP; p++)                                      \
            _Pragma("GCC unroll 8") for (int a = 0; a < NA; a++)                                  \
                acc[p][a] = _mm512_loadu_ps(bias + 16 * a);                                       \
        for (int ky = ky0; ky < ky1; ky++)                                                        \
            for (int kx = kx0; kx < kx1; kx++) {                                                  \
                const float *px = x + ((ptrdiff_t)ky * xw + kx) * I;                              \
                const float *wk = w + ((size_t)ky * K + kx) * I * O;                              \
                for (int i = 0; i < I; i++, wk += O) {                                            \
                    __m512 wv[NA];                                                                \
                    _Pragma("GCC unroll 8") for (int a = 0; a < NA; a++)                          \
                        wv[a] = _mm512_loadu_ps(wk + 16 * a);                                     \
                    _Pragma("GCC unroll 8") for (int p = 0; p < NP; p++)                          \
                    {                                                                             \
                        __m512 v = _mm512_set1_ps(px[p * step + i]);                              \
                        _Pragma("GCC unroll 8") for (int a = 0; a < NA; a++)                      \
                            acc[p][a] = _mm512_fmadd_ps(v, wv[a], acc[p][a]);                     \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
        _Pragma("GCC unroll 8") for (int p = 0; p < NP; p++)                                      \
            _Pragma("GCC unroll 8") for (int a = 0; a < NA; a++)                                  \
                _mm512_storeu_ps(out + (size_t)p * O + 16 * a, act_vec512(acc[p][a], act));       \
    }
DIRECT_KERNEL512(1, 1)
DIRECT_KERNEL512(1, 2)
DIRECT_KERNEL512(4, 1)
DIRECT_KERNEL512(4, 2)
DIRECT_KERNEL512(8, 1)

typedef void (*direct_fn)(const float *, int, size_t, int, int, const float *, int, int, int, int,
                          int, const float *, face_act_t, float *);

/* Output row oy of the direct convolution into out (y->w x O floats). */
static void direct_row(const direct_job_t *j, int oy, float *out_row)
{
    const face_tensor_t *x = j->x;
    const face_conv_t *l = j->l;
    int K = l->k, S = l->stride, I = l->cin, O = l->cout, ow = j->y->w;
    size_t step = (size_t)S * I;
    int iy0 = oy * S - j->pad_t;
    int ky0 = iy0 < 0 ? -iy0 : 0, ky1 = x->h - iy0 < K ? x->h - iy0 : K;
    for (int ox = 0; ox < ow;) {
        int ix0 = ox * S - j->pad_l;
        int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = x->w - ix0 < K ? x->w - ix0 : K;
        const float *src = x->d + ((ptrdiff_t)iy0 * x->w + ix0) * I;
        float *out = out_row + (size_t)ox * O;
        /* a run of 8 (or 4) pixels whose taps are all inside the row, or this pixel alone */
        int np = 1;
        for (int run = 8; run >= 4 && np == 1; run -= 4)
            if (kx0 == 0 && kx1 == K && ox + run - 1 < ow &&
                (ox + run - 1) * S - j->pad_l + K <= x->w)
                np = run;
        for (int o = 0; o < O;) {
            int left = O - o;
            direct_fn f;
            int nb, npx;
            if (j->isa >= 2 && left >= 16) {
                /* AVX-512: 32 channels x 4 pixels, or 16 x 8 (8 accumulators hide the latency) */
                if (left >= 32) {
                    f = np > 1 ? direct512_4_2 : direct512_1_2;
                    nb = 32;
                    npx = np > 1 ? 4 : 1;
                } else {
                    f = np == 8 ? direct512_8_1 : np == 4 ? direct512_4_1 : direct512_1_1;
                    nb = 16;
                    npx = np;
                }
            } else if (left >= 32) {
                f = np > 1 ? direct_2_4 : direct_1_4;
                nb = 32;
                npx = np > 1 ? 2 : 1;
            } else if (left >= 16) {
                f = np > 1 ? direct_4_2 : direct_1_2;
                nb = 16;
                npx = np > 1 ? 4 : 1;
            } else {
                f = np > 1 ? direct_4_1 : direct_1_1;
                nb = 8;
                npx = np > 1 ? 4 : 1;
            }
            for (int q = 0; q < np; q += npx)
                f(src + q * step, x->w, step, I, O, l->w + o, K, ky0, ky1, kx0, kx1, l->bias + o,
                  j->act, out + (size_t)q * O + o);
            o += nb;
        }
        ox += np;
    }
}

static void direct_task(void *vctx, int ti, int nt)
{
    const direct_job_t *j = vctx;
    face_tensor_t *y = j->y;
    int r0 = (int)((long)y->h * ti / nt), r1 = (int)((long)y->h * (ti + 1) / nt);
    for (int oy = r0; oy < r1; oy++)
        direct_row(j, oy, y->d + (size_t)oy * y->w * y->c);
}

/* Where the direct kernel beats im2col + GEMM (measured on the detectors' layers): a short inner
 * dimension, output channels in whole vectors. */
static bool direct_ok(const face_conv_t *l)
{
    if (!ops_isa() || l->cout % 8 != 0)
        return false;
    return l->k > 1 ? l->k * l->k * l->cin <= 160 : l->cin <= 64;
}

/* The direct convolution followed by a max pool, a band of conv rows at a time, so that the
 * convolution's output (the largest activation of a detector) never leaves the cache. */
typedef struct conv_pool_job {
    direct_job_t conv;
    face_tensor_t conv_shape; /* h, w, c of the convolution's output (d unused) */
    int pk, ps, ppad_t, ppad_l;
    float *band; /* per thread: pk rows of the convolution's output */
    face_tensor_t *y;
} conv_pool_job_t;

__attribute__((target("avx2"))) static void conv_pool_task(void *vctx, int ti, int nt)
{
    const conv_pool_job_t *j = vctx;
    const face_tensor_t *cs = &j->conv_shape;
    face_tensor_t *y = j->y;
    int O = cs->c, cw = cs->w;
    size_t row = (size_t)cw * O;
    float *band = j->band + (size_t)ti * j->pk * row;
    int r0 = (int)((long)y->h * ti / nt), r1 = (int)((long)y->h * (ti + 1) / nt);
    for (int py = r0; py < r1; py++) {
        int cy0 = py * j->ps - j->ppad_t;
        int ya = cy0 < 0 ? 0 : cy0, yb = cy0 + j->pk > cs->h ? cs->h : cy0 + j->pk;
        for (int cy = ya; cy < yb; cy++)
            direct_row(&j->conv, cy, band + (size_t)(cy - ya) * row);
        for (int px = 0; px < y->w; px++) {
            int cx0 = px * j->ps - j->ppad_l;
            int xa = cx0 < 0 ? 0 : cx0, xb = cx0 + j->pk > cw ? cw : cx0 + j->pk;
            float *out = y->d + ((size_t)py * y->w + px) * O;
            for (int c = 0; c < O; c += 8) {
                __m256 m = _mm256_set1_ps(-FLT_MAX);
                for (int r = 0; r < yb - ya; r++)
                    for (int cx = xa; cx < xb; cx++)
                        m = _mm256_max_ps(m, _mm256_loadu_ps(band + r * row + (size_t)cx * O + c));
                _mm256_storeu_ps(out + c, m);
            }
        }
    }
}

int face__conv(face_ctx_t *ctx, const face_tensor_t *x, const face_conv_t *l, face_act_t act,
               face_tensor_t *y)
{
    if (x->c != l->cin || l->k <= 0 || l->stride <= 0)
        return -EINVAL;
    int pt, pl;
    int oh = out_side(x->h, l->k, l->stride, l->pad, &pt);
    int ow = out_side(x->w, l->k, l->stride, l->pad, &pl);
    int rc = face__tensor(&ctx->arena, oh, ow, l->cout, y);
    if (rc < 0)
        return rc;
    size_t rows = (size_t)oh * ow;
    if (direct_ok(l)) {
        direct_job_t j = {x, l, pt, pl, act, y, ops_isa()};
        face__run(ctx, direct_task, &j, (double)rows * l->cout * l->k * l->k * l->cin);
        return 0;
    }
    const float *a = x->d;
    int kk = l->k * l->k * l->cin;
    size_t mark = face__arena_mark(&ctx->arena);
    if (!(l->k == 1 && l->stride == 1)) {
        float *col = face__arena_alloc(&ctx->arena, rows * (size_t)kk);
        if (!col)
            return -ENOMEM;
        im2col_job_t j = {x, l->k, l->stride, pt, pl, oh, ow, col};
        face__run(ctx, im2col_task, &j, (double)rows * kk);
        a = col;
    }
    nn_sgemm(ctx->pool, false, false, (int)rows, l->cout, kk, 1.0f, a, kk, l->w, l->cout, 0.0f,
             y->d, l->cout);
    /* the im2col buffer sits above y in the arena, so it can be given back */
    face__arena_reset(&ctx->arena, mark);
    finish(ctx, y->d, rows, (size_t)l->cout, l->bias, act);
    return 0;
}

/* ==================================================================================== */
/* depthwise convolution                                                                 */
/* ==================================================================================== */

__attribute__((target("avx512f"))) static void
dw_pixel_avx512(const float *src, size_t row_stride, int C, const float *w, int K, int ky0,
                int ky1, int kx0, int kx1, const float *bias, float *out)
{
    int c = 0;
    for (; c + 64 <= C; c += 64) {
        __m512 a0, a1, a2, a3;
        if (bias) {
            a0 = _mm512_loadu_ps(bias + c);
            a1 = _mm512_loadu_ps(bias + c + 16);
            a2 = _mm512_loadu_ps(bias + c + 32);
            a3 = _mm512_loadu_ps(bias + c + 48);
        } else {
            a0 = a1 = a2 = a3 = _mm512_setzero_ps();
        }
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = kx0; kx < kx1; kx++) {
                const float *s =
                    src + (ptrdiff_t)ky * (ptrdiff_t)row_stride + (ptrdiff_t)kx * C + c;
                const float *wk = w + ((size_t)ky * K + kx) * C + c;
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(s), _mm512_loadu_ps(wk), a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(s + 16), _mm512_loadu_ps(wk + 16), a1);
                a2 = _mm512_fmadd_ps(_mm512_loadu_ps(s + 32), _mm512_loadu_ps(wk + 32), a2);
                a3 = _mm512_fmadd_ps(_mm512_loadu_ps(s + 48), _mm512_loadu_ps(wk + 48), a3);
            }
        _mm512_storeu_ps(out + c, a0);
        _mm512_storeu_ps(out + c + 16, a1);
        _mm512_storeu_ps(out + c + 32, a2);
        _mm512_storeu_ps(out + c + 48, a3);
    }
    for (; c + 16 <= C; c += 16) {
        __m512 a0 = bias ? _mm512_loadu_ps(bias + c) : _mm512_setzero_ps();
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = kx0; kx < kx1; kx++) {
                const float *s =
                    src + (ptrdiff_t)ky * (ptrdiff_t)row_stride + (ptrdiff_t)kx * C + c;
                const float *wk = w + ((size_t)ky * K + kx) * C + c;
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(s), _mm512_loadu_ps(wk), a0);
            }
        _mm512_storeu_ps(out + c, a0);
    }
}

/* Four adjacent output pixels whose taps are all inside the picture (pixel step `step` floats in
 * the input), 32 channels at a time (C a multiple of 16; a 16-channel tail): the weights are
 * loaded once for the four, which the single-pixel kernel is bound by. */
__attribute__((target("avx512f"))) static void
dw_quad_avx512(const float *src, size_t row_stride, size_t step, int C, const float *w, int K,
               const float *bias, float *out)
{
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        __m512 a[4][2];
        __m512 b0 = bias ? _mm512_loadu_ps(bias + c) : _mm512_setzero_ps();
        __m512 b1 = bias ? _mm512_loadu_ps(bias + c + 16) : _mm512_setzero_ps();
        for (int p = 0; p < 4; p++) {
            a[p][0] = b0;
            a[p][1] = b1;
        }
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float *s = src + (size_t)ky * row_stride + (size_t)kx * C + c;
                const float *wk = w + ((size_t)ky * K + kx) * C + c;
                __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16);
                _Pragma("GCC unroll 4") for (int p = 0; p < 4; p++)
                {
                    a[p][0] = _mm512_fmadd_ps(_mm512_loadu_ps(s + p * step), w0, a[p][0]);
                    a[p][1] = _mm512_fmadd_ps(_mm512_loadu_ps(s + p * step + 16), w1, a[p][1]);
                }
            }
        _Pragma("GCC unroll 4") for (int p = 0; p < 4; p++)
        {
            _mm512_storeu_ps(out + (size_t)p * C + c, a[p][0]);
            _mm512_storeu_ps(out + (size_t)p * C + c + 16, a[p][1]);
        }
    }
    for (; c < C; c += 16) {
        __m512 a[4];
        __m512 b0 = bias ? _mm512_loadu_ps(bias + c) : _mm512_setzero_ps();
        for (int p = 0; p < 4; p++)
            a[p] = b0;
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float *s = src + (size_t)ky * row_stride + (size_t)kx * C + c;
                __m512 w0 = _mm512_loadu_ps(w + ((size_t)ky * K + kx) * C + c);
                _Pragma("GCC unroll 4") for (int p = 0; p < 4; p++)
                    a[p] = _mm512_fmadd_ps(_mm512_loadu_ps(s + p * step), w0, a[p]);
            }
        _Pragma("GCC unroll 4") for (int p = 0; p < 4; p++)
            _mm512_storeu_ps(out + (size_t)p * C + c, a[p]);
    }
}

typedef struct dw_job {
    const face_tensor_t *x;
    const face_dwconv_t *l;
    face_act_t act;
    int pad_t, pad_l;
    face_tensor_t *y;
} dw_job_t;

/* One output pixel: out[c] = bias[c] + sum over valid taps of x[tap][c] * w[tap][c]. The taps are
 * the (ky, kx) in [ky0, ky1) x [kx0, kx1); src points at x's pixel for tap (0, 0) (may be outside
 * the image; only valid taps are read). */
static void dw_pixel_scalar(const float *src, size_t row_stride, int C, const float *w, int K,
                            int ky0, int ky1, int kx0, int kx1, const float *bias, float *out)
{
    for (int c = 0; c < C; c++)
        out[c] = bias ? bias[c] : 0.0f;
    for (int ky = ky0; ky < ky1; ky++)
        for (int kx = kx0; kx < kx1; kx++) {
            const float *s = src + (ptrdiff_t)ky * (ptrdiff_t)row_stride + (ptrdiff_t)kx * C;
            const float *wk = w + ((size_t)ky * K + kx) * C;
            for (int c = 0; c < C; c++)
                out[c] += s[c] * wk[c];
        }
}

__attribute__((target("avx2,fma"))) static void
dw_pixel_avx2(const float *src, size_t row_stride, int C, const float *w, int K, int ky0, int ky1,
              int kx0, int kx1, const float *bias, float *out)
{
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        __m256 a0, a1, a2, a3;
        if (bias) {
            a0 = _mm256_loadu_ps(bias + c);
            a1 = _mm256_loadu_ps(bias + c + 8);
            a2 = _mm256_loadu_ps(bias + c + 16);
            a3 = _mm256_loadu_ps(bias + c + 24);
        } else {
            a0 = a1 = a2 = a3 = _mm256_setzero_ps();
        }
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = kx0; kx < kx1; kx++) {
                const float *s =
                    src + (ptrdiff_t)ky * (ptrdiff_t)row_stride + (ptrdiff_t)kx * C + c;
                const float *wk = w + ((size_t)ky * K + kx) * C + c;
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(s), _mm256_loadu_ps(wk), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(s + 8), _mm256_loadu_ps(wk + 8), a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(s + 16), _mm256_loadu_ps(wk + 16), a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(s + 24), _mm256_loadu_ps(wk + 24), a3);
            }
        _mm256_storeu_ps(out + c, a0);
        _mm256_storeu_ps(out + c + 8, a1);
        _mm256_storeu_ps(out + c + 16, a2);
        _mm256_storeu_ps(out + c + 24, a3);
    }
    for (; c + 8 <= C; c += 8) {
        __m256 a0 = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = kx0; kx < kx1; kx++) {
                const float *s =
                    src + (ptrdiff_t)ky * (ptrdiff_t)row_stride + (ptrdiff_t)kx * C + c;
                const float *wk = w + ((size_t)ky * K + kx) * C + c;
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(s), _mm256_loadu_ps(wk), a0);
            }
        _mm256_storeu_ps(out + c, a0);
    }
}

/* Output row oy of the depthwise convolution into orow (y->w x C floats); y->d is not used, so
 * the row may go anywhere. */
static void dw_row(const dw_job_t *j, int oy, float *orow)
{
    const face_tensor_t *x = j->x;
    const face_dwconv_t *l = j->l;
    int C = l->c, K = l->k, S = l->stride, ow = j->y->w;
    size_t rs = (size_t)x->w * C;
    int isa = ops_isa();
    int iy0 = oy * S - j->pad_t;
    int ky0 = iy0 < 0 ? -iy0 : 0;
    int ky1 = x->h - iy0 < K ? x->h - iy0 : K;
    for (int ox = 0; ox < ow; ox++) {
        int ix0 = ox * S - j->pad_l;
        int kx0 = ix0 < 0 ? -ix0 : 0;
        int kx1 = x->w - ix0 < K ? x->w - ix0 : K;
        const float *src = x->d + (ptrdiff_t)iy0 * (ptrdiff_t)rs + (ptrdiff_t)ix0 * C;
        float *out = orow + (size_t)ox * C;
        if (isa >= 2 && C % 16 == 0 && ky0 == 0 && ky1 == K && kx0 == 0 && ox + 3 < ow &&
            (ox + 3) * S - j->pad_l + K <= x->w) {
            dw_quad_avx512(src, rs, (size_t)S * C, C, l->w, K, l->bias, out);
            ox += 3;
        } else if (isa >= 2 && C % 16 == 0)
            dw_pixel_avx512(src, rs, C, l->w, K, ky0, ky1, kx0, kx1, l->bias, out);
        else if (isa >= 1 && C % 8 == 0)
            dw_pixel_avx2(src, rs, C, l->w, K, ky0, ky1, kx0, kx1, l->bias, out);
        else
            dw_pixel_scalar(src, rs, C, l->w, K, ky0, ky1, kx0, kx1, l->bias, out);
    }
    act_range(orow, (size_t)ow * C, j->act);
}

static void dw_task(void *vctx, int ti, int nt)
{
    const dw_job_t *j = vctx;
    face_tensor_t *y = j->y;
    int r0 = (int)((long)y->h * ti / nt), r1 = (int)((long)y->h * (ti + 1) / nt);
    for (int oy = r0; oy < r1; oy++)
        dw_row(j, oy, y->d + (size_t)oy * y->w * y->c);
}

int face__dwconv(face_ctx_t *ctx, const face_tensor_t *x, const face_dwconv_t *l, face_act_t act,
                 face_tensor_t *y)
{
    if (x->c != l->c || l->k <= 0 || l->stride <= 0)
        return -EINVAL;
    int pt, pl;
    int oh = out_side(x->h, l->k, l->stride, l->pad, &pt);
    int ow = out_side(x->w, l->k, l->stride, l->pad, &pl);
    int rc = face__tensor(&ctx->arena, oh, ow, l->c, y);
    if (rc < 0)
        return rc;
    ops_isa();
    dw_job_t j = {x, l, act, pt, pl, y};
    face__run(ctx, dw_task, &j, (double)oh * ow * l->c * l->k * l->k);
    return 0;
}

/* Depthwise then pointwise, row by row: each depthwise row goes straight into its pointwise row
 * (the direct kernel), so the depthwise output never exists as a whole. */
typedef struct dwpw_job {
    dw_job_t dw;
    direct_job_t pw;
    float *scratch; /* per thread: one depthwise row */
} dwpw_job_t;

static void dwpw_task(void *vctx, int ti, int nt)
{
    const dwpw_job_t *j = vctx;
    face_tensor_t *y = j->pw.y;
    int C = j->dw.l->c;
    float *dwbuf = j->scratch + (size_t)ti * y->w * C;
    face_tensor_t src = {1, y->w, C, dwbuf};
    direct_job_t pw = j->pw;
    pw.x = &src;
    int r0 = (int)((long)y->h * ti / nt), r1 = (int)((long)y->h * (ti + 1) / nt);
    for (int oy = r0; oy < r1; oy++) {
        dw_row(&j->dw, oy, dwbuf);
        direct_row(&pw, 0, y->d + (size_t)oy * y->w * y->c);
    }
}

int face__dw_pw(face_ctx_t *ctx, const face_tensor_t *x, const face_dwconv_t *dw,
                face_act_t dw_act, const face_conv_t *pw, face_act_t act, face_tensor_t *y)
{
    /* y is allocated before the depthwise result so that the temporary can be given back */
    if (x->c != dw->c || pw->cin != dw->c || pw->k != 1 || pw->stride != 1)
        return -EINVAL;
    int pt, pl;
    int oh = out_side(x->h, dw->k, dw->stride, dw->pad, &pt);
    int ow = out_side(x->w, dw->k, dw->stride, dw->pad, &pl);
    int rc = face__tensor(&ctx->arena, oh, ow, pw->cout, y);
    if (rc < 0)
        return rc;
    size_t mark = face__arena_mark(&ctx->arena);
    size_t rows = (size_t)oh * ow;
    int O = pw->cout;
    if (direct_ok(pw)) {
        float *scratch =
            face__arena_alloc(&ctx->arena, (size_t)nn_pool_threads(ctx->pool) * ow * dw->c);
        if (!scratch)
            return -ENOMEM;
        face_tensor_t dws = {oh, ow, dw->c, NULL};
        dwpw_job_t j = {{x, dw, dw_act, pt, pl, &dws}, {NULL, pw, 0, 0, act, y, ops_isa()},
                        scratch};
        face__run(ctx, dwpw_task, &j, (double)rows * dw->c * (dw->k * dw->k + O));
        face__arena_reset(&ctx->arena, mark);
        return 0;
    }
    face_tensor_t t;
    rc = face__dwconv(ctx, x, dw, dw_act, &t);
    if (rc < 0)
        return rc;
    nn_sgemm(ctx->pool, false, false, (int)rows, O, pw->cin, 1.0f, t.d, pw->cin, pw->w, O, 0.0f,
             y->d, O);
    face__arena_reset(&ctx->arena, mark);
    finish(ctx, y->d, rows, (size_t)O, pw->bias, act);
    return 0;
}

int face__sepconv(face_ctx_t *ctx, const face_tensor_t *x, const face_sepconv_t *l,
                  face_act_t act, face_tensor_t *y)
{
    return face__dw_pw(ctx, x, &l->dw, FACE_ACT_NONE, &l->pw, act, y);
}

/* ==================================================================================== */
/* padding and pooling                                                                   */
/* ==================================================================================== */

int face__pad(face_ctx_t *ctx, const face_tensor_t *x, int top, int bottom, int left, int right,
              face_tensor_t *y)
{
    if (top < 0 || bottom < 0 || left < 0 || right < 0)
        return -EINVAL;
    int rc = face__tensor(&ctx->arena, x->h + top + bottom, x->w + left + right, x->c, y);
    if (rc < 0)
        return rc;
    size_t C = (size_t)x->c;
    memset(y->d, 0, (size_t)y->h * y->w * C * sizeof(float));
    for (int r = 0; r < x->h; r++)
        memcpy(y->d + ((size_t)(r + top) * y->w + left) * C, x->d + (size_t)r * x->w * C,
               (size_t)x->w * C * sizeof(float));
    return 0;
}

typedef struct pool_job {
    const face_tensor_t *x;
    int k, stride, pad_t, pad_l;
    bool max;
    face_tensor_t *y;
} pool_job_t;

/* One output pixel over the window rows [ya, yb) x columns [xa, xb): max, or sum scaled by
 * 1/count. AVX2 for C a multiple of 8. */
__attribute__((target("avx2"))) static void pool_px_avx2(const face_tensor_t *x, int ya, int yb,
                                                          int xa, int xb, bool max, float *out)
{
    int C = x->c;
    float inv = 1.0f / (float)((yb - ya) * (xb - xa));
    for (int c = 0; c < C; c += 8) {
        __m256 acc = max ? _mm256_set1_ps(-FLT_MAX) : _mm256_setzero_ps();
        for (int iy = ya; iy < yb; iy++)
            for (int ix = xa; ix < xb; ix++) {
                __m256 v = _mm256_loadu_ps(x->d + ((size_t)iy * x->w + ix) * C + c);
                acc = max ? _mm256_max_ps(acc, v) : _mm256_add_ps(acc, v);
            }
        if (!max)
            acc = _mm256_mul_ps(acc, _mm256_set1_ps(inv));
        _mm256_storeu_ps(out + c, acc);
    }
}

static void pool_px_scalar(const face_tensor_t *x, int ya, int yb, int xa, int xb, bool max,
                           float *out)
{
    int C = x->c;
    for (int c = 0; c < C; c++)
        out[c] = max ? -FLT_MAX : 0.0f;
    for (int iy = ya; iy < yb; iy++)
        for (int ix = xa; ix < xb; ix++) {
            const float *s = x->d + ((size_t)iy * x->w + ix) * C;
            if (max)
                for (int c = 0; c < C; c++)
                    out[c] = s[c] > out[c] ? s[c] : out[c];
            else
                for (int c = 0; c < C; c++)
                    out[c] += s[c];
        }
    if (!max) {
        /* tfjs divides by the number of inputs inside the image, not k*k */
        float inv = 1.0f / (float)((yb - ya) * (xb - xa));
        for (int c = 0; c < C; c++)
            out[c] *= inv;
    }
}

static void pool_task(void *vctx, int ti, int nt)
{
    const pool_job_t *j = vctx;
    const face_tensor_t *x = j->x;
    face_tensor_t *y = j->y;
    int C = x->c;
    bool vec = ops_isa() && C % 8 == 0;
    int r0 = (int)((long)y->h * ti / nt), r1 = (int)((long)y->h * (ti + 1) / nt);
    for (int oy = r0; oy < r1; oy++) {
        int iy0 = oy * j->stride - j->pad_t;
        int ya = iy0 < 0 ? 0 : iy0, yb = iy0 + j->k > x->h ? x->h : iy0 + j->k;
        for (int ox = 0; ox < y->w; ox++) {
            int ix0 = ox * j->stride - j->pad_l;
            int xa = ix0 < 0 ? 0 : ix0, xb = ix0 + j->k > x->w ? x->w : ix0 + j->k;
            float *out = y->d + ((size_t)oy * y->w + ox) * C;
            if (vec)
                pool_px_avx2(x, ya, yb, xa, xb, j->max, out);
            else
                pool_px_scalar(x, ya, yb, xa, xb, j->max, out);
        }
    }
}

static int pool(face_ctx_t *ctx, const face_tensor_t *x, int k, int stride, face_pad_t pad,
                bool max, face_tensor_t *y)
{
    if (k <= 0 || stride <= 0)
        return -EINVAL;
    int pt, pl;
    int oh = out_side(x->h, k, stride, pad, &pt);
    int ow = out_side(x->w, k, stride, pad, &pl);
    int rc = face__tensor(&ctx->arena, oh, ow, x->c, y);
    if (rc < 0)
        return rc;
    ops_isa();
    pool_job_t j = {x, k, stride, pt, pl, max, y};
    face__run(ctx, pool_task, &j, (double)oh * ow * x->c * k * k);
    return 0;
}

int face__maxpool(face_ctx_t *ctx, const face_tensor_t *x, int k, int stride, face_pad_t pad,
                  face_tensor_t *y)
{
    return pool(ctx, x, k, stride, pad, true, y);
}

int face__avgpool(face_ctx_t *ctx, const face_tensor_t *x, int k, int stride, face_pad_t pad,
                  face_tensor_t *y)
{
    return pool(ctx, x, k, stride, pad, false, y);
}

/* The convolution then the max pool (tiny detector: conv0 and its pool), fused when the
 * direct convolution applies. */
int face__conv_maxpool(face_ctx_t *ctx, const face_tensor_t *x, const face_conv_t *l,
                       face_act_t act, int pk, int ps, face_pad_t ppad, face_tensor_t *y)
{
    if (x->c != l->cin || l->k <= 0 || l->stride <= 0 || pk <= 0 || ps <= 0)
        return -EINVAL;
    int pt, pl, qt, ql;
    int oh = out_side(x->h, l->k, l->stride, l->pad, &pt);
    int ow = out_side(x->w, l->k, l->stride, l->pad, &pl);
    int ph = out_side(oh, pk, ps, ppad, &qt), pw = out_side(ow, pk, ps, ppad, &ql);
    int rc = face__tensor(&ctx->arena, ph, pw, l->cout, y);
    if (rc)
        return rc;
    size_t mark = face__arena_mark(&ctx->arena);
    if (direct_ok(l)) {
        int nt = nn_pool_threads(ctx->pool);
        float *band = face__arena_alloc(&ctx->arena, (size_t)nt * pk * ow * l->cout);
        if (!band)
            return -ENOMEM;
        face_tensor_t conv_out = {oh, ow, l->cout, NULL};
        conv_pool_job_t j = {{x, l, pt, pl, act, &conv_out, ops_isa()}, conv_out, pk, ps, qt, ql,
                             band, y};
        face__run(ctx, conv_pool_task, &j, (double)oh * ow * l->cout * l->k * l->k * l->cin);
    } else {
        face_tensor_t t;
        rc = face__conv(ctx, x, l, act, &t);
        if (rc)
            return rc;
        pool_job_t j = {&t, pk, ps, qt, ql, true, y};
        face__run(ctx, pool_task, &j, (double)ph * pw * l->cout * pk * pk);
    }
    face__arena_reset(&ctx->arena, mark);
    return 0;
}

/* A separable convolution and the max pool after it (the tiny detector's blocks), a band of rows
 * at a time when its pointwise half is a direct one: per pooled row, the depthwise rows it needs,
 * their pointwise rows, then the max. Neither intermediate leaves the cache. */
typedef struct sep_pool_job {
    dw_job_t dw;
    direct_job_t pw;
    face_tensor_t dw_shape, pw_shape; /* the intermediate shapes (d unused) */
    int pk, ps, ppad_t, ppad_l;
    float *scratch; /* per thread: one depthwise row, then pk pointwise rows */
    face_tensor_t *y;
} sep_pool_job_t;

__attribute__((target("avx2"))) static void sep_pool_task(void *vctx, int ti, int nt)
{
    const sep_pool_job_t *j = vctx;
    int C = j->dw_shape.c, O = j->pw_shape.c, w = j->pw_shape.w;
    size_t drow = (size_t)w * C, prow = (size_t)w * O;
    float *dwbuf = j->scratch + (size_t)ti * (drow + (size_t)j->pk * prow);
    float *band = dwbuf + drow;
    /* the pointwise job reads its input from dwbuf as a one-row picture */
    face_tensor_t src = {1, w, C, dwbuf};
    direct_job_t pw = j->pw;
    pw.x = &src;
    face_tensor_t *y = j->y;
    int r0 = (int)((long)y->h * ti / nt), r1 = (int)((long)y->h * (ti + 1) / nt);
    for (int py = r0; py < r1; py++) {
        int cy0 = py * j->ps - j->ppad_t;
        int ya = cy0 < 0 ? 0 : cy0, yb = cy0 + j->pk > j->pw_shape.h ? j->pw_shape.h : cy0 + j->pk;
        for (int cy = ya; cy < yb; cy++) {
            dw_row(&j->dw, cy, dwbuf);
            direct_row(&pw, 0, band + (size_t)(cy - ya) * prow);
        }
        for (int px = 0; px < y->w; px++) {
            int cx0 = px * j->ps - j->ppad_l;
            int xa = cx0 < 0 ? 0 : cx0, xb = cx0 + j->pk > w ? w : cx0 + j->pk;
            float *out = y->d + ((size_t)py * y->w + px) * O;
            for (int c = 0; c < O; c += 8) { /* O is a multiple of 8 on this path */
                __m256 m = _mm256_set1_ps(-FLT_MAX);
                for (int r = 0; r < yb - ya; r++)
                    for (int cx = xa; cx < xb; cx++)
                        m = _mm256_max_ps(m, _mm256_loadu_ps(band + r * prow + (size_t)cx * O + c));
                _mm256_storeu_ps(out + c, m);
            }
        }
    }
}

int face__sepconv_maxpool(face_ctx_t *ctx, const face_tensor_t *x, const face_sepconv_t *l,
                          face_act_t act, int pk, int ps, face_pad_t ppad, face_tensor_t *y)
{
    if (x->c != l->dw.c || l->pw.cin != l->dw.c || l->pw.k != 1 || l->pw.stride != 1 || pk <= 0 ||
        ps <= 0)
        return -EINVAL;
    int pt, pl, qt, ql;
    int oh = out_side(x->h, l->dw.k, l->dw.stride, l->dw.pad, &pt);
    int ow = out_side(x->w, l->dw.k, l->dw.stride, l->dw.pad, &pl);
    int ph = out_side(oh, pk, ps, ppad, &qt), pw = out_side(ow, pk, ps, ppad, &ql);
    int rc = face__tensor(&ctx->arena, ph, pw, l->pw.cout, y);
    if (rc)
        return rc;
    size_t mark = face__arena_mark(&ctx->arena);
    if (direct_ok(&l->pw)) {
        int nt = nn_pool_threads(ctx->pool);
        size_t per = (size_t)ow * l->dw.c + (size_t)pk * ow * l->pw.cout;
        float *scratch = face__arena_alloc(&ctx->arena, (size_t)nt * per);
        if (!scratch)
            return -ENOMEM;
        face_tensor_t dws = {oh, ow, l->dw.c, NULL}, pws = {oh, ow, l->pw.cout, NULL};
        sep_pool_job_t j = {{x, &l->dw, FACE_ACT_NONE, pt, pl, &dws},
                            {NULL, &l->pw, 0, 0, act, &pws, ops_isa()},
                            dws, pws, pk, ps, qt, ql, scratch, y};
        face__run(ctx, sep_pool_task, &j,
                  (double)oh * ow * l->dw.c * (l->dw.k * l->dw.k + l->pw.cout));
    } else {
        face_tensor_t t;
        rc = face__sepconv(ctx, x, l, act, &t);
        if (rc)
            return rc;
        pool_job_t j = {&t, pk, ps, qt, ql, true, y};
        face__run(ctx, pool_task, &j, (double)ph * pw * l->pw.cout * pk * pk);
    }
    face__arena_reset(&ctx->arena, mark);
    return 0;
}

void face__global_avgpool(const face_tensor_t *x, float *out)
{
    int C = x->c;
    size_t n = (size_t)x->h * x->w;
    for (int c = 0; c < C; c++)
        out[c] = 0;
    for (size_t p = 0; p < n; p++)
        for (int c = 0; c < C; c++)
            out[c] += x->d[p * C + c];
    for (int c = 0; c < C; c++)
        out[c] /= (float)n;
}

/* ==================================================================================== */
/* dense layers and squashing                                                            */
/* ==================================================================================== */

void face__fc(const face_fc_t *l, const float *x, float *y)
{
    memcpy(y, l->bias, (size_t)l->out * sizeof(float));
    for (int i = 0; i < l->in; i++)
        nn_axpy_f32(x[i], l->w + (size_t)i * l->out, y, (size_t)l->out);
}

void face__softmax(float *x, int n)
{
    if (n <= 0)
        return;
    float m = x[0];
    for (int i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    float s = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    for (int i = 0; i < n; i++)
        x[i] /= s;
}

float face__sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}
