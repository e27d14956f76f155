/* test_face_ops: unit tests of the face engine's core — every op (conv, depthwise, separable,
 * pad, max/avg pool, activations, fc, softmax) against a naive double-precision reference on random
 * tensors of odd sizes (stride 1 and 2, SAME and VALID, k 1/3/7, 1 and 2 threads), the arena's
 * reuse, the preprocessing against a naive pad-then-resize, and the tfjs weight-manifest loader on
 * a real model file and on damaged copies (truncated JSON, truncated shard, wrong shape, missing
 * file, random bytes, empty files). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "face/internal.h"

/* ==================================================================================== */
/* helpers                                                                               */
/* ==================================================================================== */

static uint32_t g_rng = 12345;
static float frand(void) /* [-1, 1) */
{
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}
static void fill(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
}

static face_ctx_t *ctx_new(int threads)
{
    face_ctx_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    face__arena_init(&c->arena);
    if (threads > 1)
        assert_int_equal(nn_pool_create(threads, &c->pool), 0);
    return c;
}
static void ctx_free(face_ctx_t *c)
{
    nn_pool_free(&c->pool);
    face__arena_destroy(&c->arena);
    free(c);
}

/* Output side and padding before, restated from TensorFlow's documentation. */
static int ref_out(int in, int k, int s, face_pad_t pad, int *before)
{
    if (pad == FACE_PAD_VALID) {
        *before = 0;
        return (int)ceil((double)(in - k + 1) / s);
    }
    int out = (int)ceil((double)in / s);
    int total = (out - 1) * s + k - in;
    *before = total > 0 ? total / 2 : 0;
    return out;
}

static double ref_act(double v, face_act_t act)
{
    switch (act) {
    case FACE_ACT_RELU:
        return v > 0 ? v : 0;
    case FACE_ACT_RELU6:
        return v < 0 ? 0 : v > 6 ? 6 : v;
    case FACE_ACT_LEAKY:
        return v > 0 ? v : 0.1 * v;
    default:
        return v;
    }
}

static void assert_close(const float *got, const double *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]);
        if (e > tol * (1 + fabs(want[i]))) {
            fprintf(stderr, "element %zu: got %.7g want %.7g\n", i, got[i], want[i]);
            fail();
        }
    }
}

/* Naive convolution: dw = depthwise (O == I, filter [K][K][C]). */
static double *ref_conv(const face_tensor_t *x, const float *w, const float *b, int k, int s,
                        face_pad_t pad, int O, bool dw, face_act_t act, int *oh, int *ow)
{
    int pt, pl;
    *oh = ref_out(x->h, k, s, pad, &pt);
    *ow = ref_out(x->w, k, s, pad, &pl);
    int I = x->c;
    double *y = calloc((size_t)*oh * *ow * O, sizeof *y);
    for (int oy = 0; oy < *oh; oy++)
        for (int ox = 0; ox < *ow; ox++)
            for (int o = 0; o < O; o++) {
                double acc = b ? b[o] : 0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = oy * s + ky - pt, ix = ox * s + kx - pl;
                        if (iy < 0 || ix < 0 || iy >= x->h || ix >= x->w)
                            continue;
                        const float *px = x->d + ((size_t)iy * x->w + ix) * I;
                        if (dw)
                            acc += (double)px[o] * w[((size_t)ky * k + kx) * I + o];
                        else
                            for (int i = 0; i < I; i++)
                                acc += (double)px[i] * w[(((size_t)ky * k + kx) * I + i) * O + o];
                    }
                y[((size_t)oy * *ow + ox) * O + o] = ref_act(acc, act);
            }
    return y;
}

static float *rand_buf(size_t n)
{
    float *p = malloc(n * sizeof *p);
    fill(p, n);
    return p;
}

/* ==================================================================================== */
/* ops                                                                                   */
/* ==================================================================================== */

static void test_conv(void **state)
{
    (void)state;
    static const int ks[] = {1, 3, 7};
    for (int threads = 1; threads <= 2; threads++) {
        face_ctx_t *ctx = ctx_new(threads);
        for (int ki = 0; ki < 3; ki++)
            for (int s = 1; s <= 2; s++)
                for (int p = 0; p < 2; p++) {
                    int k = ks[ki], H = 13 + ki, W = 9 + 2 * s, I = 5 + ki, O = 7 + 3 * p;
                    face_pad_t pad = p ? FACE_PAD_VALID : FACE_PAD_SAME;
                    face_tensor_t x;
                    assert_int_equal(face__tensor(&ctx->arena, H, W, I, &x), 0);
                    fill(x.d, (size_t)H * W * I);
                    float *w = rand_buf((size_t)k * k * I * O), *b = rand_buf((size_t)O);
                    face_conv_t l = {k, s, I, O, pad, w, b};
                    face_act_t act = (face_act_t)((ki + s + p) % 4);
                    face_tensor_t y;
                    assert_int_equal(face__conv(ctx, &x, &l, act, &y), 0);
                    int oh, ow;
                    double *r = ref_conv(&x, w, b, k, s, pad, O, false, act, &oh, &ow);
                    assert_int_equal(y.h, oh);
                    assert_int_equal(y.w, ow);
                    assert_int_equal(y.c, O);
                    assert_close(y.d, r, (size_t)oh * ow * O, 1e-4);
                    free(r);
                    free(w);
                    free(b);
                    face__arena_reset(&ctx->arena, 0);
                }
        ctx_free(ctx);
    }
}

