/* tests/media/test_media.c: unit tests of the media module against the shared fixtures made by
 * tests/data/make_media.sh (PERSONA_FIXTURES), writing into PERSONA_TEST_TMP. Outputs of
 * media_split are checked with the ffprobe CLI, an independent reader; bad and random inputs
 * must give a negative code, never a crash, and leave no output file behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "media/media.h"

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

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_all(const char *path, size_t *len)
{
    char *data = NULL;
    assert_int_equal(core_read_file(path, 256u << 20, &data, len), 0);
    return data;
}

/* What ffprobe says about a file: its streams' types and durations, and the format's. */
typedef struct ff_info {
    int n;
    char type[8][16];
    double stream_dur[8]; /* -1 when ffprobe gives none */
    double format_dur;
} ff_info_t;

static int ffprobe(const char *path, ff_info_t *info)
{
    char *cmd = xasprintf("ffprobe -v error -show_entries stream=codec_type,duration:format=duration"
                          " -of json '%s'",
                          path);
    FILE *p = popen(cmd, "r");
    core_buf_t out;
    char chunk[4096];
    size_t n;
    json_t *root, *streams, *fmt;
    size_t i;

    xfree(&cmd);
    assert_non_null(p);
    core_buf_init(&out);
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        core_buf_append(&out, chunk, n);
    int status = pclose(p);
    memset(info, 0, sizeof *info);
    info->format_dur = -1;
    root = json_loads(out.data ? out.data : "", 0, NULL);
    core_buf_destroy(&out);
    if (status != 0 || !root) {
        json_decref(root);
        return -1;
    }
    streams = json_object_get(root, "streams");
    json_array_foreach(streams, i, fmt)
    {
        if (info->n >= 8)
            break;
        const char *t = json_string_value(json_object_get(fmt, "codec_type"));
        const char *d = json_string_value(json_object_get(fmt, "duration"));
        snprintf(info->type[info->n], sizeof info->type[0], "%s", t ? t : "");
        info->stream_dur[info->n] = d ? atof(d) : -1;
        info->n++;
    }
    fmt = json_object_get(root, "format");
    if (json_string_value(json_object_get(fmt, "duration")))
        info->format_dur = atof(json_string_value(json_object_get(fmt, "duration")));
    json_decref(root);
    return 0;
}

/* The duration of the first stream of type in path, by ffprobe (the format's if the stream has
 * none, as in Matroska). */
static double original_stream_duration(const char *path, const char *type)
{
    ff_info_t info;
    assert_int_equal(ffprobe(path, &info), 0);
    for (int i = 0; i < info.n; i++)
        if (strcmp(info.type[i], type) == 0)
            return info.stream_dur[i] > 0 ? info.stream_dur[i] : info.format_dur;
    fail_msg("%s has no %s stream", path, type);
    return -1;
}

static uint32_t le32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* ---- probe ---- */

typedef struct expect {
    const char *file;
    const char *container; /* a token of the demuxer name */
    bool video, audio, image;
    const char *vcodec;
    int width, height;
    double fps;
    const char *acodec;
    int rate, channels;
    double duration;
} expect_t;

static const expect_t good[] = {
    {"clip.mp4", "mp4", true, true, false, "h264", 320, 240, 25, "aac", 44100, 2, 3.0},
    {"clip.mkv", "matroska", true, true, false, "h264", 320, 240, 25, "vorbis", 44100, 2, 3.0},
    {"clip.webm", "webm", true, true, false, "vp9", 320, 240, 25, "opus", 48000, 2, 3.0},
    {"clip.mov", "mov", true, true, false, "h264", 320, 240, 25, "aac", 44100, 2, 3.0},
    {"clip.m4a", "m4a", false, true, false, NULL, 0, 0, 0, "aac", 44100, 2, 3.0},
    {"clip.mp3", "mp3", false, true, false, NULL, 0, 0, 0, "mp3", 44100, 2, 3.0},
    {"clip.wav", "wav", false, true, false, NULL, 0, 0, 0, "pcm_s16le", 48000, 2, 3.0},
    {"long.mp4", "mp4", true, true, false, "h264", 1280, 720, 25, "aac", 44100, 2, 60.0},
    {"still.png", "png_pipe", true, false, true, "png", 640, 480, 0, NULL, 0, 0, -1},
    {"still.jpg", NULL, true, false, true, "mjpeg", 640, 480, 0, NULL, 0, 0, -1},
    {"gray.png", "png_pipe", true, false, true, "png", 320, 240, 0, NULL, 0, 0, -1},
    {"alpha.png", "png_pipe", true, false, true, "png", 320, 240, 0, NULL, 0, 0, -1},
    {"cmyk.jpg", NULL, true, false, true, "mjpeg", 200, 150, 0, NULL, 0, 0, -1},
};

