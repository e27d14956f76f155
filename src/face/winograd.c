/* winograd.c: 3x3 stride-1 SAME convolution by Winograd's minimal filtering F(2x2, 3x3) — the
 * recognition network's residual convolutions, two thirds of its work. Each 2x2 block of outputs
 * ("tile") is computed from the 4x4 input patch around it with 16 multiplications per input and
 * output channel instead of 36:
 *   V = Bt d B   per tile and input channel (d: the 4x4 patch, zeros outside the picture)
 *   U = G g Gt   per filter, once at load ([16][I][O])
 *   M[p] = V[p] . U[p]   for each of the 16 positions p: one GEMM of tiles x I by I x O
 *   Y = At M A   per tile and output channel (2x2), + bias, activation
 * with Bt = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 * At = [1 1 1 0; 0 1 -1 -1]. The result differs from the direct sum by rounding only (a few ulps
 * of the activations' scale; the tests bound it against im2col).
 *
 * Threads: the transforms split the tile rows over ctx->pool, the 16 GEMMs are dealt out whole.
 * PERSONA_NN_ISA=scalar keeps the transforms at 4 lanes; the tests cover both widths (channel
 * counts that are and are not multiples of 8).
 * Memory: U is owned by the face_wino_t (the engine's, read-only once made); V and M come from
 * the ctx's arena and are given back before returning. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "face/internal.h"

enum { WINO_POS = 16 };

int face__wino_init(const face_conv_t *l, face_wino_t *out)
{
    memset(out, 0, sizeof *out);
    /* the transforms step four channels at a time */
    if (l->k != 3 || l->stride != 1 || l->pad != FACE_PAD_SAME || l->cin % 4 || l->cout % 4)
        return -EINVAL;
    const int I = l->cin, O = l->cout;
    float *u = malloc(sizeof(float) * WINO_POS * (size_t)I * O);
    if (!u)
        return -ENOMEM;
    for (int i = 0; i < I; i++) {
        for (int o = 0; o < O; o++) {
            float g[3][3], t[4][3];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    g[ky][kx] = l->w[(((size_t)ky * 3 + kx) * I + i) * O + o];
            for (int c = 0; c < 3; c++) { /* t = G g */
                t[0][c] = g[0][c];
                t[1][c] = 0.5f * (g[0][c] + g[1][c] + g[2][c]);
                t[2][c] = 0.5f * (g[0][c] - g[1][c] + g[2][c]);
                t[3][c] = g[2][c];
            }
            for (int r = 0; r < 4; r++) { /* U = t Gt */
                float v[4] = { t[r][0], 0.5f * (t[r][0] + t[r][1] + t[r][2]),
                               0.5f * (t[r][0] - t[r][1] + t[r][2]), t[r][2] };
                for (int c = 0; c < 4; c++)
                    u[(((size_t)r * 4 + c) * I + i) * O + o] = v[c];
            }
        }
    }
    out->cin = I;
    out->cout = O;
    out->u = u;
    out->bias = l->bias;
    return 0;
}

void face__wino_destroy(face_wino_t *w)
{
    if (!w)
        return;
    free(w->u);
    memset(w, 0, sizeof *w);
}

typedef struct wino_job {
    const face_tensor_t *x;
    face_tensor_t *y;
    const face_wino_t *l;
    face_act_t act;
    int th, tw;          /* tiles down and across */
    size_t pos_stride;   /* floats between positions p and p + 1 in v and m */
    float *v, *m;        /* [16][tiles][I], [16][tiles][O] */
} wino_job_t;

/* The transforms run W channels at a time on GCC's vector extensions: W = 8 in functions
 * compiled for AVX2 (chosen at run time with the ops' instruction set, when the channel counts
 * allow), else W = 4 (SSE on x86-64; any target GCC knows otherwise). The compiler does not
 * vectorize these loops by itself at -O2, and unvectorized the transforms cost as much as the
 * GEMMs they save. The vector types are declared with 4-byte alignment: the loads and stores
 * address activations at any channel offset. */
typedef float v4f __attribute__((vector_size(16), aligned(4)));
typedef int v4i __attribute__((vector_size(16), aligned(4)));
typedef float v8f __attribute__((vector_size(32), aligned(4)));
typedef int v8i __attribute__((vector_size(32), aligned(4)));

