/* face_bench: speed of the face engine (src/face). Per 640x480 frame: detection (tiny at 416, SSD
 * at 512); per face: landmarks (full and tiny), descriptor, age + gender, expressions; at 1 and 2
 * threads; the full per-frame pipeline (tiny detector + landmarks + descriptor + age/gender +
 * expressions on the frame's one face) as frames/s; the whole pipeline on a still (sample1.jpg:
 * 1920x1280, 3 faces) and on the frame, with each detector; and video analysis: every frame
 * media_sample_frames hands over at 2 frames/s through the full pipeline, as seconds of video
 * per second. Times are medians (and the fastest) of RUNS runs after a warm-up run; decoding the
 * still is not timed (nor is it in the reference's benchmark), decoding the video is.
 *
 * Besides the table, one line per picture, detector and thread count for bench/face.sh to set
 * beside the reference's (bench/face_reference_bench.js):
 *   c <picture> <tiny|ssd> threads=<n> median_ms=<ms> min_ms=<ms> faces=<n>
 *
 * usage: face_bench MODELS_DIR STILL FRAME_640x480 VIDEO VIDEO_SECONDS [RUNS]
 * Built by bench/CMakeLists.txt as BUILD/bench/face_bench; run by bench/face.sh (`make bench`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "face/face.h"
#include "image/image.h"
#include "media/media.h"

enum { MAX_FACES = 64, MAX_RUNS = 1000 };

static double now_ms(void) { return (double)core_mono_ns() / 1e6; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ==== one stage, timed ==== */

typedef enum {
    ST_DETECT_TINY, ST_DETECT_SSD, ST_LANDMARKS, ST_LANDMARKS_TINY, ST_DESCRIPTOR, ST_AGE_GENDER,
    ST_EXPRESSIONS, ST_PIPELINE,
} stage_t;

typedef struct job {
    face_ctx_t *ctx;
    const image_t *img;
    face_box_t box;                             /* the face, for the landmark networks */
    face_point_t landmarks[FACE_LANDMARK_COUNT]; /* the face, for the other networks */
    face_options_t opt;                         /* the whole pipeline */
    face_t faces[MAX_FACES];
    int n_faces;
} job_t;

static int run_stage(job_t *j, stage_t s)
{
    face_point_t pts[FACE_LANDMARK_COUNT];
    float v[FACE_DESCRIPTOR_DIM], age, gp;
    bool male;
    char err[256];
    switch (s) {
    case ST_DETECT_TINY:
        return face_detect(j->ctx, j->img, FACE_DETECTOR_TINY, 0, 0, j->faces, MAX_FACES,
                           &j->n_faces);
    case ST_DETECT_SSD:
        return face_detect(j->ctx, j->img, FACE_DETECTOR_SSD, 0, 0, j->faces, MAX_FACES,
                           &j->n_faces);
    case ST_LANDMARKS: return face_landmarks(j->ctx, j->img, j->box, false, pts);
    case ST_LANDMARKS_TINY: return face_landmarks(j->ctx, j->img, j->box, true, pts);
    case ST_DESCRIPTOR: return face_descriptor(j->ctx, j->img, j->landmarks, v);
    case ST_AGE_GENDER: return face_age_gender(j->ctx, j->img, j->landmarks, &age, &male, &gp);
    case ST_EXPRESSIONS: return face_expressions(j->ctx, j->img, j->landmarks, v);
    case ST_PIPELINE:
        return face_analyze(j->ctx, j->img, &j->opt, j->faces, MAX_FACES, &j->n_faces, err,
                            sizeof err);
    }
    return -1;
}

/* Median and fastest milliseconds of runs calls after one warm-up call (which sizes the ctx's
 * memory). The fastest shows what the code can do when a shared machine is busy. */
static int time_stage(job_t *j, stage_t s, int runs, double *median_ms, double *min_ms)
{
    static double t[MAX_RUNS];
    int rc = run_stage(j, s);
    for (int i = 0; rc == 0 && i < runs; i++) {
        double t0 = now_ms();
        rc = run_stage(j, s);
        t[i] = now_ms() - t0;
    }
    if (rc != 0) return rc;
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    *median_ms = runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2;
    *min_ms = t[0];
    return 0;
}

/* ==== video ==== */

typedef struct video {
    face_ctx_t *ctx;
    face_options_t opt;
    face_t faces[MAX_FACES];
    int frames, frames_with_face;
    char err[256];
} video_t;

static int on_frame(void *ud, const uint8_t *rgb, int width, int height, int64_t pts_ms)
{
    (void)pts_ms;
    video_t *v = ud;
    /* face_analyze only reads the pixels; image_t has no const variant. */
    image_t img = {.width = width, .height = height, .rgb = (uint8_t *)rgb};
    int n = 0;
    int rc = face_analyze(v->ctx, &img, &v->opt, v->faces, MAX_FACES, &n, v->err, sizeof v->err);
    v->frames++;
    v->frames_with_face += n > 0;
    return rc;
}

/* ==== main ==== */