static bool has_token(const char *list, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = list; p && *p;) {
        if (strncmp(p, tok, n) == 0 && (p[n] == ',' || p[n] == 0))
            return true;
        p = strchr(p, ',');
        p = p ? p + 1 : NULL;
    }
    return false;
}

static void test_probe_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const expect_t *e = &good[i];
        char *path = fixture(e->file);
        media_probe_t p;
        char err[256] = "";
        int ret = media_probe_file(path, &p, err, sizeof err);
        if (ret != 0)
            fail_msg("%s: %d %s", e->file, ret, err);
        if (e->container && !has_token(p.container, e->container))
            fail_msg("%s: container %s", e->file, p.container);
        assert_int_equal(p.has_video, e->video);
        assert_int_equal(p.has_audio, e->audio);
        assert_int_equal(p.is_image, e->image);
        assert_true(p.n_streams >= 1);
        if (e->video) {
            assert_string_equal(p.video_codec, e->vcodec);
            assert_int_equal(p.width, e->width);
            assert_int_equal(p.height, e->height);
            assert_true(fabs(p.fps - e->fps) < 0.01);
        }
        if (e->audio) {
            assert_string_equal(p.audio_codec, e->acodec);
            assert_int_equal(p.sample_rate, e->rate);
            assert_int_equal(p.channels, e->channels);
        }
        if (e->duration < 0)
            assert_true(p.duration < 0);
        else if (fabs(p.duration - e->duration) > 0.1)
            fail_msg("%s: duration %f", e->file, p.duration);

        /* The JSON form parses and says the same. */
        char *js = media_probe_to_json(&p);
        json_error_t jerr;
        json_t *root = json_loads(js, 0, &jerr);
        if (!root)
            fail_msg("%s: bad JSON %s: %s", e->file, js, jerr.text);
        assert_string_equal(json_string_value(json_object_get(root, "container")), p.container);
        assert_int_equal(json_integer_value(json_object_get(root, "streams")), p.n_streams);
        assert_int_equal(json_is_true(json_object_get(root, "image")), p.is_image);
        assert_int_equal(json_object_get(root, "video") != NULL, p.has_video);
        assert_int_equal(json_object_get(root, "audio") != NULL, p.has_audio);
        if (p.has_video)
            assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "video"),
                                                                "width")),
                             p.width);
        if (p.has_audio)
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(root, "audio"), "codec")),
                p.audio_codec);
        if (p.duration < 0)
            assert_true(json_is_null(json_object_get(root, "duration")));
        else
            assert_true(fabs(json_number_value(json_object_get(root, "duration")) - p.duration) <
                        1e-6);
        json_decref(root);
        free(js);
        xfree(&path);
    }
}

static void test_probe_json_escaping(void **state)
{
    (void)state;
    media_probe_t p;
    memset(&p, 0, sizeof p);
    snprintf(p.container, sizeof p.container, "a\"b\\c\n\x01");
    p.duration = -1;
    char *js = media_probe_to_json(&p);
    json_t *root = json_loads(js, 0, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "container")), "a\"b\\c\n\x01");
    json_decref(root);
    free(js);
}

/* ---- kinds ---- */

static int kind_of(const char *file, const char *kind)
{
    char *path = fixture(file);
    media_probe_t p;
    char err[256] = "";
    int ret = media_probe_file(path, &p, err, sizeof err);
    if (ret == 0) {
        ret = media_probe_check_kind(&p, kind, err, sizeof err);
        if (ret != 0)
            assert_true(strlen(err) > 0);
    }
    xfree(&path);
    return ret;
}

