/* events.c: the per-account event log.
 *
 * Every event gets the account's next seq from accounts.last_event_seq, incremented in the same
 * IMMEDIATE transaction that inserts the event: seqs of an account are strictly increasing and
 * contiguous as appended, and never reused, because pruning deletes events but never lowers the
 * counter. The stored JSON is the event exactly as clients get it: {"seq":N,"type":"...",
 * ...the members of the body...}, spliced as text (the body is an object text from our own
 * code, checked only for its braces). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

void store_event_clear(store_event_t *e)
{
    if (!e)
        return;
    free(e->json);
    memset(e, 0, sizeof *e);
}

void store_event_list_free(store_event_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        store_event_clear(&(*list)[i]);
    free(*list);
    *list = NULL;
}

static bool json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The members of an object text: [*start, *end) between its braces, trimmed. -EINVAL unless
 * body (after whitespace) starts with '{' and ends with '}'. NULL is "{}". */
static int body_members(const char *body, size_t *start, size_t *end)
{
    if (!body) {
        *start = *end = 0;
        return 0;
    }
    size_t b = 0, e = strlen(body);
    while (b < e && json_space(body[b]))
        b++;
    while (e > b && json_space(body[e - 1]))
        e--;
    if (e - b < 2 || body[b] != '{' || body[e - 1] != '}')
        return -EINVAL;
    b++, e--;
    while (b < e && json_space(body[b]))
        b++;
    while (e > b && json_space(body[e - 1]))
        e--;
    *start = b;
    *end = e;
    return 0;
}

int store__event_check(const char *type, const char *body_json)
{
    if (!type)
        return -EINVAL;
    size_t n = strlen(type);
    if (n == 0 || n >= sizeof((store_event_t *)0)->type)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!((type[i] >= 'a' && type[i] <= 'z') || type[i] == '.'))
            return -EINVAL;
    size_t b, e;
    return body_members(body_json, &b, &e);
}

