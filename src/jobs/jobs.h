/* jobs: the worker pool that runs the persistent job queue kept by the store. Each worker claims
 * the oldest queued job, runs it, and ends it in one transaction with its item. A job that was
 * running when the process died is queued again by store_open and runs again here: job bodies
 * are idempotent (artifacts are replaced, never added twice), so every job completes exactly once
 * in effect.
 *
 * Threads: jobs_start starts its own threads; jobs_wake and jobs_stop may be called from any
 * thread (jobs_wake never blocks, so the event loop may call it). */
#ifndef PERSONA_JOBS_H
#define PERSONA_JOBS_H

#include "asr/asr.h"
#include "face/face.h"
#include "oai/oai.h"
#include "store/store.h"

typedef struct jobs jobs_t;

/* ==== faces (src/jobs/faces.c): the face engine of the process, shared by media.process and
 * the /v1/faces requests ==== */
typedef struct jobs_faces jobs_faces_t;
typedef struct jobs_faces_config {
    const char *models_dir;     /* the face-api model folder (borrowed for the open call) */
    face_detector_t detector;   /* media.process's detector */
    double frame_rate;          /* video frames per second analyzed */
    int threads;                /* threads of each context */
    int contexts;               /* contexts (analyses at once), >= 1 */
    float identity_threshold;   /* see store_faces_replace */
    long long max_pixels;       /* pictures and frames over this are refused / scaled down */
    int max_frames;             /* video frames analyzed per item */
    int max_faces;              /* faces kept per picture or frame */
} jobs_faces_config_t;
/* Tracks link faces of consecutive sampled frames when their boxes overlap this much (IoU) and
 * their descriptors are closer than JOBS_FACES_TRACK_DISTANCE; a track survives one frame
 * without its face. */
#define JOBS_FACES_TRACK_IOU 0.3f
#define JOBS_FACES_TRACK_DISTANCE 0.6f
#define JOBS_FACES_TRACK_GAP 2

/* Loads the engine from cfg->models_dir. A missing or damaged model folder is not an error
 * here: the object is made without an engine, the reason is logged once as a warning and kept
 * (jobs_faces_unavailable), items are processed without faces and requests answer 503. Returns
 * 0 with *out (jobs_faces_free), or -ENOMEM. */
int jobs_faces_open(const jobs_faces_config_t *cfg, jobs_faces_t **out);
void jobs_faces_free(jobs_faces_t **f); /* NULL-safe; no context may be taken */
/* Asks running faces steps to stop at their next frame (personad is stopping): they return
 * -ECANCELED without recording anything, and media.process leaves its job running, to run
 * again after the restart. Any thread; NULL-safe. */
void jobs_faces_stop(jobs_faces_t *f);
/* NULL when the engine is loaded; else why not (borrowed from f). */
const char *jobs_faces_unavailable(const jobs_faces_t *f);
const jobs_faces_config_t *jobs_faces_config(const jobs_faces_t *f);
/* Takes a working context, waiting while all cfg->contexts are in use (made on first use).
 * Returns 0, -ENODEV without an engine, or -ENOMEM. Give it back with jobs_faces_give. */
int jobs_faces_take(jobs_faces_t *f, face_ctx_t **out);
void jobs_faces_give(jobs_faces_t *f, face_ctx_t *ctx);

/* The faces step of media.process for an image (kind "image": the picture at path) or a video
 * (frames of the file at path sampled at cfg->frame_rate): analyze, link into tracks, store with
 * identities (store_faces_replace). Never fails the item: a failure, or no engine, is recorded
 * as the item's faces status with the reason (store_faces_set_status). Returns 0, CORE_ESQL
 * when not even that could be recorded, or -ECANCELED after jobs_faces_stop. f may be NULL
 * (faces not configured: "skipped"). */
int jobs_faces_process(store_t *st, jobs_faces_t *f, int64_t account_id, int64_t media_id,
                       const char *kind, const char *path);

