/* server/hub.c: the event hub — WebSocket clients (/v1/ws) and long-poll waiters
 * (/v1/events), per account. Events reach it from job threads (srv_hub_publish, any thread) and
 * leave it on the event-loop thread, which owns everything else here.
 *
 * A WebSocket client's states (srv_ws_t.state), all transitions on the loop:
 *
 *   AUTHING --token ok--> FETCHING <--gap or refetch--+
 *      |                  |    ^                      |
 *      +--bad token:      |    +-- queue half empty --+--- BACKLOG (queue full, more to read)
 *         close 4001      +--page < room--> LIVE -----+
 *                                             |
 *                   live queue > bound: 4008  +--> CLOSING
 *
 * Invariants: (1) events are queued to a client in seq order with no gap: an event is queued
 * only when its seq is last_queued + 1; anything else sends the client back to FETCHING, which
 * reads the log from last_queued; (2) events that arrive while FETCHING set `refetch`, so a
 * fetch that raced with a commit is followed by another; (3) a client's queue never holds more
 * than ws_queue_events events, and a replay reads only as much of the log as the queue has room
 * for, so only a live client that stops reading is closed as too slow; (4) frames are written
 * only from LWS_CALLBACK_SERVER_WRITEABLE.
 * Together: replay then live, no gap, no duplicate, bounded memory. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HUB_BUCKETS 1024
/* Keepalive: a ping after ws_ping_idle_s without a frame from the client, the connection dropped
 * after twice that plus 10 s; checked by one sweep over all clients every second (a few µs per
 * client). */
#define WS_SWEEP_S 1
#define HUB_FETCH_PAGE 500
#define LP_PAGE 100

struct srv_hub_event {
    atomic_int refs;
    int64_t account_id;
    int64_t seq;
    size_t len;
    char json[];
};

typedef struct hub_account {
    int64_t account_id;
    srv_ws_t *clients;
    srv_req_t *waiters;
    int64_t max_seen;           /* newest seq published since start */
    struct hub_account *next;
} hub_account_t;

struct srv_hub {
    server_t *srv;
    hub_account_t *buckets[HUB_BUCKETS];
    pthread_mutex_t inbox_mu;   /* guards inbox only */
    srv_hub_event_t **inbox;
    size_t inbox_len, inbox_cap;
    lws_sorted_usec_list_t prune_sul;
    lws_sorted_usec_list_t keepalive_sul;
};

/* WS_BACKLOG: more of the log is to be read, but the queue is full; the next fetch starts when
 * the writer has made room. */
enum ws_state { WS_AUTHING, WS_FETCHING, WS_BACKLOG, WS_LIVE, WS_CLOSING };

struct srv_ws {
    server_t *srv;
    struct lws *wsi;            /* NULL once closed */
    srv_ws_t *next, *prev;      /* in the account's list, while registered */
    hub_account_t *acct;
    enum ws_state state;
    char *token;
    int64_t account_id, device_id;
    int64_t last_queued, acked;
    bool refetch;
    int fetch_limit;            /* set by the loop before a fetch: the room left in the queue */
    srv_hub_event_t **queue;    /* ring of ws_queue_events */
    size_t qhead, qlen, qcap;
    int inflight;
    bool orphaned;
    int64_t last_rx_ms;         /* the last frame (ack or pong) from the client */
    bool ping_due;
    int close_code;
    const char *close_reason;
    /* a fetch's result, filled by a worker */
    store_event_t *fetched;
    size_t nfetched;
    int fetch_rc;
    bool auth_ok;
};

/* ======================================================================================
 * events
 * ====================================================================================== */

static srv_hub_event_t *event_new(const store_event_t *ev)
{
    size_t len = strlen(ev->json);
    srv_hub_event_t *e = xmalloc(sizeof *e + len + 1);
    atomic_init(&e->refs, 1);
    e->account_id = ev->account_id;
    e->seq = ev->seq;
    e->len = len;
    memcpy(e->json, ev->json, len + 1);
    return e;
}

static void event_unref(srv_hub_event_t *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1)
        free(e);
}

