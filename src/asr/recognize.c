/* asr/recognize.c: the model (paths and a pool of pocketsphinx decoders) and asr_recognize:
 * VAD segments decoded one at a time per thread, in parallel over N threads, into a transcript
 * with segment and word timings and confidences. The only file that includes pocketsphinx.
 *
 * Invariants: a decoder is used by one thread at a time (checked out of the pool under its
 * mutex, returned after the run); each segment is decoded as its own utterance with batch CMN
 * (-cmn batch over the segment) and no dither, so a segment's words depend only on its samples
 * and the result is the same whichever thread or decoder takes it. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pocketsphinx.h>
#include <sphinxbase/err.h>

#include "asr/asr.h"

#define ASR_MAX_THREADS 64
#define ASR_FRAME_MS 10 /* pocketsphinx's frame rate is 100 frames/s */

struct asr_model {
    char *hmm, *lm, *dict;
    pthread_mutex_t mu;      /* guards idle */
    pthread_mutex_t load_mu; /* one ps_init at a time: sphinxbase's logging and error state are
                                process globals */
    ps_decoder_t **idle; /* decoders not checked out */
    size_t n_idle, cap_idle;
};

/* ---- model and decoder pool ---- */

static pthread_once_t asr_log_once = PTHREAD_ONCE_INIT;
static void asr_log_off(void)
{
    /* pocketsphinx logs every step of loading and decoding to stderr; our logging is core_log.
     * (Not -logfn: each ps_init would reopen the global log file and close the previous one.) */
    err_set_logfp(NULL);
}

static ps_decoder_t *asr_decoder_new(asr_model_t *m)
{
    /* Tuned on the LibriVox clips (docs/speech-recognition.md): 8 Gaussians per frame instead of
     * 4 and no second (flat-lexicon) pass: 28.2% -> 19.7% WER and faster. No dither and batch
     * CMN per segment for determinism; our VAD segments, so pocketsphinx's own silence removal
     * (which would shift the frame times) and noise removal are off. */
    cmd_ln_t *cfg = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", m->hmm, "-lm", m->lm, "-dict",
                                m->dict, "-topn", "8", "-fwdflat", "no", "-bestpath", "yes",
                                "-dither", "no", "-cmn", "batch", "-remove_noise", "no",
                                "-remove_silence", "no", NULL);
    if (!cfg)
        return NULL;
    pthread_mutex_lock(&m->load_mu);
    ps_decoder_t *ps = ps_init(cfg);
    pthread_mutex_unlock(&m->load_mu);
    cmd_ln_free_r(cfg); /* ps_init keeps its own reference */
    return ps;
}

static ps_decoder_t *asr_decoder_get(asr_model_t *m)
{
    ps_decoder_t *ps = NULL;
    pthread_mutex_lock(&m->mu);
    if (m->n_idle)
        ps = m->idle[--m->n_idle];
    pthread_mutex_unlock(&m->mu);
    /* Loading takes a while; done outside the lock so other threads keep going. */
    return ps ? ps : asr_decoder_new(m);
}

static void asr_decoder_put(asr_model_t *m, ps_decoder_t *ps)
{
    if (!ps)
        return;
    pthread_mutex_lock(&m->mu);
    if (m->n_idle == m->cap_idle) {
        m->cap_idle = m->cap_idle ? m->cap_idle * 2 : 4;
        m->idle = xrealloc(m->idle, m->cap_idle * sizeof *m->idle);
    }
    m->idle[m->n_idle++] = ps;
    pthread_mutex_unlock(&m->mu);
}

static int asr_check_path(const char *path, bool dir)
{
    struct stat st;
    if (stat(path, &st) != 0 || (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))) {
        char q[512];
        core_log(CORE_LOG_ERROR, "asr_model_missing", "path=%s",
                 core_log_quote(path, q, sizeof q));
        return -ENOENT;
    }
    return 0;
}

