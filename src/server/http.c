/* server/http.c: the libwebsockets glue. Runs on the event-loop thread only (except
 * server_complete, which workers call). It turns lws callbacks into srv_req_t requests, checks the
 * framing rules that lws leaves to us (strict Content-Length, no Transfer-Encoding), routes, hands
 * work to the request pool, and writes responses from LWS_CALLBACK_HTTP_WRITEABLE.
 *
 * Never blocks: no database, no fsync, no decoding here. Files being downloaded are read with
 * pread in 64 KiB pieces (page-cache reads, like nginx without aio). */
#include "server/internal.h"

#include "media/media.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SRV_CHUNK (64 * 1024)
/* Lingering close after an early answer: how much of a refused body is read and dropped, and for
 * how long, before the connection is closed anyway. */
#define SRV_LINGER_MAX_BYTES (64u << 20)
#define SRV_LINGER_SECS 2

struct srv_done {
    srv_req_t *r;
    int kind;
    struct srv_done *next;
};

/* Per connection (lws zeroes it when the connection opens; it lives across keep-alive
 * requests). */
typedef struct srv_pss {
    srv_req_t *req;
    srv_ws_t *ws;  /* once upgraded to a WebSocket (/v1/ws) */
    char peer[64]; /* the client's address, looked up once per connection */
} srv_pss_t;

/* ======================================================================================
 * requests
 * ====================================================================================== */

static srv_req_t *req_new(server_t *s, struct lws *wsi)
{
    srv_req_t *r = xcalloc(1, sizeof *r);
    r->srv = s;
    r->wsi = wsi;
    r->t0_ns = core_mono_ns();
    r->resp.fd = -1;
    core_buf_init(&r->body);
    uint64_t n = atomic_fetch_add(&s->next_req_id, 1);
    snprintf(r->id, sizeof r->id, "%08llx", (unsigned long long)(n & 0xffffffffULL));
    return r;
}

static void req_free(srv_req_t *r)
{
    if (!r)
        return;
    srv_hub_unwait(r);
    free(r->path);
    for (int i = 0; i < r->n_query; i++)
        free(r->query[i]);
    free(r->authorization);
    free(r->content_type);
    free(r->range);
    core_buf_destroy(&r->body);
    srv_upload_free(&r->upload);
    srv_resp_clear(&r->resp);
    free(r);
}

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

/* True when the header appears more than once. */
static bool header_repeated(struct lws *wsi, enum lws_token_indexes tok)
{
    char tmp[64];
    return lws_hdr_copy_fragment(wsi, tmp, sizeof tmp, tok, 1) >= 0;
}

static const struct {
    enum lws_token_indexes tok;
    const char *name;
} methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PUT_URI, "PUT"},       {WSI_TOKEN_DELETE_URI, "DELETE"},
    {WSI_TOKEN_PATCH_URI, "PATCH"},   {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};

/* ======================================================================================
 * worker hand-off
 * ====================================================================================== */

typedef struct srv_task {
    srv_req_t *r;
    void (*fn)(srv_req_t *r);
    int kind;
} srv_task_t;

static void task_run(void *arg)
{
    srv_task_t *t = arg;
    t->fn(t->r);
    server_complete(t->r, t->kind);
    free(t);
}

void server_dispatch(srv_req_t *r, void (*fn)(srv_req_t *r), int kind)
{
    srv_task_t *t = xmalloc(sizeof *t);
    t->r = r;
    t->fn = fn;
    t->kind = kind;
    r->inflight++;
    if (!r->srv->pool || core_pool_submit(r->srv->pool, task_run, t) < 0) {
        /* Only while shutting down: answer here instead. */
        r->inflight--;
        free(t);
        srv_reply_error(r, 503, "shutting_down", "The server is shutting down.");
        server_respond(r);
    }
}

