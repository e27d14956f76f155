/* blob.c: content-addressed blob files, temp files, and the garbage collection of blobs.
 *
 * Layout: <data_dir>/blobs/<aa>/<sha256>, aa being the first two hex digits of the SHA-256 of
 * the content. Temp files live in <data_dir>/tmp (same file system, so rename is atomic);
 * store_open deletes whatever a dead process left there.
 *
 * Writing a blob (store_blob_writer_t): begin (temp file, O_EXCL, 0600) → write* (hash and write)
 * → finish (fsync, final hash) → commit (rename into place, fsync the directory) or abort
 * (unlink). A blob path therefore only ever names complete, fsynced content.
 *
 * Invariant: a blob file exists for every sha256 referenced by a media or artifact row.
 * Two things could break it, and here is what keeps each from happening:
 *   - a crash between unlinking rows and blob files: files are unlinked only after the rows'
 *     transaction has committed (a crash leaves an orphan file, never a dangling row);
 *   - a race between deleting the last row that references content X (then unlinking X) and a
 *     new upload of the same X (whose commit finds X present, discards its own copy, and only
 *     later inserts its row): a commit pins X (in memory, under blob_mu) until the row that
 *     references it is inserted (store_media_create*, store_artifact_put unpin it), and the
 *     collector checks pins and rows and unlinks under the same mutex. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"

#define READ_CHUNK (1u << 20)

struct store_blob_writer {
    store_t *st;
    int fd;             /* -1 once finished */
    char *path;         /* the temp file */
    EVP_MD_CTX *md;
    int64_t size;
    char sha256[65];
    bool finished;
    int err;            /* sticky: once a write failed, the blob can only be aborted */
};

bool store__sha256_valid(const char *sha256)
{
    if (!sha256)
        return false;
    for (int i = 0; i < 64; i++) {
        char ch = sha256[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return false;
    }
    return sha256[64] == '\0';
}

/* ==================================================================================== */
/* temp files                                                                            */
/* ==================================================================================== */

char *store_temp_path(store_t *st, const char *suffix)
{
    uint8_t rnd[6];
    char hex[13];
    randombytes_buf(rnd, sizeof rnd);
    core_hex(rnd, sizeof rnd, hex);
    unsigned long long n = (unsigned long long)atomic_fetch_add(&st->temp_counter, 1);
    return xasprintf("%s/%ld-%llu-%s%s", st->tmp_dir, (long)getpid(), n, hex,
                     suffix ? suffix : "");
}

int store__tmp_sweep(store_t *st)
{
    DIR *d = opendir(st->tmp_dir);
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
        else
            core_log(CORE_LOG_WARN, "store.tmp_sweep", "file=%s err=\"%s\"", e->d_name,
                     core_strerror(-errno));
    }
    closedir(d);
    if (n > 0)
        core_log(CORE_LOG_INFO, "store.tmp_sweep", "removed=%d", n);
    return 0;
}

/* ==================================================================================== */
/* pins and garbage collection                                                           */
/* ==================================================================================== */

/* Callers hold st->blob_mu. */
static store__pin_t *pin_find(store_t *st, const char *sha256)
{
    for (size_t i = 0; i < st->npins; i++)
        if (strcmp(st->pins[i].sha256, sha256) == 0)
            return &st->pins[i];
    return NULL;
}

static void pin_add(store_t *st, const char *sha256)
{
    store__pin_t *p = pin_find(st, sha256);
    if (!p) {
        if (st->npins == st->cap_pins) {
            st->cap_pins = st->cap_pins ? st->cap_pins * 2 : 8;
            st->pins = xrealloc(st->pins, st->cap_pins * sizeof *st->pins);
        }
        p = &st->pins[st->npins++];
        memcpy(p->sha256, sha256, sizeof p->sha256);
        p->count = 0;
    }
    p->count++;
    p->since_ms = core_now_ms();
}

