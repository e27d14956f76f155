/* store: everything persona keeps — accounts, devices, media items, their artifacts, the corpus
 * (FTS5), the persistent job queue — and the content-addressed blob files.
 *
 * This header is the storage interface. The embedded backend (SQLite in WAL mode with schema
 * migrations by user_version, blobs as files under <data_dir>/blobs named by SHA-256) is the one
 * implemented; a MongoDB backend would implement the same functions.
 *
 * Threads: a store_t is shared by every thread. Each call takes a database connection from an
 * internal pool and returns it before returning, so calls never block each other except on
 * SQLite's own write lock (busy timeout 10 s). Never call from the event-loop thread.
 *
 * Errors: 0 on success; -ENOENT when a row does not exist *or belongs to another account* (the
 * two are indistinguishable by design); -EEXIST for a taken unique name; CORE_ESQL for a database
 * failure (logged once, here); other negative errno for file errors.
 *
 * Ownership: out-structs are filled by the store and released by the caller with the matching
 * *_clear(); arrays from *_list() are released with the matching *_list_free() (an empty list
 * is a valid allocation with n 0; list_free is NULL-safe). Strings in structs passed *in* (for
 * example store_media_create's title) are borrowed for the call.
 *
 * Single process: a data directory is used by one process at a time (store_open takes an
 * exclusive lock on <data_dir>/persona.lock). That is what lets store_open treat every temp file
 * and every running job it finds as left behind by a process that died.
 *
 * Durability: SQLite runs with synchronous=FULL, so a function that returned 0 has its rows on
 * disk, like the blobs it refers to (see src/store/store.c for why not NORMAL).
 *
 * Blobs and rows: commit a blob (store_blob_commit / store_blob_put_file) first, then create the
 * row that references it (store_media_create*, store_artifact_put). Between the two, the blob is
 * protected from a concurrent delete of other items with the same content. If the row can never
 * be created (no such account or item, bad input), that call removes the blob again unless
 * something else references it; a blob committed and never referenced stays on disk. */
#ifndef PERSONA_STORE_H
#define PERSONA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;

/* Opens (creating if needed) <data_dir>/persona.db and <data_dir>/{blobs,tmp}, applies
 * migrations, removes stale temp files, and puts jobs that were running when the previous process
 * died back in the queue (with their items back to QUEUED). Returns 0 and *out, or a negative
 * code with *out NULL: a negative errno (-ENOTDIR, -EACCES ...) for an unusable data_dir,
 * -EBUSY when another open store holds the directory, CORE_ESQL for a database that cannot be
 * opened or migrated (not a database, or written by a newer persona). */
int store_open(const char *data_dir, store_t **out);
/* Closes every connection and frees the store; NULL-safe. No call may be running on it. */
void store_free(store_t **st);
const char *store_data_dir(const store_t *st);

/* ==== accounts ==== */
/* Creates an account. With only_if_none, fails with -EPERM unless there are no accounts yet
 * (checked in the same transaction, for signup policy "first"). -EEXIST if the name is taken. */
int store_account_create(store_t *st, const char *username, const char *password_hash,
                         bool only_if_none, int64_t *id_out);
/* Looks an account up by username: its id and its password hash (malloc'd, caller frees).
 * -ENOENT if there is none. */
int store_account_find(store_t *st, const char *username, int64_t *id_out, char **password_hash_out);
int store_account_count(store_t *st, int64_t *n_out);

/* ==== devices (a device token belongs to exactly one device) ==== */
typedef struct store_device {
    int64_t id;
    int64_t account_id;
    char name[128];
    char kind[16];          /* "mobile" or "desktop" */
    int64_t created_at;     /* ms since epoch */
    int64_t last_seen_at;   /* ms since epoch, 0 if never */
    bool revoked;
} store_device_t;

/* Creates a device with the SHA-256 of its token (the token itself is never stored). */
int store_device_create(store_t *st, int64_t account_id, const char *name, const char *kind,
                        const uint8_t token_hash[32], int64_t *id_out);
