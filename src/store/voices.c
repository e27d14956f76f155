/* voices.c: each account's speech synthesis settings, one row per account in `voices`
 * (migration 5). No row means the defaults; a PUT replaces the whole row. Any thread. */
#include <errno.h>
#include <string.h>

#include "store/internal.h"

int store_voice_get(store_t *st, int64_t account_id, store_voice_t *out)
{
    static const char sql[] =
        "SELECT voice, rate, pitch, volume, updated_at FROM voices WHERE account_id = ?1";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    if ((rc = store__step(c, s, "voice_get")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    store__col_copy(s, 0, out->voice, sizeof out->voice);
    out->rate = sqlite3_column_int(s, 1);
    out->pitch = sqlite3_column_int(s, 2);
    out->volume = sqlite3_column_int(s, 3);
    out->updated_at = sqlite3_column_int64(s, 4);
    rc = 0;
out:
    store__release(st, c);
    return rc;
}

int store_voice_put(store_t *st, int64_t account_id, const store_voice_t *v)
{
    static const char sql[] =
        "INSERT INTO voices(account_id, voice, rate, pitch, volume, updated_at)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
        " ON CONFLICT(account_id) DO UPDATE SET voice = excluded.voice, rate = excluded.rate,"
        " pitch = excluded.pitch, volume = excluded.volume, updated_at = excluded.updated_at";
    if (!v->voice[0] || strnlen(v->voice, sizeof v->voice) >= sizeof v->voice)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    store__bind_text(s, 2, v->voice);
    sqlite3_bind_int(s, 3, v->rate);
    sqlite3_bind_int(s, 4, v->pitch);
    sqlite3_bind_int(s, 5, v->volume);
    sqlite3_bind_int64(s, 6, core_now_ms());
    rc = store__step(c, s, "voice_put");
    if (rc > 0)
        rc = 0;
out:
    store__release(st, c);
    return rc;
}
