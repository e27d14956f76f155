/* test_train_ops: numerical gradient checks of every op the trainer has (embedding, RMSNorm,
 * matmul, rope, causal GQA attention, SwiGLU, cross-entropy), AdamW against the formula in double,
 * the fixed-order sum of squares, and the whole model's gradient on a micro model (untied and
 * tied head) against central finite differences for a sample of parameters.
 *
 * Each op check: loss = sum(out * R) for a fixed random R, accumulated in double; the analytic
 * gradient (the op's backward with upstream R) must match (loss(x+h) - loss(x-h)) / 2h with a
 * relative error below 1e-2 over the whole gradient vector and elementwise (with a small
 * absolute floor for elements near zero). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/internal.h"

static uint64_t rng = 42;

static float urand(void) /* uniform in [-1, 1) */
{
    return (float)((double)(train__rng_next(&rng) >> 11) * 0x1.0p-52 - 1.0);
}

static float *rand_buf(size_t n, float scale)
{
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = urand() * scale;
    return p;
}

static float *zero_buf(size_t n)
{
    float *p = calloc(n, sizeof *p);
    assert_non_null(p);
    return p;
}

/* ==== the checker ==== */

typedef void (*fwd_fn)(void *ctx);

typedef struct {
    fwd_fn fwd;
    void *ctx;
    const float *out; /* written by fwd */
    const float *R;
    size_t n_out;
} probe_t;

static double probe_loss(const probe_t *p)
{
    p->fwd(p->ctx);
    double s = 0;
    for (size_t i = 0; i < p->n_out; i++)
        s += (double)p->out[i] * p->R[i];
    return s;
}

/* Compares analytic[i] with the central difference of probe_loss in x[i] for i < n. */
static void check_grad(const char *what, const probe_t *p, float *x, size_t n,
                       const float *analytic, float h)
{
    double num2 = 0, diff2 = 0, an2 = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + h;
        double lp = probe_loss(p);
        x[i] = x0 - h;
        double lm = probe_loss(p);
        x[i] = x0;
        /* the step actually taken in float */
        double num = (lp - lm) / ((double)(x0 + h) - (double)(x0 - h));
        double a = analytic[i];
        num2 += num * num;
        an2 += a * a;
        diff2 += (num - a) * (num - a);
        double tol = 1e-2 * fmax(fabs(num), fabs(a)) + 2e-3;
        if (fabs(num - a) > tol && bad++ < 5)
            print_error("%s[%zu]: analytic %.6g numeric %.6g\n", what, i, a, num);
    }
    double rel = sqrt(diff2) / fmax(sqrt(fmax(num2, an2)), 1e-12);
    if (rel >= 1e-2 || bad)
        print_error("%s: relative error %.3g, %d elements off\n", what, rel, bad);
    assert_true(an2 > 0); /* a gradient of zeros would check nothing */
    assert_true(rel < 1e-2);
    assert_int_equal(bad, 0);
}

/* ==== embedding ==== */

typedef struct {
    float *E, *out;
    int32_t *ids;
    int N, D;
} embed_t;

static void embed_fwd(void *vc)
{
    embed_t *c = vc;
    train__embed_fwd(c->E, c->ids, c->N, c->D, c->out);
}

static void test_embedding(void **state)
{
    (void)state;
    int V = 7, D = 6, N = 9;
    int32_t ids[9] = {0, 3, 3, 6, 1, 0, 5, 3, 2};
    embed_t c = {rand_buf((size_t)V * D, 1), zero_buf((size_t)N * D), ids, N, D};
    float *R = rand_buf((size_t)N * D, 1), *dE = zero_buf((size_t)V * D);
    train__embed_bwd(dE, ids, N, D, R);
    probe_t p = {embed_fwd, &c, c.out, R, (size_t)N * D};
    /* rows never looked up (4) get no gradient; the others are checked through the mix */
    check_grad("embedding dE", &p, c.E, (size_t)V * D, dE, 1e-2f);
    free(c.E), free(c.out), free(R), free(dE);
}

