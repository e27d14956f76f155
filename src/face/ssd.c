/* ssd.c: face-api's SSD MobileNet v1 face detector. Layers (512 x 512 input, x / 127.5 - 1):
 *   conv_0            3x3 conv stride 2, 3 -> 32, + offset, relu6                      256
 *   conv_1..13        depthwise 3x3 (stride 2 at 2, 4, 6, 12) + batch norm, relu6, then
 *                     1x1 conv + offset, relu6: 64, 128, 128, 256, 256, 512 x6, 1024 x2  -> 16
 *   prediction conv_0..7: 1x1 / 3x3 stride 2 pairs, relu6: 16 -> 8 -> 4 -> 2 -> 1
 *   box predictors 0..5 on conv_11 (32x32, 3 anchors), conv_13 (16x16, 6), and the prediction
 *                     layer's 8x8, 4x4, 2x2, 1x1 maps (6 each): 5118 boxes, each 4 box encodings
 *                     and 3 class logits (the face score is sigmoid of the second)
 * Batch norms are folded into the depthwise filters and a bias at load time (the weights' own
 * block is rewritten). Boxes are decoded against the model's anchors (Output/extra_dim) with the
 * SSD variances 10, 10, 5, 5, suppressed at IoU 0.5, clipped to [0, 1] of the padded square and
 * mapped to the picture as the reference does (rounded resized dimensions). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "face/internal.h"

enum { SSD_INPUT = 512, SSD_PAIRS = 13, SSD_PRED_CONVS = 8, SSD_PREDICTORS = 6, SSD_BOXES = 5118 };
#define SSD_BN_EPSILON 0.0010000000474974513f

struct face_ssd_net {
    face_weights_t *w;
    face_conv_t conv0;
    face_dwconv_t dw[SSD_PAIRS];
    face_conv_t pw[SSD_PAIRS];
    float *dw_bias; /* SSD_PAIRS x 1024: the folded batch norms' offsets */
    face_conv_t pred[SSD_PRED_CONVS];
    face_conv_t box[SSD_PREDICTORS], cls[SSD_PREDICTORS];
    const float *anchors; /* [5118][4] */
};

void face__ssd_free(face_ssd_net_t **pn)
{
    if (!pn || !*pn)
        return;
    face__weights_free(&(*pn)->w);
    free((*pn)->dw_bias);
    free(*pn);
    *pn = NULL;
}

static int get(face_weights_t *w, const char *name, int nd, const int *shape, const float **out,
               char *err, size_t errcap)
{
    *out = face__weights_get(w, name, nd, shape, err, errcap);
    return *out ? 0 : CORE_EBADMEDIA;
}

/* prefix/weights [k][k][cin][cout] and prefix/<bias_name> [cout]; SAME padding. */
static int load_conv(face_weights_t *w, const char *prefix, const char *bias_name, int k,
                     int stride, int cin, int cout, face_conv_t *l, char *err, size_t errcap)
{
    char n[128];
    const int fs[4] = {k, k, cin, cout}, bs[1] = {cout};
    *l = (face_conv_t){k, stride, cin, cout, FACE_PAD_SAME, NULL, NULL};
    snprintf(n, sizeof n, "%s/weights", prefix);
    int rc = get(w, n, 4, fs, &l->w, err, errcap);
    snprintf(n, sizeof n, "%s/%s", prefix, bias_name);
    return rc ? rc : get(w, n, 1, bs, &l->bias, err, errcap);
}

/* MobilenetV1/Conv2d_<i>_depthwise with its batch norm folded: w' = w * g, b = beta - mean * g,
 * g = gamma / sqrt(var + eps) (tf.batchNorm's algebra). */
