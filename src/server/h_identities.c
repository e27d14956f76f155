/* server/h_identities.c: the account's identities — the people its faces were grouped into by
 * media.process — GET /v1/identities, GET /v1/identities/{id}/faces (paged) and
 * POST /v1/identities/{id} {"name":..,"is_persona":..}. Request pool. Another account's
 * identity is 404, like one that does not exist. */
#include "server/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDENTITY_NAME_MAX 200
#define IDENTITY_FACES_DEFAULT 50
#define IDENTITY_FACES_MAX 1000

/* Pixels to 0.01, as the face objects have them. */
static double px(float v)
{
    return round((double)v * 100.0) / 100.0;
}

static json_t *identity_json(const store_identity_t *i)
{
    json_t *rep = json_null();
    if (i->rep_face_id)
        rep = json_pack("{s:I, s:I, s:I, s:{s:f, s:f, s:f, s:f}}", "face_id",
                        (json_int_t)i->rep_face_id, "media_id", (json_int_t)i->rep_media_id,
                        "ts_ms", (json_int_t)i->rep_ts_ms, "box", "x", px(i->rep_x), "y",
                        px(i->rep_y), "w", px(i->rep_w), "h", px(i->rep_h));
    return json_pack("{s:I, s:o, s:b, s:i, s:i, s:o, s:I, s:I}", "id", (json_int_t)i->id, "name",
                     i->name ? json_string(i->name) : json_null(), "is_persona", i->is_persona,
                     "face_count", i->face_count, "media_count", i->media_count,
                     "representative", rep, "created_at", (json_int_t)i->created_at,
                     "updated_at", (json_int_t)i->updated_at);
}

void srv_h_identity_list(srv_req_t *r)
{
    store_identity_t *list = NULL;
    size_t n = 0;
    if (store_identity_list(r->srv->st, r->account_id, &list, &n) < 0) {
        srv_reply_error(r, 500, "internal", "Could not list the identities.");
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, identity_json(&list[i]));
    store_identity_list_free(&list, n);
    srv_reply_faces_json(r, 200, json_pack("{s:o}", "identities", a));
}

static bool query_u64(srv_req_t *r, const char *name, uint64_t lo, uint64_t hi, uint64_t def,
                      uint64_t *out)
{
    const char *v = srv_query(r, name);
    *out = def;
    if (!v)
        return true;
    if (core_parse_u64(v, strlen(v), out) < 0 || *out < lo || *out > hi) {
        srv_reply_error(r, 400, "invalid_query", "'%s' must be a whole number from %llu to %llu.",
                        name, (unsigned long long)lo, (unsigned long long)hi);
        return false;
    }
    return true;
}

void srv_h_identity_faces(srv_req_t *r)
{
    uint64_t before, limit;
    if (!query_u64(r, "before", 0, INT64_MAX, 0, &before) ||
        !query_u64(r, "limit", 1, IDENTITY_FACES_MAX, IDENTITY_FACES_DEFAULT, &limit))
        return;
    store_face_t *faces = NULL;
    size_t n = 0;
    int rc = store_faces_list_identity(r->srv->st, r->account_id, r->path_id, (int64_t)before,
                                       (int)limit, &faces, &n);
    if (rc == -ENOENT) {
        srv_reply_error(r, 404, "not_found", "There is no such identity.");
        return;
    }
    if (rc < 0) {
        srv_reply_error(r, 500, "internal", "Could not list the identity's faces.");
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, srv_stored_face_json(&faces[i]));
    /* A full page may have a next one: its cursor is the last id. */
    json_t *next = n == limit ? json_integer(faces[n - 1].id) : json_null();
    free(faces);
    srv_reply_faces_json(r, 200, json_pack("{s:I, s:o, s:o}", "identity_id", (json_int_t)r->path_id,
                                     "faces", a, "next_before", next));
}

/* True for a name a person would write: 1..200 bytes without control characters. */
static bool name_ok(const char *s, size_t len)
{
    if (len == 0 || len > IDENTITY_NAME_MAX || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* {"merge_into": N}: this identity's faces become N's; answers N. */
static void identity_merge(srv_req_t *r, json_t *o, json_t *jm)
{
    if (json_object_size(o) != 1 || !json_is_integer(jm) || json_integer_value(jm) < 1) {
        srv_reply_error(r, 400, "invalid_field",
                        "'merge_into' must be an identity id, and alone in the body.");
        return;
    }
    int64_t into = json_integer_value(jm);
    int rc = store_identity_merge(r->srv->st, r->account_id, r->path_id, into);
    if (rc == -EINVAL) {
        srv_reply_error(r, 400, "invalid_field", "An identity cannot be merged into itself.");
        return;
    }
    if (rc == -ENOENT) {
        srv_reply_error(r, 404, "not_found", "There is no such identity.");
        return;
    }
    store_identity_t id;
    if (rc < 0 || store_identity_get(r->srv->st, r->account_id, into, &id) < 0) {
        srv_reply_error(r, 500, "internal", "Could not merge the identities.");
        return;
    }
    srv_reply_faces_json(r, 200, identity_json(&id));
    store_identity_clear(&id);
}

void srv_h_identity_update(srv_req_t *r)
{
    json_t *o = srv_body_object(r);
    if (!o)
        return;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (strcmp(key, "name") && strcmp(key, "is_persona") && strcmp(key, "merge_into")) {
            srv_reply_error(r, 400, "invalid_field", "Unknown field '%.40s' (known: name, "
                            "is_persona, merge_into).", key);
            goto out;
        }
    }
    json_t *jm = json_object_get(o, "merge_into");
    if (jm) {
        identity_merge(r, o, jm);
        goto out;
    }
    json_t *jn = json_object_get(o, "name"), *jp = json_object_get(o, "is_persona");
    if (!jn && !jp) {
        srv_reply_error(r, 400, "invalid_field", "Send \"name\" and/or \"is_persona\".");
        goto out;
    }
    if (jn && !json_is_null(jn) &&
        (!json_is_string(jn) || !name_ok(json_string_value(jn), json_string_length(jn)))) {
        srv_reply_error(r, 400, "invalid_field", "'name' must be null or a string of 1 to %d "
                        "bytes without control characters.", IDENTITY_NAME_MAX);
        goto out;
    }
    if (jp && !json_is_boolean(jp)) {
        srv_reply_error(r, 400, "invalid_field", "'is_persona' must be true or false.");
        goto out;
    }
    int rc = store_identity_update(r->srv->st, r->account_id, r->path_id, jn != NULL,
                                   jn && json_is_string(jn) ? json_string_value(jn) : NULL,
                                   jp ? (json_is_true(jp) ? 1 : 0) : -1);
    if (rc == -ENOENT) {
        srv_reply_error(r, 404, "not_found", "There is no such identity.");
        goto out;
    }
    store_identity_t id;
    if (rc < 0 || store_identity_get(r->srv->st, r->account_id, r->path_id, &id) < 0) {
        srv_reply_error(r, 500, "internal", "Could not update the identity.");
        goto out;
    }
    srv_reply_faces_json(r, 200, identity_json(&id));
    store_identity_clear(&id);
out:
    json_decref(o);
}
