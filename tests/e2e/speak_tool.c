/* tests/e2e/speak_tool.c: a small helper of the transcript end-to-end test (not a test itself).
 *   speak_tool say OUT.wav TEXT    synthesizes TEXT with espeak-ng (src/speech) into a WAV file
 *   speak_tool wer REF HYP         prints "ERRORS REF_WORDS" (asr_wer: word-level Levenshtein)
 *   speak_tool lm DIR TEXT         builds an account language model from TEXT (asr_lm_build)
 *   speak_tool hear IN.wav         prints what the general model recognizes in a 16 kHz WAV
 *                                  (for choosing test sentences)
 * Exit 0, or 1 with the reason on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/asr.h"
#include "speech/speech.h"

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "say")) {
        int16_t *pcm = NULL;
        size_t n = 0;
        int rate = 0;
        speech_config_t c;
        speech_config_default(&c);
        c.rate = 150;
        int rc = speech_synthesize(&c, argv[3], strlen(argv[3]), &pcm, &n, &rate);
        if (rc == 0)
            rc = speech_write_wav(argv[2], pcm, n, rate);
        free(pcm);
        speech_shutdown();
        if (rc < 0) {
            fprintf(stderr, "speak_tool: %s\n", speech_strerror(rc));
            return 1;
        }
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "wer")) {
        size_t errors = 0, words = 0;
        if (asr_wer(argv[2], argv[3], &errors, &words) < 0) {
            fprintf(stderr, "speak_tool: asr_wer failed\n");
            return 1;
        }
        printf("%zu %zu\n", errors, words);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "lm")) {
        const char *texts[] = {argv[3]};
        int rc = asr_lm_build(texts, 1, argv[2], NULL);
        if (rc < 0) {
            fprintf(stderr, "speak_tool: asr_lm_build: %s\n", core_strerror(rc));
            return 1;
        }
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "hear")) {
        int16_t *pcm = NULL;
        size_t n = 0;
        int rate = 0;
        asr_model_t *m = NULL;
        asr_transcript_t t = {0};
        int rc = asr_wav_read(argv[2], 1u << 30, &pcm, &n, &rate);
        if (rc == 0 && rate != ASR_RATE)
            rc = -EINVAL;
        if (rc == 0)
            rc = asr_model_new(NULL, NULL, NULL, &m);
        if (rc == 0)
            rc = asr_recognize(m, pcm, n, NULL, &t);
        if (rc == 0) {
            char *text = asr_transcript_text(&t);
            printf("%s\n", text);
            free(text);
        }
        asr_transcript_free(&t);
        asr_model_free(&m);
        free(pcm);
        return rc == 0 ? 0 : 1;
    }
    fprintf(stderr, "usage: speak_tool say OUT.wav TEXT | speak_tool wer REF HYP\n");
    return 1;
}
