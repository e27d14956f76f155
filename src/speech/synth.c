/* speech synth: espeak-ng behind one mutex (synthesis and the voice list). espeak-ng keeps everything in globals (voice,
 * parameters, the synth callback), so this file owns them: g_lock serializes start-up,
 * synthesis and shutdown; the callback finds the current call's output through g_out, set for
 * the length of one call.
 * Invariant: while g_lock is not held, no espeak_* function is running and g_out is NULL.
 * Text always reaches espeak-ng in SSML mode: plain text is escaped first (&lt; &amp; &gt;), so
 * a '<' a user typed is spoken, never parsed as markup; SSML is passed after speech_ssml_check. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <espeak-ng/speak_lib.h>

#include "core/core.h"
#include "speech/speech.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_rate;          /* sample rate once started, 0 before */
static bool g_stopped;      /* speech_shutdown ran: espeak-ng cannot start twice */
static char g_voice[128];   /* the voice set last ("" none) */

const char *speech_strerror(int err) {
    switch (err) {
    case SPEECH_EINIT: return "speech synthesis could not start (espeak-ng data missing?)";
    case SPEECH_EVOICE: return "no speech synthesis voice of that name";
    case SPEECH_ESYNTH: return "speech synthesis failed";
    case SPEECH_ESSML: return "SSML outside the supported subset";
    default: return core_strerror(err);
    }
}

void speech_config_default(speech_config_t *c) {
    c->voice = SPEECH_DEFAULT_VOICE;
    c->rate = SPEECH_RATE_DEFAULT;
    c->pitch = 50;
    c->volume = 100;
    c->max_seconds = SPEECH_DEFAULT_MAX_SECONDS;
    c->ssml = false;
}

int speech_config_check(const speech_config_t *c) {
    if (c->rate < SPEECH_RATE_MIN || c->rate > SPEECH_RATE_MAX)
        return -EINVAL;
    if (c->pitch < 0 || c->pitch > 99 || c->volume < 0 || c->volume > 200)
        return -EINVAL;
    if (c->max_seconds < 1 || c->max_seconds > 86400)
        return -EINVAL;
    if (c->voice && (!*c->voice || strlen(c->voice) >= sizeof g_voice))
        return -EINVAL;
    return 0;
}

/* One call's output, reached from the callback through user_data. */
typedef struct synth_out {
    int16_t *pcm;
    size_t n, cap;
    size_t max;     /* samples allowed */
    int err;        /* set by the callback: CORE_ELIMIT or -ENOMEM */
} synth_out_t;

/* The output of the synthesis in progress; set and cleared under g_lock. (espeak-ng also hands
 * user_data back in events, but a block of samples may come with no event carrying it.) */
static synth_out_t *g_out;

static int on_samples(short *wav, int numsamples, espeak_EVENT *events) {
    (void)events;
    synth_out_t *out = g_out;
    if (!out || !wav || numsamples <= 0)
        return 0;
    if (out->err)
        return 1;
    size_t add = (size_t)numsamples;
    if (out->n + add > out->max) {
        out->err = CORE_ELIMIT;
        return 1; /* abort the synthesis */
    }
    if (out->n + add > out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16384;
        while (cap < out->n + add)
            cap *= 2;
        /* sized by input: an error, not an abort, when memory runs out */
        int16_t *p = realloc(out->pcm, cap * sizeof *p);
        if (!p) {
            out->err = -ENOMEM;
            return 1;
        }
        out->pcm = p;
        out->cap = cap;
    }
    memcpy(out->pcm + out->n, wav, add * sizeof *wav);
    out->n += add;
    return 0;
}

/* Starts espeak-ng; g_lock held. */
static int start_locked(void) {
    if (g_rate > 0)
        return 0;
    if (g_stopped)
        return SPEECH_EINIT;
    /* DONT_EXIT: without it espeak-ng calls exit() when its data is missing */
    int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, NULL, espeakINITIALIZE_DONT_EXIT);
    if (rate <= 0)
        return SPEECH_EINIT;
    espeak_SetSynthCallback(on_samples);
    g_rate = rate;
    g_voice[0] = '\0';
    return 0;
}

int speech_init(void) {
    pthread_mutex_lock(&g_lock);
    int rc = start_locked();
    pthread_mutex_unlock(&g_lock);
    return rc;
}

