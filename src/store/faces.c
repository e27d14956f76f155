/* store/faces.c: faces, face tracks, identities and the per-item faces status (migration 6).
 *
 * Invariants:
 *   1. An item's faces and tracks change together, in one transaction (store_faces_replace):
 *      a reader sees the old set or the new one, never a mix, and a job that runs again
 *      replaces its set, never adds a second one.
 *   2. A face's identity_id is its track's identity_id (both written here, nowhere else).
 *   3. identities.face_count is the number of faces with that identity (SQL triggers keep it,
 *      also when an item's faces go with it by ON DELETE CASCADE).
 *   4. At most one identity per account is the persona (a partial unique index).
 *   5. An identity's centroid is the mean descriptor of its faces, computed from its tracks'
 *      means weighted by their face counts; it is rewritten whenever store_faces_replace
 *      changes the identity's tracks. (Deleting an item leaves the centroids of its identities
 *      as they were until the next replace touches them; assignment never reads the stored
 *      centroid: it recomputes every centroid from the tracks, in the same transaction.)
 *
 * Any thread. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

#define DESC_BYTES (STORE_FACE_DIM * (int)sizeof(float))
#define LMK_BYTES (STORE_FACE_LANDMARKS * 2 * (int)sizeof(float))
#define EXPR_BYTES (STORE_FACE_EXPRESSIONS * (int)sizeof(float))

void store_faces_status_clear(store_faces_status_t *s)
{
    if (!s)
        return;
    free(s->error);
    memset(s, 0, sizeof *s);
}

void store_identity_clear(store_identity_t *i)
{
    if (!i)
        return;
    free(i->name);
    memset(i, 0, sizeof *i);
}

void store_identity_list_free(store_identity_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        store_identity_clear(&(*list)[i]);
    free(*list);
    *list = NULL;
}

/* Copies a float BLOB column of exactly n floats into out; false when NULL or of another size. */
static bool col_floats(sqlite3_stmt *s, int i, float *out, int n)
{
    if (sqlite3_column_type(s, i) != SQLITE_BLOB || sqlite3_column_bytes(s, i) != n * 4)
        return false;
    memcpy(out, sqlite3_column_blob(s, i), (size_t)n * 4);
    return true;
}

static int item_owned(store_conn_t *c, int64_t account_id, int64_t media_id, const char *op)
{
    static const char sql[] = "SELECT 1 FROM media WHERE id = ?1 AND account_id = ?2";
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, media_id);
    sqlite3_bind_int64(s, 2, account_id);
    rc = store__step(c, s, op);
    sqlite3_reset(s);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

/* ======================================================================================
 * identity assignment
 * ====================================================================================== */

/* One identity during assignment: the sum of its faces' descriptors and their number. */
typedef struct ident_acc {
    int64_t id;
    double sum[STORE_FACE_DIM];
    int64_t count;
    /* The stored centroid, for an identity without tracks (a named person whose items were
     * all re-processed or deleted): still found again by the next face of that person. */
    bool has_stored;
    float stored[STORE_FACE_DIM];
    bool dirty; /* its tracks changed: centroid and representative to be written */
} ident_acc_t;

typedef struct ident_set {
    ident_acc_t *v;
    size_t n, cap;
} ident_set_t;

static ident_acc_t *ident_find(ident_set_t *set, int64_t id)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i].id == id)
            return &set->v[i];
    return NULL;
}

static ident_acc_t *ident_add(ident_set_t *set, int64_t id)
{
    ident_acc_t *a = ident_find(set, id);
    if (a)
        return a;
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 16;
        set->v = xrealloc(set->v, set->cap * sizeof *set->v);
    }
    a = &set->v[set->n++];
    memset(a, 0, sizeof *a);
    a->id = id;
    return a;
}

static void ident_accumulate(ident_acc_t *a, const float *mean, int64_t count)
{
    for (int k = 0; k < STORE_FACE_DIM; k++)
        a->sum[k] += (double)mean[k] * (double)count;
    a->count += count;
}

static float ident_distance(const ident_acc_t *a, const float *d)
{
    double s = 0;
    for (int k = 0; k < STORE_FACE_DIM; k++) {
        double c = a->count > 0 ? a->sum[k] / (double)a->count : (double)a->stored[k];
        double diff = c - d[k];
        s += diff * diff;
    }
    return (float)sqrt(s);
}

