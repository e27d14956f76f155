/* textgen/internal.h: what the service's files share — the server, one HTTP request and its
 * response queue, the model cache, the inference scheduler and the fine-tuning store.
 *
 * A request (tg_req_t) is reference-counted, because three threads may hold it:
 *   - the event loop, from LWS_CALLBACK_HTTP until the connection closes (pss->req);
 *   - a handler on the pool, while it runs;
 *   - the scheduler, while the request's generation is active.
 * Invariants:
 *   1. r->wsi is touched on the loop thread only; it is NULL once the connection closed.
 *   2. The response (status, content type, out bytes, done) is written under r->mu by whoever
 *      answers, then tg__req_wake() queues the request for the loop, which writes it out from
 *      LWS_CALLBACK_HTTP_WRITEABLE. Nothing else crosses threads.
 *   3. r->cancelled is set by the loop when the client goes away; the scheduler then drops the
 *      generation at its next turn.
 *   4. A request is freed by whoever drops the last reference, never while another holds it.
 *
 * Response states: NONE --(handler answers: status set)--> ANSWERED --(loop wrote headers)-->
 * SENDING --(done and out empty)--> complete (transaction ends, connection kept or closed). */
#ifndef PERSONA_TEXTGEN_INTERNAL_H
#define PERSONA_TEXTGEN_INTERNAL_H

#include "textgen/textgen.h"

#include "llm/llm.h"
#include "train/train.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

typedef struct tg_req tg_req_t;
typedef struct tg_ft tg_ft_t;

/* A stream's unsent bytes beyond which its generation waits for the client to read. */
#define TG_STREAM_HIGH (256 * 1024)

struct tg_req {
    tg_server_t *srv;
    atomic_int refs;
    atomic_bool cancelled;     /* the client went away */
    struct lws *wsi;           /* loop thread only */
    char id[20];
    int64_t t0_ns;

    /* request, filled on the loop before any handler runs, read-only afterwards */
    char method[8];
    char *path;
    char *query;               /* raw "a=b&c=d" or NULL */
    char *authorization;
    char *content_type;
    uint64_t content_length;
    bool has_length;
    core_buf_t body;
    bool body_too_large;
    uint64_t body_reserved;    /* counted in srv->body_bytes until the request is freed */
    bool dispatched;

    /* response, under mu */
    pthread_mutex_t mu;
    int status;                /* 0 until answered */
    char ctype[48];
    bool chunked;              /* a stream: chunked transfer, bytes appended while generating */
    bool done;                 /* no more bytes will be appended */
    core_buf_t out;
    size_t out_off;            /* bytes of out already written */
    bool wake_queued;
    bool blocked;              /* the scheduler skips this stream until the loop drains it */

    /* loop-only sending state */
    bool headers_sent;
    bool close_after;
    bool head;                 /* HEAD: headers only */
    const char *allow;         /* static: the Allow header of a 405 */
    bool lingering;            /* answered early; reading and dropping the rest of the body */
    bool logged;
    uint64_t bytes_in, bytes_out;

    /* for the request log, under mu (set by handlers and the scheduler) */
    char log_model[TG_MAX_MODEL_NAME + 1];
    int log_prompt_tokens, log_completion_tokens;
};

