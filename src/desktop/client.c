/* desktop client: the WebSocket connection to personad's event stream, on libwebsockets'
 * service loop (the calling thread; nothing here blocks). It connects to
 * <server>/v1/ws?after=<last seq received> with the bearer token, parses each text frame and
 * queues it to the worker, sends {"type":"ack","seq":N} for what the worker has persisted (at
 * most one every DESK__ACK_MS), and reconnects after a drop with desk__backoff.
 *
 * Connection states: idle --do_connect--> connecting --ESTABLISHED--> up --CLOSED/ERROR-->
 * idle (schedule_reconnect: backoff, reset when it was up DESK__BACKOFF_STABLE_MS or more).
 * Unauthorized (HTTP 401/403, close code 4001) ends the program with status 1. The worker
 * wakes the loop with lws_cancel_service(); a 50 ms tick also checks signals and --once. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libwebsockets.h>

#include "desktop/internal.h"

#define DESK__ACK_MS 50
#define DESK__TICK_MS 50

typedef struct client {
    const desk__opts_t *opts;
    desk__worker_t *w;
    volatile sig_atomic_t *stop;
    struct lws_context *ctx;
    struct lws *wsi;           /* the connection, NULL when idle */
    bool up;                   /* established */
    bool tls;
    char *host, *base, *auth, *path, *host_header;
    int port;
    int64_t rx_seq;            /* highest seq queued to the worker */
    int64_t ack_sent;
    int64_t last_ack_ns;
    int64_t up_since_ns;
    int close_code;
    desk__backoff_t bo;
    bool reconnect_pending;
    core_buf_t rx;             /* a message being reassembled from fragments */
    bool rx_drop;              /* the message in progress is too big: dropped */
    lws_sorted_usec_list_t sul_connect, sul_tick;
    bool quit;
    int status;
    int64_t finish_deadline_ns;
} client_t;

/* The running client's context, for desk__client_notify; set and cleared under g_ctx_lock so
 * the worker never wakes a context being destroyed. */
static pthread_mutex_t g_ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lws_context *g_ctx;

void desk__client_notify(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_ctx_lock);
    if (g_ctx)
        lws_cancel_service(g_ctx);
    pthread_mutex_unlock(&g_ctx_lock);
}

int desk__parse_url(const char *url, bool *tls, char **host, int *port, char **path) {
    const char *p;
    *host = *path = NULL;
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "ws://", 5) == 0) {
        *tls = false;
        *port = 80;
    } else if (strncmp(url, "https://", 8) == 0 || strncmp(url, "wss://", 6) == 0) {
        *tls = true;
        *port = 443;
    } else
        return -EINVAL;
    p = strstr(url, "://") + 3;
    const char *hs = p, *he;
    if (*p == '[') {
        he = strchr(p, ']');
        if (!he)
            return -EINVAL;
        hs = p + 1;
        p = he + 1;
    } else {
        while (*p && *p != ':' && *p != '/' && *p != '?' && *p != '#')
            p++;
        he = p;
    }
    if (he == hs)
        return -EINVAL;
    if (*p == ':') {
        p++;
        const char *ps = p;
        while (*p >= '0' && *p <= '9')
            p++;
        uint64_t v;
        if (core_parse_u64(ps, (size_t)(p - ps), &v) < 0 || v == 0 || v > 65535)
            return -EINVAL;
        *port = (int)v;
    }
    if (*p && *p != '/')
        return -EINVAL;
    const char *pe = p + strlen(p);
    if (strpbrk(p, "?#"))
        return -EINVAL;
    while (pe > p && pe[-1] == '/')
        pe--;
    *host = xstrndup(hs, (size_t)(he - hs));
    *path = xstrndup(p, (size_t)(pe - p));
    return 0;
}

/* ---- connection ------------------------------------------------------------------- */

static void do_connect(lws_sorted_usec_list_t *sul);

static void schedule_reconnect(client_t *c) {
    if (c->quit || c->reconnect_pending)
        return;
    if (c->up_since_ns && core_mono_ns() - c->up_since_ns >= DESK__BACKOFF_STABLE_MS * 1000000ll)
        desk__backoff_reset(&c->bo);
    c->up_since_ns = 0;
    int64_t ms = desk__backoff_next(&c->bo);
    c->reconnect_pending = true;
    core_log(CORE_LOG_INFO, "desktop.reconnect", "in_ms=%" PRId64 " attempt=%d", ms, c->bo.attempt);
    lws_sul_schedule(c->ctx, 0, &c->sul_connect, do_connect, ms * LWS_US_PER_MS);
}

