/* asr: speech recognition core — an energy-based voice-activity segmenter, recognition of the
 * segments with pocketsphinx on N threads, word error rate scoring, WebVTT/SRT output and a small
 * WAV reader. Only this module includes pocketsphinx/sphinxbase headers.
 *
 * Threads: an asr_model_t is shared by any number of threads. pocketsphinx decoders are not
 * thread-safe, so the model keeps a pool of decoders (each one ps_init'ed from the same model
 * files: acoustic model, dictionary, language model) and every recognition thread checks one out
 * for its whole run, so a decoder is only ever used by one thread at a time. The pool grows to the
 * highest concurrency seen and is freed with the model. Each decoder holds its own copy of the
 * model in memory (about 100 MB for en-us, mostly the language model); the files are only read
 * at load time.
 *
 * Memory: asr_recognize decodes one VAD segment (at most max_segment_ms, 30 s by default) per
 * thread at a time, so the decoder state is bounded whatever the input length; the caller's PCM
 * is only borrowed. The transcript itself (text) grows with the input.
 *
 * Errors: functions return 0 or a negative code (negative errno or CORE_E*; core_strerror). */
#ifndef PERSONA_ASR_H
#define PERSONA_ASR_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Recognition works on 16 kHz mono signed 16-bit PCM, the rate of the en-us acoustic model. */
#define ASR_RATE 16000

/* Debian's pocketsphinx-en-us locations, used when a path is NULL. */
#define ASR_DEFAULT_HMM "/usr/share/pocketsphinx/model/en-us/en-us"
#define ASR_DEFAULT_LM "/usr/share/pocketsphinx/model/en-us/en-us.lm.bin"
#define ASR_DEFAULT_DICT "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"

/* ---- model ---- */
typedef struct asr_model asr_model_t;

/* Loads the model: hmm is the acoustic model folder, lm a language model (ARPA or binary), dict a
 * pronunciation dictionary; NULL picks the default for each. The files are checked and one
 * decoder is created at once, so a broken model fails here, not at the first recognition.
 * The files must be trusted (system packages, or models we wrote): pocketsphinx's parsers are not
 * hardened; a truncated binary LM makes sphinxbase read past a buffer.
 * Returns 0 and *out (free with asr_model_free), -ENOENT when a file or folder is missing
 * (logged with its path), CORE_EBADMEDIA when pocketsphinx cannot load them. */
int asr_model_new(const char *hmm, const char *lm, const char *dict, asr_model_t **out);
/* Frees the model and its decoders; NULL-safe; no recognition may be running. */
void asr_model_free(asr_model_t **model);

/* ---- voice-activity segmentation ---- */
typedef struct asr_vad_params {
    int frame_ms;        /* analysis frame, 10..30 ms (default 20) */
    float threshold_db;  /* a frame is speech when its energy is this far above the floor (10) */
    float min_level_db;  /* ... and above this absolute level, dBFS (-55): digital silence and
                            faint hiss are never speech */
    float floor_rise_db; /* how fast the noise floor may rise, dB per second, outside speech (2) */
    int hangover_ms;     /* speech continues this long after the last speech frame (300) */
    int pad_ms;          /* each segment is widened by this much on both sides (200) */
    int min_speech_ms;   /* segments with less speech than this are dropped (120) */
    int max_segment_ms;  /* longer segments are split at their quietest frame (30000) */
} asr_vad_params_t;

/* One segment, in samples: [start, end). */
typedef struct asr_span {
    size_t start;
    size_t end;
} asr_span_t;

void asr_vad_defaults(asr_vad_params_t *p);
/* Finds the speech in pcm[0..n) at rate Hz (8000..48000). Segments are sorted, disjoint, within
 * [0, n) and no longer than max_segment_ms. p NULL: defaults. Returns 0 with *spans (free()) and
 * *n_spans (0 and NULL for no speech), -EINVAL for bad parameters. */
int asr_vad(const int16_t *pcm, size_t n, int rate, const asr_vad_params_t *p, asr_span_t **spans,
            size_t *n_spans);

/* ---- recognition ---- */
typedef struct asr_options {
    int threads;          /* recognition threads, 1..64 (0: 1) */
    asr_vad_params_t vad; /* segmentation */
} asr_options_t;
void asr_options_defaults(asr_options_t *o);

typedef struct asr_word {
    int64_t start_ms, end_ms; /* from the start of the input */
    char *word;               /* lower case, no pronunciation variant suffix */
    float confidence;         /* posterior probability, 0..1 */
} asr_word_t;

typedef struct asr_segment {
    int64_t start_ms, end_ms;
    char *text;       /* the words joined by single spaces */
    float confidence; /* mean of the word confidences */
    asr_word_t *words;
    size_t n_words;
} asr_segment_t;

typedef struct asr_transcript {
    asr_segment_t *segments; /* only segments with at least one word */
    size_t n_segments;
} asr_transcript_t;

/* Recognizes pcm16k[0..n) (16 kHz mono; borrowed). Fillers (<sil>, [NOISE], ...) are dropped;
 * input without speech gives an empty transcript and 0. opts NULL: defaults. Same input and
 * options give the same transcript, whatever the thread count. Returns 0 and fills *out (free
 * with asr_transcript_free; zeroed first), -EINVAL for bad options, CORE_EDECODE when pocketsphinx
 * fails on a segment (nothing is returned then). */
int asr_recognize(asr_model_t *model, const int16_t *pcm16k, size_t n, const asr_options_t *opts,
                  asr_transcript_t *out);
/* Frees what asr_recognize filled in and zeroes t; NULL-safe. */
void asr_transcript_free(asr_transcript_t *t);
/* The whole transcript's text, segments joined by spaces (malloc'd; free()). */
char *asr_transcript_text(const asr_transcript_t *t);

