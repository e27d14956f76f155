/* server/h_questions.c: questions (POST queues a question.answer job; GET shows the answer, the
 * passages it used and timings) and the long-poll event stream GET /v1/events. Request pool,
 * except the parking of a long-poll request, which the hub does on the loop. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUESTION_MAX_BYTES 10000
#define LONGPOLL_MAX_WAIT_S 60
#define LONGPOLL_PAGE 100

static json_t *raw_or_null(const char *text)
{
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *question_json(const store_question_t *q)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:s?, s:s?, s:I, s:I}", "id", (json_int_t)q->id,
                          "text", q->text ? q->text : "", "status",
                          store_question_status_name(q->status), "answer", q->answer, "error",
                          q->error, "created_at", (json_int_t)q->created_at, "updated_at",
                          (json_int_t)q->updated_at);
    if (!o)
        return json_object();
    json_object_set_new(o, "passages", raw_or_null(q->passages_json));
    json_object_set_new(o, "timings", raw_or_null(q->timings_json));
    json_object_set_new(o, "model", q->model ? json_string(q->model) : json_null());
    return o;
}

void srv_h_question_create(srv_req_t *r)
{
    json_t *o = srv_body_object(r);
    if (!o)
        return;
    json_t *t = json_object_get(o, "text");
    const char *text = json_string_value(t);
    size_t len = text ? json_string_length(t) : 0;
    bool blank = true;
    for (size_t i = 0; text && i < len && blank; i++)
        blank = text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r';
    if (!text || blank) {
        srv_reply_error(r, 400, "invalid_field", "A question needs some text ('text').");
        goto out;
    }
    if (len > QUESTION_MAX_BYTES || strlen(text) != len) {
        srv_reply_error(r, 400, "invalid_field",
                        "A question is at most %d bytes of text without NUL characters.",
                        QUESTION_MAX_BYTES);
        goto out;
    }
    store_question_t q = {0};
    q.account_id = r->account_id;
    q.device_id = r->device_id;
    q.text = (char *)text;
    if (store_question_create(r->srv->st, &q) < 0) {
        srv_reply_error(r, 500, "internal", "Could not record the question.");
        goto out;
    }
    jobs_wake(r->srv->jobs);
    srv_reply_json(r, 202, json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)q.id, "status",
                                     store_question_status_name(q.status), "text", text,
                                     "created_at", (json_int_t)q.created_at));
out:
    json_decref(o);
}

void srv_h_question_get(srv_req_t *r)
{
    store_question_t q = {0};
    int rc = store_question_get(r->srv->st, r->account_id, r->path_id, &q);
    if (rc == -ENOENT)
        srv_reply_error(r, 404, "not_found", "No such question.");
    else if (rc < 0)
        srv_reply_error(r, 500, "internal", "Could not read the question.");
    else
        srv_reply_json(r, 200, question_json(&q));
    store_question_clear(&q);
}

/* Reads ?name= as a non-negative integer; def when absent. Replies 400 and returns false on
 * garbage. */
static bool query_int(srv_req_t *r, const char *name, int64_t def, int64_t max, int64_t *out)
{
    const char *v = srv_query(r, name);
    uint64_t u;
    *out = def;
    if (!v)
        return true;
    if (core_parse_u64(v, strlen(v), &u) < 0 || (int64_t)u > max) {
        srv_reply_error(r, 400, "invalid_field", "'%s' must be a whole number from 0 to %lld.",
                        name, (long long)max);
        return false;
    }
    *out = (int64_t)u;
    return true;
}

void srv_h_question_list(srv_req_t *r)
{
    int64_t before, limit;
    if (!query_int(r, "before", 0, INT64_MAX, &before) || !query_int(r, "limit", 50, 200, &limit))
        return;
    if (limit < 1)
        limit = 1;
    store_question_t *list = NULL;
    size_t n = 0;
    if (store_question_list(r->srv->st, r->account_id, before, (int)limit, &list, &n) < 0) {
        srv_reply_error(r, 500, "internal", "Could not list the questions.");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, question_json(&list[i]));
    json_t *next = n == (size_t)limit && n > 0 ? json_integer(list[n - 1].id) : json_null();
    store_question_list_free(&list, n);
    srv_reply_json(r, 200, json_pack("{s:o, s:o}", "questions", arr, "next_before", next));
}

void srv_h_events(srv_req_t *r)
{
    int64_t after, wait;
    if (!r->poll_now) {
        if (!query_int(r, "after", 0, INT64_MAX, &after) ||
            !query_int(r, "wait", 0, LONGPOLL_MAX_WAIT_S, &wait))
            return;
        r->poll_after = after;
        r->poll_wait_s = (int)wait;
    }
    store_event_t *list = NULL;
    size_t n = 0;
    int64_t last = 0;
    if (store_event_list(r->srv->st, r->account_id, r->poll_after, LONGPOLL_PAGE, &list, &n) < 0 ||
        (n == 0 && store_event_last_seq(r->srv->st, r->account_id, &last) < 0)) {
        srv_reply_error(r, 500, "internal", "Could not read the event log.");
        store_event_list_free(&list, n);
        return;
    }
    if (n == 0 && r->poll_wait_s > 0 && !r->poll_now) {
        r->wants_wait = true; /* the loop parks it in the hub */
        store_event_list_free(&list, n);
        return;
    }
    core_buf_t b;
    core_buf_init(&b);
    core_buf_puts(&b, "{\"events\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            core_buf_puts(&b, ",");
        core_buf_puts(&b, list[i].json);
    }
    core_buf_printf(&b, "],\"last_seq\":%lld}\n", (long long)(n ? list[n - 1].seq : last));
    store_event_list_free(&list, n);
    size_t len = b.len;
    srv_reply_text(r, 200, "application/json", core_buf_steal(&b), len);
}

void srv_h_ws_plain(srv_req_t *r)
{
    srv_resp_add_header(&r->resp, "upgrade:", "websocket");
    srv_reply_error(r, 426, "upgrade_required",
                    "This is the WebSocket event stream: connect with a WebSocket client.");
}