/* The shapes of the networks' first layers (RGB in, 8k out: the direct-convolution path) and
 * a few around its limits, SAME and VALID, at odd sizes, 1 and 2 threads. */
static void test_conv_direct(void **state)
{
    (void)state;
    static const int cfg[][4] = {/* k, stride, I, O */
                                 {3, 1, 3, 16}, {3, 2, 3, 32}, {7, 2, 3, 32}, {3, 1, 5, 40},
                                 {3, 2, 17, 8}, {3, 1, 18, 64}, {5, 1, 6, 24}, {1, 2, 3, 16},
                                 {1, 1, 24, 48}, {1, 1, 64, 32}, {1, 1, 65, 32}};
    for (int threads = 1; threads <= 2; threads++) {
        face_ctx_t *ctx = ctx_new(threads);
        for (size_t ci = 0; ci < sizeof cfg / sizeof *cfg; ci++)
            for (int p = 0; p < 2; p++) {
                int k = cfg[ci][0], s = cfg[ci][1], I = cfg[ci][2], O = cfg[ci][3];
                int H = 15 + (int)ci, W = 21 - (int)ci;
                face_pad_t pad = p ? FACE_PAD_VALID : FACE_PAD_SAME;
                face_tensor_t x, y;
                assert_int_equal(face__tensor(&ctx->arena, H, W, I, &x), 0);
                fill(x.d, (size_t)H * W * I);
                float *w = rand_buf((size_t)k * k * I * O), *b = rand_buf((size_t)O);
                face_conv_t l = {k, s, I, O, pad, w, b};
                face_act_t act = (face_act_t)((ci + p) % 4);
                assert_int_equal(face__conv(ctx, &x, &l, act, &y), 0);
                int oh, ow;
                double *r = ref_conv(&x, w, b, k, s, pad, O, false, act, &oh, &ow);
                assert_int_equal(y.h, oh);
                assert_int_equal(y.w, ow);
                assert_close(y.d, r, (size_t)oh * ow * O, 1e-4);
                free(r);
                free(w);
                free(b);
                face__arena_reset(&ctx->arena, 0);
            }
        ctx_free(ctx);
    }
}

/* The fused convolution + max pool equals the two ops one after the other (the fused path for
 * the direct convolutions, the plain one otherwise), in shape and in every value. */
static void test_conv_maxpool(void **state)
{
    (void)state;
    static const int cfg[][7] = {/* k, stride, I, O, pool k, pool stride, VALID conv */
                                 {3, 1, 3, 16, 2, 2, 1}, {3, 1, 3, 16, 2, 2, 0},
                                 {3, 2, 3, 32, 3, 2, 0}, {3, 1, 5, 40, 2, 1, 1},
                                 {3, 1, 7, 10, 2, 2, 0}, {1, 1, 3, 16, 2, 2, 0}};
    for (int threads = 1; threads <= 2; threads++) {
        face_ctx_t *ctx = ctx_new(threads);
        for (size_t ci = 0; ci < sizeof cfg / sizeof *cfg; ci++)
            for (int pp = 0; pp < 2; pp++) {
                const int *c = cfg[ci];
                int H = 23 + (int)ci, W = 18 + 3 * (int)ci;
                face_tensor_t x, y, t, p;
                assert_int_equal(face__tensor(&ctx->arena, H, W, c[2], &x), 0);
                fill(x.d, (size_t)H * W * c[2]);
                float *w = rand_buf((size_t)c[0] * c[0] * c[2] * c[3]), *b = rand_buf(c[3]);
                face_conv_t l = {c[0], c[1], c[2], c[3], c[6] ? FACE_PAD_VALID : FACE_PAD_SAME,
                                 w, b};
                face_pad_t ppad = pp ? FACE_PAD_VALID : FACE_PAD_SAME;
                size_t m = face__arena_mark(&ctx->arena);
                assert_int_equal(face__conv_maxpool(ctx, &x, &l, FACE_ACT_LEAKY, c[4], c[5], ppad, &y),
                                 0);
                assert_int_equal(face__arena_mark(&ctx->arena) - m,
                                 ((size_t)y.h * y.w * y.c + 15) / 16 * 16);
                assert_int_equal(face__conv(ctx, &x, &l, FACE_ACT_LEAKY, &t), 0);
                assert_int_equal(face__maxpool(ctx, &t, c[4], c[5], ppad, &p), 0);
                assert_int_equal(y.h, p.h);
                assert_int_equal(y.w, p.w);
                assert_int_equal(y.c, p.c);
                for (size_t i = 0; i < (size_t)p.h * p.w * p.c; i++)
                    assert_true(y.d[i] == p.d[i]);
                free(w);
                free(b);
                face__arena_reset(&ctx->arena, 0);
            }
        ctx_free(ctx);
    }
}

/* The fused separable convolution + max pool equals the two ops in turn (fused when the pointwise
 * half is direct: at most 64 inputs and whole vectors of outputs; plain otherwise). */
