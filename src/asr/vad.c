/* asr/vad.c: energy-based voice-activity segmentation of 16-bit PCM. Pure computation, any
 * thread. Frames of frame_ms get a level in dBFS; a noise floor follows the quiet frames (down at
 * once, up at most floor_rise_db per second and only outside speech, so a long steady sound is not
 * absorbed into the floor); a frame is speech when it is threshold_db above the floor and above
 * min_level_db; speech lasts hangover_ms past its last speech frame; segments are padded, merged
 * when the padding makes them touch, dropped when shorter than min_speech_ms and split at their
 * quietest frame when longer than max_segment_ms. Memory: one float per frame. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "asr/asr.h"

void asr_vad_defaults(asr_vad_params_t *p)
{
    p->frame_ms = 20;
    p->threshold_db = 10.0f;
    p->min_level_db = -55.0f;
    p->floor_rise_db = 2.0f;
    p->hangover_ms = 300;
    p->pad_ms = 200;
    p->min_speech_ms = 120;
    p->max_segment_ms = 30000;
}

static int vad_check(const asr_vad_params_t *p, int rate)
{
    if (rate < 8000 || rate > 48000)
        return -EINVAL;
    if (p->frame_ms < 10 || p->frame_ms > 30 || p->hangover_ms < 0 || p->pad_ms < 0 ||
        p->min_speech_ms < 0 || p->max_segment_ms < 1000 || p->max_segment_ms > 600000 ||
        !(p->threshold_db > 0.0f) || !isfinite(p->min_level_db) || !(p->floor_rise_db >= 0.0f))
        return -EINVAL;
    if (2 * p->pad_ms >= p->max_segment_ms / 2)
        return -EINVAL;
    return 0;
}

/* Appends [s, e) in frames, splitting pieces longer than maxf at the quietest frame of their
 * second half so that no piece is cut in the middle of loud speech when a pause is near. */
static int vad_emit(asr_span_t **v, size_t *n, size_t *cap, const float *db, size_t s, size_t e,
                    size_t maxf, size_t fs, size_t total)
{
    while (s < e) {
        size_t end = e;
        if (e - s > maxf) {
            size_t best = s + maxf, lo = s + maxf / 2;
            float bdb = INFINITY;
            for (size_t i = s + maxf; i-- > lo;) {
                if (db[i] < bdb) {
                    bdb = db[i];
                    best = i;
                }
            }
            end = best;
        }
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            asr_span_t *nv = realloc(*v, nc * sizeof **v);
            if (!nv)
                return -ENOMEM;
            *v = nv;
            *cap = nc;
        }
        size_t a = s * fs, b = end * fs;
        (*v)[*n].start = a;
        (*v)[*n].end = b > total ? total : b;
        (*n)++;
        s = end;
    }
    return 0;
}

int asr_vad(const int16_t *pcm, size_t n, int rate, const asr_vad_params_t *p, asr_span_t **spans,
            size_t *n_spans)
{
    asr_vad_params_t def;
    float *db = NULL;
    asr_span_t *v = NULL;
    size_t nv = 0, cap = 0;
    int rc;

    if (!spans || !n_spans || (!pcm && n))
        return -EINVAL;
    *spans = NULL;
    *n_spans = 0;
    if (!p) {
        asr_vad_defaults(&def);
        p = &def;
    }
    if ((rc = vad_check(p, rate)) < 0)
        return rc;

    size_t fs = (size_t)rate * (size_t)p->frame_ms / 1000; /* samples per frame */
    size_t nf = (n + fs - 1) / fs;
    if (nf == 0)
        return 0;
    db = malloc(nf * sizeof *db);
    if (!db)
        return -ENOMEM;
    for (size_t f = 0; f < nf; f++) {
        size_t a = f * fs, b = a + fs > n ? n : a + fs;
        double acc = 0;
        for (size_t i = a; i < b; i++)
            acc += (double)pcm[i] * pcm[i];
        double ms = acc / (double)(b - a) / (32768.0 * 32768.0);
        db[f] = ms > 1e-10 ? (float)(10.0 * log10(ms)) : -100.0f;
    }

#define FR(ms) (((size_t)(ms) + (size_t)p->frame_ms - 1) / (size_t)p->frame_ms)
    size_t hang = FR(p->hangover_ms), pad = FR(p->pad_ms), minsp = FR(p->min_speech_ms);
    size_t maxf = (size_t)p->max_segment_ms / (size_t)p->frame_ms;
#undef FR
    float rise = p->floor_rise_db * (float)p->frame_ms / 1000.0f;

    /* The floor starts at the quietest frame of the first half second, so input that begins
     * with speech does not start with a floor at speech level. */
    float floor = INFINITY;
    for (size_t f = 0; f < nf && f * (size_t)p->frame_ms < 500; f++)
        if (db[f] < floor)
            floor = db[f];

    bool in = false;
    size_t seg_s = 0, last_sp = 0, nsp = 0, cur_s = 0, cur_e = 0;
    bool have_cur = false;
    for (size_t f = 0; f <= nf; f++) {
        bool sp = false;
        if (f < nf) {
            float d = db[f];
            sp = d > floor + p->threshold_db && d > p->min_level_db;
            if (d < floor)
                floor = d;
            else if (!sp && !in)
                floor = fminf(d, floor + rise);
        }
        if (sp) {
            if (!in) {
                in = true;
                seg_s = f;
                nsp = 0;
            }
            last_sp = f;
            nsp++;
            continue;
        }
        if (in && (f == nf || f - last_sp > hang)) {
            in = false;
            if (nsp < minsp)
                continue;
            size_t s = seg_s > pad ? seg_s - pad : 0;
            size_t e = last_sp + 1 + pad;
            if (e > nf)
                e = nf;
            if (have_cur && s <= cur_e) {
                cur_e = e; /* the paddings touch: one segment */
            } else {
                if (have_cur && (rc = vad_emit(&v, &nv, &cap, db, cur_s, cur_e, maxf, fs, n)) < 0)
                    goto out;
                cur_s = s;
                cur_e = e;
                have_cur = true;
            }
        }
    }
    if (have_cur && (rc = vad_emit(&v, &nv, &cap, db, cur_s, cur_e, maxf, fs, n)) < 0)
        goto out;
    *spans = v;
    *n_spans = nv;
    v = NULL;
    rc = 0;
out:
    free(v);
    free(db);
    return rc;
}
