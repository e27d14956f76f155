/* test_store: unit tests of the store module (SQLite backend and blob files).
 *
 * Every test works in a fresh folder under $PERSONA_TEST_TMP, so tests never see each other's
 * data. Some checks open the database directly with sqlite3 to look at what the store cannot
 * show through its interface (user_version, journal mode, the FTS5 tokenizer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"
#include "test_store.h"

/* ==================================================================================== */
/* helpers                                                                               */
/* ==================================================================================== */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* A fresh, empty folder for one test (malloc'd). */
char *fresh_dir(const char *name)
{
    static int counter;
    const char *base = getenv("PERSONA_TEST_TMP");
    if (!base || !*base)
        base = "/tmp/persona-test-store";
    assert_int_equal(core_mkdirs(base), 0);
    char *dir = xasprintf("%s/%s-%d", base, name, counter++);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return dir;
}

store_t *open_store(const char *dir)
{
    store_t *st = NULL;
    assert_int_equal(store_open(dir, &st), 0);
    assert_non_null(st);
    return st;
}

int64_t new_account(store_t *st, const char *name)
{
    int64_t id = 0;
    assert_int_equal(store_account_create(st, name, "$argon2id$fake", false, &id), 0);
    assert_true(id > 0);
    return id;
}

/* Writes data as a blob and commits it; returns its hash in sha. */
static void put_blob(store_t *st, const void *data, size_t n, char sha[65])
{
    store_blob_writer_t *w = NULL;
    int64_t size = -1;
    assert_int_equal(store_blob_begin(st, &w), 0);
    assert_int_equal(store_blob_write(w, data, n), 0);
    assert_int_equal(store_blob_finish(w, sha, &size), 0);
    assert_int_equal(size, (int64_t)n);
    assert_int_equal(store_blob_commit(&w), 0);
    assert_null(w);
}

static int64_t new_media(store_t *st, int64_t account, const char *sha, const char *title)
{
    store_media_t m = {0};
    m.account_id = account;
    snprintf(m.kind, sizeof m.kind, "video");
    snprintf(m.sha256, sizeof m.sha256, "%s", sha);
    m.size = 3;
    m.title = (char *)title;
    m.content_type = (char *)"video/mp4";
    m.probe_json = (char *)"{\"streams\":1}";
    assert_int_equal(store_media_create(st, &m), 0);
    assert_true(m.id > 0);
    assert_int_equal(m.status, STORE_MEDIA_QUEUED);
    assert_true(m.created_at > 0);
    return m.id;
}

const char SHA_A[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const char SHA_B[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

int64_t sql_int(const char *dir, const char *sql)
{
    char *path = xasprintf("%s/persona.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(path);
    return v;
}

void sql_exec(const char *dir, const char *sql)
{
    char *path = xasprintf("%s/persona.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    free(path);
}

static void sql_text(const char *dir, const char *sql, char *out, size_t cap)
{
    char *path = xasprintf("%s/persona.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    snprintf(out, cap, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(path);
}

/* ==================================================================================== */
/* open, migrations, recovery of the data directory                                       */
/* ==================================================================================== */

static void test_open_migrate_reopen(void **state)
{
    (void)state;
    char *dir = fresh_dir("open");
    store_t *st = open_store(dir);
    assert_string_equal(store_data_dir(st), dir);
    new_account(st, "alice");

    /* One data directory, one store. */
    store_t *second = NULL;
    assert_int_equal(store_open(dir, &second), -EBUSY);
    assert_null(second);
    store_free(&st);
    assert_null(st);
    store_free(&st); /* NULL-safe */

    int64_t version = sql_int(dir, "PRAGMA user_version");
    assert_true(version >= 1);
    char mode[16];
    sql_text(dir, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");

    st = open_store(dir);
    int64_t n = 0;
    assert_int_equal(store_account_count(st, &n), 0);
    assert_int_equal(n, 1);
    store_free(&st);
    assert_int_equal(sql_int(dir, "PRAGMA user_version"), version);

    char *blobs = xasprintf("%s/blobs", dir), *tmp = xasprintf("%s/tmp", dir);
    char *db = xasprintf("%s/persona.db", dir);
    struct stat sb;
    assert_int_equal(stat(db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600); /* password hashes inside */
    free(db);
    assert_int_equal(stat(blobs, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(stat(tmp, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    free(blobs);
    free(tmp);
    free(dir);
}

static void test_open_sweeps_tmp(void **state)
{
    (void)state;
    char *dir = fresh_dir("sweep");
    store_t *st = open_store(dir);
    char *stale = store_temp_path(st, ".part");
    store_free(&st);
    int fd = open(stale, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "half", 4), 4);
    close(fd);

    st = open_store(dir);
    assert_int_equal(access(stale, F_OK), -1);
    char *tmp = xasprintf("%s/tmp", dir);
    assert_int_equal(count_files(tmp), 0);
    store_free(&st);
    free(tmp);
    free(stale);
    free(dir);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    char *dir = fresh_dir("newer");
    store_t *st = open_store(dir);
    store_free(&st);
    sql_exec(dir, "PRAGMA user_version = 999");
    assert_int_equal(store_open(dir, &st), CORE_ESQL);
    assert_null(st);
    free(dir);
}

static void test_bad_data_dir(void **state)
{
    (void)state;
    char *dir = fresh_dir("baddir");
    assert_int_equal(core_mkdirs(dir), 0);
    char *file = xasprintf("%s/file", dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);

    store_t *st = (store_t *)1;
    assert_true(store_open(file, &st) < 0);
    assert_null(st);
    char *below = xasprintf("%s/sub", file);
    assert_true(store_open(below, &st) < 0);
    assert_null(st);
    assert_int_equal(store_open("", &st), -EINVAL);
    free(below);
    free(file);
    free(dir);
}

static void test_corrupt_database(void **state)
{
    (void)state;
    char *dir = fresh_dir("corrupt");
    assert_int_equal(core_mkdirs(dir), 0);
    char *db = xasprintf("%s/persona.db", dir);
    uint8_t junk[65536];
    srand(42);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)rand();
    int fd = open(db, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);

    store_t *st = NULL;
    assert_int_equal(store_open(dir, &st), CORE_ESQL);
    assert_null(st);
    /* The lock was released with the failed store: a retry fails the same way, not -EBUSY. */
    assert_int_equal(store_open(dir, &st), CORE_ESQL);
    free(db);
    free(dir);
}

/* ==================================================================================== */
/* accounts and devices                                                                  */
/* ==================================================================================== */

static void test_accounts(void **state)
{
    (void)state;
    char *dir = fresh_dir("accounts");
    store_t *st = open_store(dir);
    int64_t n = -1, id = 0, found = 0;
    assert_int_equal(store_account_count(st, &n), 0);
    assert_int_equal(n, 0);

    assert_int_equal(store_account_create(st, "Alice", "hash-a", true, &id), 0);
    assert_true(id > 0);
    assert_int_equal(store_account_create(st, "bob", "hash-b", true, NULL), -EPERM);
    assert_int_equal(store_account_create(st, "alice", "x", false, NULL), -EEXIST);
    assert_int_equal(store_account_create(st, "ALICE", "x", false, NULL), -EEXIST);
    assert_int_equal(store_account_create(st, "bob", "hash-b", false, NULL), 0);
    assert_int_equal(store_account_create(st, "", "x", false, NULL), -EINVAL);

    char *hash = NULL;
    assert_int_equal(store_account_find(st, "aLiCe", &found, &hash), 0);
    assert_int_equal(found, id);
    assert_string_equal(hash, "hash-a");
    free(hash);
    hash = NULL;
    assert_int_equal(store_account_find(st, "carol", &found, &hash), -ENOENT);
    assert_null(hash);
    assert_int_equal(store_account_count(st, &n), 0);
    assert_int_equal(n, 2);
    store_free(&st);
    free(dir);
}

static void test_devices(void **state)
{
    (void)state;
    char *dir = fresh_dir("devices");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    uint8_t h1[32], h2[32], h3[32];
    memset(h1, 1, 32);
    memset(h2, 2, 32);
    memset(h3, 3, 32);
    int64_t d1 = 0, d2 = 0, d3 = 0;
    assert_int_equal(store_device_create(st, a, "phone", "mobile", h1, &d1), 0);
    assert_int_equal(store_device_create(st, a, "desk", "desktop", h2, &d2), 0);
    assert_int_equal(store_device_create(st, b, "other", "mobile", h3, &d3), 0);
    assert_int_equal(store_device_create(st, a, "dup", "mobile", h1, NULL), -EEXIST);
    uint8_t h4[32];
    memset(h4, 4, 32);
    assert_int_equal(store_device_create(st, a, "odd", "toaster", h4, NULL), -EINVAL);
    assert_int_equal(store_device_create(st, 9999, "ghost", "mobile", h4, NULL), -ENOENT);

    store_device_t d;
    assert_int_equal(store_device_by_token(st, h2, &d), 0);
    assert_int_equal(d.id, d2);
    assert_int_equal(d.account_id, a);
    assert_string_equal(d.name, "desk");
    assert_string_equal(d.kind, "desktop");
    assert_false(d.revoked);
    assert_int_equal(d.last_seen_at, 0);
    assert_true(d.created_at > 0);
    assert_int_equal(store_device_by_token(st, h4, &d), -ENOENT);

    /* Touch writes once, then not again within the minute. */
    assert_int_equal(store_device_touch(st, d1), 0);
    assert_int_equal(store_device_by_token(st, h1, &d), 0);
    int64_t seen = d.last_seen_at;
    assert_true(seen > 0);
    usleep(5000);
    assert_int_equal(store_device_touch(st, d1), 0);
    assert_int_equal(store_device_by_token(st, h1, &d), 0);
    assert_int_equal(d.last_seen_at, seen);

    /* Another account cannot revoke, nor tell the device exists. */
    assert_int_equal(store_device_revoke(st, b, d1), -ENOENT);
    assert_int_equal(store_device_revoke(st, a, 12345), -ENOENT);
    assert_int_equal(store_device_by_token(st, h1, &d), 0);
    assert_int_equal(store_device_revoke(st, a, d1), 0);
    assert_int_equal(store_device_revoke(st, a, d1), 0); /* idempotent */
    assert_int_equal(store_device_by_token(st, h1, &d), -ENOENT);

    store_device_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_device_list(st, a, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, d2); /* newest first */
    assert_false(list[0].revoked);
    assert_int_equal(list[1].id, d1);
    assert_true(list[1].revoked);
    store_device_list_free(&list);
    assert_null(list);
    store_device_list_free(&list);

    assert_int_equal(store_device_list(st, 777, &list, &n), 0);
    assert_int_equal(n, 0);
    store_device_list_free(&list);
    store_free(&st);
    free(dir);
}

/* ==================================================================================== */
/* media, text, corpus, artifacts                                                        */
/* ==================================================================================== */

static void test_media(void **state)
{
    (void)state;
    char *dir = fresh_dir("media");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    int64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = new_media(st, a, SHA_A, i == 0 ? NULL : "walk");
    int64_t other = new_media(st, b, SHA_B, "bob's");

    store_media_t m;
    assert_int_equal(store_media_get(st, a, ids[1], &m), 0);
    assert_int_equal(m.id, ids[1]);
    assert_int_equal(m.account_id, a);
    assert_string_equal(m.kind, "video");
    assert_string_equal(m.sha256, SHA_A);
    assert_int_equal(m.size, 3);
    assert_string_equal(m.title, "walk");
    assert_string_equal(m.content_type, "video/mp4");
    assert_string_equal(m.probe_json, "{\"streams\":1}");
    assert_int_equal(m.status, STORE_MEDIA_QUEUED);
    assert_null(m.error);
    store_media_clear(&m);
    assert_int_equal(store_media_get(st, a, ids[0], &m), 0);
    assert_null(m.title);
    store_media_clear(&m);

    /* Another account's item is indistinguishable from a missing one. */
    assert_int_equal(store_media_get(st, a, other, &m), -ENOENT);
    assert_int_equal(store_media_get(st, b, ids[0], &m), -ENOENT);
    assert_int_equal(store_media_get(st, a, 99999, &m), -ENOENT);
    assert_int_equal(store_media_delete(st, b, ids[0]), -ENOENT);

    /* Pagination, newest first. */
    store_media_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_media_list(st, a, 0, 2, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, ids[4]);
    assert_int_equal(list[1].id, ids[3]);
    int64_t before = list[1].id;
    store_media_list_free(&list, n);
    assert_int_equal(store_media_list(st, a, before, 2, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, ids[2]);
    assert_int_equal(list[1].id, ids[1]);
    before = list[1].id;
    store_media_list_free(&list, n);
    assert_int_equal(store_media_list(st, a, before, 2, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, ids[0]);
    store_media_list_free(&list, n);
    assert_int_equal(store_media_list(st, a, ids[0], 2, &list, &n), 0);
    assert_int_equal(n, 0);
    store_media_list_free(&list, n);
    assert_int_equal(store_media_list(st, b, 0, 50, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, other);
    store_media_list_free(&list, n);
    assert_int_equal(store_media_list(st, a, 0, 0, &list, &n), -EINVAL);

    /* Status. */
    assert_int_equal(store_media_set_status(st, ids[2], STORE_MEDIA_FAILED, "broken audio"), 0);
    assert_int_equal(store_media_get(st, a, ids[2], &m), 0);
    assert_int_equal(m.status, STORE_MEDIA_FAILED);
    assert_string_equal(m.error, "broken audio");
    store_media_clear(&m);
    assert_int_equal(store_media_set_status(st, ids[2], STORE_MEDIA_READY, "ignored"), 0);
    assert_int_equal(store_media_get(st, a, ids[2], &m), 0);
    assert_int_equal(m.status, STORE_MEDIA_READY);
    assert_null(m.error);
    store_media_clear(&m);
    assert_int_equal(store_media_set_status(st, 424242, STORE_MEDIA_READY, NULL), -ENOENT);
    assert_string_equal(store_media_status_name(STORE_MEDIA_PROCESSING), "processing");

    /* Bad input changes nothing. */
    store_media_t bad = {.account_id = a, .kind = "video", .sha256 = "XYZ", .size = 1};
    assert_int_equal(store_media_create(st, &bad), -EINVAL);
    store_media_t odd = {.account_id = a, .kind = "smell", .size = 1};
    memcpy(odd.sha256, SHA_A, sizeof odd.sha256);
    assert_int_equal(store_media_create(st, &odd), -EINVAL);
    store_media_t ghost = {.account_id = 31337, .kind = "video", .size = 1};
    memcpy(ghost.sha256, SHA_A, sizeof ghost.sha256);
    assert_int_equal(store_media_create(st, &ghost), -ENOENT);

    int64_t counts[STORE_JOB_NSTATES];
    assert_int_equal(store_job_counts(st, counts), 0);
    assert_int_equal(counts[STORE_JOB_QUEUED], 6);
    assert_int_equal(counts[STORE_JOB_RUNNING], 0);
    store_free(&st);
    free(dir);
}

static void test_text_and_corpus(void **state)
{
    (void)state;
    char *dir = fresh_dir("text");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    const char *text = "I walked to the harbour every morning.";
    store_media_t m = {.account_id = a, .kind = "text", .size = (int64_t)strlen(text)};
    memcpy(m.sha256, SHA_A, sizeof m.sha256);
    m.content_type = (char *)"text/plain";
    assert_int_equal(store_media_create_text(st, &m, text, strlen(text)), 0);
    assert_true(m.id > 0);
    assert_int_equal(m.status, STORE_MEDIA_READY);

    store_media_t got;
    assert_int_equal(store_media_get(st, a, m.id, &got), 0);
    assert_int_equal(got.status, STORE_MEDIA_READY);
    assert_null(got.probe_json);
    store_media_clear(&got);

    int64_t n = -1;
    assert_int_equal(store_corpus_count(st, a, 0, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_corpus_count(st, a, m.id, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_corpus_add(st, a, m.id, 1.5, 3.25, "The sea was calm."), 0);
    assert_int_equal(store_corpus_count(st, a, m.id, &n), 0);
    assert_int_equal(n, 2);
    /* Not into another account's item. */
    assert_int_equal(store_corpus_add(st, b, m.id, 0, 0, "intruder"), -ENOENT);
    assert_int_equal(store_corpus_count(st, b, 0, &n), 0);
    assert_int_equal(n, 0);

    /* No text item's job: nothing queued. */
    int64_t counts[STORE_JOB_NSTATES];
    assert_int_equal(store_job_counts(st, counts), 0);
    assert_int_equal(counts[STORE_JOB_QUEUED], 0);
    store_free(&st);

    /* porter + unicode61: "walk" finds "walked", "HARBOUR" finds "harbour". */
    assert_int_equal(sql_int(dir, "SELECT count(*) FROM corpus WHERE corpus MATCH 'walk'"), 1);
    assert_int_equal(sql_int(dir, "SELECT count(*) FROM corpus WHERE corpus MATCH 'HARBOUR'"), 1);
    assert_int_equal(sql_int(dir, "SELECT count(*) FROM corpus WHERE corpus MATCH 'sea'"
                                  " AND t_start = 1.5"), 1);
    free(dir);
}

static void test_artifacts(void **state)
{
    (void)state;
    char *dir = fresh_dir("artifacts");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    int64_t id = new_media(st, a, SHA_A, "walk");

    store_artifact_t art = {.media_id = id, .name = "audio", .size = 100, .mime = "audio/mp4",
                            .ext = "m4a"};
    memcpy(art.sha256, SHA_B, sizeof art.sha256);
    art.info_json = (char *)"{\"codec\":\"aac\"}";
    assert_int_equal(store_artifact_put(st, &art), 0);
    art.size = 200; /* the job ran again */
    assert_int_equal(store_artifact_put(st, &art), 0);
    store_artifact_t pcm = {.media_id = id, .name = "pcm", .size = 32000, .mime = "audio/wav",
                            .ext = "wav"};
    memcpy(pcm.sha256, SHA_A, sizeof pcm.sha256);
    assert_int_equal(store_artifact_put(st, &pcm), 0);

    store_artifact_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_artifact_list(st, id, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "audio");
    assert_int_equal(list[0].size, 200);
    assert_string_equal(list[0].info_json, "{\"codec\":\"aac\"}");
    assert_string_equal(list[1].name, "pcm");
    assert_null(list[1].info_json);
    store_artifact_list_free(&list, n);
    assert_null(list);

    store_artifact_t got;
    assert_int_equal(store_artifact_get(st, id, "audio", &got), 0);
    assert_string_equal(got.sha256, SHA_B);
    assert_string_equal(got.mime, "audio/mp4");
    assert_string_equal(got.ext, "m4a");
    store_artifact_clear(&got);
    assert_int_equal(store_artifact_get(st, id, "video", &got), -ENOENT);

    store_artifact_t orphan = art;
    orphan.media_id = 5555;
    assert_int_equal(store_artifact_put(st, &orphan), -ENOENT);
    store_free(&st);
    free(dir);
}

/* ==================================================================================== */
/* jobs                                                                                  */
/* ==================================================================================== */

static void test_jobs(void **state)
{
    (void)state;
    char *dir = fresh_dir("jobs");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    int64_t m1 = new_media(st, a, SHA_A, "one"), m2 = new_media(st, a, SHA_B, "two");

    store_job_t job;
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(job.media_id, m1);
    assert_int_equal(job.account_id, a);
    assert_string_equal(job.kind, "media.process");
    assert_int_equal(job.attempts, 1);
    store_media_t m;
    assert_int_equal(store_media_get(st, a, m1, &m), 0);
    assert_int_equal(m.status, STORE_MEDIA_PROCESSING);
    store_media_clear(&m);
    assert_int_equal(store_job_finish(st, &job, NULL), 0);
    assert_int_equal(store_job_finish(st, &job, NULL), -EINVAL); /* not running any more */
    assert_int_equal(store_media_get(st, a, m1, &m), 0);
    assert_int_equal(m.status, STORE_MEDIA_READY);
    assert_null(m.error);
    store_media_clear(&m);

    store_job_t job2;
    assert_int_equal(store_job_claim(st, 3, &job2), 0);
    assert_int_equal(job2.media_id, m2);
    assert_int_equal(store_job_finish(st, &job2, "no audio stream"), 0);
    assert_int_equal(store_media_get(st, a, m2, &m), 0);
    assert_int_equal(m.status, STORE_MEDIA_FAILED);
    assert_string_equal(m.error, "no audio stream");
    store_media_clear(&m);

    assert_int_equal(store_job_claim(st, 3, &job), -ENOENT);
    assert_int_equal(store_job_claim(st, 0, &job), -EINVAL);
    int64_t counts[STORE_JOB_NSTATES];
    assert_int_equal(store_job_counts(st, counts), 0);
    assert_int_equal(counts[STORE_JOB_QUEUED], 0);
    assert_int_equal(counts[STORE_JOB_RUNNING], 0);
    assert_int_equal(counts[STORE_JOB_DONE], 1);
    assert_int_equal(counts[STORE_JOB_FAILED], 1);
    assert_string_equal(store_job_state_name(STORE_JOB_RUNNING), "running");

    /* A job whose item was deleted while it ran. */
    int64_t m3 = new_media(st, a, SHA_A, "three");
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(job.media_id, m3);
    assert_int_equal(store_media_delete(st, a, m3), 0);
    assert_int_equal(store_job_finish(st, &job, NULL), -ENOENT);
    store_free(&st);
    free(dir);
}

static void test_jobs_after_crash(void **state)
{
    (void)state;
    char *dir = fresh_dir("crash");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    int64_t m1 = new_media(st, a, SHA_A, "crashy");
    store_job_t job;
    int64_t counts[STORE_JOB_NSTATES];
    store_media_t m;

    /* Three times: claimed, then the process "dies" (the store closes with the job running). */
    for (int attempt = 1; attempt <= 3; attempt++) {
        assert_int_equal(store_job_claim(st, 3, &job), 0);
        assert_int_equal(job.media_id, m1);
        assert_int_equal(job.attempts, attempt);
        store_free(&st);
        st = open_store(dir);
        assert_int_equal(store_job_counts(st, counts), 0);
        assert_int_equal(counts[STORE_JOB_QUEUED], 1);
        assert_int_equal(counts[STORE_JOB_RUNNING], 0);
        assert_int_equal(store_media_get(st, a, m1, &m), 0);
        assert_int_equal(m.status, STORE_MEDIA_QUEUED);
        store_media_clear(&m);
    }
    /* A fresh job behind it still runs. */
    int64_t m2 = new_media(st, a, SHA_B, "fine");
    assert_int_equal(store_job_claim(st, 3, &job), 0);
    assert_int_equal(job.media_id, m2);
    assert_int_equal(job.attempts, 1);

    assert_int_equal(store_job_counts(st, counts), 0);
    assert_int_equal(counts[STORE_JOB_FAILED], 1);
    assert_int_equal(counts[STORE_JOB_RUNNING], 1);
    assert_int_equal(store_media_get(st, a, m1, &m), 0);
    assert_int_equal(m.status, STORE_MEDIA_FAILED);
    assert_string_equal(m.error, "gave up after 3 attempts: the process stopped during each");
    store_media_clear(&m);
    assert_int_equal(store_job_claim(st, 3, &job), -ENOENT);
    store_free(&st);
    free(dir);
}

/* ==================================================================================== */
/* blobs                                                                                 */
/* ==================================================================================== */

static void sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t d[32];
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(p, n, d, &len, EVP_sha256(), NULL), 1);
    core_hex(d, 32, out);
}

static void test_blob_writer(void **state)
{
    (void)state;
    char *dir = fresh_dir("blobs");
    store_t *st = open_store(dir);
    char *tmp = xasprintf("%s/tmp", dir);
    char sha[65], path[4096];

    /* Not visible before commit. */
    store_blob_writer_t *w = NULL;
    assert_int_equal(store_blob_begin(st, &w), 0);
    assert_int_equal(store_blob_write(w, "ab", 2), 0);
    assert_int_equal(store_blob_write(w, "c", 1), 0);
    assert_int_equal(store_blob_write(w, "", 0), 0);
    int64_t size = 0;
    assert_int_equal(store_blob_finish(w, sha, &size), 0);
    assert_string_equal(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(size, 3);
    assert_int_equal(store_blob_write(w, "x", 1), -EINVAL);
    assert_int_equal(access(store_blob_temp_path(w), F_OK), 0);
    assert_int_equal(store_blob_path(st, sha, path, sizeof path), -ENOENT);
    assert_int_equal(store_blob_commit(&w), 0);
    assert_null(w);
    assert_int_equal(store_blob_path(st, sha, path, sizeof path), 0);
    char *expect = xasprintf("%s/blobs/ba/%s", dir, sha);
    assert_string_equal(path, expect);
    free(expect);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(core_read_file(path, 100, &data, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "abc", 3);
    free(data);
    assert_int_equal(count_files(tmp), 0);

    /* Empty blob. */
    assert_int_equal(store_blob_begin(st, &w), 0);
    assert_int_equal(store_blob_finish(w, sha, &size), 0);
    assert_string_equal(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(size, 0);
    assert_int_equal(store_blob_commit(&w), 0);
    assert_int_equal(store_blob_path(st, sha, path, sizeof path), 0);

    /* 10 MiB of random bytes in uneven pieces; commit without an explicit finish. */
    size_t big = 10u << 20;
    uint8_t *buf = malloc(big);
    assert_non_null(buf);
    srand(7);
    for (size_t i = 0; i < big; i++)
        buf[i] = (uint8_t)(rand() >> 7);
    char want[65];
    sha256_hex(buf, big, want);
    assert_int_equal(store_blob_begin(st, &w), 0);
    for (size_t off = 0, step = 1; off < big; off += step, step = step * 3 + 7) {
        if (step > big - off)
            step = big - off;
        assert_int_equal(store_blob_write(w, buf + off, step), 0);
    }
    assert_int_equal(store_blob_finish(w, sha, &size), 0);
    assert_string_equal(sha, want);
    assert_int_equal(size, (int64_t)big);
    assert_int_equal(store_blob_commit(&w), 0);
    struct stat sb;
    assert_int_equal(store_blob_path(st, want, path, sizeof path), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, (off_t)big);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* The same content again: one file, no temp left. */
    put_blob(st, buf, big, sha);
    assert_string_equal(sha, want);
    assert_int_equal(count_files(tmp), 0);
    free(buf);

    /* Abort leaves nothing. */
    assert_int_equal(store_blob_begin(st, &w), 0);
    assert_int_equal(store_blob_write(w, "partial", 7), 0);
    char *tp = xstrdup(store_blob_temp_path(w));
    store_blob_abort(&w);
    assert_null(w);
    store_blob_abort(&w);
    assert_int_equal(access(tp, F_OK), -1);
    assert_int_equal(count_files(tmp), 0);
    free(tp);

    assert_int_equal(store_blob_path(st, "nothex", path, sizeof path), -EINVAL);
    assert_int_equal(store_blob_path(st, want, path, 8), -ENAMETOOLONG);
    store_free(&st);
    free(tmp);
    free(dir);
}

static void test_blob_put_file(void **state)
{
    (void)state;
    char *dir = fresh_dir("putfile");
    store_t *st = open_store(dir);
    char *p = store_temp_path(st, ".m4a");
    assert_non_null(strstr(p, "/tmp/"));
    size_t n = 3u << 20; /* several read chunks */
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 31 + (i >> 12));
    int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    close(fd);

    char want[65], sha[65], path[4096];
    int64_t size = 0;
    sha256_hex(buf, n, want);
    assert_int_equal(store_blob_put_file(st, p, sha, &size), 0);
    assert_string_equal(sha, want);
    assert_int_equal(size, (int64_t)n);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(store_blob_path(st, sha, path, sizeof path), 0);

    /* Only files in our tmp/. */
    char *outside = xasprintf("%s/persona.db", dir);
    assert_int_equal(store_blob_put_file(st, outside, sha, &size), -EINVAL);
    char *sneaky = xasprintf("%s/tmp/../persona.db", dir);
    assert_int_equal(store_blob_put_file(st, sneaky, sha, &size), -EINVAL);
    char *missing = store_temp_path(st, ".x");
    assert_int_equal(store_blob_put_file(st, missing, sha, &size), -ENOENT);
    free(missing);
    free(sneaky);
    free(outside);
    free(buf);
    free(p);
    store_free(&st);
    free(dir);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_temp_path_unique(void **state)
{
    (void)state;
    char *dir = fresh_dir("temppath");
    store_t *st = open_store(dir);
    enum { N = 2000 };
    char **paths = calloc(N, sizeof *paths);
    assert_non_null(paths);
    char *prefix = xasprintf("%s/tmp/", dir);
    for (int i = 0; i < N; i++) {
        paths[i] = store_temp_path(st, i % 2 ? ".wav" : NULL);
        assert_int_equal(strncmp(paths[i], prefix, strlen(prefix)), 0);
        assert_null(strchr(paths[i] + strlen(prefix), '/'));
        if (i % 2)
            assert_string_equal(paths[i] + strlen(paths[i]) - 4, ".wav");
    }
    qsort(paths, N, sizeof *paths, cmp_str);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(paths[i - 1], paths[i]);
    for (int i = 0; i < N; i++)
        free(paths[i]);
    free(paths);
    free(prefix);
    store_free(&st);
    free(dir);
}

static void test_delete_collects_blobs(void **state)
{
    (void)state;
    char *dir = fresh_dir("delete");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    char shared[65], only1[65], text_sha[65], path[4096];
    put_blob(st, "shared original", 15, shared);
    put_blob(st, "audio of item 1", 15, only1);
    int64_t i1 = new_media(st, a, shared, "first");
    int64_t i2 = new_media(st, a, shared, "second");
    store_artifact_t art = {.media_id = i1, .name = "audio", .size = 15, .mime = "audio/mp4",
                            .ext = "m4a"};
    memcpy(art.sha256, only1, 65);
    assert_int_equal(store_artifact_put(st, &art), 0);
    /* The second item's artifact is the shared blob itself (an artifact may equal an original). */
    art.media_id = i2;
    memcpy(art.sha256, shared, 65);
    assert_int_equal(store_artifact_put(st, &art), 0);
    assert_int_equal(store_corpus_add(st, a, i1, 0, 1, "hello from the first"), 0);

    const char *text = "just words";
    put_blob(st, text, strlen(text), text_sha);
    store_media_t t = {.account_id = a, .kind = "text", .size = (int64_t)strlen(text)};
    memcpy(t.sha256, text_sha, 65);
    assert_int_equal(store_media_create_text(st, &t, text, strlen(text)), 0);

    assert_int_equal(store_media_delete(st, a, i1), 0);
    assert_int_equal(store_blob_path(st, shared, path, sizeof path), 0);
    assert_int_equal(store_blob_path(st, only1, path, sizeof path), -ENOENT);
    int64_t n = -1;
    assert_int_equal(store_corpus_count(st, a, i1, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_corpus_count(st, a, 0, &n), 0);
    assert_int_equal(n, 1); /* the text item's */
    store_artifact_t *list = NULL;
    size_t na = 9;
    assert_int_equal(store_artifact_list(st, i1, &list, &na), 0);
    assert_int_equal(na, 0);
    store_artifact_list_free(&list, na);
    store_media_t m;
    assert_int_equal(store_media_get(st, a, i1, &m), -ENOENT);
    assert_int_equal(store_media_delete(st, a, i1), -ENOENT);

    assert_int_equal(store_media_delete(st, a, i2), 0);
    assert_int_equal(store_blob_path(st, shared, path, sizeof path), -ENOENT);
    assert_int_equal(store_media_delete(st, a, t.id), 0);
    assert_int_equal(store_blob_path(st, text_sha, path, sizeof path), -ENOENT);
    assert_int_equal(store_corpus_count(st, a, 0, &n), 0);
    assert_int_equal(n, 0);
    int64_t counts[STORE_JOB_NSTATES];
    assert_int_equal(store_job_counts(st, counts), 0);
    assert_int_equal(counts[STORE_JOB_QUEUED], 0);

    /* A replaced artifact's old blob goes when nothing else holds it. */
    char v1[65], v2[65];
    int64_t i3 = new_media(st, a, SHA_A, "third");
    put_blob(st, "render one", 10, v1);
    put_blob(st, "render two", 10, v2);
    art.media_id = i3;
    memcpy(art.sha256, v1, 65);
    assert_int_equal(store_artifact_put(st, &art), 0);
    memcpy(art.sha256, v2, 65);
    assert_int_equal(store_artifact_put(st, &art), 0);
    assert_int_equal(store_blob_path(st, v1, path, sizeof path), -ENOENT);
    assert_int_equal(store_blob_path(st, v2, path, sizeof path), 0);
    store_free(&st);
    free(dir);
}

/* A blob committed but not yet referenced by a row survives a delete of the last item that
 * referenced the same content (the upload-while-deleting race). */
static void test_pinned_blob_survives_delete(void **state)
{
    (void)state;
    char *dir = fresh_dir("pin");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    char sha[65], again[65], path[4096];
    put_blob(st, "same bytes", 10, sha);
    int64_t i1 = new_media(st, a, sha, "old");
    put_blob(st, "same bytes", 10, again); /* a new upload: committed, row not yet inserted */
    assert_int_equal(store_media_delete(st, a, i1), 0);
    assert_int_equal(store_blob_path(st, sha, path, sizeof path), 0);
    int64_t i2 = new_media(st, a, again, "new"); /* unpins */
    assert_int_equal(store_media_delete(st, a, i2), 0);
    assert_int_equal(store_blob_path(st, sha, path, sizeof path), -ENOENT);

    /* A blob whose row can never exist (no such account, no such item) is removed. */
    put_blob(st, "lost upload", 11, sha);
    store_media_t ghost = {.account_id = 4242, .kind = "audio", .size = 11};
    memcpy(ghost.sha256, sha, 65);
    assert_int_equal(store_media_create(st, &ghost), -ENOENT);
    assert_int_equal(store_blob_path(st, sha, path, sizeof path), -ENOENT);
    put_blob(st, "lost artifact", 13, sha);
    store_artifact_t art = {.media_id = 4242, .name = "pcm", .size = 13, .mime = "audio/wav",
                            .ext = "wav"};
    memcpy(art.sha256, sha, 65);
    assert_int_equal(store_artifact_put(st, &art), -ENOENT);
    assert_int_equal(store_blob_path(st, sha, path, sizeof path), -ENOENT);
    store_free(&st);
    free(dir);
}

/* ==================================================================================== */
/* concurrency                                                                           */
/* ==================================================================================== */

enum { THREADS = 4, PER_THREAD = 200 };

struct worker {
    store_t *st;
    int64_t account;
    int errors;
    int first_error;
};

static void *insert_many(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        store_media_t m = {.account_id = w->account, .kind = "audio", .size = i};
        memcpy(m.sha256, SHA_A, sizeof m.sha256);
        int rc = store_media_create(w->st, &m);
        store_media_t got;
        if (rc == 0)
            rc = store_media_get(w->st, w->account, m.id, &got);
        if (rc == 0)
            store_media_clear(&got);
        if (rc < 0 && w->errors++ == 0)
            w->first_error = rc;
    }
    return NULL;
}

static void test_concurrent_inserts(void **state)
{
    (void)state;
    char *dir = fresh_dir("threads");
    store_t *st = open_store(dir);
    struct worker ws[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", i);
        ws[i] = (struct worker){.st = st, .account = new_account(st, name)};
        assert_int_equal(pthread_create(&th[i], NULL, insert_many, &ws[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (ws[i].errors)
            fprintf(stderr, "thread %d: %d errors, first %s\n", i, ws[i].errors,
                    core_strerror(ws[i].first_error));
        assert_int_equal(ws[i].errors, 0);
    }
    int64_t counts[STORE_JOB_NSTATES];
    assert_int_equal(store_job_counts(st, counts), 0);
    assert_int_equal(counts[STORE_JOB_QUEUED], THREADS * PER_THREAD);
    store_media_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_media_list(st, ws[2].account, 0, 1000, &list, &n), 0);
    assert_int_equal(n, PER_THREAD);
    store_media_list_free(&list, n);
    store_free(&st);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_migrate_reopen),
        cmocka_unit_test(test_open_sweeps_tmp),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_bad_data_dir),
        cmocka_unit_test(test_corrupt_database),
        cmocka_unit_test(test_accounts),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_media),
        cmocka_unit_test(test_text_and_corpus),
        cmocka_unit_test(test_artifacts),
        cmocka_unit_test(test_jobs),
        cmocka_unit_test(test_jobs_after_crash),
        cmocka_unit_test(test_blob_writer),
        cmocka_unit_test(test_blob_put_file),
        cmocka_unit_test(test_temp_path_unique),
        cmocka_unit_test(test_delete_collects_blobs),
        cmocka_unit_test(test_pinned_blob_survives_delete),
        cmocka_unit_test(test_concurrent_inserts),
    };
    int failed = cmocka_run_group_tests_name("store", tests, NULL, NULL);
    failed += run_search_tests();
    failed += run_event_tests();
    failed += run_model_tests();
    return failed;
}
