/* tests/oai: the oai client's parsers (event stream, chunks, error bodies, fine-tuning jobs, model
 * lists) with split, truncated, empty, huge and random input; and the client itself against a
 * scripted HTTP peer on a loopback socket (a thread that answers each connection with canned
 * bytes, written in small pieces), for the error classes: 5xx / cut stream / closed port →
 * OAI_EUNAVAILABLE, 4xx → OAI_EREJECTED with the service's message, garbage → OAI_EPROTOCOL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/core.h"
#include "oai/oai.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ==== event stream ==== */

typedef struct events {
    char *all[64];
    int n;
} events_t;

static int collect(void *ud, const char *data, size_t len)
{
    events_t *e = ud;
    assert_int_equal(strlen(data), len); /* NUL-terminated for convenience */
    if (e->n < 64)
        e->all[e->n++] = xstrndup(data, len);
    return 0;
}

static void events_free(events_t *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->all[i]);
    e->n = 0;
}

static const char stream[] =
    ": keep-alive comment\r\n"
    "event: message\r\n"
    "data: {\"a\":1}\r\n"
    "\r\n"
    "data:{\"b\":2}\n\n"
    "data: line one\rdata: line two\r\r"
    "id: 7\nretry: 100\ndata\n\n"
    "data: [DONE]\n\n"
    "data: never dispatched";

static void check_stream_events(events_t *e)
{
    assert_int_equal(e->n, 5);
    assert_string_equal(e->all[0], "{\"a\":1}");
    assert_string_equal(e->all[1], "{\"b\":2}");
    assert_string_equal(e->all[2], "line one\nline two");
    assert_string_equal(e->all[3], "");
    assert_string_equal(e->all[4], "[DONE]");
}

static void test_sse_whole_and_every_split(void **state)
{
    (void)state;
    size_t n = sizeof stream - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        oai_sse_t p;
        events_t e = {0};
        oai_sse_init(&p);
        assert_int_equal(oai_sse_feed(&p, stream, cut, collect, &e), 0);
        assert_int_equal(oai_sse_feed(&p, stream + cut, n - cut, collect, &e), 0);
        check_stream_events(&e);
        events_free(&e);
        oai_sse_destroy(&p);
    }
    /* one byte at a time */
    oai_sse_t p;
    events_t e = {0};
    oai_sse_init(&p);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(oai_sse_feed(&p, stream + i, 1, collect, &e), 0);
    check_stream_events(&e);
    events_free(&e);
    oai_sse_destroy(&p);
}

static void test_sse_empty_and_limits(void **state)
{
    (void)state;
    oai_sse_t p;
    events_t e = {0};
    oai_sse_init(&p);
    assert_int_equal(oai_sse_feed(&p, "", 0, collect, &e), 0);
    assert_int_equal(oai_sse_feed(&p, "\n\n\r\n", 4, collect, &e), 0);
    assert_int_equal(e.n, 0);
    oai_sse_destroy(&p);

    /* a line over the limit, fed in pieces: an error, not unbounded memory */
    size_t big = OAI_MAX_SSE_LINE + 10;
    char *huge = xmalloc(big);
    memset(huge, 'x', big);
    memcpy(huge, "data: ", 6);
    oai_sse_init(&p);
    int rc = 0;
    for (size_t off = 0; off < big && rc == 0; off += 4096)
        rc = oai_sse_feed(&p, huge + off, big - off < 4096 ? big - off : 4096, collect, &e);
    assert_int_equal(rc, OAI_EPROTOCOL);
    oai_sse_destroy(&p);

    /* many data lines joining into one event over the limit */
    oai_sse_init(&p);
    memset(huge, 'y', big);
    rc = 0;
    for (int i = 0; i < 40 && rc == 0; i++) {
        rc = oai_sse_feed(&p, "data: ", 6, collect, &e);
        if (rc == 0)
            rc = oai_sse_feed(&p, huge, 4000, collect, &e);
        if (rc == 0)
            rc = oai_sse_feed(&p, "\n", 1, collect, &e);
    }
    assert_int_equal(rc, OAI_EPROTOCOL);
    assert_int_equal(e.n, 0);
    oai_sse_destroy(&p);

    /* the whole stream is bounded too, even when made of small events */
    oai_sse_init(&p);
    memset(huge, ':', 4096);
    huge[4095] = '\n';
    rc = 0;
    for (size_t total = 0; total <= OAI_MAX_SSE_TOTAL && rc == 0; total += 4096)
        rc = oai_sse_feed(&p, huge, 4096, collect, &e);
    assert_int_equal(rc, OAI_EPROTOCOL);
    oai_sse_destroy(&p);
    free(huge);
}

