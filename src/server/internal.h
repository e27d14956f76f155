/* server/internal.h: what the server's files share — the server, a request and its response, the
 * route table, and the helpers that handlers use to answer.
 *
 * A request's life (one HTTP transaction), owned by the event-loop thread throughout:
 *
 *   RECEIVING --(headers parsed; body complete)--> WORKING --(handler replied)--> RESPONDING
 *       |                                              |                              |
 *       +-- early reply (4xx before the body) ---------+------------------------------+--> done
 *
 *   - In WORKING, a worker thread holds the request (req->inflight > 0) and may only fill
 *     req->resp and the handler fields; the loop does not touch those until the completion comes
 *     back through server_complete() (a queue drained on LWS_CALLBACK_EVENT_WAIT_CANCELLED).
 *   - If the connection closes while a worker holds the request, the loop marks it orphaned and
 *     frees it when the last completion arrives; a request is never freed inside a worker.
 *   - Uploads stay in RECEIVING while their chunks are written by workers (upload.c). */
#ifndef PERSONA_SERVER_INTERNAL_H
#define PERSONA_SERVER_INTERNAL_H

#include "server/server.h"

#include "auth/auth.h"
#include "core/core.h"
#include "jobs/jobs.h"
#include "store/store.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

typedef struct srv_req srv_req_t;
typedef struct srv_upload srv_upload_t;
typedef void (*srv_handler_fn)(srv_req_t *r);

enum srv_route_flags {
    SRV_ON_LOOP = 1 << 0,   /* answered on the event loop: cheap, no database */
    SRV_AUTH = 1 << 1,      /* needs a device token */
    SRV_JSON_BODY = 1 << 2, /* body collected in memory (max_json_bytes) */
    SRV_UPLOAD = 1 << 3,    /* body streamed to the blob store */
    SRV_IMAGE_BODY = 1 << 4, /* body of any type collected in memory (face_max_image_bytes) */
};

typedef struct srv_route {
    const char *method;     /* GET POST PUT DELETE; GET routes also answer HEAD */
    const char *pattern;    /* "/v1/media/{id}/{name}": {id} a positive integer, {name} a word */
    srv_handler_fn handler;
    unsigned flags;
} srv_route_t;

typedef struct srv_header {
    char name[32];
    char value[160];
} srv_header_t;

#define SRV_MAX_EXTRA_HEADERS 6
#define SRV_MAX_QUERY 16

typedef struct srv_resp {
    int status;
    char content_type[64];
    char *body;             /* owned */
    size_t body_len;
    int fd;                 /* file body when >= 0 (owned) */
    int64_t file_off, file_len;
    srv_header_t extra[SRV_MAX_EXTRA_HEADERS];
    int n_extra;
} srv_resp_t;

typedef struct srv_metrics srv_metrics_t;
typedef struct srv_token_cache srv_token_cache_t;
typedef struct srv_hub srv_hub_t;
typedef struct srv_ws srv_ws_t;
typedef struct srv_hub_event srv_hub_event_t;
struct hub_account;

struct server {
    const config_t *cfg;
    store_t *st;
    jobs_t *jobs;
    jobs_faces_t *faces;    /* the face engine and its contexts (jobs/faces.c) */
    core_pool_t *pool;
    auth_limiter_t *limit_user, *limit_addr;
    srv_metrics_t *metrics;
    srv_token_cache_t *tokens;
    srv_hub_t *hub;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    int port;
    int64_t started_ms;
    volatile sig_atomic_t stop;
    atomic_uint_fast64_t next_req_id;
    /* completions from workers to the loop */
    pthread_mutex_t done_mu;
    struct srv_done *done_head, *done_tail;
    atomic_int uploads_in_progress;
};

