/* test_face_detect: the two detectors (tiny face detector, SSD MobileNet v1) and face_detect
 * against the reference implementation's outputs (the JSON fixtures in tests/data/faces, made by
 * tests/tools/face_reference.js) on identical pixels: the demo pictures sample1-6.jpg and the
 * small frames, decoded by the ffmpeg CLI exactly as the fixtures were (the SHA-256 of the RGB
 * bytes is checked first). Same number of faces, each box IoU >= 0.95 with its reference, score
 * within 0.02. Also: 1 and 2 threads agree, the second run on a picture allocates nothing, tiny
 * input sizes other than 416 work, bad arguments are refused, a picture with no face gives none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/core.h"
#include "face/internal.h"

static face_engine_t g_engine;

static const char *env_or_fail(const char *name)
{
    const char *v = getenv(name);
    if (!v) {
        fprintf(stderr, "%s is not set\n", name);
        fail();
    }
    return v;
}

static int setup(void **state)
{
    (void)state;
    char err[256] = "";
    const char *dir = getenv("PERSONA_FACE_MODELS");
    if (!dir || face__tiny_load(dir, &g_engine.tiny, err, sizeof err) != 0 ||
        face__ssd_load(dir, &g_engine.ssd, err, sizeof err) != 0) {
        fprintf(stderr, "cannot load the detectors: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    face__tiny_free(&g_engine.tiny);
    face__ssd_free(&g_engine.ssd);
    return 0;
}

static face_ctx_t *ctx_new(int threads)
{
    face_ctx_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->engine = &g_engine;
    face__arena_init(&c->arena);
    if (threads > 1)
        assert_int_equal(nn_pool_create(threads, &c->pool), 0);
    return c;
}

static void ctx_free(face_ctx_t *c)
{
    nn_pool_free(&c->pool);
    face__arena_destroy(&c->arena);
    free(c);
}

/* The picture's RGB bytes as the fixtures' generator decoded them (ffmpeg CLI, rgb24), checked
 * against the fixture's size and SHA-256. */
