/* test_asr: unit tests of the asr module — word error rate over the five LibriVox clips of
 * Debian's pocketsphinx-testdata (scored by asr_wer, printed, required <= 30%), asr_wer's own
 * cases, the VAD on synthetic signals (silence, tone bursts at known times, bursts in swelling
 * noise, a 70 s continuous
 * signal split into <= 30 s pieces), silence -> empty transcript, the same transcript with 1 and
 * 2 threads, two callers sharing one model at once, exact WebVTT/SRT, the WAV reader on good,
 * truncated, empty, random and huge input, a missing model and damaged model files. All five clips run under the sanitizers too (a few seconds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/asr.h"
#include "core/core.h"

#if defined(__SANITIZE_ADDRESS__)
#define ASR_TEST_SAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASR_TEST_SAN 1
#endif
#endif
#ifndef ASR_TEST_SAN
#define ASR_TEST_SAN 0
#endif

#define LIBRIVOX "/usr/share/pocketsphinx/test/data/librivox"
static const char *const CLIPS[] = {
    "sense_and_sensibility_01_austen_64kb-0870", "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0890", "sense_and_sensibility_01_austen_64kb-0920",
    "sense_and_sensibility_01_austen_64kb-0930",
};
#define N_CLIPS (sizeof CLIPS / sizeof *CLIPS)

static asr_model_t *g_model;

static int setup(void **state)
{
    (void)state;
    return asr_model_new(NULL, NULL, NULL, &g_model) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    asr_model_free(&g_model);
    return 0;
}

/* The reference text of a clip from the package's `transcription` file:
 * "<s> words </s> (fileid)". Returns malloc'd text or NULL. */
static char *reference(const char *id)
{
    char *all = NULL, *res = NULL;
    size_t len;
    if (core_read_file(LIBRIVOX "/transcription", 1 << 20, &all, &len) < 0)
        return NULL;
    char key[128];
    snprintf(key, sizeof key, "(%s)", id);
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        char *k = strstr(line, key);
        if (!k)
            continue;
        *k = '\0';
        char *s = strstr(line, "<s>");
        s = s ? s + 3 : line;
        char *e = strstr(s, "</s>");
        if (e)
            *e = '\0';
        res = xstrdup(s);
        break;
    }
    free(all);
    return res;
}

static void load_clip(const char *id, int16_t **pcm, size_t *n)
{
    char path[256];
    int rate = 0;
    snprintf(path, sizeof path, LIBRIVOX "/%s.wav", id);
    assert_int_equal(asr_wav_read(path, 64 << 20, pcm, n, &rate), 0);
    assert_int_equal(rate, ASR_RATE);
    assert_true(*n > ASR_RATE);
}

/* ---- WER on the real recordings ---- */

static void test_librivox_wer(void **state)
{
    (void)state;
    size_t n_clips = N_CLIPS, errs = 0, words = 0;
    asr_options_t o;
    asr_options_defaults(&o);
    o.threads = 2;
    for (size_t i = 0; i < n_clips; i++) {
        int16_t *pcm = NULL;
        size_t n = 0, e = 0, w = 0;
        load_clip(CLIPS[i], &pcm, &n);
        char *ref = reference(CLIPS[i]);
        assert_non_null(ref);
        asr_transcript_t t;
        assert_int_equal(asr_recognize(g_model, pcm, n, &o, &t), 0);
        char *hyp = asr_transcript_text(&t);
        assert_int_equal(asr_wer(ref, hyp, &e, &w), 0);
        printf("asr clip=%s ref_words=%zu errors=%zu\n  ref:%s\n  hyp: %s\n", CLIPS[i], w, e, ref,
               hyp);
        /* Timings are inside the clip and in order. */
        int64_t prev = 0, dur = (int64_t)(n * 1000 / ASR_RATE);
        for (size_t s = 0; s < t.n_segments; s++) {
            for (size_t k = 0; k < t.segments[s].n_words; k++) {
                const asr_word_t *aw = &t.segments[s].words[k];
                assert_true(aw->start_ms >= prev && aw->end_ms > aw->start_ms);
                assert_true(aw->end_ms <= dur + 10);
                assert_true(aw->confidence >= 0.0f && aw->confidence <= 1.0f);
                prev = aw->start_ms;
            }
        }
        errs += e;
        words += w;
        free(hyp);
        free(ref);
        asr_transcript_free(&t);
        free(pcm);
    }
    double wer = 100.0 * (double)errs / (double)words;
    printf("asr WER over %zu LibriVox clips: %zu/%zu = %.1f%%\n", n_clips, errs, words, wer);
    assert_true(words > 20);
    assert_true(wer <= 30.0);
}

