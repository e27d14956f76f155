/* test_face_nets: the per-face networks and the engine against the JavaScript reference's
 * outputs (the JSON fixtures in tests/data/faces, made by tests/tools/face_reference.js) on identical pixels —
 * each picture decoded by the ffmpeg CLI exactly as the fixture says, its SHA-256 checked before
 * anything is compared. Each stage runs on the reference's own inputs (its boxes for the
 * landmark networks, its landmarks for the others), for both detectors' faces:
 *   68 landmarks (full and tiny)  within 1.5 px
 *   descriptor                    within 0.02 Euclidean
 *   age                           within 1 year; P(male) within 0.02
 *   expressions                   each probability within 0.02
 *   crops                         the dlib box exactly, the attribute box within a pixel
 * The recognition network's Winograd convolution against im2col on random tensors. Then the
 * engine: one face at two scales verifies as the same person, faces the reference tells
 * apart are told apart, a face cut by the picture's edge keeps its landmarks on the face, no face
 * gives 0 faces and 0, one thread and several agree, bad arguments and bad or damaged model
 * folders give errors with reasons (never a crash), random landmarks never crash a stage, and
 * the ctx stops allocating once warm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "face/internal.h"
#include "image/image.h"

#define LANDMARK_TOL_PX 1.5
#define DESCRIPTOR_TOL 0.02
#define AGE_TOL_YEARS 1.0
#define PROB_TOL 0.02

static const char *const k_pictures[] = {
    "sample1", "sample2", "sample3", "sample4", "sample5", "sample6",
    "frame_face", "frame_face_half", "frame_grey", "frame_portrait", "frame_noface",
};
enum { N_PICTURES = sizeof k_pictures / sizeof k_pictures[0] };
static const char *const k_detectors[] = { "tiny", "ssd" };

typedef struct picture {
    const char *name;
    json_t *root;
    image_t img;
} picture_t;

typedef struct ref_face {
    face_box_t box;
    face_point_t landmarks[FACE_LANDMARK_COUNT], landmarks_tiny[FACE_LANDMARK_COUNT];
    double attributes_box[4], descriptor_box[4];
    float descriptor[FACE_DESCRIPTOR_DIM];
    double age, p_male, expressions[FACE_EXPRESSION_COUNT];
} ref_face_t;

static struct {
    face_engine_t *engine;
    face_ctx_t *ctx;
    picture_t pics[N_PICTURES];
} g;

/* ==================================================================================== */
/* fixtures                                                                              */
/* ==================================================================================== */

static const char *env_or_fail(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set (ctest sets it)", name);
    return v;
}

