/* image/jpeg.c: JPEG to 8-bit RGB with libjpeg-turbo, and the EXIF orientation from its APP1
 * segment (libexif).
 *
 * Decoding uses libjpeg's defaults (islow integer DCT, fancy upsampling), so the same file gives
 * the same pixels on every machine. Greyscale, YCbCr and RGB JPEGs come out as RGB from libjpeg;
 * CMYK and YCCK come out as CMYK and are turned into RGB here: with an Adobe APP14 marker the
 * values are stored inverted (Photoshop's convention, and what libjpeg writes), so
 * R = C * K / 255; without it, R = (255 - C) * (255 - K) / 255.
 *
 * Damage: every libjpeg error becomes CORE_EBADMEDIA (header) or CORE_EDECODE (pixel data) with
 * libjpeg's message, through setjmp/longjmp; libjpeg never exits the process. A JPEG whose
 * entropy-coded data is cut short or corrupt is an error too (CORE_EDECODE), not a picture with a
 * grey bottom: libjpeg only warns about those, and we promote its data warnings to errors while
 * pixels are being decoded. Once every row is out, what follows (a missing EOI marker, trailing
 * bytes) does not matter.
 *
 * Bombs: the size is checked after jpeg_read_header, before anything is decoded; libjpeg's
 * working memory is bounded, and a progressive JPEG may have at most IMAGE_JPEG_MAX_SCANS scans
 * (a file of thousands of tiny scans costs seconds each for no picture). */
#include "image/internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <libexif/exif-data.h>

/* libjpeg-turbo's own limit for TJFLAG_LIMITSCANS. */
#define IMAGE_JPEG_MAX_SCANS 500

enum jpeg_stage { STAGE_HEADER, STAGE_PIXELS, STAGE_TRAILER };

/* libjpeg's error manager, extended with where to jump and what went wrong. */
typedef struct jpeg_guard {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    enum jpeg_stage stage;
    char msg[JMSG_LENGTH_MAX];
} jpeg_guard_t;

static void guard_error_exit(j_common_ptr cinfo)
{
    jpeg_guard_t *g = (jpeg_guard_t *)cinfo->err;
    cinfo->err->format_message(cinfo, g->msg);
    longjmp(g->jump, 1);
}

/* Warnings (level -1) about damaged or missing data while pixels are decoded are errors for us;
 * trace messages (level >= 0) are ignored. */
static void guard_emit_message(j_common_ptr cinfo, int level)
{
    jpeg_guard_t *g = (jpeg_guard_t *)cinfo->err;
    if (level >= 0 || g->stage != STAGE_PIXELS)
        return;
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
        guard_error_exit(cinfo);
        break;
    default:
        break;
    }
}

static void guard_progress(j_common_ptr cinfo)
{
    if (cinfo->is_decompressor &&
        ((j_decompress_ptr)cinfo)->input_scan_number > IMAGE_JPEG_MAX_SCANS) {
        jpeg_guard_t *g = (jpeg_guard_t *)cinfo->err;
        snprintf(g->msg, sizeof g->msg, "more than %d progressive scans", IMAGE_JPEG_MAX_SCANS);
        longjmp(g->jump, 1);
    }
}

/* The EXIF orientation (1..8) from a saved APP1 segment, or 1 when there is none or it is
 * unreadable: a damaged EXIF block is no reason to refuse the picture. */
static int exif_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        ExifData *ed;
        ExifEntry *e;
        int value = 1;

        if (m->marker != JPEG_APP0 + 1 || m->data_length < 14 || memcmp(m->data, "Exif\0\0", 6))
            continue;
        ed = exif_data_new_from_data(m->data, m->data_length);
        if (!ed)
            continue;
        e = exif_data_get_entry(ed, EXIF_TAG_ORIENTATION);
        if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->data && e->size >= 2)
            value = exif_get_short(e->data, exif_data_get_byte_order(ed));
        exif_data_unref(ed);
        return value >= 1 && value <= 8 ? value : 1;
    }
    return 1;
}

