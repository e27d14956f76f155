/* textgen/parse.c: the pure parts of the HTTP API — client errors in OpenAI's shape, completion
 * request bodies (every field checked for type and range, every size bounded), model names,
 * server-sent event framing and the API key check. No I/O, no shared state: any thread. */
#include "textgen/textgen.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_error_set(tg_error_t *e, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

char *tg_error_json(const tg_error_t *e)
{
    /* OpenAI's types: every client error is an invalid request (the code says which). */
    const char *type = e->status >= 500 ? "server_error" : "invalid_request_error";
    json_t *o = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", e->message, "type", type,
                          "param", "code", e->code);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return xstrdup("{\"error\":{\"message\":\"error\",\"type\":\"server_error\",\"param\":null,"
                       "\"code\":\"internal_error\"}}\n");
    char *out = xasprintf("%s\n", text);
    free(text);
    return out;
}

bool tg_model_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > TG_MAX_MODEL_NAME || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return strstr(name, "..") == NULL;
}

void tg_sse_append(core_buf_t *b, const char *json_text)
{
    core_buf_puts(b, "data: ");
    core_buf_puts(b, json_text);
    core_buf_puts(b, "\n\n");
}

bool tg_auth_ok(const char *header, const char *key)
{
    if (!key || !*key)
        return true;
    if (!header || strncmp(header, "Bearer ", 7) != 0)
        return false;
    const char *got = header + 7;
    size_t gn = strlen(got), kn = strlen(key);
    /* Every byte of the key is compared whatever the presented value, so the time taken does
     * not tell how much of a guess was right. */
    unsigned diff = gn != kn;
    for (size_t i = 0; i < kn; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(i < gn ? got[i] : 0);
    return diff == 0;
}

/* ======================================================================================
 * completion requests
 * ====================================================================================== */

void tg_gen_req_destroy(tg_gen_req_t *r)
{
    if (!r)
        return;
    free(r->model);
    for (size_t i = 0; i < r->n_messages; i++) {
        free((char *)r->messages[i].role);
        free((char *)r->messages[i].content);
    }
    free(r->messages);
    free(r->prompt);
    for (size_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

/* A string member, copied; NULL when absent. -1 when present and not a string. */
static int get_string(json_t *o, const char *key, char **out, tg_error_t *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        tg_error_set(err, 400, "invalid_type", "'%s' must be a string.", key);
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        tg_error_set(err, 400, "invalid_value", "'%s' must not contain NUL characters.", key);
        return -1;
    }
    *out = xstrdup(json_string_value(v));
    return 0;
}

/* A number member in [lo, hi]; *out untouched when absent. */
static int get_number(json_t *o, const char *key, double lo, double hi, double *out,
                      tg_error_t *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        tg_error_set(err, 400, "invalid_type", "'%s' must be a number.", key);
        return -1;
    }
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi) {
        tg_error_set(err, 400, "invalid_value", "'%s' must be between %g and %g.", key, lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

static int get_int(json_t *o, const char *key, long long lo, long long hi, long long *out,
                   tg_error_t *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v)) {
        tg_error_set(err, 400, "invalid_type", "'%s' must be an integer.", key);
        return -1;
    }
    long long i = json_integer_value(v);
    if (i < lo || i > hi) {
        tg_error_set(err, 400, "invalid_value", "'%s' must be between %lld and %lld.", key, lo, hi);
        return -1;
    }
    *out = i;
    return 0;
}

static int parse_stop(json_t *o, tg_gen_req_t *r, tg_error_t *err)
{
    json_t *v = json_object_get(o, "stop");
    if (!v || json_is_null(v))
        return 0;
    json_t *one[1] = {v};
    json_t **items = one;
    size_t n = 1;
    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n > TG_MAX_STOP) {
            tg_error_set(err, 400, "invalid_value", "'stop' holds at most %d strings.",
                         TG_MAX_STOP);
            return -1;
        }
        items = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = items ? items[i] : json_array_get(v, i);
        if (!json_is_string(s)) {
            tg_error_set(err, 400, "invalid_type", "'stop' must be a string or an array of strings.");
            return -1;
        }
        size_t len = json_string_length(s);
        if (len == 0 || len > TG_MAX_STOP_LEN || strlen(json_string_value(s)) != len) {
            tg_error_set(err, 400, "invalid_value",
                         "Each stop string must be 1 to %d bytes (no NUL).", TG_MAX_STOP_LEN);
            return -1;
        }
        r->stop[r->n_stop++] = xstrdup(json_string_value(s));
    }
    return 0;
}

