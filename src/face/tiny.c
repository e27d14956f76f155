/* tiny.c: face-api's tiny face detector (TinyFaceDetector over TinyYolov2Base with separable
 * convolutions). Layers (shapes at the default 416 input; H = input side):
 *   conv0    3x3 conv, VALID, 3 -> 16, leaky              H-2
 *   maxpool  2x2 stride 2 SAME                            (H-2)/2
 *   conv1..5 separable 3x3 (pad 1, so SAME) + bias, leaky: 16 -> 32 -> 64 -> 128 -> 256 -> 512,
 *            each followed by a 2x2 maxpool, stride 2 (stride 1 after conv5)     -> H/32
 *   conv8    1x1 conv, VALID, 512 -> 25 = 5 anchors x (x, y, w, h, score)
 * The input is the picture padded at the bottom/right to a square, resized to H x H (prep.c),
 * (v - [117.001, 114.697, 97.404]) / 255. Boxes are decoded per cell and anchor with sigmoid and
 * exp as YOLOv2 does, then NMS at IoU 0.4, and mapped back to the picture the way the reference
 * does it: relative to the resized picture's rounded dimensions (computeReshapedDimensions), then
 * times the picture's size. The model has no batch norm (the weights hold the folded biases). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "face/internal.h"

enum { TINY_ANCHORS = 5, TINY_SEP = 5 };

static const double tiny_anchors[TINY_ANCHORS][2] = {
    {1.603231, 2.094468}, {6.041143, 7.080126}, {2.882459, 3.518061},
    {4.266906, 5.178857}, {9.041765, 10.66308},
};
static const float tiny_mean[3] = {117.001f, 114.697f, 97.404f};

struct face_tiny_net {
    face_weights_t *w;
    face_conv_t conv0;
    face_sepconv_t sep[TINY_SEP];
    face_conv_t conv8;
};

void face__tiny_free(face_tiny_net_t **pn)
{
    if (!pn || !*pn)
        return;
    face__weights_free(&(*pn)->w);
    free(*pn);
    *pn = NULL;
}

/* The tensor `name` of the given shape, or CORE_EBADMEDIA with the reason in err. */
static int get(face_weights_t *w, const char *name, int nd, const int *shape, const float **out,
               char *err, size_t errcap)
{
    *out = face__weights_get(w, name, nd, shape, err, errcap);
    return *out ? 0 : CORE_EBADMEDIA;
}

static int load_conv(face_weights_t *w, const char *name, int k, int cin, int cout,
                     face_conv_t *l, char *err, size_t errcap)
{
    char n[64];
    const int fs[4] = {k, k, cin, cout}, bs[1] = {cout};
    l->k = k;
    l->stride = 1;
    l->cin = cin;
    l->cout = cout;
    l->pad = FACE_PAD_VALID;
    snprintf(n, sizeof n, "%s/filters", name);
    int rc = get(w, n, 4, fs, &l->w, err, errcap);
    snprintf(n, sizeof n, "%s/bias", name);
    return rc ? rc : get(w, n, 1, bs, &l->bias, err, errcap);
}

static int load_sep(face_weights_t *w, const char *name, int cin, int cout, face_sepconv_t *l,
                    char *err, size_t errcap)
{
    char n[64];
    const int ds[4] = {3, 3, cin, 1}, ps[4] = {1, 1, cin, cout}, bs[1] = {cout};
    l->dw = (face_dwconv_t){3, 1, cin, FACE_PAD_SAME, NULL, NULL};
    l->pw = (face_conv_t){1, 1, cin, cout, FACE_PAD_SAME, NULL, NULL};
    snprintf(n, sizeof n, "%s/depthwise_filter", name);
    int rc = get(w, n, 4, ds, &l->dw.w, err, errcap);
    snprintf(n, sizeof n, "%s/pointwise_filter", name);
    if (!rc)
        rc = get(w, n, 4, ps, &l->pw.w, err, errcap);
    snprintf(n, sizeof n, "%s/bias", name);
    return rc ? rc : get(w, n, 1, bs, &l->pw.bias, err, errcap);
}

int face__tiny_load(const char *dir, face_tiny_net_t **out, char *err, size_t errcap)
{
    static const int ch[TINY_SEP + 1] = {16, 32, 64, 128, 256, 512};
    *out = NULL;
    face_tiny_net_t *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    int rc = face__weights_load(dir, "tiny_face_detector_model", &n->w, err, errcap);
    if (!rc)
        rc = load_conv(n->w, "conv0", 3, 3, 16, &n->conv0, err, errcap);
    for (int i = 0; !rc && i < TINY_SEP; i++) {
        char name[16];
        snprintf(name, sizeof name, "conv%d", i + 1);
        rc = load_sep(n->w, name, ch[i], ch[i + 1], &n->sep[i], err, errcap);
    }
    if (!rc)
        rc = load_conv(n->w, "conv8", 1, 512, TINY_ANCHORS * 5, &n->conv8, err, errcap);
    if (rc) {
        if (rc == CORE_EBADMEDIA) {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "tiny face detector: %s", err);
            snprintf(err, errcap, "%s", tmp);
        }
        face__tiny_free(&n);
        return rc;
    }
    *out = n;
    return 0;
}

