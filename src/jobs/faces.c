/* jobs/faces.c: the faces step of media.process, and the process's face engine.
 *
 * One face_engine_t per process (read-only weights, shared), and a small pool of face_ctx_t
 * (one analysis each; buffers grow to the largest input and are then reused) that the job
 * workers and the /v1/faces request threads take and give back. The pool bounds memory and CPU:
 * at most cfg->contexts analyses run at once, each on cfg->threads threads.
 *
 * The step: an image is analyzed once at ts 0; a video's frames are sampled at
 * cfg->frame_rate (media_sample_frames) and analyzed one by one. Faces of consecutive samples
 * are linked into tracks (jobs_faces_link: greedy, best box overlap first, among pairs that
 * overlap by IoU >= 0.3 and are closer than 0.6 in descriptor distance; a track may miss one
 * sample). The item's faces and tracks then replace its earlier ones in one transaction that
 * also assigns each track to an identity (store_faces_replace). Whatever fails is recorded as
 * the item's faces status, never as the item's failure: its other results stay.
 *
 * Threads: jobs_faces_take/give from any thread; the step runs on a job worker and takes a
 * context per picture (a long video shares the pool with the requests instead of holding one). */
#include "jobs/jobs.h"

#include "core/core.h"
#include "media/media.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jobs_faces {
    jobs_faces_config_t cfg;
    char models_dir[4096];
    face_engine_t *engine; /* NULL: unavailable, for the reason in `why` */
    char why[4700];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    face_ctx_t **idle;     /* contexts not in use */
    int n_idle, n_made;
    atomic_bool stopping;  /* jobs_faces_stop: steps end at their next frame */
};

int jobs_faces_open(const jobs_faces_config_t *cfg, jobs_faces_t **out)
{
    jobs_faces_t *f = xcalloc(1, sizeof *f);
    f->cfg = *cfg;
    if (f->cfg.contexts < 1)
        f->cfg.contexts = 1;
    if (f->cfg.threads < 1)
        f->cfg.threads = 1;
    if (f->cfg.max_faces < 1)
        f->cfg.max_faces = 50;
    snprintf(f->models_dir, sizeof f->models_dir, "%s", cfg->models_dir ? cfg->models_dir : "");
    f->cfg.models_dir = f->models_dir;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->idle = xcalloc((size_t)f->cfg.contexts, sizeof *f->idle);
    int64_t t0 = core_mono_ns();
    char err[400] = "";
    int rc = face_engine_open(f->models_dir, &f->engine, err, sizeof err);
    if (rc < 0) {
        snprintf(f->why, sizeof f->why,
                 "the face models could not be loaded from %s: %s (run scripts/fetch_models.sh, "
                 "or point face_models at the face-api model folder)",
                 f->models_dir, *err ? err : core_strerror(rc));
        char q[5200];
        core_log(CORE_LOG_WARN, "faces.load", "models=%s error=%s", f->models_dir,
                 core_log_quote(f->why, q, sizeof q));
    } else {
        core_log(CORE_LOG_INFO, "faces.load",
                 "models=%s ms=%.1f detector=%s contexts=%d threads=%d", f->models_dir,
                 (double)(core_mono_ns() - t0) / 1e6,
                 face_detector_name(f->cfg.detector), f->cfg.contexts, f->cfg.threads);
    }
    *out = f;
    return 0;
}

void jobs_faces_free(jobs_faces_t **pf)
{
    jobs_faces_t *f = pf ? *pf : NULL;
    if (!f)
        return;
    for (int i = 0; i < f->n_idle; i++)
        face_ctx_free(&f->idle[i]);
    free(f->idle);
    face_engine_free(&f->engine);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
    *pf = NULL;
}

void jobs_faces_stop(jobs_faces_t *f)
{
    if (f)
        atomic_store(&f->stopping, true);
}

const char *jobs_faces_unavailable(const jobs_faces_t *f)
{
    if (!f)
        return "face analysis is not configured";
    return f->engine ? NULL : f->why;
}

const jobs_faces_config_t *jobs_faces_config(const jobs_faces_t *f)
{
    return &f->cfg;
}

