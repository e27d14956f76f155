/* image/decode.c: the module's entry points for reading pictures — sniff the format, run the
 * matching decoder under the pixel limit, read a file first for image_load — and the helpers
 * every decoder shares (error text, the header size check). Reentrant. */
#include "image/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A picture file larger than this is refused before reading it: no phone photo comes close. */
#define IMAGE_MAX_FILE_BYTES ((size_t)256 << 20)

int image__fail(char *err, size_t errcap, int code, const char *fmt, ...)
{
    if (err && errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return code;
}

int image__check_size(long long width, long long height, long long max_pixels, char *err,
                      size_t errcap)
{
    if (width <= 0 || height <= 0)
        return image__fail(err, errcap, CORE_EBADMEDIA,
                           "damaged picture: its header gives a size of %lldx%lld", width, height);
    if (width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE || height > max_pixels / width)
        return image__fail(err, errcap, CORE_ELIMIT,
                           "the picture is too large (%lldx%lld; at most %lld pixels and %d on "
                           "a side)",
                           width, height, max_pixels, IMAGE_MAX_SIDE);
    return 0;
}

/* The name of a picture format we do not read, from its magic number, or NULL: so that a user
 * who sends an iPhone's HEIC photo is told so, not that it is "not a picture". */
static const char *unsupported_format(const unsigned char *p, size_t len)
{
    if (len >= 12 && memcmp(p + 4, "ftyp", 4) == 0 &&
        (memcmp(p + 8, "heic", 4) == 0 || memcmp(p + 8, "heix", 4) == 0 ||
         memcmp(p + 8, "mif1", 4) == 0 || memcmp(p + 8, "msf1", 4) == 0))
        return "HEIC/HEIF";
    if (len >= 12 && memcmp(p + 4, "ftyp", 4) == 0 && memcmp(p + 8, "avif", 4) == 0)
        return "AVIF";
    if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return "WebP";
    if (len >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return "GIF";
    if (len >= 2 && p[0] == 'B' && p[1] == 'M')
        return "BMP";
    if (len >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0))
        return "TIFF";
    return NULL;
}

int image_decode(const void *data, size_t len, long long max_pixels, image_t *out, char *err,
                 size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (err && errcap)
        err[0] = '\0';
    if (max_pixels <= 0)
        max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
    if (!data || len == 0)
        return image__fail(err, errcap, CORE_EBADMEDIA, "not a picture (the data is empty)");
    switch (image_sniff(data, len)) {
    case IMAGE_FORMAT_JPEG:
        return image__decode_jpeg(data, len, max_pixels, out, err, errcap);
    case IMAGE_FORMAT_PNG:
        return image__decode_png(data, len, max_pixels, out, err, errcap);
    case IMAGE_FORMAT_PPM:
        return image__decode_ppm(data, len, max_pixels, out, err, errcap);
    default:
        if (unsupported_format(data, len))
            return image__fail(err, errcap, CORE_EBADMEDIA,
                               "%s pictures are not supported (JPEG, PNG or binary PPM expected)",
                               unsupported_format(data, len));
        return image__fail(err, errcap, CORE_EBADMEDIA,
                           "not a picture we read (JPEG, PNG or binary PPM expected)");
    }
}

int image_load(const char *path, long long max_pixels, image_t *out, char *err, size_t errcap)
{
    char *data = NULL;
    size_t len = 0;
    int ret;

    memset(out, 0, sizeof *out);
    ret = core_read_file(path, IMAGE_MAX_FILE_BYTES, &data, &len);
    if (ret == -EFBIG)
        return image__fail(err, errcap, CORE_ELIMIT, "the file is too large for a picture (over "
                                                     "%zu MiB)", IMAGE_MAX_FILE_BYTES >> 20);
    if (ret < 0)
        return image__fail(err, errcap, ret, "cannot read %s: %s", path, strerror(-ret));
    ret = image_decode(data, len, max_pixels, out, err, errcap);
    free(data);
    return ret;
}
