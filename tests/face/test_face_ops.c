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

static void test_dwconv(void **state)
{
    (void)state;
    static const int ks[] = {1, 3, 7};
    static const int cs[] = {5, 16, 40, 64}; /* scalar path, one AVX block, 32+8, 2x32 */
    for (int threads = 1; threads <= 2; threads++) {
        face_ctx_t *ctx = ctx_new(threads);
        for (int ci = 0; ci < 4; ci++)
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
    for (int s = 1; s <= 2; s++) {
        int H = 17, W = 14, C = 24, O = 33;
        face_tensor_t x, y;
        assert_int_equal(face__tensor(&ctx->arena, H, W, C, &x), 0);
        fill(x.d, (size_t)H * W * C);
        float *dw = rand_buf(9 * (size_t)C), *pw = rand_buf((size_t)C * O), *b = rand_buf(O);
        face_sepconv_t l = {{3, s, C, FACE_PAD_SAME, dw, NULL}, {1, 1, C, O, FACE_PAD_SAME, pw, b}};
        assert_int_equal(face__sepconv(ctx, &x, &l, FACE_ACT_LEAKY, &y), 0);
        int oh, ow, oh2, ow2;
        double *t = ref_conv(&x, dw, NULL, 3, s, FACE_PAD_SAME, C, true, FACE_ACT_NONE, &oh, &ow);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena),          cmocka_unit_test(test_conv),
        cmocka_unit_test(test_dwconv),         cmocka_unit_test(test_sepconv),
        cmocka_unit_test(test_pad_pool),       cmocka_unit_test(test_act_fc_softmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
