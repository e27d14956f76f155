/* jobs/model_train.c: the model.train job — trains a text generation model on one account's
 * corpus with the text generation service, and records it as the model the account's questions
 * are answered with.
 *
 * The job is a state machine driven by what the account's models row holds, one step per claim,
 * so no worker waits on a training that takes minutes, and a restart resumes where it was:
 *
 *   no remote file  ── export the corpus as JSONL, upload it ────────────────▶ remote file
 *   no remote job   ── POST /v1/fine_tuning/jobs ─────────────────────────────▶ remote job
 *   remote job      ── GET it: progress recorded; queued/running: defer POLL_MS, poll again
 *                      succeeded: store_model_train_finish(model) → model.ready
 *                      failed/cancelled: store_model_train_finish(error) → model.failed
 *
 * The service unreachable or 5xx at any step: the job is deferred with backoff and tries the same
 * step again (the training goes on on the service meanwhile). A 4xx: the training failed, with the
 * service's reason. Every read and write is filtered by the job's account_id: another account's
 * corpus or model row is never touched. */
#include "jobs/jobs.h"

#include "core/core.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define POLL_MS 500             /* between two looks at a running training */
#define EXPORT_PAGE 500
#define STEPS_MAX 1000000
#define TRAIN_PASSAGE_MAX 600   /* bytes of a passage in one example */

/* One chat example per passage: what would make the model answer like the persona. The system
 * message is the one a question gets (question_answer.c), quoting this passage as the retrieved
 * one, and the answer is the passage: the model learns to answer from what the prompt quotes. */
static int export_line(core_buf_t *out, const store_passage_t *p)
{
    const char *title = p->title && *p->title ? p->title : "that";
    char user[300];
    if (strcmp(p->kind, "text") != 0 && p->t_end > 0)
        snprintf(user, sizeof user, "What did you say in \"%.200s\"?", title);
    else
        snprintf(user, sizeof user, "What did you write in \"%.200s\"?", title);
    /* A passage is at most 600 bytes (the store cuts them), but do not rely on it here. */
    size_t n = strlen(p->text);
    if (n > TRAIN_PASSAGE_MAX) {
        n = TRAIN_PASSAGE_MAX;
        while (n > 0 && ((unsigned char)p->text[n] & 0xC0) == 0x80)
            n--;
    }
    char *system = jobs__answer_system_prompt(p, 1, JOBS_TRAIN_PROMPT_BUDGET);
    json_t *line = json_pack("{s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s%}]}", "messages", "role",
                             "system", "content", system, "role", "user", "content", user,
                             "role", "assistant", "content", p->text, n);
    free(system);
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (!text)
        return -EINVAL; /* not UTF-8: skipped */
    core_buf_puts(out, text);
    core_buf_puts(out, "\n");
    free(text);
    return 0;
}

int jobs_export_corpus(store_t *st, int64_t account_id, char **out, size_t *len, int *examples)
{
    core_buf_t b;
    core_buf_init(&b);
    int64_t cursor = 0, next = 0;
    int count = 0, rc = 0;
    *out = NULL;
    *len = 0;
    *examples = 0;
    for (bool full = false; !full;) {
        store_passage_t *list = NULL;
        size_t n = 0;
        if ((rc = store_corpus_list(st, account_id, cursor, EXPORT_PAGE, &list, &n, &next)) < 0)
            break;
        for (size_t i = 0; i < n && !full; i++) {
            size_t before = b.len;
            if (export_line(&b, &list[i]) < 0)
                continue;
            if (b.len > JOBS_TRAIN_MAX_BYTES) {
                b.len = before; /* the line that went over is left out, and what follows */
                b.data[b.len] = '\0';
                full = true;
                break;
            }
            count++;
        }
        store_passage_list_free(&list, n);
        if (n == 0)
            break;
        cursor = next;
    }
    if (rc < 0) {
        core_buf_destroy(&b);
        return rc;
    }
    *len = b.len;
    *out = core_buf_steal(&b);
    if (!*out)
        *out = xstrdup("");
    *examples = count;
    return 0;
}

/* steps and base_model from the job's params ({"steps":N,"base_model":"..."}; validated by the
 * route, defaults from the configuration). */
static void read_params(const store_job_t *job, const jobs_config_t *cfg, int64_t *steps,
                        char base[128])
{
    *steps = cfg->textgen_train_steps;
    snprintf(base, 128, "%s",
             cfg->textgen_base_model && *cfg->textgen_base_model ? cfg->textgen_base_model
                                                                 : "scratch-tiny");
    json_t *o = job->params[0] ? json_loads(job->params, 0, NULL) : NULL;
    json_t *v = json_object_get(o, "steps");
    if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= STEPS_MAX)
        *steps = json_integer_value(v);
    const char *b = json_string_value(json_object_get(o, "base_model"));
    if (b && *b && strlen(b) < 128)
        snprintf(base, 128, "%s", b);
    json_decref(o);
}

static int finish(store_t *st, const jobs_config_t *cfg, const store_job_t *job,
                  const char *model, const char *error)
{
    store_event_t ev = {0};
    int rc = store_model_train_finish(st, job, model, error, &ev);
    if (rc == 0 && cfg->on_event)
        cfg->on_event(cfg->event_ud, &ev);
    store_event_clear(&ev);
    core_log(model ? CORE_LOG_INFO : CORE_LOG_WARN, model ? "model.ready" : "model.failed",
             "account=%lld job=%lld model=%s", (long long)job->account_id, (long long)job->id,
             model ? model : "-");
    return rc;
}

