/* jobs.c: the persistent job queue, and the item status that moves with each job.
 *
 * States of a job, and the function behind each transition:
 *
 *     store_media_create            store_job_claim               store_job_finish(NULL)
 *   ─────────────────────▶ queued ─────────────────▶ running ─────────────────────────▶ done
 *                           │  ▲                       │
 *                           │  └───── store_open ──────┤   store_job_finish(error)
 *                           │   (the process died)     └─────────────────────────────▶ failed
 *                           │                                                             ▲
 *                           └── store_job_claim, when attempts >= max_attempts ───────────┘
 *
 * Invariants (each transition is one transaction that moves the job and its item together):
 *   1. attempts is the number of claims. A queued job reaches attempts >= max_attempts only by
 *      being requeued by store_open after its process died during each attempt; store_job_claim
 *      then fails it instead of running it again.
 *   2. The item of a job follows it: queued → QUEUED, running → PROCESSING, done → READY,
 *      failed → FAILED with the job's last_error as the item's error. A question.answer job's
 *      question follows it the same way: QUEUED, ANSWERING, ANSWERED, FAILED (questions.c ends
 *      those jobs, with store_question_finish; store_job_finish refuses them). Giving up on a
 *      question job also appends its answer.failed event, in the same transaction.
 *   3. Single process: a job is running only while this process works on it. store_open (which
 *      holds the data directory's lock) therefore requeues every running job; lease_until is
 *      recorded for inspection but nothing expires by it.
 *   4. Transitions are guarded in SQL by the state they leave (WHERE state = ...), so a
 *      transition from the wrong state changes nothing and is reported. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

static const char *const state_names[] = {
    [STORE_JOB_QUEUED] = "queued",
    [STORE_JOB_RUNNING] = "running",
    [STORE_JOB_DONE] = "done",
    [STORE_JOB_FAILED] = "failed",
};

const char *store_job_state_name(store_job_state_t s)
{
    if ((unsigned)s < STORE_JOB_NSTATES)
        return state_names[s];
    return "unknown";
}

/* Debug builds: checks invariant 2 for one job inside the transaction that just moved it. */
#ifndef NDEBUG
static void assert_job_state(store_conn_t *c, int64_t job_id)
{
    static const char sql[] =
        "SELECT j.state, coalesce(m.status, q.status) FROM jobs AS j"
        " LEFT JOIN media AS m ON m.id = j.media_id"
        " LEFT JOIN questions AS q ON q.id = j.question_id WHERE j.id = ?1";
    static const struct { const char *job, *item; } follows[] = {
        {"queued", "queued"}, {"running", "processing"}, {"done", "ready"}, {"failed", "failed"},
        {"running", "answering"}, {"done", "answered"},
    };
    sqlite3_stmt *s;
    if (store__prepare(c, sql, &s) < 0)
        return;
    sqlite3_bind_int64(s, 1, job_id);
    if (store__step(c, s, "assert_job_state") == 1 && sqlite3_column_type(s, 1) != SQLITE_NULL) {
        const char *job = (const char *)sqlite3_column_text(s, 0);
        const char *item = (const char *)sqlite3_column_text(s, 1);
        bool ok = false;
        for (size_t i = 0; i < sizeof follows / sizeof follows[0]; i++)
            ok |= strcmp(job, follows[i].job) == 0 && strcmp(item, follows[i].item) == 0;
        assert(ok && "a job's item must follow the job's state");
        (void)ok;
    }
    sqlite3_reset(s);
}
#else
#define assert_job_state(c, job_id) ((void)0)
#endif