static void do_connect(lws_sorted_usec_list_t *sul) {
    client_t *c = lws_container_of(sul, client_t, sul_connect);
    c->reconnect_pending = false;
    if (c->quit || c->wsi)
        return;
    free(c->path);
    c->path = c->rx_seq < 0 ? xasprintf("%s/v1/ws?after=now", c->base)
                            : xasprintf("%s/v1/ws?after=%" PRId64, c->base, c->rx_seq);
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = c->ctx;
    i.address = c->host;
    i.port = c->port;
    i.path = c->path;
    i.host = c->host_header;
    i.origin = c->host_header;
    i.ssl_connection = c->tls ? LCCSCF_USE_SSL : 0;
    i.ietf_version_or_minus_one = -1;
    i.local_protocol_name = "persona-desktop";
    i.pwsi = &c->wsi;
    static const lws_retry_bo_t idle = {.secs_since_valid_ping = 40,
                                        .secs_since_valid_hangup = 75};
    i.retry_and_idle_policy = &idle;
    c->up = false;
    c->close_code = 0;
    core_log(CORE_LOG_DEBUG, "desktop.connect", "host=%s port=%d after=%" PRId64, c->host, c->port,
             c->rx_seq);
    if (!lws_client_connect_via_info(&i)) {
        c->wsi = NULL;
        schedule_reconnect(c);
    }
}

static void fatal(client_t *c, const char *why) {
    core_log(CORE_LOG_ERROR, "desktop.auth", "status=refused reason=\"%s\"", why);
    c->status = DESK_EXIT_FAIL;
    c->quit = true;
    lws_cancel_service(c->ctx);
}

/* ---- acks, --once, signals: run on every wake-up and tick ---------------------------- */

static void poll_state(client_t *c) {
    if (c->quit)
        return;
    if (*c->stop) {
        core_log(CORE_LOG_INFO, "desktop.stop", "reason=signal");
        c->status = DESK_EXIT_OK;
        c->quit = true;
        lws_cancel_service(c->ctx); /* return from lws_service now */
        return;
    }
    int64_t acked = desk__worker_acked(c->w);
    bool ack_due = c->up && acked > c->ack_sent;
    if (ack_due && core_mono_ns() - c->last_ack_ns >= DESK__ACK_MS * 1000000ll)
        lws_callback_on_writable(c->wsi);
    int fin = desk__worker_finished(c->w);
    if (fin >= 0) {
        if (!c->finish_deadline_ns)
            c->finish_deadline_ns = core_mono_ns() + 1000000000ll; /* 1 s to send the last ack */
        if (!ack_due || core_mono_ns() > c->finish_deadline_ns) {
            c->status = fin;
            c->quit = true;
            lws_cancel_service(c->ctx);
        }
    }
}

static void on_tick(lws_sorted_usec_list_t *sul) {
    client_t *c = lws_container_of(sul, client_t, sul_tick);
    poll_state(c);
    if (!c->quit)
        lws_sul_schedule(c->ctx, 0, &c->sul_tick, on_tick, DESK__TICK_MS * LWS_US_PER_MS);
}

