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

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int speech_write_wav(const char *path, const int16_t *pcm, size_t nsamples, int sample_rate) {
    if (!path || !*path || sample_rate <= 0 || (nsamples > 0 && !pcm))
        return -EINVAL;
    if (nsamples > (UINT32_MAX - 36) / 2)
        return -EFBIG;
    int rc = 0, fd = -1;
    char *tmp = xasprintf("%s.tmp-XXXXXX", path);
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");

    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        xfree(&tmp);
        goto out;
    }
    (void)fchmod(fd, 0644);
    uint8_t h[44];
    speech_wav_header(h, nsamples, sample_rate);
    if ((rc = write_all(fd, h, sizeof h)) < 0)
        goto out;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (nsamples > 0 && (rc = write_all(fd, pcm, nsamples * 2)) < 0)
        goto out;
#else
    for (size_t i = 0; i < nsamples; i++) {
        uint8_t b[2];
        le16(b, (uint16_t)pcm[i]);
        if ((rc = write_all(fd, b, 2)) < 0)
            goto out;
    }
#endif
    if (fsync(fd) < 0) {
        rc = -errno;
        goto out;
    }
    rc = close(fd) < 0 ? -errno : 0;
    fd = -1;
    if (rc < 0)
        goto out;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto out;
    }
    xfree(&tmp); /* renamed: nothing left to remove */
    (void)core_fsync_dir(dir);
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    return rc;
}