static int run_cmd(const char *cmd)
{
    int rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

/* The RGB bytes of a fixture's picture as the ffmpeg CLI decodes them, checked against the
 * fixture's SHA-256 (a different decode would make every comparison meaningless). */
static void decode_picture(picture_t *p)
{
    const char *image = json_string_value(json_object_get(p->root, "image"));
    const char *sha = json_string_value(json_object_get(p->root, "rgb_sha256"));
    int w = (int)json_integer_value(json_object_get(p->root, "width"));
    int h = (int)json_integer_value(json_object_get(p->root, "height"));
    assert_non_null(image);
    assert_non_null(sha);
    char src[1024], raw[1024], cmd[4096];
    if (strncmp(image, "sample", 6) == 0)
        snprintf(src, sizeof src, "%s/%s", env_or_fail("PERSONA_FACE_MODELS"), image);
    else
        snprintf(src, sizeof src, "%s/tests/data/faces/%s", env_or_fail("PERSONA_SRC"), image);
    const char *tmp = env_or_fail("PERSONA_TEST_TMP");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    assert_int_equal(run_cmd(cmd), 0);
    snprintf(raw, sizeof raw, "%s/%s.rgb", tmp, p->name);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -v error -y -i '%s' -frames:v 1 -f rawvideo -pix_fmt rgb24 '%s'", src,
             raw);
    if (run_cmd(cmd) != 0)
        fail_msg("ffmpeg could not decode %s", src);
    assert_int_equal(image_alloc(&p->img, w, h), 0);
    FILE *f = fopen(raw, "rb");
    assert_non_null(f);
    assert_int_equal(fread(p->img.rgb, 3, (size_t)w * h, f), (size_t)w * h);
    assert_int_equal(fgetc(f), EOF);
    fclose(f);
    unlink(raw);
    unsigned char md[SHA256_DIGEST_LENGTH];
    char got[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256(p->img.rgb, (size_t)w * h * 3, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(got + 2 * i, 3, "%02x", md[i]);
    if (strcmp(got, sha) != 0)
        fail_msg("%s decodes to other pixels than the fixture's (sha256 %s, fixture %s)", image,
                 got, sha);
}

static void load_picture(picture_t *p, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/faces/%s.json", env_or_fail("PERSONA_SRC"), name);
    json_error_t jerr;
    p->name = name;
    p->root = json_load_file(path, 0, &jerr);
    if (!p->root)
        fail_msg("%s: %s", path, jerr.text);
    decode_picture(p);
}

static json_t *faces_of(const picture_t *p, const char *detector)
{
    return json_object_get(json_object_get(json_object_get(p->root, "detectors"), detector),
                           "faces");
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void points(json_t *arr, face_point_t out[FACE_LANDMARK_COUNT])
{
    assert_int_equal(json_array_size(arr), FACE_LANDMARK_COUNT);
    for (int i = 0; i < FACE_LANDMARK_COUNT; i++) {
        json_t *pt = json_array_get(arr, (size_t)i);
        out[i].x = (float)json_number_value(json_array_get(pt, 0));
        out[i].y = (float)json_number_value(json_array_get(pt, 1));
    }
}

static void rect4(json_t *o, double out[4])
{
    out[0] = num(o, "x");
    out[1] = num(o, "y");
    out[2] = num(o, "w");
    out[3] = num(o, "h");
}

static void parse_face(json_t *o, ref_face_t *f)
{
    double b[4];
    rect4(json_object_get(o, "box"), b);
    f->box = (face_box_t){ (float)b[0], (float)b[1], (float)b[2], (float)b[3] };
    points(json_object_get(o, "landmarks"), f->landmarks);
    points(json_object_get(o, "landmarks_tiny"), f->landmarks_tiny);
    rect4(json_object_get(o, "attributes_box"), f->attributes_box);
    rect4(json_object_get(o, "descriptor_box"), f->descriptor_box);
    json_t *d = json_object_get(o, "descriptor");
    assert_int_equal(json_array_size(d), FACE_DESCRIPTOR_DIM);
    for (int i = 0; i < FACE_DESCRIPTOR_DIM; i++)
        f->descriptor[i] = (float)json_number_value(json_array_get(d, (size_t)i));
    f->age = num(o, "age");
    double gp = num(o, "gender_probability");
    const char *gender = json_string_value(json_object_get(o, "gender"));
    assert_non_null(gender);
    f->p_male = strcmp(gender, "male") == 0 ? gp : 1 - gp;
    json_t *e = json_object_get(o, "expressions");
    for (int i = 0; i < FACE_EXPRESSION_COUNT; i++)
        f->expressions[i] = num(e, face_expression_names[i]);
}

/* Calls fn on every face of every picture for both detectors; returns how many. */
typedef void (*face_fn)(const picture_t *p, const char *label, const ref_face_t *f, void *acc);
static int each_face(face_fn fn, void *acc)
{
    int n = 0;
    for (int i = 0; i < N_PICTURES; i++) {
        for (int d = 0; d < 2; d++) {
            json_t *faces = faces_of(&g.pics[i], k_detectors[d]);
            for (size_t j = 0; j < json_array_size(faces); j++) {
                ref_face_t f;
                char label[96];
                parse_face(json_array_get(faces, j), &f);
                snprintf(label, sizeof label, "%s %s face %zu", g.pics[i].name, k_detectors[d], j);
                fn(&g.pics[i], label, &f, acc);
                n++;
            }
        }
    }
    return n;
}

static int group_setup(void **state)
{
    char err[512];
    int rc = face_engine_open(env_or_fail("PERSONA_FACE_MODELS"), &g.engine, err, sizeof err);
    if (rc)
        fail_msg("face_engine_open: %s", err);
    assert_int_equal(face_ctx_new(g.engine, 2, &g.ctx), 0);
    for (int i = 0; i < N_PICTURES; i++)
        load_picture(&g.pics[i], k_pictures[i]);
    return 0;
}

static int group_teardown(void **state)
{
    for (int i = 0; i < N_PICTURES; i++) {
        image_free(&g.pics[i].img);
        json_decref(g.pics[i].root);
    }
    face_ctx_free(&g.ctx);
    face_engine_free(&g.engine);
    return 0;
}

/* ==================================================================================== */
/* each network on the reference's inputs                                                */
/* ==================================================================================== */

typedef struct worst {
    double v;
    char where[96];
} worst_t;

static void note(worst_t *w, double v, const char *label)
{
    if (v > w->v) {
        w->v = v;
        snprintf(w->where, sizeof w->where, "%s", label);
    }
}

static double max_point_error(const face_point_t *a, const face_point_t *b)
{
    double m = 0;
    for (int i = 0; i < FACE_LANDMARK_COUNT; i++)
        m = fmax(m, hypot((double)a[i].x - b[i].x, (double)a[i].y - b[i].y));
    return m;
}

static void check_landmarks(const picture_t *p, const char *label, const ref_face_t *f, void *acc)
{
    worst_t *w = acc;
    face_point_t got[FACE_LANDMARK_COUNT];
    assert_int_equal(face_landmarks(g.ctx, &p->img, f->box, false, got), 0);
    double e = max_point_error(got, f->landmarks);
    note(&w[0], e, label);
    if (e > LANDMARK_TOL_PX)
        fail_msg("%s: landmark off by %.3f px", label, e);
    assert_int_equal(face_landmarks(g.ctx, &p->img, f->box, true, got), 0);
    e = max_point_error(got, f->landmarks_tiny);
    note(&w[1], e, label);
    if (e > LANDMARK_TOL_PX)
        fail_msg("%s: tiny landmark off by %.3f px", label, e);
}

static void test_landmarks(void **state)
{
    worst_t w[2] = { 0 };
    int n = each_face(check_landmarks, w);
    assert_true(n >= 30);
    print_message("landmarks on %d faces: worst %.2e px (%s), tiny %.2e px (%s)\n", n, w[0].v,
                  w[0].where, w[1].v, w[1].where);
}

static void check_crops(const picture_t *p, const char *label, const ref_face_t *f, void *acc)
{
    face_rect_t got, want;
    const double *d = f->descriptor_box, *a = f->attributes_box;
    face_rect_t lm_crop;
    assert_int_equal(face__crop_rect(f->box.x, f->box.y, f->box.w, f->box.h, p->img.width,
                                     p->img.height, &lm_crop),
                     0);
    assert_int_equal(
        face__align_rect_dlib(f->landmarks, &lm_crop, p->img.width, p->img.height, &got), 0);
    assert_int_equal(face__crop_rect(d[0], d[1], d[2], d[3], p->img.width, p->img.height, &want),
                     0);
    if (memcmp(&got, &want, sizeof got) != 0)
        fail_msg("%s: dlib crop %d,%d %dx%d, reference %d,%d %dx%d", label, got.x, got.y, got.w,
                 got.h, want.x, want.y, want.w, want.h);
    /* the fixture keeps 6 significant digits of this box: a floor may land one pixel apart */
    assert_int_equal(face__align_rect(f->landmarks, p->img.width, p->img.height, &got), 0);
    assert_int_equal(face__crop_rect(a[0], a[1], a[2], a[3], p->img.width, p->img.height, &want),
                     0);
    if (abs(got.x - want.x) > 1 || abs(got.y - want.y) > 1 || abs(got.w - want.w) > 1 ||
        abs(got.h - want.h) > 1)
        fail_msg("%s: attribute crop %d,%d %dx%d, reference %d,%d %dx%d", label, got.x, got.y,
                 got.w, got.h, want.x, want.y, want.w, want.h);
}

static void test_crops(void **state)
{
    assert_true(each_face(check_crops, NULL) >= 30);
}

static void check_descriptor(const picture_t *p, const char *label, const ref_face_t *f,
                             void *acc)
{
    float got[FACE_DESCRIPTOR_DIM];
    assert_int_equal(face_descriptor_in_box(g.ctx, &p->img, f->box, f->landmarks, got), 0);
    double e = face_distance(got, f->descriptor);
    note(acc, e, label);
    if (e > DESCRIPTOR_TOL)
        fail_msg("%s: descriptor %.4f from the reference's", label, e);
}

static void test_descriptor(void **state)
{
    worst_t w = { 0 };
    int n = each_face(check_descriptor, &w);
    print_message("descriptors on %d faces: worst %.2e (%s)\n", n, w.v, w.where);
}

static void check_age_gender(const picture_t *p, const char *label, const ref_face_t *f,
                             void *acc)
{
    worst_t *w = acc;
    float age, gp;
    bool male;
    assert_int_equal(face_age_gender(g.ctx, &p->img, f->landmarks, &age, &male, &gp), 0);
    assert_true(gp >= 0.5f && gp <= 1.0f);
    double p_male = male ? gp : 1 - gp;
    note(&w[0], fabs(age - f->age), label);
    note(&w[1], fabs(p_male - f->p_male), label);
    if (fabs(age - f->age) > AGE_TOL_YEARS)
        fail_msg("%s: age %.2f, reference %.2f", label, age, f->age);
    if (fabs(p_male - f->p_male) > PROB_TOL)
        fail_msg("%s: P(male) %.4f, reference %.4f", label, p_male, f->p_male);
}

static void test_age_gender(void **state)
{
    worst_t w[2] = { 0 };
    int n = each_face(check_age_gender, w);
    print_message("age/gender on %d faces: worst age %.2e y (%s), P(male) %.2e (%s)\n", n, w[0].v,
                  w[0].where, w[1].v, w[1].where);
}

static void check_expressions(const picture_t *p, const char *label, const ref_face_t *f,
                              void *acc)
{
    float got[FACE_EXPRESSION_COUNT];
    assert_int_equal(face_expressions(g.ctx, &p->img, f->landmarks, got), 0);
    double sum = 0;
    for (int i = 0; i < FACE_EXPRESSION_COUNT; i++) {
        sum += got[i];
        note(acc, fabs(got[i] - f->expressions[i]), label);
        if (fabs(got[i] - f->expressions[i]) > PROB_TOL)
            fail_msg("%s: %s %.4f, reference %.4f", label, face_expression_names[i], got[i],
                     f->expressions[i]);
    }
    assert_true(fabs(sum - 1) < 1e-4);
}

static void test_expressions(void **state)
{
    worst_t w = { 0 };
    int n = each_face(check_expressions, &w);
    print_message("expressions on %d faces: worst %.2e (%s)\n", n, w.v, w.where);
}

/* ==================================================================================== */
/* Winograd F(2x2, 3x3) against im2col                                                   */
/* ==================================================================================== */

static float rnd(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}

/* face__wino_conv equals face__conv to rounding on odd and even maps (a tile hanging over the
 * bottom/right edge), 1x1 and 1xN maps, both activations, 1 and 2 threads; other layers are
 * refused. */
static void test_winograd(void **state)
{
    static const int shapes[][4] = { /* h, w, cin, cout */
        { 35, 35, 32, 32 }, { 17, 17, 32, 64 }, { 8, 8, 64, 64 }, { 5, 7, 4, 8 },
        { 1, 1, 8, 4 },     { 1, 6, 4, 4 },     { 2, 2, 12, 16 },
    };
    uint32_t seed = 7;
    for (int threads = 1; threads <= 2; threads++) {
        face_ctx_t *ctx;
        assert_int_equal(face_ctx_new(g.engine, threads, &ctx), 0);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const int h = shapes[si][0], w = shapes[si][1], I = shapes[si][2], O = shapes[si][3];
            float *filters = malloc(sizeof(float) * 9 * I * O), *bias = malloc(sizeof(float) * O);
            float *xd = malloc(sizeof(float) * h * w * I);
            assert_non_null(filters);
            assert_non_null(bias);
            assert_non_null(xd);
            for (int i = 0; i < 9 * I * O; i++)
                filters[i] = rnd(&seed);
            for (int i = 0; i < O; i++)
                bias[i] = rnd(&seed);
            for (int i = 0; i < h * w * I; i++)
                xd[i] = rnd(&seed);
            face_conv_t conv = { 3, 1, I, O, FACE_PAD_SAME, filters, bias };
            face_wino_t wino;
            assert_int_equal(face__wino_init(&conv, &wino), 0);
            face_tensor_t x = { h, w, I, xd }, a, b;
            for (int act = 0; act < 2; act++) {
                face_act_t fa = act ? FACE_ACT_RELU : FACE_ACT_NONE;
                size_t mark = face__arena_mark(&ctx->arena);
                assert_int_equal(face__conv(ctx, &x, &conv, fa, &a), 0);
                assert_int_equal(face__wino_conv(ctx, &x, &wino, fa, &b), 0);
                assert_int_equal(b.h, a.h);
                assert_int_equal(b.w, a.w);
                assert_int_equal(b.c, a.c);
                double worst = 0, scale = 0;
                for (int i = 0; i < a.h * a.w * a.c; i++) {
                    worst = fmax(worst, fabs((double)a.d[i] - b.d[i]));
                    scale = fmax(scale, fabs((double)a.d[i]));
                }
                if (worst > 1e-5 * (scale + 1))
                    fail_msg("%dx%dx%d -> %d, act %d, %d threads: off by %g (scale %g)", h, w, I,
                             O, act, threads, worst, scale);
                face__arena_reset(&ctx->arena, mark);
            }
            face__wino_destroy(&wino);
            face__wino_destroy(&wino); /* twice: NULL-safe after the first */
            free(filters);
            free(bias);
            free(xd);
        }
        face_ctx_free(&ctx);
    }
    float f[4 * 4 * 4], bias[4] = { 0 };
    face_wino_t w;
    face_conv_t k1 = { 1, 1, 4, 4, FACE_PAD_SAME, f, bias };
    face_conv_t s2 = { 3, 2, 4, 4, FACE_PAD_SAME, f, bias };
    face_conv_t valid = { 3, 1, 4, 4, FACE_PAD_VALID, f, bias };
    face_conv_t rgb = { 3, 1, 3, 4, FACE_PAD_SAME, f, bias };
    assert_int_equal(face__wino_init(&k1, &w), -EINVAL);
    assert_int_equal(face__wino_init(&s2, &w), -EINVAL);
    assert_int_equal(face__wino_init(&valid, &w), -EINVAL);
    assert_int_equal(face__wino_init(&rgb, &w), -EINVAL);
    assert_null(w.u);
}

/* ==================================================================================== */
/* the engine                                                                            */
/* ==================================================================================== */

static const picture_t *pic(const char *name)
{
    for (int i = 0; i < N_PICTURES; i++)
        if (strcmp(g.pics[i].name, name) == 0)
            return &g.pics[i];
    fail_msg("no picture %s", name);
    return NULL;
}

static int analyze(const image_t *img, face_detector_t det, face_t *faces, int cap)
{
    face_options_t o = face_options_default();
    o.detector = det;
    char err[256];
    int n = -1;
    int rc = face_analyze(g.ctx, img, &o, faces, cap, &n, err, sizeof err);
    if (rc)
        fail_msg("face_analyze: %s", err);
    for (int i = 0; i < n; i++)
        assert_int_equal(faces[i].have, FACE_WANT_ALL);
    return n;
}

static void test_same_person_two_scales(void **state)
{
    face_t a[4], b[4], c[4];
    assert_int_equal(analyze(&pic("frame_face")->img, FACE_DETECTOR_TINY, a, 4), 1);
    assert_int_equal(analyze(&pic("frame_face_half")->img, FACE_DETECTOR_TINY, b, 4), 1);
    assert_int_equal(analyze(&pic("sample1")->img, FACE_DETECTOR_TINY, c, 4), 3);
    float d = face_distance(a[0].descriptor, b[0].descriptor);
    print_message("same face at 320x240 and 160x120: distance %.3f\n", d);
    assert_true(d < FACE_SAME_PERSON_THRESHOLD);
    /* frame_face is cut from sample1: the same person is among sample1's faces */
    float best = INFINITY;
    for (int i = 0; i < 3; i++)
        best = fminf(best, face_distance(a[0].descriptor, c[i].descriptor));
    print_message("frame_face against its source picture: best distance %.3f\n", best);
    assert_true(best < FACE_SAME_PERSON_THRESHOLD);
}

/* Pairs of faces (across all samples, tiny detector) that the reference puts clearly apart must
 * be apart here too; the pictures hold more than a dozen different people. */
static void test_different_people(void **state)
{
    enum { CAP = 64 };
    static float ours[CAP][FACE_DESCRIPTOR_DIM];
    static ref_face_t refs[CAP];
    int n = 0;
    for (int i = 0; i < 6; i++) {
        const picture_t *p = &g.pics[i];
        json_t *faces = faces_of(p, "tiny");
        for (size_t j = 0; j < json_array_size(faces) && n < CAP; j++, n++) {
            parse_face(json_array_get(faces, j), &refs[n]);
            assert_int_equal(face_descriptor(g.ctx, &p->img, refs[n].landmarks, ours[n]), 0);
        }
    }
    int pairs = 0;
    float closest = INFINITY;
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            if (face_distance(refs[i].descriptor, refs[j].descriptor) < 0.7f)
                continue;
            float d = face_distance(ours[i], ours[j]);
            closest = fminf(closest, d);
            assert_true(d >= FACE_SAME_PERSON_THRESHOLD);
            pairs++;
        }
    }
    print_message("%d pairs of different people: closest %.3f\n", pairs, closest);
    assert_true(pairs >= 50);
}

