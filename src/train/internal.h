/* train internal: what the files of src/train share, and what the gradient tests reach into —
 * the op kernels (forward/backward pairs that never allocate), the parallel-for over an nn pool,
 * and the model state (weights, gradients, AdamW moments, saved activations) with one
 * forward+backward over a batch.
 *
 * Dimension legend used in the comments:
 *   N rows (= B sequences x T positions), D model dim, H heads, G kv heads, E head dim (D/H),
 *   F feed-forward dim, V vocabulary, L layers.
 * Matrices are row-major; a weight W of `out` x `in` (GGUF shape [in, out]) maps x (in) to
 * y = W x (out), so a batch is Y = X W^T.
 *
 * Every kernel has a fixed summation order that does not depend on the thread count; only
 * nn_sgemm's results depend on it (fixed for a given count). */
#ifndef PERSONA_TRAIN_INTERNAL_H
#define PERSONA_TRAIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/nn.h"
#include "train/train.h"

/* ==== parallel for ==== */
/* Runs fn(ctx, i0, i1) over contiguous chunks of [0, n) on the pool's threads (NULL pool: the
 * caller). Chunks never overlap, so kernels whose items are independent are deterministic. */
typedef void (*train__range_fn)(void *ctx, size_t i0, size_t i1);
void train__parallel(nn_pool_t *pool, size_t n, train__range_fn fn, void *ctx);

/* ==== op kernels ==== */
/* The kernels' exp (vectorizable, relative error ~1e-7), exposed for its test. */
float train__exp(float x);
/* AdamW's sqrt (x >= 0; vectorizable, relative error ~1e-7), exposed for its test. */
float train__sqrt(float x);

/* x[i] = E[ids[i]] for i < N; E is V x D. */
void train__embed_fwd(const float *E, const int32_t *ids, int N, int D, float *x);
/* dE[ids[i]] += dx[i], rows in order (deterministic). */
void train__embed_bwd(float *dE, const int32_t *ids, int N, int D, const float *dx);

/* y[i] = x[i] * rstd[i] * w, rstd[i] = 1/sqrt(mean(x[i]^2) + eps). x, y: N x D. */
void train__rmsnorm_fwd(nn_pool_t *pool, const float *x, const float *w, int N, int D, float eps,
                        float *y, float *rstd);
/* dx += d/dx, dw += d/dw for the upstream gradient dy. */
void train__rmsnorm_bwd(nn_pool_t *pool, const float *x, const float *w, const float *rstd,
                        const float *dy, int N, int D, float *dx, float *dw);

/* Y = X W^T (+ Y when accumulate): X N x in, W out x in, Y N x out. */
void train__matmul_fwd(nn_pool_t *pool, const float *X, const float *W, int N, int in, int out,
                       bool accumulate, float *Y);
/* dX = dY W (+ dX when dx_accumulate; dX NULL skips it), dW = dY^T X (+ dW when
 * dw_accumulate). */
void train__matmul_bwd(nn_pool_t *pool, const float *X, const float *W, const float *dY, int N,
                       int in, int out, float *dX, bool dx_accumulate, float *dW,
                       bool dw_accumulate);

/* Rotary tables for positions [0, T): cs/sn are T x E/2, angle pos * base^(-2i/E). */
void train__rope_table(int T, int E, float base, float *cs, float *sn);
/* In place on x (N x n_heads*E, row r at position r % T): pairs (x[2i], x[2i+1]) of each head
 * rotated by the angle (forward) or by its negative (backward: the transpose of a rotation). */
void train__rope(nn_pool_t *pool, float *x, int N, int T, int n_heads, int E, const float *cs,
                 const float *sn, bool inverse);

/* Causal attention with grouped-query heads, per sequence b < B of T rows:
 *   q: N x H*E, k, v: N x G*E, att: B x H x T x T (softmax probabilities, zero above the
 *   diagonal), out: N x H*E. Head h uses kv head h / (H/G). scratch: train__attn_scratch floats
 *   per pool thread. */
size_t train__attn_scratch(int T, int E);
/* Row/key block of the causal products (default 64; tests set small values to cover blocking). */
extern int train__attn_block;
void train__attn_fwd(nn_pool_t *pool, const float *q, const float *k, const float *v, int B, int T,
                     int H, int G, int E, float *att, float *out, float *scratch);
