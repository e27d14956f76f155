/* tests/image/test_image.c: unit tests of the image module. Lossless formats (PNG, PPM) are
 * checked byte for byte against the ffmpeg CLI, an independent decoder; JPEG against ffmpeg with a
 * small tolerance (its mjpeg decoder has its own IDCT and chroma upsampling, libjpeg's islow IDCT
 * and fancy upsampling differ by a few levels) and against pictures the test itself compresses
 * with libjpeg from known pixels. EXIF orientation is checked against the EXIF spec's table of
 * where the stored row 0 and column 0 end up. Damaged input — every truncation, random bytes,
 * headers claiming huge sizes — must give a negative code and a message, never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>

#include "core/core.h"
#include "image/image.h"

static const char *fixtures;
static const char *tmpdir;

/* ---- helpers ---- */

static char *fixture(const char *name)
{
    return xasprintf("%s/%s", fixtures, name);
}

static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

/* Runs the ffmpeg CLI on path and returns its RGB24 output (malloc'd), *len its size. */
static uint8_t *ffmpeg_rgb(const char *path, size_t *len)
{
    char *cmd = xasprintf("ffmpeg -nostdin -v error -i '%s' -f rawvideo -pix_fmt rgb24 -", path);
    FILE *p = popen(cmd, "r");
    core_buf_t b;
    char chunk[65536];
    size_t n;

    assert_non_null(p);
    core_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        core_buf_append(&b, chunk, n);
    assert_int_equal(pclose(p), 0);
    free(cmd);
    *len = b.len;
    return (uint8_t *)core_buf_steal(&b);
}

static const uint8_t *px(const image_t *img, int x, int y)
{
    return img->rgb + ((size_t)y * img->width + x) * 3;
}

static void assert_near_rgb(const uint8_t *got, int r, int g, int b, int tol)
{
    if (abs(got[0] - r) > tol || abs(got[1] - g) > tol || abs(got[2] - b) > tol)
        fail_msg("pixel (%d,%d,%d), expected (%d,%d,%d) within %d", got[0], got[1], got[2], r, g,
                 b, tol);
}

/* Decodes path with image_load, and with ffmpeg; asserts the sizes agree and the pixels are
 * byte-identical (max_diff 0) or within max_diff. */
static void check_against_ffmpeg(const char *name, int w, int h, int max_diff)
{
    char *path = fixture(name);
    char err[256];
    image_t img;
    size_t ref_len;
    uint8_t *ref;
    int worst = 0;

    assert_int_equal(image_load(path, 0, &img, err, sizeof err), 0);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    ref = ffmpeg_rgb(path, &ref_len);
    assert_int_equal(ref_len, (size_t)w * h * 3);
    for (size_t i = 0; i < ref_len; i++) {
        int d = abs(img.rgb[i] - ref[i]);
        worst = d > worst ? d : worst;
    }
    if (worst > max_diff)
        fail_msg("%s: differs from ffmpeg by up to %d (allowed %d)", name, worst, max_diff);
    free(ref);
    image_free(&img);
    free(path);
}

/* A deterministic pseudo-random generator (xorshift), so failures reproduce. */
static uint32_t rng_state = 2463534242u;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Compresses pixels (w x h, ncomp bytes each, in_cs) with libjpeg at quality 100 without chroma
 * subsampling, storing it as jpeg_cs; app1 (may be NULL) is written as an APP1 segment. Returns
 * the file (malloc'd by libjpeg; free()) and its length. */
static unsigned char *compress_jpeg(const uint8_t *pixels, int w, int h, int ncomp,
                                    J_COLOR_SPACE in_cs, J_COLOR_SPACE jpeg_cs,
                                    const uint8_t *app1, size_t app1_len, unsigned long *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *buf = NULL;

    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = ncomp;
    c.in_color_space = in_cs;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, jpeg_cs);
    jpeg_set_quality(&c, 100, TRUE);
    for (int i = 0; i < c.num_components; i++)
        c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    if (app1)
        jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)app1_len);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)c.next_scanline * w * ncomp);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return buf;
}

