/* textgen/http.c: the service's HTTP side — libwebsockets glue, routing, responses, the request
 * log, and the server's lifecycle. The lws event loop runs here and only here; it never infers,
 * trains or touches a disk file: handlers run on the pool, generation on the scheduler, and both
 * hand their output back through tg__req_wake() + lws_cancel_service().
 *
 * The lws 4.1 rules followed (as personad does): HTTP/1.1 only (upgrades refused, ALPN
 * http/1.1); a request body needs a Content-Length (Transfer-Encoding refused); at most one
 * transaction in flight per connection. Bodies are gathered in memory up to max_body_bytes, so
 * rx flow control is never needed (and with it, never the lws case of no WRITEABLE while rx is
 * paused). Streams use chunked transfer encoding written here by hand, so keep-alive works. */
#include "textgen/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>

#define TG_CHUNK (64 * 1024)
/* Lingering close after an early answer: how much of a refused body is read and dropped, and for
 * how long, before the connection is closed anyway. */
#define TG_LINGER_MAX_BYTES (64u << 20)
#define TG_LINGER_SECS 2

typedef struct tg_pss {
    tg_req_t *req;
} tg_pss_t;

/* ======================================================================================
 * requests and responses (any thread)
 * ====================================================================================== */

static tg_req_t *req_new(tg_server_t *s, struct lws *wsi)
{
    tg_req_t *r = xcalloc(1, sizeof *r);
    r->srv = s;
    r->wsi = wsi;
    atomic_init(&r->refs, 1);
    atomic_init(&r->cancelled, false);
    r->t0_ns = core_mono_ns();
    pthread_mutex_init(&r->mu, NULL);
    core_buf_init(&r->body);
    core_buf_init(&r->out);
    uint64_t n = atomic_fetch_add(&s->next_id, 1);
    snprintf(r->id, sizeof r->id, "%08llx", (unsigned long long)(n & 0xffffffffULL));
    r->log_prompt_tokens = r->log_completion_tokens = -1;
    return r;
}

tg_req_t *tg__req_ref(tg_req_t *r)
{
    atomic_fetch_add(&r->refs, 1);
    return r;
}

void tg__req_unref(tg_req_t *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->body_reserved)
        atomic_fetch_sub(&r->srv->body_bytes, r->body_reserved);
    free(r->path);
    free(r->query);
    free(r->authorization);
    free(r->content_type);
    core_buf_destroy(&r->body);
    core_buf_destroy(&r->out);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void tg__req_wake(tg_req_t *r)
{
    tg_server_t *s = r->srv;
    pthread_mutex_lock(&r->mu);
    bool queue = !r->wake_queued;
    r->wake_queued = true;
    pthread_mutex_unlock(&r->mu);
    if (!queue)
        return;
    pthread_mutex_lock(&s->wake_mu);
    if (s->n_wake == s->cap_wake) {
        s->cap_wake = s->cap_wake ? s->cap_wake * 2 : 64;
        s->wake = xrealloc(s->wake, s->cap_wake * sizeof *s->wake);
    }
    s->wake[s->n_wake++] = tg__req_ref(r);
    pthread_mutex_unlock(&s->wake_mu);
    if (s->ctx)
        lws_cancel_service(s->ctx);
}

void tg__reply(tg_req_t *r, int status, const char *ctype, char *body, size_t len)
{
    pthread_mutex_lock(&r->mu);
    if (r->status != 0) { /* answered already (cannot happen by design; never answer twice) */
        pthread_mutex_unlock(&r->mu);
        free(body);
        return;
    }
    r->status = status;
    snprintf(r->ctype, sizeof r->ctype, "%s", ctype);
    core_buf_reset(&r->out);
    if (body)
        core_buf_append(&r->out, body, len);
    r->done = true;
    pthread_mutex_unlock(&r->mu);
    free(body);
    tg__req_wake(r);
}

void tg__reply_json(tg_req_t *r, int status, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) {
        tg__reply_errorf(r, 500, "internal_error", "The response could not be encoded.");
        return;
    }
    char *body = xasprintf("%s\n", text);
    free(text);
    tg__reply(r, status, "application/json", body, strlen(body));
}

void tg__reply_error(tg_req_t *r, const tg_error_t *e)
{
    char *body = tg_error_json(e);
    tg__reply(r, e->status, "application/json", body, strlen(body));
}

