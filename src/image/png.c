/* image/png.c: PNG to 8-bit RGB with libpng's full (non-simplified) API, and RGB to PNG.
 *
 * Why not the simplified API: png_image_finish_read composites an image with alpha onto a
 * background and may apply the file's gamma; we want the colour channels exactly as stored (what
 * FFmpeg's decoder gives, byte for byte). So: palette expanded to RGB, grey to RGB, low bit
 * depths to 8, 16-bit scaled to 8 exactly (png_set_scale_16: round(v * 255 / 65535); FFmpeg's
 * rgb48 to rgb24 rounds v / 256 instead, which differs by 1 for some values), alpha and tRNS
 * dropped, no gamma, Adam7 interlacing handled by libpng.
 *
 * Damage: libpng's errors arrive through setjmp/longjmp and become CORE_EBADMEDIA (signature or
 * header) or CORE_EDECODE (pixel data) with libpng's message. The picture must be complete: a
 * file cut anywhere in its image data is an error. After the last row, a damaged or missing end
 * (IEND, trailing chunks) does not matter.
 *
 * Bombs: the IHDR size is checked before any row is allocated; libpng's own per-chunk allocation
 * bound stays at its default. */
#include "image/internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum png_stage { STAGE_HEADER, STAGE_PIXELS, STAGE_TRAILER };

/* What libpng's callbacks share: the input, the read position and the last error message. */
typedef struct png_src {
    const unsigned char *data;
    size_t len, pos;
    enum png_stage stage;
    char msg[200];
} png_src_t;

static void src_error(png_structp png, png_const_charp msg)
{
    png_src_t *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void src_warning(png_structp png, png_const_charp msg)
{
    (void)png, (void)msg;
}

static void src_read(png_structp png, png_bytep out, size_t n)
{
    png_src_t *src = png_get_io_ptr(png);
    if (n > src->len - src->pos)
        png_error(png, "the file ends early (truncated)");
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

/* Asks libpng for 8-bit RGB whatever the file holds. */
static void request_rgb8(png_structp png, png_infop info)
{
    int type = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);

    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16)
        png_set_scale_16(png);
    if (type & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

int image__decode_png(const unsigned char *data, size_t len, long long max_pixels, image_t *out,
                      char *err, size_t errcap)
{
    png_src_t src = {.data = data, .len = len, .stage = STAGE_HEADER};
    png_structp png = NULL;
    png_infop info = NULL;
    /* volatile: set between setjmp and a possible longjmp, read after it. */
    png_bytep *volatile rows = NULL;
    volatile int ret = 0;
    png_uint_32 w, h;

    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, src_error, src_warning);
    if (png)
        info = png_create_info_struct(png);
    if (!png || !info) {
        ret = image__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    if (setjmp(png_jmpbuf(png))) {
        if (src.stage == STAGE_TRAILER)
            goto out;
        ret = image__fail(err, errcap, src.stage == STAGE_HEADER ? CORE_EBADMEDIA : CORE_EDECODE,
                          "%s PNG: %s", src.stage == STAGE_HEADER ? "not a readable" : "damaged",
                          src.msg);
        image_free(out);
        goto out;
    }
    png_set_read_fn(png, &src, src_read);
    /* Lift libpng's own side limit (10^6) so that image__check_size alone decides, and a huge
     * header gets our CORE_ELIMIT rather than a header error. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);
    w = png_get_image_width(png, info);
    h = png_get_image_height(png, info);
    ret = image__check_size(w, h, max_pixels, err, errcap);
    if (ret < 0)
        goto out;
    request_rgb8(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 3) {
        snprintf(src.msg, sizeof src.msg, "unexpected row layout after conversion to RGB");
        png_longjmp(png, 1);
    }

    src.stage = STAGE_PIXELS;
    ret = image_alloc(out, (int)w, (int)h);
    if (ret == 0)
        rows = malloc(sizeof *rows * h);
    if (ret < 0 || !rows) {
        image_free(out);
        ret = image__fail(err, errcap, -ENOMEM, "out of memory for a %ux%u picture", w, h);
        goto out;
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = out->rgb + (size_t)y * w * 3;
    png_read_image(png, rows);
    src.stage = STAGE_TRAILER;
    png_read_end(png, NULL);
out:
    free(rows);
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    return ret;
}

/* ---- writing ---- */

int image_write_png(const char *path, const image_t *img, char *err, size_t errcap)
{
    png_image pi;
    png_alloc_size_t size = 0;
    void *buf = NULL;
    int ret;

    if (!img || !img->rgb || img->width <= 0 || img->height <= 0)
        return image__fail(err, errcap, -EINVAL, "no picture to write");
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)img->width;
    pi.height = (png_uint_32)img->height;
    pi.format = PNG_FORMAT_RGB;
    /* First call sizes the output, the second writes it. */
    if (!png_image_write_to_memory(&pi, NULL, &size, 0, img->rgb, img->width * 3, NULL)) {
        ret = image__fail(err, errcap, -EINVAL, "cannot encode PNG: %s", pi.message);
        goto out;
    }
    buf = malloc(size);
    if (!buf) {
        ret = image__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    if (!png_image_write_to_memory(&pi, buf, &size, 0, img->rgb, img->width * 3, NULL)) {
        ret = image__fail(err, errcap, -EINVAL, "cannot encode PNG: %s", pi.message);
        goto out;
    }
    ret = core_write_file_atomic(path, &(core_chunk_t){buf, size}, 1, 0644);
    if (ret < 0)
        image__fail(err, errcap, ret, "cannot write %s: %s", path, strerror(-ret));
out:
    png_image_free(&pi);
    free(buf);
    return ret;
}
