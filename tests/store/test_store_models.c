/* test_store_models.c: migration 3 — deferred jobs (store_job_defer, store_job_next_run), the
 * model that answered a question, and each account's trained model with its model.train jobs
 * (one at a time per account, progress only from the latest job, finish with its event in one
 * transaction, another account's rows never touched). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "test_store.h"

static void test_defer_and_next_run(void **state)
{
    (void)state;
    char *dir = fresh_dir("defer");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    int64_t at = -1;
    assert_int_equal(store_job_next_run(st, &at), 0);
    assert_int_equal(at, 0);
    store_question_t q = {.account_id = a, .text = "where is the sea?"};
    assert_int_equal(store_question_create(st, &q), 0);
    assert_int_equal(store_job_next_run(st, &at), 0);
    assert_true(at > 0 && at <= core_now_ms());

    store_job_t job;
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(job.attempts, 1);
    assert_int_equal(job.retries, 0);
    assert_int_equal(store_job_defer(st, &job, 60000, "service down"), 0);
    assert_int_equal(store_job_defer(st, &job, 60000, "again"), -EINVAL); /* not running */
    store_question_t got = {0};
    assert_int_equal(store_question_get(st, a, q.id, &got), 0);
    assert_int_equal(got.status, STORE_QUESTION_QUEUED);
    store_question_clear(&got);
    /* not claimable before its time, and the next run time says when */
    store_job_t none;
    assert_int_equal(store_job_claim(st, 3, &none), -ENOENT);
    assert_int_equal(store_job_next_run(st, &at), 0);
    assert_true(at > core_now_ms() + 50000);
    /* a defer does not count as an attempt: after many, the job is still not given up on */
    sql_exec(dir, "UPDATE jobs SET run_after = 0");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_job_claim(st, 3, &job), 0);
        assert_int_equal(job.attempts, 1);
        assert_int_equal(job.retries, i + 1);
        assert_int_equal(store_job_defer(st, &job, 0, "down"), 0);
    }
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(store_question_set_model(st, q.id, "ft-scratch-tiny-x"), 0);
    assert_int_equal(store_question_finish(st, &job, "I walked.", "[]", "{}", NULL, NULL, NULL), 0);
    assert_int_equal(store_question_get(st, a, q.id, &got), 0);
    assert_string_equal(got.model, "ft-scratch-tiny-x");
    assert_int_equal(got.status, STORE_QUESTION_ANSWERED);
    store_question_clear(&got);
    assert_int_equal(store_question_set_model(st, 9999, "x"), -ENOENT);
    store_job_t gone = job;
    gone.id = 424242;
    assert_int_equal(store_job_defer(st, &gone, 0, "x"), -ENOENT);
    store_free(&st);
    free(dir);
}

