/* engine.c: the face engine's objects and the whole pipeline — face_engine_open loads the seven
 * networks (read-only afterwards, shared by threads), face_ctx_new makes one caller's working
 * memory, thread pool and (with 2 or more threads) one single-threaded worker ctx per thread,
 * face_analyze chains detection (its layers split over the pool) with the per-face networks the
 * caller asks for (whole faces and stages side by side on the workers). The per-face stages
 * (landmarks.c, recog.c, agegender.c, expression.c) each take their crop straight from the
 * picture into the network's input; after the first frames of a given size nothing is allocated
 * per frame or per face. */
#include <errno.h>
#include <stdatomic.h>
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
    int n = nn_pool_threads(c->pool);
    if (n > 1) {
        c->workers = calloc((size_t)n, sizeof *c->workers);
        if (!c->workers) {
            face_ctx_free(&c);
            return -ENOMEM;
        }
        c->n_workers = n;
        for (int i = 0; i < n; i++) {
            c->workers[i].engine = engine;
            face__arena_init(&c->workers[i].arena);
        }
    }
    *out = c;
    return 0;
}

void face_ctx_free(face_ctx_t **ctx)
{
    if (!ctx || !*ctx)
        return;
    for (int i = 0; i < (*ctx)->n_workers; i++)
        face__arena_destroy(&(*ctx)->workers[i].arena);
    free((*ctx)->workers);
    nn_pool_free(&(*ctx)->pool);
    face__arena_destroy(&(*ctx)->arena);
    free(*ctx);
    *ctx = NULL;
}

/* ==================================================================================== */
/* the per-face stages                                                                   */
/* ==================================================================================== */

/* A stage's -EINVAL means its crop has nothing inside the picture: the face just lacks that
 * result. Anything else is an error of the whole call. */
static int stage_rc(int rc, unsigned bit, unsigned *have)
{
    if (rc == 0)
        *have |= bit;
    return rc == -EINVAL ? 0 : rc;
}

/* One unit of per-face work. Phase 1: the landmarks. Phase 2, which needs them: the
 * descriptor, or the attributes (age/gender and expressions, one crop). */
typedef enum { WORK_LANDMARKS, WORK_DESCRIPTOR, WORK_ATTRIBUTES } work_kind_t;

/* The landmarks come from the clipped detection box, where face-api shifts them by the
 * unclipped one (docs/faces.md: on purpose); the descriptor's crop is capped by the landmark
 * crop as face-api caps it. */
static int work_run(face_ctx_t *ctx, const image_t *img, const face_options_t *opt,
                    unsigned want, work_kind_t kind, face_t *f, unsigned *have)
{
    int rc = 0;
    switch (kind) {
    case WORK_LANDMARKS:
        return stage_rc(face_landmarks(ctx, img, f->box, opt->tiny_landmarks, f->landmarks),
                        FACE_WANT_LANDMARKS, have);
    case WORK_DESCRIPTOR:
        return stage_rc(face_descriptor_in_box(ctx, img, f->box, f->landmarks, f->descriptor),
                        FACE_WANT_DESCRIPTOR, have);
    case WORK_ATTRIBUTES:
        if (want & FACE_WANT_AGE_GENDER)
            rc = stage_rc(face_age_gender(ctx, img, f->landmarks, &f->age, &f->male,
                                          &f->gender_probability),
                          FACE_WANT_AGE_GENDER, have);
        if (rc == 0 && (want & FACE_WANT_EXPRESSIONS))
            rc = stage_rc(face_expressions(ctx, img, f->landmarks, f->expressions),
                          FACE_WANT_EXPRESSIONS, have);
        return rc;
    }
    return -EINVAL;
}

/* Work items shared out over the pool's threads, each item on one thread with that thread's
 * single-threaded worker ctx: the per-face networks are too small for their layers to split
 * well over threads (landmarks take as long on two as on one), but two faces, or one face's
 * descriptor and its attributes, run side by side at full speed. Items are taken in order
 * from a shared counter; every item is computed by one thread alone, so results do not depend
 * on which thread took it. */
typedef struct work_item {
    int face;
    work_kind_t kind;
} work_item_t;

