/* fanout: the fan-out benchmark's client (docs/benchmarks.md, "Fan-out"). One process, one
 * libwebsockets context, N WebSocket clients of one account; a second thread asks M questions
 * over plain blocking HTTP and notes when each POST returns; the lws thread notes when each
 * client receives each question's first event. Latency = arrival - POST returned.
 *
 *   fanout --port P [--host 127.0.0.1] --mode persona|socketio --clients N [--questions M]
 *          [--interval-ms 200] [--window 256] [--ws-token T] [--post-token T] [--no-ack]
 *          [--settle-s 10] [--connect-timeout-s 120] [--uv] [--short]
 *
 * --short asks questions whose words are in no passage, so each answer is one sentence ("I have
 * nothing about that yet."): 1 answer.delta + answer.done per client instead of ~14 events.
 * --uv runs the clients on lws's libuv loop instead of its poll loop.
 *
 * persona:  clients open ws://HOST:PORT/v1/ws?after=LAST (LAST: the account's last seq, read
 *           from GET /v1/events before connecting) with the device token, ack every event and
 *           time each question's first answer.delta; questions are POST /v1/questions.
 * socketio: clients speak Engine.IO 4 / Socket.IO 5 over a plain WebSocket
 *           (/socket.io/?EIO=4&transport=websocket: "40" to join "/", "3" to each ping "2") and
 *           time the first "answer.delta" event; questions are POST /question?id=Q
 *           (bench/flask_fanout.py).
 *
 * Connections are opened with at most --window handshakes in flight, so the server's accept
 * queue is never flooded. Once all are established, a warm-up question (not counted) must reach
 * every connected client (its answer.done): that proves every client is caught up and live.
 * Then M questions, --interval-ms apart; after the last one the program waits until every
 * connected client has every question's first delta, or --settle-s.
 *
 * Output: one line of key=value figures on stdout (latencies in ms over all client x question
 * samples; delivered/expected counts first deltas against N x M, clients that failed to connect
 * included in expected), plus progress on stderr. Exit 0 when the run completed (whatever the
 * figures), 1 on a setup failure, 2 on usage. */
#include <libwebsockets.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_PERSONA, MODE_SOCKETIO };
enum cstate { C_IDLE, C_CONNECTING, C_OPEN, C_READY, C_FAILED, C_CLOSED };

typedef struct client {
    int idx;
    enum cstate state;
    struct lws *wsi;
    long long last_seq;     /* persona: newest seq received, acked from WRITEABLE */
    long long acked_seq;
    char out[16];           /* socketio: a pending control packet ("40", "3") */
    char cur_type;          /* type of the frame being received: 'd' delta, 'D' done, 0 other */
    bool in_frame;          /* a frame's later fragments follow */
    long long cur_qid;
} client_t;

#define MAX_SLOTS 256
typedef struct qslot {
    long long qid;
    int index;               /* 0: warm-up, 1..M: measured, -1: not ours (yet) */
    int64_t t_send, t_ret;   /* CLOCK_MONOTONIC ns */
    int64_t *first;          /* per client: first answer.delta arrival, 0 = none */
    atomic_int done_clients; /* clients that saw its answer.done */
    atomic_int delta_clients;
} qslot_t;

static enum mode mode = MODE_PERSONA;
static const char *host = "127.0.0.1";
static int port, nclients = 100, nquestions = 20, interval_ms = 200, window = 256;
static int settle_s = 10, connect_timeout_s = 120, use_uv, no_ack, short_answer;
static const char *ws_token, *post_token;
static long long after_seq;

static client_t *clients;
static struct lws_context *ctx;
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static qslot_t slots[MAX_SLOTS];
static int nslots;
static int started, inflight, nopen, nready, nfailed, nclosed_later;
static atomic_int poster_state; /* 0 wait, 1 go, 2 asking, 3 done, 4 failed */
static atomic_int warm_index_qid_set;
static lws_sorted_usec_list_t tick_sul;
static int finishing; /* the figures are out: closes are ours */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- question slots, shared by the poster thread and the lws thread ---- */

static qslot_t *slot_for(long long qid, bool create)
{
    pthread_mutex_lock(&slots_mu);
    qslot_t *s = NULL;
    for (int i = 0; i < nslots; i++)
        if (slots[i].qid == qid) {
            s = &slots[i];
            break;
        }
    if (!s && create && nslots < MAX_SLOTS) {
        s = &slots[nslots++];
        s->qid = qid;
        s->index = -1;
        s->first = calloc((size_t)nclients, sizeof *s->first);
    }
    pthread_mutex_unlock(&slots_mu);
    return s;
}