static void test_models(void **state)
{
    (void)state;
    char *dir = fresh_dir("models");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    store_model_t m;
    assert_int_equal(store_model_get(st, a, &m), -ENOENT);
    int64_t j1 = 0, j2 = 0;
    assert_int_equal(store_model_train_create(st, a, "{\"steps\":50}", &j1), 0);
    assert_true(j1 > 0);
    assert_int_equal(store_model_train_create(st, a, NULL, &j2), -EBUSY);
    assert_int_equal(j2, j1);
    assert_int_equal(store_model_train_create(st, 999, NULL, &j2), -ENOENT);
    assert_int_equal(store_model_train_create(st, a, "not json", &j2), -EINVAL);
    assert_int_equal(store_model_get(st, a, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_QUEUED);
    assert_int_equal(m.job_id, j1);
    assert_string_equal(m.model, "");
    assert_int_equal(store_model_get(st, b, &m), -ENOENT);

    store_job_t job;
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_string_equal(job.kind, "model.train");
    assert_string_equal(job.params, "{\"steps\":50}");
    assert_int_equal(job.account_id, a);
    store_model_t p = {.step = 10, .steps = 50, .has_train_loss = true, .train_loss = 4.5};
    strcpy(p.remote_job, "ftjob-1");
    strcpy(p.base_model, "scratch-tiny");
    assert_int_equal(store_model_progress(st, job.id, &p), 0);
    assert_int_equal(store_model_progress(st, 31337, &p), -ENOENT);
    assert_int_equal(store_model_get(st, a, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_TRAINING);
    assert_int_equal(m.step, 10);
    assert_true(m.has_train_loss && !m.has_eval_loss);
    assert_string_equal(m.remote_job, "ftjob-1");

    /* bob trains too; alice's finish never touches bob's row */
    int64_t jb = 0;
    assert_int_equal(store_model_train_create(st, b, NULL, &jb), 0);
    store_event_t ev;
    assert_int_equal(store_model_train_finish(st, &job, "ft-scratch-tiny-a", NULL, &ev), 0);
    assert_string_equal(ev.type, "model.ready");
    assert_int_equal(ev.account_id, a);
    assert_non_null(strstr(ev.json, "\"model\":\"ft-scratch-tiny-a\""));
    store_event_clear(&ev);
    assert_int_equal(store_model_train_finish(st, &job, "x", NULL, NULL), -EINVAL);
    assert_int_equal(store_model_get(st, a, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_READY);
    assert_string_equal(m.model, "ft-scratch-tiny-a");
    assert_int_equal(store_model_get(st, b, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_QUEUED);
    assert_string_equal(m.model, "");

    /* a second training of alice keeps the model in use until it succeeds; failure says why */
    assert_int_equal(store_model_train_create(st, a, NULL, &j2), 0);
    assert_int_equal(store_model_get(st, a, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_QUEUED);
    assert_string_equal(m.model, "ft-scratch-tiny-a");
    store_job_t jbob, ja2;
    assert_int_equal(store_job_claim(st, 3, &jbob), 0);
    assert_int_equal(jbob.account_id, b);
    assert_int_equal(store_job_claim(st, 3, &ja2), 0);
    assert_int_equal(ja2.id, j2);
    assert_int_equal(store_model_train_finish(st, &ja2, NULL, "no text to train on", &ev), 0);
    assert_string_equal(ev.type, "model.failed");
    store_event_clear(&ev);
    assert_int_equal(store_model_get(st, a, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_FAILED);
    assert_string_equal(m.error, "no text to train on");
    assert_string_equal(m.model, "ft-scratch-tiny-a");

    /* a training whose job was given up on (the process died during each attempt) shows failed */
    store_free(&st);
    sql_exec(dir, "UPDATE jobs SET attempts = 3 WHERE state = 'running'");
    st = open_store(dir); /* requeues bob's running job */
    assert_int_equal(store_job_claim(st, 3, &job), -ENOENT);
    assert_int_equal(store_model_get(st, b, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_FAILED);
    assert_non_null(strstr(m.error, "gave up"));
    assert_string_equal(store_model_status_name(STORE_MODEL_TRAINING), "training");
    store_free(&st);
    free(dir);
}

static void test_corpus_list(void **state)
{
    (void)state;
    char *dir = fresh_dir("corpus_list");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    const char text[] = "First paragraph.\n\nSecond paragraph.\n\nThird one.";
    store_media_t m = {.account_id = a, .kind = "text", .title = "sea", .size = sizeof text - 1};
    memcpy(m.sha256, SHA_A, sizeof m.sha256);
    assert_int_equal(store_media_create_text(st, &m, text, sizeof text - 1), 0);
    store_media_t mb = {.account_id = b, .kind = "text", .title = "bob's", .size = 9};
    memcpy(mb.sha256, SHA_B, sizeof mb.sha256);
    assert_int_equal(store_media_create_text(st, &mb, "Bob only.", 9), 0);
    store_passage_t *list;
    size_t n;
    int64_t cursor = 0, next;
    int seen = 0;
    const char *want[] = {"First paragraph.", "Second paragraph.", "Third one."};
    for (;;) {
        assert_int_equal(store_corpus_list(st, a, cursor, 2, &list, &n, &next), 0);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(list[i].text, want[seen++]);
            assert_string_equal(list[i].title, "sea");
            assert_int_equal(list[i].media_id, m.id);
        }
        store_passage_list_free(&list, n);
        if (n == 0)
            break;
        assert_true(next > cursor);
        cursor = next;
    }
    assert_int_equal(seen, 3);
    assert_int_equal(store_corpus_list(st, b, 0, 10, &list, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].text, "Bob only.");
    store_passage_list_free(&list, n);
    assert_int_equal(store_corpus_list(st, a, 0, 0, &list, &n, &next), -EINVAL);
    assert_int_equal(store_corpus_list(st, a, 0, 1001, &list, &n, &next), -EINVAL);
    store_free(&st);
    free(dir);
}

int run_model_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defer_and_next_run),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_corpus_list),
    };
    return cmocka_run_group_tests_name("store_models", tests, NULL, NULL);
}
