/* oai/parse.c: the parsers of what an OpenAI-compatible service sends back — the text/event-stream
 * framing of streamed completions, chat.completion.chunk objects, error bodies, fine-tuning job
 * objects and the model list. Pure functions over bytes (no network), so the tests can feed them
 * truncated, empty, huge and random input. Every size is bounded (oai.h). */
#include "oai/oai.h"

#include "core/core.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *oai_strerror(int err)
{
    switch (err) {
    case OAI_EUNAVAILABLE:
        return "text generation service unavailable";
    case OAI_EREJECTED:
        return "text generation service rejected the request";
    case OAI_EPROTOCOL:
        return "text generation service sent something that is not the API";
    case OAI_EABORTED:
        return "stopped by the caller";
    default:
        return core_strerror(err);
    }
}

static void set_err(oai_error_t *err, int status, const char *code, const char *msg)
{
    if (!err)
        return;
    err->http_status = status;
    snprintf(err->code, sizeof err->code, "%s", code ? code : "");
    snprintf(err->message, sizeof err->message, "%s", msg ? msg : "");
}

/* ==== text/event-stream ==== */

void oai_sse_init(oai_sse_t *p)
{
    memset(p, 0, sizeof *p);
}

void oai_sse_destroy(oai_sse_t *p)
{
    if (!p)
        return;
    free(p->line);
    free(p->data);
    memset(p, 0, sizeof *p);
}

/* Grows *buf to hold need bytes plus a NUL; bounded by the callers' limits. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need + 1 <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need + 1)
        ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* One complete line (without its end). An empty line dispatches the event. */
static int sse_line(oai_sse_t *p, const char *line, size_t n, oai_sse_event_fn on_event, void *ud)
{
    if (n == 0) {
        if (!p->has_data)
            return 0;
        p->has_data = false;
        size_t dlen = p->dlen;
        p->dlen = 0;
        if (p->data)
            p->data[dlen] = '\0';
        return on_event(ud, p->data ? p->data : "", dlen);
    }
    if (line[0] == ':') /* a comment (keep-alive) */
        return 0;
    const char *colon = memchr(line, ':', n);
    size_t flen = colon ? (size_t)(colon - line) : n;
    if (flen != 4 || memcmp(line, "data", 4) != 0)
        return 0; /* event:, id:, retry: and unknown fields carry nothing we use */
    const char *v = colon ? colon + 1 : line + n;
    size_t vlen = (size_t)(line + n - v);
    if (vlen > 0 && *v == ' ') {
        v++;
        vlen--;
    }
    size_t need = p->dlen + (p->has_data ? 1 : 0) + vlen;
    if (need > OAI_MAX_SSE_LINE)
        return OAI_EPROTOCOL;
    if (reserve(&p->data, &p->dcap, need) < 0)
        return -ENOMEM;
    if (p->has_data)
        p->data[p->dlen++] = '\n';
    memcpy(p->data + p->dlen, v, vlen);
    p->dlen += vlen;
    p->data[p->dlen] = '\0';
    p->has_data = true;
    return 0;
}

int oai_sse_feed(oai_sse_t *p, const char *buf, size_t n, oai_sse_event_fn on_event, void *ud)
{
    if (n > OAI_MAX_SSE_TOTAL || p->total > OAI_MAX_SSE_TOTAL - n)
        return OAI_EPROTOCOL;
    p->total += n;
    for (size_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (ch == '\n' && p->last_was_cr) { /* the LF of a CRLF */
            p->last_was_cr = false;
            continue;
        }
        p->last_was_cr = ch == '\r';
        if (ch == '\r' || ch == '\n') {
            int rc = sse_line(p, p->line ? p->line : "", p->len, on_event, ud);
            p->len = 0;
            if (rc != 0)
                return rc;
            continue;
        }
        if (p->len + 1 > OAI_MAX_SSE_LINE)
            return OAI_EPROTOCOL;
        if (reserve(&p->line, &p->cap, p->len + 1) < 0)
            return -ENOMEM;
        p->line[p->len++] = ch;
        p->line[p->len] = '\0';
    }
    return 0;
}

/* ==== JSON answers ==== */

static json_t *load_object(const char *json, size_t len)
{
    if (!json || len == 0 || len > OAI_MAX_BODY)
        return NULL;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"error":{"message","code"|"type"}} into err; false when o has no such member. */
static bool error_member(json_t *o, int status, oai_error_t *err)
{
    json_t *e = json_object_get(o, "error");
    if (!e)
        return false;
    const char *msg = json_is_string(e) ? json_string_value(e)
                                        : json_string_value(json_object_get(e, "message"));
    const char *code = json_string_value(json_object_get(e, "code"));
    if (!code)
        code = json_string_value(json_object_get(e, "type"));
    set_err(err, status, code ? code : "error", msg ? msg : "(no message)");
    return true;
}

