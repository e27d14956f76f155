/* tests/llm: unit tests of src/llm — the forward pass against a naive reference written here
 * independently (plain loops, double accumulation, weights read back from the GGUF file),
 * batched against token-by-token evaluation, quantized types against F32, save/load/re-type
 * round trips, sampling, the generator's text rules (stop strings, UTF-8 hold-back, limits) on a
 * model whose weights make it a known Markov chain, damaged files, and a file written by another
 * tool (tests/llm/write_gguf.py, Python's standard library only). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "llm/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define LLM_SAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LLM_SAN 1
#endif
#endif
#ifndef LLM_SAN
#define LLM_SAN 0
#endif

static char g_tmp[512];

static const char *tmp_path(const char *name)
{
    static char buf[4][700];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", g_tmp, name);
    return b;
}

static llm_config_t small_config(bool tied)
{
    llm_config_t c = {.n_vocab = 300,
                      .n_ctx = 64,
                      .dim = 64,
                      .n_layers = 2,
                      .n_heads = 4,
                      .n_kv_heads = 2,
                      .ffn_dim = 96,
                      .rope_base = 10000.0f,
                      .norm_eps = 1e-5f,
                      .tied_output = tied};
    return c;
}

/* ================================ naive reference ================================ */

static float ref_half(uint16_t h)
{
    int e = (h >> 10) & 31, mant = h & 1023;
    double v = e == 0 ? ldexp(mant, -24) : e == 31 ? (mant ? NAN : INFINITY) : ldexp(mant + 1024, e - 25);
    return (float)((h >> 15) ? -v : v);
}

/* A tensor of an F32/F16 file as floats, checked to hold n elements. */
static float *ref_get(const gguf_t *g, const char *name, size_t n)
{
    const gguf_tensor_t *t = gguf_find_tensor(g, name);
    if (!t)
        fail_msg("reference: %s missing", name);
    float *o = malloc(n * sizeof *o);
    assert_non_null(o);
    if (t->type == NN_F32) {
        assert_int_equal(t->size, n * 4);
        memcpy(o, t->data, n * 4);
    } else if (t->type == NN_F16) {
        assert_int_equal(t->size, n * 2);
        const uint8_t *b = t->data;
        for (size_t i = 0; i < n; i++)
            o[i] = ref_half((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
    } else {
        fail_msg("reference: %s has type %u", name, t->type);
    }
    return o;
}

typedef struct {
    llm_config_t c;
    float *embd, *onorm, *out;
    float *an[8], *q[8], *k[8], *v[8], *o[8], *fn[8], *gt[8], *up[8], *dn[8];
} ref_t;

static void ref_load(ref_t *r, const gguf_t *g, const llm_config_t *c)
{
    size_t D = (size_t)c->dim, F = (size_t)c->ffn_dim, V = (size_t)c->n_vocab;
    size_t KD = D / (size_t)c->n_heads * (size_t)c->n_kv_heads;
    char n[64];
    assert_true(c->n_layers <= 8);
    r->c = *c;
    r->embd = ref_get(g, "token_embd.weight", V * D);
    r->onorm = ref_get(g, "output_norm.weight", D);
    r->out = ref_get(g, gguf_find_tensor(g, "output.weight") ? "output.weight" : "token_embd.weight", V * D);
#define REF(field, what, cnt)                                                                     \
    snprintf(n, sizeof n, "blk.%d.%s.weight", l, what);                                           \
    r->field[l] = ref_get(g, n, cnt)
    for (int l = 0; l < c->n_layers; l++) {
        REF(an, "attn_norm", D);
        REF(q, "attn_q", D * D);
        REF(k, "attn_k", D * KD);
        REF(v, "attn_v", D * KD);
        REF(o, "attn_output", D * D);
        REF(fn, "ffn_norm", D);
        REF(gt, "ffn_gate", D * F);
        REF(up, "ffn_up", D * F);
        REF(dn, "ffn_down", F * D);
    }
#undef REF
}

static void ref_free(ref_t *r)
{
    free(r->embd);
    free(r->onorm);
    free(r->out);
    for (int l = 0; l < r->c.n_layers; l++) {
        free(r->an[l]), free(r->q[l]), free(r->k[l]), free(r->v[l]), free(r->o[l]);
        free(r->fn[l]), free(r->gt[l]), free(r->up[l]), free(r->dn[l]);
    }
}

/* y[out] = W[out][in] . x[in] */
static void ref_mv(const float *W, const double *x, size_t in, size_t out, double *y)
{
    for (size_t r = 0; r < out; r++) {
        double s = 0;
        for (size_t i = 0; i < in; i++)
            s += (double)W[r * in + i] * x[i];
        y[r] = s;
    }
}

static void ref_norm(const double *x, const float *w, size_t D, double eps, double *y)
{
    double ss = 0;
    for (size_t i = 0; i < D; i++)
        ss += x[i] * x[i];
    double sc = 1.0 / sqrt(ss / (double)D + eps);
    for (size_t i = 0; i < D; i++)
        y[i] = x[i] * sc * w[i];
}

/* The logits after the whole sequence, recomputed from scratch (no cache). */
static void ref_forward(const ref_t *r, const int32_t *toks, size_t n, double *logits)
{
    const llm_config_t *c = &r->c;
    size_t D = (size_t)c->dim, F = (size_t)c->ffn_dim, H = (size_t)c->n_heads;
    size_t S = D / H, KD = S * (size_t)c->n_kv_heads, grp = H / (size_t)c->n_kv_heads;
    double *X = calloc(n * D, 8), *XB = calloc(n * D, 8), *Q = calloc(n * D, 8);
    double *K = calloc(n * KD, 8), *Vv = calloc(n * KD, 8), *A = calloc(n * D, 8);
    double *G = calloc(F, 8), *U = calloc(F, 8), *T = calloc(D > F ? D : F, 8);
    double *sc = calloc(n, 8);
    for (size_t p = 0; p < n; p++)
        for (size_t i = 0; i < D; i++)
            X[p * D + i] = r->embd[(size_t)toks[p] * D + i];
    for (int l = 0; l < c->n_layers; l++) {
        for (size_t p = 0; p < n; p++) {
            ref_norm(X + p * D, r->an[l], D, c->norm_eps, XB + p * D);
            ref_mv(r->q[l], XB + p * D, D, D, Q + p * D);
            ref_mv(r->k[l], XB + p * D, D, KD, K + p * KD);
            ref_mv(r->v[l], XB + p * D, D, KD, Vv + p * KD);
            for (size_t h = 0; h < H + (size_t)c->n_kv_heads; h++) {
                double *v = h < H ? Q + p * D + h * S : K + p * KD + (h - H) * S;
                for (size_t i = 0; i < S / 2; i++) {
                    double th = (double)p * pow(c->rope_base, -2.0 * (double)i / (double)S);
                    double a = v[2 * i], b = v[2 * i + 1];
                    v[2 * i] = a * cos(th) - b * sin(th);
                    v[2 * i + 1] = a * sin(th) + b * cos(th);
                }
            }
        }
        for (size_t p = 0; p < n; p++)
            for (size_t h = 0; h < H; h++) {
                size_t kh = h / grp;
                double mx = -INFINITY, sum = 0;
                for (size_t t = 0; t <= p; t++) {
                    double s = 0;
                    for (size_t i = 0; i < S; i++)
                        s += Q[p * D + h * S + i] * K[t * KD + kh * S + i];
                    sc[t] = s / sqrt((double)S);
                    if (sc[t] > mx)
                        mx = sc[t];
                }
                for (size_t t = 0; t <= p; t++)
                    sum += (sc[t] = exp(sc[t] - mx));
                for (size_t i = 0; i < S; i++) {
                    double o = 0;
                    for (size_t t = 0; t <= p; t++)
                        o += sc[t] / sum * Vv[t * KD + kh * S + i];
                    A[p * D + h * S + i] = o;
                }
            }
        for (size_t p = 0; p < n; p++) {
            ref_mv(r->o[l], A + p * D, D, D, T);
            for (size_t i = 0; i < D; i++)
                X[p * D + i] += T[i];
            ref_norm(X + p * D, r->fn[l], D, c->norm_eps, XB + p * D);
            ref_mv(r->gt[l], XB + p * D, D, F, G);
            ref_mv(r->up[l], XB + p * D, D, F, U);
            for (size_t i = 0; i < F; i++)
                G[i] = G[i] / (1.0 + exp(-G[i])) * U[i];
            ref_mv(r->dn[l], G, F, D, T);
            for (size_t i = 0; i < D; i++)
                X[p * D + i] += T[i];
        }
    }
    ref_norm(X + (n - 1) * D, r->onorm, D, c->norm_eps, XB);
    ref_mv(r->out, XB, D, (size_t)c->n_vocab, logits);
    free(X), free(XB), free(Q), free(K), free(Vv), free(A), free(G), free(U), free(T), free(sc);
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const double *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mb = fmax(mb, fabs(b[i]));
    }
    return md / (mb > 0 ? mb : 1);
}

static double rel_err_f(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    return md / (mb > 0 ? mb : 1);
}

static double cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static void some_tokens(int32_t *t, size_t n, int vocab, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        t[i] = (int32_t)((seed >> 8) % (uint32_t)vocab);
    }
}

