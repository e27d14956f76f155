/* face/internal.h: what the face module's files share — tensors, the working arena, the layer
 * types and the ops (ops.c), the tfjs weight-manifest loader (weights.c), the preprocessing
 * (prep.c: pad, legacy bilinear resize, normalise, crop) and each network's forward pass.
 *
 * Legend for shapes in comments: H height, W width, C channels (NHWC, batch 1, like tfjs),
 * K kernel side, I input channels, O output channels. Filters are stored HWIO ([K][K][I][O]) as
 * tfjs stores them, depthwise filters [K][K][C]. Batch-norm and "scale" layers are folded into
 * the filters and bias when the weights are loaded (exact algebra; rounding differs by ulps).
 *
 * Memory: every activation lives in the ctx's arena; a network's forward pass resets the arena
 * mark it took at the start, so steady state allocates nothing. */
#ifndef PERSONA_FACE_INTERNAL_H
#define PERSONA_FACE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "face/face.h"
#include "nn/nn.h"

/* ==== tensors and the arena ==== */
typedef struct face_tensor {
    int h, w, c;
    float *d; /* [H][W][C], borrowed from the arena (or the caller) */
} face_tensor_t;

/* A bump allocator of floats, 64-byte aligned; grows in chunks, and after a reset that saw more
 * than one chunk it merges them so the next run needs no allocation. */
typedef struct face_arena {
    struct face_arena_chunk *chunks;
    size_t used_total, high_water;
} face_arena_t;
void face__arena_init(face_arena_t *a);
void face__arena_destroy(face_arena_t *a);
/* NULL only when the system is out of memory. */
float *face__arena_alloc(face_arena_t *a, size_t n_floats);
size_t face__arena_mark(const face_arena_t *a);
void face__arena_reset(face_arena_t *a, size_t mark);
/* A tensor of h*w*c floats from the arena (-ENOMEM). */
int face__tensor(face_arena_t *a, int h, int w, int c, face_tensor_t *out);

struct face_ctx {
    const face_engine_t *engine;
    nn_pool_t *pool;
    face_arena_t arena;
    /* engine.c: one single-threaded ctx (NULL pool, own arena) per thread of pool, on which
     * face_analyze runs faces and stages side by side; NULL with a 1-thread pool. */
    struct face_ctx *workers;
    int n_workers;
};

/* ==== layers (weights owned by the engine's weight block) ==== */
typedef enum { FACE_PAD_SAME, FACE_PAD_VALID } face_pad_t; /* TensorFlow's rules */
typedef enum { FACE_ACT_NONE, FACE_ACT_RELU, FACE_ACT_RELU6, FACE_ACT_LEAKY } face_act_t;
/* FACE_ACT_LEAKY is tfjs' leaky with alpha 0.1 as face-api writes it. */

typedef struct face_conv {
    int k, stride, cin, cout;
    face_pad_t pad;
    const float *w;    /* [K][K][I][O] */
    const float *bias; /* [O], never NULL (zeros when the layer has none) */
} face_conv_t;

typedef struct face_dwconv {
    int k, stride, c;
    face_pad_t pad;
    const float *w;    /* [K][K][C] */
    const float *bias; /* [C] or NULL (a separable conv's bias comes after the pointwise) */
} face_dwconv_t;

/* depthwise (no bias) then 1x1 pointwise with bias, as tf.separableConv2d + add. */
typedef struct face_sepconv {
    face_dwconv_t dw;
    face_conv_t pw;
} face_sepconv_t;

typedef struct face_fc {
    int in, out;
    const float *w;    /* [in][out] as tfjs stores it */
    const float *bias; /* [out] */
} face_fc_t;

/* ==== ops (ops.c): y is allocated from the ctx's arena; x is not modified unless named ==== */
/* fn(job, i, n) over ctx's pool, or on the calling thread alone (fn(job, 0, 1)) when `work`
 * (multiply-adds or elements) is too small to be worth waking the other threads. */
