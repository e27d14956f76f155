/* jobs/transcribe.c: the speech recognition step of media.process — the item's 16 kHz PCM in,
 * its transcript (JSON, docs/api.md) and one corpus passage per segment out.
 *
 * The general model (Debian's en-us) is loaded once per process, on the first item with audio,
 * and shared by every worker (asr_model_t is thread-safe: each recognition checks out its own
 * decoder). An account with its own language model (<data_dir>/lm/<account>/: lm.bin + dict from
 * asr_lm_build, or lm.arpa [+ lm.dict]) gets a model loaded for the job and freed after it; if it
 * does not load, the general model is used and the failure logged.
 *
 * Memory: the PCM of the whole track is held while it is recognized (asr_recognize borrows it),
 * so tracks are capped at JOBS__ASR_MAX_S seconds (about 115 MB per hour); a longer track fails
 * the item with that reason. */
#include "jobs/jobs.h"

#include "asr/asr.h"
#include "core/core.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOBS__ASR_MAX_S (3 * 3600)

static pthread_mutex_t asr_mu = PTHREAD_MUTEX_INITIALIZER;
static asr_model_t *asr_general; /* guarded by asr_mu until loaded; then read-only */
static int asr_general_rc;       /* the first load's failure, not retried */

static int general_model(asr_model_t **out)
{
    pthread_mutex_lock(&asr_mu);
    if (!asr_general && asr_general_rc == 0) {
        int64_t t0 = core_now_ms();
        asr_general_rc = asr_model_new(NULL, NULL, NULL, &asr_general);
        core_log(asr_general_rc ? CORE_LOG_ERROR : CORE_LOG_INFO, "jobs.asr_load",
                 "model=general ms=%lld error=\"%s\"", (long long)(core_now_ms() - t0),
                 asr_general_rc ? core_strerror(asr_general_rc) : "");
    }
    int rc = asr_general ? 0 : asr_general_rc;
    *out = asr_general;
    pthread_mutex_unlock(&asr_mu);
    return rc;
}

void jobs_asr_release(void)
{
    pthread_mutex_lock(&asr_mu);
    asr_model_free(&asr_general);
    asr_general_rc = 0;
    pthread_mutex_unlock(&asr_mu);
}

/* The account's own model, or NULL when it has none or it does not load (logged). The folder
 * <data_dir>/lm/<account_id>/ holds lm.bin + dict as asr_lm_build writes them, or an ARPA model
 * lm.arpa (with lm.dict or dict when its words are not all in the general dictionary); lm.bin
 * wins when both are there. */
static asr_model_t *account_model(const jobs_config_t *cfg, int64_t account_id)
{
    static const char *const lms[] = {"lm.bin", "lm.arpa"};
    static const char *const dicts[] = {"dict", "lm.dict"};
    if (!cfg->data_dir || !*cfg->data_dir)
        return NULL;
    char lm[4096] = "", dict[4096] = "", path[4096];
    for (size_t i = 0; i < 2 && !*lm; i++) {
        snprintf(path, sizeof path, "%s/lm/%lld/%s", cfg->data_dir, (long long)account_id, lms[i]);
        if (access(path, R_OK) == 0)
            snprintf(lm, sizeof lm, "%s", path);
    }
    if (!*lm)
        return NULL;
    for (size_t i = 0; i < 2 && !*dict; i++) {
        snprintf(path, sizeof path, "%s/lm/%lld/%s", cfg->data_dir, (long long)account_id,
                 dicts[i]);
        if (access(path, R_OK) == 0)
            snprintf(dict, sizeof dict, "%s", path);
    }
    asr_model_t *m = NULL;
    /* Without the account's dictionary, the general one (its words must be in it). */
    int rc = asr_model_new(NULL, lm, *dict ? dict : NULL, &m);
    if (rc < 0) {
        core_log(CORE_LOG_WARN, "jobs.asr_account_lm",
                 "account=%lld lm=%s error=\"%s\" fallback=general", (long long)account_id,
                 strrchr(lm, '/') + 1, core_strerror(rc));
        return NULL;
    }
    core_log(CORE_LOG_INFO, "jobs.asr_account_lm", "account=%lld lm=%s loaded=1",
             (long long)account_id, strrchr(lm, '/') + 1);
    return m;
}