/* One and two threads give the same transcript (segments, words, times, confidences). */
static void test_threads_same(void **state)
{
    (void)state;
    int16_t *pcm = NULL;
    size_t n = 0;
    load_clip(CLIPS[1], &pcm, &n);
    /* Two copies with a second of silence between: at least two segments to share out. */
    size_t gap = ASR_RATE, total = 2 * n + gap;
    int16_t *two = xcalloc(total, sizeof *two);
    memcpy(two, pcm, n * sizeof *pcm);
    memcpy(two + n + gap, pcm, n * sizeof *pcm);
    asr_options_t o;
    asr_options_defaults(&o);
    asr_transcript_t t1, t2;
    o.threads = 1;
    assert_int_equal(asr_recognize(g_model, two, total, &o, &t1), 0);
    o.threads = 2;
    assert_int_equal(asr_recognize(g_model, two, total, &o, &t2), 0);
    assert_true(t1.n_segments >= 2);
    assert_int_equal(t1.n_segments, t2.n_segments);
    for (size_t s = 0; s < t1.n_segments; s++) {
        const asr_segment_t *a = &t1.segments[s], *b = &t2.segments[s];
        assert_string_equal(a->text, b->text);
        assert_int_equal(a->start_ms, b->start_ms);
        assert_int_equal(a->end_ms, b->end_ms);
        assert_int_equal(a->n_words, b->n_words);
        for (size_t k = 0; k < a->n_words; k++) {
            assert_int_equal(a->words[k].start_ms, b->words[k].start_ms);
            assert_true(a->words[k].confidence == b->words[k].confidence);
        }
    }
    /* The second copy is heard as the first, shifted by its offset. */
    const asr_segment_t *first = &t1.segments[0], *last = &t1.segments[t1.n_segments - 1];
    int64_t shift = (int64_t)((n + gap) * 1000 / ASR_RATE);
    assert_string_equal(first->text, last->text);
    assert_true(llabs(last->start_ms - first->start_ms - shift) <= 20);
    asr_transcript_free(&t1);
    asr_transcript_free(&t2);
    free(two);
    free(pcm);
}

/* Two callers share one model at the same time (each gets its own decoder from the pool) and
 * hear the same words as one caller alone. */
typedef struct caller {
    const int16_t *pcm;
    size_t n;
    char *text;
    int rc;
} caller_t;

static void *caller_run(void *arg)
{
    caller_t *c = arg;
    asr_transcript_t t;
    c->rc = asr_recognize(g_model, c->pcm, c->n, NULL, &t);
    c->text = asr_transcript_text(&t);
    asr_transcript_free(&t);
    return NULL;
}

static void test_concurrent_callers(void **state)
{
    (void)state;
    int16_t *pcm = NULL;
    size_t n = 0;
    load_clip(CLIPS[4], &pcm, &n);
    caller_t solo = {pcm, n, NULL, 0}, c[2] = {{pcm, n, NULL, 0}, {pcm, n, NULL, 0}};
    caller_run(&solo);
    assert_int_equal(solo.rc, 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, caller_run, &c[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].rc, 0);
        assert_string_equal(c[i].text, solo.text);
        free(c[i].text);
    }
    assert_true(strlen(solo.text) > 10);
    free(solo.text);
    free(pcm);
}

static void test_silence_empty(void **state)
{
    (void)state;
    size_t n = 5 * ASR_RATE;
    int16_t *pcm = xcalloc(n, sizeof *pcm);
    /* Faint hiss over digital silence: still no speech. */
    uint32_t x = 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        pcm[i] = (int16_t)((int)(x >> 28) - 8);
    }
    asr_transcript_t t;
    assert_int_equal(asr_recognize(g_model, pcm, n, NULL, &t), 0);
    assert_int_equal(t.n_segments, 0);
    assert_null(t.segments);
    asr_transcript_free(&t);
    assert_int_equal(asr_recognize(g_model, pcm, 0, NULL, &t), 0);
    assert_int_equal(t.n_segments, 0);
    asr_options_t o;
    asr_options_defaults(&o);
    o.threads = 1000;
    assert_int_equal(asr_recognize(g_model, pcm, n, &o, &t), -EINVAL);
    free(pcm);
}