/* Logits of llm_eval over toks in one batch. */
static float *eval_logits(const llm_model_t *m, nn_pool_t *pool, const int32_t *toks, size_t n)
{
    llm_ctx_t *c;
    float *lg = malloc((size_t)llm_model_config(m)->n_vocab * sizeof *lg);
    assert_int_equal(llm_ctx_new(m, 0, &c), 0);
    assert_int_equal(llm_eval(c, pool, toks, n, lg), 0);
    assert_int_equal(llm_ctx_pos(c), (int)n);
    llm_ctx_free(&c);
    return lg;
}

/* ================================ configuration ================================ */

static void test_config(void **state)
{
    char err[256];
    llm_config_t c = small_config(false);
    assert_int_equal(llm_config_check(&c, err, sizeof err), 0);
    /* params: embd + out + layers * (2 norms + q + o + k + v + 3 ffn) + final norm */
    uint64_t D = 64, F = 96, V = 300, KD = 32;
    assert_true(llm_config_params(&c) == 2 * V * D + 2 * (2 * D + 2 * D * D + 2 * D * KD + 3 * D * F) + D);
    c.tied_output = true;
    assert_true(llm_config_params(&c) == V * D + 2 * (2 * D + 2 * D * D + 2 * D * KD + 3 * D * F) + D);
    llm_config_t bad = small_config(false);
    bad.n_kv_heads = 3;
    assert_int_equal(llm_config_check(&bad, err, sizeof err), -1);
    bad = small_config(false);
    bad.dim = 72; /* not a multiple of 32 */
    bad.n_heads = 4;
    assert_int_equal(llm_config_check(&bad, err, sizeof err), -1);
    bad = small_config(false);
    bad.n_heads = 64; /* head_dim 1: odd */
    bad.n_kv_heads = 64;
    assert_int_equal(llm_config_check(&bad, err, sizeof err), -1);
    bad = small_config(false);
    bad.n_layers = 0;
    assert_int_equal(llm_config_check(&bad, err, sizeof err), -1);
    bad = small_config(false);
    bad.norm_eps = NAN;
    assert_int_equal(llm_config_check(&bad, err, sizeof err), -1);
    char name[64];
    llm_tensor_name(name, sizeof name, 3, "attn_q");
    assert_string_equal(name, "blk.3.attn_q.weight");
    llm_tensor_name(name, sizeof name, -1, "output_norm");
    assert_string_equal(name, "output_norm.weight");
}

/* ================================ forward pass ================================ */

static void check_reference(bool tied, nn_pool_t *pool)
{
    char err[256];
    llm_config_t cfg = small_config(tied);
    llm_model_t *m, *m2;
    assert_int_equal(llm_random(&cfg, NN_F32, 11, NULL, &m), 0);
    const char *path = tmp_path(tied ? "ref_tied.gguf" : "ref.gguf");
    if (llm_save(m, path, err, sizeof err))
        fail_msg("save: %s", err);
    if (llm_load(path, &m2, err, sizeof err))
        fail_msg("load: %s", err);
    assert_int_equal(llm_model_config(m2)->tied_output, tied);
    gguf_t *g;
    assert_int_equal(gguf_open(path, &g, err, sizeof err), 0);
    ref_t r;
    ref_load(&r, g, &cfg);
    int32_t toks[24];
    some_tokens(toks, 24, cfg.n_vocab, 5);
    size_t lens[] = {1, 2, 9, 24};
    double *want = malloc((size_t)cfg.n_vocab * sizeof *want);
    for (size_t k = 0; k < 4; k++) {
        ref_forward(&r, toks, lens[k], want);
        float *got = eval_logits(m2, pool, toks, lens[k]);
        double e = rel_err(got, want, (size_t)cfg.n_vocab);
        if (e > 1e-4)
            fail_msg("n=%zu tied=%d: relative error %g vs the reference", lens[k], tied, e);
        free(got);
    }
    free(want);
    ref_free(&r);
    gguf_close(&g);
    llm_free(&m);
    llm_free(&m2);
}

static void test_reference(void **state)
{
    nn_pool_t *pool;
    assert_int_equal(nn_pool_create(2, &pool), 0);
    check_reference(false, NULL);
    check_reference(true, pool);
    nn_pool_free(&pool);
}

