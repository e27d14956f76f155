/* tests/media/test_frames.c: unit tests of media_sample_frames. Clips are made with the ffmpeg
 * CLI at test time: each frame's grey level encodes its index (4 x N), so the test can read back
 * which frame was picked for each sample time and check it against the documented rule (nearest
 * frame, ties to the later one); rotation is checked against the ffmpeg CLI's own autorotated
 * output. Damaged, truncated, audio-only and random inputs must give the documented results and
 * never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "media/media.h"

static const char *fixtures;
static const char *tmpdir;

/* The index clips: 64x48, 25 frames a second, 60 frames, frame N grey 4N. */
#define IDX_FPS 25
#define IDX_FRAMES 60

/* ---- helpers ---- */

static char *fixture(const char *name)
{
    return xasprintf("%s/%s", fixtures, name);
}

static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static void run_ffmpeg(const char *args)
{
    char *cmd = xasprintf("ffmpeg -hide_banner -nostdin -loglevel error -y %s", args);
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);
    free(cmd);
}

/* Makes a clip in tmpdir whose frame N is grey 4N below its top quarter, which is noise so that
 * every frame weighs a few KiB (anew each time: a fraction of a second). */
static char *index_clip(const char *name, const char *codec_args)
{
    static const char grey[] = "if(lt(Y,H/4),255*random(1),4*N)";
    char *path = tmp_path(name);
    char *args = xasprintf("-f lavfi -i \"color=c=black:s=64x48:r=%d:d=%g,format=rgb24,"
                           "geq=r='%s':g='%s':b='%s'\" %s '%s'",
                           IDX_FPS, (double)IDX_FRAMES / IDX_FPS, grey, grey, grey, codec_args,
                           path);
    run_ffmpeg(args);
    free(args);
    return path;
}

/* Three B-frames between references, none of them a reference: what the decoder may skip. */
static const char x264_bframes[] =
    "-c:v libx264 -preset medium -crf 12 -bf 3 -x264-params b-adapt=0:b-pyramid=none:scenecut=0 "
    "-pix_fmt yuv420p";

/* What the callback saw. */
typedef struct seen {
    int n;
    int index[512];
    int64_t pts_ms[512];
    int width, height;
    int stop_after; /* > 0: return -ECANCELED on that call */
    uint8_t first[64 * 64 * 3];
} seen_t;

static int record(void *ud, const uint8_t *rgb, int w, int h, int64_t pts_ms)
{
    seen_t *s = ud;
    const uint8_t *c = rgb + ((size_t)(h / 2) * w + w / 2) * 3;
    assert_true(w > 0 && h > 0);
    if (s->n == 0 && (size_t)w * h * 3 <= sizeof s->first)
        memcpy(s->first, rgb, (size_t)w * h * 3);
    if (s->n < 512) {
        s->index[s->n] = (int)lround(c[1] / 4.0);
        s->pts_ms[s->n] = pts_ms;
    }
    s->width = w, s->height = h;
    s->n++;
    if (s->stop_after > 0 && s->n == s->stop_after)
        return -ECANCELED;
    return 0;
}

/* The frame the documented rule picks for t = k / rate: nearest, ties to the later one. */
static int expected_index(int k, double rate)
{
    double f = k / rate * IDX_FPS;
    return (int)floor(f + 0.5);
}

/* ---- choosing frames ---- */

static void test_frames_at_sample_times(void **state)
{
    char *clip = index_clip("idx.mp4", x264_bframes);
    char err[256];
    seen_t *s = xcalloc(1, sizeof *s);
    int n = -1;
    (void)state;

    /* 3 a second: t = 0, 1/3, 2/3, ... 7/3; the stream ends at 60/25 = 2.4 s. */
    assert_int_equal(media_sample_frames(clip, 3, 0, 0, record, s, &n, err, sizeof err), 0);
    assert_int_equal(n, 8);
    assert_int_equal(s->n, 8);
    assert_int_equal(s->width, 64);
    assert_int_equal(s->height, 48);
    for (int k = 0; k < 8; k++) {
        assert_int_equal(s->index[k], expected_index(k, 3));
        /* pts is the chosen frame's own time, within half a frame period of t. */
        assert_int_equal(s->pts_ms[k], s->index[k] * 1000 / IDX_FPS);
        assert_true(fabs(s->pts_ms[k] - k * 1000.0 / 3) <= 1000.0 / IDX_FPS / 2 + 1);
    }
    free(s);
    free(clip);
}