/* Finds the live (not revoked) device whose token hashes to token_hash; compares the stored hash
 * in constant time. -ENOENT if none. */
int store_device_by_token(store_t *st, const uint8_t token_hash[32], store_device_t *out);
/* Devices of the account, newest first, revoked ones included. */
int store_device_list(store_t *st, int64_t account_id, store_device_t **out, size_t *n_out);
void store_device_list_free(store_device_t **list);
/* Revokes the device (its token stops working). -ENOENT if not in this account. Revoking a
 * revoked device succeeds and keeps the first revocation time. */
int store_device_revoke(store_t *st, int64_t account_id, int64_t device_id);
/* Records use; cheap, best effort (at most one write per device per minute). */
int store_device_touch(store_t *st, int64_t device_id);

/* ==== media items ==== */
typedef enum store_media_status {
    STORE_MEDIA_QUEUED,     /* stored, waiting for media.process */
    STORE_MEDIA_PROCESSING,
    STORE_MEDIA_READY,
    STORE_MEDIA_FAILED,     /* error says why */
} store_media_status_t;
const char *store_media_status_name(store_media_status_t s);

typedef struct store_media {
    int64_t id;
    int64_t account_id;
    char kind[8];           /* video, audio, image, text */
    char sha256[65];        /* of the original */
    int64_t size;
    char *title;            /* may be NULL */
    char *content_type;     /* as the client sent it */
    store_media_status_t status;
    char *error;            /* NULL unless status is FAILED */
    char *probe_json;       /* JSON object text from the media module; NULL for text */
    int64_t created_at, updated_at;
} store_media_t;
void store_media_clear(store_media_t *m);

/* Inserts a media row for an original whose blob is already committed, and queues its
 * media.process job, in one transaction. The caller sets account_id, kind, sha256, size and
 * optionally title, content_type, probe_json; m->id, status, created_at and updated_at are set by
 * the store. -EINVAL for a bad kind/hash/size, -ENOENT for an account that does not exist. */
int store_media_create(store_t *st, store_media_t *m);
/* Inserts a text item (status READY) and its corpus passages in one transaction; no job is
 * queued. m as for store_media_create. Passages: the text's paragraphs (separated by blank
 * lines); a paragraph longer than about 600 bytes is cut at sentence ends (". ", "! ", "? ",
 * newline) into pieces of at most 600 bytes, never inside a UTF-8 sequence; pieces are trimmed
 * and whitespace-only ones skipped (a text of whitespace only has no passage). t_start = t_end
 * = 0. */
int store_media_create_text(store_t *st, store_media_t *m, const char *text, size_t text_len);
int store_media_get(store_t *st, int64_t account_id, int64_t media_id, store_media_t *out);
/* Newest first; items with id < before_id (0 = from the newest); at most limit (>= 1, else
 * -EINVAL). */
int store_media_list(store_t *st, int64_t account_id, int64_t before_id, int limit,
                     store_media_t **out, size_t *n_out);
void store_media_list_free(store_media_t **list, size_t n);
/* Deletes the item, its artifacts, its corpus entries and its jobs, then unlinks every blob file
 * no longer referenced by any item or artifact. -ENOENT if not in this account. */
int store_media_delete(store_t *st, int64_t account_id, int64_t media_id);
/* Sets status (and error for FAILED, else clears it). No account check: for the job runner, not
 * for requests. -ENOENT if there is no such item. */
int store_media_set_status(store_t *st, int64_t media_id, store_media_status_t status,
                           const char *error);