static int stop_at_second(void *ud, const char *data, size_t len)
{
    (void)data;
    (void)len;
    return ++*(int *)ud == 2 ? 42 : 0;
}

static void test_sse_callback_stops(void **state)
{
    (void)state;
    oai_sse_t p;
    int count = 0;
    oai_sse_init(&p);
    assert_int_equal(oai_sse_feed(&p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27, stop_at_second,
                                  &count),
                     42);
    assert_int_equal(count, 2);
    oai_sse_destroy(&p);
}

static int count_events(void *ud, const char *data, size_t len)
{
    (void)data;
    (void)len;
    (*(int *)ud)++;
    return 0;
}

static void test_sse_random(void **state)
{
    (void)state;
    unsigned seed = 12345;
    char buf[512];
    const char alphabet[] = "data: \r\n:{}[]\"x\x01\xff";
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rand_r(&seed) % sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = round % 2 ? (char)rand_r(&seed)
                               : alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
        oai_sse_t p;
        int count = 0;
        oai_sse_init(&p);
        size_t cut = n ? (size_t)rand_r(&seed) % n : 0;
        assert_int_equal(oai_sse_feed(&p, buf, cut, count_events, &count), 0);
        assert_int_equal(oai_sse_feed(&p, buf + cut, n - cut, count_events, &count), 0);
        oai_sse_destroy(&p);
    }
}

/* ==== chunks ==== */

static void test_chunk_parse(void **state)
{
    (void)state;
    char *piece;
    size_t len;
    char fr[16] = "", model[128] = "";
    oai_error_t err = {0};
    const char *role = "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m1\","
                       "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}";
    assert_int_equal(oai_chunk_parse(role, strlen(role), &piece, &len, fr, model, &err), 0);
    assert_null(piece);
    assert_int_equal(len, 0);
    assert_string_equal(model, "m1");
    const char *content = "{\"choices\":[{\"delta\":{\"content\":\"Hel\\u00e9\"},"
                          "\"finish_reason\":null}]}";
    assert_int_equal(oai_chunk_parse(content, strlen(content), &piece, &len, fr, model, &err), 0);
    assert_string_equal(piece, "Hel\xc3\xa9");
    assert_int_equal(len, 5);
    free(piece);
    const char *fin = "{\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}";
    assert_int_equal(oai_chunk_parse(fin, strlen(fin), &piece, &len, fr, model, &err), 0);
    assert_string_equal(fr, "length");
    const char *text = "{\"choices\":[{\"text\":\"abc\"}]}"; /* /v1/completions chunks */
    assert_int_equal(oai_chunk_parse(text, strlen(text), &piece, &len, fr, model, &err), 0);
    assert_string_equal(piece, "abc");
    free(piece);
    const char *usage = "{\"choices\":[],\"usage\":{\"total_tokens\":3}}";
    assert_int_equal(oai_chunk_parse(usage, strlen(usage), &piece, &len, fr, model, &err), 0);
    assert_null(piece);
    const char *error = "{\"error\":{\"message\":\"model gone\",\"code\":\"model_not_found\"}}";
    assert_int_equal(oai_chunk_parse(error, strlen(error), &piece, &len, fr, model, &err),
                     OAI_EREJECTED);
    assert_string_equal(err.code, "model_not_found");
    assert_string_equal(err.message, "model gone");

    const char *bad[] = {"", "{", "[]", "null", "{\"choices\":3}", "{\"choices\":[5]}",
                         "{\"choices\":[{\"delta\":{\"content\":7}}]}", "\"x\"", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(oai_chunk_parse(bad[i], strlen(bad[i]), &piece, &len, fr, model, &err),
                         OAI_EPROTOCOL);
        assert_null(piece);
    }
    /* every truncation of a good chunk fails cleanly (or, at full length, succeeds) */
    size_t n = strlen(content);
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(oai_chunk_parse(content, cut, &piece, &len, fr, model, &err),
                         OAI_EPROTOCOL);
        assert_null(piece);
    }
    /* huge: content over the limit, and a body over the limit */
    size_t big = OAI_MAX_CONTENT + 100;
    char *huge = xmalloc(big + 64);
    int k = snprintf(huge, 64, "{\"choices\":[{\"delta\":{\"content\":\"");
    memset(huge + k, 'a', big);
    strcpy(huge + k + big - 10, "\"}}]}");
    assert_int_equal(oai_chunk_parse(huge, strlen(huge), &piece, &len, fr, model, &err),
                     OAI_EPROTOCOL);
    assert_null(piece);
    free(huge);
    /* random bytes */
    unsigned seed = 7;
    char rnd[256];
    for (int round = 0; round < 2000; round++) {
        size_t m = (size_t)rand_r(&seed) % sizeof rnd;
        for (size_t i = 0; i < m; i++)
            rnd[i] = (char)rand_r(&seed);
        int rc = oai_chunk_parse(rnd, m, &piece, &len, fr, model, &err);
        assert_true(rc == OAI_EPROTOCOL || rc == OAI_EREJECTED || rc == 0);
        free(piece);
    }
}