static int parse_messages(json_t *o, int max_messages, tg_gen_req_t *r, tg_error_t *err)
{
    json_t *msgs = json_object_get(o, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        tg_error_set(err, 400, "invalid_value", "'messages' must be a non-empty array.");
        return -1;
    }
    size_t n = json_array_size(msgs);
    if (n > (size_t)max_messages) {
        tg_error_set(err, 400, "invalid_value", "'messages' holds at most %d messages.",
                     max_messages);
        return -1;
    }
    r->messages = xcalloc(n, sizeof *r->messages);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        char *role = NULL, *content = NULL;
        if (!json_is_object(m)) {
            tg_error_set(err, 400, "invalid_type", "messages[%zu] must be an object.", i);
            return -1;
        }
        if (get_string(m, "role", &role, err) < 0)
            return -1;
        r->messages[i].role = role;
        r->n_messages = i + 1; /* owned from here on, freed by destroy */
        if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") &&
                      strcmp(role, "developer"))) {
            tg_error_set(err, 400, "invalid_value",
                         "messages[%zu].role must be system, developer, user or assistant.", i);
            return -1;
        }
        json_t *c = json_object_get(m, "content");
        if (json_is_array(c)) {
            /* The content-parts form: text parts are joined; other kinds are refused. */
            core_buf_t b;
            core_buf_init(&b);
            for (size_t k = 0; k < json_array_size(c); k++) {
                json_t *part = json_array_get(c, k);
                json_t *text = json_object_get(part, "text");
                if (!json_is_object(part) || !json_is_string(text) ||
                    !json_is_string(json_object_get(part, "type")) ||
                    strcmp(json_string_value(json_object_get(part, "type")), "text") ||
                    strlen(json_string_value(text)) != json_string_length(text)) {
                    core_buf_destroy(&b);
                    tg_error_set(err, 400, "invalid_value",
                                 "messages[%zu].content parts must be {\"type\":\"text\",\"text\":...}.",
                                 i);
                    return -1;
                }
                core_buf_append(&b, json_string_value(text), json_string_length(text));
            }
            content = core_buf_steal(&b);
        } else if (get_string(m, "content", &content, err) < 0) {
            return -1;
        }
        r->messages[i].content = content ? content : xstrdup("");
        /* ChatML's own markers inside a message would let a client forge turns. */
        if (strstr(r->messages[i].content, "<|im_start|>") ||
            strstr(r->messages[i].content, "<|im_end|>")) {
            tg_error_set(err, 400, "invalid_value",
                         "messages[%zu].content contains a chat template marker.", i);
            return -1;
        }
    }
    return 0;
}

int tg_gen_req_parse(const char *body, size_t len, bool chat, int max_messages, tg_gen_req_t *out,
                     tg_error_t *err)
{
    memset(out, 0, sizeof *out);
    out->chat = chat;
    llm_sampling_default(&out->sampling);
    json_error_t jerr;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;
    if (!o) {
        tg_error_set(err, 400, "invalid_json", "The body is not valid JSON: %s (at %d:%d).",
                     jerr.text, jerr.line, jerr.column);
        goto out;
    }
    if (!json_is_object(o)) {
        tg_error_set(err, 400, "invalid_json", "The body must be a JSON object.");
        goto out;
    }
    if (get_string(o, "model", &out->model, err) < 0)
        goto out;
    if (!out->model) {
        tg_error_set(err, 400, "missing_required_parameter", "'model' is required.");
        goto out;
    }
    if (chat) {
        if (parse_messages(o, max_messages, out, err) < 0)
            goto out;
    } else {
        json_t *p = json_object_get(o, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1)
            p = json_array_get(p, 0); /* a batch of one, as some clients send */
        if (!json_is_string(p) || strlen(json_string_value(p)) != json_string_length(p)) {
            tg_error_set(err, 400, "invalid_value", "'prompt' must be a string.");
            goto out;
        }
        out->prompt = xstrdup(json_string_value(p));
    }
    json_t *st = json_object_get(o, "stream");
    if (st && !json_is_null(st)) {
        if (!json_is_boolean(st)) {
            tg_error_set(err, 400, "invalid_type", "'stream' must be a boolean.");
            goto out;
        }
        out->stream = json_is_true(st);
    }
    long long mt = 0;
    if (get_int(o, "max_tokens", 1, 1 << 20, &mt, err) < 0 ||
        get_int(o, "max_completion_tokens", 1, 1 << 20, &mt, err) < 0)
        goto out;
    out->max_tokens = (int)mt;
    double d;
    llm_sampling_t *s = &out->sampling;
    d = s->temperature;
    if (get_number(o, "temperature", 0, 2, &d, err) < 0)
        goto out;
    s->temperature = (float)d;
    d = s->top_p;
    if (get_number(o, "top_p", 0, 1, &d, err) < 0)
        goto out;
    s->top_p = (float)d;
    d = s->min_p;
    if (get_number(o, "min_p", 0, 1, &d, err) < 0)
        goto out;
    s->min_p = (float)d;
    d = s->repeat_penalty;
    if (get_number(o, "repeat_penalty", 0.5, 2, &d, err) < 0)
        goto out;
    s->repeat_penalty = (float)d;
    long long i = s->top_k;
    if (get_int(o, "top_k", 0, 1 << 20, &i, err) < 0)
        goto out;
    s->top_k = (int)i;
    /* Without a seed, each request samples differently, as OpenAI's API does. */
    i = (long long)(((uint64_t)core_now_ms() * 1000003u ^ (uint64_t)core_mono_ns()) >> 1);
    if (get_int(o, "seed", 0, INT64_MAX, &i, err) < 0)
        goto out;
    s->seed = (uint64_t)i;
    if (parse_stop(o, out, err) < 0)
        goto out;
    json_t *n = json_object_get(o, "n");
    if (n && !json_is_null(n) && !(json_is_integer(n) && json_integer_value(n) == 1)) {
        tg_error_set(err, 400, "invalid_value", "Only n = 1 is supported.");
        goto out;
    }
    rc = 0;
out:
    json_decref(o);
    if (rc < 0)
        tg_gen_req_destroy(out);
    return rc;
}