/* A face cut by the picture's left edge: the detector's box is clipped to x = 0 and the
 * landmarks come from it, so they land on the face (face-api shifts them by its unclipped,
 * negative box corner: here about 8 px to the left); the descriptor's crop is capped as
 * face-api caps it. Compared with the same face in the uncut frame, and with the stages run on
 * the clipped box. */
static void test_face_at_edge(void **state)
{
    const image_t *full = &pic("frame_face")->img;
    enum { CUT = 110 };
    image_t cut = { 0 };
    assert_int_equal(image_alloc(&cut, full->width - CUT, full->height), 0);
    for (int y = 0; y < full->height; y++)
        memcpy(cut.rgb + (size_t)y * cut.width * 3, full->rgb + ((size_t)y * full->width + CUT) * 3,
               (size_t)cut.width * 3);
    for (int d = 0; d < 2; d++) {
        face_t a[4], b[4];
        assert_int_equal(analyze(full, (face_detector_t)d, a, 4), 1);
        assert_int_equal(analyze(&cut, (face_detector_t)d, b, 4), 1);
        assert_true(a[0].box.x > CUT - 20 && a[0].box.x < CUT);
        assert_true(b[0].box.x == 0);
        double sum = 0;
        int n = 0;
        for (int i = 0; i < FACE_LANDMARK_COUNT; i++) {
            if (a[0].landmarks[i].x < CUT + 5)
                continue; /* cut off */
            sum += hypot(b[0].landmarks[i].x - (a[0].landmarks[i].x - CUT),
                         b[0].landmarks[i].y - a[0].landmarks[i].y);
            n++;
        }
        float dist = face_distance(a[0].descriptor, b[0].descriptor);
        print_message("%s: face cut at the left edge: %d landmarks %.2f px from the uncut ones on "
                      "average, descriptor distance %.3f\n",
                      k_detectors[d], n, sum / n, dist);
        assert_true(n > 50);
        assert_true(sum / n < 3.0);
        assert_true(dist < FACE_SAME_PERSON_THRESHOLD);
        face_point_t lm[FACE_LANDMARK_COUNT];
        float desc[FACE_DESCRIPTOR_DIM];
        assert_int_equal(face_landmarks(g.ctx, &cut, b[0].box, false, lm), 0);
        assert_true(max_point_error(lm, b[0].landmarks) < 1e-3);
        assert_int_equal(face_descriptor_in_box(g.ctx, &cut, b[0].box, lm, desc), 0);
        assert_true(face_distance(desc, b[0].descriptor) < 1e-4);
    }
    image_free(&cut);
}