/* Sampling faster than the frame rate hands over every frame exactly once, in order. */
static void test_every_frame_once(void **state)
{
    char *clip = index_clip("idx.mp4", x264_bframes);
    char err[256];
    seen_t *s = xcalloc(1, sizeof *s);
    int n = 0;
    (void)state;
    assert_int_equal(media_sample_frames(clip, 60, 0, 0, record, s, &n, err, sizeof err), 0);
    assert_int_equal(n, IDX_FRAMES);
    for (int i = 0; i < IDX_FRAMES; i++)
        assert_int_equal(s->index[i], i);
    free(s);
    free(clip);
}

/* One a second on a 25 fps clip and on other containers and codecs (VP9 in WebM, MJPEG with
 * full-range YUV, H.264 4:4:4 in Matroska, 10-bit HEVC): the same frames. */
static void test_containers_and_codecs(void **state)
{
    static const char *const made[][2] = {
        {"idx.webm", "-c:v libvpx-vp9 -lossless 1 -pix_fmt yuv420p"},
        {"idx.avi", "-c:v mjpeg -q:v 2 -pix_fmt yuvj420p"},
        {"idx.mkv", "-c:v libx264 -preset ultrafast -qp 0 -pix_fmt yuv444p"},
        /* What recent phones record: 10-bit HEVC. */
        {"idx-hevc10.mp4", "-c:v libx265 -x265-params lossless=1:log-level=error "
                           "-pix_fmt yuv420p10le -tag:v hvc1"},
    };
    char err[256];
    (void)state;
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        char *clip = index_clip(made[i][0], made[i][1]);
        seen_t *s = xcalloc(1, sizeof *s);
        int ret = media_sample_frames(clip, 1, 0, 0, record, s, NULL, err, sizeof err);
        if (ret != 0)
            fail_msg("%s: %d %s", made[i][0], ret, err);
        assert_int_equal(s->n, 3); /* t = 0, 1, 2 */
        for (int k = 0; k < 3; k++)
            if (s->index[k] != expected_index(k, 1))
                fail_msg("%s: sample %d is frame %d, expected %d", made[i][0], k, s->index[k],
                         expected_index(k, 1));
        free(s);
        free(clip);
    }
}

/* The fixtures: 3 s of 25 fps testsrc at 2 a second is 6 frames at 0, 0.5, ... 2.5 s. */
static void test_fixture_clips(void **state)
{
    static const char *const names[] = {"clip.mp4", "clip.webm", "clip.mkv", "clip.mov",
                                        "long.mp4"};
    char err[256];
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *clip = fixture(names[i]);
        seen_t *s = xcalloc(1, sizeof *s);
        int n = 0;
        int want = i == 4 ? 120 : 6;
        int ret = media_sample_frames(clip, 2, 0, 0, record, s, &n, err, sizeof err);
        if (ret != 0)
            fail_msg("%s: %d %s", names[i], ret, err);
        assert_int_equal(n, want);
        for (int k = 0; k < want; k++)
            assert_true(llabs(s->pts_ms[k] - k * 500) <= 20);
        assert_int_equal(s->width, i == 4 ? 1280 : 320);
        free(s);
        free(clip);
    }
}

/* media_frame_at gives the frame media_sample_frames would pick for that time, whether it
 * seeks (a key frame every 10 frames, B-frames) or not, and -ERANGE past the end. */
static void test_frame_at(void **state)
{
    char *clips[2] = {index_clip("idx.mp4", x264_bframes),
                      index_clip("idx-g10.mp4", "-c:v libx264 -preset medium -crf 12 -bf 3 -g 10 "
                                                "-x264-params b-adapt=0:scenecut=0 -pix_fmt "
                                                "yuv420p")};
    char err[256];
    (void)state;
    for (int c = 0; c < 2; c++) {
        for (int at = 0; at < 2400; at += 7) {
            seen_t *s;
            int ret;
            /* Skip exact ties (half a frame period): floating point decides those. */
            if (at % 40 == 20)
                continue;
            s = xcalloc(1, sizeof *s);
            ret = media_frame_at(clips[c], at, 0, record, s, err, sizeof err);
            if (ret != 0)
                fail_msg("at %d ms: %d %s", at, ret, err);
            assert_int_equal(s->n, 1);
            /* Past the last frame's pts (2.36 s) but within its duration: the last frame. */
            assert_int_equal(s->index[0], at > 2380 ? IDX_FRAMES - 1 : expected_index(at, 1000));
            free(s);
        }
        {
            seen_t s = {0};
            assert_int_equal(media_frame_at(clips[c], 2400, 0, record, &s, err, sizeof err),
                             -ERANGE);
            assert_int_equal(media_frame_at(clips[c], 1000000000, 0, record, &s, err, sizeof err),
                             -ERANGE);
            assert_int_equal(media_frame_at(clips[c], -1, 0, record, &s, err, sizeof err),
                             -EINVAL);
            assert_int_equal(s.n, 0);
        }
        free(clips[c]);
    }
}