static void test_check_kind(void **state)
{
    (void)state;
    assert_int_equal(kind_of("clip.mp4", "video"), 0);
    assert_int_equal(kind_of("clip.webm", "video"), 0);
    assert_int_equal(kind_of("clip.mkv", "video"), 0);
    assert_int_equal(kind_of("clip.mov", "video"), 0);
    assert_int_equal(kind_of("clip.m4a", "audio"), 0);
    assert_int_equal(kind_of("clip.mp3", "audio"), 0);
    assert_int_equal(kind_of("clip.wav", "audio"), 0);
    assert_int_equal(kind_of("still.png", "image"), 0);
    assert_int_equal(kind_of("still.jpg", "image"), 0);
    assert_int_equal(kind_of("gray.png", "image"), 0);
    assert_int_equal(kind_of("alpha.png", "image"), 0);

    assert_int_equal(kind_of("notes.txt", "video"), CORE_EBADMEDIA);
    assert_int_equal(kind_of("still.png", "video"), CORE_EBADMEDIA);
    assert_int_equal(kind_of("clip.m4a", "video"), CORE_EBADMEDIA);
    assert_int_equal(kind_of("clip.mp4", "image"), CORE_EBADMEDIA);
    assert_int_equal(kind_of("clip.mp4", "audio"), CORE_EBADMEDIA);
    assert_int_equal(kind_of("clip.mp3", "image"), CORE_EBADMEDIA);
    assert_int_equal(kind_of("still.jpg", "audio"), CORE_EBADMEDIA);
    assert_int_equal(kind_of("clip.mp4", "text"), CORE_EBADMEDIA);

    media_probe_t p;
    char err[256] = "";
    char *path = fixture("still.png");
    assert_int_equal(media_probe_file(path, &p, err, sizeof err), 0);
    assert_int_equal(media_probe_check_kind(&p, "video", err, sizeof err), CORE_EBADMEDIA);
    assert_non_null(strstr(err, "image"));
    xfree(&path);
}

/* ---- split ---- */

typedef struct split_case {
    const char *file;
    const char *audio_ext; /* NULL: no audio track */
    const char *video_ext;
} split_case_t;

static const split_case_t splits[] = {
    {"clip.mp4", "m4a", "mp4"}, {"clip.mkv", "ogg", "mp4"}, {"clip.webm", "opus", "webm"},
    {"clip.mov", "m4a", "mp4"}, {"clip.m4a", "m4a", NULL},  {"clip.mp3", "mp3", NULL},
    {"clip.wav", "wav", NULL},
};

static void check_track(const char *orig, const media_track_file_t *t, const char *type,
                        const char *ext)
{
    ff_info_t info;
    if (!ext) {
        assert_false(t->present);
        return;
    }
    assert_true(t->present);
    assert_string_equal(t->ext, ext);
    assert_true(strlen(t->mime) > 0);
    assert_true(strlen(t->codec) > 0);
    assert_true(exists(t->path));
    if (ffprobe(t->path, &info) != 0)
        fail_msg("ffprobe cannot read %s", t->path);
    if (info.n != 1 || strcmp(info.type[0], type) != 0)
        fail_msg("%s: %d streams, first %s", t->path, info.n, info.type[0]);
    double want = original_stream_duration(orig, type);
    double got = info.format_dur > 0 ? info.format_dur : info.stream_dur[0];
    if (fabs(got - want) > 0.1)
        fail_msg("%s: duration %f, original's %s stream %f", t->path, got, type, want);
    if (fabs(t->duration - want) > 0.1)
        fail_msg("%s: reported duration %f, original's %s stream %f", t->path, t->duration, type,
                 want);
}

static void test_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        const split_case_t *c = &splits[i];
        char *in = fixture(c->file);
        char *prefix = tmp_path(c->file);
        media_track_file_t a, v;
        char err[256] = "";
        int ret = media_split(in, prefix, &a, &v, err, sizeof err);
        if (ret != 0)
            fail_msg("split %s: %d %s", c->file, ret, err);
        check_track(in, &a, "audio", c->audio_ext);
        check_track(in, &v, "video", c->video_ext);
        if (a.present) {
            char *want = xasprintf("%s.audio.%s", prefix, c->audio_ext);
            assert_string_equal(a.path, want);
            xfree(&want);
            unlink(a.path);
        }
        if (v.present) {
            char *want = xasprintf("%s.video.%s", prefix, c->video_ext);
            assert_string_equal(v.path, want);
            xfree(&want);
            unlink(v.path);
        }
        xfree(&in);
        xfree(&prefix);
    }
}

static void test_split_image_has_no_tracks(void **state)
{
    (void)state;
    char *in = fixture("still.png");
    char *prefix = tmp_path("still-split");
    media_track_file_t a, v;
    char err[256] = "";
    assert_int_equal(media_split(in, prefix, &a, &v, err, sizeof err), CORE_EBADMEDIA);
    assert_false(a.present);
    assert_false(v.present);
    assert_true(strlen(err) > 0);
    xfree(&in);
    xfree(&prefix);
}

/* ---- PCM ---- */

