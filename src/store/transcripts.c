/* transcripts.c: each audio/video item's transcript (the JSON text the jobs module writes, see
 * docs/api.md) and the corpus passages made from its segments.
 *
 * Invariant: an item's transcript row and its corpus passages change together, in one
 * transaction (store_transcript_put), so search never sees passages of an older transcript next
 * to a newer one. A transcript row is deleted with its item (ON DELETE CASCADE). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

void store_transcript_clear(store_transcript_t *t)
{
    if (!t)
        return;
    free(t->json);
    memset(t, 0, sizeof *t);
}

int store_transcript_put(store_t *st, int64_t account_id, int64_t media_id, const char *json,
                         bool corrected, const store_transcript_passage_t *passages, size_t n)
{
    static const char sql_item[] = "SELECT 1 FROM media WHERE id = ?1 AND account_id = ?2";
    static const char sql_row[] =
        "INSERT INTO transcripts(media_id, account_id, json, corrected, created_at, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(media_id) DO UPDATE SET json = ?3,"
        " corrected = ?4, updated_at = ?5";
    static const char sql_del[] = "DELETE FROM corpus WHERE media_id = ?1";
    static const char sql_add[] =
        "INSERT INTO corpus(text, account_id, media_id, t_start, t_end) VALUES (?1, ?2, ?3, ?4, ?5)";
    if (!json || (n && !passages))
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = store__prepare(c, sql_item, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, media_id);
    sqlite3_bind_int64(s, 2, account_id);
    if ((rc = store__step(c, s, "transcript_put")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    if ((rc = store__prepare(c, sql_row, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, media_id);
    sqlite3_bind_int64(s, 2, account_id);
    store__bind_text(s, 3, json);
    sqlite3_bind_int(s, 4, corrected ? 1 : 0);
    sqlite3_bind_int64(s, 5, core_now_ms());
    if ((rc = store__step(c, s, "transcript_put")) < 0)
        goto out;
    if ((rc = store__prepare(c, sql_del, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, media_id);
    if ((rc = store__step(c, s, "transcript_put")) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!passages[i].text || !*passages[i].text)
            continue;
        if ((rc = store__prepare(c, sql_add, &s)) < 0)
            goto out;
        store__bind_text(s, 1, passages[i].text);
        sqlite3_bind_int64(s, 2, account_id);
        sqlite3_bind_int64(s, 3, media_id);
        sqlite3_bind_double(s, 4, passages[i].t_start);
        sqlite3_bind_double(s, 5, passages[i].t_end);
        if ((rc = store__step(c, s, "transcript_put")) < 0)
            goto out;
    }
    rc = store__commit(c);
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}

int store_transcript_get(store_t *st, int64_t account_id, int64_t media_id,
                         store_transcript_t *out)
{
    static const char sql[] =
        "SELECT t.json, t.corrected, t.created_at, t.updated_at FROM transcripts AS t"
        " JOIN media AS m ON m.id = t.media_id AND m.account_id = ?2"
        " WHERE t.media_id = ?1 AND t.account_id = ?2";
    memset(out, 0, sizeof *out);
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, media_id);
    sqlite3_bind_int64(s, 2, account_id);
    if ((rc = store__step(c, s, "transcript_get")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    out->media_id = media_id;
    out->json = store__col_strdup(s, 0);
    out->corrected = sqlite3_column_int(s, 1) != 0;
    out->created_at = sqlite3_column_int64(s, 2);
    out->updated_at = sqlite3_column_int64(s, 3);
    rc = out->json ? 0 : CORE_ESQL;
out:
    store__release(st, c);
    return rc;
}
