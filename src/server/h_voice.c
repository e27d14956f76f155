/* server/h_voice.c: speech synthesis for clients — GET/PUT /v1/voice (the account's voice,
 * rate, pitch and volume, in the `voices` table) and POST /v1/tts (text or SSML-lite to WAV or
 * Opus in Ogg). Request pool: synthesis blocks its worker for the length of the call, and
 * espeak-ng runs one synthesis at a time process-wide (src/speech serializes them), so at most
 * one pool worker synthesizes while the others wait on that mutex. */
#include "server/internal.h"

#include "media/media.h"
#include "speech/speech.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest text one POST /v1/tts takes, in characters (UTF-8 code points). */
#define TTS_MAX_CHARS 4000
/* Longest audio one call may produce: 4000 characters at 80 words per minute fit. */
#define TTS_MAX_SECONDS 900

/* The account's settings, or the defaults. Returns false after replying 500. */
static bool account_voice(srv_req_t *r, store_voice_t *v)
{
    int rc = store_voice_get(r->srv->st, r->account_id, v);
    if (rc == -ENOENT) {
        snprintf(v->voice, sizeof v->voice, "%s", SPEECH_DEFAULT_VOICE);
        v->rate = SPEECH_RATE_DEFAULT;
        v->pitch = 50;
        v->volume = 100;
        v->updated_at = 0;
        return true;
    }
    if (rc < 0) {
        srv_reply_error(r, 500, "internal", "Could not read the voice settings.");
        return false;
    }
    return true;
}

/* True when name is a voice of the list, optionally with an espeak-ng variant ("en-us+f3").
 * espeak-ng itself falls back to some voice for many unknown names, so the list decides. */
static bool voice_known(const char *name)
{
    speech_voice_t *list = NULL;
    size_t n = 0;
    if (speech_list_voices(&list, &n) < 0)
        return true; /* unavailable: synthesis reports it */
    size_t len = strcspn(name, "+");
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        found = strlen(list[i].name) == len && !strncmp(list[i].name, name, len);
    free(list);
    return found;
}

/* Reads the optional fields voice/rate/pitch/volume of o into v. Returns false after replying
 * 400. Unknown voices are found out by synthesizing (below) or by the voice list (PUT). */
static bool read_settings(srv_req_t *r, json_t *o, store_voice_t *v)
{
    static const struct {
        const char *name;
        int lo, hi;
    } ints[] = {{"rate", SPEECH_RATE_MIN, SPEECH_RATE_MAX}, {"pitch", 0, 99}, {"volume", 0, 200}};
    int *dst[] = {&v->rate, &v->pitch, &v->volume};
    json_t *j = json_object_get(o, "voice");
    if (j) {
        const char *s = json_is_string(j) ? json_string_value(j) : NULL;
        size_t n = s ? strlen(s) : 0;
        bool ok = n > 0 && n < sizeof v->voice;
        for (size_t i = 0; ok && i < n; i++)
            ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                 (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '+';
        if (!ok) {
            srv_reply_error(r, 400, "invalid_field",
                            "'voice' must be a voice name of 1 to %zu letters, digits and '-_+' "
                            "(see GET /v1/voice for the list).", sizeof v->voice - 1);
            return false;
        }
        if (!voice_known(s)) {
            srv_reply_error(r, 400, "invalid_field",
                            "No voice named '%s' (see GET /v1/voice for the list).", s);
            return false;
        }
        snprintf(v->voice, sizeof v->voice, "%s", s);
    }
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        j = json_object_get(o, ints[i].name);
        if (!j)
            continue;
        if (!json_is_integer(j) || json_integer_value(j) < ints[i].lo ||
            json_integer_value(j) > ints[i].hi) {
            srv_reply_error(r, 400, "invalid_field", "'%s' must be a whole number from %d to %d.",
                            ints[i].name, ints[i].lo, ints[i].hi);
            return false;
        }
        *dst[i] = (int)json_integer_value(j);
    }
    return true;
}

/* Replies 400 unless every key of o is one of the NULL-terminated known names. */
static bool known_fields(srv_req_t *r, json_t *o, const char *const *known, const char *list)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = !strcmp(key, *k);
        if (!ok) {
            srv_reply_error(r, 400, "invalid_field", "Unknown field '%.40s' (known: %s).", key,
                            list);
            return false;
        }
    }
    return true;
}

void srv_h_voice_get(srv_req_t *r)
{
    store_voice_t v;
    if (!account_voice(r, &v))
        return;
    speech_voice_t *list = NULL;
    size_t n = 0;
    int rc = speech_list_voices(&list, &n);
    if (rc < 0) {
        srv_reply_error(r, 503, "speech_unavailable", "Speech synthesis is unavailable: %s.",
                        speech_strerror(rc));
        return;
    }
    json_t *voices = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(voices, json_string(list[i].name));
    free(list);
    srv_reply_json(r, 200,
                   json_pack("{s:s, s:i, s:i, s:i, s:o, s:o}", "voice", v.voice, "rate", v.rate,
                             "pitch", v.pitch, "volume", v.volume, "updated_at",
                             v.updated_at ? json_integer(v.updated_at) : json_null(), "voices",
                             voices));
}

