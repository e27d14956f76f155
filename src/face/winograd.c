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
 * Memory: U is owned by the face_wino_t (the engine's, read-only once made); V and M come from
 * the ctx's arena and are given back before returning. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/* Four channels at a time (SSE2, every x86-64 has it; the scalar loop is the fallback and the
 * tail). The compiler does not vectorize these loops by itself at -O2, and unvectorized the
 * transforms cost as much as the GEMMs they save. */
#if defined(__SSE2__)
typedef __m128 f4;
#define F4_W 4
#define f4_load(p) _mm_loadu_ps(p)
#define f4_store(p, v) _mm_storeu_ps(p, v)
#define f4_add(a, b) _mm_add_ps(a, b)
#define f4_sub(a, b) _mm_sub_ps(a, b)
#define f4_zero() _mm_setzero_ps()
#define f4_relu(a) _mm_max_ps(a, _mm_setzero_ps())
#else
typedef float f4;
#define F4_W 1
#define f4_load(p) (*(p))
#define f4_store(p, v) (*(p) = (v))
#define f4_add(a, b) ((a) + (b))
#define f4_sub(a, b) ((a) - (b))
#define f4_zero() 0.0f
#define f4_relu(a) ((a) > 0 ? (a) : 0.0f)
#endif

/* V = Bt d B for the tiles of rows [r0, r1), F4_W channels at a time. */
static void input_rows(const wino_job_t *j, int r0, int r1)
{
    const face_tensor_t *x = j->x;
    const int C = x->c;
    const float *rows[4][4];
    for (int ty = r0; ty < r1; ty++) {
        for (int tx = 0; tx < j->tw; tx++) {
            size_t t = (size_t)ty * j->tw + tx;
            for (int r = 0; r < 4; r++) {
                int iy = 2 * ty - 1 + r;
                for (int q = 0; q < 4; q++) {
                    int ix = 2 * tx - 1 + q;
                    bool ok = iy >= 0 && iy < x->h && ix >= 0 && ix < x->w;
                    rows[r][q] = ok ? x->d + ((size_t)iy * x->w + ix) * C : NULL;
                }
            }
            float *v = j->v + t * C;
            const size_t ps = j->pos_stride;
            for (int c = 0; c < C; c += F4_W) {
                f4 d[4][4], e[4][4];
                for (int r = 0; r < 4; r++)
                    for (int q = 0; q < 4; q++)
                        d[r][q] = rows[r][q] ? f4_load(rows[r][q] + c) : f4_zero();
                for (int q = 0; q < 4; q++) { /* e = Bt d */
                    e[0][q] = f4_sub(d[0][q], d[2][q]);
                    e[1][q] = f4_add(d[1][q], d[2][q]);
                    e[2][q] = f4_sub(d[2][q], d[1][q]);
                    e[3][q] = f4_sub(d[1][q], d[3][q]);
                }
                for (int r = 0; r < 4; r++) { /* V = e B */
                    f4 o[4] = { f4_sub(e[r][0], e[r][2]), f4_add(e[r][1], e[r][2]),
                                f4_sub(e[r][2], e[r][1]), f4_sub(e[r][1], e[r][3]) };
                    for (int q = 0; q < 4; q++)
                        f4_store(v + (size_t)(r * 4 + q) * ps + c, o[q]);
                }
            }
        }
    }
}

/* Y = At M A + bias for the tiles of rows [r0, r1). */
static void output_rows(const wino_job_t *j, int r0, int r1)
{
    face_tensor_t *y = j->y;
    const int O = y->c;
    const bool relu = j->act == FACE_ACT_RELU;
    for (int ty = r0; ty < r1; ty++) {
        for (int tx = 0; tx < j->tw; tx++) {
            size_t t = (size_t)ty * j->tw + tx;
            const float *m = j->m + t * O;
            const size_t ps = j->pos_stride;
            int oy = 2 * ty, ox = 2 * tx;
            bool down = oy + 1 < y->h, right = ox + 1 < y->w;
            float *out[4];
            out[0] = y->d + ((size_t)oy * y->w + ox) * O;
            out[1] = right ? out[0] + O : NULL;
            out[2] = down ? out[0] + (size_t)y->w * O : NULL;
            out[3] = down && right ? out[2] + O : NULL;
            for (int o = 0; o < O; o += F4_W) {
                f4 a[4][2]; /* a = M A, per row of M */
                for (int r = 0; r < 4; r++) {
                    f4 m0 = f4_load(m + (size_t)(r * 4) * ps + o);
                    f4 m1 = f4_load(m + (size_t)(r * 4 + 1) * ps + o);
                    f4 m2 = f4_load(m + (size_t)(r * 4 + 2) * ps + o);
                    f4 m3 = f4_load(m + (size_t)(r * 4 + 3) * ps + o);
                    a[r][0] = f4_add(f4_add(m0, m1), m2);
                    a[r][1] = f4_sub(f4_sub(m1, m2), m3);
                }
                f4 b = f4_load(j->l->bias + o);
                f4 res[4] = {
                    f4_add(f4_add(f4_add(a[0][0], a[1][0]), a[2][0]), b),
                    f4_add(f4_add(f4_add(a[0][1], a[1][1]), a[2][1]), b),
                    f4_add(f4_sub(f4_sub(a[1][0], a[2][0]), a[3][0]), b),
                    f4_add(f4_sub(f4_sub(a[1][1], a[2][1]), a[3][1]), b),
                };
                for (int k = 0; k < 4; k++) {
                    if (!out[k])
                        continue;
                    f4_store(out[k] + o, relu ? f4_relu(res[k]) : res[k]);
                }
            }
        }
    }
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