/* ==== artifacts: files derived from an item, unique by (media_id, name) ==== */
typedef struct store_artifact {
    int64_t media_id;
    char name[16];          /* audio, video, pcm, thumbnail */
    char sha256[65];
    int64_t size;
    char mime[64];
    char ext[8];            /* file extension without dot: m4a, mp4, webm, wav, jpg ... */
    char *info_json;        /* JSON object text (codec, duration ...) or NULL */
} store_artifact_t;
void store_artifact_clear(store_artifact_t *a);
/* Inserts or replaces the artifact named a->name of a->media_id (idempotent: a job that runs
 * again after a crash replaces, never duplicates). The blob must be committed. A replaced
 * artifact's old blob is removed when nothing references it any more. -ENOENT if the item does
 * not exist (deleted while its job ran). */
int store_artifact_put(store_t *st, const store_artifact_t *a);
int store_artifact_get(store_t *st, int64_t media_id, const char *name, store_artifact_t *out);
int store_artifact_list(store_t *st, int64_t media_id, store_artifact_t **out, size_t *n_out);
void store_artifact_list_free(store_artifact_t **list, size_t n);

/* ==== corpus (FTS5): the persona's own words, with their source ==== */
/* Adds one passage of item media_id; t_start/t_end are its time span in the item, in seconds
 * (0 for text). -ENOENT unless the item exists in this account. */
int store_corpus_add(store_t *st, int64_t account_id, int64_t media_id, double t_start,
                     double t_end, const char *text);
/* Number of corpus entries (passages) of the account (media_id 0) or of one item. */
int store_corpus_count(store_t *st, int64_t account_id, int64_t media_id, int64_t *n_out);

/* One passage found by store_corpus_search. */
typedef struct store_passage {
    int64_t media_id;
    char *title;            /* the item's title (may be NULL) */
    char kind[8];           /* the item's kind */
    double t_start, t_end;  /* seconds in the item (0 for text) */
    int64_t created_at;     /* the item's creation time, ms */
    char *text;
    double score;           /* bm25: lower is better, as FTS5 gives it */
} store_passage_t;
/* The account's most relevant passages for a question written by a person, best first, at
 * most limit. The question is never passed to FTS5 as query syntax: its words (letters and
 * digits, Unicode-aware, at most 32, stop words dropped unless nothing else is left) are each
 * quoted and OR-ed, so quotes, operators, parentheses, emoji or 10 kB of text never cause an
 * error. No words, or no match: 0 with *n_out = 0. -EINVAL for limit < 1 or a NULL question. */
int store_corpus_search(store_t *st, int64_t account_id, const char *question, int limit,
                        store_passage_t **out, size_t *n_out);
void store_passage_list_free(store_passage_t **list, size_t n);
/* The account's passages in insertion order, for exporting the corpus (model training): those
 * after the cursor after (0: from the first), at most limit (1..1000, else -EINVAL); *next_after
 * is the cursor for the next page (unchanged when *n_out is 0). score is 0. */
int store_corpus_list(store_t *st, int64_t account_id, int64_t after, int limit,
                      store_passage_t **out, size_t *n_out, int64_t *next_after);

/* ==== events: the per-account event log (design.md: WebSocket protocol) ==== */
typedef struct store_event {
    int64_t account_id;
    int64_t seq;            /* per account, strictly increasing, never reused (even after pruning) */
    char type[32];          /* answer.delta, answer.done, answer.failed, media.updated, ... */
    char *json;             /* the whole event as clients get it: {"seq":N,"type":"...",...} */
    int64_t created_at;
} store_event_t;
void store_event_clear(store_event_t *e);
/* Appends an event: takes the account's next seq in the same transaction, and stores the JSON
 * object {"seq":N,"type":type, ...the members of body_json...}. body_json must be a JSON object
 * text ("{}" or NULL for none); it is spliced as text, checked only for its braces, so it must
 * come from our own code. Fills *out (caller clears; out may be NULL). -EINVAL for a type that
 * is not 1..31 characters of [a-z.] or a body that is not {...}; -ENOENT for no such account. */
int store_event_append(store_t *st, int64_t account_id, const char *type, const char *body_json,
                       store_event_t *out);
