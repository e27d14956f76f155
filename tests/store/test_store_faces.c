/* test_store_faces: unit tests of store/faces.c — an item's faces and tracks round-trip and are
 * replaced as a whole, tracks are grouped into identities by descriptor distance, identities
 * are named and at most one is the persona, and nothing of one account is visible to another. */
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
#include "store/store.h"

typedef struct fixture {
    char dir[512];
    store_t *st;
    int64_t alice, bob, item1, item2, bob_item;
} fixture_t;

static int64_t text_item(store_t *st, int64_t account)
{
    static const char text[] = "a note";
    store_media_t m = {.account_id = account, .kind = "text", .size = sizeof text - 1};
    memset(m.sha256, 'b', 64); /* a text item's blob is not looked at here */
    assert_int_equal(store_media_create_text(st, &m, text, sizeof text - 1), 0);
    return m.id;
}

static int setup(void **state)
{
    static int counter;
    fixture_t *f = calloc(1, sizeof *f);
    const char *base = getenv("PERSONA_TEST_TMP");
    snprintf(f->dir, sizeof f->dir, "%s/faces-%d-%d",
             base && *base ? base : "/tmp/persona-test-faces", (int)getpid(), counter++);
    assert_int_equal(core_mkdirs(f->dir), 0);
    assert_int_equal(store_open(f->dir, &f->st), 0);
    assert_int_equal(store_account_create(f->st, "alice", "$argon2id$fake", false, &f->alice), 0);
    assert_int_equal(store_account_create(f->st, "bob", "$argon2id$fake", false, &f->bob), 0);
    f->item1 = text_item(f->st, f->alice);
    f->item2 = text_item(f->st, f->alice);
    f->bob_item = text_item(f->st, f->bob);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    store_free(&f->st);
    free(f);
    return 0;
}

/* A descriptor for "person p": a unit spike on axis p plus a little per-face variation v, so
 * the same p is 0.1 * |v1 - v2| apart and different people are about 1.4 apart. */
static void person(float *d, int p, float v)
{
    for (int k = 0; k < STORE_FACE_DIM; k++)
        d[k] = 0.01f * (float)((k * 7 + p * 13) % 5) * v;
    d[p] += 1.0f;
}

static store_face_t make_face(int64_t ts, int p, float v, int track)
{
    store_face_t f;
    memset(&f, 0, sizeof f);
    f.ts_ms = ts;
    f.x = 10 + (float)p;
    f.y = 20;
    f.w = 30;
    f.h = 40;
    f.score = 0.5f + 0.01f * (float)ts / 100.0f;
    f.has_landmarks = f.has_descriptor = f.has_attributes = true;
    for (int i = 0; i < STORE_FACE_LANDMARKS * 2; i++)
        f.landmarks[i] = (float)i * 0.5f;
    person(f.descriptor, p, v);
    f.age = 31.5f;
    f.male = p % 2 == 0;
    f.gender_probability = 0.9f;
    for (int i = 0; i < STORE_FACE_EXPRESSIONS; i++)
        f.expressions[i] = 1.0f / STORE_FACE_EXPRESSIONS;
    f.track = track;
    return f;
}

static store_face_track_t make_track(int64_t start, int64_t end, int count, int p)
{
    store_face_track_t t;
    memset(&t, 0, sizeof t);
    t.start_ms = start;
    t.end_ms = end;
    t.face_count = count;
    person(t.descriptor, p, 1);
    return t;
}

/* Item 1: person 0 in one track of 3 frames, person 1 in one track of 2 frames. */
static void put_item1(fixture_t *f, int64_t ids[2])
{
    store_face_t faces[5] = {make_face(0, 0, 1, 0), make_face(0, 1, 1, 1),
                             make_face(500, 0, 1.1f, 0), make_face(500, 1, 0.9f, 1),
                             make_face(1000, 0, 0.9f, 0)};
    store_face_track_t tracks[2] = {make_track(0, 1000, 3, 0), make_track(0, 500, 2, 1)};
    store_faces_status_t info = {.detector = "tiny", .frames = 3, .ms = 42};
    assert_int_equal(store_faces_replace(f->st, f->alice, f->item1, faces, 5, tracks, 2, 0.5f,
                                         &info, ids),
                     0);
}