/* ==== RMSNorm ==== */

typedef struct {
    float *x, *w, *y, *rstd;
    int N, D;
} norm_t;

static void norm_fwd(void *vc)
{
    norm_t *c = vc;
    train__rmsnorm_fwd(NULL, c->x, c->w, c->N, c->D, 1e-5f, c->y, c->rstd);
}

static void test_rmsnorm(void **state)
{
    (void)state;
    int N = 5, D = 12;
    norm_t c = {rand_buf((size_t)N * D, 1),
                rand_buf((size_t)D, 1),
                zero_buf((size_t)N * D),
                zero_buf((size_t)N),
                N,
                D};
    float *R = rand_buf((size_t)N * D, 1);
    float *dx = rand_buf((size_t)N * D, 1), *dx0 = malloc(sizeof(float) * N * D);
    float *dw = zero_buf((size_t)D);
    memcpy(dx0, dx, sizeof(float) * N * D);
    norm_fwd(&c);
    train__rmsnorm_bwd(NULL, c.x, c.w, c.rstd, R, N, D, dx, dw);
    for (int i = 0; i < N * D; i++) /* backward accumulates: take away what was there */
        dx[i] -= dx0[i];
    probe_t p = {norm_fwd, &c, c.y, R, (size_t)N * D};
    check_grad("rmsnorm dx", &p, c.x, (size_t)N * D, dx, 1e-3f);
    check_grad("rmsnorm dw", &p, c.w, (size_t)D, dw, 1e-3f);
    free(c.x), free(c.w), free(c.y), free(c.rstd), free(R), free(dx), free(dx0), free(dw);
}

/* ==== matmul (nn_sgemm, on a pool of 2 to cover the threaded path) ==== */

typedef struct {
    float *X, *W, *Y;
    int N, in, out;
    nn_pool_t *pool;
} mm_t;

static void mm_fwd(void *vc)
{
    mm_t *c = vc;
    train__matmul_fwd(c->pool, c->X, c->W, c->N, c->in, c->out, false, c->Y);
}

static void test_matmul(void **state)
{
    (void)state;
    nn_pool_t *pool = NULL;
    assert_int_equal(nn_pool_create(2, &pool), 0);
    int N = 6, in = 9, out = 7;
    mm_t c = {rand_buf((size_t)N * in, 1),
              rand_buf((size_t)out * in, 1),
              zero_buf((size_t)N * out),
              N,
              in,
              out,
              pool};
    float *R = rand_buf((size_t)N * out, 1), *dX = zero_buf((size_t)N * in);
    float *dW = zero_buf((size_t)out * in);
    train__matmul_bwd(pool, c.X, c.W, R, N, in, out, dX, false, dW, false);
    probe_t p = {mm_fwd, &c, c.Y, R, (size_t)N * out};
    check_grad("matmul dX", &p, c.X, (size_t)N * in, dX, 1e-2f);
    check_grad("matmul dW", &p, c.W, (size_t)out * in, dW, 1e-2f);
    /* accumulate flags: Y += X W^T, dX += dY W */
    float *Y2 = rand_buf((size_t)N * out, 1), *Y2c = malloc(sizeof(float) * N * out);
    memcpy(Y2c, Y2, sizeof(float) * N * out);
    train__matmul_fwd(pool, c.X, c.W, N, in, out, true, Y2);
    mm_fwd(&c);
    for (int i = 0; i < N * out; i++)
        assert_float_equal(Y2[i], Y2c[i] + c.Y[i], 1e-4);
    free(c.X), free(c.W), free(c.Y), free(R), free(dX), free(dW), free(Y2), free(Y2c);
    nn_pool_free(&pool);
}

/* ==== rope ==== */

typedef struct {
    float *x, *y, *cs, *sn;
    int N, T, H, E;
} rope_t;

static void rope_fwd(void *vc)
{
    rope_t *c = vc;
    memcpy(c->y, c->x, sizeof(float) * (size_t)c->N * c->H * c->E);
    train__rope(NULL, c->y, c->N, c->T, c->H, c->E, c->cs, c->sn, false);
}

