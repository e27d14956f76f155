/* textgen/finetune.c: fine-tuning files and jobs — the /v1/files and /v1/fine_tuning/jobs
 * handlers (on the handler pool), their records under models_dir/.textgen/, and the one training
 * thread that runs jobs one at a time with train_run.
 *
 * On disk (every write atomic: temp, fsync, rename):
 *   .textgen/files/<id>.jsonl   the uploaded bytes, checked before they are kept
 *   .textgen/files/<id>.json    the file object
 *   .textgen/jobs/<id>.json     the job object (plus "suffix"), rewritten on every state change
 *                               and at most every 2 s while training
 *   .textgen/work/<id>.gguf[.ckpt]  the run's output and checkpoint; on success the model is
 *                               renamed to models_dir/<fine_tuned_model>.gguf
 *
 * Job states (status): queued -> running -> succeeded | failed | cancelled; queued -> cancelled.
 * A job found queued or running at start (the process stopped meanwhile) is queued again and
 * resumes from its checkpoint (train_params.resume): a restart loses at most checkpoint_every
 * steps. On shutdown the running job is stopped through the progress callback, which writes a
 * checkpoint, and it stays queued on disk.
 *
 * Locking: ft->mu guards the file and job lists and every job's fields; it is never held while
 * training, reading a file or writing one (records are serialized under the lock and written
 * after). */
#include "textgen/internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define TG_FT_MIN_EVAL_DOCS 20 /* fewer training documents: none held out for the eval loss */

enum { J_QUEUED, J_RUNNING, J_SUCCEEDED, J_FAILED, J_CANCELLED };
static const char *const status_names[] = {"queued", "running", "succeeded", "failed",
                                           "cancelled"};

typedef struct tg_file {
    char id[48];
    char filename[256];
    int64_t bytes;
    int64_t created_at;
} tg_file_t;

typedef struct tg_job {
    char id[48];
    char model[TG_MAX_MODEL_NAME + 1];
    char training_file[48];
    char suffix[48];
    char fine_tuned_model[TG_MAX_MODEL_NAME + 64];
    int64_t created_at, finished_at; /* 0: null */
    int64_t created_ms;              /* orders jobs made within one second */
    int status;
    int64_t trained_tokens;          /* -1: null */
    char err_code[48], err_msg[256];
    int64_t seed;
    int n_epochs, hp_steps, batch_size; /* 0: auto */
    double lr_mult;                  /* 0: auto */
    int step, steps;
    double train_loss, eval_loss;    /* NAN: null */
    bool cancel;
    int64_t saved_ms;                /* last progress write */
} tg_job_t;

struct tg_ft {
    tg_server_t *srv;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tg_file_t **files;
    size_t n_files;
    tg_job_t **jobs;
    size_t n_jobs;
    pthread_t thread;
    bool started, stop;
    char *files_dir, *jobs_dir, *work_dir;
};

/* ======================================================================================
 * records
 * ====================================================================================== */

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *job_json(const tg_job_t *j, bool internal)
{
    json_t *hp = json_object();
    json_object_set_new(hp, "n_epochs", j->n_epochs ? json_integer(j->n_epochs) : json_string("auto"));
    json_object_set_new(hp, "steps", j->hp_steps ? json_integer(j->hp_steps) : json_string("auto"));
    json_object_set_new(hp, "batch_size",
                        j->batch_size ? json_integer(j->batch_size) : json_string("auto"));
    json_object_set_new(hp, "learning_rate_multiplier",
                        j->lr_mult > 0 ? json_real(j->lr_mult) : json_string("auto"));
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:o, s:s, s:o, s:s, s:o, s:o, s:I, s:o, s:i, s:i, "
                          "s:o, s:o, s:s, s:[], s:n}",
                          "id", j->id, "object", "fine_tuning.job", "model", j->model,
                          "created_at", (json_int_t)j->created_at, "finished_at",
                          j->finished_at ? json_integer(j->finished_at) : json_null(), "status",
                          status_names[j->status], "fine_tuned_model",
                          j->status == J_SUCCEEDED ? json_string(j->fine_tuned_model) : json_null(),
                          "training_file", j->training_file, "trained_tokens",
                          j->trained_tokens >= 0 ? json_integer(j->trained_tokens) : json_null(),
                          "error",
                          j->err_code[0] ? json_pack("{s:s, s:s}", "code", j->err_code, "message",
                                                     j->err_msg)
                                         : json_null(),
                          "seed", (json_int_t)j->seed, "hyperparameters", hp, "step", j->step,
                          "steps", j->steps, "train_loss", num_or_null(j->train_loss),
                          "eval_loss", num_or_null(j->eval_loss), "organization_id", "persona",
                          "result_files", "validation_file");
    if (o && internal) {
        json_object_set_new(o, "suffix", json_string(j->suffix));
        json_object_set_new(o, "persona_fine_tuned_model", json_string(j->fine_tuned_model));
        json_object_set_new(o, "persona_created_ms", json_integer(j->created_ms));
    }
    return o;
}

