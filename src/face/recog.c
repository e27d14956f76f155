/* recog.c: the face recognition network (faceRecognitionNet of the reference, a dlib-style
 * ResNet-34 variant) — 150 x 150 input cut from the landmarks' dlib alignment box (align.c),
 * out comes the 128-D descriptor whose Euclidean distance tells people apart (< 0.6: the same
 * person).
 *
 *   conv 7x7/2 valid, relu            150 -> 72 x 32
 *   max pool 3x3/2 valid               72 -> 35
 *   3 residual blocks                  35 x 32
 *   residual down + 3 residual         17 x 64
 *   residual down + 2 residual          8 x 128
 *   residual down + 2 residual          4 x 256  (the down conv gives 3; zero-padded to 4)
 *   residual down                       2 x 256  (1, padded to 2)
 *   mean over H, W; x [256][128]
 * A residual block: relu(x + conv2(relu(conv1(x)))). A down block: conv1 stride 2 valid, and
 * the shortcut is a 2x2/2 average pool with zero channels appended; where the convolution's
 * output is a row and a column short of the pool's, it is zero-padded bottom/right.
 * Every convolution is followed by a "scale" layer (x * weights + biases per channel), folded
 * into the convolution's filters and bias at load time. The 3x3 stride-1 convolutions on the two
 * largest maps run as Winograd F(2x2, 3x3) (winograd.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "face/internal.h"

enum {
    RECOG_INPUT = 150,
    RECOG_BLOCKS = 14,
    RECOG_FEATURES = 256,
    RECOG_WINO_MIN_PIXELS = 17 * 17, /* smallest map the Winograd convolution is used on */
};

typedef struct recog_block {
    bool down;
    face_conv_t conv1, conv2;
    face_wino_t wino1, wino2; /* the same layers for Winograd (wino1 empty in a down block) */
} recog_block_t;

struct face_recog_net {
    face_weights_t *weights; /* owns every tensor below except fc_bias */
    face_conv_t first;
    recog_block_t blocks[RECOG_BLOCKS];
    face_fc_t fc;
    float fc_bias[FACE_DESCRIPTOR_DIM]; /* zeros: the reference's fc has none */
};

/* side: the block's output map at the 150 input; Winograd filters are made for the blocks whose
 * map is at least RECOG_WINO_MIN_PIXELS (the others would only hold memory). */
static const struct {
    const char *name;
    int cin, cout;
    bool down;
    int side;
} recog_layout[RECOG_BLOCKS] = {
    { "conv32_1", 32, 32, false, 35 },      { "conv32_2", 32, 32, false, 35 },
    { "conv32_3", 32, 32, false, 35 },      { "conv64_down", 32, 64, true, 17 },
    { "conv64_1", 64, 64, false, 17 },      { "conv64_2", 64, 64, false, 17 },
    { "conv64_3", 64, 64, false, 17 },      { "conv128_down", 64, 128, true, 8 },
    { "conv128_1", 128, 128, false, 8 },    { "conv128_2", 128, 128, false, 8 },
    { "conv256_down", 128, 256, true, 4 },  { "conv256_1", 256, 256, false, 4 },
    { "conv256_2", 256, 256, false, 4 },    { "conv256_down_out", 256, 256, true, 2 },
};

void face__recog_free(face_recog_net_t **n)
{
    if (!n || !*n)
        return;
    for (int i = 0; i < RECOG_BLOCKS; i++) {
        face__wino_destroy(&(*n)->blocks[i].wino1);
        face__wino_destroy(&(*n)->blocks[i].wino2);
    }
    face__weights_free(&(*n)->weights);
    free(*n);
    *n = NULL;
}