/* The batch path (matmul, batched attention, micro-batches) against one token at a time. */
static void check_batch(nn_type_t type, int n_ctx, size_t n, double tol, nn_pool_t *pool)
{
    llm_config_t cfg = small_config(false);
    cfg.n_ctx = n_ctx;
    llm_model_t *m;
    assert_int_equal(llm_random(&cfg, type, 3, NULL, &m), 0);
    int32_t *toks = malloc(n * sizeof *toks);
    some_tokens(toks, n, cfg.n_vocab, 9);
    float *batch = eval_logits(m, pool, toks, n);
    llm_ctx_t *c;
    float *one = malloc((size_t)cfg.n_vocab * sizeof *one);
    assert_int_equal(llm_ctx_new(m, 0, &c), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(llm_eval(c, pool, toks + i, 1, i + 1 == n ? one : NULL), 0);
    double e = rel_err_f(batch, one, (size_t)cfg.n_vocab);
    if (e > tol)
        fail_msg("%s n=%zu: batch vs single relative error %g", nn_type_name(type), n, e);
    /* The separate products (files whose matrices are not back to back) give the same. */
    for (int l = 0; l < cfg.n_layers; l++)
        m->layers[l].fused_qkv = m->layers[l].fused_gate_up = false;
    float *unfused = eval_logits(m, pool, toks, n);
    e = rel_err_f(unfused, batch, (size_t)cfg.n_vocab);
    if (e > tol)
        fail_msg("%s n=%zu: unfused relative error %g", nn_type_name(type), n, e);
    llm_ctx_reset(c);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(llm_eval(c, pool, toks + i, 1, i + 1 == n ? unfused : NULL), 0);
    e = rel_err_f(unfused, batch, (size_t)cfg.n_vocab);
    if (e > tol)
        fail_msg("%s n=%zu: unfused single relative error %g", nn_type_name(type), n, e);
    free(unfused);
    /* A batch split in two calls continues the same cache. */
    llm_ctx_reset(c);
    assert_int_equal(llm_eval(c, pool, toks, n / 2, NULL), 0);
    assert_int_equal(llm_eval(c, pool, toks + n / 2, n - n / 2, one), 0);
    e = rel_err_f(batch, one, (size_t)cfg.n_vocab);
    if (e > tol)
        fail_msg("%s n=%zu: two batches relative error %g", nn_type_name(type), n, e);
    /* Overflow and bad ids are refused and change nothing. */
    int32_t *more = calloc((size_t)n_ctx - n + 1, sizeof *more);
    assert_int_equal(llm_eval(c, pool, more, (size_t)n_ctx - n + 1, one), -1);
    assert_int_equal(llm_ctx_pos(c), (int)n);
    free(more);
    llm_ctx_reset(c);
    int32_t bad[2] = {1, cfg.n_vocab};
    assert_int_equal(llm_eval(c, pool, bad, 2, one), -1);
    bad[1] = -1;
    assert_int_equal(llm_eval(c, pool, bad, 2, one), -1);
    assert_int_equal(llm_ctx_pos(c), 0);
    llm_ctx_free(&c);
    free(one);
    free(batch);
    free(toks);
    llm_free(&m);
}

static void test_batch(void **state)
{
    nn_pool_t *pool;
    assert_int_equal(nn_pool_create(2, &pool), 0);
    check_batch(NN_F32, 64, 64, 1e-4, NULL);
    check_batch(NN_F32, 64, 40, 1e-4, pool);
    /* More than one micro-batch (256 rows). */
    check_batch(NN_F32, 600, LLM_SAN ? 300 : 600, 1e-4, pool);
    check_batch(NN_F16, 64, 33, 1e-3, pool);
    check_batch(NN_Q8_0, 64, 33, 2e-2, pool);
    check_batch(NN_Q4_0, 64, 33, 2e-2, pool);
    nn_pool_free(&pool);
}

static void test_quantized(void **state)
{
    char err[256];
    llm_config_t cfg = small_config(false);
    int32_t toks[16];
    some_tokens(toks, 16, cfg.n_vocab, 21);
    llm_model_t *m32, *mq;
    assert_int_equal(llm_random(&cfg, NN_F32, 77, NULL, &m32), 0);
    float *ref = eval_logits(m32, NULL, toks, 16);
    const nn_type_t types[] = {NN_F16, NN_Q8_0, NN_Q4_0};
    const double min_cos[] = {0.999, 0.99, 0.95};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(llm_random(&cfg, types[k], 77, NULL, &mq), 0);
        assert_int_equal(llm_model_type(mq), types[k]);
        float *lq = eval_logits(mq, NULL, toks, 16);
        double cs = cosine(lq, ref, (size_t)cfg.n_vocab);
        if (cs < min_cos[k])
            fail_msg("%s: cosine %f with f32", nn_type_name(types[k]), cs);
        /* The same weights re-typed from the F32 file give the same model, bit for bit. */
        const char *in = tmp_path("q_in.gguf"), *out = tmp_path("q_out.gguf");
        if (llm_save(m32, in, err, sizeof err) || llm_quantize_file(in, out, types[k], err, sizeof err))
            fail_msg("quantize: %s", err);
        llm_model_t *ml;
        if (llm_load(out, &ml, err, sizeof err))
            fail_msg("load quantized: %s", err);
        assert_int_equal(llm_model_type(ml), types[k]);
        gguf_t *g;
        assert_int_equal(gguf_open(out, &g, err, sizeof err), 0);
        uint32_t ft;
        assert_true(gguf_get_u32(g, "general.file_type", &ft));
        assert_int_equal(ft, types[k] == NN_F16 ? 1 : types[k] == NN_Q8_0 ? 7 : 2);
        assert_int_equal(gguf_find_tensor(g, "output_norm.weight")->type, NN_F32);
        assert_int_equal(gguf_find_tensor(g, "token_embd.weight")->type, types[k]);
        gguf_close(&g);
        float *ll = eval_logits(ml, NULL, toks, 16);
        assert_memory_equal(ll, lq, (size_t)cfg.n_vocab * sizeof(float));
        free(ll);
        llm_free(&ml);
        free(lq);
        llm_free(&mq);
    }
    /* Back from Q4_0 to F32: the same weights, exactly representable, give nearly the same
     * logits (only the Q8_0 rounding of the activations in Q4_0 products differs). */
    llm_model_t *mb, *m4;
    if (llm_quantize_file(tmp_path("q_out.gguf"), tmp_path("q_back.gguf"), NN_F32, err, sizeof err) ||
        llm_load(tmp_path("q_back.gguf"), &mb, err, sizeof err) ||
        llm_load(tmp_path("q_out.gguf"), &m4, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(llm_model_type(mb), NN_F32);
    float *lb = eval_logits(mb, NULL, toks, 16), *l4 = eval_logits(m4, NULL, toks, 16);
    assert_true(cosine(lb, l4, (size_t)cfg.n_vocab) > 0.999);
    free(lb), free(l4);
    llm_free(&mb), llm_free(&m4);
    assert_int_equal(llm_quantize_file(tmp_path("q_in.gguf"), tmp_path("q_bad.gguf"), (nn_type_t)5,
                                       err, sizeof err),
                     -1);
    assert_int_equal(llm_quantize_file(tmp_path("nonexistent.gguf"), tmp_path("q_bad.gguf"), NN_Q8_0,
                                       err, sizeof err),
                     -1);
    assert_int_equal(access(tmp_path("q_bad.gguf"), F_OK), -1);
    free(ref);
    llm_free(&m32);
}

static void test_save_load(void **state)
{
    char err[256];
    const nn_type_t types[] = {NN_F32, NN_Q4_0};
    for (int k = 0; k < 2; k++) {
        llm_config_t cfg = small_config(k == 1);
        llm_model_t *m, *m2, *m3;
        assert_int_equal(llm_random(&cfg, types[k], 5, NULL, &m), 0);
        const char *p1 = tmp_path("sl1.gguf"), *p2 = tmp_path("sl2.gguf");
        if (llm_save(m, p1, err, sizeof err) || llm_load(p1, &m2, err, sizeof err))
            fail_msg("%s", err);
        /* A loaded model saves again (its keys kept) and loads the same. */
        if (llm_save(m2, p2, err, sizeof err) || llm_load(p2, &m3, err, sizeof err))
            fail_msg("%s", err);
        /* Written in llama.cpp's order, q/k/v and gate/up lie back to back: one product each
         * when generating (the token-by-token tests then cover the fused path). */
        assert_true(m->layers[1].fused_qkv && m->layers[1].fused_gate_up);
        assert_true(m2->layers[1].fused_qkv && m2->layers[1].fused_gate_up);
        const llm_config_t *c2 = llm_model_config(m3);
        assert_int_equal(c2->dim, cfg.dim);
        assert_int_equal(c2->n_kv_heads, cfg.n_kv_heads);
        assert_int_equal(c2->tied_output, cfg.tied_output);
        assert_int_equal(tok_vocab_size(llm_model_tok(m3)), tok_vocab_size(llm_model_tok(m)));
        int32_t toks[10];
        some_tokens(toks, 10, cfg.n_vocab, 1);
        float *a = eval_logits(m, NULL, toks, 10), *b = eval_logits(m2, NULL, toks, 10),
              *c = eval_logits(m3, NULL, toks, 10);
        assert_memory_equal(a, b, (size_t)cfg.n_vocab * sizeof(float));
        assert_memory_equal(a, c, (size_t)cfg.n_vocab * sizeof(float));
        free(a), free(b), free(c);
        llm_free(&m), llm_free(&m2), llm_free(&m3);
    }
}

/* ================================ damaged files ================================ */

typedef enum {
    DMG_SHAPE,
    DMG_MISSING,
    DMG_NORM_TYPE,
    DMG_ROPE,
    DMG_ARCH,
    DMG_KV_HEADS,
    DMG_HUGE_LAYERS,
    DMG_HUGE_CTX,
    DMG_MORE_LAYERS,
    DMG_BIG_TOK,
} dmg_t;

/* Rewrites a good file with one thing wrong. */
static void write_damaged(const char *good, const char *out, dmg_t what)
{
    char err[256];
    gguf_t *g;
    assert_int_equal(gguf_open(good, &g, err, sizeof err), 0);
    gguf_writer_t *w = gguf_writer_new();
    assert_int_equal(gguf_writer_copy_kv(w, g, NULL), 0);
    if (what == DMG_ROPE)
        assert_int_equal(gguf_writer_set_u32(w, "llama.rope.dimension_count", 8), 0);
    if (what == DMG_ARCH)
        assert_int_equal(gguf_writer_set_str(w, "general.architecture", "gpt2", 4), 0);
    if (what == DMG_KV_HEADS)
        assert_int_equal(gguf_writer_set_u32(w, "llama.attention.head_count_kv", 3), 0);
    if (what == DMG_HUGE_LAYERS)
        assert_int_equal(gguf_writer_set_u64(w, "llama.block_count", (uint64_t)1 << 40), 0);
    if (what == DMG_HUGE_CTX)
        assert_int_equal(gguf_writer_set_u32(w, "llama.context_length", 1u << 31), 0);
    if (what == DMG_MORE_LAYERS)
        assert_int_equal(gguf_writer_set_u32(w, "llama.block_count", 3), 0);
    if (what == DMG_BIG_TOK)
        assert_int_equal(gguf_writer_set_u32(w, "llama.vocab_size", 256), 0);
    float *norm_f16 = NULL;
    for (size_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor_t *t = gguf_tensor(g, i);
        uint64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (!strcmp(t->name, "blk.1.ffn_up.weight")) {
            if (what == DMG_MISSING)
                continue;
            if (what == DMG_SHAPE) {
                /* Same bytes, rows and columns swapped in the header. */
                ne[0] = t->ne[1] * t->ne[0] / 32;
                ne[1] = 32;
            }
        }
        if (what == DMG_NORM_TYPE && !strcmp(t->name, "blk.0.ffn_norm.weight")) {
            norm_f16 = calloc(t->ne[0], 2);
            assert_int_equal(gguf_writer_add_tensor(w, t->name, NN_F16, 1, ne, norm_f16), 0);
            continue;
        }
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data), 0);
    }
    if (gguf_writer_write(w, out, err, sizeof err))
        fail_msg("write damaged: %s", err);
    gguf_writer_free(&w);
    free(norm_f16);
    gguf_close(&g);
}

