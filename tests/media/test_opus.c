/* test_opus: media_encode_opus_ogg — PCM of known length at speech and odd sample rates becomes
 * an Ogg stream that libavformat (media_probe_file) and the ffmpeg CLI read back as Opus with
 * the right duration (within 50 ms) and audible content; empty input gives a valid stream; bad
 * rates are refused. Files under $PERSONA_TEST_TMP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "media/media.h"

static char g_dir[1024];

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Decodes path with the ffmpeg CLI to 48 kHz mono s16 and returns the sample count and RMS. */
static size_t ffmpeg_decode(const char *path, double *rms)
{
    char cmd[2300];
    snprintf(cmd, sizeof cmd, "ffmpeg -v error -i '%s' -f s16le -ac 1 -ar 48000 -", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int16_t buf[4096];
    size_t n = 0, k;
    double s = 0;
    while ((k = fread(buf, 2, 4096, p)) > 0) {
        for (size_t i = 0; i < k; i++)
            s += (double)buf[i] * buf[i];
        n += k;
    }
    assert_int_equal(pclose(p), 0);
    *rms = n ? sqrt(s / (double)n) : 0;
    return n;
}

static void roundtrip(int rate, double seconds)
{
    size_t n = (size_t)(rate * seconds);
    int16_t *pcm = malloc((n ? n : 1) * sizeof *pcm);
    assert_non_null(pcm);
    for (size_t i = 0; i < n; i++)
        pcm[i] = (int16_t)(8000 * sin(2 * M_PI * 440.0 * (double)i / rate));
    uint8_t *ogg = NULL;
    size_t len = 0;
    char err[256] = "";
    int rc = media_encode_opus_ogg(pcm, n, rate, &ogg, &len, err, sizeof err);
    if (rc != 0)
        fail_msg("encode %d Hz: %s", rate, err);
    assert_true(len > 4);
    assert_memory_equal(ogg, "OggS", 4);
    char path[1200];
    snprintf(path, sizeof path, "%s/tone_%d_%g.ogg", g_dir, rate, seconds);
    write_file(path, ogg, len);
    free(ogg);

    media_probe_t pr;
    rc = media_probe_file(path, &pr, err, sizeof err);
    if (n == 0) {
        free(pcm);
        return; /* an empty stream: encoded without error; nothing to probe */
    }
    if (rc != 0)
        fail_msg("probe: %s", err);
    assert_string_equal(pr.audio_codec, "opus");
    assert_non_null(strstr(pr.container, "ogg"));
    assert_int_equal(pr.channels, 1);
    if (fabs(pr.duration - seconds) > 0.05)
        fail_msg("%d Hz %.3f s: libavformat says %.3f s", rate, seconds, pr.duration);
    double rms;
    size_t dec = ffmpeg_decode(path, &rms);
    if (fabs((double)dec / 48000 - seconds) > 0.05)
        fail_msg("%d Hz %.3f s: ffmpeg decodes %.3f s", rate, seconds, (double)dec / 48000);
    /* 8000 * sin has an RMS of 5657; a lossy codec keeps it within a few percent */
    assert_true(rms > 4500 && rms < 6500);
    free(pcm);
}

static void test_roundtrip(void **state)
{
    (void)state;
    roundtrip(22050, 1.0);   /* espeak-ng's rate */
    roundtrip(16000, 2.345); /* a length that is no whole number of frames */
    roundtrip(48000, 0.5);
    roundtrip(44100, 0.013); /* shorter than one 20 ms frame */
    roundtrip(22050, 31.7);  /* long: many resampler refills */
}

static void test_empty_and_bad(void **state)
{
    (void)state;
    uint8_t *ogg = (uint8_t *)1;
    size_t len = 9;
    char err[256];
    assert_int_equal(media_encode_opus_ogg(NULL, 0, 22050, &ogg, &len, err, sizeof err), 0);
    assert_non_null(ogg);
    assert_memory_equal(ogg, "OggS", 4);
    free(ogg);
    int16_t x[4] = {0};
    int bad[] = {0, -1, 7999, 192001};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ogg = (uint8_t *)1;
        assert_int_equal(media_encode_opus_ogg(x, 4, bad[i], &ogg, &len, err, sizeof err),
                         -EINVAL);
        assert_null(ogg);
        assert_int_equal(len, 0);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(media_encode_opus_ogg(NULL, 4, 22050, &ogg, &len, err, sizeof err), -EINVAL);
}

int main(void)
{
    media_init();
    const char *tmp = getenv("PERSONA_TEST_TMP");
    snprintf(g_dir, sizeof g_dir, "%s", tmp && *tmp ? tmp : "/tmp/test_opus");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", g_dir);
    if (system(cmd) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_empty_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