void face__run(face_ctx_t *ctx, nn_task_fn fn, void *job, double work);
/* The instruction set the ops use (chosen once): 0 scalar, 1 AVX2 + FMA, 2 AVX-512F too;
 * PERSONA_NN_ISA=scalar|avx2 caps it. */
int face__ops_isa(void);
int face__conv(face_ctx_t *ctx, const face_tensor_t *x, const face_conv_t *l, face_act_t act,
               face_tensor_t *y);
int face__dwconv(face_ctx_t *ctx, const face_tensor_t *x, const face_dwconv_t *l, face_act_t act,
                 face_tensor_t *y);
int face__sepconv(face_ctx_t *ctx, const face_tensor_t *x, const face_sepconv_t *l,
                  face_act_t act, face_tensor_t *y);
/* Depthwise (with dw_act) then a 1x1 convolution (with act): face__sepconv with an activation
 * between (SSD's pairs). Row by row when the 1x1 is a direct one. */
int face__dw_pw(face_ctx_t *ctx, const face_tensor_t *x, const face_dwconv_t *dw,
                face_act_t dw_act, const face_conv_t *pw, face_act_t act, face_tensor_t *y);
/* Explicit zero padding (tf.pad): top, bottom, left, right. */
int face__pad(face_ctx_t *ctx, const face_tensor_t *x, int top, int bottom, int left, int right,
              face_tensor_t *y);
int face__maxpool(face_ctx_t *ctx, const face_tensor_t *x, int k, int stride, face_pad_t pad,
                  face_tensor_t *y);
int face__avgpool(face_ctx_t *ctx, const face_tensor_t *x, int k, int stride, face_pad_t pad,
                  face_tensor_t *y);
/* face__conv then face__maxpool(k = pk, stride = ps, pad = ppad) on its output, in one pass when
 * the convolution is one of the short direct ones (the conv output never leaves the cache). */
int face__conv_maxpool(face_ctx_t *ctx, const face_tensor_t *x, const face_conv_t *l,
                       face_act_t act, int pk, int ps, face_pad_t ppad, face_tensor_t *y);
/* face__sepconv then face__maxpool on its output, in one pass of row bands when the pointwise
 * half is a direct one (neither intermediate leaves the cache). */
int face__sepconv_maxpool(face_ctx_t *ctx, const face_tensor_t *x, const face_sepconv_t *l,
                          face_act_t act, int pk, int ps, face_pad_t ppad, face_tensor_t *y);
/* Mean over H and W: C floats into out. */
void face__global_avgpool(const face_tensor_t *x, float *out);
/* In place: x += y (same shape), then act. */
void face__add_inplace(face_tensor_t *x, const face_tensor_t *y, face_act_t act);
void face__act_inplace(face_tensor_t *x, face_act_t act);
void face__fc(const face_fc_t *l, const float *x, float *y);
void face__softmax(float *x, int n);
float face__sigmoid(float x);

/* ==== weights (weights.c): a tfjs weights manifest and its shards ==== */
typedef struct face_weights face_weights_t; /* name -> float tensor, decoded */
/* Reads dir/<prefix>-weights_manifest.json and its paths (float32, or uint8 with scale/min:
 * value = q * scale + min). */
int face__weights_load(const char *dir, const char *prefix, face_weights_t **out, char *err,
                       size_t errcap);
void face__weights_free(face_weights_t **w);
/* The tensor `name` with exactly the given shape (n_dims entries; -1 = any), or NULL and a reason
 * in err. The returned floats are owned by w (mutable, so the loader can fold batch norms). */
float *face__weights_get(face_weights_t *w, const char *name, int n_dims, const int *shape,
                         char *err, size_t errcap);