char *store__json_string(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    char *out = xmalloc(n * 6 + 3), *o = out;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n') {
            *o++ = '\\', *o++ = 'n';
        } else if (c == '\t') {
            *o++ = '\\', *o++ = 't';
        } else if (c == '\r') {
            *o++ = '\\', *o++ = 'r';
        } else if (c < 0x20 || c == 0x7f) {
            o += sprintf(o, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

int store__event_append(store_conn_t *c, int64_t account_id, const char *type,
                        const char *body_json, int64_t now, store_event_t *out)
{
    static const char sql_seq[] = "UPDATE accounts SET last_event_seq = last_event_seq + 1"
                                  " WHERE id = ?1 RETURNING last_event_seq";
    static const char sql_ins[] =
        "INSERT INTO events(account_id, seq, type, json, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
    size_t b, e;
    int rc = store__event_check(type, body_json);
    if (rc < 0)
        return rc;
    body_members(body_json, &b, &e);
    sqlite3_stmt *s;
    if ((rc = store__prepare(c, sql_seq, &s)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, account_id);
    if ((rc = store__step(c, s, "event_append")) < 0)
        return rc;
    if (rc == 0)
        return -ENOENT; /* no such account */
    int64_t seq = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);

    char *json = xasprintf("{\"seq\":%lld,\"type\":\"%s\"%s%.*s}", (long long)seq, type,
                           e > b ? "," : "", (int)(e - b), body_json ? body_json + b : "");
    if ((rc = store__prepare(c, sql_ins, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, seq);
    store__bind_text(s, 3, type);
    store__bind_text(s, 4, json);
    sqlite3_bind_int64(s, 5, now);
    if ((rc = store__step(c, s, "event_append")) < 0)
        goto out;
    rc = 0;
    if (out) {
        memset(out, 0, sizeof *out);
        out->account_id = account_id;
        out->seq = seq;
        snprintf(out->type, sizeof out->type, "%s", type);
        out->json = json;
        out->created_at = now;
        json = NULL;
    }
out:
    free(json);
    return rc;
}

int store_event_append(store_t *st, int64_t account_id, const char *type, const char *body_json,
                       store_event_t *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    int rc = store__event_check(type, body_json);
    if (rc < 0)
        return rc;
    store_conn_t *c = NULL;
    if ((rc = store__acquire(st, &c)) < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    store_event_t ev = {0};
    if ((rc = store__event_append(c, account_id, type, body_json, core_now_ms(), &ev)) < 0)
        goto out;
    if ((rc = store__commit(c)) < 0) {
        store_event_clear(&ev);
        goto out;
    }
    if (out)
        *out = ev;
    else
        store_event_clear(&ev);
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}

int store_event_list(store_t *st, int64_t account_id, int64_t after, int limit,
                     store_event_t **out, size_t *n_out)
{
    static const char sql[] = "SELECT account_id, seq, type, json, created_at FROM events"
                              " WHERE account_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
    *out = NULL;
    *n_out = 0;
    if (limit < 1 || limit > 1000)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    store_event_t *list = NULL;
    size_t n = 0, cap = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, after);
    sqlite3_bind_int(s, 3, limit);
    while ((rc = store__step(c, s, "event_list")) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            list = xrealloc(list, cap * sizeof *list);
        }
        store_event_t *e = &list[n++];
        memset(e, 0, sizeof *e);
        e->account_id = sqlite3_column_int64(s, 0);
        e->seq = sqlite3_column_int64(s, 1);
        store__col_copy(s, 2, e->type, sizeof e->type);
        e->json = store__col_strdup(s, 3);
        e->created_at = sqlite3_column_int64(s, 4);
    }
out:
    store__release(st, c);
    if (rc < 0) {
        store_event_list_free(&list, n);
        return rc;
    }
    *out = list ? list : xcalloc(1, sizeof *list);
    *n_out = n;
    return 0;
}

int store_event_last_seq(store_t *st, int64_t account_id, int64_t *seq_out)
{
    static const char sql[] = "SELECT last_event_seq FROM accounts WHERE id = ?1";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    *seq_out = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    if ((rc = store__step(c, s, "event_last_seq")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    *seq_out = sqlite3_column_int64(s, 0);
    rc = 0;
out:
    store__release(st, c);
    return rc;
}

int store_event_prune(store_t *st, int64_t max_age_ms, int64_t max_per_account,
                      int64_t *deleted_out)
{
    static const char sql_age[] = "DELETE FROM events WHERE created_at < ?1";
    static const char sql_accounts[] = "SELECT DISTINCT account_id FROM events";
    /* All but the newest ?2: everything up to the seq of the (?2+1)-th newest. */
    static const char sql_count[] =
        "DELETE FROM events WHERE account_id = ?1 AND seq <= (SELECT seq FROM events"
        " WHERE account_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)";
    if (deleted_out)
        *deleted_out = 0;
    if (max_age_ms < 0 || max_per_account < 0)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int64_t deleted = 0, *accounts = NULL;
    size_t n = 0, cap = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if (max_age_ms > 0) {
        if ((rc = store__prepare(c, sql_age, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, core_now_ms() - max_age_ms);
        if ((rc = store__step(c, s, "event_prune")) < 0)
            goto out;
        deleted += sqlite3_changes(c->db);
    }
    if (max_per_account > 0) {
        if ((rc = store__prepare(c, sql_accounts, &s)) < 0)
            goto out;
        while ((rc = store__step(c, s, "event_prune")) == 1) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                accounts = xrealloc(accounts, cap * sizeof *accounts);
            }
            accounts[n++] = sqlite3_column_int64(s, 0);
        }
        if (rc < 0)
            goto out;
        for (size_t i = 0; i < n; i++) {
            if ((rc = store__prepare(c, sql_count, &s)) < 0)
                goto out;
            sqlite3_bind_int64(s, 1, accounts[i]);
            sqlite3_bind_int64(s, 2, max_per_account);
            if ((rc = store__step(c, s, "event_prune")) < 0)
                goto out;
            deleted += sqlite3_changes(c->db);
        }
    }
    if ((rc = store__commit(c)) < 0)
        goto out;
    if (deleted_out)
        *deleted_out = deleted;
    if (deleted > 0)
        core_log(CORE_LOG_INFO, "store.events_pruned", "count=%lld", (long long)deleted);
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    free(accounts);
    return rc;
}