static void expect_load_error(const char *path, const char *needle)
{
    char err[256] = "";
    llm_model_t *m = (llm_model_t *)1;
    assert_int_equal(llm_load(path, &m, err, sizeof err), -1);
    assert_null(m);
    assert_non_null(strchr(err, '\0'));
    assert_null(strchr(err, '\n'));
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not say \"%s\"", err, needle);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void test_damaged(void **state)
{
    char err[256];
    llm_config_t cfg = small_config(false);
    llm_model_t *m;
    assert_int_equal(llm_random(&cfg, NN_F32, 1, NULL, &m), 0);
    const char *good = tmp_path("good.gguf"), *bad = tmp_path("bad.gguf");
    if (llm_save(m, good, err, sizeof err))
        fail_msg("%s", err);
    llm_free(&m);
    write_damaged(good, bad, DMG_SHAPE);
    expect_load_error(bad, "blk.1.ffn_up.weight: shape [192, 32] expected [64, 96]");
    write_damaged(good, bad, DMG_MISSING);
    expect_load_error(bad, "blk.1.ffn_up.weight: missing");
    write_damaged(good, bad, DMG_NORM_TYPE);
    expect_load_error(bad, "blk.0.ffn_norm.weight: type f16 expected f32");
    write_damaged(good, bad, DMG_ROPE);
    expect_load_error(bad, "llama.rope.dimension_count");
    write_damaged(good, bad, DMG_ARCH);
    expect_load_error(bad, "gpt2");
    write_damaged(good, bad, DMG_KV_HEADS);
    expect_load_error(bad, "kv heads");
    write_damaged(good, bad, DMG_HUGE_LAYERS);
    expect_load_error(bad, "llama.block_count");
    write_damaged(good, bad, DMG_HUGE_CTX);
    expect_load_error(bad, "llama.context_length");
    write_damaged(good, bad, DMG_MORE_LAYERS);
    expect_load_error(bad, "blk.2.attn_norm.weight: missing");
    write_damaged(good, bad, DMG_BIG_TOK); /* the tensors say 300, the key 256 */
    expect_load_error(bad, "token_embd.weight: shape [64, 300] expected [64, 256]");
    expect_load_error(tmp_path("does-not-exist.gguf"), "");

    char *data;
    size_t len;
    assert_int_equal(core_read_file(good, 64 << 20, &data, &len), 0);
    /* Truncated at many points, all the way down to nothing. */
    size_t cuts[] = {0, 3, 4, 8, 24, 100, len / 3, len / 2, len - 100, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        write_bytes(bad, data, cuts[i]);
        expect_load_error(bad, "");
    }
    /* Random bytes, and random bytes behind a real magic and version. */
    uint32_t s = 99;
    char *rnd = malloc(4096);
    for (int k = 0; k < 20; k++) {
        for (int i = 0; i < 4096; i++) {
            s = s * 1664525u + 1013904223u;
            rnd[i] = (char)(s >> 24);
        }
        if (k % 2)
            memcpy(rnd, "GGUF\3\0\0\0", 8);
        write_bytes(bad, rnd, 512 + (size_t)k * 150);
        expect_load_error(bad, "");
    }
    /* Bytes flipped inside the header of a good file: an error or a model, never a crash. */
    for (int k = 0; k < (LLM_SAN ? 40 : 200); k++) {
        char *copy = malloc(len);
        memcpy(copy, data, len);
        s = s * 1664525u + 1013904223u;
        size_t at = (s >> 8) % 4096;
        copy[at] ^= (char)(1 + (s & 0x7f));
        write_bytes(bad, copy, len);
        free(copy);
        llm_model_t *mm = NULL;
        if (llm_load(bad, &mm, err, sizeof err) == 0) {
            /* A small cache: a flipped context length must not make this test allocate much. */
            int32_t t[3] = {1, 2, 3};
            float *lg = malloc((size_t)llm_model_config(mm)->n_vocab * sizeof *lg);
            llm_ctx_t *cx;
            assert_int_equal(llm_ctx_new(mm, 8, &cx), 0);
            assert_int_equal(llm_eval(cx, NULL, t, 3, lg), 0);
            llm_ctx_free(&cx);
            free(lg);
            llm_free(&mm);
        }
    }
    free(rnd);
    free(data);
}