void store__blob_unpin(store_t *st, const char *sha256)
{
    if (!sha256)
        return;
    pthread_mutex_lock(&st->blob_mu);
    store__pin_t *p = pin_find(st, sha256);
    if (p && --p->count <= 0)
        *p = st->pins[--st->npins];
    pthread_mutex_unlock(&st->blob_mu);
}

static void blob_path_of(const store_t *st, const char *sha256, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%.2s/%s", st->blob_dir, sha256, sha256);
}

void store__blob_gc(store_t *st, store_conn_t *c, char (*sha256s)[65], size_t n)
{
    static const char sql[] = "SELECT EXISTS(SELECT 1 FROM media WHERE sha256 = ?1)"
                              " OR EXISTS(SELECT 1 FROM artifacts WHERE sha256 = ?1)";
    int64_t now = core_now_ms();
    for (size_t i = 0; i < n; i++) {
        const char *sha = sha256s[i];
        if (!store__sha256_valid(sha))
            continue;
        pthread_mutex_lock(&st->blob_mu);
        store__pin_t *p = pin_find(st, sha);
        bool pinned = p && now - p->since_ms < STORE__PIN_TTL_MS;
        sqlite3_stmt *s;
        int rc = pinned ? 0 : store__prepare(c, sql, &s);
        if (!pinned && rc == 0) {
            sqlite3_bind_text(s, 1, sha, -1, SQLITE_STATIC);
            rc = store__step(c, s, "blob_gc");
            bool referenced = rc != 1 || sqlite3_column_int(s, 0) != 0; /* keep on error */
            sqlite3_reset(s);
            if (!referenced) {
                char path[4096];
                blob_path_of(st, sha, path, sizeof path);
                if (unlink(path) < 0 && errno != ENOENT)
                    core_log(CORE_LOG_WARN, "store.blob_gc", "sha256=%s err=\"%s\"", sha,
                             core_strerror(-errno));
            }
        }
        pthread_mutex_unlock(&st->blob_mu);
    }
}

/* ==================================================================================== */
/* committing a finished temp file                                                       */
/* ==================================================================================== */

/* Moves the complete, fsynced file tmp into place as the blob sha256 and pins it; removes tmp
 * instead when that blob exists already. Returns 0 or -errno (tmp left in place). */
static int blob_install(store_t *st, const char *tmp, const char *sha256)
{
    char dir[4096], path[4096];
    snprintf(dir, sizeof dir, "%s/%.2s", st->blob_dir, sha256);
    blob_path_of(st, sha256, path, sizeof path);

    if (mkdir(dir, 0700) == 0) {
        int rc = core_fsync_dir(st->blob_dir);
        if (rc < 0)
            return rc;
    } else if (errno != EEXIST) {
        return -errno;
    }

    int rc = 0;
    bool renamed = false;
    pthread_mutex_lock(&st->blob_mu);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        unlink(tmp); /* same content already stored */
    } else if (rename(tmp, path) == 0) {
        renamed = true;
    } else {
        rc = -errno;
    }
    if (rc == 0)
        pin_add(st, sha256);
    pthread_mutex_unlock(&st->blob_mu);
    if (renamed)
        rc = core_fsync_dir(dir);
    return rc;
}

/* ==================================================================================== */
/* the writer                                                                            */
/* ==================================================================================== */

int store_blob_begin(store_t *st, store_blob_writer_t **out)
{
    *out = NULL;
    store_blob_writer_t *w = xcalloc(1, sizeof *w);
    w->st = st;
    w->path = store_temp_path(st, ".blob");
    w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        int rc = -errno;
        free(w->path);
        free(w);
        return rc;
    }
    w->md = EVP_MD_CTX_new();
    if (!w->md || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
        store_blob_abort(&w);
        return -ENOMEM;
    }
    *out = w;
    return 0;
}

int store_blob_write(store_blob_writer_t *w, const void *p, size_t n)
{
    if (!w || (n && !p))
        return -EINVAL;
    if (w->err)
        return w->err;
    if (w->finished)
        return -EINVAL;
    if (n && EVP_DigestUpdate(w->md, p, n) != 1)
        return w->err = -EIO;
    const char *b = p;
    size_t left = n;
    while (left > 0) {
        ssize_t k = write(w->fd, b, left);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return w->err = -errno;
        }
        b += k;
        left -= (size_t)k;
    }
    w->size += (int64_t)n;
    return 0;
}