/* One sampled frame's faces, as the tracker sees them. */
typedef struct jobs_faces_frame {
    int64_t ts_ms;
    const face_t *faces;
    int n;
} jobs_faces_frame_t;
/* Links the faces of frames[0..n_frames) (in time order, consecutive samples) into tracks, by
 * the rule above: *track_of gets, for face j of frame i (flattened in order), its track index;
 * *tracks the tracks (start, end, count, mean descriptor). Both malloc'd. Faces without a
 * descriptor each make a track of their own. Exposed for tests. */
int jobs_faces_link(const jobs_faces_frame_t *frames, size_t n_frames, int **track_of,
                    store_face_track_t **tracks, size_t *n_tracks);

/* Called on a worker thread after an event was committed to the log (the event is borrowed for
 * the call). The server uses it to push the event to connected clients. */
typedef void (*jobs_event_fn)(void *ud, const store_event_t *ev);

typedef struct jobs_config {
    int workers;        /* threads, >= 1 */
    int max_attempts;   /* see store_job_claim */
    int thumbnail_size; /* longer side, pixels */
    int asr_threads;    /* speech recognition threads per transcribed item (0: 2) */
    jobs_faces_t *faces; /* the face engine (borrowed; NULL: items get no faces) */
    const char *data_dir; /* <data_dir>/lm/<account>/: an account's language model
                             (NULL: the general model only); borrowed until jobs_stop */
    jobs_event_fn on_event; /* may be NULL */
    void *event_ud;

    /* Text generation (docs/config.md). textgen_url NULL or "": extractive answers only, and
     * model.train jobs fail. Strings are borrowed until jobs_stop. */
    const char *textgen_url;
    const char *textgen_api_key;
    const char *textgen_model;      /* answers with this until the account has a trained model;
                                       NULL or "": extractive until trained */
    const char *textgen_base_model; /* what model.train starts from ("scratch-tiny") */
    int textgen_train_steps;        /* model.train's default steps */
    int textgen_timeout_s;          /* one request to the service */
    int textgen_fallback_s;         /* unanswered this long after asking because the service is
                                       down: answered extractively with a note */
    int textgen_retry_min_ms;       /* backoff of a deferred job: doubles from min to max */
    int textgen_retry_max_ms;
    int textgen_max_tokens;         /* the longest generated answer, tokens */
    /* Made by jobs_start from textgen_url (NULL without one); jobs_run_* read it. A test that
     * calls jobs_run_* directly makes it with oai_client_new. */
    oai_client_t *textgen;
} jobs_config_t;

/* The note that ends an extractive answer given because the text generation service was down
 * past textgen_fallback_s, and the one for a service that refused to answer (4xx). */
#define JOBS_NOTE_UNAVAILABLE \
    "(The text generation service was unavailable; this answer quotes your own words.)"
#define JOBS_NOTE_REFUSED \
    "(The text generation service could not answer; this answer quotes your own words.)"

/* Starts the workers over st (borrowed; must outlive the jobs). Returns NULL on failure. */
jobs_t *jobs_start(store_t *st, const jobs_config_t *cfg);
/* Tells idle workers that a job was queued. */
void jobs_wake(jobs_t *j);
/* Lets running jobs finish, joins the workers, frees; NULL-safe. */
void jobs_stop(jobs_t **j);

/* Runs one claimed media.process job to its end (store_job_finish included). Exposed for tests.
 * Returns 0 when the job was ended (done or failed), or a negative code if it could not even be
 * recorded. */
int jobs_run_media_process(store_t *st, const store_job_t *job, const jobs_config_t *cfg);