static void test_model_missing(void **state)
{
    (void)state;
    asr_model_t *m = (asr_model_t *)1;
    assert_int_equal(asr_model_new("/nonexistent/hmm", NULL, NULL, &m), -ENOENT);
    assert_null(m);
    assert_int_equal(asr_model_new(NULL, "/nonexistent/x.lm.bin", NULL, &m), -ENOENT);
    assert_int_equal(asr_model_new(NULL, NULL, "/nonexistent/x.dict", &m), -ENOENT);
    /* A folder that exists but holds no acoustic model. */
    assert_int_equal(asr_model_new("/tmp", NULL, NULL, &m), CORE_EBADMEDIA);
    assert_null(m);
}

/* Damaged model files (pocketsphinx's own parsers): refused or loaded, never a crash or exit. */
static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_model_bad_files(void **state)
{
    (void)state;
    const char *tmp = getenv("PERSONA_TEST_TMP"); /* set by ctest; /tmp when run by hand */
    if (!tmp)
        tmp = "/tmp";
    assert_int_equal(core_mkdirs(tmp), 0);
    char *lm = xasprintf("%s/bad.lm.bin", tmp), *dict = xasprintf("%s/bad.dict", tmp);
    uint8_t rnd[8192];
    uint32_t x = 99;
    for (size_t i = 0; i < sizeof rnd; i++) {
        x = x * 1664525u + 1013904223u;
        rnd[i] = (uint8_t)(x >> 24);
    }
    asr_model_t *m = NULL;
    /* Random and empty language models. (A truncated binary LM is not tried: sphinxbase's
     * ngram_model_trie_read_bin reads past its buffer on one — found here under ASan — so model
     * files must be trusted: see docs/speech-recognition.md.) */
    write_file(lm, rnd, sizeof rnd);
    assert_int_equal(asr_model_new(NULL, lm, NULL, &m), CORE_EBADMEDIA);
    write_file(lm, "", 0);
    assert_int_equal(asr_model_new(NULL, lm, NULL, &m), CORE_EBADMEDIA);
    assert_null(m);
    /* A random dictionary: pocketsphinx skips lines it cannot read; if it loads, recognizing
     * still works (and hears nothing in silence). */
    write_file(dict, rnd, sizeof rnd);
    int rc = asr_model_new(NULL, NULL, dict, &m);
    assert_true(rc == 0 || rc == CORE_EBADMEDIA);
    if (rc == 0) {
        int16_t z[ASR_RATE] = {0};
        asr_transcript_t t;
        assert_int_equal(asr_recognize(m, z, ASR_RATE, NULL, &t), 0);
        assert_int_equal(t.n_segments, 0);
        asr_model_free(&m);
    }
    free(lm);
    free(dict);
}

/* ---- VAD ---- */

/* Fills pcm[a, b) with a 440 Hz tone of the given amplitude, plus low noise everywhere. */
static void tone(int16_t *pcm, size_t a, size_t b, double amp)
{
    for (size_t i = a; i < b; i++)
        pcm[i] = (int16_t)(amp * sin(2 * M_PI * 440.0 * (double)i / ASR_RATE));
}

static void test_vad_silence(void **state)
{
    (void)state;
    size_t n = 3 * ASR_RATE, ns = 99;
    int16_t *pcm = xcalloc(n, sizeof *pcm);
    asr_span_t *sp = (asr_span_t *)1;
    assert_int_equal(asr_vad(pcm, n, ASR_RATE, NULL, &sp, &ns), 0);
    assert_int_equal(ns, 0);
    assert_null(sp);
    assert_int_equal(asr_vad(NULL, 0, ASR_RATE, NULL, &sp, &ns), 0);
    assert_int_equal(ns, 0);
    asr_vad_params_t p;
    asr_vad_defaults(&p);
    p.frame_ms = 5;
    assert_int_equal(asr_vad(pcm, n, ASR_RATE, &p, &sp, &ns), -EINVAL);
    asr_vad_defaults(&p);
    assert_int_equal(asr_vad(pcm, n, 100, &p, &sp, &ns), -EINVAL);
    free(pcm);
}