int oai_chunk_parse(const char *json, size_t len, char **piece, size_t *piece_len,
                    char finish_reason[16], char model[128], oai_error_t *err)
{
    *piece = NULL;
    *piece_len = 0;
    json_t *o = load_object(json, len);
    int rc = 0;
    if (!o) {
        set_err(err, 200, "bad_stream", "an event of the stream is not a JSON object");
        return OAI_EPROTOCOL;
    }
    if (error_member(o, 200, err)) {
        rc = OAI_EREJECTED;
        goto out;
    }
    json_t *choices = json_object_get(o, "choices");
    if (!json_is_array(choices)) {
        set_err(err, 200, "bad_stream", "a chunk of the stream has no choices array");
        rc = OAI_EPROTOCOL;
        goto out;
    }
    const char *m = json_string_value(json_object_get(o, "model"));
    if (m && model)
        snprintf(model, 128, "%s", m);
    json_t *c0 = json_array_get(choices, 0);
    if (!c0) /* a usage-only chunk */
        goto out;
    if (!json_is_object(c0)) {
        set_err(err, 200, "bad_stream", "a choice of the stream is not an object");
        rc = OAI_EPROTOCOL;
        goto out;
    }
    const char *fr = json_string_value(json_object_get(c0, "finish_reason"));
    if (fr && finish_reason)
        snprintf(finish_reason, 16, "%s", fr);
    json_t *delta = json_object_get(c0, "delta");
    json_t *content = delta ? json_object_get(delta, "content") : json_object_get(c0, "text");
    if (content && !json_is_string(content) && !json_is_null(content)) {
        set_err(err, 200, "bad_stream", "a chunk's content is not a string");
        rc = OAI_EPROTOCOL;
        goto out;
    }
    if (json_is_string(content) && json_string_length(content) > 0) {
        size_t n = json_string_length(content);
        if (n > OAI_MAX_CONTENT) {
            set_err(err, 200, "too_large", "a chunk's content is too large");
            rc = OAI_EPROTOCOL;
            goto out;
        }
        *piece = malloc(n + 1);
        if (!*piece) {
            rc = -ENOMEM;
            goto out;
        }
        memcpy(*piece, json_string_value(content), n + 1);
        *piece_len = n;
    }
out:
    json_decref(o);
    return rc;
}

int oai_error_from_http(int status, const char *body, size_t len, oai_error_t *err)
{
    int rc = status >= 500 || status == 429 || status == 408 ? OAI_EUNAVAILABLE : OAI_EREJECTED;
    json_t *o = load_object(body, len);
    if (o && error_member(o, status, err)) {
        json_decref(o);
        return rc;
    }
    json_decref(o);
    /* Not our API's error shape (a proxy's page, plain text): its first line, bounded. */
    char line[200];
    size_t n = 0;
    for (size_t i = 0; body && i < len && n < sizeof line - 1; i++) {
        if (body[i] == '\n' || body[i] == '\r')
            break;
        line[n++] = (unsigned char)body[i] < 0x20 ? ' ' : body[i];
    }
    line[n] = '\0';
    char msg[300];
    snprintf(msg, sizeof msg, "HTTP %d%s%s", status, n ? ": " : "", line);
    /* what came may be cut inside a UTF-8 sequence: keep the message valid for JSON */
    while (!core_utf8_valid(msg, strlen(msg)) && strlen(msg) > 0)
        msg[strlen(msg) - 1] = '\0';
    set_err(err, status, "http_error", msg);
    return rc;
}

static void copy_str(json_t *o, const char *key, char *out, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(out, cap, "%s", v ? v : "");
}

int oai_ft_job_parse(const char *json, size_t len, oai_ft_job_t *job)
{
    memset(job, 0, sizeof *job);
    json_t *o = load_object(json, len);
    if (!o || !json_is_string(json_object_get(o, "id")) ||
        !json_is_string(json_object_get(o, "status"))) {
        json_decref(o);
        return OAI_EPROTOCOL;
    }
    copy_str(o, "id", job->id, sizeof job->id);
    copy_str(o, "status", job->status, sizeof job->status);
    copy_str(o, "model", job->model, sizeof job->model);
    copy_str(o, "fine_tuned_model", job->fine_tuned_model, sizeof job->fine_tuned_model);
    json_t *e = json_object_get(o, "error");
    if (json_is_object(e)) {
        const char *m = json_string_value(json_object_get(e, "message"));
        const char *c = json_string_value(json_object_get(e, "code"));
        snprintf(job->error, sizeof job->error, "%s%s%s", c ? c : "", c && m ? ": " : "",
                 m ? m : "");
    } else if (json_is_string(e)) {
        copy_str(o, "error", job->error, sizeof job->error);
    }
    json_t *v;
    if (json_is_integer(v = json_object_get(o, "step")))
        job->step = json_integer_value(v);
    if (json_is_integer(v = json_object_get(o, "steps")))
        job->steps = json_integer_value(v);
    if (json_is_number(v = json_object_get(o, "train_loss"))) {
        job->has_train_loss = true;
        job->train_loss = json_number_value(v);
    }
    if (json_is_number(v = json_object_get(o, "eval_loss"))) {
        job->has_eval_loss = true;
        job->eval_loss = json_number_value(v);
    }
    json_decref(o);
    return 0;
}

void oai_models_free(char ***ids, size_t n)
{
    if (!ids || !*ids)
        return;
    for (size_t i = 0; i < n; i++)
        free((*ids)[i]);
    free(*ids);
    *ids = NULL;
}

int oai_models_parse(const char *json, size_t len, char ***ids_out, size_t *n_out)
{
    *ids_out = NULL;
    *n_out = 0;
    json_t *o = load_object(json, len);
    json_t *data = o ? json_object_get(o, "data") : NULL;
    if (!json_is_array(data)) {
        json_decref(o);
        return OAI_EPROTOCOL;
    }
    size_t n = json_array_size(data);
    char **ids = xcalloc(n + 1, sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(data, i), "id"));
        if (id)
            ids[k++] = xstrdup(id);
    }
    json_decref(o);
    *ids_out = ids;
    *n_out = k;
    return 0;
}