/* The identities of the item's old tracks: marked dirty, since they lose those tracks. */
static int mark_old_identities(store_conn_t *c, int64_t media_id, ident_set_t *set)
{
    static const char sql[] =
        "SELECT DISTINCT identity_id FROM face_tracks WHERE media_id = ?1 AND"
        " identity_id IS NOT NULL";
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, media_id);
    while ((rc = store__step(c, s, "faces_replace")) == 1)
        ident_add(set, sqlite3_column_int64(s, 0))->dirty = true;
    sqlite3_reset(s);
    return rc;
}

/* Every identity of the account with its sum over the account's tracks (the item's old tracks
 * are already deleted), and its stored centroid for those left without tracks. */
static int load_centroids(store_conn_t *c, int64_t account_id, ident_set_t *set)
{
    static const char sql_stored[] =
        "SELECT id, centroid FROM identities WHERE account_id = ?1 AND centroid IS NOT NULL";
    static const char sql[] = "SELECT identity_id, face_count, descriptor FROM face_tracks"
                              " WHERE account_id = ?1 AND identity_id IS NOT NULL";
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql_stored, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, account_id);
    float mean[STORE_FACE_DIM];
    while ((rc = store__step(c, s, "faces_replace")) == 1) {
        if (!col_floats(s, 1, mean, STORE_FACE_DIM))
            continue;
        ident_acc_t *a = ident_add(set, sqlite3_column_int64(s, 0));
        memcpy(a->stored, mean, sizeof mean);
        a->has_stored = true;
    }
    sqlite3_reset(s);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, account_id);
    while ((rc = store__step(c, s, "faces_replace")) == 1) {
        if (!col_floats(s, 2, mean, STORE_FACE_DIM))
            continue;
        ident_accumulate(ident_add(set, sqlite3_column_int64(s, 0)), mean,
                         sqlite3_column_int64(s, 1));
    }
    sqlite3_reset(s);
    return rc;
}

static int new_identity(store_conn_t *c, int64_t account_id, int64_t now, int64_t *id_out)
{
    static const char sql[] =
        "INSERT INTO identities(account_id, created_at, updated_at) VALUES (?1, ?2, ?2)";
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, now);
    if ((rc = store__step(c, s, "faces_replace")) < 0)
        return rc;
    *id_out = sqlite3_last_insert_rowid(c->db);
    return 0;
}

static bool overlaps(const store_face_track_t *a, const store_face_track_t *b)
{
    return a->start_ms <= b->end_ms && b->start_ms <= a->end_ms;
}

/* Chooses the identity of tracks[t]: the nearest centroid under threshold that no overlapping
 * track of this item already took, else a new one. ids[0..t) are the earlier tracks' choices. */
static int assign_track(store_conn_t *c, int64_t account_id, const store_face_track_t *tracks,
                        size_t t, const int64_t *ids, float threshold, ident_set_t *set,
                        int64_t now, int64_t *id_out)
{
    ident_acc_t *best = NULL;
    float best_d = threshold;
    for (size_t i = 0; i < set->n; i++) {
        ident_acc_t *a = &set->v[i];
        if (a->count == 0 && !a->has_stored)
            continue;
        bool taken = false;
        for (size_t j = 0; j < t && !taken; j++)
            taken = ids[j] == a->id && overlaps(&tracks[j], &tracks[t]);
        if (taken)
            continue;
        float d = ident_distance(a, tracks[t].descriptor);
        if (d < best_d) {
            best_d = d;
            best = a;
        }
    }
    int64_t id;
    if (best) {
        id = best->id;
    } else {
        int rc = new_identity(c, account_id, now, &id);
        if (rc < 0)
            return rc;
        best = ident_add(set, id);
    }
    ident_accumulate(best, tracks[t].descriptor, tracks[t].face_count);
    best->dirty = true;
    *id_out = id;
    return 0;
}

/* Writes the centroid and representative face of every dirty identity, then removes unnamed
 * identities that have no face left. */