tg_req_t *tg__req_ref(tg_req_t *r);
void tg__req_unref(tg_req_t *r);
/* Answers r with a whole body (taken; may be NULL with len 0) and wakes the loop. */
void tg__reply(tg_req_t *r, int status, const char *ctype, char *body, size_t len);
void tg__reply_json(tg_req_t *r, int status, json_t *o); /* takes o */
void tg__reply_error(tg_req_t *r, const tg_error_t *e);
void tg__reply_errorf(tg_req_t *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Starts a chunked event-stream answer (200, text/event-stream). */
void tg__stream_start(tg_req_t *r);
/* Appends bytes to a stream; with last, ends it. Returns the unsent byte count afterwards. */
size_t tg__stream_write(tg_req_t *r, const char *p, size_t n, bool last);
/* Queues r for the loop (which then writes what is pending). Any thread. */
void tg__req_wake(tg_req_t *r);

/* ======================================================================================
 * model cache (models.c): NAME.gguf files of the models folder, loaded on first use, kept
 * while in use, at most max_models loaded; the least recently used idle one goes first.
 * ====================================================================================== */

typedef struct tg_model {
    char name[TG_MAX_MODEL_NAME + 1];
    llm_model_t *model;
    int refs;                  /* generations using it (under the cache's mutex) */
    int64_t last_used_ms;
    int64_t mtime_ns;          /* of the file when loaded: a replaced file is loaded anew */
    bool stale;                /* replaced on disk: freed when the last user lets go */
} tg_model_t;

typedef struct tg_models {
    pthread_mutex_t mu;
    char *dir;
    int max;
    tg_model_t **m;
    int n;
} tg_models_t;

void tg__models_init(tg_models_t *c, const char *dir, int max);
void tg__models_destroy(tg_models_t *c);
/* Loads (or finds) NAME.gguf. 0 with a reference, or -1 with 404 model_not_found / 500. */
int tg__models_acquire(tg_models_t *c, const char *name, tg_model_t **out, tg_error_t *err);
void tg__models_release(tg_models_t *c, tg_model_t *m);
/* Unloads the models no generation has used for idle_ms. */
void tg__models_sweep(tg_models_t *c, int64_t idle_ms);
/* {"object":"list","data":[...]} of every NAME.gguf in the folder. */
json_t *tg__models_list(tg_models_t *c);

/* ======================================================================================
 * inference scheduler (sched.c)
 * ====================================================================================== */

typedef struct tg_gen_job tg_gen_job_t;

typedef struct tg_sched {
    tg_server_t *srv;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tg_gen_job_t *incoming;    /* submitted, not yet taken by the thread */
    int n_jobs;                /* incoming + active: bounded by max_queue */
    int max_jobs;
    bool stop;
    nn_pool_t *pool;           /* all inference threads */
    atomic_bool training;      /* a fine-tuning job is running: infer on one thread */
} tg_sched_t;

int tg__sched_start(tg_sched_t *s, tg_server_t *srv, int threads, int max_jobs);
void tg__sched_stop(tg_sched_t *s);
/* Wakes the scheduler (a blocked stream was drained). */
void tg__sched_kick(tg_sched_t *s);
/* Handler for the completion routes (runs on the handler pool). */
void tg__handle_completion(tg_req_t *r, bool chat);

/* ======================================================================================
 * files and fine-tuning jobs (finetune.c)
 * ====================================================================================== */

int tg__ft_open(tg_server_t *srv, tg_ft_t **out);
void tg__ft_free(tg_ft_t **ft);
void tg__handle_file_upload(tg_req_t *r);
void tg__handle_file_get(tg_req_t *r, const char *id);
void tg__handle_file_list(tg_req_t *r);
void tg__handle_job_create(tg_req_t *r);
void tg__handle_job_get(tg_req_t *r, const char *id);
void tg__handle_job_list(tg_req_t *r);
void tg__handle_job_cancel(tg_req_t *r, const char *id);

/* ======================================================================================
 * the server
 * ====================================================================================== */

struct tg_server {
    tg_config_t cfg;           /* strings owned (copies) */
    char *state_dir;           /* models_dir/.textgen */
    struct lws_context *ctx;
    int port;
    volatile sig_atomic_t stop;
    core_pool_t *pool;         /* request handlers */
    tg_models_t models;
    tg_sched_t sched;
    tg_ft_t *ft;
    atomic_uint_fast64_t next_id;
    /* Bytes of request bodies being gathered in memory, all connections together: bounded by
     * body_budget so that many large uploads at once cannot exhaust memory. */
    atomic_uint_fast64_t body_bytes;
    uint64_t body_budget;

    pthread_mutex_t wake_mu;   /* requests with something for the loop to write */
    tg_req_t **wake;
    size_t n_wake, cap_wake;
};

/* A fresh id "<prefix><24 hex>" (random, unique in practice). */
void tg__new_id(const char *prefix, char *out, size_t cap);
/* The value of name in r->query ("purpose", "filename"); malloc'd or NULL. */
char *tg__query_get(const tg_req_t *r, const char *name);

#endif
