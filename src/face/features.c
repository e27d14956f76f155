/* features.c: face-api's face feature extractor, the trunk that the 68-point landmark networks
 * and the expression network put their fully connected layer on (faceFeatureExtractor/ in the
 * reference). Dense blocks of separable convolutions where every convolution sees the sum of
 * all earlier outputs of its block:
 *   out1 = relu(conv0(x))              conv0: 3x3 conv stride 2 in block 0, separable stride 2 after
 *   out2 = conv1(out1)
 *   out3 = conv2(relu(out1 + out2))
 *   out4 = conv3(relu(out1 + out2 + out3))          (full network only)
 *   block = relu(out1 + out2 + out3 [+ out4])
 * Full: 4 blocks of 4 (32, 64, 128, 256 channels; 112 -> 7), then a 7x7 average pool. Tiny:
 * 3 blocks of 3 (32, 64, 128; 112 -> 14), then a 14x14 average pool. Both pools cover the whole
 * map, so the result is one vector. Runs on the ctx's pool; activations in the ctx's arena. */
#include <errno.h>
#include <stdio.h>

#include "core/core.h"
#include "face/internal.h"

int face__features_load(face_weights_t *w, bool tiny, face_features_t *out, char *err,
                        size_t errcap)
{
    static const int full_ch[4] = { 32, 64, 128, 256 }, tiny_ch[3] = { 32, 64, 128 };
    const int *ch = tiny ? tiny_ch : full_ch;
    out->n_blocks = tiny ? 3 : 4;
    out->n_convs = tiny ? 3 : 4;
    out->channels = ch[out->n_blocks - 1];
    int rc = face__load_conv(w, "dense0/conv0", 3, 3, ch[0], 2, FACE_PAD_SAME, &out->first, err,
                             errcap);
    for (int b = 0; rc == 0 && b < out->n_blocks; b++) {
        for (int c = b == 0 ? 1 : 0; rc == 0 && c < out->n_convs; c++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "dense%d/conv%d", b, c);
            int cin = c == 0 ? ch[b - 1] : ch[b];
            rc = face__load_sepconv(w, prefix, cin, ch[b], c == 0 ? 2 : 1, &out->sep[b][c], err,
                                    errcap);
        }
    }
    return rc;
}

/* y = relu(a + b) into a new tensor. */
static int add_into(face_ctx_t *ctx, const face_tensor_t *a, const face_tensor_t *b,
                    face_tensor_t *y)
{
    int rc = face__tensor(&ctx->arena, a->h, a->w, a->c, y);
    if (rc == 0)
        face__add_relu(y->d, a->d, b->d, (size_t)a->h * a->w * a->c);
    return rc;
}

static int dense_block(face_ctx_t *ctx, const face_features_t *f, int b, const face_tensor_t *x,
                       face_tensor_t *y)
{
    face_tensor_t out1, in, o, sum = { 0 };
    int rc = b == 0 ? face__conv(ctx, x, &f->first, FACE_ACT_RELU, &out1)
                    : face__sepconv(ctx, x, &f->sep[b][0], FACE_ACT_RELU, &out1);
    in = out1;
    for (int c = 1; rc == 0 && c < f->n_convs; c++) {
        rc = face__sepconv(ctx, &in, &f->sep[b][c], FACE_ACT_NONE, &o);
        if (rc)
            break;
        if (c == 1)
            sum = o;
        else
            face__add_inplace(&sum, &o, FACE_ACT_NONE);
        rc = add_into(ctx, &out1, &sum, &in);
    }
    if (rc == 0)
        *y = in;
    return rc;
}

int face__features_run(face_ctx_t *ctx, const face_features_t *f, const face_tensor_t *x,
                       float *out)
{
    face_tensor_t cur = *x, next;
    for (int b = 0; b < f->n_blocks; b++) {
        int rc = dense_block(ctx, f, b, &cur, &next);
        if (rc)
            return rc;
        cur = next;
    }
    face__global_avgpool(&cur, out);
    return 0;
}
