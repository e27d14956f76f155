/* questions.c: questions and the end of their question.answer jobs.
 *
 * A question moves with its job (jobs.c keeps the same rule for items): queued job → QUEUED,
 * running → ANSWERING, done → ANSWERED, failed → FAILED. store_question_create inserts both in
 * one transaction; store_job_claim moves both to running/ANSWERING (or, for a job tried too
 * often, to failed/FAILED with an answer.failed event); store_question_finish moves both to the
 * end and appends the final event in the same transaction, so a client never sees an
 * answer.done whose question is not ANSWERED, nor the reverse. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

static const char *const status_names[] = {
    [STORE_QUESTION_QUEUED] = "queued",
    [STORE_QUESTION_ANSWERING] = "answering",
    [STORE_QUESTION_ANSWERED] = "answered",
    [STORE_QUESTION_FAILED] = "failed",
};

const char *store_question_status_name(store_question_status_t s)
{
    if ((unsigned)s < sizeof status_names / sizeof status_names[0])
        return status_names[s];
    return "unknown";
}

static store_question_status_t status_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof status_names / sizeof status_names[0]; i++)
        if (name && strcmp(name, status_names[i]) == 0)
            return (store_question_status_t)i;
    return STORE_QUESTION_FAILED; /* unreachable: the CHECK constraint allows only the names */
}

void store_question_clear(store_question_t *q)
{
    if (!q)
        return;
    free(q->text);
    free(q->answer);
    free(q->passages_json);
    free(q->timings_json);
    free(q->error);
    free(q->model);
    memset(q, 0, sizeof *q);
}

void store_question_list_free(store_question_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        store_question_clear(&(*list)[i]);
    free(*list);
    *list = NULL;
}

#define QUESTION_COLS                                                                            \
    "id, account_id, coalesce(device_id, 0), text, status, answer, passages_json, timings_json,"  \
    " error, created_at, updated_at, model"

static void question_from_row(sqlite3_stmt *s, store_question_t *q)
{
    memset(q, 0, sizeof *q);
    q->id = sqlite3_column_int64(s, 0);
    q->account_id = sqlite3_column_int64(s, 1);
    q->device_id = sqlite3_column_int64(s, 2);
    q->text = store__col_strdup(s, 3);
    if (!q->text)
        q->text = xstrdup("");
    q->status = status_from_name((const char *)sqlite3_column_text(s, 4));
    q->answer = store__col_strdup(s, 5);
    q->passages_json = store__col_strdup(s, 6);
    q->timings_json = store__col_strdup(s, 7);
    q->error = store__col_strdup(s, 8);
    q->created_at = sqlite3_column_int64(s, 9);
    q->updated_at = sqlite3_column_int64(s, 10);
    q->model = store__col_strdup(s, 11);
}

int store_question_set_model(store_t *st, int64_t question_id, const char *model)
{
    static const char sql[] = "UPDATE questions SET model = ?2 WHERE id = ?1";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, question_id);
    store__bind_text(s, 2, model);
    if ((rc = store__step(c, s, "question_set_model")) < 0)
        goto out;
    rc = sqlite3_changes(c->db) ? 0 : -ENOENT;
out:
    store__release(st, c);
    return rc;
}

int store_question_create(store_t *st, store_question_t *q)
{
    /* The asking device, when given, must be one of the account's. */
    static const char sql_q[] =
        "INSERT INTO questions(account_id, device_id, text, status, created_at, updated_at)"
        " SELECT ?1, ?2, ?3, 'queued', ?4, ?4 WHERE ?2 IS NULL OR EXISTS"
        " (SELECT 1 FROM devices WHERE id = ?2 AND account_id = ?1)";
    static const char sql_job[] =
        "INSERT INTO jobs(account_id, kind, question_id, state, created_at, updated_at)"
        " VALUES (?1, 'question.answer', ?2, 'queued', ?3, ?3)";
    if (!q || !q->text || q->device_id < 0)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int64_t now = core_now_ms(), id = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = store__prepare(c, sql_q, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, q->account_id);
    if (q->device_id)
        sqlite3_bind_int64(s, 2, q->device_id);
    else
        sqlite3_bind_null(s, 2);
    store__bind_text(s, 3, q->text);
    sqlite3_bind_int64(s, 4, now);
    if ((rc = store__step(c, s, "question_create")) < 0)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = -ENOENT; /* a device of another account */
        goto out;
    }
    id = sqlite3_last_insert_rowid(c->db);
    if ((rc = store__prepare(c, sql_job, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, q->account_id);
    sqlite3_bind_int64(s, 2, id);
    sqlite3_bind_int64(s, 3, now);
    if ((rc = store__step(c, s, "question_create")) < 0)
        goto out;
    if ((rc = store__commit(c)) < 0)
        goto out;
    q->id = id;
    q->status = STORE_QUESTION_QUEUED;
    q->created_at = q->updated_at = now;
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}

int store_question_get(store_t *st, int64_t account_id, int64_t question_id,
                       store_question_t *out)
{
    static const char sql[] =
        "SELECT " QUESTION_COLS " FROM questions WHERE id = ?1 AND account_id = ?2";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, question_id);
    sqlite3_bind_int64(s, 2, account_id);
    if ((rc = store__step(c, s, "question_get")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    question_from_row(s, out);
    rc = 0;
out:
    store__release(st, c);
    return rc;
}

int store_question_list(store_t *st, int64_t account_id, int64_t before_id, int limit,
                        store_question_t **out, size_t *n_out)
{
    static const char sql[] = "SELECT " QUESTION_COLS " FROM questions"
                              " WHERE account_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";
    *out = NULL;
    *n_out = 0;
    if (limit < 1 || limit > 200 || before_id < 0)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    store_question_t *list = NULL;
    size_t n = 0, cap = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, before_id > 0 ? before_id : INT64_MAX);
    sqlite3_bind_int(s, 3, limit);
    while ((rc = store__step(c, s, "question_list")) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            list = xrealloc(list, cap * sizeof *list);
        }
        question_from_row(s, &list[n++]);
    }
out:
    store__release(st, c);
    if (rc < 0) {
        store_question_list_free(&list, n);
        return rc;
    }
    *out = list ? list : xcalloc(1, sizeof *list);
    *n_out = n;
    return 0;
}