void tg__reply_errorf(tg_req_t *r, int status, const char *code, const char *fmt, ...)
{
    tg_error_t e;
    e.status = status;
    snprintf(e.code, sizeof e.code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    tg__reply_error(r, &e);
}

void tg__stream_start(tg_req_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->status = 200;
    snprintf(r->ctype, sizeof r->ctype, "text/event-stream");
    r->chunked = true;
    pthread_mutex_unlock(&r->mu);
}

size_t tg__stream_write(tg_req_t *r, const char *p, size_t n, bool last)
{
    pthread_mutex_lock(&r->mu);
    if (r->out_off == r->out.len) {
        core_buf_reset(&r->out);
        r->out_off = 0;
    }
    core_buf_append(&r->out, p, n);
    if (last)
        r->done = true;
    size_t pending = r->out.len - r->out_off;
    pthread_mutex_unlock(&r->mu);
    tg__req_wake(r);
    return pending;
}

void tg__new_id(const char *prefix, char *out, size_t cap)
{
    uint8_t b[12];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        uint64_t t = (uint64_t)core_mono_ns() ^ ((uint64_t)core_now_ms() << 20);
        for (size_t i = 0; i < sizeof b; i++, t = t * 6364136223846793005ULL + 1)
            b[i] = (uint8_t)(t >> 56);
    }
    char hex[sizeof b * 2 + 1];
    core_hex(b, sizeof b, hex);
    snprintf(out, cap, "%s%s", prefix, hex);
}

char *tg__query_get(const tg_req_t *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = r->query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > n && !strncmp(p, name, n) && p[n] == '=')
            return xstrndup(p + n + 1, len - n - 1);
        if (!amp)
            break;
        p = amp + 1;
    }
    return NULL;
}

/* ======================================================================================
 * routing
 * ====================================================================================== */

typedef enum {
    R_HEALTH,
    R_MODELS,
    R_MODEL,
    R_CHAT,
    R_COMPLETIONS,
    R_FILES,
    R_FILE,
    R_JOBS,
    R_JOB,
    R_JOB_CANCEL,
} route_t;

/* Matches r->path; sets *route and the {id} segment. 0, -ENOENT (no such path) or -EPERM (the
 * path exists, not with this method; allow says which). */
static int route_match(const tg_req_t *r, route_t *route, char *id, size_t idcap,
                       const char **allow)
{
    const char *p = r->path, *m = r->method;
    bool get = !strcmp(m, "GET"), post = !strcmp(m, "POST");
    id[0] = '\0';
#define EXACT(path, meth_ok, rt, al)                                                              \
    if (!strcmp(p, path)) {                                                                       \
        *allow = al;                                                                              \
        if (!(meth_ok))                                                                           \
            return -EPERM;                                                                        \
        *route = rt;                                                                              \
        return 0;                                                                                 \
    }
    EXACT("/health", get, R_HEALTH, "GET")
    EXACT("/v1/models", get, R_MODELS, "GET")
    EXACT("/v1/chat/completions", post, R_CHAT, "POST")
    EXACT("/v1/completions", post, R_COMPLETIONS, "POST")
    EXACT("/v1/files", post || get, R_FILES, "GET, POST")
    EXACT("/v1/fine_tuning/jobs", post || get, R_JOBS, "GET, POST")
#undef EXACT
    static const char files[] = "/v1/files/", jobs[] = "/v1/fine_tuning/jobs/",
                      models[] = "/v1/models/";
    const char *rest = NULL;
    if (!strncmp(p, models, sizeof models - 1)) {
        rest = p + sizeof models - 1;
        if (!*rest || strchr(rest, '/') || strlen(rest) >= idcap)
            return -ENOENT;
        snprintf(id, idcap, "%s", rest);
        *allow = "GET";
        if (!get)
            return -EPERM;
        *route = R_MODEL;
        return 0;
    }
    if (!strncmp(p, files, sizeof files - 1)) {
        rest = p + sizeof files - 1;
        if (!*rest || strchr(rest, '/') || strlen(rest) >= idcap)
            return -ENOENT;
        snprintf(id, idcap, "%s", rest);
        *allow = "GET";
        if (!get)
            return -EPERM;
        *route = R_FILE;
        return 0;
    }
    if (!strncmp(p, jobs, sizeof jobs - 1)) {
        rest = p + sizeof jobs - 1;
        const char *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        if (n == 0 || n >= idcap)
            return -ENOENT;
        memcpy(id, rest, n);
        id[n] = '\0';
        if (!slash) {
            *allow = "GET";
            if (!get)
                return -EPERM;
            *route = R_JOB;
            return 0;
        }
        if (strcmp(slash, "/cancel") != 0)
            return -ENOENT;
        *allow = "POST";
        if (!post)
            return -EPERM;
        *route = R_JOB_CANCEL;
        return 0;
    }
    return -ENOENT;
}