/* ================================ sampling ================================ */

static void test_sampler(void **state)
{
    llm_sampling_t sp;
    llm_sampling_default(&sp);
    assert_true(sp.temperature > 0.79f && sp.temperature < 0.81f);
    assert_int_equal(sp.top_k, 40);
    llm_sampler_t *s;
    /* Repetition penalty, llama.cpp style, each distinct token once, greedy afterwards. */
    sp.temperature = 0;
    sp.repeat_penalty = 2.0f;
    sp.repeat_last_n = 3;
    assert_int_equal(llm_sampler_new(&sp, 5, &s), 0);
    float lg[5] = {1.0f, 4.0f, -1.0f, 3.0f, 2.5f};
    int32_t hist[] = {1, 0, 1, 1, 2};
    /* last 3: {1, 1, 2}: 4 -> 2, -1 -> -2; token 0 is outside the window */
    assert_int_equal(llm_sample(s, lg, hist, 5), 3);
    assert_true(lg[1] == 2.0f && lg[2] == -2.0f && lg[0] == 1.0f);
    llm_sampler_free(&s);
    assert_null(s);

    /* top_k = 1 is greedy whatever the temperature and seed. */
    llm_sampling_default(&sp);
    sp.top_k = 1;
    sp.repeat_penalty = 1.0f;
    float big[300];
    for (int i = 0; i < 300; i++)
        big[i] = sinf((float)i * 0.37f);
    int best = 0;
    for (int i = 1; i < 300; i++)
        if (big[i] > big[best])
            best = i;
    for (uint64_t seed = 0; seed < 10; seed++) {
        sp.seed = seed;
        assert_int_equal(llm_sampler_new(&sp, 300, &s), 0);
        float tmp[300];
        memcpy(tmp, big, sizeof tmp);
        assert_int_equal(llm_sample(s, tmp, NULL, 0), best);
        llm_sampler_free(&s);
    }
    /* min_p: with one logit far above the rest, only it survives. */
    llm_sampling_default(&sp);
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.1f;
    sp.temperature = 5.0f;
    sp.repeat_penalty = 1.0f;
    assert_int_equal(llm_sampler_new(&sp, 300, &s), 0);
    for (int k = 0; k < 50; k++) {
        float tmp[300];
        for (int i = 0; i < 300; i++)
            tmp[i] = 0.0f;
        tmp[123] = 5.0f; /* e^-5 < 0.1 */
        assert_int_equal(llm_sample(s, tmp, NULL, 0), 123);
    }
    llm_sampler_free(&s);
    /* top_p: two tokens hold ~all the mass; only they are drawn, and both are. */
    sp.min_p = 0.0f;
    sp.top_p = 0.9f;
    sp.temperature = 1.0f;
    assert_int_equal(llm_sampler_new(&sp, 300, &s), 0);
    int seen[300] = {0};
    for (int k = 0; k < 200; k++) {
        float tmp[300];
        for (int i = 0; i < 300; i++)
            tmp[i] = -20.0f;
        tmp[7] = 1.0f;
        tmp[250] = 1.2f;
        seen[llm_sample(s, tmp, NULL, 0)]++;
    }
    assert_true(seen[7] > 20 && seen[250] > 20 && seen[7] + seen[250] == 200);
    llm_sampler_free(&s);
    /* Top-k with the whole distribution: the same seed gives the same draws; the frequencies
     * follow the probabilities roughly. */
    sp.top_p = 1.0f;
    sp.top_k = 3;
    sp.seed = 42;
    int draws[2][100];
    for (int rep = 0; rep < 2; rep++) {
        assert_int_equal(llm_sampler_new(&sp, 300, &s), 0);
        for (int k = 0; k < 100; k++) {
            float tmp[300];
            memcpy(tmp, big, sizeof tmp);
            draws[rep][k] = llm_sample(s, tmp, NULL, 0);
        }
        llm_sampler_free(&s);
    }
    assert_memory_equal(draws[0], draws[1], sizeof draws[0]);
    int distinct[300] = {0}, nd = 0;
    for (int k = 0; k < 100; k++)
        if (!distinct[draws[0][k]]++)
            nd++;
    assert_true(nd >= 2 && nd <= 3);
    llm_sampler_free(&s);

    /* Top-k with ties, NaN and -inf, against brute force: with a flat distribution over the
     * survivors, exactly the k best (logit, then lower id) are drawn, all of them. */
    sp.top_k = 5;
    sp.temperature = 100.0f;
    sp.min_p = 0.0f;
    assert_int_equal(llm_sampler_new(&sp, 300, &s), 0);
    float tie[300];
    for (int i = 0; i < 300; i++)
        tie[i] = (float)(i % 7);           /* 6 appears at ids 6, 13, 20, ... */
    tie[3] = NAN;
    tie[4] = -INFINITY;
    tie[150] = 9.0f;
    int want[5] = {150, 6, 13, 20, 27}, hits[300] = {0};
    for (int k = 0; k < 400; k++) {
        float tmp[300];
        memcpy(tmp, tie, sizeof tmp);
        hits[llm_sample(s, tmp, NULL, 0)]++;
    }
    int total = 0;
    for (int i = 0; i < 5; i++) {
        assert_true(hits[want[i]] > 0);
        total += hits[want[i]];
    }
    assert_int_equal(total, 400);
    llm_sampler_free(&s);
}

