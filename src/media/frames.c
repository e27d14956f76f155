/* media/frames.c: video frames sampled at a fixed rate, as 8-bit RGB the way a viewer sees them —
 * for face analysis. Sequential decoding (no seeking: sampling 2 frames a second of a phone video
 * touches every GOP anyway), the frame chosen for each sample time handed to a callback,
 * converted with libswscale and turned upright by the container's display matrix.
 *
 * Which frame for sample time t (t = k / rate, k = 0, 1, ..., in seconds from the stream's first
 * frame): the frame nearest to t among the last frame shown before t and the first frame at or
 * after t; on a tie, the later one. Past the last frame's pts, the last frame counts while t is
 * within its duration. Each decoded frame is handed over at most once: when rate exceeds the frame
 * rate, sample times whose nearest frame was already handed over are skipped.
 *
 * Damage (what a player tolerates): a packet the decoder rejects is skipped, as players conceal
 * it; DECODE_MAX_BAD_RUN rejected packets in a row, a read error other than the end of the file,
 * or a stream that yields no frame at all make the call fail with CORE_EDECODE — after handing
 * over the frames decoded before the damage. A file cut short (the demuxer meets the end of the
 * file early) ends the stream there: the frames before the cut, and 0.
 *
 * Decoding skips non-reference frames (AVDISCARD_NONREF) whose timestamps lie more than
 * SKIP_MARGIN frame periods before the next sample time: such a frame can never be the nearest to
 * any sample time still to come, so the chosen frames are the same as with full decoding.
 *
 * Memory: the decoder's frames are reference-counted (the candidate "previous" frame is a
 * reference, not a copy); the scaler context and the two RGB buffers are kept across frames and
 * rebuilt only when the decoded size or format changes. Decoding uses at most FRAMES_MAX_THREADS
 * threads. Reentrant; runs on worker threads. */
#include "media/internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/display.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#define FRAMES_MAX_RATE 60.0
/* A frame time past this (about 116 days) is damage, not video. */
#define FRAMES_MAX_SECONDS 1e7
#define FRAMES_MAX_THREADS 4
#define DECODE_MAX_BAD_RUN 32
/* In frame periods; see the file comment. */
#define SKIP_MARGIN 2.0
/* media_frame_at seeks this far before the time asked for (the larger of the two). */
#define SEEK_MARGIN_S 1.0
#define SEEK_MARGIN_FRAMES 16

/* ---- the RGB output: conversion, scaling, rotation ---- */

typedef struct rgb_out {
    struct SwsContext *sws;
    int src_w, src_h, src_fmt, src_range, src_space; /* what sws was made for */
    int w, h;              /* scaled size, before rotation */
    int rotation;          /* clockwise degrees to turn the current frame: 0, 90, 180, 270 */
    uint8_t *scaled;       /* w x h RGB24, linesize scaled_stride */
    int scaled_stride;
    uint8_t *upright;      /* the picture handed over, stride 3 * width */
    size_t scaled_cap, upright_cap;
} rgb_out_t;

static void rgb_out_destroy(rgb_out_t *o)
{
    sws_freeContext(o->sws);
    av_freep(&o->scaled);
    av_freep(&o->upright);
    memset(o, 0, sizeof *o);
}

/* The full-range YUVJ formats are deprecated in swscale: the same layout with the range given. */
static enum AVPixelFormat plain_yuv(enum AVPixelFormat f, int *full_range)
{
    switch (f) {
    case AV_PIX_FMT_YUVJ420P: *full_range = 1; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: *full_range = 1; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: *full_range = 1; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: *full_range = 1; return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: *full_range = 1; return AV_PIX_FMT_YUV411P;
    default: return f;
    }
}

/* The clockwise turn (0, 90, 180, 270) a display matrix asks for, 0 for none. */
static int matrix_rotation(const uint8_t *m)
{
    double ccw;
    if (!m)
        return 0;
    ccw = av_display_rotation_get((const int32_t *)m);
    if (isnan(ccw))
        return 0;
    /* Nearest multiple of 90: matrices from phones carry exact quarter turns. */
    return (int)((lround(-ccw / 90.0) * 90 % 360 + 360) % 360);
}

