/* oai/client.c: the HTTP side of the oai client — one libcurl easy handle per call (so a client
 * is shared by threads without locks), JSON requests, bounded response bodies, the streamed chat
 * completion read through the event-stream parser, multipart file uploads, and the translation
 * of curl and HTTP failures into the three oai error classes (oai.h). */
#include "oai/oai.h"

#include "core/core.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct oai_client {
    char *base;     /* ".../v1" without a trailing slash */
    char *auth;     /* "Authorization: Bearer K" or NULL */
    long timeout_s, connect_timeout_s;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int oai_client_new(const oai_config_t *cfg, oai_client_t **out)
{
    *out = NULL;
    if (!cfg || !cfg->base_url ||
        (strncmp(cfg->base_url, "http://", 7) != 0 && strncmp(cfg->base_url, "https://", 8) != 0))
        return -EINVAL;
    pthread_once(&curl_once, curl_init_once);
    oai_client_t *c = xcalloc(1, sizeof *c);
    size_t n = strlen(cfg->base_url);
    while (n > 0 && cfg->base_url[n - 1] == '/')
        n--;
    bool has_v1 = n >= 3 && memcmp(cfg->base_url + n - 3, "/v1", 3) == 0;
    c->base = xasprintf("%.*s%s", (int)n, cfg->base_url, has_v1 ? "" : "/v1");
    if (cfg->api_key && *cfg->api_key)
        c->auth = xasprintf("Authorization: Bearer %s", cfg->api_key);
    c->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 120;
    c->connect_timeout_s = cfg->connect_timeout_s > 0 ? cfg->connect_timeout_s : 5;
    *out = c;
    return 0;
}

void oai_client_free(oai_client_t **pc)
{
    oai_client_t *c = pc ? *pc : NULL;
    if (!c)
        return;
    free(c->base);
    free(c->auth);
    free(c);
    *pc = NULL;
}

void oai_chat_result_clear(oai_chat_result_t *r)
{
    if (!r)
        return;
    free(r->content);
    memset(r, 0, sizeof *r);
}

/* ==== one request ==== */

typedef struct req {
    core_buf_t body;        /* the response body (non-stream answers, and error answers) */
    bool too_large;
    /* streaming: bytes of a 2xx text/event-stream go to the parser instead */
    bool stream;
    long status;            /* known once the first body bytes arrive */
    oai_sse_t sse;
    int stream_rc;          /* first failure inside the write callback */
    bool done;              /* data: [DONE] seen */
    bool whole;             /* the stream was asked for, a whole JSON answer came */
    core_buf_t content;
    oai_chat_result_t *res;
    oai_delta_fn on_delta;
    void *ud;
    CURL *h;
} req_t;

static int on_event(void *ud, const char *data, size_t len)
{
    req_t *r = ud;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        r->done = true;
        return 0;
    }
    if (r->done) /* nothing may follow [DONE]; ignore rather than fail a finished answer */
        return 0;
    char *piece = NULL;
    size_t plen = 0;
    int rc = oai_chunk_parse(data, len, &piece, &plen, r->res->finish_reason, r->res->model,
                             &r->res->err);
    if (rc < 0)
        return rc;
    if (plen > 0) {
        if (r->content.len + plen > OAI_MAX_CONTENT) {
            free(piece);
            snprintf(r->res->err.message, sizeof r->res->err.message,
                     "the generated text is over %u bytes", OAI_MAX_CONTENT);
            snprintf(r->res->err.code, sizeof r->res->err.code, "too_large");
            return OAI_EPROTOCOL;
        }
        core_buf_append(&r->content, piece, plen);
        r->res->ndeltas++;
        if (r->on_delta && r->on_delta(r->ud, piece, plen) != 0) {
            free(piece);
            return OAI_EABORTED;
        }
    }
    free(piece);
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    req_t *r = ud;
    size_t n = size * nmemb;
    if (r->status == 0) {
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->status);
        /* A service that ignores "stream":true answers one JSON object: read it whole. */
        char *ct = NULL;
        curl_easy_getinfo(r->h, CURLINFO_CONTENT_TYPE, &ct);
        r->whole = r->stream && ct && strncasecmp(ct, "application/json", 16) == 0;
    }
    if (r->stream && !r->whole && r->status >= 200 && r->status < 300) {
        int rc = oai_sse_feed(&r->sse, ptr, n, on_event, r);
        if (rc != 0) {
            r->stream_rc = rc;
            return 0; /* aborts the transfer */
        }
        return n;
    }
    if (r->body.len + n > OAI_MAX_BODY) {
        r->too_large = true;
        return 0;
    }
    core_buf_append(&r->body, ptr, n);
    return n;
}

