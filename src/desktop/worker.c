/* desktop worker: the one thread that turns events into speech. It takes events in seq order
 * from a queue filled by the WebSocket thread, rebuilds streamed answers, speaks them (audio
 * output, sentence by sentence) or writes one WAV per answer (out-dir mode), and persists the
 * state after each answer's audio is produced; only then is the seq published for the ack.
 *
 * States of an answer (per question id), with the function behind each transition:
 *   unseen --delta/done (state_get)--> open --done (finish_answer) / failed--> done
 *   open: its text grows with deltas; in playback mode its complete sentences are spoken as
 *   they arrive (speak_from), and rec->spoken counts the bytes said.
 * Only one answer is spoken from deltas at a time (the "streaming" one); others are spoken at
 * their answer.done. Invariant: an event is handled completely before the next is taken. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "desktop/internal.h"

typedef struct qitem {
    desk__event_t ev;
    struct qitem *next;
} qitem_t;

struct desk__worker {
    const desk__opts_t *opts; /* borrowed; outlives the worker */
    desk__notify_fn notify;
    void *notify_arg;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qitem_t *head, *tail; /* under mu */
    bool stop;            /* under mu */

    _Atomic int64_t acked;
    _Atomic int finished;

    /* worker thread only */
    desk__state_t st;
    desk__answer_t *answers;
    size_t nanswers;
    char streaming[DESK__QID_MAX];
    char *out_dir;        /* NULL: playback */
    desk__audio_t *audio;
    int rate;
    bool dirty;
    int64_t handled;
};

/* ---- answers in progress ---------------------------------------------------------- */

static desk__answer_t *answer_find(desk__worker_t *w, const char *qid) {
    for (size_t i = 0; i < w->nanswers; i++)
        if (strcmp(w->answers[i].qid, qid) == 0)
            return &w->answers[i];
    return NULL;
}

static desk__answer_t *answer_get(desk__worker_t *w, const char *qid) {
    desk__answer_t *a = answer_find(w, qid);
    if (a)
        return a;
    w->answers = xrealloc(w->answers, (w->nanswers + 1) * sizeof *w->answers);
    a = &w->answers[w->nanswers++];
    desk__answer_init(a, qid);
    return a;
}

static void answer_drop(desk__worker_t *w, const char *qid) {
    desk__answer_t *a = answer_find(w, qid);
    if (!a)
        return;
    desk__answer_destroy(a);
    size_t i = (size_t)(a - w->answers);
    memmove(a, a + 1, (w->nanswers - i - 1) * sizeof *a);
    w->nanswers--;
}

/* ---- output ----------------------------------------------------------------------- */

static char *default_out_dir(void) {
    const char *env = getenv("XDG_DATA_HOME");
    if (env && *env)
        return xasprintf("%s/persona/answers", env);
    env = getenv("HOME");
    return xasprintf("%s/.local/share/persona/answers", env && *env ? env : "/tmp");
}

/* No audio output (or it broke): answers go to WAV files from now on. */
static void fall_back_to_files(desk__worker_t *w, const char *why) {
    desk__audio_close(&w->audio);
    w->out_dir = default_out_dir();
    char q[512];
    core_log(CORE_LOG_WARN, "desktop.audio", "status=unavailable reason=%s out_dir=%s", why,
             core_log_quote(w->out_dir, q, sizeof q));
}

static int save_state(desk__worker_t *w) {
    int rc = desk__state_save(w->opts->state_path, &w->st);
    if (rc < 0) {
        char q[512];
        core_log(CORE_LOG_ERROR, "desktop.state", "status=error path=%s error=\"%s\"",
                 core_log_quote(w->opts->state_path, q, sizeof q), core_strerror(rc));
        atomic_store(&w->finished, DESK_EXIT_FAIL);
        w->notify(w->notify_arg);
        return rc;
    }
    w->dirty = false;
    atomic_store(&w->acked, w->st.seq);
    w->notify(w->notify_arg);
    return 0;
}