/* One thread or several (workers running faces side by side, or all cores): the same faces and
 * the same numbers, to rounding. */
static void test_threads_agree(void **state)
{
    const image_t *img = &pic("sample5")->img;
    static face_t ref[8], got[8];
    int n_ref = analyze(img, FACE_DETECTOR_TINY, ref, 8);
    assert_int_equal(n_ref, 5);
    static const int thread_counts[] = { 1, 0 /* all cores */ };
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
        face_ctx_t *c = NULL;
        assert_int_equal(face_ctx_new(g.engine, thread_counts[t], &c), 0);
        face_options_t o = face_options_default();
        char err[256];
        int n = 0;
        assert_int_equal(face_analyze(c, img, &o, got, 8, &n, err, sizeof err), 0);
        assert_int_equal(n, n_ref);
        for (int i = 0; i < n; i++) {
            assert_int_equal(got[i].have, FACE_WANT_ALL);
            assert_true(face_box_iou(got[i].box, ref[i].box) > 0.9999f);
            assert_true(max_point_error(got[i].landmarks, ref[i].landmarks) < 1e-2);
            assert_true(face_distance(got[i].descriptor, ref[i].descriptor) < 1e-4);
            assert_true(fabsf(got[i].age - ref[i].age) < 1e-3f);
            for (int k = 0; k < FACE_EXPRESSION_COUNT; k++)
                assert_true(fabsf(got[i].expressions[k] - ref[i].expressions[k]) < 1e-4f);
        }
        face_ctx_free(&c);
        assert_null(c);
    }
    face_ctx_t *c = (face_ctx_t *)1;
    assert_int_equal(face_ctx_new(g.engine, -1, &c), -EINVAL);
    assert_int_equal(face_ctx_new(NULL, 1, &c), -EINVAL);
}