/* The turn that makes f upright: the frame's own display matrix (an H.264 display orientation
 * message) if it has one, else the container's (MP4/MOV tkhd matrix). */
static int frame_rotation(const AVStream *st, const AVFrame *f)
{
    const AVFrameSideData *sd = av_frame_get_side_data(f, AV_FRAME_DATA_DISPLAYMATRIX);
    if (sd && sd->size >= 9 * sizeof(int32_t))
        return matrix_rotation(sd->data);
    return matrix_rotation(av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, NULL));
}

/* The scaled size for a w x h frame with sample aspect sar under max_pixels, aspect kept. */
static void output_size(int w, int h, AVRational sar, long long max_pixels, int *ow, int *oh)
{
    double dw = w, dh = h, f;
    if (sar.num > 0 && sar.den > 0 && av_q2d(sar) > 0.1 && av_q2d(sar) < 10)
        dw *= av_q2d(sar);
    f = dw * dh > (double)max_pixels ? sqrt((double)max_pixels / (dw * dh)) : 1.0;
    *ow = (int)fmax(1, floor(dw * f + 0.5));
    *oh = (int)fmax(1, floor(dh * f + 0.5));
    /* Rounding up may cross the bound by a row: take it back. */
    while ((long long)*ow * *oh > max_pixels && (*ow > 1 || *oh > 1)) {
        if (*ow >= *oh)
            (*ow)--;
        else
            (*oh)--;
    }
}