/* The account's events with seq > after, oldest first, at most limit (1..1000, else -EINVAL). */
int store_event_list(store_t *st, int64_t account_id, int64_t after, int limit,
                     store_event_t **out, size_t *n_out);
void store_event_list_free(store_event_t **list, size_t n);
/* The account's newest seq (0 before its first event), from the account's counter: still the
 * newest after its events were pruned. -ENOENT for no such account. */
int store_event_last_seq(store_t *st, int64_t account_id, int64_t *seq_out);
/* Retention: deletes events older than max_age_ms (0: no age limit) and, per account, all but
 * the newest max_per_account (0: no count limit), in one transaction. *deleted_out (may be
 * NULL) gets the number removed. Seqs are never reused: the next event still gets last + 1.
 * -EINVAL for a negative limit. */
int store_event_prune(store_t *st, int64_t max_age_ms, int64_t max_per_account,
                      int64_t *deleted_out);

/* ==== questions ==== */
typedef enum store_question_status {
    STORE_QUESTION_QUEUED, STORE_QUESTION_ANSWERING, STORE_QUESTION_ANSWERED,
    STORE_QUESTION_FAILED,
} store_question_status_t;
const char *store_question_status_name(store_question_status_t s);

typedef struct store_question {
    int64_t id;
    int64_t account_id;
    int64_t device_id;      /* the device that asked */
    char *text;
    store_question_status_t status;
    char *answer;           /* NULL until answered */
    char *passages_json;    /* JSON array of the passages used, NULL until answered */
    char *timings_json;     /* JSON object of timings in ms, NULL until answered */
    char *error;            /* NULL unless FAILED */
    char *model;            /* the language model that answered; NULL for extractive answers */
    int64_t created_at, updated_at;
} store_question_t;
void store_question_clear(store_question_t *q);
/* Records a question and queues its question.answer job in one transaction; sets q->id,
 * status QUEUED and the times. q->account_id, device_id (0: none) and text are read. -EINVAL
 * for a NULL text; -ENOENT for no such account, or a device_id not of this account. */
int store_question_create(store_t *st, store_question_t *q);
int store_question_get(store_t *st, int64_t account_id, int64_t question_id,
                       store_question_t *out);
/* Newest first; ids < before_id (0 = from the newest); at most limit (1..200, else -EINVAL). */
int store_question_list(store_t *st, int64_t account_id, int64_t before_id, int limit,
                        store_question_t **out, size_t *n_out);
void store_question_list_free(store_question_t **list, size_t n);
/* Records the language model that answers the question (NULL: none, extractive). */
int store_question_set_model(store_t *st, int64_t question_id, const char *model);

/* ==== jobs: queued -> running -> done | failed; persistent ==== */
typedef enum store_job_state {
    STORE_JOB_QUEUED, STORE_JOB_RUNNING, STORE_JOB_DONE, STORE_JOB_FAILED, STORE_JOB_NSTATES
} store_job_state_t;
const char *store_job_state_name(store_job_state_t s);

typedef struct store_job {
    int64_t id;
    int64_t account_id;
    char kind[32];          /* "media.process", "question.answer" or "model.train" */
    int64_t media_id;       /* media.process: the item (0 otherwise) */
    int64_t question_id;    /* question.answer: the question (0 otherwise) */
    int attempts;           /* including this one */
    int retries;            /* times store_job_defer put it back (not counted in attempts) */
    char params[256];       /* JSON object text given when queued ("" for none) */
} store_job_t;
/* Claims the oldest queued job: marks it running and counts the attempt, and its item
 * PROCESSING (or its question ANSWERING). A job already tried max_attempts times (the process
 * died during each) is failed instead, with its item (or its question, FAILED with the reason,
 * and an answer.failed event {"question_id":N,"error":"..."} appended in the same transaction:
 * such events are not returned here; event readers find them in the log), and the next one is
 * looked at. -ENOENT when the queue is empty, -EINVAL for max_attempts < 1. */
