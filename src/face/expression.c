/* expression.c: the expression network (faceExpressionNet of the reference): the full feature
 * extractor (features.c), one fully connected layer to 7 numbers and a softmax, in the order of
 * face_expression_names. Input: the landmark box enlarged by 20% (align.c), 112 px,
 * (v - mean) / 255 — the same crop as age/gender. */
#include <errno.h>
#include <stdlib.h>

#include "core/core.h"
#include "face/internal.h"

enum { EXPRESSION_INPUT = 112 };

struct face_expression_net {
    face_weights_t *weights; /* owns every tensor below */
    face_features_t features;
    face_fc_t fc; /* [256][7] */
};

void face__expression_free(face_expression_net_t **n)
{
    if (!n || !*n)
        return;
    face__weights_free(&(*n)->weights);
    free(*n);
    *n = NULL;
}

int face__expression_load(const char *dir, face_expression_net_t **out, char *err, size_t errcap)
{
    face_expression_net_t *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    int rc = face__weights_load(dir, "face_expression_model", &n->weights, err, errcap);
    if (rc == 0)
        rc = face__features_load(n->weights, false, &n->features, err, errcap);
    if (rc == 0)
        rc = face__load_fc(n->weights, "fc", n->features.channels, FACE_EXPRESSION_COUNT, &n->fc,
                           err, errcap);
    if (rc)
        face__expression_free(&n);
    *out = n;
    return rc;
}

int face_expressions(face_ctx_t *ctx, const image_t *img,
                     const face_point_t landmarks[FACE_LANDMARK_COUNT],
                     float out[FACE_EXPRESSION_COUNT])
{
    if (!ctx || !img || !img->rgb || img->width <= 0 || img->height <= 0 || !landmarks || !out)
        return -EINVAL;
    const face_expression_net_t *n = ctx->engine->expression;
    if (!n)
        return -EINVAL;
    face_rect_t r;
    int rc = face__align_rect(landmarks, img->width, img->height, &r);
    if (rc)
        return rc;
    size_t mark = face__arena_mark(&ctx->arena);
    face_tensor_t x;
    float feat[256];
    rc = face__face_input(ctx, img, r, EXPRESSION_INPUT, &x);
    if (rc == 0)
        rc = face__features_run(ctx, &n->features, &x, feat);
    if (rc == 0) {
        face__fc(&n->fc, feat, out);
        face__softmax(out, FACE_EXPRESSION_COUNT);
    }
    face__arena_reset(&ctx->arena, mark);
    return rc;
}
