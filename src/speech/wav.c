/* speech wav: RIFF/WAVE files of 16-bit mono PCM, written atomically (temporary file in the
 * same folder, fsync, rename, folder fsync). Any thread; no shared state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "speech/speech.h"

static void le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static void le16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void speech_wav_header(uint8_t h[44], size_t nsamples, int sample_rate) {
    uint32_t data = (uint32_t)(nsamples * 2);
    memcpy(h, "RIFF", 4);
    le32(h + 4, 36 + data);
    memcpy(h + 8, "WAVEfmt ", 8);
    le32(h + 16, 16);                           /* fmt chunk size */
    le16(h + 20, 1);                            /* PCM */
    le16(h + 22, 1);                            /* mono */
    le32(h + 24, (uint32_t)sample_rate);
    le32(h + 28, (uint32_t)sample_rate * 2);    /* byte rate */
    le16(h + 32, 2);                            /* block align */
    le16(h + 34, 16);                           /* bits per sample */
    memcpy(h + 36, "data", 4);
    le32(h + 40, data);
}

int speech_write_wav(const char *path, const int16_t *pcm, size_t nsamples, int sample_rate) {
    if (!path || !*path || sample_rate <= 0 || (nsamples > 0 && !pcm))
        return -EINVAL;
    if (nsamples > (UINT32_MAX - 36) / 2)
        return -EFBIG;
    uint8_t h[44];
    speech_wav_header(h, nsamples, sample_rate);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    core_chunk_t chunks[2] = {{h, sizeof h}, {pcm, nsamples * 2}};
    return core_write_file_atomic(path, chunks, 2, 0644);
#else
    uint8_t *le = malloc(nsamples * 2 + 1);
    if (!le)
        return -ENOMEM;
    for (size_t i = 0; i < nsamples; i++)
        le16(le + 2 * i, (uint16_t)pcm[i]);
    core_chunk_t chunks[2] = {{h, sizeof h}, {le, nsamples * 2}};
    int rc = core_write_file_atomic(path, chunks, 2, 0644);
    free(le);
    return rc;
#endif
}