/* ---- picture: rotation, range, size ---- */

/* The first frame as the ffmpeg CLI shows it (autorotated), RGB24. */
static uint8_t *ffmpeg_first_frame(const char *path, size_t *len)
{
    char *cmd = xasprintf("ffmpeg -nostdin -v error -i '%s' -frames:v 1 -f rawvideo -pix_fmt "
                          "rgb24 -",
                          path);
    FILE *p = popen(cmd, "r");
    core_buf_t b;
    char chunk[4096];
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

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += abs(a[i] - b[i]);
    return sum / (double)n;
}

/* A 64x48 picture, left half red and right half blue, with a display matrix turning it by
 * `rotate` degrees: dimensions swap for 90 and 270, and the pixels are those the ffmpeg CLI
 * shows. */
static void test_rotation(void **state)
{
    static const int rotations[] = {90, 180, 270};
    char *plain = tmp_path("halves.mp4");
    char *args = xasprintf(
        "-f lavfi -i \"color=c=black:s=64x48:r=25:d=1,format=rgb24,"
        "geq=r='if(lt(X,W/2),255,0)':g=0:b='if(lt(X,W/2),0,255)'\" -c:v libx264 -preset "
        "ultrafast -qp 0 -pix_fmt yuv444p '%s'",
        plain);
    char err[256];
    (void)state;
    run_ffmpeg(args);
    free(args);
    for (size_t i = 0; i < sizeof rotations / sizeof rotations[0]; i++) {
        char name[32];
        char *rotated;
        seen_t *s = xcalloc(1, sizeof *s);
        uint8_t *ref;
        size_t ref_len;
        int r = rotations[i];
        snprintf(name, sizeof name, "halves-%d.mp4", r);
        rotated = tmp_path(name);
        args = xasprintf("-i '%s' -c copy -metadata:s:v:0 rotate=%d '%s'", plain, r, rotated);
        run_ffmpeg(args);
        free(args);
        assert_int_equal(media_sample_frames(rotated, 1, 0, 1, record, s, NULL, err, sizeof err),
                         0);
        assert_int_equal(s->width, r == 180 ? 64 : 48);
        assert_int_equal(s->height, r == 180 ? 48 : 64);
        ref = ffmpeg_first_frame(rotated, &ref_len);
        assert_int_equal(ref_len, (size_t)64 * 48 * 3);
        if (mean_abs_diff(s->first, ref, ref_len) > 2.0)
            fail_msg("rotate=%d: differs from ffmpeg's autorotated frame", r);
        free(ref);
        free(rotated);
        free(s);
    }
    free(plain);
}

/* Limited-range (H.264 yuv420p) and full-range (MJPEG yuvj422p) sources both give the colours
 * the ffmpeg CLI gives: a range mix-up would be off by about 16 levels everywhere. */
static void test_colour_range(void **state)
{
    static const char *const made[][2] = {
        {"range-tv.mp4", "-c:v libx264 -preset ultrafast -qp 0 -pix_fmt yuv420p"},
        {"range-pc.avi", "-c:v mjpeg -q:v 1 -pix_fmt yuvj422p"},
    };
    char err[256];
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char *clip = tmp_path(made[i][0]);
        char *args = xasprintf("-f lavfi -i \"testsrc=size=64x48:rate=25:duration=1\" %s '%s'",
                               made[i][1], clip);
        seen_t *s = xcalloc(1, sizeof *s);
        uint8_t *ref;
        size_t ref_len;
        double d;
        run_ffmpeg(args);
        free(args);
        assert_int_equal(media_sample_frames(clip, 1, 0, 1, record, s, NULL, err, sizeof err), 0);
        ref = ffmpeg_first_frame(clip, &ref_len);
        assert_int_equal(ref_len, (size_t)64 * 48 * 3);
        d = mean_abs_diff(s->first, ref, ref_len);
        if (d > 3.0)
            fail_msg("%s: mean difference %.2f from ffmpeg", made[i][0], d);
        free(ref);
        free(s);
        free(clip);
    }
}