/* {"question_id":N,"error":"..."} (malloc'd). */
char *store__answer_failed_body(int64_t question_id, const char *error)
{
    char *e = store__json_string(error);
    char *body = xasprintf("{\"question_id\":%lld,\"error\":%s}", (long long)question_id, e);
    free(e);
    return body;
}

int store_question_finish(store_t *st, const store_job_t *job, const char *answer,
                          const char *passages_json, const char *timings_json,
                          const char *error, const char *done_body_json,
                          store_event_t *event_out)
{
    static const char sql_job[] =
        "UPDATE jobs SET state = ?2, last_error = ?3, lease_until = 0, updated_at = ?4"
        " WHERE id = ?1 AND state = 'running' AND question_id IS NOT NULL"
        " RETURNING question_id, account_id";
    static const char sql_exists[] = "SELECT EXISTS(SELECT 1 FROM jobs WHERE id = ?1)";
    static const char sql_q[] =
        "UPDATE questions SET status = ?2, answer = ?3, passages_json = ?4, timings_json = ?5,"
        " error = ?6, updated_at = ?7 WHERE id = ?1";
    const char *type = error ? "answer.failed" : "answer.done";
    if (event_out)
        memset(event_out, 0, sizeof *event_out);
    if (!job || (!error && !answer) || store__event_check(type, done_body_json) < 0)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int64_t now = core_now_ms(), question_id = 0, account_id = 0;
    char *body = NULL;
    store_event_t ev = {0};
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = store__prepare(c, sql_job, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, job->id);
    store__bind_text(s, 2, error ? "failed" : "done");
    store__bind_text(s, 3, error);
    sqlite3_bind_int64(s, 4, now);
    if ((rc = store__step(c, s, "question_finish")) < 0)
        goto out;
    bool finished = rc == 1;
    if (finished) {
        question_id = sqlite3_column_int64(s, 0);
        account_id = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    if (!finished) {
        /* No such job (-ENOENT); not running, or not a question job (-EINVAL). */
        if ((rc = store__prepare(c, sql_exists, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, job->id);
        if ((rc = store__step(c, s, "question_finish")) < 0)
            goto out;
        rc = rc == 1 && sqlite3_column_int(s, 0) ? -EINVAL : -ENOENT;
        goto out;
    }
    if ((rc = store__prepare(c, sql_q, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, question_id);
    store__bind_text(s, 2, store_question_status_name(error ? STORE_QUESTION_FAILED
                                                            : STORE_QUESTION_ANSWERED));
    store__bind_text(s, 3, error ? NULL : answer);
    store__bind_text(s, 4, error ? NULL : passages_json);
    store__bind_text(s, 5, error ? NULL : timings_json);
    store__bind_text(s, 6, error);
    sqlite3_bind_int64(s, 7, now);
    if ((rc = store__step(c, s, "question_finish")) < 0)
        goto out;

    if (!done_body_json) {
        if (error) {
            body = store__answer_failed_body(question_id, error);
        } else {
            char *text = store__json_string(answer);
            body = xasprintf("{\"question_id\":%lld,\"text\":%s}", (long long)question_id, text);
            free(text);
        }
    }
    if ((rc = store__event_append(c, account_id, type, done_body_json ? done_body_json : body,
                                  now, &ev)) < 0)
        goto out;
    if ((rc = store__commit(c)) < 0)
        goto out;
    if (event_out) {
        *event_out = ev;
        memset(&ev, 0, sizeof ev);
    }
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    store_event_clear(&ev);
    free(body);
    return rc;
}
