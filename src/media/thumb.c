/* media/thumb.c: JPEG thumbnails. For a video, one frame about 10% in (at most 5 s); for a still
 * image the image itself; for audio with cover art, the cover. The picture is scaled to fit
 * max_side on its longer side (never enlarged; the pixel aspect ratio is honoured), turned upright
 * (a video's display matrix, a JPEG's EXIF orientation), converted to full-range YUV 4:2:0 with
 * libswscale — which is what makes greyscale, alpha and CMYK sources work — and encoded with
 * FFmpeg's mjpeg encoder.
 *
 * Memory: decoding is bounded by MEDIA_MAX_PIXELS and by MAX_FRAMES decoded frames after the
 * seek. On failure out_jpeg is removed. Reentrant; runs on worker threads. */
#include "media/internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

/* Frames decoded after the seek before we settle for the latest one (about 10 s at 25 fps). */
#define MAX_FRAMES 250
#define JPEG_QSCALE 3

/* EXIF orientation codes (1 = upright) from a display matrix's rotation. */
static int orientation_from_matrix(const int32_t *matrix)
{
    double ccw = av_display_rotation_get(matrix);
    int cw;
    if (isnan(ccw))
        return 1;
    cw = ((int)lround(-ccw) % 360 + 360) % 360;
    switch (cw) {
    case 90: return 6;
    case 180: return 3;
    case 270: return 8;
    default: return 1;
    }
}

static int frame_orientation(const AVStream *st, const AVFrame *frame)
{
    const AVFrameSideData *fsd = av_frame_get_side_data(frame, AV_FRAME_DATA_DISPLAYMATRIX);
    const AVDictionaryEntry *e = av_dict_get(frame->metadata, "Orientation", NULL, 0);
    const uint8_t *ssd = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, NULL);
    if (e) {
        int v = atoi(e->value);
        return v >= 1 && v <= 8 ? v : 1;
    }
    if (fsd && fsd->size >= 9 * sizeof(int32_t))
        return orientation_from_matrix((const int32_t *)fsd->data);
    if (ssd)
        return orientation_from_matrix((const int32_t *)ssd);
    return 1;
}

/* Where destination pixel (x, y) comes from in a w x h source, for EXIF orientation code. */
static void source_of(int code, int x, int y, int w, int h, int *sx, int *sy)
{
    switch (code) {
    case 2: *sx = w - 1 - x; *sy = y; break;
    case 3: *sx = w - 1 - x; *sy = h - 1 - y; break;
    case 4: *sx = x; *sy = h - 1 - y; break;
    case 5: *sx = y; *sy = x; break;
    case 6: *sx = y; *sy = h - 1 - x; break;
    case 7: *sx = w - 1 - y; *sy = h - 1 - x; break;
    case 8: *sx = w - 1 - y; *sy = x; break;
    default: *sx = x; *sy = y;
    }
}

/* Returns src (a YUV 4:2:0 frame) turned upright by code, as a new frame in *out. */
static int orient(const AVFrame *src, int code, AVFrame **out)
{
    bool swap = code >= 5;
    AVFrame *dst = av_frame_alloc();
    int ret;
    if (!dst)
        return AVERROR(ENOMEM);
    dst->format = src->format;
    dst->width = swap ? src->height : src->width;
    dst->height = swap ? src->width : src->height;
    dst->color_range = src->color_range;
    if ((ret = av_frame_get_buffer(dst, 0)) < 0) {
        av_frame_free(&dst);
        return ret;
    }
    for (int p = 0; p < 3; p++) {
        int sw = p ? (src->width + 1) / 2 : src->width;
        int sh = p ? (src->height + 1) / 2 : src->height;
        int dw = swap ? sh : sw, dh = swap ? sw : sh;
        for (int y = 0; y < dh; y++) {
            uint8_t *row = dst->data[p] + (ptrdiff_t)y * dst->linesize[p];
            for (int x = 0; x < dw; x++) {
                int sx, sy;
                source_of(code, x, y, sw, sh, &sx, &sy);
                row[x] = src->data[p][(ptrdiff_t)sy * src->linesize[p] + sx];
            }
        }
    }
    *out = dst;
    return 0;
}

/* Picks the stream to take the picture from: a real video track (or the picture of an image
 * file), else cover art. -1 if none. */
static int pick_stream(const AVFormatContext *in)
{
    int cover = -1;
    for (unsigned i = 0; i < in->nb_streams; i++) {
        const AVStream *st = in->streams[i];
        if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO || st->codecpar->codec_id == AV_CODEC_ID_NONE)
            continue;
        if (media__is_real_video(st))
            return (int)i;
        if (cover < 0)
            cover = (int)i;
    }
    return cover;
}