/* CMYK (4 bytes a pixel) to RGB (3 bytes) in the same row buffer: reading runs ahead of
 * writing, so the conversion can work in place. */
static void cmyk_row_to_rgb(uint8_t *row, int width, int inverted)
{
    for (int x = 0; x < width; x++) {
        unsigned c = row[4 * x], m = row[4 * x + 1], y = row[4 * x + 2], k = row[4 * x + 3];
        if (!inverted) {
            c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
        }
        row[3 * x] = (uint8_t)((c * k + 127) / 255);
        row[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
        row[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

int image__decode_jpeg(const unsigned char *data, size_t len, long long max_pixels, image_t *out,
                       char *err, size_t errcap)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    jpeg_guard_t guard;
    /* volatile: changed between setjmp and a possible longjmp, read after it. */
    uint8_t *volatile cmyk_row = NULL;
    volatile int ret = 0;
    volatile int orientation = 1;
    int cmyk;

    memset(&cinfo, 0, sizeof cinfo);
    memset(&guard, 0, sizeof guard);
    cinfo.err = jpeg_std_error(&guard.pub);
    guard.pub.error_exit = guard_error_exit;
    guard.pub.emit_message = guard_emit_message;
    guard.stage = STAGE_HEADER;
    if (setjmp(guard.jump)) {
        /* Every row is out: a damaged trailer does not spoil the picture. */
        if (guard.stage == STAGE_TRAILER)
            goto upright;
        ret = image__fail(err, errcap, guard.stage == STAGE_HEADER ? CORE_EBADMEDIA : CORE_EDECODE,
                          "%s JPEG: %s",
                          guard.stage == STAGE_HEADER ? "not a readable" : "damaged", guard.msg);
        image_free(out);
        goto out;
    }
    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = guard_progress;
    cinfo.progress = &progress;
    /* Enough for a progressive picture's coefficients at the pixel limit; libjpeg fails cleanly
     * ("backing store not supported") past it. */
    cinfo.mem->max_memory_to_use =
        (long)(max_pixels > (1LL << 40) ? (1LL << 43) : max_pixels * 8 + (64LL << 20));
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&cinfo, TRUE);

    ret = image__check_size(cinfo.image_width, cinfo.image_height, max_pixels, err, errcap);
    if (ret < 0)
        goto out;
    orientation = exif_orientation(&cinfo);
    cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;

    guard.stage = STAGE_PIXELS;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != (cmyk ? 4 : 3)) {
        snprintf(guard.msg, sizeof guard.msg, "unexpected %d colour components",
                 cinfo.output_components);
        longjmp(guard.jump, 1);
    }
    ret = image_alloc(out, (int)cinfo.output_width, (int)cinfo.output_height);
    if (ret < 0) {
        ret = image__fail(err, errcap, ret, "out of memory for a %ux%u picture",
                          cinfo.output_width, cinfo.output_height);
        goto out;
    }
    if (cmyk) {
        cmyk_row = malloc((size_t)out->width * 4);
        if (!cmyk_row) {
            ret = image__fail(err, errcap, -ENOMEM, "out of memory");
            image_free(out);
            goto out;
        }
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *row = out->rgb + (size_t)cinfo.output_scanline * out->width * 3;
        JSAMPROW rows[1] = {cmyk ? cmyk_row : row};
        jpeg_read_scanlines(&cinfo, rows, 1);
        if (cmyk) {
            cmyk_row_to_rgb(cmyk_row, out->width, cinfo.saw_Adobe_marker);
            memcpy(row, cmyk_row, (size_t)out->width * 3);
        }
    }
    guard.stage = STAGE_TRAILER;
    jpeg_finish_decompress(&cinfo);

upright:
    ret = image__apply_orientation(out, orientation);
    if (ret < 0) {
        image_free(out);
        ret = image__fail(err, errcap, ret, "out of memory");
    }
out:
    free(cmyk_row);
    jpeg_destroy_decompress(&cinfo);
    return ret;
}