static void test_sepconv_maxpool(void **state)
{
    (void)state;
    static const int cfg[][5] = {/* C, O, dw stride, pool k, pool stride */
                                 {16, 32, 1, 2, 2}, {32, 64, 1, 2, 1}, {24, 48, 2, 3, 2},
                                 {16, 33, 1, 2, 2}, {72, 16, 1, 2, 2}, {5, 8, 1, 2, 2}};
    for (int threads = 1; threads <= 2; threads++) {
        face_ctx_t *ctx = ctx_new(threads);
        for (size_t ci = 0; ci < sizeof cfg / sizeof *cfg; ci++)
            for (int pp = 0; pp < 2; pp++) {
                const int *c = cfg[ci];
                int H = 19 + (int)ci, W = 26 - (int)ci;
                face_tensor_t x, y, t, p;
                assert_int_equal(face__tensor(&ctx->arena, H, W, c[0], &x), 0);
                fill(x.d, (size_t)H * W * c[0]);
                float *dw = rand_buf(9 * (size_t)c[0]), *pw = rand_buf((size_t)c[0] * c[1]);
                float *b = rand_buf(c[1]);
                face_sepconv_t l = {{3, c[2], c[0], FACE_PAD_SAME, dw, NULL},
                                    {1, 1, c[0], c[1], FACE_PAD_SAME, pw, b}};
                face_pad_t ppad = pp ? FACE_PAD_VALID : FACE_PAD_SAME;
                assert_int_equal(
                    face__sepconv_maxpool(ctx, &x, &l, FACE_ACT_LEAKY, c[3], c[4], ppad, &y), 0);
                assert_int_equal(face__sepconv(ctx, &x, &l, FACE_ACT_LEAKY, &t), 0);
                assert_int_equal(face__maxpool(ctx, &t, c[3], c[4], ppad, &p), 0);
                assert_int_equal(y.h, p.h);
                assert_int_equal(y.w, p.w);
                assert_int_equal(y.c, p.c);
                for (size_t i = 0; i < (size_t)p.h * p.w * p.c; i++)
                    assert_true(y.d[i] == p.d[i]);
                free(dw);
                free(pw);
                free(b);
                face__arena_reset(&ctx->arena, 0);
            }
        ctx_free(ctx);
    }
}

/* Depthwise with an activation, then 1x1 (SSD's pairs), equals the two ops in turn, by rows
 * (direct 1x1) and through the GEMM (128 inputs). */
static void test_dw_pw(void **state)
{
    (void)state;
    static const int cfg[][3] = {{32, 64, 1}, {64, 128, 2}, {24, 40, 1}, {128, 64, 2}, {6, 8, 2}};
    for (int threads = 1; threads <= 2; threads++) {
        face_ctx_t *ctx = ctx_new(threads);
        for (size_t ci = 0; ci < sizeof cfg / sizeof *cfg; ci++) {
            int C = cfg[ci][0], O = cfg[ci][1], st = cfg[ci][2], H = 15 + (int)ci, W = 22;
            face_tensor_t x, y, t, r;
            assert_int_equal(face__tensor(&ctx->arena, H, W, C, &x), 0);
            fill(x.d, (size_t)H * W * C);
            float *dwf = rand_buf(9 * (size_t)C), *dwb = rand_buf(C);
            float *pwf = rand_buf((size_t)C * O), *pwb = rand_buf(O);
            face_dwconv_t dw = {3, st, C, FACE_PAD_SAME, dwf, dwb};
            face_conv_t pw = {1, 1, C, O, FACE_PAD_SAME, pwf, pwb};
            assert_int_equal(face__dw_pw(ctx, &x, &dw, FACE_ACT_RELU6, &pw, FACE_ACT_RELU6, &y), 0);
            assert_int_equal(face__dwconv(ctx, &x, &dw, FACE_ACT_RELU6, &t), 0);
            assert_int_equal(face__conv(ctx, &t, &pw, FACE_ACT_RELU6, &r), 0);
            assert_int_equal(y.h, r.h);
            assert_int_equal(y.w, r.w);
            assert_int_equal(y.c, O);
            for (size_t i = 0; i < (size_t)r.h * r.w * O; i++)
                assert_true(y.d[i] == r.d[i]);
            free(dwf);
            free(dwb);
            free(pwf);
            free(pwb);
            face__arena_reset(&ctx->arena, 0);
        }
        ctx_free(ctx);
    }
}

static void test_dwconv(void **state)
{
    (void)state;
    static const int ks[] = {1, 3, 7};
    /* scalar path; one vector; AVX2 32+8; AVX-512 32+16; 2x32 (each also in 4-pixel runs) */
    static const int cs[] = {5, 16, 40, 48, 64};
    for (int threads = 1; threads <= 2; threads++) {
        face_ctx_t *ctx = ctx_new(threads);
        for (int ci = 0; ci < 5; ci++)
            for (int ki = 0; ki < 3; ki++)
                for (int s = 1; s <= 2; s++)
                    for (int p = 0; p < 2; p++) {
                        int k = ks[ki], H = 11 + ki, W = 8 + s + ci, C = cs[ci];
                        face_pad_t pad = p ? FACE_PAD_VALID : FACE_PAD_SAME;
                        face_tensor_t x, y;
                        assert_int_equal(face__tensor(&ctx->arena, H, W, C, &x), 0);
                        fill(x.d, (size_t)H * W * C);
                        float *w = rand_buf((size_t)k * k * C), *b = rand_buf((size_t)C);
                        face_dwconv_t l = {k, s, C, pad, w, (ci + ki) % 2 ? b : NULL};
                        face_act_t act = (face_act_t)((ci + ki + s + p) % 4);
                        assert_int_equal(face__dwconv(ctx, &x, &l, act, &y), 0);
                        int oh, ow;
                        double *r = ref_conv(&x, w, l.bias, k, s, pad, C, true, act, &oh, &ow);
                        assert_int_equal(y.h, oh);
                        assert_int_equal(y.w, ow);
                        assert_close(y.d, r, (size_t)oh * ow * C, 1e-5);
                        free(r);
                        free(w);
                        free(b);
                        face__arena_reset(&ctx->arena, 0);
                    }
        ctx_free(ctx);
    }
}