/* ==== preprocessing (prep.c) ==== */
/* The reference's input transform: the region (rx, ry, rw, rh) of img (already clipped and
 * rounded down by the caller) zero-padded to a square (pad_centre: face networks; otherwise
 * bottom/right: detectors), resized with TensorFlow's legacy bilinear (no half-pixel offset) to
 * side x side, then (v - mean[c]) * inv_std per channel. y (side x side x 3) is allocated from the
 * ctx's arena. -EINVAL for a region outside img. Returns
 * the padded square's side in source pixels through *square. */
int face__prep(face_ctx_t *ctx, const image_t *img, int rx, int ry, int rw, int rh, bool pad_centre,
               int side, const float mean[3], float inv_std, face_tensor_t *y, int *square);

/* ==== crops for the face networks (align.c) ==== */
/* A crop in whole pixels, inside the image. */
typedef struct face_rect {
    int x, y, w, h;
} face_rect_t;
/* The reference's clipAtImageBorders: box clipped to the image, then x, y, w, h each rounded
 * down. -EINVAL when nothing of the box is left. */
int face__crop_rect(double x, double y, double w, double h, int img_w, int img_h,
                    face_rect_t *out);
/* Age/gender and expressions: the landmarks' bounding box enlarged by 20% (10% each side),
 * clipped. Recognition: the dlib-style box around the eyes' and the mouth's centres, its sides
 * capped as the reference caps them by the crop the landmarks were computed on (lm_crop; NULL:
 * no cap), clipped. */
int face__align_rect(const face_point_t lm[FACE_LANDMARK_COUNT], int img_w, int img_h,
                     face_rect_t *out);
int face__align_rect_dlib(const face_point_t lm[FACE_LANDMARK_COUNT], const face_rect_t *lm_crop,
                          int img_w, int img_h, face_rect_t *out);
/* The face networks' input: rect of img padded to a centred square, resized to side x side,
 * (v - [122.782, 117.001, 104.298]) / 255. */
int face__face_input(face_ctx_t *ctx, const image_t *img, face_rect_t rect, int side,
                     face_tensor_t *y);

/* ==== layer loading shared by the face networks (layers.c) ==== */
/* prefix/filters [K][K][I][O] and prefix/bias [O]. */
int face__load_conv(face_weights_t *w, const char *prefix, int k, int cin, int cout, int stride,
                    face_pad_t pad, face_conv_t *out, char *err, size_t errcap);
/* prefix/depthwise_filter [3][3][I][1], prefix/pointwise_filter [1][1][I][O], prefix/bias [O];
 * SAME padding. */
int face__load_sepconv(face_weights_t *w, const char *prefix, int cin, int cout, int stride,
                       face_sepconv_t *out, char *err, size_t errcap);
/* prefix/weights [in][out], prefix/bias [out]. */
int face__load_fc(face_weights_t *w, const char *prefix, int in, int out, face_fc_t *l,
                  char *err, size_t errcap);

/* ==== elementwise steps of the face networks' blocks (ops_extra.c) ==== */
/* y = relu(a + b) over n floats; y may be a or b. */
void face__add_relu(float *y, const float *a, const float *b, size_t n);
/* y = relu(x) over n floats; y may be x. */
void face__relu_copy(float *y, const float *x, size_t n);

/* ==== 3x3 stride-1 SAME convolution by Winograd F(2x2, 3x3) (winograd.c) ==== */
typedef struct face_wino {
    int cin, cout;
    float *u;          /* [16][I][O]: each filter transformed, owned */
    const float *bias; /* [O], borrowed from the convolution it was made from */
} face_wino_t;
/* From a loaded 3x3, stride 1, SAME convolution with channel counts multiples of 4 (-EINVAL
 * for any other layer, -ENOMEM). */
int face__wino_init(const face_conv_t *l, face_wino_t *out);
void face__wino_destroy(face_wino_t *w); /* NULL-safe */
/* face__conv's result (to rounding) for that layer; act NONE or RELU. */
int face__wino_conv(face_ctx_t *ctx, const face_tensor_t *x, const face_wino_t *l, face_act_t act,
                    face_tensor_t *y);

