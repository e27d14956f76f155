/* face: face detection, landmarks, recognition and analysis in C — the networks of face-api
 * (@vladmandic/face-api 1.7.15, whose `model/` folder the setup fetches with npm) run on our own
 * kernels (src/nn: OpenBLAS/SIMD GEMM, thread pool). What DeepFace does for the Python world:
 *   detect      tiny face detector (416 px input) or SSD MobileNet v1 (512 px), with NMS
 *   landmarks   68 points, full or tiny network, on the detection box
 *   descriptor  the 128-D recognition network on the aligned face; Euclidean distance < 0.6
 *               means the same person
 *   attributes  age + gender, and the 7 expressions
 * Every network reproduces the reference JavaScript implementation's preprocessing exactly
 * (docs/faces.md lists the facts), so results agree with it on identical pixels.
 *
 * Objects: a face_engine_t holds the decoded weights of every network; it is read-only after
 * face_engine_open and shared by any number of threads. A face_ctx_t is one thread's working
 * memory (activations, crops) plus its thread pool; it grows to the largest input it has seen
 * and then allocates nothing per frame. One call at a time per ctx.
 *
 * Coordinates are image pixels of the picture passed in (x right, y down, origin top-left).
 *
 * Errors: 0, or -ENOENT (a model file missing), CORE_EBADMEDIA (a model file damaged or of the
 * wrong shape), -EINVAL (bad argument), -ENOMEM. Failures write a reason into err. */
#ifndef PERSONA_FACE_H
#define PERSONA_FACE_H

#include <stdbool.h>
#include <stddef.h>

#include "image/image.h"

enum {
    FACE_LANDMARK_COUNT = 68,
    FACE_DESCRIPTOR_DIM = 128,
    FACE_EXPRESSION_COUNT = 7,
};
/* The default Euclidean distance below which two descriptors are the same person. */
#define FACE_SAME_PERSON_THRESHOLD 0.6f
/* The same rule for the cosine distance. Not tuned: face-api descriptors have norms of 1.35-1.50
 * (1.45 typical, over sample1-6), and for vectors of norm n, Euclidean d <-> cosine d^2 / (2 n^2):
 * 0.6 at n = 1.45 is 0.085. */
#define FACE_SAME_PERSON_COSINE_THRESHOLD 0.085f

/* Expression order of the network's output: neutral, happy, sad, angry, fearful, disgusted,
 * surprised. */
extern const char *const face_expression_names[FACE_EXPRESSION_COUNT];

typedef enum { FACE_DETECTOR_TINY, FACE_DETECTOR_SSD } face_detector_t;
/* "tiny" / "ssd" <-> enum; parse returns 0 or -EINVAL. */
const char *face_detector_name(face_detector_t d);
int face_detector_parse(const char *name, face_detector_t *out);

typedef struct face_box {
    float x, y, w, h;
} face_box_t;
typedef struct face_point {
    float x, y;
} face_point_t;

/* What face_analyze computes for each detected face (bits of face_options_t.want). */
enum {
    FACE_WANT_LANDMARKS = 1u << 0,
    FACE_WANT_DESCRIPTOR = 1u << 1,  /* implies landmarks */
    FACE_WANT_AGE_GENDER = 1u << 2,  /* implies landmarks */
    FACE_WANT_EXPRESSIONS = 1u << 3, /* implies landmarks */
    FACE_WANT_ALL = 0xfu,
};

typedef struct face_options {
    face_detector_t detector;
    float min_score;     /* detector confidence; <= 0: the reference's default (tiny 0.5, SSD 0.5) */
    int max_faces;       /* <= 0: 100 */
    int tiny_input_size; /* tiny detector input side, multiple of 32; <= 0: 416 */
    bool tiny_landmarks; /* the tiny 68-point network instead of the full one */
    unsigned want;       /* FACE_WANT_* bits; 0 = detection only */
} face_options_t;
/* detector TINY, defaults elsewhere, want = FACE_WANT_ALL. */
face_options_t face_options_default(void);