/* ---- blocking HTTP (the asking side) ---- */

/* Sends one request on a fresh connection; returns the status, the body in resp (NUL-ended). */
static int http_req(const char *method, const char *path, const char *token, const char *ctype,
                    const char *body, char *resp, size_t respsz)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    char req[4096];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s%s%s%s"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     method, path, host, port, token ? "Authorization: Bearer " : "",
                     token ? token : "", token ? "\r\n" : "", ctype ? "Content-Type: " : "",
                     ctype ? ctype : "", ctype ? "\r\n" : "", blen, body ? body : "");
    if (n <= 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    long clen = -1;
    char *bodyp = NULL;
    for (;;) {
        ssize_t r = recv(fd, resp + got, respsz - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        resp[got] = 0;
        if (!bodyp && (bodyp = strstr(resp, "\r\n\r\n"))) {
            bodyp += 4;
            const char *cl = strcasestr(resp, "\r\ncontent-length:");
            clen = cl ? atol(cl + 17) : -1;
        }
        if (bodyp && clen >= 0 && (long)(got - (size_t)(bodyp - resp)) >= clen)
            break;
        if (got + 1 >= respsz)
            break;
    }
    close(fd);
    resp[got] = 0;
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    if (bodyp)
        memmove(resp, bodyp, strlen(bodyp) + 1);
    else
        resp[0] = 0;
    return status;
}

static const char *topics[] = {"the garden", "the sea", "my grandmother", "the old house",
                               "winter mornings", "the river", "music", "the city at night"};

/* Asks one question; fills its slot. Returns 0 or -1. */
static int ask(int index)
{
    char body[256], resp[8192], path[96];
    int64_t t_send, t_ret;
    long long qid = -1;
    int st;
    if (mode == MODE_PERSONA) {
        if (short_answer) /* words of no passage: "I have nothing about that yet." */
            snprintf(body, sizeof body, "{\"text\":\"xyzzy plugh quux\"}");
        else
            snprintf(body, sizeof body, "{\"text\":\"what did I say about %s? (%d)\"}",
                     topics[index % 8], index);
        t_send = now_ns();
        st = http_req("POST", "/v1/questions", post_token, "application/json", body, resp,
                      sizeof resp);
        t_ret = now_ns();
        const char *id = strstr(resp, "\"id\":");
        if (st != 202 || !id) {
            fprintf(stderr, "fanout: POST /v1/questions -> %d %s\n", st, resp);
            return -1;
        }
        qid = atoll(id + 5);
    } else {
        qid = 1000 + index;
        snprintf(path, sizeof path, "/question?id=%lld", qid);
        t_send = now_ns();
        st = http_req("POST", path, NULL, "application/json", "{}", resp, sizeof resp);
        t_ret = now_ns();
        if (st != 202) {
            fprintf(stderr, "fanout: POST /question -> %d %s\n", st, resp);
            return -1;
        }
    }
    qslot_t *s = slot_for(qid, true);
    if (!s)
        return -1;
    pthread_mutex_lock(&slots_mu);
    s->t_send = t_send;
    s->t_ret = t_ret;
    s->index = index;
    pthread_mutex_unlock(&slots_mu);
    return 0;
}

static void *poster(void *arg)
{
    (void)arg;
    while (atomic_load(&poster_state) == 0)
        usleep(1000);
    /* warm-up: index 0, must reach every ready client */
    if (ask(0) < 0) {
        atomic_store(&poster_state, 4);
        lws_cancel_service(ctx);
        return NULL;
    }
    atomic_store(&warm_index_qid_set, 1);
    while (atomic_load(&poster_state) == 1)
        usleep(1000);
    for (int q = 1; q <= nquestions && atomic_load(&poster_state) == 2; q++) {
        int64_t t0 = now_ns();
        if (ask(q) < 0) {
            atomic_store(&poster_state, 4);
            break;
        }
        int64_t left = (int64_t)interval_ms * 1000000 - (now_ns() - t0);
        if (q < nquestions && left > 0)
            usleep((useconds_t)(left / 1000));
    }
    if (atomic_load(&poster_state) == 2)
        atomic_store(&poster_state, 3);
    lws_cancel_service(ctx);
    return NULL;
}

/* ---- the WebSocket side ---- */

static void start_client(client_t *c);

static void on_event(client_t *c, char type, long long qid)
{
    int64_t t = now_ns();
    qslot_t *s = slot_for(qid, true);
    if (!s)
        return;
    if (type == 'd' && !s->first[c->idx]) {
        s->first[c->idx] = t;
        atomic_fetch_add(&s->delta_clients, 1);
    } else if (type == 'D') {
        atomic_fetch_add(&s->done_clients, 1);
    }
}

static long long num_after(const char *in, size_t len, const char *key)
{
    size_t kl = strlen(key);
    const char *k = memmem(in, len, key, kl);
    return k ? atoll(k + kl) : -1;
}

static void rx_persona(client_t *c, const char *in, size_t len, bool first, bool final)
{
    if (first) {
        c->cur_type = 0;
        c->cur_qid = -1;
        long long seq = num_after(in, len, "\"seq\":");
        if (seq > c->last_seq)
            c->last_seq = seq;
        if (memmem(in, len, "\"type\":\"answer.delta\"", 21))
            c->cur_type = 'd';
        else if (memmem(in, len, "\"type\":\"answer.done\"", 20))
            c->cur_type = 'D';
    }
    if (c->cur_type && c->cur_qid < 0)
        c->cur_qid = num_after(in, len, "\"question_id\":");
    if (final) {
        if (c->cur_type && c->cur_qid >= 0)
            on_event(c, c->cur_type, c->cur_qid);
        if (!no_ack && c->last_seq > c->acked_seq)
            lws_callback_on_writable(c->wsi);
    }
}

static void rx_socketio(client_t *c, const char *in, size_t len)
{
    if (len >= 1 && in[0] == '0') { /* Engine.IO open: join the default namespace */
        strcpy(c->out, "40");
        lws_callback_on_writable(c->wsi);
    } else if (len >= 1 && in[0] == '2') { /* ping */
        strcpy(c->out, "3");
        lws_callback_on_writable(c->wsi);
    } else if (len >= 2 && in[0] == '4' && in[1] == '0') { /* joined */
        if (c->state == C_OPEN) {
            c->state = C_READY;
            nready++;
        }
    } else if (len >= 2 && in[0] == '4' && in[1] == '2') {
        char type = 0;
        if (memmem(in, len, "[\"answer.delta\"", 15))
            type = 'd';
        else if (memmem(in, len, "[\"answer.done\"", 14))
            type = 'D';
        long long qid = num_after(in, len, "\"question_id\":");
        if (type && qid >= 0)
            on_event(c, type, qid);
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    client_t *c = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (mode == MODE_PERSONA) {
            unsigned char **p = in, *end = *p + len;
            char auth[256];
            snprintf(auth, sizeof auth, "Bearer %s", ws_token);
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                             (unsigned char *)auth, (int)strlen(auth), p, end))
                return -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!c)
            return 0;
        inflight--;
        c->state = C_OPEN;
        nopen++;
        if (mode == MODE_PERSONA) {
            c->state = C_READY;
            nready++;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c && c->state == C_CONNECTING) {
            inflight--;
            c->state = C_FAILED;
            nfailed++;
            if (nfailed <= 5)
                fprintf(stderr, "fanout: client %d: connection failed: %s\n", c->idx,
                        in ? (char *)in : "?");
        }
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c)
            return 0;
        if (mode == MODE_PERSONA)
            rx_persona(c, in, len, lws_is_first_fragment(wsi), lws_is_final_fragment(wsi));
        else
            rx_socketio(c, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        unsigned char buf[LWS_PRE + 64];
        size_t n;
        if (mode == MODE_PERSONA) {
            if (c->last_seq <= c->acked_seq)
                return 0;
            n = (size_t)snprintf((char *)buf + LWS_PRE, 64, "{\"type\":\"ack\",\"seq\":%lld}",
                                 c->last_seq);
            c->acked_seq = c->last_seq;
        } else {
            if (!c->out[0])
                return 0;
            n = strlen(c->out);
            memcpy(buf + LWS_PRE, c->out, n);
            c->out[0] = 0;
        }
        if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n)
            return -1;
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c && c->state != C_FAILED && c->state != C_CLOSED) {
            if (c->state == C_CONNECTING)
                inflight--;
            if (c->state == C_READY)
                nready--;
            if (c->state == C_OPEN || c->state == C_READY)
                nopen--;
            c->state = C_CLOSED;
            nclosed_later++;
            if (nclosed_later <= 5 && !finishing)
                fprintf(stderr, "fanout: client %d closed\n", c->idx);
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"fanout", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static char ws_path[128];

static void start_client(client_t *c)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = host;
    ci.port = port;
    ci.path = ws_path;
    ci.host = host;
    ci.origin = host;
    ci.protocol = NULL;
    ci.local_protocol_name = "fanout";
    ci.userdata = c;
    ci.pwsi = &c->wsi;
    c->state = C_CONNECTING;
    inflight++;
    started++;
    if (!lws_client_connect_via_info(&ci) && c->state == C_CONNECTING) {
        inflight--;
        c->state = C_FAILED;
        nfailed++;
    }
}