/* A picture of bw x bh solid blocks of 16x16 pixels, each block a distinct, well separated
 * colour, so that JPEG loss cannot confuse two blocks. */
static const uint8_t block_colour[6][3] = {{255, 0, 0},   {0, 255, 0},   {0, 0, 255},
                                           {255, 255, 0}, {0, 255, 255}, {255, 0, 255}};

static uint8_t *blocks_picture(int bw, int bh)
{
    int w = bw * 16, h = bh * 16;
    uint8_t *p = xmalloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(p + ((size_t)y * w + x) * 3, block_colour[(y / 16) * bw + x / 16], 3);
    return p;
}

/* An EXIF APP1 payload holding only the orientation tag, in big- or little-endian TIFF order. */
static size_t exif_orientation_app1(uint8_t out[64], int orientation, int big_endian)
{
    static const uint8_t mm[] = {'M', 'M', 0, 42, 0, 0, 0, 8};
    static const uint8_t ii[] = {'I', 'I', 42, 0, 8, 0, 0, 0};
    size_t n = 0;
#define PUT16(v)                                                                                   \
    do {                                                                                           \
        unsigned v_ = (v);                                                                         \
        out[n++] = big_endian ? (uint8_t)(v_ >> 8) : (uint8_t)v_;                                  \
        out[n++] = big_endian ? (uint8_t)v_ : (uint8_t)(v_ >> 8);                                  \
    } while (0)
    memcpy(out, "Exif\0\0", 6);
    n = 6;
    memcpy(out + n, big_endian ? mm : ii, 8);
    n += 8;
    PUT16(1);      /* one entry in IFD0 */
    PUT16(0x0112); /* Orientation */
    PUT16(3);      /* SHORT */
    PUT16(big_endian ? 0 : 1); /* count 1, as 32 bits: the halves in the file's byte order */
    PUT16(big_endian ? 1 : 0);
    PUT16((unsigned)orientation); /* value, left-justified in the 4-byte field */
    PUT16(0);
    PUT16(0); /* no next IFD */
    PUT16(0);
#undef PUT16
    return n;
}

/* The standard CRC-32 of PNG chunks, to patch headers. */
static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* ---- fixtures against ffmpeg ---- */

static void test_png_fixtures_match_ffmpeg(void **state)
{
    (void)state;
    check_against_ffmpeg("still.png", 640, 480, 0);
    check_against_ffmpeg("gray.png", 320, 240, 0);
    /* Alpha is dropped, not composited: the colour channels as stored, as ffmpeg gives them. */
    check_against_ffmpeg("alpha.png", 320, 240, 0);
}

static void test_jpeg_fixtures_near_ffmpeg(void **state)
{
    (void)state;
    check_against_ffmpeg("still.jpg", 640, 480, 12);
    check_against_ffmpeg("cmyk.jpg", 200, 150, 12);
}

static void test_cmyk_fixture_colours(void **state)
{
    char *path = fixture("cmyk.jpg");
    char err[256];
    image_t img;
    (void)state;
    assert_int_equal(image_load(path, 0, &img, err, sizeof err), 0);
    assert_near_rgb(px(&img, 50, 37), 0, 255, 255, 3);    /* cyan */
    assert_near_rgb(px(&img, 150, 37), 255, 0, 255, 3);   /* magenta */
    assert_near_rgb(px(&img, 50, 112), 255, 255, 0, 3);   /* yellow */
    assert_near_rgb(px(&img, 150, 112), 0, 0, 0, 3);      /* black */
    image_free(&img);
    free(path);
}

/* PNG kinds the fixtures lack, made with ffmpeg (palette, 16-bit) and read by both sides: equal,
 * but for 16-bit samples where FFmpeg's v / 256 rounding and libpng's exact v * 255 / 65535
 * scaling differ by 1. */
