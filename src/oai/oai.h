/* oai: a client for an OpenAI-compatible HTTP service (persona-textgen, or any server speaking
 * the same API): streamed chat completions, file uploads, fine-tuning jobs, the model list.
 * personad's jobs use it to answer questions with a language model and to train one per account.
 *
 * Transport is libcurl; JSON is jansson. Nothing here logs: errors come back as codes with an
 * oai_error_t that says what the service (or the network) said, and the caller decides.
 *
 * Errors (every function returns 0 or one of these, or -EINVAL / -ENOMEM):
 *   OAI_EUNAVAILABLE  the service could not be reached, timed out, closed a stream early, or
 *                     answered 5xx / 429: worth retrying later.
 *   OAI_EREJECTED     the service answered 4xx (bad request, unknown model, bad key ...):
 *                     retrying the same request will not help; err->message says why.
 *   OAI_EPROTOCOL     the service answered 2xx with something that is not the API (bad JSON,
 *                     a malformed event stream, a body over the size limits).
 *   OAI_EABORTED      the caller's on_delta callback asked to stop.
 *
 * Threads: an oai_client_t is immutable after oai_client_new and may be used by many threads at
 * once (each call makes its own curl handle). Calls block (never call from an event loop).
 *
 * Bounds: a JSON response body is at most OAI_MAX_BODY bytes; an event-stream line at most
 * OAI_MAX_SSE_LINE, a stream in all at most OAI_MAX_SSE_TOTAL bytes; generated content at most
 * OAI_MAX_CONTENT bytes. Anything larger is OAI_EPROTOCOL. */
#ifndef PERSONA_OAI_H
#define PERSONA_OAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    OAI_EUNAVAILABLE = -11001,
    OAI_EREJECTED = -11002,
    OAI_EPROTOCOL = -11003,
    OAI_EABORTED = -11004,
};
#define OAI_MAX_BODY (1u << 20)
#define OAI_MAX_SSE_LINE (64u << 10)
#define OAI_MAX_SSE_TOTAL (8u << 20)
#define OAI_MAX_CONTENT (256u << 10)

/* A static description of an oai error code (or core_strerror's for anything else). */
const char *oai_strerror(int err);

/* What went wrong, as precisely as known. http_status is 0 when no HTTP answer came. */
typedef struct oai_error {
    int http_status;
    char code[64];      /* the service's error code ("model_not_found") or ours ("unreachable") */
    char message[512];  /* one line for people */
} oai_error_t;

typedef struct oai_client oai_client_t;

typedef struct oai_config {
    const char *base_url;   /* "http://127.0.0.1:8090" (a trailing "/v1" or "/" is accepted) */
    const char *api_key;    /* NULL or "" for none */
    int timeout_s;          /* whole request; 0 = 120 */
    int connect_timeout_s;  /* 0 = 5 */
} oai_config_t;

/* Makes a client (strings are copied). -EINVAL for a missing or non-http(s) base_url. */
int oai_client_new(const oai_config_t *cfg, oai_client_t **out);
void oai_client_free(oai_client_t **c); /* NULL-safe */

/* ==== chat completions ==== */
typedef struct oai_message {
    const char *role;       /* "system", "user", "assistant" */
    const char *content;
} oai_message_t;

typedef struct oai_chat_params {
    int max_tokens;         /* 0: the service's default */
    double temperature;     /* < 0: the service's default */
    double top_p;           /* <= 0: the service's default */
    bool has_seed;
    int64_t seed;
} oai_chat_params_t;

/* Called for each piece of generated content, in order (text is not NUL-terminated and may be
 * any part of a UTF-8 sequence the service sent). Return 0 to go on, nonzero to stop the
 * request (the call then returns OAI_EABORTED). */
typedef int (*oai_delta_fn)(void *ud, const char *text, size_t len);

typedef struct oai_chat_result {
    char *content;          /* the whole generated text (malloc'd; NULL until success) */
    char finish_reason[16]; /* "stop", "length", ... ("" if the service sent none) */
    char model[128];        /* the model the service says answered */
    int ndeltas;            /* content pieces received */
    oai_error_t err;        /* filled on failure */
} oai_chat_result_t;
void oai_chat_result_clear(oai_chat_result_t *r);

/* POST /v1/chat/completions with "stream":true; on_delta (may be NULL) gets every content piece
 * as it arrives (from a service that ignores "stream" and answers one chat.completion object,
 * the whole content as one piece). Returns 0 with res->content the concatenation of the pieces, or a negative code
 * with res->err (res is always initialised; clear it either way). params may be NULL. */