/* Runs on the handler pool: the request is complete (headers and body). */
static void run_request(void *arg)
{
    tg_req_t *r = arg;
    route_t route;
    char id[64];
    const char *allow = "";
    if (route_match(r, &route, id, sizeof id, &allow) < 0) {
        tg__reply_errorf(r, 404, "not_found", "There is nothing at this path.");
        goto out;
    }
    switch (route) {
    case R_HEALTH:
        tg__reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
        break;
    case R_MODELS:
        tg__reply_json(r, 200, tg__models_list(&r->srv->models));
        break;
    case R_MODEL: {
        json_t *list = tg__models_list(&r->srv->models), *v;
        size_t i;
        json_t *found = NULL;
        json_array_foreach(json_object_get(list, "data"), i, v)
            if (!strcmp(json_string_value(json_object_get(v, "id")), id))
                found = json_incref(v);
        json_decref(list);
        if (found)
            tg__reply_json(r, 200, found);
        else
            tg__reply_errorf(r, 404, "model_not_found", "The model '%.128s' does not exist.", id);
        break;
    }
    case R_CHAT:
    case R_COMPLETIONS:
        tg__handle_completion(r, route == R_CHAT);
        break;
    case R_FILES:
        if (!strcmp(r->method, "POST"))
            tg__handle_file_upload(r);
        else
            tg__handle_file_list(r);
        break;
    case R_FILE:
        tg__handle_file_get(r, id);
        break;
    case R_JOBS:
        if (!strcmp(r->method, "POST"))
            tg__handle_job_create(r);
        else
            tg__handle_job_list(r);
        break;
    case R_JOB:
        tg__handle_job_get(r, id);
        break;
    case R_JOB_CANCEL:
        tg__handle_job_cancel(r, id);
        break;
    }
out:
    tg__req_unref(r);
}

static void dispatch(tg_req_t *r)
{
    if (r->dispatched)
        return;
    r->dispatched = true;
    /* lws would time the connection out while a long answer is being generated; a client that
     * goes away is seen by the socket closing instead. */
    if (r->wsi)
        lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
    tg__req_ref(r);
    if (core_pool_submit(r->srv->pool, run_request, r) < 0) {
        tg__req_unref(r);
        tg__reply_errorf(r, 503, "shutting_down", "The server is shutting down.");
    }
}

/* ======================================================================================
 * the event loop side
 * ====================================================================================== */

static char *copy_header(struct lws *wsi, enum lws_token_indexes tok, int max)
{
    int n = lws_hdr_total_length(wsi, tok);
    if (n <= 0 || n > max)
        return NULL;
    char *v = xmalloc((size_t)n + 1);
    if (lws_hdr_copy(wsi, v, n + 1, tok) < 0) {
        free(v);
        return NULL;
    }
    return v;
}

static void early_error(tg_req_t *r, int status, const char *code, const char *msg)
{
    /* Answered before the body was read: the unread body would be taken for the next request,
     * so the connection closes after the answer. */
    if (r->content_length > 0)
        r->close_after = true;
    r->dispatched = true;
    tg__reply_errorf(r, status, code, "%s", msg);
}