/* The network's raw output (H/32 x H/32 x 25) for the prepared input x. */
static int tiny_forward(face_ctx_t *ctx, const face_tiny_net_t *n, const face_tensor_t *x,
                        face_tensor_t *out)
{
    face_tensor_t a, b;
    int rc = face__conv_maxpool(ctx, x, &n->conv0, FACE_ACT_LEAKY, 2, 2, FACE_PAD_SAME, &b);
    for (int i = 0; !rc && i < TINY_SEP; i++) {
        rc = face__sepconv_maxpool(ctx, &b, &n->sep[i], FACE_ACT_LEAKY, 2,
                                   i < TINY_SEP - 1 ? 2 : 1, FACE_PAD_SAME, &a);
        b = a;
    }
    return rc ? rc : face__conv(ctx, &b, &n->conv8, FACE_ACT_NONE, out);
}

static double sigmoid_d(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

int face__tiny_detect(face_ctx_t *ctx, const face_tiny_net_t *net, const image_t *img,
                      int input_size, float min_score, int max_out, face_box_t *boxes,
                      float *scores, int *n_out)
{
    *n_out = 0;
    if (input_size <= 0)
        input_size = 416;
    if (min_score <= 0)
        min_score = 0.5f;
    if (input_size % 32 != 0 || input_size > 2048 || !img || img->width <= 0 ||
        img->height <= 0 || max_out < 0)
        return -EINVAL;
    size_t mark = face__arena_mark(&ctx->arena);
    face_tensor_t x, y;
    int sq, rc = face__prep(ctx, img, 0, 0, img->width, img->height, false, input_size, tiny_mean,
                            1.0f / 255.0f, &x, &sq);
    if (!rc)
        rc = tiny_forward(ctx, net, &x, &y);
    if (rc)
        goto out;

    /* the reference's geometry: the picture resized into the input, dimensions rounded */
    double scale = (double)input_size / (img->width > img->height ? img->width : img->height);
    double rw = floor(img->width * scale + 0.5), rh = floor(img->height * scale + 0.5);
    /* a sliver thinner than half an input pixel rounds to 0 (the reference then divides by 0) */
    rw = rw < 1 ? 1 : rw;
    rh = rh < 1 ? 1 : rh;
    double side = rw > rh ? rw : rh, corr_x = side / rw, corr_y = side / rh;
    int cells = y.h, total = cells * cells * TINY_ANCHORS;
    face_box_t *cand = (face_box_t *)face__arena_alloc(&ctx->arena, 4 * (size_t)total);
    float *cs = face__arena_alloc(&ctx->arena, (size_t)total);
    int *keep = (int *)face__arena_alloc(&ctx->arena, (size_t)total);
    if (!cand || !cs || !keep) {
        rc = -ENOMEM;
        goto out;
    }
    int m = 0;
    for (int row = 0; row < cells; row++)
        for (int col = 0; col < cells; col++)
            for (int a = 0; a < TINY_ANCHORS; a++) {
                const float *v = y.d + ((size_t)row * cells + col) * y.c + a * 5;
                double score = sigmoid_d(v[4]);
                if (!(score > min_score))
                    continue;
                double cx = (col + sigmoid_d(v[0])) / cells * corr_x;
                double cy = (row + sigmoid_d(v[1])) / cells * corr_y;
                double w = exp(v[2]) * tiny_anchors[a][0] / cells * corr_x;
                double h = exp(v[3]) * tiny_anchors[a][1] / cells * corr_y;
                /* relative to the picture: x by its width, y by its height */
                cand[m] = (face_box_t){(float)((cx - w / 2) * img->width),
                                       (float)((cy - h / 2) * img->height),
                                       (float)(w * img->width), (float)(h * img->height)};
                cs[m] = (float)score;
                m++;
            }
    int k = face__nms(cand, cs, m, total, 0.4f, min_score, keep);
    for (int i = 0; i < k && i < max_out; i++) {
        boxes[i] = cand[keep[i]];
        scores[i] = cs[keep[i]];
        (*n_out)++;
    }
out:
    face__arena_reset(&ctx->arena, mark);
    return rc;
}