int oai_chat_stream(oai_client_t *c, const char *model, const oai_message_t *messages,
                    size_t nmessages, const oai_chat_params_t *params, oai_delta_fn on_delta,
                    void *ud, oai_chat_result_t *res);

/* ==== files, fine-tuning, models ==== */
/* Uploads a JSONL training file (multipart/form-data, purpose=fine-tune) named filename: from
 * memory (data, len) when path is NULL, else from the file at path (-errno when it cannot be
 * read). Fills id_out ("file-..."). */
int oai_file_upload(oai_client_t *c, const char *filename, const void *data, size_t len,
                    const char *path, char id_out[64], oai_error_t *err);

typedef struct oai_ft_job {
    char id[64];
    char status[16];        /* queued, running, succeeded, failed, cancelled */
    char model[128];        /* the base */
    char fine_tuned_model[128]; /* "" until succeeded */
    char error[512];        /* "" unless failed */
    int64_t step, steps;    /* persona extras; 0 when the service does not say */
    bool has_train_loss, has_eval_loss;
    double train_loss, eval_loss;
} oai_ft_job_t;

typedef struct oai_ft_params {
    const char *training_file;  /* "file-..." */
    const char *model;          /* a base model id or "scratch-tiny" ... */
    const char *suffix;         /* NULL for none */
    int64_t steps;              /* 0: the service's default */
    bool has_seed;
    int64_t seed;
} oai_ft_params_t;

/* POST /v1/fine_tuning/jobs. */
int oai_finetune_create(oai_client_t *c, const oai_ft_params_t *p, oai_ft_job_t *job,
                        oai_error_t *err);
/* GET /v1/fine_tuning/jobs/{id}. */
int oai_finetune_get(oai_client_t *c, const char *id, oai_ft_job_t *job, oai_error_t *err);
/* POST /v1/fine_tuning/jobs/{id}/cancel. */
int oai_finetune_cancel(oai_client_t *c, const char *id, oai_ft_job_t *job, oai_error_t *err);
/* GET /v1/models: *ids_out is a malloc'd array of *n_out malloc'd ids (free with
 * oai_models_free). */
int oai_models_list(oai_client_t *c, char ***ids_out, size_t *n_out, oai_error_t *err);
void oai_models_free(char ***ids, size_t n);

/* ==== parsers (exposed for tests; no network) ==== */
/* Incremental text/event-stream parser: feed it bytes as they arrive, in any split; each
 * complete event's data (its "data:" lines joined by "\n") goes to on_event. Comments (":..."),
 * other fields, CR, LF and CRLF line ends are handled. Returns 0, OAI_EPROTOCOL for a line over
 * OAI_MAX_SSE_LINE or a stream over OAI_MAX_SSE_TOTAL, or the first nonzero return of on_event
 * (which stops the parse). */
typedef int (*oai_sse_event_fn)(void *ud, const char *data, size_t len);
typedef struct oai_sse {
    char *line;             /* the partial line (malloc'd) */
    size_t len, cap;
    char *data;             /* the event's data so far (malloc'd) */
    size_t dlen, dcap;
    bool has_data;
    bool last_was_cr;       /* a CR ended the last line: a following LF belongs to it */
    size_t total;
} oai_sse_t;
void oai_sse_init(oai_sse_t *p);
int oai_sse_feed(oai_sse_t *p, const char *buf, size_t n, oai_sse_event_fn on_event, void *ud);
void oai_sse_destroy(oai_sse_t *p);

/* Parses one chat.completion.chunk JSON text: appends choices[0].delta.content to *piece
 * (allocated with malloc, *piece_len its length; NULL/0 when the chunk has none) and copies a
 * finish_reason. A chunk carrying {"error":{...}} returns OAI_EREJECTED with err filled.
 * OAI_EPROTOCOL for anything that is not such an object. */
int oai_chunk_parse(const char *json, size_t len, char **piece, size_t *piece_len,
                    char finish_reason[16], char model[128], oai_error_t *err);
/* Fills err from an HTTP error answer: status, and the body's {"error":{"message","code"}}
 * when it has one (else the first line of the body, bounded). Returns OAI_EUNAVAILABLE for
 * 5xx/429 and OAI_EREJECTED for other statuses. */
int oai_error_from_http(int status, const char *body, size_t len, oai_error_t *err);
/* Parses a fine_tuning.job object. OAI_EPROTOCOL unless it has a string id and status. */
int oai_ft_job_parse(const char *json, size_t len, oai_ft_job_t *job);
/* Parses a {"object":"list","data":[{"id":...}]} model list. */
int oai_models_parse(const char *json, size_t len, char ***ids_out, size_t *n_out);

#endif