/* Makes sure o converts frames like f; rebuilds the context and buffers only on a change. */
static int rgb_out_prepare(rgb_out_t *o, const AVFrame *f, long long max_pixels, char *err,
                           size_t errcap)
{
    int full = f->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat fmt = plain_yuv((enum AVPixelFormat)f->format, &full);
    int space = f->colorspace;
    int w, h;
    size_t need_scaled, need_upright;
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(fmt);

    /* RGB sources are full range whatever the frame says. */
    if (desc && (desc->flags & AV_PIX_FMT_FLAG_RGB))
        full = 1;
    if (o->sws && o->src_w == f->width && o->src_h == f->height && o->src_fmt == (int)fmt &&
        o->src_range == full && o->src_space == space)
        return 0;
    output_size(f->width, f->height, f->sample_aspect_ratio, max_pixels, &w, &h);
    o->sws = sws_getCachedContext(o->sws, f->width, f->height, fmt, w, h, AV_PIX_FMT_RGB24,
                                  SWS_BILINEAR, NULL, NULL, NULL);
    if (!o->sws)
        return media__fail(err, errcap, CORE_EBADMEDIA, "cannot convert video in %s to RGB",
                           desc ? desc->name : "an unknown pixel format");
    /* Limited or full range in, full-range RGB out, with the stream's YUV matrix (BT.601 when
     * unspecified, as FFmpeg's own tools assume). */
    sws_setColorspaceDetails(o->sws, sws_getCoefficients(space), full,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    o->scaled_stride = FFALIGN(w * 3, 64);
    need_scaled = (size_t)o->scaled_stride * h + 64;
    need_upright = (size_t)w * h * 3;
    if (need_scaled > o->scaled_cap) {
        av_freep(&o->scaled);
        o->scaled_cap = 0;
        if (!(o->scaled = av_malloc(need_scaled)))
            return media__fail(err, errcap, -ENOMEM, "out of memory");
        o->scaled_cap = need_scaled;
    }
    if (need_upright > o->upright_cap) {
        av_freep(&o->upright);
        o->upright_cap = 0;
        if (!(o->upright = av_malloc(need_upright)))
            return media__fail(err, errcap, -ENOMEM, "out of memory");
        o->upright_cap = need_upright;
    }
    o->src_w = f->width, o->src_h = f->height, o->src_fmt = fmt;
    o->src_range = full, o->src_space = space;
    o->w = w, o->h = h;
    return 0;
}

/* Copies the scaled picture into o->upright, turned clockwise by o->rotation. */
static void rgb_out_rotate(rgb_out_t *o)
{
    int w = o->w, h = o->h;
    for (int y = 0; y < h; y++) {
        const uint8_t *src = o->scaled + (size_t)y * o->scaled_stride;
        if (o->rotation == 0) {
            memcpy(o->upright + (size_t)y * w * 3, src, (size_t)w * 3);
            continue;
        }
        for (int x = 0; x < w; x++) {
            size_t d;
            switch (o->rotation) {
            case 90: d = (size_t)x * h + (h - 1 - y); break;       /* upright is h x w */
            case 180: d = (size_t)(h - 1 - y) * w + (w - 1 - x); break;
            default: d = (size_t)(w - 1 - x) * h + y; break;       /* 270 */
            }
            memcpy(o->upright + d * 3, src + (size_t)x * 3, 3);
        }
    }
}

/* Converts f into o->upright, turned by rotation; *w, *h get the upright size. */
static int convert_frame(rgb_out_t *o, const AVFrame *f, int rotation, long long max_pixels,
                         int *w, int *h, char *err, size_t errcap)
{
    uint8_t *dst[4] = {NULL};
    int dst_linesize[4] = {0};
    int ret = rgb_out_prepare(o, f, max_pixels, err, errcap);
    if (ret < 0)
        return ret;
    dst[0] = o->scaled;
    dst_linesize[0] = o->scaled_stride;
    ret = sws_scale(o->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst,
                    dst_linesize);
    if (ret <= 0)
        return media__fail(err, errcap, CORE_EDECODE, "converting a video frame to RGB failed");
    o->rotation = rotation;
    rgb_out_rotate(o);
    *w = o->rotation == 90 || o->rotation == 270 ? o->h : o->w;
    *h = o->rotation == 90 || o->rotation == 270 ? o->w : o->h;
    return 0;
}

/* ---- choosing the stream and the frames ---- */

/* The real video track to sample: the default one if flagged, else the largest. -1 if none. */
static int pick_video(const AVFormatContext *in)
{
    int best = -1;
    int64_t best_score = -1;
    for (unsigned i = 0; i < in->nb_streams; i++) {
        const AVStream *st = in->streams[i];
        int64_t score;
        if (!media__is_real_video(st) || st->codecpar->codec_id == AV_CODEC_ID_NONE)
            continue;
        score = (int64_t)st->codecpar->width * st->codecpar->height;
        if (st->disposition & AV_DISPOSITION_DEFAULT)
            score += (int64_t)1 << 40;
        if (score > best_score)
            best = (int)i, best_score = score;
    }
    return best;
}

static int open_video_decoder(const AVStream *st, AVCodecContext **out, char *err, size_t errcap)
{
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    AVCodecContext *ctx = NULL;
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int ret;

    *out = NULL;
    if (!codec)
        return media__fail(err, errcap, CORE_EBADMEDIA, "no decoder for the video codec '%s'",
                           avcodec_get_name(st->codecpar->codec_id));
    ctx = avcodec_alloc_context3(codec);
    if (!ctx)
        return media__fail(err, errcap, -ENOMEM, "out of memory");
    ret = avcodec_parameters_to_context(ctx, st->codecpar);
    if (ret < 0)
        goto fail;
    ctx->pkt_timebase = st->time_base;
    ctx->max_pixels = MEDIA_MAX_PIXELS;
    ctx->thread_count = core_ncpu() < FRAMES_MAX_THREADS ? core_ncpu() : FRAMES_MAX_THREADS;
    ctx->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    ret = avcodec_open2(ctx, codec, NULL);
    if (ret < 0)
        goto fail;
    *out = ctx;
    return 0;
fail:
    avcodec_free_context(&ctx);
    return media__fail(err, errcap, media__translate(ret, CORE_EBADMEDIA),
                       "cannot open the %s decoder: %s", avcodec_get_name(st->codecpar->codec_id),
                       media__averr_str(ret, msg, sizeof msg));
}

/* The sampling state of one call. */
typedef struct sampler {
    AVFormatContext *in;
    AVCodecContext *dec;
    const AVStream *st;
    double rate;
    double at;           /* >= 0: the single sample time of media_frame_at, seconds */
    long long max_pixels;
    int max_frames;
    media_frame_fn fn;
    void *ud;
    int64_t start;       /* the stream's first timestamp, in its time base */
    double period;       /* seconds between frames, estimated */
    long long k;         /* the next sample time is k / rate */
    AVFrame *prev;       /* the last frame before the next sample time (a reference) */
    double prev_t;       /* its time, seconds */
    bool prev_emitted;
    double last_t;       /* time of the latest decoded frame; -1 before the first */
    int n_emitted;
    int n_decoded;
    bool done;           /* max_frames reached */
    rgb_out_t out;
} sampler_t;

static double next_sample_time(const sampler_t *s)
{
    if (s->at >= 0)
        return s->k == 0 ? s->at : INFINITY;
    return (double)s->k / s->rate;
}

static int64_t to_ms(double t)
{
    return (int64_t)llround(t * 1000.0);
}

/* Converts f (time t) and hands it to fn. Returns fn's code (a negative one stops the call), or
 * a negative code of our own when the conversion fails (fn not called). */
static int sampler_emit(sampler_t *s, const AVFrame *f, double t, char *err, size_t errcap)
{
    int rotation = frame_rotation(s->st, f);
    int w = 0, h = 0, ret = convert_frame(&s->out, f, rotation, s->max_pixels, &w, &h, err, errcap);
    if (ret < 0)
        return ret;
    s->n_emitted++;
    if (s->max_frames > 0 && s->n_emitted >= s->max_frames)
        s->done = true;
    ret = s->fn(s->ud, s->out.upright, w, h, to_ms(t));
    if (ret < 0)
        media__fail(err, errcap, ret, "stopped by the frame callback (%s)", core_strerror(ret));
    return ret < 0 ? ret : 0;
}

/* Takes a decoded frame (its reference moves into the sampler). */
static int sampler_push(sampler_t *s, AVFrame *frame, char *err, size_t errcap)
{
    int64_t ts = frame->best_effort_timestamp;
    double t;
    bool cur_emitted = false;
    int ret = 0;

    if (ts == AV_NOPTS_VALUE)
        t = s->last_t < 0 ? 0 : s->last_t + s->period;
    else
        t = (double)(ts - s->start) * av_q2d(s->st->time_base);
    /* A timestamp going back, or absurdly far (damaged stream): the frame is not shown in
     * order; skip it. */
    if ((s->last_t >= 0 && t <= s->last_t) || t > FRAMES_MAX_SECONDS) {
        av_frame_unref(frame);
        return 0;
    }
    s->last_t = t;
    s->n_decoded++;
    while (!s->done && t >= next_sample_time(s)) {
        double ts_k = next_sample_time(s);
        bool use_prev = s->prev->buf[0] && ts_k - s->prev_t < t - ts_k;
        long long skip_to;
        if (use_prev && !s->prev_emitted) {
            ret = sampler_emit(s, s->prev, s->prev_t, err, errcap);
            s->prev_emitted = true;
        } else if (!use_prev && !cur_emitted) {
            ret = sampler_emit(s, frame, t, err, errcap);
            cur_emitted = true;
        }
        if (ret < 0)
            break;
        /* Every sample time before the midpoint picks prev and every one up to t picks this
         * frame, both handed over now: jump past them rather than count through a gap (a still
         * scene of a variable-rate video lasts minutes). Each time left is still decided above. */
        skip_to = use_prev ? (long long)ceil((s->prev_t + t) / 2 * s->rate)
                           : (long long)floor(t * s->rate) + 1;
        s->k = s->at < 0 && skip_to > s->k + 1 ? skip_to : s->k + 1;
    }
    av_frame_unref(s->prev);
    av_frame_move_ref(s->prev, frame);
    s->prev_t = t;
    s->prev_emitted = cur_emitted;
    return ret;
}

/* At the end of the stream: the last frame stays on screen for its duration. */
static int sampler_finish(sampler_t *s, char *err, size_t errcap)
{
    double end;
    if (s->done || !s->prev->buf[0] || s->prev_emitted)
        return 0;
    end = s->prev_t + s->period;
    if (s->prev->pkt_duration > 0)
        end = s->prev_t + (double)s->prev->pkt_duration * av_q2d(s->st->time_base);
    if (next_sample_time(s) < end)
        return sampler_emit(s, s->prev, s->prev_t, err, errcap);
    return 0;
}

/* Whether a packet may be left undecoded: see SKIP_MARGIN in the file comment. */
static bool packet_far_from_samples(const sampler_t *s, const AVPacket *pkt)
{
    double t;
    if (pkt->pts == AV_NOPTS_VALUE || s->n_decoded == 0)
        return false;
    t = (double)(pkt->pts - s->start) * av_q2d(s->st->time_base);
    return t < next_sample_time(s) - SKIP_MARGIN * s->period;
}

/* Receives every frame the decoder has ready. */
static int drain_decoder(sampler_t *s, AVFrame *frame, int *bad_run, char *err, size_t errcap)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    for (;;) {
        int ret = avcodec_receive_frame(s->dec, frame);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret == AVERROR(ENOMEM))
            return media__fail(err, errcap, -ENOMEM, "out of memory");
        if (ret < 0) {
            if (++*bad_run > DECODE_MAX_BAD_RUN)
                return media__fail(err, errcap, CORE_EDECODE,
                                   "the video is damaged after %.1f s (%s)",
                                   s->last_t < 0 ? 0 : s->last_t,
                                   media__averr_str(ret, msg, sizeof msg));
            continue;
        }
        *bad_run = 0;
        ret = sampler_push(s, frame, err, errcap);
        if (ret < 0 || s->done)
            return ret;
    }
}

