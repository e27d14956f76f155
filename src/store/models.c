/* models.c: each account's trained text generation model, and the model.train jobs that make it.
 *
 * States of an account's models row (status is that of the latest training; model is the model
 * in use, which only a success changes):
 *
 *   (no row) ── store_model_train_create ──▶ queued ── store_model_progress ──▶ training
 *                                              │  ▲                              │
 *   ready/failed ─ store_model_train_create ───┘  └── (another train request     │
 *                                                     after it ended)            │
 *                store_model_train_finish(model) ◀───────────────────────────────┤ ──▶ ready
 *                store_model_train_finish(error) ◀───────────────────────────────┘ ──▶ failed
 *
 * Invariants:
 *   1. At most one model.train job per account is queued or running (checked in the transaction
 *      that queues one), so two trainings never race on one row.
 *   2. Only the account's latest job (models.job_id) writes its row: progress and finish are
 *      filtered by job_id, so a stale job never overwrites a newer training.
 *   3. The end of a training, its job's end and its event are one transaction. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

static const char *const status_names[] = {
    [STORE_MODEL_NONE] = "none",         [STORE_MODEL_QUEUED] = "queued",
    [STORE_MODEL_TRAINING] = "training", [STORE_MODEL_READY] = "ready",
    [STORE_MODEL_FAILED] = "failed",
};

const char *store_model_status_name(store_model_status_t s)
{
    if ((unsigned)s < sizeof status_names / sizeof status_names[0])
        return status_names[s];
    return "unknown";
}

static store_model_status_t status_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof status_names / sizeof status_names[0]; i++)
        if (name && strcmp(name, status_names[i]) == 0)
            return (store_model_status_t)i;
    return STORE_MODEL_FAILED;
}

int store_model_train_create(store_t *st, int64_t account_id, const char *params_json,
                             int64_t *job_id_out)
{
    static const char sql_busy[] =
        "SELECT id FROM jobs WHERE account_id = ?1 AND kind = 'model.train'"
        " AND state IN ('queued','running') ORDER BY id LIMIT 1";
    static const char sql_job[] =
        "INSERT INTO jobs(account_id, kind, state, params, created_at, updated_at)"
        " SELECT ?1, 'model.train', 'queued', ?2, ?3, ?3 WHERE EXISTS"
        " (SELECT 1 FROM accounts WHERE id = ?1)";
    static const char sql_row[] =
        "INSERT INTO models(account_id, status, job_id, created_at, updated_at)"
        " VALUES (?1, 'queued', ?2, ?3, ?3)"
        " ON CONFLICT(account_id) DO UPDATE SET status = 'queued', job_id = ?2, base_model = NULL,"
        " remote_file = NULL, remote_job = NULL, step = 0, steps = 0, train_loss = NULL,"
        " eval_loss = NULL, error = NULL, updated_at = ?3";
    *job_id_out = 0;
    if (params_json && (strlen(params_json) > 255 || store__event_check("x", params_json) < 0))
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int64_t now = core_now_ms();
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = store__prepare(c, sql_busy, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    if ((rc = store__step(c, s, "model_train_create")) < 0)
        goto out;
    if (rc == 1) {
        *job_id_out = sqlite3_column_int64(s, 0);
        rc = -EBUSY;
        goto out;
    }
    if ((rc = store__prepare(c, sql_job, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    store__bind_text(s, 2, params_json);
    sqlite3_bind_int64(s, 3, now);
    if ((rc = store__step(c, s, "model_train_create")) < 0)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = -ENOENT;
        goto out;
    }
    int64_t job_id = sqlite3_last_insert_rowid(c->db);
    if ((rc = store__prepare(c, sql_row, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, job_id);
    sqlite3_bind_int64(s, 3, now);
    if ((rc = store__step(c, s, "model_train_create")) < 0)
        goto out;
    if ((rc = store__commit(c)) < 0)
        goto out;
    *job_id_out = job_id;
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}

int store_model_get(store_t *st, int64_t account_id, store_model_t *out)
{
    static const char sql[] =
        "SELECT m.status, coalesce(m.model, ''), coalesce(m.job_id, 0),"
        " coalesce(m.base_model, ''), coalesce(m.remote_file, ''), coalesce(m.remote_job, ''),"
        " m.step, m.steps, m.train_loss, m.eval_loss, coalesce(m.error, ''), m.created_at,"
        " m.updated_at, j.state, coalesce(j.last_error, '')"
        " FROM models AS m LEFT JOIN jobs AS j ON j.id = m.job_id WHERE m.account_id = ?1";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    if ((rc = store__step(c, s, "model_get")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    out->account_id = account_id;
    out->status = status_from_name((const char *)sqlite3_column_text(s, 0));
    store__col_copy(s, 1, out->model, sizeof out->model);
    out->job_id = sqlite3_column_int64(s, 2);
    store__col_copy(s, 3, out->base_model, sizeof out->base_model);
    store__col_copy(s, 4, out->remote_file, sizeof out->remote_file);
    store__col_copy(s, 5, out->remote_job, sizeof out->remote_job);
    out->step = sqlite3_column_int64(s, 6);
    out->steps = sqlite3_column_int64(s, 7);
    if ((out->has_train_loss = sqlite3_column_type(s, 8) != SQLITE_NULL))
        out->train_loss = sqlite3_column_double(s, 8);
    if ((out->has_eval_loss = sqlite3_column_type(s, 9) != SQLITE_NULL))
        out->eval_loss = sqlite3_column_double(s, 9);
    store__col_copy(s, 10, out->error, sizeof out->error);
    out->created_at = sqlite3_column_int64(s, 11);
    out->updated_at = sqlite3_column_int64(s, 12);
    /* A job given up on by store_job_claim never reached store_model_train_finish. */
    const char *job_state = (const char *)sqlite3_column_text(s, 13);
    if ((out->status == STORE_MODEL_QUEUED || out->status == STORE_MODEL_TRAINING) && job_state &&
        strcmp(job_state, "failed") == 0) {
        out->status = STORE_MODEL_FAILED;
        store__col_copy(s, 14, out->error, sizeof out->error);
    }
    rc = 0;