static void tick(lws_sorted_usec_list_t *sul)
{
    while (started < nclients && inflight < window)
        start_client(&clients[started]);
    lws_sul_schedule(ctx, 0, &tick_sul, tick, 20 * LWS_US_PER_MS);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, size_t n, double p)
{
    if (!n)
        return -1;
    size_t k = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[k] / 1e6;
}

static void usage(void)
{
    fprintf(stderr, "usage: fanout --port P [--host H] --mode persona|socketio --clients N "
                    "[--questions M] [--interval-ms MS] [--window W] [--ws-token T] "
                    "[--post-token T] [--after SEQ] [--no-ack] [--settle-s S] "
                    "[--connect-timeout-s S] [--uv] [--short]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-ack")) { no_ack = 1; continue; }
        if (!strcmp(a, "--uv")) { use_uv = 1; continue; }
        if (!strcmp(a, "--short")) { short_answer = 1; continue; }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "persona")) mode = MODE_PERSONA;
            else if (!strcmp(v, "socketio")) mode = MODE_SOCKETIO;
            else usage();
        }
        else if (!strcmp(a, "--clients")) nclients = atoi(v);
        else if (!strcmp(a, "--questions")) nquestions = atoi(v);
        else if (!strcmp(a, "--interval-ms")) interval_ms = atoi(v);
        else if (!strcmp(a, "--window")) window = atoi(v);
        else if (!strcmp(a, "--ws-token")) ws_token = v;
        else if (!strcmp(a, "--post-token")) post_token = v;
        else if (!strcmp(a, "--after")) after_seq = atoll(v);
        else if (!strcmp(a, "--settle-s")) settle_s = atoi(v);
        else if (!strcmp(a, "--connect-timeout-s")) connect_timeout_s = atoi(v);
        else usage();
    }
    if (port <= 0 || nclients <= 0 || nquestions <= 0 || nquestions > MAX_SLOTS - 8 ||
        window <= 0 || (mode == MODE_PERSONA && (!ws_token || !post_token)))
        usage();

    /* Every client is a file descriptor; lws sizes its fd table from this limit at
     * context creation. Root may raise the hard limit too. */
    struct rlimit rl = {65536, 65536};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)nclients + 64)
        fprintf(stderr, "fanout: RLIMIT_NOFILE is %llu, too low for %d clients\n",
                (unsigned long long)rl.rlim_cur, nclients);

    if (mode == MODE_PERSONA) {
        /* Start after the account's last event, so nothing old is replayed to N clients. */
        char resp[65536];
        int st = http_req("GET", "/v1/events?after=9000000000000000&wait=0", post_token, NULL,
                          NULL, resp, sizeof resp);
        const char *ls = strstr(resp, "\"last_seq\":");
        if (st != 200 || !ls) {
            fprintf(stderr, "fanout: GET /v1/events -> %d %s\n", st, resp);
            return 1;
        }
        after_seq = atoll(ls + 11);
        snprintf(ws_path, sizeof ws_path, "/v1/ws?after=%lld", after_seq);
    } else {
        snprintf(ws_path, sizeof ws_path, "/socket.io/?EIO=4&transport=websocket");
    }

    clients = calloc((size_t)nclients, sizeof *clients);
    for (int i = 0; i < nclients; i++) {
        clients[i].idx = i;
        clients[i].cur_qid = -1;
    }

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    /* No fd_limit_per_thread: with it lws looks connections up by a linear scan (wsi_from_fd
     * took half of this client's time at 10,000); sized from RLIMIT_NOFILE it indexes them.
     * No idle policy either: lws re-sorts a timer list on every frame of every connection. */
    static const lws_retry_bo_t no_idle_policy = {0};
    info.retry_and_idle_policy = &no_idle_policy;
    info.timeout_secs = (unsigned)connect_timeout_s;
    if (use_uv)
        info.options |= LWS_SERVER_OPTION_LIBUV;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "fanout: lws_create_context failed\n");
        return 1;
    }

    pthread_t pt;
    pthread_create(&pt, NULL, poster, NULL);

    /* 1. connect */
    int64_t t_conn0 = now_ns(), deadline = t_conn0 + (int64_t)connect_timeout_s * 1000000000;
    tick(&tick_sul);
    while ((started < nclients || inflight > 0 || nopen > nready) && now_ns() < deadline)
        lws_service(ctx, 0);
    double connect_s = (double)(now_ns() - t_conn0) / 1e9;
    fprintf(stderr, "fanout: %d/%d clients ready in %.2f s (%d failed)\n", nready, nclients,
            connect_s, nfailed);

    /* 2. warm-up: one question that must reach every ready client */
    int64_t t_warm0 = now_ns();
    atomic_store(&poster_state, 1);
    deadline = t_warm0 + 60LL * 1000000000;
    qslot_t *warm = NULL;
    while (now_ns() < deadline && atomic_load(&poster_state) != 4) {
        lws_service(ctx, 0);
        if (!warm && atomic_load(&warm_index_qid_set)) {
            pthread_mutex_lock(&slots_mu);
            for (int i = 0; i < nslots; i++)
                if (slots[i].index == 0)
                    warm = &slots[i];
            pthread_mutex_unlock(&slots_mu);
        }
        if (warm && atomic_load(&warm->done_clients) >= nready)
            break;
    }
    int warm_got = warm ? atomic_load(&warm->done_clients) : 0;
    double warm_s = (double)(now_ns() - t_warm0) / 1e9;
    fprintf(stderr, "fanout: warm-up question reached %d/%d ready clients in %.2f s\n", warm_got,
            nready, warm_s);

    /* 3. the measured questions */
    int ready_at_start = nready;
    atomic_store(&poster_state, 2);
    int64_t settle_deadline = 0;
    for (;;) {
        lws_service(ctx, 0);
        int ps = atomic_load(&poster_state);
        if (ps == 4)
            break;
        if (ps == 3) {
            if (!settle_deadline)
                settle_deadline = now_ns() + (int64_t)settle_s * 1000000000;
            int all = 1;
            pthread_mutex_lock(&slots_mu);
            for (int i = 0; i < nslots; i++)
                if (slots[i].index > 0 && atomic_load(&slots[i].delta_clients) < nready)
                    all = 0;
            pthread_mutex_unlock(&slots_mu);
            if (all || now_ns() > settle_deadline)
                break;
        }
    }
    pthread_join(pt, NULL);

    /* 4. figures */
    size_t cap = (size_t)nclients * (size_t)nquestions, n = 0, ns = 0;
    int64_t *lat = malloc(cap * sizeof *lat), *lat_send = malloc(cap * sizeof *lat_send);
    int64_t *post_ms = malloc((size_t)nquestions * sizeof *post_ms);
    size_t npost = 0;
    long long negative = 0;
    for (int i = 0; i < nslots; i++) {
        qslot_t *s = &slots[i];
        if (s->index <= 0)
            continue;
        post_ms[npost++] = s->t_ret - s->t_send;
        for (int k = 0; k < nclients; k++) {
            if (!s->first[k])
                continue;
            int64_t d = s->first[k] - s->t_ret;
            if (d < 0) {
                negative++;
                d = 0;
            }
            lat[n++] = d;
            lat_send[ns++] = s->first[k] - s->t_send;
        }
    }
    qsort(lat, n, sizeof *lat, cmp_i64);
    qsort(lat_send, ns, sizeof *lat_send, cmp_i64);
    qsort(post_ms, npost, sizeof *post_ms, cmp_i64);
    printf("mode=%s clients=%d ready=%d failed=%d closed=%d questions=%d asked=%zu "
           "delivered=%zu expected=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
           "send_p50_ms=%.2f send_p99_ms=%.2f post_p50_ms=%.2f connect_s=%.2f warmup_s=%.2f "
           "negative=%lld\n",
           mode == MODE_PERSONA ? "persona" : "socketio", nclients, ready_at_start, nfailed,
           nclosed_later, nquestions, npost, n, cap, pct(lat, n, 0.50), pct(lat, n, 0.99),
           n ? (double)lat[n - 1] / 1e6 : -1, pct(lat_send, ns, 0.50), pct(lat_send, ns, 0.99),
           pct(post_ms, npost, 0.50), connect_s, warm_s, negative);
    fflush(stdout);
    finishing = 1;
    lws_context_destroy(ctx);
    return atomic_load(&poster_state) == 4 ? 1 : 0;
}