static json_t *file_json(const tg_file_t *f)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "id", f->id, "object", "file",
                     "bytes", (json_int_t)f->bytes, "created_at", (json_int_t)f->created_at,
                     "filename", f->filename, "purpose", "fine-tune", "status", "processed");
}

/* Writes o (taken) to path atomically. */
static int save_json(const char *path, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_INDENT(1)) : NULL;
    json_decref(o);
    if (!text)
        return -ENOMEM;
    core_chunk_t c = {text, strlen(text)};
    int rc = core_write_file_atomic(path, &c, 1, 0600);
    free(text);
    if (rc < 0)
        core_log(CORE_LOG_ERROR, "ft.save", "path=%s error=\"%s\"", path, core_strerror(rc));
    return rc;
}

/* Serializes under the lock, writes outside it. */
static int save_job(tg_ft_t *ft, tg_job_t *j)
{
    pthread_mutex_lock(&ft->mu);
    json_t *o = job_json(j, true);
    char *path = xasprintf("%s/%s.json", ft->jobs_dir, j->id);
    pthread_mutex_unlock(&ft->mu);
    int rc = save_json(path, o);
    free(path);
    return rc;
}

static void copy_str(char *dst, size_t cap, json_t *v)
{
    snprintf(dst, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static double real_or_nan(json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static tg_job_t *job_from_json(json_t *o)
{
    tg_job_t *j = xcalloc(1, sizeof *j);
    copy_str(j->id, sizeof j->id, json_object_get(o, "id"));
    copy_str(j->model, sizeof j->model, json_object_get(o, "model"));
    copy_str(j->training_file, sizeof j->training_file, json_object_get(o, "training_file"));
    copy_str(j->suffix, sizeof j->suffix, json_object_get(o, "suffix"));
    copy_str(j->fine_tuned_model, sizeof j->fine_tuned_model,
             json_object_get(o, "persona_fine_tuned_model"));
    j->created_at = json_integer_value(json_object_get(o, "created_at"));
    j->created_ms = json_integer_value(json_object_get(o, "persona_created_ms"));
    j->finished_at = json_integer_value(json_object_get(o, "finished_at"));
    const char *st = json_string_value(json_object_get(o, "status"));
    j->status = -1;
    for (int i = 0; st && i < 5; i++)
        if (!strcmp(st, status_names[i]))
            j->status = i;
    json_t *tt = json_object_get(o, "trained_tokens");
    j->trained_tokens = json_is_integer(tt) ? json_integer_value(tt) : -1;
    json_t *e = json_object_get(o, "error");
    if (json_is_object(e)) {
        copy_str(j->err_code, sizeof j->err_code, json_object_get(e, "code"));
        copy_str(j->err_msg, sizeof j->err_msg, json_object_get(e, "message"));
    }
    j->seed = json_integer_value(json_object_get(o, "seed"));
    json_t *hp = json_object_get(o, "hyperparameters");
    j->n_epochs = (int)json_integer_value(json_object_get(hp, "n_epochs"));
    j->hp_steps = (int)json_integer_value(json_object_get(hp, "steps"));
    j->batch_size = (int)json_integer_value(json_object_get(hp, "batch_size"));
    j->lr_mult = json_is_number(json_object_get(hp, "learning_rate_multiplier"))
                     ? json_number_value(json_object_get(hp, "learning_rate_multiplier"))
                     : 0;
    j->step = (int)json_integer_value(json_object_get(o, "step"));
    j->steps = (int)json_integer_value(json_object_get(o, "steps"));
    j->train_loss = real_or_nan(json_object_get(o, "train_loss"));
    j->eval_loss = real_or_nan(json_object_get(o, "eval_loss"));
    if (strncmp(j->id, "ftjob-", 6) || j->status < 0 || !tg_model_name_valid(j->model) ||
        !tg_model_name_valid(j->fine_tuned_model) || !j->training_file[0]) {
        free(j);
        return NULL;
    }
    return j;
}

/* Reads every <id>.json of dir into o's callback. Damaged records are logged and skipped. */
static void load_dir(tg_ft_t *ft, const char *dir, bool jobs)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        char *text = NULL;
        size_t len = 0;
        json_t *o = NULL;
        if (core_read_file(path, 1 << 20, &text, &len) == 0)
            o = json_loadb(text, len, 0, NULL);
        free(text);
        if (jobs && (size_t)ft->n_jobs < (size_t)ft->srv->cfg.max_jobs) {
            tg_job_t *j = o ? job_from_json(o) : NULL;
            if (j) {
                if (j->status == J_QUEUED || j->status == J_RUNNING) {
                    /* Interrupted by a stop: it goes on from its checkpoint. */
                    j->status = J_QUEUED;
                    core_log(CORE_LOG_INFO, "ft.resume", "job=%s step=%d", j->id, j->step);
                }
                ft->jobs = xrealloc(ft->jobs, (ft->n_jobs + 1) * sizeof *ft->jobs);
                ft->jobs[ft->n_jobs++] = j;
            } else {
                core_log(CORE_LOG_WARN, "ft.load", "path=%s error=\"damaged job record\"", path);
            }
        } else if (!jobs && (size_t)ft->n_files < (size_t)ft->srv->cfg.max_files) {
            const char *id = json_string_value(json_object_get(o, "id"));
            if (id && !strncmp(id, "file-", 5) && strlen(id) < 48) {
                tg_file_t *f = xcalloc(1, sizeof *f);
                snprintf(f->id, sizeof f->id, "%s", id);
                copy_str(f->filename, sizeof f->filename, json_object_get(o, "filename"));
                f->bytes = json_integer_value(json_object_get(o, "bytes"));
                f->created_at = json_integer_value(json_object_get(o, "created_at"));
                ft->files = xrealloc(ft->files, (ft->n_files + 1) * sizeof *ft->files);
                ft->files[ft->n_files++] = f;
            } else {
                core_log(CORE_LOG_WARN, "ft.load", "path=%s error=\"damaged file record\"", path);
            }
        }
        json_decref(o);
        free(path);
    }
    if (d)
        closedir(d);
}

static int cmp_jobs(const void *a, const void *b)
{
    const tg_job_t *x = *(tg_job_t *const *)a, *y = *(tg_job_t *const *)b;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

static tg_job_t *find_job(tg_ft_t *ft, const char *id)
{
    for (size_t i = 0; i < ft->n_jobs; i++)
        if (!strcmp(ft->jobs[i]->id, id))
            return ft->jobs[i];
    return NULL;
}

static tg_file_t *find_file(tg_ft_t *ft, const char *id)
{
    for (size_t i = 0; i < ft->n_files; i++)
        if (!strcmp(ft->files[i]->id, id))
            return ft->files[i];
    return NULL;
}

/* ======================================================================================
 * the training thread
 * ====================================================================================== */

typedef struct {
    tg_ft_t *ft;
    tg_job_t *job;
} run_ctx_t;

static int on_progress(void *ud, const train_progress_t *p)
{
    run_ctx_t *c = ud;
    tg_ft_t *ft = c->ft;
    tg_job_t *j = c->job;
    int64_t now = core_now_ms();
    pthread_mutex_lock(&ft->mu);
    j->step = p->step;
    j->steps = p->steps;
    j->train_loss = p->train_loss;
    if (isfinite(p->eval_loss))
        j->eval_loss = p->eval_loss;
    bool stop = j->cancel || ft->stop;
    bool save = now - j->saved_ms >= 2000;
    if (save)
        j->saved_ms = now;
    pthread_mutex_unlock(&ft->mu);
    if (save)
        save_job(ft, j);
    return stop ? 1 : 0;
}

static void job_end(tg_ft_t *ft, tg_job_t *j, int status)
{
    pthread_mutex_lock(&ft->mu);
    j->status = status;
    if (status != J_QUEUED)
        j->finished_at = core_now_ms() / 1000;
    pthread_mutex_unlock(&ft->mu);
    save_job(ft, j);
    char q[300];
    core_log(status == J_FAILED ? CORE_LOG_ERROR : CORE_LOG_INFO, "ft.job", "job=%s status=%s error=%s",
             j->id, status_names[status], core_log_quote(j->err_msg[0] ? j->err_msg : "-", q, sizeof q));
}

static void job_fail(tg_ft_t *ft, tg_job_t *j, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void job_fail(tg_ft_t *ft, tg_job_t *j, const char *code, const char *fmt, ...)
{
    pthread_mutex_lock(&ft->mu);
    snprintf(j->err_code, sizeof j->err_code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err_msg, sizeof j->err_msg, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&ft->mu);
    job_end(ft, j, J_FAILED);
}

static void run_job(tg_ft_t *ft, tg_job_t *j)
{
    tg_server_t *srv = ft->srv;
    char err[512] = "";
    char *data = NULL, *out_path = NULL, *ckpt = NULL, *final = NULL, *base = NULL;
    size_t len = 0;
    tg_texts_t texts = {0};
    train_result_t res;
    memset(&res, 0, sizeof res);

    char *fpath = xasprintf("%s/%s.jsonl", ft->files_dir, j->training_file);
    int rc = core_read_file(fpath, srv->cfg.max_body_bytes + 1, &data, &len);
    free(fpath);
    if (rc < 0) {
        job_fail(ft, j, "file_unreadable", "The training file could not be read: %s",
                core_strerror(rc));
        goto out;
    }
    if (tg_jsonl_parse(data, len, srv->cfg.max_file_lines, &texts, err, sizeof err) < 0) {
        job_fail(ft, j, "invalid_training_file", "%s", err);
        goto out;
    }
    train_params_t p;
    train_params_default(&p);
    bool scratch = !strncmp(j->model, "scratch-", 8);
    if (scratch) {
        p.preset = j->model + 8;
    } else {
        base = xasprintf("%s/%s.gguf", srv->cfg.models_dir, j->model);
        p.base_model = base;
    }
    if (j->batch_size)
        p.batch_size = j->batch_size;
    if (j->hp_steps) {
        p.steps = j->hp_steps;
    } else if (j->n_epochs) {
        /* Epochs to steps, with ~4 bytes per token: the tokenizer is not known before the run. */
        size_t bytes = 0;
        for (size_t i = 0; i < texts.n; i++)
            bytes += texts.lens[i] + 2;
        int seq = p.seq_len > 0 ? p.seq_len : 128;
        double per_epoch = (double)bytes / 4.0 / ((double)p.batch_size * seq);
        p.steps = (int)ceil(j->n_epochs * (per_epoch < 1 ? 1 : per_epoch));
        if (p.steps > 100000)
            p.steps = 100000;
    }
    if (j->lr_mult > 0)
        p.lr = (float)((p.lr > 0 ? p.lr : scratch ? 1e-3 : 1e-4) * j->lr_mult);
    p.seed = (uint64_t)j->seed;
    p.n_threads = srv->cfg.train_threads;
    p.resume = true;
    p.model_name = j->fine_tuned_model;
    p.eval_every = p.steps >= 20 ? p.steps / 4 : 0;
    /* A persona's first corpus can be a handful of passages: holding one out would mean the
     * model never learns it. Below TG_FT_MIN_EVAL_DOCS documents nothing is held out (the eval
     * loss reported is then the training loss). */
    if (texts.n < TG_FT_MIN_EVAL_DOCS)
        p.eval_fraction = 0;
    out_path = xasprintf("%s/%s.gguf", ft->work_dir, j->id);
    ckpt = xasprintf("%s.ckpt", out_path);
    final = xasprintf("%s/%s.gguf", srv->cfg.models_dir, j->fine_tuned_model);
    pthread_mutex_lock(&ft->mu);
    j->steps = p.steps;
    j->step = 0; /* until train_run reports: a resumed run reports from its checkpoint's step */
    pthread_mutex_unlock(&ft->mu);

    run_ctx_t ctx = {ft, j};
    core_log(CORE_LOG_INFO, "ft.start", "job=%s model=%s docs=%zu steps=%d", j->id, j->model,
             texts.n, p.steps);
    atomic_store(&srv->sched.training, true);
    p.loss_from = texts.loss_from; /* chat and prompt/completion lines: learn the answers only */
    rc = train_run(&p, (const char *const *)texts.texts, texts.lens, texts.n, out_path,
                   on_progress, &ctx, &res, err, sizeof err);
    atomic_store(&srv->sched.training, false);
    if (rc < 0) {
        job_fail(ft, j, "training_failed", "%s", err[0] ? err : "training failed");
        unlink(ckpt);
        goto out;
    }
    if (rc == 1) {
        pthread_mutex_lock(&ft->mu);
        bool cancelled = j->cancel;
        pthread_mutex_unlock(&ft->mu);
        if (cancelled) {
            job_end(ft, j, J_CANCELLED);
            unlink(ckpt);
        } else {
            job_end(ft, j, J_QUEUED); /* shutting down: resumes at the next start */
        }
        goto out;
    }
    if (rename(out_path, final) < 0) {
        job_fail(ft, j, "model_write_failed", "The model could not be moved into place: %s",
                strerror(errno));
        goto out;
    }
    core_fsync_dir(srv->cfg.models_dir);
    unlink(ckpt);
    pthread_mutex_lock(&ft->mu);
    j->trained_tokens = (int64_t)res.tokens_trained;
    j->step = res.steps_done;
    j->train_loss = res.train_loss;
    if (isfinite(res.eval_loss))
        j->eval_loss = res.eval_loss;
    pthread_mutex_unlock(&ft->mu);
    job_end(ft, j, J_SUCCEEDED);
    core_log(CORE_LOG_INFO, "ft.done", "job=%s model=%s steps=%d loss=%.4f eval_loss=%.4f "
             "seconds=%.1f tokens=%llu", j->id, j->fine_tuned_model, res.steps_done,
             res.train_loss, res.eval_loss, res.seconds, (unsigned long long)res.tokens_trained);
out:
    free(data);
    free(base);
    free(out_path);
    free(ckpt);
    free(final);
    tg_texts_destroy(&texts);
}

static void *train_main(void *arg)
{
    tg_ft_t *ft = arg;
    for (;;) {
        pthread_mutex_lock(&ft->mu);
        tg_job_t *next = NULL;
        while (!ft->stop) {
            for (size_t i = 0; i < ft->n_jobs && !next; i++)
                if (ft->jobs[i]->status == J_QUEUED)
                    next = ft->jobs[i];
            if (next)
                break;
            pthread_cond_wait(&ft->cv, &ft->mu);
        }
        if (ft->stop) {
            pthread_mutex_unlock(&ft->mu);
            break;
        }
        next->status = J_RUNNING;
        pthread_mutex_unlock(&ft->mu);
        save_job(ft, next);
        run_job(ft, next);
    }
    return NULL;
}

int tg__ft_open(tg_server_t *srv, tg_ft_t **out)
{
    tg_ft_t *ft = xcalloc(1, sizeof *ft);
    ft->srv = srv;
    pthread_mutex_init(&ft->mu, NULL);
    pthread_cond_init(&ft->cv, NULL);
    ft->files_dir = xasprintf("%s/files", srv->state_dir);
    ft->jobs_dir = xasprintf("%s/jobs", srv->state_dir);
    ft->work_dir = xasprintf("%s/work", srv->state_dir);
    int rc;
    if ((rc = core_mkdirs(ft->files_dir)) < 0 || (rc = core_mkdirs(ft->jobs_dir)) < 0 ||
        (rc = core_mkdirs(ft->work_dir)) < 0) {
        core_log(CORE_LOG_ERROR, "ft.open", "dir=%s error=\"%s\"", srv->state_dir,
                 core_strerror(rc));
        tg__ft_free(&ft);
        return rc;
    }
    load_dir(ft, ft->files_dir, false);
    load_dir(ft, ft->jobs_dir, true);
    if (ft->n_jobs > 1)
        qsort(ft->jobs, ft->n_jobs, sizeof *ft->jobs, cmp_jobs);
    if (pthread_create(&ft->thread, NULL, train_main, ft) != 0) {
        tg__ft_free(&ft);
        return -EAGAIN;
    }
    ft->started = true;
    core_log(CORE_LOG_INFO, "ft.open", "files=%zu jobs=%zu", ft->n_files, ft->n_jobs);
    *out = ft;
    return 0;
}

void tg__ft_free(tg_ft_t **pft)
{
    tg_ft_t *ft = pft ? *pft : NULL;
    if (!ft)
        return;
    if (ft->started) {
        pthread_mutex_lock(&ft->mu);
        ft->stop = true;
        pthread_cond_broadcast(&ft->cv);
        pthread_mutex_unlock(&ft->mu);
        pthread_join(ft->thread, NULL);
    }
    for (size_t i = 0; i < ft->n_files; i++)
        free(ft->files[i]);
    for (size_t i = 0; i < ft->n_jobs; i++)
        free(ft->jobs[i]);
    free(ft->files);
    free(ft->jobs);
    free(ft->files_dir);
    free(ft->jobs_dir);
    free(ft->work_dir);
    pthread_mutex_destroy(&ft->mu);
    pthread_cond_destroy(&ft->cv);
    free(ft);
    *pft = NULL;
}

/* ======================================================================================
 * handlers (pool threads)
 * ====================================================================================== */

static bool ctype_is(const char *ct, const char *what)
{
    size_t n = strlen(what);
    return ct && !strncasecmp(ct, what, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

void tg__handle_file_upload(tg_req_t *r)
{
    tg_ft_t *ft = r->srv->ft;
    const char *data = r->body.data ? r->body.data : "";
    size_t len = r->body.len;
    char *purpose = NULL, *filename = NULL, *meta_path = NULL, *data_path = NULL;
    char err[256];
    if (ctype_is(r->content_type, "multipart/form-data")) {
        tg_multipart_t mp;
        if (tg_multipart_parse(r->content_type, data, len, &mp, err, sizeof err) < 0) {
            tg__reply_errorf(r, 400, "invalid_multipart", "%s", err);
            goto out;
        }
        purpose = mp.purpose ? xstrndup(mp.purpose, mp.purpose_len) : NULL;
        filename = mp.filename ? xstrndup(mp.filename, mp.filename_len) : NULL;
        data = mp.file;
        len = mp.file_len;
    } else if (ctype_is(r->content_type, "application/jsonl") ||
               ctype_is(r->content_type, "application/x-ndjson") ||
               ctype_is(r->content_type, "application/x-jsonlines")) {
        purpose = tg__query_get(r, "purpose");
        filename = tg__query_get(r, "filename");
    } else {
        tg__reply_errorf(r, 400, "unsupported_content_type",
                         "Send the file as multipart/form-data (fields purpose and file) or as "
                         "application/jsonl with ?purpose=fine-tune.");
        goto out;
    }
    if (!purpose || strcmp(purpose, "fine-tune") != 0) {
        tg__reply_errorf(r, 400, "invalid_purpose", "'purpose' must be \"fine-tune\".");
        goto out;
    }
    if (filename && (strlen(filename) > 200 || !core_utf8_valid(filename, strlen(filename)))) {
        tg__reply_errorf(r, 400, "invalid_filename", "The file name must be 1 to 200 bytes of UTF-8.");
        goto out;
    }
    if (tg_jsonl_parse(data, len, r->srv->cfg.max_file_lines, NULL, err, sizeof err) < 0) {
        tg__reply_errorf(r, 400, "invalid_file", "The file is not valid fine-tuning JSONL: %s",
                         err);
        goto out;
    }
    tg_file_t *f = xcalloc(1, sizeof *f);
    tg__new_id("file-", f->id, sizeof f->id);
    snprintf(f->filename, sizeof f->filename, "%s", filename && *filename ? filename : "upload.jsonl");
    f->bytes = (int64_t)len;
    f->created_at = core_now_ms() / 1000;
    pthread_mutex_lock(&ft->mu);
    bool full = ft->n_files >= (size_t)r->srv->cfg.max_files;
    pthread_mutex_unlock(&ft->mu);
    if (full) {
        free(f);
        tg__reply_errorf(r, 429, "too_many_files", "This server keeps at most %d files.",
                         r->srv->cfg.max_files);
        goto out;
    }
    data_path = xasprintf("%s/%s.jsonl", ft->files_dir, f->id);
    meta_path = xasprintf("%s/%s.json", ft->files_dir, f->id);
    core_chunk_t c = {data, len};
    int rc = core_write_file_atomic(data_path, &c, 1, 0600);
    if (rc == 0)
        rc = save_json(meta_path, file_json(f));
    if (rc < 0) {
        unlink(data_path);
        free(f);
        core_log(CORE_LOG_ERROR, "ft.file", "error=\"%s\"", core_strerror(rc));
        tg__reply_errorf(r, 500, "internal_error", "The file could not be stored.");
        goto out;
    }
    pthread_mutex_lock(&ft->mu);
    ft->files = xrealloc(ft->files, (ft->n_files + 1) * sizeof *ft->files);
    ft->files[ft->n_files++] = f;
    json_t *o = file_json(f);
    pthread_mutex_unlock(&ft->mu);
    tg__reply_json(r, 200, o);
out:
    free(purpose);
    free(filename);
    free(meta_path);
    free(data_path);
}

void tg__handle_file_get(tg_req_t *r, const char *id)
{
    tg_ft_t *ft = r->srv->ft;
    pthread_mutex_lock(&ft->mu);
    tg_file_t *f = find_file(ft, id);
    json_t *o = f ? file_json(f) : NULL;
    pthread_mutex_unlock(&ft->mu);
    if (!o)
        tg__reply_errorf(r, 404, "file_not_found", "No file has the id '%.64s'.", id);
    else
        tg__reply_json(r, 200, o);
}

void tg__handle_file_list(tg_req_t *r)
{
    tg_ft_t *ft = r->srv->ft;
    json_t *data = json_array();
    pthread_mutex_lock(&ft->mu);
    for (size_t i = 0; i < ft->n_files; i++)
        json_array_append_new(data, file_json(ft->files[i]));
    pthread_mutex_unlock(&ft->mu);
    tg__reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* A hyperparameter: an integer in [lo, hi], "auto" or absent (0). -1 on a bad value. */
static int hp_int(json_t *hp, const char *key, int lo, int hi, int *out, tg_error_t *err)
{
    json_t *v = json_object_get(hp, key);
    *out = 0;
    if (!v || json_is_null(v) || (json_is_string(v) && !strcmp(json_string_value(v), "auto")))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        tg_error_set(err, 400, "invalid_value", "hyperparameters.%s must be \"auto\" or an integer "
                     "from %d to %d.", key, lo, hi);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

void tg__handle_job_create(tg_req_t *r)
{
    tg_server_t *srv = r->srv;
    tg_ft_t *ft = srv->ft;
    tg_error_t err;
    tg_job_t *j = xcalloc(1, sizeof *j);
    json_error_t jerr;
    json_t *o = json_loadb(r->body.data ? r->body.data : "", r->body.len, JSON_REJECT_DUPLICATES,
                           &jerr);
    if (!json_is_object(o)) {
        tg_error_set(&err, 400, "invalid_json", "The body must be a JSON object%s%s.",
                     o ? "" : ": ", o ? "" : jerr.text);
        goto fail;
    }
    json_t *tf = json_object_get(o, "training_file"), *model = json_object_get(o, "model");
    if (!json_is_string(tf) || !json_is_string(model)) {
        tg_error_set(&err, 400, "missing_required_parameter",
                     "'training_file' and 'model' are required strings.");
        goto fail;
    }
    const char *mname = json_string_value(model);
    if (!tg_model_name_valid(mname)) {
        tg_error_set(&err, 404, "model_not_found", "The model '%.128s' does not exist.", mname);
        goto fail;
    }
    snprintf(j->model, sizeof j->model, "%s", mname);
    if (!strncmp(mname, "scratch-", 8)) {
        llm_config_t c;
        if (train_preset(mname + 8, 1024, &c) < 0) {
            tg_error_set(&err, 404, "model_not_found",
                         "'%s' is not a preset: use scratch-tiny, scratch-small, scratch-base or "
                         "scratch-large.", mname);
            goto fail;
        }
    } else {
        tg_model_t *m = NULL;
        if (tg__models_acquire(&srv->models, mname, &m, &err) < 0)
            goto fail;
        nn_type_t t = llm_model_type(m->model);
        tg__models_release(&srv->models, m);
        if (t != NN_F32 && t != NN_F16) {
            tg_error_set(&err, 400, "invalid_base_model",
                         "The base model is %s: only F32 and F16 models can be trained further.",
                         nn_type_name(t));
            goto fail;
        }
    }
    json_t *suffix = json_object_get(o, "suffix");
    if (suffix && !json_is_null(suffix)) {
        const char *sfx = json_is_string(suffix) ? json_string_value(suffix) : "";
        size_t n = strlen(sfx);
        bool ok = n >= 1 && n <= 40;
        for (size_t i = 0; ok && i < n; i++)
            ok = (sfx[i] >= 'a' && sfx[i] <= 'z') || (sfx[i] >= 'A' && sfx[i] <= 'Z') ||
                 (sfx[i] >= '0' && sfx[i] <= '9') || sfx[i] == '-' || sfx[i] == '_';
        if (!ok) {
            tg_error_set(&err, 400, "invalid_value",
                         "'suffix' must be 1 to 40 characters of letters, digits, - and _.");
            goto fail;
        }
        snprintf(j->suffix, sizeof j->suffix, "%s", sfx);
    }
    json_t *seed = json_object_get(o, "seed");
    j->seed = 42;
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed) || json_integer_value(seed) < 0) {
            tg_error_set(&err, 400, "invalid_value", "'seed' must be a non-negative integer.");
            goto fail;
        }
        j->seed = json_integer_value(seed);
    }
    json_t *hp = json_object_get(o, "hyperparameters");
    if (hp && !json_is_null(hp) && !json_is_object(hp)) {
        tg_error_set(&err, 400, "invalid_type", "'hyperparameters' must be an object.");
        goto fail;
    }
    if (hp_int(hp, "n_epochs", 1, 100, &j->n_epochs, &err) < 0 ||
        hp_int(hp, "steps", 1, 100000, &j->hp_steps, &err) < 0 ||
        hp_int(hp, "batch_size", 1, 256, &j->batch_size, &err) < 0)
        goto fail;
    json_t *lr = json_object_get(hp, "learning_rate_multiplier");
    if (lr && !json_is_null(lr) && !(json_is_string(lr) && !strcmp(json_string_value(lr), "auto"))) {
        if (!json_is_number(lr) || !(json_number_value(lr) > 0) || json_number_value(lr) > 100) {
            tg_error_set(&err, 400, "invalid_value",
                         "hyperparameters.learning_rate_multiplier must be \"auto\" or a number "
                         "in (0, 100].");
            goto fail;
        }
        j->lr_mult = json_number_value(lr);
    }
    tg__new_id("ftjob-", j->id, sizeof j->id);
    snprintf(j->fine_tuned_model, sizeof j->fine_tuned_model, "ft-%s-%s", j->model,
             j->suffix[0] ? j->suffix : j->id + strlen(j->id) - 8);
    if (!tg_model_name_valid(j->fine_tuned_model)) {
        tg_error_set(&err, 400, "invalid_value", "The resulting model name would be too long.");
        goto fail;
    }
    j->created_ms = core_now_ms();
    j->created_at = j->created_ms / 1000;
    j->status = J_QUEUED;
    j->trained_tokens = -1;
    j->train_loss = j->eval_loss = NAN;
    j->steps = j->hp_steps;

    pthread_mutex_lock(&ft->mu);
    if (!find_file(ft, json_string_value(tf))) {
        pthread_mutex_unlock(&ft->mu);
        tg_error_set(&err, 404, "file_not_found", "No file has the id '%.64s'.",
                     json_string_value(tf));
        goto fail;
    }
    if (ft->n_jobs >= (size_t)srv->cfg.max_jobs) {
        pthread_mutex_unlock(&ft->mu);
        tg_error_set(&err, 429, "too_many_jobs", "This server keeps at most %d jobs.",
                     srv->cfg.max_jobs);
        goto fail;
    }
    snprintf(j->training_file, sizeof j->training_file, "%s", json_string_value(tf));
    pthread_mutex_unlock(&ft->mu);
    /* On disk before it is listed or run: a job the client saw is never lost. */
    char *path = xasprintf("%s/%s.json", ft->jobs_dir, j->id);
    int rc = save_json(path, job_json(j, true));
    free(path);
    if (rc < 0) {
        tg_error_set(&err, 500, "internal_error", "The job could not be stored.");
        goto fail;
    }
    pthread_mutex_lock(&ft->mu);
    ft->jobs = xrealloc(ft->jobs, (ft->n_jobs + 1) * sizeof *ft->jobs);
    ft->jobs[ft->n_jobs++] = j;
    json_t *out = job_json(j, false);
    pthread_cond_broadcast(&ft->cv);
    pthread_mutex_unlock(&ft->mu);
    core_log(CORE_LOG_INFO, "ft.create", "job=%s model=%s file=%s", j->id, j->model,
             j->training_file);
    json_decref(o);
    tg__reply_json(r, 200, out);
    return;
fail:
    json_decref(o);
    free(j);
    tg__reply_error(r, &err);
}

void tg__handle_job_get(tg_req_t *r, const char *id)
{
    tg_ft_t *ft = r->srv->ft;
    pthread_mutex_lock(&ft->mu);
    tg_job_t *j = find_job(ft, id);
    json_t *o = j ? job_json(j, false) : NULL;
    pthread_mutex_unlock(&ft->mu);
    if (!o)
        tg__reply_errorf(r, 404, "job_not_found", "No fine-tuning job has the id '%.64s'.", id);
    else
        tg__reply_json(r, 200, o);
}

void tg__handle_job_list(tg_req_t *r)
{
    tg_ft_t *ft = r->srv->ft;
    json_t *data = json_array();
    pthread_mutex_lock(&ft->mu);
    /* newest first, as OpenAI lists them */
    for (size_t i = ft->n_jobs; i-- > 0;)
        json_array_append_new(data, job_json(ft->jobs[i], false));
    pthread_mutex_unlock(&ft->mu);
    tg__reply_json(r, 200, json_pack("{s:s, s:o, s:b}", "object", "list", "data", data, "has_more",
                                     0));
}

void tg__handle_job_cancel(tg_req_t *r, const char *id)
{
    tg_ft_t *ft = r->srv->ft;
    pthread_mutex_lock(&ft->mu);
    tg_job_t *j = find_job(ft, id);
    bool save = false;
    if (j && j->status == J_QUEUED) {
        j->status = J_CANCELLED;
        j->finished_at = core_now_ms() / 1000;
        save = true;
    } else if (j && j->status == J_RUNNING) {
        j->cancel = true; /* the training thread stops at its next step */
    }
    json_t *o = j ? job_json(j, false) : NULL;
    pthread_mutex_unlock(&ft->mu);
    if (!o) {
        tg__reply_errorf(r, 404, "job_not_found", "No fine-tuning job has the id '%.64s'.", id);
        return;
    }
    if (save)
        save_job(ft, j);
    tg__reply_json(r, 200, o);
}