int store_job_claim(store_t *st, int max_attempts, store_job_t *out);
/* Ends a running job in one transaction with its item: error NULL marks the job done and the
 * item READY; otherwise the job and the item FAILED with error as the reason. -ENOENT if the job
 * no longer exists (its item was deleted while it ran), -EINVAL if it is not running.
 * For a question.answer job, use store_question_finish instead (here: -EINVAL). */
int store_job_finish(store_t *st, const store_job_t *job, const char *error);
/* Ends a running question.answer job in one transaction with its question and its final event:
 * error NULL: the question ANSWERED with answer, passages_json and timings_json, the job done,
 * and the event (type "answer.done", body done_body_json) appended; otherwise the question and
 * the job FAILED with error (answer, passages and timings left NULL) and the event type
 * "answer.failed" (body done_body_json too). done_body_json NULL: the store writes
 * {"question_id":N,"text":answer} or {"question_id":N,"error":error}. The appended event is
 * returned in *event_out (caller clears; may be NULL). Claiming a question.answer job marks
 * its question ANSWERING. -EINVAL for answer and error both NULL, a body that is not {...}, a
 * job that is not running or not a question.answer job; -ENOENT for a job that does not
 * exist. */
int store_question_finish(store_t *st, const store_job_t *job, const char *answer,
                          const char *passages_json, const char *timings_json,
                          const char *error, const char *done_body_json,
                          store_event_t *event_out);
/* counts[state] for every state. */
int store_job_counts(store_t *st, int64_t counts[STORE_JOB_NSTATES]);
/* Puts a running job back in the queue, not to be claimed before delay_ms from now: for a job
 * that could not make progress (the text generation service is down, a training is still
 * running) and must not hold a worker thread while it waits. The attempt does not count
 * (attempts is decremented: it ended in order, the process did not die); retries is
 * incremented and reason kept as the job's last_error. Its question goes back to QUEUED.
 * -EINVAL if the job is not running; -ENOENT if it no longer exists. */
int store_job_defer(store_t *st, const store_job_t *job, int64_t delay_ms, const char *reason);
/* The earliest time (ms since the epoch) a queued job may be claimed: 0 when no job is queued,
 * at most now when one is claimable now. For the workers' sleep. */
int store_job_next_run(store_t *st, int64_t *at_ms_out);

/* ==== models: each account's trained text generation model (migration 3) ==== */
typedef enum store_model_status {
    STORE_MODEL_NONE, /* never trained (no row) */
    STORE_MODEL_QUEUED, STORE_MODEL_TRAINING, STORE_MODEL_READY, STORE_MODEL_FAILED,
} store_model_status_t;
const char *store_model_status_name(store_model_status_t s);

typedef struct store_model {
    int64_t account_id;
    store_model_status_t status; /* of the latest training */
    char model[128];        /* the model in use: the last training that succeeded ("" if none) */
    int64_t job_id;         /* the latest model.train job */
    char base_model[128];
    char remote_file[64];   /* the uploaded training file, "" until uploaded */
    char remote_job[64];    /* the service's fine-tuning job, "" until created */
    int64_t step, steps;
    bool has_train_loss, has_eval_loss;
    double train_loss, eval_loss;
    char error[512];        /* "" unless FAILED */
    int64_t created_at, updated_at;
} store_model_t;
/* Queues a model.train job for the account (params: a JSON object text from our own code, at
 * most 255 bytes) and resets the account's model row to QUEUED (keeping the model in use), in
 * one transaction. -EBUSY with *job_id_out the running one when a model.train job of the account
 * is queued or running; -ENOENT for no such account; -EINVAL for bad params. */
int store_model_train_create(store_t *st, int64_t account_id, const char *params_json,
                             int64_t *job_id_out);
/* The account's model row. A job given up on (the process died during each attempt) shows as
 * FAILED with the job's reason. -ENOENT if the account never trained. */
