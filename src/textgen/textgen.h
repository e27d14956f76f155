/* textgen: persona-textgen, the text generation service over src/llm and src/train — an
 * OpenAI-compatible HTTP API (models, chat and text completions with server-sent events, JSONL
 * files, fine-tuning jobs), and the offline subcommands (train, generate, quantize, tokenize).
 *
 * Threads of a running service (see docs/textgen.md):
 *   - the libwebsockets event loop: parses requests, writes responses; never infers, trains or
 *     touches a disk file;
 *   - a small handler pool: JSON parsing, model loading, file uploads and job records;
 *   - one inference scheduler: owns an nn_pool, round-robins one llm_gen_step over every active
 *     generation, so concurrent requests interleave fairly;
 *   - one training thread: runs the fine-tuning jobs one at a time with train_run.
 *
 * The parsing functions below are pure (no server needed) so that tests can feed them truncated,
 * empty, huge and random inputs. */
#ifndef PERSONA_TEXTGEN_H
#define PERSONA_TEXTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "llm/llm.h"

/* ======================================================================================
 * the service
 * ====================================================================================== */

typedef struct tg_config {
    const char *models_dir;   /* NAME.gguf files; state under models_dir/.textgen/ */
    const char *host;         /* default "127.0.0.1" */
    int port;                 /* 0 = pick a free port */
    const char *api_key;      /* NULL or "": no key required */
    int threads;              /* inference threads; 0 = all cores */
    int max_queue;            /* generations active or waiting (default 16); more get 503 */
    uint64_t max_body_bytes;  /* any request body, uploads included (default 16 MiB) */
    int max_models;           /* models kept loaded (default 4) */
    int model_idle_s;         /* a model unused this long is unloaded (default 600; 0 = never) */
    int max_messages;         /* chat messages per request (default 256) */
    int max_file_lines;       /* lines of an uploaded JSONL file (default 100000) */
    int max_files;            /* files kept (default 1000) */
    int max_jobs;             /* fine-tuning jobs kept (default 1000) */
    int train_threads;        /* training threads; 0 = all cores */
    bool log_requests;        /* one line per request (default true) */
} tg_config_t;

void tg_config_default(tg_config_t *c);

typedef struct tg_server tg_server_t;

/* Opens the models folder (creating .textgen/ in it), reloads the stored files and jobs (a job
 * that was queued or running when the process stopped is queued again and resumes from its
 * checkpoint), starts the threads and listens. Prints nothing; the caller prints the listening
 * line with tg_server_port(). 0, or a negative errno with the reason logged. */
int tg_server_new(const tg_config_t *cfg, tg_server_t **out);
/* Serves until tg_server_stop. 0, or -EIO when the event loop failed. */
int tg_server_run(tg_server_t *s);
/* Asks tg_server_run to return; safe from a signal handler. */
void tg_server_stop(tg_server_t *s);
int tg_server_port(const tg_server_t *s);
/* Cancels generations, stops the training thread (its job checkpoints and is resumed at the next
 * start), closes connections and frees everything. NULL-safe. */
void tg_server_free(tg_server_t **s);

/* ======================================================================================
 * the programs' entry points (apps/persona-textgen/main.c is only a call to tg_main)
 * ====================================================================================== */

/* `persona-textgen serve|train|generate|quantize|tokenize ...`. Returns the exit status: 0
 * success, 2 usage error, 1 otherwise. */
int tg_main(int argc, char **argv);

/* ======================================================================================
 * parsing (pure; used by the service and its tests)
 * ====================================================================================== */

/* An error for the client: HTTP status, OpenAI "code" and a sentence. */
typedef struct tg_error {
    int status;
    char code[48];
    char message[256];
} tg_error_t;

void tg_error_set(tg_error_t *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* {"error":{"message","type","param":null,"code"}}, malloc'd, newline-terminated. */
char *tg_error_json(const tg_error_t *e);

#define TG_MAX_STOP 4        /* stop strings per request (OpenAI's limit) */
#define TG_MAX_STOP_LEN 64   /* bytes per stop string */
#define TG_MAX_MODEL_NAME 128

/* A parsed /v1/chat/completions or /v1/completions body. Every string is owned. */
typedef struct tg_gen_req {
    bool chat;
    char *model;
    llm_message_t *messages; /* chat: role/content strings owned by the request */
    size_t n_messages;
    char *prompt;            /* completions */
    bool stream;
    int max_tokens;          /* 0 when not given */
    llm_sampling_t sampling; /* llm defaults, overridden by the body */
    char *stop[TG_MAX_STOP];
    size_t n_stop;
} tg_gen_req_t;

/* Parses a body of len bytes (any bytes). max_messages bounds "messages". 0, or -1 with a 400
 * error in err (bad JSON, missing or mistyped fields, values out of range). */
int tg_gen_req_parse(const char *body, size_t len, bool chat, int max_messages, tg_gen_req_t *out,
                     tg_error_t *err);
void tg_gen_req_destroy(tg_gen_req_t *r); /* NULL-safe, idempotent */

/* A model name from a client: 1..TG_MAX_MODEL_NAME bytes of [A-Za-z0-9._-], not starting with
 * '.', so NAME.gguf is always a plain file inside the models folder. */
bool tg_model_name_valid(const char *name);

/* Appends one server-sent event, "data: " + json_text + "\n\n", to b. */
void tg_sse_append(core_buf_t *b, const char *json_text);

/* ---- fine-tuning files ---- */

/* The training documents of a JSONL file: one text per line ("messages" rendered with the
 * ChatML template, "prompt" + "completion" concatenated, or "text"). loss_from[i] is where the
 * part to learn starts (train_params_t.loss_from): the last assistant message's content (and
 * its <|im_end|>) for "messages", the completion for "prompt"+"completion", 0 for "text". */
typedef struct tg_texts {
    char **texts;
    size_t *lens;
    size_t *loss_from;
    size_t n;
} tg_texts_t;

/* Checks a JSONL file of len bytes (at most max_lines non-empty lines; blank lines are skipped):
 * every line a JSON object with "messages":[{"role","content"}...], or string "prompt" and
 * "completion", or string "text". With out non-NULL the documents are returned. 0, or -1 with
 * a message naming the first bad line ("line 3: ...") in err. */
int tg_jsonl_parse(const char *data, size_t len, int max_lines, tg_texts_t *out, char *err,
                   size_t errlen);
/* A .txt file: documents separated by blank lines. 0, or -1 when there is no text. */
int tg_text_split(const char *data, size_t len, tg_texts_t *out, char *err, size_t errlen);
void tg_texts_destroy(tg_texts_t *t); /* NULL-safe, idempotent */

/* A multipart/form-data body as OpenAI's clients send a file: the "purpose" field and the
 * "file" part (with its filename). Spans point into the body. */
typedef struct tg_multipart {
    const char *purpose;
    size_t purpose_len;
    const char *file;
    size_t file_len;
    const char *filename; /* NULL when the part has none */
    size_t filename_len;
} tg_multipart_t;

/* content_type is the request's header (the boundary comes from it). 0, or -1 with the reason. */
int tg_multipart_parse(const char *content_type, const char *body, size_t len, tg_multipart_t *out,
                       char *err, size_t errlen);

/* Constant-time comparison of a presented "Authorization" header value with "Bearer KEY". */
bool tg_auth_ok(const char *header, const char *key);

#endif