/* Speaks text[from..len) on the audio output, sentence by sentence; at_end: the text is whole
 * (else an unfinished last sentence waits). rec->spoken advances and the state is saved after
 * each sentence. Returns 0, or -ENODEV when playback failed (rec->spoken says how far it got). */
static int speak_from(desk__worker_t *w, desk__qrec_t *rec, const char *text, size_t len,
                      bool at_end) {
    while (rec->spoken < len) {
        size_t n = speech_next_sentence(text + rec->spoken, len - rec->spoken, at_end, 0);
        if (n == 0)
            return 0;
        int16_t *pcm = NULL;
        size_t ns = 0;
        int rate = 0;
        int64_t t0 = core_mono_ns();
        int rc = speech_synthesize(&w->opts->speech, text + rec->spoken, n, &pcm, &ns, &rate);
        if (rc < 0)
            core_log(CORE_LOG_WARN, "desktop.speech", "question=%s status=error error=\"%s\"",
                     rec->qid, speech_strerror(rc));
        if (rc == 0 && ns > 0) {
            if (!w->audio && desk__audio_open(rate, &w->audio, NULL) < 0) {
                free(pcm);
                return -ENODEV;
            }
            core_log(CORE_LOG_DEBUG, "desktop.play", "question=%s bytes=%zu samples=%zu synth_ms=%.1f",
                     rec->qid, n, ns, (double)(core_mono_ns() - t0) / 1e6);
            if (desk__audio_write(w->audio, pcm, ns) < 0) {
                free(pcm);
                return -ENODEV;
            }
        }
        free(pcm);
        rec->spoken += n;
        if (save_state(w) < 0)
            return 0;
    }
    return 0;
}

/* Out-dir mode: the whole answer as one WAV file, answer-<qid>.wav, written atomically. */
static int write_answer_wav(desk__worker_t *w, const char *qid, const char *text, size_t len) {
    int16_t *all = NULL;
    size_t n = 0, cap = 0;
    int rate = 0, rc = 0;
    int64_t t0 = core_mono_ns();
    for (size_t pos = 0; pos < len;) {
        size_t k = speech_next_sentence(text + pos, len - pos, true, 0);
        int16_t *pcm = NULL;
        size_t ns = 0;
        int r = 0;
        rc = speech_synthesize(&w->opts->speech, text + pos, k, &pcm, &ns, &r);
        pos += k;
        if (rc == CORE_ELIMIT) {
            core_log(CORE_LOG_WARN, "desktop.speech", "question=%s status=skipped reason=too_long",
                     qid);
            rc = 0;
            continue;
        }
        if (rc < 0)
            goto out;
        rate = r;
        if (n + ns > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            while (ncap < n + ns)
                ncap *= 2;
            int16_t *p = realloc(all, ncap * sizeof *p);
            if (!p) {
                free(pcm);
                rc = -ENOMEM;
                goto out;
            }
            all = p;
            cap = ncap;
        }
        if (ns)
            memcpy(all + n, pcm, ns * sizeof *pcm);
        n += ns;
        free(pcm);
    }
    if (rate == 0) {
        int16_t *none = NULL;
        size_t z = 0;
        if ((rc = speech_synthesize(&w->opts->speech, "", 0, &none, &z, &rate)) < 0)
            goto out;
    }
    if ((rc = core_mkdirs(w->out_dir)) < 0)
        goto out;
    char *path = xasprintf("%s/answer-%s.wav", w->out_dir, qid);
    rc = speech_write_wav(path, all, n, rate);
    char q[512];
    if (rc == 0)
        core_log(CORE_LOG_INFO, "desktop.answer", "question=%s status=written path=%s "
                 "seconds=%.2f bytes=%zu ms=%.1f", qid, core_log_quote(path, q, sizeof q),
                 (double)n / rate, len, (double)(core_mono_ns() - t0) / 1e6);
    free(path);
out:
    if (rc < 0)
        core_log(CORE_LOG_ERROR, "desktop.answer", "question=%s status=error error=\"%s\"", qid,
                 speech_strerror(rc));
    free(all);
    return rc;
}

