/* test_jobs_faces: unit tests of jobs/faces.c — linking faces of consecutive sampled frames into
 * tracks (box overlap, descriptor distance, a missed sample, rivals for one track), and the
 * faces step without models (the item records why; nothing else changes). */
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
#include <unistd.h>

#include "core/core.h"
#include "jobs/jobs.h"

/* A face at (x, y) of size 100 whose descriptor is person p's (a unit spike on axis p) plus a
 * small variation v. */
static face_t face_at(float x, float y, int p, float v)
{
    face_t f;
    memset(&f, 0, sizeof f);
    f.box = (face_box_t){x, y, 100, 100};
    f.score = 0.9f;
    f.have = FACE_WANT_LANDMARKS | FACE_WANT_DESCRIPTOR;
    f.descriptor[p] = 1.0f;
    f.descriptor[100] = v;
    return f;
}

typedef struct linked {
    int *of;
    store_face_track_t *tracks;
    size_t n;
} linked_t;

static linked_t link_frames(const jobs_faces_frame_t *frames, size_t n)
{
    linked_t l = {0};
    assert_int_equal(jobs_faces_link(frames, n, &l.of, &l.tracks, &l.n), 0);
    return l;
}

static void linked_free(linked_t *l)
{
    free(l->of);
    free(l->tracks);
}

static void two_people_walking(void **state)
{
    (void)state;
    face_t f0[2] = {face_at(0, 0, 1, 0), face_at(300, 0, 2, 0)};
    face_t f1[2] = {face_at(310, 5, 2, 0.1f), face_at(10, 5, 1, 0.1f)}; /* order swapped */
    face_t f2[2] = {face_at(20, 10, 1, 0.2f), face_at(320, 10, 2, 0.2f)};
    jobs_faces_frame_t frames[3] = {{0, f0, 2}, {500, f1, 2}, {1000, f2, 2}};
    linked_t l = link_frames(frames, 3);
    assert_int_equal(l.n, 2);
    /* flattened: f0[0] f0[1] f1[0] f1[1] f2[0] f2[1] */
    assert_int_equal(l.of[0], l.of[3]);
    assert_int_equal(l.of[0], l.of[4]);
    assert_int_equal(l.of[1], l.of[2]);
    assert_int_equal(l.of[1], l.of[5]);
    assert_true(l.of[0] != l.of[1]);
    for (size_t t = 0; t < 2; t++) {
        assert_int_equal(l.tracks[t].start_ms, 0);
        assert_int_equal(l.tracks[t].end_ms, 1000);
        assert_int_equal(l.tracks[t].face_count, 3);
    }
    /* the mean descriptor: v = 0, 0.1, 0.2 -> 0.1 */
    assert_true(fabsf(l.tracks[l.of[0]].descriptor[100] - 0.1f) < 1e-6f);
    assert_true(fabsf(l.tracks[l.of[0]].descriptor[1] - 1.0f) < 1e-6f);
    linked_free(&l);
}

static void gaps(void **state)
{
    (void)state;
    face_t a = face_at(0, 0, 1, 0);
    /* one sample without the face: the track goes on */
    jobs_faces_frame_t one_gap[3] = {{0, &a, 1}, {500, NULL, 0}, {1000, &a, 1}};
    linked_t l = link_frames(one_gap, 3);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.tracks[0].face_count, 2);
    assert_int_equal(l.tracks[0].end_ms, 1000);
    linked_free(&l);
    /* two samples without it: a new track */
    jobs_faces_frame_t two_gaps[4] = {{0, &a, 1}, {500, NULL, 0}, {1000, NULL, 0}, {1500, &a, 1}};
    l = link_frames(two_gaps, 4);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.tracks[1].start_ms, 1500);
    linked_free(&l);
}

static void what_breaks_a_track(void **state)
{
    (void)state;
    face_t a = face_at(0, 0, 1, 0);
    face_t other_person = face_at(0, 0, 2, 0); /* same place, descriptor 1.41 away */
    face_t moved = face_at(150, 0, 1, 0);      /* same person, boxes do not overlap */
    face_t no_desc = face_at(0, 0, 1, 0);
    no_desc.have = FACE_WANT_LANDMARKS;
    jobs_faces_frame_t f1[2] = {{0, &a, 1}, {500, &other_person, 1}};
    jobs_faces_frame_t f2[2] = {{0, &a, 1}, {500, &moved, 1}};
    jobs_faces_frame_t f3[2] = {{0, &a, 1}, {500, &no_desc, 1}};
    const jobs_faces_frame_t *cases[] = {f1, f2, f3};
    for (size_t i = 0; i < 3; i++) {
        linked_t l = link_frames(cases[i], 2);
        assert_int_equal(l.n, 2);
        assert_int_equal(l.of[0], 0);
        assert_int_equal(l.of[1], 1);
        linked_free(&l);
    }
}

static void rivals(void **state)
{
    (void)state;
    /* Two faces of the same person overlap the one track: the better overlap takes it. */
    face_t a = face_at(0, 0, 1, 0);
    face_t near = face_at(10, 0, 1, 0), far = face_at(40, 0, 1, 0); /* IoU 0.82, 0.43 */
    face_t next[2] = {far, near};
    jobs_faces_frame_t frames[2] = {{0, &a, 1}, {500, next, 2}};
    linked_t l = link_frames(frames, 2);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.of[2], l.of[0]); /* near */
    assert_true(l.of[1] != l.of[0]);    /* far: a track of its own */
    linked_free(&l);

    l = link_frames(NULL, 0);
    assert_int_equal(l.n, 0);
    linked_free(&l);
}