static void test_rope(void **state)
{
    (void)state;
    int T = 5, N = 10, H = 3, E = 8, n = N * H * E;
    rope_t c = {rand_buf((size_t)n, 1),
                zero_buf((size_t)n),
                zero_buf((size_t)T * E / 2),
                zero_buf((size_t)T * E / 2),
                N,
                T,
                H,
                E};
    train__rope_table(T, E, 10000.0f, c.cs, c.sn);
    /* position 0 is the identity; position 1, pair 0 turns by exactly 1 radian */
    assert_float_equal(c.cs[0], 1.0f, 0);
    assert_float_equal(c.cs[E / 2], cosf(1.0f), 1e-6);
    /* forward values: (1, 0) at position 1, pair i turns into (cos, sin) of 1 * 10000^(-2i/E) */
    float one[2 * 8] = {0};
    for (int i = 0; i < E / 2; i++)
        one[E + 2 * i] = 1.0f;
    train__rope(NULL, one, 2, 2, 1, E, c.cs, c.sn, false);
    for (int i = 0; i < E / 2; i++) {
        double th = pow(10000.0, -2.0 * i / E);
        assert_float_equal(one[E + 2 * i], cos(th), 1e-6);
        assert_float_equal(one[E + 2 * i + 1], sin(th), 1e-6);
    }
    float *R = rand_buf((size_t)n, 1), *dx = malloc(sizeof(float) * n);
    memcpy(dx, R, sizeof(float) * n);
    train__rope(NULL, dx, N, T, H, E, c.cs, c.sn, true);
    probe_t p = {rope_fwd, &c, c.y, R, (size_t)n};
    check_grad("rope dx", &p, c.x, (size_t)n, dx, 1e-2f);
    free(c.x), free(c.y), free(c.cs), free(c.sn), free(R), free(dx);
}

/* ==== attention ==== */

typedef struct {
    float *q, *k, *v, *att, *out, *scratch;
    int B, T, H, G, E;
    nn_pool_t *pool;
} attn_t;

static void attn_fwd(void *vc)
{
    attn_t *c = vc;
    train__attn_fwd(c->pool, c->q, c->k, c->v, c->B, c->T, c->H, c->G, c->E, c->att, c->out,
                    c->scratch);
}

static void check_attention(int B, int T, int H, int G, int E, int threads)
{
    nn_pool_t *pool = NULL;
    assert_int_equal(nn_pool_create(threads, &pool), 0);
    int N = B * T, D = H * E, KD = G * E;
    attn_t c = {rand_buf((size_t)N * D, 1.5f),
                rand_buf((size_t)N * KD, 1.5f),
                rand_buf((size_t)N * KD, 1),
                zero_buf((size_t)B * H * T * T),
                zero_buf((size_t)N * D),
                zero_buf((size_t)threads * train__attn_scratch(T, E)),
                B,
                T,
                H,
                G,
                E,
                pool};
    float *R = rand_buf((size_t)N * D, 1);
    float *dq = zero_buf((size_t)N * D), *dk = zero_buf((size_t)N * KD),
          *dv = zero_buf((size_t)N * KD);
    attn_fwd(&c);
    /* causality: the first position attends only to itself */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            assert_float_equal(c.att[(((size_t)b * H + h) * T) * T], 1.0f, 1e-6);
    train__attn_bwd(pool, c.q, c.k, c.v, c.att, R, B, T, H, G, E, dq, dk, dv, c.scratch);
    probe_t p = {attn_fwd, &c, c.out, R, (size_t)N * D};
    check_grad("attention dq", &p, c.q, (size_t)N * D, dq, 1e-3f);
    check_grad("attention dk", &p, c.k, (size_t)N * KD, dk, 1e-3f);
    check_grad("attention dv", &p, c.v, (size_t)N * KD, dv, 1e-3f);
    free(c.q), free(c.k), free(c.v), free(c.att), free(c.out), free(c.scratch);
    free(R), free(dq), free(dk), free(dv);
    nn_pool_free(&pool);
}