/* Over max_pixels, frames are scaled down keeping the aspect. */
static void test_max_pixels(void **state)
{
    char *clip = fixture("clip.mp4");
    char err[256];
    seen_t *s = xcalloc(1, sizeof *s);
    (void)state;
    assert_int_equal(media_sample_frames(clip, 1, 160 * 120, 0, record, s, NULL, err, sizeof err),
                     0);
    assert_int_equal(s->width, 160);
    assert_int_equal(s->height, 120);
    memset(s, 0, sizeof *s);
    assert_int_equal(media_sample_frames(clip, 1, 1000, 0, record, s, NULL, err, sizeof err), 0);
    assert_true((long long)s->width * s->height <= 1000);
    assert_true(abs(s->width * 3 - s->height * 4) <= 4);
    free(s);
    free(clip);
}

/* ---- bounds and stopping ---- */

static void test_max_frames_and_stop(void **state)
{
    char *clip = index_clip("idx.mp4", x264_bframes);
    char err[256];
    seen_t *s = xcalloc(1, sizeof *s);
    int n = 0;
    (void)state;
    assert_int_equal(media_sample_frames(clip, 10, 0, 3, record, s, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(s->n, 3);
    memset(s, 0, sizeof *s);
    s->stop_after = 2;
    assert_int_equal(media_sample_frames(clip, 10, 0, 0, record, s, &n, err, sizeof err),
                     -ECANCELED);
    assert_int_equal(n, 2);
    assert_int_equal(s->n, 2);
    /* Rates out of range. */
    assert_int_equal(media_sample_frames(clip, 0, 0, 0, record, s, &n, err, sizeof err), -EINVAL);
    assert_int_equal(media_sample_frames(clip, 61, 0, 0, record, s, &n, err, sizeof err),
                     -EINVAL);
    assert_int_equal(media_sample_frames(clip, NAN, 0, 0, record, s, &n, err, sizeof err),
                     -EINVAL);
    free(s);
    free(clip);
}

/* A 100 s pause in the timestamps (a still scene of a variable-rate video) costs nothing and
 * every frame still comes once; a jump past 10^7 s is damage: the frames after it are dropped. */
static void test_timestamp_gaps(void **state)
{
    static const double jumps[] = {100, 1e8};
    char err[256];
    (void)state;
    for (int j = 0; j < 2; j++) {
        char name[32];
        char *clip, *args;
        seen_t *s = xcalloc(1, sizeof *s);
        int n = 0;
        snprintf(name, sizeof name, "gap-%d.mkv", j);
        clip = tmp_path(name);
        args = xasprintf("-f lavfi -i \"color=c=black:s=64x48:r=%d:d=%g,format=rgb24,"
                         "geq=r='4*N':g='4*N':b='4*N'\" -vf \"setpts='if(gte(N,30),PTS+%g/TB,"
                         "PTS)'\" -c:v libx264 -preset ultrafast -qp 0 -pix_fmt yuv444p '%s'",
                         IDX_FPS, (double)IDX_FRAMES / IDX_FPS, jumps[j], clip);
        run_ffmpeg(args);
        free(args);
        assert_int_equal(media_sample_frames(clip, 60, 0, 0, record, s, &n, err, sizeof err), 0);
        assert_int_equal(n, j == 0 ? IDX_FRAMES : 30);
        for (int i = 0; i < n; i++) {
            assert_int_equal(s->index[i], i);
            assert_int_equal(s->pts_ms[i], i * 1000 / IDX_FPS + (i >= 30 ? 100000 : 0));
        }
        free(s);
        free(clip);
    }
}

/* ---- not video, damaged, random ---- */

static void test_not_video(void **state)
{
    static const char *const names[] = {"clip.m4a", "clip.mp3", "clip.wav", "still.png",
                                        "still.jpg", "notes.txt", "empty.bin"};
    char err[256];
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *path = fixture(names[i]);
        seen_t *s = xcalloc(1, sizeof *s);
        int n = -1;
        int ret = media_sample_frames(path, 2, 0, 0, record, s, &n, err, sizeof err);
        if (ret != CORE_EBADMEDIA)
            fail_msg("%s: %d (%s)", names[i], ret, err);
        assert_int_equal(n, 0);
        assert_int_equal(s->n, 0);
        assert_true(strlen(err) > 0);
        free(s);
        free(path);
    }
    {
        char *path = tmp_path("missing.mp4");
        seen_t s = {0};
        assert_int_equal(media_sample_frames(path, 2, 0, 0, record, &s, NULL, err, sizeof err),
                         -ENOENT);
        free(path);
    }
}

/* random.mp4 is 64 KiB of random bytes; truncated.mp4 lost its index (moov at the end). */
static void test_random_and_indexless(void **state)
{
    static const char *const names[] = {"random.mp4", "truncated.mp4"};
    char err[256];
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char *path = fixture(names[i]);
        seen_t *s = xcalloc(1, sizeof *s);
        int ret = media_sample_frames(path, 2, 0, 0, record, s, NULL, err, sizeof err);
        assert_true(ret == CORE_EBADMEDIA || ret == CORE_EDECODE);
        assert_int_equal(s->n, 0);
        free(s);
        free(path);
    }
}