static int write_identities(store_conn_t *c, int64_t account_id, const ident_set_t *set,
                            int64_t now)
{
    static const char sql_upd[] =
        "UPDATE identities SET centroid = coalesce(?2, centroid), updated_at = ?3, rep_face_id ="
        " (SELECT id FROM faces WHERE identity_id = ?1 ORDER BY score DESC, id LIMIT 1)"
        " WHERE id = ?1";
    static const char sql_gc[] = "DELETE FROM identities WHERE account_id = ?1 AND"
                                 " face_count <= 0 AND name IS NULL AND is_persona = 0";
    sqlite3_stmt *s;
    int rc;
    for (size_t i = 0; i < set->n; i++) {
        const ident_acc_t *a = &set->v[i];
        if (!a->dirty)
            continue;
        if ((rc = store__prepare(c, sql_upd, &s)) < 0)
            return rc;
        sqlite3_bind_int64(s, 1, a->id);
        if (a->count > 0) {
            float centroid[STORE_FACE_DIM];
            for (int k = 0; k < STORE_FACE_DIM; k++)
                centroid[k] = (float)(a->sum[k] / (double)a->count);
            sqlite3_bind_blob(s, 2, centroid, DESC_BYTES, SQLITE_TRANSIENT);
        } else {
            sqlite3_bind_null(s, 2);
        }
        sqlite3_bind_int64(s, 3, now);
        if ((rc = store__step(c, s, "faces_replace")) < 0)
            return rc;
    }
    if ((rc = store__prepare(c, sql_gc, &s)) < 0)
        return rc;
    sqlite3_bind_int64(s, 1, account_id);
    rc = store__step(c, s, "faces_replace");
    return rc < 0 ? rc : 0;
}

/* ======================================================================================
 * replace
 * ====================================================================================== */

static int insert_track(store_conn_t *c, int64_t account_id, int64_t media_id,
                        const store_face_track_t *t, int64_t identity_id, int64_t *id_out)
{
    static const char sql[] =
        "INSERT INTO face_tracks(account_id, media_id, start_ms, end_ms, face_count, descriptor,"
        " identity_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, media_id);
    sqlite3_bind_int64(s, 3, t->start_ms);
    sqlite3_bind_int64(s, 4, t->end_ms);
    sqlite3_bind_int(s, 5, t->face_count);
    sqlite3_bind_blob(s, 6, t->descriptor, DESC_BYTES, SQLITE_STATIC);
    if (identity_id)
        sqlite3_bind_int64(s, 7, identity_id);
    else
        sqlite3_bind_null(s, 7);
    if ((rc = store__step(c, s, "faces_replace")) < 0)
        return rc;
    *id_out = sqlite3_last_insert_rowid(c->db);
    return 0;
}

static int insert_face(store_conn_t *c, int64_t account_id, int64_t media_id,
                       const store_face_t *f, int64_t track_id, int64_t identity_id)
{
    static const char sql[] =
        "INSERT INTO faces(account_id, media_id, ts_ms, x, y, w, h, score, landmarks, descriptor,"
        " age, gender, gender_probability, expressions, track_id, identity_id)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, media_id);
    sqlite3_bind_int64(s, 3, f->ts_ms);
    sqlite3_bind_double(s, 4, f->x);
    sqlite3_bind_double(s, 5, f->y);
    sqlite3_bind_double(s, 6, f->w);
    sqlite3_bind_double(s, 7, f->h);
    sqlite3_bind_double(s, 8, f->score);
    if (f->has_landmarks)
        sqlite3_bind_blob(s, 9, f->landmarks, LMK_BYTES, SQLITE_STATIC);
    if (f->has_descriptor)
        sqlite3_bind_blob(s, 10, f->descriptor, DESC_BYTES, SQLITE_STATIC);
    if (f->has_attributes) {
        sqlite3_bind_double(s, 11, f->age);
        sqlite3_bind_text(s, 12, f->male ? "male" : "female", -1, SQLITE_STATIC);
        sqlite3_bind_double(s, 13, f->gender_probability);
        sqlite3_bind_blob(s, 14, f->expressions, EXPR_BYTES, SQLITE_STATIC);
    }
    if (track_id)
        sqlite3_bind_int64(s, 15, track_id);
    if (identity_id)
        sqlite3_bind_int64(s, 16, identity_id);
    rc = store__step(c, s, "faces_replace");
    return rc < 0 ? rc : 0;
}