static void test_png_kinds_match_ffmpeg(void **state)
{
    static const char *const kinds[][2] = {{"pal8", "pal8.png"},
                                           {"rgb48be", "rgb48.png"},
                                           {"gray16be", "gray16.png"},
                                           {"ya8", "graya.png"}};
    (void)state;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char *dst = tmp_path(kinds[i][1]);
        char *cmd = xasprintf("ffmpeg -nostdin -v error -y -f lavfi -i "
                              "testsrc=size=96x64:rate=1 -frames:v 1 -update 1 -pix_fmt %s '%s'",
                              kinds[i][0], dst);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        {
            char err[256];
            image_t img;
            size_t ref_len;
            uint8_t *ref;
            assert_int_equal(image_load(dst, 0, &img, err, sizeof err), 0);
            assert_int_equal(img.width, 96);
            assert_int_equal(img.height, 64);
            ref = ffmpeg_rgb(dst, &ref_len);
            assert_int_equal(ref_len, (size_t)96 * 64 * 3);
            for (size_t k = 0; k < ref_len; k++)
                if (abs(img.rgb[k] - ref[k]) > 1)
                    fail_msg("%s: byte %zu is %d, ffmpeg %d", kinds[i][1], k, img.rgb[k], ref[k]);
            free(ref);
            image_free(&img);
        }
        free(dst);
    }
}

/* An Adam7-interlaced 16-bit RGBA PNG written with libpng: rows come out in order, 16-bit
 * samples scaled to round(v * 255 / 65535), alpha dropped. */
static void test_png_interlaced_16bit_alpha(void **state)
{
    enum { W = 37, H = 29 };
    char *path = tmp_path("adam7.png");
    uint16_t *samples = xmalloc(sizeof *samples * W * H * 4);
    png_bytep rows[H];
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    char err[256];
    image_t img;
    (void)state;

    assert_non_null(f);
    /* libpng takes 16-bit samples big-endian, as bytes. */
    for (int i = 0; i < W * H * 4; i++) {
        uint16_t v = (uint16_t)rng();
        uint8_t *b = (uint8_t *)&samples[i];
        b[0] = (uint8_t)(v >> 8), b[1] = (uint8_t)v;
    }
    for (int y = 0; y < H; y++)
        rows[y] = (png_bytep)(samples + (size_t)y * W * 4);
    png_init_io(png, f);
    png_set_IHDR(png, info, W, H, 16, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_ADAM7,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    assert_int_equal(fclose(f), 0);

    assert_int_equal(image_load(path, 0, &img, err, sizeof err), 0);
    assert_int_equal(img.width, W);
    assert_int_equal(img.height, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                const uint8_t *s = (const uint8_t *)&samples[((size_t)y * W + x) * 4 + c];
                unsigned v = (unsigned)s[0] << 8 | s[1];
                assert_int_equal(px(&img, x, y)[c], (v * 255 + 32767) / 65535);
            }
    image_free(&img);
    free(samples);
    free(path);
}

/* ---- JPEG made here from known pixels ---- */

static void test_jpeg_colour_spaces(void **state)
{
    enum { W = 32, H = 16 };
    /* Inks (C, M, Y, K as fractions of 255) and the RGB they must give: R = 255(1-C)(1-K)... */
    static const uint8_t ink[2][4] = {{255, 0, 0, 0}, {0, 128, 255, 64}};
    uint8_t cmyk[W * H * 4], gray[W * H];
    char err[256];
    (void)state;

    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *k = ink[x / 16];
            /* libjpeg writes an Adobe marker for CMYK, whose convention is inverted samples. */
            for (int c = 0; c < 4; c++)
                cmyk[(y * W + x) * 4 + c] = (uint8_t)(255 - k[c]);
            gray[y * W + x] = (uint8_t)(x < 16 ? 40 : 200);
        }
    for (int ycck = 0; ycck < 2; ycck++) {
        unsigned long len = 0;
        unsigned char *jpg = compress_jpeg(cmyk, W, H, 4, JCS_CMYK, ycck ? JCS_YCCK : JCS_CMYK,
                                           NULL, 0, &len);
        image_t img;
        assert_int_equal(image_decode(jpg, len, 0, &img, err, sizeof err), 0);
        assert_int_equal(img.width, W);
        for (int b = 0; b < 2; b++) {
            const uint8_t *k = ink[b];
            double kk = 1 - k[3] / 255.0;
            assert_near_rgb(px(&img, b * 16 + 8, 8), (int)(255 * (1 - k[0] / 255.0) * kk + 0.5),
                            (int)(255 * (1 - k[1] / 255.0) * kk + 0.5),
                            (int)(255 * (1 - k[2] / 255.0) * kk + 0.5), 3);
        }
        image_free(&img);
        free(jpg);
    }
    {
        unsigned long len = 0;
        unsigned char *jpg =
            compress_jpeg(gray, W, H, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, NULL, 0, &len);
        image_t img;
        assert_int_equal(image_decode(jpg, len, 0, &img, err, sizeof err), 0);
        assert_near_rgb(px(&img, 8, 8), 40, 40, 40, 1);
        assert_near_rgb(px(&img, 24, 8), 200, 200, 200, 1);
        image_free(&img);
        free(jpg);
    }
}

