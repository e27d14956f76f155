/* test_store_events.c: the event log (seqs per account, JSON shape, list, prune, concurrent
 * appends) and questions with their question.answer jobs (create/get/list, claim, finish,
 * give-up after crashes). Event JSON is parsed with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "store/store.h"
#include "test_store.h"

/* ==================================================================================== */
/* helpers                                                                               */
/* ==================================================================================== */

/* Parses an event's JSON and checks seq and type; returns the object (caller json_decref's). */
static json_t *parse_event(const store_event_t *e)
{
    json_error_t err;
    assert_non_null(e->json);
    json_t *o = json_loads(e->json, 0, &err);
    if (!o)
        fprintf(stderr, "bad event JSON %s: %s\n", e->json, err.text);
    assert_non_null(o);
    assert_true(json_is_object(o));
    assert_true(json_is_integer(json_object_get(o, "seq")));
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), e->seq);
    assert_string_equal(json_string_value(json_object_get(o, "type")), e->type);
    return o;
}

static int64_t new_device(store_t *st, int64_t account, uint8_t tag)
{
    uint8_t hash[32];
    memset(hash, tag, sizeof hash);
    int64_t id = 0;
    assert_int_equal(store_device_create(st, account, "phone", "mobile", hash, &id), 0);
    return id;
}

static int64_t ask(store_t *st, int64_t account, int64_t device, const char *text)
{
    store_question_t q = {.account_id = account, .device_id = device, .text = (char *)text};
    assert_int_equal(store_question_create(st, &q), 0);
    assert_true(q.id > 0);
    assert_int_equal(q.status, STORE_QUESTION_QUEUED);
    assert_true(q.created_at > 0 && q.updated_at == q.created_at);
    return q.id;
}

static store_question_status_t question_status(store_t *st, int64_t account, int64_t id)
{
    store_question_t q;
    assert_int_equal(store_question_get(st, account, id, &q), 0);
    store_question_status_t s = q.status;
    store_question_clear(&q);
    return s;
}

/* ==================================================================================== */
/* events                                                                                */
/* ==================================================================================== */

static void test_event_append(void **state)
{
    (void)state;
    char *dir = fresh_dir("events");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    int64_t seq = -1;
    assert_int_equal(store_event_last_seq(st, a, &seq), 0);
    assert_int_equal(seq, 0);

    store_event_t e;
    assert_int_equal(store_event_append(st, a, "answer.delta",
                                        "{\"question_id\":3,\"offset\":0,\"text\":\"hi \\\"you\\\"\"}",
                                        &e),
                     0);
    assert_int_equal(e.seq, 1);
    assert_int_equal(e.account_id, a);
    assert_string_equal(e.type, "answer.delta");
    assert_true(e.created_at > 0);
    json_t *o = parse_event(&e);
    assert_int_equal(json_object_size(o), 5);
    assert_int_equal(json_integer_value(json_object_get(o, "question_id")), 3);
    assert_string_equal(json_string_value(json_object_get(o, "text")), "hi \"you\"");
    /* seq and type come first, as the clients' docs show them */
    assert_int_equal(strncmp(e.json, "{\"seq\":1,\"type\":\"answer.delta\",", 31), 0);
    json_decref(o);
    store_event_clear(&e);

    assert_int_equal(store_event_append(st, a, "model.ready", "{}", &e), 0);
    assert_int_equal(e.seq, 2);
    assert_string_equal(e.json, "{\"seq\":2,\"type\":\"model.ready\"}");
    store_event_clear(&e);
    assert_int_equal(store_event_append(st, a, "media.updated", " \n{ \"media_id\" : 7 }\t", &e), 0);
    assert_int_equal(e.seq, 3);
    o = parse_event(&e);
    assert_int_equal(json_integer_value(json_object_get(o, "media_id")), 7);
    json_decref(o);
    store_event_clear(&e);
    assert_int_equal(store_event_append(st, a, "model.ready", NULL, NULL), 0); /* seq 4 */

    /* Per account: bob starts at 1. */
    assert_int_equal(store_event_append(st, b, "answer.done", "{ }", &e), 0);
    assert_int_equal(e.seq, 1);
    assert_string_equal(e.json, "{\"seq\":1,\"type\":\"answer.done\"}");
    store_event_clear(&e);
    assert_int_equal(store_event_last_seq(st, a, &seq), 0);
    assert_int_equal(seq, 4);
    assert_int_equal(store_event_last_seq(st, b, &seq), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(store_event_last_seq(st, 9999, &seq), -ENOENT);

    /* Bad input changes nothing. */
    const char *bad_types[] = {"", "Answer.done", "answer done", "answer_done", "answer1",
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "\"x", NULL};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++)
        assert_int_equal(store_event_append(st, a, bad_types[i], "{}", &e), -EINVAL);
    const char *bad_bodies[] = {"", "[]", "{", "}", "x", "{\"a\":1", "\"{}\"", " "};
    for (size_t i = 0; i < sizeof bad_bodies / sizeof bad_bodies[0]; i++)
        assert_int_equal(store_event_append(st, a, "answer.done", bad_bodies[i], &e), -EINVAL);
    assert_int_equal(store_event_append(st, 9999, "answer.done", "{}", &e), -ENOENT);
    assert_null(e.json);
    assert_int_equal(store_event_last_seq(st, a, &seq), 0);
    assert_int_equal(seq, 4);
    store_free(&st);
    free(dir);
}

