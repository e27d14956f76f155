/* accounts.c: accounts and their devices.
 *
 * A device is identified by the SHA-256 of its bearer token; the token itself is never stored.
 * Lookup goes through the unique index on token_hash, and the stored hash is then compared with
 * sodium_memcmp so that accepting a token never depends on a data-dependent compare.
 * Usernames are unique without regard to ASCII case (COLLATE NOCASE). */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

/* ==================================================================================== */
/* accounts                                                                              */
/* ==================================================================================== */

int store_account_create(store_t *st, const char *username, const char *password_hash,
                         bool only_if_none, int64_t *id_out)
{
    static const char sql_any[] = "SELECT EXISTS(SELECT 1 FROM accounts)";
    static const char sql_ins[] =
        "INSERT INTO accounts(username, password_hash, created_at) VALUES (?1, ?2, ?3)";
    if (!username || !*username || !password_hash)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if (only_if_none) {
        if ((rc = store__prepare(c, sql_any, &s)) < 0)
            goto out;
        if ((rc = store__step(c, s, "account_create")) < 0)
            goto out;
        if (rc == 1 && sqlite3_column_int(s, 0)) {
            rc = -EPERM;
            goto out;
        }
    }
    if ((rc = store__prepare(c, sql_ins, &s)) < 0)
        goto out;
    store__bind_text(s, 1, username);
    store__bind_text(s, 2, password_hash);
    sqlite3_bind_int64(s, 3, core_now_ms());
    if ((rc = store__step(c, s, "account_create")) < 0)
        goto out;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    if ((rc = store__commit(c)) < 0)
        goto out;
    if (id_out)
        *id_out = id;
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}

int store_account_find(store_t *st, const char *username, int64_t *id_out, char **password_hash_out)
{
    static const char sql[] = "SELECT id, password_hash FROM accounts WHERE username = ?1";
    if (!username)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    store__bind_text(s, 1, username);
    if ((rc = store__step(c, s, "account_find")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    rc = 0;
    if (id_out)
        *id_out = sqlite3_column_int64(s, 0);
    if (password_hash_out)
        *password_hash_out = store__col_strdup(s, 1);
out:
    store__release(st, c);
    return rc;
}

int store_account_count(store_t *st, int64_t *n_out)
{
    static const char sql[] = "SELECT count(*) FROM accounts";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    if ((rc = store__step(c, s, "account_count")) < 0)
        goto out;
    *n_out = rc == 1 ? sqlite3_column_int64(s, 0) : 0;
    rc = 0;
out:
    store__release(st, c);
    return rc;
}

/* ==================================================================================== */
/* devices                                                                               */
/* ==================================================================================== */

#define DEVICE_COLS "id, account_id, name, kind, created_at, last_seen_at, revoked_at IS NOT NULL"

static void device_from_row(sqlite3_stmt *s, store_device_t *d)
{
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(s, 0);
    d->account_id = sqlite3_column_int64(s, 1);
    store__col_copy(s, 2, d->name, sizeof d->name);
    store__col_copy(s, 3, d->kind, sizeof d->kind);
    d->created_at = sqlite3_column_int64(s, 4);
    d->last_seen_at = sqlite3_column_int64(s, 5);
    d->revoked = sqlite3_column_int(s, 6) != 0;
}

int store_device_create(store_t *st, int64_t account_id, const char *name, const char *kind,
                        const uint8_t token_hash[32], int64_t *id_out)
{
    static const char sql[] =
        "INSERT INTO devices(account_id, name, kind, token_hash, created_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5)";
    if (!name || !kind || !token_hash)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    store__bind_text(s, 2, name);
    store__bind_text(s, 3, kind);
    sqlite3_bind_blob(s, 4, token_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, core_now_ms());
    if ((rc = store__step(c, s, "device_create")) < 0)
        goto out;
    rc = 0;
    if (id_out)
        *id_out = sqlite3_last_insert_rowid(c->db);
out:
    store__release(st, c);
    return rc;
}

int store_device_by_token(store_t *st, const uint8_t token_hash[32], store_device_t *out)
{
    static const char sql[] = "SELECT " DEVICE_COLS ", token_hash FROM devices"
                              " WHERE token_hash = ?1 AND revoked_at IS NULL";
    if (!token_hash)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_blob(s, 1, token_hash, 32, SQLITE_STATIC);
    if ((rc = store__step(c, s, "device_by_token")) < 0)
        goto out;
    rc = -ENOENT;
    if (sqlite3_column_type(s, 7) == SQLITE_BLOB && sqlite3_column_bytes(s, 7) == 32 &&
        sodium_memcmp(sqlite3_column_blob(s, 7), token_hash, 32) == 0) {
        device_from_row(s, out);
        rc = 0;
    }
out:
    store__release(st, c);
    return rc;
}

int store_device_list(store_t *st, int64_t account_id, store_device_t **out, size_t *n_out)
{
    static const char sql[] =
        "SELECT " DEVICE_COLS " FROM devices WHERE account_id = ?1 ORDER BY id DESC";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    store_device_t *list = NULL;
    size_t n = 0, cap = 0;
    *out = NULL;
    *n_out = 0;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    while ((rc = store__step(c, s, "device_list")) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            list = xrealloc(list, cap * sizeof *list);
        }
        device_from_row(s, &list[n++]);
    }
out:
    store__release(st, c);
    if (rc < 0) {
        free(list);
        return rc;
    }
    *out = list ? list : xcalloc(1, sizeof *list);
    *n_out = n;
    return 0;
}

void store_device_list_free(store_device_t **list)
{
    if (list) {
        free(*list);
        *list = NULL;
    }
}

int store_device_revoke(store_t *st, int64_t account_id, int64_t device_id)
{
    /* coalesce: revoking twice succeeds and keeps the first revocation time. */
    static const char sql[] = "UPDATE devices SET revoked_at = coalesce(revoked_at, ?3)"
                              " WHERE id = ?1 AND account_id = ?2";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, device_id);
    sqlite3_bind_int64(s, 2, account_id);
    sqlite3_bind_int64(s, 3, core_now_ms());
    if ((rc = store__step(c, s, "device_revoke")) < 0)
        goto out;
    rc = sqlite3_changes(c->db) ? 0 : -ENOENT;
out:
    store__release(st, c);
    return rc;
}

int store_device_touch(store_t *st, int64_t device_id)
{
    static const char sql[] = "UPDATE devices SET last_seen_at = ?2"
                              " WHERE id = ?1 AND last_seen_at <= ?2 - 60000";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, device_id);
    sqlite3_bind_int64(s, 2, core_now_ms());
    rc = store__step(c, s, "device_touch");
    if (rc > 0)
        rc = 0;
out:
    store__release(st, c);
    return rc;
}