void speech_shutdown(void) {
    pthread_mutex_lock(&g_lock);
    if (g_rate > 0)
        espeak_Terminate();
    g_stopped = true;
    g_rate = 0;
    g_voice[0] = '\0';
    pthread_mutex_unlock(&g_lock);
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* A NUL-terminated copy of text with anything espeak-ng should not see as a space: invalid
 * UTF-8, C0/DEL control characters other than line breaks; with escape, '<' '>' '&' become
 * XML entities (plain text read in SSML mode). *blank set when nothing but blanks is left.
 * Returns NULL on -ENOMEM. */
static char *clean_text(const char *text, size_t len, bool escape, bool *blank) {
    if (len > (SIZE_MAX - 1) / 5)
        return NULL;
    char *out = malloc((escape ? len * 5 : len) + 1);
    if (!out)
        return NULL;
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, o = 0;
    *blank = true;
    while (i < len) {
        size_t k = utf8_seq(s + i, len - i);
        if (k == 0) {
            out[o++] = ' ';
            i++;
            continue;
        }
        if (k == 1) {
            unsigned char c = s[i];
            if ((c < 0x20 && c != '\n') || c == 0x7F)
                c = ' ';
            if (c != ' ' && c != '\n')
                *blank = false;
            const char *ent = !escape ? NULL : c == '<' ? "&lt;" : c == '>' ? "&gt;"
                                            : c == '&' ? "&amp;" : NULL;
            if (ent) {
                memcpy(out + o, ent, strlen(ent));
                o += strlen(ent);
            } else
                out[o++] = (char)c;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
            *blank = false;
        }
        i += k;
    }
    out[o] = '\0';
    return out;
}

int speech_synthesize(const speech_config_t *cfg, const char *text, size_t len, int16_t **pcm,
                      size_t *nsamples, int *sample_rate) {
    speech_config_t def;
    if (!cfg) {
        speech_config_default(&def);
        cfg = &def;
    }
    *pcm = NULL;
    *nsamples = 0;
    if (sample_rate)
        *sample_rate = 0;
    int rc = speech_config_check(cfg);
    if (rc < 0)
        return rc;
    const char *voice = cfg->voice ? cfg->voice : SPEECH_DEFAULT_VOICE;

    if (cfg->ssml && (rc = speech_ssml_check(text, len, NULL, 0)) < 0)
        return rc;
    bool blank = true;
    char *clean = NULL;
    if (len > 0 && !(clean = clean_text(text, len, !cfg->ssml, &blank)))
        return -ENOMEM;

    synth_out_t out = {0};
    pthread_mutex_lock(&g_lock);
    if ((rc = start_locked()) < 0)
        goto out;
    if (strcmp(g_voice, voice) != 0) {
        g_voice[0] = '\0';
        if (espeak_SetVoiceByName(voice) != EE_OK) {
            rc = SPEECH_EVOICE;
            goto out;
        }
        snprintf(g_voice, sizeof g_voice, "%s", voice);
    }
    if (sample_rate)
        *sample_rate = g_rate;
    if (blank)
        goto out; /* nothing to say: zero samples, not an error */
    if (espeak_SetParameter(espeakRATE, cfg->rate, 0) != EE_OK ||
        espeak_SetParameter(espeakPITCH, cfg->pitch, 0) != EE_OK ||
        espeak_SetParameter(espeakVOLUME, cfg->volume, 0) != EE_OK) {
        rc = SPEECH_ESYNTH;
        goto out;
    }
    out.max = (size_t)cfg->max_seconds * (size_t)g_rate;
    g_out = &out;
    espeak_ERROR er = espeak_Synth(clean, strlen(clean) + 1, 0, POS_CHARACTER, 0,
                                   espeakCHARS_UTF8 | espeakSSML, NULL, NULL);
    g_out = NULL;
    if (out.err)
        rc = out.err;
    else if (er != EE_OK)
        rc = SPEECH_ESYNTH;
out:
    pthread_mutex_unlock(&g_lock);
    free(clean);
    if (rc < 0) {
        free(out.pcm);
        if (sample_rate && rc != CORE_ELIMIT)
            *sample_rate = 0;
        return rc;
    }
    if (out.n == 0) {
        free(out.pcm);
        out.pcm = NULL;
    }
    *pcm = out.pcm;
    *nsamples = out.n;
    return 0;
}

static int voice_cmp(const void *a, const void *b) {
    return strcmp(((const speech_voice_t *)a)->name, ((const speech_voice_t *)b)->name);
}

int speech_list_voices(speech_voice_t **out, size_t *n) {
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&g_lock);
    int rc = start_locked();
    if (rc < 0) {
        pthread_mutex_unlock(&g_lock);
        return rc;
    }
    const espeak_VOICE **all = espeak_ListVoices(NULL);
    size_t cap = 0;
    while (all && all[cap])
        cap++;
    speech_voice_t *v = calloc(cap ? cap : 1, sizeof *v);
    size_t k = 0;
    for (size_t i = 0; v && i < cap; i++) {
        /* languages: a priority byte, then a NUL-terminated code, repeated; the first is the
         * voice's own */
        const char *lang = all[i]->languages ? all[i]->languages + 1 : "";
        if (!*lang || strlen(lang) >= sizeof v[k].name || strncmp(lang, "mb-", 3) == 0)
            continue; /* mbrola voices need data Debian does not ship with espeak-ng */
        snprintf(v[k].name, sizeof v[k].name, "%s", lang);
        snprintf(v[k].desc, sizeof v[k].desc, "%s", all[i]->name ? all[i]->name : "");
        v[k].gender = all[i]->gender;
        k++;
    }
    pthread_mutex_unlock(&g_lock);
    if (!v)
        return -ENOMEM;
    qsort(v, k, sizeof *v, voice_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(v[u - 1].name, v[i].name) != 0)
            v[u++] = v[i];
    *out = v;
    *n = u;
    return 0;
}