void srv_h_voice_put(srv_req_t *r)
{
    static const char *const known[] = {"voice", "rate", "pitch", "volume", NULL};
    json_t *o = srv_body_object(r);
    if (!o)
        return;
    store_voice_t v;
    if (!known_fields(r, o, known, "voice, rate, pitch, volume") || !account_voice(r, &v) ||
        !read_settings(r, o, &v))
        goto out;
    /* The voice must exist: a name espeak-ng takes, checked by loading it. */
    speech_config_t cfg;
    speech_config_default(&cfg);
    cfg.voice = v.voice;
    int16_t *pcm = NULL;
    size_t ns = 0;
    int rc = speech_synthesize(&cfg, "", 0, &pcm, &ns, NULL);
    free(pcm);
    if (rc == SPEECH_EVOICE || rc == -EINVAL) {
        srv_reply_error(r, 400, "invalid_field",
                        "No voice named '%s' (see GET /v1/voice for the list).", v.voice);
        goto out;
    }
    if (rc < 0) {
        srv_reply_error(r, 503, "speech_unavailable", "Speech synthesis is unavailable: %s.",
                        speech_strerror(rc));
        goto out;
    }
    if (store_voice_put(r->srv->st, r->account_id, &v) < 0) {
        srv_reply_error(r, 500, "internal", "Could not store the voice settings.");
        goto out;
    }
    srv_h_voice_get(r);
out:
    json_decref(o);
}

/* Code points in s (valid UTF-8, as jansson guarantees). */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

void srv_h_tts(srv_req_t *r)
{
    static const char *const known[] = {"text", "format", "ssml", "voice", "rate", "pitch",
                                        "volume", NULL};
    int16_t *pcm = NULL;
    size_t ns = 0;
    json_t *o = srv_body_object(r);
    if (!o)
        return;
    store_voice_t v;
    if (!known_fields(r, o, known, "text, format, ssml, voice, rate, pitch, volume") ||
        !account_voice(r, &v) || !read_settings(r, o, &v))
        goto out;
    json_t *jt = json_object_get(o, "text");
    if (!json_is_string(jt)) {
        srv_reply_error(r, 400, "invalid_field", "'text' must be a string.");
        goto out;
    }
    const char *text = json_string_value(jt);
    size_t len = json_string_length(jt);
    if (utf8_chars(text, len) > TTS_MAX_CHARS) {
        srv_reply_error(r, 413, "payload_too_large",
                        "'text' is limited to %d characters; split longer text.", TTS_MAX_CHARS);
        goto out;
    }
    json_t *jf = json_object_get(o, "format");
    const char *format = jf ? (json_is_string(jf) ? json_string_value(jf) : "") : "wav";
    bool ogg = !strcmp(format, "ogg");
    if (!ogg && strcmp(format, "wav") != 0) {
        srv_reply_error(r, 400, "invalid_field", "'format' must be \"wav\" or \"ogg\".");
        goto out;
    }
    json_t *js = json_object_get(o, "ssml");
    if (js && !json_is_boolean(js)) {
        srv_reply_error(r, 400, "invalid_field", "'ssml' must be true or false.");
        goto out;
    }
    speech_config_t cfg;
    speech_config_default(&cfg);
    cfg.voice = v.voice;
    cfg.rate = v.rate;
    cfg.pitch = v.pitch;
    cfg.volume = v.volume;
    cfg.max_seconds = TTS_MAX_SECONDS;
    cfg.ssml = js && json_is_true(js);
    if (cfg.ssml) {
        char why[200];
        if (speech_ssml_check(text, len, why, sizeof why) < 0) {
            srv_reply_error(r, 400, "invalid_ssml", "%s.", why);
            goto out;
        }
    }
    int rate = 0;
    int rc = speech_synthesize(&cfg, text, len, &pcm, &ns, &rate);
    if (rc == SPEECH_EVOICE) {
        srv_reply_error(r, 400, "invalid_field",
                        "No voice named '%s' (see GET /v1/voice for the list).", v.voice);
        goto out;
    }
    if (rc == CORE_ELIMIT) {
        srv_reply_error(r, 413, "payload_too_large", "The speech would be longer than %d s.",
                        TTS_MAX_SECONDS);
        goto out;
    }
    if (rc < 0) {
        srv_reply_error(r, 500, "speech_failed", "Speech synthesis failed: %s.",
                        speech_strerror(rc));
        goto out;
    }
    if (ogg) {
        uint8_t *body = NULL;
        size_t blen = 0;
        char why[256];
        rc = media_encode_opus_ogg(pcm, ns, rate, &body, &blen, why, sizeof why);
        if (rc < 0) {
            srv_reply_error(r, 500, "encode_failed", "Could not encode Opus: %s.", why);
            goto out;
        }
        srv_reply_text(r, 200, "audio/ogg", (char *)body, blen);
    } else {
        size_t blen = 44 + ns * sizeof *pcm;
        char *body = malloc(blen);
        if (!body) {
            srv_reply_error(r, 500, "internal", "Out of memory.");
            goto out;
        }
        speech_wav_header((uint8_t *)body, ns, rate);
        /* WAV is little-endian, as are the machines we run on */
        if (ns)
            memcpy(body + 44, pcm, ns * sizeof *pcm);
        srv_reply_text(r, 200, "audio/wav", body, blen);
    }
    srv_resp_add_header(&r->resp, "x-audio-seconds:", "%.3f", rate ? (double)ns / rate : 0.0);
out:
    free(pcm);
    json_decref(o);
}