static void test_attention(void **state)
{
    (void)state;
    for (int bs = 64; bs >= 2; bs -= 62) { /* one block; then blocks of 2 rows, the last short */
        train__attn_block = bs;
        check_attention(2, 5, 4, 2, 4, 1); /* grouped: 2 query heads per kv head */
        check_attention(3, 4, 2, 2, 6, 2); /* plain multi-head, threaded */
        check_attention(1, 7, 3, 1, 4, 2); /* multi-query */
    }
    train__attn_block = 64;
}

/* ==== SwiGLU ==== */

typedef struct {
    float *g, *u, *h;
    size_t n;
} swiglu_t;

static void swiglu_fwd(void *vc)
{
    swiglu_t *c = vc;
    train__swiglu_fwd(NULL, c->g, c->u, c->n, c->h);
}

static void test_swiglu(void **state)
{
    (void)state;
    size_t n = 40;
    swiglu_t c = {rand_buf(n, 3), rand_buf(n, 2), zero_buf(n), n};
    float *R = rand_buf(n, 1), *dg = zero_buf(n), *du = zero_buf(n);
    train__swiglu_bwd(NULL, c.g, c.u, R, n, dg, du);
    probe_t p = {swiglu_fwd, &c, c.h, R, n};
    check_grad("swiglu dg", &p, c.g, n, dg, 1e-3f);
    check_grad("swiglu du", &p, c.u, n, du, 1e-3f);
    free(c.g), free(c.u), free(c.h), free(R), free(dg), free(du);
}

/* ==== cross-entropy ==== */

typedef struct {
    float *logits, *work, *losses, loss;
    int32_t *tgt;
    int N, V;
} xent_t;

static void xent_fwd(void *vc)
{
    xent_t *c = vc;
    memcpy(c->work, c->logits, sizeof(float) * (size_t)c->N * c->V);
    c->loss = (float)train__xent(NULL, c->work, c->tgt, c->N, c->V, 1.0f / c->N, c->losses);
}

static void test_xent(void **state)
{
    (void)state;
    int N = 4, V = 11;
    int32_t tgt[4] = {0, 10, 5, 5};
    xent_t c = {
        rand_buf((size_t)N * V, 3), zero_buf((size_t)N * V), zero_buf((size_t)N), 0, tgt, N, V};
    xent_fwd(&c);
    /* the loss is -log softmax at the target, checked directly in double */
    double want = 0;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < V; j++)
            s += exp(c.logits[i * V + j]);
        want += log(s) - c.logits[i * V + tgt[i]];
    }
    assert_float_equal(c.loss, want / N, 1e-5);
    float *grad = malloc(sizeof(float) * N * V);
    memcpy(grad, c.work, sizeof(float) * N * V);
    float one = 1;
    /* the probe reads the loss as a 1-element output */
    probe_t p = {xent_fwd, &c, &c.loss, &one, 1};
    check_grad("xent dlogits", &p, c.logits, (size_t)N * V, grad, 1e-2f);
    free(c.logits), free(c.work), free(c.losses), free(grad);
}

/* Rows whose target is negative are context (train_params_t.loss_from): no loss, no gradient,
 * and the mean is over the predicted rows only. */
static void xent_masked_fwd(void *vc)
{
    xent_t *c = vc;
    memcpy(c->work, c->logits, sizeof(float) * (size_t)c->N * c->V);
    c->loss = (float)train__xent(NULL, c->work, c->tgt, c->N, c->V, 1.0f / 2, c->losses);
}