void server_complete(srv_req_t *r, int kind)
{
    server_t *s = r->srv;
    struct srv_done *d = xmalloc(sizeof *d);
    d->r = r;
    d->kind = kind;
    d->next = NULL;
    pthread_mutex_lock(&s->done_mu);
    if (s->done_tail)
        s->done_tail->next = d;
    else
        s->done_head = d;
    s->done_tail = d;
    pthread_mutex_unlock(&s->done_mu);
    lws_cancel_service(s->ctx);
}

static void drain_completions(server_t *s)
{
    pthread_mutex_lock(&s->done_mu);
    struct srv_done *d = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->done_mu);
    while (d) {
        struct srv_done *next = d->next;
        srv_req_t *r = d->r;
        r->inflight--;
        if (r->orphaned) {
            if (r->inflight == 0)
                req_free(r);
        } else if (d->kind == SRV_DONE_RESPONSE && r->wants_wait) {
            r->wants_wait = false;
            srv_hub_wait(s->hub, r);
        } else if (d->kind == SRV_DONE_RESPONSE) {
            server_respond(r);
        } else {
            srv_upload_on_complete(r, d->kind);
        }
        free(d);
        d = next;
    }
}

void server_respond(srv_req_t *r)
{
    r->resp_ready = true;
    if (r->wsi) {
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_HTTP_CONTENT, r->srv->cfg->http_timeout_s);
        lws_callback_on_writable(r->wsi);
    }
}

void server_send_continue(srv_req_t *r)
{
    /* lws 4.1 never sends it; curl and other clients wait a second for it on large bodies. The
     * socket has had nothing written on this request yet, so this tiny write completes. */
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    unsigned char buf[LWS_PRE + sizeof cont];
    if (!r->wsi || !r->expect_continue)
        return;
    r->expect_continue = false;
    memcpy(buf + LWS_PRE, cont, sizeof cont - 1);
    lws_write(r->wsi, buf + LWS_PRE, sizeof cont - 1, LWS_WRITE_HTTP_HEADERS);
}

void server_pause_rx(srv_req_t *r)
{
    if (r->wsi) {
        lws_rx_flow_control(r->wsi, 0);
        /* Paused by us, not by the client: the idle timeout must not fire meanwhile. */
        lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
    }
}

void server_resume_rx(srv_req_t *r)
{
    if (r->wsi) {
        lws_rx_flow_control(r->wsi, 1);
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_HTTP_CONTENT, r->srv->cfg->http_timeout_s);
    }
}

/* ======================================================================================
 * request start
 * ====================================================================================== */

static void run_handler(srv_req_t *r)
{
    if ((r->route->flags & SRV_AUTH) && !srv_authenticate(r))
        return;
    r->route->handler(r);
}

static bool method_has_body(const char *m)
{
    return !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");
}

/* Replies before the body was read: the connection is closed afterwards, since the unread body
 * would otherwise be taken for the next request. */
static void early_reply(srv_req_t *r, int status, const char *code, const char *msg)
{
    srv_reply_error(r, status, code, "%s", msg);
    if (r->content_length > 0 || !r->has_length)
        r->close_after = true;
    server_respond(r);
}

