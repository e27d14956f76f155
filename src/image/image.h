/* image: still pictures from bytes to 8-bit RGB — JPEG (libjpeg-turbo: greyscale, YCbCr, CMYK and
 * Adobe-inverted CMYK), PNG (libpng: greyscale, palette, alpha, 16-bit, interlaced) and binary PPM
 * (P6, for tests and tools) — with the EXIF orientation of a JPEG applied (libexif), so that pixel
 * (0,0) is the top-left of the picture as a person sees it. Alpha is dropped (composited on
 * nothing: the colour channels are kept as stored). Also PNG/PPM writing for tools and tests.
 *
 * Threads: every function is reentrant. Memory: one allocation per decoded image, bounded by the
 * caller's pixel limit before any pixel is decoded (decompression bombs are refused from the
 * header alone).
 *
 * Errors: 0, or CORE_EBADMEDIA (not a JPEG/PNG/PPM, or a damaged header), CORE_EDECODE (damaged
 * data part way), CORE_ELIMIT (larger than max_pixels or a side over IMAGE_MAX_SIDE), -ENOMEM.
 * Every failure writes a reason fit for a user into err. */
#ifndef PERSONA_IMAGE_H
#define PERSONA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define IMAGE_MAX_SIDE 32768
#define IMAGE_DEFAULT_MAX_PIXELS (64LL * 1024 * 1024)

/* An 8-bit RGB picture, rows top to bottom, stride = 3 * width, no padding. */
typedef struct image {
    int width, height;
    uint8_t *rgb; /* owned; image_free releases it */
} image_t;

typedef enum { IMAGE_FORMAT_UNKNOWN, IMAGE_FORMAT_JPEG, IMAGE_FORMAT_PNG, IMAGE_FORMAT_PPM } image_format_t;

/* The format from the first bytes (magic numbers), or IMAGE_FORMAT_UNKNOWN. */
image_format_t image_sniff(const void *data, size_t len);

/* Decodes data[0..len) (borrowed) into *out (zeroed first; free with image_free). max_pixels <= 0
 * means IMAGE_DEFAULT_MAX_PIXELS. EXIF orientation (JPEG APP1) is applied. */
int image_decode(const void *data, size_t len, long long max_pixels, image_t *out, char *err,
                 size_t errcap);
/* Reads a whole file (at most 256 MiB) and decodes it. */
int image_load(const char *path, long long max_pixels, image_t *out, char *err, size_t errcap);

/* Allocates an uninitialised width x height picture (-ENOMEM, -EINVAL for bad sizes). */
int image_alloc(image_t *out, int width, int height);
void image_free(image_t *img); /* NULL-safe; leaves *img zeroed */

/* Lossless writers, atomically (temp file + rename). */
int image_write_png(const char *path, const image_t *img, char *err, size_t errcap);
int image_write_ppm(const char *path, const image_t *img, char *err, size_t errcap);

#endif
