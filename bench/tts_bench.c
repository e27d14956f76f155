/* tts_bench: speech synthesis speed (src/speech, espeak-ng) and Opus encoding speed
 * (src/media) as x real time: seconds of audio produced per second of wall time, over a
 * paragraph of English synthesized ROUNDS times (CPU time of one core) at 175 and 350 words per minute, then the same
 * audio encoded to Opus in Ogg. One thread: espeak-ng runs one synthesis at a time anyway. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "media/media.h"
#include "speech/speech.h"

static const char PARAGRAPH[] =
    "Persona keeps your recordings, notes and photos on a machine you own. When you ask it a "
    "question, it searches what you have said and written, and answers in your own words. The "
    "answer can be read aloud with a voice of your choice, at the speed you like, and sent to "
    "your phone as a small Opus file. Nothing leaves the house unless you want it to.";

/* CPU time of this process: the machine is shared, so wall time measures the neighbours too;
 * the benchmark is single-threaded, so CPU seconds are the wall seconds of an idle core. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    if (rounds < 1)
        rounds = 1;
    media_init();
    if (speech_init() < 0) {
        fprintf(stderr, "tts_bench: espeak-ng did not start\n");
        return 1;
    }
    int rates[] = {175, 350};
    for (size_t k = 0; k < sizeof rates / sizeof rates[0]; k++) {
        speech_config_t c;
        speech_config_default(&c);
        c.rate = rates[k];
        double audio = 0, synth = 0, enc = 0;
        size_t bytes = 0;
        for (int i = 0; i < rounds; i++) {
            int16_t *pcm = NULL;
            size_t n = 0;
            int sr = 0;
            double t0 = now_s();
            int rc = speech_synthesize(&c, PARAGRAPH, strlen(PARAGRAPH), &pcm, &n, &sr);
            double t1 = now_s();
            if (rc < 0) {
                fprintf(stderr, "tts_bench: %s\n", speech_strerror(rc));
                return 1;
            }
            uint8_t *ogg = NULL;
            size_t len = 0;
            char err[256];
            if (media_encode_opus_ogg(pcm, n, sr, &ogg, &len, err, sizeof err) < 0) {
                fprintf(stderr, "tts_bench: %s\n", err);
                return 1;
            }
            double t2 = now_s();
            audio += (double)n / sr;
            synth += t1 - t0;
            enc += t2 - t1;
            bytes += len;
            free(pcm);
            free(ogg);
        }
        printf("rate %3d wpm: %.1f s of audio in %.3f CPU s: synthesis %.0fx real time, Opus "
               "encoding %.0fx, both %.0fx; Opus %.1f kbit/s\n",
               rates[k], audio, synth + enc, audio / synth, audio / enc, audio / (synth + enc),
               bytes * 8 / audio / 1000);
    }
    speech_shutdown();
    return 0;
}