static void test_event_list(void **state)
{
    (void)state;
    char *dir = fresh_dir("eventlist");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    for (int i = 1; i <= 10; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        assert_int_equal(store_event_append(st, a, "media.updated", body, NULL), 0);
    }
    store_event_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_event_list(st, a, 0, 3, &list, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(list[i].seq, (int64_t)i + 1);
        assert_int_equal(list[i].account_id, a);
        json_t *o = parse_event(&list[i]);
        assert_int_equal(json_integer_value(json_object_get(o, "n")), (int64_t)i + 1);
        json_decref(o);
    }
    store_event_list_free(&list, n);
    assert_null(list);
    assert_int_equal(store_event_list(st, a, 3, 1000, &list, &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(list[0].seq, 4);
    assert_int_equal(list[6].seq, 10);
    store_event_list_free(&list, n);
    assert_int_equal(store_event_list(st, a, 10, 5, &list, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(list);
    store_event_list_free(&list, n);
    assert_int_equal(store_event_list(st, b, 0, 5, &list, &n), 0); /* bob sees none of alice's */
    assert_int_equal(n, 0);
    store_event_list_free(&list, n);
    assert_int_equal(store_event_list(st, a, 0, 0, &list, &n), -EINVAL);
    assert_int_equal(store_event_list(st, a, 0, 1001, &list, &n), -EINVAL);
    store_event_list_free(NULL, 0);
    store_free(&st);
    free(dir);
}

static void test_event_prune(void **state)
{
    (void)state;
    char *dir = fresh_dir("eventprune");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    for (int i = 0; i < 10; i++)
        assert_int_equal(store_event_append(st, a, "model.ready", "{}", NULL), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(store_event_append(st, b, "model.ready", "{}", NULL), 0);
    int64_t deleted = -1;
    assert_int_equal(store_event_prune(st, 0, 0, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(store_event_prune(st, 0, 3, &deleted), 0);
    assert_int_equal(deleted, 7 + 2);
    store_event_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_event_list(st, a, 0, 100, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].seq, 8);
    assert_int_equal(list[2].seq, 10);
    store_event_list_free(&list, n);

    /* The counter is untouched: the next event is 11, never a reused seq. */
    int64_t seq = 0;
    assert_int_equal(store_event_last_seq(st, a, &seq), 0);
    assert_int_equal(seq, 10);
    store_event_t e;
    assert_int_equal(store_event_append(st, a, "model.ready", "{}", &e), 0);
    assert_int_equal(e.seq, 11);
    store_event_clear(&e);

    /* By age: make bob's events old. */
    store_free(&st);
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE events SET created_at = 1000 WHERE account_id = %lld",
             (long long)b);
    sql_exec(dir, sql);
    st = open_store(dir);
    assert_int_equal(store_event_prune(st, 60 * 1000, 0, &deleted), 0);
    assert_int_equal(deleted, 3);
    assert_int_equal(store_event_list(st, b, 0, 100, &list, &n), 0);
    assert_int_equal(n, 0);
    store_event_list_free(&list, n);
    assert_int_equal(store_event_last_seq(st, b, &seq), 0);
    assert_int_equal(seq, 5);
    assert_int_equal(store_event_append(st, b, "model.ready", "{}", &e), 0);
    assert_int_equal(e.seq, 6);
    store_event_clear(&e);
    assert_int_equal(store_event_list(st, a, 0, 100, &list, &n), 0);
    assert_int_equal(n, 4); /* alice's are recent */
    store_event_list_free(&list, n);
    assert_int_equal(store_event_prune(st, -1, 0, &deleted), -EINVAL);
    assert_int_equal(store_event_prune(st, 0, -1, NULL), -EINVAL);
    assert_int_equal(store_event_prune(st, 0, 1, NULL), 0);
    store_free(&st);
    free(dir);
}

#define APPEND_THREADS 4
#define APPENDS_PER_THREAD 50

struct appender {
    store_t *st;
    int64_t account;
    int64_t seqs[APPENDS_PER_THREAD];
    int errors;
};

static void *append_many(void *arg)
{
    struct appender *w = arg;
    for (int i = 0; i < APPENDS_PER_THREAD; i++) {
        store_event_t e;
        if (store_event_append(w->st, w->account, "answer.delta", "{\"text\":\"x\"}", &e) != 0) {
            w->errors++;
            continue;
        }
        w->seqs[i] = e.seq;
        store_event_clear(&e);
    }
    return NULL;
}

static void test_event_concurrent_appends(void **state)
{
    (void)state;
    char *dir = fresh_dir("eventthreads");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    pthread_t th[APPEND_THREADS];
    struct appender ws[APPEND_THREADS];
    for (int i = 0; i < APPEND_THREADS; i++) {
        ws[i] = (struct appender){.st = st, .account = a};
        assert_int_equal(pthread_create(&th[i], NULL, append_many, &ws[i]), 0);
    }
    const int total = APPEND_THREADS * APPENDS_PER_THREAD;
    bool seen[APPEND_THREADS * APPENDS_PER_THREAD + 1] = {false};
    for (int i = 0; i < APPEND_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ws[i].errors, 0);
        for (int k = 0; k < APPENDS_PER_THREAD; k++) {
            int64_t s = ws[i].seqs[k];
            assert_true(s >= 1 && s <= total);
            assert_false(seen[s]); /* unique */
            seen[s] = true;
            if (k)
                assert_true(s > ws[i].seqs[k - 1]); /* increasing as each thread sees them */
        }
    }
    store_event_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_event_list(st, a, 0, 1000, &list, &n), 0);
    assert_int_equal(n, (size_t)total);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i].seq, (int64_t)i + 1); /* contiguous */
    store_event_list_free(&list, n);
    store_free(&st);
    free(dir);
}

/* ==================================================================================== */
/* questions                                                                             */
/* ==================================================================================== */

static void test_questions(void **state)
{
    (void)state;
    char *dir = fresh_dir("questions");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    int64_t da = new_device(st, a, 1), db = new_device(st, b, 2);
    int64_t q1 = ask(st, a, da, "What did I say about the sea?");
    int64_t q2 = ask(st, a, 0, "second");
    int64_t q3 = ask(st, a, da, "third \"quoted\" \xf0\x9f\x98\x80");
    int64_t qb = ask(st, b, db, "bob asks");

    store_question_t q;
    assert_int_equal(store_question_get(st, a, q1, &q), 0);
    assert_int_equal(q.id, q1);
    assert_int_equal(q.account_id, a);
    assert_int_equal(q.device_id, da);
    assert_string_equal(q.text, "What did I say about the sea?");
    assert_int_equal(q.status, STORE_QUESTION_QUEUED);
    assert_null(q.answer);
    assert_null(q.passages_json);
    assert_null(q.timings_json);
    assert_null(q.error);
    store_question_clear(&q);
    assert_int_equal(store_question_get(st, a, q2, &q), 0);
    assert_int_equal(q.device_id, 0);
    store_question_clear(&q);

    /* Another account's question does not exist for you. */
    assert_int_equal(store_question_get(st, b, q1, &q), -ENOENT);
    assert_int_equal(store_question_get(st, a, qb, &q), -ENOENT);
    assert_int_equal(store_question_get(st, a, 12345, &q), -ENOENT);

    store_question_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_question_list(st, a, 0, 200, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].id, q3); /* newest first */
    assert_string_equal(list[0].text, "third \"quoted\" \xf0\x9f\x98\x80");
    assert_int_equal(list[2].id, q1);
    store_question_list_free(&list, n);
    assert_null(list);
    assert_int_equal(store_question_list(st, a, q3, 1, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, q2);
    store_question_list_free(&list, n);
    assert_int_equal(store_question_list(st, b, 0, 10, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, qb);
    store_question_list_free(&list, n);
    assert_int_equal(store_question_list(st, a, 0, 0, &list, &n), -EINVAL);
    assert_int_equal(store_question_list(st, a, 0, 201, &list, &n), -EINVAL);
    assert_int_equal(store_question_list(st, a, -1, 10, &list, &n), -EINVAL);

    /* Bad input: nothing recorded, no job queued. */
    store_question_t bad = {.account_id = a, .device_id = db, .text = (char *)"via bob's phone"};
    assert_int_equal(store_question_create(st, &bad), -ENOENT);
    bad = (store_question_t){.account_id = 9999, .text = (char *)"nobody"};
    assert_int_equal(store_question_create(st, &bad), -ENOENT);
    bad = (store_question_t){.account_id = a};
    assert_int_equal(store_question_create(st, &bad), -EINVAL);
    int64_t counts[STORE_JOB_NSTATES];
    assert_int_equal(store_job_counts(st, counts), 0);
    assert_int_equal(counts[STORE_JOB_QUEUED], 4);
    assert_string_equal(store_question_status_name(STORE_QUESTION_ANSWERING), "answering");
    store_free(&st);
    free(dir);
}

static void test_question_jobs(void **state)
{
    (void)state;
    char *dir = fresh_dir("questionjobs");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    store_media_t m = {.account_id = a, .kind = "audio", .size = 3};
    memcpy(m.sha256, SHA_A, sizeof m.sha256);
    assert_int_equal(store_media_create(st, &m), 0);
    int64_t q1 = ask(st, a, 0, "what about the sea?");
    int64_t q2 = ask(st, a, 0, "and the harbour?");

    /* Oldest first: the media job, then the questions. */
    store_job_t mj, qj, qj2;
    assert_int_equal(store_job_claim(st, 3, &mj), 0);
    assert_string_equal(mj.kind, "media.process");
    assert_int_equal(mj.media_id, m.id);
    assert_int_equal(mj.question_id, 0);
    assert_int_equal(store_job_claim(st, 3, &qj), 0);
    assert_string_equal(qj.kind, "question.answer");
    assert_int_equal(qj.question_id, q1);
    assert_int_equal(qj.media_id, 0);
    assert_int_equal(qj.account_id, a);
    assert_int_equal(qj.attempts, 1);
    assert_int_equal(question_status(st, a, q1), STORE_QUESTION_ANSWERING);
    assert_int_equal(question_status(st, a, q2), STORE_QUESTION_QUEUED);

    /* Each kind ends only through its own function. */
    assert_int_equal(store_job_finish(st, &qj, NULL), -EINVAL);
    assert_int_equal(store_question_finish(st, &mj, "x", NULL, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(store_question_finish(st, &qj, NULL, NULL, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(store_question_finish(st, &qj, "x", NULL, NULL, NULL, "[1]", NULL), -EINVAL);
    assert_int_equal(question_status(st, a, q1), STORE_QUESTION_ANSWERING);

    /* Deleting the media item leaves question jobs alone. */
    assert_int_equal(store_media_delete(st, a, m.id), 0);
    assert_int_equal(store_job_finish(st, &mj, NULL), -ENOENT);

    store_event_t e;
    char body[96];
    snprintf(body, sizeof body, "{\"question_id\":%lld,\"text\":\"It was wild.\",\"passages\":2}",
             (long long)q1);
    assert_int_equal(store_question_finish(st, &qj, "It was wild.", "[{\"media_id\":1}]",
                                           "{\"total_ms\":4}", NULL, body, &e),
                     0);
    assert_string_equal(e.type, "answer.done");
    assert_int_equal(e.seq, 1);
    json_t *o = parse_event(&e);
    assert_int_equal(json_integer_value(json_object_get(o, "question_id")), q1);
    assert_string_equal(json_string_value(json_object_get(o, "text")), "It was wild.");
    assert_int_equal(json_integer_value(json_object_get(o, "passages")), 2);
    json_decref(o);
    store_event_clear(&e);
    store_question_t q;
    assert_int_equal(store_question_get(st, a, q1, &q), 0);
    assert_int_equal(q.status, STORE_QUESTION_ANSWERED);
    assert_string_equal(q.answer, "It was wild.");
    assert_string_equal(q.passages_json, "[{\"media_id\":1}]");
    assert_string_equal(q.timings_json, "{\"total_ms\":4}");
    assert_null(q.error);
    assert_true(q.updated_at >= q.created_at);
    store_question_clear(&q);
    assert_int_equal(store_question_finish(st, &qj, "again", NULL, NULL, NULL, NULL, &e),
                     -EINVAL); /* not running any more */
    assert_null(e.json);

    /* A failure, with the store's default body (the error is escaped). */
    assert_int_equal(store_job_claim(st, 3, &qj2), 0);
    assert_int_equal(qj2.question_id, q2);
    assert_int_equal(store_question_finish(st, &qj2, NULL, NULL, NULL,
                                           "textgen said \"no\"\n", NULL, &e),
                     0);
    assert_string_equal(e.type, "answer.failed");
    assert_int_equal(e.seq, 2);
    o = parse_event(&e);
    assert_int_equal(json_integer_value(json_object_get(o, "question_id")), q2);
    assert_string_equal(json_string_value(json_object_get(o, "error")), "textgen said \"no\"\n");
    json_decref(o);
    store_event_clear(&e);
    assert_int_equal(store_question_get(st, a, q2, &q), 0);
    assert_int_equal(q.status, STORE_QUESTION_FAILED);
    assert_string_equal(q.error, "textgen said \"no\"\n");
    assert_null(q.answer);
    store_question_clear(&q);

    /* The default answer.done body. */
    int64_t q3 = ask(st, a, 0, "third");
    assert_int_equal(store_job_claim(st, 3, &qj), 0);
    assert_int_equal(qj.question_id, q3);
    assert_int_equal(store_question_finish(st, &qj, "line\none", "[]", "{}", NULL, NULL, NULL), 0);
    store_event_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_event_list(st, a, 2, 10, &list, &n), 0);
    assert_int_equal(n, 1);
    o = parse_event(&list[0]);
    assert_string_equal(json_string_value(json_object_get(o, "text")), "line\none");
    assert_int_equal(json_integer_value(json_object_get(o, "question_id")), q3);
    json_decref(o);
    store_event_list_free(&list, n);

    int64_t counts[STORE_JOB_NSTATES];
    assert_int_equal(store_job_counts(st, counts), 0);
    assert_int_equal(counts[STORE_JOB_DONE], 2);
    assert_int_equal(counts[STORE_JOB_FAILED], 1);
    assert_int_equal(counts[STORE_JOB_RUNNING], 0);
    assert_int_equal(store_job_claim(st, 3, &qj), -ENOENT);
    store_free(&st);
    free(dir);
}

static void test_question_give_up(void **state)
{
    (void)state;
    char *dir = fresh_dir("questiongiveup");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    int64_t q1 = ask(st, a, 0, "a question that crashes us");
    store_job_t job;
    for (int attempt = 1; attempt <= 3; attempt++) {
        assert_int_equal(store_job_claim(st, 3, &job), 0);
        assert_int_equal(job.question_id, q1);
        assert_int_equal(job.attempts, attempt);
        assert_int_equal(question_status(st, a, q1), STORE_QUESTION_ANSWERING);
        store_free(&st); /* the process "dies" with the job running */
        st = open_store(dir);
        assert_int_equal(question_status(st, a, q1), STORE_QUESTION_QUEUED);
    }
    int64_t q2 = ask(st, a, 0, "a fine one behind it");
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(job.question_id, q2);

    store_question_t q;
    assert_int_equal(store_question_get(st, a, q1, &q), 0);
    assert_int_equal(q.status, STORE_QUESTION_FAILED);
    assert_string_equal(q.error, "gave up after 3 attempts: the process stopped during each");
    store_question_clear(&q);
    store_event_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_event_list(st, a, 0, 10, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].type, "answer.failed");
    json_t *o = parse_event(&list[0]);
    assert_int_equal(json_integer_value(json_object_get(o, "question_id")), q1);
    assert_string_equal(json_string_value(json_object_get(o, "error")),
                        "gave up after 3 attempts: the process stopped during each");
    json_decref(o);
    store_event_list_free(&list, n);
    int64_t counts[STORE_JOB_NSTATES];
    assert_int_equal(store_job_counts(st, counts), 0);
    assert_int_equal(counts[STORE_JOB_FAILED], 1);
    assert_int_equal(counts[STORE_JOB_RUNNING], 1);
    store_free(&st);
    free(dir);
}

/* The schema has the event log, and a new account starts at seq 0. */
static void test_schema_v2(void **state)
{
    (void)state;
    char *dir = fresh_dir("migrate2");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    store_free(&st);
    assert_true(sql_int(dir, "PRAGMA user_version") >= 2);
    assert_int_equal(sql_int(dir, "SELECT count(*) FROM sqlite_schema WHERE name = 'events'"), 1);
    st = open_store(dir);
    int64_t seq = -1;
    assert_int_equal(store_event_last_seq(st, a, &seq), 0);
    assert_int_equal(seq, 0);
    store_free(&st);
    free(dir);
}

int run_event_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_append),
        cmocka_unit_test(test_event_list),
        cmocka_unit_test(test_event_prune),
        cmocka_unit_test(test_event_concurrent_appends),
        cmocka_unit_test(test_questions),
        cmocka_unit_test(test_question_jobs),
        cmocka_unit_test(test_question_give_up),
        cmocka_unit_test(test_schema_v2),
    };
    return cmocka_run_group_tests_name("store_events", tests, NULL, NULL);
}
