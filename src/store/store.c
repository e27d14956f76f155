/* store.c: opening and closing the embedded store, its connection pool, and the SQL helpers the
 * other files use. This is the module's edge for SQLite: every SQLite result code is translated
 * here (store__step and friends) and every SQLite failure is logged here, once, as
 * event=store.sql.
 *
 * Connections: a mutex-protected stack of sqlite3 handles, opened lazily up to STORE__MAX_CONNS.
 * Each public call acquires one, uses it and releases it before returning, so one handle is only
 * ever used by one thread at a time (hence SQLITE_OPEN_NOMUTEX). Each handle caches its prepared
 * statements, keyed by the address of their static SQL text.
 *
 * Settings of every connection:
 *   - journal_mode=WAL: readers never block the writer and the writer never blocks readers;
 *   - synchronous=FULL: a commit is on disk when COMMIT returns. WAL with NORMAL would be
 *     consistent after a power loss too, but could lose the last transactions; persona answers
 *     201 to an upload only after its row is committed, and fsyncs the blob before that, so the
 *     row must be as durable as the blob. Our write rate (uploads, job transitions) is low
 *     enough that one WAL fsync per commit costs nothing that matters;
 *   - foreign_keys=ON, busy_timeout=10000 ms;
 *   - write transactions are BEGIN IMMEDIATE, so they wait for the write lock at BEGIN (busy
 *     timeout) instead of failing with SQLITE_BUSY half way.
 *
 * Single process: a data directory belongs to one process, enforced by an flock on
 * <data_dir>/persona.lock. That is what makes it safe for store_open to delete every temp file
 * and requeue every running job: whoever wrote them is dead. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/internal.h"

/* ==================================================================================== */
/* SQL helpers                                                                           */
/* ==================================================================================== */

int store__sql_error(store_conn_t *c, int rc, const char *op)
{
    char msg[256];
    const char *text = c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
    core_log(CORE_LOG_ERROR, "store.sql", "op=%s rc=%d msg=%s", op ? op : "?", rc,
             core_log_quote(text, msg, sizeof msg));
    return CORE_ESQL;
}

int store__prepare(store_conn_t *c, const char *sql, sqlite3_stmt **out)
{
    for (int i = 0; i < c->nstmts; i++) {
        if (c->stmts[i].sql == sql) {
            sqlite3_reset(c->stmts[i].stmt);
            sqlite3_clear_bindings(c->stmts[i].stmt);
            *out = c->stmts[i].stmt;
            return 0;
        }
    }
    if (c->nstmts == STORE__MAX_STMTS) {
        /* A fixed set of static SQL texts cannot outgrow the cache unless the code changed. */
        core_log(CORE_LOG_ERROR, "store.bug", "msg=\"statement cache full; raise STORE__MAX_STMTS\"");
        abort();
    }
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(s);
        *out = NULL;
        return store__sql_error(c, rc, "prepare");
    }
    c->stmts[c->nstmts].sql = sql;
    c->stmts[c->nstmts].stmt = s;
    c->nstmts++;
    *out = s;
    return 0;
}

int store__step(store_conn_t *c, sqlite3_stmt *s, const char *op)
{
    int rc = sqlite3_step(s);
    switch (rc) {
    case SQLITE_ROW:
        return 1;
    case SQLITE_DONE:
        return 0;
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return -EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return -ENOENT;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
        return -EINVAL;
    default:
        return store__sql_error(c, rc, op);
    }
}

int store__exec(store_conn_t *c, const char *sql, const char *op)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store__sql_error(c, rc, op);
}

int store__begin(store_conn_t *c)
{
    return store__exec(c, "BEGIN IMMEDIATE", "begin");
}

int store__commit(store_conn_t *c)
{
    int rc = store__exec(c, "COMMIT", "commit");
    if (rc < 0)
        store__rollback(c);
    return rc;
}

void store__rollback(store_conn_t *c)
{
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

char *store__col_strdup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? xstrdup((const char *)t) : NULL;
}

void store__col_copy(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

void store__bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* ==================================================================================== */
/* connections                                                                           */
/* ==================================================================================== */

static void conn_close(store_conn_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nstmts; i++)
        sqlite3_finalize(c->stmts[i].stmt);
    sqlite3_close(c->db);
    free(c);
}