/* ==== error bodies, jobs, models ==== */

static void test_error_and_objects(void **state)
{
    (void)state;
    oai_error_t err = {0};
    const char *body = "{\"error\":{\"message\":\"unknown model 'x'\",\"type\":"
                       "\"invalid_request_error\",\"param\":null,\"code\":\"model_not_found\"}}";
    assert_int_equal(oai_error_from_http(404, body, strlen(body), &err), OAI_EREJECTED);
    assert_int_equal(err.http_status, 404);
    assert_string_equal(err.code, "model_not_found");
    assert_string_equal(err.message, "unknown model 'x'");
    assert_int_equal(oai_error_from_http(503, "busy\nmore", 9, &err), OAI_EUNAVAILABLE);
    assert_string_equal(err.message, "HTTP 503: busy");
    assert_int_equal(oai_error_from_http(429, NULL, 0, &err), OAI_EUNAVAILABLE);
    assert_string_equal(err.message, "HTTP 429");
    assert_int_equal(oai_error_from_http(400, "\xff\xfe<html>", 8, &err), OAI_EREJECTED);
    assert_true(core_utf8_valid(err.message, strlen(err.message)));

    oai_ft_job_t job;
    const char *jt = "{\"id\":\"ftjob-1\",\"object\":\"fine_tuning.job\",\"model\":\"scratch-tiny\","
                     "\"status\":\"running\",\"fine_tuned_model\":null,\"error\":null,"
                     "\"step\":12,\"steps\":50,\"train_loss\":3.5,\"eval_loss\":null}";
    assert_int_equal(oai_ft_job_parse(jt, strlen(jt), &job), 0);
    assert_string_equal(job.id, "ftjob-1");
    assert_string_equal(job.status, "running");
    assert_string_equal(job.fine_tuned_model, "");
    assert_int_equal(job.step, 12);
    assert_int_equal(job.steps, 50);
    assert_true(job.has_train_loss);
    assert_false(job.has_eval_loss);
    const char *jf = "{\"id\":\"ftjob-2\",\"status\":\"failed\",\"error\":{\"code\":\"bad_file\","
                     "\"message\":\"no text\"}}";
    assert_int_equal(oai_ft_job_parse(jf, strlen(jf), &job), 0);
    assert_string_equal(job.error, "bad_file: no text");
    for (size_t cut = 0; cut < strlen(jt); cut++)
        assert_int_equal(oai_ft_job_parse(jt, cut, &job), OAI_EPROTOCOL);
    assert_int_equal(oai_ft_job_parse("{\"id\":3,\"status\":\"x\"}", 22, &job), OAI_EPROTOCOL);

    char **ids;
    size_t n;
    const char *ml = "{\"object\":\"list\",\"data\":[{\"id\":\"a\"},{\"x\":1},{\"id\":\"ft-b\"}]}";
    assert_int_equal(oai_models_parse(ml, strlen(ml), &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ids[1], "ft-b");
    oai_models_free(&ids, n);
    assert_null(ids);
    assert_int_equal(oai_models_parse("{\"data\":{}}", 11, &ids, &n), OAI_EPROTOCOL);
    assert_int_equal(oai_models_parse("", 0, &ids, &n), OAI_EPROTOCOL);
    for (size_t cut = 0; cut < strlen(ml); cut++) {
        assert_int_equal(oai_models_parse(ml, cut, &ids, &n), OAI_EPROTOCOL);
        assert_null(ids);
    }
}

/* ==== the client against a scripted peer ==== */

typedef struct peer {
    int fd;
    int port;
    const char *answer; /* bytes sent after reading the request headers */
    size_t answer_len;
    char request[8192];
    pthread_t th;
} peer_t;

static void *peer_main(void *arg)
{
    peer_t *p = arg;
    int c = accept(p->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    size_t n = 0;
    /* read the headers and whatever body arrives with them (the requests here are small) */
    while (n < sizeof p->request - 1) {
        ssize_t k = read(c, p->request + n, sizeof p->request - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        p->request[n] = '\0';
        char *hend = strstr(p->request, "\r\n\r\n");
        const char *cl = strcasestr(p->request, "content-length:");
        if (hend && (!cl || (size_t)(hend + 4 - p->request) + strtoul(cl + 15, NULL, 10) <= n))
            break;
    }
    for (size_t off = 0; off < p->answer_len; off += 7) { /* small pieces: splits everywhere */
        size_t m = p->answer_len - off < 7 ? p->answer_len - off : 7;
        if (write(c, p->answer + off, m) < 0)
            break;
    }
    close(c);
    return NULL;
}

static void peer_start(peer_t *p, const char *answer)
{
    memset(p, 0, sizeof *p);
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(p->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(p->fd, 4), 0);
    socklen_t al = sizeof a;
    getsockname(p->fd, (struct sockaddr *)&a, &al);
    p->port = ntohs(a.sin_port);
    p->answer = answer;
    p->answer_len = strlen(answer);
    assert_int_equal(pthread_create(&p->th, NULL, peer_main, p), 0);
}

static void peer_stop(peer_t *p)
{
    pthread_join(p->th, NULL);
    close(p->fd);
}

static oai_client_t *client_for(int port, const char *key)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    oai_config_t cfg = {.base_url = url, .api_key = key, .timeout_s = 10};
    oai_client_t *c = NULL;
    assert_int_equal(oai_client_new(&cfg, &c), 0);
    return c;
}

typedef struct deltas {
    core_buf_t all;
    int n;
} deltas_t;

static int on_delta(void *ud, const char *text, size_t len)
{
    deltas_t *d = ud;
    core_buf_append(&d->all, text, len);
    d->n++;
    return 0;
}

#define CHUNK(s) "data: {\"object\":\"chat.completion.chunk\",\"model\":\"ft-x\",\"choices\":[" s "]}\n\n"
static const char good_stream[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    ": hello\n\n" CHUNK("{\"index\":0,\"delta\":{\"role\":\"assistant\"}}")
    CHUNK("{\"index\":0,\"delta\":{\"content\":\"I walked \"}}")
    CHUNK("{\"index\":0,\"delta\":{\"content\":\"on the pier.\"}}")
    CHUNK("{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}") "data: [DONE]\n\n";

static void test_client_stream(void **state)
{
    (void)state;
    peer_t p;
    peer_start(&p, good_stream);
    oai_client_t *c = client_for(p.port, "sekrit");
    oai_message_t m[] = {{"system", "be brief"}, {"user", "the \"sea\"?"}};
    oai_chat_params_t params = {.max_tokens = 20, .temperature = 0.5, .has_seed = true, .seed = 9};
    deltas_t d = {0};
    core_buf_init(&d.all);
    oai_chat_result_t res;
    assert_int_equal(oai_chat_stream(c, "ft-x", m, 2, &params, on_delta, &d, &res), 0);
    peer_stop(&p);
    assert_string_equal(res.content, "I walked on the pier.");
    assert_string_equal(d.all.data, res.content);
    assert_int_equal(d.n, 2);
    assert_int_equal(res.ndeltas, 2);
    assert_string_equal(res.finish_reason, "stop");
    assert_string_equal(res.model, "ft-x");
    assert_non_null(strstr(p.request, "POST /v1/chat/completions HTTP/1.1"));
    assert_non_null(strstr(p.request, "Authorization: Bearer sekrit"));
    assert_non_null(strstr(p.request, "\"stream\":true"));
    assert_non_null(strstr(p.request, "\"seed\":9"));
    assert_non_null(strstr(p.request, "the \\\"sea\\\"?"));
    oai_chat_result_clear(&res);
    core_buf_destroy(&d.all);
    oai_client_free(&c);
}

static void test_client_whole_answer(void **state)
{
    (void)state;
    /* a service that ignores "stream":true */
    peer_t p;
    peer_start(&p, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                   "{\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[{\"index\":0,"
                   "\"message\":{\"role\":\"assistant\",\"content\":\"All at once.\"},"
                   "\"finish_reason\":\"stop\"}]}");
    oai_client_t *c = client_for(p.port, NULL);
    oai_message_t m[] = {{"user", "hi"}};
    deltas_t d = {0};
    core_buf_init(&d.all);
    oai_chat_result_t res;
    assert_int_equal(oai_chat_stream(c, "m", m, 1, NULL, on_delta, &d, &res), 0);
    peer_stop(&p);
    assert_string_equal(res.content, "All at once.");
    assert_string_equal(d.all.data, "All at once.");
    assert_string_equal(res.finish_reason, "stop");
    oai_chat_result_clear(&res);
    core_buf_destroy(&d.all);
    oai_client_free(&c);
}

static void expect_chat_error(const char *answer, int want, const char *code)
{
    peer_t p;
    peer_start(&p, answer);
    oai_client_t *c = client_for(p.port, NULL);
    oai_message_t m[] = {{"user", "hi"}};
    oai_chat_result_t res;
    int rc = oai_chat_stream(c, "m", m, 1, NULL, NULL, NULL, &res);
    peer_stop(&p);
    assert_int_equal(rc, want);
    assert_null(res.content);
    if (code)
        assert_string_equal(res.err.code, code);
    assert_true(res.err.message[0] != '\0');
    oai_chat_result_clear(&res);
    oai_client_free(&c);
}

static void test_client_errors(void **state)
{
    (void)state;
    expect_chat_error("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                      "Connection: close\r\n\r\n"
                      "{\"error\":{\"message\":\"no model m\",\"code\":\"model_not_found\",\"x\":1}}",
                      OAI_EREJECTED, "model_not_found");
    expect_chat_error("HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy",
                      OAI_EUNAVAILABLE, "http_error");
    /* the service died mid-answer: no [DONE] */
    expect_chat_error("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                      CHUNK("{\"delta\":{\"content\":\"half\"}}"),
                      OAI_EUNAVAILABLE, "stream_cut");
    expect_chat_error("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                      "data: {not json}\n\n",
                      OAI_EPROTOCOL, "bad_stream");
    expect_chat_error("garbage that is not HTTP\r\n\r\n", OAI_EUNAVAILABLE, "unreachable");
    expect_chat_error("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"choices\":[]}",
                      OAI_EPROTOCOL, "bad_answer");

    /* a closed port */
    peer_t p;
    peer_start(&p, "");
    int port = p.port;
    close(p.fd); /* the thread's accept fails and it returns */
    pthread_join(p.th, NULL);
    oai_client_t *c = client_for(port, NULL);
    oai_message_t m[] = {{"user", "hi"}};
    oai_chat_result_t res;
    assert_int_equal(oai_chat_stream(c, "m", m, 1, NULL, NULL, NULL, &res), OAI_EUNAVAILABLE);
    assert_string_equal(res.err.code, "unreachable");
    assert_int_equal(res.err.http_status, 0);
    oai_chat_result_clear(&res);
    char **ids;
    size_t n;
    oai_error_t err;
    assert_int_equal(oai_models_list(c, &ids, &n, &err), OAI_EUNAVAILABLE);
    oai_client_free(&c);

    oai_config_t bad = {.base_url = "ftp://x"};
    assert_int_equal(oai_client_new(&bad, &c), -EINVAL);
    assert_null(c);
}

static void test_client_files_and_jobs(void **state)
{
    (void)state;
    static const char file_answer[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        "{\"id\":\"file-abc\",\"object\":\"file\",\"bytes\":12,\"purpose\":\"fine-tune\"}";
    peer_t p;
    peer_start(&p, file_answer);
    oai_client_t *c = client_for(p.port, NULL);
    char id[64];
    oai_error_t err;
    const char jsonl[] = "{\"text\":\"hello there\"}\n";
    assert_int_equal(oai_file_upload(c, "train.jsonl", jsonl, sizeof jsonl - 1, NULL, id, &err), 0);
    peer_stop(&p);
    assert_string_equal(id, "file-abc");
    assert_non_null(strstr(p.request, "POST /v1/files"));
    assert_non_null(strstr(p.request, "multipart/form-data"));
    oai_client_free(&c);

    /* from a file */
    const char *tmp = getenv("PERSONA_TEST_TMP");
    char *dir = xstrdup(tmp && *tmp ? tmp : "/tmp/persona-test-oai");
    assert_int_equal(core_mkdirs(dir), 0);
    char *path = xasprintf("%s/train.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"text\":\"from a file on disk\"}\n", f);
    fclose(f);
    peer_start(&p, file_answer);
    c = client_for(p.port, NULL);
    assert_int_equal(oai_file_upload(c, "t.jsonl", NULL, 0, path, id, &err), 0);
    peer_stop(&p);
    assert_non_null(strstr(p.request, "from a file on disk"));
    assert_non_null(strstr(p.request, "filename=\"t.jsonl\""));
    char *missing = xasprintf("%s/no-such.jsonl", dir);
    assert_int_equal(oai_file_upload(c, "t.jsonl", NULL, 0, missing, id, &err), -ENOENT);
    free(missing);
    oai_client_free(&c);
    free(path);
    free(dir);

    static const char job_answer[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        "{\"id\":\"ftjob-9\",\"object\":\"fine_tuning.job\",\"status\":\"queued\",\"model\":"
        "\"scratch-tiny\",\"fine_tuned_model\":null,\"step\":0,\"steps\":60}";
    peer_start(&p, job_answer);
    c = client_for(p.port, NULL);
    oai_ft_job_t job;
    oai_ft_params_t fp = {.training_file = "file-abc", .model = "scratch-tiny", .steps = 60};
    assert_int_equal(oai_finetune_create(c, &fp, &job, &err), 0);
    peer_stop(&p);
    assert_string_equal(job.id, "ftjob-9");
    assert_int_equal(job.steps, 60);
    assert_non_null(strstr(p.request, "\"steps\":60"));
    assert_int_equal(oai_finetune_get(c, "../../etc", &job, &err), -EINVAL);
    oai_client_free(&c);

    peer_start(&p, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"id\":1}");
    c = client_for(p.port, NULL);
    assert_int_equal(oai_finetune_get(c, "ftjob-9", &job, &err), OAI_EPROTOCOL);
    peer_stop(&p);
    oai_client_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_whole_and_every_split),
        cmocka_unit_test(test_sse_empty_and_limits),
        cmocka_unit_test(test_sse_callback_stops),
        cmocka_unit_test(test_sse_random),
        cmocka_unit_test(test_chunk_parse),
        cmocka_unit_test(test_error_and_objects),
        cmocka_unit_test(test_client_stream),
        cmocka_unit_test(test_client_whole_answer),
        cmocka_unit_test(test_client_errors),
        cmocka_unit_test(test_client_files_and_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
