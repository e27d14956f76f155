/* test_speech: unit tests of the speech module — synthesized speech of a known sentence is
 * non-silent and of plausible length, the rate changes the length, empty and blank text give
 * no samples, 100 kB of text and random bytes are handled in bounded time, an unknown voice is
 * a clear error, bad settings are refused, several threads may synthesize at once (the module
 * serializes them), shutdown is final, WAV files are well-formed and written atomically, and the sentence
 * splitter's cases. File tests work under $PERSONA_TEST_TMP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "speech/speech.h"

static const char SENTENCE[] = "The quick brown fox jumps over the lazy dog near the river bank.";
#define SENTENCE_WORDS 13

static double rms(const int16_t *p, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)p[i] * p[i];
    return n ? sqrt(s / (double)n) : 0;
}

static double synth_seconds(const speech_config_t *cfg, const char *text, double *rms_out) {
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    assert_int_equal(speech_synthesize(cfg, text, strlen(text), &pcm, &n, &rate), 0);
    assert_true(rate >= 8000);
    if (rms_out)
        *rms_out = rms(pcm, n);
    free(pcm);
    return (double)n / rate;
}

static void test_known_sentence(void **state) {
    (void)state;
    double r = 0;
    double secs = synth_seconds(NULL, SENTENCE, &r);
    assert_true(r > 300.0); /* speech, not silence */
    assert_true(secs > 0.2 * SENTENCE_WORDS && secs < 0.8 * SENTENCE_WORDS);
}

static void test_rate_changes_duration(void **state) {
    (void)state;
    speech_config_t slow, fast;
    speech_config_default(&slow);
    speech_config_default(&fast);
    slow.rate = 100;
    fast.rate = 350;
    double a = synth_seconds(&slow, SENTENCE, NULL), b = synth_seconds(&fast, SENTENCE, NULL);
    assert_true(a > b * 1.8);
}

static void test_pitch_volume(void **state) {
    (void)state;
    speech_config_t c;
    speech_config_default(&c);
    c.volume = 20;
    double quiet = 0, loud = 0;
    synth_seconds(&c, SENTENCE, &quiet);
    c.volume = 150;
    c.pitch = 90;
    synth_seconds(&c, SENTENCE, &loud);
    assert_true(loud > quiet * 2);
}

static void test_empty_and_blank(void **state) {
    (void)state;
    const char *cases[] = {"", "   ", "\n\n\t", "\x01\x02\x03"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int16_t *pcm = (int16_t *)1;
        size_t n = 99;
        int rate = 0;
        assert_int_equal(speech_synthesize(NULL, cases[i], strlen(cases[i]), &pcm, &n, &rate), 0);
        assert_null(pcm);
        assert_int_equal(n, 0);
    }
    int16_t *pcm = NULL;
    size_t n = 0;
    assert_int_equal(speech_synthesize(NULL, NULL, 0, &pcm, &n, NULL), 0);
    assert_int_equal(n, 0);
}

static void test_unknown_voice(void **state) {
    (void)state;
    speech_config_t c;
    speech_config_default(&c);
    c.voice = "no-such-voice-xyz";
    int16_t *pcm = NULL;
    size_t n = 5;
    int rc = speech_synthesize(&c, SENTENCE, strlen(SENTENCE), &pcm, &n, NULL);
    assert_int_equal(rc, SPEECH_EVOICE);
    assert_null(pcm);
    assert_int_equal(n, 0);
    assert_non_null(strstr(speech_strerror(rc), "voice"));
    /* the module recovers: the next call with a good voice works */
    assert_true(synth_seconds(NULL, "Hello there.", NULL) > 0.2);
    c.voice = "de";
    assert_true(synth_seconds(&c, "Guten Morgen.", NULL) > 0.2);
}