static int put_status(store_conn_t *c, int64_t account_id, int64_t media_id, const char *status,
                      const char *error, const store_faces_status_t *info, int faces, int tracks)
{
    static const char sql[] =
        "INSERT INTO media_faces(media_id, account_id, status, error, detector, frames, faces,"
        " tracks, ms, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, coalesce(?6, 0), coalesce(?7, 0),"
        " coalesce(?8, 0), coalesce(?9, 0), ?10)"
        " ON CONFLICT(media_id) DO UPDATE SET status = ?3, error = ?4,"
        " detector = coalesce(?5, detector), frames = coalesce(?6, frames),"
        " faces = coalesce(?7, faces), tracks = coalesce(?8, tracks), ms = coalesce(?9, ms),"
        " updated_at = ?10";
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, media_id);
    sqlite3_bind_int64(s, 2, account_id);
    store__bind_text(s, 3, status);
    store__bind_text(s, 4, error);
    if (info) {
        store__bind_text(s, 5, info->detector[0] ? info->detector : NULL);
        sqlite3_bind_int(s, 6, info->frames);
        sqlite3_bind_int64(s, 9, info->ms);
    }
    if (faces >= 0) {
        sqlite3_bind_int(s, 7, faces);
        sqlite3_bind_int(s, 8, tracks);
    }
    sqlite3_bind_int64(s, 10, core_now_ms());
    rc = store__step(c, s, "faces_status");
    return rc < 0 ? rc : 0;
}

/* -EINVAL unless every face points at a track and every track has a face. */
static int check_set(const store_face_t *faces, size_t n_faces, const store_face_track_t *tracks,
                     size_t n_tracks)
{
    if ((n_faces && !faces) || (n_tracks && !tracks))
        return -EINVAL;
    for (size_t t = 0; t < n_tracks; t++)
        if (tracks[t].face_count < 1 || tracks[t].end_ms < tracks[t].start_ms)
            return -EINVAL;
    bool *used = xcalloc(n_tracks ? n_tracks : 1, sizeof *used);
    int rc = 0;
    for (size_t i = 0; i < n_faces && rc == 0; i++) {
        if (faces[i].track < 0 || (size_t)faces[i].track >= n_tracks)
            rc = -EINVAL;
        else
            used[faces[i].track] = true;
    }
    for (size_t t = 0; t < n_tracks && rc == 0; t++)
        if (!used[t])
            rc = -EINVAL;
    free(used);
    return rc;
}

int store_faces_replace(store_t *st, int64_t account_id, int64_t media_id,
                        const store_face_t *faces, size_t n_faces,
                        const store_face_track_t *tracks, size_t n_tracks, float threshold,
                        const store_faces_status_t *info, int64_t *track_identity_out)
{
    static const char sql_del_faces[] = "DELETE FROM faces WHERE media_id = ?1";
    static const char sql_del_tracks[] = "DELETE FROM face_tracks WHERE media_id = ?1";
    int rc = check_set(faces, n_faces, tracks, n_tracks);
    if (rc < 0)
        return rc;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    ident_set_t set = {0};
    int64_t *ident_ids = xcalloc(n_tracks ? n_tracks : 1, sizeof *ident_ids);
    int64_t *track_ids = xcalloc(n_tracks ? n_tracks : 1, sizeof *track_ids);
    int64_t now = core_now_ms();
    if ((rc = store__acquire(st, &c)) < 0)
        goto out;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = item_owned(c, account_id, media_id, "faces_replace")) < 0)
        goto out;
    if ((rc = mark_old_identities(c, media_id, &set)) < 0)
        goto out;
    /* Faces first: their track_id points at the tracks. */
    const char *const dels[] = {sql_del_faces, sql_del_tracks};
    for (size_t i = 0; i < 2; i++) {
        if ((rc = store__prepare(c, dels[i], &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, media_id);
        if ((rc = store__step(c, s, "faces_replace")) < 0)
            goto out;
    }
    if ((rc = load_centroids(c, account_id, &set)) < 0)
        goto out;
    for (size_t t = 0; t < n_tracks; t++) {
        if ((rc = assign_track(c, account_id, tracks, t, ident_ids, threshold, &set, now,
                               &ident_ids[t])) < 0)
            goto out;
        if ((rc = insert_track(c, account_id, media_id, &tracks[t], ident_ids[t],
                               &track_ids[t])) < 0)
            goto out;
    }
    for (size_t i = 0; i < n_faces; i++) {
        int t = faces[i].track;
        if ((rc = insert_face(c, account_id, media_id, &faces[i], track_ids[t], ident_ids[t])) < 0)
            goto out;
    }
    if ((rc = write_identities(c, account_id, &set, now)) < 0)
        goto out;
    if ((rc = put_status(c, account_id, media_id, "done", NULL, info, (int)n_faces,
                         (int)n_tracks)) < 0)
        goto out;
    if ((rc = store__commit(c)) < 0)
        goto out;
    if (track_identity_out)
        memcpy(track_identity_out, ident_ids, n_tracks * sizeof *ident_ids);
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    free(set.v);
    free(ident_ids);
    free(track_ids);
    return rc;
}

int store_faces_set_status(store_t *st, int64_t account_id, int64_t media_id, const char *status,
                           const char *error)
{
    if (!status ||
        (strcmp(status, "failed") && strcmp(status, "skipped") && strcmp(status, "done")))
        return -EINVAL;
    store_conn_t *c = NULL;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = item_owned(c, account_id, media_id, "faces_status")) < 0)
        goto out;
    if ((rc = put_status(c, account_id, media_id, status, error, NULL, -1, -1)) < 0)
        goto out;
    rc = store__commit(c);
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}

