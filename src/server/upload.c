/* server/upload.c: POST /v1/media — the body is streamed to the blob store while being hashed,
 * in constant memory whatever its size, without ever writing to disk on the event loop.
 *
 * States of an upload (srv_upload_t), all transitions on the loop thread:
 *
 *   AUTHORISING --begin task ok--> RECEIVING --body complete & queue empty--> FINISHING --> done
 *        |                            |  ^                                         |
 *        +--begin failed: 4xx         |  +-- chunks queue; a drain task writes them in order
 *                                     +-- queued bytes > upload_queue_kib: rx paused until the
 *                                         drain brings them under half of it
 *
 * Invariants: (1) at most one drain task runs per upload, so chunks are written in order;
 * (2) queued bytes never exceed the bound by more than one network read; (3) a blob becomes
 * visible (renamed into the store) only after the content was probed and accepted, so a rejected
 * upload leaves nothing behind. */
#include "server/internal.h"

#include "media/media.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Text items go into the corpus whole; larger text is refused. */
#define UPLOAD_MAX_TEXT (16u << 20)

typedef struct upload_chunk {
    struct upload_chunk *next;
    size_t len;
    unsigned char data[];
} upload_chunk_t;

struct srv_upload {
    pthread_mutex_t mu;
    upload_chunk_t *head, *tail; /* guarded by mu */
    size_t queued;               /* guarded by mu: bytes received, not yet written */
    bool draining;               /* guarded by mu: a drain task is scheduled or running */
    int write_error;             /* guarded by mu */
    /* loop thread only */
    bool begun, eof, finishing, paused;
    /* set by the begin task, read by later tasks */
    store_blob_writer_t *writer;
    char kind[8];
    server_t *srv;
};

static size_t queue_bound(const srv_req_t *r)
{
    return (size_t)r->srv->cfg->upload_queue_kib * 1024;
}

/* ---- the worker side ---- */

static const char *kind_from_request(const srv_req_t *r)
{
    const char *k = srv_query(r, "kind");
    static const char *const kinds[] = {"video", "audio", "image", "text"};
    if (k) {
        for (size_t i = 0; i < 4; i++)
            if (!strcmp(k, kinds[i]))
                return kinds[i];
        return NULL;
    }
    const char *ct = r->content_type;
    if (!ct)
        return NULL;
    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(kinds[i]);
        if (!strncasecmp(ct, kinds[i], n) && ct[n] == '/')
            return kinds[i];
    }
    return NULL;
}

static void begin_task(srv_req_t *r)
{
    srv_upload_t *u = r->upload;
    if (!srv_authenticate(r))
        return;
    const char *kind = kind_from_request(r);
    if (!kind) {
        srv_reply_error(r, 415, "unsupported_media",
                        "Say what the body is with Content-Type video/*, audio/*, image/* or "
                        "text/* (or ?kind=video|audio|image|text).");
        return;
    }
    snprintf(u->kind, sizeof u->kind, "%s", kind);
    const char *title = srv_query(r, "title");
    if (title && (strlen(title) > 256 || !core_utf8_valid(title, strlen(title)))) {
        srv_reply_error(r, 400, "invalid_field", "The title must be UTF-8 of at most 256 bytes.");
        return;
    }
    if (r->content_length == 0) {
        srv_reply_error(r, 400, "empty_body", "The upload is empty.");
        return;
    }
    if (!strcmp(kind, "text") && r->content_length > UPLOAD_MAX_TEXT) {
        srv_reply_error(r, 413, "payload_too_large", "A text item is limited to %u bytes.",
                        UPLOAD_MAX_TEXT);
        return;
    }
    int rc = store_blob_begin(r->srv->st, &u->writer);
    if (rc < 0)
        srv_reply_error(r, 500, "internal", "Could not start storing the upload: %s.",
                        core_strerror(rc));
}

