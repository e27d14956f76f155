/* landmarks.c: the 68-point landmark networks (FaceLandmark68Net and FaceLandmark68TinyNet of
 * the reference): the feature extractor (features.c) and one fully connected layer to 136
 * numbers, x and y interleaved, relative to the 112 x 112 input. Input: the detection box
 * clipped and floored, padded to a centred square, 112 px, (v - mean) / 255. Output mapped back
 * as FaceLandmark68NetBase.postProcess does — it removes half the padding as if the square had
 * been padded evenly on both sides, and shifts by the detection box's own (unclipped, unfloored)
 * corner, as extendWithFaceLandmarks does.
 *
 * The engine's net is read-only; face_landmarks runs on the caller's ctx. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "face/internal.h"

enum { LANDMARK_INPUT = 112, LANDMARK_OUTPUTS = 2 * FACE_LANDMARK_COUNT };

struct face_landmark_net {
    face_weights_t *weights; /* owns every tensor below */
    face_features_t features;
    face_fc_t fc; /* [channels][136] */
};

void face__landmark_free(face_landmark_net_t **n)
{
    if (!n || !*n)
        return;
    face__weights_free(&(*n)->weights);
    free(*n);
    *n = NULL;
}

int face__landmark_load(const char *dir, bool tiny, face_landmark_net_t **out, char *err,
                        size_t errcap)
{
    face_landmark_net_t *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    int rc = face__weights_load(dir, tiny ? "face_landmark_68_tiny_model" : "face_landmark_68_model",
                                &n->weights, err, errcap);
    if (rc == 0)
        rc = face__features_load(n->weights, tiny, &n->features, err, errcap);
    if (rc == 0)
        rc = face__load_fc(n->weights, "fc", n->features.channels, LANDMARK_OUTPUTS, &n->fc, err,
                           errcap);
    if (rc)
        face__landmark_free(&n);
    *out = n;
    return rc;
}

/* postProcess: the network's [0, 1] output over the square input back to the crop's pixels. */
static void map_back(const float *o, face_rect_t r, face_box_t box,
                     face_point_t out[FACE_LANDMARK_COUNT])
{
    double scale = (double)LANDMARK_INPUT / (r.w > r.h ? r.w : r.h);
    double in_w = r.w * scale, in_h = r.h * scale;
    double pad_x = in_w < in_h ? fabs(in_w - in_h) / 2 : 0;
    double pad_y = in_h < in_w ? fabs(in_w - in_h) / 2 : 0;
    for (int i = 0; i < FACE_LANDMARK_COUNT; i++) {
        double rx = ((double)o[2 * i] * LANDMARK_INPUT - pad_x) / in_w;
        double ry = ((double)o[2 * i + 1] * LANDMARK_INPUT - pad_y) / in_h;
        out[i].x = (float)(rx * r.w + box.x);
        out[i].y = (float)(ry * r.h + box.y);
    }
}

int face_landmarks(face_ctx_t *ctx, const image_t *img, face_box_t box, bool tiny,
                   face_point_t out[FACE_LANDMARK_COUNT])
{
    if (!ctx || !img || !img->rgb || img->width <= 0 || img->height <= 0 || !out)
        return -EINVAL;
    const face_landmark_net_t *n = tiny ? ctx->engine->landmarks_tiny : ctx->engine->landmarks;
    if (!n)
        return -EINVAL;
    face_rect_t r;
    int rc = face__crop_rect(box.x, box.y, box.w, box.h, img->width, img->height, &r);
    if (rc)
        return rc;
    size_t mark = face__arena_mark(&ctx->arena);
    float feat[256], o[LANDMARK_OUTPUTS];
    face_tensor_t x;
    rc = face__face_input(ctx, img, r, LANDMARK_INPUT, &x);
    if (rc == 0)
        rc = face__features_run(ctx, &n->features, &x, feat);
    if (rc == 0) {
        face__fc(&n->fc, feat, o);
        map_back(o, r, box, out);
    }
    face__arena_reset(&ctx->arena, mark);
    return rc;
}