/* Decodes until a frame at or past target (stream time base; AV_NOPTS_VALUE: the first frame),
 * leaving the chosen frame in pic. */
static int decode_picture(AVFormatContext *in, AVCodecContext *dec, int index, int64_t target,
                          AVFrame *pic, char *err, size_t errcap)
{
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    char msg[AV_ERROR_MAX_STRING_SIZE] = "no frame";
    int frames = 0, ret;
    bool eof = false, done = false;

    if (!pkt || !frame) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    while (!done) {
        if (!eof) {
            ret = av_read_frame(in, pkt);
            if (ret < 0) {
                /* End of file or a damaged tail: decode what we have. */
                eof = true;
                ret = avcodec_send_packet(dec, NULL);
            } else if (pkt->stream_index != index) {
                av_packet_unref(pkt);
                continue;
            } else {
                ret = avcodec_send_packet(dec, pkt);
                av_packet_unref(pkt);
            }
            if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF) {
                if (ret == AVERROR(ENOMEM))
                    break;
                /* A damaged packet: remember why, try the next. */
                media__averr_str(ret, msg, sizeof msg);
                continue;
            }
        }
        for (;;) {
            ret = avcodec_receive_frame(dec, frame);
            if (ret == AVERROR(EAGAIN))
                break;
            if (ret == AVERROR_EOF) {
                done = true;
                break;
            }
            if (ret < 0) {
                media__averr_str(ret, msg, sizeof msg);
                if (eof)
                    done = true;
                break;
            }
            av_frame_unref(pic);
            av_frame_move_ref(pic, frame);
            frames++;
            if (target == AV_NOPTS_VALUE || frames >= MAX_FRAMES ||
                (pic->best_effort_timestamp != AV_NOPTS_VALUE &&
                 pic->best_effort_timestamp >= target)) {
                done = true;
                break;
            }
        }
    }
    if (ret == AVERROR(ENOMEM)) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    ret = pic->buf[0] ? 0 : media__fail(err, errcap, CORE_EDECODE,
                                        "could not decode a picture (%s)", msg);
out:
    av_packet_free(&pkt);
    av_frame_free(&frame);
    return ret;
}

/* Scales pic into a new YUVJ420P frame that fits max_side. */
static int scale_picture(const AVFrame *pic, int max_side, AVFrame **out, char *err, size_t errcap)
{
    struct SwsContext *sws = NULL;
    AVFrame *dst = NULL;
    AVRational sar = pic->sample_aspect_ratio;
    double w = pic->width, h = pic->height, f;
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int ret;

    if ((int64_t)pic->width * pic->height > MEDIA_MAX_PIXELS || pic->width <= 0 || pic->height <= 0)
        return media__fail(err, errcap, CORE_ELIMIT, "the picture is too large (%dx%d)",
                           pic->width, pic->height);
    if (sar.num > 0 && sar.den > 0 && av_q2d(sar) > 0.1 && av_q2d(sar) < 10)
        w *= av_q2d(sar);
    f = fmin(1.0, (double)max_side / fmax(w, h));
    dst = av_frame_alloc();
    if (!dst)
        return media__fail(err, errcap, -ENOMEM, "out of memory");
    dst->format = AV_PIX_FMT_YUVJ420P;
    dst->width = (int)fmax(1, lround(w * f));
    dst->height = (int)fmax(1, lround(h * f));
    dst->color_range = AVCOL_RANGE_JPEG;
    if ((ret = av_frame_get_buffer(dst, 0)) < 0) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    sws = sws_getContext(pic->width, pic->height, pic->format, dst->width, dst->height,
                         AV_PIX_FMT_YUVJ420P, SWS_BICUBIC, NULL, NULL, NULL);
    if (!sws) {
        const char *name = av_get_pix_fmt_name(pic->format);
        ret = media__fail(err, errcap, CORE_EBADMEDIA, "cannot convert pictures in %s",
                          name ? name : "an unknown pixel format");
        goto out;
    }
    ret = sws_scale(sws, (const uint8_t *const *)pic->data, pic->linesize, 0, pic->height,
                    dst->data, dst->linesize);
    if (ret < 0) {
        ret = media__fail(err, errcap, CORE_EDECODE, "scaling the picture failed: %s",
                          media__averr_str(ret, msg, sizeof msg));
        goto out;
    }
    *out = dst;
    dst = NULL;
    ret = 0;
out:
    sws_freeContext(sws);
    av_frame_free(&dst);
    return ret;
}