static void decode_like_reference(const char *path, json_t *fx, image_t *img)
{
    int w = (int)json_integer_value(json_object_get(fx, "width"));
    int h = (int)json_integer_value(json_object_get(fx, "height"));
    assert_true(w > 0 && h > 0);
    assert_int_equal(image_alloc(img, w, h), 0);
    char *cmd = xasprintf("ffmpeg -v error -i '%s' -frames:v 1 -f rawvideo -pix_fmt rgb24 -", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(img->rgb, 1, (size_t)w * h * 3, p);
    char extra;
    assert_int_equal(fread(&extra, 1, 1, p), 0);
    assert_int_equal(pclose(p), 0);
    assert_int_equal(n, (size_t)w * h * 3);
    free(cmd);

    const char *tmp = env_or_fail("PERSONA_TEST_TMP");
    char *mk = xasprintf("mkdir -p '%s'", tmp);
    assert_int_equal(system(mk), 0);
    free(mk);
    char *raw = xasprintf("%s/rgb.raw", tmp);
    FILE *f = fopen(raw, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(img->rgb, 1, n, f), n);
    fclose(f);
    cmd = xasprintf("sha256sum '%s'", raw);
    p = popen(cmd, "r");
    char hex[65] = "";
    assert_int_equal(fscanf(p, "%64s", hex), 1);
    pclose(p);
    const char *want = json_string_value(json_object_get(fx, "rgb_sha256"));
    if (!want || strcmp(hex, want) != 0) {
        fprintf(stderr, "%s: pixels differ from the fixture's (%s vs %s)\n", path, hex,
                want ? want : "?");
        fail();
    }
    free(cmd);
    free(raw);
}

static face_box_t clip(face_box_t b, int w, int h)
{
    float x0 = fmaxf(b.x, 0), y0 = fmaxf(b.y, 0);
    float x1 = fminf(b.x + b.w, (float)w), y1 = fminf(b.y + b.h, (float)h);
    return (face_box_t){x0, y0, x1 - x0, y1 - y0};
}

static face_box_t json_box(json_t *jb)
{
    return (face_box_t){(float)json_number_value(json_object_get(jb, "x")),
                        (float)json_number_value(json_object_get(jb, "y")),
                        (float)json_number_value(json_object_get(jb, "w")),
                        (float)json_number_value(json_object_get(jb, "h"))};
}

static double g_worst_iou = 1, g_worst_score;
static int g_faces_compared;

/* Every reference face has one of ours with IoU >= 0.95 and a score within 0.02, and the
 * counts agree. */
static void compare(const char *what, json_t *ref_faces, const face_t *got, int n, int w, int h)
{
    int nref = (int)json_array_size(ref_faces);
    if (nref != n)
        fprintf(stderr, "%s: %d faces, the reference has %d\n", what, n, nref);
    assert_int_equal(n, nref);
    bool used[256] = {false};
    for (int i = 0; i < nref; i++) {
        json_t *rf = json_array_get(ref_faces, (size_t)i);
        face_box_t rb = clip(json_box(json_object_get(rf, "box")), w, h);
        float rs = (float)json_number_value(json_object_get(rf, "score"));
        int best = -1;
        float best_iou = -1;
        for (int j = 0; j < n; j++) {
            float iou = face_box_iou(rb, got[j].box);
            if (!used[j] && iou > best_iou) {
                best_iou = iou;
                best = j;
            }
        }
        assert_true(best >= 0);
        used[best] = true;
        double ds = fabs(got[best].score - rs);
        if (best_iou < 0.95f || ds > 0.02)
            fprintf(stderr, "%s face %d: IoU %.4f, score %.4f vs %.4f\n", what, i, best_iou,
                    got[best].score, rs);
        assert_true(best_iou >= 0.95f);
        assert_true(ds <= 0.02);
        g_worst_iou = fmin(g_worst_iou, best_iou);
        g_worst_score = fmax(g_worst_score, ds);
        g_faces_compared++;
    }
    for (int j = 1; j < n; j++)
        assert_true(got[j - 1].score >= got[j].score);
}

static json_t *load_fixture(const char *name)
{
    char *path = xasprintf("%s/tests/data/faces/%s.json", env_or_fail("PERSONA_SRC"), name);
    json_error_t je;
    json_t *fx = json_load_file(path, 0, &je);
    if (!fx)
        fprintf(stderr, "%s: %s\n", path, je.text);
    assert_non_null(fx);
    free(path);
    return fx;
}

static void check_picture(face_ctx_t *ctx, const char *name, const char *path)
{
    json_t *fx = load_fixture(name);
    image_t img = {0};
    decode_like_reference(path, fx, &img);
    json_t *dets = json_object_get(fx, "detectors");
    face_t faces[100];
    for (int d = 0; d < 2; d++) {
        face_detector_t det = d ? FACE_DETECTOR_SSD : FACE_DETECTOR_TINY;
        int n = -1;
        assert_int_equal(face_detect(ctx, &img, det, 0, 0, faces, 100, &n), 0);
        char what[128];
        snprintf(what, sizeof what, "%s %s", name, face_detector_name(det));
        compare(what, json_object_get(json_object_get(dets, face_detector_name(det)), "faces"),
                faces, n, img.width, img.height);
        for (int i = 0; i < n; i++) {
            assert_int_equal(faces[i].have, 0);
            assert_true(faces[i].box.x >= 0 && faces[i].box.y >= 0);
            assert_true(faces[i].box.x + faces[i].box.w <= img.width + 1e-3f);
            assert_true(faces[i].box.y + faces[i].box.h <= img.height + 1e-3f);
        }
    }
    image_free(&img);
    json_decref(fx);
}

static void test_samples(void **state)
{
    (void)state;
    face_ctx_t *ctx = ctx_new(2);
    for (int i = 1; i <= 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "sample%d", i);
        char *path = xasprintf("%s/%s.jpg", env_or_fail("PERSONA_FACE_MODELS"), name);
        check_picture(ctx, name, path);
        free(path);
    }
    ctx_free(ctx);
    fprintf(stderr, "samples: %d faces, worst IoU %.6f, worst score difference %.6f\n",
            g_faces_compared, g_worst_iou, g_worst_score);
}

static void test_frames(void **state)
{
    (void)state;
    static const char *const frames[] = {"frame_face", "frame_face_half", "frame_grey",
                                         "frame_portrait", "frame_noface", "frame_tiny"};
    face_ctx_t *ctx = ctx_new(1);
    for (size_t i = 0; i < sizeof frames / sizeof *frames; i++) {
        char *path =
            xasprintf("%s/tests/data/faces/%s.png", env_or_fail("PERSONA_SRC"), frames[i]);
        check_picture(ctx, frames[i], path);
        free(path);
    }
    ctx_free(ctx);
}


/* sample1 decoded like the reference, for the tests below. */
static void sample1(image_t *img)
{
    json_t *fx = load_fixture("sample1");
    char *path = xasprintf("%s/sample1.jpg", env_or_fail("PERSONA_FACE_MODELS"));
    decode_like_reference(path, fx, img);
    free(path);
    json_decref(fx);
}