static int on_http(tg_server_t *s, struct lws *wsi, tg_pss_t *pss, const char *uri)
{
    tg_req_t *r = req_new(s, wsi);
    pss->req = r;
    static const struct {
        enum lws_token_indexes tok;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_GET_URI, "GET"},     {WSI_TOKEN_POST_URI, "POST"},
        {WSI_TOKEN_PUT_URI, "PUT"},     {WSI_TOKEN_DELETE_URI, "DELETE"},
        {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            snprintf(r->method, sizeof r->method, "%s", methods[i].name);
            break;
        }
    r->path = xstrdup(uri && *uri ? uri : "/");
    core_buf_t q;
    core_buf_init(&q);
    char frag[1024];
    for (int i = 0; i < 16 && lws_hdr_copy_fragment(wsi, frag, sizeof frag,
                                                     WSI_TOKEN_HTTP_URI_ARGS, i) >= 0;
         i++) {
        if (q.len)
            core_buf_puts(&q, "&");
        core_buf_puts(&q, frag);
    }
    r->query = q.len ? core_buf_steal(&q) : NULL;
    core_buf_destroy(&q);
    r->authorization = copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, 1024);
    r->content_type = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, 512);

    r->head = !strcmp(r->method, "HEAD");
    if (!r->method[0] || r->head) {
        early_error(r, 405, "method_not_allowed", "This method is not supported.");
        return 0;
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        r->close_after = true;
        early_error(r, 411, "length_required",
                    "Transfer-Encoding is not supported: send the body with a Content-Length.");
        return 0;
    }
    char cl[32];
    int cl_len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (cl_len > 0) {
        if (cl_len >= (int)sizeof cl || lws_hdr_copy(wsi, cl, sizeof cl,
                                                     WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0 ||
            core_parse_u64(cl, strlen(cl), &r->content_length) < 0) {
            r->close_after = true;
            early_error(r, 400, "bad_request", "The Content-Length header is malformed.");
            return 0;
        }
        r->has_length = true;
    }
    route_t route;
    char id[64];
    const char *allow = "";
    int rc = route_match(r, &route, id, sizeof id, &allow);
    if (rc == -ENOENT) {
        early_error(r, 404, "not_found", "There is nothing at this path.");
        return 0;
    }
    if (rc == -EPERM) {
        r->allow = allow;
        early_error(r, 405, "method_not_allowed", "This path does not support this method.");
        return 0;
    }
    /* Before any body is read: a client without the key cannot make us buffer anything. */
    if (route != R_HEALTH && !tg_auth_ok(r->authorization, s->cfg.api_key)) {
        early_error(r, 401, "invalid_api_key",
                    "A valid API key is required: Authorization: Bearer <key>.");
        return 0;
    }
    /* A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 6.3):
     * a POST to cancel a job often comes that way. */
    if (r->content_length > s->cfg.max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg, "The body is larger than this server's limit of %llu bytes.",
                 (unsigned long long)s->cfg.max_body_bytes);
        r->close_after = true;
        early_error(r, 413, "request_too_large", msg);
        return 0;
    }
    if (r->content_length > 0) {
        uint64_t now = atomic_fetch_add(&s->body_bytes, r->content_length);
        r->body_reserved = r->content_length;
        if (now + r->content_length > s->body_budget) {
            r->close_after = true;
            early_error(r, 503, "server_busy",
                        "The server is receiving too many large bodies at once. Try again later.");
            return 0;
        }
    }
    if (route == R_HEALTH) {
        r->dispatched = true;
        tg__reply(r, 200, "application/json", xstrdup("{\"status\":\"ok\"}\n"), 16);
        return 0;
    }
    char expect[32];
    if (r->content_length > 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_EXPECT) > 0 &&
        lws_hdr_copy(wsi, expect, sizeof expect, WSI_TOKEN_HTTP_EXPECT) > 0 &&
        !strcasecmp(expect, "100-continue")) {
        /* lws 4.1 never sends it, and curl waits a second for it before a large body. Nothing
         * has been written on this request yet, so this tiny write completes. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        unsigned char buf[LWS_PRE + sizeof cont];
        memcpy(buf + LWS_PRE, cont, sizeof cont - 1);
        lws_write(wsi, buf + LWS_PRE, sizeof cont - 1, LWS_WRITE_HTTP_HEADERS);
    }
    if (r->content_length == 0)
        dispatch(r);
    return 0;
}

/* Returns -1 to close the connection. */
static int on_body(tg_req_t *r, const void *in, size_t len)
{
    r->bytes_in += len;
    if (r->lingering && r->bytes_in > TG_LINGER_MAX_BYTES)
        return -1;
    if (r->dispatched)
        return 0; /* answered early: the rest is dropped */
    if (r->body.len + len > r->content_length || r->body.len + len > r->srv->cfg.max_body_bytes) {
        r->body_too_large = true;
        return 0;
    }
    core_buf_append(&r->body, in, len);
    return 0;
}

/* Returns -1 to close the connection. */
static int on_body_done(tg_req_t *r)
{
    if (r->lingering)
        return -1;
    if (r->dispatched)
        return 0;
    if (r->body_too_large) {
        r->close_after = true;
        early_error(r, 413, "request_too_large", "The body is larger than its Content-Length.");
        return 0;
    }
    dispatch(r);
    return 0;
}

static void log_request(tg_req_t *r, int status)
{
    if (r->logged || !r->srv->cfg.log_requests)
        return;
    r->logged = true;
    char path[300], model[TG_MAX_MODEL_NAME + 1];
    double ms = (double)(core_mono_ns() - r->t0_ns) / 1e6;
    /* a handler or the scheduler may still be filling these in when the client goes away */
    pthread_mutex_lock(&r->mu);
    snprintf(model, sizeof model, "%s", r->log_model[0] ? r->log_model : "-");
    int pt = r->log_prompt_tokens, ct = r->log_completion_tokens;
    pthread_mutex_unlock(&r->mu);
    core_log(CORE_LOG_INFO, "http.request",
             "id=%s method=%s path=%s status=%d ms=%.1f bytes_in=%llu bytes_out=%llu model=%s "
             "prompt_tokens=%d completion_tokens=%d",
             r->id, r->method[0] ? r->method : "-",
             core_log_quote(r->path ? r->path : "-", path, sizeof path), status, ms,
             (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, model, pt, ct);
}

/* Writes what is pending. Returns 1 when the transaction is complete, 0 when more is to come,
 * -1 on a write error. */
static int write_pending(struct lws *wsi, tg_req_t *r)
{
    static unsigned char buf[LWS_PRE + 4096 + TG_CHUNK + 64]; /* loop thread only */
    for (;;) {
        unsigned char *start = buf + LWS_PRE, *p = start;
        bool headers = false, unblock = false, complete;
        pthread_mutex_lock(&r->mu);
        if (r->status == 0 || (!r->chunked && !r->done)) {
            pthread_mutex_unlock(&r->mu);
            return 0;
        }
        if (!r->headers_sent) {
            unsigned char *end = buf + LWS_PRE + 4096 - 1;
            char num[24];
            int numlen = snprintf(num, sizeof num, "%zu", r->out.len);
            if (lws_add_http_header_status(wsi, (unsigned)r->status, &p, end) ||
                lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                             (const unsigned char *)r->ctype,
                                             (int)strlen(r->ctype), &p, end) ||
                (r->chunked
                     ? lws_add_http_header_by_name(wsi,
                                                   (const unsigned char *)"transfer-encoding:",
                                                   (const unsigned char *)"chunked", 7, &p, end) ||
                           lws_add_http_header_by_name(wsi,
                                                       (const unsigned char *)"cache-control:",
                                                       (const unsigned char *)"no-cache", 8, &p,
                                                       end)
                     : lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                                    (const unsigned char *)num, numlen, &p,
                                                    end)) ||
                lws_add_http_header_by_name(wsi, (const unsigned char *)"x-request-id:",
                                            (const unsigned char *)r->id, (int)strlen(r->id), &p,
                                            end) ||
                (r->allow &&
                 lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
                                             (const unsigned char *)r->allow,
                                             (int)strlen(r->allow), &p, end)) ||
                (r->close_after &&
                 lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                              (const unsigned char *)"close", 5, &p, end)) ||
                lws_finalize_http_header(wsi, &p, end)) {
                pthread_mutex_unlock(&r->mu);
                return -1;
            }
            r->headers_sent = true;
            headers = true;
        }
        if (r->head)
            r->out_off = r->out.len; /* the length is announced, the body is not sent */
        size_t n = r->out.len - r->out_off;
        if (n > TG_CHUNK)
            n = TG_CHUNK;
        if (n && r->chunked)
            p += sprintf((char *)p, "%zx\r\n", n);
        if (n)
            memcpy(p, r->out.data + r->out_off, n);
        p += n;
        if (n && r->chunked)
            p += sprintf((char *)p, "\r\n");
        r->out_off += n;
        complete = r->done && r->out_off == r->out.len;
        if (complete && r->chunked)
            p += sprintf((char *)p, "0\r\n\r\n");
        if (r->blocked && r->out.len - r->out_off < TG_STREAM_HIGH / 2) {
            r->blocked = false;
            unblock = true;
        }
        pthread_mutex_unlock(&r->mu);
        if (unblock)
            tg__sched_kick(&r->srv->sched);
        size_t len = (size_t)(p - start);
        if (len && lws_write(wsi, start, len, headers ? LWS_WRITE_HTTP_HEADERS : LWS_WRITE_HTTP) <
                       (int)len)
            return -1;
        r->bytes_out += len;
        if (complete)
            return 1;
        if (n == 0)
            return 0; /* all written; the producer wakes us for more */
        if (lws_send_pipe_choked(wsi)) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
}