/* For each orientation, where stored row 0 and stored column 0 appear (EXIF 2.3, tag 0x0112):
 * 't'op, 'b'ottom, 'l'eft, 'r'ight. */
static const char exif_sides[9][2] = {{0, 0},     {'t', 'l'}, {'t', 'r'}, {'b', 'r'}, {'b', 'l'},
                                      {'l', 't'}, {'r', 't'}, {'r', 'b'}, {'l', 'b'}};

/* The seen coordinate of stored pixel (sx, sy): its row lies sy from the row-0 side, its column
 * sx from the column-0 side. */
static void seen_coords(int o, int sx, int sy, int dw, int dh, int *dx, int *dy)
{
    char row0 = exif_sides[o][0], col0 = exif_sides[o][1];
    switch (row0) {
    case 't': *dy = sy; break;
    case 'b': *dy = dh - 1 - sy; break;
    case 'l': *dx = sy; break;
    default: *dx = dw - 1 - sy; break;
    }
    switch (col0) {
    case 't': *dy = sx; break;
    case 'b': *dy = dh - 1 - sx; break;
    case 'l': *dx = sx; break;
    default: *dx = dw - 1 - sx; break;
    }
}

static void test_exif_orientations(void **state)
{
    enum { BW = 3, BH = 2 }; /* 48 x 32 stored: asymmetric under every flip and turn */
    uint8_t *stored = blocks_picture(BW, BH);
    char err[256];
    (void)state;

    for (int be = 0; be < 2; be++)
        for (int o = 1; o <= 8; o++) {
            uint8_t app1[64];
            size_t app1_len = exif_orientation_app1(app1, o, be);
            unsigned long len = 0;
            unsigned char *jpg =
                compress_jpeg(stored, BW * 16, BH * 16, 3, JCS_RGB, JCS_YCbCr, app1, app1_len,
                              &len);
            image_t img;
            int swap = o >= 5;
            assert_int_equal(image_decode(jpg, len, 0, &img, err, sizeof err), 0);
            assert_int_equal(img.width, swap ? BH * 16 : BW * 16);
            assert_int_equal(img.height, swap ? BW * 16 : BH * 16);
            /* The centre of each stored block must be where the spec's table puts it. */
            for (int by = 0; by < BH; by++)
                for (int bx = 0; bx < BW; bx++) {
                    int dx = 0, dy = 0;
                    const uint8_t *want = block_colour[by * BW + bx];
                    seen_coords(o, bx * 16 + 8, by * 16 + 8, img.width, img.height, &dx, &dy);
                    assert_near_rgb(px(&img, dx, dy), want[0], want[1], want[2], 12);
                }
            image_free(&img);
            free(jpg);
        }
    free(stored);
}

