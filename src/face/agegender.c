/* agegender.c: the age and gender network (ageGenderNet of the reference): a TinyXception trunk
 * with two main blocks, a 7x7 average pool over its 7 x 7 x 512 output, then two fully connected
 * heads — age in years (regression) and gender (softmax over male, female).
 *
 *   conv 3x3/2 + relu                                112 -> 56 x 32
 *   reduction block (input not activated)             56 -> 28 x 64
 *   reduction block                                   28 -> 14 x 128
 *   2 main blocks                                     14 x 128
 *   reduction block                                   14 -> 7 x 256
 *   separable conv + relu                              7 x 512
 * reduction: sep(relu(sep([relu] x))) -> max pool 3x3/2 same, + 1x1/2 conv of x;
 * main: x + sep(relu(sep(relu(sep(relu(x)))))).
 * Input: the landmark box enlarged by 20% (align.c), 112 px, (v - mean) / 255. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "face/internal.h"

enum { AGEGENDER_INPUT = 112, AGEGENDER_MAIN_BLOCKS = 2, AGEGENDER_FEATURES = 512 };

typedef struct reduction_block {
    face_sepconv_t sep0, sep1;
    face_conv_t expansion; /* 1x1, stride 2 */
} reduction_block_t;

typedef struct main_block {
    face_sepconv_t sep[3];
} main_block_t;

struct face_agegender_net {
    face_weights_t *weights; /* owns every tensor below */
    face_conv_t conv_in;
    reduction_block_t entry0, entry1, exit;
    main_block_t middle[AGEGENDER_MAIN_BLOCKS];
    face_sepconv_t exit_sep;
    face_fc_t age, gender;
};

void face__agegender_free(face_agegender_net_t **n)
{
    if (!n || !*n)
        return;
    face__weights_free(&(*n)->weights);
    free(*n);
    *n = NULL;
}

static int load_reduction(face_weights_t *w, const char *prefix, int cin, int cout,
                          reduction_block_t *b, char *err, size_t errcap)
{
    char name[96];
    snprintf(name, sizeof name, "%s/separable_conv0", prefix);
    int rc = face__load_sepconv(w, name, cin, cout, 1, &b->sep0, err, errcap);
    snprintf(name, sizeof name, "%s/separable_conv1", prefix);
    if (rc == 0)
        rc = face__load_sepconv(w, name, cout, cout, 1, &b->sep1, err, errcap);
    snprintf(name, sizeof name, "%s/expansion_conv", prefix);
    if (rc == 0)
        rc = face__load_conv(w, name, 1, cin, cout, 2, FACE_PAD_SAME, &b->expansion, err, errcap);
    return rc;
}

int face__agegender_load(const char *dir, face_agegender_net_t **out, char *err, size_t errcap)
{
    face_agegender_net_t *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    int rc = face__weights_load(dir, "age_gender_model", &n->weights, err, errcap);
    face_weights_t *w = n->weights;
    if (rc == 0)
        rc = face__load_conv(w, "entry_flow/conv_in", 3, 3, 32, 2, FACE_PAD_SAME, &n->conv_in, err,
                             errcap);
    if (rc == 0)
        rc = load_reduction(w, "entry_flow/reduction_block_0", 32, 64, &n->entry0, err, errcap);
    if (rc == 0)
        rc = load_reduction(w, "entry_flow/reduction_block_1", 64, 128, &n->entry1, err, errcap);
    for (int i = 0; rc == 0 && i < AGEGENDER_MAIN_BLOCKS; i++) {
        for (int j = 0; rc == 0 && j < 3; j++) {
            char name[96];
            snprintf(name, sizeof name, "middle_flow/main_block_%d/separable_conv%d", i, j);
            rc = face__load_sepconv(w, name, 128, 128, 1, &n->middle[i].sep[j], err, errcap);
        }
    }
    if (rc == 0)
        rc = load_reduction(w, "exit_flow/reduction_block", 128, 256, &n->exit, err, errcap);
    if (rc == 0)
        rc = face__load_sepconv(w, "exit_flow/separable_conv", 256, AGEGENDER_FEATURES, 1,
                                &n->exit_sep, err, errcap);
    if (rc == 0)
        rc = face__load_fc(w, "fc/age", AGEGENDER_FEATURES, 1, &n->age, err, errcap);
    if (rc == 0)
        rc = face__load_fc(w, "fc/gender", AGEGENDER_FEATURES, 2, &n->gender, err, errcap);
    if (rc)
        face__agegender_free(&n);
    *out = n;
    return rc;
}