static int curl_failure(CURLcode cc, oai_error_t *err)
{
    const char *code = "unreachable";
    if (cc == CURLE_OPERATION_TIMEDOUT)
        code = "timeout";
    err->http_status = 0;
    snprintf(err->code, sizeof err->code, "%s", code);
    snprintf(err->message, sizeof err->message, "%s", curl_easy_strerror(cc));
    return OAI_EUNAVAILABLE;
}

/* Performs method on base + path with an optional JSON body or mime form; the body of a 2xx
 * answer (non-stream) stays in r->body. */
static int perform(oai_client_t *c, req_t *r, const char *method, const char *path,
                   const char *json, curl_mime *mime, oai_error_t *err)
{
    int rc = 0;
    struct curl_slist *hdrs = NULL;
    char *url = xasprintf("%s%s", c->base, path);
    CURL *h = curl_easy_init();
    if (!h) {
        rc = -ENOMEM;
        goto out;
    }
    r->h = h;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (c->auth)
        hdrs = curl_slist_append(hdrs, c->auth);
    if (r->stream)
        hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
    if (json) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    } else if (mime) {
        curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->stream_rc != 0) {
        rc = r->stream_rc;
        if (rc == OAI_EPROTOCOL && !err->code[0]) {
            snprintf(err->code, sizeof err->code, "bad_stream");
            snprintf(err->message, sizeof err->message,
                     "the event stream has a line or a size over the limits");
        }
        if (rc == -ENOMEM)
            snprintf(err->message, sizeof err->message, "out of memory");
        err->http_status = (int)r->status;
        goto out;
    }
    if (r->too_large) {
        snprintf(err->code, sizeof err->code, "too_large");
        snprintf(err->message, sizeof err->message, "the answer is over %u bytes", OAI_MAX_BODY);
        err->http_status = (int)r->status;
        rc = r->status >= 200 && r->status < 300 ? OAI_EPROTOCOL
                                                  : (r->status >= 500 ? OAI_EUNAVAILABLE
                                                                      : OAI_EREJECTED);
        goto out;
    }
    if (cc != CURLE_OK && r->status < 400) { /* an error status decides even if cut short */
        rc = curl_failure(cc, err);
        goto out;
    }
    if (r->status < 200 || r->status >= 300) {
        rc = oai_error_from_http((int)r->status, r->body.data, r->body.len, err);
        goto out;
    }
out:
    curl_slist_free_all(hdrs);
    if (h)
        curl_easy_cleanup(h);
    r->h = NULL;
    free(url);
    return rc;
}

static void req_init(req_t *r)
{
    memset(r, 0, sizeof *r);
    core_buf_init(&r->body);
    core_buf_init(&r->content);
    oai_sse_init(&r->sse);
}

static void req_destroy(req_t *r)
{
    core_buf_destroy(&r->body);
    core_buf_destroy(&r->content);
    oai_sse_destroy(&r->sse);
}

/* ==== chat ==== */

/* A non-streamed chat.completion in r->body: its choices[0].message.content, handed to the
 * caller as one piece. */
static int whole_answer(req_t *r, oai_chat_result_t *res)
{
    json_t *o = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    json_t *c0 = json_array_get(json_object_get(o, "choices"), 0);
    json_t *content = json_object_get(json_object_get(c0, "message"), "content");
    int rc = 0;
    if (!json_is_string(content) || json_string_length(content) > OAI_MAX_CONTENT) {
        res->err.http_status = (int)r->status;
        snprintf(res->err.code, sizeof res->err.code, "bad_answer");
        snprintf(res->err.message, sizeof res->err.message,
                 "the answer is not a chat.completion with a message");
        rc = OAI_EPROTOCOL;
        goto out;
    }
    const char *fr = json_string_value(json_object_get(c0, "finish_reason"));
    snprintf(res->finish_reason, sizeof res->finish_reason, "%s", fr ? fr : "");
    const char *m = json_string_value(json_object_get(o, "model"));
    snprintf(res->model, sizeof res->model, "%s", m ? m : "");
    size_t n = json_string_length(content);
    core_buf_append(&r->content, json_string_value(content), n);
    if (n > 0) {
        res->ndeltas++;
        if (r->on_delta && r->on_delta(r->ud, json_string_value(content), n) != 0)
            rc = OAI_EABORTED;
    }
out:
    json_decref(o);
    return rc;
}