static int load_dw(face_weights_t *w, int i, int c, int stride, float *bias, face_dwconv_t *l,
                   char *err, size_t errcap)
{
    char n[128];
    const int fs[4] = {3, 3, c, 1}, vs[1] = {c};
    const float *gamma, *beta, *mean, *var;
    const float *f;
    snprintf(n, sizeof n, "MobilenetV1/Conv2d_%d_depthwise/depthwise_weights", i);
    int rc = get(w, n, 4, fs, &f, err, errcap);
    static const char *const bn[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    const float **dst[4] = {&gamma, &beta, &mean, &var};
    for (int k = 0; !rc && k < 4; k++) {
        snprintf(n, sizeof n, "MobilenetV1/Conv2d_%d_depthwise/BatchNorm/%s", i, bn[k]);
        rc = get(w, n, 1, vs, dst[k], err, errcap);
    }
    if (rc)
        return rc;
    float *fw = (float *)f; /* the weights' block is ours to rewrite */
    for (int ch = 0; ch < c; ch++) {
        float g = gamma[ch] / sqrtf(var[ch] + SSD_BN_EPSILON);
        for (int t = 0; t < 9; t++)
            fw[t * c + ch] *= g;
        bias[ch] = beta[ch] - mean[ch] * g;
    }
    *l = (face_dwconv_t){3, stride, c, FACE_PAD_SAME, fw, bias};
    return 0;
}

int face__ssd_load(const char *dir, face_ssd_net_t **out, char *err, size_t errcap)
{
    static const int pair_out[SSD_PAIRS + 1] = {32,  64,  128, 128, 256, 256, 512,
                                                512, 512, 512, 512, 512, 1024, 1024};
    static const int pred_out[SSD_PRED_CONVS] = {256, 512, 128, 256, 128, 256, 64, 128};
    static const int predictor_in[SSD_PREDICTORS] = {512, 1024, 512, 256, 256, 128};
    *out = NULL;
    face_ssd_net_t *n = calloc(1, sizeof *n);
    if (!n || !(n->dw_bias = calloc((size_t)SSD_PAIRS * 1024, sizeof(float)))) {
        free(n);
        return -ENOMEM;
    }
    int rc = face__weights_load(dir, "ssd_mobilenetv1_model", &n->w, err, errcap);
    if (!rc)
        rc = load_conv(n->w, "MobilenetV1/Conv2d_0_pointwise", "convolution_bn_offset", 3, 2, 3, 32,
                       &n->conv0, err, errcap);
    for (int i = 1; !rc && i <= SSD_PAIRS; i++) {
        int c = pair_out[i - 1], stride = (i == 2 || i == 4 || i == 6 || i == 12) ? 2 : 1;
        rc = load_dw(n->w, i, c, stride, n->dw_bias + (size_t)(i - 1) * 1024, &n->dw[i - 1], err,
                     errcap);
        char p[64];
        snprintf(p, sizeof p, "MobilenetV1/Conv2d_%d_pointwise", i);
        if (!rc)
            rc = load_conv(n->w, p, "convolution_bn_offset", 1, 1, c, pair_out[i], &n->pw[i - 1],
                           err, errcap);
    }
    for (int i = 0; !rc && i < SSD_PRED_CONVS; i++) {
        char p[64];
        snprintf(p, sizeof p, "Prediction/Conv2d_%d_pointwise", i);
        int cin = i == 0 ? 1024 : pred_out[i - 1];
        rc = load_conv(n->w, p, "convolution_bn_offset", i % 2 ? 3 : 1, i % 2 ? 2 : 1, cin,
                       pred_out[i], &n->pred[i], err, errcap);
    }
    for (int i = 0; !rc && i < SSD_PREDICTORS; i++) {
        char p[96];
        int anchors = i == 0 ? 3 : 6;
        snprintf(p, sizeof p, "Prediction/BoxPredictor_%d/BoxEncodingPredictor", i);
        rc = load_conv(n->w, p, "biases", 1, 1, predictor_in[i], anchors * 4, &n->box[i], err,
                       errcap);
        snprintf(p, sizeof p, "Prediction/BoxPredictor_%d/ClassPredictor", i);
        if (!rc)
            rc = load_conv(n->w, p, "biases", 1, 1, predictor_in[i], anchors * 3, &n->cls[i], err,
                           errcap);
    }
    if (!rc) {
        const int as[3] = {1, SSD_BOXES, 4};
        rc = get(n->w, "Output/extra_dim", 3, as, &n->anchors, err, errcap);
    }
    if (rc) {
        if (rc == CORE_EBADMEDIA) {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "SSD MobileNet v1: %s", err);
            snprintf(err, errcap, "%s", tmp);
        }
        face__ssd_free(&n);
        return rc;
    }
    *out = n;
    return 0;
}

/* Decodes one predictor's maps into boxes [ymin, xmin, ymax, xmax] (relative to the padded
 * square) and scores, from box index b0 on. Returns the next box index. */
static int decode(const face_ssd_net_t *n, const face_tensor_t *box, const face_tensor_t *cls,
                  int anchors, int b, float (*out)[4], float *scores)
{
    size_t cells = (size_t)box->h * box->w;
    for (size_t cell = 0; cell < cells; cell++)
        for (int a = 0; a < anchors && b < SSD_BOXES; a++, b++) {
            const float *p = box->d + cell * box->c + a * 4;
            const float *an = n->anchors + (size_t)b * 4;
            float sy = an[2] - an[0], sx = an[3] - an[1];
            float cy = an[0] + sy / 2, cx = an[1] + sx / 2;
            float hh = expf(p[2] / 5) * sy / 2, hw = expf(p[3] / 5) * sx / 2;
            float y = p[0] / 10 * sy + cy, x = p[1] / 10 * sx + cx;
            out[b][0] = y - hh;
            out[b][1] = x - hw;
            out[b][2] = y + hh;
            out[b][3] = x + hw;
            scores[b] = face__sigmoid(cls->d[cell * cls->c + a * 3 + 1]);
        }
    return b;
}

