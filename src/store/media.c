/* media.c: media items, their artifacts and the corpus (FTS5).
 *
 * An item's rows — the media row, its artifacts, its corpus passages and its jobs — are created
 * and deleted together in one transaction each. Blob files are not rows: they are unlinked after
 * the deleting transaction has committed, and only when no row references them any more (see
 * store__blob_gc in blob.c), so a crash can leave an unreferenced blob behind but never a row
 * without its blob.
 *
 * Every read of an item filters by account_id: an item of another account is -ENOENT, exactly
 * like one that does not exist. Artifact functions take no account: callers reach them only
 * through an item they got with store_media_get. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

static const char *const status_names[] = {
    [STORE_MEDIA_QUEUED] = "queued",
    [STORE_MEDIA_PROCESSING] = "processing",
    [STORE_MEDIA_READY] = "ready",
    [STORE_MEDIA_FAILED] = "failed",
};

const char *store_media_status_name(store_media_status_t s)
{
    if ((unsigned)s < sizeof status_names / sizeof status_names[0])
        return status_names[s];
    return "unknown";
}

static store_media_status_t status_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof status_names / sizeof status_names[0]; i++)
        if (name && strcmp(name, status_names[i]) == 0)
            return (store_media_status_t)i;
    return STORE_MEDIA_FAILED; /* unreachable: the CHECK constraint allows only the names */
}

void store_media_clear(store_media_t *m)
{
    if (!m)
        return;
    free(m->title);
    free(m->content_type);
    free(m->error);
    free(m->probe_json);
    memset(m, 0, sizeof *m);
}

#define MEDIA_COLS                                                                               \
    "id, account_id, kind, sha256, size, title, content_type, status, error, probe_json,"       \
    " created_at, updated_at"

static void media_from_row(sqlite3_stmt *s, store_media_t *m)
{
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(s, 0);
    m->account_id = sqlite3_column_int64(s, 1);
    store__col_copy(s, 2, m->kind, sizeof m->kind);
    store__col_copy(s, 3, m->sha256, sizeof m->sha256);
    m->size = sqlite3_column_int64(s, 4);
    m->title = store__col_strdup(s, 5);
    m->content_type = store__col_strdup(s, 6);
    m->status = status_from_name((const char *)sqlite3_column_text(s, 7));
    m->error = store__col_strdup(s, 8);
    m->probe_json = store__col_strdup(s, 9);
    m->created_at = sqlite3_column_int64(s, 10);
    m->updated_at = sqlite3_column_int64(s, 11);
}

/* After a call that referenced blob sha256 (committed by the caller, hence pinned): releases the
 * pin; after a definitive failure (the row will never exist: no such account or item, bad
 * input) also removes the blob if nothing else references it. After CORE_ESQL the blob stays:
 * the caller may retry with it. c may be NULL (no connection: nothing collected). */
static void blob_release(store_t *st, store_conn_t *c, const char *sha256, int rc)
{
    if (!store__sha256_valid(sha256))
        return;
    store__blob_unpin(st, sha256);
    if (rc < 0 && rc != CORE_ESQL && c) {
        char one[1][65];
        memcpy(one[0], sha256, sizeof one[0]);
        store__blob_gc(st, c, one, 1);
    }
}

static int media_check(const store_media_t *m)
{
    if (!m || !store__sha256_valid(m->sha256) || m->size < 0 || !m->kind[0])
        return -EINVAL;
    return 0;
}

/* Inserts the media row of m with the given status; sets m->id, status, times. */
static int media_insert(store_conn_t *c, store_media_t *m, store_media_status_t status)
{
    static const char sql[] =
        "INSERT INTO media(account_id, kind, sha256, size, title, content_type, status,"
        " probe_json, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)";
    sqlite3_stmt *s;
    int64_t now = core_now_ms();
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, m->account_id);
    store__bind_text(s, 2, m->kind);
    store__bind_text(s, 3, m->sha256);
    sqlite3_bind_int64(s, 4, m->size);
    store__bind_text(s, 5, m->title);
    store__bind_text(s, 6, m->content_type);
    store__bind_text(s, 7, store_media_status_name(status));
    store__bind_text(s, 8, m->probe_json);
    sqlite3_bind_int64(s, 9, now);
    if ((rc = store__step(c, s, "media_insert")) < 0)
        return rc;
    m->id = sqlite3_last_insert_rowid(c->db);
    m->status = status;
    m->created_at = m->updated_at = now;
    return 0;
}

