/* server/respond.c: building responses (JSON, errors, files with Range), reading request
 * parameters, and bearer-token authentication. Handlers call these on worker threads; they only
 * touch the request they were given. */
#include "server/internal.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void srv_resp_clear(srv_resp_t *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    if (resp->fd >= 0)
        close(resp->fd);
    resp->fd = -1;
}

void srv_resp_add_header(srv_resp_t *resp, const char *name, const char *fmt, ...)
{
    if (resp->n_extra >= SRV_MAX_EXTRA_HEADERS)
        return;
    srv_header_t *h = &resp->extra[resp->n_extra++];
    snprintf(h->name, sizeof h->name, "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->value, sizeof h->value, fmt, ap);
    va_end(ap);
}

static void set_body(srv_req_t *r, int status, const char *ctype, char *body, size_t len)
{
    /* Keep headers added before the reply (e.g. Allow, Retry-After); drop any earlier body. */
    free(r->resp.body);
    if (r->resp.fd >= 0)
        close(r->resp.fd);
    r->resp.fd = -1;
    r->resp.status = status;
    snprintf(r->resp.content_type, sizeof r->resp.content_type, "%s", ctype);
    r->resp.body = body;
    r->resp.body_len = len;
}

void srv_reply_text(srv_req_t *r, int status, const char *content_type, char *body, size_t len)
{
    set_body(r, status, content_type, body, len);
}

void srv_reply_json(srv_req_t *r, int status, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text) {
        srv_reply_error(r, 500, "internal", "Could not encode the response.");
        return;
    }
    size_t n = strlen(text);
    text = xrealloc(text, n + 2);
    text[n++] = '\n';
    text[n] = '\0';
    set_body(r, status, "application/json", text, n);
}

void srv_reply_error(srv_req_t *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        text = xstrdup("{\"error\":{\"code\":\"internal\",\"message\":\"error\"}}");
    size_t n = strlen(text);
    text = xrealloc(text, n + 2);
    text[n++] = '\n';
    text[n] = '\0';
    set_body(r, status, "application/json", text, n);
}

void srv_reply_empty(srv_req_t *r, int status)
{
    set_body(r, status, "application/json", NULL, 0);
}

/* Parses "bytes=a-b", "bytes=a-", "bytes=-n" against size. Returns 0 with [*off, *off+*len),
 * 1 when the header should be ignored (not a single bytes range), -1 when unsatisfiable. */
static int parse_range(const char *h, int64_t size, int64_t *off, int64_t *len)
{
    if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 1;
    const char *spec = h + 6, *dash = strchr(spec, '-');
    if (!dash)
        return 1;
    uint64_t a = 0, b = 0;
    bool has_a = dash > spec, has_b = dash[1] != '\0';
    if (has_a && core_parse_u64(spec, (size_t)(dash - spec), &a) < 0)
        return 1;
    if (has_b && core_parse_u64(dash + 1, strlen(dash + 1), &b) < 0)
        return 1;
    if (!has_a && !has_b)
        return 1;
    if (!has_a) { /* suffix: the last b bytes */
        if (b == 0 || size == 0)
            return -1;
        if ((int64_t)b > size)
            b = (uint64_t)size;
        *off = size - (int64_t)b;
        *len = (int64_t)b;
        return 0;
    }
    if ((int64_t)a >= size)
        return -1;
    if (has_b && b < a)
        return 1;
    int64_t last = has_b && (int64_t)b < size ? (int64_t)b : size - 1;
    *off = (int64_t)a;
    *len = last - (int64_t)a + 1;
    return 0;
}

void srv_reply_file(srv_req_t *r, const char *path, const char *mime)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        srv_reply_error(r, 404, "not_found", "The file is not available.");
        return;
    }
    int64_t size = st.st_size, off = 0, len = size;
    int status = 200;
    if (r->range) {
        int rc = parse_range(r->range, size, &off, &len);
        if (rc < 0) {
            close(fd);
            srv_resp_add_header(&r->resp, "content-range:", "bytes */%lld", (long long)size);
            srv_reply_error(r, 416, "range_not_satisfiable",
                            "The requested range is outside the file (%lld bytes).",
                            (long long)size);
            return;
        }
        if (rc == 0) {
            status = 206;
            srv_resp_add_header(&r->resp, "content-range:", "bytes %lld-%lld/%lld",
                                (long long)off, (long long)(off + len - 1), (long long)size);
        }
    }
    set_body(r, status, mime, NULL, 0);
    srv_resp_add_header(&r->resp, "accept-ranges:", "bytes");
    r->resp.fd = fd;
    r->resp.file_off = off;
    r->resp.file_len = len;
}

json_t *srv_body_object(srv_req_t *r)
{
    json_error_t jerr;
    json_t *o = json_loadb(r->body.data ? r->body.data : "", r->body.len, JSON_REJECT_DUPLICATES,
                           &jerr);
    if (!o) {
        srv_reply_error(r, 400, "invalid_json", "The body is not valid JSON: %s (line %d).",
                        jerr.text, jerr.line);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        srv_reply_error(r, 400, "invalid_json", "The body must be a JSON object.");
        return NULL;
    }
    return o;
}

const char *srv_query(const srv_req_t *r, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->n_query; i++)
        if (strncmp(r->query[i], name, n) == 0 && r->query[i][n] == '=')
            return r->query[i] + n + 1;
    return NULL;
}

bool srv_authenticate(srv_req_t *r)
{
    const char *h = r->authorization;
    uint8_t hash[32];
    store_device_t dev;
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        srv_resp_add_header(&r->resp, "www-authenticate:", "Bearer");
        srv_reply_error(r, 401, "unauthorized", "This call needs a device token "
                        "(Authorization: Bearer <token>).");
        return false;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    if (auth_token_hash(tok, strlen(tok), hash) < 0)
        goto refused;
    int64_t last_seen = 0;
    if (!srv_token_cache_get(r->srv->tokens, hash, &r->account_id, &r->device_id, &last_seen)) {
        if (store_device_by_token(r->srv->st, hash, &dev) < 0)
            goto refused;
        r->account_id = dev.account_id;
        r->device_id = dev.id;
        last_seen = dev.last_seen_at;
    }
    /* last_seen_at has minute resolution: skip the write (and its lock) most of the time. */
    if (core_now_ms() - last_seen >= 60000) {
        store_device_touch(r->srv->st, r->device_id);
        last_seen = core_now_ms();
    }
    srv_token_cache_put(r->srv->tokens, hash, r->account_id, r->device_id, last_seen);
    return true;
refused:
    srv_resp_add_header(&r->resp, "www-authenticate:", "Bearer error=\"invalid_token\"");
    srv_reply_error(r, 401, "unauthorized", "The token is unknown or was revoked.");
    return false;
    return true;
}