static void test_sepconv(void **state)
{
    (void)state;
    face_ctx_t *ctx = ctx_new(2);
    for (int s = 1; s <= 4; s++) { /* pointwise by GEMM (33 outputs) and direct (32) */
        int H = 17, W = 14, C = 24, O = s <= 2 ? 33 : 32;
        face_tensor_t x, y;
        assert_int_equal(face__tensor(&ctx->arena, H, W, C, &x), 0);
        fill(x.d, (size_t)H * W * C);
        float *dw = rand_buf(9 * (size_t)C), *pw = rand_buf((size_t)C * O), *b = rand_buf(O);
        int st = 2 - s % 2;
        face_sepconv_t l = {{3, st, C, FACE_PAD_SAME, dw, NULL}, {1, 1, C, O, FACE_PAD_SAME, pw, b}};
        assert_int_equal(face__sepconv(ctx, &x, &l, FACE_ACT_LEAKY, &y), 0);
        int oh, ow, oh2, ow2;
        double *t = ref_conv(&x, dw, NULL, 3, st, FACE_PAD_SAME, C, true, FACE_ACT_NONE, &oh, &ow);
        face_tensor_t tt;
        assert_int_equal(face__tensor(&ctx->arena, oh, ow, C, &tt), 0);
        for (size_t i = 0; i < (size_t)oh * ow * C; i++)
            tt.d[i] = (float)t[i];
        double *r = ref_conv(&tt, pw, b, 1, 1, FACE_PAD_SAME, O, false, FACE_ACT_LEAKY, &oh2, &ow2);
        assert_int_equal(y.h, oh2);
        assert_int_equal(y.w, ow2);
        assert_int_equal(y.c, O);
        assert_close(y.d, r, (size_t)oh2 * ow2 * O, 1e-4);
        free(t);
        free(r);
        free(dw);
        free(pw);
        free(b);
        face__arena_reset(&ctx->arena, 0);
    }
    ctx_free(ctx);
}

static void test_pad_pool(void **state)
{
    (void)state;
    face_ctx_t *ctx = ctx_new(2);
    int H = 9, W = 12, C = 6;
    face_tensor_t x, y;
    assert_int_equal(face__tensor(&ctx->arena, H, W, C, &x), 0);
    fill(x.d, (size_t)H * W * C);
    assert_int_equal(face__pad(ctx, &x, 1, 2, 3, 0, &y), 0);
    assert_int_equal(y.h, H + 3);
    assert_int_equal(y.w, W + 3);
    for (int r = 0; r < y.h; r++)
        for (int c = 0; c < y.w; c++)
            for (int ch = 0; ch < C; ch++) {
                int sr = r - 1, sc = c - 3;
                float want = sr >= 0 && sr < H && sc >= 0 && sc < W
                                 ? x.d[((size_t)sr * W + sc) * C + ch]
                                 : 0.0f;
                assert_true(y.d[((size_t)r * y.w + c) * C + ch] == want);
            }
    assert_int_equal(face__pad(ctx, &x, -1, 0, 0, 0, &y), -EINVAL);

    for (int k = 1; k <= 3; k++)
        for (int s = 1; s <= 2; s++)
            for (int p = 0; p < 2; p++)
                for (int mx = 0; mx < 2; mx++) {
                    face_pad_t pad = p ? FACE_PAD_VALID : FACE_PAD_SAME;
                    int rc = mx ? face__maxpool(ctx, &x, k, s, pad, &y)
                                : face__avgpool(ctx, &x, k, s, pad, &y);
                    assert_int_equal(rc, 0);
                    int pt, pl;
                    int oh = ref_out(H, k, s, pad, &pt), ow = ref_out(W, k, s, pad, &pl);
                    assert_int_equal(y.h, oh);
                    assert_int_equal(y.w, ow);
                    for (int oy = 0; oy < oh; oy++)
                        for (int ox = 0; ox < ow; ox++)
                            for (int ch = 0; ch < C; ch++) {
                                double acc = mx ? -INFINITY : 0;
                                int n = 0;
                                for (int ky = 0; ky < k; ky++)
                                    for (int kx = 0; kx < k; kx++) {
                                        int iy = oy * s + ky - pt, ix = ox * s + kx - pl;
                                        if (iy < 0 || ix < 0 || iy >= H || ix >= W)
                                            continue;
                                        double v = x.d[((size_t)iy * W + ix) * C + ch];
                                        acc = mx ? fmax(acc, v) : acc + v;
                                        n++;
                                    }
                                if (!mx)
                                    acc /= n;
                                double got = y.d[((size_t)oy * ow + ox) * C + ch];
                                assert_true(fabs(got - acc) < 1e-6);
                            }
                }
    float g[6];
    face__global_avgpool(&x, g);
    for (int ch = 0; ch < C; ch++) {
        double s = 0;
        for (int i = 0; i < H * W; i++)
            s += x.d[(size_t)i * C + ch];
        assert_true(fabs(g[ch] - s / (H * W)) < 1e-5);
    }
    ctx_free(ctx);
}