/* ==== the face feature extractor (features.c): landmarks and expressions share it ==== */
enum { FACE_FEATURES_MAX_BLOCKS = 4, FACE_FEATURES_MAX_CONVS = 4 };
typedef struct face_features {
    int n_blocks;  /* dense blocks: 4 (full), 3 (tiny) */
    int n_convs;   /* convolutions per block: 4 (full), 3 (tiny) */
    int channels;  /* output channels: 256 (full), 128 (tiny) */
    face_conv_t first; /* dense0/conv0: a plain 3x3 conv, stride 2 */
    face_sepconv_t sep[FACE_FEATURES_MAX_BLOCKS][FACE_FEATURES_MAX_CONVS]; /* [0][0] unused */
} face_features_t;
int face__features_load(face_weights_t *w, bool tiny, face_features_t *out, char *err,
                        size_t errcap);
/* x: 112 x 112 x 3, normalised; out: `channels` floats (the final average pool). */
int face__features_run(face_ctx_t *ctx, const face_features_t *f, const face_tensor_t *x,
                       float *out);

/* ==== networks ==== */
typedef struct face_tiny_net face_tiny_net_t;
typedef struct face_ssd_net face_ssd_net_t;
typedef struct face_landmark_net face_landmark_net_t;
typedef struct face_recog_net face_recog_net_t;
typedef struct face_agegender_net face_agegender_net_t;
typedef struct face_expression_net face_expression_net_t;

struct face_engine {
    face_tiny_net_t *tiny;
    face_ssd_net_t *ssd;
    face_landmark_net_t *landmarks;
    face_landmark_net_t *landmarks_tiny;
    face_recog_net_t *recog;
    face_agegender_net_t *agegender;
    face_expression_net_t *expression;
};

/* Each network: load from the models dir (its weights folded into its own struct), free. */
int face__tiny_load(const char *dir, face_tiny_net_t **out, char *err, size_t errcap);
void face__tiny_free(face_tiny_net_t **n);
int face__ssd_load(const char *dir, face_ssd_net_t **out, char *err, size_t errcap);
void face__ssd_free(face_ssd_net_t **n);
int face__landmark_load(const char *dir, bool tiny, face_landmark_net_t **out, char *err,
                        size_t errcap);
void face__landmark_free(face_landmark_net_t **n);
int face__recog_load(const char *dir, face_recog_net_t **out, char *err, size_t errcap);
void face__recog_free(face_recog_net_t **n);
int face__agegender_load(const char *dir, face_agegender_net_t **out, char *err, size_t errcap);
void face__agegender_free(face_agegender_net_t **n);
int face__expression_load(const char *dir, face_expression_net_t **out, char *err,
                          size_t errcap);
void face__expression_free(face_expression_net_t **n);

/* Non-maximum suppression over boxes sorted or not: keeps at most max_out indices of boxes
 * with score > min_score, best first, dropping any whose IoU with a kept one exceeds iou_max.
 * Returns how many were kept (keep[0..ret)). */
int face__nms(const face_box_t *boxes, const float *scores, int n, int max_out, float iou_max,
              float min_score, int *keep);

/* The detectors' forward passes and box decoding (tiny.c, ssd.c): at most max_out faces, best
 * first, boxes in img's pixels as the reference reports them (not clipped). tiny: input_size a
 * multiple of 32 up to 2048 (<= 0: 416; memory grows with its square; -EINVAL otherwise),
 * score > min_score (<= 0: 0.5); ssd: 512 input, min_score likewise, at most max_out (the
 * reference's maxResults). */
int face__tiny_detect(face_ctx_t *ctx, const face_tiny_net_t *net, const image_t *img,
                      int input_size, float min_score, int max_out, face_box_t *boxes,
                      float *scores, int *n);
int face__ssd_detect(face_ctx_t *ctx, const face_ssd_net_t *net, const image_t *img,
                     float min_score, int max_out, face_box_t *boxes, float *scores, int *n);

#endif