static void test_no_face(void **state)
{
    face_t faces[4];
    for (int d = 0; d < 2; d++) {
        assert_int_equal(analyze(&pic("frame_noface")->img, (face_detector_t)d, faces, 4), 0);
    }
    /* a 32x32 thumbnail of a group photo: nothing to find, still no error */
    char path[1024], err[256];
    image_t tiny = { 0 };
    snprintf(path, sizeof path, "%s/tests/data/faces/frame_tiny.png", env_or_fail("PERSONA_SRC"));
    assert_int_equal(image_load(path, 0, &tiny, err, sizeof err), 0);
    assert_int_equal(analyze(&tiny, FACE_DETECTOR_TINY, faces, 4), 0);
    assert_int_equal(analyze(&tiny, FACE_DETECTOR_SSD, faces, 4), 0);
    image_free(&tiny);
}

static void test_analyze_bad_arguments(void **state)
{
    face_t faces[2];
    int n = 7;
    char err[256];
    face_options_t o = face_options_default();
    image_t empty = { 0 };
    err[0] = '\0';
    assert_int_equal(face_analyze(g.ctx, NULL, &o, faces, 2, &n, err, sizeof err), -EINVAL);
    assert_true(strlen(err) > 0);
    assert_int_equal(n, 0);
    err[0] = '\0';
    assert_int_equal(face_analyze(g.ctx, &empty, &o, faces, 2, &n, err, sizeof err), -EINVAL);
    assert_true(strlen(err) > 0);
    uint8_t px[3] = { 0 };
    image_t zero_w = { 0, 10, px };
    assert_int_equal(face_analyze(g.ctx, &zero_w, &o, faces, 2, &n, err, sizeof err), -EINVAL);
    assert_int_equal(face_analyze(NULL, &pic("frame_face")->img, &o, faces, 2, &n, err,
                                  sizeof err),
                     -EINVAL);
    assert_int_equal(face_analyze(g.ctx, &pic("frame_face")->img, &o, NULL, 2, &n, err,
                                  sizeof err),
                     -EINVAL);
    assert_int_equal(face_analyze(g.ctx, &pic("frame_face")->img, &o, faces, 0, &n, err,
                                  sizeof err),
                     -EINVAL);
    /* NULL options: the defaults; NULL err: no reason, same result */
    assert_int_equal(face_analyze(g.ctx, &pic("frame_face")->img, NULL, faces, 2, &n, NULL, 0), 0);
    assert_int_equal(n, 1);
    /* a box outside the picture has no crop */
    face_point_t lm[FACE_LANDMARK_COUNT];
    const image_t *img = &pic("frame_face")->img;
    assert_int_equal(face_landmarks(g.ctx, img, (face_box_t){ 500, 500, 50, 50 }, false, lm),
                     -EINVAL);
    assert_int_equal(face_landmarks(g.ctx, img, (face_box_t){ -80, -80, 50, 50 }, false, lm),
                     -EINVAL);
    assert_int_equal(face_landmarks(g.ctx, img, (face_box_t){ NAN, 0, 50, 50 }, true, lm),
                     -EINVAL);
    assert_int_equal(face_landmarks(g.ctx, NULL, (face_box_t){ 0, 0, 50, 50 }, true, lm), -EINVAL);
}