static void drain_task(srv_req_t *r)
{
    srv_upload_t *u = r->upload;
    for (;;) {
        pthread_mutex_lock(&u->mu);
        upload_chunk_t *c = u->head;
        if (!c) {
            u->draining = false;
            pthread_mutex_unlock(&u->mu);
            return;
        }
        u->head = c->next;
        if (!u->head)
            u->tail = NULL;
        int failed = u->write_error;
        pthread_mutex_unlock(&u->mu);

        int rc = failed ? 0 : store_blob_write(u->writer, c->data, c->len);
        pthread_mutex_lock(&u->mu);
        u->queued -= c->len;
        if (rc < 0 && !u->write_error)
            u->write_error = rc;
        pthread_mutex_unlock(&u->mu);
        free(c);
    }
}

static void accept_text(srv_req_t *r, store_media_t *m, const char *path)
{
    server_t *s = r->srv;
    srv_upload_t *u = r->upload;
    char *text = NULL;
    size_t len = 0;
    int rc = core_read_file(path, UPLOAD_MAX_TEXT, &text, &len);
    if (rc < 0) {
        srv_reply_error(r, 500, "internal", "Could not read the upload back: %s.",
                        core_strerror(rc));
    } else if (!core_utf8_valid(text, len)) {
        srv_reply_error(r, 400, "invalid_utf8", "A text item must be UTF-8 without NUL bytes.");
    } else if ((rc = store_blob_commit(&u->writer)) < 0) {
        srv_reply_error(r, 500, "internal", "Could not store the upload: %s.", core_strerror(rc));
    } else if ((rc = store_media_create_text(s->st, m, text, len)) < 0) {
        srv_reply_error(r, 500, "internal", "Could not record the item.");
    }
    free(text);
}

static void accept_media(srv_req_t *r, store_media_t *m, const char *path)
{
    server_t *s = r->srv;
    srv_upload_t *u = r->upload;
    media_probe_t probe;
    char err[512] = "";
    int rc = media_probe_file(path, &probe, err, sizeof err);
    if (rc == 0)
        rc = media_probe_check_kind(&probe, u->kind, err, sizeof err);
    if (rc < 0) {
        srv_reply_error(r, rc == CORE_ELIMIT ? 413 : 415,
                        rc == CORE_ELIMIT ? "payload_too_large" : "unsupported_media",
                        "This is not a usable %s file: %s", u->kind, err);
        return;
    }
    m->probe_json = media_probe_to_json(&probe);
    if ((rc = store_blob_commit(&u->writer)) < 0) {
        srv_reply_error(r, 500, "internal", "Could not store the upload: %s.", core_strerror(rc));
        return;
    }
    if ((rc = store_media_create(s->st, m)) < 0) {
        srv_reply_error(r, 500, "internal", "Could not record the item.");
        return;
    }
    jobs_wake(s->jobs);
}

static void finish_task(srv_req_t *r)
{
    srv_upload_t *u = r->upload;
    store_media_t m = {0};
    int rc;
    if (u->write_error) {
        srv_reply_error(r, 507, "storage_failed", "Could not write the upload: %s.",
                        core_strerror(u->write_error));
        goto out;
    }
    if ((rc = store_blob_finish(u->writer, m.sha256, &m.size)) < 0) {
        srv_reply_error(r, 507, "storage_failed", "Could not write the upload: %s.",
                        core_strerror(rc));
        goto out;
    }
    m.account_id = r->account_id;
    snprintf(m.kind, sizeof m.kind, "%s", u->kind);
    const char *title = srv_query(r, "title");
    m.title = title && *title ? xstrdup(title) : NULL;
    m.content_type = xstrdup(r->content_type ? r->content_type : "");
    const char *path = store_blob_temp_path(u->writer);
    if (!strcmp(u->kind, "text"))
        accept_text(r, &m, path);
    else
        accept_media(r, &m, path);
    if (r->resp.status == 0) {
        core_log(CORE_LOG_INFO, "media.stored", "id=%s media=%lld kind=%s size=%lld sha256=%s",
                 r->id, (long long)m.id, m.kind, (long long)m.size, m.sha256);
        srv_reply_media(r, 201, &m, false);
    }
out:
    /* Anything not committed (a rejection) is removed: nothing is left behind. */
    store_blob_abort(&u->writer);
    store_media_clear(&m);
}