static void test_bad_config(void **state) {
    (void)state;
    speech_config_t c;
    int16_t *pcm = NULL;
    size_t n = 0;
    int bad[][4] = {{79, 50, 100, 10}, {451, 50, 100, 10}, {175, -1, 100, 10},
                    {175, 100, 100, 10}, {175, 50, 201, 10}, {175, 50, 100, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        speech_config_default(&c);
        c.rate = bad[i][0], c.pitch = bad[i][1], c.volume = bad[i][2], c.max_seconds = bad[i][3];
        assert_int_equal(speech_config_check(&c), -EINVAL);
        assert_int_equal(speech_synthesize(&c, "hi", 2, &pcm, &n, NULL), -EINVAL);
    }
    speech_config_default(&c);
    c.voice = "";
    assert_int_equal(speech_synthesize(&c, "hi", 2, &pcm, &n, NULL), -EINVAL);
}

static void test_huge_text(void **state) {
    (void)state;
    size_t len = 100 * 1024;
    char *big = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        big[i] = "persona speaks. "[i % 16];
    big[len] = '\0';
    speech_config_t c;
    speech_config_default(&c);
    c.max_seconds = 20;
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    int64_t t0 = core_mono_ns();
    int rc = speech_synthesize(&c, big, len, &pcm, &n, &rate);
    double secs = (double)(core_mono_ns() - t0) / 1e9;
    assert_int_equal(rc, CORE_ELIMIT); /* far more than 20 s of audio */
    assert_null(pcm);
    assert_true(secs < 30.0);
    /* 100 kB of punctuation and blanks: bounded time too */
    for (size_t i = 0; i < len; i++)
        big[i] = ".,; \n"[i % 5];
    t0 = core_mono_ns();
    rc = speech_synthesize(&c, big, len, &pcm, &n, &rate);
    assert_true(rc == 0 || rc == CORE_ELIMIT);
    assert_true((double)(core_mono_ns() - t0) / 1e9 < 30.0);
    free(pcm);
    free(big);
}

static void test_random_bytes(void **state) {
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    char buf[600];
    speech_config_t c;
    speech_config_default(&c);
    c.max_seconds = 60;
    for (int round = 0; round < 40; round++) {
        size_t len = 1 + (size_t)(x % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (char)(x >> 24);
        }
        int16_t *pcm = NULL;
        size_t n = 0;
        int rc = speech_synthesize(&c, buf, len, &pcm, &n, NULL);
        assert_true(rc == 0 || rc == CORE_ELIMIT);
        free(pcm);
    }
    /* invalid UTF-8 inside real words still speaks the words */
    const char bad[] = "Hello \xC3\x28 world \xF0\x28\x8C\xBC again \xED\xA0\x80 friend.";
    double r = 0;
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    assert_int_equal(speech_synthesize(NULL, bad, sizeof bad - 1, &pcm, &n, &rate), 0);
    r = rms(pcm, n);
    assert_true(r > 300.0 && (double)n / rate > 0.8);
    free(pcm);
    /* NUL bytes inside: read as spaces, the text after them is spoken too */
    const char nul[] = "one\0two\0three four five six";
    double with_nul = 0;
    assert_int_equal(speech_synthesize(NULL, nul, sizeof nul - 1, &pcm, &n, &rate), 0);
    with_nul = (double)n / rate;
    free(pcm);
    assert_true(with_nul > synth_seconds(NULL, "one", NULL) * 2);
}

static void *thread_synth(void *arg) {
    int *ok = arg;
    for (int i = 0; i < 3; i++) {
        int16_t *pcm = NULL;
        size_t n = 0;
        int rate = 0;
        speech_config_t c;
        speech_config_default(&c);
        c.rate = 120 + 60 * (i % 3);
        if (speech_synthesize(&c, SENTENCE, strlen(SENTENCE), &pcm, &n, &rate) == 0 && n > 0 &&
            rms(pcm, n) > 300.0)
            (*ok)++;
        free(pcm);
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    pthread_t t[4];
    int ok[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_synth, &ok[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(ok[i], 3);
    }
}

/* Runs last: shutdown is final (espeak-ng cannot restart), and repeating it is harmless. */
static void test_shutdown(void **state) {
    (void)state;
    assert_int_equal(speech_init(), 0);
    speech_shutdown();
    speech_shutdown();
    int16_t *pcm = NULL;
    size_t n = 0;
    assert_int_equal(speech_synthesize(NULL, "Again.", 6, &pcm, &n, NULL), SPEECH_EINIT);
    assert_int_equal(speech_init(), SPEECH_EINIT);
    assert_null(pcm);
}

/* ---- WAV ---------------------------------------------------------------------------- */
static char *tmp_path(const char *name) {
    const char *base = getenv("PERSONA_TEST_TMP");
    if (!base)
        base = "/tmp/persona-test-speech";
    assert_int_equal(core_mkdirs(base), 0);
    return xasprintf("%s/%s", base, name);
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static void test_wav(void **state) {
    (void)state;
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    assert_int_equal(speech_synthesize(NULL, SENTENCE, strlen(SENTENCE), &pcm, &n, &rate), 0);
    char *path = tmp_path("a.wav");
    assert_int_equal(speech_write_wav(path, pcm, n, rate), 0);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(core_read_file(path, 64u << 20, &data, &len), 0);
    const uint8_t *h = (const uint8_t *)data;
    assert_int_equal(len, 44 + 2 * n);
    assert_memory_equal(h, "RIFF", 4);
    assert_int_equal(rd32(h + 4), len - 8);
    assert_memory_equal(h + 8, "WAVEfmt ", 8);
    assert_int_equal(rd16(h + 20), 1);
    assert_int_equal(rd16(h + 22), 1);
    assert_int_equal(rd32(h + 24), (uint32_t)rate);
    assert_int_equal(rd16(h + 34), 16);
    assert_memory_equal(h + 36, "data", 4);
    assert_int_equal(rd32(h + 40), 2 * n);
    assert_memory_equal(h + 44, pcm, 2 * n);
    free(data);

    /* an empty WAV is valid; overwrite is atomic and leaves no temporary file */
    assert_int_equal(speech_write_wav(path, NULL, 0, rate), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 44);
    char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        assert_null(strstr(e->d_name, ".tmp-"));
    closedir(d);

    /* failure leaves the old file alone */
    char *nodir = tmp_path("no/such/dir/b.wav");
    assert_int_equal(speech_write_wav(nodir, pcm, n, rate), -ENOENT);
    assert_int_equal(speech_write_wav(path, pcm, n, 0), -EINVAL);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 44);
    free(nodir);
    free(dir);
    free(path);
    free(pcm);
}

/* ---- sentences ------------------------------------------------------------------------ */
static size_t next(const char *s, bool at_end) { return speech_next_sentence(s, strlen(s), at_end, 0); }

static void test_sentences(void **state) {
    (void)state;
    assert_int_equal(next("Hello there. How are", false), 13);
    assert_int_equal(next("Hello there.", false), 0); /* "." might be "3.5" */
    assert_int_equal(next("Hello there.", true), 12);
    assert_int_equal(next("Hello there", false), 0);
    assert_int_equal(next("Hello there", true), 11);
    assert_int_equal(next("", true), 0);
    assert_int_equal(next("Really?! Yes.", false), 9);
    assert_int_equal(next("He said \"stop.\" Then", false), 16);
    assert_int_equal(next("Pi is 3.14 roughly. And", false), 20);
    assert_int_equal(next("Dr. Smith came. Then", false), 16);
    assert_int_equal(next("See e.g. this one. X", false), 19);
    assert_int_equal(next("J. R. Tolkien wrote. X", false), 21);
    assert_int_equal(next("Wait\u2026 what", false), strlen("Wait\u2026 "));
    assert_int_equal(next("\u4f60\u597d\u3002\u518d\u89c1", false), strlen("\u4f60\u597d\u3002"));
    assert_int_equal(next("line one\nline two", false), 9);
    assert_int_equal(next("\n\nfirst. x", false), 9);
    assert_int_equal(next("end!   \n  next", false), 10);

    /* long run without an end: cut at a blank within the limit, on a UTF-8 boundary */
    char run[1000];
    for (size_t i = 0; i < sizeof run - 1; i++)
        run[i] = (i % 10 == 9) ? ' ' : 'a';
    run[sizeof run - 1] = '\0';
    size_t k = speech_next_sentence(run, strlen(run), false, 400);
    assert_true(k > 300 && k <= 400 && run[k - 1] == ' ');
    char utf[1000];
    for (size_t i = 0; i + 2 < sizeof utf; i += 2)
        memcpy(utf + i, "\xC3\xA9", 2);
    k = speech_next_sentence(utf, 998, false, 401);
    assert_true(k > 0 && k <= 401 && k % 2 == 0);

    /* splitting a text sentence by sentence gives back the whole text */
    const char *para = "First one. Second one! Third? Fourth\u2026 fifth line\nlast bit";
    size_t off = 0, count = 0, total = strlen(para);
    while (off < total) {
        size_t n = speech_next_sentence(para + off, total - off, true, 0);
        assert_true(n > 0);
        off += n;
        count++;
    }
    assert_int_equal(off, total);
    assert_int_equal(count, 6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_sentence),   cmocka_unit_test(test_rate_changes_duration),
        cmocka_unit_test(test_pitch_volume),     cmocka_unit_test(test_empty_and_blank),
        cmocka_unit_test(test_unknown_voice),    cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_huge_text),        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_threads),          cmocka_unit_test(test_wav),
        cmocka_unit_test(test_sentences),        cmocka_unit_test(test_shutdown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    speech_shutdown(); /* in case test_shutdown failed before it */
    return failed;
}
