/* server/h_media.c: reading and deleting media items and downloading their files. Runs on the
 * request pool. Every lookup is scoped to the caller's account: another account's id answers
 * 404 exactly like an id that does not exist. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *json_or_null(const char *text)
{
    if (!text)
        return json_null();
    json_t *v = json_loads(text, 0, NULL);
    return v ? v : json_null();
}

json_t *srv_media_json(server_t *s, const store_media_t *m, bool with_artifacts)
{
    json_t *o = json_pack("{s:I, s:s, s:s?, s:s, s:I, s:s?, s:s, s:s?, s:I, s:I}", "id",
                          (json_int_t)m->id, "kind", m->kind, "title", m->title, "sha256",
                          m->sha256, "size", (json_int_t)m->size, "content_type", m->content_type,
                          "status", store_media_status_name(m->status), "error", m->error,
                          "created_at", (json_int_t)m->created_at, "updated_at",
                          (json_int_t)m->updated_at);
    if (!o)
        return json_object();
    json_object_set_new(o, "probe", json_or_null(m->probe_json));
    if (!with_artifacts)
        return o;
    json_t *arr = json_array();
    store_artifact_t *list = NULL;
    size_t n = 0;
    if (store_artifact_list(s->st, m->id, &list, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            const store_artifact_t *a = &list[i];
            char url[96];
            snprintf(url, sizeof url, "/v1/media/%lld/%s", (long long)m->id, a->name);
            json_t *ao = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}", "name", a->name, "size",
                                   (json_int_t)a->size, "mime", a->mime, "ext", a->ext, "sha256",
                                   a->sha256, "url", url);
            if (ao) {
                json_object_set_new(ao, "info", json_or_null(a->info_json));
                json_array_append_new(arr, ao);
            }
        }
        store_artifact_list_free(&list, n);
    }
    json_object_set_new(o, "artifacts", arr);
    return o;
}

void srv_h_media_list(srv_req_t *r)
{
    int64_t before = 0;
    int limit = 50;
    const char *b = srv_query(r, "before"), *l = srv_query(r, "limit");
    uint64_t v;
    if (b) {
        if (core_parse_u64(b, strlen(b), &v) < 0) {
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
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, srv_media_json(r->srv, &list[i], false));
    json_t *next = n == (size_t)limit && n > 0 ? json_integer(list[n - 1].id) : json_null();
    store_media_list_free(&list, n);
    srv_reply_json(r, 200, json_pack("{s:o, s:o}", "media", arr, "next_before", next));
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
    srv_reply_json(r, 200, srv_media_json(r->srv, &m, true));
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