int store_media_create(store_t *st, store_media_t *m)
{
    static const char sql_job[] =
        "INSERT INTO jobs(account_id, kind, media_id, state, created_at, updated_at)"
        " VALUES (?1, 'media.process', ?2, 'queued', ?3, ?3)";
    int rc = media_check(m);
    if (rc < 0) {
        blob_release(st, NULL, m ? m->sha256 : NULL, rc);
        return rc;
    }
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    store_media_t row = *m;
    if ((rc = store__acquire(st, &c)) < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = media_insert(c, &row, STORE_MEDIA_QUEUED)) < 0)
        goto out;
    if ((rc = store__prepare(c, sql_job, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, row.account_id);
    sqlite3_bind_int64(s, 2, row.id);
    sqlite3_bind_int64(s, 3, row.created_at);
    if ((rc = store__step(c, s, "media_create")) < 0)
        goto out;
    if ((rc = store__commit(c)) < 0)
        goto out;
    m->id = row.id;
    m->status = row.status;
    m->created_at = row.created_at;
    m->updated_at = row.updated_at;
out:
    if (c)
        store__rollback(c);
    blob_release(st, c, m->sha256, rc);
    store__release(st, c);
    return rc;
}

int store_media_create_text(store_t *st, store_media_t *m, const char *text, size_t text_len)
{
    static const char sql_corpus[] =
        "INSERT INTO corpus(text, account_id, media_id, t_start, t_end) VALUES (?1, ?2, ?3, 0, 0)";
    int rc = media_check(m);
    if (rc < 0) {
        blob_release(st, NULL, m ? m->sha256 : NULL, rc);
        return rc;
    }
    if (!text || text_len > INT32_MAX) {
        blob_release(st, NULL, m->sha256, -EINVAL);
        return -EINVAL;
    }
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    store_media_t row = *m;
    if ((rc = store__acquire(st, &c)) < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = media_insert(c, &row, STORE_MEDIA_READY)) < 0)
        goto out;
    store__passage_iter_t it = {.text = text, .len = text_len};
    size_t start, len;
    while (store__next_passage(&it, &start, &len)) {
        if ((rc = store__prepare(c, sql_corpus, &s)) < 0)
            goto out;
        sqlite3_bind_text(s, 1, text + start, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, row.account_id);
        sqlite3_bind_int64(s, 3, row.id);
        if ((rc = store__step(c, s, "media_create_text")) < 0)
            goto out;
    }
    if ((rc = store__commit(c)) < 0)
        goto out;
    m->id = row.id;
    m->status = row.status;
    m->created_at = row.created_at;
    m->updated_at = row.updated_at;
out:
    if (c)
        store__rollback(c);
    blob_release(st, c, m->sha256, rc);
    store__release(st, c);
    return rc;
}

int store_media_get(store_t *st, int64_t account_id, int64_t media_id, store_media_t *out)
{
    static const char sql[] = "SELECT " MEDIA_COLS " FROM media WHERE id = ?1 AND account_id = ?2";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, media_id);
    sqlite3_bind_int64(s, 2, account_id);
    if ((rc = store__step(c, s, "media_get")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    media_from_row(s, out);
    rc = 0;
out:
    store__release(st, c);
    return rc;
}

int store_media_list(store_t *st, int64_t account_id, int64_t before_id, int limit,
                     store_media_t **out, size_t *n_out)
{
    static const char sql[] = "SELECT " MEDIA_COLS " FROM media"
                              " WHERE account_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";
    *out = NULL;
    *n_out = 0;
    if (limit < 1 || before_id < 0)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    store_media_t *list = NULL;
    size_t n = 0, cap = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, before_id > 0 ? before_id : INT64_MAX);
    sqlite3_bind_int(s, 3, limit);
    while ((rc = store__step(c, s, "media_list")) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            list = xrealloc(list, cap * sizeof *list);
        }
        media_from_row(s, &list[n++]);
    }
out:
    store__release(st, c);
    if (rc < 0) {
        store_media_list_free(&list, n);
        return rc;
    }
    *out = list ? list : xcalloc(1, sizeof *list);
    *n_out = n;
    return 0;
}

void store_media_list_free(store_media_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        store_media_clear(&(*list)[i]);
    free(*list);
    *list = NULL;
}