void srv_hub_publish(srv_hub_t *h, const store_event_t *ev)
{
    srv_hub_event_t *e = event_new(ev);
    pthread_mutex_lock(&h->inbox_mu);
    if (h->inbox_len == h->inbox_cap) {
        h->inbox_cap = h->inbox_cap ? h->inbox_cap * 2 : 64;
        h->inbox = xrealloc(h->inbox, h->inbox_cap * sizeof *h->inbox);
    }
    h->inbox[h->inbox_len++] = e;
    pthread_mutex_unlock(&h->inbox_mu);
    lws_cancel_service(h->srv->ctx);
}

/* ======================================================================================
 * accounts
 * ====================================================================================== */

static hub_account_t *account_get(srv_hub_t *h, int64_t account_id, bool create)
{
    hub_account_t **b = &h->buckets[(uint64_t)account_id % HUB_BUCKETS];
    for (hub_account_t *a = *b; a; a = a->next)
        if (a->account_id == account_id)
            return a;
    if (!create)
        return NULL;
    hub_account_t *a = xcalloc(1, sizeof *a);
    a->account_id = account_id;
    a->next = *b;
    *b = a;
    return a;
}

/* ======================================================================================
 * WebSocket clients
 * ====================================================================================== */

static void ws_close(srv_ws_t *c, int code, const char *why)
{
    if (c->state == WS_CLOSING)
        return;
    c->state = WS_CLOSING;
    c->close_code = code;
    c->close_reason = why;
    if (c->wsi) {
        /* The close frame goes out when the socket takes it; a client that reads nothing any
         * more is dropped without it after 10 s. */
        lws_callback_on_writable(c->wsi);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 10);
    }
}

static void ws_enqueue(srv_ws_t *c, srv_hub_event_t *e)
{
    if (c->qlen == c->qcap) {
        core_log(CORE_LOG_WARN, "ws.too_slow", "account=%lld device=%lld queued=%zu acked=%lld",
                 (long long)c->account_id, (long long)c->device_id, c->qlen, (long long)c->acked);
        ws_close(c, 4008, "too slow: reconnect with ?after=<last ack>");
        return;
    }
    atomic_fetch_add(&e->refs, 1);
    c->queue[(c->qhead + c->qlen) % c->qcap] = e;
    c->qlen++;
    c->last_queued = e->seq;
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
}

static void ws_dispatch(srv_ws_t *c, void (*fn)(srv_ws_t *c), int kind);

static void fetch_task(srv_ws_t *c)
{
    if (c->last_queued < 0) { /* ?after=now: start at the account's newest event */
        int64_t last = 0;
        if (store_event_last_seq(c->srv->st, c->account_id, &last) < 0)
            last = 0;
        c->last_queued = c->acked = last;
    }
    c->fetch_rc = store_event_list(c->srv->st, c->account_id, c->last_queued, c->fetch_limit,
                                   &c->fetched, &c->nfetched);
}

/* Reads the log after last_queued, as much as the queue has room for. Replay is paced by the
 * client's reading: a long replay never overflows the queue (only a live client that stops
 * reading does). */
static void ws_fetch(srv_ws_t *c)
{
    size_t room = c->qcap - c->qlen;
    if (room == 0) {
        c->state = WS_BACKLOG;
        return;
    }
    c->state = WS_FETCHING;
    c->refetch = false;
    c->fetch_limit = (int)(room < HUB_FETCH_PAGE ? room : HUB_FETCH_PAGE);
    ws_dispatch(c, fetch_task, SRV_DONE_WS_FETCHED);
}

static void ws_deliver(srv_ws_t *c, srv_hub_event_t *e)
{
    if (c->state == WS_FETCHING) {
        c->refetch = true;
        return;
    }
    if (c->state == WS_BACKLOG) /* the coming fetch reads it from the log */
        return;
    if (c->state != WS_LIVE || e->seq <= c->last_queued)
        return;
    if (e->seq == c->last_queued + 1)
        ws_enqueue(c, e);
    else
        ws_fetch(c); /* a gap: events published out of order; read them from the log */
}

