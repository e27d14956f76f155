/* desktop internal: what the files of the desktop module share — event parsing, the state file,
 * the answer book-keeping (delta offsets, what has been spoken), the reconnect backoff, audio
 * output, the worker and the WebSocket client. Names are desk__*.
 *
 * The parts above the audio section are pure (no threads, no I/O but the state file) and are
 * what tests/desktop/test_desktop.c checks. */
#ifndef PERSONA_DESKTOP_INTERNAL_H
#define PERSONA_DESKTOP_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "core/core.h"
#include "desktop/desktop.h"
#include "speech/speech.h"

#define DESK__QID_MAX 64             /* question ids: [A-Za-z0-9_.-], at most 63 bytes */
#define DESK__MAX_FRAME (16u << 20)  /* a bigger event is dropped (and logged) */
#define DESK__MAX_STATE (1u << 20)

/* ======================================================================================
 * events: one JSON text frame each
 * ====================================================================================== */
typedef enum desk__ev_type {
    DESK__EV_OTHER,  /* media.updated, model.ready, anything new: ignored but acked */
    DESK__EV_DELTA,  /* answer.delta */
    DESK__EV_DONE,   /* answer.done */
    DESK__EV_FAILED, /* answer.failed */
} desk__ev_type_t;

typedef struct desk__event {
    desk__ev_type_t type;
    int64_t seq;              /* > 0 */
    char qid[DESK__QID_MAX];  /* answer.*: the question's id (a JSON number or string) */
    int64_t offset;           /* answer.delta: characters of the answer before text */
    char *text;               /* answer.delta/done: owned, NUL-terminated valid UTF-8 */
    size_t text_len;
    char *error;              /* answer.failed: owned, may be NULL */
} desk__event_t;

/* Parses one frame. Returns 0 with *ev filled (caller desk__event_clear()s it), or -EINVAL
 * when it is not a JSON object with a positive integer seq and a string type, or an answer.*
 * event lacks a valid question_id, or a delta/done lacks its text (or its offset). */
int desk__event_parse(const char *json, size_t len, desk__event_t *ev);
void desk__event_clear(desk__event_t *ev);

/* ======================================================================================
 * state file: the last seq handled for good, and the answers whose events come after it
 * ======================================================================================
 * Invariants (checked by desk__state_check):
 *  1. every event with seq <= seq is handled: its audio produced, nothing of it left to say;
 *  2. an answer whose events are not all <= seq has a record: how many bytes of its text have
 *     been spoken, whether it is done, its first and last seq seen;
 *  3. records are unique by qid and have first_seq > seq or last_seq > seq.
 * On restart the client asks for ?after=seq: events of answers with records are replayed, the
 * text is rebuilt, and speaking resumes after the spoken bytes; done answers are skipped. */
typedef struct desk__qrec {
    char qid[DESK__QID_MAX];
    size_t spoken;          /* bytes of the answer text already spoken */
    bool done;              /* its audio is produced in full (or it failed) */
    int64_t first_seq, last_seq;
} desk__qrec_t;

typedef struct desk__state {
    int64_t seq;
    desk__qrec_t *recs;
    size_t n;
} desk__state_t;

void desk__state_init(desk__state_t *st);
void desk__state_destroy(desk__state_t *st);
/* The record of qid, or NULL. */
desk__qrec_t *desk__state_find(desk__state_t *st, const char *qid);
/* The record of qid, created (spoken 0, first_seq = last_seq = seq) when missing. */
desk__qrec_t *desk__state_get(desk__state_t *st, const char *qid, int64_t seq);
/* After handling every event up to handled: moves st->seq as far as the invariants allow
 * (to handled when no answer is in progress, else to just before the oldest unfinished
 * answer's first event) and drops the records no longer needed. Returns true if anything
 * changed. */
bool desk__state_advance(desk__state_t *st, int64_t handled);
/* True when the invariants above hold. */
bool desk__state_check(const desk__state_t *st);
/* Text form, and back. Parse returns 0, or -EINVAL for a damaged file. */
char *desk__state_format(const desk__state_t *st);
int desk__state_parse(const char *text, desk__state_t *st);
/* Loads path; a missing file is the empty state (seq 0). Returns 0, -EINVAL (damaged), or
 * -errno. */
int desk__state_load(const char *path, desk__state_t *st);
/* Writes path atomically: temporary file (0600) in the same folder, fsync, rename, folder
 * fsync; creates the folder. Returns 0 or -errno; on failure the old file is untouched. */
int desk__state_save(const char *path, const desk__state_t *st);
/* Default: $XDG_STATE_HOME/persona/desktop-state or $HOME/.local/state/persona/desktop-state;
 * malloc'd, NULL when neither variable is set. */
char *desk__state_default_path(void);

/* ======================================================================================
 * answers: the text of an answer being streamed, rebuilt from answer.delta events
 * ====================================================================================== */
typedef struct desk__answer {
    char qid[DESK__QID_MAX];
    core_buf_t text;     /* the text so far */
    size_t chars;        /* code points in text */
    bool gap;            /* a delta started past the end: the text is incomplete until done */
} desk__answer_t;