static void test_threads_agree(void **state)
{
    (void)state;
    image_t img = {0};
    sample1(&img);
    face_ctx_t *c1 = ctx_new(1), *c2 = ctx_new(2);
    for (int d = 0; d < 2; d++) {
        face_t a[100], b[100];
        int na = 0, nb = 0;
        assert_int_equal(face_detect(c1, &img, (face_detector_t)d, 0, 0, a, 100, &na), 0);
        assert_int_equal(face_detect(c2, &img, (face_detector_t)d, 0, 0, b, 100, &nb), 0);
        assert_true(na > 0);
        assert_int_equal(na, nb);
        for (int i = 0; i < na; i++) {
            assert_true(face_box_iou(a[i].box, b[i].box) > 0.9999f);
            assert_true(fabsf(a[i].score - b[i].score) < 1e-5f);
        }
    }
    ctx_free(c1);
    ctx_free(c2);
    image_free(&img);
}

/* From the second frame of a size on, the arena holds one chunk that is never replaced. */
static void test_steady_state(void **state)
{
    (void)state;
    image_t img = {0};
    sample1(&img);
    face_ctx_t *ctx = ctx_new(2);
    face_t f[100];
    int n;
    for (int d = 0; d < 2; d++) {
        assert_int_equal(face_detect(ctx, &img, (face_detector_t)d, 0, 0, f, 100, &n), 0);
        assert_int_equal(face_detect(ctx, &img, (face_detector_t)d, 0, 0, f, 100, &n), 0);
    }
    const void *chunk = ctx->arena.chunks;
    size_t hw = ctx->arena.high_water;
    for (int round = 0; round < 3; round++)
        for (int d = 0; d < 2; d++) {
            assert_int_equal(face_detect(ctx, &img, (face_detector_t)d, 0, 0, f, 100, &n), 0);
            assert_true(n > 0);
            assert_true(ctx->arena.chunks == chunk);
            assert_int_equal(ctx->arena.high_water, hw);
            assert_int_equal(face__arena_mark(&ctx->arena), 0);
        }
    ctx_free(ctx);
    image_free(&img);
}

/* Other tiny input sizes find the same faces (no reference for them: the boxes must overlap the
 * 416 ones well), and the options bound the result as documented. */