static int on_writeable(struct lws *wsi, tg_pss_t *pss)
{
    tg_req_t *r = pss->req;
    if (!r)
        return 0;
    if (r->lingering)
        return 0;
    int rc = write_pending(wsi, r);
    if (rc <= 0)
        return rc;
    log_request(r, r->status);
    bool close = r->close_after;
    if (close && r->has_length && r->bytes_in < r->content_length) {
        /* Lingering close, as nginx does: the client may still be sending the body it was
         * refused, and closing with unread data makes the kernel reset the connection, which
         * can lose our answer before the client reads it. Read and drop the rest a while. */
        r->lingering = true;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, TG_LINGER_SECS);
        return 0;
    }
    pss->req = NULL;
    r->wsi = NULL;
    tg__req_unref(r);
    if (close)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static void on_closed(tg_pss_t *pss)
{
    tg_req_t *r = pss->req;
    pss->req = NULL;
    if (!r)
        return;
    r->wsi = NULL;
    atomic_store(&r->cancelled, true);
    pthread_mutex_lock(&r->mu);
    int status = r->status;
    pthread_mutex_unlock(&r->mu);
    log_request(r, status && r->headers_sent ? status : 499);
    tg__sched_kick(&r->srv->sched); /* a blocked stream's generation can go now */
    tg__req_unref(r);
}

