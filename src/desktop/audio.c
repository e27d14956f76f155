/* desktop audio: the default audio output — PulseAudio's simple API first (what a desktop
 * session has), else ALSA's "default" device. Blocking calls: worker thread only. */
#include <errno.h>
#include <stdlib.h>

#include <alsa/asoundlib.h>
#include <pulse/error.h>
#include <pulse/simple.h>

#include "desktop/internal.h"

struct desk__audio {
    pa_simple *pa;
    snd_pcm_t *alsa;
};

/* ALSA prints its configuration errors on stderr by itself; they are expected on a machine
 * without sound cards, and the caller logs the outcome once. */
static void alsa_quiet(const char *file, int line, const char *fn, int err, const char *fmt, ...) {
    (void)file, (void)line, (void)fn, (void)err, (void)fmt;
}

int desk__audio_open(int rate, desk__audio_t **out, const char **backend_out) {
    *out = NULL;
    desk__audio_t *a = xcalloc(1, sizeof *a);
    pa_sample_spec ss = {.format = PA_SAMPLE_S16LE, .rate = (uint32_t)rate, .channels = 1};
    int err = 0;
    a->pa = pa_simple_new(NULL, "persona-desktop", PA_STREAM_PLAYBACK, NULL, "answer", &ss, NULL,
                          NULL, &err);
    if (a->pa) {
        if (backend_out)
            *backend_out = "pulseaudio";
        *out = a;
        return 0;
    }
    snd_lib_error_set_handler(alsa_quiet);
    if (snd_pcm_open(&a->alsa, "default", SND_PCM_STREAM_PLAYBACK, 0) == 0) {
        if (snd_pcm_set_params(a->alsa, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED, 1,
                               (unsigned)rate, 1, 200000) == 0) {
            if (backend_out)
                *backend_out = "alsa";
            *out = a;
            return 0;
        }
        snd_pcm_close(a->alsa);
    }
    free(a);
    return -ENODEV;
}

int desk__audio_write(desk__audio_t *a, const int16_t *pcm, size_t n) {
    if (a->pa) {
        int err = 0;
        return pa_simple_write(a->pa, pcm, n * sizeof *pcm, &err) < 0 ? -EIO : 0;
    }
    while (n > 0) {
        snd_pcm_sframes_t w = snd_pcm_writei(a->alsa, pcm, n);
        if (w < 0) {
            if (snd_pcm_recover(a->alsa, (int)w, 1) < 0)
                return -EIO;
            continue;
        }
        pcm += w;
        n -= (size_t)w;
    }
    return 0;
}

void desk__audio_close(desk__audio_t **pa) {
    desk__audio_t *a = *pa;
    if (!a)
        return;
    if (a->pa) {
        int err = 0;
        pa_simple_drain(a->pa, &err);
        pa_simple_free(a->pa);
    }
    if (a->alsa) {
        snd_pcm_drain(a->alsa);
        snd_pcm_close(a->alsa);
    }
    free(a);
    *pa = NULL;
}