/* ---- the loop side ---- */

static void maybe_drain(srv_req_t *r)
{
    srv_upload_t *u = r->upload;
    pthread_mutex_lock(&u->mu);
    bool start = u->begun && !u->draining && u->head;
    if (start)
        u->draining = true;
    pthread_mutex_unlock(&u->mu);
    if (start)
        server_dispatch(r, drain_task, SRV_DONE_UPLOAD_DRAINED);
}

static void maybe_finish(srv_req_t *r)
{
    srv_upload_t *u = r->upload;
    if (!u->eof || !u->begun || u->finishing || r->resp_ready)
        return;
    pthread_mutex_lock(&u->mu);
    bool idle = !u->draining && !u->head;
    pthread_mutex_unlock(&u->mu);
    if (!idle)
        return;
    u->finishing = true;
    if (u->paused) { /* the answer needs WRITEABLE, which lws withholds while reads pause */
        u->paused = false;
        server_resume_rx(r);
    }
    server_dispatch(r, finish_task, SRV_DONE_RESPONSE);
}

void srv_upload_start(srv_req_t *r)
{
    srv_upload_t *u = xcalloc(1, sizeof *u);
    pthread_mutex_init(&u->mu, NULL);
    r->upload = u;
    u->srv = r->srv;
    atomic_fetch_add(&r->srv->uploads_in_progress, 1);
    /* Nothing is read until we know who is uploading. */
    server_pause_rx(r);
    u->paused = true;
    server_dispatch(r, begin_task, SRV_DONE_UPLOAD_BEGUN);
}

void srv_upload_body(srv_req_t *r, const void *data, size_t len)
{
    srv_upload_t *u = r->upload;
    if (!u || len == 0)
        return;
    upload_chunk_t *c = xmalloc(sizeof *c + len);
    c->next = NULL;
    c->len = len;
    memcpy(c->data, data, len);
    pthread_mutex_lock(&u->mu);
    if (u->tail)
        u->tail->next = c;
    else
        u->head = c;
    u->tail = c;
    u->queued += len;
    bool over = u->queued > queue_bound(r);
    pthread_mutex_unlock(&u->mu);
    if (over && !u->paused) {
        server_pause_rx(r);
        u->paused = true;
    }
    maybe_drain(r);
}

void srv_upload_body_done(srv_req_t *r)
{
    if (!r->upload)
        return;
    r->upload->eof = true;
    maybe_finish(r);
}

void srv_upload_on_complete(srv_req_t *r, int kind)
{
    srv_upload_t *u = r->upload;
    if (kind == SRV_DONE_UPLOAD_BEGUN) {
        if (r->resp.status != 0) {
            /* Refused before the body was read: answer and close the connection. lws delivers
             * no WRITEABLE callback while reads are paused, so reads resume (and the body is
             * discarded) until the answer is out. */
            r->close_after = r->content_length > 0;
            if (u->paused) {
                u->paused = false;
                server_resume_rx(r);
            }
            server_respond(r);
            return;
        }
        u->begun = true;
        server_send_continue(r);
    }
    if (r->resp_ready)
        return;
    pthread_mutex_lock(&u->mu);
    bool low = u->queued <= queue_bound(r) / 2;
    pthread_mutex_unlock(&u->mu);
    if (u->paused && low) {
        u->paused = false;
        server_resume_rx(r);
    }
    maybe_drain(r);
    maybe_finish(r);
}

bool srv_upload_idle(const srv_upload_t *u)
{
    return !u || !u->draining;
}

void srv_upload_free(srv_upload_t **pu)
{
    srv_upload_t *u = pu ? *pu : NULL;
    if (!u)
        return;
    store_blob_abort(&u->writer);
    while (u->head) {
        upload_chunk_t *c = u->head;
        u->head = c->next;
        free(c);
    }
    atomic_fetch_sub(&u->srv->uploads_in_progress, 1);
    pthread_mutex_destroy(&u->mu);
    free(u);
    *pu = NULL;
}