typedef struct face {
    face_box_t box; /* detection box, clipped to the image */
    float score;    /* detector confidence */
    unsigned have;  /* FACE_WANT_* bits actually computed */
    face_point_t landmarks[FACE_LANDMARK_COUNT];
    float descriptor[FACE_DESCRIPTOR_DIM];
    float age;                /* years */
    bool male;                /* gender: the more probable of the two */
    float gender_probability; /* probability of `male ? "male" : "female"`, in [0.5, 1] */
    float expressions[FACE_EXPRESSION_COUNT]; /* probabilities, sum 1 */
} face_t;

typedef struct face_engine face_engine_t;
typedef struct face_ctx face_ctx_t;

/* Loads every network from models_dir (the face-api `model/` folder: *-weights_manifest.json and
 * their shards). On success *out is a new engine (face_engine_free). */
int face_engine_open(const char *models_dir, face_engine_t **out, char *err, size_t errcap);
void face_engine_free(face_engine_t **engine); /* NULL-safe */

/* A working context on `engine` (borrowed; must outlive the ctx) with n_threads threads (0 = all
 * cores). */
int face_ctx_new(const face_engine_t *engine, int n_threads, face_ctx_t **out);
void face_ctx_free(face_ctx_t **ctx); /* NULL-safe */

/* The whole pipeline on img (borrowed): detect, then for each face what opt->want asks, best
 * score first. Fills faces[0..*n_faces) with at most max_faces entries. No face: *n_faces = 0
 * and 0 returned. */
int face_analyze(face_ctx_t *ctx, const image_t *img, const face_options_t *opt, face_t *faces,
                 int max_faces, int *n_faces, char *err, size_t errcap);

/* ---- the stages, one network each (what face_analyze chains; tests compare each with the
 * reference on the reference's own inputs) ---- */
/* Boxes and scores only (landmarks etc. untouched, have = 0). */
int face_detect(face_ctx_t *ctx, const image_t *img, face_detector_t detector, float min_score,
                int tiny_input_size, face_t *faces, int max_faces, int *n_faces);
/* 68 points for the face in `box`. */
int face_landmarks(face_ctx_t *ctx, const image_t *img, face_box_t box, bool tiny,
                   face_point_t out[FACE_LANDMARK_COUNT]);
/* The 128-D descriptor of the face aligned by its landmarks. */
int face_descriptor(face_ctx_t *ctx, const image_t *img,
                    const face_point_t landmarks[FACE_LANDMARK_COUNT],
                    float out[FACE_DESCRIPTOR_DIM]);
/* The same for landmarks that face_landmarks computed on `box`: the reference caps the
 * alignment crop's sides by the landmark crop's, which changes the result only for a face at
 * the picture's left or top edge. face_analyze does this. */
int face_descriptor_in_box(face_ctx_t *ctx, const image_t *img, face_box_t box,
                           const face_point_t landmarks[FACE_LANDMARK_COUNT],
                           float out[FACE_DESCRIPTOR_DIM]);
int face_age_gender(face_ctx_t *ctx, const image_t *img,
                    const face_point_t landmarks[FACE_LANDMARK_COUNT], float *age, bool *male,
                    float *gender_probability);
int face_expressions(face_ctx_t *ctx, const image_t *img,
                     const face_point_t landmarks[FACE_LANDMARK_COUNT],
                     float out[FACE_EXPRESSION_COUNT]);

/* ---- descriptors ---- */
float face_distance(const float a[FACE_DESCRIPTOR_DIM], const float b[FACE_DESCRIPTOR_DIM]);
/* 1 - cos(a, b); 1 when either is all zero. */
float face_cosine_distance(const float a[FACE_DESCRIPTOR_DIM], const float b[FACE_DESCRIPTOR_DIM]);

/* Intersection over union of two boxes (0 when either is empty). */
float face_box_iou(face_box_t a, face_box_t b);

#endif