static void drain_wakes(tg_server_t *s)
{
    pthread_mutex_lock(&s->wake_mu);
    tg_req_t **list = s->wake;
    size_t n = s->n_wake;
    s->wake = NULL;
    s->n_wake = s->cap_wake = 0;
    pthread_mutex_unlock(&s->wake_mu);
    for (size_t i = 0; i < n; i++) {
        tg_req_t *r = list[i];
        pthread_mutex_lock(&r->mu);
        r->wake_queued = false;
        pthread_mutex_unlock(&r->mu);
        if (r->wsi)
            lws_callback_on_writable(r->wsi);
        tg__req_unref(r);
    }
    free(list);
}

static int refuse_upgrade(struct lws *wsi)
{
    static const char body[] =
        "{\"error\":{\"message\":\"This server speaks HTTP/1.1 only: send the request again "
        "without an Upgrade header.\",\"type\":\"invalid_request_error\",\"param\":null,"
        "\"code\":\"upgrade_refused\"}}\n";
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, 400, "application/json", sizeof body - 1, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    memcpy(start, body, sizeof body - 1);
    lws_write(wsi, start, sizeof body - 1, LWS_WRITE_HTTP_FINAL);
    return -1;
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    tg_pss_t *pss = user;
    tg_server_t *s = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (s)
            drain_wakes(s);
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return refuse_upgrade(wsi);
    default:
        break;
    }
    if (!pss)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (pss->req) /* pipelined before the previous answer went out */
            return -1;
        return on_http(s, wsi, pss, in);
    case LWS_CALLBACK_HTTP_BODY:
        return pss->req ? on_body(pss->req, in, len) : 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return pss->req ? on_body_done(pss->req) : 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi, pss);
    case LWS_CALLBACK_CLOSED_HTTP:
        on_closed(pss);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", callback_http, sizeof(tg_pss_t), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ======================================================================================
 * lifecycle
 * ====================================================================================== */

void tg_config_default(tg_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->max_queue = 16;
    c->max_body_bytes = 16u << 20;
    c->max_models = 4;
    c->model_idle_s = 600;
    c->max_messages = 256;
    c->max_file_lines = 100000;
    c->max_files = 1000;
    c->max_jobs = 1000;
    c->log_requests = true;
}