/* A clip cut part way (MP4 with its index at the front, Matroska): the frames before the cut,
 * then 0 or CORE_EDECODE; the frames handed over are the right ones. */
static void test_truncated_part_way(void **state)
{
    static const char *const made[][2] = {
        {"idx-fast.mp4", "-c:v libx264 -preset medium -crf 12 -bf 3 -x264-params "
                         "b-adapt=0:scenecut=0 -pix_fmt yuv420p -movflags +faststart"},
        {"idx.mkv", "-c:v libx264 -preset ultrafast -qp 0 -pix_fmt yuv444p"},
    };
    char err[256];
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char *clip = index_clip(made[i][0], made[i][1]);
        char *cut = tmp_path(i == 0 ? "cut.mp4" : "cut.mkv");
        char *data = NULL;
        size_t len = 0;
        FILE *f;
        seen_t *s = xcalloc(1, sizeof *s);
        int ret;

        assert_int_equal(core_read_file(clip, 64 << 20, &data, &len), 0);
        f = fopen(cut, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len * 6 / 10, f), len * 6 / 10);
        assert_int_equal(fclose(f), 0);
        ret = media_sample_frames(cut, 60, 0, 0, record, s, NULL, err, sizeof err);
        assert_true(ret == 0 || ret == CORE_EDECODE);
        assert_true(s->n > 5 && s->n < IDX_FRAMES);
        /* Every frame up to the cut, in order; only B-frames whose data came after the cut (at
         * most the 3 before the last reference frame) may be missing. */
        for (int k = 0; k < s->n; k++) {
            assert_true(s->index[k] >= k && s->index[k] <= k + 3);
            if (k > 0)
                assert_true(s->index[k] > s->index[k - 1]);
        }
        free(s);
        free(data);
        free(cut);
        free(clip);
    }
}

/* Random bytes written over the middle of clips: 0 or a clear error, never a crash. */
static void test_damaged_middle(void **state)
{
    static const char *const names[] = {"clip.mp4", "clip.webm", "clip.mkv"};
    uint32_t x = 12345;
    char err[256];
    (void)state;
    for (size_t i = 0; i < 3; i++)
        for (int round = 0; round < 4; round++) {
            char *path = fixture(names[i]);
            char *bad = tmp_path("damaged.bin");
            char *data = NULL;
            size_t len = 0;
            seen_t *s = xcalloc(1, sizeof *s);
            FILE *f;
            int ret;
            assert_int_equal(core_read_file(path, 64 << 20, &data, &len), 0);
            for (size_t k = len / 3 + round * len / 10; k < len / 3 + round * len / 10 + 4096 &&
                                                        k < len;
                 k++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                data[k] = (char)x;
            }
            f = fopen(bad, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(data, 1, len, f), len);
            assert_int_equal(fclose(f), 0);
            ret = media_sample_frames(bad, 2, 0, 0, record, s, NULL, err, sizeof err);
            assert_true(ret == 0 || ret == CORE_EDECODE || ret == CORE_EBADMEDIA);
            if (ret != 0)
                assert_true(strlen(err) > 0);
            free(s);
            free(data);
            free(bad);
            free(path);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_at_sample_times),
        cmocka_unit_test(test_every_frame_once),
        cmocka_unit_test(test_containers_and_codecs),
        cmocka_unit_test(test_fixture_clips),
        cmocka_unit_test(test_frame_at),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_colour_range),
        cmocka_unit_test(test_max_pixels),
        cmocka_unit_test(test_max_frames_and_stop),
        cmocka_unit_test(test_timestamp_gaps),
        cmocka_unit_test(test_not_video),
        cmocka_unit_test(test_random_and_indexless),
        cmocka_unit_test(test_truncated_part_way),
        cmocka_unit_test(test_damaged_middle),
    };
    fixtures = getenv("PERSONA_FIXTURES");
    tmpdir = getenv("PERSONA_TEST_TMP");
    if (!fixtures || !tmpdir) {
        fprintf(stderr, "PERSONA_FIXTURES and PERSONA_TEST_TMP must be set\n");
        return 1;
    }
    if (core_mkdirs(tmpdir) != 0)
        return 1;
    media_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
