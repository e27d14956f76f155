/* store internals: what the files of the embedded (SQLite + files) backend share — the store
 * struct, the connection pool, the per-connection prepared-statement cache, the SQL helpers that
 * translate SQLite's codes to ours, and the blob pins that keep the garbage collector away from a
 * blob between its commit and the row that references it.
 *
 * Threads: everything here is called from whatever thread called the public store_* function.
 * A connection (store_conn_t) is used by one thread at a time: the pool hands it out and takes it
 * back; it is never shared while acquired. */
#ifndef PERSONA_STORE_INTERNAL_H
#define PERSONA_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "core/core.h"
#include "store/store.h"

/* At most this many SQLite connections are open at once; more concurrent callers wait. */
#define STORE__MAX_CONNS 16
/* Distinct SQL texts one connection may cache; every SQL text is a static string, so this is a
 * property of the code, not of the input (exceeding it aborts). */
#define STORE__MAX_STMTS 96
/* A running job's lease: informational only in the single-process design (running jobs are
 * requeued by store_open, not by lease expiry). */
#define STORE__LEASE_MS (15 * 60 * 1000)
/* A blob pin older than this no longer protects its blob (its upload is long abandoned). */
#define STORE__PIN_TTL_MS (60 * 60 * 1000)

typedef struct store_conn {
    sqlite3 *db;
    struct store_conn *next; /* free-list link while in the pool */
    int nstmts;
    struct {
        const char *sql; /* key: the address of a static SQL string */
        sqlite3_stmt *stmt;
    } stmts[STORE__MAX_STMTS];
} store_conn_t;

typedef struct store__pin {
    char sha256[65];
    int count;
    int64_t since_ms;
} store__pin_t;

struct store {
    char *data_dir;
    char *db_path;   /* <data_dir>/persona.db */
    char *blob_dir;  /* <data_dir>/blobs */
    char *tmp_dir;   /* <data_dir>/tmp */
    int lock_fd;     /* flock'd <data_dir>/persona.lock: one process per data dir */

    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    store_conn_t *free_conns; /* stack of idle connections */
    int nconns;               /* open connections, idle or acquired */

    /* Blob pins: protects blob commits and garbage collection from each other. */
    pthread_mutex_t blob_mu;
    store__pin_t *pins;
    size_t npins, cap_pins;

    atomic_uint_fast64_t temp_counter;
};

/* ---- connections (store.c) ---- */
/* Takes an idle connection or opens one (waiting while STORE__MAX_CONNS are in use).
 * Returns 0 or CORE_ESQL (logged). */
int store__acquire(store_t *st, store_conn_t **out);
/* Resets every cached statement (so none keeps a read transaction open) and returns c to the
 * pool; NULL-safe. */
void store__release(store_t *st, store_conn_t *c);

/* ---- SQL helpers (store.c): each logs a SQLite failure once as event=store.sql ---- */
/* The cached prepared statement for sql (a static string), reset and with bindings cleared.
 * Returns 0 or CORE_ESQL. */
int store__prepare(store_conn_t *c, const char *sql, sqlite3_stmt **out);
/* Steps s: 1 for a row, 0 when done, -EEXIST for a unique/primary-key violation, -ENOENT for a
 * foreign-key violation (a referenced row does not exist), CORE_ESQL (logged) otherwise. */
int store__step(store_conn_t *c, sqlite3_stmt *s, const char *op);
/* Runs SQL text without results (may be several statements). Returns 0 or CORE_ESQL. */
int store__exec(store_conn_t *c, const char *sql, const char *op);
/* BEGIN IMMEDIATE (takes the write lock up front, so a transaction never fails half way for
 * lack of it), COMMIT, ROLLBACK (best effort, safe when no transaction is open). */
int store__begin(store_conn_t *c);
int store__commit(store_conn_t *c);
void store__rollback(store_conn_t *c);
/* Logs the connection's last error for op and returns CORE_ESQL. */
int store__sql_error(store_conn_t *c, int rc, const char *op);