static void round_trip(void **state)
{
    fixture_t *f = *state;
    int64_t ids[2];
    put_item1(f, ids);
    assert_true(ids[0] > 0 && ids[1] > 0 && ids[0] != ids[1]);

    store_face_t *faces = NULL;
    store_face_track_t *tracks = NULL;
    size_t nf = 0, nt = 0;
    assert_int_equal(store_faces_list_media(f->st, f->alice, f->item1, &faces, &nf, &tracks, &nt),
                     0);
    assert_int_equal(nf, 5);
    assert_int_equal(nt, 2);
    store_face_t want = make_face(500, 0, 1.1f, 0);
    const store_face_t *got = NULL;
    for (size_t i = 0; i < nf; i++)
        if (faces[i].ts_ms == 500 && faces[i].identity_id == ids[0])
            got = &faces[i];
    assert_non_null(got);
    assert_true(got->has_landmarks && got->has_descriptor && got->has_attributes);
    assert_memory_equal(got->landmarks, want.landmarks, sizeof want.landmarks);
    assert_memory_equal(got->descriptor, want.descriptor, sizeof want.descriptor);
    assert_memory_equal(got->expressions, want.expressions, sizeof want.expressions);
    assert_true(fabsf(got->x - want.x) < 1e-4f && fabsf(got->h - want.h) < 1e-4f);
    assert_true(fabsf(got->age - 31.5f) < 1e-4f && got->male);
    assert_true(got->track_id > 0);
    /* faces come in time order */
    for (size_t i = 1; i < nf; i++)
        assert_true(faces[i - 1].ts_ms <= faces[i].ts_ms);
    assert_int_equal(tracks[0].face_count + tracks[1].face_count, 5);
    free(faces);
    free(tracks);

    store_faces_status_t fs;
    assert_int_equal(store_faces_status_get(f->st, f->alice, f->item1, &fs), 0);
    assert_string_equal(fs.status, "done");
    assert_string_equal(fs.detector, "tiny");
    assert_int_equal(fs.frames, 3);
    assert_int_equal(fs.faces, 5);
    assert_int_equal(fs.tracks, 2);
    assert_null(fs.error);
    store_faces_status_clear(&fs);

    store_identity_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_identity_list(f->st, f->alice, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, ids[0]); /* most faces first */
    assert_int_equal(list[0].face_count, 3);
    assert_int_equal(list[0].media_count, 1);
    assert_true(list[0].has_centroid);
    assert_int_equal(list[0].rep_media_id, f->item1);
    assert_true(list[0].rep_face_id > 0);
    assert_null(list[0].name);
    store_identity_list_free(&list, n);
}

static void replace_on_retry(void **state)
{
    fixture_t *f = *state;
    int64_t ids[2], again[2];
    put_item1(f, ids);
    put_item1(f, again); /* the job ran again */
    store_face_t *faces = NULL;
    size_t nf = 0;
    assert_int_equal(store_faces_list_media(f->st, f->alice, f->item1, &faces, &nf, NULL, NULL), 0);
    assert_int_equal(nf, 5);
    free(faces);
    store_identity_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_identity_list(f->st, f->alice, &list, &n), 0);
    assert_int_equal(n, 2); /* the old identities were emptied and removed, or reused */
    assert_int_equal(list[0].face_count + list[1].face_count, 5);
    store_identity_list_free(&list, n);

    /* A bad set changes nothing. */
    store_face_t bad = make_face(0, 0, 1, 3);
    store_face_track_t t = make_track(0, 0, 1, 0);
    assert_int_equal(store_faces_replace(f->st, f->alice, f->item1, &bad, 1, &t, 1, 0.5f, NULL,
                                         NULL),
                     -EINVAL);
    assert_int_equal(store_faces_replace(f->st, f->alice, f->item1, NULL, 0, &t, 1, 0.5f, NULL,
                                         NULL),
                     -EINVAL); /* a track without faces */
    assert_int_equal(store_faces_list_media(f->st, f->alice, f->item1, &faces, &nf, NULL, NULL), 0);
    assert_int_equal(nf, 5);
    free(faces);

    /* No faces at all is a valid result: the item's faces go, and so do the identities. */
    assert_int_equal(store_faces_replace(f->st, f->alice, f->item1, NULL, 0, NULL, 0, 0.5f, NULL,
                                         NULL),
                     0);
    assert_int_equal(store_identity_list(f->st, f->alice, &list, &n), 0);
    assert_int_equal(n, 0);
    store_identity_list_free(&list, n);
}

