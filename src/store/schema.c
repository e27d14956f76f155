/* schema.c: the database schema as an ordered list of migrations, and applying them.
 *
 * PRAGMA user_version is the number of migrations applied. Migration i (0-based) takes the schema
 * from version i to i+1; each runs in its own IMMEDIATE transaction together with the
 * user_version bump, so a crash leaves the database at one version or the next, never between.
 * Never edit a migration that has shipped: append a new one.
 *
 * Invariants the schema keeps:
 *   1. Every user resource row carries account_id (media, devices, corpus, jobs, events,
 *      questions, faces, face_tracks, identities); every query that reads one for a request
 *      filters by it.
 *   2. Times are INTEGER milliseconds since the epoch; 0 or NULL means "never".
 *   3. Status and state columns hold the names of store_media_status_t / store_job_state_t /
 *      store_question_status_t (readable with the sqlite3 shell); CHECK constraints reject
 *      anything else.
 *   4. A blob file exists for every sha256 in media and artifacts (blob.c keeps it so). */
#include <errno.h>
#include <stdio.h>

#include "store/internal.h"

static const char *const migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE accounts("
    "  id INTEGER PRIMARY KEY,"
    "  username TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  password_hash TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"

    "CREATE TABLE devices("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  name TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('mobile','desktop')),"
    "  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),"
    "  created_at INTEGER NOT NULL,"
    "  last_seen_at INTEGER NOT NULL DEFAULT 0,"
    "  revoked_at INTEGER);"
    "CREATE INDEX devices_by_account ON devices(account_id, id);"

    "CREATE TABLE media("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  kind TEXT NOT NULL CHECK (kind IN ('video','audio','image','text')),"
    "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),"
    "  size INTEGER NOT NULL CHECK (size >= 0),"
    "  title TEXT,"
    "  content_type TEXT,"
    "  status TEXT NOT NULL CHECK (status IN ('queued','processing','ready','failed')),"
    "  error TEXT,"
    "  probe_json TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX media_by_account ON media(account_id, id);"
    "CREATE INDEX media_by_sha256 ON media(sha256);"

    "CREATE TABLE artifacts("
    "  media_id INTEGER NOT NULL REFERENCES media(id),"
    "  name TEXT NOT NULL,"
    "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),"
    "  size INTEGER NOT NULL CHECK (size >= 0),"
    "  mime TEXT NOT NULL,"
    "  ext TEXT NOT NULL,"
    "  info_json TEXT,"
    "  PRIMARY KEY (media_id, name)) WITHOUT ROWID;"
    "CREATE INDEX artifacts_by_sha256 ON artifacts(sha256);"

    /* The corpus: one row per passage; account_id, media_id and the passage's time span in its
     * item (seconds; 0 for text) are stored but not indexed for full-text search. */
    "CREATE VIRTUAL TABLE corpus USING fts5("
    "  text, account_id UNINDEXED, media_id UNINDEXED, t_start UNINDEXED, t_end UNINDEXED,"
    "  tokenize = 'porter unicode61');"

    "CREATE TABLE jobs("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  kind TEXT NOT NULL,"
    "  media_id INTEGER REFERENCES media(id),"
    "  state TEXT NOT NULL CHECK (state IN ('queued','running','done','failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  lease_until INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    /* Claiming reads the oldest queued job: (state, id) makes that one index probe. */
    "CREATE INDEX jobs_claim ON jobs(state, id);"
    "CREATE INDEX jobs_by_media ON jobs(media_id);",

    /* 2: the event log, questions, question.answer jobs */
    /* The account's last event seq: events take the next one in the transaction that inserts
     * them, so a seq is never reused, even after its event was pruned. */
    "ALTER TABLE accounts ADD COLUMN last_event_seq INTEGER NOT NULL DEFAULT 0;"

    "CREATE TABLE events("
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  seq INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  json TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (account_id, seq)) WITHOUT ROWID;"
    "CREATE INDEX events_by_time ON events(created_at);"

    "CREATE TABLE questions("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  device_id INTEGER REFERENCES devices(id),"
    "  text TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('queued','answering','answered','failed')),"
    "  answer TEXT,"
    "  passages_json TEXT,"
    "  timings_json TEXT,"
    "  error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX questions_by_account ON questions(account_id, id);"

    "ALTER TABLE jobs ADD COLUMN question_id INTEGER REFERENCES questions(id);",

    /* 3: text generation — deferred job retries, job parameters, the model that answered a
     * question, and each account's trained model */
    /* A job deferred by store_job_defer (the text generation service was down) is queued again
     * but not claimed before run_after; retries counts its deferrals (not crashes: attempts). */
    "ALTER TABLE jobs ADD COLUMN run_after INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN params TEXT;"
    "ALTER TABLE questions ADD COLUMN model TEXT;"
    /* One row per account that ever trained: model is the model in use (the last one that
     * succeeded), status and the progress columns are those of the latest training. */
    "CREATE TABLE models("
    "  account_id INTEGER PRIMARY KEY REFERENCES accounts(id),"
    "  status TEXT NOT NULL CHECK (status IN ('queued','training','ready','failed')),"
    "  model TEXT,"
    "  job_id INTEGER REFERENCES jobs(id),"
    "  base_model TEXT,"
    "  remote_file TEXT,"
    "  remote_job TEXT,"
    "  step INTEGER NOT NULL DEFAULT 0,"
    "  steps INTEGER NOT NULL DEFAULT 0,"
    "  train_loss REAL,"
    "  eval_loss REAL,"
    "  error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);",

    /* 4: speech recognition — one transcript per media item (segments and words with times and
     * confidences as JSON; corrected once the user replaced it with PUT), whose segments are
     * also the item's corpus passages */
    "CREATE TABLE transcripts("
    "  media_id INTEGER PRIMARY KEY REFERENCES media(id) ON DELETE CASCADE,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  json TEXT NOT NULL,"
    "  corrected INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX transcripts_by_account ON transcripts(account_id, media_id);",

    /* 5: speech synthesis — each account's voice for answers (espeak-ng voice name, words per
     * minute, pitch 0-100, volume 0-200); an account without a row uses the defaults */
    "CREATE TABLE voices("
    "  account_id INTEGER PRIMARY KEY REFERENCES accounts(id),"
    "  voice TEXT NOT NULL,"
    "  rate INTEGER NOT NULL,"
    "  pitch INTEGER NOT NULL,"
    "  volume INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);",

    /* 6: faces — every face found in an item (box, landmarks and descriptor as float32 BLOBs,
     * attributes), faces of consecutive frames linked into tracks, tracks grouped into the
     * account's identities (at most one of them the persona), and what the faces step did per
     * item. Faces and tracks go with their item (ON DELETE CASCADE); identities.face_count is
     * kept by triggers, so a cascade keeps it right too. */
    "CREATE TABLE identities("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  name TEXT,"
    "  is_persona INTEGER NOT NULL DEFAULT 0 CHECK (is_persona IN (0, 1)),"
    "  face_count INTEGER NOT NULL DEFAULT 0,"
    "  centroid BLOB CHECK (centroid IS NULL OR length(centroid) = 512),"
    "  rep_face_id INTEGER REFERENCES faces(id) ON DELETE SET NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX identities_by_account ON identities(account_id, id);"
    "CREATE UNIQUE INDEX identities_one_persona ON identities(account_id) WHERE is_persona = 1;"
    "CREATE INDEX identities_by_rep ON identities(rep_face_id);"

    "CREATE TABLE face_tracks("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,"
    "  start_ms INTEGER NOT NULL,"
    "  end_ms INTEGER NOT NULL,"
    "  face_count INTEGER NOT NULL CHECK (face_count > 0),"
    "  descriptor BLOB NOT NULL CHECK (length(descriptor) = 512),"
    "  identity_id INTEGER REFERENCES identities(id));"
    "CREATE INDEX face_tracks_by_media ON face_tracks(media_id, start_ms);"
    "CREATE INDEX face_tracks_by_account ON face_tracks(account_id);"
    "CREATE INDEX face_tracks_by_identity ON face_tracks(identity_id);"

    "CREATE TABLE faces("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,"
    "  ts_ms INTEGER NOT NULL,"
    "  x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,"
    "  score REAL NOT NULL,"
    "  landmarks BLOB CHECK (landmarks IS NULL OR length(landmarks) = 544),"
    "  descriptor BLOB CHECK (descriptor IS NULL OR length(descriptor) = 512),"
    "  age REAL,"
    "  gender TEXT CHECK (gender IS NULL OR gender IN ('male', 'female')),"
    "  gender_probability REAL,"
    "  expressions BLOB CHECK (expressions IS NULL OR length(expressions) = 28),"
    "  track_id INTEGER REFERENCES face_tracks(id) ON DELETE CASCADE,"
    "  identity_id INTEGER REFERENCES identities(id));"
    "CREATE INDEX faces_by_media ON faces(media_id, ts_ms);"
    "CREATE INDEX faces_by_account ON faces(account_id, id);"
    "CREATE INDEX faces_by_identity ON faces(identity_id, id);"
    "CREATE INDEX faces_by_track ON faces(track_id);"
    "CREATE TRIGGER faces_count_insert AFTER INSERT ON faces WHEN NEW.identity_id IS NOT NULL"
    "  BEGIN UPDATE identities SET face_count = face_count + 1 WHERE id = NEW.identity_id; END;"
    "CREATE TRIGGER faces_count_delete AFTER DELETE ON faces WHEN OLD.identity_id IS NOT NULL"
    "  BEGIN UPDATE identities SET face_count = face_count - 1 WHERE id = OLD.identity_id; END;"

    "CREATE TABLE media_faces("
    "  media_id INTEGER PRIMARY KEY REFERENCES media(id) ON DELETE CASCADE,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  status TEXT NOT NULL CHECK (status IN ('done', 'failed', 'skipped')),"
    "  error TEXT,"
    "  detector TEXT,"
    "  frames INTEGER NOT NULL DEFAULT 0,"
    "  faces INTEGER NOT NULL DEFAULT 0,"
    "  tracks INTEGER NOT NULL DEFAULT 0,"
    "  ms INTEGER NOT NULL DEFAULT 0,"
    "  updated_at INTEGER NOT NULL);",
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static int user_version(store_conn_t *c, int *out)
{
    static const char sql[] = "PRAGMA user_version";
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        return rc;
    rc = store__step(c, s, "user_version");
    if (rc == 1) {
        *out = sqlite3_column_int(s, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = store__sql_error(c, SQLITE_ERROR, "user_version");
    }
    sqlite3_reset(s);
    return rc;
}

int store__migrate(store_conn_t *c)
{
    int rc, version;
    if ((rc = user_version(c, &version)) < 0)
        return rc;
    if (version > NMIGRATIONS) {
        core_log(CORE_LOG_ERROR, "store.migrate",
                 "msg=\"database is newer than this program\" version=%d known=%d", version,
                 NMIGRATIONS);
        return CORE_ESQL;
    }
    while (version < NMIGRATIONS) {
        if ((rc = store__begin(c)) < 0)
            return rc;
        /* Read again under the write lock: the version outside it may be stale. */
        if ((rc = user_version(c, &version)) < 0)
            goto fail;
        if (version >= NMIGRATIONS)
            return store__commit(c);
        if ((rc = store__exec(c, migrations[version], "migrate")) < 0)
            goto fail;
        char bump[48];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%d", version + 1);
        if ((rc = store__exec(c, bump, "migrate")) < 0)
            goto fail;
        if ((rc = store__commit(c)) < 0)
            return rc;
        core_log(CORE_LOG_INFO, "store.migrate", "version=%d", version + 1);
        version++;
    }
    return 0;
fail:
    store__rollback(c);
    return rc;
}
