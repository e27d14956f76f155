/* asr_bench: speed of speech recognition (src/asr) as × real time at 1 and 2 threads, on the five
 * LibriVox clips of Debian's pocketsphinx-testdata (one asr_recognize call per clip) and on a long
 * recording made in memory by concatenating the clips with 1 s pauses of faint noise (10 minutes
 * by default; `asr_bench MINUTES` to change it). Prints a table and the WER of the long run.
 *
 * Built by bench/CMakeLists.txt as BUILD/bench/asr_bench; run by bench/asr.sh (`make bench`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/asr.h"
#include "core/core.h"

#define DIR "/usr/share/pocketsphinx/test/data/librivox/"
static const char *const CLIPS[] = {
    "sense_and_sensibility_01_austen_64kb-0870", "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0890", "sense_and_sensibility_01_austen_64kb-0920",
    "sense_and_sensibility_01_austen_64kb-0930",
};
#define N_CLIPS 5

static double now_s(void) { return (double)core_mono_ns() / 1e9; }

static int run(asr_model_t *m, const int16_t *pcm, size_t n, int threads, double *secs,
               size_t *words)
{
    asr_options_t o;
    asr_transcript_t t;
    asr_options_defaults(&o);
    o.threads = threads;
    double t0 = now_s();
    int rc = asr_recognize(m, pcm, n, &o, &t);
    *secs += now_s() - t0;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < t.n_segments; i++)
        *words += t.segments[i].n_words;
    asr_transcript_free(&t);
    return 0;
}

int main(int argc, char **argv)
{
    double minutes = argc > 1 ? atof(argv[1]) : 10.0;
    asr_model_t *m = NULL;
    int16_t *clip[N_CLIPS] = {0}, *big = NULL;
    size_t len[N_CLIPS] = {0}, total = 0;
    int rc = 1;

    if (minutes <= 0 || minutes > 600) {
        fprintf(stderr, "usage: asr_bench [MINUTES]\n");
        return 2;
    }
    double tl = now_s();
    if (asr_model_new(NULL, NULL, NULL, &m) < 0) {
        fprintf(stderr, "asr_bench: cannot load the en-us model\n");
        goto out;
    }
    printf("model load: %.2f s\n", now_s() - tl);
    for (int i = 0; i < N_CLIPS; i++) {
        char path[256];
        int rate;
        snprintf(path, sizeof path, DIR "%s.wav", CLIPS[i]);
        if (asr_wav_read(path, 64 << 20, &clip[i], &len[i], &rate) < 0 || rate != ASR_RATE) {
            fprintf(stderr, "asr_bench: cannot read %s\n", path);
            goto out;
        }
        total += len[i];
    }
    /* The long recording: clips and pauses repeated until the length is reached. */
    size_t pause = ASR_RATE, want = (size_t)(minutes * 60 * ASR_RATE), n_big = 0;
    big = malloc((want + total + N_CLIPS * pause) * sizeof *big);
    if (!big)
        goto out;
    uint32_t x = 1;
    while (n_big < want) {
        for (int i = 0; i < N_CLIPS; i++) {
            memcpy(big + n_big, clip[i], len[i] * sizeof *big);
            n_big += len[i];
            for (size_t k = 0; k < pause; k++) {
                x = x * 1664525u + 1013904223u;
                big[n_big++] = (int16_t)((int)(x >> 27) - 16);
            }
        }
    }
    /* Warm-up: creates the second decoder so that model loading is not timed. */
    {
        double s = 0;
        size_t w = 0;
        size_t two = len[0] + pause + len[1];
        if (run(m, big, two, 2, &s, &w) < 0)
            goto out;
    }
    printf("%-32s %9s %7s %9s %8s %6s\n", "input", "audio_s", "threads", "wall_s", "x_real", "words");
    for (int th = 1; th <= 2; th++) {
        double s = 0;
        size_t w = 0;
        for (int i = 0; i < N_CLIPS; i++)
            if (run(m, clip[i], len[i], th, &s, &w) < 0)
                goto out;
        double audio = (double)total / ASR_RATE;
        printf("%-32s %9.1f %7d %9.2f %8.2f %6zu\n", "librivox (5 clips, 1 call each)", audio, th, s,
               audio / s, w);
    }
    for (int th = 1; th <= 2; th++) {
        double s = 0;
        size_t w = 0;
        if (run(m, big, n_big, th, &s, &w) < 0)
            goto out;
        double audio = (double)n_big / ASR_RATE;
        char name[64];
        snprintf(name, sizeof name, "long (%.1f min)", audio / 60);
        printf("%-32s %9.1f %7d %9.2f %8.2f %6zu\n", name, audio, th, s, audio / s, w);
    }
    rc = 0;
out:
    for (int i = 0; i < N_CLIPS; i++)
        free(clip[i]);
    free(big);
    asr_model_free(&m);
    return rc;
}