int asr_model_new(const char *hmm, const char *lm, const char *dict, asr_model_t **out)
{
    asr_model_t *m = NULL;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    pthread_once(&asr_log_once, asr_log_off);
    hmm = hmm ? hmm : ASR_DEFAULT_HMM;
    lm = lm ? lm : ASR_DEFAULT_LM;
    dict = dict ? dict : ASR_DEFAULT_DICT;
    if ((rc = asr_check_path(hmm, true)) < 0 || (rc = asr_check_path(lm, false)) < 0 ||
        (rc = asr_check_path(dict, false)) < 0)
        return rc;
    m = xcalloc(1, sizeof *m);
    m->hmm = xstrdup(hmm);
    m->lm = xstrdup(lm);
    m->dict = xstrdup(dict);
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->load_mu, NULL);
    ps_decoder_t *ps = asr_decoder_new(m);
    if (!ps) {
        char q1[512], q2[512], q3[512];
        core_log(CORE_LOG_ERROR, "asr_model_load", "hmm=%s lm=%s dict=%s",
                 core_log_quote(hmm, q1, sizeof q1), core_log_quote(lm, q2, sizeof q2),
                 core_log_quote(dict, q3, sizeof q3));
        asr_model_free(&m);
        return CORE_EBADMEDIA;
    }
    asr_decoder_put(m, ps);
    *out = m;
    return 0;
}

void asr_model_free(asr_model_t **mp)
{
    asr_model_t *m = mp ? *mp : NULL;
    if (!m)
        return;
    for (size_t i = 0; i < m->n_idle; i++)
        ps_free(m->idle[i]);
    free(m->idle);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->load_mu);
    free(m->hmm);
    free(m->lm);
    free(m->dict);
    free(m);
    *mp = NULL;
}

/* ---- recognition ---- */

void asr_options_defaults(asr_options_t *o)
{
    o->threads = 1;
    asr_vad_defaults(&o->vad);
}

static void asr_segment_free(asr_segment_t *s)
{
    for (size_t i = 0; i < s->n_words; i++)
        free(s->words[i].word);
    free(s->words);
    free(s->text);
    memset(s, 0, sizeof *s);
}

void asr_transcript_free(asr_transcript_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_segments; i++)
        asr_segment_free(&t->segments[i]);
    free(t->segments);
    t->segments = NULL;
    t->n_segments = 0;
}

char *asr_transcript_text(const asr_transcript_t *t)
{
    core_buf_t b;
    core_buf_init(&b);
    for (size_t i = 0; t && i < t->n_segments; i++) {
        if (i)
            core_buf_puts(&b, " ");
        core_buf_puts(&b, t->segments[i].text);
    }
    return core_buf_steal(&b);
}

/* Fillers (<s>, </s>, <sil>, [NOISE], ++GARBAGE++) are not words of the speaker. */
static bool asr_is_filler(const char *w)
{
    return !*w || w[0] == '<' || w[0] == '[' || w[0] == '+' || !strcmp(w, "(NULL)");
}