struct srv_req {
    server_t *srv;
    struct lws *wsi;        /* NULL once the connection has closed */
    char id[20];
    int64_t t0_ns;
    /* parsed request (copied out of lws's header buffer on the loop) */
    char method[8];
    bool head;              /* a HEAD request answered as GET without the body */
    char *path;
    char *query[SRV_MAX_QUERY];
    int n_query;
    char *authorization;
    char *content_type;
    char *range;
    char peer[64];
    uint64_t content_length;
    bool has_length;
    bool expect_continue;   /* the client waits for "100 Continue" before sending the body */
    const srv_route_t *route;
    int64_t path_id;        /* {id} */
    char path_name[32];     /* {name} */
    core_buf_t body;        /* SRV_JSON_BODY */
    srv_upload_t *upload;   /* SRV_UPLOAD */
    /* filled by authentication on a worker */
    int64_t account_id, device_id;
    /* response */
    srv_resp_t resp;
    bool resp_ready, headers_sent, close_after;
    bool lingering;         /* answered and closing: the rest of the body is read and dropped */
    bool logged;
    size_t body_sent;
    int64_t file_sent;
    uint64_t bytes_in, bytes_out;
    /* ownership bookkeeping (loop thread only) */
    int inflight;
    bool orphaned;
    /* long-poll (GET /v1/events): set by the handler, used by the hub on the loop */
    bool wants_wait, poll_now;
    int64_t poll_after;
    int poll_wait_s;
    struct hub_account *wait_acct;
    srv_req_t *wait_next, *wait_prev;
    lws_sorted_usec_list_t wait_sul;
};

/* ---- http.c ---- */
/* Queues fn(r) on the request pool; fn's completion returns to the loop via server_complete. */
void server_dispatch(srv_req_t *r, void (*fn)(srv_req_t *r), int kind);
/* From a worker: hands r back to the loop with a completion of the given kind. */
void server_complete(srv_req_t *r, int kind);
enum {
    SRV_DONE_RESPONSE = 1, SRV_DONE_UPLOAD_BEGUN = 2, SRV_DONE_UPLOAD_DRAINED = 3,
    SRV_DONE_WS_AUTHED = 4, SRV_DONE_WS_FETCHED = 5,
};
/* Loop side: resumes receiving (after flow control) and arms the idle timeout. */
void server_resume_rx(srv_req_t *r);
void server_pause_rx(srv_req_t *r);
/* Loop side: the response is ready; schedule writing it. */
void server_respond(srv_req_t *r);
/* Loop side: tells a client that sent "Expect: 100-continue" to go on with the body. */
void server_send_continue(srv_req_t *r);