/* True when addr is one of the comma-separated addresses in list. */
static bool in_list(const char *list, const char *addr)
{
    size_t n = strlen(addr);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (len == n && !strncmp(p, addr, n))
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

/* Behind a trusted proxy, the client is the last address the proxy appended to
 * X-Forwarded-For (earlier ones are whatever the client claimed). Anything that does not look
 * like an address leaves the peer as it is. */
static void forwarded_peer(const server_t *s, struct lws *wsi, char *peer, size_t cap)
{
    char xff[256];
    if (!*s->cfg->trusted_proxies || !in_list(s->cfg->trusted_proxies, peer) ||
        lws_hdr_copy(wsi, xff, sizeof xff, WSI_TOKEN_X_FORWARDED_FOR) <= 0)
        return;
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ')
        last++;
    size_t n = strspn(last, "0123456789abcdefABCDEF:.");
    if (n == 0 || n >= cap || (last[n] && last[n] != ' '))
        return;
    memcpy(peer, last, n);
    peer[n] = '\0';
}

/* The most body bytes a route that collects its body in memory takes. */
static uint64_t body_limit(const srv_req_t *r)
{
    return r->route && (r->route->flags & SRV_IMAGE_BODY) ? r->srv->cfg->face_max_image_bytes
                                                           : r->srv->cfg->max_json_bytes;
}

static int on_http(server_t *s, struct lws *wsi, srv_pss_t *pss, const char *uri)
{
    srv_req_t *r = req_new(s, wsi);
    pss->req = r;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            snprintf(r->method, sizeof r->method, "%s", methods[i].name);
            break;
        }
    }
    r->path = xstrdup(uri && *uri ? uri : "/");
    char frag[1024];
    while (r->n_query < SRV_MAX_QUERY &&
           lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, r->n_query) >= 0)
        r->query[r->n_query++] = xstrdup(frag);
    r->authorization = copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, 1024);
    r->content_type = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, 256);
    r->range = copy_header(wsi, WSI_TOKEN_HTTP_RANGE, 256);
    if (!pss->peer[0])
        lws_get_peer_simple(wsi, pss->peer, sizeof pss->peer);
    memcpy(r->peer, pss->peer, sizeof r->peer);
    forwarded_peer(s, wsi, r->peer, sizeof r->peer);
    r->expect_continue = false;
    char expect[32];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_EXPECT) > 0 &&
        lws_hdr_copy(wsi, expect, sizeof expect, WSI_TOKEN_HTTP_EXPECT) > 0 &&
        !strcasecmp(expect, "100-continue"))
        r->expect_continue = true;
    if (!strcmp(r->method, "HEAD")) {
        r->head = true;
        snprintf(r->method, sizeof r->method, "GET");
    }

    if (!r->method[0]) {
        early_reply(r, 405, "method_not_allowed", "This method is not supported.");
        return 0;
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        r->close_after = true;
        early_reply(r, lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 ? 400 : 411,
                    lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0
                        ? "bad_request" : "length_required",
                    "Transfer-Encoding is not supported: send the body with a Content-Length.");
        return 0;
    }
    int cl_len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (cl_len > 0) {
        char cl[32];
        if (header_repeated(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) || cl_len >= (int)sizeof cl ||
            lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0 ||
            core_parse_u64(cl, strlen(cl), &r->content_length) < 0) {
            r->close_after = true;
            early_reply(r, 400, "bad_request", "The Content-Length header is malformed.");
            return 0;
        }
        r->has_length = true;
    }
    bool body = method_has_body(r->method);
    if (!body && r->content_length > 0) {
        r->close_after = true;
        early_reply(r, 400, "bad_request", "This method takes no request body.");
        return 0;
    }

    char allow[64];
    int rc = srv_route_match(r, allow, sizeof allow);
    if (rc == -ENOENT) {
        early_reply(r, 404, "not_found", "There is nothing at this path.");
        return 0;
    }
    if (rc == -EPERM) {
        srv_resp_add_header(&r->resp, "allow:", "%s", allow);
        early_reply(r, 405, "method_not_allowed", "This path does not support this method.");
        return 0;
    }
    if (body && !r->has_length) {
        early_reply(r, 411, "length_required", "A request body needs a Content-Length header.");
        return 0;
    }

    unsigned flags = r->route->flags;
    if (flags & SRV_ON_LOOP) {
        r->route->handler(r);
        server_respond(r);
    } else if (flags & SRV_UPLOAD) {
        if (r->content_length > s->cfg->max_upload_bytes) {
            char msg[128];
            snprintf(msg, sizeof msg, "The upload is larger than this server's limit of %llu bytes.",
                     (unsigned long long)s->cfg->max_upload_bytes);
            early_reply(r, 413, "payload_too_large", msg);
            return 0;
        }
        srv_upload_start(r);
    } else if (flags & (SRV_JSON_BODY | SRV_IMAGE_BODY)) {
        if (r->content_length > body_limit(r)) {
            early_reply(r, 413, "payload_too_large",
                        flags & SRV_IMAGE_BODY ? "The request body is larger than this server's "
                                                 "limit (face_max_image_bytes)."
                                               : "The JSON body is too large.");
            return 0;
        }
        if (r->content_length == 0)
            server_dispatch(r, run_handler, SRV_DONE_RESPONSE);
    } else {
        server_dispatch(r, run_handler, SRV_DONE_RESPONSE);
    }
    return 0;
}