static void identities_across_items(void **state)
{
    fixture_t *f = *state;
    int64_t ids[2];
    put_item1(f, ids);
    /* Item 2: person 1 again, person 2 new, both on screen at once. */
    store_face_t faces[2] = {make_face(0, 1, 1.05f, 0), make_face(0, 2, 1, 1)};
    store_face_track_t tracks[2] = {make_track(0, 0, 1, 1), make_track(0, 0, 1, 2)};
    int64_t ids2[2];
    assert_int_equal(store_faces_replace(f->st, f->alice, f->item2, faces, 2, tracks, 2, 0.5f,
                                         NULL, ids2),
                     0);
    assert_int_equal(ids2[0], ids[1]);
    assert_true(ids2[1] != ids[0] && ids2[1] != ids[1]);

    store_identity_t id;
    assert_int_equal(store_identity_get(f->st, f->alice, ids[1], &id), 0);
    assert_int_equal(id.face_count, 3);
    assert_int_equal(id.media_count, 2);
    store_identity_clear(&id);

    /* Two faces on screen at once never join one identity, however alike. */
    store_face_t twins[2] = {make_face(0, 0, 1, 0), make_face(0, 0, 1, 1)};
    store_face_track_t tt[2] = {make_track(0, 0, 1, 0), make_track(0, 0, 1, 0)};
    int64_t tid[2];
    assert_int_equal(store_faces_replace(f->st, f->alice, f->item2, twins, 2, tt, 2, 0.5f, NULL,
                                         tid),
                     0);
    assert_int_equal(tid[0], ids[0]);
    assert_true(tid[1] != tid[0]);

    /* The identity's faces, paged. */
    store_face_t *page = NULL;
    size_t n = 0;
    assert_int_equal(store_faces_list_identity(f->st, f->alice, ids[0], 0, 2, &page, &n), 0);
    assert_int_equal(n, 2);
    int64_t last = page[1].id;
    assert_true(page[0].id > page[1].id);
    free(page);
    assert_int_equal(store_faces_list_identity(f->st, f->alice, ids[0], last, 10, &page, &n), 0);
    assert_int_equal(n, 2); /* 3 from item 1 + 1 from item 2, minus the first page */
    free(page);
    assert_int_equal(store_faces_list_identity(f->st, f->alice, ids[0], 0, 0, &page, &n), -EINVAL);

    /* Deleting an item takes its faces with it and the counts follow. */
    assert_int_equal(store_media_delete(f->st, f->alice, f->item1), 0);
    assert_int_equal(store_identity_get(f->st, f->alice, ids[0], &id), 0);
    assert_int_equal(id.face_count, 1);
    assert_int_equal(id.media_count, 1);
    assert_int_equal(id.rep_media_id, f->item2);
    store_identity_clear(&id);
}

