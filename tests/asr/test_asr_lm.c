/* test_asr_lm: the personal vocabulary language model (src/asr/lm.c, g2p.c). Unit tests of the
 * text normalization, the Witten-Bell trigram model (probabilities sum to 1 for every history
 * within 1e-3) and the letter-to-sound rules, each with empty, huge and random input; then the
 * effect: sentences with made-up names are synthesized with espeak-ng (src/speech, resampled to
 * 16 kHz), recognized with the general model (the names are missed), a personal model is built
 * from a few texts that use the names, and the same audio is recognized with it: the names are
 * found and the word error rate drops (both printed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asr/asr.h"
#include "core/core.h"
#include "speech/speech.h"

static uint32_t g_rng = 12345;
static uint32_t rnd(void)
{
    g_rng = g_rng * 1664525u + 1013904223u;
    return g_rng >> 8;
}

static char *normalize(const char *s, size_t len)
{
    core_buf_t b;
    core_buf_init(&b);
    assert_int_equal(asr_lm_normalize(s, len, &b), 0);
    core_buf_append(&b, "", 1);
    return core_buf_steal(&b);
}

static void test_normalize(void **state)
{
    (void)state;
    const char *in = "Hello, World! It's  O'Brien's 'quote' 123 done.\n\nNext;line?? x";
    char *out = normalize(in, strlen(in));
    assert_string_equal(out, "hello world\nit's o'brien's quote done\nnext\nline\nx\n");
    free(out);
    out = normalize("", 0);
    assert_string_equal(out, "");
    free(out);
    out = normalize("... !!! 42 ''' \n", 16);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(asr_lm_normalize(NULL, 0, NULL), -EINVAL);
    /* a word longer than ASR_LM_MAX_WORD is dropped; a truncated length cuts the text */
    char longw[200];
    memset(longw, 'a', sizeof longw - 1);
    longw[sizeof longw - 1] = 0;
    out = normalize(longw, strlen(longw));
    assert_string_equal(out, "");
    free(out);
    out = normalize("abc def", 5);
    assert_string_equal(out, "abc d\n");
    free(out);
    /* random bytes (NULs included): only lower-case letters, apostrophes, spaces, newlines */
    size_t n = 1u << 20;
    char *r = malloc(n);
    for (size_t i = 0; i < n; i++)
        r[i] = (char)rnd();
    out = normalize(r, n);
    for (char *p = out; *p; p++)
        assert_true((*p >= 'a' && *p <= 'z') || *p == '\'' || *p == ' ' || *p == '\n');
    assert_true(strlen(out) > 1000);
    free(out);
    free(r);
}

static void check_sums(const asr_ngram_t *m)
{
    size_t v = asr_ngram_vocab_size(m);
    /* histories: none, each word and each pair of words when the vocabulary is small, else 40
     * random words and 40 random pairs */
    bool all = v <= 20;
    size_t n_h = all ? 1 + v + v * v : 81;
    for (size_t h = 0; h < n_h; h++) {
        const char *h1 = NULL, *h2 = NULL;
        if (h == 0) {
        } else if (all ? h < 1 + v : h <= 40) {
            h1 = asr_ngram_word(m, all ? h - 1 : rnd() % v);
        } else {
            size_t k = all ? h - 1 - v : rnd() % (v * v);
            h1 = asr_ngram_word(m, k % v);
            h2 = asr_ngram_word(m, k / v);
        }
        double sum = 0;
        for (size_t w = 0; w < v; w++) {
            double p = asr_ngram_prob(m, asr_ngram_word(m, w), h1, h2);
            assert_true(p >= 0 && p <= 1);
            sum += p;
        }
        if (fabs(sum - 1) > 1e-3)
            fail_msg("sum %f for history '%s %s'", sum, h2 ? h2 : "", h1 ? h1 : "");
    }
    assert_true(asr_ngram_prob(m, "<s>", NULL, NULL) == 0);
    assert_true(asr_ngram_prob(m, "never-seen", NULL, NULL) == 0);
}

