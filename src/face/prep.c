/* prep.c: the networks' input transform, as the reference computes it (NetInput.toBatchTensor):
 * a region of the picture is zero-padded to a square — detectors append the padding at the
 * bottom/right, face networks centre the picture (padToSquare: round(diff / 2) after, the rest
 * before) — then resized to side x side with TensorFlow's legacy bilinear (alignCorners false,
 * halfPixelCenters false: source = out_index * in / out, interpolated between floor and
 * min(ceil, in - 1)), then normalised per channel as (v - mean[c]) * inv_std.
 *
 * The padding and the resize are fused: output rows sample the virtual padded square, reading
 * zeros outside the picture, which gives the two-step result without the padded copy. The resize
 * is done separably with the same float operations in the same order as the one-step formula
 * (each source row interpolated horizontally once and kept while the next output row needs it,
 * then the vertical blend), so results are bit-identical to it. Rows are split over the ctx's
 * pool; the output and the scratch rows come from the ctx's arena. */
#include <errno.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "face/internal.h"

typedef struct prep_job {
    const image_t *img;
    int rx, ry, rw, rh; /* region in the picture */
    int top;            /* padding rows before, in source pixels */
    int square, side;
    const int *col_x0, *col_x1; /* per output column: region columns to blend, -1 = padding */
    const float *col_fx;
    const int *el_x0, *el_x1; /* per output element (side x 3): index into a float source row,
                                 rw * 3 (a zero) for the padding */
    const float *el_fx;
    float *scratch; /* per thread: two horizontally resized rows of side x 3, a source row */
    const float *mean_row; /* side x 3: mean[0], mean[1], mean[2], mean[0], ... */
    float inv_std;
    face_tensor_t *y;
    bool avx2;
} prep_job_t;

/* Row r of the padded square resized horizontally: out[ox*3+ch] = tl + (tr - tl) * fx, exactly
 * the first half of the bilinear formula, with zeros for the padding. */
static void hrow(const prep_job_t *j, int r, float *out)
{
    int sr = r - j->top, side = j->side;
    if (sr < 0 || sr >= j->rh) {
        memset(out, 0, (size_t)side * 3 * sizeof(float));
        return;
    }
    const uint8_t *src = j->img->rgb + ((size_t)(j->ry + sr) * j->img->width + j->rx) * 3;
    for (int ox = 0; ox < side; ox++) {
        int x0 = j->col_x0[ox], x1 = j->col_x1[ox];
        float fx = j->col_fx[ox];
        for (int ch = 0; ch < 3; ch++) {
            float l = x0 >= 0 ? (float)src[x0 * 3 + ch] : 0.0f;
            float rr = x1 >= 0 ? (float)src[x1 * 3 + ch] : 0.0f;
            out[ox * 3 + ch] = l + (rr - l) * fx;
        }
    }
}

/* hrow with AVX2: the source row converted to floats once (a zero after it for the padding),
 * then 8 output elements at a time from two gathers; same operations, same bits. */
__attribute__((target("avx2"))) static void hrow_avx2(const prep_job_t *j, int r, float *out,
                                                       float *srcf)
{
    int sr = r - j->top, n = j->side * 3, m = j->rw * 3;
    if (sr < 0 || sr >= j->rh) {
        memset(out, 0, (size_t)n * sizeof(float));
        return;
    }
    const uint8_t *src = j->img->rgb + ((size_t)(j->ry + sr) * j->img->width + j->rx) * 3;
    int i = 0;
    for (; i + 8 <= m; i += 8) {
        __m128i b8 = _mm_loadl_epi64((const __m128i *)(src + i));
        _mm256_storeu_ps(srcf + i, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b8)));
    }
    for (; i < m; i++)
        srcf[i] = (float)src[i];
    srcf[m] = 0.0f;
    i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 l = _mm256_i32gather_ps(srcf, _mm256_loadu_si256((const __m256i *)(j->el_x0 + i)), 4);
        __m256 rr = _mm256_i32gather_ps(srcf, _mm256_loadu_si256((const __m256i *)(j->el_x1 + i)), 4);
        __m256 f = _mm256_loadu_ps(j->el_fx + i);
        _mm256_storeu_ps(out + i, _mm256_add_ps(l, _mm256_mul_ps(_mm256_sub_ps(rr, l), f)));
    }
    for (; i < n; i++) {
        float l = srcf[j->el_x0[i]], rr = srcf[j->el_x1[i]];
        out[i] = l + (rr - l) * j->el_fx[i];
    }
}

/* out = (t + (b - t) * fy - mean) * inv_std over n floats, mean a row of the repeating per-channel
 * means; separate multiplies and adds, so the result is the scalar code's to the bit. */
__attribute__((target("avx2"))) static void vrow_avx2(const float *t, const float *b, float fy,
                                                       const float *mean, float inv_std,
                                                       float *out, int n)
{
    __m256 vf = _mm256_set1_ps(fy), vi = _mm256_set1_ps(inv_std);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vt = _mm256_loadu_ps(t + i), vb = _mm256_loadu_ps(b + i);
        __m256 v = _mm256_add_ps(vt, _mm256_mul_ps(_mm256_sub_ps(vb, vt), vf));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_sub_ps(v, _mm256_loadu_ps(mean + i)), vi));
    }
    for (; i < n; i++)
        out[i] = (t[i] + (b[i] - t[i]) * fy - mean[i]) * inv_std;
}