/* Encodes pic (YUVJ420P) as a JPEG file at path. */
static int write_jpeg(const AVFrame *pic, const char *path, bool *created, char *err,
                      size_t errcap)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *enc = NULL;
    AVPacket *pkt = NULL;
    FILE *f = NULL;
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int ret;

    if (!codec)
        return media__fail(err, errcap, -ENOSYS, "FFmpeg has no JPEG encoder");
    enc = avcodec_alloc_context3(codec);
    pkt = av_packet_alloc();
    if (!enc || !pkt) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    enc->width = pic->width;
    enc->height = pic->height;
    enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
    enc->color_range = AVCOL_RANGE_JPEG;
    enc->time_base = (AVRational){1, 25};
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * JPEG_QSCALE;
    if ((ret = avcodec_open2(enc, codec, NULL)) < 0)
        goto fail;

    f = fopen(path, "wb");
    if (!f) {
        ret = media__fail(err, errcap, -errno, "cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    *created = true;
    /* pic is borrowed: the encoder reads the quality from the frame, so send a reference. */
    {
        AVFrame *frame = av_frame_clone(pic);
        if (!frame) {
            ret = AVERROR(ENOMEM);
            goto fail;
        }
        frame->quality = enc->global_quality;
        frame->pts = 0;
        ret = avcodec_send_frame(enc, frame);
        av_frame_free(&frame);
        if (ret < 0)
            goto fail;
    }
    if ((ret = avcodec_send_frame(enc, NULL)) < 0)
        goto fail;
    for (;;) {
        ret = avcodec_receive_packet(enc, pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            break;
        if (ret < 0)
            goto fail;
        if (fwrite(pkt->data, 1, (size_t)pkt->size, f) != (size_t)pkt->size) {
            av_packet_unref(pkt);
            ret = media__fail(err, errcap, -EIO, "writing %s failed", path);
            goto out;
        }
        av_packet_unref(pkt);
    }
    ret = fclose(f);
    f = NULL;
    if (ret != 0) {
        ret = media__fail(err, errcap, -errno, "writing %s failed: %s", path, strerror(errno));
        goto out;
    }
    ret = 0;
    goto out;
fail:
    ret = media__fail(err, errcap, media__translate(ret, CORE_EDECODE),
                      "encoding the thumbnail failed: %s", media__averr_str(ret, msg, sizeof msg));
out:
    if (f)
        fclose(f);
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    return ret;
}

int media_thumbnail(const char *in_path, const char *out_jpeg, int max_side, char *err,
                    size_t errcap)
{
    AVFormatContext *in = NULL;
    AVCodecContext *dec = NULL;
    AVFrame *pic = NULL, *small = NULL, *upright = NULL;
    int64_t target = AV_NOPTS_VALUE;
    bool created = false;
    int index, code, ret;

    if (max_side < 16 || max_side > 4096)
        return media__fail(err, errcap, -EINVAL, "thumbnail size %d is out of range", max_side);
    ret = media__open_input(in_path, &in, err, errcap);
    if (ret < 0)
        goto out;
    index = pick_stream(in);
    if (index < 0) {
        ret = media__fail(err, errcap, CORE_EBADMEDIA, "the file has no picture");
        goto out;
    }
    if ((ret = media__open_decoder(in, index, &dec, err, errcap)) < 0)
        goto out;

    if (media__is_real_video(in->streams[index]) && !media__is_image_format(in->iformat) &&
        in->duration != AV_NOPTS_VALUE && in->duration > 0) {
        const AVStream *st = in->streams[index];
        int64_t at = av_rescale(in->duration, 1, 10);
        int64_t start = st->start_time != AV_NOPTS_VALUE && llabs(st->start_time) < INT64_MAX / 4
                            ? st->start_time
                            : 0;
        if (at > 5 * (int64_t)AV_TIME_BASE)
            at = 5 * (int64_t)AV_TIME_BASE;
        target = start + av_rescale_q(at, AV_TIME_BASE_Q, st->time_base);
        /* Land on the keyframe before the target, then decode up to it. If seeking fails we
         * decode from the start, which only costs time. */
        if (avformat_seek_file(in, index, INT64_MIN, target, target, 0) < 0)
            avformat_seek_file(in, index, INT64_MIN, start, start, 0);
    }

    pic = av_frame_alloc();
    if (!pic) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    if ((ret = decode_picture(in, dec, index, target, pic, err, errcap)) < 0)
        goto out;
    code = frame_orientation(in->streams[index], pic);
    if ((ret = scale_picture(pic, max_side, &small, err, errcap)) < 0)
        goto out;
    if (code != 1) {
        if ((ret = orient(small, code, &upright)) < 0) {
            ret = media__fail(err, errcap, -ENOMEM, "out of memory");
            goto out;
        }
    }
    ret = write_jpeg(upright ? upright : small, out_jpeg, &created, err, errcap);
out:
    if (ret < 0 && created)
        unlink(out_jpeg);
    av_frame_free(&upright);
    av_frame_free(&small);
    av_frame_free(&pic);
    avcodec_free_context(&dec);
    avformat_close_input(&in);
    return ret;
}
