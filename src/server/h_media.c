/* server/h_media.c: reading and deleting media items and downloading their files. Runs on the
 * request pool. Every lookup is scoped to the caller's account: another account's id answers
 * 404 exactly like an id that does not exist. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JSON text written by hand rather than through jansson: these are the hottest answers, and the
 * probe and artifact facts are stored as JSON text already (written by our own code), so they go
 * in as they are instead of being parsed and printed again. */

/* Appends s as a JSON string, or null. */
static void put_str(core_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        core_buf_puts(b, "null");
        return;
    }
    core_buf_append(b, "\"", 1);
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\')
            continue;
        core_buf_append(b, run, (size_t)((const char *)p - run));
        char esc[7] = {'\\', (char)*p, 0};
        size_t n = 2;
        switch (*p) {
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '"': case '\\': break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[*p >> 4], esc[5] = hex[*p & 15];
            n = 6;
        }
        core_buf_append(b, esc, n);
        run = (const char *)p + 1;
    }
    core_buf_puts(b, run);
    core_buf_append(b, "\"", 1);
}

static void put_raw(core_buf_t *b, const char *json)
{
    core_buf_puts(b, json && *json ? json : "null");
}

void srv_media_json_write(core_buf_t *b, server_t *s, const store_media_t *m, bool with_artifacts)
{
    core_buf_printf(b, "{\"id\":%lld,\"kind\":", (long long)m->id);
    put_str(b, m->kind);
    core_buf_puts(b, ",\"title\":");
    put_str(b, m->title);
    core_buf_printf(b, ",\"sha256\":\"%s\",\"size\":%lld,\"content_type\":", m->sha256,
                    (long long)m->size);
    put_str(b, m->content_type);
    core_buf_printf(b, ",\"status\":\"%s\",\"error\":", store_media_status_name(m->status));
    put_str(b, m->error);
    core_buf_printf(b, ",\"created_at\":%lld,\"updated_at\":%lld,\"probe\":",
                    (long long)m->created_at, (long long)m->updated_at);
    put_raw(b, m->probe_json);
    if (with_artifacts) {
        core_buf_puts(b, ",\"artifacts\":[");
        store_artifact_t *list = NULL;
        size_t n = 0;
        if (store_artifact_list(s->st, m->id, &list, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                const store_artifact_t *a = &list[i];
                core_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
                put_str(b, a->name);
                core_buf_printf(b, ",\"size\":%lld,\"mime\":", (long long)a->size);
                put_str(b, a->mime);
                core_buf_puts(b, ",\"ext\":");
                put_str(b, a->ext);
                core_buf_printf(b, ",\"sha256\":\"%s\",\"url\":\"/v1/media/%lld/", a->sha256,
                                (long long)m->id);
                core_buf_puts(b, a->name);
                core_buf_puts(b, "\",\"info\":");
                put_raw(b, a->info_json);
                core_buf_puts(b, "}");
            }
            store_artifact_list_free(&list, n);
        }
        core_buf_puts(b, "]");
    }
    core_buf_puts(b, "}");
}

void srv_reply_media(srv_req_t *r, int status, const store_media_t *m, bool with_artifacts)
{
    core_buf_t b;
    core_buf_init(&b);
    srv_media_json_write(&b, r->srv, m, with_artifacts);
    core_buf_puts(&b, "\n");
    size_t n = b.len;
    srv_reply_text(r, status, "application/json", core_buf_steal(&b), n);
}

void srv_h_media_list(srv_req_t *r)
{
    int64_t before = 0;
    int limit = 50;
    const char *bq = srv_query(r, "before"), *l = srv_query(r, "limit");
    uint64_t v;
    if (bq) {
        if (core_parse_u64(bq, strlen(bq), &v) < 0) {
            srv_reply_error(r, 400, "invalid_field", "'before' must be a media id.");
            return;
        }
        before = (int64_t)v;
    }
    if (l) {
        if (core_parse_u64(l, strlen(l), &v) < 0 || v < 1 || v > 200) {
            srv_reply_error(r, 400, "invalid_field", "'limit' must be from 1 to 200.");
            return;
        }
        limit = (int)v;
    }
    store_media_t *list = NULL;
    size_t n = 0;
    if (store_media_list(r->srv->st, r->account_id, before, limit, &list, &n) < 0) {
        srv_reply_error(r, 500, "internal", "Could not list the media.");
        return;
    }
    core_buf_t b;
    core_buf_init(&b);
    core_buf_puts(&b, "{\"media\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            core_buf_puts(&b, ",");
        srv_media_json_write(&b, r->srv, &list[i], false);
    }
    if (n == (size_t)limit && n > 0)
        core_buf_printf(&b, "],\"next_before\":%lld}\n", (long long)list[n - 1].id);
    else
        core_buf_puts(&b, "],\"next_before\":null}\n");
    store_media_list_free(&list, n);
    size_t len = b.len;
    srv_reply_text(r, 200, "application/json", core_buf_steal(&b), len);
}

void srv_h_media_get(srv_req_t *r)
{
    store_media_t m = {0};
    int rc = store_media_get(r->srv->st, r->account_id, r->path_id, &m);
    if (rc == -ENOENT) {
        srv_reply_error(r, 404, "not_found", "No such media item.");
        return;
    }
    if (rc < 0) {
        srv_reply_error(r, 500, "internal", "Could not read the media item.");
        return;
    }
    srv_reply_media(r, 200, &m, true);
    store_media_clear(&m);
}

void srv_h_media_delete(srv_req_t *r)
{
    int rc = store_media_delete(r->srv->st, r->account_id, r->path_id);
    if (rc == -ENOENT)
        srv_reply_error(r, 404, "not_found", "No such media item.");
    else if (rc < 0)
        srv_reply_error(r, 500, "internal", "Could not delete the media item.");
    else
        srv_reply_empty(r, 204);
}

void srv_h_media_download(srv_req_t *r)
{
    store_media_t m = {0};
    store_artifact_t a = {0};
    char path[4096];
    int rc = store_media_get(r->srv->st, r->account_id, r->path_id, &m);
    if (rc < 0) {
        srv_reply_error(r, rc == -ENOENT ? 404 : 500, rc == -ENOENT ? "not_found" : "internal",
                        "No such media item.");
        return;
    }
    const char *sha = NULL, *mime = NULL;
    char fname[160];
    if (!strcmp(r->path_name, "original")) {
        sha = m.sha256;
        mime = m.content_type && *m.content_type ? m.content_type : "application/octet-stream";
        snprintf(fname, sizeof fname, "%lld-original", (long long)m.id);
    } else if (store_artifact_get(r->srv->st, m.id, r->path_name, &a) == 0) {
        sha = a.sha256;
        mime = a.mime;
        snprintf(fname, sizeof fname, "%lld-%s.%s", (long long)m.id, a.name, a.ext);
    }
    if (!sha) {
        srv_reply_error(r, 404, "not_found",
                        "This item has no '%s' file%s.", r->path_name,
                        m.status == STORE_MEDIA_READY || m.status == STORE_MEDIA_FAILED
                            ? "" : " yet: it is still being processed");
    } else if (store_blob_path(r->srv->st, sha, path, sizeof path) < 0) {
        srv_reply_error(r, 404, "not_found", "The file is missing from the blob store.");
    } else {
        srv_reply_file(r, path, mime);
        srv_resp_add_header(&r->resp, "content-disposition:", "inline; filename=\"%s\"", fname);
        srv_resp_add_header(&r->resp, "etag:", "\"%.64s\"", sha);
    }
    store_artifact_clear(&a);
    store_media_clear(&m);
}
