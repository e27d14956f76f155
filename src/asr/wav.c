/* asr/wav.c: a small RIFF/WAVE reader for 16-bit PCM mono, with every size checked against the
 * bytes actually present. Used by the tests and the benchmark; any thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "asr/asr.h"

#define WAV_MAX_DATA (1ull << 31)

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

int asr_wav_parse(const void *data, size_t len, int16_t **pcm, size_t *n, int *rate)
{
    const uint8_t *d = data;
    const uint8_t *fmt = NULL, *samples = NULL;
    size_t nbytes = 0;

    if (!pcm || !n || !rate || (!data && len))
        return -EINVAL;
    *pcm = NULL;
    *n = 0;
    if (len < 12 || memcmp(d, "RIFF", 4) != 0 || memcmp(d + 8, "WAVE", 4) != 0)
        return CORE_EBADMEDIA;
    /* Walk the chunks; the RIFF size is not trusted (streamed files leave it wrong). */
    size_t off = 12;
    while (off + 8 <= len) {
        uint32_t csz = rd32(d + off + 4);
        const uint8_t *body = d + off + 8;
        size_t avail = len - off - 8;
        if (!memcmp(d + off, "fmt ", 4)) {
            if (csz < 16 || csz > avail)
                return CORE_EBADMEDIA;
            fmt = body;
        } else if (!memcmp(d + off, "data", 4)) {
            if (!fmt)
                return CORE_EBADMEDIA;
            if (csz > avail)
                return CORE_EBADMEDIA;
            samples = body;
            nbytes = csz;
            break;
        }
        if (csz > avail)
            return CORE_EBADMEDIA;
        off += 8 + (size_t)csz + (csz & 1); /* chunks are padded to even sizes */
    }
    if (!fmt || !samples)
        return CORE_EBADMEDIA;
    uint16_t tag = rd16(fmt), ch = rd16(fmt + 2), bits = rd16(fmt + 14), align = rd16(fmt + 12);
    uint32_t sr = rd32(fmt + 4);
    if (tag == 0xFFFE) { /* WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID */
        if (rd32(fmt - 4) < 40 || rd16(fmt + 24) != 1)
            return CORE_EBADMEDIA;
        tag = 1;
    }
    if (tag != 1 || ch != 1 || bits != 16 || align != 2 || sr < 1000 || sr > 192000)
        return CORE_EBADMEDIA;
    if (nbytes > WAV_MAX_DATA)
        return -E2BIG;
    size_t ns = nbytes / 2;
    int16_t *out = malloc(ns ? ns * sizeof *out : 1);
    if (!out)
        return -ENOMEM;
    for (size_t i = 0; i < ns; i++)
        out[i] = (int16_t)rd16(samples + 2 * i);
    *pcm = out;
    *n = ns;
    *rate = (int)sr;
    return 0;
}

int asr_wav_read(const char *path, size_t max_bytes, int16_t **pcm, size_t *n, int *rate)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = core_read_file(path, max_bytes, &buf, &len);
    if (rc < 0)
        return rc;
    rc = asr_wav_parse(buf, len, pcm, n, rate);
    free(buf);
    return rc;
}