static void test_vad_bursts(void **state)
{
    (void)state;
    /* Three bursts: 1.0-2.0 s, 3.5-4.0 s, 6.0-8.5 s in 10 s; low noise in between. */
    const double at[3][2] = {{1.0, 2.0}, {3.5, 4.0}, {6.0, 8.5}};
    size_t n = 10 * ASR_RATE;
    int16_t *pcm = xcalloc(n, sizeof *pcm);
    uint32_t x = 7;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        pcm[i] = (int16_t)((int)(x >> 26) - 32); /* about -60 dBFS */
    }
    for (int k = 0; k < 3; k++)
        tone(pcm, (size_t)(at[k][0] * ASR_RATE), (size_t)(at[k][1] * ASR_RATE), 8000);
    asr_vad_params_t p;
    asr_vad_defaults(&p);
    p.pad_ms = 0;
    p.hangover_ms = 100;
    asr_span_t *sp = NULL;
    size_t ns = 0;
    assert_int_equal(asr_vad(pcm, n, ASR_RATE, &p, &sp, &ns), 0);
    assert_int_equal(ns, 3);
    for (int k = 0; k < 3; k++) {
        double s = (double)sp[k].start / ASR_RATE, e = (double)sp[k].end / ASR_RATE;
        printf("vad burst %d: %.3f-%.3f s (expected %.3f-%.3f)\n", k, s, e, at[k][0], at[k][1]);
        assert_true(fabs(s - at[k][0]) <= 0.050);
        assert_true(fabs(e - at[k][1]) <= 0.050);
    }
    free(sp);
    /* With padding the spans grow by pad_ms on each side. */
    asr_vad_defaults(&p);
    assert_int_equal(asr_vad(pcm, n, ASR_RATE, &p, &sp, &ns), 0);
    assert_int_equal(ns, 3);
    assert_true(fabs((double)sp[0].start / ASR_RATE - 0.8) <= 0.050);
    free(sp);
    free(pcm);
}

/* Noise that swells from -70 to -40 dBFS over 20 s (1.5 dB/s) with two tone bursts 25 dB above
 * it: the floor follows the noise, so only the bursts are speech. A fixed floor would call
 * everything after ~7 s speech. */
static void test_vad_adaptive_floor(void **state)
{
    (void)state;
    size_t n = 20 * ASR_RATE;
    int16_t *pcm = xmalloc(n * sizeof *pcm);
    uint32_t x = 3;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / ASR_RATE, level = pow(10.0, (-70.0 + 1.5 * t) / 20.0) * 32768.0;
        x = x * 1664525u + 1013904223u;
        double noise = ((double)(x >> 8) / (double)(1u << 24) - 0.5) * 3.46 * level; /* rms=level */
        double tn = 0;
        if ((t >= 5.0 && t < 6.0) || (t >= 15.0 && t < 16.0))
            tn = 17.8 * level * 1.414 * sin(2 * M_PI * 440.0 * t); /* +25 dB */
        double v = noise + tn;
        pcm[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }
    asr_vad_params_t p;
    asr_vad_defaults(&p);
    p.pad_ms = 0;
    p.hangover_ms = 100;
    asr_span_t *sp = NULL;
    size_t ns = 0;
    assert_int_equal(asr_vad(pcm, n, ASR_RATE, &p, &sp, &ns), 0);
    for (size_t k = 0; k < ns; k++)
        printf("vad adaptive %zu: %.3f-%.3f s\n", k, (double)sp[k].start / ASR_RATE,
               (double)sp[k].end / ASR_RATE);
    assert_int_equal(ns, 2);
    assert_true(fabs((double)sp[0].start / ASR_RATE - 5.0) <= 0.05);
    assert_true(fabs((double)sp[1].end / ASR_RATE - 16.0) <= 0.05);
    free(sp);
    free(pcm);
}

static void test_vad_long(void **state)
{
    (void)state;
    /* Half a second of quiet (the noise floor's reference), then 70 s of a continuous tone
     * whose loudness varies (a 3 Hz swell), then half a second of quiet: no pause to split at,
     * so the splitter must cut it into pieces of at most 30 s that cover it. */
    size_t lead = ASR_RATE / 2, n = 70 * ASR_RATE + 2 * lead;
    int16_t *pcm = xcalloc(n, sizeof *pcm);
    for (size_t i = lead; i < n - lead; i++) {
        double t = (double)i / ASR_RATE;
        pcm[i] = (int16_t)((6000 + 3000 * sin(2 * M_PI * 3 * t)) * sin(2 * M_PI * 300 * t));
    }
    asr_span_t *sp = NULL;
    size_t ns = 0;
    assert_int_equal(asr_vad(pcm, n, ASR_RATE, NULL, &sp, &ns), 0);
    assert_true(ns >= 3);
    size_t covered = 0;
    for (size_t k = 0; k < ns; k++) {
        assert_true(sp[k].end - sp[k].start <= 30u * ASR_RATE);
        if (k)
            assert_true(sp[k].start >= sp[k - 1].end);
        covered += sp[k].end - sp[k].start;
    }
    assert_true(covered >= n - 2 * lead);
    assert_true(sp[0].start <= lead && sp[ns - 1].end >= n - lead);
    free(sp);
    free(pcm);
}