int store__jobs_requeue(store_conn_t *c)
{
    static const char sql_media[] =
        "UPDATE media SET status = 'queued', error = NULL, updated_at = ?1"
        " WHERE id IN (SELECT media_id FROM jobs WHERE state = 'running')";
    static const char sql_questions[] =
        "UPDATE questions SET status = 'queued', error = NULL, updated_at = ?1"
        " WHERE id IN (SELECT question_id FROM jobs WHERE state = 'running')";
    static const char sql_jobs[] = "UPDATE jobs SET state = 'queued', lease_until = 0,"
                                   " updated_at = ?1 WHERE state = 'running'";
    sqlite3_stmt *s;
    int64_t now = core_now_ms();
    int rc = store__begin(c);
    if (rc < 0)
        return rc;
    const char *const items[] = {sql_media, sql_questions};
    for (int i = 0; i < 2; i++) {
        if ((rc = store__prepare(c, items[i], &s)) < 0)
            goto fail;
        sqlite3_bind_int64(s, 1, now);
        if ((rc = store__step(c, s, "jobs_requeue")) < 0)
            goto fail;
    }
    if ((rc = store__prepare(c, sql_jobs, &s)) < 0)
        goto fail;
    sqlite3_bind_int64(s, 1, now);
    if ((rc = store__step(c, s, "jobs_requeue")) < 0)
        goto fail;
    int n = sqlite3_changes(c->db);
    if ((rc = store__commit(c)) < 0)
        return rc;
    if (n > 0)
        core_log(CORE_LOG_WARN, "store.jobs_requeued", "count=%d", n);
    return 0;
fail:
    store__rollback(c);
    return rc;
}

/* The questions of the question.answer jobs give_up is about to fail: each FAILED with the
 * reason, and its answer.failed event appended. */
static int give_up_questions(store_conn_t *c, int max_attempts, int64_t now)
{
    static const char sql_find[] =
        "SELECT account_id, question_id, attempts FROM jobs"
        " WHERE state = 'queued' AND attempts >= ?1 AND question_id IS NOT NULL ORDER BY id";
    static const char sql_q[] = "UPDATE questions SET status = 'failed', error = ?2,"
                                " updated_at = ?3 WHERE id = ?1";
    struct gone { int64_t account_id, question_id; int attempts; } *gone = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql_find, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int(s, 1, max_attempts);
    while ((rc = store__step(c, s, "job_claim")) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            gone = xrealloc(gone, cap * sizeof *gone);
        }
        gone[n++] = (struct gone){sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                                  sqlite3_column_int(s, 2)};
    }
    sqlite3_reset(s);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *error = xasprintf("gave up after %d attempts: the process stopped during each",
                                gone[i].attempts);
        char *body = store__answer_failed_body(gone[i].question_id, error);
        if ((rc = store__prepare(c, sql_q, &s)) == 0) {
            sqlite3_bind_int64(s, 1, gone[i].question_id);
            store__bind_text(s, 2, error);
            sqlite3_bind_int64(s, 3, now);
            rc = store__step(c, s, "job_claim");
        }
        if (rc == 0)
            rc = store__event_append(c, gone[i].account_id, "answer.failed", body, now, NULL);
        free(body);
        free(error);
    }
    free(gone);
    return rc < 0 ? rc : 0;
}

/* Fails the queued jobs that were tried max_attempts times, with their items (invariant 1). */
static int give_up(store_conn_t *c, int max_attempts, int64_t now)
{
#define GAVE_UP "printf('gave up after %d attempts: the process stopped during each', "
    static const char sql_media[] =
        "UPDATE media SET status = 'failed', error = " GAVE_UP "j.attempts), updated_at = ?2"
        " FROM (SELECT media_id, max(attempts) AS attempts FROM jobs"
        "       WHERE state = 'queued' AND attempts >= ?1 AND media_id IS NOT NULL"
        "       GROUP BY media_id) AS j"
        " WHERE media.id = j.media_id";
    static const char sql_jobs[] =
        "UPDATE jobs SET state = 'failed', last_error = " GAVE_UP "attempts), lease_until = 0,"
        " updated_at = ?2 WHERE state = 'queued' AND attempts >= ?1";
#undef GAVE_UP
    const char *const sqls[] = {sql_media, sql_jobs};
    sqlite3_stmt *s;
    int rc = give_up_questions(c, max_attempts, now);
    if (rc < 0)
        return rc;
    for (int i = 0; i < 2; i++) {
        if ((rc = store__prepare(c, sqls[i], &s)) < 0)
            return rc;
        sqlite3_bind_int(s, 1, max_attempts);
        sqlite3_bind_int64(s, 2, now);
        if ((rc = store__step(c, s, "job_claim")) < 0)
            return rc;
    }
    int n = sqlite3_changes(c->db);
    if (n > 0)
        core_log(CORE_LOG_WARN, "store.jobs_gave_up", "count=%d max_attempts=%d", n, max_attempts);
    return 0;
}