static void naming_and_persona(void **state)
{
    fixture_t *f = *state;
    int64_t ids[2];
    put_item1(f, ids);
    assert_int_equal(store_identity_update(f->st, f->alice, ids[0], true, "Ada", 1), 0);
    assert_int_equal(store_identity_update(f->st, f->alice, ids[1], false, NULL, 1), 0);
    store_identity_t a, b;
    assert_int_equal(store_identity_get(f->st, f->alice, ids[0], &a), 0);
    assert_int_equal(store_identity_get(f->st, f->alice, ids[1], &b), 0);
    assert_string_equal(a.name, "Ada");
    assert_false(a.is_persona); /* marking the second unmarked the first */
    assert_true(b.is_persona);
    store_identity_clear(&a);
    store_identity_clear(&b);

    /* The name survives re-processing the item (the track finds its identity again). */
    put_item1(f, ids);
    assert_int_equal(store_identity_get(f->st, f->alice, ids[0], &a), 0);
    assert_string_equal(a.name, "Ada");
    store_identity_clear(&a);

    /* A named identity stays when its faces go; an unnamed one does not. */
    assert_int_equal(store_identity_update(f->st, f->alice, ids[1], false, NULL, 0), 0);
    assert_int_equal(store_faces_replace(f->st, f->alice, f->item1, NULL, 0, NULL, 0, 0.5f, NULL,
                                         NULL),
                     0);
    store_identity_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_identity_list(f->st, f->alice, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "Ada");
    assert_int_equal(list[0].face_count, 0);
    assert_int_equal(list[0].rep_face_id, 0);
    store_identity_list_free(&list, n);

    assert_int_equal(store_identity_update(f->st, f->alice, ids[0], true, NULL, -1), 0);
    char longname[260];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(store_identity_update(f->st, f->alice, ids[0], true, longname, -1), -EINVAL);
    assert_int_equal(store_identity_update(f->st, f->alice, 999999, true, "x", -1), -ENOENT);
}

static void merging(void **state)
{
    fixture_t *f = *state;
    int64_t ids[2];
    put_item1(f, ids);
    assert_int_equal(store_identity_update(f->st, f->alice, ids[1], true, "Bo", 1), 0);
    assert_int_equal(store_identity_merge(f->st, f->alice, ids[1], ids[0]), 0);
    store_identity_t id;
    assert_int_equal(store_identity_get(f->st, f->alice, ids[1], &id), -ENOENT);
    assert_int_equal(store_identity_get(f->st, f->alice, ids[0], &id), 0);
    assert_int_equal(id.face_count, 5);
    assert_string_equal(id.name, "Bo"); /* it had none: it takes the merged one's */
    assert_true(id.is_persona);
    assert_true(id.has_centroid && id.rep_face_id > 0);
    /* the centroid is the mean of all 5 faces: 3 of person 0 and 2 of person 1 */
    assert_true(fabsf(id.centroid[0] - 0.6f) < 0.02f && fabsf(id.centroid[1] - 0.4f) < 0.02f);
    store_identity_clear(&id);
    store_face_t *faces = NULL;
    store_face_track_t *tracks = NULL;
    size_t nf = 0, nt = 0;
    assert_int_equal(store_faces_list_media(f->st, f->alice, f->item1, &faces, &nf, &tracks, &nt),
                     0);
    for (size_t i = 0; i < nf; i++)
        assert_int_equal(faces[i].identity_id, ids[0]);
    for (size_t i = 0; i < nt; i++)
        assert_int_equal(tracks[i].identity_id, ids[0]);
    free(faces);
    free(tracks);
    /* deleting the item still counts right (the triggers see the moved faces) */
    assert_int_equal(store_media_delete(f->st, f->alice, f->item1), 0);
    assert_int_equal(store_identity_get(f->st, f->alice, ids[0], &id), 0);
    assert_int_equal(id.face_count, 0);
    store_identity_clear(&id);

    assert_int_equal(store_identity_merge(f->st, f->alice, ids[0], ids[0]), -EINVAL);
    assert_int_equal(store_identity_merge(f->st, f->alice, ids[0], 999999), -ENOENT);
    int64_t bob_ident;
    store_face_t face = make_face(0, 0, 1, 0);
    store_face_track_t t = make_track(0, 0, 1, 0);
    assert_int_equal(store_faces_replace(f->st, f->bob, f->bob_item, &face, 1, &t, 1, 0.5f, NULL,
                                         &bob_ident),
                     0);
    assert_int_equal(store_identity_merge(f->st, f->alice, bob_ident, ids[0]), -ENOENT);
    assert_int_equal(store_identity_merge(f->st, f->bob, bob_ident, ids[0]), -ENOENT);
}

