/* prep.c: the networks' input transform, as the reference computes it (NetInput.toBatchTensor):
 * a region of the picture is zero-padded to a square — detectors append the padding at the
 * bottom/right, face networks centre the picture (padToSquare: round(diff / 2) after, the rest
 * before) — then resized to side x side with TensorFlow's legacy bilinear (alignCorners false,
 * halfPixelCenters false: source = out_index * in / out, interpolated between floor and
 * min(ceil, in - 1)), then normalised per channel as (v - mean[c]) * inv_std.
 *
 * The padding and the resize are fused: every output pixel samples the virtual padded square,
 * reading zeros outside the picture, which gives the two-step result without the padded copy.
 * Rows are split over the ctx's pool; the output is allocated from the ctx's arena. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "face/internal.h"

typedef struct prep_job {
    const image_t *img;
    int rx, ry, rw, rh; /* region in the picture */
    int top, left;      /* padding before, in source pixels */
    int square, side;
    const float *col_x0, *col_fx; /* per output column: floor source column (padded), fraction */
    const float *mean;
    float inv_std;
    face_tensor_t *y;
} prep_job_t;

/* The padded square's pixel (r, c) channel ch, 0 outside the picture region. */
static inline float px(const prep_job_t *j, int r, int c, int ch)
{
    int sr = r - j->top, sc = c - j->left;
    if (sr < 0 || sr >= j->rh || sc < 0 || sc >= j->rw)
        return 0.0f;
    return (float)j->img->rgb[((size_t)(j->ry + sr) * j->img->width + (j->rx + sc)) * 3 + ch];
}

static void prep_task(void *vctx, int ti, int nt)
{
    const prep_job_t *j = vctx;
    int S = j->square, side = j->side;
    float ratio = (float)S / (float)side;
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
        float *out = j->y->d + (size_t)oy * side * 3;
        for (int ox = 0; ox < side; ox++) {
            int x0 = (int)j->col_x0[ox], x1 = x0 + 1;
            float fx = j->col_fx[ox];
            if (x1 > S - 1)
                x1 = S - 1;
            for (int ch = 0; ch < 3; ch++) {
                float tl = px(j, y0, x0, ch), tr = px(j, y0, x1, ch);
                float bl = px(j, y1, x0, ch), br = px(j, y1, x1, ch);
                float top = tl + (tr - tl) * fx;
                float bot = bl + (br - bl) * fx;
                float v = top + (bot - top) * fy;
                out[ox * 3 + ch] = (v - j->mean[ch]) * j->inv_std;
            }
        }
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
    float *tab = face__arena_alloc(&ctx->arena, 2 * (size_t)side);
    if (!tab)
        return -ENOMEM;
    float ratio = (float)S / (float)side;
    for (int ox = 0; ox < side; ox++) {
        float sx = (float)ox * ratio;
        int x0 = (int)floorf(sx);
        tab[ox] = (float)x0;
        tab[side + ox] = sx - (float)x0;
    }
    prep_job_t j = {img, rx, ry, rw, rh, top, left, S, side, tab, tab + side, mean, inv_std, y};
    nn_pool_run(ctx->pool, prep_task, &j);
    face__arena_reset(&ctx->arena, mark);
    *square = S;
    return 0;
}
