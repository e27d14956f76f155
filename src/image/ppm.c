/* image/ppm.c: binary PPM (P6) — the plainest lossless RGB file, for tests and tools. Only
 * maxval 255 is read (one byte a sample, the only kind the tools we test against write); any
 * other maxval is a clear error. Comments (# to end of line) are allowed in the header. */
#include "image/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Reads one header number at *pos, after whitespace and comments. Returns it, or -1 when there
 * is none or it exceeds 2^31-1 (the caller's size check then names the problem). */
static long long read_number(const unsigned char *p, size_t len, size_t *pos)
{
    long long v = 0;
    size_t i = *pos, start;

    for (;;) {
        while (i < len && isspace(p[i]))
            i++;
        if (i < len && p[i] == '#') {
            while (i < len && p[i] != '\n' && p[i] != '\r')
                i++;
            continue;
        }
        break;
    }
    start = i;
    while (i < len && isdigit(p[i]) && i - start < 10)
        v = v * 10 + (p[i++] - '0');
    if (i == start || (i < len && isdigit(p[i])))
        return -1;
    *pos = i;
    return v;
}

int image__decode_ppm(const unsigned char *data, size_t len, long long max_pixels, image_t *out,
                      char *err, size_t errcap)
{
    size_t pos = 2;
    long long w, h, maxval;
    size_t need;
    int ret;

    w = read_number(data, len, &pos);
    h = w < 0 ? -1 : read_number(data, len, &pos);
    maxval = h < 0 ? -1 : read_number(data, len, &pos);
    /* Exactly one whitespace byte separates the header from the samples. */
    if (maxval < 0 || pos >= len || !isspace(data[pos]))
        return image__fail(err, errcap, CORE_EBADMEDIA, "not a readable PPM: damaged header");
    pos++;
    if (maxval != 255)
        return image__fail(err, errcap, CORE_EBADMEDIA,
                           "unsupported PPM: maxval %lld (only 255, 8 bits a sample, is read)",
                           maxval);
    ret = image__check_size(w, h, max_pixels, err, errcap);
    if (ret < 0)
        return ret;
    need = (size_t)w * (size_t)h * 3;
    if (len - pos < need)
        return image__fail(err, errcap, CORE_EDECODE,
                           "damaged PPM: %zu bytes of pixels where %zu are needed (truncated)",
                           len - pos, need);
    ret = image_alloc(out, (int)w, (int)h);
    if (ret < 0)
        return image__fail(err, errcap, ret, "out of memory for a %lldx%lld picture", w, h);
    memcpy(out->rgb, data + pos, need);
    return 0;
}

int image_write_ppm(const char *path, const image_t *img, char *err, size_t errcap)
{
    char header[64];
    int n, ret;

    if (!img || !img->rgb || img->width <= 0 || img->height <= 0)
        return image__fail(err, errcap, -EINVAL, "no picture to write");
    n = snprintf(header, sizeof header, "P6\n%d %d\n255\n", img->width, img->height);
    ret = core_write_file_atomic(
        path,
        (core_chunk_t[]){{header, (size_t)n}, {img->rgb, (size_t)img->width * img->height * 3}},
        2, 0644);
    if (ret < 0)
        return image__fail(err, errcap, ret, "cannot write %s: %s", path, strerror(-ret));
    return 0;
}
