/* test_tts: the server-side additions to the speech module — the SSML-lite validator (good,
 * bad, every truncation of good markup, random bytes), SSML reaching espeak-ng (a 2 s <break>
 * lengthens the audio by about 2 s), plain text whose '<' is spoken rather than parsed, and the
 * voice list (sorted, unique, en-us present, listed voices usable). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "speech/speech.h"

static int check(const char *s)
{
    char err[200];
    int rc = speech_ssml_check(s, strlen(s), err, sizeof err);
    if (rc < 0)
        assert_true(strlen(err) > 0);
    return rc;
}

static const char *const GOOD[] = {
    "",
    "plain words",
    "<speak>Hello</speak>",
    "<speak>Hello <break time=\"500ms\"/> world</speak>",
    "a <break time='1.5s' /> b",
    "<break/>",
    "<speak><emphasis level=\"strong\">yes</emphasis> and <emphasis>no</emphasis></speak>",
    "<prosody rate=\"slow\" pitch=\"+20%\" volume=\"loud\">x</prosody>",
    "<prosody rate=\"-30%\"><prosody volume=\"x-soft\">nested</prosody></prosody>",
    "fish &amp; chips &lt;3 &gt; &quot;q&quot; &apos;",
    "<speak>\n  <prosody pitch='low'>multi\nline</prosody>\n</speak>",
};

static const char *const BAD[] = {
    "<audio src=\"http://x/a.wav\"/>",
    "<voice name=\"de\">x</voice>",
    "<speak><say-as interpret-as=\"digits\">12</say-as></speak>",
    "<!-- comment -->",
    "<?xml version=\"1.0\"?><speak>x</speak>",
    "<![CDATA[x]]>",
    "<speak>x",
    "<emphasis>x</prosody>",
    "x</speak>",
    "<break time=\"11s\"/>",
    "<break time=\"fast\"/>",
    "<break time=\"500\"/>",
    "<break>x</break>",
    "<prosody rate=\"warp\">x</prosody>",
    "<prosody onload=\"x\">x</prosody>",
    "<emphasis level=\"loud\">x</emphasis>",
    "a & b",
    "&nbsp;",
    "a > b",
    "<speak><speak>x</speak></speak>",
    "<speak>x</speak><break/>",
    "<prosody rate=slow>x</prosody>",
    "<prosody rate=\"slow\"pitch=\"low\">x</prosody>",
    "<prosody rate=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">x</prosody>",
    "< speak>",
    "<>",
};

static void test_ssml_good_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof GOOD / sizeof GOOD[0]; i++) {
        if (check(GOOD[i]) != 0)
            fail_msg("refused good SSML: %s", GOOD[i]);
    }
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        if (check(BAD[i]) != SPEECH_ESSML)
            fail_msg("accepted bad SSML: %s", BAD[i]);
    }
    /* the message names the problem and where */
    char err[200];
    const char *s = "ok <voice name='x'>y</voice>";
    assert_int_equal(speech_ssml_check(s, strlen(s), err, sizeof err), SPEECH_ESSML);
    assert_non_null(strstr(err, "<voice>"));
    assert_non_null(strstr(err, "byte 3"));
    /* NUL inside, tiny error buffer, NULL buffer */
    assert_int_equal(speech_ssml_check("a\0b", 3, err, 4), SPEECH_ESSML);
    assert_int_equal(strlen(err), 3);
    assert_int_equal(speech_ssml_check("<x>", 3, NULL, 0), SPEECH_ESSML);
    /* nesting bound */
    char deep[40 * 11 + 1] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "<emphasis>");
    assert_int_equal(check(deep), SPEECH_ESSML);
}

