/* speech: text to speech with espeak-ng's C library, WAV files, and a sentence splitter for
 * speaking a streamed answer sentence by sentence.
 *
 * Threads: espeak-ng keeps its state in globals and is not thread-safe. Every call into it goes
 * through one process-wide mutex inside this module, so speech_synthesize() may be called from
 * any thread, but calls run one at a time (callers that need parallel synthesis must use
 * processes). The other functions hold no global state.
 *
 * Errors: 0 or a negative code — a negative errno, a CORE_E* code, or a SPEECH_E* code below;
 * speech_strerror() names all of them. */
#ifndef PERSONA_SPEECH_H
#define PERSONA_SPEECH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    SPEECH_EINIT = -10101,  /* espeak-ng could not start (its voice data is missing?) */
    SPEECH_EVOICE = -10102, /* no voice of that name */
    SPEECH_ESYNTH = -10103, /* espeak-ng failed while synthesizing */
    SPEECH_ESSML = -10104,  /* SSML outside the subset speech_ssml_check accepts */
};
/* A static string for err (a SPEECH_E* code, or anything core_strerror knows). */
const char *speech_strerror(int err);

#define SPEECH_DEFAULT_VOICE "en-us"
#define SPEECH_RATE_MIN 80     /* words per minute, espeak-ng's own bounds */
#define SPEECH_RATE_MAX 450
#define SPEECH_RATE_DEFAULT 175
#define SPEECH_DEFAULT_MAX_SECONDS 600

typedef struct speech_config {
    const char *voice; /* espeak-ng voice name ("en-us", "de", "en+f3"); NULL: "en-us". Borrowed */
    int rate;          /* words per minute, 80..450 */
    int pitch;         /* 0..99, 50 is the voice's own */
    int volume;        /* 0..200, 100 is normal */
    int max_seconds;   /* longest audio one call may produce (1..86400); longer: CORE_ELIMIT */
    bool ssml;         /* text is SSML-lite (speech_ssml_check); false: plain text, where '<'
                        * and '&' are spoken, never parsed */
} speech_config_t;

/* Fills c with the defaults: en-us, 175 wpm, pitch 50, volume 100, 600 s, plain text. */
void speech_config_default(speech_config_t *c);
/* Checks the ranges above. Returns 0 or -EINVAL. Does not check that the voice exists. */
int speech_config_check(const speech_config_t *c);

/* Starts espeak-ng if it is not started yet (speech_synthesize does this on first use; calling
 * it early moves the cost, ~10 ms, off the first answer and reports missing data at start-up).
 * Returns 0, or SPEECH_EINIT. Thread-safe. */
int speech_init(void);
/* Stops espeak-ng and frees its memory, once, at the end of the program: espeak-ng 1.51
 * deadlocks in its second espeak_Terminate after a restart, so after this every synthesis
 * returns SPEECH_EINIT. NULL-safe to repeat. Waits for a synthesis in progress. */
void speech_shutdown(void);

/* Synthesizes text[0..len) (UTF-8; invalid sequences, control characters and NUL bytes are
 * read as spaces, so any bytes are accepted) with cfg (NULL: defaults).
 * On success returns 0 with *pcm a malloc'd array of *nsamples mono signed 16-bit samples (the
 * caller frees it; NULL when *nsamples is 0, e.g. for empty or blank text) and *sample_rate in
 * Hz. On failure returns -EINVAL (bad cfg), SPEECH_EVOICE (no such voice), CORE_ELIMIT (the
 * audio would be longer than cfg->max_seconds), -ENOMEM, SPEECH_EINIT or SPEECH_ESYNTH, with
 * *pcm NULL and *nsamples 0. */
int speech_synthesize(const speech_config_t *cfg, const char *text, size_t len, int16_t **pcm,
                      size_t *nsamples, int *sample_rate);

/* The SSML subset we pass to espeak-ng: elements <speak>, <break time="250ms|1.5s"/> (at most
 * 10 s), <emphasis> (optional level="strong|moderate|reduced|none"), <prosody> with rate, pitch
 * and volume (a keyword such as "slow"/"loud", or a signed number with '%'); text with the
 * entities &lt; &gt; &amp; &quot; &apos; only; no comments, processing instructions, CDATA or
 * DOCTYPE; tags properly nested, at most 32 deep. The <speak> root is optional.
 * Returns 0, or SPEECH_ESSML with the first problem and its byte offset in err (at most errcap
 * bytes, NUL-terminated; err may be NULL). Any bytes are safe to pass. */
int speech_ssml_check(const char *text, size_t len, char *err, size_t errcap);

/* One voice espeak-ng has. */
typedef struct speech_voice {
    char name[64];     /* what speech_config_t.voice takes: the language code ("en-us", "de") */
    char desc[64];     /* espeak-ng's own name ("English_(America)") */
    int gender;        /* 0 unknown, 1 male, 2 female */
} speech_voice_t;
/* The installed voices, sorted by name, one per language code (malloc'd array the caller frees;
 * *n its length). Starts espeak-ng if needed. Returns 0, SPEECH_EINIT or -ENOMEM (*out NULL,
 * *n 0). Thread-safe (under the synthesis mutex). */
int speech_list_voices(speech_voice_t **out, size_t *n);

/* Writes a WAV file (RIFF, PCM, 16-bit, mono) of pcm[0..nsamples) at sample_rate to path:
 * written to a temporary file in the same folder, fsynced and renamed over path, so a reader
 * sees the whole file or nothing. Returns 0 or -errno (-EFBIG past 4 GiB); on failure path is
 * untouched and no temporary file is left. */
int speech_write_wav(const char *path, const int16_t *pcm, size_t nsamples, int sample_rate);
/* Appends a WAV header for nsamples 16-bit mono samples at sample_rate to out[44]. */
void speech_wav_header(uint8_t out[44], size_t nsamples, int sample_rate);

/* The sentence splitter. Looks at text[0..len) and returns the length in bytes of its first
 * complete sentence, including the end punctuation, closing quotes or brackets and the blanks
 * after it; 0 when no sentence is complete yet. A sentence ends at . ! ? … (and their CJK
 * forms) followed by a blank, at a line break, or, when at_end (no more text will come), at
 * the end of the text. "Dr.", "e.g.", single initials and numbers like "3.5" do not end one.
 * A run longer than max_bytes (0: 400) without an end is cut at its last blank or comma, so a
 * speaker never waits on a sentence that does not end. Never splits a UTF-8 sequence. */
size_t speech_next_sentence(const char *text, size_t len, bool at_end, size_t max_bytes);

#endif
