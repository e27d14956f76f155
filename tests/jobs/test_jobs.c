/* tests/jobs: the text generation side of the jobs, on a real store and a real oai client whose
 * service is down (a closed loopback port) — the corpus export for training (format, one
 * account only), question.answer deferring while the service is unreachable and answering by
 * quoting, with the note, once textgen_fallback_s has passed, and model.train failing without a
 * service, with nothing to train on, or deferring while the service is down. The paths with a
 * live service are covered end to end by tests/e2e/textgen.sh with the real persona-textgen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/core.h"
#include "jobs/jobs.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static store_t *fresh_store(const char *name, char **dir_out)
{
    static int counter;
    const char *base = getenv("PERSONA_TEST_TMP");
    if (!base || !*base)
        base = "/tmp/persona-test-jobs";
    assert_int_equal(core_mkdirs(base), 0);
    char *dir = xasprintf("%s/%s-%d", base, name, counter++);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    store_t *st = NULL;
    assert_int_equal(store_open(dir, &st), 0);
    *dir_out = dir;
    return st;
}

static int64_t new_account(store_t *st, const char *name)
{
    int64_t id = 0;
    assert_int_equal(store_account_create(st, name, "$argon2id$fake", false, &id), 0);
    return id;
}

static void add_text(store_t *st, int64_t account, const char *title, const char *text)
{
    store_media_t m = {.account_id = account, .kind = "text", .size = (int64_t)strlen(text)};
    memset(m.sha256, 'a', 64);
    m.title = (char *)title;
    m.content_type = (char *)"text/plain";
    assert_int_equal(store_media_create_text(st, &m, text, strlen(text)), 0);
}

/* A loopback port nothing listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

typedef struct seen {
    char types[32][32];
    char last_json[4096];
    int n;
} seen_t;

static void on_event(void *ud, const store_event_t *ev)
{
    seen_t *s = ud;
    if (s->n < 32)
        snprintf(s->types[s->n++], 32, "%s", ev->type);
    snprintf(s->last_json, sizeof s->last_json, "%s", ev->json);
}

static jobs_config_t down_config(seen_t *seen)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", closed_port());
    jobs_config_t cfg = {.workers = 1, .max_attempts = 3, .on_event = on_event, .event_ud = seen,
                         .textgen_model = "some-model", .textgen_base_model = "scratch-tiny",
                         .textgen_train_steps = 10, .textgen_timeout_s = 5,
                         .textgen_fallback_s = 60, .textgen_retry_min_ms = 1,
                         .textgen_retry_max_ms = 4, .textgen_max_tokens = 16};
    oai_config_t oc = {.base_url = url, .timeout_s = 5, .connect_timeout_s = 2};
    assert_int_equal(oai_client_new(&oc, &cfg.textgen), 0);
    return cfg;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_export_corpus(void **state)
{
    (void)state;
    char *dir;
    store_t *st = fresh_store("export", &dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob"), c = new_account(st, "carol");
    add_text(st, a, "sea", "The sea was grey.\n\nI walked on the pier \"every\" day.");
    add_text(st, a, NULL, "Caf\xc3\xa9 au lait in the morning.");
    add_text(st, b, "secret", "Bob's private mountain notes.");
    char *out = NULL;
    size_t len = 0;
    int examples = 0;
    assert_int_equal(jobs_export_corpus(st, a, &out, &len, &examples), 0);
    assert_int_equal(examples, 3);
    assert_int_equal(strlen(out), len);
    assert_null(strstr(out, "mountain")); /* another account's words never go out */
    const char *want[] = {"The sea was grey.", "I walked on the pier \"every\" day.",
                          "Caf\xc3\xa9 au lait in the morning."};
    char *line = out;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        json_t *o = json_loadb(line, (size_t)(nl - line), 0, NULL);
        assert_non_null(o);
        json_t *msgs = json_object_get(o, "messages");
        assert_int_equal(json_array_size(msgs), 3);
        assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")),
                            "system");
        assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "role")),
                            "assistant");
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(msgs, 2), "content")), want[i]);
        json_decref(o);
        line = nl + 1;
    }
    assert_string_equal(line, "");
    free(out);
    assert_int_equal(jobs_export_corpus(st, c, &out, &len, &examples), 0);
    assert_int_equal(examples, 0);
    assert_int_equal(len, 0);
    free(out);
    store_free(&st);
    free(dir);
}