/* Landmarks anywhere (outside the picture, huge, NaN, all in one point) give a result or
 * -EINVAL from every stage, never a crash or a read outside the picture (ASan watches). */
static void test_random_landmarks(void **state)
{
    const image_t *img = &pic("frame_portrait")->img;
    uint32_t s = 2024;
    for (int iter = 0; iter < 40; iter++) {
        face_point_t lm[FACE_LANDMARK_COUNT];
        for (int i = 0; i < FACE_LANDMARK_COUNT; i++) {
            s = s * 1664525u + 1013904223u;
            float u = (float)(s >> 8) / 16777216.0f;
            s = s * 1664525u + 1013904223u;
            float v = (float)(s >> 8) / 16777216.0f;
            float span = iter < 10 ? 200.0f : iter < 20 ? 4000.0f : 1e9f;
            lm[i].x = (u - 0.3f) * span;
            lm[i].y = (v - 0.3f) * span;
            if (iter >= 30)
                lm[i] = lm[0]; /* one point: empty boxes */
        }
        if (iter == 25)
            lm[40].x = NAN;
        float desc[FACE_DESCRIPTOR_DIM], ex[FACE_EXPRESSION_COUNT], age, gp;
        bool male;
        int rc = face_descriptor(g.ctx, img, lm, desc);
        assert_true(rc == 0 || rc == -EINVAL);
        rc = face_age_gender(g.ctx, img, lm, &age, &male, &gp);
        assert_true(rc == 0 || rc == -EINVAL);
        rc = face_expressions(g.ctx, img, lm, ex);
        assert_true(rc == 0 || rc == -EINVAL);
    }
}