/* Generates with a random model; returns the text (malloc'd). */
static char *generate(const llm_model_t *m, nn_pool_t *pool, const llm_gen_params_t *p,
                      const char *prompt, int *state_out, int *n_out)
{
    char err[256];
    llm_gen_t *g;
    if (llm_gen_new(m, prompt, strlen(prompt), p, &g, err, sizeof err))
        fail_msg("gen_new: %s", err);
    core_buf_t b;
    core_buf_init(&b);
    int st;
    for (int guard = 0;; guard++) {
        const char *t;
        size_t n;
        st = llm_gen_step(g, pool, &t, &n);
        assert_true(st >= 0);
        core_buf_append(&b, t, n);
        if (st != LLM_GEN_RUNNING)
            break;
        assert_true(guard < 10000);
    }
    if (state_out)
        *state_out = st;
    if (n_out)
        *n_out = llm_gen_completion_tokens(g);
    /* A finished generator stays finished. */
    const char *t;
    size_t n;
    assert_int_equal(llm_gen_step(g, pool, &t, &n), st);
    assert_int_equal(n, 0);
    llm_gen_free(&g);
    return core_buf_steal(&b);
}

/* n tokens sampled after "hello" with these settings (EOS or not: ids, not text). */
static void sample_run(const llm_model_t *m, const llm_sampling_t *sp, int32_t *out, int n)
{
    llm_ctx_t *c;
    llm_sampler_t *s;
    int V = llm_model_config(m)->n_vocab;
    float *lg = malloc((size_t)V * sizeof *lg);
    int32_t hist[64] = {104, 101, 108, 108, 111};
    size_t nh = 5;
    assert_int_equal(llm_ctx_new(m, 0, &c), 0);
    assert_int_equal(llm_sampler_new(sp, V, &s), 0);
    assert_int_equal(llm_eval(c, NULL, hist, nh, lg), 0);
    for (int i = 0; i < n; i++) {
        out[i] = llm_sample(s, lg, hist, nh);
        hist[nh++] = out[i];
        assert_true(out[i] >= 0 && out[i] < V);
        assert_int_equal(llm_eval(c, NULL, &out[i], 1, lg), 0);
    }
    llm_sampler_free(&s);
    llm_ctx_free(&c);
    free(lg);
}

static void test_seeds(void **state)
{
    llm_config_t cfg = small_config(false);
    llm_model_t *m;
    assert_int_equal(llm_random(&cfg, NN_Q8_0, 8, NULL, &m), 0);
    llm_sampling_t sp;
    llm_sampling_default(&sp);
    sp.temperature = 1.0f;
    sp.min_p = 0;
    int32_t a[30], b[30], c[30];
    sp.seed = 1;
    sample_run(m, &sp, a, 30);
    sample_run(m, &sp, b, 30);
    assert_memory_equal(a, b, sizeof a);
    sp.seed = 2;
    sample_run(m, &sp, c, 30);
    assert_memory_not_equal(a, c, sizeof a);
    /* Greedy: the same whatever the seed. */
    sp.temperature = 0;
    sample_run(m, &sp, a, 30);
    sp.seed = 3;
    sample_run(m, &sp, b, 30);
    assert_memory_equal(a, b, sizeof a);

    /* Through the generator: the same seed gives the same text. */
    llm_gen_params_t p = {0};
    llm_sampling_default(&p.sampling);
    p.sampling.temperature = 1.0f;
    p.max_tokens = 30;
    p.sampling.seed = 1;
    int st, n;
    char *x = generate(m, NULL, &p, "hello", &st, &n);
    assert_true(st == LLM_GEN_LENGTH || st == LLM_GEN_STOP);
    assert_true(n >= 1 && n <= 30);
    char *y = generate(m, NULL, &p, "hello", NULL, NULL);
    assert_string_equal(x, y);
    /* ... and the same with two threads: no result depends on the thread count. */
    nn_pool_t *pool;
    assert_int_equal(nn_pool_create(2, &pool), 0);
    char *z = generate(m, pool, &p, "hello", NULL, NULL);
    assert_string_equal(x, z);
    nn_pool_free(&pool);
    free(x), free(y), free(z);
    llm_free(&m);
}

/* ================================ generation: text rules ================================ */

static int byte_id(const tok_t *t, unsigned char c)
{
    int32_t *ids;
    size_t n;
    char s[1] = {(char)c};
    assert_int_equal(tok_encode(t, s, 1, false, &ids, &n), 0);
    assert_int_equal(n, 1);
    int id = ids[0];
    free(ids);
    return id;
}

/* A model whose greedy continuation is fixed: attention and feed-forward outputs are zero, so
 * the last hidden state is the current token's embedding; token chain[j] has embedding e_j and
 * the head maps e_j to chain[j+1]. The chain here: prompt "a", then "b", 0xC3 0xA9 ("é" split
 * over two tokens), "c", "S", "T", "O", "P", "d", then the control token `last`. */
static llm_model_t *markov_model_ending(const char *last)
{
    llm_config_t cfg = small_config(false);
    llm_model_t *m;
    assert_int_equal(llm_random(&cfg, NN_F32, 1, NULL, &m), 0);
    size_t D = (size_t)cfg.dim, F = (size_t)cfg.ffn_dim, V = (size_t)cfg.n_vocab;
    for (int l = 0; l < cfg.n_layers; l++) {
        memset((void *)m->layers[l].attn_output.data, 0, D * D * 4);
        memset((void *)m->layers[l].ffn_down.data, 0, F * D * 4);
    }
    float *embd = (float *)m->tok_embd.data, *out = (float *)m->output.data;
    memset(embd, 0, V * D * 4);
    memset(out, 0, V * D * 4);
    const unsigned char chain[] = "ab\xC3\xA9" "cSTOPd";
    int ids[16];
    size_t n = strlen((const char *)chain);
    for (size_t j = 0; j < n; j++)
        ids[j] = byte_id(m->tok, chain[j]);
    ids[n] = tok_find(m->tok, last);
    assert_true(ids[n] >= 0);
    for (size_t j = 0; j < n; j++) {
        embd[(size_t)ids[j] * D + j] = 1.0f;
        out[(size_t)ids[j + 1] * D + j] = 10.0f;
    }
    return m;
}

static llm_model_t *markov_model(void)
{
    return markov_model_ending("<|im_end|>");
}

static bool utf8_ok(const char *s, size_t n)
{
    core_buf_t b;
    size_t held;
    core_buf_init(&b);
    llm__utf8_clean(s, n, false, &b, &held);
    bool ok = held == 0 && b.len == n && (n == 0 || memcmp(b.data, s, n) == 0);
    core_buf_destroy(&b);
    return ok;
}

/* Runs the Markov model; chunks joined by '|' (one per step) go into out. */
static int markov_run(const llm_model_t *m, const char *prompt, const char *const *stop, size_t n_stop,
                      int max_tokens, char *out, size_t cap, int *n_tokens)
{
    char err[256];
    llm_gen_params_t p = {0};
    llm_sampling_default(&p.sampling);
    p.sampling.temperature = 0;
    p.sampling.repeat_penalty = 1.0f;
    p.stop = stop;
    p.n_stop = n_stop;
    p.max_tokens = max_tokens;
    p.parse_special = true;
    llm_gen_t *g;
    if (llm_gen_new(m, prompt, strlen(prompt), &p, &g, err, sizeof err))
        fail_msg("%s", err);
    size_t off = 0;
    int st;
    out[0] = '\0';
    do {
        const char *t;
        size_t n;
        st = llm_gen_step(g, NULL, &t, &n);
        assert_true(st >= 0);
        assert_true(utf8_ok(t, n));
        off += (size_t)snprintf(out + off, cap - off, "%s%.*s", off ? "|" : "", (int)n, t);
        assert_true(off < cap);
    } while (st == LLM_GEN_RUNNING);
    *n_tokens = llm_gen_completion_tokens(g);
    llm_gen_free(&g);
    return st;
}