typedef struct work_job {
    face_ctx_t *ctx;
    const image_t *img;
    const face_options_t *opt;
    unsigned want;
    face_t *faces;
    const work_item_t *items;
    int n_items;
    unsigned *have; /* per item: the bits it computed (merged into the faces afterwards) */
    int *rc;        /* per item */
    atomic_int next;
} work_job_t;

static void work_task(void *vctx, int ti, int nt)
{
    work_job_t *j = vctx;
    face_ctx_t *w = &j->ctx->workers[ti];
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n_items)
            break;
        const work_item_t *it = &j->items[i];
        j->rc[i] = work_run(w, j->img, j->opt, j->want, it->kind, &j->faces[it->face],
                            &j->have[i]);
    }
}

/* Runs the items (on the workers, or in turn on ctx when it has none) and merges their bits
 * into the faces' `have`. */
static int work_all(face_ctx_t *ctx, const image_t *img, const face_options_t *opt,
                    unsigned want, face_t *faces, const work_item_t *items, int n_items,
                    unsigned *have, int *rcs)
{
    for (int i = 0; i < n_items; i++) {
        have[i] = 0;
        rcs[i] = 0;
    }
    if (ctx->n_workers > 1 && n_items > 1) {
        work_job_t j = { ctx, img, opt, want, faces, items, n_items, have, rcs, 0 };
        atomic_init(&j.next, 0);
        nn_pool_run(ctx->pool, work_task, &j);
    } else {
        for (int i = 0; i < n_items; i++)
            rcs[i] = work_run(ctx, img, opt, want, items[i].kind, &faces[items[i].face],
                              &have[i]);
    }
    int rc = 0;
    for (int i = 0; i < n_items; i++) {
        faces[items[i].face].have |= have[i];
        if (rc == 0)
            rc = rcs[i];
    }
    return rc;
}

/* Landmarks for every face, then the descriptors and the attributes of the faces that got
 * landmarks; the descriptors (the longest items) first, so the attributes fill in beside them. */
static int analyze_faces(face_ctx_t *ctx, const image_t *img, const face_options_t *opt,
                         unsigned want, face_t *faces, int n)
{
    size_t mark = face__arena_mark(&ctx->arena);
    /* item bookkeeping (at most two items per face) lives in the ctx's arena, which the
     * workers do not touch; sizes rounded up to whole floats */
    const size_t n2 = 2 * (size_t)n;
    const size_t f_items = (n2 * sizeof(work_item_t) + sizeof(float) - 1) / sizeof(float);
    const size_t f_have = (n2 * sizeof(unsigned) + sizeof(float) - 1) / sizeof(float);
    const size_t f_rcs = (n2 * sizeof(int) + sizeof(float) - 1) / sizeof(float);
    float *mem = face__arena_alloc(&ctx->arena, f_items + f_have + f_rcs);
    if (!mem)
        return -ENOMEM;
    work_item_t *items = (work_item_t *)(void *)mem;
    unsigned *have = (unsigned *)(void *)(mem + f_items);
    int *rcs = (int *)(void *)(mem + f_items + f_have);
    for (int i = 0; i < n; i++)
        items[i] = (work_item_t){ i, WORK_LANDMARKS };
    int rc = work_all(ctx, img, opt, want, faces, items, n, have, rcs);
    int k = 0;
    for (int i = 0; rc == 0 && i < n; i++)
        if ((faces[i].have & FACE_WANT_LANDMARKS) && (want & FACE_WANT_DESCRIPTOR))
            items[k++] = (work_item_t){ i, WORK_DESCRIPTOR };
    for (int i = 0; rc == 0 && i < n; i++)
        if ((faces[i].have & FACE_WANT_LANDMARKS) &&
            (want & (FACE_WANT_AGE_GENDER | FACE_WANT_EXPRESSIONS)))
            items[k++] = (work_item_t){ i, WORK_ATTRIBUTES };
    if (rc == 0 && k > 0)
        rc = work_all(ctx, img, opt, want, faces, items, k, have, rcs);
    face__arena_reset(&ctx->arena, mark);
    return rc;
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
    if (want && n > 0) {
        rc = analyze_faces(ctx, img, &o, want, faces, n);
        if (rc) {
            snprintf(err, errcap, "face analysis failed: %s", core_strerror(rc));
            return rc;
        }
    }
    *n_faces = n;
    return 0;
}