char *jobs_transcript_json(const asr_transcript_t *t)
{
    json_t *segs = json_array();
    for (size_t i = 0; i < t->n_segments; i++) {
        const asr_segment_t *s = &t->segments[i];
        json_t *words = json_array();
        for (size_t k = 0; k < s->n_words; k++) {
            const asr_word_t *w = &s->words[k];
            json_array_append_new(words, json_pack("{s:I, s:I, s:s, s:f}", "start_ms",
                                                   (json_int_t)w->start_ms, "end_ms",
                                                   (json_int_t)w->end_ms, "word", w->word,
                                                   "confidence", (double)w->confidence));
        }
        json_array_append_new(segs, json_pack("{s:I, s:I, s:s, s:f, s:o}", "start_ms",
                                              (json_int_t)s->start_ms, "end_ms",
                                              (json_int_t)s->end_ms, "text", s->text,
                                              "confidence", (double)s->confidence, "words", words));
    }
    json_t *root = json_pack("{s:o}", "segments", segs);
    char *text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(4));
    json_decref(root);
    if (!text) /* jansson only fails for lack of memory here */
        abort();
    return text;
}

int jobs_transcript_store(store_t *st, int64_t account_id, int64_t media_id,
                          const asr_transcript_t *t, bool corrected)
{
    char *json = jobs_transcript_json(t);
    store_transcript_passage_t *ps = xcalloc(t->n_segments ? t->n_segments : 1, sizeof *ps);
    for (size_t i = 0; i < t->n_segments; i++) {
        ps[i].text = t->segments[i].text;
        ps[i].t_start = (double)t->segments[i].start_ms / 1000.0;
        ps[i].t_end = (double)t->segments[i].end_ms / 1000.0;
    }
    int rc = store_transcript_put(st, account_id, media_id, json, corrected, ps, t->n_segments);
    free(ps);
    free(json);
    return rc;
}

int jobs_transcribe(store_t *st, const jobs_config_t *cfg, int64_t account_id, int64_t media_id,
                    const char *pcm_path, char *err, size_t errcap)
{
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    asr_transcript_t t = {0};
    asr_model_t *own = NULL, *model = NULL;
    int64_t t0 = core_now_ms();
    int rc = asr_wav_read(pcm_path, (size_t)JOBS__ASR_MAX_S * ASR_RATE * 2 + 4096, &pcm, &n, &rate);
    if (rc == -EFBIG || rc == -E2BIG) {
        snprintf(err, errcap, "the audio track is longer than %d hours, the most that is "
                 "transcribed", JOBS__ASR_MAX_S / 3600);
        rc = CORE_ELIMIT;
        goto out;
    }
    if (rc < 0 || rate != ASR_RATE) {
        snprintf(err, errcap, "the decoded audio track could not be read for transcription: %s",
                 rc < 0 ? core_strerror(rc) : "wrong sample rate");
        rc = rc < 0 ? rc : CORE_EBADMEDIA;
        goto out;
    }
    if (cfg->data_dir && *cfg->data_dir)
        jobs_account_lm_refresh(st, cfg->data_dir, account_id); /* failure: logged, model as is */
    own = account_model(cfg, account_id);
    if (own) {
        model = own;
    } else if ((rc = general_model(&model)) < 0) {
        snprintf(err, errcap, "speech recognition is unavailable: the model did not load (%s)",
                 core_strerror(rc));
        goto out;
    }
    asr_options_t o;
    asr_options_defaults(&o);
    o.threads = cfg->asr_threads > 0 ? cfg->asr_threads : 2;
    if ((rc = asr_recognize(model, pcm, n, &o, &t)) < 0) {
        snprintf(err, errcap, "speech recognition failed on the audio track: %s",
                 core_strerror(rc));
        goto out;
    }
    free(pcm);
    pcm = NULL;
    if ((rc = jobs_transcript_store(st, account_id, media_id, &t, false)) < 0) {
        snprintf(err, errcap, "could not store the transcript: %s", core_strerror(rc));
        goto out;
    }
    core_log(CORE_LOG_INFO, "jobs.transcribe", "media=%lld audio_ms=%lld segments=%zu ms=%lld lm=%s",
             (long long)media_id, (long long)(n * 1000 / ASR_RATE), t.n_segments,
             (long long)(core_now_ms() - t0), own ? "account" : "general");
out:
    asr_transcript_free(&t);
    asr_model_free(&own);
    free(pcm);
    return rc;
}