/* Returns -1 to close the connection. */
static int on_body(srv_req_t *r, const void *in, size_t len)
{
    r->bytes_in += len;
    if (r->lingering && r->bytes_in > SRV_LINGER_MAX_BYTES)
        return -1;
    if (r->resp_ready)
        return 0; /* already answered (an early error): discard */
    if (r->route && (r->route->flags & SRV_UPLOAD))
        srv_upload_body(r, in, len);
    else if (r->body.len + len <= body_limit(r))
        core_buf_append(&r->body, in, len);
    return 0;
}

/* Returns -1 to close the connection. */
static int on_body_done(srv_req_t *r)
{
    if (r->lingering)
        return -1;
    if (r->resp_ready || !r->route)
        return 0;
    if (r->route->flags & SRV_UPLOAD)
        srv_upload_body_done(r); /* the upload's own state decides when to finish */
    else if (r->route->flags & (SRV_JSON_BODY | SRV_IMAGE_BODY) && r->content_length > 0 &&
             r->inflight == 0)
        server_dispatch(r, run_handler, SRV_DONE_RESPONSE);
    return 0;
}

/* ======================================================================================
 * responses
 * ====================================================================================== */

static void log_request(srv_req_t *r)
{
    server_t *s = r->srv;
    if (r->logged)
        return;
    r->logged = true;
    double secs = (double)(core_mono_ns() - r->t0_ns) / 1e9;
    const char *route = srv_route_name(r);
    srv_metrics_record(s->metrics, route, r->head ? "HEAD" : r->method, r->resp.status, secs,
                       r->bytes_in);
    if (!s->cfg->log_requests)
        return;
    char path[300];
    core_log(CORE_LOG_INFO, "http.request",
             "id=%s method=%s route=%s path=%s status=%d bytes_in=%llu bytes_out=%llu ms=%.2f "
             "peer=%s account=%lld",
             r->id, r->head ? "HEAD" : (r->method[0] ? r->method : "-"), route,
             core_log_quote(r->path ? r->path : "-", path, sizeof path), r->resp.status,
             (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, secs * 1000.0,
             r->peer[0] ? r->peer : "-", (long long)r->account_id);
}

static int64_t resp_length(const srv_resp_t *resp)
{
    return resp->fd >= 0 ? resp->file_len : (int64_t)resp->body_len;
}

/* Headers, and with them the whole body when it is small, in one write: one syscall and one TCP
 * segment for most answers. Content-Length is added by hand rather than through
 * lws_add_http_common_headers, so lws keeps no byte count of its own that a combined write would
 * confuse. Sets *body_done when the body went out too. */
#define SRV_INLINE_BODY 8192
static int write_headers(struct lws *wsi, srv_req_t *r, bool *body_done)
{
    static unsigned char buf[LWS_PRE + 4096 + SRV_INLINE_BODY]; /* loop thread only */
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + LWS_PRE + 4096 - 1;
    srv_resp_t *resp = &r->resp;
    const char *ctype = resp->content_type[0] ? resp->content_type : "application/json";
    int64_t len = resp_length(resp);
    char num[24];
    int numlen = snprintf(num, sizeof num, "%lld", (long long)len);
    *body_done = false;
    if (lws_add_http_header_status(wsi, (unsigned)resp->status, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     (const unsigned char *)ctype, (int)strlen(ctype), &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                     (const unsigned char *)num, numlen, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-request-id:",
                                    (const unsigned char *)r->id, (int)strlen(r->id), &p, end))
        return -1;
    for (int i = 0; i < resp->n_extra; i++) {
        const srv_header_t *h = &resp->extra[i];
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)h->name,
                                        (const unsigned char *)h->value, (int)strlen(h->value), &p,
                                        end))
            return -1;
    }
    if (r->close_after &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end))
        return -1;
    if (lws_finalize_http_header(wsi, &p, end))
        return -1;
    size_t hlen = (size_t)(p - start);
    if (resp->fd < 0 && (r->head || resp->body_len <= SRV_INLINE_BODY)) {
        size_t blen = r->head ? 0 : resp->body_len;
        if (blen)
            memcpy(p, resp->body, blen);
        *body_done = true;
        r->body_sent = blen;
        hlen += blen;
    }
    if (lws_write(wsi, start, hlen, LWS_WRITE_HTTP_HEADERS) < (int)hlen)
        return -1;
    r->bytes_out += hlen;
    return 0;
}