int store_model_get(store_t *st, int64_t account_id, store_model_t *out);
/* Records the progress of the account's training (status TRAINING, remote ids, step, steps,
 * losses) from m, if job_id is still the account's latest training. -ENOENT otherwise. */
int store_model_progress(store_t *st, int64_t job_id, const store_model_t *m);
/* Ends a running model.train job in one transaction with the account's model row and its event:
 * model non-NULL: the row READY with model in use, the job done and a model.ready event
 * {"model":model} appended; else the row FAILED with error, the job failed, and model.failed
 * {"error":error}. The event goes to *event_out (caller clears; may be NULL). -EINVAL if the job
 * is not a running model.train job; -ENOENT if it does not exist. */
int store_model_train_finish(store_t *st, const store_job_t *job, const char *model,
                             const char *error, store_event_t *event_out);

/* ==== blobs: content-addressed files ==== */
typedef struct store_blob_writer store_blob_writer_t;
/* Starts a new blob: a temp file under <data_dir>/tmp (mode 0600). *out is freed by
 * store_blob_commit or store_blob_abort. */
int store_blob_begin(store_t *st, store_blob_writer_t **out);
/* Appends n bytes: hashes them and writes them. Returns 0 or -errno; after a failure every later
 * call but abort fails the same way. -EINVAL after store_blob_finish. */
int store_blob_write(store_blob_writer_t *w, const void *p, size_t n);
/* Ends writing: fsyncs the temp file and computes the hash. The file is not yet visible.
 * Calling it again returns the same hash. */
int store_blob_finish(store_blob_writer_t *w, char sha256_out[65], int64_t *size_out);
/* Path of the temp file, for probing before commit. Borrowed from w. */
const char *store_blob_temp_path(const store_blob_writer_t *w);
/* Moves a finished blob into place (atomic rename + directory fsync; if the same content exists
 * already the temp file is removed) and frees the writer. Finishes it first if needed. Frees the
 * writer (and removes the temp file) on failure too: *w is NULL afterwards either way. */
int store_blob_commit(store_blob_writer_t **w);
/* Removes the temp file and frees the writer; NULL-safe. */
void store_blob_abort(store_blob_writer_t **w);
/* Hashes an existing file under <data_dir>/tmp (for example one the media module wrote), fsyncs
 * it and moves it into the blob store (or removes it when that content exists already). -EINVAL
 * for a path that is not directly in <data_dir>/tmp (as from store_temp_path); on failure the
 * file is left where it is, for the caller to remove. */
int store_blob_put_file(store_t *st, const char *tmp_path, char sha256_out[65], int64_t *size_out);
/* Path of the blob file with this hash into out. -ENOENT if it does not exist. */
int store_blob_path(const store_t *st, const char *sha256, char *out, size_t cap);
/* A fresh unique path under <data_dir>/tmp ending in suffix (e.g. ".m4a"; NULL for none):
 * pid, a counter and random bits. malloc'd; nothing is created. Files there are deleted by the
 * next store_open. */
char *store_temp_path(store_t *st, const char *suffix);

/* ==== transcripts: the recognized (or corrected) speech of an audio/video item ==== */
typedef struct store_transcript {
    int64_t media_id;
    char *json;             /* {"segments":[...]} as docs/api.md describes it */
    bool corrected;         /* written by a person (PUT), not by recognition */
    int64_t created_at, updated_at;
} store_transcript_t;
void store_transcript_clear(store_transcript_t *t);
/* One corpus passage of a transcript: a segment's text and time span in the item (seconds). */
typedef struct store_transcript_passage {
    const char *text;       /* borrowed; NULL or "" is skipped */
    double t_start, t_end;
} store_transcript_passage_t;
/* Stores the item's transcript (replacing an earlier one) and replaces all of the item's corpus
 * passages with passages[0..n), in one transaction. The JSON text is stored as given (the caller
 * validated it). Returns 0, -ENOENT unless the item exists in this account, -EINVAL for NULL
 * json, CORE_ESQL. */