/* ---- events ----------------------------------------------------------------------- */

static void on_delta(desk__worker_t *w, const desk__event_t *ev) {
    desk__qrec_t *rec = desk__state_find(&w->st, ev->qid);
    if (rec && rec->done)
        return; /* replayed after a restart: already spoken */
    rec = desk__state_get(&w->st, ev->qid, ev->seq);
    if (ev->seq > rec->last_seq)
        rec->last_seq = ev->seq;
    desk__answer_t *a = answer_get(w, ev->qid);
    desk__answer_delta(a, ev->offset, ev->text, ev->text_len);
    w->dirty = true;
    if (w->out_dir || !w->opts->stream || a->gap)
        return;
    if (w->streaming[0] && strcmp(w->streaming, ev->qid) != 0)
        return; /* another answer is being spoken: this one waits for its done */
    snprintf(w->streaming, sizeof w->streaming, "%s", ev->qid);
    if (speak_from(w, rec, a->text.data, a->text.len, false) == -ENODEV)
        fall_back_to_files(w, "playback_failed");
}

static void on_done(desk__worker_t *w, const desk__event_t *ev) {
    desk__qrec_t *rec = desk__state_find(&w->st, ev->qid);
    if (rec && rec->done)
        return;
    rec = desk__state_get(&w->st, ev->qid, ev->seq);
    if (ev->seq > rec->last_seq)
        rec->last_seq = ev->seq;
    desk__answer_t *a = answer_find(w, ev->qid);
    if (rec->spoken > ev->text_len ||
        (a && rec->spoken > 0 &&
         (a->text.len < rec->spoken || memcmp(a->text.data, ev->text, rec->spoken) != 0))) {
        /* what was spoken is not how the answer begins (a rerun job said something else) */
        core_log(CORE_LOG_WARN, "desktop.answer", "question=%s status=restarted spoken=%zu",
                 ev->qid, rec->spoken);
        rec->spoken = 0;
    }
    int64_t t0 = core_mono_ns();
    if (!w->out_dir) {
        if (speak_from(w, rec, ev->text, ev->text_len, true) == -ENODEV)
            fall_back_to_files(w, "playback_failed");
        else
            core_log(CORE_LOG_INFO, "desktop.answer", "question=%s status=spoken bytes=%zu ms=%.1f",
                     ev->qid, ev->text_len, (double)(core_mono_ns() - t0) / 1e6);
    }
    if (w->out_dir)
        (void)write_answer_wav(w, ev->qid, ev->text, ev->text_len);
    rec->done = true;
    rec->spoken = ev->text_len;
    answer_drop(w, ev->qid);
    if (strcmp(w->streaming, ev->qid) == 0)
        w->streaming[0] = '\0';
}

static void on_failed(desk__worker_t *w, const desk__event_t *ev) {
    desk__qrec_t *rec = desk__state_find(&w->st, ev->qid);
    if (rec && rec->done)
        return;
    rec = desk__state_get(&w->st, ev->qid, ev->seq);
    if (ev->seq > rec->last_seq)
        rec->last_seq = ev->seq;
    rec->done = true;
    answer_drop(w, ev->qid);
    if (strcmp(w->streaming, ev->qid) == 0)
        w->streaming[0] = '\0';
    char q[512];
    core_log(CORE_LOG_WARN, "desktop.answer", "question=%s status=failed error=%s", ev->qid,
             core_log_quote(ev->error ? ev->error : "", q, sizeof q));
}