/* An APP1 that is not valid EXIF, or an orientation out of range, leaves the picture as
 * stored. */
static void test_exif_damaged_is_ignored(void **state)
{
    uint8_t *stored = blocks_picture(3, 2);
    uint8_t app1[64];
    size_t n;
    char err[256];
    (void)state;

    for (int variant = 0; variant < 3; variant++) {
        unsigned long len = 0;
        unsigned char *jpg;
        image_t img;
        n = exif_orientation_app1(app1, variant == 0 ? 9 : 6, 1);
        if (variant == 1)
            app1[7] = 'X'; /* bad TIFF byte order */
        if (variant == 2)
            n = 16; /* cut inside the IFD */
        jpg = compress_jpeg(stored, 48, 32, 3, JCS_RGB, JCS_YCbCr, app1, n, &len);
        assert_int_equal(image_decode(jpg, len, 0, &img, err, sizeof err), 0);
        assert_int_equal(img.width, 48);
        assert_near_rgb(px(&img, 8, 8), 255, 0, 0, 12);
        image_free(&img);
        free(jpg);
    }
    free(stored);
}

/* ---- damaged and hostile input ---- */

/* Every prefix of a valid file must fail cleanly, except prefixes that lose only the end marker
 * (trailer bytes after the last pixel), which may decode to the full picture. */
static void check_every_truncation(const uint8_t *file, size_t len, size_t trailer)
{
    char err[256];
    image_t full, img;
    assert_int_equal(image_decode(file, len, 0, &full, err, sizeof err), 0);
    for (size_t n = 0; n < len; n++) {
        int ret = image_decode(file, n, 0, &img, err, sizeof err);
        if (ret == 0) {
            if (len - n > trailer)
                fail_msg("a %zu-byte prefix of %zu decoded without error", n, len);
            assert_int_equal(img.width, full.width);
            assert_memory_equal(img.rgb, full.rgb, (size_t)full.width * full.height * 3);
            image_free(&img);
        } else {
            assert_true(ret == CORE_EBADMEDIA || ret == CORE_EDECODE);
            assert_true(strlen(err) > 0);
            assert_null(img.rgb);
        }
    }
    image_free(&full);
}

static void test_truncated_jpeg(void **state)
{
    uint8_t *stored = blocks_picture(3, 2);
    unsigned long len = 0;
    unsigned char *jpg;
    (void)state;
    for (size_t i = 0; i < 48 * 32 * 3; i++)
        stored[i] ^= (uint8_t)(rng() & 0x1f); /* texture, so the entropy data is not trivial */
    jpg = compress_jpeg(stored, 48, 32, 3, JCS_RGB, JCS_YCbCr, NULL, 0, &len);
    check_every_truncation(jpg, len, 2);
    free(jpg);
    free(stored);
}

static void test_truncated_png(void **state)
{
    char *path = tmp_path("trunc.png");
    char err[256];
    image_t img;
    char *data = NULL;
    size_t len = 0;
    (void)state;
    assert_int_equal(image_alloc(&img, 40, 30), 0);
    for (size_t i = 0; i < 40 * 30 * 3; i++)
        img.rgb[i] = (uint8_t)rng();
    assert_int_equal(image_write_png(path, &img, err, sizeof err), 0);
    image_free(&img);
    assert_int_equal(core_read_file(path, 1 << 20, &data, &len), 0);
    check_every_truncation((const uint8_t *)data, len, 12);
    free(data);
    free(path);
}