int store_transcript_put(store_t *st, int64_t account_id, int64_t media_id, const char *json,
                         bool corrected, const store_transcript_passage_t *passages, size_t n);
/* The item's transcript into *out (clear with store_transcript_clear). -ENOENT when the item is
 * not in this account or has no transcript. */
int store_transcript_get(store_t *st, int64_t account_id, int64_t media_id,
                         store_transcript_t *out);

/* ==== voices: each account's speech synthesis settings (migration 5) ==== */
typedef struct store_voice {
    char voice[64];         /* espeak-ng voice name, e.g. "en-us" */
    int rate, pitch, volume;
    int64_t updated_at;     /* 0 when the account has no row (defaults) */
} store_voice_t;
/* The account's settings into *out. -ENOENT when it has none (the caller uses its defaults). */
int store_voice_get(store_t *st, int64_t account_id, store_voice_t *out);
/* Stores (inserts or replaces) the account's settings; the caller validated them. Returns 0,
 * -ENOENT for no such account, -EINVAL for an empty or too long voice, CORE_ESQL. */
int store_voice_put(store_t *st, int64_t account_id, const store_voice_t *v);

/* ==== faces: the faces found in an item, their tracks, and the account's identities
 * (migration 6; see src/store/faces.c) ====
 * A face is one detection in one picture (an image, or a video frame at ts_ms). Faces of
 * consecutive frames that are the same person make a track (the jobs module links them); each
 * track belongs to one identity: a person of the account's gallery, found by clustering track
 * descriptors (store_faces_replace) and named by the user. Float vectors are stored as float32
 * BLOBs in the machine's byte order (little-endian on every machine persona runs on). */
enum {
    STORE_FACE_LANDMARKS = 68, /* points (x, y) */
    STORE_FACE_DIM = 128,      /* descriptor */
    STORE_FACE_EXPRESSIONS = 7 /* neutral happy sad angry fearful disgusted surprised */
};

typedef struct store_face {
    int64_t id;             /* set by the store */
    int64_t media_id;       /* set by the store on reads */
    int64_t ts_ms;          /* time in the item; 0 for an image */
    float x, y, w, h;       /* box, image pixels */
    float score;
    bool has_landmarks, has_descriptor, has_attributes;
    float landmarks[STORE_FACE_LANDMARKS * 2];
    float descriptor[STORE_FACE_DIM];
    float age;
    bool male;
    float gender_probability;
    float expressions[STORE_FACE_EXPRESSIONS];
    int track;              /* store_faces_replace: index into its tracks array (in) */
    int64_t track_id, identity_id; /* on reads (0: none) */
} store_face_t;

typedef struct store_face_track {
    int64_t id, media_id, identity_id; /* set by the store */
    int64_t start_ms, end_ms;          /* first and last face's ts_ms */
    int face_count;
    float descriptor[STORE_FACE_DIM];  /* mean of its faces' descriptors */
} store_face_track_t;

/* What the faces step of media.process did for one item. */
typedef struct store_faces_status {
    char status[12];        /* "done", "failed" or "skipped" */
    char *error;            /* why it failed or was skipped; NULL when done */
    char detector[8];       /* tiny | ssd */
    int frames, faces, tracks;
    int64_t ms;             /* processing time */
    int64_t updated_at;
} store_faces_status_t;
void store_faces_status_clear(store_faces_status_t *s);