int oai_chat_stream(oai_client_t *c, const char *model, const oai_message_t *messages,
                    size_t nmessages, const oai_chat_params_t *params, oai_delta_fn on_delta,
                    void *ud, oai_chat_result_t *res)
{
    memset(res, 0, sizeof *res);
    if (!c || !model || !messages || nmessages == 0) {
        snprintf(res->err.message, sizeof res->err.message, "no model or no messages");
        return -EINVAL;
    }
    req_t r;
    req_init(&r);
    r.stream = true;
    r.res = res;
    r.on_delta = on_delta;
    r.ud = ud;
    char *text = NULL;
    json_t *msgs = json_array();
    for (size_t i = 0; i < nmessages; i++)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", messages[i].role, "content",
                                              messages[i].content ? messages[i].content : ""));
    json_t *body = json_pack("{s:s, s:o, s:b}", "model", model, "messages", msgs, "stream", 1);
    if (body && params) {
        if (params->max_tokens > 0)
            json_object_set_new(body, "max_tokens", json_integer(params->max_tokens));
        if (params->temperature >= 0)
            json_object_set_new(body, "temperature", json_real(params->temperature));
        if (params->top_p > 0)
            json_object_set_new(body, "top_p", json_real(params->top_p));
        if (params->has_seed)
            json_object_set_new(body, "seed", json_integer(params->seed));
    }
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    int rc = -EINVAL;
    if (!text) {
        snprintf(res->err.message, sizeof res->err.message, "could not encode the request");
        goto out;
    }
    if ((rc = perform(c, &r, "POST", "/chat/completions", text, NULL, &res->err)) < 0)
        goto out;
    if (r.whole) {
        if ((rc = whole_answer(&r, res)) < 0)
            goto out;
        r.done = true;
    }
    if (!r.done) {
        /* The connection ended cleanly but the stream did not: the service died mid-answer
         * or a proxy cut it. Worth another try. */
        res->err.http_status = (int)r.status;
        snprintf(res->err.code, sizeof res->err.code, "stream_cut");
        snprintf(res->err.message, sizeof res->err.message,
                 "the event stream ended before data: [DONE]");
        rc = OAI_EUNAVAILABLE;
        goto out;
    }
    res->content = core_buf_steal(&r.content);
    rc = 0;
out:
    free(text);
    req_destroy(&r);
    return rc;
}

/* ==== JSON calls ==== */

static int call_json(oai_client_t *c, const char *method, const char *path, const char *json,
                     curl_mime *mime, char **body_out, size_t *len_out, oai_error_t *err)
{
    req_t r;
    req_init(&r);
    int rc = perform(c, &r, method, path, json, mime, err);
    if (rc == 0) {
        *len_out = r.body.len;
        *body_out = core_buf_steal(&r.body);
        if (!*body_out)
            *body_out = xstrdup("");
    }
    req_destroy(&r);
    return rc;
}

static int protocol_error(oai_error_t *err, const char *what)
{
    err->http_status = 200;
    snprintf(err->code, sizeof err->code, "bad_answer");
    snprintf(err->message, sizeof err->message, "%s", what);
    return OAI_EPROTOCOL;
}

