/* ws_client: a real WebSocket client (libwebsockets) for the end-to-end tests of personad's event
 * hub. Connects to ws://HOST:PORT/v1/ws?after=N with a bearer token, prints every text frame it
 * receives on stdout (one line each, flushed), acks each event, and prints "CLOSED <code>" when
 * the server closes the connection.
 *
 *   ws_client --url ws://127.0.0.1:PORT --token T [--after N|now] [--count N] [--timeout S]
 *             [--no-ack] [--stall]
 *
 * --count N: exit 0 after N events. --timeout S: exit 3 after S seconds (default 30).
 * --deaf: read nothing at all once connected (answers no ping).
 * --stall MS: stop reading for MS milliseconds after the first event (to fill the server's queue
 * for this client), then read again.
 * Exit: 0 done, 1 connection failed, 2 usage, 3 timeout, 4 closed by the server. */
#include <libwebsockets.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *token;
static long long after_seq, count_left = -1;
static int after_now;
static int timeout_s = 30, exit_code = -1, stall, no_ack, deaf;
static long long last_seq;
static struct lws *stalled_wsi;
static int resume_reading;
static long long stall_until_ms;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}
static char pending_ack[64];

static long long seq_of(const char *s, size_t len)
{
    const char *k = memmem(s, len, "\"seq\":", 6);
    return k ? atoll(k + 6) : -1;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;
        char auth[256];
        snprintf(auth, sizeof auth, "Bearer %s", token);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                         (unsigned char *)auth, (int)strlen(auth), p, end))
            return -1;
        return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (deaf) { /* reads nothing, so never answers a ping */
            lws_rx_flow_control(wsi, 0);
            printf("ESTABLISHED\n");
            fflush(stdout);
        }
        if (stall) { /* a small receive window, so the server's side fills up soon */
            int sz = 4096;
            setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        fprintf(stderr, "ws_client: connection failed: %s\n", in ? (char *)in : "?");
        exit_code = 1;
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        if (count_left == 0) /* done: frames that came in the same read are not ours */
            return -1;
        printf("%.*s\n", (int)len, (const char *)in);
        fflush(stdout);
        long long seq = seq_of(in, len);
        if (seq > last_seq)
            last_seq = seq;
        if (!no_ack) {
            snprintf(pending_ack, sizeof pending_ack, "{\"type\":\"ack\",\"seq\":%lld}", last_seq);
            lws_callback_on_writable(wsi);
        }
        if (count_left > 0 && --count_left == 0) {
            exit_code = 0;
            return -1; /* disconnect at once, as a client that drops mid-stream would */
        }
        if (stall && !stall_until_ms) {
            lws_rx_flow_control(wsi, 0);
            stalled_wsi = wsi;
            stall_until_ms = now_ms() + stall;
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (resume_reading) { /* rx flow control takes effect from the wsi's own callback */
            resume_reading = 0;
            lws_rx_flow_control(wsi, 1);
        }
        if (pending_ack[0]) {
            unsigned char buf[LWS_PRE + 64];
            size_t n = strlen(pending_ack);
            memcpy(buf + LWS_PRE, pending_ack, n);
            pending_ack[0] = 0;
            if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n)
                return -1;
        }
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        int code = len >= 2 ? (((unsigned char *)in)[0] << 8) | ((unsigned char *)in)[1] : 0;
        printf("CLOSED %d %.*s\n", code, len > 2 ? (int)len - 2 : 0, len > 2 ? (char *)in + 2 : "");
        fflush(stdout);
        exit_code = 4;
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (exit_code < 0 && count_left != 0)
            exit_code = 4;
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"persona-events", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int main(int argc, char **argv)
{
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--url") && i + 1 < argc) url = argv[++i];
        else if (!strcmp(argv[i], "--token") && i + 1 < argc) token = argv[++i];
        else if (!strcmp(argv[i], "--after") && i + 1 < argc) {
            i++;
            after_now = !strcmp(argv[i], "now");
            after_seq = atoll(argv[i]);
        }
        else if (!strcmp(argv[i], "--count") && i + 1 < argc) count_left = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout_s = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--stall") && i + 1 < argc) stall = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-ack")) no_ack = 1;
        else if (!strcmp(argv[i], "--deaf")) deaf = 1;
        else {
            fprintf(stderr, "usage: ws_client --url ws://HOST:PORT --token T [--after N] "
                            "[--count N] [--timeout S] [--stall MS] [--no-ack]\n");
            return 2;
        }
    }
    if (!url || !token)
        return 2;
    if (count_left == 0)
        return 0;
    lws_set_log_level(getenv("WS_CLIENT_DEBUG") ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO
                                                : LLL_ERR,
                      NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx)
        return 1;
    char host[256];
    int port = 80;
    if (sscanf(url, "ws://%255[^:/]:%d", host, &port) < 1)
        return 2;
    char path[128];
    if (after_now)
        snprintf(path, sizeof path, "/v1/ws?after=now");
    else
        snprintf(path, sizeof path, "/v1/ws?after=%lld", after_seq);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.protocol = NULL; /* no subprotocol: persona's hub takes plain WebSocket clients */
    ci.local_protocol_name = "persona-events";
    if (!lws_client_connect_via_info(&ci)) {
        lws_context_destroy(ctx);
        return 1;
    }
    time_t deadline = time(NULL) + timeout_s;
    int timed_out = 0;
    while (exit_code < 0 && !(timed_out = time(NULL) >= deadline)) {
        lws_service(ctx, 50);
        if (stalled_wsi && now_ms() >= stall_until_ms) {
            resume_reading = 1;
            lws_callback_on_writable(stalled_wsi);
            stalled_wsi = NULL;
        }
    }
    lws_context_destroy(ctx);
    if (timed_out) {
        fprintf(stderr, "ws_client: timeout after %d s (last seq %lld)\n", timeout_s, last_seq);
        return 3;
    }
    return exit_code;
}
