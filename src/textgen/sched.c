/* textgen/sched.c: completions — the request handler (parse, find the model, tokenize, queue)
 * and the one inference scheduler thread.
 *
 * The scheduler owns the inference nn_pool and every active generation. Each turn it takes the
 * newly submitted generations, then gives every active one a single llm_gen_step (the first step
 * of a generation processes its whole prompt as a batch; later steps make one token each), in
 * submission order: concurrent requests advance at the same token rate. A stream whose client
 * has not read TG_STREAM_HIGH bytes is skipped until the loop drains it, and a generation whose
 * client went away is dropped at its next turn.
 *
 * Generation job states: SUBMITTED (in sched->incoming) -> ACTIVE (the thread's list) ->
 * finished (answer or final event written; model released; request unreferenced). The number
 * submitted + active is bounded by max_queue; beyond it the handler answers 503.
 *
 * While a fine-tuning job trains, inference runs on the scheduler thread alone (no pool): the
 * training thread already uses every core, and two thread pools spinning on two cores would slow
 * both. Answers come slower, but they come. */
#include "textgen/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tg_gen_job {
    tg_req_t *r;
    tg_model_t *model;
    llm_gen_t *gen;
    tg_gen_req_t req;
    char id[48];
    int64_t created;
    core_buf_t text;  /* a non-streamed answer, gathered */
    struct tg_gen_job *next;
};

static void job_free(tg_server_t *s, tg_gen_job_t *j)
{
    if (!j)
        return;
    llm_gen_free(&j->gen);
    tg__models_release(&s->models, j->model);
    tg_gen_req_destroy(&j->req);
    core_buf_destroy(&j->text);
    tg__req_unref(j->r);
    free(j);
}

/* Appends len bytes of model output to b as valid UTF-8: a generation may produce byte tokens
 * that never form a character, and JSON strings cannot carry those (U+FFFD instead). */
static void append_utf8(core_buf_t *b, const char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = 1;
        unsigned char c = (unsigned char)p[i];
        if (c >= 0xf0)
            n = 4;
        else if (c >= 0xe0)
            n = 3;
        else if (c >= 0xc0)
            n = 2;
        if (c != 0 && i + n <= len && core_utf8_valid(p + i, n)) {
            core_buf_append(b, p + i, n);
            i += n;
        } else {
            core_buf_append(b, "\xef\xbf\xbd", 3);
            i++;
        }
    }
}

static json_t *text_value(const char *p, size_t len)
{
    core_buf_t b;
    core_buf_init(&b);
    append_utf8(&b, p, len);
    json_t *v = json_stringn(b.data ? b.data : "", b.len);
    core_buf_destroy(&b);
    return v ? v : json_string("");
}

static json_t *usage_json(const tg_gen_job_t *j)
{
    int p = llm_gen_prompt_tokens(j->gen), c = llm_gen_completion_tokens(j->gen);
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", p, "completion_tokens", c,
                     "total_tokens", p + c);
}

/* One event of a stream: a delta (chat) or text piece (completions); finish_reason NULL while
 * generating. */
static void send_chunk(tg_gen_job_t *j, json_t *delta_or_text, const char *finish, bool last)
{
    bool chat = j->req.chat;
    json_t *choice = json_pack("{s:i, s:o, s:o}", "index", 0, chat ? "delta" : "text",
                               delta_or_text, "finish_reason",
                               finish ? json_string(finish) : json_null());
    if (!chat)
        json_object_set_new(choice, "logprobs", json_null());
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", j->id, "object",
                          chat ? "chat.completion.chunk" : "text_completion", "created",
                          (json_int_t)j->created, "model", j->req.model, "choices", choice);
    if (finish && o)
        json_object_set_new(o, "usage", usage_json(j));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    core_buf_t b;
    core_buf_init(&b);
    tg_sse_append(&b, text ? text : "{}");
    free(text);
    if (last)
        core_buf_puts(&b, "data: [DONE]\n\n");
    tg__stream_write(j->r, b.data, b.len, last);
    core_buf_destroy(&b);
}

static void finish(tg_gen_job_t *j, int state)
{
    tg_req_t *r = j->r;
    const char *reason = state == LLM_GEN_STOP ? "stop" : "length";
    pthread_mutex_lock(&r->mu);
    r->log_prompt_tokens = llm_gen_prompt_tokens(j->gen);
    r->log_completion_tokens = llm_gen_completion_tokens(j->gen);
    pthread_mutex_unlock(&r->mu);
    if (j->req.stream) {
        send_chunk(j, j->req.chat ? json_object() : json_string(""), reason, true);
        return;
    }
    json_t *choice;
    if (j->req.chat)
        choice = json_pack("{s:i, s:{s:s, s:o}, s:s}", "index", 0, "message", "role", "assistant",
                           "content", text_value(j->text.data, j->text.len), "finish_reason",
                           reason);
    else
        choice = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "text",
                           text_value(j->text.data, j->text.len), "logprobs", "finish_reason",
                           reason);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", j->id, "object",
                          j->req.chat ? "chat.completion" : "text_completion", "created",
                          (json_int_t)j->created, "model", j->req.model, "choices", choice,
                          "usage", usage_json(j));
    tg__reply_json(r, 200, o);
}