/* ---- respond.c: used by handlers on workers (and by the loop for early replies) ---- */
void srv_reply_json(srv_req_t *r, int status, json_t *obj);       /* takes obj */
void srv_reply_error(srv_req_t *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void srv_reply_empty(srv_req_t *r, int status);
void srv_reply_text(srv_req_t *r, int status, const char *content_type, char *body, size_t len);
/* Serves the file at path (Range honoured). 404 if it cannot be opened. */
void srv_reply_file(srv_req_t *r, const char *path, const char *mime);
void srv_resp_add_header(srv_resp_t *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void srv_resp_clear(srv_resp_t *resp);
/* Parses the JSON body as an object; on failure replies 400 and returns NULL. */
json_t *srv_body_object(srv_req_t *r);
/* Value of ?name= (decoded), or NULL. Borrowed from r. */
const char *srv_query(const srv_req_t *r, const char *name);
/* Checks the bearer token; sets r->account_id/device_id. On failure replies 401 and returns
 * false. Worker only. */
bool srv_authenticate(srv_req_t *r);

/* ---- routes.c ---- */
/* Finds the route for method+path; sets r->route, path_id, path_name. Returns 0, -ENOENT (no
 * such path) or -EPERM (path exists, method does not: 405; *allow lists the methods). */
int srv_route_match(srv_req_t *r, char *allow, size_t allowcap);
const char *srv_route_name(const srv_req_t *r);

/* ---- handlers (h_*.c) ---- */
void srv_h_health(srv_req_t *r);
void srv_h_metrics(srv_req_t *r);
void srv_h_account_create(srv_req_t *r);
void srv_h_session_create(srv_req_t *r);
void srv_h_me(srv_req_t *r);
void srv_h_device_create(srv_req_t *r);
void srv_h_device_list(srv_req_t *r);
void srv_h_device_revoke(srv_req_t *r);
void srv_h_media_list(srv_req_t *r);
void srv_h_media_get(srv_req_t *r);
void srv_h_media_delete(srv_req_t *r);
void srv_h_media_download(srv_req_t *r);
void srv_h_transcript_get(srv_req_t *r);
void srv_h_transcript_put(srv_req_t *r);
void srv_h_question_create(srv_req_t *r);
void srv_h_question_list(srv_req_t *r);
void srv_h_question_get(srv_req_t *r);
void srv_h_events(srv_req_t *r);
void srv_h_ws_plain(srv_req_t *r);
void srv_h_model_train(srv_req_t *r);
void srv_h_model_get(srv_req_t *r);
void srv_h_voice_get(srv_req_t *r);
void srv_h_voice_put(srv_req_t *r);
void srv_h_tts(srv_req_t *r);
void srv_h_faces_detect(srv_req_t *r);
void srv_h_faces_represent(srv_req_t *r);
void srv_h_faces_verify(srv_req_t *r);
void srv_h_faces_analyze(srv_req_t *r);
void srv_h_faces_find(srv_req_t *r);
void srv_h_media_faces(srv_req_t *r);
void srv_h_identity_list(srv_req_t *r);
void srv_h_identity_update(srv_req_t *r);
void srv_h_identity_faces(srv_req_t *r);
/* A stored face as the API's face object (h_faces.c), with its id, media_id, ts_ms, track_id
 * and identity_id. */
json_t *srv_stored_face_json(const store_face_t *f);
/* srv_reply_json with reals to 8 significant digits (face objects are mostly floats). */
void srv_reply_faces_json(srv_req_t *r, int status, json_t *obj);

/* ---- hub.c: events to WebSocket clients and long-poll waiters ---- */
srv_hub_t *srv_hub_new(server_t *s);
/* Loop: starts the retention timer (needs the lws context). */
void srv_hub_start(srv_hub_t *h);
void srv_hub_free(srv_hub_t **h);
/* Any thread: an event was committed; push it to the account's clients. */
void srv_hub_publish(srv_hub_t *h, const store_event_t *ev);
/* Loop: delivers published events and WebSocket task completions. */
void srv_hub_drain(srv_hub_t *h);
/* Worker: a WebSocket task is done (used by hub.c itself). */
void srv_hub_complete(srv_hub_t *h, srv_ws_t *c, int kind);
/* Loop: parks a long-poll request until an event after r->poll_after or r->poll_wait_s. */
void srv_hub_wait(srv_hub_t *h, srv_req_t *r);
/* Loop: removes a parked request (its connection closed). */
void srv_hub_unwait(srv_req_t *r);
/* Loop: a WebSocket connection was established (token taken). */
srv_ws_t *srv_ws_open(server_t *s, struct lws *wsi, char *token, int64_t after);
void srv_ws_closed(srv_ws_t *c);
void srv_ws_receive(srv_ws_t *c, const char *in, size_t len);
/* Loop: a pong came back. */
void srv_ws_pong(srv_ws_t *c);
/* Loop: LWS_CALLBACK_SERVER_WRITEABLE; returns -1 to close. */
int srv_ws_writeable(srv_ws_t *c);

/* ---- upload.c: POST /v1/media, streamed ---- */
/* Loop: headers are in; start the upload (auth and blob on a worker, body paused till then). */
void srv_upload_start(srv_req_t *r);
/* Loop: a body chunk arrived. */
void srv_upload_body(srv_req_t *r, const void *data, size_t len);
/* Loop: the whole body arrived. */
void srv_upload_body_done(srv_req_t *r);
/* Loop: a worker finished an upload step. */
void srv_upload_on_complete(srv_req_t *r, int kind);
/* Loop: the connection closed while uploading; cleanup happens when workers are done. */
void srv_upload_free(srv_upload_t **u);
bool srv_upload_idle(const srv_upload_t *u);
/* An item as JSON text (appended to b); with_artifacts adds its files (a database read). */
void srv_media_json_write(core_buf_t *b, server_t *s, const store_media_t *m, bool with_artifacts);
/* Replies with one item as JSON. */
void srv_reply_media(srv_req_t *r, int status, const store_media_t *m, bool with_artifacts);

/* ---- token_cache.c: verified tokens, by SHA-256, for 30 s or until revoked ---- */
srv_token_cache_t *srv_token_cache_new(void);
void srv_token_cache_free(srv_token_cache_t **c);
bool srv_token_cache_get(srv_token_cache_t *c, const uint8_t hash[32], int64_t *account_id,
                         int64_t *device_id, int64_t *last_seen_at);
void srv_token_cache_put(srv_token_cache_t *c, const uint8_t hash[32], int64_t account_id,
                         int64_t device_id, int64_t last_seen_at);
void srv_token_cache_forget_device(srv_token_cache_t *c, int64_t device_id);

/* ---- metrics.c ---- */
srv_metrics_t *srv_metrics_new(void);
void srv_metrics_free(srv_metrics_t **m);
/* Loop: records one finished request. */
void srv_metrics_record(srv_metrics_t *m, const char *route, const char *method, int status,
                        double seconds, uint64_t bytes_in);
/* Renders the Prometheus text exposition (appends to out). */
void srv_metrics_render(srv_metrics_t *m, core_buf_t *out);

#endif