/* prefix/conv/{filters,bias} with prefix/scale/{weights,biases} folded in. */
static int load_scaled_conv(face_weights_t *w, const char *prefix, int k, int cin, int cout,
                            int stride, face_pad_t pad, face_conv_t *out, char *err,
                            size_t errcap)
{
    char name[96];
    snprintf(name, sizeof name, "%s/conv", prefix);
    int rc = face__load_conv(w, name, k, cin, cout, stride, pad, out, err, errcap);
    if (rc)
        return rc;
    const int shape[1] = { cout };
    snprintf(name, sizeof name, "%s/scale/weights", prefix);
    const float *sw = face__weights_get(w, name, 1, shape, err, errcap);
    snprintf(name, sizeof name, "%s/scale/biases", prefix);
    const float *sb = sw ? face__weights_get(w, name, 1, shape, err, errcap) : NULL;
    if (!sb)
        return CORE_EBADMEDIA;
    /* The loader hands out mutable tensors so that this fold can happen in place. */
    float *filters = (float *)out->w, *bias = (float *)out->bias;
    size_t taps = (size_t)k * k * cin;
    for (size_t t = 0; t < taps; t++)
        for (int o = 0; o < cout; o++)
            filters[t * cout + o] *= sw[o];
    for (int o = 0; o < cout; o++)
        bias[o] = bias[o] * sw[o] + sb[o];
    return 0;
}

int face__recog_load(const char *dir, face_recog_net_t **out, char *err, size_t errcap)
{
    face_recog_net_t *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    int rc = face__weights_load(dir, "face_recognition_model", &n->weights, err, errcap);
    if (rc == 0)
        rc = load_scaled_conv(n->weights, "conv32_down", 7, 3, 32, 2, FACE_PAD_VALID, &n->first,
                              err, errcap);
    for (int i = 0; rc == 0 && i < RECOG_BLOCKS; i++) {
        recog_block_t *b = &n->blocks[i];
        char prefix[64];
        b->down = recog_layout[i].down;
        snprintf(prefix, sizeof prefix, "%s/conv1", recog_layout[i].name);
        rc = load_scaled_conv(n->weights, prefix, 3, recog_layout[i].cin, recog_layout[i].cout,
                              b->down ? 2 : 1, b->down ? FACE_PAD_VALID : FACE_PAD_SAME,
                              &b->conv1, err, errcap);
        if (rc)
            break;
        snprintf(prefix, sizeof prefix, "%s/conv2", recog_layout[i].name);
        rc = load_scaled_conv(n->weights, prefix, 3, recog_layout[i].cout, recog_layout[i].cout,
                              1, FACE_PAD_SAME, &b->conv2, err, errcap);
        bool wino = recog_layout[i].side * recog_layout[i].side >= RECOG_WINO_MIN_PIXELS;
        if (rc == 0 && wino && !b->down)
            rc = face__wino_init(&b->conv1, &b->wino1);
        if (rc == 0 && wino)
            rc = face__wino_init(&b->conv2, &b->wino2);
        if (rc == -ENOMEM)
            snprintf(err, errcap, "out of memory for the recognition network");
    }
    if (rc == 0) {
        const int shape[2] = { RECOG_FEATURES, FACE_DESCRIPTOR_DIM };
        n->fc.in = RECOG_FEATURES;
        n->fc.out = FACE_DESCRIPTOR_DIM;
        n->fc.w = face__weights_get(n->weights, "fc", 2, shape, err, errcap);
        n->fc.bias = n->fc_bias;
        if (!n->fc.w)
            rc = CORE_EBADMEDIA;
    }
    if (rc)
        face__recog_free(&n);
    *out = n;
    return rc;
}

/* The down block's join: relu(avgpool2x2(x) with zero channels appended + out zero-padded to
 * the pool's size). */
static int join_down(face_ctx_t *ctx, const face_tensor_t *x, const face_tensor_t *out,
                     face_tensor_t *y)
{
    int ph = x->h / 2, pw = x->w / 2, c = out->c;
    int rc = face__tensor(&ctx->arena, ph, pw, c, y);
    if (rc)
        return rc;
    for (int i = 0; i < ph; i++) {
        for (int j = 0; j < pw; j++) {
            float *d = y->d + ((size_t)i * pw + j) * c;
            if (i < out->h && j < out->w)
                memcpy(d, out->d + ((size_t)i * out->w + j) * c, sizeof(float) * c);
            else
                memset(d, 0, sizeof(float) * c);
            const float *a = x->d + ((size_t)(2 * i) * x->w + 2 * j) * x->c;
            const float *b = a + x->c;
            const float *e = a + (size_t)x->w * x->c;
            const float *f = e + x->c;
            for (int k = 0; k < x->c; k++)
                d[k] += (a[k] + b[k] + e[k] + f[k]) / 4;
            face__relu_copy(d, d, (size_t)c);
        }
    }
    return 0;
}