/* Column helpers: NULL stays NULL; fixed arrays are truncated to fit, always NUL-terminated. */
char *store__col_strdup(sqlite3_stmt *s, int i);
void store__col_copy(sqlite3_stmt *s, int i, char *out, size_t cap);
void store__bind_text(sqlite3_stmt *s, int i, const char *v); /* NULL binds NULL */

/* ---- schema (schema.c) ---- */
/* Brings the database of c to the newest schema, one transaction per migration.
 * Returns 0 or CORE_ESQL (also for a database newer than this program). */
int store__migrate(store_conn_t *c);

/* ---- jobs (jobs.c) ---- */
/* Puts running jobs back in the queue (and their items back to QUEUED). Called by store_open. */
int store__jobs_requeue(store_conn_t *c);

/* ---- corpus passages and search (search.c) ---- */
/* A text item's passages are at most this many bytes (paragraphs longer than that are cut at
 * sentence ends). */
#define STORE__PASSAGE_MAX 600
/* A question becomes at most this many distinct words, each at most this many bytes. */
#define STORE__QUERY_MAX_WORDS 32
#define STORE__QUERY_WORD_MAX 64
/* Search ranks at most this many matches (see search.c)... */
#define STORE__SEARCH_RANK_BUDGET 10000
/* ...and, when even the rarest word matches more, the account's newest this many. */
#define STORE__SEARCH_CAPPED 2000

/* Walks the passages of a text: paragraphs (separated by blank lines) and, within paragraphs
 * longer than STORE__PASSAGE_MAX, pieces ending at sentence ends (never inside a UTF-8
 * sequence), trimmed, whitespace-only ones skipped. Start with {.text, .len} and the rest 0. */
typedef struct store__passage_iter {
    const char *text;
    size_t len;
    size_t pos, para_end;
} store__passage_iter_t;
/* The next passage as [*start, *start + *len) of the text; false after the last. */
bool store__next_passage(store__passage_iter_t *it, size_t *start, size_t *len);
/* The FTS5 query for a question: its words quoted and OR-ed (see search.c), malloc'd; NULL
 * when the question has no words. */
char *store__fts_query(const char *question);

/* ---- events (events.c) ---- */
/* -EINVAL unless type is 1..31 characters of [a-z.] and body_json (NULL: none) is an object text
 * (starts with '{' and ends with '}', JSON whitespace around allowed). */
int store__event_check(const char *type, const char *body_json);
/* Appends an event inside the caller's write transaction on c (see store_event_append); fills
 * *out when out is not NULL (the caller clears it). -ENOENT for no such account. */
int store__event_append(store_conn_t *c, int64_t account_id, const char *type,
                        const char *body_json, int64_t now, store_event_t *out);
/* s as a JSON string literal, quotes included (malloc'd); NULL gives "". */
char *store__json_string(const char *s);

/* ---- questions (questions.c) ---- */
/* The body of an answer.failed event: {"question_id":N,"error":"..."} (malloc'd). */
char *store__answer_failed_body(int64_t question_id, const char *error);

/* ---- blobs (blob.c) ---- */
/* True for 64 lowercase hex digits. */
bool store__sha256_valid(const char *sha256);
/* Removes every regular file in <data_dir>/tmp. Returns 0 or -errno. */
int store__tmp_sweep(store_t *st);
/* Releases one pin of sha256 (after the row referencing it was committed, or was not). */
void store__blob_unpin(store_t *st, const char *sha256);
/* Unlinks the blob files of the given hashes that no item or artifact references and no pin
 * protects. Uses c. Failures are logged, not returned: an unreferenced blob left on disk wastes
 * space but breaks nothing. */
void store__blob_gc(store_t *st, store_conn_t *c, char (*sha256s)[65], size_t n);

#endif