int store_blob_finish(store_blob_writer_t *w, char sha256_out[65], int64_t *size_out)
{
    if (!w)
        return -EINVAL;
    if (w->err)
        return w->err;
    if (!w->finished) {
        uint8_t digest[32];
        unsigned int len = 0;
        if (fsync(w->fd) < 0)
            return w->err = -errno;
        if (close(w->fd) < 0) {
            w->fd = -1;
            return w->err = -errno;
        }
        w->fd = -1;
        if (EVP_DigestFinal_ex(w->md, digest, &len) != 1 || len != sizeof digest)
            return w->err = -EIO;
        core_hex(digest, sizeof digest, w->sha256);
        w->finished = true;
    }
    if (sha256_out)
        memcpy(sha256_out, w->sha256, 65);
    if (size_out)
        *size_out = w->size;
    return 0;
}

const char *store_blob_temp_path(const store_blob_writer_t *w)
{
    return w ? w->path : NULL;
}

int store_blob_commit(store_blob_writer_t **pw)
{
    store_blob_writer_t *w = pw ? *pw : NULL;
    if (!w)
        return -EINVAL;
    int rc = store_blob_finish(w, NULL, NULL);
    if (rc == 0)
        rc = blob_install(w->st, w->path, w->sha256);
    if (rc == 0) {
        free(w->path); /* the file is no longer ours to remove */
        w->path = NULL;
    }
    store_blob_abort(pw);
    return rc;
}

void store_blob_abort(store_blob_writer_t **pw)
{
    store_blob_writer_t *w = pw ? *pw : NULL;
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->path)
        unlink(w->path);
    free(w->path);
    EVP_MD_CTX_free(w->md);
    free(w);
    *pw = NULL;
}

/* ==================================================================================== */
/* existing files and paths                                                              */
/* ==================================================================================== */

int store_blob_put_file(store_t *st, const char *tmp_path, char sha256_out[65], int64_t *size_out)
{
    size_t dl = strlen(st->tmp_dir);
    if (!tmp_path || strncmp(tmp_path, st->tmp_dir, dl) != 0 || tmp_path[dl] != '/' ||
        strchr(tmp_path + dl + 1, '/'))
        return -EINVAL; /* only plain files directly in our tmp/ (same file system) */

    int rc = 0;
    uint8_t *buf = NULL;
    EVP_MD_CTX *md = NULL;
    int64_t size = 0;
    char sha[65];
    int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = -EINVAL;
        goto out;
    }
    buf = xmalloc(READ_CHUNK);
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t k = read(fd, buf, READ_CHUNK);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (k == 0)
            break;
        if (EVP_DigestUpdate(md, buf, (size_t)k) != 1) {
            rc = -EIO;
            goto out;
        }
        size += k;
    }
    uint8_t digest[32];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(md, digest, &len) != 1 || len != sizeof digest) {
        rc = -EIO;
        goto out;
    }
    core_hex(digest, sizeof digest, sha);
    /* Whoever wrote the file may not have synced it; the blob must be durable before its name. */
    if (fsync(fd) < 0) {
        rc = -errno;
        goto out;
    }
    close(fd);
    fd = -1;
    if ((rc = blob_install(st, tmp_path, sha)) < 0)
        goto out;
    if (sha256_out)
        memcpy(sha256_out, sha, sizeof sha);
    if (size_out)
        *size_out = size;
out:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(md);
    free(buf);
    return rc;
}

int store_blob_path(const store_t *st, const char *sha256, char *out, size_t cap)
{
    if (!store__sha256_valid(sha256) || !out)
        return -EINVAL;
    int n = snprintf(out, cap, "%s/%.2s/%s", st->blob_dir, sha256, sha256);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return access(out, F_OK) == 0 ? 0 : -ENOENT;
}