static void test_act_fc_softmax(void **state)
{
    (void)state;
    /* leaky exactly as face-api's leaky.ts computes it in float32 */
    float v[] = {-3.5f, -1e-3f, 0.0f, 2.25f, 7.0f, -100.0f};
    face_tensor_t t = {1, 1, 6, v};
    float orig[6];
    memcpy(orig, v, sizeof v);
    face__act_inplace(&t, FACE_ACT_LEAKY);
    for (int i = 0; i < 6; i++) {
        float m = orig[i] * 0.10000000149011612f;
        float d = orig[i] - m;
        assert_true(v[i] == (d > 0 ? d : 0) + m);
        assert_true(fabs(v[i] - ref_act(orig[i], FACE_ACT_LEAKY)) < 1e-5);
    }
    memcpy(v, orig, sizeof v);
    face__act_inplace(&t, FACE_ACT_RELU6);
    for (int i = 0; i < 6; i++)
        assert_true(v[i] == (float)ref_act(orig[i], FACE_ACT_RELU6));
    float a[6], b2[6];
    fill(a, 6);
    fill(b2, 6);
    face_tensor_t ta = {1, 2, 3, a}, tb = {1, 2, 3, b2};
    float a0[6];
    memcpy(a0, a, sizeof a);
    face__add_inplace(&ta, &tb, FACE_ACT_RELU);
    for (int i = 0; i < 6; i++)
        assert_true(fabs(a[i] - ref_act((double)a0[i] + b2[i], FACE_ACT_RELU)) < 1e-6);

    int in = 37, out = 11;
    float *w = rand_buf((size_t)in * out), *bias = rand_buf(out), *x = rand_buf(in), y[11];
    face_fc_t l = {in, out, w, bias};
    face__fc(&l, x, y);
    for (int o = 0; o < out; o++) {
        double s = bias[o];
        for (int i = 0; i < in; i++)
            s += (double)x[i] * w[(size_t)i * out + o];
        assert_true(fabs(y[o] - s) < 1e-4);
    }
    free(w);
    free(bias);
    free(x);

    float sm[5] = {1, 2, 3, 1000, -1000};
    face__softmax(sm, 5);
    double tot = 0;
    for (int i = 0; i < 5; i++) {
        assert_true(isfinite(sm[i]));
        tot += sm[i];
    }
    assert_true(fabs(tot - 1) < 1e-6);
    assert_true(sm[3] > 0.999f);
    float sm2[3] = {0.5f, -0.25f, 1.5f};
    double e0 = exp(0.5), e1 = exp(-0.25), e2 = exp(1.5), es = e0 + e1 + e2;
    face__softmax(sm2, 3);
    assert_true(fabs(sm2[0] - e0 / es) < 1e-6 && fabs(sm2[2] - e2 / es) < 1e-6);
    assert_true(fabs(face__sigmoid(0.3f) - 1 / (1 + exp(-0.3))) < 1e-6);
    assert_true(face__sigmoid(-200.0f) >= 0.0f && face__sigmoid(200.0f) <= 1.0f);
}

static void test_arena(void **state)
{
    (void)state;
    face_arena_t a;
    face__arena_init(&a);
    float *p = face__arena_alloc(&a, 10);
    assert_non_null(p);
    assert_true(((uintptr_t)p & 63) == 0);
    size_t m = face__arena_mark(&a);
    float *big = face__arena_alloc(&a, (size_t)3 << 20); /* forces a second chunk */
    assert_non_null(big);
    big[0] = 1;
    big[((size_t)3 << 20) - 1] = 2;
    float *q = face__arena_alloc(&a, 5);
    assert_true(((uintptr_t)q & 63) == 0);
    face__arena_reset(&a, m);
    assert_int_equal(face__arena_mark(&a), m);
    face__arena_reset(&a, 0);
    assert_int_equal(face__arena_mark(&a), 0);
    /* after the merge the same sequence fits in one chunk: the same pointers come back */
    float *p2 = face__arena_alloc(&a, 10);
    float *big2 = face__arena_alloc(&a, (size_t)3 << 20);
    float *q2 = face__arena_alloc(&a, 5);
    assert_true(big2 == p2 + 16);
    assert_true(q2 > big2);
    face__arena_reset(&a, 0);
    assert_true(face__arena_alloc(&a, 10) == p2);
    face__arena_destroy(&a);
    face_tensor_t t;
    face__arena_init(&a);
    assert_int_equal(face__tensor(&a, 0, 3, 3, &t), -EINVAL);
    face__arena_destroy(&a);
}


/* ==================================================================================== */
/* preprocessing                                                                         */
/* ==================================================================================== */