int store_faces_status_get(store_t *st, int64_t account_id, int64_t media_id,
                           store_faces_status_t *out)
{
    static const char sql[] =
        "SELECT status, error, detector, frames, faces, tracks, ms, updated_at FROM media_faces"
        " WHERE media_id = ?1 AND account_id = ?2";
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
    if ((rc = store__step(c, s, "faces_status")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    store__col_copy(s, 0, out->status, sizeof out->status);
    out->error = store__col_strdup(s, 1);
    store__col_copy(s, 2, out->detector, sizeof out->detector);
    out->frames = sqlite3_column_int(s, 3);
    out->faces = sqlite3_column_int(s, 4);
    out->tracks = sqlite3_column_int(s, 5);
    out->ms = sqlite3_column_int64(s, 6);
    out->updated_at = sqlite3_column_int64(s, 7);
    rc = 0;
out:
    store__release(st, c);
    return rc;
}

/* ======================================================================================
 * reads
 * ====================================================================================== */

/* The face columns every face read selects, in this order. */
#define FACE_COLS                                                                                \
    "id, media_id, ts_ms, x, y, w, h, score, landmarks, descriptor, age, gender,"               \
    " gender_probability, expressions, track_id, identity_id"

static void read_face(sqlite3_stmt *s, store_face_t *f)
{
    memset(f, 0, sizeof *f);
    f->id = sqlite3_column_int64(s, 0);
    f->media_id = sqlite3_column_int64(s, 1);
    f->ts_ms = sqlite3_column_int64(s, 2);
    f->x = (float)sqlite3_column_double(s, 3);
    f->y = (float)sqlite3_column_double(s, 4);
    f->w = (float)sqlite3_column_double(s, 5);
    f->h = (float)sqlite3_column_double(s, 6);
    f->score = (float)sqlite3_column_double(s, 7);
    f->has_landmarks = col_floats(s, 8, f->landmarks, STORE_FACE_LANDMARKS * 2);
    f->has_descriptor = col_floats(s, 9, f->descriptor, STORE_FACE_DIM);
    f->has_attributes = sqlite3_column_type(s, 10) != SQLITE_NULL &&
                        col_floats(s, 13, f->expressions, STORE_FACE_EXPRESSIONS);
    if (f->has_attributes) {
        f->age = (float)sqlite3_column_double(s, 10);
        const unsigned char *g = sqlite3_column_text(s, 11);
        f->male = g && !strcmp((const char *)g, "male");
        f->gender_probability = (float)sqlite3_column_double(s, 12);
    }
    f->track_id = sqlite3_column_int64(s, 14);
    f->identity_id = sqlite3_column_int64(s, 15);
}

/* Appends every row of s (bound) as a face to a growing array. */
static int collect_faces(store_conn_t *c, sqlite3_stmt *s, store_face_t **out, size_t *n_out,
                         const char *op)
{
    size_t n = 0, cap = 16;
    store_face_t *v = xmalloc(cap * sizeof *v);
    int rc;
    while ((rc = store__step(c, s, op)) == 1) {
        if (n == cap) {
            cap *= 2;
            v = xrealloc(v, cap * sizeof *v);
        }
        read_face(s, &v[n++]);
    }
    if (rc < 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int collect_tracks(store_conn_t *c, sqlite3_stmt *s, store_face_track_t **out,
                          size_t *n_out)
{
    size_t n = 0, cap = 8;
    store_face_track_t *v = xmalloc(cap * sizeof *v);
    int rc;
    while ((rc = store__step(c, s, "faces_tracks")) == 1) {
        if (n == cap) {
            cap *= 2;
            v = xrealloc(v, cap * sizeof *v);
        }
        store_face_track_t *t = &v[n++];
        memset(t, 0, sizeof *t);
        t->id = sqlite3_column_int64(s, 0);
        t->media_id = sqlite3_column_int64(s, 1);
        t->start_ms = sqlite3_column_int64(s, 2);
        t->end_ms = sqlite3_column_int64(s, 3);
        t->face_count = sqlite3_column_int(s, 4);
        col_floats(s, 5, t->descriptor, STORE_FACE_DIM);
        t->identity_id = sqlite3_column_int64(s, 6);
    }
    if (rc < 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}

int store_faces_list_media(store_t *st, int64_t account_id, int64_t media_id,
                           store_face_t **faces, size_t *n_faces, store_face_track_t **tracks,
                           size_t *n_tracks)
{
    static const char sql_faces[] = "SELECT " FACE_COLS " FROM faces WHERE media_id = ?1 AND"
                                    " account_id = ?2 ORDER BY ts_ms, score DESC, id";
    static const char sql_tracks[] =
        "SELECT id, media_id, start_ms, end_ms, face_count, descriptor, identity_id"
        " FROM face_tracks WHERE media_id = ?1 AND account_id = ?2 ORDER BY start_ms, id";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    if (faces)
        *faces = NULL;
    if (tracks)
        *tracks = NULL;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    /* One read transaction, so the faces and the tracks are of the same set. */
    if ((rc = store__exec(c, "BEGIN", "faces_list")) < 0)
        goto out;
    if ((rc = item_owned(c, account_id, media_id, "faces_list")) < 0)
        goto out;
    if (faces) {
        if ((rc = store__prepare(c, sql_faces, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, media_id);
        sqlite3_bind_int64(s, 2, account_id);
        if ((rc = collect_faces(c, s, faces, n_faces, "faces_list")) < 0)
            goto out;
    }
    if (tracks) {
        if ((rc = store__prepare(c, sql_tracks, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, media_id);
        sqlite3_bind_int64(s, 2, account_id);
        if ((rc = collect_tracks(c, s, tracks, n_tracks)) < 0)
            goto out;
    }
    rc = 0;
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    if (rc < 0 && faces) {
        free(*faces);
        *faces = NULL;
    }
    return rc;
}

static int identity_owned(store_conn_t *c, int64_t account_id, int64_t identity_id,
                          const char *op)
{
    static const char sql[] = "SELECT 1 FROM identities WHERE id = ?1 AND account_id = ?2";
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(s, 1, identity_id);
    sqlite3_bind_int64(s, 2, account_id);
    rc = store__step(c, s, op);
    sqlite3_reset(s);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int store_faces_list_identity(store_t *st, int64_t account_id, int64_t identity_id,
                              int64_t before_id, int limit, store_face_t **out, size_t *n_out)
{
    static const char sql[] = "SELECT " FACE_COLS " FROM faces WHERE identity_id = ?1 AND"
                              " account_id = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4";
    *out = NULL;
    *n_out = 0;
    if (limit < 1 || limit > 1000)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = identity_owned(c, account_id, identity_id, "faces_identity")) < 0)
        goto out;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, identity_id);
    sqlite3_bind_int64(s, 2, account_id);
    sqlite3_bind_int64(s, 3, before_id > 0 ? before_id : INT64_MAX);
    sqlite3_bind_int(s, 4, limit);
    rc = collect_faces(c, s, out, n_out, "faces_identity");
out:
    store__release(st, c);
    return rc;
}

int store_faces_scan(store_t *st, int64_t account_id, store_face_fn fn, void *ud)
{
    static const char sql[] =
        "SELECT id, media_id, ts_ms, x, y, w, h, score, descriptor, track_id, identity_id"
        " FROM faces WHERE account_id = ?1 AND descriptor IS NOT NULL ORDER BY id";
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    store_face_t f;
    while ((rc = store__step(c, s, "faces_scan")) == 1) {
        memset(&f, 0, sizeof f);
        f.id = sqlite3_column_int64(s, 0);
        f.media_id = sqlite3_column_int64(s, 1);
        f.ts_ms = sqlite3_column_int64(s, 2);
        f.x = (float)sqlite3_column_double(s, 3);
        f.y = (float)sqlite3_column_double(s, 4);
        f.w = (float)sqlite3_column_double(s, 5);
        f.h = (float)sqlite3_column_double(s, 6);
        f.score = (float)sqlite3_column_double(s, 7);
        f.has_descriptor = col_floats(s, 8, f.descriptor, STORE_FACE_DIM);
        f.track_id = sqlite3_column_int64(s, 9);
        f.identity_id = sqlite3_column_int64(s, 10);
        if (f.has_descriptor && fn(ud, &f) != 0) {
            rc = 0;
            break;
        }
    }
    if (rc > 0)
        rc = 0;
out:
    store__release(st, c);
    return rc;
}

/* ======================================================================================
 * identities
 * ====================================================================================== */

#define IDENT_SELECT                                                                             \
    "SELECT i.id, i.name, i.is_persona, i.face_count,"                                         \
    " (SELECT count(DISTINCT t.media_id) FROM face_tracks AS t WHERE t.identity_id = i.id),"   \
    " i.centroid, f.id, f.media_id, f.ts_ms, f.x, f.y, f.w, f.h, i.created_at, i.updated_at"   \
    " FROM identities AS i LEFT JOIN faces AS f ON f.id = coalesce(i.rep_face_id,"              \
    " (SELECT id FROM faces WHERE identity_id = i.id ORDER BY score DESC, id LIMIT 1))"

static void read_identity(sqlite3_stmt *s, store_identity_t *o)
{
    memset(o, 0, sizeof *o);
    o->id = sqlite3_column_int64(s, 0);
    o->name = store__col_strdup(s, 1);
    o->is_persona = sqlite3_column_int(s, 2) != 0;
    o->face_count = sqlite3_column_int(s, 3);
    o->media_count = sqlite3_column_int(s, 4);
    o->has_centroid = col_floats(s, 5, o->centroid, STORE_FACE_DIM);
    o->rep_face_id = sqlite3_column_int64(s, 6);
    o->rep_media_id = sqlite3_column_int64(s, 7);
    o->rep_ts_ms = sqlite3_column_int64(s, 8);
    o->rep_x = (float)sqlite3_column_double(s, 9);
    o->rep_y = (float)sqlite3_column_double(s, 10);
    o->rep_w = (float)sqlite3_column_double(s, 11);
    o->rep_h = (float)sqlite3_column_double(s, 12);
    o->created_at = sqlite3_column_int64(s, 13);
    o->updated_at = sqlite3_column_int64(s, 14);
}

int store_identity_list(store_t *st, int64_t account_id, store_identity_t **out, size_t *n_out)
{
    static const char sql[] = IDENT_SELECT
        " WHERE i.account_id = ?1 AND (i.face_count > 0 OR i.name IS NOT NULL OR i.is_persona)"
        " ORDER BY i.is_persona DESC, i.face_count DESC, i.id";
    *out = NULL;
    *n_out = 0;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    size_t n = 0, cap = 8;
    store_identity_t *v = xmalloc(cap * sizeof *v);
    while ((rc = store__step(c, s, "identity_list")) == 1) {
        if (n == cap) {
            cap *= 2;
            v = xrealloc(v, cap * sizeof *v);
        }
        read_identity(s, &v[n++]);
    }
    if (rc < 0) {
        store_identity_list_free(&v, n);
        goto out;
    }
    *out = v;
    *n_out = n;
    rc = 0;
out:
    store__release(st, c);
    return rc;
}

int store_identity_get(store_t *st, int64_t account_id, int64_t identity_id,
                       store_identity_t *out)
{
    static const char sql[] = IDENT_SELECT " WHERE i.id = ?1 AND i.account_id = ?2";
    memset(out, 0, sizeof *out);
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, identity_id);
    sqlite3_bind_int64(s, 2, account_id);
    if ((rc = store__step(c, s, "identity_get")) < 0)
        goto out;
    if (rc == 0) {
        rc = -ENOENT;
        goto out;
    }
    read_identity(s, out);
    rc = 0;
out:
    store__release(st, c);
    return rc;
}

/* Recomputes the identity's centroid from its tracks (as assignment does). */
static int recompute_centroid(store_conn_t *c, int64_t identity_id, int64_t now)
{
    static const char sql[] =
        "SELECT face_count, descriptor FROM face_tracks WHERE identity_id = ?1";
    sqlite3_stmt *s;
    ident_set_t set = {0};
    ident_acc_t *a = ident_add(&set, identity_id);
    float mean[STORE_FACE_DIM];
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        goto out;
    sqlite3_bind_int64(s, 1, identity_id);
    while ((rc = store__step(c, s, "identity_merge")) == 1)
        if (col_floats(s, 1, mean, STORE_FACE_DIM))
            ident_accumulate(a, mean, sqlite3_column_int64(s, 0));
    sqlite3_reset(s);
    if (rc < 0)
        goto out;
    a->dirty = true;
    /* Account 0: write_identities' removal of empty identities has nothing to do here. */
    rc = write_identities(c, 0, &set, now);
out:
    free(set.v);
    return rc;
}

int store_identity_merge(store_t *st, int64_t account_id, int64_t from, int64_t into)
{
    static const char sql_persona[] = "SELECT is_persona FROM identities WHERE id = ?1";
    static const char sql_tracks[] =
        "UPDATE face_tracks SET identity_id = ?2 WHERE identity_id = ?1";
    static const char sql_faces[] = "UPDATE faces SET identity_id = ?2 WHERE identity_id = ?1";
    /* The moved faces were counted by the insert trigger for `from`: count again. */
    static const char sql_count[] =
        "UPDATE identities SET face_count = (SELECT count(*) FROM faces WHERE identity_id = ?2),"
        " name = coalesce(name, (SELECT name FROM identities WHERE id = ?1)) WHERE id = ?2";
    static const char sql_del[] = "DELETE FROM identities WHERE id = ?1";
    static const char sql_mark[] = "UPDATE identities SET is_persona = 1 WHERE id = ?2";
    if (from == into)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int64_t now = core_now_ms();
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = identity_owned(c, account_id, from, "identity_merge")) < 0 ||
        (rc = identity_owned(c, account_id, into, "identity_merge")) < 0)
        goto out;
    if ((rc = store__prepare(c, sql_persona, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, from);
    if ((rc = store__step(c, s, "identity_merge")) < 0)
        goto out;
    bool was_persona = rc == 1 && sqlite3_column_int(s, 0) != 0;
    sqlite3_reset(s);
    /* The persona mark moves after `from` is gone (one persona per account at any time). */
    const char *const steps[] = {sql_tracks, sql_faces, sql_count, sql_del, sql_mark};
    size_t nsteps = was_persona ? 5 : 4;
    for (size_t i = 0; i < nsteps; i++) {
        if ((rc = store__prepare(c, steps[i], &s)) < 0)
            goto out;
        if (strstr(steps[i], "?1"))
            sqlite3_bind_int64(s, 1, from);
        if (strstr(steps[i], "?2"))
            sqlite3_bind_int64(s, 2, into);
        if ((rc = store__step(c, s, "identity_merge")) < 0)
            goto out;
    }
    if ((rc = recompute_centroid(c, into, now)) < 0)
        goto out;
    rc = store__commit(c);
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}

int store_identity_update(store_t *st, int64_t account_id, int64_t identity_id, bool set_name,
                          const char *name, int persona)
{
    static const char sql_name[] = "UPDATE identities SET name = ?2, updated_at = ?3 WHERE id = ?1";
    static const char sql_unmark[] =
        "UPDATE identities SET is_persona = 0, updated_at = ?2 WHERE account_id = ?1 AND"
        " is_persona = 1 AND id != ?3";
    static const char sql_mark[] =
        "UPDATE identities SET is_persona = ?2, updated_at = ?3 WHERE id = ?1";
    if (set_name && name && strlen(name) > 200)
        return -EINVAL;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int64_t now = core_now_ms();
    int rc = store__acquire(st, &c);
    if (rc < 0)
        return rc;
    if ((rc = store__begin(c)) < 0)
        goto out;
    if ((rc = identity_owned(c, account_id, identity_id, "identity_update")) < 0)
        goto out;
    if (set_name) {
        if ((rc = store__prepare(c, sql_name, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, identity_id);
        store__bind_text(s, 2, name && *name ? name : NULL);
        sqlite3_bind_int64(s, 3, now);
        if ((rc = store__step(c, s, "identity_update")) < 0)
            goto out;
    }
    if (persona == 1) {
        if ((rc = store__prepare(c, sql_unmark, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, account_id);
        sqlite3_bind_int64(s, 2, now);
        sqlite3_bind_int64(s, 3, identity_id);
        if ((rc = store__step(c, s, "identity_update")) < 0)
            goto out;
    }
    if (persona == 0 || persona == 1) {
        if ((rc = store__prepare(c, sql_mark, &s)) < 0)
            goto out;
        sqlite3_bind_int64(s, 1, identity_id);
        sqlite3_bind_int(s, 2, persona);
        sqlite3_bind_int64(s, 3, now);
        if ((rc = store__step(c, s, "identity_update")) < 0)
            goto out;
    }
    rc = store__commit(c);
out:
    if (c)
        store__rollback(c);
    store__release(st, c);
    return rc;
}