static void test_empty_and_unknown(void **state)
{
    char err[256];
    image_t img;
    char *path = fixture("empty.bin");
    (void)state;
    assert_int_equal(image_decode("", 0, 0, &img, err, sizeof err), CORE_EBADMEDIA);
    assert_int_equal(image_decode(NULL, 0, 0, &img, err, sizeof err), CORE_EBADMEDIA);
    assert_int_equal(image_load(path, 0, &img, err, sizeof err), CORE_EBADMEDIA);
    free(path);
    path = fixture("notes.txt");
    assert_int_equal(image_load(path, 0, &img, err, sizeof err), CORE_EBADMEDIA);
    assert_true(strstr(err, "not a picture") != NULL);
    free(path);
    /* Formats we do not read are named. */
    assert_int_equal(image_decode("\0\0\0\x18" "ftypheic\0\0\0\0", 16, 0, &img, err, sizeof err),
                     CORE_EBADMEDIA);
    assert_true(strstr(err, "HEIC") != NULL);
    assert_int_equal(image_decode("RIFF\0\0\0\0WEBPVP8 ", 16, 0, &img, err, sizeof err),
                     CORE_EBADMEDIA);
    assert_true(strstr(err, "WebP") != NULL);
    path = tmp_path("does-not-exist.png");
    assert_int_equal(image_load(path, 0, &img, err, sizeof err), -ENOENT);
    assert_null(img.rgb);
    free(path);
}