/* Transcribes the 16 kHz mono WAV at pcm_path (the item's "pcm" artifact) with the process-wide
 * speech model (loaded on first use, kept until jobs_asr_release), or the account's own language
 * model when <data_dir>/lm/<account>/ holds lm.bin (+ dict, from asr_lm_build) or lm.arpa
 * (+ lm.dict) (falling back to the general model, logged, when it does not load), and stores the transcript and its corpus passages
 * (store_transcript_put). No speech gives an empty transcript. Returns 0; on failure a negative
 * code with the reason in err (CORE_EBADMEDIA for an unreadable track, CORE_ELIMIT for one over
 * 3 hours). */
int jobs_transcribe(store_t *st, const jobs_config_t *cfg, int64_t account_id, int64_t media_id,
                    const char *pcm_path, char *err, size_t errcap);
/* A transcript as the JSON text GET /v1/media/{id}/transcript answers (malloc'd; free()). */
char *jobs_transcript_json(const asr_transcript_t *t);
/* Stores t as the item's transcript (corrected: written by a person) and its segments as the
 * item's corpus passages, replacing earlier ones. Returns as store_transcript_put. */
int jobs_transcript_store(store_t *st, int64_t account_id, int64_t media_id,
                          const asr_transcript_t *t, bool corrected);
/* Frees the process-wide speech model (after the last job); NULL-safe to call when never loaded. */
void jobs_asr_release(void);
/* Brings the account's personal language model (<data_dir>/lm/<account_id>/, asr_lm_build) up
 * to date with its text items and corrected transcripts; rebuilt only when those changed, never
 * made for an account that has written nothing. 0 or a negative code (the caller goes on with
 * whatever model there is). See src/jobs/account_lm.c. */
int jobs_account_lm_refresh(store_t *st, const char *data_dir, int64_t account_id);

/* Runs one claimed question.answer job: retrieves the passages, composes the answer, emits
 * answer.delta events as text becomes available and answer.done (or answer.failed) with the
 * question's end, in one transaction. With a text generation service and a model, the answer is
 * generated from the passages and streamed; while the service is down the job is deferred
 * (store_job_defer, backoff) until textgen_fallback_s after the question, then answered
 * extractively with JOBS_NOTE_UNAVAILABLE. Exposed for tests. */
int jobs_run_question_answer(store_t *st, const store_job_t *job, const jobs_config_t *cfg);

/* Runs one step of a claimed model.train job (see src/jobs/model_train.c): exports the
 * account's corpus, uploads it, starts a fine-tuning job, or polls it; defers itself while the
 * training runs, and ends with model.ready or model.failed. Exposed for tests. */
int jobs_run_model_train(store_t *st, const store_job_t *job, const jobs_config_t *cfg);

/* The account's corpus as JSONL training data (the format is in docs/api.md): one chat example
 * per passage. *out is malloc'd (*len bytes); *examples gets the number of lines. At most
 * JOBS_TRAIN_MAX_BYTES: the passages after that are left out. */
#define JOBS_TRAIN_MAX_BYTES (8u << 20)
int jobs_export_corpus(store_t *st, int64_t account_id, char **out, size_t *len, int *examples);

/* Internal to the job files: the delay before the retry after `retries` deferrals while the
 * service is down — textgen_retry_min_ms doubling up to textgen_retry_max_ms. */
int64_t jobs__backoff_ms(const jobs_config_t *cfg, int retries);
/* Internal: the system message of a generated answer — who to be, then passages[0..n) quoted with
 * their sources, as many as fit in budget bytes (0: the role alone). malloc'd. Also the system
 * message of every training example, so the model is asked as it was taught. */
#define JOBS_TRAIN_PROMPT_BUDGET 400 /* the smallest budget with passages: what a short-context
                                      * model (the tiny preset, 256 tokens) is asked with */
char *jobs__answer_system_prompt(const store_passage_t *list, size_t n, int budget);

/* Appends an event and hands it to cfg->on_event. Returns 0 or a negative code. */
int jobs_emit(store_t *st, const jobs_config_t *cfg, int64_t account_id, const char *type,
              const char *body_json);

#endif