int store_job_claim(store_t *st, int max_attempts, store_job_t *out)
{
    static const char sql_claim[] =
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?1,"
        " updated_at = ?2"
        " WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_after <= ?2"
        "             ORDER BY id LIMIT 1)"
        " RETURNING id, account_id, kind, coalesce(media_id, 0), attempts,"
        " coalesce(question_id, 0), retries, coalesce(params, '')";
    static const char sql_media[] = "UPDATE media SET status = 'processing', error = NULL,"
                                    " updated_at = ?2 WHERE id = ?1";
    static const char sql_question[] = "UPDATE questions SET status = 'answering', error = NULL,"
                                       " updated_at = ?2 WHERE id = ?1";
    if (max_attempts < 1 || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    store_job_t job = {0};
    int64_t now = core_now_ms();
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = give_up(c, max_attempts, now)) < 0)
        goto out;

    if ((rc = store__prepare(c, sql_claim, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, now + STORE__LEASE_MS);
    sqlite3_bind_int64(s, 2, now);
    if ((rc = store__step(c, s, "job_claim")) < 0)
        goto out;
    bool claimed = rc == 1;
    if (claimed) {
        job.id = sqlite3_column_int64(s, 0);
        job.account_id = sqlite3_column_int64(s, 1);
        store__col_copy(s, 2, job.kind, sizeof job.kind);
        job.media_id = sqlite3_column_int64(s, 3);
        job.attempts = sqlite3_column_int(s, 4);
        job.question_id = sqlite3_column_int64(s, 5);
        job.retries = sqlite3_column_int(s, 6);
        store__col_copy(s, 7, job.params, sizeof job.params);
    }
    sqlite3_reset(s); /* a RETURNING statement must end before COMMIT */

    if (claimed && (job.media_id || job.question_id)) {
        if ((rc = store__prepare(c, job.media_id ? sql_media : sql_question, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, job.media_id ? job.media_id : job.question_id);
        sqlite3_bind_int64(s, 2, now);
        if ((rc = store__step(c, s, "job_claim")) < 0)
            goto out;
    }
    if (claimed)
        assert_job_state(c, job.id);
    /* Commit even when nothing was claimed: the give-ups above must stick. */
    if ((rc = store__commit(c)) < 0)
        goto out;
    if (!claimed) {
        rc = -ENOENT;
        goto out;
    }
    *out = job;
    rc = 0;
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}

int store_job_finish(store_t *st, const store_job_t *job, const char *error)
{
    static const char sql_job[] =
        "UPDATE jobs SET state = ?2, last_error = ?3, lease_until = 0, updated_at = ?4"
        " WHERE id = ?1 AND state = 'running' AND question_id IS NULL"
        " RETURNING coalesce(media_id, 0)";
    static const char sql_exists[] = "SELECT EXISTS(SELECT 1 FROM jobs WHERE id = ?1)";
    static const char sql_media[] =
        "UPDATE media SET status = ?2, error = ?3, updated_at = ?4 WHERE id = ?1";
    if (!job)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int64_t now = core_now_ms();
    int64_t media_id = 0;
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
    if ((rc = store__step(c, s, "job_finish")) < 0)
        goto out;
    bool finished = rc == 1;
    if (finished)
        media_id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (!finished) {
        /* Deleted with its item (-ENOENT), or not running: finished twice, or a question job
         * (-EINVAL). */
        if ((rc = store__prepare(c, sql_exists, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, job->id);
        if ((rc = store__step(c, s, "job_finish")) < 0)
            goto out;
        rc = rc == 1 && sqlite3_column_int(s, 0) ? -EINVAL : -ENOENT;
        goto out;
    }
    if (media_id) {
        if ((rc = store__prepare(c, sql_media, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, media_id);
        store__bind_text(s, 2, store_media_status_name(error ? STORE_MEDIA_FAILED : STORE_MEDIA_READY));
        store__bind_text(s, 3, error);
        sqlite3_bind_int64(s, 4, now);
        if ((rc = store__step(c, s, "job_finish")) < 0)
            goto out;
    }
    assert_job_state(c, job->id);
    rc = store__commit(c);
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}

int store_job_counts(store_t *st, int64_t counts[STORE_JOB_NSTATES])
{
    static const char sql[] = "SELECT state, count(*) FROM jobs GROUP BY state";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    for (int i = 0; i < STORE_JOB_NSTATES; i++)
        counts[i] = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    while ((rc = store__step(c, s, "job_counts")) == 1) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        for (int i = 0; i < STORE_JOB_NSTATES; i++)
            if (name && strcmp(name, state_names[i]) == 0)
                counts[i] = sqlite3_column_int64(s, 1);
    }
out:
    store__release(st, c);
    return rc;
}

int store_job_defer(store_t *st, const store_job_t *job, int64_t delay_ms, const char *reason)
{
    static const char sql_job[] =
        "UPDATE jobs SET state = 'queued', attempts = max(attempts - 1, 0), retries = retries + 1,"
        " run_after = ?2, last_error = ?3, lease_until = 0, updated_at = ?4"
        " WHERE id = ?1 AND state = 'running' RETURNING coalesce(question_id, 0)";
    static const char sql_exists[] = "SELECT EXISTS(SELECT 1 FROM jobs WHERE id = ?1)";
    static const char sql_q[] =
        "UPDATE questions SET status = 'queued', updated_at = ?2 WHERE id = ?1";
    if (!job || delay_ms < 0)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int64_t now = core_now_ms(), question_id = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = store__prepare(c, sql_job, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, job->id);
    sqlite3_bind_int64(s, 2, now + delay_ms);
    store__bind_text(s, 3, reason);
    sqlite3_bind_int64(s, 4, now);
    if ((rc = store__step(c, s, "job_defer")) < 0)
        goto out;
    bool deferred = rc == 1;
    if (deferred)
        question_id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (!deferred) {
        if ((rc = store__prepare(c, sql_exists, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, job->id);
        if ((rc = store__step(c, s, "job_defer")) < 0)
            goto out;
        rc = rc == 1 && sqlite3_column_int(s, 0) ? -EINVAL : -ENOENT;
        goto out;
    }
    if (question_id) {
        if ((rc = store__prepare(c, sql_q, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, question_id);
        sqlite3_bind_int64(s, 2, now);
        if ((rc = store__step(c, s, "job_defer")) < 0)
            goto out;
    }
    assert_job_state(c, job->id);
    rc = store__commit(c);
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}

int store_job_next_run(store_t *st, int64_t *at_ms_out)
{
    static const char sql[] = "SELECT min(run_after) FROM jobs WHERE state = 'queued'";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    *at_ms_out = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    if ((rc = store__step(c, s, "job_next_run")) < 0)
        goto out;
    if (rc == 1 && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        int64_t at = sqlite3_column_int64(s, 0);
        int64_t now = core_now_ms();
        *at_ms_out = at < now ? now : at;
        if (*at_ms_out == 0)
            *at_ms_out = 1;
    }
    rc = 0;
out:
    store__release(st, c);
    return rc;
}
