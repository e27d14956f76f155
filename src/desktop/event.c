/* desktop event: parses the JSON text frames of the event stream into desk__event_t. Pure;
 * runs on the WebSocket thread. Unknown types are kept as DESK__EV_OTHER so they are acked. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "desktop/internal.h"

void desk__event_clear(desk__event_t *ev) {
    free(ev->text);
    free(ev->error);
    memset(ev, 0, sizeof *ev);
}

static bool valid_qid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= DESK__QID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

int desk__event_parse(const char *json, size_t len, desk__event_t *ev) {
    memset(ev, 0, sizeof *ev);
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    int rc = -EINVAL;
    if (!json_is_object(o))
        goto out;
    json_t *seq = json_object_get(o, "seq"), *type = json_object_get(o, "type");
    if (!json_is_integer(seq) || json_integer_value(seq) <= 0 || !json_is_string(type))
        goto out;
    ev->seq = json_integer_value(seq);
    const char *t = json_string_value(type);
    if (strcmp(t, "answer.delta") == 0)
        ev->type = DESK__EV_DELTA;
    else if (strcmp(t, "answer.done") == 0)
        ev->type = DESK__EV_DONE;
    else if (strcmp(t, "answer.failed") == 0)
        ev->type = DESK__EV_FAILED;
    else {
        ev->type = DESK__EV_OTHER;
        rc = 0;
        goto out;
    }

    json_t *q = json_object_get(o, "question_id");
    if (json_is_integer(q) && json_integer_value(q) > 0)
        snprintf(ev->qid, sizeof ev->qid, "%lld", (long long)json_integer_value(q));
    else if (json_is_string(q) && json_string_length(q) < sizeof ev->qid)
        snprintf(ev->qid, sizeof ev->qid, "%s", json_string_value(q));
    if (!valid_qid(ev->qid))
        goto out;

    if (ev->type == DESK__EV_FAILED) {
        json_t *e = json_object_get(o, "error");
        if (json_is_string(e))
            ev->error = xstrdup(json_string_value(e));
        rc = 0;
        goto out;
    }
    json_t *text = json_object_get(o, "text");
    if (!json_is_string(text))
        goto out;
    if (ev->type == DESK__EV_DELTA) {
        json_t *off = json_object_get(o, "offset");
        if (!json_is_integer(off) || json_integer_value(off) < 0)
            goto out;
        ev->offset = json_integer_value(off);
    }
    /* jansson guarantees valid UTF-8; a \u0000 inside stays in the length, speech reads it as
     * a space */
    ev->text_len = json_string_length(text);
    ev->text = xmalloc(ev->text_len + 1);
    memcpy(ev->text, json_string_value(text), ev->text_len + 1);
    rc = 0;
out:
    json_decref(o);
    if (rc < 0)
        desk__event_clear(ev);
    return rc;
}