static void test_gen_text(void **state)
{
    llm_model_t *m = markov_model();
    char out[512];
    int n;
    /* Everything, with "é" held back until its second byte arrives. */
    assert_int_equal(markov_run(m, "a", NULL, 0, 0, out, sizeof out, &n), LLM_GEN_STOP);
    assert_string_equal(out, "b||é|c|S|T|O|P|d|");
    assert_int_equal(n, 10);
    /* A model that begins another message (<|im_start|>) has ended its own: STOP there too. */
    llm_model_t *m2 = markov_model_ending("<|im_start|>");
    assert_int_equal(markov_run(m2, "a", NULL, 0, 0, out, sizeof out, &n), LLM_GEN_STOP);
    assert_string_equal(out, "b||é|c|S|T|O|P|d|");
    assert_int_equal(n, 10);
    llm_free(&m2);
    /* A stop string: held while it may match, then dropped with what follows. */
    const char *stop1[] = {"STOP"};
    assert_int_equal(markov_run(m, "a", stop1, 1, 0, out, sizeof out, &n), LLM_GEN_STOP);
    assert_string_equal(out, "b||é|c||||");
    assert_int_equal(n, 8);
    /* A prefix that stops matching is released at once. */
    const char *stop2[] = {"STX", "zz"};
    assert_int_equal(markov_run(m, "a", stop2, 2, 0, out, sizeof out, &n), LLM_GEN_STOP);
    assert_string_equal(out, "b||é|c|||STO|P|d|");
    /* A multi-byte stop string. */
    const char *stop3[] = {"\xC3\xA9"};
    assert_int_equal(markov_run(m, "a", stop3, 1, 0, out, sizeof out, &n), LLM_GEN_STOP);
    assert_string_equal(out, "b||");
    /* A stop string spanning text that was already matched by another prefix. */
    const char *stop4[] = {"cSTOPd"};
    assert_int_equal(markov_run(m, "a", stop4, 1, 0, out, sizeof out, &n), LLM_GEN_STOP);
    assert_string_equal(out, "b||é||||||");
    /* A stop string starting inside a character ("\xA9c" matches the end of "é" and "c"): the
     * text is cut before the whole character, never inside it. */
    const char *stop5[] = {"\xA9" "c"};
    assert_int_equal(markov_run(m, "a", stop5, 1, 0, out, sizeof out, &n), LLM_GEN_STOP);
    assert_string_equal(out, "b|||");
    /* max_tokens; a character cut by the limit is flushed as U+FFFD, never half. */
    assert_int_equal(markov_run(m, "a", NULL, 0, 3, out, sizeof out, &n), LLM_GEN_LENGTH);
    assert_string_equal(out, "b||é");
    assert_int_equal(n, 3);
    assert_int_equal(markov_run(m, "a", NULL, 0, 2, out, sizeof out, &n), LLM_GEN_LENGTH);
    assert_string_equal(out, "b|\xEF\xBF\xBD");
    /* A held stop prefix is flushed when the limit ends generation. */
    assert_int_equal(markov_run(m, "a", stop1, 1, 6, out, sizeof out, &n), LLM_GEN_LENGTH);
    assert_string_equal(out, "b||é|c||ST");
    /* ChatML control text in the prompt becomes control tokens (parse_special). */
    assert_int_equal(markov_run(m, "<|im_start|>a", NULL, 0, 2, out, sizeof out, &n), LLM_GEN_LENGTH);
    assert_string_equal(out, "b|\xEF\xBF\xBD");

    /* The context fills: the prompt + completion never exceed it. */
    char err[256];
    char prompt[80];
    memset(prompt, 'x', sizeof prompt);
    llm_gen_params_t p = {0};
    llm_sampling_default(&p.sampling);
    p.sampling.temperature = 0;
    llm_gen_t *g;
    /* A prompt longer than the context is refused with the numbers. */
    assert_int_equal(llm_gen_new(m, prompt, 80, &p, &g, err, sizeof err), -1);
    assert_null(g);
    assert_non_null(strstr(err, "the context holds 64"));
    assert_int_equal(llm_gen_new(m, prompt, 64, &p, &g, err, sizeof err), -1);
    prompt[59] = 'a';
    assert_int_equal(llm_gen_new(m, prompt, 60, &p, &g, err, sizeof err), 0);
    int pt = llm_gen_prompt_tokens(g), st;
    const char *t;
    size_t tl;
    do
        st = llm_gen_step(g, NULL, &t, &tl);
    while (st == LLM_GEN_RUNNING);
    assert_int_equal(st, LLM_GEN_LENGTH);
    assert_int_equal(pt + llm_gen_completion_tokens(g), 64);
    llm_gen_free(&g);
    llm_free(&m);
}

/* A prompt longer than one piece (256 tokens) takes several steps without text, then answers as
 * if it had been evaluated at once. */
static void test_gen_long_prompt(void **state)
{
    char err[256];
    llm_config_t cfg = small_config(false);
    cfg.n_ctx = 700;
    llm_model_t *m;
    assert_int_equal(llm_random(&cfg, NN_F32, 2, NULL, &m), 0);
    char prompt[601];
    for (int i = 0; i < 600; i++)
        prompt[i] = (char)('a' + i % 26);
    prompt[600] = '\0';
    llm_gen_params_t p = {0};
    llm_sampling_default(&p.sampling);
    p.sampling.temperature = 0;
    p.max_tokens = 3;
    llm_gen_t *g;
    assert_int_equal(llm_gen_new(m, prompt, 600, &p, &g, err, sizeof err), 0);
    int pt = llm_gen_prompt_tokens(g), silent = 0, st;
    const char *t;
    size_t n;
    while ((st = llm_gen_step(g, NULL, &t, &n)) == LLM_GEN_RUNNING && llm_gen_completion_tokens(g) == 0) {
        assert_int_equal(n, 0);
        silent++;
    }
    assert_int_equal(silent, (pt + 255) / 256 - 1);
    while (st == LLM_GEN_RUNNING)
        st = llm_gen_step(g, NULL, &t, &n);
    assert_int_equal(st, LLM_GEN_LENGTH);
    assert_int_equal(llm_gen_completion_tokens(g), 3);
    llm_gen_free(&g);

    /* The first answer token is the argmax of one evaluation of the whole prompt. */
    int32_t *ids;
    size_t nid;
    assert_int_equal(tok_encode(llm_model_tok(m), prompt, 600, false, &ids, &nid), 0);
    int32_t *all = malloc((nid + 1) * sizeof *all);
    size_t na = 0;
    if (tok_add_bos(llm_model_tok(m)))
        all[na++] = tok_bos(llm_model_tok(m));
    memcpy(all + na, ids, nid * sizeof *ids);
    na += nid;
    assert_int_equal((int)na, pt);
    float *lg = eval_logits(m, NULL, all, na);
    int best = 0;
    for (int i = 1; i < cfg.n_vocab; i++)
        if (lg[i] > lg[best])
            best = i;
    p.max_tokens = 1;
    p.parse_special = false;
    char *one = generate(m, NULL, &p, prompt, NULL, NULL);
    size_t bl;
    const char *bp = tok_piece(llm_model_tok(m), best, &bl);
    core_buf_t want;
    size_t held;
    core_buf_init(&want);
    llm__utf8_clean(tok_is_control(llm_model_tok(m), best) ? "" : bp,
                    tok_is_control(llm_model_tok(m), best) ? 0 : bl, true, &want, &held);
    assert_string_equal(one, want.data ? want.data : "");
    core_buf_destroy(&want);
    free(one), free(lg), free(all), free(ids);
    llm_free(&m);
}