/* Two steps as the reference does them: the padded square, then the legacy bilinear resize. */
static double *ref_prep(const image_t *img, int rx, int ry, int rw, int rh, bool centre, int side,
                        const float mean[3], double inv_std)
{
    int S = rw > rh ? rw : rh, diff = S - (rw < rh ? rw : rh);
    int after = centre ? (int)floor(diff * 0.5 + 0.5) : diff, before = diff - after;
    int top = rh < rw ? before : 0, left = rw < rh ? before : 0;
    double *sq = calloc((size_t)S * S * 3, sizeof *sq);
    for (int r = 0; r < rh; r++)
        for (int c = 0; c < rw; c++)
            for (int ch = 0; ch < 3; ch++)
                sq[((size_t)(r + top) * S + c + left) * 3 + ch] =
                    img->rgb[((size_t)(ry + r) * img->width + rx + c) * 3 + ch];
    double *out = malloc((size_t)side * side * 3 * sizeof *out);
    double ratio = (double)S / side;
    for (int oy = 0; oy < side; oy++)
        for (int ox = 0; ox < side; ox++) {
            double sy = oy * ratio, sx = ox * ratio;
            int y0 = (int)floor(sy), x0 = (int)floor(sx);
            int y1 = (int)fmin(ceil(sy), S - 1), x1 = (int)fmin(ceil(sx), S - 1);
            double fy = sy - y0, fx = sx - x0;
            for (int ch = 0; ch < 3; ch++) {
                double tl = sq[((size_t)y0 * S + x0) * 3 + ch], tr = sq[((size_t)y0 * S + x1) * 3 + ch];
                double bl = sq[((size_t)y1 * S + x0) * 3 + ch], br = sq[((size_t)y1 * S + x1) * 3 + ch];
                double t = tl + (tr - tl) * fx, b = bl + (br - bl) * fx;
                out[((size_t)oy * side + ox) * 3 + ch] = (t + (b - t) * fy - mean[ch]) * inv_std;
            }
        }
    free(sq);
    return out;
}

static void test_prep(void **state)
{
    (void)state;
    image_t img = {37, 23, NULL};
    img.rgb = malloc((size_t)img.width * img.height * 3);
    for (size_t i = 0; i < (size_t)img.width * img.height * 3; i++)
        img.rgb[i] = (uint8_t)(frand() * 127.5f + 127.5f);
    static const float mean[3] = {117.001f, 114.697f, 97.404f};
    /* regions: whole (wide), a tall crop, an odd-difference crop, square; sides up and down */
    static const int regions[][4] = {{0, 0, 37, 23}, {5, 2, 9, 20}, {3, 4, 30, 17}, {10, 3, 12, 12}};
    static const int sides[] = {16, 37, 64, 7};
    for (int threads = 1; threads <= 2; threads++) {
        face_ctx_t *ctx = ctx_new(threads);
        for (int r = 0; r < 4; r++)
            for (int si = 0; si < 4; si++)
                for (int centre = 0; centre < 2; centre++) {
                    const int *g = regions[r];
                    face_tensor_t y;
                    int square = 0;
                    assert_int_equal(face__prep(ctx, &img, g[0], g[1], g[2], g[3], centre,
                                                sides[si], mean, 1.0f / 255.0f, &y, &square),
                                     0);
                    assert_int_equal(square, g[2] > g[3] ? g[2] : g[3]);
                    assert_int_equal(y.h, sides[si]);
                    assert_int_equal(y.c, 3);
                    double *want = ref_prep(&img, g[0], g[1], g[2], g[3], centre, sides[si],
                                            mean, 1.0 / 255.0);
                    for (size_t i = 0; i < (size_t)sides[si] * sides[si] * 3; i++)
                        assert_true(fabs(y.d[i] - want[i]) < 2e-5);
                    free(want);
                    face__arena_reset(&ctx->arena, 0);
                }
        face_tensor_t y;
        int square;
        assert_int_equal(face__prep(ctx, &img, 30, 0, 8, 5, false, 8, mean, 1, &y, &square), -EINVAL);
        assert_int_equal(face__prep(ctx, &img, 0, 0, 0, 5, false, 8, mean, 1, &y, &square), -EINVAL);
        ctx_free(ctx);
    }
    free(img.rgb);
}

/* ==================================================================================== */
/* weights                                                                               */
/* ==================================================================================== */