static void check_wav(const char *path, double want_seconds)
{
    size_t len;
    unsigned char *d = (unsigned char *)read_all(path, &len);
    assert_true(len >= 44);
    assert_memory_equal(d, "RIFF", 4);
    assert_int_equal(le32(d + 4), len - 8);
    assert_memory_equal(d + 8, "WAVEfmt ", 8);
    assert_int_equal(le32(d + 16), 16);
    assert_int_equal(le16(d + 20), 1);
    assert_int_equal(le16(d + 22), 1);
    assert_int_equal(le32(d + 24), 16000);
    assert_int_equal(le32(d + 28), 32000);
    assert_int_equal(le16(d + 32), 2);
    assert_int_equal(le16(d + 34), 16);
    assert_memory_equal(d + 36, "data", 4);
    assert_int_equal(le32(d + 40), len - 44);
    double seconds = (double)(len - 44) / 32000;
    if (fabs(seconds - want_seconds) > 0.1)
        fail_msg("%s: %f s of PCM, want %f", path, seconds, want_seconds);
    /* A 440 Hz tone is not silence. */
    int peak = 0;
    for (size_t i = 44; i + 1 < len; i += 2) {
        int s = abs((int16_t)le16(d + i));
        if (s > peak)
            peak = s;
    }
    assert_true(peak > 1000);
    free(d);
}

static void test_pcm16k(void **state)
{
    (void)state;
    const char *files[] = {"clip.mp4", "clip.mkv", "clip.webm", "clip.mov",
                           "clip.m4a", "clip.mp3", "clip.wav"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *in = fixture(files[i]);
        char *out = tmp_path("pcm.wav");
        double dur = -1;
        char err[256] = "";
        int ret = media_decode_pcm16k(in, out, &dur, err, sizeof err);
        if (ret != 0)
            fail_msg("pcm %s: %d %s", files[i], ret, err);
        double want = original_stream_duration(in, "audio");
        if (fabs(dur - want) > 0.1)
            fail_msg("pcm %s: %f s, want %f", files[i], dur, want);
        check_wav(out, want);
        unlink(out);
        xfree(&in);
        xfree(&out);
    }
}

static void test_pcm16k_no_audio(void **state)
{
    (void)state;
    char *in = fixture("still.png");
    char *out = tmp_path("none.wav");
    char err[256] = "";
    double dur = 1;
    assert_int_equal(media_decode_pcm16k(in, out, &dur, err, sizeof err), CORE_EBADMEDIA);
    assert_false(exists(out));
    assert_true(strlen(err) > 0);
    xfree(&in);
    xfree(&out);
}

/* ---- thumbnails ---- */

static void check_jpeg(const char *path, int max_side, int want_w, int want_h)
{
    media_probe_t p;
    char err[256] = "";
    int ret = media_probe_file(path, &p, err, sizeof err);
    if (ret != 0)
        fail_msg("thumbnail %s: %d %s", path, ret, err);
    assert_true(p.is_image);
    assert_string_equal(p.video_codec, "mjpeg");
    assert_true(p.width <= max_side && p.height <= max_side);
    assert_true(p.width == max_side || p.height == max_side || max_side > 640);
    if (want_w)
        assert_int_equal(p.width, want_w);
    if (want_h)
        assert_int_equal(p.height, want_h);
    size_t len;
    unsigned char *d = (unsigned char *)read_all(path, &len);
    assert_true(len > 4 && d[0] == 0xff && d[1] == 0xd8 && d[len - 2] == 0xff && d[len - 1] == 0xd9);
    free(d);
}

static void test_thumbnail(void **state)
{
    (void)state;
    struct {
        const char *file;
        int max_side, w, h;
    } cases[] = {
        {"clip.mp4", 320, 320, 240},  {"clip.webm", 160, 160, 120}, {"clip.mkv", 100, 100, 75},
        {"clip.mov", 320, 320, 240},  {"long.mp4", 320, 320, 180},  {"still.png", 320, 320, 240},
        {"still.jpg", 320, 320, 240}, {"gray.png", 64, 64, 48},     {"alpha.png", 320, 320, 240},
        {"still.png", 2000, 640, 480},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *in = fixture(cases[i].file);
        char *out = tmp_path("thumb.jpg");
        char err[256] = "";
        int ret = media_thumbnail(in, out, cases[i].max_side, err, sizeof err);
        if (ret != 0)
            fail_msg("thumbnail %s: %d %s", cases[i].file, ret, err);
        check_jpeg(out, cases[i].max_side, cases[i].w, cases[i].h);
        unlink(out);
        xfree(&in);
        xfree(&out);
    }
}