static void fail(tg_gen_job_t *j, const char *why)
{
    core_log(CORE_LOG_ERROR, "gen.failed", "req=%s model=%s error=\"%s\"", j->r->id, j->req.model,
             why);
    if (j->req.stream) {
        tg_error_t e;
        tg_error_set(&e, 500, "generation_failed", "%s", why);
        char *err = tg_error_json(&e);
        core_buf_t b;
        core_buf_init(&b);
        err[strcspn(err, "\n")] = '\0';
        tg_sse_append(&b, err);
        core_buf_puts(&b, "data: [DONE]\n\n");
        free(err);
        tg__stream_write(j->r, b.data, b.len, true);
        core_buf_destroy(&b);
    } else {
        tg__reply_errorf(j->r, 500, "generation_failed", "%s", why);
    }
}

/* Returns true when the job is finished (and may be freed). */
static bool step(tg_sched_t *s, tg_gen_job_t *j)
{
    const char *text = NULL;
    size_t len = 0;
    nn_pool_t *pool = atomic_load(&s->training) ? NULL : s->pool;
    int st = llm_gen_step(j->gen, pool, &text, &len);
    if (st < 0) {
        fail(j, "the model failed to evaluate a token");
        return true;
    }
    if (len > 0) {
        if (j->req.stream)
            send_chunk(j,
                       j->req.chat ? json_pack("{s:o}", "content", text_value(text, len))
                                   : text_value(text, len),
                       NULL, false);
        else
            core_buf_append(&j->text, text, len);
    }
    if (st != LLM_GEN_RUNNING) {
        finish(j, st);
        return true;
    }
    return false;
}

/* True when the client has not read enough of its stream: the job waits its turn. */
static bool stream_blocked(tg_gen_job_t *j)
{
    if (!j->req.stream)
        return false;
    tg_req_t *r = j->r;
    pthread_mutex_lock(&r->mu);
    bool b = r->out.len - r->out_off > TG_STREAM_HIGH;
    r->blocked = b;
    pthread_mutex_unlock(&r->mu);
    return b;
}

static void *sched_main(void *arg)
{
    tg_sched_t *s = arg;
    tg_server_t *srv = s->srv;
    tg_gen_job_t *head = NULL, *tail = NULL;
    int idle_turns = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (idle_turns > 0 && !s->incoming && !s->stop) {
            /* Every active stream is waiting for its client: sleep until one is drained (kick)
             * or a little while, whichever comes first. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        while (!head && !s->incoming && !s->stop) {
            /* Idle: wake now and then to unload the models nobody uses any more. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0 && srv->cfg.model_idle_s > 0) {
                pthread_mutex_unlock(&s->mu);
                tg__models_sweep(&srv->models, (int64_t)srv->cfg.model_idle_s * 1000);
                pthread_mutex_lock(&s->mu);
            }
        }
        tg_gen_job_t *in = s->incoming;
        s->incoming = NULL;
        bool stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        /* incoming is newest-first: append in submission order */
        tg_gen_job_t *rev = NULL;
        while (in) {
            tg_gen_job_t *n = in->next;
            in->next = rev;
            rev = in;
            in = n;
        }
        while (rev) {
            tg_gen_job_t *n = rev->next;
            rev->next = NULL;
            if (tail)
                tail->next = rev;
            else
                head = rev;
            tail = rev;
            rev = n;
        }
        if (stop)
            break;
        int progressed = 0, finished = 0;
        tg_gen_job_t **pp = &head;
        tail = NULL;
        while (*pp) {
            tg_gen_job_t *j = *pp;
            bool done = false;
            if (atomic_load(&j->r->cancelled)) {
                core_log(CORE_LOG_INFO, "gen.cancelled", "req=%s model=%s completion_tokens=%d",
                         j->r->id, j->req.model, llm_gen_completion_tokens(j->gen));
                done = true;
            } else if (!stream_blocked(j)) {
                done = step(s, j);
                progressed++;
            }
            if (done) {
                *pp = j->next;
                job_free(srv, j);
                finished++;
            } else {
                tail = j;
                pp = &j->next;
            }
        }
        if (finished) {
            pthread_mutex_lock(&s->mu);
            s->n_jobs -= finished;
            pthread_mutex_unlock(&s->mu);
        }
        idle_turns = head && progressed == 0 ? idle_turns + 1 : 0;
    }
    /* Shutting down: every remaining generation ends now. */
    int n = 0;
    while (head) {
        tg_gen_job_t *j = head;
        head = j->next;
        if (!atomic_load(&j->r->cancelled))
            fail(j, "the server is shutting down");
        job_free(srv, j);
        n++;
    }
    pthread_mutex_lock(&s->mu);
    s->n_jobs -= n;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int tg__sched_start(tg_sched_t *s, tg_server_t *srv, int threads, int max_jobs)
{
    memset(s, 0, sizeof *s);
    s->srv = srv;
    s->max_jobs = max_jobs > 0 ? max_jobs : 16;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->training, false);
    if (nn_pool_create(threads, &s->pool) < 0)
        return -ENOMEM;
    if (pthread_create(&s->thread, NULL, sched_main, s) != 0) {
        nn_pool_free(&s->pool);
        return -EAGAIN;
    }
    s->started = true;
    return 0;
}

