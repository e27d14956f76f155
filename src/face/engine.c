/* engine.c: the face engine's objects and the whole pipeline — face_engine_open loads the seven
 * networks (read-only afterwards, shared by threads), face_ctx_new makes one thread's working
 * memory and thread pool, face_analyze chains detection with the per-face networks the caller
 * asks for. The per-face stages (landmarks.c, recog.c, agegender.c, expression.c) each take
 * their crop straight from the picture into the network's input; after the first frames of a
 * given size nothing is allocated per frame or per face. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "face/internal.h"

enum { FACE_DEFAULT_MAX_FACES = 100 };

void face_engine_free(face_engine_t **engine)
{
    if (!engine || !*engine)
        return;
    face_engine_t *e = *engine;
    face__tiny_free(&e->tiny);
    face__ssd_free(&e->ssd);
    face__landmark_free(&e->landmarks);
    face__landmark_free(&e->landmarks_tiny);
    face__recog_free(&e->recog);
    face__agegender_free(&e->agegender);
    face__expression_free(&e->expression);
    free(e);
    *engine = NULL;
}

/* Loads one network; on failure says which, in front of the loader's reason. */
#define LOAD(what, call)                                                                          \
    do {                                                                                          \
        if (rc == 0) {                                                                            \
            rc = (call);                                                                          \
            if (rc) {                                                                             \
                char why_[256];                                                                   \
                snprintf(why_, sizeof why_, "%s", err);                                           \
                snprintf(err, errcap, "face model %s: %s", what, why_);                           \
            }                                                                                     \
        }                                                                                         \
    } while (0)

int face_engine_open(const char *models_dir, face_engine_t **out, char *err, size_t errcap)
{
    char scratch[8];
    if (!err) {
        err = scratch;
        errcap = sizeof scratch;
    }
    if (errcap)
        err[0] = '\0';
    if (!out)
        return -EINVAL;
    *out = NULL;
    struct stat st;
    if (!models_dir || !*models_dir) {
        snprintf(err, errcap, "no face model folder given");
        return -EINVAL;
    }
    if (stat(models_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "face model folder %s does not exist", models_dir);
        return -ENOENT;
    }
    face_engine_t *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    int rc = 0;
    LOAD("tiny face detector", face__tiny_load(models_dir, &e->tiny, err, errcap));
    LOAD("SSD MobileNet v1", face__ssd_load(models_dir, &e->ssd, err, errcap));
    LOAD("68-point landmarks", face__landmark_load(models_dir, false, &e->landmarks, err, errcap));
    LOAD("68-point landmarks (tiny)",
         face__landmark_load(models_dir, true, &e->landmarks_tiny, err, errcap));
    LOAD("recognition", face__recog_load(models_dir, &e->recog, err, errcap));
    LOAD("age and gender", face__agegender_load(models_dir, &e->agegender, err, errcap));
    LOAD("expressions", face__expression_load(models_dir, &e->expression, err, errcap));
    if (rc)
        face_engine_free(&e);
    *out = e;
    return rc;
}

int face_ctx_new(const face_engine_t *engine, int n_threads, face_ctx_t **out)
{
    if (!engine || !out || n_threads < 0)
        return -EINVAL;
    *out = NULL;
    /* nn_init is idempotent; calling it here surfaces a broken kernel set at once. */
    if (nn_init() != 0)
        return -ENOSYS;
    face_ctx_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->engine = engine;
    face__arena_init(&c->arena);
    int rc = nn_pool_create(n_threads, &c->pool);
    if (rc) {
        face_ctx_free(&c);
        return rc < 0 ? rc : -ENOMEM;
    }
    *out = c;
    return 0;
}

void face_ctx_free(face_ctx_t **ctx)
{
    if (!ctx || !*ctx)
        return;
    nn_pool_free(&(*ctx)->pool);
    face__arena_destroy(&(*ctx)->arena);
    free(*ctx);
    *ctx = NULL;
}

/* The per-face networks for one detected face. A crop with nothing left inside the picture
 * (-EINVAL from a stage) only leaves that stage's bit out of f->have. */
static int analyze_face(face_ctx_t *ctx, const image_t *img, const face_options_t *opt,
                        unsigned want, face_t *f)
{
    int rc = face_landmarks(ctx, img, f->box, opt->tiny_landmarks, f->landmarks);
    if (rc == -EINVAL)
        return 0;
    if (rc)
        return rc;
    f->have |= FACE_WANT_LANDMARKS;
    if (want & FACE_WANT_DESCRIPTOR) {
        rc = face_descriptor(ctx, img, f->landmarks, f->descriptor);
        if (rc == 0)
            f->have |= FACE_WANT_DESCRIPTOR;
        else if (rc != -EINVAL)
            return rc;
    }
    if (want & FACE_WANT_AGE_GENDER) {
        rc = face_age_gender(ctx, img, f->landmarks, &f->age, &f->male, &f->gender_probability);
        if (rc == 0)
            f->have |= FACE_WANT_AGE_GENDER;
        else if (rc != -EINVAL)
            return rc;
    }
    if (want & FACE_WANT_EXPRESSIONS) {
        rc = face_expressions(ctx, img, f->landmarks, f->expressions);
        if (rc == 0)
            f->have |= FACE_WANT_EXPRESSIONS;
        else if (rc != -EINVAL)
            return rc;
    }
    return 0;
}

int face_analyze(face_ctx_t *ctx, const image_t *img, const face_options_t *opt, face_t *faces,
                 int max_faces, int *n_faces, char *err, size_t errcap)
{
    char scratch[8];
    if (!err) {
        err = scratch;
        errcap = sizeof scratch;
    }
    if (n_faces)
        *n_faces = 0;
    if (!ctx || !img || !faces || !n_faces || max_faces <= 0) {
        snprintf(err, errcap, "face_analyze: missing context, picture or result array");
        return -EINVAL;
    }
    if (!img->rgb || img->width <= 0 || img->height <= 0) {
        snprintf(err, errcap, "the picture is empty (%dx%d)", img->width, img->height);
        return -EINVAL;
    }
    face_options_t o = opt ? *opt : face_options_default();
    int limit = o.max_faces > 0 ? o.max_faces : FACE_DEFAULT_MAX_FACES;
    if (limit > max_faces)
        limit = max_faces;
    int n = 0;
    int rc = face_detect(ctx, img, o.detector, o.min_score, o.tiny_input_size, faces, limit, &n);
    if (rc) {
        snprintf(err, errcap, "face detection failed: %s", core_strerror(rc));
        return rc;
    }
    unsigned want = o.want & FACE_WANT_ALL;
    if (want & (FACE_WANT_DESCRIPTOR | FACE_WANT_AGE_GENDER | FACE_WANT_EXPRESSIONS))
        want |= FACE_WANT_LANDMARKS;
    for (int i = 0; i < n; i++) {
        faces[i].have = 0;
        if (!want)
            continue;
        rc = analyze_face(ctx, img, &o, want, &faces[i]);
        if (rc) {
            snprintf(err, errcap, "face analysis failed: %s", core_strerror(rc));
            return rc;
        }
    }
    *n_faces = n;
    return 0;
}