static int run_sampler(sampler_t *s, char *err, size_t errcap)
{
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int bad_run = 0, ret = 0;

    s->prev = av_frame_alloc();
    if (!pkt || !frame || !s->prev) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    while (!s->done) {
        ret = av_read_frame(s->in, pkt);
        if (ret == AVERROR_EOF) {
            ret = 0;
            break;
        }
        if (ret < 0) {
            int code = media__translate(ret, CORE_EDECODE);
            ret = media__fail(err, errcap, code, "the video is damaged after %.1f s (%s)",
                              s->last_t < 0 ? 0 : s->last_t,
                              media__averr_str(ret, msg, sizeof msg));
            goto out;
        }
        if (pkt->stream_index != s->st->index) {
            av_packet_unref(pkt);
            continue;
        }
        s->dec->skip_frame = packet_far_from_samples(s, pkt) ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
        ret = avcodec_send_packet(s->dec, pkt);
        av_packet_unref(pkt);
        if (ret == AVERROR(ENOMEM)) {
            ret = media__fail(err, errcap, -ENOMEM, "out of memory");
            goto out;
        }
        if (ret < 0 && ret != AVERROR(EAGAIN) && ++bad_run > DECODE_MAX_BAD_RUN) {
            ret = media__fail(err, errcap, CORE_EDECODE, "the video is damaged after %.1f s (%s)",
                              s->last_t < 0 ? 0 : s->last_t,
                              media__averr_str(ret, msg, sizeof msg));
            goto out;
        }
        ret = drain_decoder(s, frame, &bad_run, err, errcap);
        if (ret < 0)
            goto out;
    }
    if (!s->done) {
        s->dec->skip_frame = AVDISCARD_DEFAULT;
        avcodec_send_packet(s->dec, NULL);
        ret = drain_decoder(s, frame, &bad_run, err, errcap);
        if (ret < 0)
            goto out;
        ret = sampler_finish(s, err, errcap);
        if (ret < 0)
            goto out;
    }
    if (s->n_decoded == 0)
        ret = media__fail(err, errcap, CORE_EDECODE, "the video track has no decodable frame");
out:
    av_packet_free(&pkt);
    av_frame_free(&frame);
    av_frame_free(&s->prev);
    return ret;
}