static const struct {
    stage_t s;
    const char *name;
    bool per_face;
} STAGES[] = {
    {ST_DETECT_TINY, "tiny detection (416)", false},
    {ST_DETECT_SSD, "SSD detection (512)", false},
    {ST_LANDMARKS, "landmarks (full)", true},
    {ST_LANDMARKS_TINY, "landmarks (tiny)", true},
    {ST_DESCRIPTOR, "descriptor (128-D)", true},
    {ST_AGE_GENDER, "age + gender", true},
    {ST_EXPRESSIONS, "expressions", true},
    {ST_PIPELINE, "full pipeline, tiny (1 face)", false},
};
#define N_STAGES (sizeof STAGES / sizeof *STAGES)
static const int THREADS[] = {1, 2};
#define N_THREADS 2

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: face_bench MODELS_DIR STILL FRAME_640x480 VIDEO VIDEO_SECONDS "
                        "[RUNS]\n");
        return 2;
    }
    const char *models = argv[1], *still_path = argv[2], *frame_path = argv[3];
    const char *video_path = argv[4];
    double video_s = atof(argv[5]);
    int runs = argc > 6 ? atoi(argv[6]) : 10;
    if (runs < 1 || runs > MAX_RUNS || video_s <= 0) {
        fprintf(stderr, "face_bench: RUNS is 1..%d, VIDEO_SECONDS > 0\n", MAX_RUNS);
        return 2;
    }
    int status = 1;
    char err[256] = "";
    face_engine_t *engine = NULL;
    face_ctx_t *ctx[N_THREADS] = {NULL};
    image_t still = {0}, frame = {0};
    static job_t job;
    static video_t video;

    media_init();
    double t0 = now_ms();
    if (face_engine_open(models, &engine, err, sizeof err) != 0) {
        fprintf(stderr, "face_bench: %s: %s\n", models, err);
        goto out;
    }
    printf("models load: %.0f ms\n", now_ms() - t0);
    for (int t = 0; t < N_THREADS; t++)
        if (face_ctx_new(engine, THREADS[t], &ctx[t]) != 0) goto out;
    if (image_load(still_path, 0, &still, err, sizeof err) != 0 ||
        image_load(frame_path, 0, &frame, err, sizeof err) != 0) {
        fprintf(stderr, "face_bench: %s\n", err);
        goto out;
    }

    /* The frame's face: the landmark networks get its box, the others its landmarks. */
    job.ctx = ctx[0];
    job.img = &frame;
    job.opt = face_options_default();
    if (run_stage(&job, ST_DETECT_TINY) != 0 || job.n_faces < 1) {
        fprintf(stderr, "face_bench: no face in %s\n", frame_path);
        goto out;
    }
    job.box = job.faces[0].box;
    if (face_landmarks(ctx[0], &frame, job.box, false, job.landmarks) != 0) goto out;

    double ms[N_STAGES][N_THREADS], fastest[N_STAGES][N_THREADS];
    for (size_t s = 0; s < N_STAGES; s++)
        for (int t = 0; t < N_THREADS; t++) {
            job.ctx = ctx[t];
            int rc = time_stage(&job, STAGES[s].s, runs, &ms[s][t], &fastest[s][t]);
            if (rc != 0) {
                fprintf(stderr, "face_bench: %s: %s\n", STAGES[s].name, core_strerror(rc));
                goto out;
            }
        }
    printf("\n%dx%d frame (%s), ms, median (fastest) of %d runs:\n", frame.width, frame.height,
           frame_path, runs);
    printf("  %-30s %17s %17s\n", "", "1 thread", "2 threads");
    for (size_t s = 0; s < N_STAGES; s++)
        printf("  %-30s %8.2f (%6.2f) %8.2f (%6.2f)%s\n", STAGES[s].name, ms[s][0],
               fastest[s][0], ms[s][1], fastest[s][1], STAGES[s].per_face ? "  per face" : "");
    size_t last = N_STAGES - 1;
    printf("  full pipeline, frames/s: %.1f at 1 thread, %.1f at 2 threads (fastest run: %.1f, "
           "%.1f; faces: %d)\n", 1000 / ms[last][0], 1000 / ms[last][1], 1000 / fastest[last][0],
           1000 / fastest[last][1], job.n_faces);

    const char *paths[2] = {still_path, frame_path};
    const image_t *imgs[2] = {&still, &frame};
    for (int p = 0; p < 2; p++) {
        printf("\nwhole pipeline on %s (%dx%d), median of %d runs:\n", paths[p], imgs[p]->width,
               imgs[p]->height, runs);
        const char *base = strrchr(paths[p], '/') ? strrchr(paths[p], '/') + 1 : paths[p];
        job.img = imgs[p];
        for (int d = FACE_DETECTOR_TINY; d <= FACE_DETECTOR_SSD; d++)
            for (int t = 0; t < N_THREADS; t++) {
                double m, f;
                job.ctx = ctx[t];
                job.opt.detector = (face_detector_t)d;
                if (time_stage(&job, ST_PIPELINE, runs, &m, &f) != 0) goto out;
                printf("c %s %s threads=%d median_ms=%.1f min_ms=%.1f faces=%d\n", base,
                       face_detector_name((face_detector_t)d), THREADS[t], m, f, job.n_faces);
            }
    }

    video.ctx = ctx[N_THREADS - 1];
    video.opt = face_options_default();
    int n_frames = 0;
    t0 = now_ms();
    int rc = media_sample_frames(video_path, 2.0, 0, 0, on_frame, &video, &n_frames, err,
                                 sizeof err);
    double secs = (now_ms() - t0) / 1000;
    if (rc != 0) {
        fprintf(stderr, "face_bench: %s: %s %s\n", video_path, err, video.err);
        goto out;
    }
    printf("\nvideo %s (%.0f s) at 2 frames/s, %d threads: %d frames (%d with a face) in %.2f s: "
           "%.1f x real time\n", video_path, video_s, THREADS[N_THREADS - 1], video.frames,
           video.frames_with_face, secs, video_s / secs);
    status = 0;
out:
    image_free(&still);
    image_free(&frame);
    for (int t = 0; t < N_THREADS; t++) face_ctx_free(&ctx[t]);
    face_engine_free(&engine);
    return status;
}