/* Opens and configures one connection. Returns 0 or CORE_ESQL (logged). */
static int conn_open(store_t *st, store_conn_t **out)
{
    int rc = 0;
    store_conn_t *c = xcalloc(1, sizeof *c);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int src = sqlite3_open_v2(st->db_path, &c->db, flags, NULL);
    if (src != SQLITE_OK) {
        rc = store__sql_error(c, src, "open");
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 10000);

    /* The first read of the file happens here: a file that is not a database fails now. */
    sqlite3_stmt *s = NULL;
    src = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    if (src != SQLITE_ROW) {
        rc = store__sql_error(c, src, "journal_mode");
        sqlite3_finalize(s);
        goto out;
    }
    const char *mode = (const char *)sqlite3_column_text(s, 0);
    bool wal = mode && strcmp(mode, "wal") == 0;
    sqlite3_finalize(s);
    if (!wal) {
        core_log(CORE_LOG_ERROR, "store.sql", "op=journal_mode msg=\"could not enable WAL\"");
        rc = CORE_ESQL;
        goto out;
    }
    rc = store__exec(c, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;", "pragmas");
out:
    if (rc < 0) {
        conn_close(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

int store__acquire(store_t *st, store_conn_t **out)
{
    pthread_mutex_lock(&st->pool_mu);
    for (;;) {
        if (st->free_conns) {
            store_conn_t *c = st->free_conns;
            st->free_conns = c->next;
            c->next = NULL;
            pthread_mutex_unlock(&st->pool_mu);
            *out = c;
            return 0;
        }
        if (st->nconns < STORE__MAX_CONNS)
            break;
        pthread_cond_wait(&st->pool_cv, &st->pool_mu);
    }
    st->nconns++; /* reserve the slot, open outside the lock */
    pthread_mutex_unlock(&st->pool_mu);

    int rc = conn_open(st, out);
    if (rc < 0) {
        pthread_mutex_lock(&st->pool_mu);
        st->nconns--;
        pthread_cond_signal(&st->pool_cv);
        pthread_mutex_unlock(&st->pool_mu);
    }
    return rc;
}

void store__release(store_t *st, store_conn_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nstmts; i++)
        sqlite3_reset(c->stmts[i].stmt);
    if (!sqlite3_get_autocommit(c->db)) {
        /* Every function ends its transaction on every path; reaching this is a bug, and
         * handing out a connection inside someone else's transaction would be worse. */
        core_log(CORE_LOG_ERROR, "store.bug", "msg=\"connection released inside a transaction\"");
        store__rollback(c);
    }
    pthread_mutex_lock(&st->pool_mu);
    c->next = st->free_conns;
    st->free_conns = c;
    pthread_cond_signal(&st->pool_cv);
    pthread_mutex_unlock(&st->pool_mu);
}

/* ==================================================================================== */
/* open / free                                                                           */
/* ==================================================================================== */

static int take_lock(store_t *st)
{
    char *path = xasprintf("%s/persona.lock", st->data_dir);
    int rc = 0;
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->lock_fd < 0) {
        rc = -errno;
        goto out;
    }
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        if (rc == -EBUSY)
            core_log(CORE_LOG_ERROR, "store.open",
                     "msg=\"data directory is in use by another store\"");
    }
out:
    free(path);
    return rc;
}

int store_open(const char *data_dir, store_t **out)
{
    int rc = 0;
    store_conn_t *c = NULL;
    *out = NULL;
    if (!data_dir || !*data_dir)
        return -EINVAL;
    if (sodium_init() < 0)
        return -ENOSYS;

    store_t *st = xcalloc(1, sizeof *st);
    st->lock_fd = -1;
    pthread_mutex_init(&st->pool_mu, NULL);
    pthread_cond_init(&st->pool_cv, NULL);
    pthread_mutex_init(&st->blob_mu, NULL);
    st->data_dir = xstrdup(data_dir);
    st->db_path = xasprintf("%s/persona.db", data_dir);
    st->blob_dir = xasprintf("%s/blobs", data_dir);
    st->tmp_dir = xasprintf("%s/tmp", data_dir);

    if ((rc = core_mkdirs(st->data_dir)) < 0 || (rc = core_mkdirs(st->blob_dir)) < 0 ||
        (rc = core_mkdirs(st->tmp_dir)) < 0) {
        core_log(CORE_LOG_ERROR, "store.open", "op=mkdir err=\"%s\"", core_strerror(rc));
        goto out;
    }
    if ((rc = take_lock(st)) < 0)
        goto out;
    /* Created here so that it (and the -wal/-shm files SQLite derives from it) is 0600: it
     * holds password hashes. An empty file is an empty database to SQLite. */
    int dbfd = open(st->db_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (dbfd < 0) {
        rc = -errno;
        core_log(CORE_LOG_ERROR, "store.open", "op=create_db err=\"%s\"", core_strerror(rc));
        goto out;
    }
    close(dbfd);
    if ((rc = store__tmp_sweep(st)) < 0)
        goto out;
    if ((rc = store__acquire(st, &c)) < 0)
        goto out;
    if ((rc = store__migrate(c)) < 0)
        goto out;
    rc = store__jobs_requeue(c);
out:
    store__release(st, c);
    if (rc < 0)
        store_free(&st);
    *out = st;
    return rc;
}

void store_free(store_t **pst)
{
    store_t *st = pst ? *pst : NULL;
    if (!st)
        return;
    /* Every connection must be back: a call still running on another thread would be a use
     * after free in the caller. */
    int idle = 0;
    while (st->free_conns) {
        store_conn_t *c = st->free_conns;
        st->free_conns = c->next;
        conn_close(c);
        idle++;
    }
    if (idle != st->nconns)
        core_log(CORE_LOG_ERROR, "store.bug", "msg=\"store freed while in use\" busy=%d",
                 st->nconns - idle);
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&st->pool_mu);
    pthread_cond_destroy(&st->pool_cv);
    pthread_mutex_destroy(&st->blob_mu);
    free(st->pins);
    free(st->data_dir);
    free(st->db_path);
    free(st->blob_dir);
    free(st->tmp_dir);
    free(st);
    *pst = NULL;
}

const char *store_data_dir(const store_t *st)
{
    return st->data_dir;
}