/* Writes as much of the body as the socket takes. Returns 1 when all is sent, 0 when more
 * remains (a WRITEABLE callback is requested), -1 on error. */
static int write_body(struct lws *wsi, srv_req_t *r)
{
    static unsigned char buf[LWS_PRE + SRV_CHUNK]; /* loop thread only */
    srv_resp_t *resp = &r->resp;
    int64_t total = r->head ? 0 : resp_length(resp);
    for (;;) {
        int64_t sent = resp->fd >= 0 ? r->file_sent : (int64_t)r->body_sent;
        int64_t left = total - sent;
        if (left <= 0)
            return 1;
        size_t n = left > SRV_CHUNK ? SRV_CHUNK : (size_t)left;
        if (resp->fd >= 0) {
            ssize_t got = pread(resp->fd, buf + LWS_PRE, n, resp->file_off + r->file_sent);
            if (got <= 0)
                return -1; /* the file shrank or failed: the response cannot be completed */
            n = (size_t)got;
        } else {
            memcpy(buf + LWS_PRE, resp->body + r->body_sent, n);
        }
        bool last = (int64_t)n == left;
        if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP) < (int)n)
            return -1;
        r->bytes_out += n;
        if (resp->fd >= 0)
            r->file_sent += (int64_t)n;
        else
            r->body_sent += n;
        if (last)
            return 1;
        if (lws_send_pipe_choked(wsi)) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
}

static int on_writeable(struct lws *wsi, srv_pss_t *pss)
{
    srv_req_t *r = pss->req;
    if (!r || !r->resp_ready || r->inflight > 0 || r->lingering)
        return 0;
    if (!r->headers_sent) {
        r->headers_sent = true;
        bool body_done = false;
        if (write_headers(wsi, r, &body_done) < 0)
            return -1;
        if (!body_done) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        int rc = write_body(wsi, r);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return 0;
    }
    /* the transaction is complete */
    log_request(r);
    bool close = r->close_after;
    if (close && r->has_length && r->bytes_in < r->content_length) {
        /* Lingering close, as nginx does: the client may still be sending the body it was
         * refused, and closing with unread data makes the kernel reset the connection, which can
         * lose our answer before the client reads it. Read and drop the rest for a while. */
        r->lingering = true;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, SRV_LINGER_SECS);
        return 0;
    }
    pss->req = NULL;
    req_free(r);
    if (close)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static void on_closed(srv_pss_t *pss)
{
    srv_req_t *r = pss->req;
    pss->req = NULL;
    if (!r)
        return;
    r->wsi = NULL;
    if (r->resp.status == 0)
        r->resp.status = 499; /* client went away before the answer, as nginx logs it */
    log_request(r);
    if (r->inflight > 0)
        r->orphaned = true;
    else
        req_free(r);
}