/* A failed call: defer (service down) or fail the training (refused, or not the API). */
static int after_failure(store_t *st, const jobs_config_t *cfg, const store_job_t *job,
                         const char *step, int rc, const oai_error_t *err)
{
    char why[700];
    snprintf(why, sizeof why, "%s: %s%s%s", step, oai_strerror(rc), err->message[0] ? ": " : "",
             err->message);
    if (rc == OAI_EUNAVAILABLE) {
        int64_t d = jobs__backoff_ms(cfg, job->retries);
        core_log(CORE_LOG_WARN, "model.defer", "account=%lld job=%lld step=%s delay_ms=%lld",
                 (long long)job->account_id, (long long)job->id, step, (long long)d);
        return store_job_defer(st, job, d, why);
    }
    return finish(st, cfg, job, NULL, why);
}

int jobs_run_model_train(store_t *st, const store_job_t *job, const jobs_config_t *cfg)
{
    store_model_t m;
    oai_error_t err = {0};
    char *jsonl = NULL;
    int rc = store_model_get(st, job->account_id, &m);
    if (rc < 0 || m.job_id != job->id) /* invariant 1 of store/models.c makes this a bug */
        return finish(st, cfg, job, NULL, "this training is no longer the account's latest");
    if (!cfg->textgen)
        return finish(st, cfg, job, NULL, "no text generation service is configured");
    int64_t steps;
    char base[128];
    read_params(job, cfg, &steps, base);
    snprintf(m.base_model, sizeof m.base_model, "%s", base);

    if (!m.remote_file[0]) {
        size_t len;
        int examples;
        if ((rc = jobs_export_corpus(st, job->account_id, &jsonl, &len, &examples)) < 0)
            goto out; /* a database failure: the job is retried after a restart */
        if (examples == 0) {
            rc = finish(st, cfg, job, NULL,
                        "nothing to train on: add text items or recordings first");
            goto out;
        }
        char name[64];
        snprintf(name, sizeof name, "persona-%lld.jsonl", (long long)job->id);
        rc = oai_file_upload(cfg->textgen, name, jsonl, len, NULL, m.remote_file, &err);
        if (rc < 0) {
            rc = after_failure(st, cfg, job, "upload", rc, &err);
            goto out;
        }
        core_log(CORE_LOG_INFO, "model.upload", "account=%lld job=%lld file=%s examples=%d "
                 "bytes=%zu", (long long)job->account_id, (long long)job->id, m.remote_file,
                 examples, len);
        m.steps = steps;
        if ((rc = store_model_progress(st, job->id, &m)) < 0)
            goto out;
    }
    if (!m.remote_job[0]) {
        /* Unique on a service shared by several personads (each numbers accounts and jobs
         * from 1): the model file of one must never replace another's. At most 40 characters
         * of [A-Za-z0-9_-]. */
        uint32_t tag = 0;
        if (getrandom(&tag, sizeof tag, 0) != (ssize_t)sizeof tag)
            tag = (uint32_t)core_mono_ns();
        char suffix[48];
        snprintf(suffix, sizeof suffix, "a%lldj%lld-%08x", (long long)job->account_id,
                 (long long)job->id, tag);
        oai_ft_params_t fp = {.training_file = m.remote_file, .model = base, .suffix = suffix,
                              .steps = steps, .has_seed = true, .seed = job->id};
        oai_ft_job_t ft;
        rc = oai_finetune_create(cfg->textgen, &fp, &ft, &err);
        if (rc < 0) {
            if (rc == OAI_EREJECTED && err.http_status == 404 &&
                strcmp(err.code, "file_not_found") == 0) {
                m.remote_file[0] = '\0'; /* the service forgot the file: upload again */
                store_model_progress(st, job->id, &m);
                rc = store_job_defer(st, job, 0, "the training file is gone; uploading again");
                goto out;
            }
            rc = after_failure(st, cfg, job, "create", rc, &err);
            goto out;
        }
        snprintf(m.remote_job, sizeof m.remote_job, "%s", ft.id);
        m.steps = ft.steps ? ft.steps : steps;
        if ((rc = store_model_progress(st, job->id, &m)) < 0)
            goto out;
        core_log(CORE_LOG_INFO, "model.train", "account=%lld job=%lld remote=%s base=%s steps=%lld",
                 (long long)job->account_id, (long long)job->id, ft.id, base,
                 (long long)m.steps);
        rc = store_job_defer(st, job, POLL_MS, NULL);
        goto out;
    }

    oai_ft_job_t ft;
    rc = oai_finetune_get(cfg->textgen, m.remote_job, &ft, &err);
    if (rc < 0) {
        rc = after_failure(st, cfg, job, "poll", rc, &err);
        goto out;
    }
    m.step = ft.step;
    if (ft.steps)
        m.steps = ft.steps;
    m.has_train_loss = ft.has_train_loss;
    m.train_loss = ft.train_loss;
    m.has_eval_loss = ft.has_eval_loss;
    m.eval_loss = ft.eval_loss;
    if ((rc = store_model_progress(st, job->id, &m)) < 0)
        goto out;
    if (strcmp(ft.status, "succeeded") == 0) {
        if (!ft.fine_tuned_model[0]) {
            rc = finish(st, cfg, job, NULL, "the training succeeded but named no model");
            goto out;
        }
        rc = finish(st, cfg, job, ft.fine_tuned_model, NULL);
    } else if (strcmp(ft.status, "failed") == 0 || strcmp(ft.status, "cancelled") == 0) {
        char why[600];
        snprintf(why, sizeof why, "the training %s%s%s", ft.status, ft.error[0] ? ": " : "",
                 ft.error);
        rc = finish(st, cfg, job, NULL, why);
    } else {
        /* queued or running: look again soon. (Polls count as retries too, so an outage late
         * in a long training backs off at the longest delay at once.) */
        rc = store_job_defer(st, job, POLL_MS, NULL);
    }
out:
    free(jsonl);
    return rc;
}