/* relu(x) into a new tensor: the blocks need x itself again for their shortcut. */
static int relu_copy(face_ctx_t *ctx, const face_tensor_t *x, face_tensor_t *y)
{
    int rc = face__tensor(&ctx->arena, x->h, x->w, x->c, y);
    if (rc == 0)
        face__relu_copy(y->d, x->d, (size_t)x->h * x->w * x->c);
    return rc;
}

static int reduction_run(face_ctx_t *ctx, const reduction_block_t *b, const face_tensor_t *x,
                         bool activate_input, face_tensor_t *y)
{
    face_tensor_t in = *x, t, u, e;
    int rc = activate_input ? relu_copy(ctx, x, &in) : 0;
    if (rc == 0)
        rc = face__sepconv(ctx, &in, &b->sep0, FACE_ACT_RELU, &t);
    if (rc == 0)
        rc = face__sepconv(ctx, &t, &b->sep1, FACE_ACT_NONE, &u);
    if (rc == 0)
        rc = face__maxpool(ctx, &u, 3, 2, FACE_PAD_SAME, y);
    if (rc == 0)
        rc = face__conv(ctx, x, &b->expansion, FACE_ACT_NONE, &e);
    if (rc == 0)
        face__add_inplace(y, &e, FACE_ACT_NONE);
    return rc;
}

static int main_run(face_ctx_t *ctx, const main_block_t *b, const face_tensor_t *x,
                    face_tensor_t *y)
{
    face_tensor_t in, t, u;
    int rc = relu_copy(ctx, x, &in);
    if (rc == 0)
        rc = face__sepconv(ctx, &in, &b->sep[0], FACE_ACT_RELU, &t);
    if (rc == 0)
        rc = face__sepconv(ctx, &t, &b->sep[1], FACE_ACT_RELU, &u);
    if (rc == 0)
        rc = face__sepconv(ctx, &u, &b->sep[2], FACE_ACT_NONE, y);
    if (rc == 0)
        face__add_inplace(y, x, FACE_ACT_NONE);
    return rc;
}

static int trunk_run(face_ctx_t *ctx, const face_agegender_net_t *n, const face_tensor_t *x,
                     float feat[AGEGENDER_FEATURES])
{
    face_tensor_t a, b;
    int rc = face__conv(ctx, x, &n->conv_in, FACE_ACT_RELU, &a);
    if (rc == 0)
        rc = reduction_run(ctx, &n->entry0, &a, false, &b);
    if (rc == 0)
        rc = reduction_run(ctx, &n->entry1, &b, true, &a);
    for (int i = 0; rc == 0 && i < AGEGENDER_MAIN_BLOCKS; i++) {
        rc = main_run(ctx, &n->middle[i], &a, &b);
        a = b;
    }
    if (rc == 0)
        rc = reduction_run(ctx, &n->exit, &a, true, &b);
    if (rc == 0)
        rc = face__sepconv(ctx, &b, &n->exit_sep, FACE_ACT_RELU, &a);
    if (rc == 0)
        face__global_avgpool(&a, feat); /* the 7x7/2 valid pool of a 7 x 7 map */
    return rc;
}

int face_age_gender(face_ctx_t *ctx, const image_t *img,
                    const face_point_t landmarks[FACE_LANDMARK_COUNT], float *age, bool *male,
                    float *gender_probability)
{
    if (!ctx || !img || !img->rgb || img->width <= 0 || img->height <= 0 || !landmarks || !age ||
        !male || !gender_probability)
        return -EINVAL;
    const face_agegender_net_t *n = ctx->engine->agegender;
    if (!n)
        return -EINVAL;
    face_rect_t r;
    int rc = face__align_rect(landmarks, img->width, img->height, &r);
    if (rc)
        return rc;
    size_t mark = face__arena_mark(&ctx->arena);
    face_tensor_t x;
    float feat[AGEGENDER_FEATURES], a, g[2];
    rc = face__face_input(ctx, img, r, AGEGENDER_INPUT, &x);
    if (rc == 0)
        rc = trunk_run(ctx, n, &x, feat);
    if (rc == 0) {
        face__fc(&n->age, feat, &a);
        face__fc(&n->gender, feat, g);
        face__softmax(g, 2);
        *age = a;
        *male = g[0] > 0.5f;
        *gender_probability = *male ? g[0] : 1 - g[0];
    }
    face__arena_reset(&ctx->arena, mark);
    return rc;
}