/* Opens in_path's video track and its decoder into s (whose other fields the caller sets). */
static int sampler_open(sampler_t *s, const char *in_path, char *err, size_t errcap)
{
    AVRational fr;
    int index, ret;

    ret = media__open_input(in_path, &s->in, err, errcap);
    if (ret < 0)
        return ret;
    index = media__is_image_format(s->in->iformat) ? -1 : pick_video(s->in);
    if (index < 0)
        return media__fail(err, errcap, CORE_EBADMEDIA, "the file has no video track");
    s->st = s->in->streams[index];
    for (unsigned i = 0; i < s->in->nb_streams; i++)
        s->in->streams[i]->discard = (int)i == index ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    ret = open_video_decoder(s->st, &s->dec, err, errcap);
    if (ret < 0)
        return ret;
    s->start = s->st->start_time != AV_NOPTS_VALUE ? s->st->start_time : 0;
    fr = s->st->avg_frame_rate.num > 0 ? s->st->avg_frame_rate : s->st->r_frame_rate;
    s->period = fr.num > 0 && fr.den > 0 ? av_q2d(av_inv_q(fr)) : 1.0 / 30;
    return 0;
}

static void sampler_close(sampler_t *s)
{
    rgb_out_destroy(&s->out);
    avcodec_free_context(&s->dec);
    avformat_close_input(&s->in);
}