int jobs_faces_take(jobs_faces_t *f, face_ctx_t **out)
{
    *out = NULL;
    if (!f || !f->engine)
        return -ENODEV;
    pthread_mutex_lock(&f->mu);
    while (f->n_idle == 0 && f->n_made >= f->cfg.contexts)
        pthread_cond_wait(&f->cv, &f->mu);
    int rc = 0;
    if (f->n_idle > 0) {
        *out = f->idle[--f->n_idle];
    } else {
        f->n_made++; /* reserved before unlocking: a concurrent take waits instead */
        pthread_mutex_unlock(&f->mu);
        rc = face_ctx_new(f->engine, f->cfg.threads, out);
        pthread_mutex_lock(&f->mu);
        if (rc < 0) {
            f->n_made--;
            pthread_cond_signal(&f->cv);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void jobs_faces_give(jobs_faces_t *f, face_ctx_t *ctx)
{
    if (!f || !ctx)
        return;
    pthread_mutex_lock(&f->mu);
    f->idle[f->n_idle++] = ctx;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* ======================================================================================
 * tracks
 * ====================================================================================== */

typedef struct live_track {
    size_t frame;    /* index of the last frame with its face */
    face_box_t box;  /* that face's box */
    const float *desc;
    double sum[FACE_DESCRIPTOR_DIM];
    int n_desc;
} live_track_t;

typedef struct link_pair {
    int face, track;
    float iou;
} link_pair_t;

static int by_iou_desc(const void *a, const void *b)
{
    const link_pair_t *x = a, *y = b;
    return (x->iou < y->iou) - (x->iou > y->iou);
}

static void track_add_face(store_face_track_t *t, live_track_t *lt, const face_t *face,
                           size_t frame, int64_t ts_ms)
{
    if (t->face_count == 0)
        t->start_ms = ts_ms;
    t->end_ms = ts_ms;
    t->face_count++;
    lt->frame = frame;
    lt->box = face->box;
    lt->desc = (face->have & FACE_WANT_DESCRIPTOR) ? face->descriptor : NULL;
    if (lt->desc) {
        for (int k = 0; k < FACE_DESCRIPTOR_DIM; k++)
            lt->sum[k] += face->descriptor[k];
        lt->n_desc++;
    }
}

int jobs_faces_link(const jobs_faces_frame_t *frames, size_t n_frames, int **track_of,
                    store_face_track_t **tracks_out, size_t *n_tracks)
{
    size_t total = 0;
    for (size_t i = 0; i < n_frames; i++)
        total += (size_t)(frames[i].n > 0 ? frames[i].n : 0);
    int *of = xmalloc((total ? total : 1) * sizeof *of);
    /* At most one track per face. */
    store_face_track_t *tracks = xcalloc(total ? total : 1, sizeof *tracks);
    live_track_t *live = xcalloc(total ? total : 1, sizeof *live);
    link_pair_t *pairs = NULL;
    size_t cap_pairs = 0, nt = 0, base = 0;
    for (size_t i = 0; i < n_frames; i++) {
        const jobs_faces_frame_t *fr = &frames[i];
        int n = fr->n > 0 ? fr->n : 0;
        /* Candidate pairs: each face of this frame with each track seen in the last GAP
         * frames, when boxes overlap and descriptors agree. */
        size_t np = 0;
        for (int j = 0; j < n; j++) {
            const face_t *face = &fr->faces[j];
            of[base + (size_t)j] = -1;
            if (!(face->have & FACE_WANT_DESCRIPTOR))
                continue;
            for (size_t t = 0; t < nt; t++) {
                if (!live[t].desc || live[t].frame >= i || i - live[t].frame > JOBS_FACES_TRACK_GAP)
                    continue;
                float iou = face_box_iou(face->box, live[t].box);
                if (iou < JOBS_FACES_TRACK_IOU ||
                    face_distance(face->descriptor, live[t].desc) >= JOBS_FACES_TRACK_DISTANCE)
                    continue;
                if (np == cap_pairs) {
                    cap_pairs = cap_pairs ? cap_pairs * 2 : 64;
                    pairs = xrealloc(pairs, cap_pairs * sizeof *pairs);
                }
                pairs[np++] = (link_pair_t){j, (int)t, iou};
            }
        }
        if (np > 1)
            qsort(pairs, np, sizeof *pairs, by_iou_desc);
        for (size_t p = 0; p < np; p++) {
            int j = pairs[p].face, t = pairs[p].track;
            if (of[base + (size_t)j] >= 0 || live[t].frame == i)
                continue; /* face or track already linked in this frame */
            of[base + (size_t)j] = t;
            track_add_face(&tracks[t], &live[t], &fr->faces[j], i, fr->ts_ms);
        }
        for (int j = 0; j < n; j++) {
            if (of[base + (size_t)j] >= 0)
                continue;
            of[base + (size_t)j] = (int)nt;
            live[nt].frame = i;
            track_add_face(&tracks[nt], &live[nt], &fr->faces[j], i, fr->ts_ms);
            nt++;
        }
        base += (size_t)n;
    }
    for (size_t t = 0; t < nt; t++)
        for (int k = 0; k < FACE_DESCRIPTOR_DIM; k++)
            tracks[t].descriptor[k] = live[t].n_desc ? (float)(live[t].sum[k] / live[t].n_desc) : 0;
    free(pairs);
    free(live);
    *track_of = of;
    *tracks_out = tracks;
    *n_tracks = nt;
    return 0;
}

/* ======================================================================================
 * the step
 * ====================================================================================== */

/* Every face of every sampled frame, and the frames, growing as frames arrive. */
typedef struct collect {
    jobs_faces_t *f;
    face_options_t opt;
    face_t *scratch;       /* max_faces, one frame's faces */
    face_t *faces;         /* all faces, in frame order */
    size_t n_faces, cap_faces;
    jobs_faces_frame_t *frames;
    size_t n_frames, cap_frames;
    char err[512];
} collect_t;

static int collect_picture(collect_t *c, const image_t *img, int64_t ts_ms)
{
    int n = 0;
    face_ctx_t *ctx = NULL;
    /* A context per picture, not per item: a long video must not keep the /v1/faces requests
     * waiting for minutes. */
    int rc = jobs_faces_take(c->f, &ctx);
    if (rc < 0) {
        snprintf(c->err, sizeof c->err, "no face analysis context: %s", core_strerror(rc));
        return rc;
    }
    rc = face_analyze(ctx, img, &c->opt, c->scratch, c->f->cfg.max_faces, &n, c->err,
                      sizeof c->err);
    jobs_faces_give(c->f, ctx);
    if (rc < 0)
        return rc;
    if (c->n_faces + (size_t)n > c->cap_faces) {
        c->cap_faces = (c->n_faces + (size_t)n) * 2;
        c->faces = xrealloc(c->faces, c->cap_faces * sizeof *c->faces);
    }
    if (n > 0)
        memcpy(c->faces + c->n_faces, c->scratch, (size_t)n * sizeof *c->faces);
    if (c->n_frames == c->cap_frames) {
        c->cap_frames = c->cap_frames ? c->cap_frames * 2 : 64;
        c->frames = xrealloc(c->frames, c->cap_frames * sizeof *c->frames);
    }
    /* faces pointers are fixed up once collecting ends (the array moves as it grows) */
    c->frames[c->n_frames++] = (jobs_faces_frame_t){ts_ms, NULL, n};
    c->n_faces += (size_t)n;
    return 0;
}

static int on_frame(void *ud, const uint8_t *rgb, int width, int height, int64_t pts_ms)
{
    collect_t *c = ud;
    if (atomic_load(&c->f->stopping))
        return -ECANCELED;
    image_t img = {.width = width, .height = height, .rgb = (uint8_t *)rgb};
    return collect_picture(c, &img, pts_ms);
}

static void to_store_face(const face_t *in, int64_t ts_ms, int track, store_face_t *out)
{
    memset(out, 0, sizeof *out);
    out->ts_ms = ts_ms;
    out->x = in->box.x;
    out->y = in->box.y;
    out->w = in->box.w;
    out->h = in->box.h;
    out->score = in->score;
    out->has_landmarks = (in->have & FACE_WANT_LANDMARKS) != 0;
    for (int i = 0; out->has_landmarks && i < FACE_LANDMARK_COUNT; i++) {
        out->landmarks[2 * i] = in->landmarks[i].x;
        out->landmarks[2 * i + 1] = in->landmarks[i].y;
    }
    out->has_descriptor = (in->have & FACE_WANT_DESCRIPTOR) != 0;
    if (out->has_descriptor)
        memcpy(out->descriptor, in->descriptor, sizeof out->descriptor);
    out->has_attributes = (in->have & FACE_WANT_AGE_GENDER) && (in->have & FACE_WANT_EXPRESSIONS);
    if (out->has_attributes) {
        out->age = in->age;
        out->male = in->male;
        out->gender_probability = in->gender_probability;
        memcpy(out->expressions, in->expressions, sizeof out->expressions);
    }
    out->track = track;
}

/* Links c's faces into tracks and stores them. */
static int store_collected(store_t *st, collect_t *c, int64_t account_id, int64_t media_id,
                           int64_t ms)
{
    size_t off = 0;
    for (size_t i = 0; i < c->n_frames; i++) {
        c->frames[i].faces = c->faces + off;
        off += (size_t)c->frames[i].n;
    }
    int *track_of = NULL;
    store_face_track_t *tracks = NULL;
    size_t nt = 0;
    int rc = jobs_faces_link(c->frames, c->n_frames, &track_of, &tracks, &nt);
    if (rc < 0)
        return rc;
    store_face_t *rows = xmalloc((c->n_faces ? c->n_faces : 1) * sizeof *rows);
    size_t k = 0;
    for (size_t i = 0; i < c->n_frames; i++)
        for (int j = 0; j < c->frames[i].n; j++, k++)
            to_store_face(&c->faces[k], c->frames[i].ts_ms, track_of[k], &rows[k]);
    store_faces_status_t info = {.frames = (int)c->n_frames, .ms = ms};
    snprintf(info.detector, sizeof info.detector, "%s", face_detector_name(c->opt.detector));
    rc = store_faces_replace(st, account_id, media_id, rows, c->n_faces, tracks, nt,
                             c->f->cfg.identity_threshold, &info, NULL);
    free(rows);
    free(track_of);
    free(tracks);
    return rc;
}

int jobs_faces_process(store_t *st, jobs_faces_t *f, int64_t account_id, int64_t media_id,
                       const char *kind, const char *path)
{
    const char *why = jobs_faces_unavailable(f);
    if (why) {
        int rc = store_faces_set_status(st, account_id, media_id, "skipped", why);
        return rc == -ENOENT ? 0 : rc;
    }
    int64_t t0 = core_mono_ns();
    collect_t c = {.f = f};
    c.opt = face_options_default();
    c.opt.detector = f->cfg.detector;
    c.opt.max_faces = f->cfg.max_faces;
    c.opt.want = FACE_WANT_ALL;
    c.scratch = xmalloc((size_t)f->cfg.max_faces * sizeof *c.scratch);
    image_t img = {0};
    bool video = strcmp(kind, "image") != 0;
    int rc;
    if (video) {
        rc = media_sample_frames(path, f->cfg.frame_rate, f->cfg.max_pixels, f->cfg.max_frames,
                                 on_frame, &c, NULL, c.err, sizeof c.err);
    } else if ((rc = image_load(path, f->cfg.max_pixels, &img, c.err, sizeof c.err)) == 0) {
        rc = collect_picture(&c, &img, 0);
    }
    if (rc == -ECANCELED && atomic_load(&f->stopping))
        goto done; /* nothing recorded: the job runs again after the restart */
    if (rc < 0)
        goto out;
    int64_t ms = (core_mono_ns() - t0) / 1000000;
    rc = store_collected(st, &c, account_id, media_id, ms);
    if (rc == -ENOENT) {
        rc = 0; /* the item was deleted meanwhile: nothing to record */
        goto done;
    }
    if (rc < 0)
        snprintf(c.err, sizeof c.err, "could not store the faces: %s", core_strerror(rc));
    else
        core_log(CORE_LOG_INFO, "faces.item", "media=%lld frames=%zu faces=%zu ms=%lld",
                 (long long)media_id, c.n_frames, c.n_faces, (long long)ms);
out:
    /* Any failure before storing (a file that cannot be read: -ENOENT too) is the step's. */
    if (rc < 0) {
        char q[600];
        if (!*c.err)
            snprintf(c.err, sizeof c.err, "%s", core_strerror(rc));
        core_log(CORE_LOG_WARN, "faces.item", "media=%lld error=%s", (long long)media_id,
                 core_log_quote(c.err, q, sizeof q));
        rc = store_faces_set_status(st, account_id, media_id, "failed", c.err);
    }
done:
    image_free(&img);
    free(c.scratch);
    free(c.faces);
    free(c.frames);
    return rc == -ENOENT ? 0 : rc; /* -ENOENT: the item was deleted meanwhile */
}