/* Upgrades: lws would switch to h2c (HTTP/2 in clear text) on request, and its HTTP/2 lacks
 * later upstream fixes, so it is refused with a plain HTTP/1.1 answer and the connection closed.
 * lws cannot be told to ignore the header and serve the request as HTTP/1.1. WebSocket
 * upgrades are refused the same way until the event hub serves them. */
static int refuse_upgrade(struct lws *wsi, const char *what)
{
    static const char body[] =
        "{\"error\":{\"code\":\"upgrade_refused\",\"message\":\"This server speaks HTTP/1.1 "
        "only: send the request again without an Upgrade header.\"}}\n";
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    core_log(CORE_LOG_INFO, "http.upgrade_refused", "upgrade=%.32s", what ? what : "-");
    if (lws_add_http_common_headers(wsi, 400, "application/json", sizeof body - 1, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    memcpy(start, body, sizeof body - 1);
    lws_write(wsi, start, sizeof body - 1, LWS_WRITE_HTTP_FINAL);
    return -1;
}

/* The WebSocket's token: Authorization: Bearer, or ?token=. Returns a malloc'd copy or NULL. */
static char *ws_token(struct lws *wsi)
{
    char buf[128];
    int n = lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 7 && !strncasecmp(buf, "Bearer ", 7))
        return xstrdup(buf + 7);
    const char *v = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof buf);
    return v ? xstrdup(v) : NULL;
}

/* ?after=N, or ?after=now (-1): only events from the moment of connecting. */
static int64_t ws_after(struct lws *wsi)
{
    char buf[64];
    uint64_t v = 0;
    const char *a = lws_get_urlarg_by_name(wsi, "after=", buf, sizeof buf);
    if (a && !strcmp(a, "now"))
        return -1;
    if (!a || core_parse_u64(a, strlen(a), &v) < 0)
        return 0;
    return (int64_t)v;
}