void tg__sched_stop(tg_sched_t *s)
{
    if (!s->srv)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        s->started = false;
    }
    nn_pool_free(&s->pool);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    s->srv = NULL;
}

void tg__sched_kick(tg_sched_t *s)
{
    if (!s->srv)
        return; /* stopped (connections closing during shutdown) */
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ======================================================================================
 * the handler
 * ====================================================================================== */

void tg__handle_completion(tg_req_t *r, bool chat)
{
    tg_server_t *srv = r->srv;
    tg_sched_t *s = &srv->sched;
    tg_error_t err;
    tg_gen_job_t *j = xcalloc(1, sizeof *j);
    char *prompt = NULL;
    core_buf_init(&j->text);
    j->r = tg__req_ref(r);
    if (tg_gen_req_parse(r->body.data, r->body.len, chat, srv->cfg.max_messages, &j->req, &err) <
        0)
        goto fail;
    pthread_mutex_lock(&r->mu);
    snprintf(r->log_model, sizeof r->log_model, "%s", j->req.model);
    pthread_mutex_unlock(&r->mu);
    if (tg__models_acquire(&srv->models, j->req.model, &j->model, &err) < 0)
        goto fail;
    const llm_config_t *mc = llm_model_config(j->model->model);
    if (j->req.max_tokens > mc->n_ctx) {
        tg_error_set(&err, 400, "invalid_value",
                     "max_tokens is %d, but the model's context holds %d tokens.",
                     j->req.max_tokens, mc->n_ctx);
        goto fail;
    }
    prompt = chat ? llm_chat_prompt(j->req.messages, j->req.n_messages, true)
                  : xstrdup(j->req.prompt);
    if (!prompt) {
        tg_error_set(&err, 500, "internal_error", "The chat prompt could not be built.");
        goto fail;
    }
    llm_gen_params_t gp = {
        .sampling = j->req.sampling,
        .max_tokens = j->req.max_tokens,
        .stop = (const char *const *)j->req.stop,
        .n_stop = j->req.n_stop,
        /* The chat template's markers are control tokens; a plain prompt is taken literally. */
        .parse_special = chat,
    };
    char gerr[256] = "";
    if (llm_gen_new(j->model->model, prompt, strlen(prompt), &gp, &j->gen, gerr, sizeof gerr) <
        0) {
        tg_error_set(&err, 400, "context_length_exceeded", "%s",
                     gerr[0] ? gerr : "The prompt does not fit the model's context.");
        goto fail;
    }
    tg__new_id(chat ? "chatcmpl-" : "cmpl-", j->id, sizeof j->id);
    j->created = core_now_ms() / 1000;

    pthread_mutex_lock(&s->mu);
    if (s->n_jobs >= s->max_jobs || s->stop) {
        int max = s->max_jobs;
        pthread_mutex_unlock(&s->mu);
        tg_error_set(&err, 503, "queue_full",
                     "The server is busy: %d generations are already queued. Try again later.",
                     max);
        goto fail;
    }
    s->n_jobs++;
    if (j->req.stream) {
        /* The stream opens now, with the role, so the client sees the answer start even while
         * other generations are ahead of it. */
        tg__stream_start(r);
        if (chat)
            send_chunk(j, json_pack("{s:s}", "role", "assistant"), NULL, false);
    }
    j->next = s->incoming;
    s->incoming = j;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    free(prompt);
    return;
fail:
    free(prompt);
    tg__reply_error(r, &err);
    job_free(srv, j);
}