int oai_file_upload(oai_client_t *c, const char *filename, const void *data, size_t len,
                    const char *path, char id_out[64], oai_error_t *err)
{
    memset(err, 0, sizeof *err);
    id_out[0] = '\0';
    if (!c || !filename || (!path && !data && len))
        return -EINVAL;
    /* A local file that cannot be read is our failure, not the service's (curl would report it
     * as a failed transfer, which reads as "unavailable, retry"). */
    if (path && access(path, R_OK) != 0)
        return -errno;
    CURL *h = curl_easy_init(); /* curl_mime_init needs a handle; the request makes its own */
    if (!h)
        return -ENOMEM;
    curl_mime *mime = curl_mime_init(h);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "purpose");
    curl_mime_data(part, "fine-tune", CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "file");
    int rc = 0;
    if (path) {
        if (curl_mime_filedata(part, path) != CURLE_OK) {
            rc = -ENOENT;
            goto out;
        }
    } else {
        curl_mime_data(part, data ? data : "", len);
    }
    curl_mime_filename(part, filename);
    curl_mime_type(part, "application/jsonl");
    char *body = NULL;
    size_t blen = 0;
    if ((rc = call_json(c, "POST", "/files", NULL, mime, &body, &blen, err)) < 0)
        goto out;
    json_t *o = json_loadb(body, blen, 0, NULL);
    const char *id = json_string_value(json_object_get(o, "id"));
    if (id && strlen(id) < 64)
        snprintf(id_out, 64, "%s", id);
    else
        rc = protocol_error(err, "the file upload's answer has no id");
    json_decref(o);
    free(body);
out:
    curl_mime_free(mime);
    curl_easy_cleanup(h);
    return rc;
}

static int job_call(oai_client_t *c, const char *method, const char *path, const char *json,
                    oai_ft_job_t *job, oai_error_t *err)
{
    char *body = NULL;
    size_t blen = 0;
    memset(err, 0, sizeof *err);
    int rc = call_json(c, method, path, json, NULL, &body, &blen, err);
    if (rc == 0 && oai_ft_job_parse(body, blen, job) < 0)
        rc = protocol_error(err, "the answer is not a fine-tuning job object");
    free(body);
    return rc;
}

/* An id goes into a URL path: only the characters such ids are made of. */
static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ':'))
            return false;
    }
    return true;
}

int oai_finetune_create(oai_client_t *c, const oai_ft_params_t *p, oai_ft_job_t *job,
                        oai_error_t *err)
{
    memset(err, 0, sizeof *err);
    memset(job, 0, sizeof *job);
    if (!c || !p || !p->training_file || !p->model)
        return -EINVAL;
    json_t *hp = json_object();
    if (p->steps > 0)
        json_object_set_new(hp, "steps", json_integer(p->steps));
    json_t *o = json_pack("{s:s, s:s, s:o}", "training_file", p->training_file, "model",
                          p->model, "hyperparameters", hp);
    if (o && p->suffix)
        json_object_set_new(o, "suffix", json_string(p->suffix));
    if (o && p->has_seed)
        json_object_set_new(o, "seed", json_integer(p->seed));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return -EINVAL;
    int rc = job_call(c, "POST", "/fine_tuning/jobs", text, job, err);
    free(text);
    return rc;
}

int oai_finetune_get(oai_client_t *c, const char *id, oai_ft_job_t *job, oai_error_t *err)
{
    memset(job, 0, sizeof *job);
    if (!c || !id_ok(id))
        return -EINVAL;
    char path[128];
    snprintf(path, sizeof path, "/fine_tuning/jobs/%s", id);
    return job_call(c, "GET", path, NULL, job, err);
}

int oai_finetune_cancel(oai_client_t *c, const char *id, oai_ft_job_t *job, oai_error_t *err)
{
    memset(job, 0, sizeof *job);
    if (!c || !id_ok(id))
        return -EINVAL;
    char path[128];
    snprintf(path, sizeof path, "/fine_tuning/jobs/%s/cancel", id);
    return job_call(c, "POST", path, "{}", job, err);
}

int oai_models_list(oai_client_t *c, char ***ids_out, size_t *n_out, oai_error_t *err)
{
    *ids_out = NULL;
    *n_out = 0;
    memset(err, 0, sizeof *err);
    if (!c)
        return -EINVAL;
    char *body = NULL;
    size_t blen = 0;
    int rc = call_json(c, "GET", "/models", NULL, NULL, &body, &blen, err);
    if (rc == 0 && oai_models_parse(body, blen, ids_out, n_out) < 0)
        rc = protocol_error(err, "the answer is not a model list");
    free(body);
    return rc;
}