/* After the first frames of a size the ctx allocates nothing: its arena and its workers' keep
 * their chunks. */
static void test_steady_state(void **state)
{
    face_t faces[8];
    const image_t *big = &pic("sample5")->img, *small = &pic("frame_face")->img;
    for (int i = 0; i < 2; i++) {
        analyze(big, FACE_DETECTOR_TINY, faces, 8);
        analyze(small, FACE_DETECTOR_TINY, faces, 8);
        analyze(big, FACE_DETECTOR_SSD, faces, 8);
    }
    enum { MAX_ARENAS = 16 };
    const face_arena_t *arenas[MAX_ARENAS];
    int n_arenas = 0;
    arenas[n_arenas++] = &g.ctx->arena;
    for (int i = 0; i < g.ctx->n_workers && n_arenas < MAX_ARENAS; i++)
        arenas[n_arenas++] = &g.ctx->workers[i].arena;
    assert_int_equal(g.ctx->n_workers, 2); /* the group's ctx has 2 threads */
    const struct face_arena_chunk *chunk[MAX_ARENAS];
    size_t high[MAX_ARENAS];
    for (int a = 0; a < n_arenas; a++) {
        chunk[a] = arenas[a]->chunks;
        high[a] = arenas[a]->high_water;
        assert_non_null(chunk[a]);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(analyze(big, FACE_DETECTOR_TINY, faces, 8), 5);
        analyze(small, FACE_DETECTOR_TINY, faces, 8);
        analyze(big, FACE_DETECTOR_SSD, faces, 8);
        for (int a = 0; a < n_arenas; a++) {
            assert_ptr_equal(arenas[a]->chunks, chunk[a]);
            assert_int_equal(arenas[a]->high_water, high[a]);
            assert_int_equal(arenas[a]->used_total, 0);
        }
    }
}

/* ==================================================================================== */
/* model folders                                                                         */
/* ==================================================================================== */

static const char *const k_model_files[] = {
    "tiny_face_detector_model",   "ssd_mobilenetv1_model",  "face_landmark_68_model",
    "face_landmark_68_tiny_model", "face_recognition_model", "age_gender_model",
    "face_expression_model",
};

/* A folder of links to the real model files, but with `damaged` written as a real file
 * holding what edit makes of the original. */