/* Random bytes, bare and behind each format's magic number, so that they reach the decoders. */
static void test_random_bytes(void **state)
{
    static const char *const magic[] = {"", "\xff\xd8\xff", "\x89PNG\r\n\x1a\n",
                                        "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "P6 ", "P6\n4 4\n255\n"};
    uint8_t buf[4096];
    char err[256];
    (void)state;
    for (int round = 0; round < 6000; round++) {
        const char *m = magic[round % 6];
        size_t mlen = round % 6 == 3 ? 16 : strlen(m);
        size_t len = mlen + rng() % (sizeof buf - mlen);
        image_t img;
        int ret;
        memcpy(buf, m, mlen);
        for (size_t i = mlen; i < len; i++)
            buf[i] = (uint8_t)rng();
        ret = image_decode(buf, len, 0, &img, err, sizeof err);
        if (ret == 0) { /* only the PPM header with enough bytes can be a picture */
            assert_int_equal(round % 6, 5);
            image_free(&img);
            continue;
        }
        assert_true(ret == CORE_EBADMEDIA || ret == CORE_EDECODE || ret == CORE_ELIMIT);
        assert_true(strlen(err) > 0);
        assert_null(img.rgb);
    }
}

/* Valid files with a few bytes changed anywhere (headers, tables, entropy data, chunks): a
 * picture or a clear error, never a crash or a read out of bounds. */
static void test_corrupted_bytes(void **state)
{
    uint8_t *stored = blocks_picture(3, 2);
    unsigned long jpg_len = 0;
    unsigned char *jpg;
    char *png_path = tmp_path("flip.png");
    char *png = NULL;
    size_t png_len = 0;
    char err[256];
    image_t img;
    (void)state;

    for (size_t i = 0; i < 48 * 32 * 3; i++)
        stored[i] ^= (uint8_t)(rng() & 0x1f);
    jpg = compress_jpeg(stored, 48, 32, 3, JCS_RGB, JCS_YCbCr, NULL, 0, &jpg_len);
    assert_int_equal(image_alloc(&img, 48, 32), 0);
    memcpy(img.rgb, stored, 48 * 32 * 3);
    assert_int_equal(image_write_png(png_path, &img, err, sizeof err), 0);
    image_free(&img);
    assert_int_equal(core_read_file(png_path, 1 << 20, &png, &png_len), 0);

    for (int round = 0; round < 4000; round++) {
        const uint8_t *orig = round % 2 ? (const uint8_t *)png : jpg;
        size_t len = round % 2 ? png_len : jpg_len;
        uint8_t *copy = xmalloc(len);
        int flips = 1 + (int)(rng() % 4), ret;
        memcpy(copy, orig, len);
        for (int f = 0; f < flips; f++)
            copy[3 + rng() % (len - 3)] = (uint8_t)rng(); /* keep the magic number */
        ret = image_decode(copy, len, 0, &img, err, sizeof err);
        if (ret == 0) {
            assert_true(img.width > 0 && img.height > 0);
            image_free(&img);
        } else {
            assert_true(ret == CORE_EBADMEDIA || ret == CORE_EDECODE || ret == CORE_ELIMIT);
            assert_true(strlen(err) > 0);
        }
        free(copy);
    }
    free(png);
    free(png_path);
    free(jpg);
    free(stored);
}

/* Headers claiming 60000 x 60000 (3.6 gigapixels) are refused from the header alone. */
static void test_huge_headers(void **state)
{
    uint8_t *stored = blocks_picture(3, 2);
    unsigned long len = 0;
    unsigned char *jpg = compress_jpeg(stored, 48, 32, 3, JCS_RGB, JCS_YCbCr, NULL, 0, &len);
    char *png_path = tmp_path("huge.png");
    char *data = NULL;
    size_t png_len = 0;
    char err[256];
    image_t img;
    (void)state;

    /* JPEG: patch the SOF0 segment's height and width. */
    for (unsigned long i = 2; i + 8 < len; i++)
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
            jpg[i + 5] = 60000 >> 8, jpg[i + 6] = 60000 & 0xff;
            jpg[i + 7] = 60000 >> 8, jpg[i + 8] = 60000 & 0xff;
            break;
        }
    assert_int_equal(image_decode(jpg, len, 0, &img, err, sizeof err), CORE_ELIMIT);
    assert_true(strstr(err, "too large") != NULL);
    assert_null(img.rgb);

    /* PNG: patch IHDR and its CRC. */
    assert_int_equal(image_alloc(&img, 48, 32), 0);
    memcpy(img.rgb, stored, 48 * 32 * 3);
    assert_int_equal(image_write_png(png_path, &img, err, sizeof err), 0);
    image_free(&img);
    assert_int_equal(core_read_file(png_path, 1 << 20, &data, &png_len), 0);
    put_be32((uint8_t *)data + 16, 60000);
    put_be32((uint8_t *)data + 20, 60000);
    put_be32((uint8_t *)data + 29, crc32_png((uint8_t *)data + 12, 17));
    assert_int_equal(image_decode(data, png_len, 0, &img, err, sizeof err), CORE_ELIMIT);
    /* Even with a pixel limit above 60000^2: a side over IMAGE_MAX_SIDE. */
    assert_int_equal(image_decode(data, png_len, 4LL << 30, &img, err, sizeof err), CORE_ELIMIT);

    /* PPM. */
    assert_int_equal(image_decode("P6\n60000 60000\n255\n\0\0\0", 22, 0, &img, err, sizeof err),
                     CORE_ELIMIT);
    assert_int_equal(image_decode("P6 99999999999 1 255 ", 21, 0, &img, err, sizeof err),
                     CORE_EBADMEDIA);

    /* A caller's own small limit applies to a normal picture. */
    assert_int_equal(image_decode(jpg, len, 100, &img, err, sizeof err), CORE_ELIMIT);
    free(data);
    free(png_path);
    free(jpg);
    free(stored);
}

/* ---- PPM and round trips ---- */