/* The colour of pixel (x, y) of an image, as the ffmpeg CLI decodes it. */
static void pixel_rgb(const char *path, int x, int y, unsigned char rgb[3])
{
    /* 2x2: a 1-pixel crop of a 4:2:0 picture has no chroma. */
    char *cmd = xasprintf("ffmpeg -nostdin -v error -i '%s' -vf crop=2:2:%d:%d -f rawvideo "
                          "-pix_fmt rgb24 -",
                          path, x, y);
    unsigned char px[12];
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fread(px, 1, sizeof px, p), sizeof px);
    assert_int_equal(pclose(p), 0);
    memcpy(rgb, px, 3);
    xfree(&cmd);
}

/* A CMYK JPEG (cyan, magenta / yellow, black quadrants) comes out in the right colours. */
static void test_thumbnail_cmyk(void **state)
{
    (void)state;
    char *in = fixture("cmyk.jpg");
    char *out = tmp_path("cmyk-thumb.jpg");
    char err[256] = "";
    unsigned char c[3], m[3], yl[3], k[3];
    int ret = media_thumbnail(in, out, 100, err, sizeof err);
    if (ret != 0)
        fail_msg("thumbnail: %d %s", ret, err);
    check_jpeg(out, 100, 100, 75);
    pixel_rgb(out, 20, 15, c);
    pixel_rgb(out, 80, 15, m);
    pixel_rgb(out, 20, 60, yl);
    pixel_rgb(out, 80, 60, k);
    assert_true(c[0] < 60 && c[1] > 190 && c[2] > 190);
    assert_true(m[0] > 190 && m[1] < 60 && m[2] > 190);
    assert_true(yl[0] > 190 && yl[1] > 190 && yl[2] < 60);
    assert_true(k[0] < 40 && k[1] < 40 && k[2] < 40);
    unlink(out);
    xfree(&in);
    xfree(&out);
}

/* A phone's portrait video: landscape frames with a display matrix. The thumbnail is upright
 * (as the ffmpeg CLI shows it) and the separated video keeps the matrix. */
static void test_rotated_video(void **state)
{
    (void)state;
    char *src = fixture("clip.mp4");
    char *in = tmp_path("rotated.mp4");
    char *jpg = tmp_path("rotated-video.jpg");
    char *prefix = tmp_path("rotated");
    char *cmd = xasprintf("ffmpeg -nostdin -loglevel error -y -i '%s' -c copy "
                          "-metadata:s:v:0 rotate=90 '%s'",
                          src, in);
    assert_int_equal(system(cmd), 0);
    xfree(&cmd);
    char err[256] = "";
    int ret = media_thumbnail(in, jpg, 320, err, sizeof err);
    if (ret != 0)
        fail_msg("thumbnail: %d %s", ret, err);
    check_jpeg(jpg, 320, 240, 320);

    media_track_file_t a, v;
    ret = media_split(in, prefix, &a, &v, err, sizeof err);
    if (ret != 0)
        fail_msg("split: %d %s", ret, err);
    cmd = xasprintf("ffprobe -v error -show_entries stream_side_data=rotation -of csv=p=0 '%s' "
                    "| grep -qx -- '-\\?90'",
                    v.path);
    assert_int_equal(system(cmd), 0);
    xfree(&cmd);
    unlink(a.path);
    unlink(v.path);
    unlink(jpg);
    unlink(in);
    xfree(&src);
    xfree(&in);
    xfree(&jpg);
    xfree(&prefix);
}

static void test_thumbnail_no_picture(void **state)
{
    (void)state;
    char *in = fixture("clip.m4a");
    char *out = tmp_path("nopic.jpg");
    char err[256] = "";
    assert_int_equal(media_thumbnail(in, out, 320, err, sizeof err), CORE_EBADMEDIA);
    assert_false(exists(out));
    xfree(&in);
    xfree(&out);
}

/* A JPEG whose EXIF says "rotate 90 degrees clockwise to view" (orientation 6) gives a portrait
 * thumbnail of a landscape picture. */
static void test_thumbnail_exif_orientation(void **state)
{
    (void)state;
    static const unsigned char app1[] = {
        0xff, 0xe1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,
        'I', 'I', 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00,             /* TIFF header, IFD at 8 */
        0x01, 0x00,                                               /* one entry */
        0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, /* Orientation=6 */
        0x00, 0x00, 0x00, 0x00,                                   /* no next IFD */
    };
    size_t len;
    char *src = fixture("still.jpg");
    unsigned char *d = (unsigned char *)read_all(src, &len);
    unsigned char *rot = xmalloc(len + sizeof app1);
    memcpy(rot, d, 2);
    memcpy(rot + 2, app1, sizeof app1);
    memcpy(rot + 2 + sizeof app1, d + 2, len - 2);
    char *in = tmp_path("rotated.jpg");
    char *out = tmp_path("rotated-thumb.jpg");
    write_file(in, rot, len + sizeof app1);
    char err[256] = "";
    int ret = media_thumbnail(in, out, 320, err, sizeof err);
    if (ret != 0)
        fail_msg("thumbnail: %d %s", ret, err);
    check_jpeg(out, 320, 240, 320);
    unlink(in);
    unlink(out);
    free(d);
    xfree(&rot);
    xfree(&src);
    xfree(&in);
    xfree(&out);
}

