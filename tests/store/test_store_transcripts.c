/* test_store_transcripts: unit tests of store/transcripts.c — a transcript and its corpus
 * passages are replaced together, scoped to the account, and go with their item. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"

typedef struct fixture {
    char dir[512];
    store_t *st;
    int64_t alice, bob, item;
} fixture_t;

static int setup(void **state)
{
    static int counter;
    fixture_t *f = calloc(1, sizeof *f);
    const char *base = getenv("PERSONA_TEST_TMP");
    snprintf(f->dir, sizeof f->dir, "%s/tr-%d-%d", base && *base ? base : "/tmp/persona-test-tr",
             (int)getpid(), counter++);
    assert_int_equal(core_mkdirs(f->dir), 0);
    assert_int_equal(store_open(f->dir, &f->st), 0);
    assert_int_equal(store_account_create(f->st, "alice", "$argon2id$fake", false, &f->alice), 0);
    assert_int_equal(store_account_create(f->st, "bob", "$argon2id$fake", false, &f->bob), 0);
    static const char text[] = "an old passage about kettles";
    store_media_t m = {.account_id = f->alice, .kind = "text", .size = sizeof text - 1};
    /* Any well-formed hash: a text item's blob is not looked at here. */
    memset(m.sha256, 'a', 64);
    assert_int_equal(store_media_create_text(f->st, &m, text, sizeof text - 1), 0);
    f->item = m.id;
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

static int64_t passages(fixture_t *f)
{
    int64_t n = -1;
    assert_int_equal(store_corpus_count(f->st, f->alice, f->item, &n), 0);
    return n;
}

static size_t found(fixture_t *f, int64_t account, const char *q, double *t_start)
{
    store_passage_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_corpus_search(f->st, account, q, 5, &list, &n), 0);
    if (n && t_start)
        *t_start = list[0].t_start;
    store_passage_list_free(&list, n);
    return n;
}

static void test_put_get_replace(void **state)
{
    fixture_t *f = *state;
    store_transcript_t t = {0};
    assert_int_equal(store_transcript_get(f->st, f->alice, f->item, &t), -ENOENT);
    assert_int_equal(passages(f), 1);

    const store_transcript_passage_t p1[] = {{"the zebra crossed", 2.0, 3.5},
                                             {"", 4, 5}, /* skipped */
                                             {"a violet lighthouse", 6.25, 8}};
    assert_int_equal(store_transcript_put(f->st, f->alice, f->item, "{\"segments\":[1]}", false,
                                          p1, 3), 0);
    assert_int_equal(passages(f), 2); /* the old passage went with the put */
    assert_int_equal(found(f, f->alice, "kettles", NULL), 0);
    double t0 = 0;
    assert_int_equal(found(f, f->alice, "lighthouse", &t0), 1);
    assert_true(t0 == 6.25);
    assert_int_equal(store_transcript_get(f->st, f->alice, f->item, &t), 0);
    assert_string_equal(t.json, "{\"segments\":[1]}");
    assert_false(t.corrected);
    int64_t created = t.created_at;
    store_transcript_clear(&t);

    const store_transcript_passage_t p2[] = {{"corrected words", 0, 9}};
    assert_int_equal(store_transcript_put(f->st, f->alice, f->item, "{\"segments\":[2]}", true,
                                          p2, 1), 0);
    assert_int_equal(passages(f), 1);
    assert_int_equal(found(f, f->alice, "lighthouse", NULL), 0);
    assert_int_equal(found(f, f->alice, "corrected", NULL), 1);
    assert_int_equal(store_transcript_get(f->st, f->alice, f->item, &t), 0);
    assert_string_equal(t.json, "{\"segments\":[2]}");
    assert_true(t.corrected);
    assert_int_equal(t.created_at, created);
    assert_true(t.updated_at >= created);
    store_transcript_clear(&t);

    /* No speech: an empty transcript and no passages. */
    assert_int_equal(store_transcript_put(f->st, f->alice, f->item, "{\"segments\":[]}", false,
                                          NULL, 0), 0);
    assert_int_equal(passages(f), 0);
    store_transcript_clear(NULL);
}

static void test_other_account_and_delete(void **state)
{
    fixture_t *f = *state;
    store_transcript_t t = {0};
    const store_transcript_passage_t p[] = {{"secret words", 1, 2}};
    assert_int_equal(store_transcript_put(f->st, f->bob, f->item, "{}", true, p, 1), -ENOENT);
    assert_int_equal(store_transcript_put(f->st, f->alice, f->item + 100, "{}", true, p, 1),
                     -ENOENT);
    assert_int_equal(store_transcript_put(f->st, f->alice, f->item, NULL, true, p, 1), -EINVAL);
    assert_int_equal(store_transcript_put(f->st, f->alice, f->item, "{}", true, NULL, 1), -EINVAL);
    assert_int_equal(passages(f), 1); /* nothing changed */
    assert_int_equal(store_transcript_put(f->st, f->alice, f->item, "{}", false, p, 1), 0);
    assert_int_equal(store_transcript_get(f->st, f->bob, f->item, &t), -ENOENT);
    assert_int_equal(found(f, f->bob, "secret", NULL), 0);
    assert_int_equal(store_media_delete(f->st, f->alice, f->item), 0);
    assert_int_equal(store_transcript_get(f->st, f->alice, f->item, &t), -ENOENT);
    assert_int_equal(found(f, f->alice, "secret", NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_account_and_delete, setup, teardown),
    };
    return cmocka_run_group_tests_name("store_transcripts", tests, NULL, NULL);
}