static void test_ppm_parsing(void **state)
{
    static const char ok[] = "P6\n# a comment\n2 1 # another\n255\n\x01\x02\x03\x04\x05\x06";
    char err[256];
    image_t img;
    (void)state;
    assert_int_equal(image_decode(ok, sizeof ok - 1, 0, &img, err, sizeof err), 0);
    assert_int_equal(img.width, 2);
    assert_int_equal(img.height, 1);
    assert_memory_equal(img.rgb, "\x01\x02\x03\x04\x05\x06", 6);
    image_free(&img);
    assert_int_equal(image_decode("P6\n2 1\n65535\n", 13, 0, &img, err, sizeof err),
                     CORE_EBADMEDIA);
    assert_true(strstr(err, "maxval 65535") != NULL);
    assert_int_equal(image_decode("P6\n2 1\n255\n\1\2\3", 14, 0, &img, err, sizeof err),
                     CORE_EDECODE);
    assert_int_equal(image_decode("P6\n0 1\n255\n", 11, 0, &img, err, sizeof err),
                     CORE_EBADMEDIA);
    assert_int_equal(image_decode("P6\n2 x\n255\n", 11, 0, &img, err, sizeof err),
                     CORE_EBADMEDIA);
    assert_int_equal(image_decode("P6\n2 1\n255", 10, 0, &img, err, sizeof err), CORE_EBADMEDIA);
    /* "P6" must be followed by whitespace to be a PPM at all. */
    assert_int_equal(image_sniff("P62 1 255\n\1\2\3\4\5\6", 16), IMAGE_FORMAT_UNKNOWN);
    assert_int_equal(image_sniff("P6\t", 3), IMAGE_FORMAT_PPM);
    assert_int_equal(image_sniff("P6", 2), IMAGE_FORMAT_UNKNOWN);
}

/* Written by us, read by us and by ffmpeg: the same bytes. */
static void test_round_trips(void **state)
{
    static const char *const names[] = {"round.png", "round.ppm"};
    char err[256];
    image_t img, back;
    (void)state;
    assert_int_equal(image_alloc(&img, 123, 77), 0);
    for (size_t i = 0; i < 123 * 77 * 3; i++)
        img.rgb[i] = (uint8_t)rng();
    for (int k = 0; k < 2; k++) {
        char *path = tmp_path(names[k]);
        size_t ref_len;
        uint8_t *ref;
        assert_int_equal(k == 0 ? image_write_png(path, &img, err, sizeof err)
                                : image_write_ppm(path, &img, err, sizeof err),
                         0);
        assert_int_equal(image_load(path, 0, &back, err, sizeof err), 0);
        assert_int_equal(back.width, 123);
        assert_int_equal(back.height, 77);
        assert_memory_equal(back.rgb, img.rgb, 123 * 77 * 3);
        image_free(&back);
        ref = ffmpeg_rgb(path, &ref_len);
        assert_int_equal(ref_len, 123 * 77 * 3);
        assert_memory_equal(ref, img.rgb, ref_len);
        free(ref);
        free(path);
    }
    /* A folder that does not exist: an error, and nothing written. */
    {
        char *path = tmp_path("no/such/dir/x.png");
        assert_true(image_write_png(path, &img, err, sizeof err) < 0);
        assert_true(image_write_ppm(path, &img, err, sizeof err) < 0);
        free(path);
    }
    image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_fixtures_match_ffmpeg),
        cmocka_unit_test(test_jpeg_fixtures_near_ffmpeg),
        cmocka_unit_test(test_cmyk_fixture_colours),
        cmocka_unit_test(test_png_kinds_match_ffmpeg),
        cmocka_unit_test(test_png_interlaced_16bit_alpha),
        cmocka_unit_test(test_jpeg_colour_spaces),
        cmocka_unit_test(test_exif_orientations),
        cmocka_unit_test(test_exif_damaged_is_ignored),
        cmocka_unit_test(test_truncated_jpeg),
        cmocka_unit_test(test_truncated_png),
        cmocka_unit_test(test_empty_and_unknown),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_corrupted_bytes),
        cmocka_unit_test(test_huge_headers),
        cmocka_unit_test(test_ppm_parsing),
        cmocka_unit_test(test_round_trips),
    };
    fixtures = getenv("PERSONA_FIXTURES");
    tmpdir = getenv("PERSONA_TEST_TMP");
    if (!fixtures || !tmpdir) {
        fprintf(stderr, "PERSONA_FIXTURES and PERSONA_TEST_TMP must be set\n");
        return 1;
    }
    if (core_mkdirs(tmpdir) != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