static void lws_log_bridge(int level, const char *line)
{
    char q[512], tmp[512];
    size_t n = strlen(line);
    snprintf(tmp, sizeof tmp, "%.*s", (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
    core_log(level == LLL_ERR ? CORE_LOG_ERROR : CORE_LOG_WARN, "lws", "msg=%s",
             core_log_quote(tmp, q, sizeof q));
}

int tg_server_new(const tg_config_t *cfg, tg_server_t **out)
{
    int rc = 0;
    tg_server_t *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    s->cfg.models_dir = xstrdup(cfg->models_dir);
    s->cfg.host = xstrdup(cfg->host && *cfg->host ? cfg->host : "127.0.0.1");
    s->cfg.api_key = cfg->api_key && *cfg->api_key ? xstrdup(cfg->api_key) : NULL;
    pthread_mutex_init(&s->wake_mu, NULL);
    atomic_init(&s->next_id, 1);
    atomic_init(&s->body_bytes, 0);
    s->body_budget = cfg->max_body_bytes * 4 > (64u << 20) ? cfg->max_body_bytes * 4 : (64u << 20);
    struct stat st;
    if (!cfg->models_dir || stat(cfg->models_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        core_log(CORE_LOG_ERROR, "textgen.start", "models_dir=%s error=\"not a folder\"",
                 cfg->models_dir ? cfg->models_dir : "-");
        rc = -ENOTDIR;
        goto fail;
    }
    s->state_dir = xasprintf("%s/.textgen", cfg->models_dir);
    tg__models_init(&s->models, cfg->models_dir, cfg->max_models);
    if ((rc = nn_init()) < 0) {
        core_log(CORE_LOG_ERROR, "textgen.start", "error=\"the numeric kernels failed their "
                 "self-check\"");
        rc = -EIO;
        goto fail;
    }
    s->pool = core_pool_new(2, "tg-req");
    if (!s->pool) {
        rc = -EAGAIN;
        goto fail;
    }
    if ((rc = tg__sched_start(&s->sched, s, cfg->threads, cfg->max_queue)) < 0)
        goto fail;
    if ((rc = tg__ft_open(s, &s->ft)) < 0)
        goto fail;

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_bridge);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.iface = s->cfg.host;
    info.protocols = protocols;
    info.user = s;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 * (strchr(s->cfg.host, ':') == NULL);
    info.max_http_header_data = 16384;
    info.max_http_header_pool = 256;
    info.pt_serv_buf_size = 256 * 1024;
    info.timeout_secs = 60;
    info.keepalive_timeout = 60;
    info.server_string = "persona-textgen";
    info.alpn = "http/1.1";
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        core_log(CORE_LOG_ERROR, "http.listen", "host=%s port=%d error=\"cannot listen\"",
                 s->cfg.host, cfg->port);
        rc = -EADDRINUSE;
        goto fail;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(s->ctx, "default");
    s->port = vh ? lws_get_vhost_listen_port(vh) : cfg->port;
    core_log(CORE_LOG_INFO, "http.listen", "host=%s port=%d models_dir=%s threads=%d "
             "max_queue=%d nn=\"%s\"", s->cfg.host, s->port, cfg->models_dir,
             nn_pool_threads(s->sched.pool), s->sched.max_jobs, nn_backend_info());
    *out = s;
    return 0;
fail:
    tg_server_free(&s);
    return rc < 0 ? rc : -EIO;
}

int tg_server_run(tg_server_t *s)
{
    while (!s->stop)
        if (lws_service(s->ctx, 0) < 0)
            return -EIO;
    return 0;
}

void tg_server_stop(tg_server_t *s)
{
    s->stop = 1;
    if (s->ctx)
        lws_cancel_service(s->ctx);
}

int tg_server_port(const tg_server_t *s)
{
    return s->port;
}

void tg_server_free(tg_server_t **ps)
{
    tg_server_t *s = ps ? *ps : NULL;
    if (!s)
        return;
    /* The handlers first (they may still queue generations or jobs), then training (it
     * checkpoints), then the scheduler (it ends every generation), then the connections. */
    core_pool_free(&s->pool);
    tg__ft_free(&s->ft);
    tg__sched_stop(&s->sched);
    if (s->ctx) {
        drain_wakes(s);
        lws_context_destroy(s->ctx);
        s->ctx = NULL;
    }
    drain_wakes(s);
    if (s->models.dir)
        tg__models_destroy(&s->models);
    pthread_mutex_destroy(&s->wake_mu);
    free(s->state_dir);
    free((char *)s->cfg.models_dir);
    free((char *)s->cfg.host);
    free((char *)s->cfg.api_key);
    free(s);
    *ps = NULL;
}