/* ======================================================================================
 * the lws protocol callback
 * ====================================================================================== */

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    srv_pss_t *pss = user;
    server_t *s = lws_context_user(lws_get_context(wsi));
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        if (s) {
            drain_completions(s);
            if (s->hub)
                srv_hub_drain(s->hub);
        }
        return 0;
    }
    if (reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE) {
        char uri[16] = "";
        if (in && !strcmp((const char *)in, "websocket") &&
            lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0 && !strcmp(uri, "/v1/ws"))
            return 0;
        return refuse_upgrade(wsi, in);
    }
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION) {
        char uri[16] = "";
        return lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0 && !strcmp(uri, "/v1/ws")
                   ? 0 : 1;
    }
    /* lws calls some reasons (a connection that never became a request) without per-session
     * data. */
    if (!pss)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (pss->req) /* a pipelined request before the previous answer was sent */
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
    case LWS_CALLBACK_ESTABLISHED: {
        /* The kernel's send buffer per client is bounded too (it autotunes to megabytes
         * otherwise): with 10,000 clients, memory stays bounded and a stalled client is seen as
         * one by our own queue, not hidden in the kernel. */
        int sndbuf = 64 * 1024;
        setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        pss->ws = srv_ws_open(s, wsi, ws_token(wsi), ws_after(wsi));
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        if (pss->ws)
            srv_ws_receive(pss->ws, in, len);
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (pss->ws)
            srv_ws_pong(pss->ws);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return pss->ws ? srv_ws_writeable(pss->ws) : 0;
    case LWS_CALLBACK_CLOSED:
        srv_ws_closed(pss->ws);
        pss->ws = NULL;
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", callback_http, sizeof(srv_pss_t), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ======================================================================================
 * lifecycle
 * ====================================================================================== */

static void lws_log_bridge(int level, const char *line)
{
    char q[512];
    size_t n = strlen(line);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
    core_log(level == LLL_ERR ? CORE_LOG_ERROR : CORE_LOG_WARN, "lws", "msg=%s",
             core_log_quote(tmp, q, sizeof q));
}

static void on_job_event(void *ud, const store_event_t *ev)
{
    server_t *s = ud;
    srv_hub_publish(s->hub, ev);
}

/* The face engine from face_models (default <data_dir>/models/face-api). Missing models are
 * not fatal: jobs_faces_open logs why and the faces calls answer 503. */
static int open_faces(server_t *s)
{
    const config_t *cfg = s->cfg;
    char dir[4096];
    if (*cfg->face_models)
        snprintf(dir, sizeof dir, "%s", cfg->face_models);
    else
        snprintf(dir, sizeof dir, "%s/models/face-api", cfg->data_dir);
    jobs_faces_config_t fc = {
        .models_dir = dir,
        .detector = strcmp(cfg->face_detector, "ssd") ? FACE_DETECTOR_TINY : FACE_DETECTOR_SSD,
        .frame_rate = cfg->face_frame_rate,
        .threads = cfg->face_threads,
        .contexts = cfg->face_contexts,
        .identity_threshold = (float)cfg->face_identity_threshold,
        .max_pixels = (long long)cfg->face_max_pixels,
        .max_frames = cfg->face_max_frames,
        .max_faces = cfg->face_max_faces,
    };
    return jobs_faces_open(&fc, &s->faces);
}

int server_new(const config_t *cfg, server_t **out)
{
    int rc = 0;
    server_t *s = xcalloc(1, sizeof *s);
    s->cfg = cfg;
    s->started_ms = core_now_ms();
    pthread_mutex_init(&s->done_mu, NULL);
    enum core_log_level lvl = CORE_LOG_INFO;
    core_log_parse_level(cfg->log_level, &lvl);
    core_log_set_level(lvl);
    media_init();
    if ((rc = auth_init()) < 0)
        goto fail;
    if ((rc = store_open(cfg->data_dir, &s->st)) < 0) {
        core_log(CORE_LOG_ERROR, "store.open", "data_dir=%s error=\"%s\"", cfg->data_dir,
                 core_strerror(rc));
        goto fail;
    }
    s->metrics = srv_metrics_new();
    s->tokens = srv_token_cache_new();
    s->hub = srv_hub_new(s);
    s->limit_user = auth_limiter_new(cfg->login_max_failures, cfg->login_window_s);
    s->limit_addr = auth_limiter_new(cfg->login_max_failures_addr, cfg->login_window_s);
    int nreq = cfg->request_threads > 0 ? cfg->request_threads : core_ncpu();
    s->pool = core_pool_new(nreq, "req");
    if ((rc = open_faces(s)) < 0)
        goto fail;
    if (!s->pool) {
        rc = -EAGAIN;
        goto fail;
    }

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_bridge);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.iface = cfg->host;
    info.protocols = protocols;
    info.user = s;
    info.options = LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE * 0 |
                   LWS_SERVER_OPTION_DISABLE_IPV6 * (strchr(cfg->host, ':') == NULL);
    info.max_http_header_data = 16384;
    info.max_http_header_pool = 1024;
    info.pt_serv_buf_size = 256 * 1024;
    info.timeout_secs = (unsigned)cfg->http_timeout_s;
    info.keepalive_timeout = cfg->keepalive_timeout_s;
    info.server_string = "personad";
    info.alpn = "http/1.1";
    /* lws's own idle policy is off: it reschedules a timer in one sorted list (an O(n) insert)
     * on every frame of every connection, which at 10,000 WebSocket clients took 29 % of the
     * loop. The hub keeps WebSockets alive itself with one sweep every few seconds. */
    static const lws_retry_bo_t no_idle_policy = {
        .secs_since_valid_ping = 0,
        .secs_since_valid_hangup = 0,
    };
    info.retry_and_idle_policy = &no_idle_policy;
    if (*cfg->tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
    }
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        core_log(CORE_LOG_ERROR, "http.listen", "host=%s port=%d error=\"cannot listen\"",
                 cfg->host, cfg->port);
        rc = -EADDRINUSE;
        goto fail;
    }
    srv_hub_start(s->hub);
    /* Jobs start once the context exists: their events wake it. */
    jobs_config_t jc = {
        .workers = cfg->workers > 0 ? cfg->workers : core_ncpu(),
        .max_attempts = cfg->job_max_attempts,
        .thumbnail_size = cfg->thumbnail_size,
        .asr_threads = cfg->asr_threads,
        .faces = s->faces,
        .data_dir = cfg->data_dir,
        .on_event = on_job_event,
        .event_ud = s,
        .textgen_url = cfg->textgen,
        .textgen_api_key = cfg->textgen_api_key,
        .textgen_model = cfg->textgen_model,
        .textgen_base_model = cfg->textgen_base_model,
        .textgen_train_steps = cfg->textgen_train_steps,
        .textgen_timeout_s = cfg->textgen_timeout_s,
        .textgen_fallback_s = cfg->textgen_fallback_s,
        .textgen_retry_min_ms = cfg->textgen_retry_min_ms,
        .textgen_retry_max_ms = cfg->textgen_retry_max_ms,
        .textgen_max_tokens = cfg->textgen_max_tokens,
    };
    s->jobs = jobs_start(s->st, &jc);
    if (!s->jobs) {
        rc = -EAGAIN;
        goto fail;
    }
    s->vhost = lws_get_vhost_by_name(s->ctx, "default");
    s->port = s->vhost ? lws_get_vhost_listen_port(s->vhost) : cfg->port;
    printf("personad listening on %s://%s:%d\n", *cfg->tls_cert ? "https" : "http", cfg->host,
           s->port);
    fflush(stdout);
    core_log(CORE_LOG_INFO, "http.listen", "host=%s port=%d tls=%s data_dir=%s workers=%d "
             "request_threads=%d textgen=%s", cfg->host, s->port, *cfg->tls_cert ? "on" : "off",
             cfg->data_dir, jc.workers, nreq, *cfg->textgen ? cfg->textgen : "off");
    *out = s;
    return 0;