/* Decodes span [a, b) of pcm into seg. Returns 0 (seg may have no words) or CORE_EDECODE. */
static int asr_decode_span(ps_decoder_t *ps, const int16_t *pcm, size_t a, size_t b,
                           asr_segment_t *seg)
{
    core_buf_t text;
    int rc = CORE_EDECODE;
    size_t cap = 0;
    double conf_sum = 0;
    int64_t base_ms = (int64_t)(a / (ASR_RATE / 1000));

    core_buf_init(&text);
    memset(seg, 0, sizeof *seg);
    if (ps_start_utt(ps) < 0)
        goto out;
    /* full_utt: the whole segment at once, which batch CMN needs. */
    if (ps_process_raw(ps, pcm + a, b - a, FALSE, TRUE) < 0) {
        ps_end_utt(ps);
        goto out;
    }
    if (ps_end_utt(ps) < 0)
        goto out;
    int32 score;
    if (!ps_get_hyp(ps, &score)) {
        rc = 0; /* nothing recognized */
        goto out;
    }
    logmath_t *lmath = ps_get_logmath(ps);
    for (ps_seg_t *it = ps_seg_iter(ps); it; it = ps_seg_next(it)) {
        const char *w = ps_seg_word(it);
        if (asr_is_filler(w))
            continue;
        int sf, ef;
        int32 ascr, lscr, lback;
        ps_seg_frames(it, &sf, &ef);
        double post = logmath_exp(lmath, ps_seg_prob(it, &ascr, &lscr, &lback));
        if (!(post >= 0.0))
            post = 0.0;
        if (post > 1.0)
            post = 1.0;
        if (seg->n_words == cap) {
            cap = cap ? cap * 2 : 16;
            seg->words = xrealloc(seg->words, cap * sizeof *seg->words);
        }
        asr_word_t *aw = &seg->words[seg->n_words++];
        /* "read(2)" is the dictionary's second pronunciation of "read". */
        size_t wl = strcspn(w, "(");
        aw->word = xstrndup(w, wl);
        for (char *c = aw->word; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        aw->start_ms = base_ms + (int64_t)sf * ASR_FRAME_MS;
        aw->end_ms = base_ms + (int64_t)(ef + 1) * ASR_FRAME_MS;
        aw->confidence = (float)post;
        conf_sum += post;
        if (text.len)
            core_buf_puts(&text, " ");
        core_buf_puts(&text, aw->word);
    }
    if (seg->n_words) {
        seg->start_ms = seg->words[0].start_ms;
        seg->end_ms = seg->words[seg->n_words - 1].end_ms;
        seg->confidence = (float)(conf_sum / (double)seg->n_words);
        seg->text = core_buf_steal(&text);
    }
    rc = 0;
out:
    core_buf_destroy(&text);
    if (rc < 0)
        asr_segment_free(seg);
    return rc;
}

/* Work shared by the recognition threads: the next span to take, under mu. */
typedef struct asr_job {
    asr_model_t *model;
    const int16_t *pcm;
    const asr_span_t *spans;
    size_t n_spans;
    asr_segment_t *segs; /* one slot per span */
    pthread_mutex_t mu;
    size_t next;
    int rc;
} asr_job_t;

static void *asr_worker(void *arg)
{
    asr_job_t *j = arg;
    ps_decoder_t *ps = asr_decoder_get(j->model);
    if (!ps) {
        pthread_mutex_lock(&j->mu);
        j->rc = CORE_EDECODE;
        pthread_mutex_unlock(&j->mu);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->rc < 0 ? j->n_spans : j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->n_spans)
            break;
        int rc = asr_decode_span(ps, j->pcm, j->spans[i].start, j->spans[i].end, &j->segs[i]);
        if (rc < 0) {
            pthread_mutex_lock(&j->mu);
            j->rc = rc;
            pthread_mutex_unlock(&j->mu);
            break;
        }
    }
    asr_decoder_put(j->model, ps);
    return NULL;
}

int asr_recognize(asr_model_t *model, const int16_t *pcm, size_t n, const asr_options_t *opts,
                  asr_transcript_t *out)
{
    asr_options_t def;
    asr_span_t *spans = NULL;
    size_t n_spans = 0;
    asr_job_t job = {0};
    pthread_t tids[ASR_MAX_THREADS];
    int started = 0, rc;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!model || (!pcm && n))
        return -EINVAL;
    if (!opts) {
        asr_options_defaults(&def);
        opts = &def;
    }
    int threads = opts->threads ? opts->threads : 1;
    if (threads < 1 || threads > ASR_MAX_THREADS)
        return -EINVAL;
    if ((rc = asr_vad(pcm, n, ASR_RATE, &opts->vad, &spans, &n_spans)) < 0)
        return rc;
    if (n_spans == 0)
        return 0;

    job.model = model;
    job.pcm = pcm;
    job.spans = spans;
    job.n_spans = n_spans;
    job.segs = calloc(n_spans, sizeof *job.segs);
    if (!job.segs) {
        rc = -ENOMEM;
        goto out;
    }
    pthread_mutex_init(&job.mu, NULL);
    if ((size_t)threads > n_spans)
        threads = (int)n_spans;
    /* The calling thread is one of the workers. */
    for (int i = 1; i < threads; i++) {
        if (pthread_create(&tids[started], NULL, asr_worker, &job) != 0)
            break; /* fewer threads: slower, not wrong */
        started++;
    }
    asr_worker(&job);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&job.mu);
    if ((rc = job.rc) < 0)
        goto out;

    /* Keep the segments that have words, in time order (spans are sorted). */
    size_t k = 0;
    for (size_t i = 0; i < n_spans; i++) {
        if (job.segs[i].n_words)
            job.segs[k++] = job.segs[i];
    }
    if (k == 0) {
        free(job.segs);
        job.segs = NULL;
    }
    out->segments = job.segs;
    out->n_segments = k;
    job.segs = NULL;
    rc = 0;
out:
    if (job.segs) {
        for (size_t i = 0; i < n_spans; i++)
            asr_segment_free(&job.segs[i]);
        free(job.segs);
    }
    free(spans);
    return rc;
}