int store_media_delete(store_t *st, int64_t account_id, int64_t media_id)
{
    static const char sql_own[] = "SELECT sha256 FROM media WHERE id = ?1 AND account_id = ?2";
    static const char sql_art[] = "SELECT sha256 FROM artifacts WHERE media_id = ?1";
    static const char sql_del_art[] = "DELETE FROM artifacts WHERE media_id = ?1";
    static const char sql_del_corpus[] = "DELETE FROM corpus WHERE media_id = ?1";
    static const char sql_del_jobs[] = "DELETE FROM jobs WHERE media_id = ?1";
    static const char sql_del_media[] = "DELETE FROM media WHERE id = ?1";
    /* Children first: the foreign keys point at media. */
    const char *const deletes[] = {sql_del_art, sql_del_corpus, sql_del_jobs, sql_del_media};
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    char(*shas)[65] = NULL;
    size_t n = 0, cap = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;

    if ((rc = store__prepare(c, sql_own, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, media_id);
    sqlite3_bind_int64(s, 2, account_id);
    if ((rc = store__step(c, s, "media_delete")) <= 0) {
        rc = rc == 0 ? -ENOENT : rc;
        goto out;
    }
    cap = 8;
    shas = xmalloc(cap * sizeof *shas);
    store__col_copy(s, 0, shas[n++], sizeof shas[0]);
    sqlite3_reset(s);

    if ((rc = store__prepare(c, sql_art, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, media_id);
    while ((rc = store__step(c, s, "media_delete")) == 1) {
        if (n == cap) {
            cap *= 2;
            shas = xrealloc(shas, cap * sizeof *shas);
        }
        store__col_copy(s, 0, shas[n++], sizeof shas[0]);
    }
    if (rc < 0)
        goto out;

    for (size_t i = 0; i < sizeof deletes / sizeof deletes[0]; i++) {
        if ((rc = store__prepare(c, deletes[i], &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, media_id);
        if ((rc = store__step(c, s, "media_delete")) < 0)
            goto out;
    }
    if ((rc = store__commit(c)) < 0)
        goto out;
    store__blob_gc(st, c, shas, n);
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    free(shas);
    return rc;
}

int store_media_set_status(store_t *st, int64_t media_id, store_media_status_t status,
                           const char *error)
{
    static const char sql[] =
        "UPDATE media SET status = ?2, error = ?3, updated_at = ?4 WHERE id = ?1";
    if ((unsigned)status > STORE_MEDIA_FAILED)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, media_id);
    store__bind_text(s, 2, store_media_status_name(status));
    store__bind_text(s, 3, status == STORE_MEDIA_FAILED ? (error ? error : "failed") : NULL);
    sqlite3_bind_int64(s, 4, core_now_ms());
    if ((rc = store__step(c, s, "media_set_status")) < 0)
        goto out;
    rc = sqlite3_changes(c->db) ? 0 : -ENOENT;
out:
    store__release(st, c);
    return rc;
}

/* ==================================================================================== */
/* artifacts                                                                             */
/* ==================================================================================== */

#define ARTIFACT_COLS "media_id, name, sha256, size, mime, ext, info_json"

static void artifact_from_row(sqlite3_stmt *s, store_artifact_t *a)
{
    memset(a, 0, sizeof *a);
    a->media_id = sqlite3_column_int64(s, 0);
    store__col_copy(s, 1, a->name, sizeof a->name);
    store__col_copy(s, 2, a->sha256, sizeof a->sha256);
    a->size = sqlite3_column_int64(s, 3);
    store__col_copy(s, 4, a->mime, sizeof a->mime);
    store__col_copy(s, 5, a->ext, sizeof a->ext);
    a->info_json = store__col_strdup(s, 6);
}

void store_artifact_clear(store_artifact_t *a)
{
    if (!a)
        return;
    free(a->info_json);
    memset(a, 0, sizeof *a);
}

int store_artifact_put(store_t *st, const store_artifact_t *a)
{
    static const char sql_old[] = "SELECT sha256 FROM artifacts WHERE media_id = ?1 AND name = ?2";
    static const char sql_put[] =
        "INSERT INTO artifacts(" ARTIFACT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        " ON CONFLICT(media_id, name) DO UPDATE SET sha256 = excluded.sha256,"
        " size = excluded.size, mime = excluded.mime, ext = excluded.ext,"
        " info_json = excluded.info_json";
    if (!a || !a->name[0] || !store__sha256_valid(a->sha256) || a->size < 0) {
        blob_release(st, NULL, a ? a->sha256 : NULL, -EINVAL);
        return -EINVAL;
    }
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    char old[1][65] = {""};
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = store__prepare(c, sql_old, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, a->media_id);
    store__bind_text(s, 2, a->name);
    if ((rc = store__step(c, s, "artifact_put")) < 0)
        goto out;
    if (rc == 1)
        store__col_copy(s, 0, old[0], sizeof old[0]);
    sqlite3_reset(s);

    if ((rc = store__prepare(c, sql_put, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, a->media_id);
    store__bind_text(s, 2, a->name);
    store__bind_text(s, 3, a->sha256);
    sqlite3_bind_int64(s, 4, a->size);
    store__bind_text(s, 5, a->mime);
    store__bind_text(s, 6, a->ext);
    store__bind_text(s, 7, a->info_json);
    if ((rc = store__step(c, s, "artifact_put")) < 0)
        goto out;
    if ((rc = store__commit(c)) < 0)
        goto out;
    /* A rerun that produced different bytes leaves the old blob unreferenced. */
    if (old[0][0] && strcmp(old[0], a->sha256) != 0)
        store__blob_gc(st, c, old, 1);
out:
    if (c)
        store__rollback(c);
    blob_release(st, c, a->sha256, rc);
    store__release(st, c);
    return rc;
}

int store_artifact_get(store_t *st, int64_t media_id, const char *name, store_artifact_t *out)
{
    static const char sql[] =
        "SELECT " ARTIFACT_COLS " FROM artifacts WHERE media_id = ?1 AND name = ?2";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    if (!name)
        return -EINVAL;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, media_id);
    store__bind_text(s, 2, name);
    if ((rc = store__step(c, s, "artifact_get")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    artifact_from_row(s, out);
    rc = 0;
out:
    store__release(st, c);
    return rc;
}

int store_artifact_list(store_t *st, int64_t media_id, store_artifact_t **out, size_t *n_out)
{
    static const char sql[] =
        "SELECT " ARTIFACT_COLS " FROM artifacts WHERE media_id = ?1 ORDER BY name";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    store_artifact_t *list = NULL;
    size_t n = 0, cap = 0;
    *out = NULL;
    *n_out = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, media_id);
    while ((rc = store__step(c, s, "artifact_list")) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            list = xrealloc(list, cap * sizeof *list);
        }
        artifact_from_row(s, &list[n++]);
    }
out:
    store__release(st, c);
    if (rc < 0) {
        store_artifact_list_free(&list, n);
        return rc;
    }
    *out = list ? list : xcalloc(1, sizeof *list);
    *n_out = n;
    return 0;
}

void store_artifact_list_free(store_artifact_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        store_artifact_clear(&(*list)[i]);
    free(*list);
    *list = NULL;
}

/* ==================================================================================== */
/* corpus                                                                                */
/* ==================================================================================== */

int store_corpus_add(store_t *st, int64_t account_id, int64_t media_id, double t_start,
                     double t_end, const char *text)
{
    /* Only into an item of the same account. */
    static const char sql[] =
        "INSERT INTO corpus(text, account_id, media_id, t_start, t_end)"
        " SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS"
        " (SELECT 1 FROM media WHERE id = ?3 AND account_id = ?2)";
    if (!text)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    store__bind_text(s, 1, text);
    sqlite3_bind_int64(s, 2, account_id);
    sqlite3_bind_int64(s, 3, media_id);
    sqlite3_bind_double(s, 4, t_start);
    sqlite3_bind_double(s, 5, t_end);
    if ((rc = store__step(c, s, "corpus_add")) < 0)
        goto out;
    rc = sqlite3_changes(c->db) ? 0 : -ENOENT;
out:
    store__release(st, c);
    return rc;
}

int store_corpus_count(store_t *st, int64_t account_id, int64_t media_id, int64_t *n_out)
{
    static const char sql[] = "SELECT count(*) FROM corpus"
                              " WHERE account_id = ?1 AND (?2 = 0 OR media_id = ?2)";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, media_id);
    if ((rc = store__step(c, s, "corpus_count")) < 0)
        goto out;
    *n_out = rc == 1 ? sqlite3_column_int64(s, 0) : 0;
    rc = 0;
out:
    store__release(st, c);
    return rc;
}