int media_sample_frames(const char *in_path, double rate, long long max_pixels, int max_frames,
                        media_frame_fn fn, void *ud, int *n_frames_out, char *err, size_t errcap)
{
    sampler_t s;
    int ret;

    memset(&s, 0, sizeof s);
    if (n_frames_out)
        *n_frames_out = 0;
    if (!fn || !(rate > 0 && rate <= FRAMES_MAX_RATE))
        return media__fail(err, errcap, -EINVAL, "the sampling rate must be in (0, %g] per "
                                                 "second", FRAMES_MAX_RATE);
    s.rate = rate;
    s.at = -1;
    s.max_pixels = max_pixels > 0 ? max_pixels : MEDIA_MAX_PIXELS;
    s.max_frames = max_frames;
    s.fn = fn;
    s.ud = ud;
    s.last_t = -1;
    ret = sampler_open(&s, in_path, err, errcap);
    if (ret == 0)
        ret = run_sampler(&s, err, errcap);
    if (n_frames_out)
        *n_frames_out = s.n_emitted;
    sampler_close(&s);
    return ret;
}

int media_frame_at(const char *in_path, int64_t at_ms, long long max_pixels, media_frame_fn fn,
                   void *ud, char *err, size_t errcap)
{
    sampler_t s;
    int ret;

    memset(&s, 0, sizeof s);
    if (!fn || at_ms < 0)
        return media__fail(err, errcap, -EINVAL, "the time must be 0 or more milliseconds");
    s.rate = 1;
    s.at = (double)at_ms / 1000.0;
    s.max_pixels = max_pixels > 0 ? max_pixels : MEDIA_MAX_PIXELS;
    s.max_frames = 1;
    s.fn = fn;
    s.ud = ud;
    s.last_t = -1;
    ret = sampler_open(&s, in_path, err, errcap);
    if (ret < 0)
        goto out;
    /* To the key frame at or before a point well before the time: demuxers seek by decoding
     * time, and with B-frames a key frame's picture may come after frames of the GOP before it
     * that are the nearest to at_ms. If the file cannot seek, decoding starts at the beginning,
     * which only costs time. */
    if (s.at > SEEK_MARGIN_S) {
        double margin = fmax(SEEK_MARGIN_S, SEEK_MARGIN_FRAMES * s.period);
        int64_t ts = s.start + av_rescale_q((int64_t)((s.at - margin) * 1000.0),
                                            (AVRational){1, 1000}, s.st->time_base);
        if (av_seek_frame(s.in, s.st->index, ts, AVSEEK_FLAG_BACKWARD) >= 0)
            avcodec_flush_buffers(s.dec);
    }
    ret = run_sampler(&s, err, errcap);
    if (ret == 0 && s.n_emitted == 0)
        ret = media__fail(err, errcap, -ERANGE, "%lld ms is past the end of the video (%.2f s)",
                          (long long)at_ms, s.last_t < 0 ? 0 : s.last_t + s.period);
out:
    sampler_close(&s);
    return ret;
}