static void auth_task(srv_ws_t *c)
{
    uint8_t hash[32];
    store_device_t dev;
    c->auth_ok = c->token && auth_token_hash(c->token, strlen(c->token), hash) == 0 &&
                 store_device_by_token(c->srv->st, hash, &dev) == 0;
    if (c->auth_ok) {
        c->account_id = dev.account_id;
        c->device_id = dev.id;
    }
}

static void ws_register(srv_ws_t *c)
{
    hub_account_t *a = account_get(c->srv->hub, c->account_id, true);
    c->acct = a;
    c->prev = NULL;
    c->next = a->clients;
    if (a->clients)
        a->clients->prev = c;
    a->clients = c;
}

static void ws_unregister(srv_ws_t *c)
{
    hub_account_t *a = c->acct;
    if (!a)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->acct = NULL;
}

static void ws_free(srv_ws_t *c)
{
    while (c->qlen) {
        event_unref(c->queue[c->qhead]);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    store_event_list_free(&c->fetched, c->nfetched);
    free(c->queue);
    free(c->token);
    free(c);
}

/* Loop: a worker finished a step for c. */
static void ws_on_complete(srv_ws_t *c, int kind)
{
    c->inflight--;
    if (c->orphaned) {
        if (c->inflight == 0)
            ws_free(c);
        return;
    }
    if (c->state == WS_CLOSING)
        return;
    if (kind == SRV_DONE_WS_AUTHED) {
        if (!c->auth_ok) {
            ws_close(c, 4001, "unauthorized: the token is unknown or was revoked");
            return;
        }
        core_log(CORE_LOG_INFO, "ws.open", "account=%lld device=%lld after=%lld",
                 (long long)c->account_id, (long long)c->device_id, (long long)c->last_queued);
        ws_register(c);
        ws_fetch(c);
        return;
    }
    /* SRV_DONE_WS_FETCHED */
    if (c->fetch_rc < 0) {
        ws_close(c, 1011, "could not read the event log");
        return;
    }
    size_t n = c->nfetched;
    for (size_t i = 0; i < n && c->state != WS_CLOSING; i++) {
        if (c->fetched[i].seq <= c->last_queued)
            continue;
        srv_hub_event_t *e = event_new(&c->fetched[i]);
        ws_enqueue(c, e);
        event_unref(e);
    }
    store_event_list_free(&c->fetched, c->nfetched);
    c->nfetched = 0;
    if (c->state == WS_CLOSING)
        return;
    if ((int)n == c->fetch_limit || c->refetch)
        ws_fetch(c);
    else
        c->state = WS_LIVE;
}

typedef struct ws_task {
    srv_ws_t *c;
    void (*fn)(srv_ws_t *c);
    int kind;
} ws_task_t;

static void ws_task_run(void *arg)
{
    ws_task_t *t = arg;
    t->fn(t->c);
    srv_hub_complete(t->c->srv->hub, t->c, t->kind);
    free(t);
}

static void ws_dispatch(srv_ws_t *c, void (*fn)(srv_ws_t *c), int kind)
{
    ws_task_t *t = xmalloc(sizeof *t);
    t->c = c;
    t->fn = fn;
    t->kind = kind;
    c->inflight++;
    if (!c->srv->pool || core_pool_submit(c->srv->pool, ws_task_run, t) < 0) {
        c->inflight--;
        free(t);
        ws_close(c, 1001, "shutting down");
    }
}

/* ---- completions of WebSocket tasks go through the hub's own list ---- */

typedef struct ws_done {
    srv_ws_t *c;
    int kind;
    struct ws_done *next;
} ws_done_t;

static pthread_mutex_t ws_done_mu = PTHREAD_MUTEX_INITIALIZER;
static ws_done_t *ws_done_head, *ws_done_tail;

void srv_hub_complete(srv_hub_t *h, srv_ws_t *c, int kind)
{
    ws_done_t *d = xmalloc(sizeof *d);
    d->c = c;
    d->kind = kind;
    d->next = NULL;
    pthread_mutex_lock(&ws_done_mu);
    if (ws_done_tail)
        ws_done_tail->next = d;
    else
        ws_done_head = d;
    ws_done_tail = d;
    pthread_mutex_unlock(&ws_done_mu);
    lws_cancel_service(h->srv->ctx);
}

/* ---- lws side ---- */

srv_ws_t *srv_ws_open(server_t *s, struct lws *wsi, char *token, int64_t after)
{
    srv_ws_t *c = xcalloc(1, sizeof *c);
    c->srv = s;
    c->wsi = wsi;
    c->token = token;
    c->last_queued = after; /* -1: "now", resolved by the first fetch */
    c->acked = after < 0 ? 0 : after;
    c->qcap = (size_t)s->cfg->ws_queue_events;
    c->queue = xcalloc(c->qcap, sizeof *c->queue);
    c->state = WS_AUTHING;
    c->last_rx_ms = core_now_ms();
    ws_dispatch(c, auth_task, SRV_DONE_WS_AUTHED);
    return c;
}

void srv_ws_closed(srv_ws_t *c)
{
    if (!c)
        return;
    if (c->acct)
        core_log(CORE_LOG_INFO, "ws.close", "account=%lld device=%lld acked=%lld queued=%zu",
                 (long long)c->account_id, (long long)c->device_id, (long long)c->acked, c->qlen);
    ws_unregister(c);
    c->wsi = NULL;
    if (c->inflight > 0)
        c->orphaned = true;
    else
        ws_free(c);
}

void srv_ws_receive(srv_ws_t *c, const char *in, size_t len)
{
    /* Only acks are expected: {"type":"ack","seq":N}, one per client per burst, on the loop
     * thread: read without a JSON parser. Anything else, or a malformed ack, is ignored. */
    char msg[128];
    c->last_rx_ms = core_now_ms();
    if (len >= sizeof msg)
        return;
    memcpy(msg, in, len);
    msg[len] = '\0';
    const char *seq = strstr(msg, "\"seq\":");
    if (!strstr(msg, "\"type\":\"ack\"") || !seq)
        return;
    seq += 6;
    while (*seq == ' ')
        seq++;
    size_t n = strspn(seq, "0123456789");
    uint64_t v;
    if (core_parse_u64(seq, n, &v) == 0 && (int64_t)v > c->acked && (int64_t)v <= c->last_queued)
        c->acked = (int64_t)v;
}

/* Frames header + payload of one text frame into out (room for 10 + len bytes); returns the
 * bytes written. Server frames are unmasked (RFC 6455 5.1); no extension is negotiated. */
static size_t frame_text(unsigned char *out, const char *payload, size_t len)
{
    size_t h = 0;
    out[h++] = 0x81; /* FIN, text */
    if (len < 126) {
        out[h++] = (unsigned char)len;
    } else if (len < 65536) {
        out[h++] = 126;
        out[h++] = (unsigned char)(len >> 8);
        out[h++] = (unsigned char)len;
    } else {
        out[h++] = 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(out + h, payload, len);
    return h + len;
}

#define WS_BATCH (64 * 1024)

int srv_ws_writeable(srv_ws_t *c)
{
    /* Every queued event that fits goes out in one send: at 10,000 clients the fan-out's cost is
     * the number of sends. The frames are made here and written raw (lws passes LWS_WRITE_HTTP
     * through on a WebSocket connection); an event too big for the batch buffer is written on
     * its own. */
    static unsigned char buf[LWS_PRE + WS_BATCH]; /* loop thread only */
    if (c->state == WS_CLOSING) {
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    if (c->ping_due) {
        c->ping_due = false;
        /* A payload, because lws 4.1 reports no LWS_CALLBACK_RECEIVE_PONG for an empty pong. */
        buf[LWS_PRE] = 'k';
        if (lws_write(c->wsi, buf + LWS_PRE, 1, LWS_WRITE_PING) < 1)
            return -1;
    }
    while (c->qlen) {
        size_t used = 0;
        while (c->qlen) {
            srv_hub_event_t *e = c->queue[c->qhead];
            if (used + 10 + e->len > WS_BATCH)
                break;
            used += frame_text(buf + LWS_PRE + used, e->json, e->len);
            c->qhead = (c->qhead + 1) % c->qcap;
            c->qlen--;
            event_unref(e);
        }
        if (used == 0) { /* the head event alone is larger than the batch */
            srv_hub_event_t *e = c->queue[c->qhead];
            unsigned char *big = malloc(LWS_PRE + e->len);
            if (!big)
                return -1;
            memcpy(big + LWS_PRE, e->json, e->len);
            int n = lws_write(c->wsi, big + LWS_PRE, e->len, LWS_WRITE_TEXT);
            free(big);
            if (n < (int)e->len)
                return -1;
            c->qhead = (c->qhead + 1) % c->qcap;
            c->qlen--;
            event_unref(e);
        } else if (lws_write(c->wsi, buf + LWS_PRE, used, LWS_WRITE_HTTP) < (int)used) {
            return -1;
        }
        if (c->qlen && lws_send_pipe_choked(c->wsi)) {
            lws_callback_on_writable(c->wsi);
            break;
        }
    }
    if (c->state == WS_BACKLOG && c->qlen <= c->qcap / 2)
        ws_fetch(c);
    return 0;
}

void srv_ws_pong(srv_ws_t *c)
{
    c->last_rx_ms = core_now_ms();
}

static void keepalive_sweep(lws_sorted_usec_list_t *sul)
{
    srv_hub_t *h = lws_container_of(sul, srv_hub_t, keepalive_sul);
    int64_t now = core_now_ms();
    int64_t ping_ms = (int64_t)h->srv->cfg->ws_ping_idle_s * 1000;
    int64_t hangup_ms = 2 * ping_ms + 10000;
    for (size_t b = 0; b < HUB_BUCKETS; b++) {
        for (hub_account_t *a = h->buckets[b]; a; a = a->next) {
            for (srv_ws_t *c = a->clients; c; c = c->next) {
                int64_t idle = now - c->last_rx_ms;
                if (c->state == WS_CLOSING) {
                    continue;
                } else if (idle >= hangup_ms) {
                    core_log(CORE_LOG_INFO, "ws.ping_timeout", "account=%lld device=%lld idle_ms=%lld",
                             (long long)c->account_id, (long long)c->device_id, (long long)idle);
                    ws_close(c, 1001, "no answer to pings");
                } else if (idle >= ping_ms && c->wsi &&
                           c->state != WS_CLOSING) {
                    c->ping_due = true;
                    lws_callback_on_writable(c->wsi);
                }
            }
        }
    }
    lws_sul_schedule(h->srv->ctx, 0, &h->keepalive_sul, keepalive_sweep,
                     WS_SWEEP_S * LWS_US_PER_SEC);
}

/* ======================================================================================
 * long-poll waiters
 * ====================================================================================== */

static void waiter_remove(srv_req_t *r)
{
    hub_account_t *a = r->wait_acct;
    if (!a)
        return;
    if (r->wait_prev)
        r->wait_prev->wait_next = r->wait_next;
    else
        a->waiters = r->wait_next;
    if (r->wait_next)
        r->wait_next->wait_prev = r->wait_prev;
    r->wait_acct = NULL;
    r->wait_next = r->wait_prev = NULL;
    lws_sul_cancel(&r->wait_sul);
}

static void waiter_wake(srv_req_t *r)
{
    waiter_remove(r);
    r->poll_now = true;
    server_dispatch(r, srv_h_events, SRV_DONE_RESPONSE);
}

static void waiter_timeout(lws_sorted_usec_list_t *sul)
{
    srv_req_t *r = lws_container_of(sul, srv_req_t, wait_sul);
    waiter_wake(r);
}

void srv_hub_wait(srv_hub_t *h, srv_req_t *r)
{
    hub_account_t *a = account_get(h, r->account_id, true);
    if (a->max_seen > r->poll_after) { /* published while the handler was reading the log */
        r->poll_now = true;
        server_dispatch(r, srv_h_events, SRV_DONE_RESPONSE);
        return;
    }
    r->wait_acct = a;
    r->wait_prev = NULL;
    r->wait_next = a->waiters;
    if (a->waiters)
        a->waiters->wait_prev = r;
    a->waiters = r;
    lws_sul_schedule(h->srv->ctx, 0, &r->wait_sul, waiter_timeout,
                     (lws_usec_t)r->poll_wait_s * LWS_US_PER_SEC);
}

void srv_hub_unwait(srv_req_t *r)
{
    waiter_remove(r);
}

/* ======================================================================================
 * the loop's side: drain the inbox and the WebSocket completions
 * ====================================================================================== */

void srv_hub_drain(srv_hub_t *h)
{
    pthread_mutex_lock(&ws_done_mu);
    ws_done_t *d = ws_done_head;
    ws_done_head = ws_done_tail = NULL;
    pthread_mutex_unlock(&ws_done_mu);
    while (d) {
        ws_done_t *next = d->next;
        ws_on_complete(d->c, d->kind);
        free(d);
        d = next;
    }

    pthread_mutex_lock(&h->inbox_mu);
    srv_hub_event_t **events = h->inbox;
    size_t n = h->inbox_len;
    h->inbox = NULL;
    h->inbox_len = h->inbox_cap = 0;
    pthread_mutex_unlock(&h->inbox_mu);
    for (size_t i = 0; i < n; i++) {
        srv_hub_event_t *e = events[i];
        hub_account_t *a = account_get(h, e->account_id, true);
        if (e->seq > a->max_seen)
            a->max_seen = e->seq;
        for (srv_ws_t *c = a->clients; c; c = c->next)
            ws_deliver(c, e);
        while (a->waiters) /* every waiter of the account wants this event */
            waiter_wake(a->waiters);
        event_unref(e);
    }
    free(events);
}

/* ======================================================================================
 * lifecycle and retention
 * ====================================================================================== */

static void prune_task(void *arg)
{
    server_t *s = arg;
    int64_t deleted = 0;
    int rc = store_event_prune(s->st, (int64_t)s->cfg->event_retention_days * 86400000LL,
                               s->cfg->event_retention_max, &deleted);
    core_log(rc == 0 ? CORE_LOG_INFO : CORE_LOG_ERROR, "events.prune", "deleted=%lld rc=%d",
             (long long)deleted, rc);
}

static void prune_tick(lws_sorted_usec_list_t *sul)
{
    srv_hub_t *h = lws_container_of(sul, srv_hub_t, prune_sul);
    if (h->srv->pool)
        core_pool_submit(h->srv->pool, prune_task, h->srv);
    lws_sul_schedule(h->srv->ctx, 0, &h->prune_sul, prune_tick, 3600 * LWS_US_PER_SEC);
}

srv_hub_t *srv_hub_new(server_t *s)
{
    srv_hub_t *h = xcalloc(1, sizeof *h);
    h->srv = s;
    pthread_mutex_init(&h->inbox_mu, NULL);
    return h;
}

void srv_hub_start(srv_hub_t *h)
{
    /* Retention runs a minute after start, then hourly. */
    lws_sul_schedule(h->srv->ctx, 0, &h->prune_sul, prune_tick, 60 * LWS_US_PER_SEC);
    lws_sul_schedule(h->srv->ctx, 0, &h->keepalive_sul, keepalive_sweep,
                     WS_SWEEP_S * LWS_US_PER_SEC);
}

void srv_hub_free(srv_hub_t **ph)
{
    srv_hub_t *h = ph ? *ph : NULL;
    if (!h)
        return;
    pthread_mutex_lock(&ws_done_mu);
    ws_done_t *d = ws_done_head;
    ws_done_head = ws_done_tail = NULL;
    pthread_mutex_unlock(&ws_done_mu);
    while (d) { /* only orphans can be left: their connections are gone */
        ws_done_t *next = d->next;
        if (--d->c->inflight == 0 && d->c->orphaned)
            ws_free(d->c);
        free(d);
        d = next;
    }
    for (size_t i = 0; i < h->inbox_len; i++)
        event_unref(h->inbox[i]);
    free(h->inbox);
    for (size_t b = 0; b < HUB_BUCKETS; b++) {
        while (h->buckets[b]) {
            hub_account_t *a = h->buckets[b];
            h->buckets[b] = a->next;
            free(a);
        }
    }
    pthread_mutex_destroy(&h->inbox_mu);
    free(h);
    *ph = NULL;
}