fail:
    server_free(&s);
    return rc < 0 ? rc : -EIO;
}

int server_run(server_t *s)
{
    while (!s->stop) {
        if (lws_service(s->ctx, 0) < 0)
            return -EIO;
    }
    return 0;
}

void server_stop(server_t *s)
{
    s->stop = 1;
    if (s->ctx)
        lws_cancel_service(s->ctx);
}

int server_port(const server_t *s)
{
    return s->port;
}

void server_free(server_t **ps)
{
    server_t *s = ps ? *ps : NULL;
    if (!s)
        return;
    /* Workers first, so no completion arrives for a destroyed context; then the context, whose
     * close callbacks free the remaining requests; then what the handlers used. */
    jobs_faces_stop(s->faces); /* a long video's faces step ends at its next frame */
    jobs_stop(&s->jobs); /* no more events are published */
    core_pool_free(&s->pool);
    jobs_faces_free(&s->faces); /* after every job and request that could hold a context */
    if (s->ctx) {
        drain_completions(s);
        if (s->hub)
            srv_hub_drain(s->hub);
        lws_context_destroy(s->ctx);
    }
    drain_completions(s);
    store_free(&s->st);
    auth_limiter_free(&s->limit_user);
    auth_limiter_free(&s->limit_addr);
    srv_metrics_free(&s->metrics);
    srv_token_cache_free(&s->tokens);
    srv_hub_free(&s->hub);
    pthread_mutex_destroy(&s->done_mu);
    free(s);
    *ps = NULL;
}