static void handle(desk__worker_t *w, desk__event_t *ev) {
    if (ev->seq <= w->handled)
        return; /* a duplicate (replay overlap): handled already */
    bool answer_end = false;
    switch (ev->type) {
    case DESK__EV_DELTA: on_delta(w, ev); break;
    case DESK__EV_DONE: on_done(w, ev); answer_end = true; break;
    case DESK__EV_FAILED: on_failed(w, ev); answer_end = true; break;
    case DESK__EV_OTHER: break;
    }
    w->handled = ev->seq;
    if (desk__state_advance(&w->st, ev->seq))
        w->dirty = true;
    if (answer_end) {
        if (save_state(w) < 0)
            return;
        if (w->opts->once && atomic_load(&w->finished) < 0) {
            atomic_store(&w->finished,
                         ev->type == DESK__EV_DONE ? DESK_EXIT_OK : DESK_EXIT_FAIL);
            w->notify(w->notify_arg);
        }
    }
}

static void *worker_main(void *arg) {
    desk__worker_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop) {
            if (w->dirty) { /* queue drained: persist what the ignored events moved */
                pthread_mutex_unlock(&w->mu);
                (void)save_state(w);
                pthread_mutex_lock(&w->mu);
                continue;
            }
            if (w->audio) { /* nothing more to say for now: let the device go */
                pthread_mutex_unlock(&w->mu);
                desk__audio_close(&w->audio);
                pthread_mutex_lock(&w->mu);
                continue;
            }
            pthread_cond_wait(&w->cv, &w->mu);
        }
        if (w->stop)
            break;
        qitem_t *it = w->head;
        w->head = it->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        if (atomic_load(&w->finished) < 0)
            handle(w, &it->ev);
        desk__event_clear(&it->ev);
        free(it);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    if (w->dirty && atomic_load(&w->finished) != DESK_EXIT_FAIL)
        (void)save_state(w);
    desk__audio_close(&w->audio);
    return NULL;
}

/* ---- public ----------------------------------------------------------------------- */

int desk__worker_start(const desk__opts_t *opts, desk__state_t *st, desk__notify_fn notify,
                       void *arg, desk__worker_t **out) {
    desk__worker_t *w = xcalloc(1, sizeof *w);
    w->opts = opts;
    w->notify = notify;
    w->notify_arg = arg;
    w->st = *st;
    desk__state_init(st);
    w->handled = w->st.seq;
    atomic_store(&w->acked, w->st.seq);
    atomic_store(&w->finished, -1);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);

    if (opts->out_dir) {
        w->out_dir = xstrdup(opts->out_dir);
    } else {
        /* probe the output once, so the log says where answers will go */
        int16_t *none = NULL;
        size_t z = 0;
        int rate = 0;
        const char *backend = NULL;
        if (speech_synthesize(&opts->speech, "", 0, &none, &z, &rate) == 0 &&
            desk__audio_open(rate, &w->audio, &backend) == 0) {
            core_log(CORE_LOG_INFO, "desktop.audio", "status=ok backend=%s rate=%d", backend,
                     rate);
            desk__audio_close(&w->audio);
        } else
            fall_back_to_files(w, "no_audio_output");
    }
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        desk__state_destroy(&w->st);
        free(w->out_dir);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return -rc;
    }
    *out = w;
    return 0;
}

void desk__worker_push(desk__worker_t *w, desk__event_t *ev) {
    qitem_t *it = xmalloc(sizeof *it);
    it->ev = *ev;
    it->next = NULL;
    memset(ev, 0, sizeof *ev);
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int64_t desk__worker_acked(desk__worker_t *w) { return atomic_load(&w->acked); }

int desk__worker_finished(desk__worker_t *w) { return atomic_load(&w->finished); }

void desk__worker_stop(desk__worker_t **pw) {
    desk__worker_t *w = *pw;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    for (qitem_t *it = w->head, *next; it; it = next) {
        next = it->next;
        desk__event_clear(&it->ev);
        free(it);
    }
    for (size_t i = 0; i < w->nanswers; i++)
        desk__answer_destroy(&w->answers[i]);
    free(w->answers);
    desk__state_destroy(&w->st);
    free(w->out_dir);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    *pw = NULL;
}