static void test_options(void **state)
{
    (void)state;
    image_t img = {0};
    sample1(&img);
    face_ctx_t *ctx = ctx_new(2);
    face_t ref[100], f[100];
    int nref = 0, n = 0;
    assert_int_equal(face_detect(ctx, &img, FACE_DETECTOR_TINY, 0, 416, ref, 100, &nref), 0);
    assert_true(nref >= 3);
    static const int sizes[] = {320, 512, 608};
    for (int s = 0; s < 3; s++) {
        assert_int_equal(face_detect(ctx, &img, FACE_DETECTOR_TINY, 0, sizes[s], f, 100, &n), 0);
        assert_true(n >= 1);
        for (int i = 0; i < n; i++) {
            float best = 0;
            for (int k = 0; k < nref; k++)
                best = fmaxf(best, face_box_iou(f[i].box, ref[k].box));
            assert_true(best > 0.6f);
        }
    }
    assert_int_equal(face_detect(ctx, &img, FACE_DETECTOR_TINY, 0, 400, f, 100, &n), -EINVAL);
    assert_int_equal(face_detect(ctx, &img, FACE_DETECTOR_TINY, 0, 2080, f, 100, &n), -EINVAL);
    assert_int_equal(n, 0);
    /* max_faces keeps the best; a higher threshold keeps a prefix; 0 asks for nothing */
    for (int d = 0; d < 2; d++) {
        assert_int_equal(face_detect(ctx, &img, (face_detector_t)d, 0, 0, ref, 100, &nref), 0);
        assert_int_equal(face_detect(ctx, &img, (face_detector_t)d, 0, 0, f, 1, &n), 0);
        assert_int_equal(n, 1);
        assert_true(f[0].score == ref[0].score);
        float thr = (ref[0].score + ref[nref - 1].score) / 2;
        assert_int_equal(face_detect(ctx, &img, (face_detector_t)d, thr, 0, f, 100, &n), 0);
        assert_true(n >= 1 && n < nref);
        for (int i = 0; i < n; i++)
            assert_true(f[i].score > thr);
        assert_int_equal(face_detect(ctx, &img, (face_detector_t)d, 0, 0, f, 0, &n), 0);
        assert_int_equal(n, 0);
    }
    /* bad arguments */
    assert_int_equal(face_detect(ctx, NULL, FACE_DETECTOR_TINY, 0, 0, f, 100, &n), -EINVAL);
    image_t empty = {0, 0, NULL};
    assert_int_equal(face_detect(ctx, &empty, FACE_DETECTOR_SSD, 0, 0, f, 100, &n), -EINVAL);
    assert_int_equal(face_detect(ctx, &img, FACE_DETECTOR_TINY, 0, 0, NULL, 100, &n), -EINVAL);
    assert_int_equal(face_detect(ctx, &img, FACE_DETECTOR_TINY, 0, 0, f, -1, &n), -EINVAL);
    /* a one-pixel picture and a very wide one: no face, no error */
    image_t one = {0}, wide = {0}, sliver = {0};
    assert_int_equal(image_alloc(&sliver, 5000, 1), 0);
    for (int i = 0; i < 5000 * 3; i++)
        sliver.rgb[i] = (uint8_t)(i * 7);
    for (int d = 0; d < 2; d++) {
        assert_int_equal(face_detect(ctx, &sliver, (face_detector_t)d, 0.01f, 0, f, 100, &n), 0);
        for (int i = 0; i < n; i++) /* whatever it finds lies inside the picture */
            assert_true(isfinite(f[i].box.x) && f[i].box.w > 0 && f[i].box.h > 0 &&
                        f[i].box.y + f[i].box.h <= 1.0f + 1e-3f);
    }
    image_free(&sliver);
    assert_int_equal(image_alloc(&one, 1, 1), 0);
    memset(one.rgb, 200, 3);
    assert_int_equal(image_alloc(&wide, 2000, 3), 0);
    memset(wide.rgb, 90, (size_t)2000 * 3 * 3);
    for (int d = 0; d < 2; d++) {
        assert_int_equal(face_detect(ctx, &one, (face_detector_t)d, 0, 0, f, 100, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(face_detect(ctx, &wide, (face_detector_t)d, 0, 0, f, 100, &n), 0);
        assert_int_equal(n, 0);
    }
    image_free(&one);
    image_free(&wide);
    /* an engine without the detector */
    face_engine_t none = {0};
    ctx->engine = &none;
    assert_int_equal(face_detect(ctx, &img, FACE_DETECTOR_SSD, 0, 0, f, 100, &n), -EINVAL);
    ctx->engine = &g_engine;
    ctx_free(ctx);
    image_free(&img);
}

/* The loaders on a folder without the models, and on damaged SSD weights. */
static void test_load_errors(void **state)
{
    (void)state;
    char err[256];
    face_tiny_net_t *t = NULL;
    face_ssd_net_t *s = NULL;
    const char *tmp = env_or_fail("PERSONA_TEST_TMP");
    char *empty = xasprintf("%s/nomodels", tmp);
    char *cmd = xasprintf("rm -rf '%s' && mkdir -p '%s'", empty, empty);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_int_equal(face__tiny_load(empty, &t, err, sizeof err), -ENOENT);
    assert_null(t);
    assert_int_equal(face__ssd_load(empty, &s, err, sizeof err), -ENOENT);
    assert_null(s);
    /* the tiny detector's files under the SSD's name: every tensor is missing */
    const char *m = env_or_fail("PERSONA_FACE_MODELS");
    cmd = xasprintf("cp '%s/tiny_face_detector_model.bin' '%s/' && sed "
                    "'s/tiny_face_detector_model.bin/tiny_face_detector_model.bin/' "
                    "'%s/tiny_face_detector_model-weights_manifest.json' > "
                    "'%s/ssd_mobilenetv1_model-weights_manifest.json'",
                    m, empty, m, empty);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_int_equal(face__ssd_load(empty, &s, err, sizeof err), CORE_EBADMEDIA);
    assert_non_null(strstr(err, "SSD"));
    assert_non_null(strstr(err, "missing"));
    assert_null(s);
    free(empty);
}

/* Runs the tests, then (unless it is itself such a run) runs this program again with each lower
 * instruction set forced (PERSONA_NN_ISA=avx2, scalar), so every code path is checked on a
 * machine that has the best one. */
int main(int argc, char **argv)
{
    (void)argc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_steady_state),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_load_errors),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    if (getenv("PERSONA_NN_ISA"))
        return rc;
    static const char *const isas[] = {"avx2", "scalar"};
    for (int i = 0; i < 2; i++) {
        char *cmd = xasprintf("PERSONA_NN_ISA=%s '%s'", isas[i], argv[0]);
        fprintf(stderr, "== again with PERSONA_NN_ISA=%s\n", isas[i]);
        if (system(cmd) != 0)
            rc = 1;
        free(cmd);
    }
    return rc;
}