static void make_models_copy(const char *dir, const char *damaged,
                             void (*edit)(char *buf, size_t *len))
{
    const char *src = env_or_fail("PERSONA_FACE_MODELS");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    assert_int_equal(run_cmd(cmd), 0);
    for (size_t i = 0; i < sizeof k_model_files / sizeof k_model_files[0]; i++) {
        const char *suffix[2] = { "-weights_manifest.json", ".bin" };
        for (int k = 0; k < 2; k++) {
            char from[1024], to[1024], name[256];
            snprintf(name, sizeof name, "%s%s", k_model_files[i], suffix[k]);
            snprintf(from, sizeof from, "%s/%s", src, name);
            snprintf(to, sizeof to, "%s/%s", dir, name);
            if (!damaged || strcmp(name, damaged) != 0) {
                assert_int_equal(symlink(from, to), 0);
                continue;
            }
            FILE *f = fopen(from, "rb");
            assert_non_null(f);
            size_t cap = 8u << 20, len;
            char *buf = malloc(cap);
            assert_non_null(buf);
            len = fread(buf, 1, cap, f);
            fclose(f);
            edit(buf, &len);
            f = fopen(to, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(buf, 1, len, f), len);
            fclose(f);
            free(buf);
        }
    }
}

static void truncate_half(char *buf, size_t *len)
{
    *len /= 2;
}

static void wrong_conv_shape(char *buf, size_t *len)
{
    char *p = strstr(buf, "\"shape\":[7,7,3,32]");
    assert_non_null(p);
    /* [7,7,32,3]: as many numbers, but no longer a 7x7 convolution from RGB to 32 channels */
    memcpy(p + 9, "7,7,32,3", 8);
}

static void drop_tensor(char *buf, size_t *len)
{
    char *p = strstr(buf, "\"fc/gender/weights\"");
    assert_non_null(p);
    memcpy(p + 1, "fc/gendeX", 9);
}

static void expect_open_fails(const char *dir, const char *what, const char *names)
{
    face_engine_t *e = (face_engine_t *)1;
    char err[512] = "";
    int rc = face_engine_open(dir, &e, err, sizeof err);
    assert_true(rc < 0);
    assert_null(e);
    print_message("%s: %s (%s)\n", what, err, core_strerror(rc));
    assert_true(strlen(err) > 10);
    if (names && !strstr(err, names))
        fail_msg("%s: the reason does not name %s", what, names);
}

static void test_bad_model_folders(void **state)
{
    const char *tmp = env_or_fail("PERSONA_TEST_TMP");
    char dir[1024];
    face_engine_t *e = (face_engine_t *)1;
    char err[512];
    assert_int_equal(face_engine_open(NULL, &e, err, sizeof err), -EINVAL);
    assert_null(e);

    snprintf(dir, sizeof dir, "%s/no-such-folder", tmp);
    expect_open_fails(dir, "missing folder", "no-such-folder");
    assert_int_equal(face_engine_open(dir, &e, err, sizeof err), -ENOENT);

    snprintf(dir, sizeof dir, "%s/models-empty", tmp);
    make_models_copy(dir, NULL, NULL);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/*", dir);
    assert_int_equal(run_cmd(cmd), 0);
    expect_open_fails(dir, "empty folder", NULL);
    assert_int_equal(face_engine_open(dir, &e, err, sizeof err), -ENOENT);

    snprintf(dir, sizeof dir, "%s/models-bin-truncated", tmp);
    make_models_copy(dir, "face_recognition_model.bin", truncate_half);
    expect_open_fails(dir, "truncated recognition weights", "recognition");

    snprintf(dir, sizeof dir, "%s/models-wrong-shape", tmp);
    make_models_copy(dir, "face_recognition_model-weights_manifest.json", wrong_conv_shape);
    expect_open_fails(dir, "wrong shape", "conv32_down");

    snprintf(dir, sizeof dir, "%s/models-missing-tensor", tmp);
    make_models_copy(dir, "age_gender_model-weights_manifest.json", drop_tensor);
    expect_open_fails(dir, "missing tensor", "age and gender");

    snprintf(dir, sizeof dir, "%s/models-landmarks-truncated", tmp);
    make_models_copy(dir, "face_landmark_68_tiny_model-weights_manifest.json", truncate_half);
    expect_open_fails(dir, "truncated manifest", "tiny");

    /* the intact copy opens: the failures above come from the damage alone */
    snprintf(dir, sizeof dir, "%s/models-intact", tmp);
    make_models_copy(dir, NULL, NULL);
    assert_int_equal(face_engine_open(dir, &e, err, sizeof err), 0);
    face_engine_free(&e);
    assert_null(e);
    face_engine_free(NULL);
    face_ctx_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_landmarks),
        cmocka_unit_test(test_crops),
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_age_gender),
        cmocka_unit_test(test_expressions),
        cmocka_unit_test(test_winograd),
        cmocka_unit_test(test_same_person_two_scales),
        cmocka_unit_test(test_different_people),
        cmocka_unit_test(test_face_at_edge),
        cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_no_face),
        cmocka_unit_test(test_analyze_bad_arguments),
        cmocka_unit_test(test_random_landmarks),
        cmocka_unit_test(test_steady_state),
        cmocka_unit_test(test_bad_model_folders),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