/* ---- bad inputs ---- */

/* Runs every operation on path and checks each fails cleanly (or, where allowed, succeeds). */
static void all_ops_fail(const char *path, int want_probe)
{
    media_probe_t p;
    media_track_file_t a, v;
    char err[256] = "";
    char *prefix = tmp_path("bad");
    char *wav = tmp_path("bad.wav");
    char *jpg = tmp_path("bad.jpg");
    double dur;

    int ret = media_probe_file(path, &p, err, sizeof err);
    if (ret != want_probe)
        fail_msg("probe %s: %d (%s), want %d", path, ret, err, want_probe);
    assert_true(strlen(err) > 0);
    err[0] = 0;
    assert_true(media_split(path, prefix, &a, &v, err, sizeof err) < 0);
    assert_true(strlen(err) > 0);
    assert_false(a.present || v.present);
    err[0] = 0;
    assert_true(media_decode_pcm16k(path, wav, &dur, err, sizeof err) < 0);
    assert_true(strlen(err) > 0);
    assert_false(exists(wav));
    err[0] = 0;
    assert_true(media_thumbnail(path, jpg, 320, err, sizeof err) < 0);
    assert_true(strlen(err) > 0);
    assert_false(exists(jpg));
    xfree(&prefix);
    xfree(&wav);
    xfree(&jpg);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    const char *files[] = {"truncated.mp4", "random.mp4", "empty.bin", "notes.txt",
                           "badutf8.txt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *path = fixture(files[i]);
        all_ops_fail(path, CORE_EBADMEDIA);
        xfree(&path);
    }
    char *missing = tmp_path("does-not-exist.mp4");
    all_ops_fail(missing, -ENOENT);
    xfree(&missing);
}

/* clip.mp4 with its middle overwritten by random bytes: the index (moov, at the front) is
 * intact, the data is not. Each operation may succeed (concealment, or stream copy not looking
 * inside packets) or fail with a reason, but must not crash or leave a failed output. */
static void test_damaged_middle(void **state)
{
    (void)state;
    char *src = fixture("clip.mp4");
    size_t len;
    unsigned char *d = (unsigned char *)read_all(src, &len);
    srand(7);
    for (size_t i = len * 35 / 100; i < len * 65 / 100; i++)
        d[i] = (unsigned char)rand();
    char *in = tmp_path("damaged.mp4");
    write_file(in, d, len);
    char *prefix = tmp_path("damaged");
    char *wav = tmp_path("damaged.wav");
    char *jpg = tmp_path("damaged.jpg");
    media_probe_t p;
    media_track_file_t a, v;
    char err[256];
    double dur;

    assert_int_equal(media_probe_file(in, &p, err, sizeof err), 0);
    int ret = media_split(in, prefix, &a, &v, err, sizeof err);
    assert_true(ret == 0 || ret < 0);
    if (ret < 0) {
        assert_false(a.present || v.present);
    } else {
        unlink(a.path);
        unlink(v.path);
    }
    ret = media_decode_pcm16k(in, wav, &dur, err, sizeof err);
    if (ret < 0) {
        assert_true(ret == CORE_EDECODE || ret == CORE_EBADMEDIA);
        assert_false(exists(wav));
    } else {
        assert_true(exists(wav));
        unlink(wav);
    }
    ret = media_thumbnail(in, jpg, 320, err, sizeof err);
    if (ret < 0)
        assert_false(exists(jpg));
    else
        unlink(jpg);
    unlink(in);
    free(d);
    xfree(&src);
    xfree(&in);
    xfree(&prefix);
    xfree(&wav);
    xfree(&jpg);
}