static void test_utf8_clean(void **state)
{
    struct {
        const char *in;
        size_t len;
        const char *out;
        size_t held;
    } cases[] = {
        {"abc", 3, "abc", 0},
        {"a\xC3", 2, "a", 1},
        {"a\xE2\x82", 3, "a", 2},
        {"\xF0\x9F\x98", 3, "", 3},
        {"\xF0\x9F\x98\x80z", 5, "\xF0\x9F\x98\x80z", 0},
        {"\x80x", 2, "\xEF\xBF\xBDx", 0},
        {"\xC3x", 2, "\xEF\xBF\xBDx", 0},
        {"\xC0\xAF", 2, "\xEF\xBF\xBD\xEF\xBF\xBD", 0}, /* overlong */
        {"\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 0}, /* surrogate */
        {"\xF5", 1, "\xEF\xBF\xBD", 0},
        {"\xE0\x80", 2, "\xEF\xBF\xBD\xEF\xBF\xBD", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        core_buf_t b;
        size_t held;
        core_buf_init(&b);
        llm__utf8_clean(cases[i].in, cases[i].len, false, &b, &held);
        assert_string_equal(b.data ? b.data : "", cases[i].out);
        assert_int_equal(held, cases[i].held);
        core_buf_reset(&b);
        llm__utf8_clean(cases[i].in, cases[i].len, true, &b, &held);
        assert_int_equal(held, 0);
        assert_true(utf8_ok(b.data, b.len));
        core_buf_destroy(&b);
    }
    /* Random bytes: always clean output, and held + consumed covers the input. */
    uint32_t s = 5;
    for (int k = 0; k < 2000; k++) {
        char in[16];
        size_t n = (size_t)(k % 16);
        for (size_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            in[i] = (char)(0x7F + (s >> 25));
        }
        core_buf_t b;
        size_t held;
        core_buf_init(&b);
        llm__utf8_clean(in, n, false, &b, &held);
        assert_true(held <= 3 && held <= n);
        assert_true(utf8_ok(b.data, b.len));
        core_buf_destroy(&b);
    }
}

static void test_chat_prompt(void **state)
{
    llm_message_t msgs[] = {{"system", "Be brief."}, {"user", "Hi?"}};
    char *p = llm_chat_prompt(msgs, 2, true);
    assert_string_equal(p, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n"
                           "<|im_start|>assistant\n");
    free(p);
    p = llm_chat_prompt(msgs + 1, 1, false);
    assert_string_equal(p, "<|im_start|>user\nHi?<|im_end|>\n");
    free(p);
    p = llm_chat_prompt(NULL, 0, false);
    assert_string_equal(p, "");
    free(p);
}

/* ================================ a file from another tool ================================ */

static void test_other_tool(void **state)
{
    char err[256], cmd[1600];
    const char *path = tmp_path("other.gguf");
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s'", LLM_WRITE_GGUF_PY, path);
    assert_int_equal(system(cmd), 0);
    llm_model_t *m;
    if (llm_load(path, &m, err, sizeof err))
        fail_msg("load: %s", err);
    const llm_config_t *c = llm_model_config(m);
    assert_int_equal(c->n_vocab, 300);
    assert_int_equal(c->n_ctx, 128);
    assert_int_equal(c->n_kv_heads, 2);
    assert_false(c->tied_output);
    assert_true(fabsf(c->norm_eps - 1e-6f) < 1e-9f);
    assert_int_equal(llm_model_type(m), NN_F16);
    assert_int_equal(tok_kind(llm_model_tok(m)), TOK_KIND_SPM);
    /* Its tensors are in another order (v, k, q): separate products for those; gate and up
     * still lie back to back. */
    assert_false(m->layers[0].fused_qkv);
    assert_true(m->layers[0].fused_gate_up);

    gguf_t *g;
    assert_int_equal(gguf_open(path, &g, err, sizeof err), 0);
    assert_int_equal(gguf_alignment(g), 64);
    ref_t r;
    ref_load(&r, g, c);
    int32_t *ids;
    size_t n;
    const char *text = "hello world, caf\xC3\xA9 and the rest";
    assert_int_equal(tok_encode(llm_model_tok(m), text, strlen(text), false, &ids, &n), 0);
    assert_true(n > 3);
    double *want = malloc(300 * sizeof *want);
    ref_forward(&r, ids, n, want);
    float *got = eval_logits(m, NULL, ids, n);
    double e = rel_err(got, want, 300);
    if (e > 1e-4)
        fail_msg("other tool's model: relative error %g vs the reference", e);
    free(got);
    free(want);
    free(ids);
    ref_free(&r);
    gguf_close(&g);

    llm_gen_params_t p = {0};
    llm_sampling_default(&p.sampling);
    p.sampling.seed = 4;
    p.max_tokens = 12;
    int st, nt;
    char *out = generate(m, NULL, &p, "hello", &st, &nt);
    assert_true(st == LLM_GEN_LENGTH || st == LLM_GEN_STOP);
    assert_true(nt >= 1 && nt <= 12);
    assert_true(utf8_ok(out, strlen(out)));
    free(out);
    /* Saved by us and re-typed, it still loads. */
    if (llm_save(m, tmp_path("other_saved.gguf"), err, sizeof err) ||
        llm_quantize_file(tmp_path("other_saved.gguf"), tmp_path("other_q8.gguf"), NN_Q8_0, err,
                          sizeof err))
        fail_msg("%s", err);
    llm_model_t *mq;
    if (llm_load(tmp_path("other_q8.gguf"), &mq, err, sizeof err))
        fail_msg("%s", err);
    llm_free(&mq);
    llm_free(&m);
}

int main(void)
{
    const char *t = getenv("PERSONA_TEST_TMP");
    snprintf(g_tmp, sizeof g_tmp, "%s", t ? t : "/tmp/persona-test-llm");
    if (core_mkdirs(g_tmp) != 0) {
        fprintf(stderr, "cannot create %s\n", g_tmp);
        return 1;
    }
    if (nn_init() != 0) {
        fprintf(stderr, "nn_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),      cmocka_unit_test(test_reference),
        cmocka_unit_test(test_batch),       cmocka_unit_test(test_quantized),
        cmocka_unit_test(test_save_load),   cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_sampler),     cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_gen_text),    cmocka_unit_test(test_gen_long_prompt),
        cmocka_unit_test(test_utf8_clean),
        cmocka_unit_test(test_chat_prompt), cmocka_unit_test(test_other_tool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