static void test_xent_masked(void **state)
{
    (void)state;
    int N = 4, V = 11;
    int32_t tgt[4] = {-1, 10, -1, 5};
    xent_t c = {
        rand_buf((size_t)N * V, 4), zero_buf((size_t)N * V), zero_buf((size_t)N), 0, tgt, N, V};
    xent_masked_fwd(&c);
    double want = 0;
    for (int i = 1; i < N; i += 2) {
        double s = 0;
        for (int j = 0; j < V; j++)
            s += exp(c.logits[i * V + j]);
        want += log(s) - c.logits[i * V + tgt[i]];
    }
    assert_float_equal(c.loss, want / 2, 1e-5);
    for (int j = 0; j < V; j++) {
        assert_true(c.work[0 * V + j] == 0.0f);
        assert_true(c.work[2 * V + j] == 0.0f);
    }
    assert_true(c.losses[0] == 0.0f && c.losses[2] == 0.0f);
    float *grad = malloc(sizeof(float) * N * V);
    memcpy(grad, c.work, sizeof(float) * N * V);
    float one = 1;
    probe_t p = {xent_masked_fwd, &c, &c.loss, &one, 1};
    check_grad("xent masked dlogits", &p, c.logits, (size_t)N * V, grad, 1e-2f);
    int32_t none[4] = {-1, -1, -1, -1};
    c.tgt = none;
    xent_masked_fwd(&c);
    assert_true(c.loss == 0.0f); /* nothing to predict: 0, not NaN */
    free(c.logits), free(c.work), free(c.losses), free(grad);
}

/* ==== AdamW, sum of squares ==== */

static void test_adamw(void **state)
{
    (void)state;
    nn_pool_t *pool = NULL;
    assert_int_equal(nn_pool_create(2, &pool), 0);
    size_t n = 1000;
    float *p = rand_buf(n, 1), *m = zero_buf(n), *v = zero_buf(n);
    double *pd = malloc(n * sizeof *pd), *md = calloc(n, sizeof *md), *vd = calloc(n, sizeof *vd);
    for (size_t i = 0; i < n; i++)
        pd[i] = p[i];
    float lr = 0.01f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
    for (int step = 1; step <= 5; step++) {
        float *g = rand_buf(n, 0.5f);
        train__adamw(pool, p, g, 0.5f, m, v, n, lr, b1, b2, eps, wd, step);
        for (size_t i = 0; i < n; i++) {
            double gi = 0.5 * g[i]; /* the clipping factor passed above */
            md[i] = b1 * md[i] + (1 - (double)b1) * gi;
            vd[i] = b2 * vd[i] + (1 - (double)b2) * gi * gi;
            double mh = md[i] / (1 - pow(b1, step)), vh = vd[i] / (1 - pow(b2, step));
            pd[i] -= lr * (mh / (sqrt(vh) + eps) + wd * pd[i]);
        }
        free(g);
    }
    for (size_t i = 0; i < n; i++)
        assert_float_equal(p[i], pd[i], 1e-5);
    /* sum of squares: fixed order, the same for 1 and 2 threads */
    size_t big = 100003;
    float *x = rand_buf(big, 1);
    double ref = 0;
    for (size_t i = 0; i < big; i++)
        ref += (double)x[i] * x[i];
    double s2 = train__sumsq(pool, x, big), s1 = train__sumsq(NULL, x, big);
    assert_true(s1 == s2);
    assert_float_equal(s1, ref, 1e-9 * ref);
    free(p), free(m), free(v), free(pd), free(md), free(vd), free(x);
    nn_pool_free(&pool);
}

/* ==== exp ==== */

static void test_exp(void **state)
{
    (void)state;
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.01237f) {
        double want = exp((double)x), got = train__exp(x);
        double rel = fabs(got - want) / want;
        worst = rel > worst ? rel : worst;
    }
    print_message("exp: worst relative error %.3g\n", worst);
    assert_true(worst < 5e-7);
    assert_true(train__exp(-1000.0f) < 1e-37f && train__exp(-1000.0f) >= 0);
    assert_true(isfinite(train__exp(1000.0f)));
    assert_float_equal(train__exp(0), 1.0f, 0);
    /* and AdamW's sqrt, over the range second moments take */
    worst = 0;
    for (double x = 1e-30; x < 1e10; x *= 1.0137) {
        double want = sqrt((double)(float)x), got = train__sqrt((float)x);
        double rel = fabs(got - want) / want;
        worst = rel > worst ? rel : worst;
    }
    print_message("sqrt: worst relative error %.3g\n", worst);
    assert_true(worst < 5e-7);
    assert_true(train__sqrt(0) == 0);
}