static uint32_t crc32_png(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A PNG header claiming width x height, with a few bytes of IDAT and an IEND. */
static void write_png_header(const char *path, uint32_t width, uint32_t height)
{
    unsigned char png[8 + 25 + 12 + 20 + 12];
    size_t n = 0;
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    n = 8;
    put_be32(png + n, 13);
    memcpy(png + n + 4, "IHDR", 4);
    put_be32(png + n + 8, width);
    put_be32(png + n + 12, height);
    png[n + 16] = 8; /* bit depth */
    png[n + 17] = 2; /* RGB */
    png[n + 18] = png[n + 19] = png[n + 20] = 0;
    put_be32(png + n + 21, crc32_png(png + n + 4, 17));
    n += 25;
    put_be32(png + n, 8);
    memcpy(png + n + 4, "IDAT", 4);
    memcpy(png + n + 8, "\x78\x9c\x63\x60\x00\x00\x00\x02", 8);
    put_be32(png + n + 16, crc32_png(png + n + 4, 12));
    n += 20;
    put_be32(png + n, 0);
    memcpy(png + n + 4, "IEND", 4);
    put_be32(png + n + 8, crc32_png(png + n + 4, 4));
    n += 12;
    write_file(path, png, n);
}

static void test_huge_image(void **state)
{
    (void)state;
    const uint32_t dims[][2] = {{100000, 100000}, {9000, 8000}, {70000, 1000}, {1, 0x7fffffff}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        char *in = tmp_path("huge.png");
        char *jpg = tmp_path("huge.jpg");
        media_probe_t p;
        char err[256] = "";
        write_png_header(in, dims[i][0], dims[i][1]);
        int ret = media_probe_file(in, &p, err, sizeof err);
        if (ret != CORE_ELIMIT)
            fail_msg("probe %ux%u: %d %s", dims[i][0], dims[i][1], ret, err);
        ret = media_thumbnail(in, jpg, 320, err, sizeof err);
        assert_int_equal(ret, CORE_ELIMIT);
        assert_false(exists(jpg));
        unlink(in);
        xfree(&in);
        xfree(&jpg);
    }
}

/* still.jpg with its start-of-frame patched to claim 60000x60000. */
static void test_huge_jpeg(void **state)
{
    (void)state;
    size_t len;
    char *src = fixture("still.jpg");
    unsigned char *d = (unsigned char *)read_all(src, &len);
    char *in = tmp_path("huge-jpeg.jpg");
    char *jpg = tmp_path("huge-jpeg-thumb.jpg");
    media_probe_t p;
    char err[256] = "";
    size_t i;
    for (i = 2; i + 9 < len; i++)
        if (d[i] == 0xff && (d[i + 1] == 0xc0 || d[i + 1] == 0xc2))
            break;
    assert_true(i + 9 < len);
    d[i + 5] = d[i + 7] = 0xea; /* 0xea60 = 60000 */
    d[i + 6] = d[i + 8] = 0x60;
    write_file(in, d, len);
    int ret = media_probe_file(in, &p, err, sizeof err);
    if (ret != CORE_ELIMIT)
        fail_msg("probe: %d %s", ret, err);
    assert_int_equal(media_thumbnail(in, jpg, 320, err, sizeof err), CORE_ELIMIT);
    assert_false(exists(jpg));
    unlink(in);
    free(d);
    xfree(&src);
    xfree(&in);
    xfree(&jpg);
}

/* ---- fuzz ---- */

static const struct {
    const char *bytes;
    size_t len;
} magics[] = {
    {"\x00\x00\x00\x20" "ftypisom\x00\x00\x02\x00isomiso2avc1mp41", 32},
    {"\x1a\x45\xdf\xa3", 4},
    {"OggS\x00\x02", 6},
    {"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00", 24},
    {"ID3\x03\x00\x00\x00\x00\x00\x00", 10},
    {"\xff\xfb\x90\x64", 4},
    {"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", 16},
    {"\xff\xd8\xff\xe0\x00\x10JFIF", 10},
    {"fLaC", 4},
    {"RIFF\x00\x00\x00\x00WEBPVP8 ", 16},
};

static const char *fuzz_sources[] = {"clip.mp4", "clip.webm", "clip.mkv", "clip.mp3",
                                     "clip.wav",  "still.png", "still.jpg", "clip.m4a"};

/* One random input: pure noise, noise after a container's magic bytes, a real file cut short,
 * or a real file with some bytes changed. */
static size_t make_fuzz_input(unsigned char *buf, size_t cap)
{
    int kind = rand() % 4;
    size_t len = (size_t)rand() % (cap + 1);
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)rand();
    if (kind == 1) {
        size_t m = (size_t)rand() % (sizeof magics / sizeof magics[0]);
        size_t n = magics[m].len < len ? magics[m].len : len;
        memcpy(buf, magics[m].bytes, n);
    } else if (kind >= 2) {
        char *path = fixture(fuzz_sources[(size_t)rand() % (sizeof fuzz_sources /
                                                            sizeof fuzz_sources[0])]);
        size_t flen;
        char *d = read_all(path, &flen);
        len = flen < cap ? flen : cap;
        if (kind == 2) {
            len = (size_t)rand() % (len + 1);
            memcpy(buf, d, len);
        } else {
            memcpy(buf, d, len);
            int flips = 1 + rand() % 20;
            for (int k = 0; k < flips && len; k++)
                buf[(size_t)rand() % len] = (unsigned char)rand();
        }
        free(d);
        xfree(&path);
    }
    return len;
}