/* ---- WER scoring ---- */

static void wer_is(const char *ref, const char *hyp, size_t errs, size_t words)
{
    size_t e = 99, w = 99;
    assert_int_equal(asr_wer(ref, hyp, &e, &w), 0);
    assert_int_equal(e, errs);
    assert_int_equal(w, words);
}

static void test_wer_cases(void **state)
{
    (void)state;
    wer_is("", "", 0, 0);
    wer_is("", "one two", 2, 0);                      /* empty reference: insertions only */
    wer_is("the cat sat", "the cat sat", 0, 3);
    wer_is("the cat sat", "the big cat sat down", 2, 3); /* two insertions */
    wer_is("the cat sat", "cat", 2, 3);                  /* two deletions */
    wer_is("the cat sat", "the dog sat", 1, 3);          /* one substitution */
    wer_is("the cat sat", "", 3, 3);
    wer_is("Hello, World!  It's  me.", "hello world it's ME", 0, 4); /* case, punctuation */
    wer_is("a b c d", "b c d e", 2, 4);                            /* shift: D + I */
    wer_is("'quoted' -- dash", "quoted dash", 0, 2);
    size_t e, w;
    assert_int_equal(asr_wer(NULL, "", &e, &w), -EINVAL);
    /* Too many words is refused, not ground through. */
    size_t big = 2 * 100001;
    char *s = xmalloc(big + 1);
    for (size_t i = 0; i < big; i += 2) {
        s[i] = 'a';
        s[i + 1] = ' ';
    }
    s[big] = '\0';
    assert_int_equal(asr_wer(s, "a", &e, &w), -E2BIG);
    free(s);
}

/* ---- subtitles ---- */

static void test_vtt_srt(void **state)
{
    (void)state;
    asr_word_t w1[] = {{1230, 1500, "hello", 0.9f}, {1600, 4560, "there", 0.8f}};
    asr_word_t w2[] = {{3723004, 3724000, "late", 0.5f}};
    asr_segment_t segs[] = {{1230, 4560, "hello there", 0.85f, w1, 2},
                            {3723004, 3724000, "late", 0.5f, w2, 1}};
    asr_transcript_t t = {segs, 2};
    core_buf_t b;
    core_buf_init(&b);
    asr_format_vtt(&t, &b);
    assert_string_equal(b.data, "WEBVTT\n"
                                "\n"
                                "00:00:01.230 --> 00:00:04.560\n"
                                "hello there\n"
                                "\n"
                                "01:02:03.004 --> 01:02:04.000\n"
                                "late\n");
    core_buf_reset(&b);
    asr_format_srt(&t, &b);
    assert_string_equal(b.data, "1\n"
                                "00:00:01,230 --> 00:00:04,560\n"
                                "hello there\n"
                                "\n"
                                "2\n"
                                "01:02:03,004 --> 01:02:04,000\n"
                                "late\n");
    core_buf_reset(&b);
    asr_transcript_t empty = {NULL, 0};
    asr_format_vtt(&empty, &b);
    assert_string_equal(b.data, "WEBVTT\n");
    core_buf_reset(&b);
    asr_format_srt(&empty, &b);
    assert_int_equal(b.len, 0);
    core_buf_destroy(&b);
}

/* ---- WAV reader ---- */

static size_t make_wav(uint8_t *out, uint16_t tag, uint16_t ch, uint32_t rate, uint16_t bits,
                       const int16_t *s, uint32_t ns)
{
    uint32_t data = ns * 2;
    uint8_t *p = out;
#define PUT32(v) (p[0] = (uint8_t)(v), p[1] = (uint8_t)((v) >> 8), p[2] = (uint8_t)((v) >> 16), \
                  p[3] = (uint8_t)((v) >> 24), p += 4)