/* ==== the whole model ==== */

static void check_model(bool tied, int threads, int attn_block)
{
    train__attn_block = attn_block;
    nn_pool_t *pool = NULL;
    assert_int_equal(nn_pool_create(threads, &pool), 0);
    llm_config_t c = {.n_vocab = 50,
                      .n_ctx = 16,
                      .dim = 32,
                      .n_layers = 2,
                      .n_heads = 4,
                      .n_kv_heads = 2,
                      .ffn_dim = 64,
                      .rope_base = 10000.0f,
                      .norm_eps = 1e-5f,
                      .tied_output = tied};
    int B = 2, T = 6;
    train__model_t m;
    char err[256];
    assert_int_equal(train__model_init(&m, &c, B, T, false, pool, err, sizeof err), 0);
    train__model_init_weights(&m, 7);
    /* larger weights than training starts from, so that every op is far from linear and the
     * gradients are large against float rounding */
    for (int i = 0; i < m.n_tensors; i++) {
        const train__tensor_t *t = &m.tensors[i];
        for (size_t j = 0; j < t->rows * t->cols; j++)
            m.w[t->off + j] = t->matrix ? m.w[t->off + j] * 15 : 1.0f + 0.3f * urand();
    }
    int32_t ids[12], tgt[12];
    for (int i = 0; i < B * T; i++) {
        ids[i] = (int32_t)(train__rng_next(&rng) % (uint64_t)c.n_vocab);
        tgt[i] = (int32_t)(train__rng_next(&rng) % (uint64_t)c.n_vocab);
    }
    memset(m.g, 0, m.n_params * sizeof(float));
    double loss = train__model_step(&m, ids, tgt, B, true);
    assert_true(loss > 1 && loss < 20);
    /* per tensor: the 3 largest gradients and 3 random elements */
    int checked = 0, bad = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const train__tensor_t *t = &m.tensors[i];
        size_t n = t->rows * t->cols, pick[6];
        for (int r = 0; r < 3; r++) {
            size_t best = 0;
            float bv = -1;
            for (size_t j = 0; j < n; j++) {
                float a = fabsf(m.g[t->off + j]);
                bool taken = false;
                for (int q = 0; q < r; q++)
                    taken |= pick[q] == j;
                if (!taken && a > bv)
                    bv = a, best = j;
            }
            pick[r] = best;
        }
        for (int r = 3; r < 6; r++)
            pick[r] = (size_t)(train__rng_next(&rng) % n);
        for (int r = 0; r < 6; r++) {
            float *w = &m.w[t->off + pick[r]], w0 = *w, h = 1e-2f * fmaxf(1.0f, fabsf(w0));
            *w = w0 + h;
            double lp = train__model_step(&m, ids, tgt, B, false);
            *w = w0 - h;
            double lm = train__model_step(&m, ids, tgt, B, false);
            *w = w0;
            double num = (lp - lm) / (2.0 * h), a = m.g[t->off + pick[r]];
            double tol = 1e-2 * fmax(fabs(a), fabs(num)) + 2e-4;
            checked++;
            if (fabs(num - a) > tol) {
                bad++;
                print_error("%s %s[%zu]: analytic %.6g numeric %.6g\n", tied ? "tied" : "untied",
                            t->name, pick[r], a, num);
            }
        }
    }
    assert_true(checked >= 6 * 20);
    assert_int_equal(bad, 0);
    train__model_destroy(&m);
    nn_pool_free(&pool);
}

static void test_model_untied(void **state)
{
    (void)state;
    check_model(false, 1, 64);
}

static void test_model_tied(void **state)
{
    (void)state;
    check_model(true, 2, 4); /* attention in blocks of 4 rows */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding),  cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_matmul),     cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention),  cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_xent),       cmocka_unit_test(test_xent_masked),       cmocka_unit_test(test_exp),
        cmocka_unit_test(test_adamw),      cmocka_unit_test(test_model_untied),
        cmocka_unit_test(test_model_tied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
