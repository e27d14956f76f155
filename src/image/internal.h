/* image/internal.h: what the image module's own files share — the error helper, the size check
 * every decoder runs on the header before allocating, the per-format decoders and the EXIF
 * orientation transform. Nothing outside src/image includes this. */
#ifndef PERSONA_IMAGE_INTERNAL_H
#define PERSONA_IMAGE_INTERNAL_H

#include "core/core.h"
#include "image/image.h"

/* Writes a message into err (if err and errcap) and returns code. */
int image__fail(char *err, size_t errcap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* 0 if a width x height picture may be decoded under max_pixels (already defaulted, > 0);
 * CORE_EBADMEDIA for a zero side, CORE_ELIMIT for too large, with a reason in err. Compares
 * without overflowing for any 32-bit sides. */
int image__check_size(long long width, long long height, long long max_pixels, char *err,
                      size_t errcap);

/* The per-format decoders behind image_decode; same contract (max_pixels > 0). */
int image__decode_jpeg(const unsigned char *data, size_t len, long long max_pixels, image_t *out,
                       char *err, size_t errcap);
int image__decode_png(const unsigned char *data, size_t len, long long max_pixels, image_t *out,
                      char *err, size_t errcap);
int image__decode_ppm(const unsigned char *data, size_t len, long long max_pixels, image_t *out,
                      char *err, size_t errcap);

/* Turns *img upright for EXIF orientation 1..8 (other values: left as is). 1 costs nothing;
 * the others make a new picture (5..8 swap width and height) and free the old one. Returns 0 or
 * -ENOMEM (img unchanged). */
int image__apply_orientation(image_t *img, int orientation);

#endif