static int count_scan(void *ud, const store_face_t *face)
{
    (void)face;
    ++*(int *)ud;
    return 0;
}

static void accounts_isolated(void **state)
{
    fixture_t *f = *state;
    int64_t ids[2];
    put_item1(f, ids);
    store_face_t face = make_face(0, 0, 1, 0);
    store_face_track_t t = make_track(0, 0, 1, 0);
    /* Bob cannot write into Alice's item, nor Alice into Bob's. */
    assert_int_equal(store_faces_replace(f->st, f->bob, f->item1, &face, 1, &t, 1, 0.5f, NULL,
                                         NULL),
                     -ENOENT);
    assert_int_equal(store_faces_set_status(f->st, f->bob, f->item1, "failed", "x"), -ENOENT);
    /* Bob's own face of "person 0" makes a new identity of Bob's, not Alice's. */
    int64_t bid;
    assert_int_equal(store_faces_replace(f->st, f->bob, f->bob_item, &face, 1, &t, 1, 0.5f, NULL,
                                         &bid),
                     0);
    assert_true(bid != ids[0] && bid != ids[1]);

    store_face_t *faces = NULL;
    size_t n = 0;
    assert_int_equal(store_faces_list_media(f->st, f->bob, f->item1, &faces, &n, NULL, NULL),
                     -ENOENT);
    assert_int_equal(store_faces_list_identity(f->st, f->bob, ids[0], 0, 10, &faces, &n), -ENOENT);
    store_identity_t id;
    assert_int_equal(store_identity_get(f->st, f->bob, ids[0], &id), -ENOENT);
    assert_int_equal(store_identity_update(f->st, f->bob, ids[0], true, "Eve", 1), -ENOENT);
    store_faces_status_t fs;
    assert_int_equal(store_faces_status_get(f->st, f->bob, f->item1, &fs), -ENOENT);
    store_identity_t *list = NULL;
    assert_int_equal(store_identity_list(f->st, f->bob, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, bid);
    store_identity_list_free(&list, n);
    /* Both may have a persona. */
    assert_int_equal(store_identity_update(f->st, f->alice, ids[0], false, NULL, 1), 0);
    assert_int_equal(store_identity_update(f->st, f->bob, bid, false, NULL, 1), 0);

    int alice_n = 0, bob_n = 0;
    assert_int_equal(store_faces_scan(f->st, f->alice, count_scan, &alice_n), 0);
    assert_int_equal(store_faces_scan(f->st, f->bob, count_scan, &bob_n), 0);
    assert_int_equal(alice_n, 5);
    assert_int_equal(bob_n, 1);
}

static void status_failed_keeps_faces(void **state)
{
    fixture_t *f = *state;
    int64_t ids[2];
    store_faces_status_t fs;
    assert_int_equal(store_faces_status_get(f->st, f->alice, f->item1, &fs), -ENOENT);
    put_item1(f, ids);
    assert_int_equal(store_faces_set_status(f->st, f->alice, f->item1, "failed", "models missing"),
                     0);
    assert_int_equal(store_faces_set_status(f->st, f->alice, f->item1, "bogus", NULL), -EINVAL);
    assert_int_equal(store_faces_status_get(f->st, f->alice, f->item1, &fs), 0);
    assert_string_equal(fs.status, "failed");
    assert_string_equal(fs.error, "models missing");
    assert_int_equal(fs.faces, 5); /* the last good set's counts, and the set itself, stay */
    store_faces_status_clear(&fs);
    store_face_t *faces = NULL;
    size_t n = 0;
    assert_int_equal(store_faces_list_media(f->st, f->alice, f->item1, &faces, &n, NULL, NULL), 0);
    assert_int_equal(n, 5);
    free(faces);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(replace_on_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(identities_across_items, setup, teardown),
        cmocka_unit_test_setup_teardown(naming_and_persona, setup, teardown),
        cmocka_unit_test_setup_teardown(accounts_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(status_failed_keeps_faces, setup, teardown),
        cmocka_unit_test_setup_teardown(merging, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