static void test_ssml_truncated(void **state)
{
    (void)state;
    /* Every prefix of well-formed markup either passes (a prefix ending between tags with all
     * closed) or fails cleanly; the prefixes that end inside a tag always fail. */
    const char *s = "<speak>Hi <prosody rate=\"slow\">there <break time=\"250ms\"/> you</prosody>"
                    " &amp; me</speak>";
    size_t n = strlen(s);
    int passed = 0;
    for (size_t k = 0; k < n; k++) {
        char err[200];
        int rc = speech_ssml_check(s, k, err, sizeof err);
        assert_true(rc == 0 || rc == SPEECH_ESSML);
        passed += rc == 0;
    }
    assert_int_equal(speech_ssml_check(s, n, NULL, 0), 0);
    assert_int_equal(passed, 1); /* only the empty prefix: <speak> is open in all others */
}

static void test_ssml_random(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    const char alphabet[] = "<>/=\"' &;abekmprstvx!?-";
    char buf[256];
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(x % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (round & 1) ? (char)(x & 0xFF) : alphabet[x % (sizeof alphabet - 1)];
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        char err[64];
        int rc = speech_ssml_check(buf, len, err, sizeof err);
        assert_true(rc == 0 || rc == SPEECH_ESSML);
    }
}

static double seconds_of(const speech_config_t *c, const char *text)
{
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    int rc = speech_synthesize(c, text, strlen(text), &pcm, &n, &rate);
    if (rc != 0)
        fail_msg("synthesize '%s': %s", text, speech_strerror(rc));
    free(pcm);
    return rate ? (double)n / rate : 0;
}

static void test_ssml_synthesis(void **state)
{
    (void)state;
    speech_config_t c;
    speech_config_default(&c);
    c.ssml = true;
    double plain = seconds_of(&c, "<speak>one two</speak>");
    double paused = seconds_of(&c, "<speak>one <break time=\"2s\"/> two</speak>");
    assert_true(plain > 0.3);
    assert_true(paused - plain > 1.7 && paused - plain < 2.5);
    /* markup outside the subset never reaches espeak-ng */
    int16_t *pcm = NULL;
    size_t n = 7;
    const char *bad = "<audio src='/etc/passwd'/>";
    assert_int_equal(speech_synthesize(&c, bad, strlen(bad), &pcm, &n, NULL), SPEECH_ESSML);
    assert_null(pcm);
    assert_int_equal(n, 0);
    /* plain text: the same markup is spoken, not obeyed — no 2 s pause, and words are said */
    c.ssml = false;
    double spoken = seconds_of(&c, "one <break time=\"2s\"/> two");
    double words = seconds_of(&c, "one two");
    assert_true(spoken > words + 0.5); /* "break time equals two s" is said aloud */
    double amp = seconds_of(&c, "a & b < c");
    assert_true(amp > seconds_of(&c, "a b c"));
}

static void test_voices(void **state)
{
    (void)state;
    speech_voice_t *v = NULL;
    size_t n = 0;
    assert_int_equal(speech_list_voices(&v, &n), 0);
    assert_true(n > 10);
    bool en_us = false;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(strcmp(v[i - 1].name, v[i].name) < 0);
        en_us |= !strcmp(v[i].name, "en-us");
        assert_true(strlen(v[i].name) > 0);
    }
    assert_true(en_us);
    /* a few listed voices synthesize */
    speech_config_t c;
    speech_config_default(&c);
    for (size_t i = 0; i < n; i += n / 4 + 1) {
        c.voice = v[i].name;
        int16_t *pcm = NULL;
        size_t k = 0;
        int rc = speech_synthesize(&c, "1 2 3", 5, &pcm, &k, NULL);
        if (rc != 0)
            fail_msg("listed voice %s: %s", v[i].name, speech_strerror(rc));
        assert_true(k > 0);
        free(pcm);
    }
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ssml_good_bad),  cmocka_unit_test(test_ssml_truncated),
        cmocka_unit_test(test_ssml_random),    cmocka_unit_test(test_ssml_synthesis),
        cmocka_unit_test(test_voices),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    speech_shutdown();
    return rc;
}
