/* jobs: the worker pool that runs the persistent job queue kept by the store. Each worker claims
 * the oldest queued job, runs it, and ends it in one transaction with its item. A job that was
 * running when the process died is queued again by store_open and runs again here: job bodies
 * are idempotent (artifacts are replaced, never added twice), so every job completes exactly once
 * in effect.
 *
 * Threads: jobs_start starts its own threads; jobs_wake and jobs_stop may be called from any
 * thread (jobs_wake never blocks, so the event loop may call it). */
#ifndef PERSONA_JOBS_H
#define PERSONA_JOBS_H

#include "store/store.h"

typedef struct jobs jobs_t;

/* Called on a worker thread after an event was committed to the log (the event is borrowed for
 * the call). The server uses it to push the event to connected clients. */
typedef void (*jobs_event_fn)(void *ud, const store_event_t *ev);

typedef struct jobs_config {
    int workers;        /* threads, >= 1 */
    int max_attempts;   /* see store_job_claim */
    int thumbnail_size; /* longer side, pixels */
    jobs_event_fn on_event; /* may be NULL */
    void *event_ud;
} jobs_config_t;

/* Starts the workers over st (borrowed; must outlive the jobs). Returns NULL on failure. */
jobs_t *jobs_start(store_t *st, const jobs_config_t *cfg);
/* Tells idle workers that a job was queued. */
void jobs_wake(jobs_t *j);
/* Lets running jobs finish, joins the workers, frees; NULL-safe. */
void jobs_stop(jobs_t **j);

/* Runs one claimed media.process job to its end (store_job_finish included). Exposed for tests.
 * Returns 0 when the job was ended (done or failed), or a negative code if it could not even be
 * recorded. */
int jobs_run_media_process(store_t *st, const store_job_t *job, int thumbnail_size);

/* Runs one claimed question.answer job: retrieves the passages, composes the answer, emits
 * answer.delta events as text becomes available and answer.done (or answer.failed) with the
 * question's end, in one transaction. Exposed for tests. */
int jobs_run_question_answer(store_t *st, const store_job_t *job, const jobs_config_t *cfg);

/* Appends an event and hands it to cfg->on_event. Returns 0 or a negative code. */
int jobs_emit(store_t *st, const jobs_config_t *cfg, int64_t account_id, const char *type,
              const char *body_json);

#endif