static const char *models_dir(void)
{
    const char *d = getenv("PERSONA_FACE_MODELS");
    assert_non_null(d);
    return d;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void spit(const char *dir, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static char *scratch(const char *sub)
{
    const char *t = getenv("PERSONA_TEST_TMP");
    char *d = xasprintf("%s/%s", t ? t : "/tmp", sub);
    char *cmd = xasprintf("rm -rf '%s' && mkdir -p '%s'", d, d);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return d;
}

#define TINY "tiny_face_detector_model"

static void test_weights_real(void **state)
{
    (void)state;
    char err[256] = "";
    face_weights_t *w = NULL;
    int rc = face__weights_load(models_dir(), TINY, &w, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    const int shape[] = {3, 3, 3, 16};
    float *f = face__weights_get(w, "conv0/filters", 4, shape, err, sizeof err);
    assert_non_null(f);
    /* the first tensor's first bytes, decoded by hand from the manifest's scale/min */
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%s/" TINY ".bin", models_dir());
    size_t n;
    unsigned char *bin = slurp(mpath, &n);
    const double scale = 0.009007044399485869, min = -1.2069439495311063;
    for (int i = 0; i < 3 * 3 * 3 * 16; i++)
        assert_true(f[i] == (float)(bin[i] * scale + min));
    free(bin);
    const int any[] = {-1};
    assert_non_null(face__weights_get(w, "conv8/bias", 1, any, err, sizeof err));
    const int wrong[] = {3, 3, 3, 17};
    assert_null(face__weights_get(w, "conv0/filters", 4, wrong, err, sizeof err));
    assert_non_null(strstr(err, "conv0/filters"));
    assert_null(face__weights_get(w, "conv0/filters", 3, wrong, err, sizeof err));
    assert_null(face__weights_get(w, "nope", 1, any, err, sizeof err));
    assert_non_null(strstr(err, "nope"));
    face__weights_free(&w);
    assert_null(w);
    face__weights_free(&w);

    /* every model the engine needs loads */
    static const char *const all[] = {
        "ssd_mobilenetv1_model", "face_landmark_68_model", "face_landmark_68_tiny_model",
        "face_recognition_model", "age_gender_model", "face_expression_model"};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        rc = face__weights_load(models_dir(), all[i], &w, err, sizeof err);
        if (rc)
            fprintf(stderr, "%s: %s\n", all[i], err);
        assert_int_equal(rc, 0);
        face__weights_free(&w);
    }
}

/* Writes manifest text and shard bytes to a fresh folder and loads them. */
static int load_damaged(const char *sub, const void *man, size_t man_len, const void *bin,
                        size_t bin_len, char *err, size_t errcap)
{
    char *d = scratch(sub);
    if (man)
        spit(d, TINY "-weights_manifest.json", man, man_len);
    if (bin)
        spit(d, TINY ".bin", bin, bin_len);
    face_weights_t *w = NULL;
    int rc = face__weights_load(d, TINY, &w, err, errcap);
    face__weights_free(&w);
    free(d);
    return rc;
}

static char *replace(const char *s, const char *a, const char *b)
{
    const char *p = strstr(s, a);
    assert_non_null(p);
    return xasprintf("%.*s%s%s", (int)(p - s), s, b, p + strlen(a));
}

static void test_weights_damaged(void **state)
{
    (void)state;
    char path[1024], err[512];
    size_t mlen, blen;
    snprintf(path, sizeof path, "%s/" TINY "-weights_manifest.json", models_dir());
    unsigned char *man = slurp(path, &mlen);
    man[mlen] = 0;
    snprintf(path, sizeof path, "%s/" TINY ".bin", models_dir());
    unsigned char *bin = slurp(path, &blen);

    /* the untouched copy loads: the folder mechanics are right */
    assert_int_equal(load_damaged("ok", man, mlen, bin, blen, err, sizeof err), 0);
    /* missing manifest, missing shard: -ENOENT naming the file */
    assert_int_equal(load_damaged("noman", NULL, 0, bin, blen, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "weights_manifest.json"));
    assert_int_equal(load_damaged("nobin", man, mlen, NULL, 0, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, TINY ".bin"));
    /* truncated JSON, empty, random bytes */
    for (size_t cut = 0; cut < mlen; cut += mlen / 7 + 1)
        assert_int_equal(load_damaged("tjson", man, cut, bin, blen, err, sizeof err),
                         CORE_EBADMEDIA);
    unsigned char rnd[4096];
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (unsigned char)(frand() * 128 + 128);
        assert_int_equal(load_damaged("rjson", rnd, sizeof rnd, bin, blen, err, sizeof err),
                         CORE_EBADMEDIA);
        /* a good manifest over random shard bytes of the wrong size */
        assert_int_equal(load_damaged("rbin", man, mlen, rnd, sizeof rnd, err, sizeof err),
                         CORE_EBADMEDIA);
    }
    /* truncated shard: the error names a tensor */
    assert_int_equal(load_damaged("tbin", man, mlen, bin, blen - 1, err, sizeof err),
                     CORE_EBADMEDIA);
    assert_non_null(strstr(err, "conv8/bias"));
    assert_int_equal(load_damaged("tbin2", man, mlen, bin, 100, err, sizeof err), CORE_EBADMEDIA);
    assert_non_null(strstr(err, "conv0/"));
    assert_int_equal(load_damaged("ebin", man, mlen, bin, 0, err, sizeof err), CORE_EBADMEDIA);
    /* a longer shard than the manifest describes */
    unsigned char *big = calloc(blen + 8, 1);
    memcpy(big, bin, blen);
    assert_int_equal(load_damaged("lbin", man, mlen, big, blen + 8, err, sizeof err),
                     CORE_EBADMEDIA);
    free(big);
    /* wrong shape: the data no longer fits (or is left over) */
    char *m2 = replace((char *)man, "[3,3,3,16]", "[3,3,3,17]");
    assert_int_equal(load_damaged("shape", m2, strlen(m2), bin, blen, err, sizeof err),
                     CORE_EBADMEDIA);
    free(m2);
    /* unknown dtype; a huge shape; a path escaping the folder */
    m2 = replace((char *)man, "\"uint8\"", "\"uint3\"");
    assert_int_equal(load_damaged("dtype", m2, strlen(m2), bin, blen, err, sizeof err),
                     CORE_EBADMEDIA);
    assert_non_null(strstr(err, "conv0/filters"));
    free(m2);
    m2 = replace((char *)man, "16]", "1600000000]");
    assert_int_equal(load_damaged("huge", m2, strlen(m2), bin, blen, err, sizeof err),
                     CORE_EBADMEDIA);
    free(m2);
    m2 = replace((char *)man, "\"" TINY ".bin\"", "\"../" TINY ".bin\"");
    assert_int_equal(load_damaged("escape", m2, strlen(m2), bin, blen, err, sizeof err),
                     CORE_EBADMEDIA);
    free(m2);
    /* a manifest over the 1 MiB bound */
    size_t hn = (1u << 20) + 10;
    char *huge = malloc(hn);
    memset(huge, ' ', hn);
    memcpy(huge, man, mlen);
    assert_int_equal(load_damaged("hman", huge, hn, bin, blen, err, sizeof err), CORE_EBADMEDIA);
    free(huge);
    /* a shard over the 64 MiB bound (sparse: nothing is written) */
    char *d = scratch("hbin");
    spit(d, TINY "-weights_manifest.json", man, mlen);
    char *hb = xasprintf("%s/" TINY ".bin", d);
    FILE *f = fopen(hb, "wb");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)65 << 20), 0);
    fclose(f);
    face_weights_t *w = NULL;
    assert_int_equal(face__weights_load(d, TINY, &w, err, sizeof err), CORE_EBADMEDIA);
    assert_non_null(strstr(err, "too large"));
    free(hb);
    free(d);
    /* random damage to the manifest: an error or a load, never a crash (ASan checks the rest) */
    unsigned char *mut = malloc(mlen);
    for (int round = 0; round < 60; round++) {
        memcpy(mut, man, mlen);
        int flips = 1 + round % 4;
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)((frand() + 1) / 2 * (float)(mlen - 1));
            mut[at] = (unsigned char)"0123456789[]{},:\"-.ex \x01"[(size_t)((frand() + 1) * 12) % 24];
        }
        int rc = load_damaged("mut", mut, mlen, bin, blen, err, sizeof err);
        assert_true(rc == 0 || rc == CORE_EBADMEDIA || rc == -ENOENT); /* a renamed shard */
    }
    free(mut);
    free(man);
    free(bin);
}