static void test_question_defers_then_quotes(void **state)
{
    (void)state;
    char *dir;
    store_t *st = fresh_store("question", &dir);
    int64_t a = new_account(st, "alice");
    add_text(st, a, "sea", "I walked along the pier every morning.");
    seen_t seen = {0};
    jobs_config_t cfg = down_config(&seen);
    store_question_t q = {.account_id = a, .text = "tell me about the pier"};
    assert_int_equal(store_question_create(st, &q), 0);

    /* the service is down and the fallback time is far: deferred, nothing emitted */
    store_job_t job;
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(jobs_run_question_answer(st, &job, &cfg), 0);
    assert_int_equal(seen.n, 0);
    store_question_t got = {0};
    assert_int_equal(store_question_get(st, a, q.id, &got), 0);
    assert_int_equal(got.status, STORE_QUESTION_QUEUED);
    store_question_clear(&got);
    sleep_ms(10);
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(job.retries, 1);
    assert_int_equal(job.attempts, 1); /* a deferral is not an attempt */

    /* past the fallback time: answered by quoting, with the note, no model recorded */
    cfg.textgen_fallback_s = 0;
    assert_int_equal(jobs_run_question_answer(st, &job, &cfg), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.types[0], "answer.delta");
    assert_string_equal(seen.types[1], "answer.done");
    assert_non_null(strstr(seen.last_json, "\"note\":"));
    assert_int_equal(store_question_get(st, a, q.id, &got), 0);
    assert_int_equal(got.status, STORE_QUESTION_ANSWERED);
    assert_non_null(strstr(got.answer, "walked along the pier"));
    assert_non_null(strstr(got.answer, JOBS_NOTE_UNAVAILABLE));
    assert_null(got.model);
    store_question_clear(&got);

    /* no model to answer with (none trained, no textgen_model): quotes at once, no note */
    cfg.textgen_model = NULL;
    cfg.textgen_fallback_s = 60;
    seen.n = 0;
    store_question_t q2 = {.account_id = a, .text = "the pier again"};
    assert_int_equal(store_question_create(st, &q2), 0);
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(jobs_run_question_answer(st, &job, &cfg), 0);
    assert_int_equal(store_question_get(st, a, q2.id, &got), 0);
    assert_int_equal(got.status, STORE_QUESTION_ANSWERED);
    assert_null(strstr(got.answer, "quotes your own words"));
    store_question_clear(&got);
    oai_client_free(&cfg.textgen);
    store_free(&st);
    free(dir);
}

static void test_model_train_without_service(void **state)
{
    (void)state;
    char *dir;
    store_t *st = fresh_store("train", &dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    add_text(st, a, "sea", "I walked along the pier every morning.");
    seen_t seen = {0};
    jobs_config_t cfg = down_config(&seen);

    /* no service configured: failed, with model.failed */
    oai_client_t *client = cfg.textgen;
    cfg.textgen = NULL;
    int64_t jid;
    assert_int_equal(store_model_train_create(st, a, "{\"steps\":5}", &jid), 0);
    store_job_t job;
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(jobs_run_model_train(st, &job, &cfg), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.types[0], "model.failed");
    store_model_t m;
    assert_int_equal(store_model_get(st, a, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_FAILED);
    assert_non_null(strstr(m.error, "no text generation service"));

    /* the service down: the job defers (the model stays queued), nothing is emitted */
    cfg.textgen = client;
    seen.n = 0;
    assert_int_equal(store_model_train_create(st, a, NULL, &jid), 0);
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(jobs_run_model_train(st, &job, &cfg), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(store_model_get(st, a, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_QUEUED);
    sleep_ms(10);
    store_job_t again;
    assert_int_equal(store_job_claim(st, 3, &again), 0);
    assert_int_equal(again.id, jid);
    assert_int_equal(again.retries, 1);

    /* an account with nothing to train on fails before calling the service */
    int64_t jb;
    assert_int_equal(store_model_train_create(st, b, NULL, &jb), 0);
    store_job_t jobb;
    assert_int_equal(store_job_claim(st, 3, &jobb), 0);
    assert_int_equal(jobb.account_id, b);
    assert_int_equal(jobs_run_model_train(st, &jobb, &cfg), 0);
    assert_string_equal(seen.types[seen.n - 1], "model.failed");
    assert_int_equal(store_model_get(st, b, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_FAILED);
    assert_non_null(strstr(m.error, "nothing to train on"));
    /* alice's training is untouched by bob's */
    assert_int_equal(store_model_get(st, a, &m), 0);
    assert_int_equal(m.status, STORE_MODEL_QUEUED);
    oai_client_free(&cfg.textgen);
    store_free(&st);
    free(dir);
}

static void test_backoff(void **state)
{
    (void)state;
    jobs_config_t cfg = {.textgen_retry_min_ms = 1000, .textgen_retry_max_ms = 30000};
    const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (int i = 0; i < 7; i++)
        assert_int_equal(jobs__backoff_ms(&cfg, i), want[i]);
    assert_int_equal(jobs__backoff_ms(&cfg, 1000000), 30000); /* no overflow */
    jobs_config_t unset = {0};
    assert_int_equal(jobs__backoff_ms(&unset, 3), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_export_corpus),
        cmocka_unit_test(test_question_defers_then_quotes),
        cmocka_unit_test(test_model_train_without_service),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