static void test_ngram(void **state)
{
    (void)state;
    const char *texts[] = {"The cat sat on the mat. The cat ran!", NULL,
                           "A dog sat on the cat; the end", ""};
    asr_ngram_t *m = NULL;
    assert_int_equal(asr_ngram_new(texts, 4, &m), 0);
    /* <s> </s> the cat sat on mat ran a dog end */
    assert_int_equal(asr_ngram_vocab_size(m), 11);
    check_sums(m);
    /* seen continuations beat unseen ones; the trigram context matters */
    assert_true(asr_ngram_prob(m, "cat", "the", NULL) > asr_ngram_prob(m, "dog", "the", NULL));
    assert_true(asr_ngram_prob(m, "sat", "cat", "the") > asr_ngram_prob(m, "ran", "cat", "on"));
    /* exact Witten-Bell values: unigram "the" c=5 of N=21 tokens (</s> included), T=10 types,
     * 10 predictable words: (5 + 10 * 0.1) / (21 + 10) */
    assert_true(fabs(asr_ngram_prob(m, "the", NULL, NULL) - 6.0 / 31.0) < 1e-9);
    asr_ngram_free(&m);
    asr_ngram_free(&m);

    assert_int_equal(asr_ngram_new(NULL, 0, &m), 0); /* empty: only </s> can follow */
    assert_true(fabs(asr_ngram_prob(m, "</s>", NULL, NULL) - 1) < 1e-12);
    check_sums(m);
    asr_ngram_free(&m);
    assert_int_equal(asr_ngram_new(NULL, 1, &m), -EINVAL);

    /* random bytes and a huge random-word text: bounded, still normalized */
    size_t n = 3u << 20;
    char *r = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        r[i] = (char)(rnd() % 255 + 1);
    r[n] = 0;
    const char *one[] = {r};
    assert_int_equal(asr_ngram_new(one, 1, &m), 0);
    check_sums(m);
    asr_ngram_free(&m);
    for (size_t i = 0; i < n; i++)
        r[i] = (rnd() % 6 == 0) ? ' ' : (char)('a' + rnd() % 26);
    const char *four[] = {r, r, r, r}; /* 12 MB: past ASR_LM_MAX_TEXT_BYTES */
    assert_int_equal(asr_ngram_new(four, 4, &m), 0);
    assert_true(asr_ngram_vocab_size(m) <= ASR_LM_MAX_VOCAB + 2);
    check_sums(m);
    asr_ngram_free(&m);
    free(r);
}

static const char *const ARPABET[] = {
    "AA", "AE", "AH", "AO", "AW", "AY", "B",  "CH", "D",  "DH", "EH", "ER", "EY", "F",
    "G",  "HH", "IH", "IY", "JH", "K",  "L",  "M",  "N",  "NG", "OW", "OY", "P",  "R",
    "S",  "SH", "T",  "TH", "UH", "UW", "V",  "W",  "Y",  "Z",  "ZH"};

static void check_phones(const char *s)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    int n = 0;
    for (char *p = strtok_r(buf, " ", &save); p; p = strtok_r(NULL, " ", &save), n++) {
        size_t k = 0;
        while (k < sizeof ARPABET / sizeof *ARPABET && strcmp(ARPABET[k], p) != 0)
            k++;
        if (k == sizeof ARPABET / sizeof *ARPABET)
            fail_msg("not an ARPAbet phone: '%s' in '%s'", p, s);
    }
    assert_true(n > 0);
}