out:
    store__release(st, c);
    return rc;
}

int store_model_progress(store_t *st, int64_t job_id, const store_model_t *m)
{
    static const char sql[] =
        "UPDATE models SET status = 'training', base_model = ?2, remote_file = ?3,"
        " remote_job = ?4, step = ?5, steps = ?6, train_loss = ?7, eval_loss = ?8,"
        " updated_at = ?9 WHERE job_id = ?1 AND status IN ('queued','training')";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, job_id);
    store__bind_text(s, 2, m->base_model[0] ? m->base_model : NULL);
    store__bind_text(s, 3, m->remote_file[0] ? m->remote_file : NULL);
    store__bind_text(s, 4, m->remote_job[0] ? m->remote_job : NULL);
    sqlite3_bind_int64(s, 5, m->step);
    sqlite3_bind_int64(s, 6, m->steps);
    if (m->has_train_loss)
        sqlite3_bind_double(s, 7, m->train_loss);
    else
        sqlite3_bind_null(s, 7);
    if (m->has_eval_loss)
        sqlite3_bind_double(s, 8, m->eval_loss);
    else
        sqlite3_bind_null(s, 8);
    sqlite3_bind_int64(s, 9, core_now_ms());
    if ((rc = store__step(c, s, "model_progress")) < 0)
        goto out;
    rc = sqlite3_changes(c->db) ? 0 : -ENOENT;
out:
    store__release(st, c);
    return rc;
}

int store_model_train_finish(store_t *st, const store_job_t *job, const char *model,
                             const char *error, store_event_t *event_out)
{
    static const char sql_job[] =
        "UPDATE jobs SET state = ?2, last_error = ?3, lease_until = 0, updated_at = ?4"
        " WHERE id = ?1 AND state = 'running' AND kind = 'model.train' RETURNING account_id";
    static const char sql_exists[] = "SELECT EXISTS(SELECT 1 FROM jobs WHERE id = ?1)";
    static const char sql_row[] =
        "UPDATE models SET status = ?2, model = coalesce(?3, model), error = ?4, updated_at = ?5"
        " WHERE job_id = ?1";
    if (event_out)
        memset(event_out, 0, sizeof *event_out);
    if (!job || (!model && !error))
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int64_t now = core_now_ms(), account_id = 0;
    store_event_t ev = {0};
    char *body = NULL;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = store__prepare(c, sql_job, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, job->id);
    store__bind_text(s, 2, model ? "done" : "failed");
    store__bind_text(s, 3, model ? NULL : error);
    sqlite3_bind_int64(s, 4, now);
    if ((rc = store__step(c, s, "model_train_finish")) < 0)
        goto out;
    bool finished = rc == 1;
    if (finished)
        account_id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (!finished) {
        if ((rc = store__prepare(c, sql_exists, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, job->id);
        if ((rc = store__step(c, s, "model_train_finish")) < 0)
            goto out;
        rc = rc == 1 && sqlite3_column_int(s, 0) ? -EINVAL : -ENOENT;
        goto out;
    }
    if ((rc = store__prepare(c, sql_row, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, job->id);
    store__bind_text(s, 2, model ? "ready" : "failed");
    store__bind_text(s, 3, model);
    store__bind_text(s, 4, model ? NULL : error);
    sqlite3_bind_int64(s, 5, now);
    if ((rc = store__step(c, s, "model_train_finish")) < 0)
        goto out;
    char *v = store__json_string(model ? model : error);
    body = xasprintf("{\"%s\":%s}", model ? "model" : "error", v);
    free(v);
    if ((rc = store__event_append(c, account_id, model ? "model.ready" : "model.failed", body, now,
                                  &ev)) < 0)
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