/* Replaces every face and track of the item with faces[0..n_faces) and tracks[0..n_tracks)
 * (faces[i].track indexes tracks; a track without faces is refused) and assigns each new track
 * to an identity, all in one transaction: the nearest identity centroid (mean descriptor of its
 * tracks, faces weighted equally) closer than threshold (Euclidean), never one that already has a
 * track of this item overlapping in time (two faces on screen at once are two people); otherwise
 * a new identity. Centroids, face counts and representative faces (best score) of every identity
 * touched are brought up to date; unnamed identities left without faces are removed. The item's
 * faces status becomes "done" with st_info's detector/frames/ms (may be NULL). Returns 0,
 * -ENOENT unless the item is in this account, -EINVAL for bad arrays. track_identity_out (may be
 * NULL) gets each track's identity id. */
int store_faces_replace(store_t *st, int64_t account_id, int64_t media_id,
                        const store_face_t *faces, size_t n_faces,
                        const store_face_track_t *tracks, size_t n_tracks, float threshold,
                        const store_faces_status_t *info, int64_t *track_identity_out);
/* Records that the faces step failed or was skipped (status "failed" / "skipped", error the
 * reason), keeping whatever faces the item had. -ENOENT unless the item is in this account. */
int store_faces_set_status(store_t *st, int64_t account_id, int64_t media_id, const char *status,
                           const char *error);
/* -ENOENT when the item is not in this account or has no faces status yet. */
int store_faces_status_get(store_t *st, int64_t account_id, int64_t media_id,
                           store_faces_status_t *out);
/* The item's faces in time order (then best score first) and its tracks (by start); either out
 * pair may be NULL. -ENOENT unless the item is in this account. Free with free(). */
int store_faces_list_media(store_t *st, int64_t account_id, int64_t media_id,
                           store_face_t **faces, size_t *n_faces, store_face_track_t **tracks,
                           size_t *n_tracks);
/* The identity's faces, newest id first: ids < before_id (0: from the newest), at most limit
 * (1..1000, else -EINVAL). -ENOENT unless the identity is in this account. Free with free(). */
int store_faces_list_identity(store_t *st, int64_t account_id, int64_t identity_id,
                              int64_t before_id, int limit, store_face_t **out, size_t *n_out);
/* Calls fn for each face of the account that has a descriptor (landmarks and attributes are not
 * read; face is borrowed for the call); fn returns non-zero to stop. Returns 0 or an error. */
typedef int (*store_face_fn)(void *ud, const store_face_t *face);
int store_faces_scan(store_t *st, int64_t account_id, store_face_fn fn, void *ud);

typedef struct store_identity {
    int64_t id;
    char *name;             /* NULL until named */
    bool is_persona;
    int face_count, media_count;
    bool has_centroid;
    float centroid[STORE_FACE_DIM];
    int64_t rep_face_id, rep_media_id, rep_ts_ms; /* representative face; 0 when none */
    float rep_x, rep_y, rep_w, rep_h;
    int64_t created_at, updated_at;
} store_identity_t;
void store_identity_clear(store_identity_t *i);
/* The account's identities that have faces or a name, persona first, then most faces. */
int store_identity_list(store_t *st, int64_t account_id, store_identity_t **out, size_t *n_out);
void store_identity_list_free(store_identity_t **list, size_t n);
int store_identity_get(store_t *st, int64_t account_id, int64_t identity_id,
                       store_identity_t *out);
/* Names the identity (set_name: name, NULL clears it) and/or marks it the persona (persona 1:
 * this one and no other of the account, 0: not it, -1: unchanged), in one transaction. -ENOENT
 * unless the identity is in this account; -EINVAL for a name over 200 bytes. */
int store_identity_update(store_t *st, int64_t account_id, int64_t identity_id, bool set_name,
                          const char *name, int persona);
/* Merges identity `from` into `into` (the clustering split one person in two): every face and
 * track of `from` becomes `into`'s, `into` keeps its name (or takes `from`'s when it has none)
 * and becomes the persona if `from` was; its centroid, count and representative face are
 * recomputed; `from` is deleted. One transaction. -ENOENT unless both are in this account;
 * -EINVAL when they are the same. */
int store_identity_merge(store_t *st, int64_t account_id, int64_t from, int64_t into);

#endif