static void without_models(void **state)
{
    (void)state;
    char dir[512];
    const char *base = getenv("PERSONA_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/faces-%d", base && *base ? base : "/tmp/persona-test-jf",
             (int)getpid());
    assert_int_equal(core_mkdirs(dir), 0);
    store_t *st = NULL;
    assert_int_equal(store_open(dir, &st), 0);
    int64_t acct;
    assert_int_equal(store_account_create(st, "alice", "$argon2id$fake", false, &acct), 0);
    store_media_t m = {.account_id = acct, .kind = "text", .size = 1};
    memset(m.sha256, 'c', 64);
    assert_int_equal(store_media_create_text(st, &m, "x", 1), 0);

    char models[600];
    snprintf(models, sizeof models, "%s/no-models", dir);
    jobs_faces_config_t cfg = {.models_dir = models, .frame_rate = 2, .threads = 1,
                               .contexts = 1, .identity_threshold = 0.5f, .max_faces = 10};
    jobs_faces_t *f = NULL;
    assert_int_equal(jobs_faces_open(&cfg, &f), 0);
    assert_non_null(jobs_faces_unavailable(f));
    assert_non_null(strstr(jobs_faces_unavailable(f), "fetch_models"));
    face_ctx_t *ctx = NULL;
    assert_int_equal(jobs_faces_take(f, &ctx), -ENODEV);

    assert_int_equal(jobs_faces_process(st, f, acct, m.id, "image", "/nonexistent.jpg"), 0);
    store_faces_status_t fs;
    assert_int_equal(store_faces_status_get(st, acct, m.id, &fs), 0);
    assert_string_equal(fs.status, "skipped");
    assert_non_null(strstr(fs.error, "face models"));
    store_faces_status_clear(&fs);
    /* faces not configured at all */
    assert_int_equal(jobs_faces_process(st, NULL, acct, m.id, "image", "/nonexistent.jpg"), 0);
    assert_int_equal(store_faces_status_get(st, acct, m.id, &fs), 0);
    assert_string_equal(fs.status, "skipped");
    store_faces_status_clear(&fs);
    /* an item deleted meanwhile is not an error */
    assert_int_equal(jobs_faces_process(st, f, acct, 999999, "image", "/nonexistent.jpg"), 0);
    jobs_faces_free(&f);
    jobs_faces_free(&f); /* NULL-safe */
    store_free(&st);
}

/* With the real models: a picture that is not there fails the step, not the item, and says why;
 * sample2.jpg gives one face, stored with its identity. */
static void with_models(void **state)
{
    (void)state;
    const char *models = getenv("PERSONA_FACE_MODELS");
    char sample[600];
    snprintf(sample, sizeof sample, "%s/sample2.jpg", models ? models : "");
    if (!models || access(sample, R_OK) != 0) {
        fprintf(stderr, "# PERSONA_FACE_MODELS has no models: skipped\n");
        return;
    }
    char dir[512];
    const char *base = getenv("PERSONA_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/faces-models-%d", base && *base ? base : "/tmp/persona-test-jf",
             (int)getpid());
    assert_int_equal(core_mkdirs(dir), 0);
    store_t *st = NULL;
    assert_int_equal(store_open(dir, &st), 0);
    int64_t acct;
    assert_int_equal(store_account_create(st, "alice", "$argon2id$fake", false, &acct), 0);
    store_media_t m = {.account_id = acct, .kind = "text", .size = 1};
    memset(m.sha256, 'd', 64);
    assert_int_equal(store_media_create_text(st, &m, "x", 1), 0);
    jobs_faces_config_t cfg = {.models_dir = models, .frame_rate = 2, .threads = 2,
                               .contexts = 1, .identity_threshold = 0.5f, .max_faces = 10};
    jobs_faces_t *f = NULL;
    assert_int_equal(jobs_faces_open(&cfg, &f), 0);
    assert_null(jobs_faces_unavailable(f));

    store_faces_status_t fs;
    assert_int_equal(jobs_faces_process(st, f, acct, m.id, "image", "/nonexistent.jpg"), 0);
    assert_int_equal(store_faces_status_get(st, acct, m.id, &fs), 0);
    assert_string_equal(fs.status, "failed");
    assert_non_null(fs.error);
    store_faces_status_clear(&fs);

    for (int run = 0; run < 2; run++) { /* the second run replaces the first */
        assert_int_equal(jobs_faces_process(st, f, acct, m.id, "image", sample), 0);
        assert_int_equal(store_faces_status_get(st, acct, m.id, &fs), 0);
        assert_string_equal(fs.status, "done");
        assert_int_equal(fs.faces, 1);
        assert_int_equal(fs.frames, 1);
        store_faces_status_clear(&fs);
    }
    store_face_t *faces = NULL;
    size_t n = 0;
    assert_int_equal(store_faces_list_media(st, acct, m.id, &faces, &n, NULL, NULL), 0);
    assert_int_equal(n, 1);
    assert_true(faces[0].has_landmarks && faces[0].has_descriptor && faces[0].has_attributes);
    assert_true(faces[0].identity_id > 0 && faces[0].w > 50);
    free(faces);
    store_identity_t *ids = NULL;
    assert_int_equal(store_identity_list(st, acct, &ids, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0].face_count, 1);
    store_identity_list_free(&ids, n);
    jobs_faces_free(&f);
    store_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_people_walking), cmocka_unit_test(gaps),
        cmocka_unit_test(what_breaks_a_track), cmocka_unit_test(rivals),
        cmocka_unit_test(without_models),      cmocka_unit_test(with_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