void desk__answer_init(desk__answer_t *a, const char *qid);
void desk__answer_destroy(desk__answer_t *a);
/* Adds a delta whose text starts at character offset (code points; a byte offset equal to the
 * byte length is accepted too). The part the answer already has is ignored (a job rerun after
 * a restart sends it again); a delta past the end sets gap and is dropped. Returns the number
 * of bytes appended. */
size_t desk__answer_delta(desk__answer_t *a, int64_t offset, const char *text, size_t len);

/* ======================================================================================
 * reconnect backoff: 0.5 s doubling to 30 s, each delay drawn in [base/2, base]
 * ====================================================================================== */
#define DESK__BACKOFF_MIN_MS 500
#define DESK__BACKOFF_MAX_MS 30000
#define DESK__BACKOFF_STABLE_MS 10000 /* a connection up this long resets the backoff */

typedef struct desk__backoff {
    int attempt;
    uint64_t rng;
} desk__backoff_t;

void desk__backoff_init(desk__backoff_t *b, uint64_t seed);
/* The delay before the next attempt, in ms; counts the attempt. */
int64_t desk__backoff_next(desk__backoff_t *b);
/* The base (upper bound) of the delay the next call draws. */
int64_t desk__backoff_base(const desk__backoff_t *b);
void desk__backoff_reset(desk__backoff_t *b);

/* ======================================================================================
 * audio output: PulseAudio (simple API), else ALSA "default"
 * ====================================================================================== */
typedef struct desk__audio desk__audio_t;
/* Opens the default output for mono 16-bit at rate. Returns 0 with *out, or -ENODEV when
 * neither PulseAudio nor ALSA opens. *backend_out (may be NULL) names the one opened. */
int desk__audio_open(int rate, desk__audio_t **out, const char **backend_out);
/* Plays pcm[0..n), blocking until it is queued. Returns 0 or -EIO. */
int desk__audio_write(desk__audio_t *a, const int16_t *pcm, size_t n);
/* Waits until everything written has been played, then closes; NULL-safe. */
void desk__audio_close(desk__audio_t **a);

/* ======================================================================================
 * options
 * ====================================================================================== */
typedef struct desk__opts {
    char *server;      /* http(s):// or ws(s):// base URL, no trailing slash */
    char *token;
    char *out_dir;     /* NULL: play on the audio output */
    char *state_path;
    char *voice;
    speech_config_t speech;
    bool once;
    bool stream;       /* speak sentence by sentence as deltas arrive (playback only) */
} desk__opts_t;

/* ======================================================================================
 * worker: one thread that turns events into speech and persists the state
 * ====================================================================================== */
typedef struct desk__worker desk__worker_t;
typedef void (*desk__notify_fn)(void *arg);
/* Starts the worker over a loaded state (taken: the worker owns it from here). notify(arg) is
 * called from the worker thread whenever desk__worker_acked() or desk__worker_finished()
 * may have changed. Returns 0 or -errno. */
int desk__worker_start(const desk__opts_t *opts, desk__state_t *st, desk__notify_fn notify,
                       void *arg, desk__worker_t **out);
/* Queues an event (taken). Thread-safe; never blocks on synthesis. */
void desk__worker_push(desk__worker_t *w, desk__event_t *ev);
/* The seq persisted last (to ack). Thread-safe. */
int64_t desk__worker_acked(desk__worker_t *w);
/* -1 while running; DESK_EXIT_OK once --once has its answer; DESK_EXIT_FAIL after a fatal
 * error (the state file cannot be written, --once got answer.failed). Thread-safe. */
int desk__worker_finished(desk__worker_t *w);
/* Finishes the event in hand (not the queue), persists, joins and frees; NULL-safe. */
void desk__worker_stop(desk__worker_t **w);

/* ======================================================================================
 * client: the WebSocket connection (libwebsockets), on the calling thread
 * ====================================================================================== */
/* Splits a server URL: scheme http/https/ws/wss, host (IPv6 in brackets), optional port,
 * optional base path. Returns 0 or -EINVAL. host and path are malloc'd (path "" or "/base"). */
int desk__parse_url(const char *url, bool *tls, char **host, int *port, char **path);

/* voice.c: the account's voice (GET /v1/voice). 0 with *out filled, -1 when the server cannot
 * be reached or does not answer with a valid voice (the caller keeps its settings). */
typedef struct desk_voice {
    char voice[64];
    int rate, pitch, volume;
} desk_voice_t;
int desk__fetch_voice(const char *server, const char *token, desk_voice_t *out);
/* The worker's notify function: wakes the running client's loop (lws_cancel_service);
 * thread-safe, a no-op when no client runs. */
void desk__client_notify(void *arg);
/* Runs the connection until stopped (signal) or the worker finishes. Returns an exit status. */
int desk__client_run(const desk__opts_t *opts, desk__worker_t *w, int64_t start_seq,
                     volatile sig_atomic_t *stop);

#endif