int face__ssd_detect(face_ctx_t *ctx, const face_ssd_net_t *net, const image_t *img,
                     float min_score, int max_out, face_box_t *boxes, float *scores, int *n_out)
{
    *n_out = 0;
    if (min_score <= 0)
        min_score = 0.5f;
    if (!img || img->width <= 0 || img->height <= 0 || max_out < 0)
        return -EINVAL;
    static const float mean[3] = {127.5f, 127.5f, 127.5f};
    size_t mark = face__arena_mark(&ctx->arena);
    face_tensor_t x, a, b, conv11 = {0}, maps[SSD_PREDICTORS];
    int sq, rc = face__prep(ctx, img, 0, 0, img->width, img->height, false, SSD_INPUT, mean,
                            1.0f / 127.5f, &x, &sq);
    if (!rc)
        rc = face__conv(ctx, &x, &net->conv0, FACE_ACT_RELU6, &a);
    for (int i = 0; !rc && i < SSD_PAIRS; i++) {
        rc = face__dw_pw(ctx, &a, &net->dw[i], FACE_ACT_RELU6, &net->pw[i], FACE_ACT_RELU6, &b);
        a = b;
        if (i == 10)
            conv11 = a;
    }
    maps[0] = conv11;
    maps[1] = a;
    for (int i = 0; !rc && i < SSD_PRED_CONVS; i++) {
        rc = face__conv(ctx, &a, &net->pred[i], FACE_ACT_RELU6, &b);
        a = b;
        if (i % 2)
            maps[2 + i / 2] = b;
    }
    if (rc)
        goto out;

    float(*dec)[4] = (float(*)[4])face__arena_alloc(&ctx->arena, 4 * (size_t)SSD_BOXES);
    float *sc = face__arena_alloc(&ctx->arena, SSD_BOXES);
    face_box_t *nb = (face_box_t *)face__arena_alloc(&ctx->arena, 4 * (size_t)SSD_BOXES);
    int *keep = (int *)face__arena_alloc(&ctx->arena, SSD_BOXES);
    if (!dec || !sc || !nb || !keep) {
        rc = -ENOMEM;
        goto out;
    }
    int nbox = 0;
    for (int i = 0; !rc && i < SSD_PREDICTORS; i++) {
        face_tensor_t bo, cl;
        rc = face__conv(ctx, &maps[i], &net->box[i], FACE_ACT_NONE, &bo);
        if (!rc)
            rc = face__conv(ctx, &maps[i], &net->cls[i], FACE_ACT_NONE, &cl);
        if (!rc)
            nbox = decode(net, &bo, &cl, i == 0 ? 3 : 6, nbox, dec, sc);
    }
    if (rc)
        goto out;
    if (nbox != SSD_BOXES) {
        rc = -EINVAL; /* cannot happen with the checked shapes: the maps give 5118 boxes */
        goto out;
    }
    for (int i = 0; i < nbox; i++) {
        float y0 = fminf(dec[i][0], dec[i][2]), x0 = fminf(dec[i][1], dec[i][3]);
        float y1 = fmaxf(dec[i][0], dec[i][2]), x1 = fmaxf(dec[i][1], dec[i][3]);
        nb[i] = (face_box_t){x0, y0, x1 - x0, y1 - y0};
    }
    int k = face__nms(nb, sc, nbox, max_out < nbox ? max_out : nbox, 0.5f, min_score, keep);

    double scale = (double)SSD_INPUT / (img->width > img->height ? img->width : img->height);
    /* a sliver thinner than half an input pixel rounds to 0 (the reference then divides by 0) */
    double pad_x = SSD_INPUT / fmax(1, floor(img->width * scale + 0.5));
    double pad_y = SSD_INPUT / fmax(1, floor(img->height * scale + 0.5));
    for (int i = 0; i < k; i++) {
        const float *d = dec[keep[i]];
        double top = fmax(0, d[0]) * pad_y, bottom = fmin(1, d[2]) * pad_y;
        double left = fmax(0, d[1]) * pad_x, right = fmin(1, d[3]) * pad_x;
        boxes[i] = (face_box_t){(float)(left * img->width), (float)(top * img->height),
                                (float)((right - left) * img->width),
                                (float)((bottom - top) * img->height)};
        scores[i] = sc[keep[i]];
    }
    *n_out = k;
out:
    face__arena_reset(&ctx->arena, mark);
    return rc;
}