/* A 3x3 stride-1 layer: Winograd on the 35x35 and 17x17 maps, where it saves about 20% of the
 * network at 2 threads (10% at 1); on the 8x8 and smaller maps it saves nothing measurable, the
 * 16 small GEMMs reading 16/9 as many weights as the one im2col GEMM. */
static int conv3x3(face_ctx_t *ctx, const face_tensor_t *x, const face_conv_t *l,
                   const face_wino_t *w, face_act_t act, face_tensor_t *y)
{
    if (w->u && x->h * x->w >= RECOG_WINO_MIN_PIXELS)
        return face__wino_conv(ctx, x, w, act, y);
    return face__conv(ctx, x, l, act, y);
}

static int block_run(face_ctx_t *ctx, const recog_block_t *b, const face_tensor_t *x,
                     face_tensor_t *y)
{
    face_tensor_t t, u;
    int rc = b->down ? face__conv(ctx, x, &b->conv1, FACE_ACT_RELU, &t)
                     : conv3x3(ctx, x, &b->conv1, &b->wino1, FACE_ACT_RELU, &t);
    if (rc == 0)
        rc = conv3x3(ctx, &t, &b->conv2, &b->wino2, FACE_ACT_NONE, &u);
    if (rc)
        return rc;
    if (b->down)
        return join_down(ctx, x, &u, y);
    face__add_relu(u.d, u.d, x->d, (size_t)u.h * u.w * u.c);
    *y = u;
    return 0;
}

/* The descriptor on the dlib box of landmarks, capped by lm_crop when given. */
static int descriptor_run(face_ctx_t *ctx, const image_t *img,
                          const face_point_t landmarks[FACE_LANDMARK_COUNT],
                          const face_rect_t *lm_crop, float out[FACE_DESCRIPTOR_DIM])
{
    const face_recog_net_t *n = ctx->engine->recog;
    if (!n)
        return -EINVAL;
    face_rect_t r;
    int rc = face__align_rect_dlib(landmarks, lm_crop, img->width, img->height, &r);
    if (rc)
        return rc;
    size_t mark = face__arena_mark(&ctx->arena);
    face_tensor_t x, t, cur;
    float feat[RECOG_FEATURES];
    rc = face__face_input(ctx, img, r, RECOG_INPUT, &x);
    if (rc == 0)
        rc = face__conv(ctx, &x, &n->first, FACE_ACT_RELU, &t);
    if (rc == 0)
        rc = face__maxpool(ctx, &t, 3, 2, FACE_PAD_VALID, &cur);
    for (int i = 0; rc == 0 && i < RECOG_BLOCKS; i++) {
        rc = block_run(ctx, &n->blocks[i], &cur, &t);
        cur = t;
    }
    if (rc == 0) {
        face__global_avgpool(&cur, feat);
        face__fc(&n->fc, feat, out);
    }
    face__arena_reset(&ctx->arena, mark);
    return rc;
}

int face_descriptor(face_ctx_t *ctx, const image_t *img,
                    const face_point_t landmarks[FACE_LANDMARK_COUNT],
                    float out[FACE_DESCRIPTOR_DIM])
{
    if (!ctx || !img || !img->rgb || img->width <= 0 || img->height <= 0 || !landmarks || !out)
        return -EINVAL;
    return descriptor_run(ctx, img, landmarks, NULL, out);
}

int face_descriptor_in_box(face_ctx_t *ctx, const image_t *img, face_box_t box,
                           const face_point_t landmarks[FACE_LANDMARK_COUNT],
                           float out[FACE_DESCRIPTOR_DIM])
{
    if (!ctx || !img || !img->rgb || img->width <= 0 || img->height <= 0 || !landmarks || !out)
        return -EINVAL;
    face_rect_t lm_crop;
    int rc = face__crop_rect(box.x, box.y, box.w, box.h, img->width, img->height, &lm_crop);
    if (rc)
        return rc;
    return descriptor_run(ctx, img, landmarks, &lm_crop, out);
}