/* ---- scoring and output ---- */
/* Word error rate parts: text is lower-cased, everything but letters, digits and apostrophes is a
 * word break, then *errors = substitutions + deletions + insertions of the word-level Levenshtein
 * alignment of hyp to ref, and *ref_words the reference's word count (WER = errors / ref_words).
 * Returns 0, -EINVAL for NULL, -E2BIG above 100000 words on either side. */
int asr_wer(const char *ref, const char *hyp, size_t *errors, size_t *ref_words);

/* Appends the transcript as WebVTT / SRT subtitles (one cue per segment) to buf. */
void asr_format_vtt(const asr_transcript_t *t, core_buf_t *buf);
void asr_format_srt(const asr_transcript_t *t, core_buf_t *buf);

/* ---- WAV ---- */
/* Parses a RIFF/WAVE file of 16-bit PCM mono (format 1, or EXTENSIBLE with PCM) held in
 * data[0..len). Returns 0 with *pcm (malloc'd, free()), *n samples and *rate, or CORE_EBADMEDIA
 * for anything else (truncated, wrong format, chunk sizes past the end), -E2BIG for more than
 * 2^31 bytes of samples, -ENOMEM. */
int asr_wav_parse(const void *data, size_t len, int16_t **pcm, size_t *n, int *rate);
/* Reads and parses a WAV file of at most max_bytes. Returns as asr_wav_parse, or -errno /
 * -EFBIG from reading. */
int asr_wav_read(const char *path, size_t max_bytes, int16_t **pcm, size_t *n, int *rate);


/* ---- personal vocabulary language model (lm.c, g2p.c) ---- */
#define ASR_LM_MAX_TEXT_BYTES (8u << 20) /* texts beyond this many bytes in all are ignored */
#define ASR_LM_MAX_VOCAB 50000           /* distinct words; later new words end their sentence */
#define ASR_LM_MAX_NGRAMS 1000000        /* distinct n-grams of all orders; later ones dropped */
#define ASR_LM_MAX_WORD 48               /* longer "words" are dropped */
/* The files asr_lm_build writes into its folder (personad: <data_dir>/lm/<account_id>/). */
#define ASR_LM_FILE "lm.bin"               /* language model for asr_model_new */
#define ASR_LM_DICT_FILE "dict"            /* dictionary for asr_model_new */
#define ASR_LM_PERSONAL_FILE "personal.arpa" /* the texts' own trigram model */

/* Normalizes text[0..len) for n-gram counting: one sentence per line (sentences end at . ! ? ;
 * and newlines), words of ASCII letters and inner apostrophes, lower-cased, single spaces;
 * everything else is a break. Appends to out. Returns 0, -EINVAL for NULL. */
int asr_lm_normalize(const char *text, size_t len, core_buf_t *out);

/* An interpolated Witten-Bell trigram model of some texts (sentences wrapped in <s> </s>). */
typedef struct asr_ngram asr_ngram_t;
/* Counts texts[0..n) (NUL-terminated; NULL entries skipped; bounded by the limits above).
 * Returns 0 and *out (asr_ngram_free), -EINVAL for NULL. */
int asr_ngram_new(const char *const *texts, size_t n, asr_ngram_t **out);
void asr_ngram_free(asr_ngram_t **m);
/* Words: id 0 is <s>, 1 is </s>; asr_ngram_id gives -1 for an unknown word. */
size_t asr_ngram_vocab_size(const asr_ngram_t *m);
const char *asr_ngram_word(const asr_ngram_t *m, size_t id);
int32_t asr_ngram_id(const asr_ngram_t *m, const char *w);
/* P(w | h2 h1) (h1 the previous word; h1/h2 NULL for less history, unknown history words back
 * off). Sums to 1 over the vocabulary less <s> for every history; 0 for unknown w or <s>. */
double asr_ngram_prob(const asr_ngram_t *m, const char *w, const char *h1, const char *h2);

/* Letter-to-sound: word (ASCII letters, apostrophes; case ignored) -> ARPAbet phones separated
 * by spaces in out[0..cap). Returns 0, -EINVAL for an empty or non-letter word, -ENOSPC. */
int asr_g2p(const char *word, char *out, size_t cap);

typedef struct asr_lm_options {
    double weight;            /* the personal model's share for new words, 0..1 (0.5) */
    const char *general_lm;   /* ASR_DEFAULT_LM */
    const char *general_dict; /* ASR_DEFAULT_DICT */
} asr_lm_options_t;
void asr_lm_options_defaults(asr_lm_options_t *o);

/* Writes m as a trigram ARPA file (Witten-Bell in back-off form: the same probabilities as
 * asr_ngram_prob). Returns 0, -EINVAL, -errno. */
int asr_ngram_write_arpa(const asr_ngram_t *m, const char *path);

/* Builds an account's language model from its texts into out_dir (created; personad uses
 * <data_dir>/lm/<account_id>): lm.bin, the general model plus each word of the texts it lacks as
 * a unigram of probability weight * P_personal(w) (sphinxbase binary); dict, the general
 * dictionary plus asr_g2p pronunciations of those words; personal.arpa, the texts' own trigram
 * model. Load with asr_model_new(NULL, "<out_dir>/lm.bin", "<out_dir>/dict"). Files are replaced
 * by rename. opts NULL: defaults. About a second (the 27 MB general model is read and written).
 * Returns 0, -EINVAL, -ENOENT (general model missing), CORE_EBADMEDIA when sphinxbase cannot
 * read or write a model, -errno from writing. */
int asr_lm_build(const char *const *texts, size_t n, const char *out_dir,
                 const asr_lm_options_t *opts);

#endif