static void test_fuzz(void **state)
{
    (void)state;
    unsigned seed = getenv("PERSONA_FUZZ_SEED") ? (unsigned)atoi(getenv("PERSONA_FUZZ_SEED"))
                                                : 20251125u;
    int iterations = getenv("PERSONA_FUZZ_N") ? atoi(getenv("PERSONA_FUZZ_N")) : 200;
    size_t cap = 128 * 1024;
    unsigned char *buf = xmalloc(cap);
    char *in = tmp_path("fuzz.bin");
    char *prefix = tmp_path("fuzz");
    char *wav = tmp_path("fuzz.wav");
    char *jpg = tmp_path("fuzz.jpg");
    int ok[4] = {0};

    print_message("fuzz seed %u, %d inputs\n", seed, iterations);
    srand(seed);
    for (int it = 0; it < iterations; it++) {
        size_t len = make_fuzz_input(buf, (size_t)(rand() % 2 ? 64 * 1024 : cap));
        media_probe_t p;
        media_track_file_t a, v;
        char err[256];
        double dur;
        int ret;

        write_file(in, buf, len);
        ret = media_probe_file(in, &p, err, sizeof err);
        assert_true(ret <= 0);
        ok[0] += ret == 0;

        ret = media_split(in, prefix, &a, &v, err, sizeof err);
        assert_true(ret <= 0);
        if (ret == 0) {
            ok[1]++;
            assert_true(a.present || v.present);
            if (a.present)
                assert_int_equal(unlink(a.path), 0);
            if (v.present)
                assert_int_equal(unlink(v.path), 0);
        } else {
            assert_false(a.present || v.present);
        }

        ret = media_decode_pcm16k(in, wav, &dur, err, sizeof err);
        assert_true(ret <= 0);
        if (ret == 0) {
            ok[2]++;
            assert_int_equal(unlink(wav), 0);
        }

        ret = media_thumbnail(in, jpg, 96, err, sizeof err);
        assert_true(ret <= 0);
        if (ret == 0) {
            ok[3]++;
            assert_int_equal(unlink(jpg), 0);
        }

        /* Nothing is left behind on failure. */
        if (exists(wav) || exists(jpg))
            fail_msg("iteration %d left an output behind", it);
    }
    /* Whatever is left in tmp must be only the input. */
    char *leftover = xasprintf("ls '%s' | grep -v '^fuzz.bin$' | grep '^fuzz' >/dev/null", tmpdir);
    assert_int_not_equal(system(leftover), 0);
    xfree(&leftover);
    print_message("fuzz: probe ok %d, split ok %d, pcm ok %d, thumbnail ok %d\n", ok[0], ok[1],
                  ok[2], ok[3]);
    unlink(in);
    xfree(&buf);
    xfree(&in);
    xfree(&prefix);
    xfree(&wav);
    xfree(&jpg);
}

int main(void)
{
    fixtures = getenv("PERSONA_FIXTURES");
    tmpdir = getenv("PERSONA_TEST_TMP");
    if (!fixtures || !tmpdir) {
        fprintf(stderr, "PERSONA_FIXTURES and PERSONA_TEST_TMP must be set\n");
        return 1;
    }
    if (core_mkdirs(tmpdir) != 0) {
        fprintf(stderr, "cannot create %s\n", tmpdir);
        return 1;
    }
    media_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_fixtures),
        cmocka_unit_test(test_probe_json_escaping),
        cmocka_unit_test(test_check_kind),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_image_has_no_tracks),
        cmocka_unit_test(test_pcm16k),
        cmocka_unit_test(test_pcm16k_no_audio),
        cmocka_unit_test(test_thumbnail),
        cmocka_unit_test(test_thumbnail_cmyk),
        cmocka_unit_test(test_rotated_video),
        cmocka_unit_test(test_thumbnail_no_picture),
        cmocka_unit_test(test_thumbnail_exif_orientation),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_damaged_middle),
        cmocka_unit_test(test_huge_image),
        cmocka_unit_test(test_huge_jpeg),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
