/* jobs/jobs.c: the worker threads. Each loops: claim a job, run it, repeat; when nothing is
 * claimable it sleeps on a condition variable until jobs_wake, the time the earliest deferred job
 * becomes claimable (store_job_next_run), or a 2 s tick, whichever comes first. A job that waits
 * on something outside (the text generation service) defers itself instead of sleeping, so a
 * worker never sits idle while other jobs queue. */
#include "jobs/jobs.h"

#include "core/core.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct jobs {
    store_t *st;
    jobs_config_t cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    unsigned pending_wakes;
    int nthreads;
    pthread_t *threads;
};

int jobs_emit(store_t *st, const jobs_config_t *cfg, int64_t account_id, const char *type,
              const char *body_json)
{
    store_event_t ev = {0};
    int rc = store_event_append(st, account_id, type, body_json, &ev);
    if (rc == 0 && cfg->on_event)
        cfg->on_event(cfg->event_ud, &ev);
    store_event_clear(&ev);
    return rc;
}

static int run_job(jobs_t *j, const store_job_t *job)
{
    if (strcmp(job->kind, "question.answer") == 0)
        return jobs_run_question_answer(j->st, job, &j->cfg);
    if (strcmp(job->kind, "model.train") == 0)
        return jobs_run_model_train(j->st, job, &j->cfg);
    if (strcmp(job->kind, "media.process") == 0) {
        int rc = jobs_run_media_process(j->st, job, &j->cfg);
        /* Tell the account's clients; the item's status is the truth if this is lost. */
        store_media_t m = {0};
        if (store_media_get(j->st, job->account_id, job->media_id, &m) == 0) {
            json_t *body = json_pack("{s:I, s:s, s:s?}", "media_id", (json_int_t)m.id, "status",
                                     store_media_status_name(m.status), "error", m.error);
            char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
            if (text)
                jobs_emit(j->st, &j->cfg, job->account_id, "media.updated", text);
            free(text);
            json_decref(body);
            store_media_clear(&m);
        }
        return rc;
    }
    char why[96];
    snprintf(why, sizeof why, "unknown job kind %.40s", job->kind);
    return store_job_finish(j->st, job, why);
}

static void *worker(void *arg)
{
    jobs_t *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        bool stop = j->stopping;
        pthread_mutex_unlock(&j->mu);
        if (stop)
            return NULL;

        store_job_t job;
        int rc = store_job_claim(j->st, j->cfg.max_attempts, &job);
        if (rc == 0) {
            int64_t t0 = core_mono_ns();
            core_log(CORE_LOG_INFO, "job.start", "job=%lld kind=%s media=%lld attempt=%d",
                     (long long)job.id, job.kind, (long long)job.media_id, job.attempts);
            rc = run_job(j, &job);
            core_log(rc == 0 ? CORE_LOG_INFO : CORE_LOG_ERROR, "job.end",
                     "job=%lld media=%lld ms=%.1f rc=%d", (long long)job.id,
                     (long long)job.media_id, (double)(core_mono_ns() - t0) / 1e6, rc);
            continue;
        }
        if (rc != -ENOENT)
            core_log(CORE_LOG_ERROR, "job.claim", "error=%s", core_strerror(rc));

        /* Sleep until the earliest deferred job is due, at most 2 s. */
        int64_t wait_ms = 2000, next_run = 0;
        if (rc == -ENOENT && store_job_next_run(j->st, &next_run) == 0 && next_run > 0) {
            int64_t until_due = next_run - core_now_ms();
            if (until_due < wait_ms)
                wait_ms = until_due < 1 ? 1 : until_due;
        }
        pthread_mutex_lock(&j->mu);
        if (!j->stopping && j->pending_wakes == 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            int64_t ns = until.tv_nsec + (wait_ms % 1000) * 1000000;
            until.tv_sec += (time_t)(wait_ms / 1000 + ns / 1000000000);
            until.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&j->cv, &j->mu, &until);
        }
        if (j->pending_wakes > 0)
            j->pending_wakes--;
        pthread_mutex_unlock(&j->mu);
    }
}

jobs_t *jobs_start(store_t *st, const jobs_config_t *cfg)
{
    jobs_t *j = xcalloc(1, sizeof *j);
    j->st = st;
    j->cfg = *cfg;
    j->cfg.textgen = NULL;
    if (cfg->textgen_url && *cfg->textgen_url) {
        oai_config_t oc = {.base_url = cfg->textgen_url, .api_key = cfg->textgen_api_key,
                           .timeout_s = cfg->textgen_timeout_s};
        int rc = oai_client_new(&oc, &j->cfg.textgen);
        if (rc < 0) {
            core_log(CORE_LOG_ERROR, "jobs.textgen", "url=%s error=\"%s\"", cfg->textgen_url,
                     oai_strerror(rc));
            free(j);
            return NULL;
        }
    }
    if (j->cfg.workers < 1)
        j->cfg.workers = 1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->threads = xcalloc((size_t)j->cfg.workers, sizeof *j->threads);
    for (int i = 0; i < j->cfg.workers; i++) {
        if (pthread_create(&j->threads[i], NULL, worker, j) != 0)
            break;
        pthread_setname_np(j->threads[i], "job-worker");
        j->nthreads++;
    }
    if (j->nthreads == 0) {
        jobs_stop(&j);
        return NULL;
    }
    return j;
}

void jobs_wake(jobs_t *j)
{
    pthread_mutex_lock(&j->mu);
    if (j->pending_wakes < (unsigned)j->nthreads)
        j->pending_wakes++;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void jobs_stop(jobs_t **pj)
{
    jobs_t *j = pj ? *pj : NULL;
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    for (int i = 0; i < j->nthreads; i++)
        pthread_join(j->threads[i], NULL);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    oai_client_free(&j->cfg.textgen);
    jobs_asr_release();
    free(j->threads);
    free(j);
    *pj = NULL;
}