static void vrow_scalar(const float *t, const float *b, float fy, const float *mean,
                        float inv_std, float *out, int n)
{
    for (int i = 0; i < n; i++) {
        float v = t[i] + (b[i] - t[i]) * fy;
        out[i] = (v - mean[i]) * inv_std;
    }
}

static void prep_task(void *vctx, int ti, int nt)
{
    const prep_job_t *j = vctx;
    int S = j->square, side = j->side;
    float ratio = (float)S / (float)side;
    size_t per = 6 * (size_t)side + 3 * (size_t)j->rw + 8;
    float *buf[2] = {j->scratch + (size_t)ti * per, j->scratch + (size_t)ti * per + 3 * side};
    float *srcf = j->scratch + (size_t)ti * per + 6 * side;
    int tag[2] = {-1, -1};
    int r0 = (int)((long)side * ti / nt), r1 = (int)((long)side * (ti + 1) / nt);
    for (int oy = r0; oy < r1; oy++) {
        float sy = (float)oy * ratio;
        int y0 = (int)floorf(sy);
        if (y0 < 0)
            y0 = 0;
        int y1 = (int)ceilf(sy);
        if (y1 > S - 1)
            y1 = S - 1;
        float fy = sy - (float)y0;
        /* the two rows, reusing what the previous output row computed */
        const float *rows[2];
        int want[2] = {y0, y1};
        for (int k = 0; k < 2; k++) {
            int slot = tag[0] == want[k] ? 0 : tag[1] == want[k] ? 1 : -1;
            if (slot < 0) {
                /* evict the slot the other wanted row does not use */
                int other = k == 0 ? y1 : y0;
                slot = tag[0] == other ? 1 : 0;
                if (j->avx2)
                    hrow_avx2(j, want[k], buf[slot], srcf);
                else
                    hrow(j, want[k], buf[slot]);
                tag[slot] = want[k];
            }
            rows[k] = buf[slot];
        }
        float *out = j->y->d + (size_t)oy * side * 3;
        if (j->avx2)
            vrow_avx2(rows[0], rows[1], fy, j->mean_row, j->inv_std, out, side * 3);
        else
            vrow_scalar(rows[0], rows[1], fy, j->mean_row, j->inv_std, out, side * 3);
    }
}

int face__prep(face_ctx_t *ctx, const image_t *img, int rx, int ry, int rw, int rh, bool pad_centre,
               int side, const float mean[3], float inv_std, face_tensor_t *y, int *square)
{
    if (!img || !img->rgb || rw <= 0 || rh <= 0 || rx < 0 || ry < 0 || rx + rw > img->width ||
        ry + rh > img->height || side <= 0)
        return -EINVAL;
    int S = rw > rh ? rw : rh;
    int diff = S - (rw < rh ? rw : rh);
    /* padToSquare: round(diff * 0.5) (or all of it) goes after, the rest before */
    int after = pad_centre ? (diff + 1) / 2 : diff;
    int before = diff - after;
    int top = rh < rw ? before : 0, left = rw < rh ? before : 0;
    int rc = face__tensor(&ctx->arena, side, side, 3, y);
    if (rc < 0)
        return rc;
    size_t mark = face__arena_mark(&ctx->arena);
    int nt = nn_pool_threads(ctx->pool); /* face__run may use fewer */
    float *tab = face__arena_alloc(&ctx->arena, 15 * (size_t)side);
    float *scratch =
        face__arena_alloc(&ctx->arena, (size_t)nt * (6 * (size_t)side + 3 * (size_t)rw + 8));
    if (!tab || !scratch)
        return -ENOMEM;
    int *cx0 = (int *)tab, *cx1 = (int *)(tab + side);
    float *cfx = tab + 2 * side, *mean_row = tab + 3 * side;
    for (int i = 0; i < 3 * side; i++)
        mean_row[i] = mean[i % 3];
    float ratio = (float)S / (float)side;
    for (int ox = 0; ox < side; ox++) {
        float sx = (float)ox * ratio;
        int x0 = (int)floorf(sx), x1 = x0 + 1 < S ? x0 + 1 : S - 1;
        cfx[ox] = sx - (float)x0;
        x0 -= left;
        x1 -= left;
        cx0[ox] = x0 >= 0 && x0 < rw ? x0 : -1;
        cx1[ox] = x1 >= 0 && x1 < rw ? x1 : -1;
    }
    int *ex0 = (int *)(tab + 6 * side), *ex1 = (int *)(tab + 9 * side);
    float *efx = tab + 12 * side;
    for (int i = 0; i < 3 * side; i++) {
        int ox = i / 3, ch = i % 3;
        ex0[i] = cx0[ox] >= 0 ? cx0[ox] * 3 + ch : 3 * rw;
        ex1[i] = cx1[ox] >= 0 ? cx1[ox] * 3 + ch : 3 * rw;
        efx[i] = cfx[ox];
    }
    prep_job_t j = {img,  rx,  ry,      rw,       rh,      top,     S, side, cx0, cx1, cfx,
                    ex0,  ex1, efx,     scratch,  mean_row, inv_std, y, face__ops_isa() >= 1};
    face__run(ctx, prep_task, &j, (double)side * side * 12);
    face__arena_reset(&ctx->arena, mark);
    *square = S;
    return 0;
}