static void test_g2p(void **state)
{
    (void)state;
    char out[256];
    struct {
        const char *w, *ph;
    } cases[] = {{"cat", "K AE T"},       {"Ship", "SH IH P"},     {"phone", "F AA N"},
                 {"city", "S IH T IY"},   {"Marbeck", "M AA R B EH K"},
                 {"o'neil", "AA N EY L"}, {"yes", "Y EH S"},       {"queen", "K W IY N"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(asr_g2p(cases[i].w, out, sizeof out), 0);
        if (strcmp(out, cases[i].ph) != 0)
            fail_msg("%s -> '%s', want '%s'", cases[i].w, out, cases[i].ph);
    }
    assert_int_equal(asr_g2p("", out, sizeof out), -EINVAL);
    assert_int_equal(asr_g2p("'''", out, sizeof out), -EINVAL);
    assert_int_equal(asr_g2p("abc1", out, sizeof out), -EINVAL);
    assert_int_equal(asr_g2p("caf\xc3\xa9", out, sizeof out), -EINVAL);
    assert_int_equal(asr_g2p(NULL, out, sizeof out), -EINVAL);
    assert_int_equal(asr_g2p("strength", out, 4), -ENOSPC);
    char huge[100];
    memset(huge, 'b', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    assert_int_equal(asr_g2p(huge, out, sizeof out), -EINVAL); /* longer than ASR_LM_MAX_WORD */
    for (int i = 0; i < 2000; i++) {
        char w[ASR_LM_MAX_WORD + 1];
        size_t n = 1 + rnd() % ASR_LM_MAX_WORD;
        for (size_t k = 0; k < n; k++)
            w[k] = (char)('a' + rnd() % 26);
        w[n] = 0;
        assert_int_equal(asr_g2p(w, out, sizeof out), 0);
        check_phones(out);
        /* random bytes: either a valid pronunciation or -EINVAL */
        for (size_t k = 0; k < n; k++)
            w[k] = (char)(rnd() % 255 + 1);
        int rc = asr_g2p(w, out, sizeof out);
        assert_true(rc == 0 || rc == -EINVAL);
        if (rc == 0)
            check_phones(out);
    }
}

/* ---- the effect on recognition ---- */

static const char *const NAMES[] = {"marbeck", "tobrin", "galvex"};
static const char *const SPOKEN[] = {
    "please send the report to marbeck before noon",
    "tobrin will call you about the garden tomorrow",
    "we bought a new galvex for the kitchen",
};
static const char *const TEXTS[] = {
    "Marbeck is my manager. I sent the report to Marbeck yesterday. Marbeck liked it.",
    "Tobrin is my brother. Tobrin will call you. Tobrin lives near the garden.",
    "The Galvex is a coffee machine. Our new Galvex makes good coffee. We bought a Galvex.",
    "Send the report to Marbeck before noon, and ask Tobrin about the Galvex.",
};

static int16_t *speak16k(const char *text, size_t *n)
{
    int16_t *pcm = NULL;
    size_t ns = 0;
    int rate = 0;
    speech_config_t c;
    speech_config_default(&c);
    c.rate = 150;
    assert_int_equal(speech_synthesize(&c, text, strlen(text), &pcm, &ns, &rate), 0);
    assert_true(ns > 0 && rate > 0);
    /* resample to 16 kHz: a 3-tap smoothing (espeak-ng has little energy above 8 kHz) then
     * linear interpolation; 0.5 s of silence around the speech for the VAD */
    size_t pad = ASR_RATE / 2, m = (size_t)((double)ns * ASR_RATE / rate);
    int16_t *out = calloc(m + 2 * pad, sizeof *out);
    for (size_t i = 0; i < m; i++) {
        double x = (double)i * rate / ASR_RATE;
        size_t k = (size_t)x;
        double f = x - (double)k, a = pcm[k], b = k + 1 < ns ? pcm[k + 1] : a;
        out[pad + i] = (int16_t)lrint(a + (b - a) * f);
    }
    free(pcm);
    *n = m + 2 * pad;
    return out;
}

/* Recognizes every sentence; returns how many names were found, adds up the WER parts. */
static int run_all(asr_model_t *model, int16_t *const *pcm, const size_t *n, size_t *errs,
                   size_t *words, const char *label)
{
    int found = 0;
    *errs = *words = 0;
    for (size_t i = 0; i < 3; i++) {
        asr_transcript_t t;
        assert_int_equal(asr_recognize(model, pcm[i], n[i], NULL, &t), 0);
        char *hyp = asr_transcript_text(&t);
        size_t e = 0, w = 0;
        assert_int_equal(asr_wer(SPOKEN[i], hyp, &e, &w), 0);
        *errs += e;
        *words += w;
        char pad[64];
        snprintf(pad, sizeof pad, " %s ", NAMES[i]);
        core_buf_t b;
        core_buf_init(&b);
        core_buf_printf(&b, " %s ", hyp);
        core_buf_append(&b, "", 1);
        if (strstr(b.data, pad))
            found++;
        printf("asr_lm %s: ref: %s\n  hyp: %s\n", label, SPOKEN[i], hyp);
        core_buf_destroy(&b);
        free(hyp);
        asr_transcript_free(&t);
    }
    return found;
}

static void test_effect(void **state)
{
    (void)state;
    int16_t *pcm[3];
    size_t n[3];
    for (size_t i = 0; i < 3; i++)
        pcm[i] = speak16k(SPOKEN[i], &n[i]);
    asr_model_t *general = NULL, *personal = NULL;
    assert_int_equal(asr_model_new(NULL, NULL, NULL, &general), 0);
    size_t e0, w0, e1, w1;
    int before = run_all(general, pcm, n, &e0, &w0, "general");
    asr_model_free(&general);

    char dir[] = "/tmp/test_asr_lm.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char out[256], lm[300], dict[300];
    snprintf(out, sizeof out, "%s/lm/1", dir);
    snprintf(lm, sizeof lm, "%s/lm.bin", out);
    snprintf(dict, sizeof dict, "%s/dict", out);
    assert_int_equal(asr_lm_build(TEXTS, 4, out, NULL), 0);
    /* the account's own trigram model is valid ARPA: pocketsphinx loads it as the only LM */
    char arpa[300];
    snprintf(arpa, sizeof arpa, "%s/personal.arpa", out);
    assert_int_equal(asr_model_new(NULL, arpa, dict, &personal), 0);
    asr_model_free(&personal);
    assert_int_equal(asr_model_new(NULL, lm, dict, &personal), 0);
    int after = run_all(personal, pcm, n, &e1, &w1, "personal");
    asr_model_free(&personal);
    double wer0 = 100.0 * (double)e0 / (double)w0, wer1 = 100.0 * (double)e1 / (double)w1;
    printf("asr_lm names found: general %d/3, personal %d/3; WER general %zu/%zu = %.1f%%, "
           "personal %zu/%zu = %.1f%%\n",
           before, after, e0, w0, wer0, e1, w1, wer1);
    assert_true(before <= 1);
    assert_true(after >= 2);
    assert_true(e1 < e0);

    /* bad arguments, a missing general model */
    asr_lm_options_t o;
    asr_lm_options_defaults(&o);
    o.weight = 1.5;
    assert_int_equal(asr_lm_build(TEXTS, 4, out, &o), -EINVAL);
    asr_lm_options_defaults(&o);
    o.general_lm = "/nonexistent/lm.bin";
    assert_int_equal(asr_lm_build(TEXTS, 4, out, &o), -ENOENT);
    assert_int_equal(asr_lm_build(TEXTS, 4, NULL, NULL), -EINVAL);

    unlink(lm);
    unlink(dict);
    unlink(arpa);
    rmdir(out);
    snprintf(out, sizeof out, "%s/lm", dir);
    rmdir(out);
    rmdir(dir);
    for (size_t i = 0; i < 3; i++)
        free(pcm[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_ngram),
        cmocka_unit_test(test_g2p),
        cmocka_unit_test(test_effect),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    speech_shutdown();
    return rc;
}