#define PUT16(v) (p[0] = (uint8_t)(v), p[1] = (uint8_t)((v) >> 8), p += 2)
    memcpy(p, "RIFF", 4), p += 4;
    PUT32(36 + data);
    memcpy(p, "WAVEfmt ", 8), p += 8;
    PUT32(16);
    PUT16(tag);
    PUT16(ch);
    PUT32(rate);
    PUT32(rate * ch * bits / 8);
    PUT16(ch * bits / 8);
    PUT16(bits);
    memcpy(p, "data", 4), p += 4;
    PUT32(data);
    for (uint32_t i = 0; i < ns; i++)
        PUT16((uint16_t)s[i]);
#undef PUT32
#undef PUT16
    return (size_t)(p - out);
}

static void test_wav(void **state)
{
    (void)state;
    int16_t s[4] = {1, -2, 32767, -32768};
    uint8_t buf[128];
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    size_t len = make_wav(buf, 1, 1, 16000, 16, s, 4);
    assert_int_equal(asr_wav_parse(buf, len, &pcm, &n, &rate), 0);
    assert_int_equal(n, 4);
    assert_int_equal(rate, 16000);
    assert_memory_equal(pcm, s, sizeof s);
    free(pcm);
    /* Every truncation is refused or gives fewer samples, never a crash; cut inside the header
     * is always an error. */
    for (size_t cut = 0; cut < len; cut++) {
        int rc = asr_wav_parse(buf, cut, &pcm, &n, &rate);
        assert_true(rc == CORE_EBADMEDIA);
        assert_null(pcm);
    }
    assert_int_equal(asr_wav_parse(NULL, 0, &pcm, &n, &rate), CORE_EBADMEDIA);
    /* Stereo, 8-bit, float: not what we read. */
    len = make_wav(buf, 1, 2, 16000, 16, s, 4);
    assert_int_equal(asr_wav_parse(buf, len, &pcm, &n, &rate), CORE_EBADMEDIA);
    len = make_wav(buf, 1, 1, 16000, 8, s, 4);
    assert_int_equal(asr_wav_parse(buf, len, &pcm, &n, &rate), CORE_EBADMEDIA);
    len = make_wav(buf, 3, 1, 16000, 16, s, 4);
    assert_int_equal(asr_wav_parse(buf, len, &pcm, &n, &rate), CORE_EBADMEDIA);
    /* A data chunk claiming 4 GB in a small file. */
    len = make_wav(buf, 1, 1, 16000, 16, s, 4);
    buf[40] = buf[41] = buf[42] = buf[43] = 0xff;
    assert_int_equal(asr_wav_parse(buf, len, &pcm, &n, &rate), CORE_EBADMEDIA);
    /* A huge unknown chunk before fmt. */
    uint8_t odd[64] = "RIFF\0\0\0\0WAVEjunk\xff\xff\xff\x7f";
    assert_int_equal(asr_wav_parse(odd, sizeof odd, &pcm, &n, &rate), CORE_EBADMEDIA);
    /* Random bytes, with and without a valid RIFF/WAVE start. */
    uint32_t x = 12345;
    uint8_t rnd[512];
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof rnd; i++) {
            x = x * 1664525u + 1013904223u;
            rnd[i] = (uint8_t)(x >> 24);
        }
        if (round & 1)
            memcpy(rnd, buf, 36); /* valid header up to the data chunk */
        int rc = asr_wav_parse(rnd, (size_t)(x % sizeof rnd), &pcm, &n, &rate);
        if (rc == 0)
            free(pcm);
        else
            assert_true(rc == CORE_EBADMEDIA);
    }
    /* A file larger than the read limit. */
    assert_int_equal(asr_wav_read(LIBRIVOX "/" "sense_and_sensibility_01_austen_64kb-0870.wav",
                                  1000, &pcm, &n, &rate),
                     -EFBIG);
    assert_int_equal(asr_wav_read("/nonexistent.wav", 1000, &pcm, &n, &rate), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wer_cases),    cmocka_unit_test(test_vtt_srt),
        cmocka_unit_test(test_wav),          cmocka_unit_test(test_vad_silence),
        cmocka_unit_test(test_vad_bursts),   cmocka_unit_test(test_vad_adaptive_floor),
        cmocka_unit_test(test_vad_long),
        cmocka_unit_test(test_model_missing), cmocka_unit_test(test_model_bad_files),
        cmocka_unit_test(test_silence_empty),
        cmocka_unit_test(test_threads_same), cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_librivox_wer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