/* V = Bt d B for the tiles of rows [r0, r1). */
#define WINO_INPUT_ROWS(VF, W)                                                                    \
    const face_tensor_t *x = j->x;                                                                \
    const int C = x->c;                                                                           \
    const size_t ps = j->pos_stride;                                                              \
    const VF zero = { 0 };                                                                        \
    const float *rows[4][4];                                                                      \
    for (int ty = r0; ty < r1; ty++) {                                                            \
        for (int tx = 0; tx < j->tw; tx++) {                                                      \
            for (int r = 0; r < 4; r++) {                                                         \
                int iy = 2 * ty - 1 + r;                                                          \
                for (int q = 0; q < 4; q++) {                                                     \
                    int ix = 2 * tx - 1 + q;                                                      \
                    bool ok = iy >= 0 && iy < x->h && ix >= 0 && ix < x->w;                       \
                    rows[r][q] = ok ? x->d + ((size_t)iy * x->w + ix) * C : NULL;                 \
                }                                                                                 \
            }                                                                                     \
            float *v = j->v + ((size_t)ty * j->tw + tx) * C;                                      \
            for (int c = 0; c < C; c += W) {                                                      \
                VF d[4][4], e[4][4];                                                              \
                for (int r = 0; r < 4; r++)                                                       \
                    for (int q = 0; q < 4; q++)                                                   \
                        d[r][q] = rows[r][q] ? *(const VF *)(rows[r][q] + c) : zero;              \
                for (int q = 0; q < 4; q++) { /* e = Bt d */                                      \
                    e[0][q] = d[0][q] - d[2][q];                                                  \
                    e[1][q] = d[1][q] + d[2][q];                                                  \
                    e[2][q] = d[2][q] - d[1][q];                                                  \
                    e[3][q] = d[1][q] - d[3][q];                                                  \
                }                                                                                 \
                for (int r = 0; r < 4; r++) { /* V = e B */                                       \
                    float *o = v + (size_t)(r * 4) * ps + c;                                      \
                    *(VF *)o = e[r][0] - e[r][2];                                                 \
                    *(VF *)(o + ps) = e[r][1] + e[r][2];                                          \
                    *(VF *)(o + 2 * ps) = e[r][2] - e[r][1];                                      \
                    *(VF *)(o + 3 * ps) = e[r][1] - e[r][3];                                      \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

/* Y = At M A + bias (+ relu) for the tiles of rows [r0, r1). */
#define WINO_OUTPUT_ROWS(VF, VI, W)                                                               \
    face_tensor_t *y = j->y;                                                                      \
    const int O = y->c;                                                                           \
    const size_t ps = j->pos_stride;                                                              \
    const bool relu = j->act == FACE_ACT_RELU;                                                    \
    const VF zero = { 0 };                                                                        \
    for (int ty = r0; ty < r1; ty++) {                                                            \
        for (int tx = 0; tx < j->tw; tx++) {                                                      \
            const float *m = j->m + ((size_t)ty * j->tw + tx) * O;                                \
            int oy = 2 * ty, ox = 2 * tx;                                                         \
            bool down = oy + 1 < y->h, right = ox + 1 < y->w;                                     \
            float *out[4];                                                                        \
            out[0] = y->d + ((size_t)oy * y->w + ox) * O;                                         \
            out[1] = right ? out[0] + O : NULL;                                                   \
            out[2] = down ? out[0] + (size_t)y->w * O : NULL;                                     \
            out[3] = down && right ? out[2] + O : NULL;                                           \
            for (int o = 0; o < O; o += W) {                                                      \
                VF a[4][2]; /* a = M A, per row of M */                                           \
                for (int r = 0; r < 4; r++) {                                                     \
                    const float *mr = m + (size_t)(r * 4) * ps + o;                               \
                    VF m0 = *(const VF *)mr, m1 = *(const VF *)(mr + ps);                         \
                    VF m2 = *(const VF *)(mr + 2 * ps), m3 = *(const VF *)(mr + 3 * ps);          \
                    a[r][0] = m0 + m1 + m2;                                                       \
                    a[r][1] = m1 - m2 - m3;                                                       \
                }                                                                                 \
                VF b = *(const VF *)(j->l->bias + o);                                             \
                VF res[4] = {                                                                     \
                    a[0][0] + a[1][0] + a[2][0] + b,                                              \
                    a[0][1] + a[1][1] + a[2][1] + b,                                              \
                    a[1][0] - a[2][0] - a[3][0] + b,                                              \
                    a[1][1] - a[2][1] - a[3][1] + b,                                              \
                };                                                                                \
                for (int k = 0; k < 4; k++) {                                                     \
                    if (!out[k])                                                                  \
                        continue;                                                                 \
                    VF v = res[k];                                                                \
                    if (relu) /* keep the lanes above zero: the mask is all ones there */          \
                        v = (VF)((VI)v & (VI)(v > zero));                                         \
                    *(VF *)(out[k] + o) = v;                                                      \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

static void input_rows4(const wino_job_t *j, int r0, int r1)
{
    WINO_INPUT_ROWS(v4f, 4)
}

static void output_rows4(const wino_job_t *j, int r0, int r1)
{
    WINO_OUTPUT_ROWS(v4f, v4i, 4)
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static void input_rows8(const wino_job_t *j, int r0, int r1)
{
    WINO_INPUT_ROWS(v8f, 8)
}

__attribute__((target("avx2"))) static void output_rows8(const wino_job_t *j, int r0, int r1)
{
    WINO_OUTPUT_ROWS(v8f, v8i, 8)
}

/* 8 lanes when the ops run AVX2 and both channel counts are multiples of 8. */
static bool wide(const wino_job_t *j)
{
    return face__ops_isa() >= 1 && j->l->cin % 8 == 0 && j->l->cout % 8 == 0;
}
#define WINO_HAVE_8 1
#else
#define WINO_HAVE_8 0
#endif

static void input_rows(const wino_job_t *j, int r0, int r1)
{
#if WINO_HAVE_8
    if (wide(j)) {
        input_rows8(j, r0, r1);
        return;
    }
#endif
    input_rows4(j, r0, r1);
}

static void output_rows(const wino_job_t *j, int r0, int r1)
{
#if WINO_HAVE_8
    if (wide(j)) {
        output_rows8(j, r0, r1);
        return;
    }
#endif
    output_rows4(j, r0, r1);
}

static void split(int n, int ti, int nt, int *r0, int *r1)
{
    *r0 = (int)((long)n * ti / nt);
    *r1 = (int)((long)n * (ti + 1) / nt);
}

static void input_task(void *vctx, int ti, int nt)
{
    const wino_job_t *j = vctx;
    int r0, r1;
    split(j->th, ti, nt, &r0, &r1);
    input_rows(j, r0, r1);
}

/* The 16 GEMMs shared out whole among the threads: each is small (tiles x I x O, e.g.
 * 324 x 32 x 32), and splitting each one would cost a pool hand-off per GEMM. */
static void gemm_task(void *vctx, int ti, int nt)
{
    const wino_job_t *j = vctx;
    const int tiles = j->th * j->tw, I = j->l->cin, O = j->l->cout;
    int p0, p1;
    split(WINO_POS, ti, nt, &p0, &p1);
    for (int p = p0; p < p1; p++)
        nn_sgemm(NULL, false, false, tiles, O, I, 1.0f, j->v + (size_t)p * j->pos_stride, I,
                 j->l->u + (size_t)p * I * O, O, 0.0f, j->m + (size_t)p * j->pos_stride, O);
}

static void output_task(void *vctx, int ti, int nt)
{
    const wino_job_t *j = vctx;
    int r0, r1;
    split(j->th, ti, nt, &r0, &r1);
    output_rows(j, r0, r1);
}

int face__wino_conv(face_ctx_t *ctx, const face_tensor_t *x, const face_wino_t *l, face_act_t act,
                    face_tensor_t *y)
{
    if (x->c != l->cin || !l->u || (act != FACE_ACT_NONE && act != FACE_ACT_RELU))
        return -EINVAL;
    int rc = face__tensor(&ctx->arena, x->h, x->w, l->cout, y);
    if (rc)
        return rc;
    size_t mark = face__arena_mark(&ctx->arena);
    wino_job_t j = { x, y, l, act, (x->h + 1) / 2, (x->w + 1) / 2, 0, NULL, NULL };
    const int tiles = j.th * j.tw;
    /* positions are laid out at the larger channel count so v and m share one stride */
    const int cmax = l->cin > l->cout ? l->cin : l->cout;
    j.pos_stride = (size_t)tiles * cmax;
    j.v = face__arena_alloc(&ctx->arena, WINO_POS * j.pos_stride);
    j.m = face__arena_alloc(&ctx->arena, WINO_POS * j.pos_stride);
    if (!j.v || !j.m) {
        face__arena_reset(&ctx->arena, mark);
        return -ENOMEM;
    }
    nn_pool_run(ctx->pool, input_task, &j);
    nn_pool_run(ctx->pool, gemm_task, &j);
    nn_pool_run(ctx->pool, output_task, &j);
    face__arena_reset(&ctx->arena, mark);
    return 0;
}