/* dq, dk, dv are overwritten. */
void train__attn_bwd(nn_pool_t *pool, const float *q, const float *k, const float *v,
                     const float *att, const float *dout, int B, int T, int H, int G, int E,
                     float *dq, float *dk, float *dv, float *scratch);

/* h = silu(g) * u elementwise over n; backward writes dg, du. */
void train__swiglu_fwd(nn_pool_t *pool, const float *g, const float *u, size_t n, float *h);
void train__swiglu_bwd(nn_pool_t *pool, const float *g, const float *u, const float *dh, size_t n,
                       float *dg, float *du);

/* Cross-entropy of N rows of V logits against targets; logits are overwritten with
 * d(loss_sum * scale)/d(logits). losses[i] gets each row's loss. A negative target marks a row
 * that is not predicted (a context token): loss 0, gradient 0. Returns the mean loss over the
 * predicted rows (summed in row order in double; 0 when there are none). */
double train__xent(nn_pool_t *pool, float *logits, const int32_t *targets, int N, int V,
                   float scale, float *losses);

/* One AdamW update of n parameters (step counts from 1) with gradient gscale * g (the clipping
 * factor, folded in to save a pass): decoupled decay wd * lr * p. */
void train__adamw(nn_pool_t *pool, float *p, const float *g, float gscale, float *m, float *v,
                  size_t n, float lr, float beta1, float beta2, float eps, float wd, int step);
/* Sum of squares of n values in double, in a fixed order. */
double train__sumsq(nn_pool_t *pool, const float *x, size_t n);

/* ==== model state ==== */
typedef struct {
    char name[64];
    size_t rows, cols; /* cols = GGUF ne[0]; norms are 1 x D */
    size_t off;        /* floats into the parameter block */
    bool matrix;       /* weight decay applies */
} train__tensor_t;

typedef struct {
    size_t attn_norm, wq, wk, wv, wo, ffn_norm, wg, wu, wd; /* offsets */
} train__layer_t;

typedef struct {
    llm_config_t c;
    int B, T;        /* batch sequences and positions the activations were sized for */
    nn_pool_t *pool; /* borrowed */

    train__tensor_t *tensors;
    int n_tensors;
    train__layer_t *layers;
    size_t off_embd, off_out_norm, off_out; /* off_out == off_embd when tied */
    size_t n_params;
    float *w, *g, *m, *v; /* weights, gradients, AdamW moments (m, v NULL until needed) */

    /* saved activations, per layer l: */
    float *resid; /* (L+1) x N x D: input of layer l; resid[L] the last output */
    float *xn1, *rstd1, *q, *k, *v_act, *att, *ao, *xmid, *xn2, *rstd2, *gate, *up, *hh;
    float *xnf, *rstdf, *logits, *losses;
    /* backward scratch */
    float *dres, *dxn, *dq, *dk, *dv, *dao, *dg, *du, *dhh;
    float *cs, *sn, *attn_scratch;
} train__model_t;

/* Sizes the model for config c and batches of B x T; allocates everything once (malloc, no
 * abort: -1 with err when it does not fit). with_adam: allocate m and v. */
int train__model_init(train__model_t *mdl, const llm_config_t *c, int B, int T, bool with_adam,
                      nn_pool_t *pool, char *err, size_t errlen);
void train__model_destroy(train__model_t *mdl);
/* Random init from seed: matrices N(0, 0.02), residual outputs (wo, ffn_down) scaled by
 * 1/sqrt(2L), norms 1. */
void train__model_init_weights(train__model_t *mdl, uint64_t seed);
/* Forward over nb <= B sequences of T tokens (ids, targets: nb*T); returns the mean loss. When
 * backward, the gradients of this batch are written into g (overwritten, no zeroing needed). */
double train__model_step(train__model_t *mdl, const int32_t *ids, const int32_t *targets, int nb,
                         bool backward);
/* Matrix FLOPs (6 x matrix params x tokens) plus attention (12 x D x L per (t, s <= t) pair) of
 * one forward+backward over B x T tokens. */
double train__step_flops(const llm_config_t *c, int B, int T);

/* splitmix64, the generator behind init and batch order. */
uint64_t train__rng_next(uint64_t *state);

#endif