static void on_message(client_t *c) {
    desk__event_t ev;
    if (desk__event_parse(c->rx.data, c->rx.len, &ev) < 0) {
        core_log(CORE_LOG_WARN, "desktop.event", "status=bad bytes=%zu", c->rx.len);
        return;
    }
    if (ev.seq <= c->rx_seq) { /* replay overlap */
        desk__event_clear(&ev);
        return;
    }
    c->rx_seq = ev.seq;
    core_log(CORE_LOG_DEBUG, "desktop.event", "seq=%" PRId64 " type=%d question=%s", ev.seq,
             (int)ev.type, ev.qid);
    desk__worker_push(c->w, &ev);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
    (void)user;
    struct lws_context *ctx = lws_get_context(wsi);
    client_t *c = ctx ? lws_context_user(ctx) : NULL;
    if (!c)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                         (const unsigned char *)c->auth, (int)strlen(c->auth), p,
                                         end))
            return -1;
        break;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->up = true;
        c->up_since_ns = core_mono_ns();
        c->ack_sent = 0; /* a new connection has had no ack */
        core_log(CORE_LOG_INFO, "desktop.connected", "host=%s port=%d after=%" PRId64, c->host,
                 c->port, c->rx_seq);
        poll_state(c);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_is_first_fragment(wsi)) {
            core_buf_reset(&c->rx);
            c->rx_drop = false;
        }
        if (!c->rx_drop && c->rx.len + len > DESK__MAX_FRAME) {
            core_log(CORE_LOG_WARN, "desktop.event", "status=too_big bytes=%zu", c->rx.len + len);
            c->rx_drop = true;
            core_buf_reset(&c->rx);
        }
        if (!c->rx_drop)
            core_buf_append(&c->rx, in, len);
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            if (!c->rx_drop && !lws_frame_is_binary(wsi))
                on_message(c);
            core_buf_reset(&c->rx);
            c->rx_drop = false;
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        int64_t acked = desk__worker_acked(c->w);
        if (acked <= c->ack_sent)
            break;
        unsigned char buf[LWS_PRE + 64];
        int n = snprintf((char *)buf + LWS_PRE, 64, "{\"type\":\"ack\",\"seq\":%" PRId64 "}", acked);
        if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n)
            return -1;
        c->ack_sent = acked;
        c->last_ack_ns = core_mono_ns();
        poll_state(c); /* --once may be waiting on this ack */
        break;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *b = in;
            c->close_code = b[0] << 8 | b[1];
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        const char *why = in ? (const char *)in : "unknown";
        int status = lws_http_client_http_response(wsi);
        char q[256];
        core_log(CORE_LOG_WARN, "desktop.disconnected", "status=connect_failed http=%d reason=%s",
                 status, core_log_quote(why, q, sizeof q));
        c->wsi = NULL;
        c->up = false;
        if (status == 401 || status == 403 || strcasestr(why, "unauthorized") ||
            strstr(why, " 401") || strstr(why, " 403"))
            fatal(c, "the server refused the token (HTTP 401)");
        else
            schedule_reconnect(c);
        break;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        core_log(CORE_LOG_INFO, "desktop.disconnected", "status=closed code=%d", c->close_code);
        c->wsi = NULL;
        c->up = false;
        if (c->close_code == 4001)
            fatal(c, "the server refused the token (close code 4001)");
        else
            schedule_reconnect(c);
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        poll_state(c);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"persona-desktop", callback, 0, 1 << 16, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log(int level, const char *line) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", line);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    char q[600];
    core_log(level == LLL_ERR ? CORE_LOG_WARN : CORE_LOG_DEBUG, "desktop.lws", "msg=%s",
             core_log_quote(msg, q, sizeof q));
}

int desk__client_run(const desk__opts_t *opts, desk__worker_t *w, int64_t start_seq,
                     volatile sig_atomic_t *stop) {
    client_t c;
    memset(&c, 0, sizeof c);
    c.opts = opts;
    c.w = w;
    c.stop = stop;
    c.rx_seq = start_seq;
    c.status = DESK_EXIT_FAIL;
    core_buf_init(&c.rx);
    desk__backoff_init(&c.bo, (uint64_t)core_now_ms() ^ (uint64_t)getpid() << 32);
    if (desk__parse_url(opts->server, &c.tls, &c.host, &c.port, &c.base) < 0) {
        core_log(CORE_LOG_ERROR, "desktop.start", "status=error reason=bad_server_url");
        goto out;
    }
    bool v6 = strchr(c.host, ':') != NULL;
    c.host_header = xasprintf(v6 ? "[%s]:%d" : "%s:%d", c.host, c.port);
    c.auth = xasprintf("Bearer %s", opts->token);

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = &c;
    info.options = c.tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
    info.fd_limit_per_thread = 16;
    c.ctx = lws_create_context(&info);
    if (!c.ctx) {
        core_log(CORE_LOG_ERROR, "desktop.start", "status=error reason=lws_context");
        goto out;
    }
    pthread_mutex_lock(&g_ctx_lock);
    g_ctx = c.ctx;
    pthread_mutex_unlock(&g_ctx_lock);
    lws_sul_schedule(c.ctx, 0, &c.sul_connect, do_connect, 1);
    lws_sul_schedule(c.ctx, 0, &c.sul_tick, on_tick, DESK__TICK_MS * LWS_US_PER_MS);
    while (!c.quit)
        if (lws_service(c.ctx, 0) < 0)
            break;
    c.quit = true;
    pthread_mutex_lock(&g_ctx_lock);
    g_ctx = NULL;
    pthread_mutex_unlock(&g_ctx_lock);
    lws_context_destroy(c.ctx); /* closes the connection; callbacks see c.quit */
out:
    core_buf_destroy(&c.rx);
    free(c.host);
    free(c.base);
    free(c.auth);
    free(c.path);
    free(c.host_header);
    return c.status;
}