/* ==================================================================================== */
/* non-maximum suppression                                                               */
/* ==================================================================================== */

static void test_nms(void **state)
{
    (void)state;
    /* 0 and 1 overlap by IoU 0.6 (1 is dropped at 0.5, kept at 0.7); 2 overlaps nothing;
     * 3 scores at the threshold exactly (excluded: the references keep score > threshold);
     * 4 has no area; 5 ties with 2 and comes after it. */
    const face_box_t b[] = {{0, 0, 10, 10}, {0, 2.5f, 10, 10}, {50, 50, 5, 5},
                            {100, 0, 4, 4}, {200, 0, 0, 3},    {300, 0, 6, 6}};
    const float sc[] = {0.9f, 0.95f, 0.7f, 0.5f, 0.8f, 0.7f};
    int keep[6];
    int n = face__nms(b, sc, 6, 6, 0.5f, 0.5f, keep);
    assert_int_equal(n, 4);
    assert_int_equal(keep[0], 1);
    assert_int_equal(keep[1], 4);
    assert_int_equal(keep[2], 2);
    assert_int_equal(keep[3], 5);
    n = face__nms(b, sc, 6, 6, 0.7f, 0.5f, keep);
    assert_int_equal(n, 5);
    assert_int_equal(keep[1], 0);
    n = face__nms(b, sc, 6, 2, 0.5f, 0.5f, keep);
    assert_int_equal(n, 2);
    assert_int_equal(face__nms(b, sc, 6, 6, 0.5f, 0.99f, keep), 0);
    assert_int_equal(face__nms(b, sc, 0, 6, 0.5f, 0.0f, keep), 0);
    /* random boxes: the result equals a plain sort-then-suppress */
    for (int round = 0; round < 20; round++) {
        enum { N = 300 };
        face_box_t rb[N];
        float rs[N];
        int order[N], k1[N], k2[N], n2 = 0;
        for (int i = 0; i < N; i++) {
            rb[i] = (face_box_t){frand() * 100 + 100, frand() * 100 + 100, frand() * 20 + 21,
                                 frand() * 20 + 21};
            rs[i] = (float)((int)((frand() + 1) * 50)) / 100; /* ties on purpose */
            order[i] = i;
        }
        for (int i = 1; i < N; i++) /* insertion sort: score desc, index asc */
            for (int j = i; j > 0 && rs[order[j]] > rs[order[j - 1]]; j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        for (int i = 0; i < N && n2 < 10; i++) {
            int c = order[i];
            if (!(rs[c] > 0.3f))
                continue;
            bool ok = true;
            for (int k = 0; k < n2 && ok; k++)
                ok = face_box_iou(rb[c], rb[k2[k]]) <= 0.4f;
            if (ok)
                k2[n2++] = c;
        }
        int n1 = face__nms(rb, rs, N, 10, 0.4f, 0.3f, k1);
        assert_int_equal(n1, n2);
        for (int i = 0; i < n1; i++)
            assert_int_equal(k1[i], k2[i]);
    }
}

/* Runs the tests, then (unless it is itself such a run) runs this program again with each lower
 * instruction set forced (PERSONA_NN_ISA=avx2, scalar), so every code path is checked on a
 * machine that has the best one. */
int main(int argc, char **argv)
{
    (void)argc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena),          cmocka_unit_test(test_conv),
        cmocka_unit_test(test_conv_direct),    cmocka_unit_test(test_conv_maxpool),
        cmocka_unit_test(test_sepconv_maxpool), cmocka_unit_test(test_dw_pw),
        cmocka_unit_test(test_dwconv),         cmocka_unit_test(test_sepconv),
        cmocka_unit_test(test_pad_pool),       cmocka_unit_test(test_act_fc_softmax),
        cmocka_unit_test(test_prep),           cmocka_unit_test(test_weights_real),
        cmocka_unit_test(test_weights_damaged), cmocka_unit_test(test_nms),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (getenv("PERSONA_NN_ISA"))
        return rc;
    static const char *const isas[] = {"avx2", "scalar"};
    for (int i = 0; i < 2; i++) {
        char *cmd = xasprintf("PERSONA_NN_ISA=%s '%s'", isas[i], argv[0]);
        fprintf(stderr, "== again with PERSONA_NN_ISA=%s\n", isas[i]);
        if (system(cmd) != 0)
            rc = 1;
        free(cmd);
    }
    return rc;
}
